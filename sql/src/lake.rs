//! The lake as SQL sees it: every block of the bucket with its series (labels as Arrow
//! columns) and its samples, re-listed at most once per TTL so new blocks appear without a
//! restart. Parquet blocks bring series.parquet and their samples files; native
//! Prometheus/Thanos blocks (raw resolution) are opened through compat, their index giving the
//! series (`series_id` = position in the index) and their chunks decoded when scanned. A
//! block's contents never change once its meta.json exists, so what was read for a block
//! (series.parquet, a native index, file sizes) is kept until the block disappears.

use crate::Result;
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringViewArray, UInt32Array};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Int64Type, UInt32Type, UInt64Type};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use promlake_compat::NativeBlock;
use promlake_engine::bucket::BlockFormat;
use promlake_engine::parquet::{SERIES_FILE, label_name_for_column};
use promlake_engine::{BlockInfo, Bucket, Labels};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Resolution (ms) of raw blocks.
pub const RAW: i64 = 0;
/// Resolution (ms) of 5m-downsampled blocks.
pub const RES_5M: i64 = 300_000;
/// Resolution (ms) of 1h-downsampled blocks.
pub const RES_1H: i64 = 3_600_000;

/// Columns every table reserves; a label with one of these names gets a `label_` prefix.
const RESERVED: &[&str] =
    &["series_id", "block", "timestamp", "value", "count", "sum", "min", "max", "counter"];

/// The SQL column holding label `name`.
pub fn label_column(name: &str) -> String {
    if RESERVED.contains(&name) || name.starts_with("__pl_") {
        format!("label_{name}")
    } else {
        name.to_string()
    }
}

/// One series.parquet in memory.
#[derive(Debug)]
pub struct BlockSeries {
    /// `series_id` per row.
    pub ids: UInt32Array,
    /// Label name → values per row (Utf8View, null where the series lacks it); external labels
    /// are included as constant columns and win over a series label of the same name.
    pub labels: HashMap<String, ArrayRef>,
    /// First row of each series in samples.parquet, when the block records it.
    pub row_start: Option<Vec<u64>>,
    /// Samples of each series, when recorded.
    pub num_samples: Option<Vec<u64>>,
    /// Earliest / latest sample of each series (ms), when recorded.
    pub time_bounds: Option<(Vec<i64>, Vec<i64>)>,
    /// series_id → row, unless ids are exactly 0..n in order.
    pub id_rows: Option<HashMap<u32, u32>>,
}

impl BlockSeries {
    /// Number of series.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Does the block have no series?
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The row of `series_id`.
    pub fn row_of(&self, id: u32) -> Option<u32> {
        match &self.id_rows {
            None => ((id as usize) < self.ids.len()).then_some(id),
            Some(m) => m.get(&id).copied(),
        }
    }
}

/// A Parquet block as the SQL tables read it.
#[derive(Debug)]
pub struct LakeBlock {
    /// Its ULID.
    pub ulid: String,
    /// meta.json minTime (ms, inclusive).
    pub min_time: i64,
    /// meta.json maxTime (ms, exclusive).
    pub max_time: i64,
    /// Downsampling resolution (ms): 0, 300000 or 3600000.
    pub resolution: i64,
    /// Thanos external labels.
    pub external: Labels,
    /// series.parquet.
    pub series: BlockSeries,
    /// The samples files (`samples.parquet` or `samples.NNNN.parquet`) with their sizes
    /// (none for a native block).
    pub samples_files: Vec<(Path, u64)>,
    /// A native TSDB block, opened (its samples are its chunks).
    pub native: Option<Arc<NativeBlock>>,
}

/// The blocks visible at one moment, and the label columns they make.
#[derive(Debug)]
pub struct Snapshot {
    /// Parquet and native blocks, sorted by (minTime, ULID).
    pub blocks: Vec<Arc<LakeBlock>>,
    /// Label names over every block (series and external labels), `__name__` first.
    pub label_names: Vec<String>,
    /// The bucket's store.
    pub store: Arc<dyn object_store::ObjectStore>,
    /// Parsed footers of the samples files, shared by every snapshot of the lake.
    pub footers: Arc<crate::tables::FooterCache>,
}

impl Snapshot {
    /// Blocks of one resolution.
    pub fn blocks_at(&self, resolution: i64) -> impl Iterator<Item = &Arc<LakeBlock>> {
        self.blocks.iter().filter(move |b| b.resolution == resolution)
    }
}

#[derive(Debug, Default)]
struct State {
    snapshot: Option<(Instant, Arc<Snapshot>)>,
    blocks: HashMap<String, Arc<LakeBlock>>,
}

/// The bucket's blocks, listed at most once per TTL.
#[derive(Debug)]
pub struct Lake {
    bucket: Bucket,
    ttl: Duration,
    state: Mutex<State>,
    footers: Arc<crate::tables::FooterCache>,
}

