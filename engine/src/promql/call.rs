//! Function calls: dispatch by name to the pure functions in [`super::functions`] (range
//! functions over each series' window, element-wise math, date functions) and the evaluator's
//! own functions (`time`, `pi`, `scalar`, `vector`, `timestamp`, `absent*`, ...). Functions that
//! reorder or relabel vectors live in `vector_fn.rs`.

use super::eval::{Elem, Evaluator, PARALLEL_MIN_POINTS, Res, Steps, Val, map_elems};
use super::functions::{WindowCursor, math, range, time};
use super::value::PromqlError;
use crate::Labels;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Call, Expr};

/// Strips parentheses.
pub(crate) fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        other => other,
    }
}

impl Evaluator<'_> {
    /// Evaluates a function call over the steps.
    pub(crate) fn eval_call(&self, c: &Call, s: Steps) -> Res<Val> {
        let name = c.func.name;
        let args: Vec<&Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
        let arg = |i: usize| -> Res<&Expr> {
            args.get(i)
                .copied()
                .ok_or_else(|| PromqlError::BadData(format!("missing argument {} of function {name}", i + 1)))
        };
        match name {
            "time" => Ok(Val::Scalar(s.times().map(|t| t as f64 / 1000.0).collect())),
            "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; s.len()])),
            // The query's own parameters in seconds, the same at every step (experimental in
            // Prometheus 3).
            "start" | "end" | "range" | "step" => {
                let ms = match name {
                    "start" => self.query_start,
                    "end" => self.query_end,
                    "range" => self.query_end - self.query_start,
                    _ => self.query_step,
                };
                Ok(Val::Scalar(vec![ms as f64 / 1000.0; s.len()]))
            }
            "min_of" | "max_of" => {
                let (a, b) = (self.eval_scalar(arg(0)?, s)?, self.eval_scalar(arg(1)?, s)?);
                let pick = if name == "min_of" { math::go_min } else { math::go_max };
                Ok(Val::Scalar(a.into_iter().zip(b).map(|(a, b)| pick(a, b)).collect()))
            }
            "scalar" => {
                let v = self.eval_vector(arg(0)?, s)?;
                Ok(Val::Scalar(v.into_iter().map(|x| if x.len() == 1 { x[0].v } else { f64::NAN }).collect()))
            }
            "vector" => {
                let v = self.eval_scalar(arg(0)?, s)?;
                Ok(Val::Vector(
                    v.into_iter()
                        .enumerate()
                        .map(|(i, v)| {
                            vec![Elem { labels: Labels::default(), t: s.at(i), v, drop_name: false }]
                        })
                        .collect(),
                ))
            }
            "timestamp" => {
                let a = unparen(arg(0)?);
                let raw = matches!(a, Expr::VectorSelector(_));
                let v = self.eval_vector(a, s)?;
                Ok(Val::Vector(map_elems(v, &s, |t, e| {
                    Some(Elem {
                        v: if raw { e.t } else { t } as f64 / 1000.0,
                        t,
                        labels: e.labels,
                        drop_name: true,
                    })
                })))
            }
            "absent" => {
                let a = arg(0)?;
                let v = self.eval_vector(a, s)?;
                let labels = absent_labels(a);
                Ok(Val::Vector(
                    v.into_iter()
                        .enumerate()
                        .map(|(i, step)| {
                            if step.is_empty() {
                                vec![Elem { labels: labels.clone(), t: s.at(i), v: 1.0, drop_name: false }]
                            } else {
                                Vec::new()
                            }
                        })
                        .collect(),
                ))
            }
            "absent_over_time" | "present_over_time" if !range::is_range_function(name) => {
                let a = arg(0)?;
                let ra = self.eval_range_arg(a, s)?;
                let labels = absent_labels(a);
                let mut out = Vec::with_capacity(s.len());
                for t in s.times() {
                    let w = ra.window(t);
                    let present = ra.series.iter().filter(|x| !x.window(w).is_empty());
                    if name == "present_over_time" {
                        out.push(
                            present
                                .map(|x| Elem { labels: x.labels.clone(), t, v: 1.0, drop_name: true })
                                .collect(),
                        );
                    } else if present.count() == 0 {
                        out.push(vec![Elem { labels: labels.clone(), t, v: 1.0, drop_name: false }]);
                    } else {
                        out.push(Vec::new());
                    }
                }
                Ok(Val::Vector(out))
            }
            "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => self.eval_sort(name, &args, s),
            "histogram_quantile" | "histogram_fraction" => self.eval_histogram_fn(name, &args, s),
            "label_replace" | "label_join" => self.eval_label_fn(name, &args, s),
            _ if range::is_range_function(name) => self.eval_range_fn(name, &args, s),
            _ if math::is_math_function(name) => self.eval_math_fn(name, &args, s),
            _ if time::is_time_function(name) => self.eval_time_fn(name, &args, s),
            _ => Err(PromqlError::BadData(format!("function {name:?} is not supported"))),
        }
    }

    /// Scalar arguments evaluated per step.
    fn scalar_args(&self, args: &[&Expr], skip: usize, s: Steps) -> Res<Vec<Vec<f64>>> {
        args.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, a)| self.eval_scalar(a, s)).collect()
    }

    fn eval_range_fn(&self, name: &str, args: &[&Expr], s: Steps) -> Res<Val> {
        let mi = args
            .iter()
            .position(|a| a.value_type() == ValueType::Matrix)
            .ok_or_else(|| PromqlError::BadData(format!("function {name} needs a range vector argument")))?;
        let ra = self.eval_range_arg(args[mi], s)?;
        let scalars = self.scalar_args(args, mi, s)?;
        let keep_name = matches!(name, "last_over_time" | "first_over_time");
        // The scalar arguments of every step, checked before any work.
        let mut step_args: Vec<Vec<f64>> = Vec::with_capacity(s.len());
        for (i, t) in s.times().enumerate() {
            let mut sargs: Vec<f64> = scalars.iter().map(|v| v.get(i).copied().unwrap_or(f64::NAN)).collect();
            range::validate_args(name, &sargs).map_err(PromqlError::Execution)?;
            if name == "predict_linear" {
                sargs.push(t as f64);
            }
            step_args.push(sargs);
        }
        // Series are independent: large evaluations run them in parallel, each over all steps.
        let one = |ser: &super::eval::MSeries| -> Vec<Option<f64>> {
            let (points, mut cursor) = (ser.points(), WindowCursor::default());
            s.times()
                .zip(&step_args)
                .map(|(t, sargs)| {
                    let w = ra.window(t);
                    range::eval(name, cursor.window(&points, w), w, sargs)
                })
                .collect()
        };
        let work: usize = ra.series.len() * s.len();
        let values: Vec<Vec<Option<f64>>> = if work >= PARALLEL_MIN_POINTS {
            use rayon::prelude::*;
            let chunk = ra.series.len().div_ceil(rayon::current_num_threads() * 4).max(1);
            let deadline = self.deadline;
            let parts: Vec<Res<Vec<Vec<Option<f64>>>>> = ra
                .series
                .par_chunks(chunk)
                .map(|c| {
                    if std::time::Instant::now() > deadline {
                        return Err(PromqlError::Timeout("expression evaluation".into()));
                    }
                    Ok(c.iter().map(one).collect())
                })
                .collect();
            let mut all = Vec::with_capacity(ra.series.len());
            for p in parts {
                all.extend(p?);
            }
            all
        } else {
            ra.series.iter().map(one).collect()
        };
        self.check_timeout()?;
        let mut out: Vec<Vec<Elem>> = (0..s.len()).map(|_| Vec::new()).collect();
        for (ser, vals) in ra.series.iter().zip(&values) {
            let drop_name = if keep_name { ser.drop_name } else { true };
            for ((step, t), v) in out.iter_mut().zip(s.times()).zip(vals) {
                if let Some(v) = *v {
                    step.push(Elem { labels: ser.labels.clone(), t, v, drop_name });
                }
            }
        }
        Ok(Val::Vector(out))
    }

    fn eval_math_fn(&self, name: &str, args: &[&Expr], s: Steps) -> Res<Val> {
        let first =
            args.first().ok_or_else(|| PromqlError::BadData(format!("function {name} needs an argument")))?;
        let v = self.eval_vector(first, s)?;
        let scalars = self.scalar_args(args, 0, s)?;
        let mut out = Vec::with_capacity(v.len());
        for (i, step) in v.into_iter().enumerate() {
            let t = s.at(i);
            let sargs: Vec<f64> = scalars.iter().map(|v| v.get(i).copied().unwrap_or(f64::NAN)).collect();
            out.push(
                step.into_iter()
                    .filter_map(|e| {
                        math::eval(name, e.v, &sargs).map(|v| Elem {
                            labels: e.labels,
                            t,
                            v,
                            drop_name: true,
                        })
                    })
                    .collect(),
            );
        }
        Ok(Val::Vector(out))
    }

    fn eval_time_fn(&self, name: &str, args: &[&Expr], s: Steps) -> Res<Val> {
        let Some(first) = args.first() else {
            return Ok(Val::Vector(
                s.times()
                    .map(|t| {
                        time::eval(name, (t.div_euclid(1000)) as f64)
                            .map(|v| Elem { labels: Labels::default(), t, v, drop_name: false })
                            .into_iter()
                            .collect()
                    })
                    .collect(),
            ));
        };
        let v = self.eval_vector(first, s)?;
        Ok(Val::Vector(map_elems(v, &s, |t, e| {
            time::eval(name, e.v).map(|v| Elem { labels: e.labels, t, v, drop_name: true })
        })))
    }
}

/// The labels `absent()` and `absent_over_time()` give their result: the selector's equality
/// matchers (a label matched twice is left out), without the metric name.
pub(crate) fn absent_labels(e: &Expr) -> Labels {
    let vs = match unparen(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::default(),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut has: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == crate::labels::METRIC_NAME {
            continue;
        }
        if matches!(m.op, promql_parser::label::MatchOp::Equal) && !has.contains(&m.name.as_str()) {
            pairs.retain(|p| p.0 != m.name);
            pairs.push((m.name.clone(), m.value.clone()));
            has.push(&m.name);
        } else {
            pairs.retain(|p| p.0 != m.name);
        }
    }
    Labels::from_pairs(pairs)
}
