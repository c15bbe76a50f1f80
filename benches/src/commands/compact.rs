//! `promlake-bench compact`: compaction throughput and peak memory of `promlake compact` against
//! Prometheus 2.42's own TSDB compaction on the same blocks, plus in-process downsampling
//! throughput.
//!
//! - promlake: the dataset's `lake/` (Parquet) blocks are copied into a temporary `file://`
//!   bucket and one `promlake compact --delete-delay=0s --downsampling.disable` pass runs over
//!   them; CPU is the child's utime + stime (exact, from `cutime`/`cstime` once reaped), peak
//!   memory its `VmHWM`, sampled every 20 ms.
//! - Prometheus: the dataset's `native/` blocks are copied into a temporary data dir and
//!   Prometheus started on it with default block ranges; its TSDB loop compacts the 2h blocks
//!   into 6h/18h/... ones about a minute after start. Compaction is taken as started when the
//!   first new entry (`<ulid>.tmp-for-creation`) appears in the data dir and as finished when
//!   `prometheus_tsdb_compactions_total`, the directory and the process CPU have all been quiet
//!   for `--settle`. Its compaction CPU is the process CPU from just before the start to the end
//!   (an upper bound; `prometheus_tsdb_compaction_duration_seconds_sum` is reported beside it).
//! - Downsampling: every series of the lake, concatenated over its blocks, is downsampled to
//!   5m windows with [`promlake_engine::compact::downsample::downsample_raw`] on this thread,
//!   timing only that call.
//!
//! Throughput is the dataset's samples (`stats.numSamples` of the input blocks) per CPU-second;
//! "rewritten" counts the samples of every block the compactor wrote, intermediate ones included.
//! The dataset directories are only read, never modified.

use anyhow::{Context, Result, bail};
use clap::Args as ClapArgs;
use promlake_benches::blocks::{read_stats, summarize};
use promlake_engine::compact::downsample::downsample_raw;
use promlake_engine::compact::input::{Input, SeriesData};
use promlake_engine::parquet::RES_5M;
use promlake_engine::{Bucket, BucketConfig, Labels};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Flags of `compact`.
#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// Dataset directory holding `native/` (Prometheus blocks) and `lake/` (the same as Parquet),
    /// as written by `promlake-bench convert` (default: $CARGO_TARGET_DIR/promlake-bench/5x24h).
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// The promlake binary (a release build).
    #[arg(long, default_value_os_t = super::convert::default_promlake())]
    promlake: PathBuf,
    /// The Prometheus binary (2.42).
    #[arg(long, default_value = "prometheus")]
    prometheus: String,
    /// Quiet time after which Prometheus's compaction counts as finished, in seconds.
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
    /// Give up when Prometheus has not finished compacting after this many seconds.
    #[arg(long, default_value_t = 600)]
    prometheus_timeout: u64,
    /// Downsampling runs (the fastest is reported).
    #[arg(long, default_value_t = 3)]
    downsample_runs: usize,
    /// Skip the promlake compactor run.
    #[arg(long)]
    skip_promlake: bool,
    /// Skip the Prometheus run.
    #[arg(long)]
    skip_prometheus: bool,
    /// Skip the downsampling measurement.
    #[arg(long)]
    skip_downsample: bool,
}

/// What one compactor run measured.
#[derive(Debug, Default, Clone)]
struct Run {
    wall_s: f64,
    cpu_s: f64,
    peak_rss: u64,
    idle_rss: Option<u64>,
    rewritten_samples: u64,
    new_blocks: usize,
    blocks_after: usize,
    /// Prometheus only: `prometheus_tsdb_compaction_duration_seconds_sum`.
    compaction_seconds_metric: Option<f64>,
    /// Prometheus only: `prometheus_tsdb_compactions_total`.
    compactions: Option<f64>,
}

