//! Reads a downsampled block (see [`super::aggr`]): series.parquet in full, samples.parquet by
//! the exact row ranges of the wanted series.

use super::aggr::*;
use super::object_reader::ObjectReader;
use super::reader::{SeriesInfo, bad_type, column, read_all, series_rows};
use super::schema::*;
use crate::bucket::Bucket;
use crate::{Error, Labels, Result};
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMillisecondType, UInt32Type};
use futures::TryStreamExt;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, RowSelection};
use parquet::file::metadata::PageIndexPolicy;
use promlake_compat::BlockMeta;
use std::ops::Range;
use ulid::Ulid;

/// An open downsampled block.
#[derive(Debug)]
pub struct AggrBlock {
    bucket: Bucket,
    id: Ulid,
    meta: BlockMeta,
    external: Labels,
    series: Vec<SeriesInfo>,
    /// Per series: (first raw timestamp, first raw value, last raw value).
    framing: Vec<(i64, f64, f64)>,
}

impl AggrBlock {
    /// See [`super::ParquetBlock::intern_labels`].
    pub fn intern_labels(&mut self, pool: &mut std::collections::HashSet<Labels>) {
        super::reader::intern_series(&mut self.series, pool);
    }

    /// Opens block `meta.ulid` of `bucket`, reading its series.parquet.
    pub async fn open(bucket: &Bucket, meta: BlockMeta) -> Result<Self> {
        let id = Ulid::from_string(&meta.ulid)
            .map_err(|e| Error::format(format!("{}/meta.json", meta.ulid), format!("bad ulid: {e}")))?;
        let path = Bucket::block_path(&id, SERIES_FILE);
        let mut series = Vec::new();
        let mut framing = Vec::new();
        for b in &read_all(bucket, &path).await? {
            series.extend(series_rows(&path, b)?);
            let f64col = |name: &str| -> Result<arrow::array::Float64Array> {
                Ok(arrow::compute::cast(column(&path, b, name)?, &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone())
            };
            let first_t = arrow::compute::cast(column(&path, b, COL_COUNTER_FIRST_TIME)?, &DataType::Int64)?;
            let first_t = first_t.as_primitive::<Int64Type>();
            let (first, last) = (f64col(COL_COUNTER_FIRST)?, f64col(COL_COUNTER_LAST)?);
            for i in 0..b.num_rows() {
                framing.push((first_t.value(i), first.value(i), last.value(i)));
            }
        }
        let external = Labels::from_pairs(meta.external_labels());
        Ok(AggrBlock { bucket: bucket.clone(), id, meta, external, series, framing })
    }

    /// The block's meta.json.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's external labels.
    pub fn external_labels(&self) -> &Labels {
        &self.external
    }

    /// Every series of the block, in series_id (label) order.
    pub fn series(&self) -> &[SeriesInfo] {
        &self.series
    }

    /// Positions (in [`Self::series`]) of the series matching all `matchers` (external labels
    /// included) with windows in `[min_time, max_time]`.
    pub fn matching(&self, matchers: &[crate::Matcher], min_time: i64, max_time: i64) -> Vec<usize> {
        (0..self.series.len())
            .filter(|&i| {
                let s = &self.series[i];
                s.max_time >= min_time
                    && s.min_time <= max_time
                    && crate::matcher::matches_all(matchers, &s.labels.merged(&self.external))
            })
            .collect()
    }

    /// Reads the series at positions `range` of [`Self::series`] in full.
    pub async fn read_range(&self, range: Range<usize>) -> Result<Vec<AggrSeries>> {
        let positions: Vec<usize> = range.collect();
        self.read_positions(&positions).await
    }

    /// Reads the series at `positions` (ascending) of [`Self::series`] in full, fetching only
    /// their row ranges.
    pub async fn read_positions(&self, positions: &[usize]) -> Result<Vec<AggrSeries>> {
        let mut wanted = Vec::with_capacity(positions.len());
        for &p in positions {
            let s = self.series.get(p).ok_or_else(|| {
                Error::InvalidArgument(format!("series position {p} outside block {}", self.id))
            })?;
            wanted.push((p, s));
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let path = Bucket::block_path(&self.id, SAMPLES_FILE);
        let total = self.series.last().map(|s| s.row_start + s.num_samples).unwrap_or(0) as usize;
        let mut ranges: Vec<Range<usize>> = Vec::with_capacity(wanted.len());
        for (_, s) in &wanted {
            let r = s.row_start as usize..(s.row_start + s.num_samples) as usize;
            match ranges.last_mut() {
                Some(last) if last.end == r.start => last.end = r.end,
                _ => ranges.push(r),
            }
        }
        let selection = RowSelection::from_consecutive_ranges(ranges.into_iter(), total);
        let reader = ObjectReader::new(self.bucket.store().clone(), path.clone());
        let builder = ParquetRecordBatchStreamBuilder::new_with_options(
            reader,
            ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional),
        )
        .await
        .map_err(|e| Error::parquet(&path, e))?;
        let stream = builder
            .with_row_selection(selection)
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| Error::parquet(&path, e))?;
        let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(|e| Error::parquet(&path, e))?;

        let slot_of: std::collections::HashMap<u32, usize> =
            wanted.iter().enumerate().map(|(k, (_, s))| (s.id, k)).collect();
        let mut out: Vec<AggrSeries> = wanted
            .iter()
            .map(|&(p, s)| {
                let (ft, fv, lv) = self.framing.get(p).copied().unwrap_or((0, f64::NAN, f64::NAN));
                let n = s.num_samples as usize;
                AggrSeries {
                    ts: Vec::with_capacity(n),
                    count: Vec::with_capacity(n),
                    sum: Vec::with_capacity(n),
                    min: Vec::with_capacity(n),
                    max: Vec::with_capacity(n),
                    counter: Vec::with_capacity(n),
                    first_time: ft,
                    first_value: fv,
                    last_value: lv,
                }
            })
            .collect();
        for b in &batches {
            let prim = |name: &str| column(&path, b, name);
            let ids = prim(COL_SERIES_ID)?
                .as_primitive_opt::<UInt32Type>()
                .ok_or_else(|| bad_type(&path, COL_SERIES_ID))?;
            let ts = prim(COL_TIMESTAMP)?
                .as_primitive_opt::<TimestampMillisecondType>()
                .ok_or_else(|| bad_type(&path, COL_TIMESTAMP))?;
            let count =
                prim(COL_COUNT)?.as_primitive_opt::<Int64Type>().ok_or_else(|| bad_type(&path, COL_COUNT))?;
            let f = |name: &str| -> Result<&arrow::array::Float64Array> {
                prim(name)?.as_primitive_opt::<Float64Type>().ok_or_else(|| bad_type(&path, name))
            };
            let (sum, min, max, counter) = (f(COL_SUM)?, f(COL_MIN)?, f(COL_MAX)?, f(COL_COUNTER)?);
            for i in 0..b.num_rows() {
                let slot = slot_of.get(&ids.value(i)).and_then(|&k| out.get_mut(k));
                let Some(s) = slot else {
                    return Err(Error::format(
                        &path,
                        format!("row of series_id {} outside its range", ids.value(i)),
                    ));
                };
                s.push(
                    ts.value(i),
                    count.value(i),
                    sum.value(i),
                    min.value(i),
                    max.value(i),
                    counter.value(i),
                );
            }
        }
        Ok(out)
    }
}
