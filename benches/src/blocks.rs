//! Inspection of block directories — native Prometheus blocks and promlake Parquet blocks
//! alike: a block is any directory holding a `meta.json`; its samples and series come from the
//! Prometheus-compatible `stats` section, its size from the files beside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Totals over every block directly under a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlocksSummary {
    /// Block directories found (those holding a `meta.json`).
    pub blocks: u64,
    /// Sum of `stats.numSamples`.
    pub samples: u64,
    /// Sum of `stats.numSeries`.
    pub series: u64,
    /// Bytes of every file inside the block directories.
    pub bytes: u64,
    /// Bytes per kind of file: `index`, `chunks`, `meta.json`, `series.parquet`,
    /// `samples*.parquet`, ... (the file name, or its top directory inside the block).
    pub bytes_by_kind: BTreeMap<String, u64>,
}

/// Summarises every block directory directly under `dir`.
pub fn summarize(dir: &Path) -> Result<BlocksSummary> {
    let mut sum = BlocksSummary::default();
    for entry in read_dir(dir)? {
        let meta = entry.join("meta.json");
        if !meta.is_file() {
            continue;
        }
        let (samples, series) = read_stats(&meta)?;
        sum.blocks += 1;
        sum.samples += samples;
        sum.series += series;
        add_sizes(&entry, None, &mut sum)?;
    }
    Ok(sum)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io { path: dir.to_path_buf(), source };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        out.push(entry.map_err(io)?.path());
    }
    out.sort();
    Ok(out)
}

/// Reads `stats.numSamples` and `stats.numSeries` of one `meta.json`.
pub fn read_stats(meta: &Path) -> Result<(u64, u64)> {
    let bad = |reason: String| Error::Meta { path: meta.to_path_buf(), reason };
    let text = std::fs::read(meta).map_err(|source| Error::Io { path: meta.to_path_buf(), source })?;
    let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    let stat = |key: &str| {
        json.get("stats")
            .and_then(|s| s.get(key))
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| bad(format!("missing unsigned stats.{key}")))
    };
    Ok((stat("numSamples")?, stat("numSeries")?))
}

fn add_sizes(path: &Path, kind: Option<&str>, sum: &mut BlocksSummary) -> Result<()> {
    for entry in read_dir(path)? {
        let name = entry.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let kind = kind.map_or_else(|| file_kind(&name), str::to_string);
        let md = std::fs::metadata(&entry).map_err(|source| Error::Io { path: entry.clone(), source })?;
        if md.is_dir() {
            add_sizes(&entry, Some(&kind), sum)?;
        } else {
            sum.bytes += md.len();
            *sum.bytes_by_kind.entry(kind).or_default() += md.len();
        }
    }
    Ok(())
}

/// `samples.0001.parquet` and `samples.parquet` both count as `samples*.parquet`.
fn file_kind(name: &str) -> String {
    if name.starts_with("samples") && name.ends_with(".parquet") {
        "samples*.parquet".to_string()
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_blocks_and_ignores_unfinished_ones() -> Result<()> {
        let dir = tempfile::tempdir().map_err(Error::Write)?;
        let w = |p: PathBuf, data: &str| std::fs::write(p, data).map_err(Error::Write);
        for (ulid, samples) in [("01A", 10), ("01B", 32)] {
            let b = dir.path().join(ulid);
            std::fs::create_dir_all(b.join("chunks")).map_err(Error::Write)?;
            w(b.join("meta.json"), &format!(r#"{{"stats":{{"numSamples":{samples},"numSeries":2}}}}"#))?;
            w(b.join("index"), "12345")?;
            w(b.join("chunks/000001"), "123")?;
            w(b.join("samples.0001.parquet"), "1")?;
        }
        std::fs::create_dir_all(dir.path().join("01C")).map_err(Error::Write)?;
        w(dir.path().join("01C/index"), "ignored")?;
        let s = summarize(dir.path())?;
        assert_eq!((s.blocks, s.samples, s.series), (2, 42, 4));
        assert_eq!(s.bytes_by_kind.get("chunks"), Some(&6));
        assert_eq!(s.bytes_by_kind.get("index"), Some(&10));
        assert_eq!(s.bytes_by_kind.get("samples*.parquet"), Some(&2));
        Ok(())
    }
}
