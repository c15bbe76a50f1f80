//! Filter pushdown helpers shared by the tables: which columns a filter touches, evaluating
//! label filters on a block's series, and the time range a set of filters allows.

use arrow::array::{Array, BooleanArray, RecordBatch};
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, utils::conjunction};
use datafusion::physical_plan::PhysicalExpr;
use std::collections::HashSet;
use std::sync::Arc;

/// Does `expr` read only columns in `allowed` (and at least one column)?
pub fn only_columns(expr: &Expr, allowed: &HashSet<&str>) -> bool {
    let cols = expr.column_refs();
    !cols.is_empty() && cols.iter().all(|c| allowed.contains(c.name.as_str()))
}

/// The filters of `filters` that read only columns in `allowed`.
pub fn select<'a>(filters: &'a [Expr], allowed: &HashSet<&str>) -> Vec<&'a Expr> {
    filters.iter().filter(|f| only_columns(f, allowed)).collect()
}

/// Plans the conjunction of `filters` against `schema`; `None` when there are none.
pub fn physical(
    session: &dyn Session,
    filters: &[&Expr],
    schema: &DFSchema,
) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    match conjunction(filters.iter().map(|e| (*e).clone())) {
        Some(e) => Ok(Some(session.create_physical_expr(e, schema)?)),
        None => Ok(None),
    }
}

/// Evaluates a predicate on `batch`: true where the row passes (null counts as false).
pub fn mask(predicate: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<BooleanArray> {
    let v = predicate.evaluate(batch)?.into_array(batch.num_rows())?;
    let b = v.as_any().downcast_ref::<BooleanArray>().ok_or_else(|| {
        datafusion::error::DataFusionError::Plan("filter is not a boolean expression".into())
    })?;
    Ok(if b.null_count() > 0 { arrow::compute::prep_null_mask_filter(b) } else { b.clone() })
}

/// The inclusive range `[min, max]` (ms) the filters allow for `column`, from comparisons of
/// the column with timestamp literals (`>`, `>=`, `<`, `<=`, `=`, `BETWEEN`); conservative.
pub fn time_bounds(filters: &[Expr], column: &str) -> (i64, i64) {
    let mut b = (i64::MIN, i64::MAX);
    for f in filters {
        bound(f, column, &mut b);
    }
    b
}

fn bound(e: &Expr, column: &str, b: &mut (i64, i64)) {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
            bound(left, column, b);
            bound(right, column, b);
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, lit) = match (left.as_ref(), right.as_ref()) {
                (Expr::Column(c), Expr::Literal(v, _)) if c.name == column => (*op, v),
                (Expr::Literal(v, _), Expr::Column(c)) if c.name == column => match op.swap() {
                    Some(o) => (o, v),
                    None => return,
                },
                _ => return,
            };
            let Some((lo, hi)) = millis(lit) else { return };
            match op {
                Operator::Gt | Operator::GtEq => b.0 = b.0.max(lo),
                Operator::Lt | Operator::LtEq => b.1 = b.1.min(hi),
                Operator::Eq => {
                    b.0 = b.0.max(lo);
                    b.1 = b.1.min(hi);
                }
                _ => {}
            }
        }
        Expr::Between(Between { expr, negated: false, low, high }) => {
            if let (Expr::Column(c), Expr::Literal(l, _), Expr::Literal(h, _)) =
                (expr.as_ref(), low.as_ref(), high.as_ref())
                && c.name == column
            {
                if let Some((lo, _)) = millis(l) {
                    b.0 = b.0.max(lo);
                }
                if let Some((_, hi)) = millis(h) {
                    b.1 = b.1.min(hi);
                }
            }
        }
        _ => {}
    }
}

/// A timestamp literal as milliseconds, rounded down and up.
fn millis(v: &ScalarValue) -> Option<(i64, i64)> {
    let (n, per_ms) = match v {
        ScalarValue::TimestampSecond(Some(s), _) => {
            return Some((s.saturating_mul(1000), s.saturating_mul(1000)));
        }
        ScalarValue::TimestampMillisecond(Some(ms), _) => return Some((*ms, *ms)),
        ScalarValue::TimestampMicrosecond(Some(us), _) => (*us, 1_000),
        ScalarValue::TimestampNanosecond(Some(ns), _) => (*ns, 1_000_000),
        _ => return None,
    };
    Some((n.div_euclid(per_ms), n.div_euclid(per_ms) + i64::from(n.rem_euclid(per_ms) != 0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn bounds_from_comparisons() {
        let ts = |ms: i64| lit(ScalarValue::TimestampMillisecond(Some(ms), None));
        let f =
            vec![col("timestamp").gt_eq(ts(1000)), ts(5000).gt(col("timestamp")), col("value").gt(lit(1.0))];
        assert_eq!(time_bounds(&f, "timestamp"), (1000, 5000));
        let ns = lit(ScalarValue::TimestampNanosecond(Some(2_500_000), None));
        assert_eq!(time_bounds(&[col("timestamp").lt(ns)], "timestamp"), (i64::MIN, 3));
        assert_eq!(time_bounds(&[col("value").gt(lit(1.0))], "timestamp"), (i64::MIN, i64::MAX));
    }
}
