//! One compactor pass over the bucket, as Thanos's: remove aborted uploads, mark blocks made
//! redundant by a finished compaction, compact every group until its plan is empty
//! (`--compact.concurrency` groups at once), downsample (raw → 5m → 1h), repeat while anything
//! changed, then apply retention and delete blocks whose deletion mark is older than
//! `--delete-delay`.

use super::job::{self, ulid};
use super::marks::{self, BlockDir};
use super::plan::{self, GroupKey};
use super::{CompactOptions, CompactProgress};
use crate::bucket::{BlockInfo, Bucket};
use crate::parquet::RES_5M;
use crate::{Result, parquet::RES_1H};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use tokio::runtime::Handle;
use ulid::Ulid;

/// Rounds of compact + downsample in one pass at most (each round rescans the bucket).
const MAX_ROUNDS: usize = 64;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Compactions that wrote a block (or found nothing to write).
    pub compactions: u64,
    /// Downsampled blocks written.
    pub downsamples: u64,
    /// Deletion marks put on compacted, redundant or expired blocks.
    pub marked_for_deletion: u64,
    /// Of those, marks for blocks past their retention.
    pub retention_marked: u64,
    /// No-compact marks put on overlapping downsampled blocks.
    pub no_compact_marked: u64,
    /// Blocks deleted after their deletion delay.
    pub deleted: u64,
    /// Aborted partial uploads removed.
    pub partial_deleted: u64,
    /// Input rows (samples or windows) compacted or downsampled.
    pub rows_processed: u64,
    /// Failures of single groups or blocks (the pass went on with the others).
    pub errors: Vec<String>,
}

impl PassReport {
    fn add(&mut self, o: PassReport) {
        self.compactions += o.compactions;
        self.downsamples += o.downsamples;
        self.marked_for_deletion += o.marked_for_deletion;
        self.retention_marked += o.retention_marked;
        self.no_compact_marked += o.no_compact_marked;
        self.deleted += o.deleted;
        self.partial_deleted += o.partial_deleted;
        self.rows_processed += o.rows_processed;
        self.errors.extend(o.errors);
    }
}

struct Live {
    blocks: Vec<BlockInfo>,
    no_compact: BTreeSet<String>,
}

fn live_blocks(dirs: &[BlockDir]) -> Live {
    let mut blocks = Vec::new();
    let mut no_compact = BTreeSet::new();
    for d in dirs {
        if let Some(e) = &d.meta_error {
            tracing::warn!(block = %d.id, error = %e, "unreadable meta.json; block left alone");
        }
        if d.deletion.is_some() {
            continue;
        }
        if let Some(info) = d.info() {
            if d.no_compact.is_some() {
                no_compact.insert(info.meta.ulid.clone());
            }
            blocks.push(info);
        }
    }
    Live { blocks, no_compact }
}

/// Runs one pass. Call off the async runtime (e.g. in `spawn_blocking`); `rt` runs the I/O.
pub fn run_pass(
    rt: &Handle,
    bucket: &Bucket,
    opts: &CompactOptions,
    progress: &dyn CompactProgress,
) -> Result<PassReport> {
    let mut report = PassReport::default();
    let dirs = rt.block_on(marks::scan_cached(bucket, &opts.meta_cache))?;
    for id in marks::partial_uploads_to_delete(&dirs, opts.now_ms()) {
        rt.block_on(marks::delete_block(bucket, &id))?;
        progress.event(&format!("removed aborted upload {id}"));
        report.partial_deleted += 1;
    }
    for _ in 0..MAX_ROUNDS {
        let live = live_blocks(&rt.block_on(marks::scan_cached(bucket, &opts.meta_cache))?);
        let groups = plan::group_blocks(&live.blocks, &opts.replica_labels);

        // Inputs of a finished compaction that were not marked yet (a crash in between).
        let mut redundant = 0;
        for blocks in groups.values() {
            for i in plan::covered(blocks) {
                let id = ulid(&blocks[i].meta)?;
                let details = "its sources are covered by a newer block";
                if rt.block_on(marks::mark_for_deletion(bucket, &id, details, opts.now_ms()))? {
                    progress.event(&format!("marked {id} for deletion: {details}"));
                    redundant += 1;
                }
            }
        }
        report.marked_for_deletion += redundant;
        if redundant > 0 {
            continue;
        }

        let before = (report.compactions, report.downsamples, report.no_compact_marked);
        let groups: Vec<(GroupKey, Vec<BlockInfo>)> = groups.into_iter().collect();
        let no_compact = &live.no_compact;
        report.add(parallel(opts.concurrency, groups, |(key, blocks)| {
            compact_group(rt, bucket, &key, blocks, no_compact, opts, progress)
        }));
        if opts.downsampling {
            for (from, to) in [(0, RES_5M), (RES_5M, RES_1H)] {
                let live = live_blocks(&rt.block_on(marks::scan_cached(bucket, &opts.meta_cache))?);
                let todo = plan::downsample_candidates(&live.blocks, from);
                report.add(parallel(opts.concurrency, todo, |b| {
                    let mut r = PassReport::default();
                    match job::downsample_block(rt, bucket, &b, to, opts, progress) {
                        Ok(Some(m)) => {
                            r.downsamples += 1;
                            r.rows_processed += b.meta.stats.num_samples;
                            progress.event(&format!("downsampled {} into {} ({to}ms)", b.meta.ulid, m.ulid));
                        }
                        Ok(None) => tracing::debug!(block = %b.meta.ulid, "nothing to downsample"),
                        Err(e) => r.errors.push(format!("downsampling block {}: {e}", b.meta.ulid)),
                    }
                    r
                }));
            }
        }
        if (report.compactions, report.downsamples, report.no_compact_marked) == before {
            break;
        }
        if !report.errors.is_empty() {
            break;
        }
    }

    let now = opts.now_ms();
    let live = live_blocks(&rt.block_on(marks::scan_cached(bucket, &opts.meta_cache))?);
    for b in opts.retention.expired(&live.blocks, now) {
        let id = ulid(&b.meta)?;
        if rt.block_on(marks::mark_for_deletion(bucket, &id, "past its retention", now))? {
            progress.event(&format!("marked {id} for deletion: past its retention"));
            report.marked_for_deletion += 1;
            report.retention_marked += 1;
        }
    }
    let dirs = rt.block_on(marks::scan_cached(bucket, &opts.meta_cache))?;
    for id in marks::deletable(&dirs, opts.delete_delay_ms, now) {
        rt.block_on(marks::delete_block(bucket, &id))?;
        progress.event(&format!("deleted {id}"));
        report.deleted += 1;
    }
    Ok(report)
}

