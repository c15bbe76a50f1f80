//! Reads a Parquet block: series.parquet in full (it is small), samples.parquet by exact row
//! ranges taken from series.parquet, so only the pages holding wanted series are fetched.

use super::cache::{CachedSeries, SamplesCache};
use super::object_reader::ObjectReader;
use super::schema::*;
use crate::bucket::Bucket;
use crate::source::{BatchBuilder, SelectRequest, SeriesBatch, SeriesSource, SeriesStream};
use crate::{Error, Labels, Matcher, Result, Warnings, overlaps};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMillisecondType, UInt32Type, UInt64Type};
use async_trait::async_trait;
use futures::TryStreamExt;
use object_store::path::Path;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, RowSelection};
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::file::metadata::PageIndexPolicy;
use promlake_compat::BlockMeta;
use std::collections::{BTreeSet, HashSet};
use std::ops::Range;
use std::sync::Arc;
use ulid::Ulid;

/// One row of series.parquet.
#[derive(Debug, Clone)]
pub struct SeriesInfo {
    /// `series_id`.
    pub id: u32,
    /// The series' own labels (external labels not included).
    pub labels: Labels,
    /// First row in samples.parquet.
    pub row_start: u64,
    /// Number of samples.
    pub num_samples: u64,
    /// Earliest sample (ms).
    pub min_time: i64,
    /// Latest sample (ms).
    pub max_time: i64,
}

/// An open Parquet block.
#[derive(Debug)]
pub struct ParquetBlock {
    bucket: Bucket,
    id: Ulid,
    meta: BlockMeta,
    external: Labels,
    series: Vec<SeriesInfo>,
    /// samples.parquet's footer and page index, read on the first select.
    samples_meta: tokio::sync::OnceCell<ArrowReaderMetadata>,
    /// Decoded samples kept across reads, when set.
    cache: Option<Arc<SamplesCache>>,
}

/// Series per [`SeriesBatch`] returned by `select`.
const SELECT_BATCH_SERIES: usize = 1024;

impl ParquetBlock {
    /// Opens block `meta.ulid` of `bucket`, reading its series.parquet.
    pub async fn open(bucket: &Bucket, meta: BlockMeta) -> Result<Self> {
        let id = Ulid::from_string(&meta.ulid)
            .map_err(|e| Error::format(format!("{}/meta.json", meta.ulid), format!("bad ulid: {e}")))?;
        let path = Bucket::block_path(&id, SERIES_FILE);
        let batches = read_all(bucket, &path).await?;
        let mut series = Vec::new();
        for b in &batches {
            series.extend(series_rows(&path, b)?);
        }
        let external = Labels::from_pairs(meta.thanos.as_ref().map(|t| t.labels.clone()).unwrap_or_default());
        Ok(ParquetBlock {
            bucket: bucket.clone(),
            id,
            meta,
            external,
            series,
            samples_meta: tokio::sync::OnceCell::new(),
            cache: None,
        })
    }

    /// The block's meta.json.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// Every series of the block, in series_id order.
    pub fn series(&self) -> &[SeriesInfo] {
        &self.series
    }

    /// Keeps decoded samples of this block in `cache` (shared with the bucket's other blocks).
    pub fn with_cache(mut self, cache: Arc<SamplesCache>) -> Self {
        self.cache = Some(cache).filter(|c| c.enabled());
        self
    }

    /// Shares label sets with the blocks interned before: each of this block's label sets that
    /// `pool` already holds is replaced by the pooled one, the others are added. Compaction opens
    /// all inputs of a job at once, and their series mostly repeat.
    pub fn intern_labels(&mut self, pool: &mut HashSet<Labels>) {
        intern_series(&mut self.series, pool);
    }

