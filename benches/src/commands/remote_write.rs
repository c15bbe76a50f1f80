//! `promlake-bench remote-write`: the same remote-write load against `promlake receive` and
//! against Prometheus 2.42's own receiver (`--web.enable-remote-write-receiver`), reporting
//! samples per CPU-second of the server (utime + stime from `/proc/<pid>/stat`) and resident
//! memory per active series.
//!
//! The load is pre-encoded before the clock starts: `--series` node-exporter-like series split
//! over `--conns` keep-alive connections, `--rounds` scrapes of every series, `--batch` series
//! per request (Prometheus's `max_samples_per_send` is 500 in 2.42; one sample per series).

use anyhow::{Context, Result, bail};
use clap::Args as ClapArgs;
use promlake_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Flags of `remote-write`.
#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// The promlake binary (a release build).
    #[arg(long, default_value = "target/release/promlake")]
    promlake: String,
    /// The Prometheus binary.
    #[arg(long, default_value = "prometheus")]
    prometheus: String,
    /// Active series.
    #[arg(long, default_value_t = 20_000)]
    series: usize,
    /// Samples per series (scrape rounds, 15s apart).
    #[arg(long, default_value_t = 60)]
    rounds: usize,
    /// Series per request.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Concurrent connections (each owns a share of the series).
    #[arg(long, default_value_t = 4)]
    conns: usize,
}

struct Server {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// utime + stime of `pid` in seconds.
pub(super) fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|x| x.1).context("bad /proc stat")?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).context("utime")?.parse::<f64>()? + f.get(12).context("stime")?.parse::<f64>()?;
    Ok(ticks / 100.0)
}

fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .context("VmRSS")?;
    Ok(kb * 1024)
}

/// Builds every request body (snappy block of the protobuf), per connection in send order.
fn build_load(a: &Args) -> Vec<Vec<Vec<u8>>> {
    let start = 1_700_000_000_000i64;
    let mut per_conn: Vec<Vec<Vec<u8>>> = vec![Vec::new(); a.conns.max(1)];
    let labels: Vec<Vec<Label>> = (0..a.series)
        .map(|i| {
            let l = |n: &str, v: String| Label { name: n.into(), value: v };
            vec![
                // 800 distinct series per host: 50 metric names x 16 CPUs.
                l("__name__", format!("node_metric_{}_total", i % 800 / 16)),
                l("cpu", (i % 16).to_string()),
                l("instance", format!("host-{}:9100", i / 800)),
                l("job", "node".into()),
                l("mode", ["user", "system", "idle", "iowait"][i % 800 / 16 % 4].into()),
            ]
        })
        .collect();
    let share = a.series.div_ceil(a.conns.max(1));
    for round in 0..a.rounds {
        for (c, conn) in per_conn.iter_mut().enumerate() {
            let lo = (c * share).min(a.series);
            let hi = ((c + 1) * share).min(a.series);
            for chunk in (lo..hi).collect::<Vec<_>>().chunks(a.batch.max(1)) {
                let timeseries = chunk
                    .iter()
                    .map(|&i| TimeSeries {
                        labels: labels[i].clone(),
                        samples: vec![Sample {
                            value: (round as f64) * ((i % 97) as f64 + 0.25),
                            timestamp: start + round as i64 * 15_000 + (i % 7) as i64,
                        }],
                        ..Default::default()
                    })
                    .collect();
                let body = prost::Message::encode_to_vec(&WriteRequest { timeseries, ..Default::default() });
                conn.push(snap::raw::Encoder::new().compress_vec(&body).unwrap_or_default());
            }
        }
    }
    per_conn
}

/// Sends one connection's requests in order over one keep-alive connection.
fn send_all(port: u16, path: &str, bodies: &[Vec<u8>]) -> Result<()> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    for body in bodies {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Encoding: snappy\r\nContent-Type: application/x-protobuf\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        w.write_all(head.as_bytes())?;
        w.write_all(body)?;
        let mut status = String::new();
        r.read_line(&mut status)?;
        let code: u16 = status.split(' ').nth(1).and_then(|c| c.parse().ok()).context("status line")?;
        let mut len = 0usize;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            r.read_line(&mut line)?;
            let l = line.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse()?;
            }
            chunked |= l.starts_with("transfer-encoding:") && l.contains("chunked");
        }
        if chunked {
            bail!("chunked response not expected");
        }
        let mut buf = vec![0; len];
        r.read_exact(&mut buf)?;
        if code >= 300 {
            bail!("HTTP {code}: {}", String::from_utf8_lossy(&buf));
        }
    }
    Ok(())
}

