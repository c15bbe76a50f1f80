//! Range-vector functions over one series' window, ported from Prometheus 3.x
//! `promql/functions.go` (float samples only; native histograms are out of scope).
//!
//! Arguments (`args`) per function, in PromQL argument order without the range vector:
//! `quantile_over_time(φ)`, `predict_linear(t_seconds[, eval_time_ms])`,
//! `double_exponential_smoothing(sf, tf)` / `holt_winters(sf, tf)`. Every other function takes
//! none. Functions return `None` exactly where Prometheus emits no sample (e.g. `rate` over fewer
//! than two samples, any function over an empty window).

use super::{Points, Window, kahan_inc, quantile};

/// Every function name [`eval`] understands.
const RANGE_FUNCTIONS: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
    "first_over_time",
    "present_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "mad_over_time",
    "changes",
    "resets",
    "deriv",
    "predict_linear",
    "double_exponential_smoothing",
    "holt_winters",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
    "ts_of_last_over_time",
    "ts_of_first_over_time",
];

/// Evaluates range function `name` over `points` (time-ordered samples inside `window`, staleness
/// markers already removed) with scalar arguments `args` (e.g. the φ of `quantile_over_time`,
/// the `t` of `predict_linear` in seconds, the sf/tf of `double_exponential_smoothing`).
/// Returns `None` when the function yields no sample (e.g. `rate` with fewer than two points),
/// `Some(Err)` never; unknown names return `None` (the evaluator checks names first with
/// [`is_range_function`]).
///
/// `predict_linear` predicts `t` seconds after the *evaluation* time, which differs from
/// `window.end` under `offset`/`@`: the evaluator should pass the evaluation timestamp (ms, as
/// f64) as `args[1]`; without it `window.end` is used. `double_exponential_smoothing` returns
/// `None` for factors [`validate_args`] rejects (the evaluator should raise that error first).
pub fn eval(name: &str, points: Points<'_>, window: Window, args: &[f64]) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    let vs = points.vs;
    let value = match name {
        "rate" => return extrapolated_rate(points, window, true, true),
        "increase" => return extrapolated_rate(points, window, true, false),
        "delta" => return extrapolated_rate(points, window, false, false),
        "irate" => return instant_value(points, true),
        "idelta" => return instant_value(points, false),
        "avg_over_time" => avg_over_time(vs),
        "sum_over_time" => sum_over_time(vs),
        "min_over_time" => compare_over_time(points, |cur, best| cur < best).1,
        "max_over_time" => compare_over_time(points, |cur, best| cur > best).1,
        "ts_of_min_over_time" => compare_over_time(points, |cur, best| cur <= best).0 as f64 / 1000.0,
        "ts_of_max_over_time" => compare_over_time(points, |cur, best| cur >= best).0 as f64 / 1000.0,
        "ts_of_last_over_time" => last.0 as f64 / 1000.0,
        "ts_of_first_over_time" => first.0 as f64 / 1000.0,
        "count_over_time" => points.len() as f64,
        "last_over_time" => last.1,
        "first_over_time" => first.1,
        "present_over_time" => 1.0,
        "stdvar_over_time" => variance(vs),
        "stddev_over_time" => variance(vs).sqrt(),
        "quantile_over_time" => {
            let q = *args.first()?;
            quantile(q, &mut vs.to_vec())
        }
        "mad_over_time" => mad_over_time(vs),
        "changes" => changes(vs),
        "resets" => resets(vs),
        "deriv" => {
            if points.len() < 2 {
                return None;
            }
            linear_regression(points, first.0).0
        }
        "predict_linear" => {
            if points.len() < 2 {
                return None;
            }
            let duration = *args.first()?;
            let eval_ms = args.get(1).map_or(window.end, |t| *t as i64);
            let (slope, intercept) = linear_regression(points, eval_ms);
            slope * duration + intercept
        }
        "double_exponential_smoothing" | "holt_winters" => {
            let (sf, tf) = (*args.first()?, *args.get(1)?);
            if validate_args(name, args).is_err() {
                return None;
            }
            return double_exponential_smoothing(vs, sf, tf);
        }
        _ => return None,
    };
    Some(value)
}

