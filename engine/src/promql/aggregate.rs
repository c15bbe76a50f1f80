//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`,
//! `quantile`, `count_values`, `topk`, `bottomk`, `limitk`, `limit_ratio`) with `by`/`without`,
//! following Prometheus's float arithmetic (Kahan–Neumaier sums, incremental means).

use super::eval::{
    Elem, Evaluator, Res, Steps, Val, format_float, labels_only, labels_with, labels_without, par_step_items,
};
use super::memo::{Interner, PerSeries};
use super::value::PromqlError;
use crate::Labels;
use crate::labels::METRIC_NAME;
use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMIT_RATIO, T_LIMITK, T_MAX, T_MIN, T_QUANTILE,
    T_STDDEV, T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, LabelModifier};

pub(crate) use super::functions::{kahan_inc, quantile};

/// A deterministic offset in [0, 1] of a label set, for `limit_ratio`.
fn ratio_offset(l: &Labels) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in l.iter() {
        for b in x.name.bytes().chain([0xff]).chain(x.value.bytes()).chain([0xfe]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h as f64 / u64::MAX as f64
}

#[derive(Default)]
struct Group {
    labels: Labels,
    drop_name: bool,
    count: f64,
    value: f64,
    kahan: f64,
    mean: f64,
    incremental: bool,
    members: Vec<Elem>,
}

impl Evaluator<'_> {
    /// Evaluates an aggregation over the steps.
    pub(crate) fn eval_aggregate(&self, a: &AggregateExpr, s: Steps) -> Res<Val> {
        let op = a.op.id();
        let (by, names): (bool, Vec<&str>) = match &a.modifier {
            Some(LabelModifier::Include(l)) => (true, l.labels.iter().map(String::as_str).collect()),
            Some(LabelModifier::Exclude(l)) => (false, l.labels.iter().map(String::as_str).collect()),
            None => (true, Vec::new()),
        };
        let mut scalar_param = None;
        let mut label_param = None;
        if let Some(p) = &a.param {
            if op == T_COUNT_VALUES {
                let l = self.eval_string(p, s)?;
                if l.is_empty() {
                    return Err(PromqlError::Execution(format!("invalid label name {l:?}")));
                }
                label_param = Some(l);
            } else {
                scalar_param = Some(self.eval_scalar(p, s)?);
            }
        }
        let input = self.eval_vector(&a.expr, s)?;
        // Steps are independent: a run of consecutive steps shares one grouper (group
        // assignments are derived once per series and run), and large inputs run in parallel.
        let run = |first: usize, steps: Vec<Vec<Elem>>| -> Res<Vec<Vec<Elem>>> {
            let mut grouper = Grouper::default();
            let mut out = Vec::with_capacity(steps.len());
            for (j, vec) in steps.into_iter().enumerate() {
                let i = first + j;
                let param = scalar_param.as_ref().and_then(|p| p.get(i).copied()).unwrap_or(f64::NAN);
                out.push(aggregate_step(
                    &mut grouper,
                    op,
                    vec,
                    by,
                    &names,
                    param,
                    label_param.as_deref(),
                    s.at(i),
                )?);
            }
            Ok(out)
        };
        let work: usize = input.iter().map(Vec::len).sum();
        let out = par_step_items(input, work, self.deadline, run)?;
        Ok(Val::Vector(out))
    }
}

/// Assigns input series to groups, once per series for the whole query.
#[derive(Default)]
struct Grouper {
    memo: PerSeries<usize>,
    groups: Interner<Labels>,
}

