//! `promlake-bench query`: PromQL range-query latency of `promlake query` against Prometheus 2.42
//! serving the same blocks.
//!
//! ```text
//! convert (--reuse) ──► DIR/native ──copy──► prometheus --storage.tsdb.path
//!                       DIR/lake   ─────────► promlake query --bucket file://DIR/lake
//! ```
//!
//! Every query runs over 1h, 6h and 24h ranges ending at the data's end, alternately against
//! both servers: one warm-up each, then `--runs` timed runs each; the reported time is the median
//! wall time of the whole HTTP request (connect, send, read the full JSON body).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde::Serialize;

use super::convert;
use super::dataset::{Dataset, DatasetArgs};

/// Geometric mean of promlake/Prometheus time ratios must be at most this.
pub const TARGET_GEOMEAN_RATIO: f64 = 0.7;
/// No single query may take more than this multiple of Prometheus's time.
pub const TARGET_WORST_RATIO: f64 = 1.5;
/// The dataset must span at least this many hours (the longest range is 24h).
const MIN_HOURS: f64 = 24.0;
/// ... and hold at least this many series.
const MIN_SERIES: u64 = 1000;
/// Query ranges, seconds.
const RANGES_S: [i64; 3] = [3_600, 6 * 3_600, 24 * 3_600];

/// The benchmarked queries: (short name, PromQL).
pub(super) const QUERIES: &[(&str, &str)] = &[
    ("selector", "node_load1"),
    ("rate", "rate(node_network_receive_bytes_total[5m])"),
    ("sum-rate", "sum by (instance) (rate(node_cpu_seconds_total[5m]))"),
    (
        "hist-quantile",
        "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    ("avg-over-time", "avg_over_time(node_memory_MemAvailable_bytes[10m])"),
    ("max-over-time", "max_over_time(node_load5[1h])"),
    ("topk", "topk(5, sum by (instance) (rate(node_cpu_seconds_total{mode!=\"idle\"}[5m])))"),
    (
        "rate-ratio",
        "rate(http_request_duration_seconds_sum[5m]) / rate(http_request_duration_seconds_count[5m])",
    ),
];

/// Flags of `query`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// The Prometheus 2.42 server binary.
    #[arg(long, env = "PROMLAKE_BENCH_PROMETHEUS", default_value = "prometheus")]
    pub prometheus: PathBuf,
    /// Timed runs per query, range and server (after one warm-up each).
    #[arg(long, env = "PROMLAKE_BENCH_RUNS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Print the report as JSON instead of text.
    #[arg(long, env = "PROMLAKE_BENCH_JSON", default_value_t = false)]
    pub json: bool,
}

/// One query over one range.
#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    pub name: String,
    pub query: String,
    pub range: String,
    pub step_s: i64,
    pub prometheus_ms: f64,
    pub promlake_ms: f64,
    /// `promlake_ms / prometheus_ms`.
    pub ratio: f64,
    pub prometheus_series: usize,
    pub promlake_series: usize,
    /// Problems found comparing the two answers (status, series count).
    pub warnings: Vec<String>,
}

