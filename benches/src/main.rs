//! `promlake-bench`: generates benchmark data and measures promlake against its peers.
//!
//! ```text
//! promlake-bench gen     --hosts 20 --hours 6 --out data.om
//! promlake-bench convert --hosts 20 --hours 6 --work-dir /tmp/bench [--json]
//! promlake-bench query   --hosts 5 --hours 24 [--work-dir DIR] [--runs 3] [--json]
//! promlake-bench compact --promlake target/release/promlake [--dataset DIR]
//! promlake-bench sql     --hosts 5 --hours 24 [--threads 2] [--runs 5] [--json]
//! promlake-bench remote-write --promlake target/release/promlake [--series 20000 --rounds 60]
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

#[derive(Debug, Parser)]
#[command(name = "promlake-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write node-exporter-shaped OpenMetrics text (input for `promtool tsdb create-blocks-from`).
    Gen(commands::generate::Args),
    /// Generate data, build Prometheus blocks with promtool, convert them with `promlake tools
    /// import` and report bytes per sample and samples per CPU-second.
    Convert(commands::convert::Args),
    /// Ensure converted data exists (as `convert --reuse`), serve it with Prometheus and with
    /// `promlake query`, and compare PromQL range-query latencies.
    Query(commands::query::Args),
    /// The same remote-write load against `promlake receive` and Prometheus 2.42's receiver:
    /// samples per server CPU-second and resident memory per series.
    RemoteWrite(commands::remote_write::Args),
    /// StoreAPI: Series streaming throughput of `promlake store`, and query latency through
    /// store + querier against the in-process bucket.
    Store(commands::store::Args),
    /// `promlake compact` against Prometheus 2.42's TSDB compaction on the same blocks (samples
    /// per CPU-second, peak RSS), and in-process downsampling throughput.
    Compact(commands::compact::Args),
    /// SQL aggregations over all history through promlake's SQL session (DataFusion) and
    /// through DuckDB on the same Parquet files, same threads; answers compared.
    Sql(commands::sql::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gen(args) => commands::generate::run(args),
        Command::Convert(args) => commands::convert::run(args),
        Command::Query(args) => commands::query::run(args),
        Command::RemoteWrite(args) => commands::remote_write::run(args),
        Command::Store(args) => commands::store::run(args),
        Command::Compact(args) => commands::compact::run(args),
        Command::Sql(args) => commands::sql::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("promlake-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
