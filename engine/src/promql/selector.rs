//! Selectors: planning which data each selector needs over the whole query, fetching it once
//! from the [`SeriesSource`], and evaluating instant-vector selectors (lookback, staleness,
//! offset, `@`) and matrix selectors (left-open windows, staleness markers dropped).

use super::eval::{
    Elem, Evaluator, MSeries, RangeArg, Res, Steps, Val, offset_ms, per_step_runs, resolve_at,
};
use super::functions::advance;
use super::value::PromqlError;
use crate::source::{
    Part, SelectHints, SelectRequest, Warnings, group_parts, merge_overlapping, parts_in_order,
};
use crate::{Labels, MatchOp, Matcher, SeriesSource};
use arrow::buffer::ScalarBuffer;
use futures::StreamExt;
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{Expr, VectorSelector};
use std::collections::HashMap;

/// Prometheus's staleness marker.
pub(crate) const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Is `v` a staleness marker?
pub(crate) fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One fetched series: its samples as Arrow buffers, time-ordered. A series that arrives in one
/// batch (the common case) keeps zero-copy slices of that batch's `timestamp` and `value` columns.
#[derive(Debug, Clone)]
pub(crate) struct SeriesData {
    pub labels: Labels,
    pub ts: ScalarBuffer<i64>,
    pub vs: ScalarBuffer<f64>,
}

/// A series' timestamp and value columns.
type Columns = Part;

/// Column slices of one series gathered from a source's batches.
type Parts = Vec<Columns>;

/// Joins a series' parts: one part is kept as it is; parts in time order are concatenated;
/// otherwise samples are sorted by time and, of equal timestamps, the first one seen is kept.
fn join_parts(mut parts: Parts) -> Columns {
    if parts.len() == 1 {
        return parts.swap_remove(0);
    }
    if parts_in_order(&parts) {
        let ts: Vec<i64> = parts.iter().flat_map(|p| p.0.iter().copied()).collect();
        let vs: Vec<f64> = parts.iter().flat_map(|p| p.1.iter().copied()).collect();
        return (ts.into(), vs.into());
    }
    let (ts, vs) = merge_overlapping(&parts);
    (ts.into(), vs.into())
}

/// A selector's fetch: its key (node address), matchers and time range.
#[derive(Debug)]
pub(crate) struct Fetch {
    pub key: usize,
    pub matchers: Vec<Matcher>,
    pub min_time: i64,
    pub max_time: i64,
    pub hints: SelectHints,
}

/// The key under which a selector's data is stored.
pub(crate) fn selector_key(vs: &VectorSelector) -> usize {
    std::ptr::from_ref(vs) as usize
}

/// Our matchers for a parsed selector (the metric name becomes a `__name__` matcher).
pub(crate) fn matchers_of(vs: &VectorSelector) -> Res<Vec<Matcher>> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(PromqlError::BadData("`or` in label matchers is not supported".into()));
    }
    let mut out = Vec::new();
    if let Some(name) = &vs.name {
        out.push(Matcher::equal(crate::labels::METRIC_NAME, name.clone()));
    }
    for m in &vs.matchers.matchers {
        let op = match m.op {
            PMatchOp::Equal => MatchOp::Equal,
            PMatchOp::NotEqual => MatchOp::NotEqual,
            PMatchOp::Re(_) => MatchOp::Regex,
            PMatchOp::NotRe(_) => MatchOp::NotRegex,
        };
        out.push(
            Matcher::new(op, m.name.clone(), m.value.clone())
                .map_err(|e| PromqlError::BadData(e.to_string()))?,
        );
    }
    Ok(out)
}

/// Plans the fetches of every selector under `e`, whose evaluation times lie in `[lo, hi]`.
pub(crate) fn plan(
    e: &Expr,
    lo: i64,
    hi: i64,
    q: (i64, i64),
    lookback: i64,
    out: &mut Vec<Fetch>,
) -> Res<()> {
    let add = |out: &mut Vec<Fetch>, vs: &VectorSelector, range: i64, func: Option<&str>| -> Res<()> {
        let (l, h) = match &vs.at {
            Some(a) => {
                let t = resolve_at(a, q.0, q.1);
                (t, t)
            }
            None => (lo, hi),
        };
        let off = offset_ms(&vs.offset);
        let back = if range > 0 { range } else { lookback };
        out.push(Fetch {
            key: selector_key(vs),
            matchers: matchers_of(vs)?,
            min_time: l.saturating_sub(off).saturating_sub(back),
            max_time: h.saturating_sub(off),
            hints: SelectHints { func: func.map(str::to_string), range_ms: range, ..Default::default() },
        });
        Ok(())
    };
    match e {
        Expr::VectorSelector(vs) => add(out, vs, 0, None),
        Expr::MatrixSelector(ms) => add(out, &ms.vs, ms.range.as_millis() as i64, None),
        Expr::Subquery(sq) => {
            let (l, h) = match &sq.at {
                Some(a) => {
                    let t = resolve_at(a, q.0, q.1);
                    (t, t)
                }
                None => (lo, hi),
            };
            let off = offset_ms(&sq.offset);
            let range = sq.range.as_millis() as i64;
            plan(&sq.expr, l - off - range, h - off, q, lookback, out)
        }
        Expr::Paren(p) => plan(&p.expr, lo, hi, q, lookback, out),
        Expr::Unary(u) => plan(&u.expr, lo, hi, q, lookback, out),
        Expr::Binary(b) => {
            plan(&b.lhs, lo, hi, q, lookback, out)?;
            plan(&b.rhs, lo, hi, q, lookback, out)
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                plan(p, lo, hi, q, lookback, out)?;
            }
            plan(&a.expr, lo, hi, q, lookback, out)
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                match a.as_ref() {
                    Expr::MatrixSelector(ms) => {
                        add(out, &ms.vs, ms.range.as_millis() as i64, Some(c.func.name))?
                    }
                    Expr::VectorSelector(vs) => add(out, vs, 0, Some(c.func.name))?,
                    a => plan(a, lo, hi, q, lookback, out)?,
                }
            }
            Ok(())
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
    }
}

