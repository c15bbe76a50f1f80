//! [`ResolutionSource`]: every block of a bucket, served at a maximum resolution. A select
//! picks blocks with [`super::ranges_for`], reads raw and downsampled pieces of each series,
//! joins them in time order (running counters rebased across blocks, as Thanos's
//! ApplyCounterResets does) and returns the values of the aggregate the request's function
//! hint asks for. With only raw blocks chosen it returns raw samples unchanged.
//!
//! [`BucketSourceOptions`] narrow the blocks as for `promlake store` (a `--min-time`/`--max-time`
//! partition, blocks marked for deletion long ago left out); downsampled windows of a block
//! overlapping the partition are served whole, as Thanos filters per chunk.

use super::pieces::{Piece, PieceSource, SeriesPieces, join, trim_windows};
use super::{aggr_for_func, ranges_for};
use crate::bucket::{BlockFormat, BlockInfo, Bucket};
use crate::catalog::{BucketSourceOptions, marked_for_deletion_since};
use crate::compact::plan::resolution;
use crate::native::NativeSource;
use crate::parquet::{AggrBlock, ParquetBlock};
use crate::source::{SelectRequest, SeriesSource, SeriesStream};
use crate::{Labels, Matcher, Result};
use async_trait::async_trait;
use futures::StreamExt;
use object_store::path::Path;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::RwLock;

#[derive(Debug, Clone)]
enum Opened {
    Raw(Arc<dyn SeriesSource>),
    Aggr(Arc<AggrBlock>),
}

/// A bucket's blocks at resolutions up to `max_resolution_ms`.
#[derive(Debug)]
pub struct ResolutionSource {
    bucket: Bucket,
    max_resolution_ms: i64,
    blocks: RwLock<Vec<(BlockInfo, Opened)>>,
    empty: Labels,
    opts: BucketSourceOptions,
}

impl ResolutionSource {
    /// Opens every finished block of `bucket` (all resolutions).
    pub async fn open(bucket: Bucket, max_resolution_ms: i64) -> Result<Self> {
        Self::open_with(bucket, max_resolution_ms, BucketSourceOptions::default()).await
    }

    /// Opens the finished blocks of `bucket` (all resolutions) that `opts` lets through.
    pub async fn open_with(
        bucket: Bucket,
        max_resolution_ms: i64,
        opts: BucketSourceOptions,
    ) -> Result<Self> {
        let s = ResolutionSource {
            bucket,
            max_resolution_ms,
            blocks: RwLock::new(Vec::new()),
            empty: Labels::default(),
            opts,
        };
        s.refresh().await?;
        Ok(s)
    }

    /// The same blocks served at another maximum resolution.
    pub async fn with_max_resolution(&self, max_resolution_ms: i64) -> Self {
        let blocks = self.blocks.read().await.clone();
        ResolutionSource {
            bucket: self.bucket.clone(),
            max_resolution_ms,
            blocks: RwLock::new(blocks),
            empty: Labels::default(),
            opts: self.opts.clone(),
        }
    }

    /// ULIDs of the open blocks (every resolution).
    pub async fn block_ids(&self) -> Vec<String> {
        self.blocks.read().await.iter().map(|b| b.0.meta.ulid.clone()).collect()
    }

    /// Re-lists the bucket: opens new blocks, forgets deleted ones; a block that fails to open
    /// is logged and retried next time.
    pub async fn refresh(&self) -> Result<()> {
        let (lo, hi) = (self.opts.min_time, self.opts.max_time);
        let mut listed = Vec::new();
        for b in self.bucket.list_blocks().await? {
            if b.meta.max_time < lo || b.meta.min_time > hi {
                continue;
            }
            if let Some(delay) = self.opts.ignore_deletion_marks_delay
                && marked_for_deletion_since(&self.bucket, &b.meta.ulid, delay).await
            {
                continue;
            }
            listed.push(b);
        }
        let known: BTreeSet<String> =
            self.blocks.read().await.iter().map(|b| b.0.meta.ulid.clone()).collect();
        let mut opened = Vec::new();
        for info in listed.iter().filter(|b| !known.contains(&b.meta.ulid)) {
            match self.open_block(info).await {
                Ok(o) => opened.push((info.clone(), o)),
                Err(e) => {
                    tracing::warn!(block = %info.meta.ulid, error = %e, "cannot open block; skipping it")
                }
            }
        }
        let present: BTreeSet<&str> = listed.iter().map(|b| b.meta.ulid.as_str()).collect();
        let mut blocks = self.blocks.write().await;
        blocks.retain(|b| present.contains(b.0.meta.ulid.as_str()));
        blocks.extend(opened);
        Ok(())
    }

