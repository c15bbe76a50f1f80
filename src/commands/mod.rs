//! Subcommands, one file each.

mod compact;
mod query;
mod receive;
mod sidecar;
mod sql;
mod store;
mod tools;
mod up;

use clap::Subcommand;
use std::process::ExitCode;

/// Top-level subcommands (Thanos's names).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The global querier: Prometheus HTTP API and StoreAPI over StoreAPI endpoints and/or a bucket, HA replicas deduplicated.
    Query(query::QueryArgs),
    /// Serve Thanos's StoreAPI (gRPC) over every block of the bucket.
    Store(store::StoreArgs),
    /// Run next to a Prometheus server: ship its blocks to the bucket as Parquet and serve its data over StoreAPI.
    Sidecar(sidecar::SidecarArgs),
    /// Compact, deduplicate, downsample and apply retention to the blocks of the bucket.
    Compact(compact::CompactArgs),
    /// Accept Prometheus remote write into a WAL-backed head per tenant; cut it into Parquet blocks in the bucket.
    Receive(Box<receive::ReceiveArgs>),
    /// SQL over every block of the bucket: a shell, one statement (-c), or a Flight SQL server (--grpc-address).
    Sql(sql::SqlArgs),
    /// All in one process on a local bucket: receive + store + query + compact; --demo preloads a day of a generated fleet.
    Up(up::UpArgs),
    /// Utilities: import Prometheus blocks, inspect the bucket.
    #[command(subcommand)]
    Tools(tools::ToolsCommand),
}

impl Command {
    /// Batch jobs whose peak memory matters more than the last percent of speed: `compact`.
    pub fn wants_lean_memory(&self) -> bool {
        matches!(self, Command::Compact(_))
    }

    /// Runs the subcommand; the exit code reports partial failures.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Query(q) => q.run().await,
            Command::Store(s) => s.run().await,
            Command::Sidecar(s) => s.run().await,
            Command::Compact(c) => c.run().await,
            Command::Receive(r) => r.run().await,
            Command::Sql(s) => s.run().await,
            Command::Tools(t) => t.run().await,
            Command::Up(u) => u.run().await,
        }
    }
}
