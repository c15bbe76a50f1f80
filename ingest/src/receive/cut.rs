//! Block cutting: every tick, each tenant's oldest block window `[s, s+D)` (aligned to
//! multiples of the block duration `D`, like Prometheus's 2h blocks) is cut once the head's
//! newest sample or the wall clock reaches `s + 1.5·D`, so late samples still make it in.
//! The window is written as a Parquet block (format v1) with the external labels plus the
//! tenant label, uploaded with meta.json last, recorded in `<tsdb.path>/uploaded.json`,
//! dropped from the head, and only then are WAL segments holding nothing newer deleted.

use super::Receiver;
use super::head::Head;
use crate::{Error, Result};
use promlake_compat::BlockMeta;
use promlake_compat::meta::{Compaction, ThanosMeta};
use promlake_engine::Bucket;
use promlake_engine::parquet::{ParquetBlockWriter, WriterOptions};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use ulid::Ulid;

const UPLOADED_FILE: &str = "uploaded.json";

/// Reads `<tsdb.path>/uploaded.json`: per tenant, the end (exclusive, ms) of the newest
/// window uploaded. Missing file: nothing uploaded yet.
pub fn read_uploaded(dir: &Path) -> Result<BTreeMap<String, i64>> {
    let path = dir.join(UPLOADED_FILE);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Config(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(Error::io(path.display(), e)),
    }
}

/// Writes `uploaded.json` atomically (temporary file, fsync, rename, fsync of the directory).
fn write_uploaded(dir: &Path, map: &BTreeMap<String, i64>) -> Result<()> {
    let path = dir.join(UPLOADED_FILE);
    let tmp = dir.join(format!("{UPLOADED_FILE}.tmp"));
    let bytes = serde_json::to_vec_pretty(map).map_err(|e| Error::Task(e.to_string()))?;
    let io = |e| Error::io(tmp.display(), e);
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(path.display(), e))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir.display(), e))
}

/// The window `[start, end)` to cut from `head` at wall-clock `now_ms`, if one is due.
pub fn due_window(head: &Head, now_ms: i64) -> Option<(i64, i64)> {
    let d = head.block_ms();
    let (Some(min), max) = head.bounds() else { return None };
    let start = min.div_euclid(d) * d;
    let end = start + d;
    (max.max(now_ms) >= end + d / 2).then_some((start, end))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Receiver {
    /// Cuts and uploads every due window of every tenant; returns the blocks uploaded.
    /// `force` cuts every window that ended before `now` even if not yet 1.5 durations old.
    pub async fn cut_due(&self, bucket: &Bucket, force: bool) -> Result<Vec<BlockMeta>> {
        let mut out = Vec::new();
        for head in self.heads().all() {
            loop {
                let now = now_ms();
                let window = if force { forced_window(&head, now) } else { due_window(&head, now) };
                let Some((start, end)) = window else { break };
                out.push(self.cut_one(bucket, &head, start, end).await?);
            }
        }
        Ok(out)
    }

    async fn cut_one(&self, bucket: &Bucket, head: &Arc<Head>, start: i64, end: i64) -> Result<BlockMeta> {
        let tenant = head.tenant().to_string();
        let wal = self.wal()?.clone();
        // New records go to a new segment from here on.
        let w = wal.clone();
        tokio::task::spawn_blocking(move || w.flush(true))
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        let series = {
            let h = head.clone();
            tokio::task::spawn_blocking(move || h.begin_cut(end))
                .await
                .map_err(|e| Error::Task(e.to_string()))?
        };
        let num_series = series.len();
        let id = Ulid::generate();
        let written = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut w = ParquetBlockWriter::new(WriterOptions::default())?;
            for (labels, ts, vs) in series {
                w.append(labels, &ts, &vs)?;
            }
            Ok(w.finish()?)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
        let labels = self.heads().tenant_labels(&tenant);
        let meta = BlockMeta {
            ulid: id.to_string(),
            min_time: written.min_time.unwrap_or(start),
            max_time: end,
            stats: Default::default(),
            compaction: Compaction { level: 1, sources: vec![id.to_string()], ..Default::default() },
            version: 1,
            thanos: Some(ThanosMeta {
                version: 1,
                labels: labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect(),
                source: "receive".into(),
                ..Default::default()
            }),
            promlake: None,
        };
        let samples = written.num_samples;
        let meta = written.upload(bucket, &id, meta).await?;
        self.metrics().blocks_uploaded.fetch_add(1, Relaxed);
        tracing::info!(%tenant, block = %id, start, end, series = num_series, samples, "block uploaded");
        {
            let dir = self.config().tsdb_path.clone();
            let mut map = self.uploaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            map.insert(tenant.clone(), end);
            let m2 = map.clone();
            tokio::task::spawn_blocking(move || write_uploaded(&dir, &m2))
                .await
                .map_err(|e| Error::Task(e.to_string()))??;
            *self.uploaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = map;
        }
        if let Some(blocks) = self.blocks()
            && let Err(e) = blocks.refresh().await
        {
            tracing::warn!(error = %e, "re-listing the bucket after an upload failed; the block is served after the next listing");
        }
        head.finish_cut(end);
        let deleted = wal.truncate(|t| self.uploaded_until(t))?;
        self.metrics().wal_truncated_segments.fetch_add(deleted as u64, Relaxed);
        if deleted > 0 {
            tracing::info!(segments = deleted, "WAL truncated");
        }
        Ok(meta)
    }

    /// Runs the cutter until the process ends: every `tick`, cut what is due; failures are
    /// logged and retried on the next tick (the data stays in the head and the WAL).
    pub async fn run_cutter(self: Arc<Self>, bucket: Bucket, tick: Duration) {
        let mut t = tokio::time::interval(tick);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            if !self.is_ready() {
                continue;
            }
            if let Err(e) = self.cut_due(&bucket, false).await {
                self.metrics().upload_failures.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "cutting or uploading a block failed; retrying on the next tick");
            }
        }
    }
}

/// The oldest window that has fully ended before `now`, if any.
fn forced_window(head: &Head, now_ms: i64) -> Option<(i64, i64)> {
    let d = head.block_ms();
    let (Some(min), _) = head.bounds() else { return None };
    let start = min.div_euclid(d) * d;
    (start + d <= now_ms).then_some((start, start + d))
}
