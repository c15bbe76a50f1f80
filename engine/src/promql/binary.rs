//! Binary operators: arithmetic, comparisons (filtering or `bool`), set operators, between
//! scalars, a vector and a scalar, or two vectors with `on`/`ignoring` matching and
//! `group_left`/`group_right` cardinalities.

use super::eval::{Elem, Evaluator, Res, Steps, Val, cmp_labels, drop_metric_name, par_step_items};
use super::memo::{Interner, PerSeries};
use super::value::PromqlError;
use crate::Labels;
use crate::labels::METRIC_NAME;
use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD, T_MUL, T_NEQ,
    T_POW, T_SUB, TokenId,
};
use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::HashSet;

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

fn is_set(op: TokenId) -> bool {
    matches!(op, T_LAND | T_LOR | T_LUNLESS)
}

/// `l op r`: the value and whether a comparison holds (always true for arithmetic).
fn apply(op: TokenId, l: f64, r: f64) -> Res<(f64, bool)> {
    Ok(match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_MOD => (l % r, true),
        T_POW => (l.powf(r), true),
        T_ATAN2 => (l.atan2(r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        other => {
            return Err(PromqlError::BadData(format!(
                "operator {:?} not allowed here",
                promql_parser::parser::token::TokenType::new(other).to_string()
            )));
        }
    })
}

/// How two vectors are matched.
struct Matching<'a> {
    on: bool,
    names: Vec<&'a str>,
}

impl Matching<'_> {
    fn includes(&self, name: &str) -> bool {
        if self.on { self.names.contains(&name) } else { name != METRIC_NAME && !self.names.contains(&name) }
    }

    fn signature(&self, l: &Labels) -> String {
        let mut s = String::new();
        for x in l.iter().filter(|x| self.includes(&x.name)) {
            s.push_str(&x.name);
            s.push('\u{ff}');
            s.push_str(&x.value);
            s.push('\u{fe}');
        }
        s
    }

    fn match_labels(&self, l: &Labels) -> Labels {
        Labels::from_pairs(
            l.iter().filter(|x| self.includes(&x.name)).map(|x| (x.name.clone(), x.value.clone())),
        )
    }
}

/// Work remembered across steps: each series' match signature, and each matched pair's
/// result labels.
#[derive(Default)]
struct Memo {
    sigs: PerSeries<usize>,
    sig_ids: Interner<String>,
    /// (many-side address, one-side address) -> result labels. Both sets are kept in `sigs`.
    metrics: FxHashMap<(usize, usize), Labels>,
}

impl Memo {
    fn sig(&mut self, m: &Matching<'_>, l: &Labels) -> usize {
        let ids = &mut self.sig_ids;
        self.sigs.get_or(l, |l| ids.intern(m.signature(l)))
    }
}

fn matching_of(m: &BinModifier) -> Matching<'_> {
    match &m.matching {
        Some(LabelModifier::Include(ls)) => {
            Matching { on: true, names: ls.labels.iter().map(String::as_str).collect() }
        }
        Some(LabelModifier::Exclude(ls)) => {
            Matching { on: false, names: ls.labels.iter().map(String::as_str).collect() }
        }
        None => Matching { on: false, names: Vec::new() },
    }
}

