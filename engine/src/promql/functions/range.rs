//! Range-vector functions over one series' window.

use super::Window;

/// Evaluates range function `name` over `points` (time-ordered samples inside `window`, staleness
/// markers already removed) with scalar arguments `args` (e.g. the φ of `quantile_over_time`,
/// the `t` of `predict_linear` in seconds, the sf/tf of `double_exponential_smoothing`).
/// Returns `None` when the function yields no sample (e.g. `rate` with fewer than two points),
/// `Some(Err)` never; unknown names return `None` (the evaluator checks names first with
/// [`is_range_function`]).
pub fn eval(name: &str, points: &[(i64, f64)], window: Window, args: &[f64]) -> Option<f64> {
    let _ = (name, points, window, args);
    None
}

/// Is `name` a function this module evaluates?
pub fn is_range_function(name: &str) -> bool {
    let _ = name;
    false
}
