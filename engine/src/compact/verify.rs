//! `tools bucket verify`: finds what is wrong in a bucket — unreadable metas, blocks whose
//! files are missing or have the wrong size, overlapping blocks of one group, blocks made
//! redundant by a compaction (Thanos's `duplicated_compaction`), interrupted deletions and
//! aborted uploads — and with `repair` fixes what is safe to fix: redundant blocks are marked
//! for deletion and interrupted deletions are finished. Overlaps are left to the compactor
//! (vertical compaction) and damaged blocks to a human.

use super::marks::{self, BlockDir, DELETION_MARK};
use super::plan;
use crate::Result;
use crate::bucket::{BlockFormat, BlockInfo, Bucket, META_FILE};
use crate::parquet::{SAMPLES_FILE, SERIES_FILE};
use tokio::runtime::Handle;

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The block (ULID) it concerns.
    pub block: String,
    /// `bad_meta`, `missing_file`, `file_size`, `overlap`, `duplicated_compaction`,
    /// `interrupted_deletion`, `partial_upload`.
    pub kind: &'static str,
    /// What is wrong.
    pub message: String,
    /// Fixed by `repair`.
    pub repaired: bool,
}

fn check_files(d: &BlockDir, info: &BlockInfo, out: &mut Vec<Issue>) {
    let id = d.id.to_string();
    let mut issue =
        |kind, message: String| out.push(Issue { block: id.clone(), kind, message, repaired: false });
    if info.meta.ulid != id {
        issue("bad_meta", format!("meta.json says ulid {} in directory {id}", info.meta.ulid));
    }
    let required: &[&str] = match info.format {
        BlockFormat::Parquet => &[SERIES_FILE, SAMPLES_FILE],
        BlockFormat::Native => &["index"],
    };
    for f in required {
        if !d.files.contains_key(*f) {
            issue("missing_file", format!("{f} is missing"));
        }
    }
    if info.format == BlockFormat::Native
        && !d.files.keys().any(|k| k.starts_with("chunks/"))
        && info.meta.stats.num_samples > 0
    {
        issue("missing_file", "no chunks/ segment file".to_string());
    }
    for f in info.meta.thanos.iter().flat_map(|t| &t.files) {
        if f.rel_path == META_FILE {
            continue;
        }
        match (d.files.get(&f.rel_path), f.size_bytes) {
            (None, _) if !required.contains(&f.rel_path.as_str()) => {
                issue("missing_file", format!("{} (listed in meta.json) is missing", f.rel_path))
            }
            (Some(&have), Some(want)) if have != want => {
                issue("file_size", format!("{} has {have} bytes, meta.json says {want}", f.rel_path))
            }
            _ => {}
        }
    }
}

/// Checks the bucket; with `repair`, fixes the safe issues. Call off the async runtime.
pub fn verify(
    rt: &Handle,
    bucket: &Bucket,
    replica_labels: &[String],
    repair: bool,
    now_ms: i64,
) -> Result<Vec<Issue>> {
    let dirs = rt.block_on(marks::scan(bucket))?;
    let mut out = Vec::new();
    let mut live = Vec::new();
    for d in &dirs {
        let id = d.id.to_string();
        if let Some(e) = &d.meta_error {
            out.push(Issue { block: id, kind: "bad_meta", message: e.clone(), repaired: false });
            continue;
        }
        let Some(info) = d.info() else {
            let (kind, message) = if d.files.contains_key(DELETION_MARK) {
                ("interrupted_deletion", "deletion started (meta.json gone) but objects remain".to_string())
            } else {
                (
                    "partial_upload",
                    format!("no meta.json ({} objects): an unfinished or aborted upload", d.files.len()),
                )
            };
            let mut repaired = false;
            if repair && kind == "interrupted_deletion" {
                rt.block_on(marks::delete_block(bucket, &d.id))?;
                repaired = true;
            }
            out.push(Issue { block: id, kind, message, repaired });
            continue;
        };
        check_files(d, &info, &mut out);
        if d.deletion.is_none() {
            live.push(info);
        }
    }
    for (key, blocks) in plan::group_blocks(&live, replica_labels) {
        // Redundant blocks overlap the block that covers them: reported as such, not as overlaps.
        let redundant = plan::covered(&blocks);
        let others: Vec<BlockInfo> =
            (0..blocks.len()).filter(|i| !redundant.contains(i)).map(|i| blocks[i].clone()).collect();
        let mut rest: &[BlockInfo] = &others;
        loop {
            let over = plan::overlapping(rest);
            let Some(&last) = over.last() else { break };
            let ids: Vec<&str> =
                over.iter().filter_map(|&i| rest.get(i)).map(|b| b.meta.ulid.as_str()).collect();
            for id in &ids {
                out.push(Issue {
                    block: id.to_string(),
                    kind: "overlap",
                    message: format!("group {key}: blocks {} overlap in time", ids.join(", ")),
                    repaired: false,
                });
            }
            rest = &rest[last + 1..];
        }
        for i in redundant {
            let Some(b) = blocks.get(i) else { continue };
            let mut repaired = false;
            if repair {
                let id = super::job::ulid(&b.meta)?;
                rt.block_on(marks::mark_for_deletion(
                    bucket,
                    &id,
                    "duplicated compaction (tools bucket verify --repair)",
                    now_ms,
                ))?;
                repaired = true;
            }
            out.push(Issue {
                block: b.meta.ulid.clone(),
                kind: "duplicated_compaction",
                message: format!("group {key}: its sources are all in a newer block"),
                repaired,
            });
        }
    }
    Ok(out)
}
