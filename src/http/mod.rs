//! The HTTP server of `promlake query`: Prometheus's HTTP API (`/api/v1/...`, see [`api`]),
//! `/metrics` with our own counters, the `/-/healthy` and `/-/ready` probes, and the web UI
//! (`/graph`, `/stores`, `/blocks` with `/api/v1/stores` and `/api/v1/blocks`, see [`ui`]).
//!
//! ```text
//!  request ──► router ──► api handler ──► params (time, duration) ──► Engine over the SeriesSource
//!                 │                                                          │
//!                 └── metrics middleware (requests by handler and code)      └──► json (Prometheus bytes)
//! ```
//!
//! The server starts before the sources are loaded: [`ApiState::set_view`] makes it ready.
//! Each request reads through its own view of the querier's [`Fanout`]: the request's
//! partial-response strategy (`partial_response`), a warnings sink answered in the envelope's
//! `warnings`, and, with `dedup` on (the default), replica deduplication by `replicaLabels[]` or
//! the `--query.replica-label` flags ([`view`]).

mod api;
mod blocks;
mod error;
mod json;
pub mod metrics;
mod params;
mod sql;
mod stores;
pub mod ui;
mod view;

pub use metrics::Metrics;
pub use params::parse_prometheus_duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use promlake_engine::Bucket;
use promlake_engine::dedup::DedupFunc;
use promlake_engine::fanout::Fanout;
use promlake_engine::fanout::endpoints::EndpointSet;
use promlake_engine::promql::QueryOptions;
use std::sync::{Arc, OnceLock};

/// Renders more metrics for `/metrics` (another component's counters).
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    fanout: Arc<OnceLock<Fanout>>,
    ui: ui::UiState,
    opts: QueryOptions,
    replica_labels: Vec<String>,
    dedup_func: DedupFunc,
    metrics: Arc<Metrics>,
    more_metrics: Arc<std::sync::Mutex<Vec<MetricsSource>>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("fanout", &self.fanout)
            .field("opts", &self.opts)
            .field("replica_labels", &self.replica_labels)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// A state with no sources yet (not ready), these query defaults and limits, the replica
    /// labels deduplication uses when a request names none, and how it merges replicas.
    pub fn new(opts: QueryOptions, replica_labels: Vec<String>, dedup_func: DedupFunc) -> Self {
        let ui = ui::UiState::default();
        ApiState {
            fanout: ui.fanout.clone(),
            ui,
            opts,
            replica_labels,
            dedup_func,
            metrics: Arc::new(Metrics::default()),
            more_metrics: Default::default(),
        }
    }

    /// Adds metrics rendered after our own on `/metrics`.
    pub fn add_metrics(&self, source: MetricsSource) {
        self.more_metrics.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(source);
    }

    /// Sets the merged view queries run against; from now on the server is ready. Later calls
    /// are ignored.
    pub fn set_view(&self, fanout: Fanout) {
        let _ = self.fanout.set(fanout);
    }

    /// Shows these remote endpoints' health on `/stores` and `/api/v1/stores`. Later calls are
    /// ignored.
    pub fn set_endpoints(&self, endpoints: Arc<EndpointSet>) {
        let _ = self.ui.endpoints.set(endpoints);
    }

    /// Lists this bucket's blocks on `/blocks` and `/api/v1/blocks`. Later calls are ignored.
    pub fn set_bucket(&self, bucket: Bucket) {
        let _ = self.ui.bucket.set(bucket);
    }

    fn fanout(&self) -> Option<&Fanout> {
        self.fanout.get()
    }
}

/// The router of every endpoint, the web UI included.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(ui::router(state.ui.clone()))
        .route("/api/v1/query", get(api::query).post(api::query))
        .route("/api/v1/query_range", get(api::query_range).post(api::query_range))
        .route("/api/v1/series", get(api::series).post(api::series))
        .route("/api/v1/labels", get(api::labels).post(api::labels))
        .route("/api/v1/label/{name}/values", get(api::label_values))
        .route("/api/v1/query_exemplars", get(api::query_exemplars).post(api::query_exemplars))
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
    if state.fanout().is_some() {
        (StatusCode::OK, "OK").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "the bucket is not loaded yet").into_response()
    }
}

async fn metrics_text(State(state): State<ApiState>) -> Response {
    let mut text = state.metrics.render();
    for more in state.more_metrics.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
        text.push_str(&more());
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// Counts requests by route pattern (bounded: unmatched paths count as `other`) and status.
async fn count_requests(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let handler = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let resp = next.run(req).await;
    state.metrics.request(handler.as_deref().unwrap_or("other"), resp.status().as_u16());
    resp
}
