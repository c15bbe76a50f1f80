//! What the runner needs from a query's AST (via `promql-parser`): experimental constructs, the
//! selectors (to tell whether an eval reads native-histogram series) and test.go's
//! `atModifierTestCases` rewrite.

use promql_parser::label::Matcher;
use promql_parser::parser::{AtModifier, Expr, LabelModifier, VectorSelector};
use std::time::{Duration, SystemTime};

/// Prometheus's `AtModifierUnsafeFunctions`, with the experimental `start`, `end`, `range` and
/// `step`: they answer the query's own parameters, which the `@` re-runs change (functions.test
/// expects `start()` at 100s to be 100, which a re-run at another time could not give).
const AT_MODIFIER_UNSAFE_FUNCTIONS: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
    "start",
    "end",
    "range",
    "step",
];

/// Every child expression of `e`.
fn children(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Aggregate(a) => {
            let mut v: Vec<&Expr> = a.param.iter().map(|p| &**p).collect();
            v.push(&a.expr);
            v
        }
        Expr::Unary(u) => vec![&u.expr],
        Expr::Binary(b) => vec![&b.lhs, &b.rhs],
        Expr::Paren(p) => vec![&p.expr],
        Expr::Subquery(s) => vec![&s.expr],
        Expr::Call(c) => c.args.args.iter().map(|a| &**a).collect(),
        _ => Vec::new(),
    }
}

/// Experimental functions and aggregations the engine implements (Prometheus's test engine
/// enables them): their evals run like any other.
const IMPLEMENTED_EXPERIMENTAL: &[&str] = &[
    "double_exponential_smoothing",
    "end",
    "max_of",
    "min_of",
    "range",
    "start",
    "step",
    "limit_ratio",
    "limitk",
    "mad_over_time",
    "sort_by_label",
    "sort_by_label_desc",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
];

/// The first experimental construct in `e` that the engine does not implement, as a skip
/// reason.
pub fn experimental_feature(e: &Expr) -> Option<String> {
    match e {
        Expr::Call(c) if c.func.experimental && !IMPLEMENTED_EXPERIMENTAL.contains(&c.func.name) => {
            return Some(format!("experimental function {}()", c.func.name));
        }
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier
                && (m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
            {
                return Some("experimental fill modifier".into());
            }
        }
        _ => {}
    }
    children(e).into_iter().find_map(experimental_feature)
}

/// The implemented experimental constructs in `e`, for the report's notes.
pub fn implemented_experimental(e: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    match e {
        Expr::Call(c) if c.func.experimental => out.push(format!("{}()", c.func.name)),
        Expr::Aggregate(a) if IMPLEMENTED_EXPERIMENTAL.contains(&a.op.to_string().as_str()) => {
            out.push(a.op.to_string())
        }
        _ => {}
    }
    out.extend(children(e).into_iter().flat_map(implemented_experimental));
    out
}

/// Every vector selector in `e` (including those of matrix selectors and inside subqueries).
pub fn selectors(e: &Expr) -> Vec<&VectorSelector> {
    let mut out = Vec::new();
    fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a VectorSelector>) {
        match e {
            Expr::VectorSelector(vs) => out.push(vs),
            Expr::MatrixSelector(ms) => out.push(&ms.vs),
            _ => children(e).into_iter().for_each(|c| walk(c, out)),
        }
    }
    walk(e, &mut out);
    out
}

/// Whether `vs` may select the series with these labels (conservative for `or` matchers).
pub fn selector_may_match(vs: &VectorSelector, labels: &[(String, String)]) -> bool {
    let get = |n: &str| labels.iter().find(|(k, _)| k == n).map_or("", |(_, v)| v.as_str());
    if let Some(name) = &vs.name
        && name != get("__name__")
    {
        return false;
    }
    let all = |ms: &[Matcher]| ms.iter().all(|m| m.is_match(get(&m.name)));
    all(&vs.matchers.matchers) || vs.matchers.or_matchers.iter().any(|g| all(g))
}

