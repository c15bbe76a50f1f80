//! `promlake up --demo`: a day of a small fleet, written straight into the bucket as Parquet
//! blocks (2h-aligned, the newest one ending at "now"), so Grafana's default views show data.
//!
//! Every value is a closed-form function of (series, time): counters integrate a daily rate
//! curve, so they never reset and each 2h block is generated on its own. Per host:
//!
//! | family | series per host |
//! |---|---|
//! | `node_cpu_seconds_total{cpu, mode}` (job `node`) | [`CPUS`] × [`CPU_MODES`] |
//! | `node_load1`, `node_memory_MemTotal_bytes`, `node_memory_MemAvailable_bytes` | 3 |
//! | `http_requests_total{method, code}` (job `api`) | [`HTTP_ROUTES`] |
//! | `http_request_duration_seconds_bucket{le}`, `_sum`, `_count` | [`LATENCY_BUCKETS`] + 1 (+Inf) + 2 |
//!
//! Blocks carry the external label `cluster="demo"`, which also marks them: a bucket that
//! already holds such a block is left alone.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use promlake_compat::BlockMeta;
use promlake_compat::meta::{Compaction, ThanosMeta};
use promlake_engine::parquet::{ParquetBlockWriter, WriterOptions};
use promlake_engine::{Bucket, Labels};
use std::f64::consts::TAU;
use ulid::Ulid;

/// External label (name, value) of every demo block.
pub const DEMO_LABEL: (&str, &str) = ("cluster", "demo");
/// CPUs per host.
pub const CPUS: u32 = 2;
/// `mode` values of `node_cpu_seconds_total` with their mean share of a CPU (idle takes the rest).
pub const CPU_MODES: [(&str, f64); 4] = [("idle", 0.0), ("user", 0.22), ("system", 0.06), ("iowait", 0.01)];
/// (method, code, mean requests per second) of `http_requests_total`.
pub const HTTP_ROUTES: [(&str, &str, f64); 6] = [
    ("GET", "200", 40.0),
    ("GET", "404", 1.5),
    ("GET", "500", 0.3),
    ("POST", "200", 8.0),
    ("POST", "400", 0.6),
    ("POST", "500", 0.1),
];
/// Finite `le` bounds of `http_request_duration_seconds_bucket` with the share of requests at or below each.
pub const LATENCY_BUCKETS: [(&str, f64); 9] = [
    ("0.005", 0.04),
    ("0.01", 0.12),
    ("0.025", 0.35),
    ("0.05", 0.62),
    ("0.1", 0.83),
    ("0.25", 0.95),
    ("0.5", 0.985),
    ("1", 0.996),
    ("2.5", 0.9995),
];
/// Block length, as Prometheus's.
const BLOCK_MS: i64 = 2 * 3_600_000;
const DAY_S: f64 = 86_400.0;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct DemoConfig {
    /// Number of hosts.
    pub hosts: u32,
    /// Newest sample (ms); data covers the day before it.
    pub end_ms: i64,
    /// Scrape interval (ms).
    pub interval_ms: i64,
}

/// How a series' value follows time.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// A counter whose rate is `mean · (1 + swing · sin(day phase))`, starting at 0.
    Counter { mean: f64, swing: f64, phase: f64 },
    /// `floor` of a counter (histogram buckets and counts are whole requests).
    WholeCounter { mean: f64, swing: f64, phase: f64 },
    /// `base · (1 + swing · sin(day phase)) + noise · jitter` with a deterministic jitter in [-1, 1].
    Gauge { base: f64, swing: f64, phase: f64, noise: f64, seed: u64 },
}

impl Shape {
    fn at(&self, t0_s: f64, t_s: f64) -> f64 {
        match *self {
            Shape::Counter { mean, swing, phase } => counter(mean, swing, phase, t0_s, t_s),
            Shape::WholeCounter { mean, swing, phase } => counter(mean, swing, phase, t0_s, t_s).floor(),
            Shape::Gauge { base, swing, phase, noise, seed } => {
                let day = (TAU * t_s / DAY_S + phase).sin();
                base * (1.0 + swing * day) + noise * jitter(seed, t_s as u64)
            }
        }
    }
}

