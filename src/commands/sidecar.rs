//! `promlake sidecar`: runs next to a Prometheus server. Reads its external labels (refusing
//! to start without them, as Thanos does), ships every completed TSDB block of `--tsdb.path`
//! to the bucket as a Parquet block with the same ULID, and serves Thanos's StoreAPI over the
//! data Prometheus holds through remote read.
//!
//! Wiring only: the pieces are `promlake_ingest::sidecar` and `promlake_engine::storeapi`.

use crate::flags::BucketArgs;
use crate::probes::{Readiness, shutdown_signal};
use anyhow::{Context, Result, bail};
use clap::Args;
use promlake_engine::storeapi::{self, Component, StoreMetrics, StoreServerOptions};
use promlake_engine::{Labels, SeriesSource};
use promlake_ingest::sidecar::{PrometheusClient, RemoteReadSource, Shipper, ShipperOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Flags of `promlake sidecar`.
#[derive(Debug, Args)]
pub struct SidecarArgs {
    /// URL of the Prometheus server the sidecar sits next to.
    #[arg(long = "prometheus.url", env = "PROMLAKE_PROMETHEUS_URL", default_value = "http://localhost:9090")]
    prometheus_url: String,
    /// How long to wait for Prometheus to answer at startup.
    #[arg(long = "prometheus.ready_timeout", env = "PROMLAKE_PROMETHEUS_READY_TIMEOUT", default_value = "10m", value_parser = duration)]
    ready_timeout: Duration,
    /// Prometheus's data directory (its --storage.tsdb.path): completed blocks there are shipped.
    #[arg(long = "tsdb.path", env = "PROMLAKE_TSDB_PATH", default_value = "./data")]
    tsdb_path: PathBuf,
    /// Listen address (host:port) of the gRPC server: thanos.Store and thanos.info.Info.
    #[arg(long = "grpc-address", env = "PROMLAKE_GRPC_ADDRESS", default_value = "127.0.0.1:10901")]
    grpc_address: String,
    /// Listen address (host:port) of the HTTP server: /metrics, /-/healthy and /-/ready.
    #[arg(long = "http-address", env = "PROMLAKE_HTTP_ADDRESS", default_value = "127.0.0.1:10902")]
    http_address: String,
    /// Where blocks are shipped; without a bucket the sidecar only serves the StoreAPI.
    #[command(flatten)]
    bucket: BucketArgs,
    /// Ship compacted blocks (compaction level > 1) too, not only blocks cut from the head.
    #[arg(long = "shipper.upload-compacted", env = "PROMLAKE_SHIPPER_UPLOAD_COMPACTED")]
    upload_compacted: bool,
    /// How often to look for new blocks to ship.
    #[arg(long = "shipper.sync-interval", env = "PROMLAKE_SHIPPER_SYNC_INTERVAL", default_value = "30s", value_parser = duration)]
    ship_interval: Duration,
    /// How often to re-read the external labels and the oldest time of Prometheus.
    #[arg(long = "prometheus.refresh-interval", env = "PROMLAKE_PROMETHEUS_REFRESH_INTERVAL", default_value = "30s", value_parser = duration)]
    refresh_interval: Duration,
}

/// Flag values are Prometheus durations.
fn duration(s: &str) -> Result<Duration, String> {
    crate::http::parse_prometheus_duration(s)
}

/// Counters of the sidecar's loops.
#[derive(Debug, Default)]
struct SidecarMetrics {
    uploads: AtomicU64,
    upload_failures: AtomicU64,
    syncs: AtomicU64,
    prometheus_up: AtomicU64,
}

/// Prometheus's external labels, waiting up to `timeout` for it to answer.
async fn external_labels(prom: &PrometheusClient, timeout: Duration) -> Result<Labels> {
    let start = Instant::now();
    loop {
        match prom.external_labels().await {
            Ok(l) if l.is_empty() => bail!(
                "no external labels configured on Prometheus server {}, uniquely identifying external labels must be configured (global.external_labels in prometheus.yml)",
                prom.url()
            ),
            Ok(l) => return Ok(l),
            Err(e) if start.elapsed() >= timeout => {
                bail!("Prometheus did not answer within --prometheus.ready_timeout {timeout:?}: {e}")
            }
            Err(e) => {
                tracing::warn!(error = %e, "waiting for Prometheus");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// The oldest time Prometheus holds: the oldest block's minTime in `tsdb`, else the head's,
/// else 0.
async fn oldest_time(prom: &PrometheusClient, tsdb: &Path) -> i64 {
    let mut oldest: Option<i64> = None;
    if let Ok(dir) = std::fs::read_dir(tsdb) {
        for e in dir.flatten() {
            let is_block = e.file_name().to_str().is_some_and(|n| ulid::Ulid::from_string(n).is_ok());
            let meta = e.path().join("meta.json");
            if let (true, Ok(bytes)) = (is_block, std::fs::read(&meta))
                && let Ok(m) = promlake_compat::BlockMeta::parse(&meta.display().to_string(), &bytes)
            {
                oldest = Some(oldest.map_or(m.min_time, |o| o.min(m.min_time)));
            }
        }
    }
    if oldest.is_none()
        && let Ok(Some((t, series))) = prom.head_min_time().await
        && series > 0
        && t < i64::MAX / 2
    {
        oldest = Some(t);
    }
    oldest.unwrap_or(0)
}

impl SidecarArgs {
    /// Serves until interrupted; fails when Prometheus has no external labels.
    pub async fn run(self) -> Result<ExitCode> {
        let b = &self.bucket;
        let has_bucket =
            b.bucket.is_some() || b.objstore_config_file.is_some() || b.objstore_config.is_some();
        let bucket = if has_bucket { Some(self.bucket.open()?) } else { None };
        if !self.tsdb_path.is_dir() {
            bail!("--tsdb.path {}: not a directory", self.tsdb_path.display());
        }
        let prom = PrometheusClient::new(&self.prometheus_url, Duration::from_secs(120))?;

        let ready = Readiness::default();
        let store_metrics = Arc::new(StoreMetrics::default());
        let metrics = Arc::new(SidecarMetrics::default());
        let http = tokio::net::TcpListener::bind(&self.http_address)
            .await
            .with_context(|| format!("listening on --http-address {}", self.http_address))?;
        let render = {
            let (s, m) = (store_metrics.clone(), metrics.clone());
            move || render_metrics(&s, &m)
        };
        let http_server = axum::serve(http, crate::probes::router(ready.clone(), render))
            .with_graceful_shutdown(shutdown_signal());
        let http_task = tokio::spawn(async move { http_server.await });

        let labels = external_labels(&prom, self.ready_timeout).await?;
        metrics.prometheus_up.store(1, Ordering::Relaxed);
        tracing::info!(external_labels = %labels, prometheus = %prom.url(), "Prometheus answered");
        let min_time = Arc::new(AtomicI64::new(oldest_time(&prom, &self.tsdb_path).await));

        let grpc = tokio::net::TcpListener::bind(&self.grpc_address)
            .await
            .with_context(|| format!("listening on --grpc-address {}", self.grpc_address))?;
        let source: Arc<dyn SeriesSource> =
            Arc::new(RemoteReadSource::new(prom.clone(), labels.clone(), min_time.clone()));
        let opts = StoreServerOptions {
            component: Component::Sidecar,
            metrics: store_metrics.clone(),
            ..Default::default()
        };
        let server = storeapi::serve(grpc, storeapi::routes(source, opts), shutdown_signal());
        tracing::info!(address = %self.grpc_address, "serving the StoreAPI over remote read");
        ready.set_ready();

        let refresh = {
            let (prom, labels, tsdb, metrics) =
                (prom.clone(), labels.clone(), self.tsdb_path.clone(), metrics.clone());
            let every = self.refresh_interval.max(Duration::from_secs(1));
            async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    match prom.external_labels().await {
                        Ok(now) => {
                            metrics.prometheus_up.store(1, Ordering::Relaxed);
                            if now != labels {
                                tracing::warn!(
                                    serving = %labels, configured = %now,
                                    "Prometheus's external labels changed; restart the sidecar to serve and ship them"
                                );
                            }
                        }
                        Err(e) => {
                            metrics.prometheus_up.store(0, Ordering::Relaxed);
                            tracing::warn!(error = %e, "re-reading Prometheus's external labels failed");
                        }
                    }
                    min_time.store(oldest_time(&prom, &tsdb).await, Ordering::Relaxed);
                }
            }
        };

        let ship = {
            let metrics = metrics.clone();
            let shipper = bucket.map(|bucket| {
                Shipper::new(
                    bucket,
                    labels.clone(),
                    ShipperOptions {
                        tsdb_path: self.tsdb_path.clone(),
                        upload_compacted: self.upload_compacted,
                        writer: Default::default(),
                    },
                )
            });
            let every = self.ship_interval.max(Duration::from_secs(1));
            async move {
                let Some(shipper) = shipper else {
                    tracing::info!("no bucket configured: blocks are not shipped");
                    return std::future::pending::<()>().await;
                };
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    metrics.syncs.fetch_add(1, Ordering::Relaxed);
                    match shipper.sync().await {
                        Ok(r) => {
                            metrics.uploads.fetch_add(r.uploaded.len() as u64, Ordering::Relaxed);
                            metrics.upload_failures.fetch_add(r.failed as u64, Ordering::Relaxed);
                            if !r.uploaded.is_empty() || r.failed > 0 {
                                tracing::info!(
                                    uploaded = r.uploaded.len(),
                                    failed = r.failed,
                                    "shipper sync done"
                                );
                            }
                        }
                        Err(e) => {
                            metrics.upload_failures.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(error = %e, "shipper sync failed");
                        }
                    }
                }
            }
        };

        tokio::select! {
            r = server => r.context("gRPC server")?,
            r = http_task => r.context("HTTP server task")?.context("HTTP server")?,
            () = refresh => {},
            () = ship => {},
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn render_metrics(store: &StoreMetrics, m: &SidecarMetrics) -> String {
    let mut out = store.render();
    let rows = [
        ("promlake_shipper_uploads_total", "counter", "Blocks shipped to the bucket.", &m.uploads),
        (
            "promlake_shipper_upload_failures_total",
            "counter",
            "Blocks (or syncs) that failed to ship.",
            &m.upload_failures,
        ),
        ("promlake_shipper_syncs_total", "counter", "Shipper passes over --tsdb.path.", &m.syncs),
        (
            "promlake_sidecar_prometheus_up",
            "gauge",
            "Whether Prometheus answered the last config read.",
            &m.prometheus_up,
        ),
    ];
    for (name, kind, help, v) in rows {
        crate::http::metrics::write_metric(&mut out, name, kind, help, v.load(Ordering::Relaxed));
    }
    out
}
