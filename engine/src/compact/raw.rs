//! The compaction path of raw blocks (Parquet or native inputs, a raw output), streaming with
//! small, bounded memory: every input is read sequentially (Parquet: the timestamp and value
//! pages one at a time, see [`SampleReader`]; native: the chunks of a few thousand series at a
//! time), each output series is gathered straight into the current write batch — merged only
//! when pieces from several inputs overlap in time — and batches of about [`BATCH_ROWS`] rows
//! go to the block writer on its own thread, their buffers coming back for reuse.
//!
//! The output is sample-for-sample what [`merge_raw`] makes of each series' pieces: a series
//! from one input is copied as it is, time-disjoint pieces are concatenated in time order,
//! and only overlapping ones go through the merge.

use super::CompactProgress;
use super::input::Input;
use super::merge::{DedupFunc, Samples, merge_raw};
use super::samples::SampleReader;
use crate::parquet::{ParquetBlock, ParquetBlockWriter};
use crate::{Bucket, Error, Labels, Result};
use promlake_compat::{NativeBlock, SeriesEntry};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use tokio::runtime::Handle;

/// Rows per batch handed to the writer thread.
pub const BATCH_ROWS: usize = 32 * 1024;
/// Estimated rows of the native series whose chunks are fetched at once.
const NATIVE_FETCH_ROWS: u64 = 64 * 1024;
/// Native series whose chunks are fetched at once, at most.
const NATIVE_FETCH_SERIES: usize = 4096;

/// Output series (labels, rows) with their samples back to back.
#[derive(Default)]
struct Batch {
    series: Vec<(Labels, usize)>,
    ts: Vec<i64>,
    vals: Vec<f64>,
}

/// Reads one input's series in order.
enum Source<'a> {
    Parquet { block: &'a ParquetBlock, reader: SampleReader },
    Native { block: &'a NativeBlock, order: &'a [usize], fetched: Option<Fetched> },
}

/// Chunks of native series `first..end` (positions in label order).
struct Fetched {
    first: usize,
    end: usize,
    chunks: promlake_compat::ChunkRange,
}

impl<'a> Source<'a> {
    fn open(rt: &Handle, bucket: &Bucket, input: &'a Input) -> Result<Self> {
        match input {
            Input::Raw(block) => {
                let id = super::job::ulid(block.meta())?;
                Ok(Source::Parquet { block, reader: SampleReader::open(rt, bucket, &id)? })
            }
            Input::Native { block, order, .. } => Ok(Source::Native { block, order, fetched: None }),
            Input::Aggr(b) => Err(Error::InvalidArgument(format!(
                "block {} is downsampled; the raw compaction path takes raw blocks only",
                b.meta().ulid
            ))),
        }
    }

    /// Appends the samples of series `k` (the series after the one read last).
    fn read(&mut self, rt: &Handle, k: usize, ts: &mut Vec<i64>, vals: &mut Vec<f64>) -> Result<()> {
        match self {
            Source::Parquet { block, reader } => {
                let s = block.series().get(k).ok_or_else(|| no_series(block.meta(), k))?;
                if s.row_start != reader.position() {
                    return Err(Error::format(
                        format!("{}/series.parquet", block.meta().ulid),
                        format!(
                            "series {} starts at row {} where the previous series ended at row {}",
                            s.labels,
                            s.row_start,
                            reader.position()
                        ),
                    ));
                }
                let n = usize::try_from(s.num_samples).map_err(|_| no_series(block.meta(), k))?;
                reader.read(n, ts, vals)
            }
            Source::Native { block, order, fetched } => {
                let entry = |j: usize| order.get(j).and_then(|&p| block.series().get(p));
                if fetched.as_ref().is_none_or(|f| k < f.first || k >= f.end) {
                    let (mut end, mut rows) = (k, 0u64);
                    let mut entries: Vec<&SeriesEntry> = Vec::new();
                    while let Some(e) = entry(end)
                        && (entries.is_empty()
                            || (rows < NATIVE_FETCH_ROWS && entries.len() < NATIVE_FETCH_SERIES))
                    {
                        rows += 120 * e.chunks.len() as u64;
                        entries.push(e);
                        end += 1;
                    }
                    *fetched = None;
                    let chunks = rt.block_on(block.fetch_chunks(&entries))?;
                    *fetched = Some(Fetched { first: k, end, chunks });
                }
                let (Some(e), Some(f)) = (entry(k), fetched.as_ref()) else {
                    return Err(no_series(block.meta(), k));
                };
                block.decode_series(e, &f.chunks, ts, vals)?;
                Ok(())
            }
        }
    }
}

fn no_series(meta: &promlake_compat::BlockMeta, k: usize) -> Error {
    Error::format(format!("block {}", meta.ulid), format!("no series at position {k}"))
}

