//! `promlake query`: the Prometheus HTTP API over an imported bucket, checked with promtool,
//! with a raw HTTP client, and against a real Prometheus 2.42 serving the same blocks.

use crate::harness::*;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A child server process, killed on drop, with the temp dirs it uses.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
    pub(crate) _dirs: Vec<TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        http(self.port, "GET", path, None)
    }

    fn post_form(&self, path: &str, form: &str) -> (u16, String) {
        http(self.port, "POST", path, Some(form))
    }

    pub(crate) fn json(&self, path: &str) -> Json {
        let (code, body) = self.get(path);
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until `/-/ready` answers 200.
    pub(crate) fn wait_ready(mut self, what: &str) -> Self {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{what} exited early: {status}");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.get("/-/ready").0 == 200 {
                return self;
            }
            assert!(Instant::now() < deadline, "{what} not ready within 60s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A minimal HTTP/1.1 client: (status, body), chunked bodies decoded.
fn http(port: u16, method: &str, path: &str, form: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(body) = form {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    } else {
        req.push_str("\r\n");
    }
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return (status, body.to_string());
    }
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return (status, out);
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
}

/// Percent-encodes a query parameter value.
pub(crate) fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `promlake query` over a bucket holding the tiny blocks.
fn start_promlake() -> Server {
    start_promlake_on(&tiny_blocks())
}

/// `promlake query` over a bucket holding `blocks` (imported).
fn start_promlake_on(blocks: &std::path::Path) -> Server {
    let lake = tempfile::tempdir().unwrap();
    let url = format!("file://{}", lake.path().display());
    promlake_ok(&["tools", "import", "--bucket", &url, blocks.to_str().unwrap()], &[]);
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_promlake"))
        .args(["query", "--bucket", &url, "--http-address", &format!("127.0.0.1:{port}")])
        .args(["--grpc-address", &format!("127.0.0.1:{}", free_port())])
        .env("PROMLAKE_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Server { child, port, _dirs: vec![lake] }.wait_ready("promlake query")
}

/// Prometheus 2.42 with the tiny blocks as its TSDB.
pub(crate) fn start_prometheus() -> Server {
    start_prometheus_on(&tiny_blocks())
}

/// Prometheus 2.42 with (a copy of) `blocks` as its TSDB.
fn start_prometheus_on(blocks: &std::path::Path) -> Server {
    let data = tempfile::tempdir().unwrap();
    copy_dir(blocks, data.path());
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("prometheus.yml");
    std::fs::write(&conf, "global: {}\n").unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!("--storage.tsdb.path={}", data.path().display()))
        .arg("--storage.tsdb.retention.time=100y")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus not found: run scripts/test.sh, which installs Debian's prometheus package");
    Server { child, port, _dirs: vec![data, conf_dir] }.wait_ready("prometheus")
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool").args(args).output().unwrap();
    assert!(out.status.success(), "promtool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

const RATE_BY_JOB: &str = "sum by (job) (rate(http_requests_total[5m]))";

#[test]
fn promtool_queries_promlake() {
    let lake = start_promlake();
    let prom = start_prometheus();
    let ours = format!("http://127.0.0.1:{}", lake.port);
    let theirs = format!("http://127.0.0.1:{}", prom.port);

    let instant = promtool(&["query", "instant", &ours, RATE_BY_JOB, "--time=1700003615"]);
    assert!(instant.starts_with("{job=\"api\"} => ") && instant.contains(" @[1700003615]"), "{instant}");
    same_promtool_output(
        &instant,
        &promtool(&["query", "instant", &theirs, RATE_BY_JOB, "--time=1700003615"]),
    );

    let range_args = ["--start=1700003615", "--end=1700003915", "--step=60s"];
    let range = promtool(&[&["query", "range"][..], &range_args, &[&ours, RATE_BY_JOB]].concat());
    let lines: Vec<&str> = range.lines().collect();
    assert_eq!(lines[0], "{job=\"api\"} =>", "{range}");
    assert_eq!(lines.len(), 7, "{range}");
    assert!(lines[6].ends_with(" @[1700003915]"), "{range}");
    same_promtool_output(
        &range,
        &promtool(&[&["query", "range"][..], &range_args, &[&theirs, RATE_BY_JOB]].concat()),
    );
}

/// promtool outputs equal but for the last bits of values (rate's float rounding differs by
/// an ulp between the engines: 3 vs 3.0000000000000004).
fn same_promtool_output(ours: &str, theirs: &str) {
    let split = |text: &str| -> Vec<(String, Option<f64>)> {
        text.lines()
            .map(|l| match l.split_once(" @[") {
                Some((head, t)) => {
                    let (prefix, v) = head.rsplit_once("=> ").map_or(("", head), |(p, v)| (p, v));
                    (format!("{prefix}@[{t}"), Some(v.parse().unwrap()))
                }
                None => (l.to_string(), None),
            })
            .collect()
    };
    let (a, b) = (split(ours), split(theirs));
    assert_eq!(a.len(), b.len(), "promlake:\n{ours}\nprometheus:\n{theirs}");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0, "promlake:\n{ours}\nprometheus:\n{theirs}");
        assert!(x.1.zip(y.1).is_none_or(|(x, y)| close(x, y)), "promlake:\n{ours}\nprometheus:\n{theirs}");
    }
}

#[test]
fn api_shapes_and_errors() {
    let lake = start_promlake();
    let prom = start_prometheus();
    let q = |p: &str| format!("/api/v1/query?query={}&time=1700007230.5", enc(p));

    // Bodies byte-identical to Prometheus's: envelopes, timestamps, value strings, label order,
    // and Prometheus's error messages for bad parameters.
    for path in [
        q("http_requests_total{code=\"500\",instance=\"a:9090\"}"),
        q("node_temperature_celsius[3m]"),
        q("scalar(sum(node_temperature_celsius))"),
        q("\"a<b>\""),
        q("1e-7"),
        q("vector(1e-7)"),
        q("vector(1.5e21)"),
        q("1/0"),
        format!(
            "/api/v1/query_range?query={}&start=1700003600&end=1700003900&step=60",
            enc("sum by (job) (request_duration_seconds_count)")
        ),
        format!("/api/v1/series?match[]={}&start=1700000000&end=1700014400", enc("node_temperature_celsius")),
        format!("/api/v1/series?match[]={}", enc("{job=\"web\"}")),
        "/api/v1/labels".to_string(),
        format!("/api/v1/labels?match[]={}", enc("node_temperature_celsius")),
        "/api/v1/label/le/values".to_string(),
        format!("/api/v1/label/job/values?match[]={}", enc("request_duration_seconds_sum")),
        "/api/v1/label/nope/values".to_string(),
        "/api/v1/query_range?query=up&start=1700000100&end=1700000000&step=15".to_string(),
        "/api/v1/query_range?query=up&start=0&end=1000000&step=1".to_string(),
        "/api/v1/query_range?query=up&start=0&end=100&step=0".to_string(),
        "/api/v1/query_range?query=up&start=x&end=100&step=1".to_string(),
        "/api/v1/query_range?query=up&start=0&end=100&step=1x".to_string(),
        "/api/v1/query?query=up&time=abc".to_string(),
        "/api/v1/query?query=up&timeout=x".to_string(),
        "/api/v1/series".to_string(),
        "/api/v1/label/1abc/values".to_string(),
    ] {
        let (ours, theirs) = (lake.get(&path), prom.get(&path));
        assert_eq!(ours, theirs, "GET {path}");
    }

    // A bad query: 400 bad_data on parameter "query" (parser messages differ from Go's).
    for path in
        ["/api/v1/query?query=sum(", "/api/v1/query", "/api/v1/query_range?query=&start=0&end=1&step=1"]
    {
        let (code, body) = lake.get(path);
        assert_eq!(code, 400, "{path}: {body}");
        let j: Json = serde_json::from_str(&body).unwrap();
        assert_eq!(j["status"], "error");
        assert_eq!(j["errorType"], "bad_data");
        assert!(j["error"].as_str().unwrap().starts_with("invalid parameter \"query\": "), "{body}");
        assert_eq!(prom.get(path).0, 400, "{path}");
    }
    // An execution error: 422.
    let path = q("label_replace(node_temperature_celsius, \"sensor\", \"x\", \"\", \"\")");
    let (code, body) = lake.get(&path);
    assert_eq!((code, prom.get(&path).0), (422, 422), "{body}");
    assert!(body.starts_with(r#"{"status":"error","errorType":"execution","error":"#), "{body}");

    // POST form equals GET.
    let form = format!("query={}&time=1700003600", enc("sum by (job) (http_requests_total)"));
    let (code, posted) = lake.post_form("/api/v1/query", &form);
    assert_eq!(code, 200);
    assert_eq!(posted, lake.get(&format!("/api/v1/query?{form}")).1);
    assert_eq!(posted, prom.post_form("/api/v1/query", &form).1);
    // Thanos's extra parameters are accepted.
    let thanos = format!(
        "{form}&dedup=true&partial_response=false&max_source_resolution=auto&replicaLabels[]=replica"
    );
    assert_eq!(lake.get(&format!("/api/v1/query?{thanos}")).1, posted);

    // No exemplars are stored: the same empty answer as Prometheus for these series, and the
    // same parameter checks.
    let exemplars = format!(
        "/api/v1/query_exemplars?query={}&start=1700000000&end=1700003600",
        enc("http_requests_total")
    );
    assert_eq!(lake.get(&exemplars), (200, r#"{"status":"success","data":[]}"#.to_string()));
    assert_eq!(lake.get(&exemplars), prom.get(&exemplars));
    let bad = format!("/api/v1/query_exemplars?query={}&start=1700000000&end=1700003600", enc("sum("));
    let (code, body) = lake.get(&bad);
    assert_eq!((code, prom.get(&bad).0), (400, 400), "{body}");
    assert!(body.contains(r#""errorType":"bad_data""#), "{body}");

    assert_eq!(lake.get("/api/v1/metadata"), (200, r#"{"status":"success","data":{}}"#.to_string()));
    let info = lake.json("/api/v1/status/buildinfo");
    assert_eq!(info["status"], "success");
    assert_eq!(info["data"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(lake.get("/-/healthy").0, 200);
    let (code, metrics) = lake.get("/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("promlake_http_requests_total{handler=\"/api/v1/query\",code=\"400\"} 4"),
        "{metrics}"
    );
    assert!(metrics.contains("promlake_query_duration_seconds_count "), "{metrics}");
}

/// A query result reduced to comparable parts: result type, and per label set its points.
pub(crate) type Normalized = (String, BTreeMap<String, Vec<(i64, f64)>>);

pub(crate) fn normalize(body: &str) -> Normalized {
    let j: Json = serde_json::from_str(body).unwrap();
    assert_eq!(j["status"], "success", "{body}");
    let kind = j["data"]["resultType"].as_str().unwrap().to_string();
    let result = &j["data"]["result"];
    let point = |p: &Json| -> (i64, f64) {
        let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
        let v = match p[1].as_str().unwrap() {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            s => s.parse().unwrap(),
        };
        (t, v)
    };
    let mut series = BTreeMap::new();
    match kind.as_str() {
        "scalar" => {
            series.insert(String::new(), vec![point(result)]);
        }
        "string" => {
            series.insert(result[1].to_string(), vec![]);
        }
        _ => {
            for s in result.as_array().unwrap() {
                let key = s["metric"].to_string();
                let points = match s.get("values") {
                    Some(vs) => vs.as_array().unwrap().iter().map(point).collect(),
                    None => vec![point(&s["value"])],
                };
                assert!(series.insert(key, points).is_none(), "duplicate series in {body}");
            }
        }
    }
    (kind, series)
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

pub(crate) fn assert_same_result(query: &str, path: &str, ours: &Normalized, theirs: &Normalized) {
    assert_eq!(ours.0, theirs.0, "{query}: result type ({path})");
    assert_eq!(
        ours.1.keys().collect::<Vec<_>>(),
        theirs.1.keys().collect::<Vec<_>>(),
        "{query}: series ({path})"
    );
    for (k, want) in &theirs.1 {
        let got = &ours.1[k];
        assert_eq!(
            got.iter().map(|p| p.0).collect::<Vec<_>>(),
            want.iter().map(|p| p.0).collect::<Vec<_>>(),
            "{query}: timestamps of {k} ({path})"
        );
        for (g, w) in got.iter().zip(want) {
            assert!(
                close(g.1, w.1),
                "{query}: {k} at {}: promlake {} != prometheus {} ({path})",
                g.0,
                g.1,
                w.1
            );
        }
    }
}

/// Queries both engines must answer identically, as instant and (vector/scalar ones) range
/// queries.
const COMPARED: &[&str] = &[
    "http_requests_total",
    "http_requests_total{code=\"500\",method=~\"G.*\"}",
    "rate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    "avg by (instance) (node_temperature_celsius)",
    "topk(2, node_temperature_celsius)",
    "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, sum by (job, le) (rate(request_duration_seconds_bucket[10m])))",
    "avg_over_time(node_temperature_celsius[10m])",
    "max_over_time(node_temperature_celsius[30m]) - min_over_time(node_temperature_celsius[30m])",
    "quantile_over_time(0.75, node_temperature_celsius[15m])",
    "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
    "node_temperature_celsius * on(instance) group_left() sum by (instance) (rate(http_requests_total[5m]))",
    "max_over_time(rate(http_requests_total[5m])[30m:1m])",
    "http_requests_total offset 10m",
    "rate(http_requests_total[5m] offset 1h)",
    "http_requests_total @ 1700007200",
    "sum(rate(http_requests_total[5m] @ end()))",
    "node_temperature_celsius > bool 50",
    "count by (code) (http_requests_total > 100)",
    "deriv(node_temperature_celsius[15m])",
    "label_replace(node_temperature_celsius, \"host\", \"$1\", \"instance\", \"(.*):.*\")",
    "scalar(sum(node_temperature_celsius)) * 2",
    "time() - timestamp(node_temperature_celsius)",
    "absent(nonexistent_metric)",
    "sort_desc(sum by (method) (increase(http_requests_total[1h])))",
];

/// Instant-only queries (range vectors).
const COMPARED_INSTANT_ONLY: &[&str] =
    &["node_temperature_celsius[3m]", "rate(http_requests_total[5m])[10m:2m]"];

#[test]
fn same_results_as_prometheus() {
    let lake = start_promlake();
    let prom = start_prometheus();
    let mut checked = 0;
    let mut compare = |query: &str, path: String| {
        let (oc, ob) = lake.get(&path);
        let (tc, tb) = prom.get(&path);
        assert_eq!(oc, tc, "{query}: status ({path}): promlake {ob} / prometheus {tb}");
        assert_eq!(oc, 200, "{query}: {ob}");
        assert_same_result(query, &path, &normalize(&ob), &normalize(&tb));
        checked += 1;
    };
    for &query in COMPARED.iter().chain(COMPARED_INSTANT_ONLY) {
        // Evaluation times never coincide with sample times (every 60s from 1700000000):
        // Prometheus 2.42's range windows and lookback are closed on the left, 3.x's (ours)
        // open, so a sample exactly at the window start would count in one and not the other.
        for time in ["1700000030", "1700003615", "1700007230.5", "1700014500"] {
            compare(query, format!("/api/v1/query?query={}&time={time}", enc(query)));
        }
    }
    for &query in COMPARED {
        for (start, end, step) in [("1700000015", "1700014410", "60"), ("1700000123.5", "1700015000", "150s")]
        {
            compare(
                query,
                format!("/api/v1/query_range?query={}&start={start}&end={end}&step={step}", enc(query)),
            );
        }
    }
    assert_eq!(checked, (COMPARED.len() + COMPARED_INSTANT_ONLY.len()) * 4 + COMPARED.len() * 2);
}

/// Runs scripts/promql-fuzz.py (`n` random expressions, a fixed seed) against both servers and
/// checks that they agree, apart from the 2.x/3.x differences the script lists.
fn fuzz(lake: &Server, prom: &Server, extra: &[&str], n: usize) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/promql-fuzz.py");
    let url = |s: &Server| format!("http://127.0.0.1:{}", s.port);
    let out = Command::new(crate::python::python())
        .args([script, "--promlake", &url(lake), "--prometheus", &url(prom)])
        .args(["-n", &n.to_string(), "--seed", "11", "--depth", "4"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("{n} expressions, 0 disagreements")), "{stdout}");
}

/// Random expressions (every function family, aggregation, operator, vector matching and
/// modifier that 2.42 has, and the series/labels API) answer as Prometheus 2.42 does, over the
/// tiny blocks.
#[test]
fn random_expressions_agree_with_prometheus() {
    fuzz(&start_promlake(), &start_prometheus(), &[], 1000);
}

/// The same over six hours written by promtool from the script's OpenMetrics data: counter
/// resets, gaps longer than the lookback, NaN and ±Inf, timestamps off the second.
#[test]
fn random_expressions_agree_with_prometheus_on_gappy_data() {
    let dir = tempfile::tempdir().unwrap();
    let (om, blocks) = (dir.path().join("data.om"), dir.path().join("blocks"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/promql-fuzz.py");
    let out = Command::new(crate::python::python())
        .args([script, "--promlake", "-", "--prometheus", "-", "--write-data", om.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    promtool(&["tsdb", "create-blocks-from", "openmetrics", om.to_str().unwrap(), blocks.to_str().unwrap()]);
    fuzz(&start_promlake_on(&blocks), &start_prometheus_on(&blocks), &["--span", "21600"], 1000);
}
