//! The step-wise evaluation core: intermediate values, the [`Evaluator`] that walks the AST
//! over a range of evaluation steps, and label helpers shared by the operator families.
//!
//! Every expression is evaluated over all steps of a [`Steps`] range at once and yields a
//! [`Val`]: a scalar or an instant vector per step, a matrix (only at a single step, for
//! instant queries of range vectors) or a string. Selector data is fetched before evaluation
//! (see `selector.rs`), so evaluation itself is synchronous.

use super::functions::{Points, Window};
use super::memo::PerSeries;
use super::selector::SeriesData;
use super::value::{PromqlError, QueryOptions};
use crate::Labels;
use crate::labels::METRIC_NAME;
use arrow::buffer::ScalarBuffer;
use promql_parser::parser::{AtModifier, Expr, Offset};
use rustc_hash::FxHashSet;
use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::{Instant, SystemTime};

/// One element of an instant vector at one step. `t` is the evaluation time, except straight
/// out of a vector selector where it is the sample's own timestamp (for `timestamp()`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Elem {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
    /// Prometheus 3's delayed `__name__` removal: drop the name when the query finishes.
    pub drop_name: bool,
}

/// One series of a range vector, its samples as Arrow columns (for a matrix selector, slices of
/// the scanned batches' buffers).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MSeries {
    pub labels: Labels,
    pub drop_name: bool,
    pub ts: ScalarBuffer<i64>,
    pub vs: ScalarBuffer<f64>,
}

impl Default for MSeries {
    fn default() -> Self {
        MSeries { labels: Labels::default(), drop_name: false, ts: Vec::new().into(), vs: Vec::new().into() }
    }
}

impl MSeries {
    /// All samples.
    pub(crate) fn points(&self) -> Points<'_> {
        Points::new(&self.ts, &self.vs)
    }

    /// The samples inside the window.
    pub(crate) fn window(&self, w: Window) -> Points<'_> {
        self.points().window(w)
    }
}

/// An intermediate value over all steps.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Scalar(Vec<f64>),
    Vector(Vec<Vec<Elem>>),
    Matrix(Vec<MSeries>),
    String(String),
}

impl Val {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
            Val::String(_) => "string",
        }
    }
}

/// Maps every element of a per-step vector to zero or one element, given the step's time.
pub(crate) fn map_elems(
    v: Vec<Vec<Elem>>,
    s: &Steps,
    f: impl Fn(i64, Elem) -> Option<Elem>,
) -> Vec<Vec<Elem>> {
    v.into_iter()
        .enumerate()
        .map(|(i, step)| {
            let t = s.at(i);
            step.into_iter().filter_map(|e| f(t, e)).collect()
        })
        .collect()
}

/// Evaluation steps: `start..=end` every `step` ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Steps {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Steps {
    pub(crate) fn len(&self) -> usize {
        if self.end < self.start || self.step <= 0 {
            return 1;
        }
        ((self.end - self.start) / self.step) as usize + 1
    }

    pub(crate) fn at(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    pub(crate) fn times(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|i| self.at(i))
    }
}

/// Series x steps from which an evaluation is spread over threads.
pub(crate) const PARALLEL_MIN_POINTS: usize = 16 * 1024;

/// Builds an instant vector per step with `f`, which fills the steps of one contiguous run.
/// Runs are evaluated in parallel when `work` (series x steps) is large (see
/// [`par_step_items`]).
pub(crate) fn per_step_runs(
    s: Steps,
    work: usize,
    deadline: Instant,
    f: impl Fn(Steps) -> Vec<Vec<Elem>> + Sync,
) -> Res<Vec<Vec<Elem>>> {
    par_step_items(s.times().collect(), work, deadline, |_, times: Vec<i64>| {
        let (Some(&start), Some(&end)) = (times.first(), times.last()) else { return Ok(Vec::new()) };
        Ok(f(Steps { start, end, step: s.step }))
    })
}

