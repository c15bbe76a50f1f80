//! The series-source seam: every data source (Parquet blocks, native TSDB blocks, later the
//! receive head, a sidecar's Prometheus and remote StoreAPI endpoints) implements
//! [`SeriesSource`], and the query layer merges and deduplicates across them.

use crate::{Labels, Matcher, Result};
use arrow::array::{Float64Array, RecordBatch, TimestampMillisecondArray, UInt32Array};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use futures::stream::BoxStream;
use std::sync::{Arc, LazyLock};

/// What to select: series matching all matchers with samples in `[min_time, max_time]` (ms,
/// inclusive on both ends, as in Thanos's SeriesRequest).
#[derive(Debug, Clone)]
pub struct SelectRequest {
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// Earliest sample timestamp wanted (ms).
    pub min_time: i64,
    /// Latest sample timestamp wanted (ms).
    pub max_time: i64,
    /// What the query will do with the data (Thanos's query hints); sources may ignore them.
    pub hints: SelectHints,
    /// Where a source reports problems that did not fail the select (a store that did not
    /// answer under a partial-response strategy, a store's warning frames). Clones share it.
    pub warnings: Warnings,
}

/// A shared sink of warnings for one query: sources push, the API answers them in `warnings`.
#[derive(Debug, Clone, Default)]
pub struct Warnings(Arc<std::sync::Mutex<Vec<String>>>);

impl Warnings {
    /// Records a warning (duplicates are kept once).
    pub fn push(&self, w: impl Into<String>) {
        let w = w.into();
        let mut v = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !v.contains(&w) {
            v.push(w);
        }
    }

    /// The warnings recorded so far, in order.
    pub fn get(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Query hints a source may use: deduplication adjusts counters for `rate`-like functions,
/// downsampled data is read by the aggregate the function needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectHints {
    /// The PromQL function applied directly to the selector (`rate`, `max_over_time`, ...).
    pub func: Option<String>,
    /// The range of a range selector (ms); 0 for an instant selector.
    pub range_ms: i64,
    /// The query's step (ms); 0 for an instant query.
    pub step_ms: i64,
    /// The coarsest downsampled resolution (ms) the query accepts (Thanos's
    /// `max_source_resolution`); 0 reads raw data only.
    pub max_resolution_ms: i64,
}

impl SelectRequest {
    /// Every series over all time.
    pub fn all() -> Self {
        SelectRequest {
            matchers: Vec::new(),
            min_time: i64::MIN,
            max_time: i64::MAX,
            hints: SelectHints::default(),
            warnings: Warnings::default(),
        }
    }
}

/// A batch of whole series: their label sets and their samples as one Arrow batch with the
/// [`sample_schema`] (`series` indexes into `labels`; rows ordered by series, then time).
#[derive(Debug, Clone)]
pub struct SeriesBatch {
    /// Label sets of the series in this batch, including the source's external labels.
    pub labels: Vec<Labels>,
    /// Columns `series` (u32 index into `labels`), `timestamp` (ms, UTC), `value` (f64).
    pub samples: RecordBatch,
}

static SAMPLE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("series", DataType::UInt32, false),
        Field::new("timestamp", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("value", DataType::Float64, false),
    ]))
});

/// The schema of [`SeriesBatch::samples`].
pub fn sample_schema() -> SchemaRef {
    SAMPLE_SCHEMA.clone()
}

/// Builds a [`SeriesBatch`] series by series, copying each series' samples once into the
/// batch's columns (from any number of time-ordered parts).
#[derive(Debug, Default)]
pub struct BatchBuilder {
    labels: Vec<Labels>,
    idx: Vec<u32>,
    ts: Vec<i64>,
    vals: Vec<f64>,
}

impl BatchBuilder {
    /// A builder with room for `rows` samples.
    pub fn with_capacity(series: usize, rows: usize) -> Self {
        BatchBuilder {
            labels: Vec::with_capacity(series),
            idx: Vec::with_capacity(rows),
            ts: Vec::with_capacity(rows),
            vals: Vec::with_capacity(rows),
        }
    }

    /// Appends one series; its samples are the parts' (timestamps, values) in order.
    pub fn push<'a>(&mut self, labels: Labels, parts: impl IntoIterator<Item = (&'a [i64], &'a [f64])>) {
        let id = self.labels.len() as u32;
        self.labels.push(labels);
        for (t, v) in parts {
            let n = t.len().min(v.len());
            self.idx.extend(std::iter::repeat_n(id, n));
            self.ts.extend_from_slice(&t[..n]);
            self.vals.extend_from_slice(&v[..n]);
        }
    }

    /// The batch.
    pub fn finish(self) -> Result<SeriesBatch> {
        let samples = RecordBatch::try_new(
            sample_schema(),
            vec![
                Arc::new(UInt32Array::from(self.idx)),
                Arc::new(TimestampMillisecondArray::from(self.ts).with_timezone("UTC")),
                Arc::new(Float64Array::from(self.vals)),
            ],
        )?;
        Ok(SeriesBatch { labels: self.labels, samples })
    }
}