impl Lake {
    /// A lake over `bucket` that re-lists blocks when its view is older than `ttl`.
    pub fn new(bucket: Bucket, ttl: Duration) -> Self {
        Lake { bucket, ttl, state: Mutex::new(State::default()), footers: Arc::default() }
    }

    /// The bucket.
    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// Parsed Parquet footers of the samples files (with page indexes).
    pub fn footers(&self) -> &Arc<crate::tables::FooterCache> {
        &self.footers
    }

    /// The current blocks (re-listed when the cached view is older than the TTL). A block that
    /// cannot be read is logged and left out until it can.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>> {
        let mut state = self.state.lock().await;
        if let Some((at, snap)) = &state.snapshot
            && at.elapsed() < self.ttl
        {
            return Ok(snap.clone());
        }
        let listed: Vec<BlockInfo> = self.bucket.list_blocks().await?;
        let missing: Vec<&BlockInfo> =
            listed.iter().filter(|b| !state.blocks.contains_key(&b.meta.ulid)).collect();
        let futs: Vec<_> = missing
            .into_iter()
            .map(|info| {
                let ulid = info.meta.ulid.clone();
                let open = self.open_block(info);
                async move { (ulid, open.await) }
            })
            .collect();
        let opened: Vec<(String, Result<LakeBlock>)> =
            futures::stream::iter(futs).buffer_unordered(8).collect().await;
        for (ulid, r) in opened {
            match r {
                Ok(b) => {
                    state.blocks.insert(ulid, Arc::new(b));
                }
                Err(e) => tracing::warn!(block = %ulid, error = %e, "cannot read block for SQL; skipping it"),
            }
        }
        let present: BTreeSet<&str> = listed.iter().map(|b| b.meta.ulid.as_str()).collect();
        state.blocks.retain(|k, _| present.contains(k.as_str()));
        let blocks: Vec<Arc<LakeBlock>> =
            listed.iter().filter_map(|b| state.blocks.get(&b.meta.ulid).cloned()).collect();
        let mut names: BTreeSet<String> = BTreeSet::new();
        for b in &blocks {
            names.extend(b.series.labels.keys().cloned());
        }
        let metric = promlake_engine::labels::METRIC_NAME;
        names.remove(metric);
        let label_names = std::iter::once(metric.to_string()).chain(names).collect();
        let snap = Arc::new(Snapshot {
            blocks,
            label_names,
            store: self.bucket.store().clone(),
            footers: self.footers.clone(),
        });
        state.snapshot = Some((Instant::now(), snap.clone()));
        Ok(snap)
    }

    async fn open_block(&self, info: &BlockInfo) -> Result<LakeBlock> {
        if info.format == BlockFormat::Native {
            return self.open_native(info).await;
        }
        let meta = &info.meta;
        let thanos = meta.thanos.as_ref();
        let external = Labels::from_pairs(thanos.map(|t| t.labels.clone()).unwrap_or_default());
        let resolution = thanos.map(|t| t.downsample.resolution).unwrap_or(0);
        let sizes: HashMap<&str, u64> = thanos
            .map(|t| t.files.iter().filter_map(|f| Some((f.rel_path.as_str(), f.size_bytes?))).collect())
            .unwrap_or_default();
        let dir = Path::from(meta.ulid.as_str());
        let mut samples_files: Vec<(Path, u64)> = Vec::new();
        let listed: Vec<object_store::ObjectMeta> =
            self.bucket.store().list(Some(&dir)).try_collect().await.map_err(|e| store_err(&dir, e))?;
        for o in &listed {
            let name = o.location.filename().unwrap_or_default();
            if name.starts_with("samples") && name.ends_with(".parquet") {
                samples_files.push((o.location.clone(), sizes.get(name).copied().unwrap_or(o.size)));
            }
        }
        samples_files.sort();
        let series_path = dir.clone().join(SERIES_FILE);
        let series = read_series(&self.bucket, &series_path, &external).await?;
        Ok(LakeBlock {
            ulid: meta.ulid.clone(),
            min_time: meta.min_time,
            max_time: meta.max_time,
            resolution,
            external,
            series,
            samples_files,
            native: None,
        })
    }

    /// Opens a native block: its index in memory, its labels as columns.
    async fn open_native(&self, info: &BlockInfo) -> Result<LakeBlock> {
        let meta = &info.meta;
        let thanos = meta.thanos.as_ref();
        let resolution = thanos.map(|t| t.downsample.resolution).unwrap_or(0);
        if resolution != RAW {
            return Err(format_err(
                &Path::from(meta.ulid.as_str()),
                format!(
                    "a downsampled native block ({resolution} ms) is not served to SQL; compact or import it"
                ),
            ));
        }
        let external = Labels::from_pairs(thanos.map(|t| t.labels.clone()).unwrap_or_default());
        let dir = Path::from(meta.ulid.as_str());
        let block = NativeBlock::open(self.bucket.store().clone(), &dir)
            .await
            .map_err(promlake_engine::Error::Native)?;
        let series = native_series(&block, &external)?;
        Ok(LakeBlock {
            ulid: meta.ulid.clone(),
            min_time: meta.min_time,
            max_time: meta.max_time,
            resolution,
            external,
            series,
            samples_files: Vec::new(),
            native: Some(Arc::new(block)),
        })
    }
}

