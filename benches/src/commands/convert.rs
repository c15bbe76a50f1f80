//! `promlake-bench convert`: the TSDB → Parquet conversion benchmark.
//!
//! ```text
//! generate ──► DIR/om/wNNNN.om ──promtool ×jobs──► DIR/native/<ULID>/ ──promlake tools import──► DIR/lake/<ULID>/
//! ```
//!
//! The data is written as one OpenMetrics file per 2h block range, because promtool re-parses
//! its whole input once per block it cuts; one promtool per file (several in parallel) yields
//! the same 2h blocks many times faster. With `--max-block-duration` a single file and a single
//! promtool are used instead.
//!
//! The import runs as a child process; its CPU time comes from this process's reaped-children
//! counters. Both block sets are then summed from their `meta.json` stats and file sizes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use promlake_benches::blocks::{self, BlocksSummary};
use promlake_benches::measure::{self, Usage};
use promlake_benches::report::{ConvertReport, Side, Timing};
use promlake_benches::{GenConfig, GenStats, generate_split};

use super::DataArgs;

/// Flags of `convert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Working directory for data.om, native/ and lake/ (default: a temporary directory,
    /// removed afterwards). native/ and lake/ are replaced on every run.
    #[arg(long, env = "PROMLAKE_BENCH_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// The promlake binary (default: $CARGO_TARGET_DIR/release/promlake, else the one next to
    /// this binary, else ./target/release/promlake).
    #[arg(long, env = "PROMLAKE_BENCH_PROMLAKE")]
    pub promlake: Option<PathBuf>,
    /// The promtool binary (Prometheus 2.42).
    #[arg(long, env = "PROMLAKE_BENCH_PROMTOOL", default_value = "promtool")]
    pub promtool: PathBuf,
    /// Passed to promtool as --max-block-duration (e.g. 24h); by default promtool cuts 2h blocks.
    #[arg(long, env = "PROMLAKE_BENCH_MAX_BLOCK_DURATION")]
    pub max_block_duration: Option<String>,
    /// promtool processes to run at once (default: the number of CPUs).
    #[arg(long, env = "PROMLAKE_BENCH_JOBS")]
    pub jobs: Option<usize>,
    /// Reuse DIR/native when it was built from the same data flags (skips gen and promtool).
    #[arg(long, env = "PROMLAKE_BENCH_REUSE", default_value_t = false)]
    pub reuse: bool,
    /// Keep DIR/om/*.om after promtool has read them.
    #[arg(long, env = "PROMLAKE_BENCH_KEEP_INPUT", default_value_t = false)]
    pub keep_input: bool,
    /// Print the report as JSON instead of text.
    #[arg(long, env = "PROMLAKE_BENCH_JSON", default_value_t = false)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = args.data.config()?;
    let promlake = args.promlake.clone().unwrap_or_else(default_promlake);
    ensure!(
        promlake.is_file(),
        "promlake binary not found at {}; build it with `cargo build --release -p promlake` or pass --promlake",
        promlake.display()
    );
    let _temp;
    let work = match &args.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?
        }
        None => {
            let t = tempfile::Builder::new().prefix("promlake-bench-").tempdir()?;
            let p = t.path().to_path_buf();
            _temp = t;
            p
        }
    };
    let native = work.join("native");
    let parts = work.join("native.parts");
    let lake = work.join("lake");
    let om = work.join("om");
    let stamp = work.join("native.params.json");
    let params = stamp_params(&cfg, &args);

    // The stamp records the data flags and the generated series count of DIR/native.
    let stamped_series = stamped_series(&stamp, &params);
    let (generate, promtool, om_bytes, gen_samples, series) = match stamped_series {
        Some(series) if args.reuse && native.is_dir() => {
            eprintln!("reusing {} (built from the same data flags)", native.display());
            (None, None, 0, None, series)
        }
        _ => {
            for p in [&stamp, &native, &parts, &om] {
                remove(p)?;
            }
            let b = build_native(&args, &cfg, &om, &parts, &native)?;
            let record = serde_json::json!({ "params": params, "series": b.stats.series });
            std::fs::write(&stamp, record.to_string())
                .with_context(|| format!("writing {}", stamp.display()))?;
            (Some(b.generate), Some(b.promtool), b.stats.bytes, Some(b.stats.samples), b.stats.series)
        }
    };

    let native_sum = blocks::summarize(&native)?;
    ensure!(native_sum.blocks > 0, "promtool wrote no blocks into {}", native.display());
    if let Some(n) = gen_samples {
        ensure!(
            native_sum.samples == n,
            "native blocks hold {} samples but {n} were generated",
            native_sum.samples
        );
    }

    remove(&lake)?;
    std::fs::create_dir_all(&lake).with_context(|| format!("creating {}", lake.display()))?;
    let bucket = format!("file://{}", lake.display());
    eprintln!("running {} tools import --bucket {bucket} {}", promlake.display(), native.display());
    let mut cmd = Command::new(&promlake);
    cmd.args(["tools", "import", "--bucket", &bucket]).arg(&native);
    let convert = timing(&checked(&mut cmd, "promlake tools import")?);

    let lake_sum = blocks::summarize(&lake)?;
    check_lake(&native_sum, &lake_sum, &lake)?;

    let report = ConvertReport {
        hosts: cfg.hosts,
        hours: args.data.hours,
        interval_s: cfg.interval_ms as f64 / 1000.0,
        seed: cfg.seed,
        samples: native_sum.samples,
        series,
        openmetrics_bytes: om_bytes,
        generate,
        promtool,
        convert,
        native: Side::new(&native_sum),
        parquet: Side::new(&lake_sum),
        size_ratio: 0.0,
        samples_per_cpu_s: 0.0,
        samples_per_wall_s: 0.0,
        size_target_met: false,
        throughput_target_met: false,
    }
    .finish();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

