//! Merging the members' answers into one label-ordered list.

use crate::Labels;

/// One series: labels, timestamps, values.
type Series = (Labels, Vec<i64>, Vec<f64>);

/// Merges per-member series lists (each in label order) into one list in label order
/// ([`Labels::block_order`]). Series with equal label sets from different members are chained:
/// samples united in time order, a timestamp present in several kept once (the first member's).
pub fn merge_series(lists: Vec<Vec<Series>>) -> Vec<Series> {
    let mut all: Vec<(usize, Series)> =
        lists.into_iter().enumerate().flat_map(|(i, l)| l.into_iter().map(move |s| (i, s))).collect();
    // Stable, and the runs are already sorted: close to a k-way merge.
    all.sort_by(|a, b| a.1.0.block_order(&b.1.0).then(a.0.cmp(&b.0)));
    let mut out: Vec<Series> = Vec::with_capacity(all.len());
    for (_, s) in all {
        match out.last_mut() {
            Some(last) if last.0 == s.0 => chain(last, s),
            _ => out.push(s),
        }
    }
    out
}

/// Adds `more`'s samples to `into`; on equal timestamps `into` wins.
fn chain(into: &mut Series, more: Series) {
    let (_, ts, vs) = more;
    if into.1.last().is_none_or(|&l| ts.first().is_some_and(|&f| f > l)) {
        into.1.extend(ts);
        into.2.extend(vs);
        return;
    }
    let a = std::mem::take(&mut into.1).into_iter().zip(std::mem::take(&mut into.2));
    let mut pts: Vec<(i64, f64)> = a.chain(ts.into_iter().zip(vs)).collect();
    // Stable: for equal timestamps the earlier member's sample comes first and is kept.
    pts.sort_by_key(|p| p.0);
    pts.dedup_by_key(|p| p.0);
    (into.1, into.2) = pts.into_iter().unzip();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &str) -> Labels {
        Labels::from_pairs([("__name__", "m"), ("k", v)])
    }

    #[test]
    fn merges_in_label_order_and_chains_equal_sets() {
        let a = vec![(l("1"), vec![1, 2], vec![1.0, 2.0]), (l("3"), vec![1], vec![3.0])];
        let b = vec![(l("1"), vec![2, 3], vec![9.0, 3.0]), (l("2"), vec![5], vec![5.0])];
        let c = vec![(l("1"), vec![4], vec![4.0])];
        assert_eq!(
            merge_series(vec![a, b, c]),
            vec![
                (l("1"), vec![1, 2, 3, 4], vec![1.0, 2.0, 3.0, 4.0]),
                (l("2"), vec![5], vec![5.0]),
                (l("3"), vec![1], vec![3.0]),
            ]
        );
    }
}