impl SeriesBatch {
    /// Builds a batch from per-series sample vectors.
    pub fn from_series(series: Vec<(Labels, Vec<i64>, Vec<f64>)>) -> Result<Self> {
        let n: usize = series.iter().map(|s| s.1.len()).sum();
        let mut b = BatchBuilder::with_capacity(series.len(), n);
        for (l, t, v) in series {
            b.push(l, [(t.as_slice(), v.as_slice())]);
        }
        b.finish()
    }

    /// The `series`, `timestamp` and `value` columns, or `None` when the batch does not have
    /// [`sample_schema`]'s types.
    pub fn columns(&self) -> Option<(&UInt32Array, &TimestampMillisecondArray, &Float64Array)> {
        let cols = self.samples.columns();
        Some((
            cols.first()?.as_any().downcast_ref::<UInt32Array>()?,
            cols.get(1)?.as_any().downcast_ref::<TimestampMillisecondArray>()?,
            cols.get(2)?.as_any().downcast_ref::<Float64Array>()?,
        ))
    }

    /// The runs of consecutive rows of one series as zero-copy slices of the timestamp and
    /// value buffers: `(index into labels, timestamps, values)`. `None` when the batch does not
    /// have [`sample_schema`]'s types.
    pub fn runs(&self) -> Option<Vec<SeriesRun>> {
        let (idx, ts, vs) = self.columns()?;
        let (idx, ts, vs) = (idx.values(), ts.values(), vs.values());
        let mut out = Vec::new();
        let mut start = 0;
        while start < idx.len() {
            let id = idx[start];
            let len = idx[start..].iter().take_while(|&&x| x == id).count();
            out.push((id as usize, ts.slice(start, len), vs.slice(start, len)));
            start += len;
        }
        Some(out)
    }

    /// Each series' rows as zero-copy slices of the batch's columns, with its labels.
    pub fn parts(&self) -> Result<Vec<(Labels, Part)>> {
        let bad = |why: &str| crate::Error::format("a source's samples", why);
        let runs = self.runs().ok_or_else(|| bad("not the (series, timestamp, value) schema"))?;
        runs.into_iter()
            .map(|(i, ts, vs)| {
                let labels = self.labels.get(i).ok_or_else(|| bad("a series index without labels"))?;
                Ok((labels.clone(), (ts, vs)))
            })
            .collect()
    }

    /// Iterates `(labels, timestamps, values)` per series (a copy; for tests and small reads).
    pub fn to_series(&self) -> Vec<(Labels, Vec<i64>, Vec<f64>)> {
        let mut out: Vec<(Labels, Vec<i64>, Vec<f64>)> =
            self.labels.iter().map(|l| (l.clone(), Vec::new(), Vec::new())).collect();
        for (i, ts, vs) in self.runs().unwrap_or_default() {
            if let Some(s) = out.get_mut(i) {
                s.1.extend_from_slice(&ts);
                s.2.extend_from_slice(&vs);
            }
        }
        out
    }
}

/// One series' consecutive rows in a [`SeriesBatch`]: its index into the batch's labels and
/// slices of the timestamp and value buffers.
pub type SeriesRun = (usize, ScalarBuffer<i64>, ScalarBuffer<f64>);

/// A piece of one series' samples: timestamp and value columns (zero-copy slices of a batch).
pub type Part = (ScalarBuffer<i64>, ScalarBuffer<f64>);

/// Whether the parts follow each other in time, so concatenating them keeps time order.
pub fn parts_in_order(parts: &[Part]) -> bool {
    parts.windows(2).all(|w| matches!((w[0].0.last(), w[1].0.first()), (Some(a), Some(b)) if a < b))
}

/// The samples of parts that overlap in time, sorted by time; of equal timestamps the first
/// part's sample is kept.
pub fn merge_overlapping(parts: &[Part]) -> (Vec<i64>, Vec<f64>) {
    let mut pts: Vec<(i64, f64)> =
        parts.iter().flat_map(|p| p.0.iter().copied().zip(p.1.iter().copied())).collect();
    pts.sort_by_key(|p| p.0);
    pts.dedup_by_key(|p| p.0);
    pts.into_iter().unzip()
}

/// Gathers parts by label set, in the order the label sets first appear; each label set's parts
/// keep the order given.
pub fn group_parts(parts: impl IntoIterator<Item = (Labels, Part)>) -> Vec<(Labels, Vec<Part>)> {
    let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    let mut out: Vec<(Labels, Vec<Part>)> = Vec::new();
    for (labels, part) in parts {
        match index.get(&labels) {
            Some(&k) => out[k].1.push(part),
            None => {
                index.insert(labels.clone(), out.len());
                out.push((labels, vec![part]));
            }
        }
    }
    out
}