/// Runs the benchmark and prints its table.
pub fn run(args: Args) -> Result<()> {
    let dataset = args.dataset.clone().unwrap_or_else(default_dataset);
    let (native, lake) = (dataset.join("native"), dataset.join("lake"));
    let native_sum = summarize(&native)?;
    let lake_sum = summarize(&lake)?;
    if native_sum.blocks == 0 || lake_sum.blocks == 0 {
        bail!("{} needs blocks in native/ and lake/ (run `promlake-bench convert` first)", dataset.display());
    }
    println!(
        "dataset {}: {} samples, {} series-blocks; native {} blocks, lake {} blocks ({} samples)",
        dataset.display(),
        native_sum.samples,
        native_sum.series,
        native_sum.blocks,
        lake_sum.blocks,
        lake_sum.samples
    );

    let ours = if args.skip_promlake { None } else { Some(run_promlake(&args, &lake)?) };
    let theirs = if args.skip_prometheus { None } else { Some(run_prometheus(&args, &native)?) };
    let down = if args.skip_downsample { None } else { Some(downsample(&lake, args.downsample_runs)?) };

    println!();
    println!(
        "{:<11} {:>12} {:>9} {:>9} {:>14} {:>12} {:>14} {:>10} {:>10} {:>8}",
        "compactor",
        "samples",
        "wall s",
        "CPU s",
        "samples/CPU-s",
        "rewritten",
        "rewritten/CPU",
        "peak RSS",
        "idle RSS",
        "new→left"
    );
    let row = |name: &str, samples: u64, r: &Run| {
        println!(
            "{:<11} {:>12} {:>9.2} {:>9.2} {:>14.0} {:>12} {:>14.0} {:>10} {:>10} {:>8}",
            name,
            samples,
            r.wall_s,
            r.cpu_s,
            samples as f64 / r.cpu_s,
            r.rewritten_samples,
            r.rewritten_samples as f64 / r.cpu_s,
            mib(r.peak_rss),
            r.idle_rss.map_or_else(|| "-".to_string(), mib),
            format!("{}→{}", r.new_blocks, r.blocks_after),
        );
    };
    if let Some(r) = &ours {
        row("promlake", lake_sum.samples, r);
    }
    if let Some(r) = &theirs {
        row("prometheus", native_sum.samples, r);
        println!(
            "prometheus: {} compactions, compaction_duration_seconds_sum {:.2}s ({:.0} samples/s by it)",
            r.compactions.unwrap_or(f64::NAN),
            r.compaction_seconds_metric.unwrap_or(f64::NAN),
            native_sum.samples as f64 / r.compaction_seconds_metric.unwrap_or(f64::NAN)
        );
    }
    if let (Some(o), Some(t)) = (&ours, &theirs) {
        let tp = (lake_sum.samples as f64 / o.cpu_s) / (native_sum.samples as f64 / t.cpu_s);
        let rw = (o.rewritten_samples as f64 / o.cpu_s) / (t.rewritten_samples as f64 / t.cpu_s);
        let mem = o.peak_rss as f64 / t.peak_rss as f64;
        println!(
            "promlake/prometheus: throughput {tp:.2}x by dataset samples (target >= 3x), {rw:.2}x by rewritten samples; peak RSS {mem:.2}x (target <= 0.5x){}",
            t.idle_rss.map_or_else(String::new, |idle| format!(
                ", peak RSS vs Prometheus's growth over idle {:.2}x",
                o.peak_rss as f64 / t.peak_rss.saturating_sub(idle).max(1) as f64
            ))
        );
    }
    if let Some(d) = &down {
        println!(
            "downsampling (raw -> 5m, 1 thread): {} series, {} raw samples -> {} windows in {:.3}s CPU ({:.3}s wall): {:.1}M raw samples/s/core (target >= 20M)",
            d.series,
            d.samples,
            d.windows,
            d.cpu_s,
            d.wall_s,
            d.samples as f64 / d.cpu_s.max(1e-9) / 1e6
        );
    }
    Ok(())
}

fn default_dataset() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("promlake-bench").join("5x24h")
}

fn mib(b: u64) -> String {
    format!("{:.1}MiB", b as f64 / (1024.0 * 1024.0))
}

// ---- promlake ------------------------------------------------------------------------------

