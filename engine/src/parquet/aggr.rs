//! Downsampled blocks (`thanos.downsample.resolution` 300000 or 3600000): the five Thanos
//! aggregates per series and window (DESIGN.md §3, reference/thanos.md §6).
//!
//! `samples.parquet` has one row per (series, window): `series_id`, `timestamp` (the window's
//! end, `t - t % res + res - 1`; the series' last window is stamped with its last sample's
//! timestamp instead), `count` (INT64), `sum`, `min`, `max`, `counter` (DOUBLE).
//!
//! `counter` is Thanos's reset-adjusted running total: it starts at the series' first raw value
//! in the block and only grows (a drop of the raw counter adds the new value, as a reset would).
//! Thanos frames its counter chunks with the first raw sample and the last raw value so that
//! readers see resets across blocks; here that framing lives in three per-series columns of
//! series.parquet: `__pl_counter_first_time`, `__pl_counter_first` (the first raw sample the
//! running total starts from) and `__pl_counter_last` (the last raw value; its timestamp is the
//! series' last row).

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, LazyLock};

/// `count` column: raw samples in the window.
pub const COL_COUNT: &str = "count";
/// `sum` column: sum of the raw values in the window.
pub const COL_SUM: &str = "sum";
/// `min` column.
pub const COL_MIN: &str = "min";
/// `max` column.
pub const COL_MAX: &str = "max";
/// `counter` column: reset-adjusted running counter at the window's end.
pub const COL_COUNTER: &str = "counter";
/// series.parquet: timestamp of the first raw sample the counter starts from.
pub const COL_COUNTER_FIRST_TIME: &str = "__pl_counter_first_time";
/// series.parquet: the first raw value.
pub const COL_COUNTER_FIRST: &str = "__pl_counter_first";
/// series.parquet: the last raw value.
pub const COL_COUNTER_LAST: &str = "__pl_counter_last";

/// 5-minute resolution (ms).
pub const RES_5M: i64 = 300_000;
/// 1-hour resolution (ms).
pub const RES_1H: i64 = 3_600_000;

/// One series of a downsampled block: per-window aggregates (all vectors the same length,
/// windows in time order) and the counter framing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AggrSeries {
    /// Window timestamps (ms).
    pub ts: Vec<i64>,
    /// Raw samples per window.
    pub count: Vec<i64>,
    /// Sum of raw values per window.
    pub sum: Vec<f64>,
    /// Minimum raw value per window.
    pub min: Vec<f64>,
    /// Maximum raw value per window.
    pub max: Vec<f64>,
    /// Reset-adjusted running counter at each window's end.
    pub counter: Vec<f64>,
    /// Timestamp of the first raw sample (the counter's start).
    pub first_time: i64,
    /// Value of the first raw sample.
    pub first_value: f64,
    /// Value of the last raw sample (at `ts.last()`).
    pub last_value: f64,
}

impl AggrSeries {
    /// Number of windows.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// True when there is no window.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Appends one window.
    pub fn push(&mut self, t: i64, count: i64, sum: f64, min: f64, max: f64, counter: f64) {
        self.ts.push(t);
        self.count.push(count);
        self.sum.push(sum);
        self.min.push(min);
        self.max.push(max);
        self.counter.push(counter);
    }

    /// True when every column has one value per window.
    pub fn is_consistent(&self) -> bool {
        let n = self.ts.len();
        [self.count.len(), self.sum.len(), self.min.len(), self.max.len(), self.counter.len()]
            .iter()
            .all(|&l| l == n)
    }
}

static AGGR_SAMPLES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(super::schema::COL_SERIES_ID, DataType::UInt32, false),
        Field::new(
            super::schema::COL_TIMESTAMP,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new(COL_COUNT, DataType::Int64, false),
        Field::new(COL_SUM, DataType::Float64, false),
        Field::new(COL_MIN, DataType::Float64, false),
        Field::new(COL_MAX, DataType::Float64, false),
        Field::new(COL_COUNTER, DataType::Float64, false),
    ]))
});

/// The Arrow schema of a downsampled samples.parquet.
pub fn aggr_samples_schema() -> SchemaRef {
    AGGR_SAMPLES.clone()
}
