//! One module per subcommand, plus the flags they share.

pub mod compact;
pub mod convert;
pub mod dataset;
pub mod generate;
pub mod query;
pub mod remote_write;
pub mod sql;
pub mod store;

use clap::Args as ClapArgs;
use promlake_benches::GenConfig;
use promlake_benches::r#gen::{DEFAULT_START_MS, parse_duration_ms};

/// What data to generate; shared by `gen` and `convert`.
#[derive(Debug, Clone, ClapArgs)]
pub struct DataArgs {
    /// Number of hosts (node exporters), each with ~300-500 series.
    #[arg(long, env = "PROMLAKE_BENCH_HOSTS", default_value_t = 10)]
    pub hosts: u32,
    /// Hours of data per series.
    #[arg(long, env = "PROMLAKE_BENCH_HOURS", default_value_t = 2.0)]
    pub hours: f64,
    /// Scrape interval (e.g. 15s, 1m).
    #[arg(long, env = "PROMLAKE_BENCH_INTERVAL", default_value = "15s", value_parser = parse_duration_ms)]
    pub interval: i64,
    /// Seed of the generator; the data is a pure function of all data flags.
    #[arg(long, env = "PROMLAKE_BENCH_SEED", default_value_t = 1)]
    pub seed: u64,
    /// First scrape, Unix seconds (default 1700000000 rounded down to 2h).
    #[arg(long, env = "PROMLAKE_BENCH_START", default_value_t = DEFAULT_START_MS / 1000)]
    pub start: i64,
    /// Largest scrape-timestamp jitter in milliseconds (0: all scrapes exactly aligned).
    #[arg(long, env = "PROMLAKE_BENCH_JITTER_MS", default_value_t = 5)]
    pub jitter_ms: u32,
    /// Share of hosts whose scrapes jitter, 0..1.
    #[arg(long, env = "PROMLAKE_BENCH_JITTER_HOSTS", default_value_t = 0.5)]
    pub jitter_hosts: f64,
}

impl DataArgs {
    /// The validated generator config.
    pub fn config(&self) -> anyhow::Result<GenConfig> {
        let cfg = GenConfig {
            hosts: self.hosts,
            duration_ms: (self.hours * 3_600_000.0).round() as i64,
            interval_ms: self.interval,
            seed: self.seed,
            start_ms: self.start.saturating_mul(1000),
            jitter_max_ms: self.jitter_ms,
            jitter_hosts: self.jitter_hosts,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}
