//! What to compact: blocks grouped by external labels and resolution, Thanos's planner over
//! each group (overlapping blocks first, then the ranges 2h → 8h → 2d → 14d), blocks made
//! redundant by a newer block's sources, and blocks due for downsampling.

use crate::bucket::BlockInfo;
use promlake_compat::BlockMeta;
use std::collections::{BTreeMap, BTreeSet};

const HOUR: i64 = 3_600_000;

/// Thanos's compaction ranges (ms): the planner uses all but the first, so 2h blocks become
/// 8h, then 2d, then 14d blocks.
pub const RANGES: [i64; 4] = [2 * HOUR, 8 * HOUR, 48 * HOUR, 14 * 24 * HOUR];

/// A raw block spanning at least this (ms) gets a 5m block.
pub const DOWNSAMPLE_5M_MIN_SPAN: i64 = 40 * HOUR;
/// A 5m block spanning at least this (ms) gets a 1h block.
pub const DOWNSAMPLE_1H_MIN_SPAN: i64 = 10 * 24 * HOUR;

/// A compaction group: blocks with the same resolution and external labels (replica labels
/// removed), compacted only with each other.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    /// `thanos.downsample.resolution` (ms).
    pub resolution: i64,
    /// External labels without the replica labels.
    pub labels: BTreeMap<String, String>,
}

impl std::fmt::Display for GroupKey {
    /// Thanos's shape, `<resolution>@{labels}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        write!(f, "{}@{{{}}}", self.resolution, l.join(","))
    }
}

/// The resolution of a block (ms; 0 for raw).
pub fn resolution(meta: &BlockMeta) -> i64 {
    meta.thanos.as_ref().map(|t| t.downsample.resolution).unwrap_or(0)
}

/// The level-1 ancestors of a block; a block without recorded sources is its own source.
pub fn sources(meta: &BlockMeta) -> BTreeSet<String> {
    if meta.compaction.sources.is_empty() {
        BTreeSet::from([meta.ulid.clone()])
    } else {
        meta.compaction.sources.iter().cloned().collect()
    }
}

/// The group a block belongs to, with `replica_labels` dropped from its external labels.
pub fn group_key(meta: &BlockMeta, replica_labels: &[String]) -> GroupKey {
    let mut labels = meta.external_labels();
    for r in replica_labels {
        labels.remove(r);
    }
    GroupKey { resolution: resolution(meta), labels }
}

/// Groups blocks; each group's blocks sorted by (minTime, ULID).
pub fn group_blocks(blocks: &[BlockInfo], replica_labels: &[String]) -> BTreeMap<GroupKey, Vec<BlockInfo>> {
    let mut groups: BTreeMap<GroupKey, Vec<BlockInfo>> = BTreeMap::new();
    for b in blocks {
        groups.entry(group_key(&b.meta, replica_labels)).or_default().push(b.clone());
    }
    for g in groups.values_mut() {
        sort_by_min_time(g);
    }
    groups
}

/// Sorts by (minTime, ULID).
pub fn sort_by_min_time(blocks: &mut [BlockInfo]) {
    blocks.sort_by(|a, b| (a.meta.min_time, &a.meta.ulid).cmp(&(b.meta.min_time, &b.meta.ulid)));
}

/// The first run of overlapping blocks (sorted by minTime; ranges are half-open), as Thanos's
/// `selectOverlappingMetas`. Empty when nothing overlaps.
pub fn overlapping(blocks: &[BlockInfo]) -> Vec<usize> {
    let mut out = Vec::new();
    let Some(first) = blocks.first() else { return out };
    let mut global_max = first.meta.max_time;
    for (i, b) in blocks.iter().enumerate().skip(1) {
        if b.meta.min_time < global_max {
            if out.is_empty() {
                out.push(i - 1);
            }
            out.push(i);
        } else if !out.is_empty() {
            break;
        }
        global_max = global_max.max(b.meta.max_time);
    }
    out
}

/// What the planner chose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Indexes into the group's blocks to compact into one (empty: nothing to do).
    pub blocks: Vec<usize>,
    /// The blocks overlap (vertical compaction).
    pub overlapping: bool,
}

