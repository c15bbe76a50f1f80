//! `promlake tools bucket ls`: the blocks in the bucket, as a table or JSON.

use crate::flags::BucketArgs;
use anyhow::Result;
use clap::{Args, ValueEnum};
use promlake_engine::BlockInfo;
use serde_json::json;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    /// An aligned text table.
    Table,
    /// One JSON array of blocks.
    Json,
}

/// Flags of `promlake tools bucket ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Output,
}

fn rfc3339(ms: i64) -> String {
    let t = if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    };
    humantime::format_rfc3339_millis(t).to_string()
}

/// Go-style duration, e.g. `2h0m0s`, `1h59m59.999s`.
fn go_duration(ms: i64) -> String {
    let ms = ms.max(0);
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let secs = if frac == 0 { format!("{s}s") } else { format!("{s}.{frac:03}s").replace("0s", "s") };
    if h > 0 {
        format!("{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{m}m{secs}")
    } else {
        secs
    }
}

fn resolution(b: &BlockInfo) -> i64 {
    b.meta.thanos.as_ref().map(|t| t.downsample.resolution).unwrap_or(0)
}

fn labels(b: &BlockInfo) -> String {
    let Some(t) = &b.meta.thanos else {
        return String::new();
    };
    t.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

impl LsArgs {
    /// Lists the blocks.
    pub async fn run(self) -> Result<ExitCode> {
        let bucket = self.bucket.open()?;
        let blocks = bucket.list_blocks().await?;
        match self.output {
            Output::Json => {
                let arr: Vec<_> = blocks
                    .iter()
                    .map(|b| {
                        let m = &b.meta;
                        json!({
                            "ulid": m.ulid,
                            "minTime": m.min_time,
                            "maxTime": m.max_time,
                            "numSeries": m.stats.num_series,
                            "numSamples": m.stats.num_samples,
                            "numChunks": m.stats.num_chunks,
                            "resolution": resolution(b),
                            "labels": m.thanos.as_ref().map(|t| t.labels.clone()).unwrap_or_default(),
                            "compactionLevel": m.compaction.level,
                            "source": m.thanos.as_ref().map(|t| t.source.clone()).unwrap_or_default(),
                            "format": b.format,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&arr)?);
            }
            Output::Table => {
                let header =
                    ["ULID", "FROM", "UNTIL", "RANGE", "SERIES", "SAMPLES", "RESOLUTION", "FORMAT", "LABELS"];
                let rows: Vec<[String; 9]> = blocks
                    .iter()
                    .map(|b| {
                        let m = &b.meta;
                        [
                            m.ulid.clone(),
                            rfc3339(m.min_time),
                            rfc3339(m.max_time),
                            go_duration(m.max_time - m.min_time),
                            m.stats.num_series.to_string(),
                            m.stats.num_samples.to_string(),
                            go_duration(resolution(b)),
                            format!("{:?}", b.format).to_lowercase(),
                            labels(b),
                        ]
                    })
                    .collect();
                let mut widths = header.map(str::len);
                for r in &rows {
                    for (w, c) in widths.iter_mut().zip(r) {
                        *w = (*w).max(c.len());
                    }
                }
                let line = |cells: Vec<&str>| {
                    let s: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
                    println!("{}", s.join("  ").trim_end());
                };
                line(header.to_vec());
                for r in &rows {
                    line(r.iter().map(String::as_str).collect());
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_and_durations() {
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(go_duration(7_200_000), "2h0m0s");
        assert_eq!(go_duration(300_000), "5m0s");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(6_360_001), "1h46m0.001s");
    }
}
