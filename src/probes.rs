//! The endpoints every promlake server answers on `--http-address` besides its own API:
//! `/-/healthy` (200 while the process runs), `/-/ready` (200 once [`Readiness::set_ready`]
//! was called, 503 before) and `/metrics` (the Prometheus text a render callback returns).

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the server has finished loading; clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the server ready.
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`Self::set_ready`] was called.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A router with `/-/healthy`, `/-/ready` and `/metrics`.
pub fn router(ready: Readiness, metrics: impl Fn() -> String + Clone + Send + Sync + 'static) -> Router {
    Router::new()
        .route("/-/healthy", get(|| async { "OK" }))
        .route(
            "/-/ready",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.is_ready() {
                        (StatusCode::OK, "OK")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready: still loading")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let text = metrics();
                async move {
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
                        .into_response()
                }
            }),
        )
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
