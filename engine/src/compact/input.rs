//! Input blocks of a compaction or downsampling, read in label order by ranges of series: raw
//! Parquet blocks, native TSDB blocks and downsampled Parquet blocks.

use crate::bucket::{BlockFormat, BlockInfo, Bucket};
use crate::parquet::{AggrBlock, AggrSeries, ParquetBlock};
use crate::{Error, Labels, Result};
use object_store::path::Path;
use promlake_compat::{BlockMeta, NativeBlock, SeriesEntry};
use rayon::prelude::*;
use std::ops::Range;
use tokio::runtime::Handle;

/// One series' data as read from an input.
#[derive(Debug, Clone)]
pub enum SeriesData {
    /// Raw samples (timestamps, values).
    Raw(Vec<i64>, Vec<f64>),
    /// Downsampled windows.
    Aggr(AggrSeries),
}

impl SeriesData {
    /// Rows (samples or windows).
    pub fn len(&self) -> usize {
        match self {
            SeriesData::Raw(t, _) => t.len(),
            SeriesData::Aggr(a) => a.len(),
        }
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An open input block. Series are addressed by position in label order
/// ([`Labels::block_order`]); labels exclude the block's external labels.
#[derive(Debug)]
pub enum Input {
    /// A raw Parquet block.
    Raw(ParquetBlock),
    /// A native TSDB block with its series in label order.
    Native {
        /// The block.
        block: Box<NativeBlock>,
        /// Positions in `block.series()`, in label order.
        order: Vec<usize>,
        /// Labels of `order`'s series.
        labels: Vec<Labels>,
    },
    /// A downsampled Parquet block.
    Aggr(AggrBlock),
}

impl Input {
    /// Opens a block of the bucket.
    pub async fn open(bucket: &Bucket, info: &BlockInfo) -> Result<Input> {
        let res = super::plan::resolution(&info.meta);
        Ok(match (info.format, res) {
            (BlockFormat::Parquet, 0) => Input::Raw(ParquetBlock::open(bucket, info.meta.clone()).await?),
            (BlockFormat::Parquet, _) => Input::Aggr(AggrBlock::open(bucket, info.meta.clone()).await?),
            (BlockFormat::Native, 0) => {
                let block =
                    NativeBlock::open(bucket.store().clone(), &Path::from(info.meta.ulid.as_str())).await?;
                let all: Vec<Labels> =
                    block.series().iter().map(|s| Labels::from_pairs(s.labels.iter().cloned())).collect();
                let mut order: Vec<usize> = (0..all.len()).collect();
                order.sort_by(|&a, &b| all[a].block_order(&all[b]));
                let labels = order.iter().filter_map(|&i| all.get(i).cloned()).collect();
                Input::Native { block: Box::new(block), order, labels }
            }
            (BlockFormat::Native, _) => {
                return Err(Error::format(
                    format!("{}/meta.json", info.meta.ulid),
                    "native downsampled blocks (AggrChunks) are not supported; convert the raw blocks instead",
                ));
            }
        })
    }

    /// The block's meta.json.
    pub fn meta(&self) -> &BlockMeta {
        match self {
            Input::Raw(b) => b.meta(),
            Input::Native { block, .. } => block.meta(),
            Input::Aggr(b) => b.meta(),
        }
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        match self {
            Input::Raw(b) => b.series().len(),
            Input::Native { labels, .. } => labels.len(),
            Input::Aggr(b) => b.series().len(),
        }
    }

    /// True without series.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True for raw (not downsampled) blocks, Parquet or native.
    pub fn is_raw(&self) -> bool {
        !matches!(self, Input::Aggr(_))
    }

    /// Labels of series `i` (without external labels).
    pub fn labels(&self, i: usize) -> Option<&Labels> {
        match self {
            Input::Raw(b) => b.series().get(i).map(|s| &s.labels),
            Input::Native { labels, .. } => labels.get(i),
            Input::Aggr(b) => b.series().get(i).map(|s| &s.labels),
        }
    }

    /// Estimated rows of series `i` (samples or windows).
    pub fn rows(&self, i: usize) -> u64 {
        match self {
            Input::Raw(b) => b.series().get(i).map_or(0, |s| s.num_samples),
            Input::Aggr(b) => b.series().get(i).map_or(0, |s| s.num_samples),
            Input::Native { block, order, .. } => {
                order.get(i).and_then(|&k| block.series().get(k)).map_or(0, |s| 120 * s.chunks.len() as u64)
            }
        }
    }

    /// Estimated bytes of series `i` once decoded (to size batches): 16 a sample, 48 a
    /// downsampled window (time and five aggregates).
    pub fn bytes(&self, i: usize) -> u64 {
        let per_row = if matches!(self, Input::Aggr(_)) { 48 } else { 16 };
        self.rows(i) * per_row
    }

    /// Reads series `range` in full. Call off the async runtime; `rt` runs the I/O.
    pub fn read(&self, rt: &Handle, range: Range<usize>) -> Result<Vec<SeriesData>> {
        let n = range.len();
        let out = match self {
            Input::Raw(b) => {
                let wanted: Vec<_> = b.series().get(range.clone()).unwrap_or_default().iter().collect();
                let read = rt.block_on(b.read_series_whole(&wanted))?;
                read.into_iter().filter(|(t, _)| !t.is_empty()).map(|(t, v)| SeriesData::Raw(t, v)).collect()
            }
            Input::Aggr(b) => {
                rt.block_on(b.read_range(range.clone()))?.into_iter().map(SeriesData::Aggr).collect()
            }
            Input::Native { block, order, .. } => {
                let entries: Vec<&SeriesEntry> = order
                    .get(range.clone())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|&k| block.series().get(k))
                    .collect();
                let chunks = rt.block_on(block.fetch_chunks(&entries))?;
                entries
                    .par_iter()
                    .with_min_len(64)
                    .map(|e| {
                        let (mut ts, mut vals) = (Vec::new(), Vec::new());
                        block.decode_series(e, &chunks, &mut ts, &mut vals)?;
                        Ok(SeriesData::Raw(ts, vals))
                    })
                    .collect::<Result<Vec<_>>>()?
            }
        };
        if out.len() != n {
            return Err(Error::format(
                format!("block {}", self.meta().ulid),
                format!("read {} series where {n} were expected (a series without samples?)", out.len()),
            ));
        }
        Ok(out)
    }
}