/// Maps the per-step items of `input` with `f`, which takes a run of consecutive steps (the
/// index of its first step, its items) and returns one result per step. Runs are evaluated in
/// parallel when `work` is large; the results keep step order and the first error (in step
/// order) is returned. Operators keep their per-series memos per run.
pub(crate) fn par_step_items<T: Send, U: Send>(
    input: Vec<T>,
    work: usize,
    deadline: Instant,
    f: impl Fn(usize, Vec<T>) -> Res<Vec<U>> + Sync,
) -> Res<Vec<U>> {
    use rayon::prelude::*;
    let run = |first: usize, items: Vec<T>| -> Res<Vec<U>> {
        if Instant::now() > deadline {
            return Err(PromqlError::Timeout("expression evaluation".into()));
        }
        f(first, items)
    };
    if work < PARALLEL_MIN_POINTS || input.len() < 2 {
        return run(0, input);
    }
    let size = input.len().div_ceil(rayon::current_num_threads() * 4).max(1);
    let mut runs: Vec<(usize, Vec<T>)> = Vec::new();
    for (i, item) in input.into_iter().enumerate() {
        if i % size == 0 {
            runs.push((i, Vec::with_capacity(size)));
        }
        if let Some(r) = runs.last_mut() {
            r.1.push(item);
        }
    }
    let parts: Vec<Res<Vec<U>>> = runs.into_par_iter().map(|(first, items)| run(first, items)).collect();
    let mut out = Vec::new();
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// Walks the AST over steps with prefetched selector data.
#[derive(Debug)]
pub(crate) struct Evaluator<'a> {
    pub opts: &'a QueryOptions,
    pub query_start: i64,
    pub query_end: i64,
    /// The query's step (ms); 0 for an instant query.
    pub query_step: i64,
    pub subquery_step: i64,
    pub data: HashMap<usize, Vec<SeriesData>>,
    pub deadline: Instant,
    pub samples: Cell<usize>,
}

pub(crate) type Res<T> = Result<T, PromqlError>;

impl Evaluator<'_> {
    /// Errors when the deadline passed.
    pub(crate) fn check_timeout(&self) -> Res<()> {
        if Instant::now() > self.deadline {
            return Err(PromqlError::Timeout("expression evaluation".into()));
        }
        Ok(())
    }

    /// Accounts for `n` samples loaded; errors past `max_samples`.
    pub(crate) fn add_samples(&self, n: usize) -> Res<()> {
        let total = self.samples.get().saturating_add(n);
        self.samples.set(total);
        if total > self.opts.max_samples {
            return Err(PromqlError::TooManySamples("query execution".into()));
        }
        Ok(())
    }

    /// The timestamp an `@` modifier pins evaluation to.
    pub(crate) fn at_time(&self, at: &Option<AtModifier>) -> Option<i64> {
        at.as_ref().map(|a| resolve_at(a, self.query_start, self.query_end))
    }

    /// Evaluates `e` at every step of `s`.
    pub(crate) fn eval(&self, e: &Expr, s: Steps) -> Res<Val> {
        self.check_timeout()?;
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; s.len()])),
            Expr::StringLiteral(l) => Ok(Val::String(l.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, s),
            Expr::Unary(u) => match self.eval(&u.expr, s)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|x| -x).collect())),
                Val::Vector(steps) => Ok(Val::Vector(
                    steps
                        .into_iter()
                        .map(|vec| vec.into_iter().map(|e| Elem { v: -e.v, drop_name: true, ..e }).collect())
                        .collect(),
                )),
                other => Err(PromqlError::BadData(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {:?}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => self.eval_vector_selector(vs, s),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                if s.len() != 1 {
                    return Err(PromqlError::BadData(
                        "range vectors can only be evaluated at a single step".into(),
                    ));
                }
                let arg = self.eval_range_arg(e, s)?;
                let w = arg.window(s.start);
                let mut out = Vec::new();
                for ser in &arg.series {
                    let r = ser.points().range_in(w);
                    if !r.is_empty() {
                        out.push(MSeries {
                            labels: ser.labels.clone(),
                            drop_name: ser.drop_name,
                            ts: ser.ts.slice(r.start, r.len()),
                            vs: ser.vs.slice(r.start, r.len()),
                        });
                    }
                }
                Ok(Val::Matrix(out))
            }
            Expr::Binary(b) => self.eval_binary(b, s),
            Expr::Aggregate(a) => self.eval_aggregate(a, s),
            Expr::Call(c) => self.eval_call(c, s),
            Expr::Extension(x) => {
                Err(PromqlError::BadData(format!("unsupported expression extension {:?}", x.expr.name())))
            }
        }
    }

    /// Evaluates `e`, which must be a scalar.
    pub(crate) fn eval_scalar(&self, e: &Expr, s: Steps) -> Res<Vec<f64>> {
        match self.eval(e, s)? {
            Val::Scalar(v) => Ok(v),
            other => Err(PromqlError::BadData(format!("expected type scalar, got {}", other.type_name()))),
        }
    }

    /// Evaluates `e`, which must be an instant vector.
    pub(crate) fn eval_vector(&self, e: &Expr, s: Steps) -> Res<Vec<Vec<Elem>>> {
        match self.eval(e, s)? {
            Val::Vector(v) => Ok(v),
            other => {
                Err(PromqlError::BadData(format!("expected type instant vector, got {}", other.type_name())))
            }
        }
    }

    /// Evaluates `e`, which must be a string.
    pub(crate) fn eval_string(&self, e: &Expr, s: Steps) -> Res<String> {
        match self.eval(e, s)? {
            Val::String(v) => Ok(v),
            other => Err(PromqlError::BadData(format!("expected type string, got {}", other.type_name()))),
        }
    }
}

