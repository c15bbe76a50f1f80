//! Conversions between the wire's labels and matchers (package `thanos`) and the engine's
//! [`Labels`] and [`Matcher`], and Prometheus's label-set order (`labels.Compare`).

use crate::{Error, Labels, MatchOp, Matcher, Result};
use promlake_proto::thanos::{Label as PbLabel, LabelMatcher, label_matcher::Type};
use std::cmp::Ordering;

/// A label set on the wire (sorted by name, as the engine keeps it).
pub fn labels_to_proto(labels: &Labels) -> Vec<PbLabel> {
    labels.iter().map(|l| PbLabel { name: l.name.clone(), value: l.value.clone() }).collect()
}

/// A label set from the wire; sorted, duplicates resolved, empty values dropped.
pub fn labels_from_proto(labels: &[PbLabel]) -> Labels {
    Labels::from_pairs(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
}

/// Matchers from the wire; an unknown type or a bad regex is an [`Error::Matcher`].
pub fn matchers_from_proto(matchers: &[LabelMatcher]) -> Result<Vec<Matcher>> {
    matchers
        .iter()
        .map(|m| {
            let op = match Type::try_from(m.r#type) {
                Ok(Type::Eq) => MatchOp::Equal,
                Ok(Type::Neq) => MatchOp::NotEqual,
                Ok(Type::Re) => MatchOp::Regex,
                Ok(Type::Nre) => MatchOp::NotRegex,
                Err(_) => {
                    return Err(Error::Matcher {
                        matcher: format!("{}?{:?}", m.name, m.value),
                        reason: format!("unknown matcher type {} (want EQ=0, NEQ=1, RE=2, NRE=3)", m.r#type),
                    });
                }
            };
            Matcher::new(op, m.name.clone(), m.value.clone())
        })
        .collect()
}

/// Matchers on the wire.
pub fn matchers_to_proto(matchers: &[Matcher]) -> Vec<LabelMatcher> {
    matchers
        .iter()
        .map(|m| LabelMatcher {
            r#type: match m.op {
                MatchOp::Equal => Type::Eq,
                MatchOp::NotEqual => Type::Neq,
                MatchOp::Regex => Type::Re,
                MatchOp::NotRegex => Type::Nre,
            } as i32,
            name: m.name.clone(),
            value: m.value.clone(),
        })
        .collect()
}

/// Prometheus's `labels.Compare`: label by label (name, then value) in name order, a set
/// that is a prefix of the other first. This is the order StoreAPI series frames must follow.
pub fn compare_labels(a: &Labels, b: &Labels) -> Ordering {
    a.iter().map(|l| (&l.name, &l.value)).cmp(b.iter().map(|l| (&l.name, &l.value)))
}

/// Removes the labels named in `names` that are external labels (`external_names`); a
/// series' own label of the same name stays (Thanos's `without_replica_labels`).
pub fn strip_labels(labels: &Labels, names: &[String], external_names: &[String]) -> Labels {
    if names.is_empty() {
        return labels.clone();
    }
    Labels::from_pairs(
        labels
            .iter()
            .filter(|l| !(names.contains(&l.name) && external_names.contains(&l.name)))
            .map(|l| (l.name.as_str(), l.value.as_str())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_order_is_label_by_label() {
        let a = Labels::from_pairs([("A", "1"), ("__name__", "z")]);
        let b = Labels::from_pairs([("__name__", "a")]);
        // "A" < "__name__" bytewise: Prometheus order puts `a` first although its name is "z".
        assert_eq!(compare_labels(&a, &b), Ordering::Less);
        let c = Labels::from_pairs([("__name__", "a"), ("job", "x")]);
        assert_eq!(compare_labels(&b, &c), Ordering::Less);
    }

    #[test]
    fn matchers_round_trip_and_reject_unknown_types() {
        let ms = vec![
            Matcher::new(MatchOp::Regex, "job", "a|b").unwrap_or_else(|e| panic!("{e}")),
            Matcher::equal("x", "y"),
        ];
        let back = matchers_from_proto(&matchers_to_proto(&ms)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back[0].to_string(), ms[0].to_string());
        let bad = LabelMatcher { r#type: 9, name: "a".into(), value: "b".into() };
        assert!(matchers_from_proto(&[bad]).is_err());
        let bad_re = LabelMatcher { r#type: Type::Re as i32, name: "a".into(), value: "(".into() };
        assert!(matchers_from_proto(&[bad_re]).is_err());
    }
}
