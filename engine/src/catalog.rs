//! Every block of a bucket as one [`SeriesSource`]: the store-side view a querier reads.
//!
//! Parquet blocks open through [`ParquetBlock`], native Prometheus/Thanos blocks through
//! [`NativeSource`]. A select asks every block overlapping the time range and merges series
//! with the same labels across blocks (samples time-ordered, duplicate timestamps once).
//! [`BucketSource::refresh`] picks up new blocks and forgets deleted ones.
//!
//! [`BucketSourceOptions`] narrow what is served as `promlake store` does: a time partition
//! (`--min-time`/`--max-time`: blocks overlapping it, samples inside it) and blocks marked for
//! deletion longer ago than `--ignore-deletion-marks-delay` left out.

use crate::bucket::{BlockFormat, BlockInfo, Bucket};
use crate::native::NativeSource;
use crate::parquet::{DEFAULT_SAMPLES_CACHE_BYTES, ParquetBlock, SamplesCache};
use crate::source::{SelectRequest, SeriesSource, SeriesStream};
use crate::{Labels, Matcher, Result, Warnings, overlaps};
use async_trait::async_trait;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::RwLock;

/// The Thanos marker of a block scheduled for deletion.
const DELETION_MARK: &str = "deletion-mark.json";

/// Which blocks and samples a [`BucketSource`] serves.
#[derive(Debug, Clone)]
pub struct BucketSourceOptions {
    /// Earliest sample served (ms): blocks ending before it are left out.
    pub min_time: i64,
    /// Latest sample served (ms): blocks starting after it are left out.
    pub max_time: i64,
    /// Leave out blocks whose `deletion-mark.json` is older than this; `None` ignores marks.
    pub ignore_deletion_marks_delay: Option<std::time::Duration>,
    /// Decoded samples of Parquet blocks kept across queries.
    pub samples_cache: Arc<SamplesCache>,
}

impl Default for BucketSourceOptions {
    fn default() -> Self {
        BucketSourceOptions {
            min_time: i64::MIN,
            max_time: i64::MAX,
            ignore_deletion_marks_delay: None,
            samples_cache: SamplesCache::new(DEFAULT_SAMPLES_CACHE_BYTES),
        }
    }
}

#[derive(Debug)]
struct OpenBlock {
    ulid: String,
    source: Arc<dyn SeriesSource>,
}

/// All raw-resolution blocks of a bucket.
#[derive(Debug)]
pub struct BucketSource {
    bucket: Bucket,
    blocks: RwLock<Vec<OpenBlock>>,
    empty: Labels,
    opts: BucketSourceOptions,
}

/// Whether block `ulid` carries a `deletion-mark.json` older than `delay` (an unreadable mark
/// is logged and counts as none: the block stays served).
pub(crate) async fn marked_for_deletion_since(
    bucket: &Bucket,
    ulid: &str,
    delay: std::time::Duration,
) -> bool {
    let path = Path::from(format!("{ulid}/{DELETION_MARK}"));
    let bytes = match bucket.store().get(&path).await {
        Ok(r) => match r.bytes().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(path = %path, error = %e, "cannot read deletion mark; serving the block");
                return false;
            }
        },
        Err(object_store::Error::NotFound { .. }) => return false,
        Err(e) => {
            tracing::warn!(path = %path, error = %e, "cannot read deletion mark; serving the block");
            return false;
        }
    };
    let deletion_time = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("deletion_time").and_then(serde_json::Value::as_i64));
    let Some(secs) = deletion_time else {
        tracing::warn!(path = %path, "deletion mark without a deletion_time; serving the block");
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    now.saturating_sub(secs) >= delay.as_secs() as i64
}

impl BucketSource {
    /// Opens every finished block of `bucket`.
    pub async fn open(bucket: Bucket) -> Result<Self> {
        Self::open_with(bucket, BucketSourceOptions::default()).await
    }

