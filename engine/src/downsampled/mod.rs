//! Downsampled data for queries — the store side of Thanos's `max_source_resolution`
//! (reference/thanos.md §6): which blocks answer a time range at a resolution (the coarsest
//! allowed, gaps filled from finer data), which aggregate a PromQL function reads, and
//! [`ResolutionSource`], a [`crate::SeriesSource`] over a bucket that serves those values.
//!
//! Aggregate choice by the function around the selector ([`crate::SelectHints::func`]):
//! `min*` → min, `max*` → max, `count*` → count, `sum_over_time` → sum, `rate`, `increase`,
//! `irate`, `resets`, `xrate`, `xincrease` → the reset-free counter (starting with the first raw
//! sample; `resets()` therefore sees none), anything else → sum / count per window (an average).
//! Known, as in Thanos: `count_over_time` counts windows, not raw samples.
//!
//! Over the StoreAPI, [`PieceSource`] hands `promlake store` the per-block [`Piece`]s it sends
//! as aggregate chunks; the client decodes them into pieces and runs the same [`join`].

mod pieces;
mod source;
mod view;

pub use pieces::{Piece, PieceSource, SeriesPieces, join, trim_windows};
pub use source::ResolutionSource;
pub use view::BucketView;

use crate::bucket::BlockInfo;
use crate::compact::plan::resolution;
use crate::parquet::AggrSeries;
use std::collections::BTreeMap;

/// The aggregate a query reads from downsampled data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggr {
    /// Raw samples per window.
    Count,
    /// Sum per window.
    Sum,
    /// Minimum per window.
    Min,
    /// Maximum per window.
    Max,
    /// The reset-free running counter.
    Counter,
    /// Sum / count per window.
    Avg,
}

/// The aggregate for the PromQL function `func` applied to a selector (Thanos's table).
pub fn aggr_for_func(func: Option<&str>) -> Aggr {
    let Some(f) = func else { return Aggr::Avg };
    match f {
        "rate" | "increase" | "irate" | "resets" | "xrate" | "xincrease" => Aggr::Counter,
        "sum_over_time" => Aggr::Sum,
        f if f == "min" || f.starts_with("min_") => Aggr::Min,
        f if f == "max" || f.starts_with("max_") => Aggr::Max,
        f if f == "count" || f.starts_with("count_") => Aggr::Count,
        _ => Aggr::Avg,
    }
}

/// The maximum source resolution (ms) of a query: Thanos's `max_source_resolution` parameter
/// (`0s`/`raw`, `5m`, `1h`, `auto`, or any duration such as `300s`; empty means auto when
/// `auto_downsampling`, raw otherwise). `auto` is a fifth of the query's step (0 for instant
/// queries), as `--query.auto-downsampling` does.
pub fn max_source_resolution(param: &str, step_ms: i64, auto_downsampling: bool) -> crate::Result<i64> {
    let auto = || (step_ms / 5).max(0);
    match param.trim() {
        "" => Ok(if auto_downsampling { auto() } else { 0 }),
        "auto" => Ok(auto()),
        "raw" | "0" | "0s" => Ok(0),
        other => parse_duration_ms(other).ok_or_else(|| {
            crate::Error::InvalidArgument(format!(
                "max_source_resolution {other:?}: expected 0s, 5m, 1h, auto or a duration"
            ))
        }),
    }
}

fn parse_duration_ms(s: &str) -> Option<i64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let mult = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The lookback delta for data at `resolution` (ms): raised to the resolution, as Thanos does,
/// so an instant selector still finds the window before it.
pub fn lookback_for(lookback_ms: i64, resolution_ms: i64) -> i64 {
    lookback_ms.max(resolution_ms)
}

/// The blocks answering `[min_time, max_time]` at `max_resolution` (ms), time-ordered: blocks
/// of the coarsest resolution not above it, and for the time they leave uncovered, recursively
/// the next finer resolution (Thanos's store). `blocks` may hold every resolution.
pub fn blocks_for(blocks: &[BlockInfo], min_time: i64, max_time: i64, max_resolution: i64) -> Vec<BlockInfo> {
    ranges_for(blocks, min_time, max_time, max_resolution).into_iter().map(|(b, _, _)| b).collect()
}

/// [`blocks_for`] with the part `[from, to]` (ms, inclusive) of the range each block answers:
/// the part of the range (or of the gap a coarser level left) its own time range covers.
///
/// The choice is made per external-label set (one Prometheus, one cluster): a cluster whose
/// history is downsampled does not hide the raw blocks of another that has only raw data.
/// The result is time-ordered within each set.
pub fn ranges_for(
    blocks: &[BlockInfo],
    min_time: i64,
    max_time: i64,
    max_resolution: i64,
) -> Vec<(BlockInfo, i64, i64)> {
    let mut sets: BTreeMap<BTreeMap<String, String>, Vec<&BlockInfo>> = BTreeMap::new();
    for b in blocks {
        sets.entry(b.meta.external_labels()).or_default().push(b);
    }
    sets.into_values().flat_map(|set| ranges_in_set(&set, min_time, max_time, max_resolution)).collect()
}

