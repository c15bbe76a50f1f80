//! The Parquet block format, version 1 (DESIGN.md §3): `series.parquet` (one row per series,
//! one column per label name) and `samples.parquet` (one row per sample, sorted by
//! `series_id`, `timestamp`), with `meta.json` written last.
//!
//! Physical choices, measured with `promlake-bench convert` (see the README):
//! * `samples.parquet`: `timestamp` DELTA_BINARY_PACKED, `value` BYTE_STREAM_SPLIT, `series_id`
//!   PLAIN (sorted runs that ZSTD folds to almost nothing; a dictionary or delta encoding cost
//!   10-20% of conversion CPU for no size gain), all ZSTD level 1; page statistics and the page
//!   index on `series_id` and `timestamp` so readers prune pages by series and time (none on
//!   `value`: computing them cost ~4% of conversion CPU and no reader prunes by value).
//!   Pages hold up to 128Ki rows: on node-exporter-like data 8Ki-row pages made the block 0.69x
//!   the native block's bytes, 64Ki 0.60x, 128Ki 0.58x (per-page ZSTD frames and delta
//!   blocks restart less often). ZSTD level 3 saves another ~3% of size for ~15% more CPU.
//!   Row groups hold 256Ki rows, which the writer buffers as plain vectors (1Mi-row groups
//!   were 0.05% smaller on the 5x24h bench data); compaction writes 128Ki-row groups (one page
//!   per column) to halve that buffer, since its peak memory is benchmarked against Prometheus.
//! * `series.parquet` carries each series' row range in samples.parquet (`__pl_row_start`,
//!   `__pl_num_samples`) and time bounds, so a reader selects exact row ranges with no scan.
//! * Downsampled blocks ([`aggr`]) keep series.parquet and swap `value` for the five Thanos
//!   aggregates: [`AggrBlockWriter`] writes them, [`AggrBlock`] reads them.

pub mod aggr;
mod aggr_reader;
mod aggr_writer;
pub mod cache;
mod object_reader;
mod reader;
mod schema;
mod writer;

pub use aggr::{AggrSeries, RES_1H, RES_5M, aggr_samples_schema};
pub use aggr_reader::AggrBlock;
pub use aggr_writer::AggrBlockWriter;
pub use cache::{DEFAULT_SAMPLES_CACHE_BYTES, SamplesCache};
pub use reader::{ParquetBlock, SeriesInfo};
pub use schema::{
    COL_TIMESTAMP, COL_VALUE, FORMAT_VERSION, SAMPLES_FILE, SERIES_FILE, label_column_name,
    label_name_for_column, samples_schema,
};
pub use writer::{ParquetBlockWriter, WriterOptions, WrittenBlock};
