//! `promlake tools import`: Prometheus TSDB blocks → Parquet blocks in the bucket.

use crate::flags::BucketArgs;
use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use promlake_engine::bucket::S3Options;
use promlake_engine::convert::{BlockOutcome, ImportOptions, ImportProgress, NativeBlockRef, import_blocks};
use promlake_engine::parquet::WriterOptions;
use promlake_engine::{BucketConfig, Labels};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

/// Flags of `promlake tools import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    /// External label to add to every imported block (repeatable), e.g. --label cluster=eu1.
    #[arg(long = "label", value_name = "NAME=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// ZSTD level of the Parquet files (1 = fastest; 3 about 3% smaller, ~15% slower).
    #[arg(long = "parquet.zstd-level", env = "PROMLAKE_PARQUET_ZSTD_LEVEL", default_value_t = WriterOptions::default().zstd_level)]
    zstd_level: i32,
    /// Rows per Parquet data page of samples.parquet (bigger: smaller files; smaller: finer reads).
    #[arg(long = "parquet.page-rows", env = "PROMLAKE_PARQUET_PAGE_ROWS", default_value_t = WriterOptions::default().page_rows)]
    page_rows: usize,
    /// Blocks converted at once (default: one per core).
    #[arg(long, env = "PROMLAKE_IMPORT_THREADS", default_value_t = 0)]
    threads: usize,
    /// A Prometheus data dir, a snapshot dir, a block dir, or a URL to one (s3://bucket/prefix).
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<String>,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("{s:?}: expected NAME=VALUE"))?;
    let valid = !k.is_empty()
        && k.chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if !valid {
        return Err(format!("{k:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)"));
    }
    if v.is_empty() {
        return Err(format!("label {k} has an empty value"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// Resolves one PATH argument into the native blocks under it.
/// URLs use the same S3 settings as the bucket flags.
async fn discover(path: &str, s3: &S3Options) -> Result<Vec<NativeBlockRef>> {
    let (store, shown): (Arc<dyn ObjectStore>, String) = if path.contains("://") {
        let config = BucketConfig { s3: s3.clone(), ..BucketConfig::from_url(path) };
        let (store, _) = config.build()?;
        (store, path.trim_end_matches('/').to_string())
    } else {
        let meta = std::fs::metadata(path).with_context(|| path.to_string())?;
        if !meta.is_dir() {
            bail!("{path}: not a directory (expected a Prometheus data dir or a block dir)");
        }
        let fs = LocalFileSystem::new_with_prefix(path).with_context(|| path.to_string())?;
        (Arc::new(fs), path.trim_end_matches('/').to_string())
    };
    let dirs = promlake_compat::block::discover_blocks(store.as_ref(), &Path::default())
        .await
        .with_context(|| format!("looking for blocks under {path}"))?;
    if dirs.is_empty() {
        bail!(
            "{path}: no Prometheus block found (a block dir holds meta.json and index; a data dir holds block dirs)"
        );
    }
    Ok(dirs
        .into_iter()
        .map(|dir| {
            let display = if dir.as_ref().is_empty() { shown.clone() } else { format!("{shown}/{dir}") };
            NativeBlockRef { store: store.clone(), dir, display, root: shown.clone() }
        })
        .collect())
}

impl ImportArgs {
    /// Runs the import.
    pub async fn run(self) -> Result<ExitCode> {
        if self.page_rows == 0 {
            anyhow::bail!("--parquet.page-rows must be positive");
        }
        if !(1..=22).contains(&self.zstd_level) {
            anyhow::bail!("--parquet.zstd-level must be between 1 and 22, got {}", self.zstd_level);
        }
        let config = self.bucket.config()?;
        let bucket = promlake_engine::Bucket::open(&config)?;
        let mut blocks: Vec<NativeBlockRef> = Vec::new();
        for p in &self.paths {
            for b in discover(p, &config.s3).await? {
                let dup = b.ulid().is_some() && blocks.iter().any(|x| x.ulid() == b.ulid());
                if !dup {
                    blocks.push(b);
                }
            }
        }
        let writer =
            WriterOptions { zstd_level: self.zstd_level, page_rows: self.page_rows, ..Default::default() };
        let opts = ImportOptions { labels: Labels::from_pairs(self.labels.clone()), writer };
        tracing::info!(blocks = blocks.len(), bucket = bucket.url(), "importing");
        let progress = Progress::new(std::io::stderr().is_terminal());
        let threads = self.threads;
        let started = std::time::Instant::now();
        let rt = tokio::runtime::Handle::current();
        let (blocks, outcomes, progress) = tokio::task::spawn_blocking(move || {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
            let outcomes = match pool {
                Ok(pool) => pool.install(|| import_blocks(&rt, &bucket, &blocks, &opts, &progress)),
                Err(e) => vec![Err(promlake_engine::Error::InvalidArgument(format!("thread pool: {e}")))],
            };
            (blocks, outcomes, progress)
        })
        .await?;
        progress.finish();

        let (mut imported, mut skipped, mut failed, mut samples, mut native, mut parquet) =
            (0, 0, 0, 0u64, 0u64, 0u64);
        for (b, o) in blocks.iter().zip(&outcomes) {
            match o {
                Ok(BlockOutcome::Imported { id, num_series, num_samples, native_bytes, parquet_bytes }) => {
                    imported += 1;
                    samples += num_samples;
                    native += native_bytes;
                    parquet += parquet_bytes;
                    println!(
                        "imported {id}  series={num_series} samples={num_samples} native_bytes={native_bytes} parquet_bytes={parquet_bytes}"
                    );
                }
                Ok(BlockOutcome::Skipped { id }) => {
                    skipped += 1;
                    println!("skipped  {id}  already in the bucket");
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("error: {}: {e}", b.root);
                }
            }
        }
        if outcomes.len() > blocks.len() {
            for e in outcomes[blocks.len()..].iter().filter_map(|o| o.as_ref().err()) {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{imported} imported, {skipped} skipped, {failed} failed; {samples} samples in {secs:.2}s; {native} native bytes -> {parquet} parquet bytes"
        );
        Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    }
}

/// A progress bar on a terminal, log lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let pb = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} samples ({per_sec}) {msg}",
            ) {
                pb.set_style(style);
            }
            pb
        });
        Progress { bar }
    }

    fn finish(&self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }
}

impl ImportProgress for Progress {
    fn block_started(&self, block: &str, samples: u64) {
        match &self.bar {
            Some(pb) => pb.inc_length(samples),
            None => tracing::info!(block, samples, "converting block"),
        }
    }

    fn samples_done(&self, n: u64) {
        if let Some(pb) = &self.bar {
            pb.inc(n);
        }
    }

    fn block_finished(&self, block: &str, outcome: &promlake_engine::Result<BlockOutcome>) {
        let line = match outcome {
            Ok(BlockOutcome::Imported { num_samples, .. }) => {
                format!("imported {block} ({num_samples} samples)")
            }
            Ok(BlockOutcome::Skipped { .. }) => format!("skipped {block}: already in the bucket"),
            Err(e) => format!("failed {block}: {e}"),
        };
        match &self.bar {
            Some(pb) => pb.println(line),
            None => tracing::info!("{line}"),
        }
    }
}
