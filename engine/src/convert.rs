//! Native TSDB blocks → Parquet blocks (`promlake tools import`).
//!
//! Blocks convert in parallel on a rayon pool; inside a block, series go in batches (one
//! ranged read of chunk bytes per batch, decoded in parallel), so memory is bounded by a batch
//! of series, not by the block. Each block is staged locally and uploaded with meta.json last:
//! a block that fails never becomes visible in the bucket.

use crate::bucket::Bucket;
use crate::parquet::{ParquetBlockWriter, WriterOptions};
use crate::{Error, Labels, Result};
use object_store::ObjectStore;
use object_store::path::Path;
use promlake_compat::{NativeBlock, SeriesEntry};
use rayon::prelude::*;
use std::sync::Arc;
use tokio::runtime::Handle;
use ulid::Ulid;

/// Chunks per batch of series (~120 samples each): bounds memory per block in flight.
const BATCH_CHUNKS: usize = 8192;

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Merged into each block's external labels (they win over the block's own).
    pub labels: Labels,
    /// Parquet layout.
    pub writer: WriterOptions,
}

/// A native block to import: where it is and how to name it in messages.
#[derive(Debug, Clone)]
pub struct NativeBlockRef {
    /// The store holding it.
    pub store: Arc<dyn ObjectStore>,
    /// Its directory in that store.
    pub dir: Path,
    /// Its location as the user wrote it (for messages).
    pub display: String,
    /// The argument it was found under; paths in errors are relative to it.
    pub root: String,
}

impl NativeBlockRef {
    /// The block's ULID, from its directory name.
    pub fn ulid(&self) -> Option<Ulid> {
        self.dir.filename().and_then(|n| Ulid::from_string(n).ok())
    }
}

/// What happened to one block.
#[derive(Debug, Clone)]
pub enum BlockOutcome {
    /// Converted and uploaded.
    Imported {
        /// Block ULID (the source's).
        id: Ulid,
        /// Series written.
        num_series: u64,
        /// Samples written.
        num_samples: u64,
        /// Bytes of the source block's files.
        native_bytes: u64,
        /// Bytes of the Parquet files.
        parquet_bytes: u64,
    },
    /// Already in the bucket; nothing done.
    Skipped {
        /// Block ULID.
        id: Ulid,
    },
}

/// Receives progress of an import (a progress bar on a terminal, log lines otherwise).
pub trait ImportProgress: Send + Sync {
    /// A block is about to be converted; `samples` is its meta.json sample count.
    fn block_started(&self, block: &str, samples: u64);
    /// `n` more samples were converted.
    fn samples_done(&self, n: u64);
    /// A block finished (or failed).
    fn block_finished(&self, block: &str, outcome: &Result<BlockOutcome>);
}

/// Discards progress.
#[derive(Debug)]
pub struct NoProgress;

impl ImportProgress for NoProgress {
    fn block_started(&self, _: &str, _: u64) {}
    fn samples_done(&self, _: u64) {}
    fn block_finished(&self, _: &str, _: &Result<BlockOutcome>) {}
}

/// Imports `blocks` into `bucket`, in parallel, and returns one outcome per block (in input
/// order). Blocks already present are skipped. Must run off the async runtime (e.g. in
/// `spawn_blocking`); `rt` is used for the object-store I/O.
pub fn import_blocks(
    rt: &Handle,
    bucket: &Bucket,
    blocks: &[NativeBlockRef],
    opts: &ImportOptions,
    progress: &dyn ImportProgress,
) -> Vec<Result<BlockOutcome>> {
    blocks
        .par_iter()
        .map(|b| {
            let r = import_one(rt, bucket, b, opts, progress);
            progress.block_finished(&b.display, &r);
            r
        })
        .collect()
}

fn import_one(
    rt: &Handle,
    bucket: &Bucket,
    src: &NativeBlockRef,
    opts: &ImportOptions,
    progress: &dyn ImportProgress,
) -> Result<BlockOutcome> {
    let block = rt.block_on(NativeBlock::open(src.store.clone(), &src.dir))?;
    let meta = block.meta();
    let id = Ulid::from_string(&meta.ulid).map_err(|e| {
        Error::format(format!("{}/meta.json", src.display), format!("ulid {:?}: {e}", meta.ulid))
    })?;
    if rt.block_on(bucket.has_block(&id))? {
        return Ok(BlockOutcome::Skipped { id });
    }
    progress.block_started(&src.display, meta.stats.num_samples);
    let written = convert_block(rt, &block, &opts.writer, progress)?;

    let mut new_meta = meta.clone();
    let thanos = new_meta.thanos.get_or_insert_with(Default::default);
    let external = Labels::from_pairs(thanos.labels.clone()).merged(&opts.labels);
    thanos.labels = external.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
    thanos.version = 1;
    thanos.source = "import".to_string();
    thanos.segment_files.clear();
    let (num_series, num_samples, parquet_bytes) =
        (written.num_series, written.num_samples, written.size_bytes());
    rt.block_on(async {
        match written.upload(bucket, &id, new_meta).await {
            Ok(_) => Ok(()),
            Err(e) => {
                // Best effort: remove the unfinished (invisible) directory.
                let _ = bucket.delete_block(&id).await;
                Err(e)
            }
        }
    })?;
    Ok(BlockOutcome::Imported {
        id,
        num_series,
        num_samples,
        native_bytes: block.size_bytes(),
        parquet_bytes,
    })
}

/// Converts one open native block into a locally staged Parquet block. Call it off the async
/// runtime; `rt` runs the chunk reads.
pub fn convert_block(
    rt: &Handle,
    block: &NativeBlock,
    writer_opts: &WriterOptions,
    progress: &dyn ImportProgress,
) -> Result<crate::parquet::WrittenBlock> {
    let all = block.series();
    let labels: Vec<Labels> = all.iter().map(|s| Labels::from_pairs(s.labels.iter().cloned())).collect();
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| labels[a].block_order(&labels[b]));

    let mut writer = ParquetBlockWriter::new(writer_opts.clone())?;
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        let mut chunks = 0;
        while end < order.len() && (end == start || chunks + all[order[end]].chunks.len() <= BATCH_CHUNKS) {
            chunks += all[order[end]].chunks.len();
            end += 1;
        }
        let batch: Vec<&SeriesEntry> = order[start..end].iter().map(|&i| &all[i]).collect();
        let range = rt.block_on(block.fetch_chunks(&batch))?;
        let decoded: Vec<Result<(Vec<i64>, Vec<f64>)>> = batch
            .par_iter()
            .with_min_len(64)
            .map(|s| {
                let mut ts = Vec::with_capacity(s.chunks.len() * 120);
                let mut vals = Vec::with_capacity(s.chunks.len() * 120);
                block.decode_series(s, &range, &mut ts, &mut vals)?;
                Ok((ts, vals))
            })
            .collect();
        let mut n = 0u64;
        for (&i, d) in order[start..end].iter().zip(decoded) {
            let (ts, vals) = d?;
            n += ts.len() as u64;
            writer.append(labels[i].clone(), &ts, &vals)?;
        }
        progress.samples_done(n);
        start = end;
    }
    writer.finish()
}
