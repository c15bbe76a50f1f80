//! The tables of DESIGN.md §4 over a [`Snapshot`] of the lake:
//!
//! | table | rows | reads |
//! |---|---|---|
//! | `series` | one per series per block: `series_id`, `block`, one column per label | series.parquet (cached per block) |
//! | `samples` | raw samples: `series_id`, `timestamp`, `value`, `block` | samples.parquet of raw blocks |
//! | `samples_5m`, `samples_1h` | downsampled windows: `series_id`, `timestamp`, `count`, `sum`, `min`, `max`, `counter`, `block` | samples.parquet of downsampled blocks |
//! | `metrics` (view) | raw samples with their labels: one column per label, `timestamp`, `value` | both, joined per block |
//!
//! External labels are label columns (constant per block). Filters on labels are evaluated on
//! the series of each block and become exact row ranges of samples.parquet; filters on
//! `timestamp` and `value` go to the Parquet reader (row groups and pages pruned by
//! statistics, rows by a predicate). Raw native TSDB blocks of the bucket are in `series`,
//! `samples` and `metrics` too, their chunks decoded when scanned.

pub mod filters;
mod metrics;
mod native;
mod reader;
mod samples;
mod scan;
mod series;

pub use metrics::MetricsTable;
pub use reader::FooterCache;
pub use samples::SamplesTable;
pub use series::SeriesTable;

use crate::lake::{LakeBlock, RAW, RES_1H, RES_5M, Snapshot, label_column};
use arrow::array::{ArrayRef, new_null_array};
use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::catalog::TableProvider;
use std::sync::Arc;

/// The table names, in the order `SHOW TABLES` lists them.
pub const TABLE_NAMES: [&str; 5] = ["series", "samples", "samples_5m", "samples_1h", "metrics"];

/// The provider of table `name` over `snapshot`, if `name` is one of [`TABLE_NAMES`].
pub fn provider(name: &str, snapshot: Arc<Snapshot>) -> Option<Arc<dyn TableProvider>> {
    Some(match name {
        "series" => Arc::new(SeriesTable::new(snapshot)),
        "samples" => Arc::new(SamplesTable::new(snapshot, RAW)),
        "samples_5m" => Arc::new(SamplesTable::new(snapshot, RES_5M)),
        "samples_1h" => Arc::new(SamplesTable::new(snapshot, RES_1H)),
        "metrics" => Arc::new(MetricsTable::new(snapshot)),
        _ => return None,
    })
}

/// The type of label columns.
pub fn label_type() -> DataType {
    DataType::Utf8View
}

/// The type of `timestamp` columns: milliseconds since the epoch, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// One label column: its SQL field and the label it holds.
#[derive(Debug, Clone)]
pub struct LabelColumn {
    /// The column (Utf8View, nullable).
    pub field: FieldRef,
    /// The label name.
    pub label: String,
}

/// The label columns of a snapshot, `__name__` first.
pub fn label_columns(snapshot: &Snapshot) -> Vec<LabelColumn> {
    snapshot
        .label_names
        .iter()
        .map(|l| LabelColumn {
            field: Arc::new(Field::new(label_column(l), label_type(), true)),
            label: l.clone(),
        })
        .collect()
}

/// The values of `label` for every series of `block` (nulls where the block lacks it).
pub fn label_array(block: &LakeBlock, label: &str) -> ArrayRef {
    match block.series.labels.get(label) {
        Some(a) => a.clone(),
        None => new_null_array(&label_type(), block.series.len()),
    }
}
