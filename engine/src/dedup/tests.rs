//! Hand-made replica series with outputs worked out by hand from Thanos's algorithm.

use super::penalty::merge_replicas;
use super::*;
use crate::memory::MemorySource;
use crate::source::SelectHints;

/// Seconds to milliseconds.
fn ms(s: &[i64]) -> Vec<i64> {
    s.iter().map(|s| s * 1000).collect()
}

fn merge(reps: &[(Vec<i64>, Vec<f64>)], counter: bool) -> (Vec<i64>, Vec<f64>) {
    let r: Vec<(&[i64], &[f64])> = reps.iter().map(|r| (r.0.as_slice(), r.1.as_slice())).collect();
    merge_replicas(&r, counter)
}

#[test]
fn identical_replicas_give_the_first() {
    let a = (ms(&[0, 10, 20, 30]), vec![1.0, 2.0, 3.0, 4.0]);
    let b = (ms(&[0, 10, 20, 30]), vec![9.0, 9.0, 9.0, 9.0]);
    assert_eq!(merge(&[a.clone(), b], false), a);
}

#[test]
fn different_phases_stay_on_one_replica() {
    let a = (ms(&[0, 15, 30, 45, 60]), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
    let b = (ms(&[5, 20, 35, 50, 65]), vec![7.0; 5]);
    assert_eq!(merge(&[a.clone(), b.clone()], false), a);
    // Whichever replica has the earliest first sample is picked and kept, whatever the order.
    assert_eq!(merge(&[b.clone(), a.clone()], false), a);
    let late_a = (ms(&[7, 22, 37]), vec![1.0, 2.0, 3.0]);
    assert_eq!(merge(&[late_a, b.clone()], false), b);
}

#[test]
fn phase_beyond_the_initial_penalty_takes_one_sample_of_the_other() {
    // 60s scrapes, b 15s behind a: after a's first sample b is sought past 5s only, and b's
    // sample at 15s comes before a's at 60s; from then on the penalty is 2×15s and more.
    let a = (ms(&[0, 60, 120, 180]), vec![1.0, 2.0, 3.0, 4.0]);
    let b = (ms(&[15, 75, 135, 195]), vec![9.0; 4]);
    assert_eq!(merge(&[a, b], false), (ms(&[0, 15, 60, 120, 180]), vec![1.0, 9.0, 2.0, 3.0, 4.0]));
}

#[test]
fn gap_in_one_replica_switches_after_the_penalty() {
    // a: 0 15 30 . . . . . 120 135 150;  b: 5 20 35 50 65 ... 155 (every 15s).
    let a = (ms(&[0, 15, 30, 120, 135, 150]), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let bt: Vec<i64> = (0..11).map(|i| 5 + 15 * i).collect();
    let b = (ms(&bt), (0..11).map(|i| 100.0 + f64::from(i)).collect::<Vec<_>>());
    let (ts, vs) = merge(&[a, b], false);
    // 50 is skipped: after a's sample at 30 the penalty on b is 2×15s, so b is sought past 60s;
    // a's next sample (120) is later than b's (65), so the merge switches to b and stays.
    assert_eq!(ts, ms(&[0, 15, 30, 65, 80, 95, 110, 125, 140, 155]));
    assert_eq!(vs, vec![1.0, 2.0, 3.0, 104.0, 105.0, 106.0, 107.0, 108.0, 109.0, 110.0]);
}

#[test]
fn counter_reset_across_replicas_is_adjusted() {
    // a counts to 120 then stops; b restarted and is far lower.
    let a = (ms(&[0, 15, 30]), vec![100.0, 110.0, 120.0]);
    let b = (ms(&[5, 20, 35, 50, 65, 80]), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let (ts, vs) = merge(&[a.clone(), b.clone()], true);
    assert_eq!(ts, ms(&[0, 15, 30, 65, 80]));
    assert_eq!(vs, vec![100.0, 110.0, 120.0, 120.0, 121.0]);
    // Without the counter hint the values are the replicas' own.
    let (ts2, vs2) = merge(&[a, b], false);
    assert_eq!(ts2, ts);
    assert_eq!(vs2, vec![100.0, 110.0, 120.0, 5.0, 6.0]);
}

#[test]
fn counter_adjustment_at_the_first_step_like_thanos() {
    // b starts earlier, so the very first step switches from a (not yet emitted) to b, and b is
    // lifted to a's first value (the behaviour Thanos PR #9041 discusses).
    let a = (ms(&[10, 25]), vec![50.0, 60.0]);
    let b = (ms(&[0, 15, 30]), vec![40.0, 55.0, 70.0]);
    assert_eq!(merge(&[a.clone(), b.clone()], true), (ms(&[0, 10, 25]), vec![50.0, 50.0, 60.0]));
    assert_eq!(merge(&[a, b], false), (ms(&[0, 10, 25]), vec![40.0, 50.0, 60.0]));
}

#[test]
fn three_replicas_fold_pairwise() {
    let a = (ms(&[0, 10, 20]), vec![1.0, 2.0, 3.0]);
    let b = (ms(&[0, 10]), vec![8.0, 8.0]);
    let c = (ms(&[0, 10, 20, 30, 40, 50, 60]), vec![9.0; 7]);
    // (a,b) gives a's 0 10 20; c then carries a penalty of 2×10s, so it is sought past
    // 20s + 1ms + 20s: 30 and 40 are skipped.
    assert_eq!(merge(&[a, b, c], false), (ms(&[0, 10, 20, 50, 60]), vec![1.0, 2.0, 3.0, 9.0, 9.0]));
}

#[test]
fn empty_and_single_replicas() {
    assert_eq!(merge(&[], false), (vec![], vec![]));
    let a = (ms(&[1, 2]), vec![1.0, 2.0]);
    assert_eq!(merge(std::slice::from_ref(&a), true), a);
    assert_eq!(merge(&[(vec![], vec![]), a.clone()], false), a);
    assert_eq!(merge(&[a.clone(), (vec![], vec![])], false), a);
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[tokio::test]
async fn dedup_source_groups_by_labels_without_replicas() -> Result<()> {
    let src = MemorySource::new([
        (l(&[("__name__", "up"), ("job", "x"), ("replica", "b")]), ms(&[0, 15]), vec![2.0, 2.0]),
        (l(&[("__name__", "up"), ("job", "x"), ("replica", "a")]), ms(&[0, 15]), vec![1.0, 1.0]),
        (l(&[("__name__", "up"), ("job", "y"), ("replica", "a")]), ms(&[0]), vec![3.0]),
        (l(&[("__name__", "up"), ("job", "y"), ("rack", "r1")]), ms(&[0]), vec![4.0]),
    ]);
    let dedup = DedupSource::new(Arc::new(src), vec!["replica".into(), "rack".into()]);
    let mut req = SelectRequest::all();
    req.hints = SelectHints { func: Some("rate".into()), range_ms: 60_000, ..Default::default() };
    let mut got = Vec::new();
    let mut stream = dedup.select(&req).await?;
    while let Some(b) = stream.next().await {
        got.extend(b?.to_series());
    }
    assert_eq!(
        got,
        vec![
            // replica "a" is the first side: its values win.
            (l(&[("__name__", "up"), ("job", "x")]), ms(&[0, 15]), vec![1.0, 1.0]),
            // rack=r1 sorts before replica=a in the original labels, so it is the first side.
            (l(&[("__name__", "up"), ("job", "y")]), ms(&[0]), vec![4.0]),
        ]
    );
    assert_eq!(dedup.label_names(&[]).await?, vec!["__name__", "job"]);
    assert!(dedup.label_values("replica", &[]).await?.is_empty());
    assert_eq!(dedup.label_values("job", &[]).await?, vec!["x", "y"]);
    Ok(())
}

#[test]
fn chain_unites_every_timestamp() -> Result<()> {
    let a = (l(&[("__name__", "up"), ("replica", "a")]), ms(&[0, 20, 40]), vec![1.0, 2.0, 3.0]);
    let b = (l(&[("__name__", "up"), ("replica", "b")]), ms(&[10, 20, 50]), vec![7.0, 8.0, 9.0]);
    let part = |(labels, ts, vs): (Labels, Vec<i64>, Vec<f64>)| (labels, (ts.into(), vs.into()));
    let out = dedup_series(vec![part(b), part(a)], &["replica".into()], DedupFunc::Chain, false);
    let out: Vec<(Labels, Vec<i64>, Vec<f64>)> =
        out.into_iter().map(|(l, (ts, vs))| (l, ts.to_vec(), vs.to_vec())).collect();
    assert_eq!(
        out,
        vec![(l(&[("__name__", "up")]), ms(&[0, 10, 20, 40, 50]), vec![1.0, 7.0, 2.0, 3.0, 9.0])]
    );
    assert_eq!(DedupFunc::parse("chain")?, DedupFunc::Chain);
    assert!(DedupFunc::parse("quorum").is_err());
    Ok(())
}

#[test]
fn counter_functions() {
    for f in ["rate", "increase", "irate", "resets"] {
        assert!(is_counter_function(Some(f)));
    }
    for f in [None, Some("delta"), Some("max_over_time"), Some("xrate")] {
        assert!(!is_counter_function(f));
    }
}
