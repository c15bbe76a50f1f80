//! `promlake tools bucket retention`: mark blocks past the retention of their resolution for
//! deletion (the compactor deletes them after its --delete-delay). Run it while no compactor
//! works on the bucket.

use crate::flags::BucketArgs;
use anyhow::{Result, bail};
use clap::Args;
use promlake_engine::compact::{Retention, marks};
use std::process::ExitCode;
use std::time::Duration;

/// Flags of `promlake tools bucket retention`.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    /// How long raw blocks are kept (0d: forever).
    #[arg(long = "retention.resolution-raw", default_value = "0d", value_parser = duration)]
    raw: Duration,
    /// How long 5m-downsampled blocks are kept (0d: forever).
    #[arg(long = "retention.resolution-5m", default_value = "0d", value_parser = duration)]
    res_5m: Duration,
    /// How long 1h-downsampled blocks are kept (0d: forever).
    #[arg(long = "retention.resolution-1h", default_value = "0d", value_parser = duration)]
    res_1h: Duration,
}

fn duration(s: &str) -> Result<Duration, String> {
    crate::http::parse_prometheus_duration(s)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl RetentionArgs {
    /// Marks the expired blocks.
    pub async fn run(self) -> Result<ExitCode> {
        let retention =
            Retention { raw_ms: ms(self.raw), res_5m_ms: ms(self.res_5m), res_1h_ms: ms(self.res_1h) };
        if retention == Retention::default() {
            bail!("no retention set: pass --retention.resolution-raw, -5m or -1h (0d keeps forever)");
        }
        let bucket = self.bucket.open()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let dirs = marks::scan(&bucket).await?;
        let live: Vec<_> = dirs.iter().filter(|d| d.deletion.is_none()).filter_map(|d| d.info()).collect();
        let mut n = 0;
        for b in retention.expired(&live, now) {
            let id = promlake_engine::compact::job::ulid(&b.meta)?;
            if marks::mark_for_deletion(&bucket, &id, "past its retention (tools bucket retention)", now)
                .await?
            {
                println!("marked {id} for deletion");
                n += 1;
            }
        }
        println!("{n} blocks marked for deletion");
        Ok(ExitCode::SUCCESS)
    }
}