/// A range-vector argument: whole series over every window needed, plus how a step's window
/// is placed (range, offset, `@`).
#[derive(Debug, Clone)]
pub(crate) struct RangeArg {
    pub series: Vec<MSeries>,
    pub range_ms: i64,
    pub offset_ms: i64,
    pub at: Option<i64>,
}

impl RangeArg {
    /// The window `(end - range, end]` seen at evaluation time `t`.
    pub(crate) fn window(&self, t: i64) -> Window {
        let end = self.at.unwrap_or(t) - self.offset_ms;
        Window { start: end - self.range_ms, end }
    }
}

/// Milliseconds of an `@` modifier.
pub(crate) fn resolve_at(a: &AtModifier, start: i64, end: i64) -> i64 {
    match a {
        AtModifier::Start => start,
        AtModifier::End => end,
        AtModifier::At(t) => system_time_ms(*t),
    }
}

/// Milliseconds since the epoch (negative before it).
pub(crate) fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Signed milliseconds of an offset.
pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

/// The label set with `names` removed.
pub(crate) fn labels_without(l: &Labels, names: &[&str]) -> Labels {
    Labels::from_pairs(
        l.iter().filter(|x| !names.contains(&x.name.as_str())).map(|x| (x.name.clone(), x.value.clone())),
    )
}

/// The label set restricted to `names`.
pub(crate) fn labels_only(l: &Labels, names: &[&str]) -> Labels {
    Labels::from_pairs(
        l.iter().filter(|x| names.contains(&x.name.as_str())).map(|x| (x.name.clone(), x.value.clone())),
    )
}

/// The label set with `name` set to `value` (removed when empty).
pub(crate) fn labels_with(l: &Labels, name: &str, value: &str) -> Labels {
    Labels::from_pairs(
        l.iter().map(|x| (x.name.clone(), x.value.clone())).chain([(name.to_string(), value.to_string())]),
    )
}

/// The label set without `__name__`.
pub(crate) fn drop_metric_name(l: &Labels) -> Labels {
    if l.metric_name().is_none() { l.clone() } else { labels_without(l, &[METRIC_NAME]) }
}

/// Prometheus's label-set order: pairwise by name, then value.
pub(crate) fn cmp_labels(a: &Labels, b: &Labels) -> Ordering {
    a.iter().map(|l| (&l.name, &l.value)).cmp(b.iter().map(|l| (&l.name, &l.value)))
}

/// Drops the names marked for removal; errors when two elements then share a label set.
/// `names` remembers each series' label set without its name across the steps of a query.
pub(crate) fn finish_vector(v: Vec<Elem>, names: &mut PerSeries<Labels>) -> Res<Vec<Elem>> {
    let out: Vec<Elem> = v
        .into_iter()
        .map(|e| {
            if e.drop_name {
                Elem { labels: names.get_or(&e.labels, drop_metric_name), drop_name: false, ..e }
            } else {
                e
            }
        })
        .collect();
    check_unique(&out)?;
    Ok(out)
}

/// Errors when two elements share a label set.
pub(crate) fn check_unique(v: &[Elem]) -> Res<()> {
    if v.len() < 2 {
        return Ok(());
    }
    let mut seen = FxHashSet::with_capacity_and_hasher(v.len(), Default::default());
    for e in v {
        if !seen.insert(&e.labels) {
            return Err(PromqlError::Execution(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
    }
    Ok(())
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}
