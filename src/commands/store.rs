//! `promlake store`: Thanos's StoreAPI (`thanos.Store`, `thanos.info.Info`) over every block of
//! the bucket, Parquet and native, raw and downsampled: a Series request whose
//! `max_resolution_window` allows 5m or 1h data gets the coarsest blocks allowed as aggregate
//! chunks (gaps filled from finer blocks), as Thanos's store gateway does.
//!
//! Wiring only: validate the flags into a config, serve the probes and `/metrics` on
//! `--http-address` at once, load the bucket (blocks in the `--min-time`/`--max-time`
//! partition, without those marked for deletion longer than `--ignore-deletion-marks-delay`),
//! then serve gRPC on `--grpc-address` and report ready; re-sync every `--sync-block-duration`.
//! The server itself is `promlake_engine::storeapi`.

use crate::flags::{BucketArgs, SamplesCacheArgs};
use crate::probes::{Readiness, shutdown_signal};
use anyhow::{Context, Result, bail};
use clap::Args;
use promlake_engine::catalog::BucketSourceOptions;
use promlake_engine::downsampled::{BucketView, PieceSource};
use promlake_engine::storeapi::{self, Component, StoreLimits, StoreMetrics, StoreServerOptions};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Flags of `promlake store`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Listen address (host:port) of the gRPC server: thanos.Store and thanos.info.Info.
    #[arg(long = "grpc-address", env = "PROMLAKE_GRPC_ADDRESS", default_value = "127.0.0.1:10901")]
    grpc_address: String,
    /// Listen address (host:port) of the HTTP server: /metrics, /-/healthy and /-/ready.
    #[arg(long = "http-address", env = "PROMLAKE_HTTP_ADDRESS", default_value = "127.0.0.1:10902")]
    http_address: String,
    #[command(flatten)]
    bucket: BucketArgs,
    #[command(flatten)]
    samples_cache: SamplesCacheArgs,
    /// How often to re-list the bucket for new, deleted and newly marked blocks (0s: never).
    #[arg(long = "sync-block-duration", env = "PROMLAKE_SYNC_BLOCK_DURATION", default_value = "15m", value_parser = duration)]
    sync_interval: Duration,
    /// Stop serving a block once its deletion-mark.json is older than this (0s: as soon as it is marked).
    #[arg(long = "ignore-deletion-marks-delay", env = "PROMLAKE_IGNORE_DELETION_MARKS_DELAY", default_value = "24h", value_parser = duration)]
    ignore_deletion_marks_delay: Duration,
    /// Serve only data after this time: RFC3339 (2026-01-02T15:04:05Z) or relative to now (-2w, -36h).
    #[arg(
        long = "min-time",
        env = "PROMLAKE_MIN_TIME",
        default_value = "0000-01-01T00:00:00Z",
        allow_hyphen_values = true
    )]
    min_time: String,
    /// Serve only data before this time: RFC3339 or relative to now (-2h).
    #[arg(
        long = "max-time",
        env = "PROMLAKE_MAX_TIME",
        default_value = "9999-12-31T23:59:59Z",
        allow_hyphen_values = true
    )]
    max_time: String,
    /// Most series a single Series request may select; more fails it with ResourceExhausted (0: no limit).
    #[arg(
        long = "store.limits.request-series",
        visible_alias = "store.grpc.touched-series-limit",
        env = "PROMLAKE_STORE_LIMITS_REQUEST_SERIES",
        default_value_t = 0
    )]
    request_series: u64,
    /// Most samples a single Series request may select; more fails it with ResourceExhausted (0: no limit).
    #[arg(
        long = "store.limits.request-samples",
        visible_alias = "store.grpc.series-sample-limit",
        env = "PROMLAKE_STORE_LIMITS_REQUEST_SAMPLES",
        default_value_t = 0
    )]
    request_samples: u64,
    /// Series requests answered at once; more wait for a turn (0: no limit).
    #[arg(
        long = "store.grpc.series-max-concurrency",
        env = "PROMLAKE_STORE_GRPC_SERIES_MAX_CONCURRENCY",
        default_value_t = 20
    )]
    series_max_concurrency: usize,
}

/// Flag values are Prometheus durations.
fn duration(s: &str) -> Result<Duration, String> {
    crate::http::parse_prometheus_duration(s)
}

