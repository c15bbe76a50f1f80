//! The Parquet block format, version 1 (DESIGN.md §3): `series.parquet` (one row per series,
//! one column per label name) and `samples.parquet` (one row per sample, sorted by
//! `series_id`, `timestamp`), with `meta.json` written last.
//!
//! Physical choices, measured with `promlake-bench convert` (see the README):
//! * `samples.parquet`: `timestamp` DELTA_BINARY_PACKED, `value` BYTE_STREAM_SPLIT, `series_id`
//!   RLE dictionary, all ZSTD; page statistics and the page index on every column so readers
//!   prune pages by series and time; small pages (a few thousand rows) so a series' rows span few
//!   pages.
//! * `series.parquet` carries each series' row range in samples.parquet (`__pl_row_start`,
//!   `__pl_num_samples`) and time bounds, so a reader selects exact row ranges with no scan.

mod object_reader;
mod reader;
mod schema;
mod writer;

pub use reader::{ParquetBlock, SeriesInfo};
pub use schema::{
    FORMAT_VERSION, SAMPLES_FILE, SERIES_FILE, label_column_name, label_name_for_column,
    samples_schema,
};
pub use writer::{ParquetBlockWriter, WriterOptions, WrittenBlock};