    /// Opens the finished blocks of `bucket` that `opts` lets through.
    pub async fn open_with(bucket: Bucket, opts: BucketSourceOptions) -> Result<Self> {
        let source = BucketSource { bucket, blocks: RwLock::new(Vec::new()), empty: Labels::default(), opts };
        source.refresh().await?;
        Ok(source)
    }

    /// Whether a block is marked for deletion for longer than the configured delay.
    async fn deleted_long_ago(&self, ulid: &str) -> bool {
        match self.opts.ignore_deletion_marks_delay {
            Some(delay) => marked_for_deletion_since(&self.bucket, ulid, delay).await,
            None => false,
        }
    }

    /// Re-lists the bucket: opens new blocks, drops deleted ones. A block that fails to open is
    /// logged and left out (it is retried on the next refresh).
    pub async fn refresh(&self) -> Result<()> {
        let listed: Vec<BlockInfo> = self
            .bucket
            .list_blocks()
            .await?
            .into_iter()
            .filter(|b| b.meta.thanos.as_ref().map(|t| t.downsample.resolution).unwrap_or(0) == 0)
            .filter(|b| b.meta.max_time >= self.opts.min_time && b.meta.min_time <= self.opts.max_time)
            .collect();
        // Deletion marks, read concurrently (one small GET per block).
        let listed: Vec<BlockInfo> = futures::stream::iter(listed)
            .map(|b| async move { (self.deleted_long_ago(&b.meta.ulid).await, b) })
            .buffered(16)
            .filter_map(|(deleted, b)| async move {
                if deleted {
                    tracing::debug!(block = %b.meta.ulid, "marked for deletion; not served");
                    None
                } else {
                    Some(b)
                }
            })
            .collect()
            .await;
        let known: BTreeSet<String> = self.blocks.read().await.iter().map(|b| b.ulid.clone()).collect();
        let mut opened = Vec::new();
        for info in listed.iter().filter(|b| !known.contains(&b.meta.ulid)) {
            match self.open_block(info).await {
                Ok(source) => opened.push(OpenBlock { ulid: info.meta.ulid.clone(), source }),
                Err(e) => {
                    tracing::warn!(block = %info.meta.ulid, error = %e, "cannot open block; skipping it")
                }
            }
        }
        let present: BTreeSet<&str> = listed.iter().map(|b| b.meta.ulid.as_str()).collect();
        let mut blocks = self.blocks.write().await;
        blocks.retain(|b| {
            let keep = present.contains(b.ulid.as_str());
            if !keep && let Ok(id) = ulid::Ulid::from_string(&b.ulid) {
                self.opts.samples_cache.forget_block(id);
            }
            keep
        });
        blocks.extend(opened);
        blocks.sort_by(|a, b| a.ulid.cmp(&b.ulid));
        Ok(())
    }

    async fn open_block(&self, info: &BlockInfo) -> Result<Arc<dyn SeriesSource>> {
        Ok(match info.format {
            BlockFormat::Parquet => Arc::new(
                ParquetBlock::open(&self.bucket, info.meta.clone())
                    .await?
                    .with_cache(self.opts.samples_cache.clone()),
            ),
            BlockFormat::Native => {
                let block = promlake_compat::NativeBlock::open(
                    self.bucket.store().clone(),
                    &Path::from(info.meta.ulid.as_str()),
                )
                .await?;
                Arc::new(NativeSource::new(block))
            }
        })
    }

    /// ULIDs of the open blocks.
    pub async fn block_ids(&self) -> Vec<String> {
        self.blocks.read().await.iter().map(|b| b.ulid.clone()).collect()
    }

    /// `[min_time, max_time]` within the served time partition.
    fn partition(&self, min_time: i64, max_time: i64) -> (i64, i64) {
        (min_time.max(self.opts.min_time), max_time.min(self.opts.max_time))
    }

    async fn sources(&self) -> Vec<Arc<dyn SeriesSource>> {
        self.blocks.read().await.iter().map(|b| b.source.clone()).collect()
    }
}

