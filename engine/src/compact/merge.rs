//! Merging one series' samples from several input blocks into one: the one-to-one merge
//! (Prometheus's compacting merge: identical timestamps collapse, everything else is unioned),
//! penalty deduplication of overlapping replicas (`--deduplication.func=penalty`), and the
//! concatenation of downsampled pieces with their running counters rebased.

use super::penalty::penalty_dedup;
use crate::parquet::AggrSeries;

/// How overlapping samples of one series are merged (`--deduplication.func`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DedupFunc {
    /// `""`: union by timestamp; of samples with the same timestamp the first input's is kept.
    #[default]
    OneToOne,
    /// `penalty`: overlapping inputs are folded pairwise with Thanos's penalty iterator.
    Penalty,
}

impl std::str::FromStr for DedupFunc {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" => Ok(DedupFunc::OneToOne),
            "penalty" => Ok(DedupFunc::Penalty),
            other => Err(format!("unknown deduplication function {other:?} (allowed: \"\", penalty)")),
        }
    }
}

/// Samples of one series: timestamps and values, time-ordered.
pub type Samples = (Vec<i64>, Vec<f64>);

/// Merges the pieces of one series (in input-block order, each time-ordered).
pub fn merge_raw(mut inputs: Vec<Samples>, func: DedupFunc) -> Samples {
    for s in &mut inputs {
        let n = s.0.len().min(s.1.len());
        s.0.truncate(n);
        s.1.truncate(n);
    }
    inputs.retain(|s| !s.0.is_empty());
    if inputs.len() <= 1 {
        return inputs.pop().unwrap_or_default();
    }
    // Pieces sorted by first timestamp (stable: equal starts keep input order).
    inputs.sort_by_key(|s| s.0.first().copied().unwrap_or(i64::MAX));
    match func {
        DedupFunc::OneToOne => {
            if disjoint(&inputs) {
                return concat(inputs);
            }
            let mut it = inputs.into_iter();
            let first = it.next().unwrap_or_default();
            it.fold(first, |acc, s| union(&acc, &s))
        }
        DedupFunc::Penalty => {
            let mut out: Vec<Samples> = Vec::new();
            let mut cluster: Vec<Samples> = Vec::new();
            let mut cluster_end = i64::MIN;
            for s in inputs {
                let (Some(&first), Some(&last)) = (s.0.first(), s.0.last()) else { continue };
                if !cluster.is_empty() && first > cluster_end {
                    out.push(fold_penalty(std::mem::take(&mut cluster)));
                }
                cluster_end = if cluster.is_empty() { last } else { cluster_end.max(last) };
                cluster.push(s);
            }
            if !cluster.is_empty() {
                out.push(fold_penalty(cluster));
            }
            concat(out)
        }
    }
}

fn disjoint(sorted: &[Samples]) -> bool {
    sorted.windows(2).all(|w| match (w[0].0.last(), w[1].0.first()) {
        (Some(a), Some(b)) => a < b,
        _ => true,
    })
}

fn concat(pieces: Vec<Samples>) -> Samples {
    let n = pieces.iter().map(|p| p.0.len()).sum();
    let (mut ts, mut vals) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (t, v) in pieces {
        ts.extend(t);
        vals.extend(v);
    }
    (ts, vals)
}

/// Union by timestamp; on equal timestamps `a`'s sample wins.
fn union(a: &Samples, b: &Samples) -> Samples {
    let (mut ts, mut vals) = (Vec::with_capacity(a.0.len() + b.0.len()), Vec::new());
    vals.reserve(ts.capacity());
    let (mut i, mut j) = (0, 0);
    while i < a.0.len() || j < b.0.len() {
        let take_a = match (a.0.get(i), b.0.get(j)) {
            (Some(ta), Some(tb)) => {
                if ta == tb {
                    j += 1;
                }
                ta <= tb
            }
            (Some(_), None) => true,
            _ => false,
        };
        if take_a {
            ts.push(a.0[i]);
            vals.push(a.1[i]);
            i += 1;
        } else {
            ts.push(b.0[j]);
            vals.push(b.1[j]);
            j += 1;
        }
    }
    (ts, vals)
}

fn fold_penalty(cluster: Vec<Samples>) -> Samples {
    let mut it = cluster.into_iter();
    let first = it.next().unwrap_or_default();
    it.fold(first, |acc, s| penalty_dedup((&acc.0, &acc.1), (&s.0, &s.1)))
}

/// Concatenates downsampled pieces of one series from time-disjoint blocks. Each piece's
/// running counter is rebased onto the total so far, with a reset detected between the
/// previous piece's last raw value and the next piece's first (as Thanos's
/// ApplyCounterResets does across chunks). Rows not after the previous piece are dropped, and
/// such an overlapping piece is rebased at the last row it shares instead.
pub fn concat_aggr(mut inputs: Vec<AggrSeries>) -> AggrSeries {
    inputs.sort_by_key(|s| s.ts.first().copied().unwrap_or(i64::MAX));
    concat_aggr_in_order(inputs)
}