/// The whole benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct QueryReport {
    pub hosts: u32,
    pub hours: f64,
    pub series: u64,
    pub samples: u64,
    pub runs: u32,
    pub end_s: i64,
    pub results: Vec<QueryResult>,
    pub geomean_ratio: f64,
    pub worst_ratio: f64,
    pub worst: String,
    pub geomean_target: f64,
    pub worst_target: f64,
    pub geomean_target_met: bool,
    pub worst_target_met: bool,
    pub warnings: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    ensure!(
        args.dataset.hours >= MIN_HOURS,
        "--hours must be at least {MIN_HOURS} (the longest range is 24h)"
    );
    let data = args.dataset.data();
    let cfg = data.config()?;
    let Dataset { convert: convert_args, promlake, temp: _temp } = args.dataset.dataset("query")?;
    ensure!(
        promlake.is_file(),
        "promlake binary not found at {}; build it with `cargo build --release -p promlake` or pass --promlake",
        promlake.display()
    );
    let work = convert_args.work_dir.clone().unwrap_or_default();
    let ds = convert::ensure_dataset(&convert_args, &promlake)?;
    ensure!(
        ds.series >= MIN_SERIES,
        "the dataset has {} series, fewer than {MIN_SERIES}: raise --hosts",
        ds.series
    );
    let work = ds.lake.parent().map(Path::to_path_buf).unwrap_or(work);

    // Prometheus gets a private copy: it takes a lock, writes a WAL and may touch the blocks.
    let prom_data = tempfile::Builder::new().prefix("prometheus-data-").tempdir_in(&work)?;
    let tsdb = prom_data.path().join("tsdb");
    copy_dir(&ds.native, &tsdb)?;
    let conf = prom_data.path().join("prometheus.yml");
    std::fs::write(&conf, "global: {}\n").with_context(|| format!("writing {}", conf.display()))?;

    let prom_port = free_port()?;
    let mut cmd = Command::new(&args.prometheus);
    cmd.arg(format!("--config.file={}", conf.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg("--storage.tsdb.retention.time=100y")
        // No background compaction of the 2h blocks while we measure.
        .arg("--storage.tsdb.max-block-duration=2h")
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"));
    let mut prometheus = Server::start("prometheus", cmd, prom_port, &work.join("prometheus.log"))?;

    let lake_port = free_port()?;
    let mut cmd = Command::new(&promlake);
    cmd.args(["query", "--bucket", &format!("file://{}", ds.lake.display())])
        .args(["--http-address", &format!("127.0.0.1:{lake_port}")])
        .args(["--grpc-address", &format!("127.0.0.1:{}", free_port()?)])
        .env("PROMLAKE_LOG_LEVEL", "warn");
    let mut lake = Server::start("promlake query", cmd, lake_port, &work.join("promlake-query.log"))?;

    prometheus.wait_ready(Duration::from_secs(120))?;
    lake.wait_ready(Duration::from_secs(120))?;

    let end_s = (cfg.start_ms + cfg.duration_ms) / 1000;
    let mut results = Vec::new();
    for &(name, query) in QUERIES {
        for range_s in RANGES_S {
            let step_s = (range_s as f64 / 250.0).round().max(15.0) as i64;
            let path = format!(
                "/api/v1/query_range?query={}&start={}&end={end_s}&step={step_s}",
                enc(query),
                end_s - range_s
            );
            let r = measure_pair(&prometheus, &lake, &path, args.runs)
                .with_context(|| format!("query {name} over {}", fmt_range(range_s)))?;
            let mut warnings = Vec::new();
            for (who, a) in [("prometheus", &r.prom), ("promlake", &r.lake)] {
                if let Some(e) = &a.error {
                    warnings.push(format!("{who}: {e}"));
                }
            }
            if r.prom.series != r.lake.series {
                warnings.push(format!(
                    "series count differs: prometheus {}, promlake {}",
                    r.prom.series, r.lake.series
                ));
            }
            for w in &warnings {
                eprintln!("warning: {name} [{}]: {w}", fmt_range(range_s));
            }
            let res = QueryResult {
                name: name.to_string(),
                query: query.to_string(),
                range: fmt_range(range_s),
                step_s,
                prometheus_ms: r.prom_ms,
                promlake_ms: r.lake_ms,
                ratio: r.lake_ms / r.prom_ms.max(1e-6),
                prometheus_series: r.prom.series,
                promlake_series: r.lake.series,
                warnings,
            };
            if !args.json {
                eprintln!(
                    "{name:>14} {:>4}: prometheus {:8.2} ms, promlake {:8.2} ms",
                    res.range, res.prometheus_ms, res.promlake_ms
                );
            }
            results.push(res);
        }
    }
    drop(lake);
    drop(prometheus);

    let report = finish(&args, &ds, end_s, results);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

fn finish(args: &Args, ds: &convert::Dataset, end_s: i64, results: Vec<QueryResult>) -> QueryReport {
    let n = results.len().max(1) as f64;
    let geomean_ratio = (results.iter().map(|r| r.ratio.max(1e-9).ln()).sum::<f64>() / n).exp();
    let (worst, worst_ratio) = results
        .iter()
        .max_by(|a, b| a.ratio.total_cmp(&b.ratio))
        .map(|r| (format!("{} [{}]", r.name, r.range), r.ratio))
        .unwrap_or_default();
    let warnings = results.iter().map(|r| r.warnings.len()).sum();
    QueryReport {
        hosts: args.dataset.hosts,
        hours: args.dataset.hours,
        series: ds.series,
        samples: ds.samples,
        runs: args.runs,
        end_s,
        geomean_ratio,
        worst_ratio,
        worst,
        geomean_target: TARGET_GEOMEAN_RATIO,
        worst_target: TARGET_WORST_RATIO,
        geomean_target_met: geomean_ratio <= TARGET_GEOMEAN_RATIO,
        worst_target_met: worst_ratio <= TARGET_WORST_RATIO,
        warnings,
        results,
    }
}

fn render(r: &QueryReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "PromQL range queries: {} hosts x {}h, {} series, {} samples; median of {} runs",
        r.hosts, r.hours, r.series, r.samples, r.runs
    );
    let _ = writeln!(
        s,
        "{:<14} {:>5} {:>6} {:>14} {:>12} {:>7} {:>9}",
        "query", "range", "step", "prometheus ms", "promlake ms", "ratio", "series"
    );
    for q in &r.results {
        let flag = if q.warnings.is_empty() { "" } else { "  (!)" };
        let _ = writeln!(
            s,
            "{:<14} {:>5} {:>5}s {:>14.2} {:>12.2} {:>7.2} {:>9}{flag}",
            q.name, q.range, q.step_s, q.prometheus_ms, q.promlake_ms, q.ratio, q.promlake_series
        );
    }
    let ok = |b: bool| if b { "met" } else { "NOT met" };
    let _ = writeln!(
        s,
        "geometric mean ratio {:.3} (target <= {}: {})",
        r.geomean_ratio,
        r.geomean_target,
        ok(r.geomean_target_met)
    );
    let _ = writeln!(
        s,
        "worst ratio          {:.3} {} (target <= {}: {})",
        r.worst_ratio,
        r.worst,
        r.worst_target,
        ok(r.worst_target_met)
    );
    if r.warnings > 0 {
        let _ = writeln!(s, "{} warning(s), marked (!) above", r.warnings);
    }
    let _ = writeln!(s, "queries:");
    for (name, q) in QUERIES {
        let _ = writeln!(s, "  {name:<14} {q}");
    }
    s
}

/// What one answer looked like.
#[derive(Debug, Clone, Default)]
struct Answer {
    series: usize,
    /// Set when the answer was not a successful matrix.
    error: Option<String>,
}

#[derive(Debug)]
struct Pair {
    prom_ms: f64,
    lake_ms: f64,
    prom: Answer,
    lake: Answer,
}

/// Warm-up once on each server, then `runs` timed runs alternating between them.
fn measure_pair(prom: &Server, lake: &Server, path: &str, runs: u32) -> anyhow::Result<Pair> {
    let (_, prom_answer) = timed(prom, path)?;
    let (_, lake_answer) = timed(lake, path)?;
    let mut p = Vec::new();
    let mut l = Vec::new();
    for _ in 0..runs {
        p.push(timed(prom, path)?.0);
        l.push(timed(lake, path)?.0);
    }
    Ok(Pair { prom_ms: median(&mut p), lake_ms: median(&mut l), prom: prom_answer, lake: lake_answer })
}

/// One request: wall milliseconds and what came back.
fn timed(server: &Server, path: &str) -> anyhow::Result<(f64, Answer)> {
    let start = Instant::now();
    let (status, body) = http_get(server.port, path)
        .with_context(|| format!("GET {path} from {} on port {}", server.what, server.port))?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    Ok((ms, inspect(status, &body)))
}

fn inspect(status: u16, body: &[u8]) -> Answer {
    let json: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Answer { series: 0, error: Some(format!("HTTP {status}, body is not JSON: {e}")) };
        }
    };
    let ok = json.get("status").and_then(|s| s.as_str()) == Some("success");
    let series = json.pointer("/data/result").and_then(|r| r.as_array()).map_or(0, Vec::len);
    let error = (!ok || status != 200).then(|| {
        let e = json.get("error").and_then(|e| e.as_str()).unwrap_or("no error message");
        format!("HTTP {status}, status {}: {e}", json.get("status").unwrap_or(&serde_json::Value::Null))
    });
    Answer { series, error }
}

