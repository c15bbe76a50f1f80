//! Downsampling as Thanos does it (reference/thanos.md §6): raw samples → 5m windows, 5m
//! windows → 1h windows, with the aggregates count, sum, min, max and the reset-adjusted
//! counter. Windows are aligned to the epoch; a window is stamped with its end
//! (`t - t % res + res - 1`), the series' last window with its last input timestamp.
//!
//! Kept from Thanos on purpose: stale markers are skipped; `min`/`max` start at ±f64::MAX and
//! ignore NaNs (a window of NaNs only keeps the start values); the counter starts at the first
//! value and adds `v - last`, or `v` when `v < last` (a reset). Deviation: the counter framing
//! records the first and last non-stale raw samples (Thanos stores the raw ones as they are).

use crate::parquet::AggrSeries;

/// Prometheus's staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The end of the window of size `res` holding `t`.
pub fn window_end(t: i64, res: i64) -> i64 {
    t - t.rem_euclid(res) + res - 1
}

/// Thanos's aggregator: per-window count/sum/min/max, a running counter over all windows.
#[derive(Debug, Clone, Copy)]
struct Aggregator {
    total: u64,
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    counter: f64,
    last: f64,
}

impl Aggregator {
    fn new() -> Self {
        let mut a = Aggregator { total: 0, count: 0, sum: 0.0, min: 0.0, max: 0.0, counter: 0.0, last: 0.0 };
        a.reset();
        a
    }

    fn reset(&mut self) {
        self.count = 0;
        self.sum = 0.0;
        self.min = f64::MAX;
        self.max = -f64::MAX;
    }

    fn add_counter(&mut self, v: f64) {
        if self.total > 0 {
            if v < self.last {
                self.counter += v;
            } else {
                self.counter += v - self.last;
            }
        } else {
            self.counter = v;
        }
        self.last = v;
        self.total += 1;
    }

    fn add(&mut self, v: f64) {
        self.add_counter(v);
        self.sum += v;
        self.count += 1;
        if v < self.min {
            self.min = v;
        }
        if v > self.max {
            self.max = v;
        }
    }
}

/// Walks `ts` (time-ordered) in windows of `res`, calling `each(i)` per sample and `emit(t)` at
/// each window's end; the last window is stamped with the last timestamp.
fn windows(
    ts: &[i64],
    res: i64,
    mut each: impl FnMut(usize),
    mut emit: impl FnMut(i64),
    skip: impl Fn(usize) -> bool,
) {
    let Some(&last_t) = ts.last() else { return };
    let mut next_t: Option<i64> = None;
    for (i, &t) in ts.iter().enumerate() {
        if skip(i) {
            continue;
        }
        if next_t.is_none_or(|n| t > n) {
            if let Some(n) = next_t {
                emit(n);
            }
            next_t = Some(window_end(t, res).min(last_t));
        }
        each(i);
    }
    if let Some(n) = next_t {
        emit(n);
    }
}

/// Downsamples raw samples (time-ordered) into windows of `res`. `None` when nothing but
/// staleness markers is left.
pub fn downsample_raw(ts: &[i64], vals: &[f64], res: i64) -> Option<AggrSeries> {
    let n = ts.len().min(vals.len());
    let (ts, vals) = (&ts[..n], &vals[..n]);
    let stale = |i: usize| vals[i].to_bits() == STALE_NAN_BITS;
    let first = (0..n).find(|&i| !stale(i))?;
    let mut out = AggrSeries { first_time: ts[first], first_value: vals[first], ..Default::default() };
    let agg = std::cell::Cell::new(Aggregator::new());
    let rows = std::cell::RefCell::new(Vec::new());
    windows(
        ts,
        res,
        |i| {
            let mut a = agg.get();
            a.add(vals[i]);
            agg.set(a);
        },
        |t| {
            let mut a = agg.get();
            rows.borrow_mut().push((t, a.count, a.sum, a.min, a.max, a.counter));
            a.reset();
            agg.set(a);
        },
        stale,
    );
    for (t, c, s, mi, ma, co) in rows.into_inner() {
        out.push(t, c, s, mi, ma, co);
    }
    out.last_value = agg.get().last;
    Some(out)
}

/// Downsamples a downsampled series into coarser windows of `res`: count and sum add up, min
/// and max of the mins and maxes, the counter re-aggregated from the first raw value and the
/// running counter (already free of resets).
pub fn downsample_aggr(s: &AggrSeries, res: i64) -> Option<AggrSeries> {
    if s.is_empty() || !s.is_consistent() {
        return None;
    }
    let mut out = AggrSeries {
        first_time: s.first_time,
        first_value: s.first_value,
        last_value: s.last_value,
        ..Default::default()
    };
    // count/sum/min/max per window.
    let cell = std::cell::Cell::new((0i64, 0.0f64, f64::MAX, -f64::MAX));
    let rows = std::cell::RefCell::new(Vec::new());
    windows(
        &s.ts,
        res,
        |i| {
            let (c, su, mi, ma) = cell.get();
            let (mi, ma) =
                (if s.min[i] < mi { s.min[i] } else { mi }, if s.max[i] > ma { s.max[i] } else { ma });
            cell.set((c + s.count[i], su + s.sum[i], mi, ma));
        },
        |t| {
            let (c, su, mi, ma) = cell.get();
            rows.borrow_mut().push((t, c, su, mi, ma));
            cell.set((0, 0.0, f64::MAX, -f64::MAX));
        },
        |_| false,
    );
    // counter: the first raw sample, then the running counter values.
    let mut cts = Vec::with_capacity(s.len() + 1);
    let mut cvals = Vec::with_capacity(s.len() + 1);
    if s.first_time <= s.ts[0] {
        cts.push(s.first_time);
        cvals.push(s.first_value);
    }
    cts.extend_from_slice(&s.ts);
    cvals.extend_from_slice(&s.counter);
    let agg = std::cell::Cell::new(Aggregator::new());
    let counters = std::cell::RefCell::new(Vec::new());
    windows(
        &cts,
        res,
        |i| {
            let mut a = agg.get();
            a.add_counter(cvals[i]);
            agg.set(a);
        },
        |t| counters.borrow_mut().push((t, agg.get().counter)),
        |_| false,
    );
    let counters = counters.into_inner();
    for (k, (t, c, su, mi, ma)) in rows.into_inner().into_iter().enumerate() {
        // Same windows as the other aggregates: the first raw sample shares the first row's.
        let co = counters.get(k).map(|x| x.1).unwrap_or(f64::NAN);
        out.push(t, c, su, mi, ma, co);
    }
    Some(out)
}