/// [`ranges_for`] over the blocks of one external-label set.
fn ranges_in_set(
    blocks: &[&BlockInfo],
    min_time: i64,
    max_time: i64,
    max_resolution: i64,
) -> Vec<(BlockInfo, i64, i64)> {
    let mut resolutions: Vec<i64> = blocks.iter().map(|b| resolution(&b.meta)).collect();
    resolutions.sort_unstable_by(|a, b| b.cmp(a));
    resolutions.dedup();
    let by_res: Vec<Vec<&BlockInfo>> = resolutions
        .iter()
        .map(|&r| {
            let mut v: Vec<&BlockInfo> =
                blocks.iter().copied().filter(|b| resolution(&b.meta) == r).collect();
            v.sort_by_key(|b| (b.meta.min_time, b.meta.ulid.clone()));
            v
        })
        .collect();
    let Some(first) = resolutions.iter().position(|&r| r <= max_resolution) else { return Vec::new() };
    let mut out = Vec::new();
    fill(&by_res, first, min_time, max_time, &mut out);
    out
}

fn fill(
    by_res: &[Vec<&BlockInfo>],
    i: usize,
    min_time: i64,
    max_time: i64,
    out: &mut Vec<(BlockInfo, i64, i64)>,
) {
    if min_time > max_time {
        return;
    }
    let Some(level) = by_res.get(i) else { return };
    let mut start = min_time;
    for b in level {
        // Block ranges are half-open [minTime, maxTime).
        if b.meta.max_time <= start {
            continue;
        }
        if b.meta.min_time > max_time {
            break;
        }
        fill(by_res, i + 1, start, b.meta.min_time - 1, out);
        // The part of the gap this block lies in (blocks of one level may overlap: each keeps
        // its whole part).
        let from = min_time.max(b.meta.min_time);
        let to = max_time.min(b.meta.max_time.saturating_sub(1)).max(from);
        out.push(((*b).clone(), from, to));
        start = start.max(b.meta.max_time);
    }
    fill(by_res, i + 1, start, max_time, out);
}

/// Raw samples as one-sample windows, so they join downsampled pieces: count 1, sum = min =
/// max = the value, and the reset-adjusted running counter.
pub fn raw_to_aggr(ts: &[i64], vals: &[f64]) -> AggrSeries {
    let n = ts.len().min(vals.len());
    let stale = |v: f64| v.to_bits() == crate::compact::downsample::STALE_NAN_BITS;
    let mut out = AggrSeries::default();
    let (mut total, mut last, mut started) = (0.0, 0.0, false);
    for i in 0..n {
        let v = vals[i];
        if stale(v) {
            continue;
        }
        if !started {
            (total, started) = (v, true);
            (out.first_time, out.first_value) = (ts[i], v);
        } else if v < last {
            total += v;
        } else {
            total += v - last;
        }
        last = v;
        out.push(ts[i], 1, v, v, v, total);
    }
    out.last_value = last;
    out
}

