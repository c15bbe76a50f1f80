//! The compactor (`promlake compact`): Thanos's compaction, vertical deduplication,
//! downsampling and retention over a bucket of Parquet (and native) blocks, writing Parquet
//! blocks of format version 1.
//!
//! ```text
//!  bucket ──scan (marks)──► groups by resolution + external labels (replica labels dropped)
//!     │                          │ plan: overlaps first, then 2h → 8h → 2d → 14d
//!     │                          ▼
//!     │         inputs (Parquet / native / downsampled) ── k-way merge by labels ──┐
//!     │                                                                          ▼
//!     │         batches of series ──rayon──► merge (one-to-one | penalty) ──► block writer
//!     │                                                                          │
//!     ◄── new block (meta.json last) ◄── sources marked for deletion ◄───────────┘
//!     │
//!     ├── downsample: raw ≥ 40h → 5m, 5m ≥ 10d → 1h (count, sum, min, max, counter)
//!     ├── retention per resolution → deletion marks
//!     └── deletion of marked blocks after --delete-delay; aborted uploads removed
//! ```
//!
//! Files: [`plan`] (groups, planner, redundant blocks), [`merge`] and [`penalty`] (one
//! series from several blocks), [`downsample`] (aggregates), [`stream`] (the batched
//! pipeline), [`job`] (one compaction or downsampling), [`pass`] (a whole pass), [`marks`]
//! (markers, deletion, partial uploads), [`retention`], [`verify`] (bucket checks).

pub mod downsample;
pub mod input;
pub mod job;
pub mod marks;
pub mod merge;
pub mod pass;
pub mod penalty;
pub mod plan;
pub mod raw;
pub mod retention;
pub mod samples;
pub mod stream;
pub mod verify;

pub use merge::DedupFunc;
pub use pass::{PassReport, run_pass};
pub use retention::Retention;

use crate::parquet::WriterOptions;

/// How the compactor works (validated flags of `promlake compact`).
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// External labels removed before grouping, so replicas compact together.
    pub replica_labels: Vec<String>,
    /// How overlapping samples are merged.
    pub dedup: DedupFunc,
    /// Downsample raw → 5m → 1h.
    pub downsampling: bool,
    /// Marked blocks are deleted this long (ms) after their mark.
    pub delete_delay_ms: i64,
    /// Retention per resolution.
    pub retention: Retention,
    /// Groups (and downsamplings) worked on at once.
    pub concurrency: usize,
    /// Layout of written blocks.
    pub writer: WriterOptions,
    /// A fixed "now" (ms) for tests; `None` uses the system clock.
    pub now_ms: Option<i64>,
    /// meta.json files read so far; clones share it, so passes of a `--wait` loop reuse it.
    pub meta_cache: std::sync::Arc<marks::MetaCache>,
}

/// Rows per row group of the blocks compaction writes.
pub const COMPACT_ROW_GROUP_ROWS: usize = 128 * 1024;

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            replica_labels: Vec::new(),
            dedup: DedupFunc::OneToOne,
            downsampling: true,
            delete_delay_ms: 48 * 3_600_000,
            retention: Retention::default(),
            concurrency: 1,
            // Row groups of one 128Ki-row page per column: the writer buffers a row group
            // (20 bytes a row), so this halves that buffer (-2.5 MB of a ~47 MB peak).
            writer: WriterOptions { row_group_rows: COMPACT_ROW_GROUP_ROWS, ..WriterOptions::default() },
            now_ms: None,
            meta_cache: Default::default(),
        }
    }
}

impl CompactOptions {
    /// The current time (ms since the epoch).
    pub fn now_ms(&self) -> i64 {
        self.now_ms.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0)
        })
    }
}

/// Receives progress (a progress bar on a terminal, log lines otherwise).
pub trait CompactProgress: Send + Sync {
    /// A compaction or downsampling starts; `rows` estimates its input rows.
    fn job_started(&self, job: &str, rows: u64);
    /// `n` more input rows were processed.
    fn rows_done(&self, n: u64);
    /// Something happened worth a log line (a block written, marked, deleted).
    fn event(&self, msg: &str);
}

/// Discards progress.
#[derive(Debug)]
pub struct NoProgress;

impl CompactProgress for NoProgress {
    fn job_started(&self, _: &str, _: u64) {}
    fn rows_done(&self, _: u64) {}
    fn event(&self, _: &str) {}
}

#[cfg(test)]
mod tests;