impl Evaluator<'_> {
    /// Evaluates a binary expression over the steps.
    pub(crate) fn eval_binary(&self, b: &BinaryExpr, s: Steps) -> Res<Val> {
        let op = b.op.id();
        let modifier = b.modifier.clone().unwrap_or_default();
        let return_bool = modifier.return_bool;
        if modifier.fill_values.lhs.is_some() || modifier.fill_values.rhs.is_some() {
            return Err(PromqlError::BadData("fill modifiers are not supported".into()));
        }
        let lhs = self.eval(&b.lhs, s)?;
        let rhs = self.eval(&b.rhs, s)?;
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                let mut out = Vec::with_capacity(l.len());
                for (a, c) in l.into_iter().zip(r) {
                    let (v, keep) = apply(op, a, c)?;
                    out.push(if is_comparison(op) { if keep { 1.0 } else { 0.0 } } else { v });
                }
                Ok(Val::Scalar(out))
            }
            (Val::Vector(l), Val::Scalar(r)) => self.vector_scalar(op, l, &r, false, return_bool, s),
            (Val::Scalar(l), Val::Vector(r)) => self.vector_scalar(op, r, &l, true, return_bool, s),
            (Val::Vector(l), Val::Vector(r)) => {
                let m = matching_of(&modifier);
                let work: usize = l.iter().chain(&r).map(Vec::len).sum();
                let pairs: Vec<(Vec<Elem>, Vec<Elem>)> = l.into_iter().zip(r).collect();
                // Steps are independent: each run of steps keeps its own memo.
                let run = |first: usize, pairs: Vec<(Vec<Elem>, Vec<Elem>)>| -> Res<Vec<Vec<Elem>>> {
                    let mut memo = Memo::default();
                    let mut out = Vec::with_capacity(pairs.len());
                    for (j, (a, c)) in pairs.into_iter().enumerate() {
                        let t = s.at(first + j);
                        out.push(if is_set(op) {
                            set_op(&mut memo, op, a, c, &m, t)
                        } else {
                            vector_vector(&mut memo, op, a, c, &m, &modifier.card, return_bool, t)?
                        });
                    }
                    Ok(out)
                };
                Ok(Val::Vector(par_step_items(pairs, work, self.deadline, run)?))
            }
            (l, r) => Err(PromqlError::BadData(format!(
                "binary expression must contain only scalar and instant vector types, got {} and {}",
                l.type_name(),
                r.type_name()
            ))),
        }
    }

    fn vector_scalar(
        &self,
        op: TokenId,
        vec: Vec<Vec<Elem>>,
        sc: &[f64],
        swap: bool,
        return_bool: bool,
        s: Steps,
    ) -> Res<Val> {
        if is_set(op) {
            return Err(PromqlError::BadData("set operator not allowed in binary scalar expression".into()));
        }
        let cmp = is_comparison(op);
        let mut out = Vec::with_capacity(vec.len());
        for (i, step) in vec.into_iter().enumerate() {
            let r = sc.get(i).copied().unwrap_or(f64::NAN);
            let t = s.at(i);
            let mut o = Vec::with_capacity(step.len());
            for e in step {
                let (a, c) = if swap { (r, e.v) } else { (e.v, r) };
                let (mut v, mut keep) = apply(op, a, c)?;
                if cmp && swap {
                    v = e.v;
                }
                if return_bool {
                    v = if keep { 1.0 } else { 0.0 };
                    keep = true;
                }
                if keep {
                    o.push(Elem { labels: e.labels, t, v, drop_name: e.drop_name || !cmp || return_bool });
                }
            }
            out.push(o);
        }
        Ok(Val::Vector(out))
    }
}

