//! [`ResolutionSource`]: every block of a bucket, served at a maximum resolution. A select
//! picks blocks with [`super::blocks_for`], reads raw and downsampled pieces of each series,
//! joins them in time order (running counters rebased across blocks, as Thanos's
//! ApplyCounterResets does) and returns the values of the aggregate the request's function
//! hint asks for. With only raw blocks chosen it returns raw samples unchanged.

use super::{aggr_for_func, aggr_samples, blocks_for, raw_to_aggr};
use crate::bucket::{BlockFormat, BlockInfo, Bucket};
use crate::compact::merge::concat_aggr;
use crate::compact::plan::resolution;
use crate::native::NativeSource;
use crate::parquet::{AggrBlock, AggrSeries, ParquetBlock};
use crate::source::{SelectRequest, SeriesBatch, SeriesSource, SeriesStream};
use crate::{Labels, Matcher, Result};
use async_trait::async_trait;
use futures::StreamExt;
use object_store::path::Path;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::RwLock;

/// Series per returned batch.
const BATCH_SERIES: usize = 1024;

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
}

/// One piece of a series from one block.
enum Piece {
    Raw(Vec<i64>, Vec<f64>),
    Aggr(AggrSeries),
}

impl ResolutionSource {
    /// Opens every finished block of `bucket` (all resolutions).
    pub async fn open(bucket: Bucket, max_resolution_ms: i64) -> Result<Self> {
        let s = ResolutionSource {
            bucket,
            max_resolution_ms,
            blocks: RwLock::new(Vec::new()),
            empty: Labels::default(),
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
        }
    }

    /// Re-lists the bucket: opens new blocks, forgets deleted ones; a block that fails to open
    /// is logged and retried next time.
    pub async fn refresh(&self) -> Result<()> {
        let listed = self.bucket.list_blocks().await?;
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
            (BlockFormat::Parquet, 0) => {
                Opened::Raw(Arc::new(ParquetBlock::open(&self.bucket, info.meta.clone()).await?))
            }
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

    async fn chosen(&self, min_time: i64, max_time: i64, max_resolution_ms: i64) -> Vec<Opened> {
        let blocks = self.blocks.read().await;
        let infos: Vec<BlockInfo> = blocks.iter().map(|b| b.0.clone()).collect();
        let by_id: HashMap<&str, &Opened> = blocks.iter().map(|b| (b.0.meta.ulid.as_str(), &b.1)).collect();
        blocks_for(&infos, min_time, max_time, max_resolution_ms)
            .iter()
            .filter_map(|b| by_id.get(b.meta.ulid.as_str()).map(|o| (*o).clone()))
            .collect()
    }

    async fn all(&self) -> Vec<Opened> {
        self.blocks.read().await.iter().map(|b| b.1.clone()).collect()
    }
}

#[async_trait]
impl SeriesSource for ResolutionSource {
    async fn select(&self, req: &SelectRequest) -> Result<SeriesStream> {
        let mut pieces: BTreeMap<String, (Labels, Vec<Piece>)> = BTreeMap::new();
        let mut any_aggr = false;
        let max_resolution = self.max_resolution_ms.max(req.hints.max_resolution_ms);
        for block in self.chosen(req.min_time, req.max_time, max_resolution).await {
            match block {
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
                    any_aggr = true;
                    let pos = b.matching(&req.matchers, req.min_time, req.max_time);
                    let series = b.read_positions(&pos).await?;
                    for (&p, s) in pos.iter().zip(series) {
                        let Some(info) = b.series().get(p) else { continue };
                        let labels = info.labels.merged(b.external_labels());
                        let e = pieces.entry(labels.to_string()).or_insert_with(|| (labels, Vec::new()));
                        e.1.push(Piece::Aggr(s));
                    }
                }
            }
        }
        let aggr = aggr_for_func(req.hints.func.as_deref());
        let mut out: Vec<(Labels, Vec<i64>, Vec<f64>)> = Vec::with_capacity(pieces.len());
        for (_, (labels, parts)) in pieces {
            let (ts, vals) = if any_aggr {
                let joined = concat_aggr(
                    parts
                        .into_iter()
                        .map(|p| match p {
                            Piece::Raw(t, v) => raw_to_aggr(&t, &v),
                            Piece::Aggr(a) => a,
                        })
                        .collect(),
                );
                aggr_samples(&joined, aggr)
            } else {
                let mut pts: Vec<(i64, f64)> = parts
                    .into_iter()
                    .flat_map(|p| match p {
                        Piece::Raw(t, v) => t.into_iter().zip(v).collect::<Vec<_>>(),
                        Piece::Aggr(_) => Vec::new(),
                    })
                    .collect();
                pts.sort_by_key(|p| p.0);
                pts.dedup_by_key(|p| p.0);
                pts.into_iter().unzip()
            };
            let keep: Vec<usize> =
                (0..ts.len()).filter(|&i| ts[i] >= req.min_time && ts[i] <= req.max_time).collect();
            if !keep.is_empty() {
                out.push((
                    labels,
                    keep.iter().map(|&i| ts[i]).collect(),
                    keep.iter().map(|&i| vals[i]).collect(),
                ));
            }
        }
        out.sort_by(|a, b| a.0.block_order(&b.0));
        let mut batches = Vec::new();
        while !out.is_empty() {
            let rest = out.split_off(out.len().min(BATCH_SERIES));
            batches.push(SeriesBatch::from_series(std::mem::replace(&mut out, rest)));
        }
        Ok(Box::pin(futures::stream::iter(batches)))
    }

    async fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut names = BTreeSet::new();
        for b in self.all().await {
            match b {
                Opened::Raw(s) => names.extend(s.label_names(matchers).await?),
                Opened::Aggr(a) => {
                    for p in a.matching(matchers, i64::MIN, i64::MAX) {
                        if let Some(s) = a.series().get(p) {
                            names.extend(s.labels.merged(a.external_labels()).iter().map(|l| l.name.clone()));
                        }
                    }
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    async fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut values = BTreeSet::new();
        for b in self.all().await {
            match b {
                Opened::Raw(s) => values.extend(s.label_values(name, matchers).await?),
                Opened::Aggr(a) => {
                    for p in a.matching(matchers, i64::MIN, i64::MAX) {
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
        match self.blocks.try_read() {
            Ok(blocks) => blocks.iter().fold((i64::MAX, i64::MIN), |acc, b| {
                (acc.0.min(b.0.meta.min_time), acc.1.max(b.0.meta.max_time))
            }),
            Err(_) => (i64::MIN, i64::MAX),
        }
    }

    fn external_labels(&self) -> &Labels {
        &self.empty
    }
}