#[async_trait]
impl SeriesSource for BucketSource {
    async fn select(&self, req: &SelectRequest) -> Result<SeriesStream> {
        let clamped;
        let req = if req.min_time < self.opts.min_time || req.max_time > self.opts.max_time {
            clamped = SelectRequest {
                min_time: req.min_time.max(self.opts.min_time),
                max_time: req.max_time.min(self.opts.max_time),
                ..req.clone()
            };
            if clamped.min_time > clamped.max_time {
                return Ok(Box::pin(futures::stream::empty()));
            }
            &clamped
        } else {
            req
        };
        // Blocks overlapping the range (ranges are half-open [min, max)), earliest first, each
        // read on its own task so decoding runs in parallel.
        let mut sources: Vec<Arc<dyn SeriesSource>> = self
            .sources()
            .await
            .into_iter()
            .filter(|s| {
                let (min, max) = s.time_range();
                max > req.min_time && min <= req.max_time
            })
            .collect();
        sources.sort_by_key(|s| s.time_range());
        let tasks: Vec<_> = sources
            .into_iter()
            .map(|src| {
                let req = req.clone();
                tokio::spawn(async move {
                    let mut stream = src.select(&req).await?;
                    let mut out = Vec::new();
                    while let Some(batch) = stream.next().await {
                        out.push(batch?);
                    }
                    Ok::<_, crate::Error>(out)
                })
            })
            .collect();
        // Each series' parts, zero-copy slices of the blocks' batches, in block order; joined
        // (sorted only where blocks overlap) with one copy into the answer's batches.
        let mut parts = Vec::new();
        for task in tasks {
            let batches =
                task.await.map_err(|e| crate::Error::io("block read task", std::io::Error::other(e)))??;
            for batch in batches {
                parts.extend(batch.parts()?);
            }
        }
        let mut series = crate::source::group_parts(parts);
        series.sort_by(|a, b| a.0.block_order(&b.0));
        Ok(crate::source::parts_stream(series))
    }

    /// The union over the blocks (in the store's time partition).
    async fn series_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
        warnings: &Warnings,
    ) -> Result<Vec<Labels>> {
        let (min_time, max_time) = self.partition(min_time, max_time);
        let mut found = std::collections::HashSet::new();
        for src in self.sources().await {
            if overlaps(src.time_range(), min_time, max_time) {
                found.extend(src.series_between(matchers, min_time, max_time, warnings).await?);
            }
        }
        Ok(found.into_iter().collect())
    }

    /// Names from the blocks overlapping the window (within the time partition).
    async fn label_names_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        let (min_time, max_time) = self.partition(min_time, max_time);
        let mut names = BTreeSet::new();
        for src in self.sources().await {
            names.extend(src.label_names_between(matchers, min_time, max_time).await?);
        }
        Ok(names.into_iter().collect())
    }

    /// Values from the blocks overlapping the window (within the time partition).
    async fn label_values_between(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        let (min_time, max_time) = self.partition(min_time, max_time);
        let mut values = BTreeSet::new();
        for src in self.sources().await {
            values.extend(src.label_values_between(name, matchers, min_time, max_time).await?);
        }
        Ok(values.into_iter().collect())
    }

    fn time_range(&self) -> (i64, i64) {
        let (min, max) = match self.blocks.try_read() {
            Ok(blocks) => blocks
                .iter()
                .map(|b| b.source.time_range())
                .fold((i64::MAX, i64::MIN), |acc, r| (acc.0.min(r.0), acc.1.max(r.1))),
            Err(_) => (i64::MIN, i64::MAX),
        };
        if min > max {
            return (min, max);
        }
        (min.max(self.opts.min_time), max.min(self.opts.max_time))
    }

    async fn label_sets(&self) -> Vec<Labels> {
        let mut sets: Vec<Labels> = Vec::new();
        for b in self.blocks.read().await.iter() {
            let ext = b.source.external_labels();
            if !sets.contains(ext) {
                sets.push(ext.clone());
            }
        }
        sets.sort_by(crate::storeapi::compare_labels);
        sets
    }

    fn external_labels(&self) -> &Labels {
        &self.empty
    }
}