fn wait_ready(port: u16, path: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s
                .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("server on port {port} not ready within 60s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Measured {
    name: String,
    samples: usize,
    wall: f64,
    cpu: f64,
    rss_per_series: f64,
}

fn measure(
    name: &str,
    server: &Server,
    port: u16,
    path: &str,
    load: &[Vec<Vec<u8>>],
    samples: usize,
    series: usize,
) -> Result<Measured> {
    let pid = server.child.id();
    let rss0 = rss_bytes(pid)?;
    let cpu0 = cpu_seconds(pid)?;
    let t0 = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> =
            load.iter().map(|bodies| s.spawn(move || send_all(port, path, bodies))).collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("sender panicked"))??;
        }
        Ok(())
    })?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid)? - cpu0;
    let rss = rss_bytes(pid)?.saturating_sub(rss0);
    Ok(Measured { name: name.into(), samples, wall, cpu, rss_per_series: rss as f64 / series as f64 })
}

fn start_promlake(bin: &str, fsync: &str, rw: u16) -> Result<(Server, u16)> {
    let dir = tempfile::tempdir()?;
    let http = free_port()?;
    let grpc = free_port()?;
    let child = Command::new(bin)
        .args(["receive", "--bucket", &format!("file://{}", dir.path().join("lake").display())])
        .args(["--tsdb.path", &dir.path().join("tsdb").display().to_string(), "--label", "receive=bench"])
        .args(["--remote-write.address", &format!("127.0.0.1:{rw}")])
        .args([
            "--http-address",
            &format!("127.0.0.1:{http}"),
            "--grpc-address",
            &format!("127.0.0.1:{grpc}"),
        ])
        .args(["--tsdb.wal.fsync", fsync])
        .env("PROMLAKE_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {bin}"))?;
    let s = Server { child, _dir: dir };
    wait_ready(http, "/-/ready")?;
    Ok((s, rw))
}

fn start_prometheus(bin: &str, port: u16) -> Result<Server> {
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("prometheus.yml");
    std::fs::write(&conf, "global: {}\n")?;
    let child = Command::new(bin)
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {bin}"))?;
    let s = Server { child, _dir: dir };
    wait_ready(port, "/-/ready")?;
    Ok(s)
}

/// Runs the benchmark and prints the table.
pub fn run(a: Args) -> Result<()> {
    if !Path::new(&a.promlake).exists() {
        bail!("{} not found: build it with cargo build --release --bin promlake", a.promlake);
    }
    eprintln!("encoding {} series x {} rounds in requests of {} series...", a.series, a.rounds, a.batch);
    let load = build_load(&a);
    let samples = a.series * a.rounds;
    let mut rows = Vec::new();
    for fsync in ["always", "never"] {
        let (s, port) = start_promlake(&a.promlake, fsync, free_port()?)?;
        rows.push(measure(
            &format!("promlake receive (fsync {fsync})"),
            &s,
            port,
            "/api/v1/receive",
            &load,
            samples,
            a.series,
        )?);
    }
    let port = free_port()?;
    let s = start_prometheus(&a.prometheus, port)?;
    rows.push(measure("prometheus 2.42 receiver", &s, port, "/api/v1/write", &load, samples, a.series)?);
    println!(
        "{:<32} {:>12} {:>14} {:>16} {:>14}",
        "server", "samples/s", "server CPU s", "samples/CPU-s", "RSS B/series"
    );
    for m in &rows {
        println!(
            "{:<32} {:>12.0} {:>14.2} {:>16.0} {:>14.0}",
            m.name,
            m.samples as f64 / m.wall,
            m.cpu,
            m.samples as f64 / m.cpu.max(0.01),
            m.rss_per_series
        );
    }
    if let (Some(ours), Some(prom)) = (rows.first(), rows.last()) {
        println!(
            "ratio (promlake fsync always / prometheus), samples per CPU-second: {:.2}x",
            (ours.samples as f64 / ours.cpu.max(0.01)) / (prom.samples as f64 / prom.cpu.max(0.01))
        );
    }
    Ok(())
}
