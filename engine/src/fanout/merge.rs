//! Merging the members' answers into one label-ordered list.

use crate::Labels;
use crate::source::Part;

/// Merges per-member series lists (each in label order) into one list in label order
/// ([`Labels::block_order`]), each label set with its parts in member order. Nothing is
/// copied: [`crate::source::parts_stream`] joins the parts (concatenated when they follow each
/// other in time, else united in time order with a timestamp present in several kept once, the
/// first member's).
pub fn merge_series(lists: Vec<Vec<(Labels, Part)>>) -> Vec<(Labels, Vec<Part>)> {
    let mut all: Vec<(usize, Labels, Part)> = lists
        .into_iter()
        .enumerate()
        .flat_map(|(i, l)| l.into_iter().map(move |(labels, part)| (i, labels, part)))
        .collect();
    // Stable, and the runs are already sorted: close to a k-way merge.
    all.sort_by(|a, b| a.1.block_order(&b.1).then(a.0.cmp(&b.0)));
    let mut out: Vec<(Labels, Vec<Part>)> = Vec::with_capacity(all.len());
    for (_, labels, part) in all {
        match out.last_mut() {
            Some(last) if last.0 == labels => last.1.push(part),
            _ => out.push((labels, vec![part])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "test code")]
    use super::*;

    fn l(v: &str) -> Labels {
        Labels::from_pairs([("__name__", "m"), ("k", v)])
    }

    #[test]
    fn merges_in_label_order_and_chains_equal_sets() {
        let part = |ts: &[i64], vs: &[f64]| -> Part { (ts.to_vec().into(), vs.to_vec().into()) };
        let a = vec![(l("1"), part(&[1, 2], &[1.0, 2.0])), (l("3"), part(&[1], &[3.0]))];
        let b = vec![(l("1"), part(&[2, 3], &[9.0, 3.0])), (l("2"), part(&[5], &[5.0]))];
        let c = vec![(l("1"), part(&[4], &[4.0]))];
        let merged = merge_series(vec![a, b, c]);
        let labels: Vec<&Labels> = merged.iter().map(|s| &s.0).collect();
        assert_eq!(labels, [&l("1"), &l("2"), &l("3")]);
        let batch = futures::executor::block_on(async {
            use futures::StreamExt;
            crate::source::parts_stream(merged).next().await.unwrap().unwrap()
        });
        assert_eq!(
            batch.to_series(),
            vec![
                (l("1"), vec![1, 2, 3, 4], vec![1.0, 2.0, 3.0, 4.0]),
                (l("2"), vec![5], vec![5.0]),
                (l("3"), vec![1], vec![3.0]),
            ]
        );
    }
}