#[allow(clippy::too_many_arguments)]
fn aggregate_step(
    grouper: &mut Grouper,
    op: u16,
    vec: Vec<Elem>,
    by: bool,
    names: &[&str],
    param: f64,
    label: Option<&str>,
    t: i64,
) -> Res<Vec<Elem>> {
    let mut k = 0usize;
    let mut ratio = 0.0;
    match op {
        T_TOPK | T_BOTTOMK | T_LIMITK => {
            if param.is_nan() {
                return Err(PromqlError::Execution("Parameter value is NaN".into()));
            }
            if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&param) {
                return Err(PromqlError::Execution(format!(
                    "Scalar value {} overflows int64",
                    format_float(param)
                )));
            }
            if param < 1.0 {
                return Ok(Vec::new());
            }
            k = param as usize;
        }
        T_LIMIT_RATIO => {
            if param.is_nan() {
                return Err(PromqlError::Execution("Ratio value is NaN".into()));
            }
            ratio = param.clamp(-1.0, 1.0);
        }
        _ => {}
    }
    let mut groups: Vec<Group> = Vec::new();
    // Group id -> index in `groups` for this step.
    let mut slot: Vec<usize> = Vec::new();
    for mut e in vec {
        let id = match label {
            Some(l) => {
                e.labels = labels_with(&e.labels, l, &format_float(e.v));
                let mut n: Vec<&str> = names.to_vec();
                n.push(if by { l } else { METRIC_NAME });
                let key = if by { labels_only(&e.labels, &n) } else { labels_without(&e.labels, &n) };
                grouper.groups.intern(key)
            }
            None => {
                let groups = &mut grouper.groups;
                grouper.memo.get_or(&e.labels, |l| {
                    groups.intern(if by {
                        labels_only(l, names)
                    } else {
                        let mut n: Vec<&str> = names.to_vec();
                        n.push(METRIC_NAME);
                        labels_without(l, &n)
                    })
                })
            }
        };
        if slot.len() <= id {
            slot.resize(grouper.groups.keys.len().max(id + 1), usize::MAX);
        }
        let gi = match slot[id] {
            usize::MAX => {
                slot[id] = groups.len();
                groups.push(Group { labels: grouper.groups.keys[id].clone(), ..Default::default() });
                groups.len() - 1
            }
            gi => gi,
        };
        let g = &mut groups[gi];
        g.drop_name |= e.drop_name;
        accumulate(op, g, e);
    }
    let mut out = Vec::new();
    for mut g in groups {
        let v = match op {
            T_SUM => g.value + g.kahan,
            T_AVG => {
                if g.incremental {
                    g.mean + g.kahan
                } else {
                    (g.value + g.kahan) / g.count
                }
            }
            T_COUNT => g.count,
            T_GROUP => 1.0,
            T_MIN | T_MAX => g.value,
            T_STDVAR => g.value / g.count,
            T_STDDEV => (g.value / g.count).sqrt(),
            T_QUANTILE => {
                let mut vals: Vec<f64> = g.members.iter().map(|e| e.v).collect();
                quantile(param, &mut vals)
            }
            T_COUNT_VALUES => g.count,
            T_TOPK | T_BOTTOMK => {
                let top = op == T_TOPK;
                g.members.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if top => b.v.total_cmp(&a.v),
                    _ => a.v.total_cmp(&b.v),
                });
                out.extend(g.members.into_iter().take(k).map(|e| Elem { t, ..e }));
                continue;
            }
            T_LIMITK => {
                out.extend(g.members.into_iter().take(k).map(|e| Elem { t, ..e }));
                continue;
            }
            T_LIMIT_RATIO => {
                out.extend(
                    g.members
                        .into_iter()
                        .filter(|e| {
                            let o = ratio_offset(&e.labels);
                            if ratio >= 0.0 { o < ratio } else { o >= 1.0 + ratio }
                        })
                        .map(|e| Elem { t, ..e }),
                );
                continue;
            }
            other => {
                return Err(PromqlError::BadData(format!(
                    "unsupported aggregation {}",
                    promql_parser::parser::token::TokenType::new(other)
                )));
            }
        };
        let drop_name = g.drop_name && g.labels.metric_name().is_some();
        out.push(Elem { labels: g.labels, t, v, drop_name });
    }
    Ok(out)
}

fn accumulate(op: u16, g: &mut Group, e: Elem) {
    let f = e.v;
    g.count += 1.0;
    let first = g.count == 1.0;
    match op {
        T_SUM => {
            if first {
                g.value = f;
            } else {
                (g.value, g.kahan) = kahan_inc(f, g.value, g.kahan);
            }
        }
        T_AVG => {
            if first {
                g.value = f;
                g.mean = f;
                return;
            }
            if !g.incremental {
                let (nv, nc) = kahan_inc(f, g.value, g.kahan);
                if !nv.is_infinite() {
                    g.value = nv;
                    g.kahan = nc;
                    return;
                }
                g.incremental = true;
                g.mean = g.value / (g.count - 1.0);
                g.kahan /= g.count - 1.0;
            }
            if g.mean.is_infinite() {
                if f.is_infinite() && (g.mean > 0.0) == (f > 0.0) {
                    return;
                }
                if !f.is_infinite() && !f.is_nan() {
                    return;
                }
            }
            let current = g.mean + g.kahan;
            (g.mean, g.kahan) = kahan_inc(f / g.count - current / g.count, g.mean, g.kahan);
        }
        T_MIN if first || g.value > f || g.value.is_nan() => g.value = f,
        T_MAX if first || g.value < f || g.value.is_nan() => g.value = f,
        T_STDDEV | T_STDVAR => {
            if first {
                g.mean = f;
                g.value = if f.is_nan() || f.is_infinite() { f64::NAN } else { 0.0 };
            } else {
                let delta = f - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (f - g.mean);
            }
        }
        T_QUANTILE | T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO => g.members.push(e),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_and_bounds() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(quantile(-1.0, &mut v), f64::NEG_INFINITY);
        assert_eq!(quantile(2.0, &mut v), f64::INFINITY);
        assert!(quantile(f64::NAN, &mut v).is_nan());
    }

    #[test]
    fn kahan_sum_compensates() {
        let (mut s, mut c) = (0.0, 0.0);
        for x in [1.0, 1e100, 1.0, -1e100] {
            (s, c) = kahan_inc(x, s, c);
        }
        assert_eq!(s + c, 2.0);
    }
}
