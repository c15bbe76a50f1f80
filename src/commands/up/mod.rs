//! `promlake up`: receive, store, query and compact in one process on a `file://` bucket
//! under `--data-dir` (DIR/bucket; the receiver's WAL and state in DIR/receive).
//!
//! ```text
//!  remote write ─► receiver (WAL → heads) ─cut every 2h─► DIR/bucket ◄─ compactor loop
//!                        │ heads (fresh)                    │ BucketView (raw + downsampled)
//!                        └──────────────► Fanout ◄──────────┘
//!                        HTTP: Prometheus API, /api/v1/sql · gRPC: StoreAPI + Flight SQL
//! ```
//!
//! A sample is never answered twice: the fan-out chains series with equal label sets (the head's
//! and a cut block's carry the same tenant label) and keeps one sample per timestamp, and the
//! cutter refreshes the querier's raw bucket view before it drops a window from the head, so a
//! cut window is never missing either. Wiring only; the pieces live in `promlake_ingest`,
//! `promlake_engine`, `promlake_sql`, `crate::http` and `crate::grpc`.

mod banner;
mod demo;

use super::compact::{CompactMetrics, pass_loop};
use crate::probes::shutdown_signal;
use anyhow::{Context, Result, bail};
use clap::Args;
use promlake_engine::compact::{CompactOptions, Retention};
use promlake_engine::dedup::DedupFunc;
use promlake_engine::downsampled::BucketView;
use promlake_engine::fanout::{Fanout, FanoutOptions, Members, StaticMembers};
use promlake_engine::promql::QueryOptions;
use promlake_engine::storeapi::StoreMetrics;
use promlake_engine::{Bucket, BucketConfig, Labels, SeriesSource};
use promlake_ingest::receive::http::{self as rw_http, HttpState};
use promlake_ingest::receive::limits::Limits;
use promlake_ingest::receive::wal::SyncPolicy;
use promlake_ingest::receive::{ReceiveConfig, Receiver};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How often the querier re-lists the bucket (new blocks from compaction; the cutter refreshes
/// the raw view itself after each upload).
const BUCKET_SYNC: Duration = Duration::from_secs(15);

/// Flags of `promlake up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Directory of everything: the bucket (DIR/bucket) and the receiver's WAL (DIR/receive); created if missing.
    #[arg(long = "data-dir", env = "PROMLAKE_DATA_DIR", default_value = "./promlake-data")]
    data_dir: PathBuf,
    /// Preload a day of a generated fleet (node_* and http_* metrics, external label cluster="demo") into the bucket, unless it holds demo blocks already.
    #[arg(long, env = "PROMLAKE_DEMO")]
    demo: bool,
    /// Hosts in the --demo fleet.
    #[arg(long = "demo.hosts", env = "PROMLAKE_DEMO_HOSTS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    demo_hosts: u32,
    /// Listen address (host:port) of the HTTP server: the Prometheus HTTP API, /api/v1/sql, /metrics, /-/healthy and /-/ready.
    #[arg(long = "http-address", env = "PROMLAKE_HTTP_ADDRESS", default_value = "127.0.0.1:10902")]
    http_address: String,
    /// Listen address (host:port) of the gRPC server: StoreAPI (thanos.Store, thanos.info.Info) and Arrow Flight SQL.
    #[arg(long = "grpc-address", env = "PROMLAKE_GRPC_ADDRESS", default_value = "127.0.0.1:10901")]
    grpc_address: String,
    /// Listen address (host:port) of Prometheus remote write (POST /api/v1/receive and /api/v1/write).
    #[arg(
        long = "remote-write.address",
        env = "PROMLAKE_REMOTE_WRITE_ADDRESS",
        default_value = "127.0.0.1:19291"
    )]
    remote_write_address: String,
    /// Length of the blocks cut from the receive head (2h as in Prometheus; shorter values such as 1m are for tests).
    #[arg(long = "tsdb.block-duration", env = "PROMLAKE_TSDB_BLOCK_DURATION", default_value = "2h", value_parser = duration)]
    block_duration: Duration,
    /// When a remote write is on disk before it is acknowledged: "always" (fdatasync) or "never" (written to the OS only).
    #[arg(long = "tsdb.wal.fsync", env = "PROMLAKE_TSDB_WAL_FSYNC", default_value = "always")]
    wal_fsync: SyncPolicy,
    /// Pause between compaction passes (compaction, downsampling, retention).
    #[arg(long = "wait-interval", env = "PROMLAKE_COMPACT_WAIT_INTERVAL", default_value = "5m", value_parser = duration)]
    wait_interval: Duration,
    /// How long a compacted-away block stays readable before it is deleted.
    #[arg(long = "delete-delay", env = "PROMLAKE_COMPACT_DELETE_DELAY", default_value = "1h", value_parser = duration)]
    delete_delay: Duration,
    /// How long raw blocks are kept (0d: forever).
    #[arg(long = "retention.resolution-raw", env = "PROMLAKE_RETENTION_RESOLUTION_RAW", default_value = "0d", value_parser = duration)]
    retention_raw: Duration,
    /// How long 5m-downsampled blocks are kept (0d: forever).
    #[arg(long = "retention.resolution-5m", env = "PROMLAKE_RETENTION_RESOLUTION_5M", default_value = "0d", value_parser = duration)]
    retention_5m: Duration,
    /// How long 1h-downsampled blocks are kept (0d: forever).
    #[arg(long = "retention.resolution-1h", env = "PROMLAKE_RETENTION_RESOLUTION_1H", default_value = "0d", value_parser = duration)]
    retention_1h: Duration,
}