/// The next output series: the smallest labels at the inputs' positions. `parts` gets the
/// inputs holding it, as (input, position); the positions advance past it.
fn next_series<'a>(
    inputs: &'a [Input],
    pos: &mut [usize],
    parts: &mut Vec<(usize, usize)>,
) -> Option<&'a Labels> {
    parts.clear();
    let mut best: Option<&Labels> = None;
    for (i, input) in inputs.iter().enumerate() {
        let Some(l) = pos.get(i).and_then(|&k| input.labels(k)) else { continue };
        match best.map(|b| l.block_order(b)) {
            None | Some(std::cmp::Ordering::Less) => {
                best = Some(l);
                parts.clear();
                parts.push((i, pos[i]));
            }
            Some(std::cmp::Ordering::Equal) if best == Some(l) => parts.push((i, pos[i])),
            _ => {}
        }
    }
    for &(i, _) in parts.iter() {
        if let Some(p) = pos.get_mut(i) {
            *p += 1;
        }
    }
    best
}

/// Compacts raw `inputs` into `writer`. Returns the rows read. Call off the async runtime.
pub fn run(
    rt: &Handle,
    bucket: &Bucket,
    inputs: &[Input],
    func: DedupFunc,
    writer: &mut ParquetBlockWriter,
    progress: &dyn CompactProgress,
) -> Result<u64> {
    let mut sources = inputs.iter().map(|i| Source::open(rt, bucket, i)).collect::<Result<Vec<_>>>()?;
    let (tx, rx) = sync_channel::<Batch>(1);
    let (back_tx, back_rx) = sync_channel::<Batch>(2);
    std::thread::scope(|scope| {
        let written = scope.spawn(move || write_batches(writer, &rx, &back_tx));
        let produced = produce(rt, inputs, &mut sources, func, progress, &tx, &back_rx);
        drop(tx);
        let written =
            written.join().unwrap_or_else(|_| Err(Error::InvalidArgument("block writer panicked".into())));
        // A write error makes the producer stop on send; report the writer's error first.
        written?;
        produced
    })
}

fn write_batches(
    writer: &mut ParquetBlockWriter,
    rx: &Receiver<Batch>,
    back: &SyncSender<Batch>,
) -> Result<()> {
    for mut batch in rx {
        let mut off = 0;
        for (labels, n) in batch.series.drain(..) {
            let end = off + n;
            let (Some(t), Some(v)) = (batch.ts.get(off..end), batch.vals.get(off..end)) else {
                return Err(Error::InvalidArgument(format!("series {labels}: batch shorter than its rows")));
            };
            writer.append(labels, t, v)?;
            off = end;
        }
        batch.ts.clear();
        batch.vals.clear();
        // The producer may have finished; a dropped batch is simply freed.
        let _ = back.try_send(batch);
    }
    Ok(())
}