/// Streams whole series given as parts (in the order given), batches of at most 1024 series:
/// each sample is copied once, into its batch.
pub fn parts_stream(series: Vec<(Labels, Vec<Part>)>) -> SeriesStream {
    let mut batches = Vec::with_capacity(series.len().div_ceil(STREAM_BATCH_SERIES));
    for group in series.chunks(STREAM_BATCH_SERIES) {
        let rows = group.iter().flat_map(|s| &s.1).map(|p| p.0.len()).sum();
        let mut b = BatchBuilder::with_capacity(group.len(), rows);
        for (labels, parts) in group {
            if parts_in_order(parts) {
                b.push(labels.clone(), parts.iter().map(|p| (&p.0[..], &p.1[..])));
            } else {
                let (ts, vs) = merge_overlapping(parts);
                b.push(labels.clone(), [(ts.as_slice(), vs.as_slice())]);
            }
        }
        batches.push(b.finish());
    }
    Box::pin(futures::stream::iter(batches))
}

/// A stream of series batches.
pub type SeriesStream = BoxStream<'static, Result<SeriesBatch>>;

/// Series per batch of [`series_stream`].
const STREAM_BATCH_SERIES: usize = 1024;

/// Streams whole series, in the order given, as batches of at most 1024 series (for sources
/// that gather their answer in memory: merges, dedup, caches).
pub fn series_stream(mut series: Vec<(Labels, Vec<i64>, Vec<f64>)>) -> SeriesStream {
    let mut batches = Vec::with_capacity(series.len().div_ceil(STREAM_BATCH_SERIES));
    while !series.is_empty() {
        let rest = series.split_off(series.len().min(STREAM_BATCH_SERIES));
        batches.push(SeriesBatch::from_series(std::mem::replace(&mut series, rest)));
    }
    Box::pin(futures::stream::iter(batches))
}

/// Whether the time range `(min, max)` (ms, inclusive) overlaps `[min_time, max_time]` (an
/// empty window, `min_time > max_time`, overlaps nothing).
pub fn overlaps(range: (i64, i64), min_time: i64, max_time: i64) -> bool {
    min_time <= max_time && range.0 <= max_time && min_time <= range.1
}

/// A source of series: the one trait every store implements.
#[async_trait]
pub trait SeriesSource: Send + Sync + std::fmt::Debug {
    /// Streams the series matching `req` with their samples inside the time range, in label
    /// order ([`Labels::block_order`]) within the source. Series without samples in range are
    /// left out.
    async fn select(&self, req: &SelectRequest) -> Result<SeriesStream>;

    /// Label names of series matching `matchers` (all series when empty) in the data overlapping
    /// `[min_time, max_time]` (ms), sorted. The window is taken at the granularity of a block,
    /// as Thanos's stores and Prometheus answer: a source of one block answers all its names or
    /// none ([`overlaps`] with [`Self::time_range`]); sources of several blocks or members ask
    /// those that overlap.
    async fn label_names_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>>;

    /// Values of label `name` among series matching `matchers` in the data overlapping
    /// `[min_time, max_time]` (ms), sorted, without the empty value; the window as in
    /// [`Self::label_names_between`].
    async fn label_values_between(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>>;

    /// [`Self::label_names_between`] over all time.
    async fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        self.label_names_between(matchers, i64::MIN, i64::MAX).await
    }

    /// [`Self::label_values_between`] over all time.
    async fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        self.label_values_between(name, matchers, i64::MIN, i64::MAX).await
    }

    /// Label sets of the series matching `matchers` whose data overlaps `[min_time, max_time]`
    /// (ms), in no particular order (Prometheus's `/api/v1/series`). Sources that keep each
    /// series' time span answer from it, as Prometheus answers from its chunks' spans, so a
    /// window between two samples still finds the series; by default, the series [`Self::select`]
    /// finds (samples in the window). Problems that do not fail the call go to `warnings`.
    async fn series_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
        warnings: &Warnings,
    ) -> Result<Vec<Labels>> {
        let req = SelectRequest {
            matchers: matchers.to_vec(),
            min_time,
            max_time,
            // Thanos's hint for a labels-only select: StoreAPI endpoints skip the chunks.
            hints: SelectHints { func: Some("series".into()), ..Default::default() },
            warnings: warnings.clone(),
        };
        let mut stream = self.select(&req).await?;
        let mut out = Vec::new();
        while let Some(batch) = futures::StreamExt::next(&mut stream).await {
            out.extend(batch?.labels);
        }
        Ok(out)
    }

    /// The time range `[min, max]` (ms) this source may hold samples for.
    fn time_range(&self) -> (i64, i64);

    /// The labels every series of this source carries (Thanos external labels).
    fn external_labels(&self) -> &Labels;

    /// The distinct external label sets of the data this source holds (Thanos Info
    /// `label_sets`: one per block stream, tenant or endpoint). By default the one set
    /// [`Self::external_labels`], or none when it is empty.
    async fn label_sets(&self) -> Vec<Labels> {
        let ext = self.external_labels();
        if ext.is_empty() { Vec::new() } else { vec![ext.clone()] }
    }
}
