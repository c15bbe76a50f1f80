//! Sequential reading of a raw Parquet block's samples for compaction: the `timestamp` and
//! `value` columns only (`series_id` is not decoded: series.parquet gives every series' row
//! count), page by page (from the file itself in a `file://` bucket, else by blocking ranged
//! GETs), so memory stays at about one page per column however large the block is.

use crate::parquet::SAMPLES_FILE;
use crate::{Bucket, Error, Result};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampMillisecondType};
use bytes::{Buf, Bytes};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::errors::ParquetError;
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::reader::{ChunkReader, Length};
use std::sync::Arc;
use tokio::runtime::Handle;
use ulid::Ulid;

/// Rows decoded per Arrow batch.
const DECODE_ROWS: usize = 8 * 1024;
/// Bytes fetched for a page header when the file has no offset index (our writers always
/// write one; this serves files without it).
const HEADER_FETCH: u64 = 256 * 1024;

/// Parquet's synchronous [`ChunkReader`] over one object: every range is a blocking ranged GET
/// run on `rt` (call off the async runtime).
struct StoreChunks {
    rt: Handle,
    store: Arc<dyn ObjectStore>,
    path: Path,
    len: u64,
}

impl StoreChunks {
    fn fetch(&self, start: u64, end: u64) -> parquet::errors::Result<Bytes> {
        self.rt
            .block_on(self.store.get_range(&self.path, start..end))
            .map_err(|e| ParquetError::External(Box::new(e)))
    }
}

impl Length for StoreChunks {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for StoreChunks {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(self.fetch(start, self.len.min(start.saturating_add(HEADER_FETCH)))?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.fetch(start, start.saturating_add(length as u64))
    }
}

/// Reads a raw block's samples in row order (series after series, as series.parquet lists
/// them), handing out any number of rows at a time.
pub struct SampleReader {
    path: Path,
    batches: ParquetRecordBatchReader,
    /// The current decoded batch and the next row in it.
    current: Option<RecordBatch>,
    pos: usize,
    /// Rows handed out so far.
    rows: u64,
}

impl std::fmt::Debug for SampleReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleReader").field("path", &self.path).field("rows", &self.rows).finish()
    }
}

impl SampleReader {
    /// Opens samples.parquet of block `id` (reads its footer and page index). Call off the
    /// async runtime.
    pub fn open(rt: &Handle, bucket: &Bucket, id: &Ulid) -> Result<Self> {
        let path = Bucket::block_path(id, SAMPLES_FILE);
        let batches = match bucket.local_path(&path) {
            Some(local) => {
                let file = std::fs::File::open(&local).map_err(|e| Error::io(local.display(), e))?;
                reader(&path, file)?
            }
            None => {
                let store = bucket.store().clone();
                let len = rt.block_on(store.head(&path)).map_err(|e| Error::store(&path, e))?.size;
                reader(&path, StoreChunks { rt: rt.clone(), store, path: path.clone(), len })?
            }
        };
        Ok(SampleReader { path, batches, current: None, pos: 0, rows: 0 })
    }

    /// Rows handed out so far (the row the next [`SampleReader::read`] starts at).
    pub fn position(&self) -> u64 {
        self.rows
    }

    /// Appends the next `n` rows to `ts` and `vals`.
    pub fn read(&mut self, mut n: usize, ts: &mut Vec<i64>, vals: &mut Vec<f64>) -> Result<()> {
        ts.reserve(n);
        vals.reserve(n);
        while n > 0 {
            let batch = match &self.current {
                Some(b) if self.pos < b.num_rows() => b,
                _ => {
                    let next = self.batches.next().transpose().map_err(|e| {
                        Error::format(&self.path, format!("decoding samples at row {}: {e}", self.rows))
                    })?;
                    let Some(next) = next else {
                        return Err(Error::format(
                            &self.path,
                            format!("ends at row {} where series.parquet lists {n} more rows", self.rows),
                        ));
                    };
                    self.pos = 0;
                    self.current = Some(next);
                    continue;
                }
            };
            let (t, v) = columns(&self.path, batch)?;
            let end = t.len().min(v.len()).min(self.pos + n);
            let (Some(t), Some(v)) = (t.get(self.pos..end), v.get(self.pos..end)) else {
                return Err(Error::format(&self.path, "columns of unequal length"));
            };
            ts.extend_from_slice(t);
            vals.extend_from_slice(v);
            let k = end - self.pos;
            self.pos = end;
            self.rows += k as u64;
            n -= k;
        }
        Ok(())
    }
}

/// A reader of the timestamp and value columns of samples.parquet in `chunks`.
fn reader<T: ChunkReader + 'static>(path: &Path, chunks: T) -> Result<ParquetRecordBatchReader> {
    let opts = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(chunks, opts)
        .map_err(|e| Error::parquet(path, e))?;
    let mask = ProjectionMask::columns(
        builder.parquet_schema(),
        [crate::parquet::COL_TIMESTAMP, crate::parquet::COL_VALUE],
    );
    builder.with_projection(mask).with_batch_size(DECODE_ROWS).build().map_err(|e| Error::parquet(path, e))
}

/// The timestamp and value columns of a projected batch.
fn columns<'a>(path: &Path, b: &'a RecordBatch) -> Result<(&'a [i64], &'a [f64])> {
    let bad = |what: &str| Error::format(path, format!("samples batch: {what}"));
    let (Some(t), Some(v)) = (b.columns().first(), b.columns().get(1)) else {
        return Err(bad("missing the timestamp or value column"));
    };
    if t.null_count() > 0 || v.null_count() > 0 {
        return Err(bad("null timestamps or values"));
    }
    let t = t.as_primitive_opt::<TimestampMillisecondType>().ok_or_else(|| bad("timestamp is not ms"))?;
    let v = v.as_primitive_opt::<Float64Type>().ok_or_else(|| bad("value is not a double"))?;
    Ok((t.values(), v.values()))
}