/// Runs the planned fetches against `source`.
pub(crate) async fn fetch(
    source: &dyn SeriesSource,
    plans: Vec<Fetch>,
    deadline: std::time::Instant,
    warnings: &Warnings,
    max_resolution_ms: i64,
) -> Res<HashMap<usize, Vec<SeriesData>>> {
    let timed_out = || PromqlError::Timeout("query preparation".into());
    let mut out = HashMap::new();
    for p in plans {
        let req = SelectRequest {
            matchers: p.matchers,
            min_time: p.min_time,
            max_time: p.max_time,
            hints: SelectHints { max_resolution_ms, ..p.hints },
            warnings: warnings.clone(),
        };
        if std::time::Instant::now() > deadline {
            return Err(timed_out());
        }
        let mut stream = source.select(&req).await?;
        let mut parts = Vec::new();
        while let Some(batch) = stream.next().await {
            if std::time::Instant::now() > deadline {
                return Err(timed_out());
            }
            parts.extend(batch?.parts().map_err(|e| PromqlError::Storage(e.to_string()))?);
        }
        let series = group_parts(parts);
        let series: Vec<SeriesData> = series
            .into_iter()
            .map(|(labels, parts)| {
                let (ts, vs) = join_parts(parts);
                SeriesData { labels, ts, vs }
            })
            .collect();
        out.insert(p.key, series);
    }
    Ok(out)
}

/// The instant vectors of the steps `run`: for each series, the latest sample at or before the
/// step's reference time `ref_t(t)` (non-decreasing in `t`) and after `ref_t - lookback`, unless
/// it is a staleness marker. Each series' timestamp column is walked once across the steps.
fn instant_samples(
    series: &[SeriesData],
    run: Steps,
    ref_t: impl Fn(i64) -> i64,
    lookback: i64,
) -> Vec<Vec<Elem>> {
    let mut out: Vec<Vec<Elem>> = (0..run.len()).map(|_| Vec::new()).collect();
    for ser in series {
        let ts: &[i64] = &ser.ts;
        let mut n = 0;
        for (step, t) in out.iter_mut().zip(run.times()) {
            let r = ref_t(t);
            n = advance(ts, n, r);
            if n == 0 {
                continue;
            }
            let (st, sv) = (ts[n - 1], ser.vs[n - 1]);
            if st > r - lookback && !is_stale(sv) {
                step.push(Elem { labels: ser.labels.clone(), t: st, v: sv, drop_name: false });
            }
        }
    }
    out
}

/// The series' samples without staleness markers (zero-copy when it has none).
fn without_stale(ser: &SeriesData) -> Columns {
    if !ser.vs.iter().any(|&v| is_stale(v)) {
        return (ser.ts.clone(), ser.vs.clone());
    }
    let keep: Vec<usize> = (0..ser.vs.len()).filter(|&i| !is_stale(ser.vs[i])).collect();
    (keep.iter().map(|&i| ser.ts[i]).collect(), keep.iter().map(|&i| ser.vs[i]).collect())
}

