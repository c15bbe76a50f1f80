//! Writes one Parquet block into a local staging directory, series by series, with memory
//! bounded by one row group of samples; [`WrittenBlock::upload`] then moves it into the bucket
//! with meta.json last.
//!
//! samples.parquet is written with Parquet's typed column writers, a row group at a time from
//! three reused vectors: no Arrow arrays or level vectors are built and dropped per batch, as
//! under [`ArrowWriter`]. Conversion went from 9.2-10.0M to 13.9-14.4M samples per CPU-second;
//! compaction, whose time is mostly decoding and Parquet's own page encoding, barely moved. The
//! file is the same as ArrowWriter makes of the samples schema, `ARROW:schema` hint included.

use super::schema::*;
use crate::bucket::{Bucket, META_FILE};
use crate::{Error, Labels, Result};
use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter, add_encoded_arrow_schema_to_metadata};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::data_type::{DataType as ParquetType, DoubleType, Int32Type, Int64Type};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::types::ColumnPath;
use promlake_compat::BlockMeta;
use promlake_compat::meta::{PromlakeMeta, ThanosFile};
use std::collections::BTreeSet;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use tempfile::TempDir;
use ulid::Ulid;

/// Physical layout knobs of a written block.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Rows per row group of samples.parquet (the raw writer buffers one row group: 20 bytes a
    /// row).
    pub row_group_rows: usize,
    /// Maximum rows per data page (smaller pages prune better, cost a little size).
    pub page_rows: usize,
    /// ZSTD level for both files.
    pub zstd_level: i32,
    /// Samples buffered before a record batch is handed to the Arrow writer of downsampled
    /// blocks.
    pub batch_rows: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            row_group_rows: 256 * 1024,
            page_rows: 128 * 1024,
            zstd_level: 1,
            batch_rows: 1 << 16,
        }
    }
}

/// One row of series.parquet, as the writers collect it.
pub(super) struct SeriesRow {
    pub(super) labels: Labels,
    pub(super) row_start: u64,
    pub(super) num_samples: u64,
    pub(super) min_time: i64,
    pub(super) max_time: i64,
}

/// Writes a block's two Parquet files. Series must be appended in [`Labels::block_order`].
pub struct ParquetBlockWriter {
    dir: tempfile::TempDir,
    samples: SamplesFile,
    series: Vec<SeriesRow>,
    rows: u64,
    opts: WriterOptions,
}

/// samples.parquet of a raw block: rows buffered up to a row group, then written column by
/// column with the typed column writers.
struct SamplesFile {
    writer: SerializedFileWriter<File>,
    /// `series_id` as Parquet stores UINT32: the same bits in an INT32.
    ids: Vec<i32>,
    ts: Vec<i64>,
    vals: Vec<f64>,
    row_group_rows: usize,
}

impl SamplesFile {
    fn create(path: &std::path::Path, opts: &WriterOptions) -> Result<Self> {
        let err = |e| Error::parquet(path.display(), e);
        let schema = samples_schema();
        let descr = ArrowSchemaConverter::new().convert(&schema).map_err(err)?;
        let mut props = props(opts, true)?;
        add_encoded_arrow_schema_to_metadata(&schema, &mut props);
        let file = File::create(path).map_err(|e| Error::io(path.display(), e))?;
        let writer =
            SerializedFileWriter::new(file, descr.root_schema_ptr(), Arc::new(props)).map_err(err)?;
        let row_group_rows = opts.row_group_rows.max(1);
        Ok(SamplesFile {
            writer,
            ids: Vec::with_capacity(row_group_rows),
            ts: Vec::with_capacity(row_group_rows),
            vals: Vec::with_capacity(row_group_rows),
            row_group_rows,
        })
    }

    /// Appends the rows of series `id`, writing every row group that fills up.
    fn push(&mut self, id: u32, ts: &[i64], vals: &[f64]) -> Result<()> {
        let mut off = 0;
        while off < ts.len() {
            let room = self.row_group_rows.saturating_sub(self.ids.len()).max(1);
            let end = (off + room).min(ts.len());
            self.ids.extend(std::iter::repeat_n(id as i32, end - off));
            self.ts.extend_from_slice(&ts[off..end]);
            self.vals.extend_from_slice(&vals[off..end]);
            off = end;
            if self.ids.len() >= self.row_group_rows {
                self.write_row_group()?;
            }
        }
        Ok(())
    }