fn duration(s: &str) -> Result<Duration, String> {
    crate::http::parse_prometheus_duration(s)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn bind(flag: &str, address: &str) -> Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| format!("listening on {flag} {address}"))
}

impl UpArgs {
    fn receive_config(&self, dir: &Path) -> Result<ReceiveConfig> {
        let block_ms = ms(self.block_duration);
        if block_ms < 1000 {
            bail!("--tsdb.block-duration must be at least 1s, got {:?}", self.block_duration);
        }
        Ok(ReceiveConfig {
            tsdb_path: dir.join("receive"),
            block_ms,
            external: Labels::default(),
            tenant_label: "tenant_id".into(),
            default_tenant: "default-tenant".into(),
            wal_sync: self.wal_fsync,
            limits: Limits::default(),
        })
    }

    fn compact_options(&self) -> Result<CompactOptions> {
        if self.wait_interval.is_zero() {
            bail!("--wait-interval must be positive");
        }
        Ok(CompactOptions {
            delete_delay_ms: ms(self.delete_delay),
            retention: Retention {
                raw_ms: ms(self.retention_raw),
                res_5m_ms: ms(self.retention_5m),
                res_1h_ms: ms(self.retention_1h),
            },
            ..Default::default()
        })
    }

    /// Serves until SIGINT/SIGTERM, then closes the WAL (every acknowledged write is in it).
    pub async fn run(self) -> Result<ExitCode> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating --data-dir {}", self.data_dir.display()))?;
        let dir = std::path::absolute(&self.data_dir)
            .with_context(|| format!("--data-dir {}", self.data_dir.display()))?;
        let bucket_dir = dir.join("bucket");
        std::fs::create_dir_all(&bucket_dir).with_context(|| format!("creating {}", bucket_dir.display()))?;
        let bucket = Bucket::open(&BucketConfig::from_url(format!("file://{}", bucket_dir.display())))?;
        let receiver = Receiver::new(self.receive_config(&dir)?);
        let compact = self.compact_options()?;

        let http = bind("--http-address", &self.http_address).await?;
        let grpc = bind("--grpc-address", &self.grpc_address).await?;
        let rw = bind("--remote-write.address", &self.remote_write_address).await?;
        let addrs = banner::Addresses {
            http: http.local_addr()?,
            grpc: grpc.local_addr()?,
            remote_write: rw.local_addr()?,
        };

        let query = QueryOptions::default();
        let state = crate::http::ApiState::new(query.clone(), Vec::new(), DedupFunc::default());
        state.set_bucket(bucket.clone());
        let sql = promlake_sql::SqlSession::new(
            bucket.clone(),
            promlake_sql::SqlOptions { promql: query, ..Default::default() },
        )?;
        let store_metrics = Arc::new(StoreMetrics::default());
        let compact_metrics = Arc::new(CompactMetrics::default());
        for render in [
            Arc::new({
                let r = receiver.clone();
                move || r.render_metrics()
            }) as crate::http::MetricsSource,
            Arc::new({
                let m = store_metrics.clone();
                move || m.render()
            }),
            Arc::new({
                let m = compact_metrics.clone();
                move || m.render()
            }),
        ] {
            state.add_metrics(render);
        }
        let rw_state = HttpState {
            receiver: receiver.clone(),
            tenant_header: "THANOS-TENANT".into(),
            router: None,
            extra_metrics: None,
        };
        let app = crate::http::router(state.clone()).layer(axum::Extension(sql.clone()));
        let http_server = axum::serve(http, app).with_graceful_shutdown(shutdown_signal());
        let rw_server = axum::serve(rw, rw_http::router(rw_state)).with_graceful_shutdown(shutdown_signal());
        banner::print_start(&dir, &bucket_dir, &addrs);