/// ∫ from t0 to t of mean · (1 + swing · sin(2π s / day + phase)) ds.
fn counter(mean: f64, swing: f64, phase: f64, t0: f64, t: f64) -> f64 {
    let w = TAU / DAY_S;
    let integral = |s: f64| s - swing / w * (w * s + phase).cos();
    mean * (integral(t) - integral(t0))
}

/// A deterministic value in [-1, 1] for (seed, x) (splitmix64).
fn jitter(seed: u64, x: u64) -> f64 {
    let mut z = seed ^ x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

fn labels(name: &str, pairs: &[(&str, &str)]) -> Labels {
    let mut all = vec![("__name__".to_string(), name.to_string())];
    all.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Labels::from_pairs(all)
}

/// Every series of the fleet with its shape, in block order.
fn fleet(hosts: u32) -> Vec<(Labels, Shape)> {
    let mut out = Vec::new();
    for h in 0..hosts {
        let phase = f64::from(h) * 0.37;
        let seed = u64::from(h) + 1;
        let node = format!("host-{h:02}:9100");
        let api = format!("host-{h:02}:8080");
        let n = |name: &str, extra: &[(&str, &str)]| {
            let mut pairs = vec![("instance", node.as_str()), ("job", "node")];
            pairs.extend_from_slice(extra);
            labels(name, &pairs)
        };
        let busy: f64 = CPU_MODES.iter().map(|m| m.1).sum();
        for cpu in 0..CPUS {
            let cpu = cpu.to_string();
            for (mode, share) in CPU_MODES {
                // Idle swings against the busy modes, so the modes of a CPU add up to 1 s/s.
                let (mean, swing) =
                    if mode == "idle" { (1.0 - busy, -0.6 * busy / (1.0 - busy)) } else { (share, 0.6) };
                out.push((
                    n("node_cpu_seconds_total", &[("cpu", cpu.as_str()), ("mode", mode)]),
                    Shape::Counter { mean, swing, phase },
                ));
            }
        }
        out.push((
            n("node_load1", &[]),
            Shape::Gauge { base: f64::from(CPUS) * busy * 1.2, swing: 0.6, phase, noise: 0.15, seed },
        ));
        let total = f64::from(8 + 8 * (h % 2)) * 1024.0 * 1024.0 * 1024.0;
        out.push((
            n("node_memory_MemTotal_bytes", &[]),
            Shape::Gauge { base: total, swing: 0.0, phase, noise: 0.0, seed },
        ));
        out.push((
            n("node_memory_MemAvailable_bytes", &[]),
            Shape::Gauge { base: total * 0.55, swing: -0.25, phase, noise: total * 0.02, seed: seed + 1000 },
        ));
        let a = |name: &str, extra: &[(&str, &str)]| {
            let mut pairs = vec![("instance", api.as_str()), ("job", "api")];
            pairs.extend_from_slice(extra);
            labels(name, &pairs)
        };
        let requests: f64 = HTTP_ROUTES.iter().map(|r| r.2).sum();
        for (method, code, rate) in HTTP_ROUTES {
            out.push((
                a("http_requests_total", &[("code", code), ("method", method)]),
                Shape::Counter { mean: rate, swing: 0.7, phase },
            ));
        }
        for (le, share) in LATENCY_BUCKETS.iter().copied().chain([("+Inf", 1.0)]) {
            out.push((
                a("http_request_duration_seconds_bucket", &[("le", le)]),
                Shape::WholeCounter { mean: requests * share, swing: 0.7, phase },
            ));
        }
        out.push((
            a("http_request_duration_seconds_count", &[]),
            Shape::WholeCounter { mean: requests, swing: 0.7, phase },
        ));
        out.push((
            a("http_request_duration_seconds_sum", &[]),
            Shape::Counter { mean: requests * 0.061, swing: 0.7, phase },
        ));
    }
    out.sort_by(|x, y| x.0.block_order(&y.0));
    out
}

/// Series per host the demo writes.
pub fn series_per_host() -> usize {
    fleet(1).len()
}

/// Whether the bucket already holds demo blocks.
pub async fn present(bucket: &Bucket) -> Result<bool> {
    let blocks = bucket.list_blocks().await.context("listing the bucket")?;
    Ok(blocks.iter().any(|b| {
        b.meta.thanos.as_ref().is_some_and(|t| t.labels.get(DEMO_LABEL.0).is_some_and(|v| v == DEMO_LABEL.1))
    }))
}

/// Writes the demo blocks into `bucket`, showing progress; returns (blocks, samples).
pub async fn write(bucket: &Bucket, cfg: DemoConfig) -> Result<(usize, u64)> {
    let series = std::sync::Arc::new(fleet(cfg.hosts));
    let end = cfg.end_ms / cfg.interval_ms * cfg.interval_ms;
    let start = end - 24 * 3_600_000;
    let t0_s = start as f64 / 1000.0;
    let windows: Vec<(i64, i64)> = (start.div_euclid(BLOCK_MS)..=end.div_euclid(BLOCK_MS))
        .map(|w| ((w * BLOCK_MS).max(start), ((w + 1) * BLOCK_MS).min(end + 1)))
        .collect();
    let bar = progress(windows.len() as u64);
    let mut samples = 0u64;
    for (from, to) in &windows {
        let (from, to, series) = (*from, *to, series.clone());
        let interval = cfg.interval_ms;
        let written = tokio::task::spawn_blocking(move || -> Result<_> {
            let first = from.div_euclid(interval) * interval;
            let ts: Vec<i64> = (first..to).step_by(interval as usize).filter(|t| *t >= from).collect();
            let mut w = ParquetBlockWriter::new(WriterOptions::default())?;
            let mut vals = Vec::with_capacity(ts.len());
            for (labels, shape) in series.iter() {
                vals.clear();
                vals.extend(ts.iter().map(|t| shape.at(t0_s, *t as f64 / 1000.0)));
                w.append(labels.clone(), &ts, &vals)?;
            }
            Ok(w.finish()?)
        })
        .await
        .context("demo block task")??;
        samples += written.num_samples;
        let id = Ulid::generate();
        let meta = BlockMeta {
            ulid: id.to_string(),
            min_time: written.min_time.unwrap_or(from),
            max_time: to,
            stats: Default::default(),
            compaction: Compaction { level: 1, sources: vec![id.to_string()], ..Default::default() },
            version: 1,
            thanos: Some(ThanosMeta {
                version: 1,
                labels: [(DEMO_LABEL.0.to_string(), DEMO_LABEL.1.to_string())].into_iter().collect(),
                source: "promlake-demo".into(),
                ..Default::default()
            }),
            promlake: None,
        };
        written.upload(bucket, &id, meta).await.with_context(|| format!("uploading demo block {id}"))?;
        match &bar {
            Some(b) => b.inc(1),
            None => tracing::info!(block = %id, min_time = from, max_time = to, "demo block written"),
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok((windows.len(), samples))
}

fn progress(blocks: u64) -> Option<ProgressBar> {
    std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let pb = ProgressBar::new(blocks);
        if let Ok(style) = ProgressStyle::with_template("demo data {wide_bar} {pos}/{len} blocks ({elapsed})")
        {
            pb.set_style(style);
        }
        pb
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_never_decrease_and_cpu_modes_add_up() {
        let fleet = fleet(2);
        assert_eq!(fleet.len(), 2 * series_per_host());
        for (labels, shape) in &fleet {
            let mut last = f64::MIN;
            for k in 0..(86_400 / 15) {
                let v = shape.at(0.0, f64::from(k) * 15.0);
                assert!(v.is_finite(), "{labels}");
                if labels.get("__name__").is_some_and(|n| n.ends_with("_total") || n.ends_with("_bucket")) {
                    assert!(v >= last, "{labels} decreased at {k}");
                }
                last = v;
            }
        }
        // One host, one CPU: the modes add up to the elapsed seconds.
        let cpu0: f64 = fleet
            .iter()
            .filter(|(l, _)| l.get("cpu") == Some("0") && l.get("instance") == Some("host-00:9100"))
            .map(|(_, s)| s.at(0.0, 3600.0))
            .sum();
        assert!((cpu0 - 3600.0).abs() < 1e-6, "{cpu0}");
    }
}