    async fn open_block(&self, info: &BlockInfo) -> Result<Opened> {
        Ok(match (info.format, resolution(&info.meta)) {
            (BlockFormat::Parquet, 0) => Opened::Raw(Arc::new(
                ParquetBlock::open(&self.bucket, info.meta.clone())
                    .await?
                    .with_cache(self.opts.samples_cache.clone()),
            )),
            (BlockFormat::Parquet, _) => {
                Opened::Aggr(Arc::new(AggrBlock::open(&self.bucket, info.meta.clone()).await?))
            }
            (BlockFormat::Native, 0) => {
                let b = promlake_compat::NativeBlock::open(
                    self.bucket.store().clone(),
                    &Path::from(info.meta.ulid.as_str()),
                )
                .await?;
                Opened::Raw(Arc::new(NativeSource::new(b)))
            }
            (BlockFormat::Native, _) => {
                return Err(crate::Error::format(
                    format!("{}/meta.json", info.meta.ulid),
                    "native downsampled blocks are not supported",
                ));
            }
        })
    }

    /// The blocks answering the range at `max_resolution_ms`, each with the part of the range
    /// it answers.
    async fn chosen(&self, min_time: i64, max_time: i64, max_resolution_ms: i64) -> Vec<(Opened, i64, i64)> {
        let blocks = self.blocks.read().await;
        let infos: Vec<BlockInfo> = blocks.iter().map(|b| b.0.clone()).collect();
        let by_id: HashMap<&str, &Opened> = blocks.iter().map(|b| (b.0.meta.ulid.as_str(), &b.1)).collect();
        ranges_for(&infos, min_time, max_time, max_resolution_ms)
            .into_iter()
            .filter_map(|(b, from, to)| by_id.get(b.meta.ulid.as_str()).map(|o| ((*o).clone(), from, to)))
            .collect()
    }

    async fn all(&self) -> Vec<Opened> {
        self.blocks.read().await.iter().map(|b| b.1.clone()).collect()
    }

    /// The request clamped to the served partition; `None` when nothing of it is left.
    fn clamp(&self, req: &SelectRequest) -> Option<SelectRequest> {
        let (min_time, max_time) =
            (req.min_time.max(self.opts.min_time), req.max_time.min(self.opts.max_time));
        (min_time <= max_time).then(|| SelectRequest { min_time, max_time, ..req.clone() })
    }

    /// The blocks answering `req` (already clamped) at its resolution, and whether any of
    /// them is downsampled.
    async fn chosen_for(&self, req: &SelectRequest) -> (Vec<(Opened, i64, i64)>, bool) {
        let max_resolution = self.max_resolution_ms.max(req.hints.max_resolution_ms);
        let chosen = self.chosen(req.min_time, req.max_time, max_resolution).await;
        let any_aggr = chosen.iter().any(|o| matches!(o.0, Opened::Aggr(_)));
        (chosen, any_aggr)
    }

    /// Whether a select of `req` reads some downsampled block (otherwise raw blocks alone
    /// answer it and a raw-only source gives the same samples).
    pub async fn reads_downsampled(&self, req: &SelectRequest) -> bool {
        match self.clamp(req) {
            Some(req) => self.chosen_for(&req).await.1,
            None => false,
        }
    }

    /// Reads the pieces of every matching series from `blocks`: downsampled ones for the part
    /// of the range their block answers (with one window more on each side, see
    /// [`trim_windows`]), raw ones for the whole request.
    async fn read_pieces(blocks: Vec<(Opened, i64, i64)>, req: &SelectRequest) -> Result<Vec<SeriesPieces>> {
        let mut pieces: BTreeMap<String, (Labels, Vec<Piece>)> = BTreeMap::new();
        for (block, from, to) in blocks {
            match block {
                // Raw pieces cover the whole request: a raw block's samples before its part
                // are dropped by the join once a coarser piece holds that time.
                Opened::Raw(src) => {
                    let mut stream = src.select(req).await?;
                    while let Some(batch) = stream.next().await {
                        for (labels, ts, vals) in batch?.to_series() {
                            let e = pieces.entry(labels.to_string()).or_insert_with(|| (labels, Vec::new()));
                            e.1.push(Piece::Raw(ts, vals));
                        }
                    }
                }
                Opened::Aggr(b) => {
                    let pos = b.matching(&req.matchers, from, to);
                    let series = b.read_positions(&pos).await?;
                    for (&p, s) in pos.iter().zip(series) {
                        let Some(info) = b.series().get(p) else { continue };
                        let labels = info.labels.merged(b.external_labels());
                        let e = pieces.entry(labels.to_string()).or_insert_with(|| (labels, Vec::new()));
                        e.1.push(Piece::Aggr(trim_windows(s, from, to)));
                    }
                }
            }
        }
        let mut out: Vec<SeriesPieces> = pieces.into_values().collect();
        out.sort_by(|a, b| a.0.block_order(&b.0));
        Ok(out)
    }
}