        let (grpc_tx, grpc_rx) = tokio::sync::oneshot::channel::<Fanout>();
        let startup = Startup {
            bucket: bucket.clone(),
            receiver: receiver.clone(),
            state,
            grpc_tx,
            compact,
            compact_metrics,
            demo_hosts: self.demo.then_some(self.demo_hosts),
            wait_interval: self.wait_interval,
        }
        .run();
        let grpc_server = async move {
            let Ok(fanout) = grpc_rx.await else { return std::future::pending::<Result<()>>().await };
            crate::grpc::serve(
                grpc,
                crate::grpc::query_routes(fanout, store_metrics, Some(sql)),
                shutdown_signal(),
            )
            .await
        };
        let result = tokio::select! {
            r = http_server => r.context("HTTP server"),
            r = rw_server => r.context("remote-write server"),
            r = grpc_server => r.context("gRPC server"),
            r = startup => r,
        };
        receiver.close().context("closing the WAL")?;
        result?;
        println!(
            "promlake up: stopped; the WAL in {} holds every acknowledged write",
            dir.join("receive").display()
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// What happens after the listeners are up: demo data, WAL replay, loading the bucket, then
/// the background loops (cutter, compactor, bucket sync).
struct Startup {
    bucket: Bucket,
    receiver: Arc<Receiver>,
    state: crate::http::ApiState,
    grpc_tx: tokio::sync::oneshot::Sender<Fanout>,
    compact: CompactOptions,
    compact_metrics: Arc<CompactMetrics>,
    demo_hosts: Option<u32>,
    wait_interval: Duration,
}

impl Startup {
    /// Loads everything, makes the servers ready, and runs the loops until the process ends.
    async fn run(self) -> Result<()> {
        let Startup { bucket, receiver, state, grpc_tx, compact, compact_metrics, demo_hosts, wait_interval } =
            self;
        if let Some(hosts) = demo_hosts {
            load_demo(&bucket, hosts).await?;
        }
        let r = receiver.clone();
        tokio::task::spawn_blocking(move || r.replay()).await.context("WAL replay task")??;
        let view = Arc::new(BucketView::open(bucket.clone()).await.context("loading the bucket")?);
        // The cutter refreshes this raw view after an upload, before it drops the window from
        // the head: every sample is in one of the two at any time.
        receiver.set_blocks(view.raw().clone());
        let members = StaticMembers(vec![
            ("receive".into(), receiver.source()),
            ("bucket".into(), view.clone() as Arc<dyn SeriesSource>),
        ]);
        let fanout = Fanout::new(Arc::new(Members(vec![Arc::new(members)])), FanoutOptions::default());
        state.set_view(fanout.clone());
        let _ = grpc_tx.send(fanout);
        banner::print_ready(view.raw().block_ids().await.len());
        let tick = Duration::from_millis((receiver.config().block_ms as u64 / 20).clamp(500, 30_000));
        tokio::spawn(receiver.clone().run_cutter(bucket.clone(), tick));
        compact_metrics.set_ready();
        tokio::spawn(pass_loop(bucket, compact, compact_metrics, Some(wait_interval)));
        let mut t = tokio::time::interval(BUCKET_SYNC);
        t.tick().await;
        loop {
            t.tick().await;
            if let Err(e) = view.refresh().await {
                tracing::warn!(error = %e, "bucket sync failed; keeping the known blocks");
            }
        }
    }
}

/// Writes the demo blocks unless the bucket has them.
async fn load_demo(bucket: &Bucket, hosts: u32) -> Result<()> {
    if demo::present(bucket).await? {
        println!("demo data: already in the bucket; skipped");
        return Ok(());
    }
    let started = std::time::Instant::now();
    let now = chrono::Utc::now().timestamp_millis();
    let cfg = demo::DemoConfig { hosts, end_ms: now, interval_ms: 15_000 };
    let (blocks, samples) = demo::write(bucket, cfg).await.context("writing the demo data")?;
    println!(
        "demo data: {hosts} hosts, {} series, {samples} samples in {blocks} blocks ({:.1}s)",
        demo::series_per_host() * hosts as usize,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
