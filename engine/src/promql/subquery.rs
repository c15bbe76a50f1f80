//! Subqueries `expr[range:step]`: the inner expression is evaluated at absolute timestamps
//! that are multiples of the step (Prometheus's alignment), covering every outer step's
//! window `(t - offset - range, t - offset]` (or the `@` time's window).

use super::eval::{Evaluator, MSeries, RangeArg, Res, Steps, Val, offset_ms};
use crate::Labels;
use promql_parser::parser::SubqueryExpr;
use std::collections::HashMap;

/// `a` rounded up to a multiple of `step`.
fn align_up(a: i64, step: i64) -> i64 {
    a.div_euclid(step) * step + if a.rem_euclid(step) == 0 { 0 } else { step }
}

impl Evaluator<'_> {
    /// Evaluates a subquery for the outer steps `s`.
    pub(crate) fn eval_subquery(&self, sq: &SubqueryExpr, s: Steps) -> Res<RangeArg> {
        let at = self.at_time(&sq.at);
        let off = offset_ms(&sq.offset);
        let range = sq.range.as_millis() as i64;
        let step = sq.step.map(|d| d.as_millis() as i64).filter(|&x| x > 0).unwrap_or(self.subquery_step);
        let (lo, hi) = match at {
            Some(t) => (t, t),
            None => (s.start, s.end),
        };
        let start = align_up(lo - off - range, step);
        let end = hi - off;
        let mut series: Vec<MSeries> = Vec::new();
        let mut columns: Vec<(Vec<i64>, Vec<f64>)> = Vec::new();
        if start <= end {
            let inner = Steps { start, end, step };
            let mut index: HashMap<Labels, usize> = HashMap::new();
            let mut n = 0;
            match self.eval(&sq.expr, inner)? {
                Val::Vector(steps) => {
                    for (i, vec) in steps.into_iter().enumerate() {
                        let t = inner.at(i);
                        for e in vec {
                            n += 1;
                            let idx = *index.entry(e.labels.clone()).or_insert_with(|| {
                                series.push(MSeries {
                                    labels: e.labels,
                                    drop_name: false,
                                    ..MSeries::default()
                                });
                                columns.push((Vec::new(), Vec::new()));
                                series.len() - 1
                            });
                            series[idx].drop_name |= e.drop_name;
                            columns[idx].0.push(t);
                            columns[idx].1.push(e.v);
                        }
                    }
                }
                Val::Scalar(vals) => {
                    n = vals.len();
                    series.push(MSeries::default());
                    columns.push((inner.times().collect(), vals));
                }
                other => {
                    return Err(super::value::PromqlError::BadData(format!(
                        "subquery is only allowed on instant vector, got {} instead",
                        other.type_name()
                    )));
                }
            }
            self.add_samples(n)?;
        }
        for (ser, (ts, vs)) in series.iter_mut().zip(columns) {
            (ser.ts, ser.vs) = (ts.into(), vs.into());
        }
        Ok(RangeArg { series, range_ms: range, offset_ms: off, at })
    }
}

#[cfg(test)]
mod tests {
    use super::align_up;

    #[test]
    fn alignment_rounds_up_to_step_multiples() {
        assert_eq!(align_up(0, 10), 0);
        assert_eq!(align_up(1, 10), 10);
        assert_eq!(align_up(-1, 10), 0);
        assert_eq!(align_up(-11, 10), -10);
        assert_eq!(align_up(20, 10), 20);
    }
}
