//! The HTTP client of the Prometheus server a sidecar sits next to: its external labels
//! (`/api/v1/status/config`), its oldest data (`/api/v1/status/tsdb`), its label API, and the
//! raw POST used by remote read.

use promlake_engine::{Error, Labels, Matcher, Result};
use serde::Deserialize;
use std::time::Duration;

/// Talks to one Prometheus server.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    base: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct ApiResponse<T> {
    status: String,
    #[serde(default = "none")]
    data: Option<T>,
    #[serde(default)]
    error: Option<String>,
}

fn none<T>() -> Option<T> {
    None
}

#[derive(Deserialize)]
struct ConfigData {
    yaml: String,
}

#[derive(Deserialize, Default)]
struct PromConfig {
    #[serde(default)]
    global: Option<GlobalConfig>,
}

#[derive(Deserialize, Default)]
struct GlobalConfig {
    #[serde(default)]
    external_labels: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct TsdbStatus {
    #[serde(rename = "headStats", default)]
    head_stats: Option<HeadStats>,
}

#[derive(Deserialize)]
struct HeadStats {
    #[serde(rename = "minTime", default)]
    min_time: i64,
    #[serde(rename = "numSeries", default)]
    num_series: u64,
}

impl PrometheusClient {
    /// A client of the server at `base` (`http://host:9090`, a path prefix allowed).
    pub fn new(base: &str, timeout: Duration) -> Result<Self> {
        let url = reqwest::Url::parse(base)
            .map_err(|e| Error::InvalidArgument(format!("--prometheus.url {base:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidArgument(format!("--prometheus.url {base:?}: not an http(s) URL")));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Error::Unavailable(format!("HTTP client: {e}")))?;
        Ok(PrometheusClient { base: base.trim_end_matches('/').to_string(), http })
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn unavailable(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Unavailable(format!("Prometheus {}{what}: {e}", self.base))
    }

    async fn api<T: serde::de::DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await
            .map_err(|e| self.unavailable(path, e))?;
        let code = resp.status();
        let body = resp.bytes().await.map_err(|e| self.unavailable(path, e))?;
        let parsed: ApiResponse<T> = serde_json::from_slice(&body).map_err(|e| {
            self.unavailable(
                path,
                format!("HTTP {code}: {e}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])),
            )
        })?;
        match (parsed.status.as_str(), parsed.data) {
            ("success", Some(d)) => Ok(d),
            _ => Err(self.unavailable(path, parsed.error.unwrap_or_else(|| format!("HTTP {code}")))),
        }
    }

    /// The `global.external_labels` of the server's loaded configuration (empty when none).
    pub async fn external_labels(&self) -> Result<Labels> {
        let cfg: ConfigData = self.api("/api/v1/status/config", &[]).await?;
        let parsed: PromConfig = serde_yaml::from_str(&cfg.yaml)
            .map_err(|e| self.unavailable("/api/v1/status/config", format!("config YAML: {e}")))?;
        let labels = parsed.global.and_then(|g| g.external_labels).unwrap_or_default();
        Ok(Labels::from_pairs(labels))
    }

    /// The oldest sample time of the head (ms) and its series count, from `/api/v1/status/tsdb`.
    pub async fn head_min_time(&self) -> Result<Option<(i64, u64)>> {
        let s: TsdbStatus = self.api("/api/v1/status/tsdb", &[]).await?;
        Ok(s.head_stats.map(|h| (h.min_time, h.num_series)))
    }

    /// Label names (`/api/v1/labels`) of series matching `matchers` in `[start, end]` (ms).
    pub async fn label_names(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<String>> {
        self.api("/api/v1/labels", &range_query(matchers, start, end)).await
    }

    /// Values of `name` (`/api/v1/label/<name>/values`) among series matching `matchers`.
    pub async fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>> {
        let path = format!("/api/v1/label/{}/values", percent_path(name));
        self.api(&path, &range_query(matchers, start, end)).await
    }

    /// POSTs `body` to `path` with `headers`; returns the content type and body of a 2xx answer.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(String, bytes::Bytes)> {
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.map_err(|e| self.unavailable(path, e))?;
        let code = resp.status();
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = resp.bytes().await.map_err(|e| self.unavailable(path, e))?;
        if !code.is_success() {
            return Err(self.unavailable(
                path,
                format!("HTTP {code}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]).trim()),
            ));
        }
        Ok((ctype, body))
    }
}

/// `match[]`, `start`, `end` parameters (seconds) of the label API.
fn range_query(matchers: &[Matcher], start: i64, end: i64) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if !matchers.is_empty() {
        let sel: Vec<String> = matchers.iter().map(ToString::to_string).collect();
        q.push(("match[]", format!("{{{}}}", sel.join(","))));
    }
    // Prometheus clamps out-of-range times; keep them inside what its parser accepts.
    let clamp = |t: i64| t.clamp(-9_223_372_036_854, 9_223_372_036_854);
    q.push(("start", format!("{:.3}", clamp(start) as f64 / 1000.0)));
    q.push(("end", format!("{:.3}", clamp(end) as f64 / 1000.0)));
    q
}

/// Percent-encodes a label name for a URL path segment (names are `[a-zA-Z_][a-zA-Z0-9_]*`,
/// anything else is encoded).
fn percent_path(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