    fn write_row_group(&mut self) -> Result<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let err = |e| Error::parquet(SAMPLES_FILE, e);
        let mut rg = self.writer.next_row_group().map_err(err)?;
        write_column::<Int32Type>(&mut rg, &self.ids)?;
        write_column::<Int64Type>(&mut rg, &self.ts)?;
        write_column::<DoubleType>(&mut rg, &self.vals)?;
        rg.close().map_err(err)?;
        self.ids.clear();
        self.ts.clear();
        self.vals.clear();
        Ok(())
    }

    fn close(mut self) -> Result<()> {
        self.write_row_group()?;
        self.writer.close().map_err(|e| Error::parquet(SAMPLES_FILE, e))?;
        Ok(())
    }
}

/// Writes `values` as the next column chunk of `rg` (a required, flat column).
fn write_column<T: ParquetType>(rg: &mut SerializedRowGroupWriter<'_, File>, values: &[T::T]) -> Result<()> {
    let err = |e| Error::parquet(SAMPLES_FILE, e);
    let mut col = rg
        .next_column()
        .map_err(err)?
        .ok_or_else(|| Error::format(SAMPLES_FILE, "the samples schema has fewer columns than written"))?;
    col.typed::<T>().write_batch(values, None, None).map_err(err)?;
    col.close().map_err(err)
}

impl std::fmt::Debug for ParquetBlockWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetBlockWriter")
            .field("dir", &self.dir.path())
            .field("series", &self.series.len())
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

fn props(opts: &WriterOptions, samples: bool) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(opts.zstd_level)
        .map_err(|e| Error::InvalidArgument(format!("zstd level {}: {e}", opts.zstd_level)))?;
    let mut b = WriterProperties::builder()
        .set_created_by(format!("promlake {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "promlake.format_version".to_string(),
            FORMAT_VERSION.to_string(),
        )]));
    if samples {
        let id = ColumnPath::from(COL_SERIES_ID);
        let ts = ColumnPath::from(COL_TIMESTAMP);
        let val = ColumnPath::from(COL_VALUE);
        b = b
            .set_column_dictionary_enabled(id.clone(), false)
            .set_column_encoding(id, Encoding::PLAIN)
            .set_column_statistics_enabled(val.clone(), EnabledStatistics::None)
            .set_max_row_group_row_count(Some(opts.row_group_rows))
            .set_data_page_row_count_limit(opts.page_rows)
            .set_column_dictionary_enabled(ts.clone(), false)
            .set_column_encoding(ts, Encoding::DELTA_BINARY_PACKED)
            .set_column_dictionary_enabled(val.clone(), false)
            .set_column_encoding(val, Encoding::BYTE_STREAM_SPLIT)
            .set_sorting_columns(Some(vec![
                SortingColumn { column_idx: 0, descending: false, nulls_first: false },
                SortingColumn { column_idx: 1, descending: false, nulls_first: false },
            ]));
    } else {
        b = b.set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 1,
            descending: false,
            nulls_first: false,
        }]));
    }
    Ok(b.build())
}

/// A fresh local staging directory (named with `prefix`) with a samples file writer in it.
pub(super) fn stage_samples(
    prefix: &str,
    schema: SchemaRef,
    props: WriterProperties,
) -> Result<(TempDir, ArrowWriter<File>)> {
    let dir = staging_dir(prefix)?;
    let path = dir.path().join(SAMPLES_FILE);
    let file = File::create(&path).map_err(|e| Error::io(path.display(), e))?;
    let samples =
        ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| Error::parquet(path.display(), e))?;
    Ok((dir, samples))
}

/// A fresh local staging directory named with `prefix`.
fn staging_dir(prefix: &str) -> Result<TempDir> {
    tempfile::Builder::new().prefix(prefix).tempdir().map_err(|e| Error::io("temporary directory", e))
}

/// The id the next series gets, after checking that `labels` sorts after the last series.
pub(super) fn next_series_id(series: &[SeriesRow], labels: &Labels) -> Result<u32> {
    if let Some(prev) = series.last()
        && prev.labels.block_order(labels) != std::cmp::Ordering::Less
    {
        return Err(Error::OutOfOrder { previous: prev.labels.to_string(), current: labels.to_string() });
    }
    u32::try_from(series.len())
        .map_err(|_| Error::InvalidArgument("more than 2^32 series in one block".into()))
}

