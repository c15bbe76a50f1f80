//! `promlake-bench store`: the StoreAPI path on an existing lake (by default the query
//! benchmark's 5 hosts x 24h, built by `promlake-bench query`).
//!
//! 1. Series streaming: every series of the lake over `thanos.Store/Series` from `promlake
//!    store`, counted from the XOR chunk headers (no decoding on the client): samples per second
//!    of wall time and per CPU-second of the store process.
//! 2. Query latency through `promlake query --endpoint <store>` against `promlake query --bucket`
//!    (in process) on the same lake: the query benchmark's queries over 24h, median of `--runs`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use promlake_proto::thanos::label_matcher::Type as MatchType;
use promlake_proto::thanos::series_response::Result as Frame;
use promlake_proto::thanos::store_client::StoreClient;
use promlake_proto::thanos::{LabelMatcher, SeriesRequest};

use super::query::{QUERIES, Server, enc, free_port, http_get, median};
use super::remote_write::cpu_seconds;

/// Flags of `store`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lake (a file:// bucket directory); default: the query benchmark's 5x24h lake under
    /// $CARGO_TARGET_DIR/promlake-bench.
    #[arg(long)]
    pub lake: Option<PathBuf>,
    /// The promlake binary (default: $CARGO_TARGET_DIR/release/promlake).
    #[arg(long, env = "PROMLAKE_BENCH_PROMLAKE")]
    pub promlake: Option<PathBuf>,
    /// Timed repetitions of each measurement (median reported).
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
}

/// Runs the benchmark and prints a report.
pub fn run(args: Args) -> anyhow::Result<()> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    let lake = match (&args.lake, &target) {
        (Some(l), _) => l.clone(),
        (None, Some(t)) => t.join("promlake-bench/5x24h/lake"),
        (None, None) => anyhow::bail!("pass --lake DIR (or set CARGO_TARGET_DIR)"),
    };
    ensure!(lake.is_dir(), "no lake at {} (run `promlake-bench query` first or pass --lake)", lake.display());
    let promlake = match (&args.promlake, &target) {
        (Some(p), _) => p.clone(),
        (None, Some(t)) => t.join("release/promlake"),
        (None, None) => PathBuf::from("target/release/promlake"),
    };
    ensure!(promlake.is_file(), "promlake binary not found at {}", promlake.display());
    let logs = tempfile::Builder::new().prefix("promlake-bench-store-").tempdir()?;
    let url = format!("file://{}", lake.display());

    let (grpc, http) = (free_port()?, free_port()?);
    let mut cmd = Command::new(&promlake);
    cmd.args(["store", "--bucket", &url, "--grpc-address", &format!("127.0.0.1:{grpc}")])
        .args(["--http-address", &format!("127.0.0.1:{http}")]);
    let mut store = Server::start("promlake store", cmd, http, &logs.path().join("store.log"))?;
    store.wait_ready(Duration::from_secs(120))?;

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut rates = Vec::new();
    let mut per_cpu = Vec::new();
    let mut samples = 0;
    for _ in 0..args.runs.max(1) {
        let cpu0 = cpu_seconds(store.child.id())?;
        let t0 = Instant::now();
        let (n, series) = rt.block_on(stream_all(grpc))?;
        let wall = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds(store.child.id())? - cpu0;
        samples = n;
        eprintln!("streamed {series} series, {n} samples in {wall:.3}s (store CPU {cpu:.2}s)");
        rates.push(n as f64 / wall);
        per_cpu.push(n as f64 / cpu.max(0.01));
    }
    ensure!(samples > 0, "the store streamed no samples");

    let (q_http, l_http) = (free_port()?, free_port()?);
    let mut cmd = Command::new(&promlake);
    cmd.args(["query", "--endpoint", &format!("127.0.0.1:{grpc}")])
        .args(["--http-address", &format!("127.0.0.1:{q_http}")])
        .args(["--grpc-address", &format!("127.0.0.1:{}", free_port()?)]);
    let mut via_store = Server::start("promlake query --endpoint", cmd, q_http, &logs.path().join("q1.log"))?;
    via_store.wait_ready(Duration::from_secs(60))?;
    let mut cmd = Command::new(&promlake);
    cmd.args(["query", "--bucket", &url, "--http-address", &format!("127.0.0.1:{l_http}")])
        .args(["--grpc-address", &format!("127.0.0.1:{}", free_port()?)]);
    let mut local = Server::start("promlake query --bucket", cmd, l_http, &logs.path().join("q2.log"))?;
    local.wait_ready(Duration::from_secs(120))?;

    let (start, end) = lake_range(&lake)?;
    let end = end.min(start + 24 * 3600);
    let step = ((end - start) / 250).max(15);
    println!("\nSeries streaming from `promlake store` ({samples} samples, median of {} runs):", args.runs);
    println!(
        "  {:.1}M samples/s wall, {:.1}M samples per store CPU-second",
        median(&mut rates) / 1e6,
        median(&mut per_cpu) / 1e6
    );
    println!(
        "\nQuery latency over {}h, step {step}s: through store + querier vs in-process bucket",
        (end - start) / 3600
    );
    println!("  {:<16} {:>10} {:>10} {:>7}", "query", "via store", "in-proc", "ratio");
    let mut ratios = Vec::new();
    for (name, q) in QUERIES {
        let path = format!("/api/v1/query_range?query={}&start={start}&end={end}&step={step}", enc(q));
        let a = timed(via_store.port, &path, args.runs)?;
        let b = timed(local.port, &path, args.runs)?;
        ratios.push(a / b);
        println!("  {name:<16} {a:>8.1}ms {b:>8.1}ms {:>6.2}x", a / b);
    }
    let geo = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
    println!("  geometric mean ratio {geo:.2}x");
    Ok(())
}

