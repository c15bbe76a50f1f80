//! `promlake compact`: compaction, vertical deduplication, downsampling and retention over
//! the bucket (Thanos's compactor).
//!
//! Wiring only: validate the flags into [`CompactOptions`], serve `/metrics`, `/-/healthy`
//! and `/-/ready` on `--http-address`, and run passes of [`promlake_engine::compact::run_pass`]
//! off the async runtime — one pass and exit, or with `--wait` a pass every `--wait-interval`
//! until SIGINT/SIGTERM. Killed at any point, the bucket stays consistent and a rerun
//! finishes the work.

mod progress;
mod server;

use crate::flags::BucketArgs;
use crate::probes::shutdown_signal;
use anyhow::{Context, Result, bail};
use clap::Args;
use promlake_engine::Bucket;
use promlake_engine::compact::{CompactOptions, DedupFunc, Retention, run_pass};
pub(crate) use server::CompactMetrics;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Flags of `promlake compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    /// Listen address (host:port) of the HTTP server: /metrics, /-/healthy and /-/ready.
    #[arg(long = "http-address", env = "PROMLAKE_HTTP_ADDRESS", default_value = "127.0.0.1:10902")]
    http_address: String,
    /// Keep running: a pass every --wait-interval until interrupted (default: one pass, then exit).
    #[arg(long, env = "PROMLAKE_COMPACT_WAIT")]
    wait: bool,
    /// Pause between passes with --wait (a duration such as 5m, 1h).
    #[arg(long = "wait-interval", env = "PROMLAKE_COMPACT_WAIT_INTERVAL", default_value = "5m", value_parser = duration)]
    wait_interval: Duration,
    /// How long a block marked for deletion stays readable before it is deleted (0s: at once).
    #[arg(long = "delete-delay", env = "PROMLAKE_COMPACT_DELETE_DELAY", default_value = "48h", value_parser = duration)]
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
    /// Do not downsample (raw blocks spanning ≥ 40h normally get 5m blocks, 5m blocks spanning ≥ 10d 1h blocks).
    #[arg(long = "downsampling.disable", env = "PROMLAKE_DOWNSAMPLING_DISABLE")]
    downsampling_disable: bool,
    /// External label naming the replica (repeatable): dropped from the group key so replicas are merged by vertical compaction.
    #[arg(
        long = "deduplication.replica-label",
        env = "PROMLAKE_DEDUPLICATION_REPLICA_LABEL",
        value_delimiter = ','
    )]
    replica_labels: Vec<String>,
    /// How overlapping samples are merged: "" (one-to-one: identical timestamps collapse) or penalty (Thanos's replica penalty dedup).
    #[arg(long = "deduplication.func", env = "PROMLAKE_DEDUPLICATION_FUNC", default_value = "", value_parser = dedup_func)]
    dedup: DedupFunc,
    /// Groups (and downsamplings) worked on at once; series batches inside each use every core.
    #[arg(long = "compact.concurrency", env = "PROMLAKE_COMPACT_CONCURRENCY", default_value_t = 1)]
    concurrency: usize,
}

fn duration(s: &str) -> Result<Duration, String> {
    crate::http::parse_prometheus_duration(s)
}

fn dedup_func(s: &str) -> Result<DedupFunc, String> {
    s.parse()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl CompactArgs {
    fn options(&self) -> Result<CompactOptions> {
        if self.concurrency == 0 {
            bail!("--compact.concurrency must be at least 1");
        }
        if self.wait && self.wait_interval.is_zero() {
            bail!("--wait-interval must be positive");
        }
        if let Some(bad) = self.replica_labels.iter().find(|l| l.is_empty()) {
            bail!("--deduplication.replica-label {bad:?}: empty label name");
        }
        Ok(CompactOptions {
            replica_labels: self.replica_labels.clone(),
            dedup: self.dedup,
            downsampling: !self.downsampling_disable,
            delete_delay_ms: ms(self.delete_delay),
            retention: Retention {
                raw_ms: ms(self.retention_raw),
                res_5m_ms: ms(self.retention_5m),
                res_1h_ms: ms(self.retention_1h),
            },
            concurrency: self.concurrency,
            ..Default::default()
        })
    }

    /// Runs one pass (or passes forever with --wait), serving metrics meanwhile.
    pub async fn run(self) -> Result<ExitCode> {
        let opts = self.options()?;
        let bucket = self.bucket.open()?;
        let metrics = Arc::new(CompactMetrics::default());
        let listener = tokio::net::TcpListener::bind(&self.http_address)
            .await
            .with_context(|| format!("listening on --http-address {}", self.http_address))?;
        tracing::info!(address = %listener.local_addr()?, bucket = bucket.url(), "compactor started");
        tokio::spawn(server::serve(listener, metrics.clone()));
        metrics.set_ready();

        let passes = pass_loop(bucket, opts, metrics, self.wait.then_some(self.wait_interval));
        tokio::select! {
            code = passes => Ok(code),
            () = shutdown_signal() => {
                // A pass in flight cannot be cancelled; leaving now is safe (meta.json last,
                // sources marked only after the new block is complete).
                eprintln!("interrupted; the bucket is consistent and a rerun finishes the work");
                std::process::exit(130)
            }
        }
    }
}

/// Compaction passes over `bucket`: one (its outcome as the exit code), or with `wait` one every
/// `wait` forever. Passes run off the async runtime; `metrics` counts them. Shared by
/// `promlake compact` and `promlake up`.
pub(crate) async fn pass_loop(
    bucket: Bucket,
    opts: CompactOptions,
    metrics: Arc<CompactMetrics>,
    wait: Option<Duration>,
) -> ExitCode {
    let progress = Arc::new(progress::Progress::new(std::io::IsTerminal::is_terminal(&std::io::stderr())));
    loop {
        let (b, o, p) = (bucket.clone(), opts.clone(), progress.clone());
        let rt = tokio::runtime::Handle::current();
        let started = std::time::Instant::now();
        let report = tokio::task::spawn_blocking(move || run_pass(&rt, &b, &o, p.as_ref())).await;
        progress.finish();
        let failed = match report {
            Ok(Ok(r)) => {
                metrics.record(&r);
                tracing::info!(
                    compactions = r.compactions,
                    downsamples = r.downsamples,
                    marked = r.marked_for_deletion,
                    deleted = r.deleted,
                    rows = r.rows_processed,
                    seconds = started.elapsed().as_secs_f64(),
                    "pass done"
                );
                println!(
                    "pass done: {} compactions, {} downsamplings, {} blocks marked for deletion ({} by retention), {} deleted, {} aborted uploads removed, {} rows in {:.2}s",
                    r.compactions,
                    r.downsamples,
                    r.marked_for_deletion,
                    r.retention_marked,
                    r.deleted,
                    r.partial_deleted,
                    r.rows_processed,
                    started.elapsed().as_secs_f64()
                );
                for e in &r.errors {
                    eprintln!("error: {e}");
                }
                !r.errors.is_empty()
            }
            Ok(Err(e)) => {
                metrics.failed();
                eprintln!("error: compaction pass over {}: {e}", bucket.url());
                true
            }
            Err(e) => {
                metrics.failed();
                eprintln!("error: compaction pass: {e}");
                true
            }
        };
        let Some(interval) = wait else {
            return if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        };
        tokio::time::sleep(interval).await;
    }
}