impl ParquetBlockWriter {
    /// Starts a block in a fresh local staging directory.
    pub fn new(opts: WriterOptions) -> Result<Self> {
        let dir = staging_dir("promlake-block-")?;
        let samples = SamplesFile::create(&dir.path().join(SAMPLES_FILE), &opts)?;
        Ok(ParquetBlockWriter { dir, samples, series: Vec::new(), rows: 0, opts })
    }

    /// Appends one series with its samples (time-ordered). Series without samples are skipped.
    /// Returns the series' id, or `None` when skipped.
    pub fn append(&mut self, labels: Labels, ts: &[i64], vals: &[f64]) -> Result<Option<u32>> {
        if ts.is_empty() {
            return Ok(None);
        }
        if ts.len() != vals.len() {
            return Err(Error::InvalidArgument(format!(
                "series {labels}: {} timestamps but {} values",
                ts.len(),
                vals.len()
            )));
        }
        let id = next_series_id(&self.series, &labels)?;
        let (min_time, max_time) = (ts[0], ts[ts.len() - 1]);
        self.series.push(SeriesRow {
            labels,
            row_start: self.rows,
            num_samples: ts.len() as u64,
            min_time,
            max_time,
        });
        self.rows += ts.len() as u64;
        self.samples.push(id, ts, vals)?;
        Ok(Some(id))
    }

    /// Number of samples appended so far.
    pub fn num_samples(&self) -> u64 {
        self.rows
    }

    /// Closes samples.parquet and writes series.parquet.
    pub fn finish(self) -> Result<WrittenBlock> {
        self.samples.close()?;
        let series_path = self.dir.path().join(SERIES_FILE);
        write_series(&series_path, &self.series, &self.opts, Vec::new())?;
        let size = |name: &str| -> Result<u64> {
            let p = self.dir.path().join(name);
            Ok(std::fs::metadata(&p).map_err(|e| Error::io(p.display(), e))?.len())
        };
        let files = vec![
            (SAMPLES_FILE.to_string(), size(SAMPLES_FILE)?),
            (SERIES_FILE.to_string(), size(SERIES_FILE)?),
        ];
        Ok(WrittenBlock {
            num_series: self.series.len() as u64,
            num_samples: self.rows,
            min_time: self.series.iter().map(|s| s.min_time).min(),
            max_time: self.series.iter().map(|s| s.max_time).max(),
            files,
            dir: self.dir,
        })
    }
}

