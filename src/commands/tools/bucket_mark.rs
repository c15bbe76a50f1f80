//! `promlake tools bucket mark`: put (or with `--remove` take off) a deletion or no-compact
//! marker on blocks.

use crate::flags::BucketArgs;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use promlake_engine::compact::marks;
use std::process::ExitCode;
use ulid::Ulid;

/// Markers that can be set.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Marker {
    /// The block is deleted by the compactor after --delete-delay.
    #[value(name = "deletion-mark.json")]
    Deletion,
    /// The compactor leaves the block alone.
    #[value(name = "no-compact-mark.json")]
    NoCompact,
}

/// Flags of `promlake tools bucket mark`.
#[derive(Debug, Args)]
pub struct MarkArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    /// ULID of a block to mark (repeatable).
    #[arg(long = "id", required = true, value_name = "ULID")]
    ids: Vec<String>,
    /// The marker to put.
    #[arg(long, value_enum)]
    marker: Marker,
    /// Why (stored in the marker).
    #[arg(long, default_value = "")]
    details: String,
    /// Remove the marker instead of adding it.
    #[arg(long)]
    remove: bool,
}

impl MarkArgs {
    /// Marks (or unmarks) every block named.
    pub async fn run(self) -> Result<ExitCode> {
        let bucket = self.bucket.open()?;
        let mut ids = Vec::new();
        for s in &self.ids {
            let Ok(id) = Ulid::from_string(s) else {
                bail!("--id {s:?}: not a ULID");
            };
            if !self.remove && !bucket.has_block(&id).await? {
                bail!("--id {s}: no such block in {} (no {s}/meta.json)", bucket.url());
            }
            ids.push(id);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let name = match self.marker {
            Marker::Deletion => marks::DELETION_MARK,
            Marker::NoCompact => marks::NO_COMPACT_MARK,
        };
        for id in ids {
            if self.remove {
                marks::remove_marker(&bucket, &id, name).await?;
                println!("removed {id}/{name}");
                continue;
            }
            let written = match self.marker {
                Marker::Deletion => marks::mark_for_deletion(&bucket, &id, &self.details, now).await?,
                Marker::NoCompact => {
                    marks::mark_no_compact(&bucket, &id, marks::REASON_MANUAL, &self.details, now).await?
                }
            };
            if written {
                println!("marked {id} with {name}");
            } else {
                println!("{id} already has {name}");
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
