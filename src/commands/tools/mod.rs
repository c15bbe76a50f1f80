//! `promlake tools ...`.

mod bucket_ls;
mod import;

use clap::Subcommand;
use std::process::ExitCode;

/// `promlake tools` subcommands.
#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Convert Prometheus TSDB blocks (a data dir, a snapshot dir, or block dirs) into Parquet blocks in the bucket.
    Import(import::ImportArgs),
    /// Bucket utilities.
    #[command(subcommand)]
    Bucket(BucketCommand),
}

/// `promlake tools bucket` subcommands.
#[derive(Debug, Subcommand)]
pub enum BucketCommand {
    /// List the blocks in the bucket.
    Ls(bucket_ls::LsArgs),
}

impl ToolsCommand {
    /// Runs the tool.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            ToolsCommand::Import(a) => a.run().await,
            ToolsCommand::Bucket(BucketCommand::Ls(a)) => a.run().await,
        }
    }
}