/// Is `name` a function this module evaluates?
pub fn is_range_function(name: &str) -> bool {
    RANGE_FUNCTIONS.contains(&name)
}

/// Checks scalar arguments the way Prometheus does at evaluation time, returning its error
/// message: `double_exponential_smoothing` (and `holt_winters`) need `0 < sf < 1` and
/// `0 < tf < 1` (NaN passes, as in Prometheus, whose comparisons are false for NaN). Every other
/// function accepts any arguments (`quantile_over_time` with φ outside [0, 1] only warns).
pub fn validate_args(name: &str, args: &[f64]) -> Result<(), String> {
    if name != "double_exponential_smoothing" && name != "holt_winters" {
        return Ok(());
    }
    if let Some(&sf) = args.first()
        && (sf <= 0.0 || sf >= 1.0)
    {
        return Err(format!("invalid smoothing factor. Expected: 0 < sf < 1, got: {}", go_percent_f(sf)));
    }
    if let Some(&tf) = args.get(1)
        && (tf <= 0.0 || tf >= 1.0)
    {
        return Err(format!("invalid trend factor. Expected: 0 < tf < 1, got: {}", go_percent_f(tf)));
    }
    Ok(())
}

/// Formats like Go's `%f` (6 decimals, `+Inf`/`-Inf`/`NaN`).
fn go_percent_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".to_string() } else { "-Inf".to_string() }
    } else {
        format!("{v:.6}")
    }
}

