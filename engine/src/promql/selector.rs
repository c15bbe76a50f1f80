//! Selectors: planning which data each selector needs over the whole query, fetching it once
//! from the [`SeriesSource`], and evaluating instant-vector selectors (lookback, staleness,
//! offset, `@`) and matrix selectors (left-open windows, staleness markers dropped).

use super::eval::{Elem, Evaluator, MSeries, RangeArg, Res, Steps, Val, offset_ms, resolve_at};
use super::value::PromqlError;
use crate::source::{SelectHints, SelectRequest, Warnings};
use crate::{Labels, MatchOp, Matcher, SeriesSource};
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

/// One fetched series.
#[derive(Debug, Clone)]
pub(crate) struct SeriesData {
    pub labels: Labels,
    pub ts: Vec<i64>,
    pub vs: Vec<f64>,
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
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut series: Vec<SeriesData> = Vec::new();
        while let Some(batch) = stream.next().await {
            if std::time::Instant::now() > deadline {
                return Err(timed_out());
            }
            for (labels, ts, vs) in batch?.to_series() {
                match index.get(&labels) {
                    Some(&i) => {
                        let s = &mut series[i];
                        let in_order = matches!((s.ts.last(), ts.first()), (Some(a), Some(b)) if a < b);
                        s.ts.extend(ts);
                        s.vs.extend(vs);
                        if in_order {
                            continue;
                        }
                        let mut pts: Vec<(i64, f64)> =
                            s.ts.iter().copied().zip(s.vs.iter().copied()).collect();
                        pts.sort_by_key(|p| p.0);
                        pts.dedup_by_key(|p| p.0);
                        (s.ts, s.vs) = pts.into_iter().unzip();
                    }
                    None => {
                        index.insert(labels.clone(), series.len());
                        series.push(SeriesData { labels, ts, vs });
                    }
                }
            }
        }
        out.insert(p.key, series);
    }
    Ok(out)
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
        let mut out: Vec<Vec<Elem>> = vec![Vec::new(); s.len()];
        for (i, t) in s.times().enumerate() {
            if i % 64 == 0 {
                self.check_timeout()?;
            }
            let ref_t = at.unwrap_or(t) - off;
            let step = &mut out[i];
            for ser in series {
                let n = ser.ts.partition_point(|&x| x <= ref_t);
                if n == 0 {
                    continue;
                }
                let (st, sv) = (ser.ts[n - 1], ser.vs[n - 1]);
                if st <= ref_t - lookback || is_stale(sv) {
                    continue;
                }
                step.push(Elem { labels: ser.labels.clone(), t: st, v: sv, drop_name: false });
            }
            self.add_samples(step.len())?;
        }
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
                    let points: Vec<(i64, f64)> = ser
                        .ts
                        .iter()
                        .copied()
                        .zip(ser.vs.iter().copied())
                        .filter(|p| !is_stale(p.1))
                        .collect();
                    n += points.len();
                    if !points.is_empty() {
                        out.push(MSeries { labels: ser.labels.clone(), drop_name: false, points });
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
