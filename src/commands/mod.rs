//! Subcommands, one file each.

mod query;
mod receive;
mod tools;

use clap::Subcommand;
use std::process::ExitCode;

/// Top-level subcommands (Thanos's names).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Prometheus HTTP API (PromQL, series, labels) over every block of the bucket.
    Query(query::QueryArgs),
    /// Accept Prometheus remote write into a WAL-backed head per tenant; cut it into Parquet blocks in the bucket.
    Receive(Box<receive::ReceiveArgs>),
    /// Utilities: import Prometheus blocks, inspect the bucket.
    #[command(subcommand)]
    Tools(tools::ToolsCommand),
}

impl Command {
    /// Runs the subcommand; the exit code reports partial failures.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Query(q) => q.run().await,
            Command::Receive(r) => r.run().await,
            Command::Tools(t) => t.run().await,
        }
    }
}
