//! `promlake tools bucket web`: the bucket page alone (`/blocks`, `/api/v1/blocks`), as
//! Thanos's `tools bucket web` serves it, with `/metrics`, `/-/healthy` and `/-/ready`.
//!
//! Wiring only: the page and the API are `crate::http::ui`; blocks are listed from the bucket
//! on each request.

use crate::flags::BucketArgs;
use crate::http::Metrics;
use crate::http::ui::{UiState, bucket_web_router};
use crate::probes::{Readiness, router as probes, shutdown_signal};
use anyhow::{Context, Result};
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use clap::Args;
use std::process::ExitCode;
use std::sync::Arc;

/// Flags of `promlake tools bucket web`.
#[derive(Debug, Args)]
pub struct WebArgs {
    /// Listen address (host:port) of the HTTP server: the bucket page (/blocks), /api/v1/blocks, /metrics, /-/healthy and /-/ready.
    #[arg(long = "http-address", env = "PROMLAKE_HTTP_ADDRESS", default_value = "127.0.0.1:10902")]
    http_address: String,
    /// External label whose value names a block's stream in the page (Thanos's --label); answered as `label` in /api/v1/blocks.
    #[arg(long = "label", default_value = "")]
    label: String,
    #[command(flatten)]
    bucket: BucketArgs,
}

impl WebArgs {
    /// Serves until interrupted (SIGINT/SIGTERM).
    pub async fn run(self) -> Result<ExitCode> {
        let bucket = self.bucket.open()?;
        // Fail early on a bucket we cannot list, rather than on the first page view.
        let n = bucket
            .list_blocks()
            .await
            .with_context(|| format!("listing the blocks of {}", bucket.url()))?
            .len();
        let listener = tokio::net::TcpListener::bind(&self.http_address)
            .await
            .with_context(|| format!("listening on --http-address {}", self.http_address))?;
        tracing::info!(http = %listener.local_addr()?, bucket = bucket.url(), blocks = n, "serving the bucket web UI");
        let metrics = Arc::new(Metrics::default());
        let ready = Readiness::default();
        ready.set_ready();
        let render = {
            let m = metrics.clone();
            // Only the request counters: no PromQL runs here.
            move || {
                m.render()
                    .lines()
                    .filter(|l| l.contains("promlake_http_requests_total"))
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
            }
        };
        let app = bucket_web_router(UiState::for_bucket(bucket, self.label))
            .merge(probes(ready, render))
            .layer(axum::middleware::from_fn(move |req: Request, next: Next| {
                let metrics = metrics.clone();
                async move {
                    let handler = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
                    let resp = next.run(req).await;
                    metrics.request(handler.as_deref().unwrap_or("other"), resp.status().as_u16());
                    resp
                }
            }));
        axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("HTTP server")?;
        Ok(ExitCode::SUCCESS)
    }
}
