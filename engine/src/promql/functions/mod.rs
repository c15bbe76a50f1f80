//! PromQL functions as pure computations over samples, one file per family. The evaluator
//! (`promql::eval`) resolves arguments and calls these.
//!
//! * [`range`]: functions over a range vector's window of one series (`rate`, `increase`,
//!   `delta`, `irate`, `idelta`, `*_over_time`, `deriv`, `predict_linear`, `resets`, `changes`,
//!   `double_exponential_smoothing`, ...).
//! * [`math`]: element-wise functions of one value (`abs`, `ceil`, `exp`, trig, `clamp`, ...).
//! * [`time`]: date functions of a timestamp in seconds (`day_of_month`, `hour`, ...).
//! * [`histogram`]: `histogram_quantile` over classic `le` buckets, `histogram_fraction`?.
//! * [`labels`]: `label_replace`, `label_join`.

pub mod histogram;
pub mod labels;
pub mod math;
pub mod range;
pub mod time;

/// The window a range function sees: samples with `start < t <= end` (left-open, Prometheus 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Exclusive start (ms): evaluation time minus the range (after offset/@).
    pub start: i64,
    /// Inclusive end (ms).
    pub end: i64,
}
