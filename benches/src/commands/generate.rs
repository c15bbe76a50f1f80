//! `promlake-bench gen`: write the OpenMetrics file.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use super::DataArgs;

/// Flags of `gen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Output file ("-" for stdout).
    #[arg(long, env = "PROMLAKE_BENCH_OUT")]
    pub out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = args.data.config()?;
    let start = Instant::now();
    let stats = if args.out.as_os_str() == "-" {
        promlake_benches::generate(&cfg, std::io::stdout().lock())?
    } else {
        let file =
            std::fs::File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
        promlake_benches::generate(&cfg, file)?
    };
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} series, {} samples, {:.1} MiB in {secs:.2} s ({:.1}M samples/s)",
        stats.series,
        stats.samples,
        stats.bytes as f64 / 1048576.0,
        stats.samples as f64 / secs / 1e6
    );
    Ok(())
}
