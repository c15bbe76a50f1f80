//! HTTP endpoints of the receiver: Prometheus remote write 1.0 at `/api/v1/receive` and
//! `/api/v1/write` (snappy block + protobuf `prometheus.WriteRequest`), and `/metrics`,
//! `/-/healthy`, `/-/ready`.
//!
//! Answers follow Thanos receive: 200 stored; 400 malformed body or invalid labels (series with
//! valid labels are still stored); 409 out-of-order, duplicate or out-of-bounds samples (the rest
//! is stored); 413 over a request limit; 415 remote write 2.0; 429 over the head series limit
//! (nothing stored); 503 not ready; 500 WAL failures. Error bodies are plain text, as Thanos and
//! Prometheus write them, so Prometheus logs the reason.

use super::Receiver;
use super::head::AppendResult;
use crate::Error;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use promlake_proto::prometheus::WriteRequest;
use std::sync::Arc;

/// Largest request body, compressed or decompressed, accepted without a configured limit.
pub const MAX_BODY_BYTES: usize = 256 << 20;

/// Renders more `/metrics` text.
pub type MetricsFn = Arc<dyn Fn() -> String + Send + Sync>;

/// State of the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    /// The receiver.
    pub receiver: Arc<Receiver>,
    /// Header naming the tenant (`--receive.tenant-header`).
    pub tenant_header: String,
    /// Hashring routing, when `--receive.hashrings-file` is set.
    pub router: Option<Arc<super::forward::Router>>,
    /// More metrics appended to `/metrics` (e.g. the StoreAPI server's).
    pub extra_metrics: Option<MetricsFn>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState").field("tenant_header", &self.tenant_header).finish_non_exhaustive()
    }
}

/// The remote-write routes (`/api/v1/receive`, `/api/v1/write`) plus the probes and metrics.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/api/v1/receive", post(receive))
        .route("/api/v1/write", post(receive))
        .merge(ops_router())
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::disable())
}

/// `/metrics`, `/-/healthy`, `/-/ready` (for `--http-address`).
pub fn ops_router() -> Router<HttpState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
}

/// [`ops_router`] with its state applied.
pub fn ops_service(state: HttpState) -> Router {
    ops_router().with_state(state)
}

async fn metrics(State(st): State<HttpState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], st.receiver.render_metrics())
        .into_response()
}

async fn healthy() -> &'static str {
    "promlake receive is Healthy.\n"
}

async fn ready(State(st): State<HttpState>) -> Response {
    if st.receiver.is_ready() {
        (StatusCode::OK, "promlake receive is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "promlake receive is not ready: replaying the WAL.\n")
            .into_response()
    }
}

fn text(code: u16, msg: impl Into<String>) -> Response {
    let mut msg = msg.into();
    msg.push('\n');
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg).into_response()
}

fn error(e: &Error) -> Response {
    text(e.http_status(), e.to_string())
}

/// A tenant name must be usable as a label value and a directory-safe identifier.
fn valid_tenant(t: &str) -> bool {
    !t.is_empty() && t.len() <= 255 && t != "." && t != ".." && !t.contains(['/', '\\', '\0'])
}

async fn receive(State(st): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let resp = handle(&st, &headers, body).await;
    st.receiver.metrics().request(resp.status().as_u16());
    resp
}

async fn handle(st: &HttpState, headers: &HeaderMap, body: Body) -> Response {
    let rx = &st.receiver;
    let cfg = rx.config();
    let tenant = match headers.get(st.tenant_header.as_str()) {
        None => cfg.default_tenant.clone(),
        Some(v) => match v.to_str() {
            Ok(t) if valid_tenant(t) => t.to_string(),
            _ => return text(400, format!("invalid tenant in header {}: {:?}", st.tenant_header, v)),
        },
    };
    if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
        && ct.contains("io.prometheus.write.v2.Request")
    {
        return text(
            415,
            "remote write 2.0 (io.prometheus.write.v2.Request) is not supported; send remote write 1.0",
        );
    }
    let limit = cfg.limits.for_tenant(&tenant).request.size_bytes_limit.filter(|l| *l > 0);
    let max = limit.map_or(MAX_BODY_BYTES, |l| usize::try_from(l).unwrap_or(usize::MAX).min(MAX_BODY_BYTES));
    let too_large = || {
        text(
            413,
            match limit {
                Some(l) => format!("request body is larger than the limit of {l} bytes (size_bytes_limit)"),
                None => format!("request body is larger than {MAX_BODY_BYTES} bytes"),
            },
        )
    };
    if let Some(len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && len > max as u64
    {
        return too_large();
    }
    let body: Bytes = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    let raw = match snap::raw::decompress_len(&body) {
        Ok(n) if n > MAX_BODY_BYTES => {
            return text(
                413,
                format!("decompressed request of {n} bytes is larger than {MAX_BODY_BYTES} bytes"),
            );
        }
        Ok(_) => match snap::raw::Decoder::new().decompress_vec(&body) {
            Ok(r) => r,
            Err(e) => {
                return text(400, format!("snappy decode error (the body must be snappy block format): {e}"));
            }
        },
        Err(e) => {
            return text(400, format!("snappy decode error (the body must be snappy block format): {e}"));
        }
    };
    let req: WriteRequest = match prost::Message::decode(raw.as_slice()) {
        Ok(r) => r,
        Err(e) => return text(400, format!("decoding the protobuf prometheus.WriteRequest: {e}")),
    };
    if let Some(router) = &st.router {
        return match router.write(&tenant, &raw, &req).await {
            (200, _) => StatusCode::OK.into_response(),
            (code, msg) => text(code, msg),
        };
    }
    match rx.write(&tenant, &raw, &req).await {
        Ok(res) => outcome(&tenant, &res),
        Err(e) => {
            if e.http_status() >= 500 {
                tracing::warn!(%tenant, error = %e, "remote write failed");
            }
            error(&e)
        }
    }
}

fn outcome(tenant: &str, r: &AppendResult) -> Response {
    match r.status(tenant) {
        (200, _) => StatusCode::OK.into_response(),
        (code, msg) => text(code, msg),
    }
}
