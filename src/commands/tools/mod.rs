//! `promlake tools ...`.

mod bucket_ls;
mod bucket_mark;
mod bucket_retention;
mod bucket_verify;
mod bucket_web;
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
    /// Check the bucket: bad metas, missing files, overlaps, duplicated compactions, unfinished uploads; --repair where safe.
    Verify(bucket_verify::VerifyArgs),
    /// Put (or remove) a deletion or no-compact marker on blocks.
    Mark(bucket_mark::MarkArgs),
    /// Mark blocks past the retention of their resolution for deletion.
    Retention(bucket_retention::RetentionArgs),
    /// Serve a web page of the bucket's blocks on a timeline (/blocks) and /api/v1/blocks.
    Web(bucket_web::WebArgs),
}

impl ToolsCommand {
    /// Runs the tool.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            ToolsCommand::Import(a) => a.run().await,
            ToolsCommand::Bucket(BucketCommand::Ls(a)) => a.run().await,
            ToolsCommand::Bucket(BucketCommand::Verify(a)) => a.run().await,
            ToolsCommand::Bucket(BucketCommand::Mark(a)) => a.run().await,
            ToolsCommand::Bucket(BucketCommand::Retention(a)) => a.run().await,
            ToolsCommand::Bucket(BucketCommand::Web(a)) => a.run().await,
        }
    }
}