/// The next set of blocks of a group (sorted by minTime) to compact into one, as Thanos's
/// planner. Blocks in `no_compact` (ULIDs) are never chosen. Overlapping blocks go first;
/// otherwise, leaving out the newest block (unless it is marked), the first aligned range of
/// [`RANGES`] (smallest first) that either fills the whole range or ends before the newest
/// remaining block starts, and holds a run of at least two unmarked blocks between marked ones.
pub fn plan(blocks: &[BlockInfo], no_compact: &BTreeSet<String>) -> Plan {
    let free: Vec<usize> =
        (0..blocks.len()).filter(|&i| !no_compact.contains(&blocks[i].meta.ulid)).collect();
    let free_blocks: Vec<BlockInfo> = free.iter().map(|&i| blocks[i].clone()).collect();
    let over = overlapping(&free_blocks);
    if !over.is_empty() {
        return Plan { blocks: over.iter().map(|&k| free[k]).collect(), overlapping: true };
    }
    let Some(newest) = blocks.last() else { return Plan::default() };
    // The newest block stays out: it may still be joined by one of the same size.
    let candidates =
        if no_compact.contains(&newest.meta.ulid) { blocks } else { &blocks[..blocks.len() - 1] };
    let Some(high) = candidates.last() else { return Plan::default() };
    let high_time = high.meta.min_time;
    for &range in &RANGES[1..] {
        for part in split_by_range(candidates, range) {
            if part.len() < 2 {
                continue;
            }
            let (Some(&a), Some(&z)) = (part.first(), part.last()) else { continue };
            let (mint, maxt) = (candidates[a].meta.min_time, candidates[z].meta.max_time);
            if maxt - mint != range && maxt > high_time {
                continue;
            }
            // Runs of unmarked blocks between marked ones; the first of two or more wins.
            let mut run: Vec<usize> = Vec::new();
            for &i in &part {
                if no_compact.contains(&candidates[i].meta.ulid) {
                    if run.len() > 1 {
                        return Plan { blocks: run, overlapping: false };
                    }
                    run.clear();
                } else {
                    run.push(i);
                }
            }
            if run.len() > 1 {
                return Plan { blocks: run, overlapping: false };
            }
        }
    }
    Plan::default()
}

/// Splits blocks (sorted by minTime) into runs falling in the same aligned range of size
/// `range`; blocks bigger than their range are left out.
fn split_by_range(blocks: &[BlockInfo], range: i64) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < blocks.len() {
        let m = &blocks[i].meta;
        let t0 = m.min_time.div_euclid(range) * range;
        if m.max_time > t0 + range {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while i < blocks.len() && blocks[i].meta.max_time <= t0 + range {
            group.push(i);
            i += 1;
        }
        if !group.is_empty() {
            out.push(group);
        }
    }
    out
}

/// Blocks made redundant by another block of the same group: its sources are a subset of a
/// block with strictly more sources (a compaction finished but its inputs were not marked),
/// or equal to those of a block with a higher ULID. Indexes into `blocks`. Linear in the
/// number of sources: the candidate cover of a block is the biggest block holding its first
/// source.
pub fn covered(blocks: &[BlockInfo]) -> Vec<usize> {
    let srcs: Vec<BTreeSet<String>> = blocks.iter().map(|b| sources(&b.meta)).collect();
    let better =
        |j: usize, i: usize| (srcs[j].len(), &blocks[j].meta.ulid) > (srcs[i].len(), &blocks[i].meta.ulid);
    let mut biggest: BTreeMap<&str, usize> = BTreeMap::new();
    for (j, set) in srcs.iter().enumerate() {
        for s in set {
            let e = biggest.entry(s.as_str()).or_insert(j);
            if better(j, *e) {
                *e = j;
            }
        }
    }
    (0..blocks.len())
        .filter(|&i| {
            let Some(first) = srcs[i].iter().next() else { return false };
            match biggest.get(first.as_str()) {
                Some(&j) if j != i => srcs[i].is_subset(&srcs[j]),
                _ => false,
            }
        })
        .collect()
}

/// Blocks of resolution `from` that need a block at the next resolution: not yet covered by
/// the sources of a block at that resolution and spanning long enough.
pub fn downsample_candidates(blocks: &[BlockInfo], from: i64) -> Vec<BlockInfo> {
    use crate::parquet::{RES_1H, RES_5M};
    let (to, min_span) = match from {
        0 => (RES_5M, DOWNSAMPLE_5M_MIN_SPAN),
        RES_5M => (RES_1H, DOWNSAMPLE_1H_MIN_SPAN),
        _ => return Vec::new(),
    };
    let done: BTreeSet<String> =
        blocks.iter().filter(|b| resolution(&b.meta) == to).flat_map(|b| sources(&b.meta)).collect();
    blocks
        .iter()
        .filter(|b| resolution(&b.meta) == from)
        .filter(|b| b.meta.max_time - b.meta.min_time >= min_span)
        .filter(|b| !sources(&b.meta).is_subset(&done))
        .cloned()
        .collect()
}