/// [`concat_aggr`] keeping the given order: the order of the time ranges the pieces were
/// chosen to fill (a coarser block first even when a finer one overlapping it starts earlier).
pub fn concat_aggr_in_order(mut inputs: Vec<AggrSeries>) -> AggrSeries {
    inputs.retain(|s| !s.is_empty());
    let mut it = inputs.into_iter();
    let Some(mut out) = it.next() else { return AggrSeries::default() };
    for b in it {
        let (Some(&last_t), Some(&total)) = (out.ts.last(), out.counter.last()) else {
            out = b;
            continue;
        };
        // A piece overlapping what is there (a finer block filling the gap after a coarser
        // one that covers part of it) is aligned at the last window it shares; a disjoint one
        // continues from the previous piece's last raw value, a drop meaning a reset.
        let offset = match b.ts.iter().rposition(|&t| t <= last_t) {
            Some(k) => total - b.counter[k],
            None if b.first_value >= out.last_value => total - out.last_value,
            None => total,
        };
        let mut appended = false;
        for k in 0..b.len() {
            if b.ts[k] <= last_t {
                continue;
            }
            out.push(b.ts[k], b.count[k], b.sum[k], b.min[k], b.max[k], b.counter[k] + offset);
            appended = true;
        }
        if appended {
            out.last_value = b.last_value;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(points: &[(i64, f64)]) -> Samples {
        points.iter().copied().unzip()
    }

    #[test]
    fn one_to_one_collapses_identical_timestamps_and_unions_the_rest() {
        let a = s(&[(0, 1.0), (10, 1.0), (20, 1.0)]);
        let b = s(&[(10, 2.0), (15, 2.0), (30, 2.0)]);
        let got = merge_raw(vec![a, b], DedupFunc::OneToOne);
        assert_eq!(got, s(&[(0, 1.0), (10, 1.0), (15, 2.0), (20, 1.0), (30, 2.0)]));
        // Disjoint pieces given out of order are concatenated in time order.
        let got = merge_raw(vec![s(&[(5, 2.0)]), s(&[(1, 1.0), (2, 1.0)])], DedupFunc::OneToOne);
        assert_eq!(got, s(&[(1, 1.0), (2, 1.0), (5, 2.0)]));
        // Three replicas of byte-identical samples collapse into one.
        let r = s(&[(0, 7.0), (15_000, 8.0)]);
        assert_eq!(merge_raw(vec![r.clone(), r.clone(), r.clone()], DedupFunc::OneToOne), r);
    }

    #[test]
    fn penalty_dedups_overlaps_and_concatenates_disjoint_pieces() {
        // Replica a (0..20s every 10s) and b (offset 3s, 0..40s) overlap; c comes later.
        let a = s(&[(0, 1.0), (10_000, 1.0), (20_000, 1.0)]);
        let b = s(&[(3_000, 2.0), (13_000, 2.0), (23_000, 2.0), (33_000, 2.0), (43_000, 2.0)]);
        let c = s(&[(100_000, 3.0)]);
        let got = merge_raw(vec![c, b, a], DedupFunc::Penalty);
        // a first (0 < 3s); b penalised, then a exhausted at 20s: b seeks ≥ 40.001s → 43s.
        assert_eq!(got, s(&[(0, 1.0), (10_000, 1.0), (20_000, 1.0), (43_000, 2.0), (100_000, 3.0)]));
    }

    fn aggr(ts: &[i64], counter: &[f64], first: f64, last: f64) -> AggrSeries {
        let mut a =
            AggrSeries { first_time: ts[0] - 1, first_value: first, last_value: last, ..Default::default() };
        for (&t, &c) in ts.iter().zip(counter) {
            a.push(t, 1, c, c, c, c);
        }
        a
    }

    #[test]
    fn concat_aggr_rebases_counters_across_blocks() {
        // Block 1: raw 10 → 30, counter 10..30; block 2 continues without reset (35 → 50).
        let b1 = aggr(&[100, 200], &[20.0, 30.0], 10.0, 30.0);
        let b2 = aggr(&[300, 400], &[40.0, 50.0], 35.0, 50.0);
        let got = concat_aggr(vec![b2.clone(), b1.clone()]);
        assert_eq!(got.ts, vec![100, 200, 300, 400]);
        assert_eq!(got.counter, vec![20.0, 30.0, 40.0, 50.0]);
        assert_eq!((got.first_value, got.last_value), (10.0, 50.0));
        // Block 3 starts after a reset (raw 2 → 7): the increase 2 counts, then 5 more.
        let b3 = aggr(&[300, 400], &[4.0, 7.0], 2.0, 7.0);
        let got = concat_aggr(vec![b1.clone(), b3]);
        assert_eq!(got.counter, vec![20.0, 30.0, 34.0, 37.0]);
        assert_eq!(got.last_value, 7.0);
        // A finer piece over the same span (its counter from the same start) continues where
        // the coarser one ends, aligned at the window they share (200).
        let fine = aggr(&[50, 100, 150, 200, 250, 300], &[15.0, 20.0, 25.0, 30.0, 35.0, 40.0], 10.0, 40.0);
        let mut coarse = b1;
        coarse.first_time = 0;
        let got = concat_aggr_in_order(vec![coarse, fine]);
        assert_eq!((got.ts, got.counter), (vec![100, 200, 250, 300], vec![20.0, 30.0, 35.0, 40.0]));
    }
}
