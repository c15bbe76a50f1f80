//! PromQL with Prometheus 3.x semantics over any [`SeriesSource`](crate::SeriesSource).
//!
//! ```text
//!  query text ──promql-parser──► AST ──eval──► selectors: SeriesSource::select (matchers + time range)
//!                                        └───► operators/functions over per-series sample vectors
//! ```
//!
//! Entry point: [`Engine`] with [`Engine::instant`] and [`Engine::range`], returning a
//! [`Value`]. Errors are [`PromqlError`]s that map to Prometheus's API `errorType`s.

mod aggregate;
mod binary;
mod call;
mod eval;
pub mod functions;
mod memo;
mod quote;
mod selector;
mod subquery;
mod value;
mod vector_fn;

pub use quote::parse;
pub use value::{PromqlError, QueryOptions, Sample, Series, Value};

use crate::SeriesSource;
use crate::source::Warnings;
use eval::{Evaluator, Steps, Val, cmp_labels, drop_metric_name, finish_vector};
use memo::PerSeries;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{AggregateExpr, Expr};
use std::collections::HashMap;
use std::time::Instant;

/// Prometheus's default subquery resolution when a subquery gives no step (its global
/// evaluation interval; promqltest uses 1m).
const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// Evaluates PromQL queries.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: QueryOptions,
    subquery_step_ms: Option<i64>,
    warnings: Warnings,
}

impl Engine {
    /// An engine with these limits and defaults.
    pub fn new(opts: QueryOptions) -> Self {
        Engine { opts, subquery_step_ms: None, warnings: Warnings::default() }
    }

    /// Sets the step of subqueries written without one (`x[5m:]`); default 1m.
    pub fn with_default_subquery_step(mut self, step_ms: i64) -> Self {
        self.subquery_step_ms = Some(step_ms);
        self
    }

    /// Collects the sources' warnings (see [`SelectRequest::warnings`](crate::SelectRequest))
    /// into `warnings`; the API answers them beside the result.
    pub fn with_warnings(mut self, warnings: Warnings) -> Self {
        self.warnings = warnings;
        self
    }

    /// The engine's options.
    pub fn options(&self) -> &QueryOptions {
        &self.opts
    }

    /// Evaluates `query` at `time_ms`: a scalar, string or instant vector (Prometheus's
    /// `/api/v1/query`; a range-vector query returns a matrix).
    pub async fn instant(
        &self,
        source: &dyn SeriesSource,
        query: &str,
        time_ms: i64,
    ) -> Result<Value, PromqlError> {
        let expr = parse_bad_data(query)?;
        let steps = Steps { start: time_ms, end: time_ms, step: 1 };
        let val = self.exec(source, &expr, steps).await?;
        Ok(match val {
            Val::Scalar(v) => Value::Scalar { t: time_ms, v: v.first().copied().unwrap_or(f64::NAN) },
            Val::String(s) => Value::String { t: time_ms, s },
            Val::Vector(steps) => {
                let v =
                    finish_vector(steps.into_iter().next().unwrap_or_default(), &mut PerSeries::default())?;
                let mut out: Vec<Sample> =
                    v.into_iter().map(|e| Sample { labels: e.labels, t: time_ms, v: e.v }).collect();
                if !keeps_order(&expr) {
                    out.sort_by(|a, b| cmp_labels(&a.labels, &b.labels));
                }
                Value::Vector(out)
            }
            Val::Matrix(series) => {
                let mut out: Vec<Series> = series
                    .into_iter()
                    .map(|s| Series {
                        points: s.ts.iter().copied().zip(s.vs.iter().copied()).collect(),
                        labels: if s.drop_name { drop_metric_name(&s.labels) } else { s.labels },
                    })
                    .collect();
                check_unique_series(&out)?;
                out.sort_by(|a, b| cmp_labels(&a.labels, &b.labels));
                Value::Matrix(out)
            }
        })
    }

