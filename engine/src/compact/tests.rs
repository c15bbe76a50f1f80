//! Unit tests of the compactor's pure parts: the planner and downsampling against a
//! brute-force computation.

#![expect(clippy::unwrap_used, reason = "test code")]

use super::downsample::{STALE_NAN_BITS, downsample_aggr, downsample_raw, window_end};
use super::plan::*;
use crate::bucket::BlockInfo;
use crate::parquet::{AggrSeries, RES_1H, RES_5M};
use promlake_compat::BlockMeta;
use std::collections::BTreeMap;

const H: i64 = 3_600_000;

fn block(ulid: &str, min: i64, max: i64, level: u32, sources: &[&str]) -> BlockInfo {
    let json = format!(
        r#"{{"ulid":"{ulid}","minTime":{min},"maxTime":{max},"compaction":{{"level":{level},"sources":{:?}}},"version":1,"thanos":{{"labels":{{"cluster":"a"}}}}}}"#,
        sources
    );
    BlockInfo::from_meta(BlockMeta::parse("test", json.as_bytes()).unwrap())
}

fn none() -> std::collections::BTreeSet<String> {
    Default::default()
}

fn ids(blocks: &[BlockInfo], idx: &[usize]) -> Vec<String> {
    idx.iter().map(|&i| blocks[i].meta.ulid.clone()).collect()
}

#[test]
fn plan_waits_for_a_newer_block_then_compacts_full_ranges() {
    // Four 2h blocks filling [0, 8h): the newest stays out, so nothing yet.
    let mut blocks: Vec<BlockInfo> =
        (0..4).map(|i| block(&format!("B{i}"), i * 2 * H, (i + 1) * 2 * H, 1, &[])).collect();
    assert!(plan(&blocks, &none()).blocks.is_empty());
    // A fifth block (8h-10h) arrives: the first 8h range is complete.
    blocks.push(block("B4", 8 * H, 10 * H, 1, &[]));
    assert_eq!(ids(&blocks, &plan(&blocks, &none()).blocks), ["B0", "B1", "B2", "B3"]);
    // With a gap: blocks of [0,8h) missing the 4-6h one still compact once a later block
    // exists (they end before the newest remaining block starts).
    let gap = vec![
        block("G0", 0, 2 * H, 1, &[]),
        block("G1", 2 * H, 4 * H, 1, &[]),
        block("G3", 6 * H, 8 * H, 1, &[]),
        block("G4", 8 * H, 10 * H, 1, &[]),
        block("G5", 10 * H, 12 * H, 1, &[]),
    ];
    assert_eq!(ids(&gap, &plan(&gap, &none()).blocks), ["G0", "G1", "G3"]);
    // A no-compact block splits its range: only the run after it (two blocks) is compacted.
    let marked = std::collections::BTreeSet::from(["G0".to_string()]);
    assert_eq!(ids(&gap, &plan(&gap, &marked).blocks), ["G1", "G3"]);
    // Marked in the middle: no run of two is left in the range.
    let marked = std::collections::BTreeSet::from(["G1".to_string()]);
    assert!(plan(&gap, &marked).blocks.is_empty());
}

#[test]
fn plan_goes_to_2d_once_8h_blocks_fill_it_and_prefers_overlaps() {
    let mut blocks: Vec<BlockInfo> =
        (0..6).map(|i| block(&format!("E{i}"), i * 8 * H, (i + 1) * 8 * H, 2, &[])).collect();
    blocks.push(block("N", 48 * H, 50 * H, 1, &[]));
    blocks.push(block("N2", 50 * H, 52 * H, 1, &[]));
    assert_eq!(ids(&blocks, &plan(&blocks, &none()).blocks), ["E0", "E1", "E2", "E3", "E4", "E5"]);
    // Overlapping blocks come first, whatever their range.
    let over =
        vec![block("A", 0, 2 * H, 1, &[]), block("B", H, 3 * H, 1, &[]), block("C", 3 * H, 4 * H, 1, &[])];
    assert_eq!(ids(&over, &overlapping(&over)), ["A", "B"]);
    assert_eq!(ids(&over, &plan(&over, &none()).blocks), ["A", "B"]);
}