pub(super) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn fmt_range(s: i64) -> String {
    if s % 3600 == 0 { format!("{}h", s / 3600) } else { format!("{}m", s / 60) }
}

/// A child server, killed (and reaped) on drop, so also on every error path.
#[derive(Debug)]
pub(super) struct Server {
    what: &'static str,
    pub(super) child: Child,
    pub(super) port: u16,
    log: PathBuf,
}

impl Server {
    pub(super) fn start(
        what: &'static str,
        mut cmd: Command,
        port: u16,
        log: &Path,
    ) -> anyhow::Result<Server> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().with_context(|| format!("starting {what}: {cmd:?}"))?;
        eprintln!("started {what} (pid {}) on 127.0.0.1:{port}, log {}", child.id(), log.display());
        Ok(Server { what, child, port, log: log.to_path_buf() })
    }

    /// Waits until `/-/ready` answers 200.
    pub(super) fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited early with {status}; see {}", self.what, self.log.display());
            }
            if matches!(http_get(self.port, "/-/ready"), Ok((200, _))) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} not ready within {timeout:?}; see {}", self.what, self.log.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            eprintln!("{} had exited: {status}; see {}", self.what, self.log.display());
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
pub(super) fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind(("127.0.0.1", 0)).context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A minimal HTTP/1.1 GET: status and body, with `Content-Length`, chunked and
/// read-to-close bodies.
pub(super) fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(300)))?;
    s.set_nodelay(true)?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!("no end of HTTP headers in {} bytes", raw.len());
    };
    let head = std::str::from_utf8(&raw[..split]).context("HTTP headers are not UTF-8")?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("bad HTTP status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        } else if name == "content-length" {
            length = Some(value.parse::<usize>().with_context(|| format!("bad Content-Length {value:?}"))?);
        }
    }
    if chunked {
        return Ok((status, dechunk(body)?));
    }
    match length {
        Some(n) => {
            ensure!(body.len() >= n, "body cut short: {} of {n} bytes", body.len());
            Ok((status, body[..n].to_vec()))
        }
        None => Ok((status, body.to_vec())),
    }
}

fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else { bail!("truncated chunk size") };
        let size = std::str::from_utf8(&rest[..eol]).context("chunk size is not UTF-8")?;
        let size = size.split(';').next().unwrap_or_default().trim();
        let n = usize::from_str_radix(size, 16).with_context(|| format!("bad chunk size {size:?}"))?;
        rest = &rest[eol + 2..];
        if n == 0 {
            return Ok(out);
        }
        ensure!(rest.len() >= n + 2, "truncated chunk");
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n + 2..];
    }
}

/// Percent-encodes a query parameter value.
pub(super) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Copies a directory tree (the block directories) into `to`.
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let entry = entry.with_context(|| format!("listing {}", from.display()))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}
