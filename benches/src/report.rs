//! The conversion benchmark's report: sizes and times of the same samples as native Prometheus
//! blocks and as promlake Parquet blocks, as text for people and JSON for scripts.

use std::fmt;

use serde::Serialize;

use crate::blocks::BlocksSummary;

/// DESIGN.md §6: Parquet bytes per sample at most this share of Prometheus's.
pub const TARGET_SIZE_RATIO: f64 = 0.6;
/// DESIGN.md §6: conversion throughput at least this many samples per CPU-second.
pub const TARGET_SAMPLES_PER_CPU_S: f64 = 10e6;

/// Wall and CPU time of one measured step.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Timing {
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// User plus system CPU seconds: of the children for child processes (summed over parallel
    /// promtools); equal to the wall time for the single-threaded in-process generator.
    pub cpu_s: f64,
    /// Peak resident memory of the child in bytes, where sampled.
    pub peak_rss_bytes: Option<u64>,
}

/// One side of the size comparison.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Side {
    /// Blocks found.
    pub blocks: u64,
    /// Sum of `stats.numSamples`.
    pub samples: u64,
    /// Sum of `stats.numSeries`.
    pub series: u64,
    /// Total bytes of all block files.
    pub bytes: u64,
    /// `bytes / samples`.
    pub bytes_per_sample: f64,
    /// Bytes per file kind.
    pub bytes_by_kind: std::collections::BTreeMap<String, u64>,
}

impl Side {
    /// Builds a side from a block summary.
    pub fn new(s: &BlocksSummary) -> Self {
        Self {
            blocks: s.blocks,
            samples: s.samples,
            series: s.series,
            bytes: s.bytes,
            bytes_per_sample: ratio(s.bytes as f64, s.samples as f64),
            bytes_by_kind: s.bytes_by_kind.clone(),
        }
    }

    fn kinds(&self) -> String {
        let kinds: Vec<&str> = self.bytes_by_kind.keys().map(String::as_str).collect();
        kinds.join("+")
    }
}

/// Everything `promlake-bench convert` measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConvertReport {
    /// Hosts generated.
    pub hosts: u32,
    /// Hours generated.
    pub hours: f64,
    /// Scrape interval, seconds.
    pub interval_s: f64,
    /// Generator seed.
    pub seed: u64,
    /// Samples generated (and found in both block sets).
    pub samples: u64,
    /// Series generated.
    pub series: u64,
    /// Bytes of OpenMetrics text generated (0 when reused).
    pub openmetrics_bytes: u64,
    /// Generating the OpenMetrics file (`None` when reused).
    pub generate: Option<Timing>,
    /// `promtool tsdb create-blocks-from openmetrics` (`None` when reused).
    pub promtool: Option<Timing>,
    /// `promlake tools import`.
    pub convert: Timing,
    /// The Prometheus blocks.
    pub native: Side,
    /// The promlake Parquet blocks.
    pub parquet: Side,
    /// `parquet.bytes / native.bytes`.
    pub size_ratio: f64,
    /// `samples / convert.cpu_s`.
    pub samples_per_cpu_s: f64,
    /// `samples / convert.wall_s`.
    pub samples_per_wall_s: f64,
    /// `size_ratio <= TARGET_SIZE_RATIO`.
    pub size_target_met: bool,
    /// `samples_per_cpu_s >= TARGET_SAMPLES_PER_CPU_S`.
    pub throughput_target_met: bool,
}

impl ConvertReport {
    /// Fills the derived ratios and target checks.
    pub fn finish(mut self) -> Self {
        self.size_ratio = ratio(self.parquet.bytes as f64, self.native.bytes as f64);
        self.samples_per_cpu_s = ratio(self.samples as f64, self.convert.cpu_s);
        self.samples_per_wall_s = ratio(self.samples as f64, self.convert.wall_s);
        self.size_target_met = self.size_ratio <= TARGET_SIZE_RATIO;
        self.throughput_target_met = self.samples_per_cpu_s >= TARGET_SAMPLES_PER_CPU_S;
        self
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

fn ok(met: bool) -> &'static str {
    if met { "ok" } else { "MISSED" }
}

fn timing(t: &Timing) -> String {
    let rss =
        t.peak_rss_bytes.map(|b| format!(", peak rss {:.0} MiB", b as f64 / 1048576.0)).unwrap_or_default();
    format!("{:.2} s wall, {:.2} s cpu{rss}", t.wall_s, t.cpu_s)
}

impl fmt::Display for ConvertReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "data               {} hosts x {} h @ {} s, seed {}: {} series",
            self.hosts, self.hours, self.interval_s, self.seed, self.series
        )?;
        if let Some(g) = &self.generate {
            writeln!(
                f,
                "generate           {} ({:.0} MiB OpenMetrics)",
                timing(g),
                self.openmetrics_bytes as f64 / 1048576.0
            )?;
        }
        if let Some(p) = &self.promtool {
            writeln!(f, "promtool           {}", timing(p))?;
        }
        writeln!(f, "samples            {}", self.samples)?;
        writeln!(
            f,
            "native bytes       {}  ({}, {} blocks, {:.3} bytes/sample)",
            self.native.bytes,
            self.native.kinds(),
            self.native.blocks,
            self.native.bytes_per_sample
        )?;
        writeln!(
            f,
            "parquet bytes      {}  ({}, {} blocks, {:.3} bytes/sample)",
            self.parquet.bytes,
            self.parquet.kinds(),
            self.parquet.blocks,
            self.parquet.bytes_per_sample
        )?;
        writeln!(
            f,
            "size ratio         {:.3}   (target <= {TARGET_SIZE_RATIO}: {})",
            self.size_ratio,
            ok(self.size_target_met)
        )?;
        writeln!(f, "convert            {}", timing(&self.convert))?;
        writeln!(
            f,
            "throughput         {:.2}M samples/cpu-second, {:.2}M samples/wall-second  (target >= {:.0}M/s/core: {})",
            self.samples_per_cpu_s / 1e6,
            self.samples_per_wall_s / 1e6,
            TARGET_SAMPLES_PER_CPU_S / 1e6,
            ok(self.throughput_target_met)
        )
    }
}
