//! Column names and Arrow schemas of format version 1.

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, LazyLock};

/// The format version written into meta.json's `promlake.format_version`.
pub const FORMAT_VERSION: u32 = 1;
/// One row per series.
pub const SERIES_FILE: &str = "series.parquet";
/// One row per sample.
pub const SAMPLES_FILE: &str = "samples.parquet";

/// `series_id` column (both files).
pub const COL_SERIES_ID: &str = "series_id";
/// `timestamp` column of samples.parquet.
pub const COL_TIMESTAMP: &str = "timestamp";
/// `value` column of samples.parquet.
pub const COL_VALUE: &str = "value";
/// Prefix of non-label per-series columns.
pub const PL_PREFIX: &str = "__pl_";
/// First row of the series in samples.parquet.
pub const COL_ROW_START: &str = "__pl_row_start";
/// Number of samples of the series.
pub const COL_NUM_SAMPLES: &str = "__pl_num_samples";
/// Earliest sample timestamp of the series (ms).
pub const COL_MIN_TIME: &str = "__pl_min_time";
/// Latest sample timestamp of the series (ms).
pub const COL_MAX_TIME: &str = "__pl_max_time";

/// The column a label is stored in (`series_id` is renamed to `label_series_id`).
pub fn label_column_name(label: &str) -> &str {
    if label == COL_SERIES_ID { "label_series_id" } else { label }
}

/// The label a series.parquet column holds, or `None` for `series_id` and `__pl_*` columns.
pub fn label_name_for_column(column: &str) -> Option<&str> {
    if column == COL_SERIES_ID || column.starts_with(PL_PREFIX) {
        None
    } else if column == "label_series_id" {
        Some(COL_SERIES_ID)
    } else {
        Some(column)
    }
}

static SAMPLES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(COL_SERIES_ID, DataType::UInt32, false),
        Field::new(COL_TIMESTAMP, DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new(COL_VALUE, DataType::Float64, false),
    ]))
});

/// The Arrow schema of a raw samples.parquet.
pub fn samples_schema() -> SchemaRef {
    SAMPLES.clone()
}