/// Writes series.parquet; `extra` are further `__pl_*` columns (one value per series).
pub(super) fn write_series(
    path: &std::path::Path,
    series: &[SeriesRow],
    opts: &WriterOptions,
    extra: Vec<(Field, ArrayRef)>,
) -> Result<()> {
    // __name__ first, then the other label names in byte order.
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for s in series {
        for l in s.labels.iter() {
            names.insert(l.name.as_str());
        }
    }
    names.remove(crate::labels::METRIC_NAME);
    let names: Vec<&str> = std::iter::once(crate::labels::METRIC_NAME).chain(names).collect();

    let mut fields = vec![Field::new(COL_SERIES_ID, DataType::UInt32, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(UInt32Array::from_iter_values(0..series.len() as u32))];
    for name in &names {
        fields.push(Field::new(label_column_name(name), DataType::Utf8, true));
        columns.push(Arc::new(series.iter().map(|s| s.labels.get(name)).collect::<StringArray>()));
    }
    fields.push(Field::new(COL_ROW_START, DataType::UInt64, false));
    columns.push(Arc::new(series.iter().map(|s| s.row_start).collect::<UInt64Array>()));
    fields.push(Field::new(COL_NUM_SAMPLES, DataType::UInt64, false));
    columns.push(Arc::new(series.iter().map(|s| s.num_samples).collect::<UInt64Array>()));
    fields.push(Field::new(COL_MIN_TIME, DataType::Int64, false));
    columns.push(Arc::new(series.iter().map(|s| s.min_time).collect::<Int64Array>()));
    fields.push(Field::new(COL_MAX_TIME, DataType::Int64, false));
    columns.push(Arc::new(series.iter().map(|s| s.max_time).collect::<Int64Array>()));
    for (f, c) in extra {
        fields.push(f);
        columns.push(c);
    }

    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let file = File::create(path).map_err(|e| Error::io(path.display(), e))?;
    let mut w = ArrowWriter::try_new(file, schema, Some(props(opts, false)?))
        .map_err(|e| Error::parquet(path.display(), e))?;
    w.write(&batch).map_err(|e| Error::parquet(path.display(), e))?;
    w.close().map_err(|e| Error::parquet(path.display(), e))?;
    Ok(())
}

/// A finished block in local staging, ready for upload.
#[derive(Debug)]
pub struct WrittenBlock {
    dir: tempfile::TempDir,
    /// (file name, size in bytes) of the data files.
    pub files: Vec<(String, u64)>,
    /// Series written.
    pub num_series: u64,
    /// Samples written.
    pub num_samples: u64,
    /// Earliest sample, if any.
    pub min_time: Option<i64>,
    /// Latest sample, if any.
    pub max_time: Option<i64>,
}

impl WrittenBlock {
    /// A block staged in `dir` by one of this module's writers.
    pub(super) fn staged(
        dir: tempfile::TempDir,
        files: Vec<(String, u64)>,
        num_series: u64,
        num_samples: u64,
        time: Option<(i64, i64)>,
    ) -> Self {
        WrittenBlock {
            dir,
            files,
            num_series,
            num_samples,
            min_time: time.map(|t| t.0),
            max_time: time.map(|t| t.1),
        }
    }

    /// The local staging directory (for inspection before upload).
    pub fn local_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Total size of the data files.
    pub fn size_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.1).sum()
    }

    /// Uploads the data files, then `meta` (completed with stats, the file list and the
    /// promlake section) as meta.json last. A failure before meta.json leaves an invisible,
    /// unfinished directory that a re-run overwrites. Returns the meta.json written.
    pub async fn upload(self, bucket: &Bucket, id: &Ulid, mut meta: BlockMeta) -> Result<BlockMeta> {
        for (name, _) in &self.files {
            bucket.upload_file(&self.dir.path().join(name), &Bucket::block_path(id, name)).await?;
        }
        meta.ulid = id.to_string();
        meta.stats.num_samples = self.num_samples;
        meta.stats.num_float_samples = 0;
        meta.stats.num_histogram_samples = 0;
        meta.stats.num_series = self.num_series;
        meta.promlake = Some(PromlakeMeta { format_version: FORMAT_VERSION });
        let thanos = meta.thanos.get_or_insert_with(Default::default);
        let mut files: Vec<ThanosFile> = self
            .files
            .iter()
            .map(|(name, size)| ThanosFile { rel_path: name.clone(), size_bytes: Some(*size), hash: None })
            .collect();
        files.push(ThanosFile { rel_path: META_FILE.to_string(), size_bytes: None, hash: None });
        files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        thanos.files = files;
        bucket.put_bytes(&Bucket::block_path(id, META_FILE), meta.to_json_pretty()).await?;
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use arrow::array::{AsArray, Float64Array, TimestampMillisecondArray};
    use arrow::datatypes::{Float64Type, TimestampMillisecondType, UInt32Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn samples_file_reads_back_as_the_arrow_schema_in_row_groups() {
        let opts = WriterOptions { row_group_rows: 4, page_rows: 2, ..Default::default() };
        let mut w = ParquetBlockWriter::new(opts).unwrap();
        let series = [("a", 3), ("b", 5), ("c", 1)];
        for (name, n) in series {
            let ts: Vec<i64> = (0..n).map(|i| i * 1000).collect();
            let vals: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
            w.append(Labels::from_pairs([("__name__", name)]), &ts, &vals).unwrap();
        }
        let block = w.finish().unwrap();
        let file = File::open(block.local_dir().join(SAMPLES_FILE)).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(builder.schema().fields(), samples_schema().fields());
        assert_eq!(builder.schema().metadata()["promlake.format_version"], FORMAT_VERSION.to_string());
        assert_eq!(builder.metadata().num_row_groups(), 3, "9 rows in row groups of 4");
        let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
        let all = arrow::compute::concat_batches(&samples_schema(), &batches).unwrap();
        let ids: Vec<u32> = all.column(0).as_primitive::<UInt32Type>().values().to_vec();
        assert_eq!(ids, [0, 0, 0, 1, 1, 1, 1, 1, 2]);
        let ts = all.column(1).as_primitive::<TimestampMillisecondType>();
        assert_eq!(
            ts,
            &TimestampMillisecondArray::from(vec![0, 1000, 2000, 0, 1000, 2000, 3000, 4000, 0])
                .with_timezone("UTC")
        );
        let vals = all.column(2).as_primitive::<Float64Type>();
        assert_eq!(vals, &Float64Array::from(vec![0.5, 1.5, 2.5, 0.5, 1.5, 2.5, 3.5, 4.5, 0.5]));
    }
}