    /// Evaluates `query` at every step from `start_ms` to `end_ms` inclusive: a matrix
    /// (Prometheus's `/api/v1/query_range`).
    pub async fn range(
        &self,
        source: &dyn SeriesSource,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, PromqlError> {
        if step_ms <= 0 {
            return Err(PromqlError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
                    .into(),
            ));
        }
        if end_ms < start_ms {
            return Err(PromqlError::BadData("end timestamp must not be before start time".into()));
        }
        let expr = parse_bad_data(query)?;
        match expr.value_type() {
            ValueType::Scalar | ValueType::Vector => {}
            ValueType::Matrix => {
                return Err(PromqlError::BadData(
                    "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
                ));
            }
            ValueType::String => {
                return Err(PromqlError::BadData(
                    "invalid expression type \"string\" for range query, must be Scalar or instant Vector"
                        .into(),
                ));
            }
        }
        let steps = Steps { start: start_ms, end: end_ms, step: step_ms };
        let val = self.exec(source, &expr, steps).await?;
        let mut out: Vec<Series> = match val {
            Val::Scalar(v) => vec![Series {
                labels: crate::Labels::default(),
                points: v.into_iter().enumerate().map(|(i, v)| (steps.at(i), v)).collect(),
            }],
            Val::Vector(vs) => {
                // Output series by label set: looked up by the shared label set's address
                // first, by value only for a label set not seen before.
                let mut names = PerSeries::default();
                let mut by_id: PerSeries<usize> = PerSeries::default();
                let mut index: HashMap<crate::Labels, usize> = HashMap::new();
                let mut series: Vec<Series> = Vec::new();
                for (i, step) in vs.into_iter().enumerate() {
                    let t = steps.at(i);
                    for e in finish_vector(step, &mut names)? {
                        let idx = by_id.get_or(&e.labels, |l| {
                            *index.entry(l.clone()).or_insert_with(|| {
                                series.push(Series { labels: l.clone(), points: Vec::new() });
                                series.len() - 1
                            })
                        });
                        series[idx].points.push((t, e.v));
                    }
                }
                check_unique_series(&series)?;
                series
            }
            other => {
                return Err(PromqlError::BadData(format!(
                    "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                    other.type_name()
                )));
            }
        };
        out.sort_by(|a, b| cmp_labels(&a.labels, &b.labels));
        Ok(Value::Matrix(out))
    }

    /// Fetches every selector's data once, then evaluates over the steps.
    async fn exec(&self, source: &dyn SeriesSource, expr: &Expr, steps: Steps) -> Result<Val, PromqlError> {
        let started = Instant::now();
        let deadline = started + self.opts.timeout;
        let mut plans = Vec::new();
        selector::plan(
            expr,
            steps.start,
            steps.end,
            (steps.start, steps.end),
            self.opts.lookback_delta_ms,
            &mut plans,
        )?;
        let data =
            selector::fetch(source, plans, deadline, &self.warnings, self.opts.max_resolution_ms).await?;
        let ev = Evaluator {
            opts: &self.opts,
            query_start: steps.start,
            query_end: steps.end,
            // An instant query (one step of 1 ms) has no step, as in Prometheus.
            query_step: if steps.start == steps.end && steps.step == 1 { 0 } else { steps.step },
            subquery_step: self.subquery_step_ms.filter(|&s| s > 0).unwrap_or(DEFAULT_SUBQUERY_STEP_MS),
            data,
            deadline,
            samples: std::cell::Cell::new(0),
        };
        ev.eval(expr, steps)
    }
}

/// Parses a query; parse errors are `bad_data`.
fn parse_bad_data(query: &str) -> Result<Expr, PromqlError> {
    parse(query).map_err(PromqlError::BadData)
}

/// Is the top-level expression one whose instant result order is meaningful?
fn keeps_order(e: &Expr) -> bool {
    match e {
        Expr::Paren(p) => keeps_order(&p.expr),
        Expr::Call(c) => matches!(c.func.name, "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc"),
        Expr::Aggregate(AggregateExpr { op, .. }) => {
            use promql_parser::parser::token::{T_BOTTOMK, T_TOPK};
            matches!(op.id(), T_TOPK | T_BOTTOMK)
        }
        _ => false,
    }
}

fn check_unique_series(series: &[Series]) -> Result<(), PromqlError> {
    let mut seen = std::collections::HashSet::with_capacity(series.len());
    for s in series {
        if !seen.insert(&s.labels) {
            return Err(PromqlError::Execution(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