/// test.go's `atModifierTestCases`: `expr` with `@ <eval time>` on every selector and subquery
/// that has no numeric `@` (nothing inside a subquery is touched), re-evaluated at other times.
pub fn at_modifier_test_cases(expr: &Expr, eval_ms: i64) -> AtCases {
    fn unsafe_call(e: &Expr) -> bool {
        match e {
            Expr::Subquery(_) => false,
            Expr::Call(c) if AT_MODIFIER_UNSAFE_FUNCTIONS.contains(&c.func.name) => true,
            _ => children(e).into_iter().any(unsafe_call),
        }
    }
    if unsafe_call(expr) {
        return AtCases::Unsafe;
    }
    let Ok(ms) = u64::try_from(eval_ms) else { return AtCases::NotPrintable };
    let at = AtModifier::At(SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
    let set = |slot: &mut Option<AtModifier>| {
        if !matches!(slot, Some(AtModifier::At(_))) {
            *slot = Some(at.clone());
        }
    };
    fn rewrite(e: &mut Expr, set: &dyn Fn(&mut Option<AtModifier>)) {
        match e {
            Expr::VectorSelector(vs) => set(&mut vs.at),
            Expr::MatrixSelector(ms) => set(&mut ms.vs.at),
            Expr::Subquery(sq) => set(&mut sq.at),
            Expr::Aggregate(a) => {
                rewrite(&mut a.expr, set);
                if let Some(p) = &mut a.param {
                    rewrite(p, set);
                }
            }
            Expr::Unary(u) => rewrite(&mut u.expr, set),
            Expr::Binary(b) => {
                rewrite(&mut b.lhs, set);
                rewrite(&mut b.rhs, set);
            }
            Expr::Paren(p) => rewrite(&mut p.expr, set),
            Expr::Call(c) => c.args.args.iter_mut().for_each(|a| rewrite(a, set)),
            _ => {}
        }
    }
    let mut rewritten = expr.clone();
    rewrite(&mut rewritten, &set);
    let text = rewritten.to_string();
    // Only run the variants when promql-parser prints text that parses back to the same AST
    // (up to matcher order and empty `by ()`/`ignoring ()`, which mean the same).
    if promlake_engine::promql::parse(&text).ok().map(canonical) != Some(canonical(rewritten)) {
        return AtCases::NotPrintable;
    }
    let times = if eval_ms == 0 {
        vec![-1000, 0, 1000]
    } else {
        vec![-10 * eval_ms, 0, eval_ms / 5, eval_ms, 10 * eval_ms]
    };
    AtCases::Cases(times.into_iter().map(|t| (text.clone(), t)).collect())
}

/// `e` with matchers sorted and empty `by ()` / `ignoring ()` modifiers removed.
fn canonical(mut e: Expr) -> Expr {
    fn sort(ms: &mut [Matcher]) {
        ms.sort_by_key(|m| (m.name.clone(), m.op.to_string(), m.value.clone()));
    }
    fn canon_vs(vs: &mut VectorSelector) {
        sort(&mut vs.matchers.matchers);
        vs.matchers.or_matchers.iter_mut().for_each(|g| sort(g));
    }
    fn walk(e: &mut Expr) {
        match e {
            Expr::VectorSelector(vs) => canon_vs(vs),
            Expr::MatrixSelector(ms) => canon_vs(&mut ms.vs),
            Expr::Aggregate(a) => {
                if matches!(&a.modifier, Some(LabelModifier::Include(l)) if l.labels.is_empty()) {
                    a.modifier = None;
                }
                walk(&mut a.expr);
                if let Some(p) = &mut a.param {
                    walk(p);
                }
            }
            Expr::Binary(b) => {
                if let Some(m) = &mut b.modifier {
                    if matches!(&m.matching, Some(LabelModifier::Exclude(l)) if l.labels.is_empty()) {
                        m.matching = None;
                    }
                    if m.matching.is_none()
                        && !m.return_bool
                        && m.fill_values.lhs.is_none()
                        && m.fill_values.rhs.is_none()
                    {
                        b.modifier = None;
                    }
                }
                walk(&mut b.lhs);
                walk(&mut b.rhs);
            }
            Expr::Unary(u) => walk(&mut u.expr),
            Expr::Paren(p) => walk(&mut p.expr),
            Expr::Subquery(s) => walk(&mut s.expr),
            Expr::Call(c) => c.args.args.iter_mut().for_each(|a| walk(a)),
            _ => {}
        }
    }
    walk(&mut e);
    e
}

/// The outcome of [`at_modifier_test_cases`].
pub enum AtCases {
    /// The query calls an `@`-unsafe function outside subqueries (test.go adds no variants).
    Unsafe,
    /// promql-parser does not print the rewritten query faithfully: no variants.
    NotPrintable,
    /// (query, evaluation time ms) pairs.
    Cases(Vec<(String, i64)>),
}
