//! PromQL functions as pure computations over samples, one file per family. The evaluator
//! (`promql::eval`) resolves arguments and calls these.
//!
//! * [`range`]: functions over a range vector's window of one series (`rate`, `increase`,
//!   `delta`, `irate`, `idelta`, `*_over_time`, `deriv`, `predict_linear`, `resets`, `changes`,
//!   `double_exponential_smoothing`, ...).
//! * [`math`]: element-wise functions of one value (`abs`, `ceil`, `exp`, trig, `clamp`, ...).
//! * [`time`]: date functions of a timestamp in seconds (`day_of_month`, `hour`, ...).
//! * [`histogram`]: `histogram_quantile` and `histogram_fraction` over classic `le` buckets.
//! * [`labels`]: `label_replace`, `label_join`.
//!
//! Shared numeric helpers used by several families (and by the aggregators): [`kahan_inc`]
//! (Prometheus's `kahansum.Inc`) and [`quantile`] (Prometheus's `quantile`, used by the
//! `quantile` aggregator, `quantile_over_time` and `mad_over_time`).

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

/// One series' samples as two columns of equal length, time-ordered: timestamps (ms) and values.
/// The evaluator hands out slices of the Arrow buffers it scanned, so the functions read the
/// stored columns in place.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Points<'a> {
    /// Sample timestamps (ms).
    pub ts: &'a [i64],
    /// Sample values.
    pub vs: &'a [f64],
}

impl<'a> Points<'a> {
    /// Pairs two columns; the shorter length wins.
    pub fn new(ts: &'a [i64], vs: &'a [f64]) -> Self {
        let n = ts.len().min(vs.len());
        Points { ts: &ts[..n], vs: &vs[..n] }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// True without samples.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// The first sample.
    pub fn first(&self) -> Option<(i64, f64)> {
        Some((*self.ts.first()?, *self.vs.first()?))
    }

    /// The last sample.
    pub fn last(&self) -> Option<(i64, f64)> {
        Some((*self.ts.last()?, *self.vs.last()?))
    }

    /// The positions of the samples inside `w` (`w.start < t <= w.end`), found by binary
    /// search on the timestamp column.
    pub fn range_in(&self, w: Window) -> std::ops::Range<usize> {
        let lo = self.ts.partition_point(|&t| t <= w.start);
        lo..self.ts.partition_point(|&t| t <= w.end).max(lo)
    }

    /// The samples inside `w` (`w.start < t <= w.end`).
    pub fn window(&self, w: Window) -> Points<'a> {
        self.slice(self.range_in(w))
    }

    /// The samples at positions `r`.
    fn slice(&self, r: std::ops::Range<usize>) -> Points<'a> {
        Points { ts: &self.ts[r.clone()], vs: &self.vs[r] }
    }
}

/// The number of timestamps `<= t` in `ts`, given that the first `n` are: gallops forward from
/// `n`, so a walk over ascending `t` costs O(log(gap)) a step instead of O(log(len)).
pub(crate) fn advance(ts: &[i64], n: usize, t: i64) -> usize {
    let n = n.min(ts.len());
    let rest = &ts[n..];
    let mut hi = 1;
    while hi < rest.len() && rest[hi - 1] <= t {
        hi *= 2;
    }
    n + rest[..hi.min(rest.len())].partition_point(|&x| x <= t)
}

/// Windows of one series at ascending evaluation steps, each found by walking forward from the
/// previous one. A window that starts or ends earlier than the previous one (never the case for
/// PromQL's steps) restarts the walk from the beginning.
#[derive(Debug, Default)]
pub struct WindowCursor {
    lo: usize,
    hi: usize,
    last: Option<Window>,
}

impl WindowCursor {
    /// The samples of `p` inside `w` (`w.start < t <= w.end`).
    pub fn window<'a>(&mut self, p: &Points<'a>, w: Window) -> Points<'a> {
        if self.last.is_some_and(|l| w.start < l.start || w.end < l.end) {
            (self.lo, self.hi) = (0, 0);
        }
        self.last = Some(w);
        self.lo = advance(p.ts, self.lo, w.start);
        self.hi = advance(p.ts, self.hi.max(self.lo), w.end).max(self.lo);
        p.slice(self.lo..self.hi)
    }
}

/// One step of Kahan–Neumaier summation (Prometheus `kahansum.Inc`): adds `inc` to `sum` with
/// compensation `c`, returning the new `(sum, c)`. The final value is `sum + c` (unless `sum` is
/// infinite, in which case the compensation is meaningless and reset to 0).
pub fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The `q`-quantile of `values` as Prometheus computes it (`promql/quantile.go` `quantile`):
/// NaN for no values or NaN `q`, -Inf for `q < 0`, +Inf for `q > 1`; otherwise the values are
/// sorted (NaN sorts as the smallest value) and the result is interpolated linearly between the
/// two closest ranks (`rank = q * (n - 1)`). `values` is sorted in place.
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_cursor_finds_what_binary_search_finds() {
        let ts: Vec<i64> = (0..200).map(|i| i * 15 + (i % 7)).collect();
        let vs: Vec<f64> = ts.iter().map(|&t| t as f64).collect();
        let p = Points::new(&ts, &vs);
        for range in [1, 15, 300, 1000] {
            let mut cursor = WindowCursor::default();
            // Ascending steps, windows outside the data, then windows that jump back (restart).
            for end in (-100..3200).step_by(37).chain([500, 40, 5000, 2999, 3000]) {
                let w = Window { start: end - range, end };
                assert_eq!(cursor.window(&p, w), p.window(w), "window {w:?}");
            }
        }
    }

    fn close(a: f64, b: f64) -> bool {
        a == b || (a - b).abs() <= 1e-9 * b.abs().max(a.abs())
    }

    // aggregators.test "Tests for quantile": quantile without(point)(0.8 / 0.2, data).
    #[test]
    fn quantile_matches_aggregators_test() {
        let cases: [(&[f64], f64, f64); 8] = [
            (&[0.0, 1.0], 0.8, 0.8),
            (&[0.0, 1.0, 2.0], 0.8, 1.6),
            (&[0.0, 1.0, 4.0], 0.8, 2.8),
            (&[0.0, 1.0, f64::NAN], 0.8, 0.6),
            (&[0.0, 1.0], 0.2, 0.2),
            (&[0.0, 1.0, 2.0], 0.2, 0.4),
            (&[0.0, 1.0, 4.0], 0.2, 0.4),
            (&[1.0, 0.0, 4.0], 1.0, 4.0),
        ];
        for (vals, q, want) in cases {
            let mut v = vals.to_vec();
            assert!(close(quantile(q, &mut v), want), "q={q} {vals:?}");
        }
        // "A quantile between NaN and 0 is interpolated as NaN."
        assert!(quantile(0.2, &mut [0.0, 1.0, f64::NAN]).is_nan());
        assert!(quantile(f64::NAN, &mut [0.0, 1.0]).is_nan());
        assert_eq!(quantile(-1.0, &mut [0.0, 1.0]), f64::NEG_INFINITY);
        assert_eq!(quantile(2.0, &mut [0.0, 1.0]), f64::INFINITY);
        assert!(quantile(0.5, &mut []).is_nan());
    }

    #[test]
    fn kahan_keeps_small_terms() {
        // functions.test "Test if very big intermediate values cause loss of detail".
        let (mut s, mut c) = (0.0, 0.0);
        for v in [1.0, 1e100, 1.0, -1e100] {
            (s, c) = kahan_inc(v, s, c);
        }
        assert_eq!(s + c, 2.0);
    }
}