    /// Reads the samples of `series` inside `[min_time, max_time]`, fetching only their row
    /// ranges (or taking them from the samples cache). Labels in the result include the block's
    /// external labels; series without samples in the range are left out.
    pub async fn read_series(
        &self,
        series: &[&SeriesInfo],
        min_time: i64,
        max_time: i64,
    ) -> Result<SeriesBatch> {
        let Some(cache) = &self.cache else {
            let data = self.decode(series, min_time, max_time).await?;
            let out = series
                .iter()
                .zip(data)
                .filter(|(_, (ts, _))| !ts.is_empty())
                .map(|(s, (ts, vs))| (s.labels.merged(&self.external), ts, vs))
                .collect();
            return SeriesBatch::from_series(out);
        };
        let mut found: Vec<Option<Arc<CachedSeries>>> =
            series.iter().map(|s| cache.get(self.id, s.id)).collect();
        let missing: Vec<&SeriesInfo> =
            series.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(s, _)| *s).collect();
        if !missing.is_empty() {
            let mut read = self.decode(&missing, i64::MIN, i64::MAX).await?.into_iter();
            for (s, f) in series.iter().zip(found.iter_mut()) {
                if f.is_none() {
                    let (ts, vs) = read.next().unwrap_or_default();
                    let data = Arc::new(CachedSeries { ts, vs });
                    cache.insert(self.id, s.id, data.clone());
                    *f = Some(data);
                }
            }
        }
        // Each series' samples in range, copied once, straight into the batch.
        let found: Vec<(&SeriesInfo, Arc<CachedSeries>, Range<usize>)> = series
            .iter()
            .zip(found.into_iter().flatten())
            .filter_map(|(s, data)| {
                let lo = data.ts.partition_point(|&t| t < min_time);
                let hi = data.ts.partition_point(|&t| t <= max_time);
                (lo < hi).then_some((*s, data, lo..hi))
            })
            .collect();
        let rows = found.iter().map(|f| f.2.len()).sum();
        let mut out = BatchBuilder::with_capacity(found.len(), rows);
        for (s, data, r) in &found {
            out.push(s.labels.merged(&self.external), [(&data.ts[r.clone()], &data.vs[r.clone()])]);
        }
        out.finish()
    }

    /// Every sample of `series`, one (timestamps, values) pair per series in order, decoded
    /// straight into the vectors (no samples cache, no intermediate batch): compaction's read.
    pub async fn read_series_whole(&self, series: &[&SeriesInfo]) -> Result<Vec<(Vec<i64>, Vec<f64>)>> {
        self.decode(series, i64::MIN, i64::MAX).await
    }

    /// Decodes the samples of `series` inside `[min_time, max_time]`, one (timestamps, values)
    /// pair per series in order (empty when none is in the range).
    async fn decode(
        &self,
        series: &[&SeriesInfo],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<(Vec<i64>, Vec<f64>)>> {
        let path = Bucket::block_path(&self.id, SAMPLES_FILE);
        let total: u64 = self.series.last().map(|s| s.row_start + s.num_samples).unwrap_or(0);
        let mut ranges: Vec<Range<usize>> = Vec::with_capacity(series.len());
        for s in series {
            let r = s.row_start as usize..(s.row_start + s.num_samples) as usize;
            match ranges.last_mut() {
                Some(last) if last.end == r.start => last.end = r.end,
                _ => ranges.push(r),
            }
        }
        let selection = RowSelection::from_consecutive_ranges(ranges.into_iter(), total as usize);
        let mut reader = ObjectReader::new(self.bucket.store().clone(), path.clone());
        let metadata = self
            .samples_meta
            .get_or_try_init(|| {
                let opts = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
                let reader = &mut reader;
                async move { ArrowReaderMetadata::load_async(reader, opts).await }
            })
            .await
            .map_err(|e| Error::parquet(&path, e))?
            .clone();
        // Row ranges are exact, so rows are attributed to series by count: series_id is not read.
        let parquet_schema = metadata.metadata().file_metadata().schema_descr_ptr();
        let leaf = |name: &str| -> Result<usize> {
            parquet_schema
                .columns()
                .iter()
                .position(|c| c.name() == name)
                .ok_or_else(|| Error::format(&path, format!("missing column {name}")))
        };
        let mask = ProjectionMask::leaves(&parquet_schema, [leaf(COL_TIMESTAMP)?, leaf(COL_VALUE)?]);
        let stream = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, metadata)
            .with_projection(mask)
            .with_row_selection(selection)
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| Error::parquet(&path, e))?;
        let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(|e| Error::parquet(&path, e))?;

        let mut out: Vec<(Vec<i64>, Vec<f64>)> = series.iter().map(|_| (Vec::new(), Vec::new())).collect();
        // (series slot, rows of it still to come)
        let mut slot = 0usize;
        let mut left = series.first().map_or(0, |s| s.num_samples);
        for b in &batches {
            let ts = column(&path, b, COL_TIMESTAMP)?
                .as_primitive_opt::<TimestampMillisecondType>()
                .ok_or_else(|| bad_type(&path, COL_TIMESTAMP))?
                .values();
            let vals = column(&path, b, COL_VALUE)?
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| bad_type(&path, COL_VALUE))?
                .values();
            let mut at = 0usize;
            while at < ts.len() {
                while left == 0 {
                    slot += 1;
                    left = series
                        .get(slot)
                        .ok_or_else(|| Error::format(&path, "more rows than series.parquet accounts for"))?
                        .num_samples;
                }
                let n = (left as usize).min(ts.len() - at);
                let (t, v) = (&ts[at..at + n], &vals[at..at + n]);
                // Keep the part inside the time range (timestamps are sorted within a series).
                let lo = t.partition_point(|&x| x < min_time);
                let hi = t.partition_point(|&x| x <= max_time);
                if lo < hi {
                    out[slot].0.extend_from_slice(&t[lo..hi]);
                    out[slot].1.extend_from_slice(&v[lo..hi]);
                }
                at += n;
                left -= n as u64;
            }
        }
        Ok(out)
    }

    /// Series whose labels, with the block's external labels merged in (they win), satisfy all
    /// matchers. Matchers on external labels are decided once for the whole block; an equality
    /// matcher on `__name__` narrows the scan to that metric's rows (series are sorted by name).
    fn matching(&self, matchers: &[Matcher]) -> Vec<&SeriesInfo> {
        let (on_external, on_series): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| self.external.get(&m.name).is_some());
        if !on_external.iter().all(|m| m.matches_value(self.external.get(&m.name))) {
            return Vec::new();
        }
        let candidates = match on_series
            .iter()
            .find(|m| m.op == crate::MatchOp::Equal && m.name == crate::labels::METRIC_NAME)
        {
            Some(m) => {
                fn name(s: &SeriesInfo) -> &str {
                    s.labels.metric_name().unwrap_or("")
                }
                let lo = self.series.partition_point(|s| name(s) < m.value.as_str());
                let hi =
                    lo + self.series.get(lo..).unwrap_or_default().partition_point(|s| name(s) == m.value);
                self.series.get(lo..hi).unwrap_or_default()
            }
            None => &self.series[..],
        };
        candidates.iter().filter(|s| on_series.iter().all(|m| m.matches(&s.labels))).collect()
    }
}

