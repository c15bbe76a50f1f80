//! The HTTP server of `promlake query`: Prometheus's HTTP API (`/api/v1/...`, see [`api`]),
//! `/metrics` with our own counters, and the `/-/healthy` and `/-/ready` probes.
//!
//! ```text
//!  request ──► router ──► api handler ──► params (time, duration) ──► Engine over the SeriesSource
//!                 │                                                          │
//!                 └── metrics middleware (requests by handler and code)      └──► json (Prometheus bytes)
//! ```
//!
//! The server starts before the source is loaded: [`ApiState::set_source`] makes it ready.

mod api;
mod error;
mod json;
mod metrics;
mod params;
mod sql;

pub use metrics::Metrics;
pub use params::parse_prometheus_duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use promlake_engine::SeriesSource;
use promlake_engine::promql::QueryOptions;
use std::sync::{Arc, OnceLock};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct ApiState {
    source: Arc<OnceLock<Arc<dyn SeriesSource>>>,
    opts: QueryOptions,
    metrics: Arc<Metrics>,
}

impl ApiState {
    /// A state with no source yet (not ready) and these query defaults and limits.
    pub fn new(opts: QueryOptions) -> Self {
        ApiState { source: Arc::new(OnceLock::new()), opts, metrics: Arc::new(Metrics::default()) }
    }

    /// Sets the source queries run against; from now on the server is ready. Later calls are
    /// ignored.
    pub fn set_source(&self, source: Arc<dyn SeriesSource>) {
        let _ = self.source.set(source);
    }

    fn source(&self) -> Option<&Arc<dyn SeriesSource>> {
        self.source.get()
    }
}

/// The router of every endpoint.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/query", get(api::query).post(api::query))
        .route("/api/v1/query_range", get(api::query_range).post(api::query_range))
        .route("/api/v1/series", get(api::series).post(api::series))
        .route("/api/v1/labels", get(api::labels).post(api::labels))
        .route("/api/v1/label/{name}/values", get(api::label_values))
        .route("/api/v1/metadata", get(api::metadata))
        .route("/api/v1/status/buildinfo", get(api::buildinfo))
        .route("/api/v1/sql", get(sql::query).post(sql::query))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_requests))
        .with_state(state)
}

async fn healthy() -> &'static str {
    "OK"
}

async fn ready(State(state): State<ApiState>) -> Response {
    if state.source().is_some() {
        (StatusCode::OK, "OK").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "the bucket is not loaded yet").into_response()
    }
}

async fn metrics_text(State(state): State<ApiState>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
        .into_response()
}

/// Counts requests by route pattern (bounded: unmatched paths count as `other`) and status.
async fn count_requests(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let handler = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let resp = next.run(req).await;
    state.metrics.request(handler.as_deref().unwrap_or("other"), resp.status().as_u16());
    resp
}
