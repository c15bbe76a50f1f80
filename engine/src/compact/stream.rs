//! The streaming pipeline shared by compaction and downsampling: a k-way merge of the inputs'
//! label-sorted series lists, then batches of series (bounded by rows) read from every input,
//! transformed in parallel on rayon (merge, dedup or downsample) and appended in order to the
//! output block. Memory is bounded by one batch, not by the blocks.

use super::CompactProgress;
use super::input::{Input, SeriesData};
use crate::parquet::{AggrBlockWriter, ParquetBlockWriter, WrittenBlock};
use crate::{Error, Labels, Result};
use rayon::prelude::*;
use tokio::runtime::Handle;

/// Decoded bytes read per batch, over all inputs (16 a sample, 48 a downsampled window). With
/// the batch being written and the one in the channel, about three are in memory at once.
pub const BATCH_BYTES: u64 = 4 << 20;
/// Series per batch at most.
pub const BATCH_SERIES: usize = 8192;

/// Turns the pieces of one series (one per input holding it, in input order) into the output
/// series, or `None` to drop it.
pub type Transform<'a> = dyn Fn(Vec<SeriesData>) -> Result<Option<SeriesData>> + Sync + 'a;

/// The block being written.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "one sink per compaction job, never moved in a loop")]
pub enum Sink {
    /// A raw block.
    Raw(ParquetBlockWriter),
    /// A downsampled block.
    Aggr(AggrBlockWriter),
}

impl Sink {
    fn append(&mut self, labels: Labels, data: &SeriesData) -> Result<()> {
        match (self, data) {
            (Sink::Raw(w), SeriesData::Raw(t, v)) => w.append(labels, t, v).map(|_| ()),
            (Sink::Aggr(w), SeriesData::Aggr(a)) => w.append(labels, a).map(|_| ()),
            _ => Err(Error::InvalidArgument(format!(
                "series {labels}: raw and downsampled data mixed in one block"
            ))),
        }
    }

    /// Finishes the local files.
    pub fn finish(self) -> Result<WrittenBlock> {
        match self {
            Sink::Raw(w) => w.finish(),
            Sink::Aggr(w) => w.finish(),
        }
    }
}

/// One output series: its labels and where its pieces are (input, position).
struct Planned {
    labels: Labels,
    parts: Vec<(usize, usize)>,
}

/// Merges the inputs' series lists (each in label order) into one ordered list.
fn plan_series(inputs: &[Input]) -> Vec<Planned> {
    let mut pos = vec![0usize; inputs.len()];
    let mut out = Vec::new();
    loop {
        let mut best: Option<&Labels> = None;
        for (i, input) in inputs.iter().enumerate() {
            if let Some(l) = input.labels(pos[i])
                && best.is_none_or(|b| l.block_order(b) == std::cmp::Ordering::Less)
            {
                best = Some(l);
            }
        }
        let Some(best) = best.cloned() else { break };
        let mut parts = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            if input.labels(pos[i]) == Some(&best) {
                parts.push((i, pos[i]));
                pos[i] += 1;
            }
        }
        out.push(Planned { labels: best, parts });
    }
    out
}

/// Streams every series of `inputs` through `transform` into `sink`. Returns the rows read.
/// Call off the async runtime.
///
/// Pipelined: while the sink encodes batch N on its own thread, batch N+1 is read (inputs in
/// parallel) and transformed (series in parallel); at most two batches are in memory.
pub fn run(
    rt: &Handle,
    inputs: &[Input],
    transform: &Transform<'_>,
    sink: &mut Sink,
    progress: &dyn CompactProgress,
) -> Result<u64> {
    let planned = plan_series(inputs);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(Labels, SeriesData)>>(1);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<()> {
            for batch in rx {
                for (labels, data) in batch {
                    sink.append(labels, &data)?;
                }
            }
            Ok(())
        });
        let produced = produce(rt, inputs, &planned, transform, progress, &tx);
        drop(tx);
        let written =
            writer.join().unwrap_or_else(|_| Err(Error::InvalidArgument("block writer panicked".into())));
        // A write error makes the producer fail on send; report the writer's error first.
        written?;
        produced
    })
}

fn produce(
    rt: &Handle,
    inputs: &[Input],
    planned: &[Planned],
    transform: &Transform<'_>,
    progress: &dyn CompactProgress,
    tx: &std::sync::mpsc::SyncSender<Vec<(Labels, SeriesData)>>,
) -> Result<u64> {
    let mut rows_read = 0u64;
    let mut start = 0;
    while start < planned.len() {
        let (mut end, mut bytes, mut rows) = (start, 0u64, 0u64);
        while end < planned.len() && (end == start || (bytes < BATCH_BYTES && end - start < BATCH_SERIES)) {
            for &(i, k) in &planned[end].parts {
                bytes += inputs[i].bytes(k);
                rows += inputs[i].rows(k);
            }
            end += 1;
        }
        let batch = &planned[start..end];
        // Per input: the contiguous range of its series in this batch.
        let mut ranges: Vec<Option<(usize, usize)>> = vec![None; inputs.len()];
        for p in batch {
            for &(i, k) in &p.parts {
                let r = ranges[i].get_or_insert((k, k));
                r.0 = r.0.min(k);
                r.1 = r.1.max(k);
            }
        }
        let read: Vec<Result<(usize, Vec<Option<SeriesData>>)>> = ranges
            .par_iter()
            .enumerate()
            .map(|(i, r)| match *r {
                None => Ok((0, Vec::new())),
                Some((lo, hi)) => Ok((lo, inputs[i].read(rt, lo..hi + 1)?.into_iter().map(Some).collect())),
            })
            .collect();
        let mut read = read.into_iter().collect::<Result<Vec<_>>>()?;
        rows_read += read.iter().flat_map(|r| r.1.iter().flatten()).map(|d| d.len() as u64).sum::<u64>();
        let mut work: Vec<(Labels, Vec<SeriesData>)> = Vec::with_capacity(batch.len());
        for p in batch {
            let mut pieces = Vec::with_capacity(p.parts.len());
            for &(i, k) in &p.parts {
                let (lo, data) = &mut read[i];
                let piece = data.get_mut(k - *lo).and_then(Option::take).ok_or_else(|| {
                    Error::InvalidArgument(format!("series {} read twice (inputs out of order?)", p.labels))
                })?;
                pieces.push(piece);
            }
            work.push((p.labels.clone(), pieces));
        }
        drop(read);
        let done: Vec<(Labels, Result<Option<SeriesData>>)> = work
            .into_par_iter()
            .with_min_len(16)
            .map(|(labels, pieces)| (labels, transform(pieces)))
            .collect();
        let mut out = Vec::with_capacity(done.len());
        for (labels, d) in done {
            if let Some(data) = d? {
                out.push((labels, data));
            }
        }
        if tx.send(out).is_err() {
            // The writer stopped on an error; `run` reports it.
            return Ok(rows_read);
        }
        progress.rows_done(rows);
        start = end;
    }
    Ok(rows_read)
}