/// The sample values `aggr` reads from a (possibly concatenated) downsampled series. The
/// counter starts with the first raw sample when it precedes the first window.
pub fn aggr_samples(s: &AggrSeries, aggr: Aggr) -> (Vec<i64>, Vec<f64>) {
    let vals: Vec<f64> = match aggr {
        Aggr::Count => s.count.iter().map(|&c| c as f64).collect(),
        Aggr::Sum => s.sum.clone(),
        Aggr::Min => s.min.clone(),
        Aggr::Max => s.max.clone(),
        Aggr::Avg => s.sum.iter().zip(&s.count).map(|(&su, &c)| su / c as f64).collect(),
        Aggr::Counter => {
            let mut ts = Vec::with_capacity(s.len() + 1);
            let mut vals = Vec::with_capacity(s.len() + 1);
            if s.ts.first().is_some_and(|&t| s.first_time < t) {
                ts.push(s.first_time);
                vals.push(s.first_value);
            }
            ts.extend_from_slice(&s.ts);
            vals.extend_from_slice(&s.counter);
            return (ts, vals);
        }
    };
    (s.ts.clone(), vals)
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use promlake_compat::BlockMeta;

    fn block(ulid: &str, min: i64, max: i64, res: i64) -> BlockInfo {
        let json = format!(
            r#"{{"ulid":"{ulid}","minTime":{min},"maxTime":{max},"version":1,"thanos":{{"downsample":{{"resolution":{res}}}}}}}"#
        );
        BlockInfo::from_meta(BlockMeta::parse("t", json.as_bytes()).unwrap())
    }

    #[test]
    fn coarsest_resolution_first_gaps_from_finer() {
        let blocks = vec![
            block("R1", 0, 100, 0),
            block("R2", 100, 200, 0),
            block("R3", 200, 300, 0),
            block("F1", 100, 200, 300_000),
            block("H1", 0, 50, 3_600_000),
        ];
        let ids = |v: Vec<BlockInfo>| v.into_iter().map(|b| b.meta.ulid).collect::<Vec<_>>();
        assert_eq!(ids(blocks_for(&blocks, 0, 299, 3_600_000)), ["H1", "R1", "F1", "R3"]);
        assert_eq!(ids(blocks_for(&blocks, 0, 299, 300_000)), ["R1", "F1", "R3"]);
        assert_eq!(ids(blocks_for(&blocks, 0, 299, 0)), ["R1", "R2", "R3"]);
        assert_eq!(ids(blocks_for(&blocks, 120, 150, 300_000)), ["F1"]);
        let parts: Vec<(String, i64, i64)> =
            ranges_for(&blocks, 0, 299, 3_600_000).into_iter().map(|(b, f, t)| (b.meta.ulid, f, t)).collect();
        let want = [("H1", 0, 49), ("R1", 50, 99), ("F1", 100, 199), ("R3", 200, 299)];
        assert_eq!(parts, want.map(|(u, f, t)| (u.to_string(), f, t)));
        // Overlapping blocks of one level each keep their whole part.
        let overlapping = vec![block("A", 0, 100, 300_000), block("B", 50, 150, 300_000)];
        let parts: Vec<(i64, i64)> =
            ranges_for(&overlapping, 0, 299, 300_000).into_iter().map(|(_, f, t)| (f, t)).collect();
        assert_eq!(parts, [(0, 99), (50, 149)]);
    }

    #[test]
    fn resolution_is_chosen_per_external_label_set() {
        let with_labels = |ulid: &str, min: i64, max: i64, res: i64, cluster: &str| {
            let json = format!(
                r#"{{"ulid":"{ulid}","minTime":{min},"maxTime":{max},"version":1,"thanos":{{"labels":{{"cluster":"{cluster}"}},"downsample":{{"resolution":{res}}}}}}}"#
            );
            BlockInfo::from_meta(BlockMeta::parse("t", json.as_bytes()).unwrap())
        };
        let blocks = vec![
            with_labels("A-raw", 0, 300, 0, "a"),
            with_labels("A-5m", 0, 300, 300_000, "a"),
            with_labels("B-raw", 0, 300, 0, "b"),
        ];
        let parts: Vec<(String, i64, i64)> =
            ranges_for(&blocks, 0, 299, 300_000).into_iter().map(|(b, f, t)| (b.meta.ulid, f, t)).collect();
        let want = [("A-5m", 0, 299), ("B-raw", 0, 299)];
        assert_eq!(parts, want.map(|(u, f, t)| (u.to_string(), f, t)));
        let raw: Vec<String> = blocks_for(&blocks, 0, 299, 0).into_iter().map(|b| b.meta.ulid).collect();
        assert_eq!(raw, ["A-raw", "B-raw"]);
    }

    #[test]
    fn max_source_resolution_parameter() {
        assert_eq!(max_source_resolution("5m", 60_000, false).unwrap(), 300_000);
        assert_eq!(max_source_resolution("1h", 0, false).unwrap(), 3_600_000);
        assert_eq!(max_source_resolution("0s", 0, true).unwrap(), 0);
        assert_eq!(max_source_resolution("auto", 3_600_000, false).unwrap(), 720_000);
        assert_eq!(max_source_resolution("", 3_600_000, true).unwrap(), 720_000);
        assert_eq!(max_source_resolution("", 3_600_000, false).unwrap(), 0);
        assert!(max_source_resolution("5x", 0, false).unwrap_err().to_string().contains("5x"));
        assert_eq!(lookback_for(300_000, 3_600_000), 3_600_000);
    }

    #[test]
    fn aggregate_choice_follows_thanos() {
        assert_eq!(aggr_for_func(Some("rate")), Aggr::Counter);
        assert_eq!(aggr_for_func(Some("max_over_time")), Aggr::Max);
        assert_eq!(aggr_for_func(Some("min")), Aggr::Min);
        assert_eq!(aggr_for_func(Some("count_over_time")), Aggr::Count);
        assert_eq!(aggr_for_func(Some("sum_over_time")), Aggr::Sum);
        assert_eq!(aggr_for_func(Some("avg_over_time")), Aggr::Avg);
        assert_eq!(aggr_for_func(None), Aggr::Avg);
    }

    #[test]
    fn raw_pieces_become_single_sample_windows() {
        let a = raw_to_aggr(&[1, 2, 3, 4], &[5.0, 7.0, 2.0, 3.0]);
        assert_eq!(a.counter, vec![5.0, 7.0, 9.0, 10.0]);
        assert_eq!((a.first_time, a.first_value, a.last_value), (1, 5.0, 3.0));
        assert_eq!(aggr_samples(&a, Aggr::Avg).1, vec![5.0, 7.0, 2.0, 3.0]);
    }
}