#[test]
fn redundant_blocks_and_groups() {
    let blocks = vec![
        block("01A", 0, 2 * H, 1, &["01A"]),
        block("01B", 2 * H, 4 * H, 1, &[]),
        block("01C", 0, 4 * H, 2, &["01A", "01B"]),
        block("01D", 4 * H, 6 * H, 1, &["01D"]),
    ];
    assert_eq!(ids(&blocks, &covered(&blocks)), ["01A", "01B"]);
    let mut replica = block("01E", 0, 2 * H, 1, &[]);
    replica.meta.thanos.as_mut().unwrap().labels.insert("replica".into(), "r1".into());
    let all: Vec<BlockInfo> = blocks.iter().cloned().chain([replica]).collect();
    assert_eq!(group_blocks(&all, &[]).len(), 2);
    let groups = group_blocks(&all, &["replica".to_string()]);
    assert_eq!(groups.len(), 1);
    let key = groups.keys().next().unwrap();
    assert_eq!(key.to_string(), r#"0@{cluster="a"}"#);
}

#[test]
fn downsample_candidates_by_span_and_sources() {
    let long = block("01L", 0, 48 * H, 3, &["01A", "01B"]);
    let short = block("01S", 48 * H, 56 * H, 2, &["01C"]);
    let blocks = vec![long.clone(), short];
    let c = downsample_candidates(&blocks, 0);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].meta.ulid, "01L");
    let mut done = block("01M", 0, 48 * H, 3, &["01A", "01B"]);
    done.meta.thanos.as_mut().unwrap().downsample.resolution = RES_5M;
    assert!(downsample_candidates(&[long, done], 0).is_empty());
}

/// Brute force: group samples by window end, compute the aggregates directly.
fn brute_force(ts: &[i64], vals: &[f64], res: i64) -> AggrSeries {
    let pts: Vec<(i64, f64)> =
        ts.iter().copied().zip(vals.iter().copied()).filter(|p| p.1.to_bits() != STALE_NAN_BITS).collect();
    let last_t = *ts.last().unwrap();
    let mut windows: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for &(t, v) in &pts {
        windows.entry(window_end(t, res).min(last_t)).or_default().push(v);
    }
    // Counter: running total with resets, read at each window's last sample.
    let mut counter_at = Vec::new();
    let (mut total, mut last) = (0.0, 0.0);
    for (i, &(_, v)) in pts.iter().enumerate() {
        if i == 0 {
            total = v;
        } else if v < last {
            total += v;
        } else {
            total += v - last;
        }
        last = v;
        counter_at.push(total);
    }
    let mut out =
        AggrSeries { first_time: pts[0].0, first_value: pts[0].1, last_value: last, ..Default::default() };
    let mut k = 0;
    for (t, vs) in windows {
        k += vs.len();
        let min = vs.iter().copied().fold(f64::MAX, |a, v| if v < a { v } else { a });
        let max = vs.iter().copied().fold(-f64::MAX, |a, v| if v > a { v } else { a });
        out.push(t, vs.len() as i64, vs.iter().sum(), min, max, counter_at[k - 1]);
    }
    out
}

fn series(seed: u64, n: usize) -> (Vec<i64>, Vec<f64>) {
    let mut x = seed;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut ts, mut vals) = (Vec::new(), Vec::new());
    let (mut t, mut v) = (1_700_000_123_456i64, 100.0);
    for i in 0..n {
        t += 10_000 + (rnd() % 50_000) as i64;
        v += (rnd() % 100) as f64;
        if rnd() % 97 == 0 {
            v = (rnd() % 10) as f64; // reset
        }
        ts.push(t);
        vals.push(if i % 211 == 5 { f64::from_bits(STALE_NAN_BITS) } else { v });
    }
    (ts, vals)
}

#[test]
fn downsample_raw_matches_brute_force() {
    for seed in [1u64, 7, 99] {
        let (ts, vals) = series(seed, 3000);
        let got = downsample_raw(&ts, &vals, RES_5M).unwrap();
        let want = brute_force(&ts, &vals, RES_5M);
        assert_eq!(got.ts, want.ts);
        assert_eq!(got.count, want.count);
        assert_eq!(got.min, want.min);
        assert_eq!(got.max, want.max);
        assert_eq!(got.counter, want.counter);
        for (a, b) in got.sum.iter().zip(&want.sum) {
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
        }
        assert_eq!(
            (got.first_time, got.first_value, got.last_value),
            (want.first_time, want.first_value, want.last_value)
        );
        assert_eq!(
            got.count.iter().sum::<i64>() as usize,
            vals.iter().filter(|v| v.to_bits() != STALE_NAN_BITS).count()
        );
    }
    // Only staleness markers: nothing.
    assert!(downsample_raw(&[1, 2], &[f64::from_bits(STALE_NAN_BITS); 2], RES_5M).is_none());
}

#[test]
fn downsample_1h_from_5m_equals_1h_from_raw() {
    for seed in [3u64, 11] {
        let (ts, vals) = series(seed, 20_000);
        let five = downsample_raw(&ts, &vals, RES_5M).unwrap();
        let got = downsample_aggr(&five, RES_1H).unwrap();
        let want = brute_force(&ts, &vals, RES_1H);
        assert_eq!(got.ts, want.ts);
        assert_eq!(got.count, want.count);
        assert_eq!(got.min, want.min);
        assert_eq!(got.max, want.max);
        for (a, b) in got.counter.iter().zip(&want.counter) {
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "counter {a} vs {b}");
        }
        for (a, b) in got.sum.iter().zip(&want.sum) {
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "sum {a} vs {b}");
        }
    }
}
