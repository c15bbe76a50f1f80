//! The compactor's HTTP endpoints: `/metrics` (pass counters, Thanos-like names with the
//! `promlake_compact_` prefix), `/-/healthy` and `/-/ready`.

use crate::http::metrics::write_metric;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use promlake_engine::compact::PassReport;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters over all passes.
#[derive(Debug, Default)]
pub struct CompactMetrics {
    ready: AtomicBool,
    iterations: AtomicU64,
    failures: AtomicU64,
    compactions: AtomicU64,
    downsamples: AtomicU64,
    marked: AtomicU64,
    retention_marked: AtomicU64,
    no_compact_marked: AtomicU64,
    deleted: AtomicU64,
    partial_deleted: AtomicU64,
    rows: AtomicU64,
    group_errors: AtomicU64,
    last_success_ms: AtomicU64,
}

impl CompactMetrics {
    /// From now on /-/ready answers 200.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Adds a finished pass.
    pub fn record(&self, r: &PassReport) {
        self.iterations.fetch_add(1, Ordering::Relaxed);
        self.compactions.fetch_add(r.compactions, Ordering::Relaxed);
        self.downsamples.fetch_add(r.downsamples, Ordering::Relaxed);
        self.marked.fetch_add(r.marked_for_deletion, Ordering::Relaxed);
        self.retention_marked.fetch_add(r.retention_marked, Ordering::Relaxed);
        self.no_compact_marked.fetch_add(r.no_compact_marked, Ordering::Relaxed);
        self.deleted.fetch_add(r.deleted, Ordering::Relaxed);
        self.partial_deleted.fetch_add(r.partial_deleted, Ordering::Relaxed);
        self.rows.fetch_add(r.rows_processed, Ordering::Relaxed);
        self.group_errors.fetch_add(r.errors.len() as u64, Ordering::Relaxed);
        if r.errors.is_empty() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            self.last_success_ms.store(now, Ordering::Relaxed);
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a pass that failed as a whole.
    pub fn failed(&self) {
        self.iterations.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters: [(&str, &str, &AtomicU64); 11] = [
            ("promlake_compact_iterations_total", "Compactor passes run.", &self.iterations),
            (
                "promlake_compact_iterations_failed_total",
                "Passes that failed or had failing groups.",
                &self.failures,
            ),
            (
                "promlake_compact_group_compactions_total",
                "Compactions run (one new block each).",
                &self.compactions,
            ),
            ("promlake_compact_downsample_total", "Downsampled blocks written.", &self.downsamples),
            ("promlake_compact_blocks_marked_total", "Deletion marks written.", &self.marked),
            (
                "promlake_compact_retention_blocks_marked_total",
                "Deletion marks written by retention.",
                &self.retention_marked,
            ),
            (
                "promlake_compact_no_compact_marked_total",
                "No-compact marks written.",
                &self.no_compact_marked,
            ),
            (
                "promlake_compact_blocks_cleaned_total",
                "Marked blocks deleted after the delete delay.",
                &self.deleted,
            ),
            (
                "promlake_compact_aborted_partial_uploads_deleted_total",
                "Aborted uploads removed.",
                &self.partial_deleted,
            ),
            (
                "promlake_compact_processed_rows_total",
                "Input samples (or windows) compacted or downsampled.",
                &self.rows,
            ),
            (
                "promlake_compact_group_errors_total",
                "Groups or blocks that failed in a pass.",
                &self.group_errors,
            ),
        ];
        for (name, help, v) in counters {
            write_metric(&mut out, name, "counter", help, v.load(Ordering::Relaxed));
        }
        let last = self.last_success_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        write_metric(
            &mut out,
            "promlake_compact_last_successful_run_timestamp_seconds",
            "gauge",
            "When the last pass without errors finished.",
            last,
        );
        out
    }
}

/// Serves the endpoints until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<CompactMetrics>) {
    let app = Router::new()
        .route("/-/healthy", get(|| async { "OK" }))
        .route("/-/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .with_state(metrics);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

async fn ready(State(m): State<Arc<CompactMetrics>>) -> Response {
    if m.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "OK").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response()
    }
}

async fn metrics_text(State(m): State<Arc<CompactMetrics>>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], m.render())
        .into_response()
}
