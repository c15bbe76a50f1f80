//! Label sets: the identity of a series.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// The label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label: a name and a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// The label name.
    pub name: String,
    /// The label value (never empty in a stored series: an empty value means "no label").
    pub value: String,
}

/// A series' label set, sorted by label name, names unique. Immutable and shared: a clone is
/// a reference-count increment, so evaluation can hand a series' labels to every step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(Arc<[Label]>);

impl Labels {
    /// Builds a label set from pairs in any order; later duplicates replace earlier ones and
    /// empty values are dropped (Prometheus semantics: an empty label is an absent label).
    pub fn from_pairs<N: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        let mut v: Vec<Label> =
            pairs.into_iter().map(|(n, v)| Label { name: n.into(), value: v.into() }).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(v.len());
        for l in v {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        out.retain(|l| !l.value.is_empty());
        Labels(out.into())
    }

    /// An address that identifies this shared label set while it (or a clone) is alive: two
    /// clones give the same address, so callers can memoize work per series.
    pub fn shared_id(&self) -> usize {
        Arc::as_ptr(&self.0).cast::<Label>() as usize
    }

    /// The labels, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.binary_search_by(|l| l.name.as_str().cmp(name)).ok().map(|i| self.0[i].value.as_str())
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The order series take in a block: by metric name first, then label by label in name
    /// order (name, then value), a shorter set first when one is a prefix of the other.
    pub fn block_order(&self, other: &Labels) -> Ordering {
        self.metric_name().unwrap_or("").cmp(other.metric_name().unwrap_or("")).then_with(|| {
            let a = self.0.iter().filter(|l| l.name != METRIC_NAME);
            let b = other.0.iter().filter(|l| l.name != METRIC_NAME);
            a.map(|l| (&l.name, &l.value)).cmp(b.map(|l| (&l.name, &l.value)))
        })
    }

    /// Merges `extra` into this set; `extra` wins on conflicts.
    pub fn merged(&self, extra: &Labels) -> Labels {
        Labels::from_pairs(self.iter().chain(extra.iter()).map(|l| (l.name.clone(), l.value.clone())))
    }
}

impl fmt::Display for Labels {
    /// Prometheus's text form: `{__name__="up", job="node"}` with Go-quoted values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Labels {
    fn from_iter<T: IntoIterator<Item = (N, V)>>(iter: T) -> Self {
        Labels::from_pairs(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pairs_sorts_dedups_and_drops_empty() {
        let l = Labels::from_pairs([("job", "a"), ("__name__", "up"), ("x", ""), ("job", "b")]);
        assert_eq!(l.to_string(), r#"{__name__="up", job="b"}"#);
        assert_eq!(l.get("job"), Some("b"));
        assert_eq!(l.get("x"), None);
    }

    #[test]
    fn block_order_puts_metric_name_first() {
        // "A" sorts before "__name__" bytewise; the block order still compares names first.
        let a = Labels::from_pairs([("__name__", "b"), ("A", "1")]);
        let b = Labels::from_pairs([("__name__", "c"), ("A", "0")]);
        assert_eq!(a.block_order(&b), Ordering::Less);
        let c = Labels::from_pairs([("__name__", "b")]);
        assert_eq!(c.block_order(&a), Ordering::Less);
    }
}