/// A dataset ready for querying: Prometheus blocks in `native`, the same samples imported into
/// `lake`.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub native: PathBuf,
    pub lake: PathBuf,
    /// Series generated per 2h window (the most of any window).
    pub series: u64,
    /// Samples in the native blocks.
    pub samples: u64,
}

/// Makes sure `DIR/native` and `DIR/lake` hold the data of `args.data` with `--reuse`
/// semantics: DIR/native is rebuilt only when its stamp doesn't match the data flags, and
/// DIR/lake is re-imported only when it was not imported from the current DIR/native (its
/// block sample count differs). `args.work_dir` must be set.
pub fn ensure_dataset(args: &Args, promlake: &Path) -> anyhow::Result<Dataset> {
    let cfg = args.data.config()?;
    let Some(dir) = &args.work_dir else { bail!("ensure_dataset needs a work directory") };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let work = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
    let native = work.join("native");
    let parts = work.join("native.parts");
    let lake = work.join("lake");
    let om = work.join("om");
    let stamp = work.join("native.params.json");
    let params = stamp_params(&cfg, args);
    let (series, rebuilt) = match stamped_series(&stamp, &params) {
        Some(series) if native.is_dir() => {
            eprintln!("reusing {} (built from the same data flags)", native.display());
            (series, false)
        }
        _ => {
            for p in [&stamp, &native, &parts, &om] {
                remove(p)?;
            }
            let b = build_native(args, &cfg, &om, &parts, &native)?;
            let record = serde_json::json!({ "params": params, "series": b.stats.series });
            std::fs::write(&stamp, record.to_string())
                .with_context(|| format!("writing {}", stamp.display()))?;
            (b.stats.series, true)
        }
    };
    let native_sum = blocks::summarize(&native)?;
    ensure!(native_sum.blocks > 0, "promtool wrote no blocks into {}", native.display());
    let lake_ok = !rebuilt
        && lake.is_dir()
        && blocks::summarize(&lake).is_ok_and(|l| l.blocks > 0 && l.samples == native_sum.samples);
    if lake_ok {
        eprintln!("reusing {} (imported from the same blocks)", lake.display());
    } else {
        remove(&lake)?;
        std::fs::create_dir_all(&lake).with_context(|| format!("creating {}", lake.display()))?;
        let bucket = format!("file://{}", lake.display());
        eprintln!("running {} tools import --bucket {bucket} {}", promlake.display(), native.display());
        let mut cmd = Command::new(promlake);
        cmd.args(["tools", "import", "--bucket", &bucket]).arg(&native);
        checked(&mut cmd, "promlake tools import")?;
        check_lake(&native_sum, &blocks::summarize(&lake)?, &lake)?;
    }
    Ok(Dataset { native, lake, series, samples: native_sum.samples })
}

/// The data flags recorded in DIR/native.params.json.
fn stamp_params(cfg: &GenConfig, args: &Args) -> serde_json::Value {
    serde_json::json!({
        "hosts": cfg.hosts, "duration_ms": cfg.duration_ms, "interval_ms": cfg.interval_ms,
        "seed": cfg.seed, "start_ms": cfg.start_ms, "jitter_max_ms": cfg.jitter_max_ms,
        "jitter_hosts": cfg.jitter_hosts, "max_block_duration": args.max_block_duration,
    })
}

/// The series count in the stamp when it records exactly `params`.
fn stamped_series(stamp: &Path, params: &serde_json::Value) -> Option<u64> {
    std::fs::read(stamp)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(|v| v.get("params") == Some(params))
        .and_then(|v| v.get("series").and_then(serde_json::Value::as_u64))
}

/// What building the native blocks measured.
struct Built {
    stats: GenStats,
    generate: Timing,
    promtool: Timing,
}