fn produce(
    rt: &Handle,
    inputs: &[Input],
    sources: &mut [Source<'_>],
    func: DedupFunc,
    progress: &dyn CompactProgress,
    tx: &SyncSender<Batch>,
    back: &Receiver<Batch>,
) -> Result<u64> {
    let mut pos = vec![0usize; inputs.len()];
    let mut parts = Vec::with_capacity(inputs.len());
    let mut pieces: Vec<Samples> = vec![Default::default(); inputs.len()];
    let mut ends = Vec::with_capacity(inputs.len());
    let mut batch = Batch::default();
    let (mut rows_in, mut batch_in) = (0u64, 0u64);
    while let Some(labels) = next_series(inputs, &mut pos, &mut parts) {
        let start = batch.ts.len();
        if let [(i, k)] = parts[..] {
            let src = sources.get_mut(i).ok_or_else(|| no_input(i))?;
            src.read(rt, k, &mut batch.ts, &mut batch.vals)?;
            batch_in += (batch.ts.len() - start) as u64;
        } else {
            // Read in input order straight into the batch; in the usual case (blocks in time
            // order, not overlapping) that already is the merged series.
            ends.clear();
            for &(i, k) in &parts {
                sources.get_mut(i).ok_or_else(|| no_input(i))?.read(rt, k, &mut batch.ts, &mut batch.vals)?;
                ends.push(batch.ts.len());
            }
            batch_in += (batch.ts.len() - start) as u64;
            if !ordered_and_disjoint(&batch.ts, start, &ends) {
                let mut from = start;
                for (slot, &end) in ends.iter().enumerate() {
                    let (t, v) = pieces.get_mut(slot).ok_or_else(|| no_input(slot))?;
                    t.clear();
                    v.clear();
                    t.extend_from_slice(batch.ts.get(from..end).unwrap_or_default());
                    v.extend_from_slice(batch.vals.get(from..end).unwrap_or_default());
                    from = end;
                }
                batch.ts.truncate(start);
                batch.vals.truncate(start);
                append_merged(pieces.get_mut(..ends.len()).unwrap_or_default(), func, &mut batch);
            }
        }
        let n = batch.ts.len() - start;
        if n > 0 {
            batch.series.push((labels.clone(), n));
        }
        if batch.ts.len() >= BATCH_ROWS {
            let next = back.try_recv().unwrap_or_default();
            if tx.send(std::mem::replace(&mut batch, next)).is_err() {
                // The writer stopped on an error; `run` reports it.
                return Ok(rows_in + batch_in);
            }
            progress.rows_done(batch_in);
            rows_in += batch_in;
            batch_in = 0;
        }
    }
    if !batch.series.is_empty() && tx.send(batch).is_err() {
        return Ok(rows_in + batch_in);
    }
    progress.rows_done(batch_in);
    Ok(rows_in + batch_in)
}

fn no_input(i: usize) -> Error {
    Error::InvalidArgument(format!("compaction input {i} out of range"))
}

/// True when the pieces `ts[start..ends[0]]`, `ts[ends[0]..ends[1]]`, ... that hold samples
/// follow each other in time without overlap: their concatenation is then what [`merge_raw`]
/// makes of them (its stable sort by first timestamp keeps this order, nothing overlaps).
fn ordered_and_disjoint(ts: &[i64], start: usize, ends: &[usize]) -> bool {
    let mut prev_last: Option<i64> = None;
    let mut from = start;
    for &end in ends {
        let piece = ts.get(from..end).unwrap_or_default();
        from = end;
        let (Some(&first), Some(&last)) = (piece.first(), piece.last()) else { continue };
        if prev_last.is_some_and(|p| p >= first) {
            return false;
        }
        prev_last = Some(last);
    }
    true
}

/// Appends the merge of one series' pieces (in input order) to `batch`: time-disjoint pieces
/// are concatenated in time order without a copy of their own, overlapping ones merged by
/// [`merge_raw`] (which gives the same result for disjoint pieces).
fn append_merged(pieces: &mut [Samples], func: DedupFunc, batch: &mut Batch) {
    for (t, v) in pieces.iter_mut() {
        let n = t.len().min(v.len());
        t.truncate(n);
        v.truncate(n);
    }
    let mut order: Vec<usize> =
        (0..pieces.len()).filter(|&j| pieces.get(j).is_some_and(|p| !p.0.is_empty())).collect();
    // Stable: pieces starting together keep input order, as in `merge_raw`.
    order.sort_by_key(|&j| pieces.get(j).and_then(|p| p.0.first().copied()).unwrap_or(i64::MAX));
    let disjoint = order.windows(2).all(|w| {
        let last = pieces.get(w[0]).and_then(|p| p.0.last());
        let first = pieces.get(w[1]).and_then(|p| p.0.first());
        matches!((last, first), (Some(a), Some(b)) if a < b)
    });
    if disjoint {
        for &j in &order {
            if let Some((t, v)) = pieces.get(j) {
                batch.ts.extend_from_slice(t);
                batch.vals.extend_from_slice(v);
            }
        }
        return;
    }
    let owned: Vec<Samples> = order.iter().filter_map(|&j| pieces.get(j).cloned()).collect();
    let (t, v) = merge_raw(owned, func);
    batch.ts.extend_from_slice(&t);
    batch.vals.extend_from_slice(&v);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gathers pieces the way `produce` does and compares with `merge_raw`.
    fn gathered(pieces: &[Samples], func: DedupFunc) -> Samples {
        let mut batch = Batch::default();
        let mut ends = Vec::new();
        for (t, v) in pieces {
            batch.ts.extend_from_slice(t);
            batch.vals.extend_from_slice(v);
            ends.push(batch.ts.len());
        }
        if !ordered_and_disjoint(&batch.ts, 0, &ends) {
            let mut owned = pieces.to_vec();
            batch = Batch::default();
            append_merged(&mut owned, func, &mut batch);
        }
        (batch.ts, batch.vals)
    }

    #[test]
    fn gathering_in_place_equals_merge_raw() {
        let s = |ts: &[i64], v: f64| -> Samples { (ts.to_vec(), vec![v; ts.len()]) };
        let cases: Vec<Vec<Samples>> = vec![
            vec![s(&[1, 2], 1.0), s(&[3, 4], 2.0), s(&[], 3.0), s(&[9], 4.0)],
            vec![s(&[5, 6], 1.0), s(&[1, 2], 2.0)],
            vec![s(&[1, 5], 1.0), s(&[3, 4], 2.0)],
            vec![s(&[1, 2], 1.0), s(&[2, 3], 2.0)],
            vec![s(&[], 1.0), s(&[], 2.0)],
            vec![s(&[7], 1.0), s(&[7], 2.0), s(&[8], 3.0)],
        ];
        for pieces in cases {
            for func in [DedupFunc::OneToOne, DedupFunc::Penalty] {
                assert_eq!(gathered(&pieces, func), merge_raw(pieces.clone(), func), "{pieces:?}");
            }
        }
    }
}