fn set_op(
    memo: &mut Memo,
    op: TokenId,
    lhs: Vec<Elem>,
    rhs: Vec<Elem>,
    m: &Matching<'_>,
    t: i64,
) -> Vec<Elem> {
    let stamp = |e: Elem| Elem { t, ..e };
    match op {
        T_LAND => {
            let sigs: FxHashSet<usize> = rhs.iter().map(|e| memo.sig(m, &e.labels)).collect();
            lhs.into_iter().filter(|e| sigs.contains(&memo.sig(m, &e.labels))).map(stamp).collect()
        }
        T_LOR => {
            let sigs: FxHashSet<usize> = lhs.iter().map(|e| memo.sig(m, &e.labels)).collect();
            let mut out: Vec<Elem> = lhs.into_iter().map(stamp).collect();
            out.extend(rhs.into_iter().filter(|e| !sigs.contains(&memo.sig(m, &e.labels))).map(stamp));
            out
        }
        _ => {
            let sigs: FxHashSet<usize> = rhs.iter().map(|e| memo.sig(m, &e.labels)).collect();
            lhs.into_iter().filter(|e| !sigs.contains(&memo.sig(m, &e.labels))).map(stamp).collect()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn vector_vector(
    memo: &mut Memo,
    op: TokenId,
    lhs: Vec<Elem>,
    rhs: Vec<Elem>,
    m: &Matching<'_>,
    card: &VectorMatchCardinality,
    return_bool: bool,
    t: i64,
) -> Res<Vec<Elem>> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let swapped = matches!(card, VectorMatchCardinality::OneToMany(_));
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let include: Vec<&str> = match card {
        VectorMatchCardinality::ManyToOne(l) | VectorMatchCardinality::OneToMany(l) => {
            l.labels.iter().map(String::as_str).collect()
        }
        _ => Vec::new(),
    };
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne | VectorMatchCardinality::ManyToMany);
    let mut right: FxHashMap<usize, &Elem> = FxHashMap::default();
    for rs in &one {
        let sig = memo.sig(m, &rs.labels);
        if let Some(dup) = right.get(&sig) {
            let side = if swapped { "left hand-side" } else { "right hand-side" };
            // As Prometheus shows them: without a metric name that is to be dropped.
            let shown = |e: &Elem| if e.drop_name { drop_metric_name(&e.labels) } else { e.labels.clone() };
            let mut pair = [shown(dup), shown(rs)];
            pair.sort_by(cmp_labels);
            return Err(PromqlError::Execution(format!(
                "found duplicate series for the match group {} on the {side} of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                m.match_labels(&rs.labels),
                pair[0],
                pair[1]
            )));
        }
        right.insert(sig, rs);
    }
    let cmp = is_comparison(op);
    let arith = !cmp;
    let mut matched: FxHashMap<usize, HashSet<Labels>> = FxHashMap::default();
    let mut out = Vec::new();
    for ls in &many {
        let sig = memo.sig(m, &ls.labels);
        let Some(rs) = right.get(&sig) else { continue };
        // Before the filter: Prometheus 3.x reports many-to-one matching even when a comparison
        // filters the pairs away (operators.test; 2.x did not).
        if one_to_one {
            if matched.contains_key(&sig) {
                return Err(PromqlError::Execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                ));
            }
            matched.insert(sig, HashSet::new());
        }
        let (fl, fr) = if swapped { (rs.v, ls.v) } else { (ls.v, rs.v) };
        let (mut v, mut keep) = apply(op, fl, fr)?;
        if return_bool {
            v = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if !keep {
            continue;
        }
        let metric = memo
            .metrics
            .entry((ls.labels.shared_id(), rs.labels.shared_id()))
            .or_insert_with(|| result_metric(&ls.labels, &rs.labels, arith, m, one_to_one, &include))
            .clone();
        if !one_to_one {
            let set = matched.entry(sig).or_default();
            if !set.insert(metric.clone()) {
                return Err(PromqlError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches".into(),
                ));
            }
        }
        out.push(Elem { labels: metric, t, v, drop_name: ls.drop_name || arith || return_bool });
    }
    Ok(out)
}

fn result_metric(
    lhs: &Labels,
    rhs: &Labels,
    arith: bool,
    m: &Matching<'_>,
    one_to_one: bool,
    include: &[&str],
) -> Labels {
    let mut pairs: Vec<(String, String)> = lhs
        .iter()
        .filter(|l| !(arith && l.name == METRIC_NAME))
        .filter(|l| {
            !one_to_one
                || if m.on { m.names.contains(&l.name.as_str()) } else { !m.names.contains(&l.name.as_str()) }
        })
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
    if !one_to_one {
        for name in include {
            pairs.retain(|p| p.0 != *name);
            if let Some(v) = rhs.get(name) {
                pairs.push((name.to_string(), v.to_string()));
            }
        }
    }
    Labels::from_pairs(pairs)
}