/// Generates the OpenMetrics files and runs promtool on them, leaving the blocks in `native`.
fn build_native(
    args: &Args,
    cfg: &GenConfig,
    om: &Path,
    parts: &Path,
    native: &Path,
) -> anyhow::Result<Built> {
    for d in [om, parts, native] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    // promtool's default block range; a user-chosen range gets one file and one promtool.
    let window = args.max_block_duration.is_none().then_some(2 * 3_600_000);
    eprintln!(
        "generating {} hosts x {} h @ {} ms into {}",
        cfg.hosts,
        args.data.hours,
        cfg.interval_ms,
        om.display()
    );
    let start = Instant::now();
    let mut files = Vec::new();
    let per_window = generate_split(cfg, window, |w, _| {
        let path = om.join(format!("w{:04}.om", w.index));
        let file = std::fs::File::create(&path)?;
        files.push(path);
        Ok(file)
    })?;
    let wall_s = start.elapsed().as_secs_f64();
    let stats = GenStats {
        series: per_window.iter().map(|s| s.series).max().unwrap_or(0),
        samples: per_window.iter().map(|s| s.samples).sum(),
        bytes: per_window.iter().map(|s| s.bytes).sum(),
    };
    let generate = Timing { wall_s, cpu_s: wall_s, peak_rss_bytes: None };

    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    eprintln!(
        "running {} tsdb create-blocks-from openmetrics on {} file(s), {jobs} at a time",
        args.promtool.display(),
        files.len()
    );
    let mut cmds: Vec<Command> = files
        .iter()
        .enumerate()
        .map(|(i, file)| {
            let mut cmd = Command::new(&args.promtool);
            cmd.args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"]);
            if let Some(d) = &args.max_block_duration {
                cmd.arg(format!("--max-block-duration={d}"));
            }
            cmd.arg(file).arg(parts.join(format!("w{i:04}")));
            cmd.stdin(Stdio::null()).stdout(std::io::stderr());
            cmd
        })
        .collect();
    let batch = measure::run_all(&mut cmds, jobs).context("starting promtool")?;
    if let Some(i) = batch.statuses.iter().position(|s| !s.success()) {
        bail!("promtool failed with {} on {}: {:?}", batch.statuses[i], files[i].display(), cmds[i]);
    }
    // Gather every block into one data directory.
    for part in read_dir(parts)? {
        for block in read_dir(&part)? {
            if let Some(name) = block.file_name() {
                let to = native.join(name);
                std::fs::rename(&block, &to)
                    .with_context(|| format!("moving {} to {}", block.display(), to.display()))?;
            }
        }
    }
    remove(parts)?;
    if !args.keep_input {
        remove(om)?;
    }
    Ok(Built { stats, generate, promtool: timing(&batch.usage) })
}

fn read_dir(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        out.push(entry.with_context(|| format!("listing {}", dir.display()))?.path());
    }
    out.sort();
    Ok(out)
}

fn check_lake(native: &BlocksSummary, lake: &BlocksSummary, dir: &Path) -> anyhow::Result<()> {
    if lake.blocks == 0 {
        bail!("promlake tools import exited 0 but wrote no block (no */meta.json) under {}", dir.display());
    }
    if lake.samples != native.samples {
        bail!(
            "sample count mismatch: the lake's meta.json files sum to {} samples, the native blocks to {} \
             ({} lake blocks, {} native blocks)",
            lake.samples,
            native.samples,
            lake.blocks,
            native.blocks
        );
    }
    Ok(())
}

/// Runs a measured child with stdout redirected to our stderr (our stdout is the report) and
/// fails on a non-zero exit.
fn checked(cmd: &mut Command, what: &str) -> anyhow::Result<Usage> {
    cmd.stdin(Stdio::null()).stdout(std::io::stderr());
    let usage = measure::run(cmd).with_context(|| format!("starting {what} ({cmd:?})"))?;
    if !usage.status.success() {
        bail!("{what} failed with {} after {:.1} s: {cmd:?}", usage.status, usage.wall.as_secs_f64());
    }
    Ok(usage)
}

fn timing(u: &Usage) -> Timing {
    Timing { wall_s: u.wall.as_secs_f64(), cpu_s: u.cpu_s(), peak_rss_bytes: u.peak_rss_bytes }
}

fn remove(path: &Path) -> anyhow::Result<()> {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else if path.exists() {
        std::fs::remove_file(path)
    } else {
        Ok(())
    };
    result.with_context(|| format!("removing {}", path.display()))
}

pub fn default_promlake() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("release").join("promlake");
    }
    if let Ok(exe) = std::env::current_exe() {
        let sibling = exe.with_file_name("promlake");
        if sibling.is_file() {
            return sibling;
        }
    }
    PathBuf::from("target/release/promlake")
}