/// Prometheus `extrapolatedRate` for floats: `rate` (counter, per second), `increase` (counter)
/// and `delta` (gauge). The raw difference (counter-reset corrected) is extrapolated towards
/// each window boundary: all the way if the first/last sample lies within 1.1 average sample
/// intervals of it, otherwise by half an average interval; for counters the start is further
/// limited by where the counter would have been zero.
fn extrapolated_rate(points: Points<'_>, window: Window, is_counter: bool, is_rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let ((first_t, first_v), (last_t, last_v)) = (points.first()?, points.last()?);
    let mut result = last_v - first_v;
    if is_counter {
        result += reset_correction(points.vs);
    }
    let mut duration_to_start = (first_t - window.start) as f64 / 1000.0;
    let mut duration_to_end = (window.end - last_t) as f64 / 1000.0;
    let sampled_interval = (last_t - first_t) as f64 / 1000.0;
    let average_interval = sampled_interval / (points.len() - 1) as f64;
    let threshold = average_interval * 1.1;
    if duration_to_start >= threshold {
        duration_to_start = average_interval / 2.0;
    }
    if is_counter && result > 0.0 && first_v >= 0.0 {
        let duration_to_zero = sampled_interval * (first_v / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = average_interval / 2.0;
    }
    let mut factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    if is_rate {
        factor /= (window.end - window.start) as f64 / 1000.0;
    }
    Some(result * factor)
}

/// The sum of the values just before each counter reset (a decrease), added in sample order as
/// Prometheus does. Compares adjacent values of the column branch-free, so the common case of
/// no reset is one vectorisable pass.
fn reset_correction(vs: &[f64]) -> f64 {
    let (prev, next) = (&vs[..vs.len().saturating_sub(1)], vs.get(1..).unwrap_or_default());
    let any = prev.iter().zip(next).fold(false, |any, (a, b)| any | (b < a));
    if !any {
        return 0.0;
    }
    prev.iter().zip(next).filter(|(a, b)| b < a).fold(0.0, |sum, (a, _)| sum + a)
}

/// Prometheus `instantValue`: `irate` / `idelta` from the last two samples. For `irate` a
/// decrease is a counter reset, so the last value itself is the increase.
fn instant_value(points: Points<'_>, is_rate: bool) -> Option<f64> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let (t0, v0) = (points.ts[n - 2], points.vs[n - 2]);
    let (t1, v1) = (points.ts[n - 1], points.vs[n - 1]);
    let interval = t1 - t0;
    if interval == 0 {
        return None;
    }
    let mut result = v1;
    if !is_rate || v1 >= v0 || v1.is_nan() || v0.is_nan() {
        result = v1 - v0;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Direct mean with Kahan summation, switching to an incremental mean once the running sum would
/// overflow (Prometheus 3 `funcAvgOverTime`).
fn avg_over_time(vs: &[f64]) -> f64 {
    let mut sum = vs[0];
    let mut count = 1.0;
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, &v) in vs.iter().enumerate().skip(1) {
        count = (i + 1) as f64;
        if !incremental {
            let (new_sum, new_c) = kahan_inc(v, sum, c);
            if !new_sum.is_infinite() {
                (sum, c) = (new_sum, new_c);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(v / count, q * mean, q * c);
    }
    if incremental { mean + c } else { sum / count + c / count }
}

fn sum_over_time(vs: &[f64]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for &v in vs {
        (sum, c) = kahan_inc(v, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

/// Prometheus `compareOverTime`: keeps the first sample, replacing it whenever `better(cur, best)`
/// or the best so far is NaN. Returns (timestamp, value) of the winner.
fn compare_over_time(points: Points<'_>, better: impl Fn(f64, f64) -> bool) -> (i64, f64) {
    let (mut at, mut best) = (0, points.vs[0]);
    for (i, &v) in points.vs.iter().enumerate() {
        if better(v, best) || best.is_nan() {
            (at, best) = (i, v);
        }
    }
    (points.ts[at], best)
}

/// Population variance with Kahan-compensated Welford updates (Prometheus `varianceOverTime`).
fn variance(vs: &[f64]) -> f64 {
    let mut count = 0.0;
    let (mut mean, mut c_mean) = (0.0, 0.0);
    let (mut aux, mut c_aux) = (0.0, 0.0);
    for &v in vs {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Median absolute deviation from the median; any NaN sample makes the result NaN
/// (functions.test "A NaN sample makes the result NaN rather than being silently dropped").
fn mad_over_time(vs: &[f64]) -> f64 {
    if vs.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let mut values = vs.to_vec();
    let median = quantile(0.5, &mut values);
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    quantile(0.5, &mut deviations)
}

/// Number of value changes (NaN → NaN is not a change).
fn changes(vs: &[f64]) -> f64 {
    vs.windows(2).filter(|w| w[1] != w[0] && !(w[1].is_nan() && w[0].is_nan())).count() as f64
}

/// Number of decreases (counter resets).
fn resets(vs: &[f64]) -> f64 {
    vs.windows(2).filter(|w| w[1] < w[0]).count() as f64
}

/// Least-squares fit of value over time in seconds relative to `intercept_ms` (Prometheus
/// `linearRegression`, with Kahan sums); returns (slope per second, value at `intercept_ms`).
/// A constant series gives slope 0 — or NaN for a constant ±Inf.
pub fn linear_regression(points: Points<'_>, intercept_ms: i64) -> (f64, f64) {
    let init_y = points.vs[0];
    let const_y = points.vs.iter().all(|&v| v == init_y);
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let mut n = 0.0;
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    for (&t, &v) in points.ts.iter().zip(points.vs) {
        n += 1.0;
        let x = (t - intercept_ms) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// Holt's double exponential smoothing (Prometheus `funcDoubleExponentialSmoothing`).
fn double_exponential_smoothing(vs: &[f64], sf: f64, tf: f64) -> Option<f64> {
    if vs.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, vs[0]);
    let mut b = vs[1] - vs[0];
    for (i, &v) in vs.iter().enumerate().skip(1) {
        let x = sf * v;
        // calcTrendValue(i-1, ...): the initial trend is kept for the first step.
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Some(s1)
}

#[cfg(test)]
mod tests;
