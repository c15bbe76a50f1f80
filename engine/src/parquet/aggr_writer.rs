//! Writes one downsampled block (see [`super::aggr`]) into a local staging directory, series by
//! series, with memory bounded by one write batch; the result uploads like a raw block
//! ([`WrittenBlock::upload`], meta.json last).

use super::aggr::*;
use super::schema::*;
use super::writer::{SeriesRow, WriterOptions, WrittenBlock, next_series_id, stage_samples, write_series};
use crate::{Error, Labels, Result};
use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMillisecondArray, UInt32Array};
use arrow::datatypes::{DataType, Field};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::fs::File;
use std::sync::Arc;

/// Writes a downsampled block's two Parquet files. Series must come in [`Labels::block_order`].
pub struct AggrBlockWriter {
    dir: tempfile::TempDir,
    samples: ArrowWriter<File>,
    buf: AggrSeries,
    ids: Vec<u32>,
    series: Vec<SeriesRow>,
    first_time: Vec<i64>,
    first: Vec<f64>,
    last: Vec<f64>,
    rows: u64,
    opts: WriterOptions,
}

impl std::fmt::Debug for AggrBlockWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggrBlockWriter")
            .field("dir", &self.dir.path())
            .field("series", &self.series.len())
            .field("rows", &self.rows)
            .finish()
    }
}

fn props(opts: &WriterOptions) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(opts.zstd_level)
        .map_err(|e| Error::InvalidArgument(format!("zstd level {}: {e}", opts.zstd_level)))?;
    let mut b = WriterProperties::builder()
        .set_created_by(format!("promlake {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        .set_data_page_row_count_limit(opts.page_rows)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "promlake.format_version".to_string(),
            FORMAT_VERSION.to_string(),
        )]))
        .set_sorting_columns(Some(vec![
            SortingColumn { column_idx: 0, descending: false, nulls_first: false },
            SortingColumn { column_idx: 1, descending: false, nulls_first: false },
        ]));
    let id = ColumnPath::from(COL_SERIES_ID);
    b = b.set_column_dictionary_enabled(id.clone(), false).set_column_encoding(id, Encoding::PLAIN);
    let ts = ColumnPath::from(COL_TIMESTAMP);
    b = b
        .set_column_dictionary_enabled(ts.clone(), false)
        .set_column_encoding(ts, Encoding::DELTA_BINARY_PACKED);
    let count = ColumnPath::from(COL_COUNT);
    b = b
        .set_column_dictionary_enabled(count.clone(), false)
        .set_column_encoding(count, Encoding::DELTA_BINARY_PACKED);
    for c in [COL_SUM, COL_MIN, COL_MAX, COL_COUNTER] {
        let p = ColumnPath::from(c);
        b = b
            .set_column_dictionary_enabled(p.clone(), false)
            .set_column_encoding(p.clone(), Encoding::BYTE_STREAM_SPLIT)
            .set_column_statistics_enabled(p, EnabledStatistics::None);
    }
    Ok(b.build())
}

impl AggrBlockWriter {
    /// Starts a block in a fresh local staging directory.
    pub fn new(opts: WriterOptions) -> Result<Self> {
        let (dir, samples) = stage_samples("promlake-aggr-block-", aggr_samples_schema(), props(&opts)?)?;
        Ok(AggrBlockWriter {
            dir,
            samples,
            buf: AggrSeries::default(),
            ids: Vec::new(),
            series: Vec::new(),
            first_time: Vec::new(),
            first: Vec::new(),
            last: Vec::new(),
            rows: 0,
            opts,
        })
    }

    /// Appends one series (windows in time order). Series without windows are skipped.
    /// Returns the series' id, or `None` when skipped.
    pub fn append(&mut self, labels: Labels, s: &AggrSeries) -> Result<Option<u32>> {
        let (Some(&min_time), Some(&max_time)) = (s.ts.first(), s.ts.last()) else {
            return Ok(None);
        };
        if !s.is_consistent() {
            return Err(Error::InvalidArgument(format!(
                "series {labels}: aggregate columns differ in length"
            )));
        }
        let id = next_series_id(&self.series, &labels)?;
        self.series.push(SeriesRow {
            labels,
            row_start: self.rows,
            num_samples: s.len() as u64,
            min_time,
            max_time,
        });
        self.first_time.push(s.first_time);
        self.first.push(s.first_value);
        self.last.push(s.last_value);
        self.rows += s.len() as u64;
        self.ids.extend(std::iter::repeat_n(id, s.len()));
        let b = &mut self.buf;
        b.ts.extend_from_slice(&s.ts);
        b.count.extend_from_slice(&s.count);
        b.sum.extend_from_slice(&s.sum);
        b.min.extend_from_slice(&s.min);
        b.max.extend_from_slice(&s.max);
        b.counter.extend_from_slice(&s.counter);
        if self.ids.len() >= self.opts.batch_rows {
            self.flush()?;
        }
        Ok(Some(id))
    }

    fn flush(&mut self) -> Result<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let b = std::mem::take(&mut self.buf);
        let batch = RecordBatch::try_new(
            aggr_samples_schema(),
            vec![
                Arc::new(UInt32Array::from(std::mem::take(&mut self.ids))),
                Arc::new(TimestampMillisecondArray::from(b.ts).with_timezone("UTC")),
                Arc::new(Int64Array::from(b.count)),
                Arc::new(Float64Array::from(b.sum)),
                Arc::new(Float64Array::from(b.min)),
                Arc::new(Float64Array::from(b.max)),
                Arc::new(Float64Array::from(b.counter)),
            ],
        )?;
        self.samples.write(&batch).map_err(|e| Error::parquet(SAMPLES_FILE, e))
    }

    /// Windows appended so far.
    pub fn num_rows(&self) -> u64 {
        self.rows
    }

    /// Closes samples.parquet and writes series.parquet with the counter framing columns.
    pub fn finish(mut self) -> Result<WrittenBlock> {
        self.flush()?;
        self.samples.close().map_err(|e| Error::parquet(SAMPLES_FILE, e))?;
        let series_path = self.dir.path().join(SERIES_FILE);
        let extra: Vec<(Field, ArrayRef)> = vec![
            (
                Field::new(COL_COUNTER_FIRST_TIME, DataType::Int64, false),
                Arc::new(Int64Array::from(std::mem::take(&mut self.first_time))),
            ),
            (
                Field::new(COL_COUNTER_FIRST, DataType::Float64, false),
                Arc::new(Float64Array::from(std::mem::take(&mut self.first))),
            ),
            (
                Field::new(COL_COUNTER_LAST, DataType::Float64, false),
                Arc::new(Float64Array::from(std::mem::take(&mut self.last))),
            ),
        ];
        write_series(&series_path, &self.series, &self.opts, extra)?;
        let size = |name: &str| -> Result<u64> {
            let p = self.dir.path().join(name);
            Ok(std::fs::metadata(&p).map_err(|e| Error::io(p.display(), e))?.len())
        };
        let files = vec![
            (SAMPLES_FILE.to_string(), size(SAMPLES_FILE)?),
            (SERIES_FILE.to_string(), size(SERIES_FILE)?),
        ];
        let time = self.series.iter().fold(None, |acc: Option<(i64, i64)>, s| {
            Some(acc.map_or((s.min_time, s.max_time), |(a, b)| (a.min(s.min_time), b.max(s.max_time))))
        });
        Ok(WrittenBlock::staged(self.dir, files, self.series.len() as u64, self.rows, time))
    }
}