/// Streams every series; returns (samples, series) counted from the chunk headers.
async fn stream_all(port: u16) -> anyhow::Result<(u64, u64)> {
    let mut client = StoreClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .context("connecting to the store")?
        .max_decoding_message_size(usize::MAX);
    let req = SeriesRequest {
        min_time: i64::MIN,
        max_time: i64::MAX,
        matchers: vec![LabelMatcher {
            r#type: MatchType::Re as i32,
            name: "__name__".into(),
            value: ".+".into(),
        }],
        ..Default::default()
    };
    let mut stream = client.series(req).await.context("Series")?.into_inner();
    let (mut samples, mut series) = (0u64, 0u64);
    while let Some(frame) = stream.message().await.context("Series stream")? {
        if let Some(Frame::Series(s)) = frame.result {
            series += 1;
            for c in s.chunks {
                let data = c.raw.map(|r| r.data).unwrap_or_default();
                samples += u64::from(u16::from_be_bytes([
                    data.first().copied().unwrap_or(0),
                    data.get(1).copied().unwrap_or(0),
                ]));
            }
        }
    }
    Ok((samples, series))
}

/// Median wall milliseconds of `runs` GETs (after one warm-up), failing on non-200 answers.
fn timed(port: u16, path: &str, runs: u32) -> anyhow::Result<f64> {
    let (status, body) = http_get(port, path)?;
    ensure!(status == 200, "GET {path}: HTTP {status}: {}", String::from_utf8_lossy(&body));
    let mut v = Vec::new();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        http_get(port, path)?;
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(&mut v))
}

/// The lake's time range in unix seconds, from the blocks' meta.json.
fn lake_range(lake: &std::path::Path) -> anyhow::Result<(i64, i64)> {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for e in std::fs::read_dir(lake)? {
        let meta = e?.path().join("meta.json");
        let Ok(text) = std::fs::read_to_string(&meta) else { continue };
        let v: serde_json::Value = serde_json::from_str(&text).with_context(|| meta.display().to_string())?;
        lo = lo.min(v["minTime"].as_i64().unwrap_or(i64::MAX));
        hi = hi.max(v["maxTime"].as_i64().unwrap_or(i64::MIN));
    }
    ensure!(lo < hi, "no blocks in {}", lake.display());
    Ok((lo / 1000, hi / 1000))
}
