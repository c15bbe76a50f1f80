//! `promlake tools bucket verify`: bucket consistency checks (bad metas, missing files,
//! overlaps, duplicated compactions, interrupted deletions, aborted uploads), `--repair`
//! where safe.

use crate::flags::BucketArgs;
use anyhow::Result;
use clap::Args;
use indicatif::ProgressBar;
use promlake_engine::compact::verify::verify;
use std::io::IsTerminal;
use std::process::ExitCode;

/// Flags of `promlake tools bucket verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    /// Fix what is safe to fix: mark duplicated compactions for deletion, finish interrupted deletions.
    #[arg(long)]
    repair: bool,
    /// External label naming the replica (repeatable), as given to the compactor: blocks differing only in it are one group.
    #[arg(long = "deduplication.replica-label", value_delimiter = ',')]
    replica_labels: Vec<String>,
}

impl VerifyArgs {
    /// Prints one line per issue; exits non-zero when an issue other than an in-progress
    /// upload is left unrepaired.
    pub async fn run(self) -> Result<ExitCode> {
        let bucket = self.bucket.open()?;
        let spinner = std::io::stderr().is_terminal().then(|| {
            let s = ProgressBar::new_spinner();
            s.set_message(format!("verifying {}", bucket.url()));
            s.enable_steady_tick(std::time::Duration::from_millis(100));
            s
        });
        tracing::info!(bucket = bucket.url(), repair = self.repair, "verifying");
        let rt = tokio::runtime::Handle::current();
        let (repair, labels) = (self.repair, self.replica_labels.clone());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let b = bucket.clone();
        let issues = tokio::task::spawn_blocking(move || verify(&rt, &b, &labels, repair, now)).await??;
        if let Some(s) = spinner {
            s.finish_and_clear();
        }
        let mut open = 0;
        for i in &issues {
            let state = if i.repaired { " (repaired)" } else { "" };
            println!("{}  {}  {}{state}", i.block, i.kind, i.message);
            if !i.repaired && i.kind != "partial_upload" {
                open += 1;
            }
        }
        println!(
            "{} issues, {} repaired, {open} left",
            issues.len(),
            issues.iter().filter(|i| i.repaired).count()
        );
        Ok(if open > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    }
}