#[async_trait]
impl SeriesSource for ParquetBlock {
    async fn select(&self, req: &SelectRequest) -> Result<SeriesStream> {
        let wanted: Vec<&SeriesInfo> = self
            .matching(&req.matchers)
            .into_iter()
            .filter(|s| s.max_time >= req.min_time && s.min_time <= req.max_time)
            .collect();
        let mut batches = Vec::new();
        for chunk in wanted.chunks(SELECT_BATCH_SERIES) {
            batches.push(self.read_series(chunk, req.min_time, req.max_time).await);
        }
        Ok(Box::pin(futures::stream::iter(batches)))
    }

    /// From series.parquet's per-series time spans: no samples are read.
    async fn series_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
        _warnings: &Warnings,
    ) -> Result<Vec<Labels>> {
        Ok(self
            .matching(matchers)
            .into_iter()
            .filter(|s| s.max_time >= min_time && s.min_time <= max_time)
            .map(|s| s.labels.merged(&self.external))
            .collect())
    }

    async fn label_names_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        if !overlaps(self.time_range(), min_time, max_time) {
            return Ok(Vec::new());
        }
        let mut names: BTreeSet<&str> = BTreeSet::new();
        let matching = self.matching(matchers);
        for s in &matching {
            names.extend(s.labels.iter().map(|l| l.name.as_str()));
        }
        if !matching.is_empty() {
            names.extend(self.external.iter().map(|l| l.name.as_str()));
        }
        Ok(names.into_iter().map(str::to_string).collect())
    }

    async fn label_values_between(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        if !overlaps(self.time_range(), min_time, max_time) {
            return Ok(Vec::new());
        }
        let matching = self.matching(matchers);
        if let Some(v) = self.external.get(name) {
            return Ok(if matching.is_empty() || v.is_empty() { Vec::new() } else { vec![v.to_string()] });
        }
        let values: BTreeSet<&str> = matching.iter().filter_map(|s| s.labels.get(name)).collect();
        Ok(values.into_iter().filter(|v| !v.is_empty()).map(str::to_string).collect())
    }

    fn time_range(&self) -> (i64, i64) {
        (self.meta.min_time, self.meta.max_time)
    }

    fn external_labels(&self) -> &Labels {
        &self.external
    }
}