/// Runs `f` over `items` on `n` threads (at least one), summing the reports.
fn parallel<T: Send>(n: usize, items: Vec<T>, f: impl Fn(T) -> PassReport + Sync) -> PassReport {
    let queue = Mutex::new(items);
    let total = Mutex::new(PassReport::default());
    std::thread::scope(|s| {
        for _ in 0..n.max(1) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
                    let Some(item) = next else { break };
                    let r = f(item);
                    total.lock().unwrap_or_else(std::sync::PoisonError::into_inner).add(r);
                }
            });
        }
    });
    total.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Compacts one group until its plan is empty.
fn compact_group(
    rt: &Handle,
    bucket: &Bucket,
    key: &GroupKey,
    mut blocks: Vec<BlockInfo>,
    no_compact: &BTreeSet<String>,
    opts: &CompactOptions,
    progress: &dyn CompactProgress,
) -> PassReport {
    let mut r = PassReport::default();
    loop {
        let planned = plan::plan(&blocks, no_compact);
        if planned.blocks.is_empty() {
            break;
        }
        let chosen: Vec<BlockInfo> = planned.blocks.iter().filter_map(|&i| blocks.get(i).cloned()).collect();
        let ids: BTreeSet<String> = chosen.iter().map(|b| b.meta.ulid.clone()).collect();
        if key.resolution > 0 && planned.overlapping {
            // As Thanos: overlapping downsampled blocks are not merged (an average of averages
            // is not an average); they get a no-compact mark instead.
            for b in &chosen {
                let marked = ulid(&b.meta).and_then(|id| {
                    rt.block_on(marks::mark_no_compact(
                        bucket,
                        &id,
                        marks::REASON_DOWNSAMPLE_VERTICAL,
                        "overlaps another downsampled block of its group",
                        opts.now_ms(),
                    ))
                });
                match marked {
                    Ok(true) => r.no_compact_marked += 1,
                    Ok(false) => {}
                    Err(e) => r.errors.push(format!("group {key}: {e}")),
                }
            }
            blocks.retain(|b| !ids.contains(&b.meta.ulid));
            if !r.errors.is_empty() {
                break;
            }
            continue;
        }
        match job::compact(rt, bucket, key, &chosen, opts, progress) {
            Ok(c) => {
                r.compactions += 1;
                r.rows_processed += c.rows_in;
                r.marked_for_deletion += chosen.len() as u64;
                blocks.retain(|b| !ids.contains(&b.meta.ulid));
                match c.block {
                    Some(m) => {
                        progress.event(&format!(
                            "compacted {} blocks of {key} into {} (level {}, {} samples)",
                            chosen.len(),
                            m.ulid,
                            m.compaction.level,
                            m.stats.num_samples
                        ));
                        blocks.push(BlockInfo::from_meta(m));
                        plan::sort_by_min_time(&mut blocks);
                    }
                    None => {
                        progress.event(&format!("compacted {} blocks of {key}: no samples", chosen.len()))
                    }
                }
            }
            Err(e) => {
                r.errors.push(format!(
                    "group {key}: compacting {}: {e}",
                    ids.into_iter().collect::<Vec<_>>().join(",")
                ));
                break;
            }
        }
    }
    r
}

/// Block ids by group, for `tools bucket verify`.
pub fn group_ids(blocks: &[BlockInfo], replica_labels: &[String]) -> BTreeMap<GroupKey, Vec<Ulid>> {
    plan::group_blocks(blocks, replica_labels)
        .into_iter()
        .map(|(k, v)| (k, v.iter().filter_map(|b| ulid(&b.meta).ok()).collect()))
        .collect()
}
