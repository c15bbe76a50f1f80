//! The generated dataset `query` and `sql` run on: its flags, its working directory and the
//! conversion arguments that build (or reuse) it.

use std::path::PathBuf;

use promlake_benches::r#gen::{DEFAULT_START_MS, parse_duration_ms};
use tempfile::TempDir;

use super::DataArgs;
use super::convert;

/// Flags naming the dataset and the binaries that build it.
#[derive(Debug, clap::Args)]
pub struct DatasetArgs {
    /// Number of hosts (node exporters), each with ~300-500 series.
    #[arg(long, env = "PROMLAKE_BENCH_HOSTS", default_value_t = 5)]
    pub hosts: u32,
    /// Hours of data per series.
    #[arg(long, env = "PROMLAKE_BENCH_HOURS", default_value_t = 24.0)]
    pub hours: f64,
    /// Scrape interval (e.g. 15s, 1m).
    #[arg(long, env = "PROMLAKE_BENCH_INTERVAL", default_value = "15s", value_parser = parse_duration_ms)]
    pub interval: i64,
    /// Seed of the generator.
    #[arg(long, env = "PROMLAKE_BENCH_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Working directory holding native/ and lake/, reused when built from the same data flags
    /// (default: $CARGO_TARGET_DIR/promlake-bench/HOSTSxHOURSh, else a temporary directory).
    #[arg(long, env = "PROMLAKE_BENCH_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// The promlake binary (default: $CARGO_TARGET_DIR/release/promlake, else the one next to
    /// this binary, else ./target/release/promlake).
    #[arg(long, env = "PROMLAKE_BENCH_PROMLAKE")]
    pub promlake: Option<PathBuf>,
    /// The promtool binary (Prometheus 2.42), used when the data has to be built.
    #[arg(long, env = "PROMLAKE_BENCH_PROMTOOL", default_value = "promtool")]
    pub promtool: PathBuf,
}

/// Where a benchmark's dataset lives; a temporary directory is removed on drop.
pub struct Dataset {
    /// The arguments that build or reuse it (`convert::ensure_dataset`).
    pub convert: convert::Args,
    /// The promlake binary.
    pub promlake: PathBuf,
    /// The temporary working directory, when there is one: keep it while the benchmark runs.
    pub temp: Option<TempDir>,
}

impl DatasetArgs {
    /// The generator's flags.
    pub fn data(&self) -> DataArgs {
        DataArgs {
            hosts: self.hosts,
            hours: self.hours,
            interval: self.interval,
            seed: self.seed,
            start: DEFAULT_START_MS / 1000,
            jitter_ms: 5,
            jitter_hosts: 0.5,
        }
    }

    /// The dataset's working directory and conversion arguments; `name` names a temporary one.
    pub fn dataset(&self, name: &str) -> anyhow::Result<Dataset> {
        let promlake = self.promlake.clone().unwrap_or_else(convert::default_promlake);
        let mut temp = None;
        let work = match (&self.work_dir, std::env::var_os("CARGO_TARGET_DIR")) {
            (Some(dir), _) => dir.clone(),
            (None, Some(target)) => {
                PathBuf::from(target).join("promlake-bench").join(format!("{}x{}h", self.hosts, self.hours))
            }
            (None, None) => {
                let t = tempfile::Builder::new().prefix(&format!("promlake-bench-{name}-")).tempdir()?;
                let p = t.path().to_path_buf();
                temp = Some(t);
                p
            }
        };
        let convert = convert::Args {
            data: self.data(),
            work_dir: Some(work),
            promlake: Some(promlake.clone()),
            promtool: self.promtool.clone(),
            max_block_duration: None,
            jobs: None,
            reuse: true,
            keep_input: false,
            json: false,
        };
        Ok(Dataset { convert, promlake, temp })
    }
}