/// See [`ParquetBlock::intern_labels`].
pub(super) fn intern_series(series: &mut [SeriesInfo], pool: &mut HashSet<Labels>) {
    for s in series {
        match pool.get(&s.labels) {
            Some(shared) => s.labels = shared.clone(),
            None => {
                pool.insert(s.labels.clone());
            }
        }
    }
}

pub(super) async fn read_all(bucket: &Bucket, path: &Path) -> Result<Vec<RecordBatch>> {
    let reader = ObjectReader::new(bucket.store().clone(), path.clone());
    let builder = ParquetRecordBatchStreamBuilder::new(reader).await.map_err(|e| Error::parquet(path, e))?;
    let stream = builder.build().map_err(|e| Error::parquet(path, e))?;
    stream.try_collect().await.map_err(|e| Error::parquet(path, e))
}

pub(super) fn column<'a>(path: &Path, b: &'a RecordBatch, name: &str) -> Result<&'a dyn Array> {
    b.column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| Error::format(path, format!("missing column {name}")))
}

pub(super) fn bad_type(path: &Path, name: &str) -> Error {
    Error::format(path, format!("column {name} has an unexpected type"))
}

pub(super) fn series_rows(path: &Path, b: &RecordBatch) -> Result<Vec<SeriesInfo>> {
    let ids = column(path, b, COL_SERIES_ID)?;
    let ids = arrow::compute::cast(ids, &DataType::UInt32)?;
    let ids = ids.as_primitive::<UInt32Type>();
    let u64col = |name: &str| -> Result<arrow::array::UInt64Array> {
        Ok(arrow::compute::cast(column(path, b, name)?, &DataType::UInt64)?
            .as_primitive::<UInt64Type>()
            .clone())
    };
    let i64col = |name: &str| -> Result<arrow::array::Int64Array> {
        Ok(arrow::compute::cast(column(path, b, name)?, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .clone())
    };
    let (start, count, mint, maxt) =
        (u64col(COL_ROW_START)?, u64col(COL_NUM_SAMPLES)?, i64col(COL_MIN_TIME)?, i64col(COL_MAX_TIME)?);
    let mut label_cols = Vec::new();
    for (i, f) in b.schema().fields().iter().enumerate() {
        if let Some(label) = label_name_for_column(f.name()) {
            let strings = arrow::compute::cast(b.column(i), &DataType::Utf8)?;
            label_cols.push((label.to_string(), strings));
        }
    }
    let mut out = Vec::with_capacity(b.num_rows());
    for row in 0..b.num_rows() {
        let labels = Labels::from_pairs(label_cols.iter().filter_map(|(name, col)| {
            let s = col.as_string::<i32>();
            (!s.is_null(row)).then(|| (name.clone(), s.value(row).to_string()))
        }));
        out.push(SeriesInfo {
            id: ids.value(row),
            labels,
            row_start: start.value(row),
            num_samples: count.value(row),
            min_time: mint.value(row),
            max_time: maxt.value(row),
        });
    }
    Ok(out)
}