/// Thanos's time-or-duration flag value as ms since the epoch: RFC3339, or a duration
/// relative to now (`-2w` in the past, `2h` in the future).
fn time_or_duration(flag: &str, s: &str, now_ms: i64) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    match duration(rest) {
        Ok(d) => Ok(now_ms.saturating_add(sign * i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
        Err(_) => bail!(
            "{flag} {s:?}: not an RFC3339 time (2026-01-02T15:04:05Z) nor a duration relative to now (-2w, -36h, 1h30m)"
        ),
    }
}

/// Counters of the bucket sync loop.
#[derive(Debug, Default)]
struct SyncMetrics {
    blocks: AtomicU64,
    syncs: AtomicU64,
    failures: AtomicU64,
}

impl StoreArgs {
    /// Serves until interrupted (SIGINT/SIGTERM), or fails when the bucket cannot be loaded.
    pub async fn run(self) -> Result<ExitCode> {
        let now = chrono::Utc::now().timestamp_millis();
        let min_time = time_or_duration("--min-time", &self.min_time, now)?;
        let max_time = time_or_duration("--max-time", &self.max_time, now)?;
        if min_time > max_time {
            bail!("--min-time {} is after --max-time {}", self.min_time, self.max_time);
        }
        let bucket = self.bucket.open()?;
        let source_opts = BucketSourceOptions {
            min_time,
            max_time,
            ignore_deletion_marks_delay: Some(self.ignore_deletion_marks_delay),
            samples_cache: self.samples_cache.cache(),
        };
        let samples_cache = source_opts.samples_cache.clone();
        let store_metrics = Arc::new(StoreMetrics::default());
        let server_opts = StoreServerOptions {
            component: Component::Store,
            limits: StoreLimits { max_series: self.request_series, max_samples: self.request_samples },
            max_concurrent_series: self.series_max_concurrency,
            metrics: store_metrics.clone(),
            downsampled: None,
        };
        let sync_metrics = Arc::new(SyncMetrics::default());

        let ready = Readiness::default();
        let http = tokio::net::TcpListener::bind(&self.http_address)
            .await
            .with_context(|| format!("listening on --http-address {}", self.http_address))?;
        let grpc = tokio::net::TcpListener::bind(&self.grpc_address)
            .await
            .with_context(|| format!("listening on --grpc-address {}", self.grpc_address))?;
        let render = {
            let (store_metrics, sync_metrics) = (store_metrics.clone(), sync_metrics.clone());
            move || render_metrics(&store_metrics, &sync_metrics) + &samples_cache.render()
        };
        let http_server = axum::serve(http, crate::probes::router(ready.clone(), render))
            .with_graceful_shutdown(shutdown_signal());
        tracing::info!(address = %self.http_address, "serving /metrics and probes");

        let grpc_address = self.grpc_address.clone();
        let sync = self.sync_interval;
        let store = async move {
            let source =
                Arc::new(BucketView::open_with(bucket, source_opts).await.context("loading the bucket")?);
            let blocks = source.block_ids().await.len();
            sync_metrics.blocks.store(blocks as u64, Ordering::Relaxed);
            sync_metrics.syncs.fetch_add(1, Ordering::Relaxed);
            let server_opts = StoreServerOptions {
                downsampled: Some(source.clone() as Arc<dyn PieceSource>),
                ..server_opts
            };
            let routes = storeapi::routes(source.clone(), server_opts);
            let server = storeapi::serve(grpc, routes, shutdown_signal());
            tracing::info!(blocks, address = %grpc_address, "bucket loaded; serving the StoreAPI");
            ready.set_ready();
            let resync = async {
                if sync.is_zero() {
                    return std::future::pending::<()>().await;
                }
                let mut tick = tokio::time::interval(sync);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    sync_metrics.syncs.fetch_add(1, Ordering::Relaxed);
                    match source.refresh().await {
                        Ok(()) => {
                            let n = source.block_ids().await.len();
                            sync_metrics.blocks.store(n as u64, Ordering::Relaxed);
                            tracing::debug!(blocks = n, "bucket synced");
                        }
                        Err(e) => {
                            sync_metrics.failures.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(error = %e, "bucket sync failed; keeping the known blocks");
                        }
                    }
                }
            };
            tokio::select! {
                r = server => r.context("gRPC server")?,
                () = resync => {}
            }
            Ok::<(), anyhow::Error>(())
        };
        tokio::select! {
            r = http_server => r.context("HTTP server")?,
            r = store => r?,
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn render_metrics(store: &StoreMetrics, sync: &SyncMetrics) -> String {
    let mut out = store.render();
    let rows = [
        ("promlake_store_blocks_loaded", "gauge", "Blocks served.", &sync.blocks),
        (
            "promlake_store_bucket_syncs_total",
            "counter",
            "Bucket listings (initial load and re-syncs).",
            &sync.syncs,
        ),
        (
            "promlake_store_bucket_sync_failures_total",
            "counter",
            "Bucket re-syncs that failed.",
            &sync.failures,
        ),
    ];
    for (name, kind, help, v) in rows {
        crate::http::metrics::write_metric(&mut out, name, kind, help, v.load(Ordering::Relaxed));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_flags_take_rfc3339_and_relative_durations() {
        let now = 1_700_000_000_000;
        assert_eq!(time_or_duration("--min-time", "2023-11-14T22:13:20Z", 0).ok(), Some(now));
        assert_eq!(time_or_duration("--min-time", "2023-11-14T23:13:20+01:00", 0).ok(), Some(now));
        assert_eq!(time_or_duration("--min-time", "-2w", now).ok(), Some(now - 14 * 86_400_000));
        assert_eq!(time_or_duration("--max-time", "1h30m", now).ok(), Some(now + 5_400_000));
        assert!(time_or_duration("--min-time", "0000-01-01T00:00:00Z", now).is_ok());
        let err =
            time_or_duration("--min-time", "yesterday", now).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("--min-time") && err.contains("RFC3339"), "{err}");
    }
}