/// A native block's series as columns: `series_id` is the position in the index.
fn native_series(block: &NativeBlock, external: &Labels) -> Result<BlockSeries> {
    let entries = block.series();
    let n = entries.len();
    if u32::try_from(n).is_err() {
        return Err(format_err(block.dir(), "more than 2^32 series"));
    }
    let ids = UInt32Array::from_iter_values((0..n).map(|i| i as u32));
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for e in entries {
        names.extend(e.labels.iter().map(|(k, _)| k.as_str()));
    }
    let mut labels: HashMap<String, ArrayRef> = HashMap::new();
    for name in names {
        let values: StringViewArray = entries
            .iter()
            .map(|e| e.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()))
            .collect();
        labels.insert(name.to_string(), Arc::new(values));
    }
    for l in external.iter() {
        labels.insert(
            l.name.clone(),
            Arc::new(StringViewArray::from_iter_values(std::iter::repeat_n(&l.value, n))),
        );
    }
    let mins = entries.iter().map(|e| e.chunks.first().map_or(i64::MAX, |c| c.min_time)).collect();
    let maxs = entries.iter().map(|e| e.chunks.last().map_or(i64::MIN, |c| c.max_time)).collect();
    Ok(BlockSeries {
        ids,
        labels,
        row_start: None,
        num_samples: None,
        time_bounds: Some((mins, maxs)),
        id_rows: None,
    })
}

fn format_err(path: &Path, reason: impl Into<String>) -> crate::Error {
    promlake_engine::Error::Format { path: path.to_string(), reason: reason.into() }.into()
}

fn store_err(path: &Path, source: object_store::Error) -> promlake_engine::Error {
    promlake_engine::Error::ObjectStore { path: path.to_string(), source }
}

/// Reads series.parquet in one GET (it is small: one row per series).
async fn read_series(bucket: &Bucket, path: &Path, external: &Labels) -> Result<BlockSeries> {
    let bytes = bucket.store().get(path).await.map_err(|e| store_err(path, e))?;
    let bytes = bytes.bytes().await.map_err(|e| store_err(path, e))?;
    let pq = |source| promlake_engine::Error::Parquet { path: path.to_string(), source };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(pq)?;
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder
        .build()
        .map_err(pq)?
        .collect::<std::result::Result<_, _>>()
        .map_err(promlake_engine::Error::Arrow)?;
    let b = concat_batches(&schema, &batches)?;
    let col = |name: &str| b.column_by_name(name);
    let ids_col = col("series_id").ok_or_else(|| format_err(path, "missing column series_id"))?;
    let ids = cast(ids_col, &DataType::UInt32)?.as_primitive::<UInt32Type>().clone();
    let n = ids.len();
    let u64s = |name: &str| -> Result<Option<Vec<u64>>> {
        Ok(match col(name) {
            Some(c) => Some(cast(c, &DataType::UInt64)?.as_primitive::<UInt64Type>().values().to_vec()),
            None => None,
        })
    };
    let i64s = |name: &str| -> Result<Option<Vec<i64>>> {
        Ok(match col(name) {
            Some(c) => Some(cast(c, &DataType::Int64)?.as_primitive::<Int64Type>().values().to_vec()),
            None => None,
        })
    };
    let mut labels: HashMap<String, ArrayRef> = HashMap::new();
    for (i, f) in schema.fields().iter().enumerate() {
        if let Some(label) = label_name_for_column(f.name()) {
            labels.insert(label.to_string(), cast(b.column(i), &DataType::Utf8View)?);
        }
    }
    for l in external.iter() {
        labels.insert(
            l.name.clone(),
            Arc::new(StringViewArray::from_iter_values(std::iter::repeat_n(&l.value, n))),
        );
    }
    let time_bounds = match (i64s("__pl_min_time")?, i64s("__pl_max_time")?) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    let identity = ids.values().iter().enumerate().all(|(i, &id)| id as usize == i);
    let id_rows =
        (!identity).then(|| ids.values().iter().enumerate().map(|(i, &id)| (id, i as u32)).collect());
    if ids.null_count() > 0 {
        return Err(format_err(path, "series_id has nulls"));
    }
    Ok(BlockSeries {
        ids,
        labels,
        row_start: u64s("__pl_row_start")?,
        num_samples: u64s("__pl_num_samples")?,
        time_bounds,
        id_rows,
    })
}
