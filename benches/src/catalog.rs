//! The series of one simulated host: a node-exporter-shaped catalog (CPU, memory, filesystems,
//! network, disks, load, vmstat/netstat, collector timings, Go runtime), one classic HTTP latency
//! histogram per handler, and Prometheus's own per-target series (`up`, `scrape_*`).
//!
//! Every host yields the same families in the same order (so the writer can emit each family
//! contiguously across hosts); hosts differ in CPU count, memory, disks, interfaces, mounts and
//! load profile, all drawn from the seed.

mod node_exporter;

pub use node_exporter::host;

use crate::model::Model;
use crate::rng::{SplitMix64, hash};

/// OpenMetrics metric type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Monotonic; sample lines carry the `_total` suffix, the family name does not.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Classic histogram: `_bucket{le}`, `_sum`, `_count`.
    Histogram,
    /// Summary: `{quantile}`, `_sum`, `_count`.
    Summary,
    /// Untyped in the Prometheus text format (node exporter's vmstat/netstat).
    Unknown,
}

impl MetricType {
    /// The keyword on a `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Unknown => "unknown",
        }
    }
}

/// One series: its sample-line prefix, its number format and its value model.
#[derive(Debug, Clone)]
pub struct Series {
    /// `name{labels} ` — everything on a sample line before the value.
    pub prefix: Vec<u8>,
    /// Decimals of the fixed-point value.
    pub decimals: u8,
    /// Whether the value must never decrease (counters, histogram buckets, `_sum`, `_count`).
    pub monotonic: bool,
    /// How the value evolves.
    pub model: Model,
    /// This series' private random stream.
    pub rng: SplitMix64,
}

/// One metric family of one host.
#[derive(Debug, Clone)]
pub struct Family {
    /// Family name as on the `# TYPE` line.
    pub name: String,
    /// Its type.
    pub kind: MetricType,
    /// Its series on this host.
    pub series: Vec<Series>,
}

/// The load profile of a host: utilisation is a diurnal wave plus occasional bursts.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// Mean utilisation.
    pub base: f64,
    /// Amplitude of the daily wave.
    pub amp: f64,
    /// Phase of the daily wave, radians.
    pub phase: f64,
    /// Hash key of the burst pattern.
    pub burst_key: u64,
}

impl Profile {
    /// Utilisation at time `ts_ms`, in `[0.01, 0.99]`.
    pub fn util(&self, ts_ms: i64) -> f64 {
        let day = ts_ms as f64 / 86_400_000.0;
        let wave = self.amp * (std::f64::consts::TAU * day + self.phase).sin();
        // Five-minute windows, 4% of which carry a burst.
        let window = (ts_ms / 300_000) as u64;
        let h = hash(&[self.burst_key, window]);
        let burst = if h % 100 < 4 { 0.35 } else { 0.0 };
        (self.base + wave + burst).clamp(0.01, 0.99)
    }
}

/// Everything generated for one host.
#[derive(Debug, Clone)]
pub struct Host {
    /// Families in canonical order.
    pub families: Vec<Family>,
    /// Load profile.
    pub profile: Profile,
}

/// Appends series to families with the host's labels.
struct Builder {
    host_labels: String,
    seed: u64,
    host: u64,
    ordinal: u64,
    families: Vec<Family>,
}

impl Builder {
    fn family(&mut self, name: impl Into<String>, kind: MetricType) {
        self.families.push(Family { name: name.into(), kind, series: Vec::new() });
    }

    /// A fresh random stream for the next series (also used to draw its parameters).
    fn rng(&mut self) -> SplitMix64 {
        self.ordinal += 1;
        SplitMix64::new(hash(&[self.seed, self.host, self.ordinal]))
    }

    /// Adds a series to the current family; the sample name is the family name plus `suffix`,
    /// plus `_total` for counters.
    fn add(&mut self, suffix: &str, labels: &[(&str, &str)], decimals: u8, model: Model, rng: SplitMix64) {
        let Some(fam) = self.families.last_mut() else {
            return;
        };
        let mut prefix = String::with_capacity(128);
        prefix.push_str(&fam.name);
        prefix.push_str(suffix);
        if fam.kind == MetricType::Counter {
            prefix.push_str("_total");
        }
        prefix.push('{');
        for (k, v) in labels {
            prefix.push_str(k);
            prefix.push_str("=\"");
            prefix.push_str(v);
            prefix.push_str("\",");
        }
        prefix.push_str(&self.host_labels);
        prefix.push_str("} ");
        let monotonic = matches!(fam.kind, MetricType::Counter)
            || (matches!(fam.kind, MetricType::Histogram | MetricType::Summary) && !suffix.is_empty())
            || matches!(model, Model::Histogram { .. });
        fam.series.push(Series { prefix: prefix.into_bytes(), decimals, monotonic, model, rng });
    }

    fn constant(&mut self, suffix: &str, labels: &[(&str, &str)], decimals: u8, v: u64) {
        let rng = self.rng();
        self.add(suffix, labels, decimals, Model::Const(v), rng);
    }

    /// A counter in units per second (`base` at idle, `base + per_util` at full load).
    #[expect(clippy::too_many_arguments, reason = "a table row; named fields would be noisier")]
    fn counter(
        &mut self,
        labels: &[(&str, &str)],
        decimals: u8,
        start_max: u64,
        base: f64,
        per_util: f64,
        noise: f64,
        p_active: f64,
        quantum: u64,
    ) {
        let mut rng = self.rng();
        let mut model = Model::counter(&mut rng, start_max, base, per_util);
        if let Model::Counter { acc, noise: n, p_active: p, quantum: q, .. } = &mut model {
            *acc *= quantum;
            *n = noise;
            *p = p_active;
            *q = quantum;
        }
        self.add("", labels, decimals, model, rng);
    }

    #[expect(clippy::too_many_arguments, reason = "a table row; named fields would be noisier")]
    fn walk(
        &mut self,
        labels: &[(&str, &str)],
        decimals: u8,
        lo: f64,
        hi: f64,
        step: f64,
        p_move: f64,
        quantum: u64,
    ) {
        let mut rng = self.rng();
        let model = Model::walk(&mut rng, lo, hi, step, p_move, quantum);
        self.add("", labels, decimals, model, rng);
    }

    fn jitter(&mut self, suffix: &str, labels: &[(&str, &str)], lo: u64, hi: u64, p_change: f64) {
        let rng = self.rng();
        let model = Model::Jitter { last: lo, lo, hi, p_change };
        self.add(suffix, labels, 9, model, rng);
    }
}