#[async_trait]
impl PieceSource for ResolutionSource {
    async fn select_pieces(&self, req: &SelectRequest) -> Result<Option<Vec<SeriesPieces>>> {
        let Some(req) = self.clamp(req) else { return Ok(Some(Vec::new())) };
        let (blocks, any_aggr) = self.chosen_for(&req).await;
        if !any_aggr {
            return Ok(None);
        }
        Ok(Some(Self::read_pieces(blocks, &req).await?))
    }
}

#[async_trait]
impl SeriesSource for ResolutionSource {
    async fn select(&self, req: &SelectRequest) -> Result<SeriesStream> {
        let Some(req) = self.clamp(req) else { return Ok(Box::pin(futures::stream::empty())) };
        let (blocks, any_aggr) = self.chosen_for(&req).await;
        let pieces = Self::read_pieces(blocks, &req).await?;
        let aggr = aggr_for_func(req.hints.func.as_deref());
        let mut out: Vec<(Labels, Vec<i64>, Vec<f64>)> = Vec::with_capacity(pieces.len());
        for (labels, parts) in pieces {
            let (ts, vals) = if any_aggr {
                join(parts, aggr, req.min_time, req.max_time)
            } else {
                let mut pts: Vec<(i64, f64)> = parts
                    .into_iter()
                    .flat_map(|p| match p {
                        Piece::Raw(t, v) => t.into_iter().zip(v).collect::<Vec<_>>(),
                        Piece::Aggr(_) => Vec::new(),
                    })
                    .filter(|p| p.0 >= req.min_time && p.0 <= req.max_time)
                    .collect();
                pts.sort_by_key(|p| p.0);
                pts.dedup_by_key(|p| p.0);
                pts.into_iter().unzip()
            };
            if !ts.is_empty() {
                out.push((labels, ts, vals));
            }
        }
        Ok(crate::source::series_stream(out))
    }

    /// Names from the raw blocks overlapping the window and the downsampled series in it.
    async fn label_names_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        let mut names = BTreeSet::new();
        for b in self.all().await {
            match b {
                Opened::Raw(s) => names.extend(s.label_names_between(matchers, min_time, max_time).await?),
                Opened::Aggr(a) => {
                    for p in a.matching(matchers, min_time, max_time) {
                        if let Some(s) = a.series().get(p) {
                            names.extend(s.labels.merged(a.external_labels()).iter().map(|l| l.name.clone()));
                        }
                    }
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Values from the raw blocks overlapping the window and the downsampled series in it.
    async fn label_values_between(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        let mut values = BTreeSet::new();
        for b in self.all().await {
            match b {
                Opened::Raw(s) => {
                    values.extend(s.label_values_between(name, matchers, min_time, max_time).await?)
                }
                Opened::Aggr(a) => {
                    for p in a.matching(matchers, min_time, max_time) {
                        if let Some(v) = a
                            .series()
                            .get(p)
                            .and_then(|s| s.labels.merged(a.external_labels()).get(name).map(str::to_string))
                        {
                            values.insert(v);
                        }
                    }
                }
            }
        }
        Ok(values.into_iter().collect())
    }

    fn time_range(&self) -> (i64, i64) {
        let (min, max) = match self.blocks.try_read() {
            Ok(blocks) => blocks.iter().fold((i64::MAX, i64::MIN), |acc, b| {
                (acc.0.min(b.0.meta.min_time), acc.1.max(b.0.meta.max_time))
            }),
            Err(_) => (i64::MIN, i64::MAX),
        };
        if min > max {
            return (min, max);
        }
        (min.max(self.opts.min_time), max.min(self.opts.max_time))
    }

    /// The distinct external label sets of the blocks, every resolution.
    async fn label_sets(&self) -> Vec<Labels> {
        let mut sets: Vec<Labels> = Vec::new();
        for (_, b) in self.blocks.read().await.iter() {
            let ext = match b {
                Opened::Raw(s) => s.external_labels(),
                Opened::Aggr(a) => a.external_labels(),
            };
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
