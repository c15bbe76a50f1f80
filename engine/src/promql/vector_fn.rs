//! Functions that reorder, regroup or relabel instant vectors: `sort`, `sort_desc`,
//! `sort_by_label(_desc)`, `histogram_quantile` over classic `le` buckets, `label_replace` and
//! `label_join`.

use super::eval::{Elem, Evaluator, Res, Steps, Val, check_unique, cmp_labels, labels_without};
use super::functions::{histogram, labels as label_fns};
use super::memo::{Interner, PerSeries};
use super::value::PromqlError;
use crate::Labels;
use crate::labels::METRIC_NAME;
use promql_parser::parser::Expr;
use std::cmp::Ordering;

/// Natural order of strings: digit runs compare as numbers.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let n = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let m = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (&x[..n], &y[..m]);
                let tx = dx.iter().skip_while(|&&c| c == b'0').count();
                let ty = dy.iter().skip_while(|&&c| c == b'0').count();
                let o = tx.cmp(&ty).then_with(|| dx[n - tx..].cmp(&dy[m - ty..]));
                if o != Ordering::Equal {
                    return o;
                }
                x = &x[n..];
                y = &y[m..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

impl Evaluator<'_> {
    /// `sort*`: reorders instant-query results; range queries are left alone.
    pub(crate) fn eval_sort(&self, name: &str, args: &[&Expr], s: Steps) -> Res<Val> {
        let first =
            args.first().ok_or_else(|| PromqlError::BadData(format!("function {name} needs an argument")))?;
        let mut v = self.eval_vector(first, s)?;
        let mut by: Vec<String> = Vec::new();
        for a in &args[1..] {
            by.push(self.eval_string(a, s)?);
        }
        for step in &mut v {
            match name {
                "sort" | "sort_desc" => {
                    let desc = name == "sort_desc";
                    step.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                        (true, true) => Ordering::Equal,
                        (true, false) => Ordering::Greater,
                        (false, true) => Ordering::Less,
                        _ if desc => b.v.total_cmp(&a.v),
                        _ => a.v.total_cmp(&b.v),
                    });
                }
                _ => {
                    let desc = name == "sort_by_label_desc";
                    step.sort_by(|a, b| {
                        let mut o = Ordering::Equal;
                        for l in &by {
                            o = natural_cmp(a.labels.get(l).unwrap_or(""), b.labels.get(l).unwrap_or(""));
                            if o != Ordering::Equal {
                                break;
                            }
                        }
                        let o = o.then_with(|| cmp_labels(&a.labels, &b.labels));
                        if desc { o.reverse() } else { o }
                    });
                }
            }
        }
        Ok(Val::Vector(v))
    }

    /// `histogram_quantile(φ, buckets)` and `histogram_fraction(lower, upper, buckets)` over
    /// classic histograms.
    pub(crate) fn eval_histogram_fn(&self, name: &str, args: &[&Expr], s: Steps) -> Res<Val> {
        let n = args.len();
        if n < 2 {
            return Err(PromqlError::BadData(format!("{name} needs more arguments")));
        }
        let mut params = Vec::new();
        for a in &args[..n - 1] {
            params.push(self.eval_scalar(a, s)?);
        }
        let v = self.eval_vector(args[n - 1], s)?;
        // Per series: its histogram (id) and bucket bound, or None without a valid `le`.
        let mut memo: PerSeries<Option<(usize, f64)>> = PerSeries::default();
        let mut ids: Interner<Labels> = Interner::default();
        let mut out = Vec::with_capacity(v.len());
        for (i, step) in v.into_iter().enumerate() {
            let t = s.at(i);
            let p: Vec<f64> = params.iter().map(|p| p.get(i).copied().unwrap_or(f64::NAN)).collect();
            let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
            let mut slot: Vec<usize> = Vec::new();
            for e in step {
                let Some((id, le)) = memo.get_or(&e.labels, |l| {
                    let le = l.get("le").and_then(parse_le)?;
                    Some((ids.intern(labels_without(l, &["le"])), le))
                }) else {
                    continue;
                };
                if slot.len() <= id {
                    slot.resize(ids.keys.len().max(id + 1), usize::MAX);
                }
                if slot[id] == usize::MAX {
                    slot[id] = groups.len();
                    groups.push((ids.keys[id].clone(), Vec::new()));
                }
                groups[slot[id]].1.push((le, e.v));
            }
            out.push(
                groups
                    .into_iter()
                    .map(|(labels, mut buckets)| {
                        let v = if name == "histogram_quantile" {
                            histogram::quantile(p[0], &mut buckets)
                        } else {
                            histogram::fraction(p[0], p.get(1).copied().unwrap_or(f64::NAN), &mut buckets)
                        };
                        Elem { labels, t, v, drop_name: true }
                    })
                    .collect(),
            );
        }
        Ok(Val::Vector(out))
    }

    /// `label_replace(v, dst, replacement, src, regex)` and `label_join(v, dst, sep, src...)`.
    pub(crate) fn eval_label_fn(&self, name: &str, args: &[&Expr], s: Steps) -> Res<Val> {
        let first =
            args.first().ok_or_else(|| PromqlError::BadData(format!("function {name} needs an argument")))?;
        let mut strs = Vec::new();
        for a in &args[1..] {
            strs.push(self.eval_string(a, s)?);
        }
        let v = self.eval_vector(first, s)?;
        let get = |i: usize| strs.get(i).map(String::as_str).unwrap_or("");
        let dst = get(0);
        let re = if name == "label_replace" {
            Some(label_fns::compile_label_replace(dst, get(3)).map_err(PromqlError::Execution)?)
        } else {
            None
        };
        let mut out = Vec::with_capacity(v.len());
        for (i, step) in v.into_iter().enumerate() {
            let t = s.at(i);
            let mut o = Vec::with_capacity(step.len());
            for e in step {
                let labels = if let Some(re) = &re {
                    Ok(label_fns::label_replace_with(&e.labels, dst, get(1), get(2), re))
                } else {
                    let srcs: Vec<&str> = strs.iter().skip(2).map(String::as_str).collect();
                    label_fns::label_join(&e.labels, dst, get(1), &srcs)
                }
                .map_err(PromqlError::Execution)?;
                let drop_name = e.drop_name && dst != METRIC_NAME;
                o.push(Elem { labels, t, v: e.v, drop_name });
            }
            check_unique(&o)?;
            out.push(o);
        }
        Ok(Val::Vector(out))
    }
}

/// Parses an `le` label like Go's `strconv.ParseFloat`.
fn parse_le(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers() {
        assert_eq!(natural_cmp("a2", "a10"), Ordering::Less);
        assert_eq!(natural_cmp("a10", "a10"), Ordering::Equal);
        assert_eq!(natural_cmp("b", "a10"), Ordering::Greater);
        assert_eq!(parse_le("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_le("0.5"), Some(0.5));
    }
}
