//! `promlake query`: Prometheus's HTTP API over every block of the bucket.
//!
//! Wiring only: validate the flags, bind the HTTP listener, load the bucket in the background
//! (the server answers `/-/ready` with 200 once it is loaded) and refresh it every
//! `--sync-block-duration`. The API itself lives in `crate::http`.

use crate::flags::BucketArgs;
use crate::http::{ApiState, router};
use anyhow::{Context, Result, bail};
use clap::Args;
use promlake_engine::catalog::BucketSource;
use promlake_engine::promql::QueryOptions;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Flags of `promlake query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Listen address (host:port) of the HTTP server: the Prometheus HTTP API, /metrics, /-/healthy and /-/ready.
    #[arg(long = "http-address", env = "PROMLAKE_HTTP_ADDRESS", default_value = "127.0.0.1:10902")]
    http_address: String,
    #[command(flatten)]
    bucket: BucketArgs,
    /// How far back an instant selector looks for a sample (a duration such as 5m, 1h30m, 30s).
    #[arg(long = "query.lookback-delta", env = "PROMLAKE_QUERY_LOOKBACK_DELTA", default_value = "5m", value_parser = duration)]
    lookback_delta: Duration,
    /// Longest a query may run; a request's `timeout` parameter can only shorten it.
    #[arg(long = "query.timeout", env = "PROMLAKE_QUERY_TIMEOUT", default_value = "2m", value_parser = duration)]
    timeout: Duration,
    /// Most samples a single query may hold in memory at once.
    #[arg(long = "query.max-samples", env = "PROMLAKE_QUERY_MAX_SAMPLES", default_value_t = 50_000_000)]
    max_samples: usize,
    /// How often to re-list the bucket for new and deleted blocks (0s: never).
    #[arg(long = "sync-block-duration", env = "PROMLAKE_SYNC_BLOCK_DURATION", default_value = "3m", value_parser = duration)]
    sync_interval: Duration,
}

/// Flag values are Prometheus durations.
fn duration(s: &str) -> Result<Duration, String> {
    crate::http::parse_prometheus_duration(s)
}

impl QueryArgs {
    /// Serves until interrupted (SIGINT/SIGTERM), or fails when the bucket cannot be loaded.
    pub async fn run(self) -> Result<ExitCode> {
        if self.lookback_delta.is_zero() {
            bail!("--query.lookback-delta must be positive");
        }
        if self.timeout.is_zero() {
            bail!("--query.timeout must be positive");
        }
        let bucket = self.bucket.open()?;
        let opts = QueryOptions {
            lookback_delta_ms: i64::try_from(self.lookback_delta.as_millis()).unwrap_or(i64::MAX),
            max_samples: self.max_samples,
            timeout: self.timeout,
        };
        let sql = promlake_sql::SqlSession::new(
            bucket.clone(),
            promlake_sql::SqlOptions { promql: opts.clone(), ..Default::default() },
        )?;
        let state = ApiState::new(opts);
        let listener = tokio::net::TcpListener::bind(&self.http_address)
            .await
            .with_context(|| format!("listening on --http-address {}", self.http_address))?;
        tracing::info!(address = %listener.local_addr()?, "serving the Prometheus HTTP API");

        let loader = {
            let state = state.clone();
            let sync = self.sync_interval;
            async move {
                let source = Arc::new(BucketSource::open(bucket).await.context("loading the bucket")?);
                tracing::info!(blocks = source.block_ids().await.len(), "bucket loaded; ready");
                state.set_source(source.clone());
                if sync.is_zero() {
                    std::future::pending::<()>().await;
                }
                let mut tick = tokio::time::interval(sync);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    match source.refresh().await {
                        Ok(()) => tracing::debug!(blocks = source.block_ids().await.len(), "bucket synced"),
                        Err(e) => tracing::warn!(error = %e, "bucket sync failed; keeping the known blocks"),
                    }
                }
                #[expect(unreachable_code, reason = "the type of the async block")]
                Ok::<(), anyhow::Error>(())
            }
        };
        let server = axum::serve(listener, router(state).layer(axum::Extension(sql)))
            .with_graceful_shutdown(shutdown_signal());
        tokio::select! {
            r = server => r.context("HTTP server")?,
            r = loader => r?,
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
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