impl Evaluator<'_> {
    fn series_of(&self, vs: &VectorSelector) -> Res<&[SeriesData]> {
        self.data
            .get(&selector_key(vs))
            .map(Vec::as_slice)
            .ok_or_else(|| PromqlError::Execution(format!("selector {vs} was not planned")))
    }

    /// An instant-vector selector at every step: each series' latest sample in
    /// `(t - lookback, t]` unless it is a staleness marker. `Elem::t` is the sample's time.
    pub(crate) fn eval_vector_selector(&self, vs: &VectorSelector, s: Steps) -> Res<Val> {
        let series = self.series_of(vs)?;
        let at = self.at_time(&vs.at);
        let off = offset_ms(&vs.offset);
        let lookback = self.opts.lookback_delta_ms;
        let out = per_step_runs(s, series.len() * s.len(), self.deadline, |run| {
            instant_samples(series, run, |t| at.unwrap_or(t) - off, lookback)
        })?;
        self.add_samples(out.iter().map(Vec::len).sum())?;
        Ok(Val::Vector(out))
    }

    /// A range-vector argument (matrix selector or subquery) over the steps `s`.
    pub(crate) fn eval_range_arg(&self, e: &Expr, s: Steps) -> Res<RangeArg> {
        match e {
            Expr::Paren(p) => self.eval_range_arg(&p.expr, s),
            Expr::MatrixSelector(ms) => {
                let series = self.series_of(&ms.vs)?;
                let mut out = Vec::with_capacity(series.len());
                let mut n = 0;
                for ser in series {
                    let (ts, vs) = without_stale(ser);
                    n += ts.len();
                    if !ts.is_empty() {
                        out.push(MSeries { labels: ser.labels.clone(), drop_name: false, ts, vs });
                    }
                }
                self.add_samples(n)?;
                Ok(RangeArg {
                    series: out,
                    range_ms: ms.range.as_millis() as i64,
                    offset_ms: offset_ms(&ms.vs.offset),
                    at: self.at_time(&ms.vs.at),
                })
            }
            Expr::Subquery(sq) => self.eval_subquery(sq, s),
            other => Err(PromqlError::BadData(format!(
                "expected type range vector, got {}",
                match other.value_type() {
                    promql_parser::parser::value::ValueType::Vector => "instant vector",
                    promql_parser::parser::value::ValueType::Scalar => "scalar",
                    promql_parser::parser::value::ValueType::String => "string",
                    promql_parser::parser::value::ValueType::Matrix => "range vector",
                }
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(ts: &[i64], vs: &[f64]) -> Columns {
        (ts.to_vec().into(), vs.to_vec().into())
    }

    #[test]
    fn advance_counts_timestamps_at_or_before_t() {
        let ts: Vec<i64> = (0..100).map(|i| i * 10).collect();
        let mut n = 0;
        for t in [-5, 0, 5, 95, 95, 500, 989, 990, 2000] {
            n = advance(&ts, n, t);
            assert_eq!(n, ts.partition_point(|&x| x <= t), "t={t}");
        }
        assert_eq!(advance(&[], 0, 10), 0);
    }

    #[test]
    fn parts_join_in_time_order_and_keep_the_first_of_equal_timestamps() {
        let (ts, vs) = join_parts(vec![cols(&[1, 2], &[1.0, 2.0])]);
        assert_eq!((&ts[..], &vs[..]), (&[1, 2][..], &[1.0, 2.0][..]));
        let (ts, vs) = join_parts(vec![cols(&[1, 2], &[1.0, 2.0]), cols(&[3, 4], &[3.0, 4.0])]);
        assert_eq!((&ts[..], &vs[..]), (&[1, 2, 3, 4][..], &[1.0, 2.0, 3.0, 4.0][..]));
        let (ts, vs) = join_parts(vec![cols(&[2, 4], &[20.0, 40.0]), cols(&[1, 2, 3], &[1.0, 2.0, 3.0])]);
        assert_eq!((&ts[..], &vs[..]), (&[1, 2, 3, 4][..], &[1.0, 20.0, 3.0, 40.0][..]));
    }

    #[test]
    fn a_batch_splits_into_zero_copy_series_parts() {
        let a = Labels::from_pairs([("a", "1")]);
        let b = Labels::from_pairs([("a", "2")]);
        let batch = crate::SeriesBatch::from_series(vec![
            (a.clone(), vec![1, 2], vec![1.0, 2.0]),
            (b.clone(), vec![5], vec![5.0]),
        ])
        .expect("batch");
        let parts = batch.parts().expect("parts");
        assert_eq!(parts.len(), 2);
        assert_eq!((&parts[0].0, &parts[0].1.0[..]), (&a, &[1, 2][..]));
        assert_eq!((&parts[1].0, &parts[1].1.1[..]), (&b, &[5.0][..]));
        // Zero-copy: the parts are slices of the batch's buffers.
        let (_, ts, _) = batch.columns().expect("columns");
        assert_eq!(parts[0].1.0.as_ptr(), ts.values().as_ptr());
    }

    #[test]
    fn staleness_markers_leave_range_vectors() {
        let stale = f64::from_bits(STALE_NAN_BITS);
        let ser = SeriesData {
            labels: Labels::default(),
            ts: vec![1, 2, 3].into(),
            vs: vec![1.0, stale, f64::NAN].into(),
        };
        let (ts, vs) = without_stale(&ser);
        assert_eq!(&ts[..], &[1, 3]);
        assert_eq!(vs[0], 1.0);
        assert!(vs[1].is_nan() && !is_stale(vs[1]), "a plain NaN sample stays");
    }
}