fn run_promlake(args: &Args, lake: &Path) -> Result<Run> {
    let tmp = tempfile::tempdir().context("creating a temp dir")?;
    let bucket = tmp.path().join("bucket");
    copy_dir(lake, &bucket)?;
    let mut watch = BlockWatch::new(&bucket)?;
    let log_path = tmp.path().join("promlake-compact.log");
    let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let mut cmd = Command::new(&args.promlake);
    cmd.arg("compact")
        .arg(format!("--bucket=file://{}", bucket.display()))
        .args(["--delete-delay=0s", "--downsampling.disable", "--http-address=127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    println!("promlake: compacting a copy of {} ...", lake.display());
    let before = children_ticks();
    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {}", args.promlake.display()))?;
    let pid = child.id();
    let (mut polled_cpu, mut hwm) = (0.0, 0u64);
    let status = loop {
        if let Some(c) = proc_cpu(pid) {
            polled_cpu = c;
        }
        if let Some(h) = proc_status_kb(pid, "VmHWM:") {
            hwm = hwm.max(h * 1024);
        }
        watch.poll();
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall_s = start.elapsed().as_secs_f64();
    watch.poll();
    if !status.success() {
        bail!("promlake compact failed ({status}); log:\n{}", tail(&log_path));
    }
    let cpu_s = match (before, children_ticks()) {
        (Some(b), Some(a)) => (a.saturating_sub(b)) as f64 / 100.0,
        _ => polled_cpu,
    };
    Ok(Run {
        wall_s,
        cpu_s: cpu_s.max(polled_cpu),
        peak_rss: hwm,
        rewritten_samples: watch.new_samples(),
        new_blocks: watch.new.len(),
        blocks_after: count_blocks(&bucket),
        ..Default::default()
    })
}

// ---- Prometheus ----------------------------------------------------------------------------

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_prometheus(args: &Args, native: &Path) -> Result<Run> {
    let tmp = tempfile::tempdir().context("creating a temp dir")?;
    let data = tmp.path().join("data");
    copy_dir(native, &data)?;
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\nscrape_configs: []\n")?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log_path = tmp.path().join("prometheus.log");
    let log = std::fs::File::create(&log_path)?;
    let mut watch = BlockWatch::new(&data)?;
    let mut cmd = Command::new(&args.prometheus);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=100y")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    println!(
        "prometheus: starting on a copy of {} (its TSDB compacts about a minute after start) ...",
        native.display()
    );
    let mut child = Killed(cmd.spawn().with_context(|| format!("starting {}", args.prometheus))?);
    let pid = child.0.id();
    let deadline = Instant::now() + Duration::from_secs(args.prometheus_timeout);
    let settle = Duration::from_secs_f64(args.settle.max(0.5));

    let (mut prev_cpu, mut prev_rss) = (0.0, None);
    let mut started: Option<(Instant, f64, Option<u64>)> = None;
    let (mut last_change, mut last_total, mut last_entries) = (Instant::now(), None::<f64>, 0usize);
    let mut quiet_cpu = 0.0;
    let mut next_metrics = Instant::now();
    let mut metrics = (None, None);
    loop {
        if let Some(status) = child.0.try_wait()? {
            bail!("prometheus exited early ({status}); log:\n{}", tail(&log_path));
        }
        if Instant::now() > deadline {
            bail!(
                "prometheus did not finish compacting within {}s (started: {}); log:\n{}",
                args.prometheus_timeout,
                started.is_some(),
                tail(&log_path)
            );
        }
        let cpu = proc_cpu(pid).unwrap_or(prev_cpu);
        let entries = watch.poll();
        if started.is_none() && entries > 0 {
            started = Some((Instant::now(), prev_cpu, prev_rss));
            println!("prometheus: compaction started");
        }
        if entries != last_entries {
            (last_entries, last_change, quiet_cpu) = (entries, Instant::now(), cpu);
        }
        if Instant::now() >= next_metrics {
            next_metrics = Instant::now() + Duration::from_millis(500);
            if let Ok(body) = http_get(port, "/metrics") {
                metrics = (
                    metric(&body, "prometheus_tsdb_compactions_total"),
                    metric(&body, "prometheus_tsdb_compaction_duration_seconds_sum"),
                );
                if metrics.0 != last_total {
                    (last_total, last_change, quiet_cpu) = (metrics.0, Instant::now(), cpu);
                }
            }
        }
        if cpu - quiet_cpu > 0.05 * settle.as_secs_f64() {
            (last_change, quiet_cpu) = (Instant::now(), cpu);
        }
        if let Some((t0, cpu0, rss0)) = started
            && metrics.0.unwrap_or(0.0) >= 1.0
            && last_change.elapsed() >= settle
        {
            let hwm = proc_status_kb(pid, "VmHWM:").unwrap_or(0) * 1024;
            // Process CPU up to now (the quiet tail included): an upper bound.
            let cpu_end = proc_cpu(pid).unwrap_or(cpu).max(quiet_cpu);
            let run = Run {
                wall_s: last_change.duration_since(t0).as_secs_f64(),
                cpu_s: cpu_end - cpu0,
                peak_rss: hwm,
                idle_rss: rss0,
                rewritten_samples: watch.new_samples(),
                new_blocks: watch.new.len(),
                blocks_after: count_blocks(&data),
                compaction_seconds_metric: metrics.1,
                compactions: metrics.0,
            };
            return Ok(run);
        }
        prev_cpu = cpu;
        prev_rss = proc_status_kb(pid, "VmRSS:").map(|k| k * 1024).or(prev_rss);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of an unlabelled metric in Prometheus's text format.
fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A minimal HTTP/1.0 GET returning the body of a 200 response.
fn http_get(port: u16, path: &str) -> Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").context("no end of HTTP headers")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_string())
}

// ---- shared measurement helpers -------------------------------------------------------------

/// New block directories appearing under a blocks directory, and their samples.
struct BlockWatch {
    dir: PathBuf,
    initial: HashSet<String>,
    /// Finished new blocks (with a `meta.json`) and their `stats.numSamples`.
    new: HashMap<String, u64>,
}

impl BlockWatch {
    fn new(dir: &Path) -> Result<Self> {
        let initial = entries(dir).into_iter().collect();
        Ok(BlockWatch { dir: dir.to_path_buf(), initial, new: HashMap::new() })
    }

    /// Records finished new blocks; returns how many entries not present at the start were
    /// ever seen (temporary ones included), so a change means progress.
    fn poll(&mut self) -> usize {
        for name in entries(&self.dir) {
            if self.initial.contains(&name) || self.new.contains_key(&name) || name.contains(".tmp") {
                continue;
            }
            if let Ok((samples, _)) = read_stats(&self.dir.join(&name).join("meta.json")) {
                self.new.insert(name, samples);
            }
        }
        let tmp =
            entries(&self.dir).iter().filter(|n| !self.initial.contains(*n) && n.contains(".tmp")).count();
        self.new.len() * 2 + tmp
    }

    fn new_samples(&self) -> u64 {
        self.new.values().sum()
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

fn count_blocks(dir: &Path) -> usize {
    entries(dir).iter().filter(|n| dir.join(n).join("meta.json").is_file()).count()
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    Ok(())
}

/// utime + stime of `pid`, in seconds (`/proc/<pid>/stat` fields 14 and 15).
fn proc_cpu(pid: u32) -> Option<f64> {
    stat_ticks(&format!("/proc/{pid}/stat"), 14).map(|t| t as f64 / 100.0)
}

/// `cutime + cstime` of this process in clock ticks: the CPU of reaped children.
fn children_ticks() -> Option<u64> {
    stat_ticks("/proc/self/stat", 16)
}

/// The sum of fields `first` and `first + 1` (1-based, as in proc(5)) of a stat file.
fn stat_ticks(path: &str, first: usize) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3.
    let a: u64 = f.get(first - 3)?.parse().ok()?;
    let b: u64 = f.get(first - 2)?.parse().ok()?;
    Some(a + b)
}

/// CPU seconds of the calling thread.
fn thread_cpu() -> Option<f64> {
    stat_ticks("/proc/thread-self/stat", 14).map(|t| t as f64 / 100.0)
}

fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

// ---- downsampling ---------------------------------------------------------------------------

struct Downsampled {
    series: usize,
    samples: u64,
    windows: u64,
    cpu_s: f64,
    wall_s: f64,
}

/// Reads every series of the lake (concatenated over blocks, in time order) and downsamples
/// them to 5m windows on this thread, `runs` times; the fastest run by CPU time is returned.
fn downsample(lake: &Path, runs: usize) -> Result<Downsampled> {
    println!("downsampling: reading {} ...", lake.display());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let bucket = Bucket::open(&BucketConfig::from_url(format!("file://{}", lake.display())))?;
    let blocks = rt.block_on(bucket.list_blocks())?;
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut series: Vec<(Vec<i64>, Vec<f64>)> = Vec::new();
    for info in &blocks {
        let input = rt.block_on(Input::open(&bucket, info))?;
        let data = input.read(rt.handle(), 0..input.len())?;
        for (i, d) in data.into_iter().enumerate() {
            let (SeriesData::Raw(ts, vals), Some(labels)) = (d, input.labels(i)) else {
                bail!("block {} is not a raw block", info.meta.ulid);
            };
            let slot = *index.entry(labels.clone()).or_insert_with(|| {
                series.push((Vec::new(), Vec::new()));
                series.len() - 1
            });
            if let Some((t, v)) = series.get_mut(slot) {
                t.extend_from_slice(&ts);
                v.extend_from_slice(&vals);
            }
        }
    }
    drop(rt);
    let samples: u64 = series.iter().map(|(t, _)| t.len() as u64).sum();
    let mut best: Option<Downsampled> = None;
    for _ in 0..runs.max(1) {
        let (c0, t0) = (thread_cpu(), Instant::now());
        let mut windows = 0u64;
        for (ts, vals) in &series {
            let out = downsample_raw(std::hint::black_box(ts), std::hint::black_box(vals), RES_5M);
            windows += std::hint::black_box(out).map_or(0, |a| a.len() as u64);
        }
        let wall_s = t0.elapsed().as_secs_f64();
        let cpu_s = match (c0, thread_cpu()) {
            (Some(a), Some(b)) if b > a => b - a,
            _ => wall_s,
        };
        if best.as_ref().is_none_or(|b| cpu_s < b.cpu_s) {
            best = Some(Downsampled { series: series.len(), samples, windows, cpu_s, wall_s });
        }
    }
    best.context("no downsampling run")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unlabelled_metrics() {
        let body = "# HELP x\nprometheus_tsdb_compactions_total 4\n\
                    prometheus_tsdb_compactions_total_other 9\n\
                    prometheus_tsdb_compaction_duration_seconds_sum 1.5\n";
        assert_eq!(metric(body, "prometheus_tsdb_compactions_total"), Some(4.0));
        assert_eq!(metric(body, "prometheus_tsdb_compaction_duration_seconds_sum"), Some(1.5));
        assert_eq!(metric(body, "missing"), None);
    }

    #[test]
    fn watches_new_blocks_and_copies_dirs() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("01OLD"))?;
        std::fs::write(src.join("01OLD/meta.json"), r#"{"stats":{"numSamples":5,"numSeries":1}}"#)?;
        let copy = dir.path().join("copy");
        copy_dir(&src, &copy)?;
        let mut watch = BlockWatch::new(&copy)?;
        assert_eq!(watch.poll(), 0);
        std::fs::create_dir_all(copy.join("01NEW.tmp-for-creation"))?;
        assert_eq!(watch.poll(), 1);
        std::fs::rename(copy.join("01NEW.tmp-for-creation"), copy.join("01NEW"))?;
        std::fs::write(copy.join("01NEW/meta.json"), r#"{"stats":{"numSamples":7,"numSeries":1}}"#)?;
        assert_eq!(watch.poll(), 2);
        assert_eq!((watch.new_samples(), count_blocks(&copy)), (7, 2));
        assert!(src.join("01OLD/meta.json").is_file() && !src.join("01NEW").exists());
        Ok(())
    }

    #[test]
    fn measures_own_cpu() {
        let c = thread_cpu().unwrap_or(-1.0);
        assert!(c >= 0.0, "{c}");
        assert!(proc_cpu(std::process::id()).is_some_and(|p| p >= c));
    }
}
