//! Subcommands, one file each.

mod query;
mod sql;
mod tools;

use clap::Subcommand;
use std::process::ExitCode;

/// Top-level subcommands (Thanos's names).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Prometheus HTTP API (PromQL, series, labels) over every block of the bucket.
    Query(query::QueryArgs),
    /// SQL over every block of the bucket: a shell, one statement (-c), or a Flight SQL server (--grpc-address).
    Sql(sql::SqlArgs),
    /// Utilities: import Prometheus blocks, inspect the bucket.
    #[command(subcommand)]
    Tools(tools::ToolsCommand),
}

impl Command {
    /// Runs the subcommand; the exit code reports partial failures.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Query(q) => q.run().await,
            Command::Sql(s) => s.run().await,
            Command::Tools(t) => t.run().await,
        }
    }
}
