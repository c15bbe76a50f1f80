//! One series of the head: interned labels and its samples as XOR chunks (Prometheus's
//! Gorilla encoding, ~1.4 bytes per sample for scraped data), at most [`CHUNK_SAMPLES`]
//! samples per chunk and never spanning a block boundary, so cutting a block takes whole chunks.

use promlake_compat::xor::{XorEncoder, decode_xor_into};
use std::sync::Arc;

/// Samples per chunk before a new one starts (Prometheus's target).
pub const CHUNK_SAMPLES: usize = 120;

/// An interned label: name and value shared with every other series using them.
pub type SymLabel = (Arc<str>, Arc<str>);

/// A closed chunk.
#[derive(Debug)]
struct Chunk {
    min_t: i64,
    max_t: i64,
    data: Box<[u8]>,
}

/// The chunk being appended to.
#[derive(Debug)]
struct OpenChunk {
    min_t: i64,
    /// End (exclusive) of the block window this chunk belongs to.
    window_end: i64,
    enc: XorEncoder,
}

/// Why a sample was not appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Older than the newest sample of the series.
    OutOfOrder,
    /// Same timestamp as the newest sample, different value.
    Duplicate,
}

/// A series in the head.
#[derive(Debug)]
pub struct MemSeries {
    /// Labels sorted by name (external labels not included).
    pub labels: Box<[SymLabel]>,
    chunks: Vec<Chunk>,
    open: Option<OpenChunk>,
    last_t: i64,
    last_v: u64,
}

/// Samples decoded from a series.
pub type Samples = (Vec<i64>, Vec<f64>);

impl MemSeries {
    /// A series without samples.
    pub fn new(labels: Box<[SymLabel]>) -> Self {
        MemSeries { labels, chunks: Vec::new(), open: None, last_t: i64::MIN, last_v: 0 }
    }

    /// Checks whether `(t, v)` would be appended: `Ok(true)` yes, `Ok(false)` an exact
    /// duplicate of the newest sample (silently ignored, as Prometheus does).
    pub fn check(&self, t: i64, v: f64) -> Result<bool, Reject> {
        if self.last_t == i64::MIN || t > self.last_t {
            Ok(true)
        } else if t < self.last_t {
            Err(Reject::OutOfOrder)
        } else if v.to_bits() == self.last_v {
            Ok(false)
        } else {
            Err(Reject::Duplicate)
        }
    }

    /// Appends a sample that passed [`Self::check`]; `block_ms` aligns chunk boundaries.
    pub fn append(&mut self, t: i64, v: f64, block_ms: i64) {
        let cut = match &self.open {
            None => false,
            Some(o) => o.enc.num_samples() >= CHUNK_SAMPLES || t >= o.window_end,
        };
        if cut {
            self.close_open();
        }
        let open = self.open.get_or_insert_with(|| OpenChunk {
            min_t: t,
            window_end: (t.div_euclid(block_ms) + 1).saturating_mul(block_ms),
            enc: XorEncoder::new(),
        });
        open.enc.append(t, v);
        self.last_t = t;
        self.last_v = v.to_bits();
    }

    fn close_open(&mut self) {
        if let Some(o) = self.open.take() {
            let data = o.enc.finish().into_boxed_slice();
            self.chunks.push(Chunk { min_t: o.min_t, max_t: self.last_t, data });
        }
    }

    /// Timestamp of the newest sample appended (`i64::MIN` if none).
    pub fn last_t(&self) -> i64 {
        self.last_t
    }

    /// Earliest sample still held, if any.
    pub fn min_t(&self) -> Option<i64> {
        self.chunks.first().map(|c| c.min_t).or(self.open.as_ref().map(|o| o.min_t))
    }

    /// Whether the series holds no samples.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.open.is_none()
    }

    /// Samples with `min <= t <= max`.
    pub fn samples(&self, min: i64, max: i64) -> Samples {
        let mut ts = Vec::new();
        let mut vs = Vec::new();
        let (mut tmp_t, mut tmp_v) = (Vec::new(), Vec::new());
        let mut push = |data: &[u8]| {
            tmp_t.clear();
            tmp_v.clear();
            // Chunks are written by us; on a decode failure nothing is appended.
            if decode_xor_into(data, &mut tmp_t, &mut tmp_v).is_ok() {
                for (&t, &v) in tmp_t.iter().zip(&tmp_v) {
                    if t >= min && t <= max {
                        ts.push(t);
                        vs.push(v);
                    }
                }
            }
        };
        for c in &self.chunks {
            if c.max_t >= min && c.min_t <= max {
                push(&c.data);
            }
        }
        if let Some(o) = &self.open
            && o.min_t <= max
            && self.last_t >= min
        {
            push(&o.enc.clone().finish());
        }
        (ts, vs)
    }

    /// Samples before `end` (whole chunks, since chunks never span a window boundary).
    pub fn samples_before(&self, end: i64) -> Samples {
        self.samples(i64::MIN, end - 1)
    }

    /// Drops every chunk whose samples are all before `end`.
    pub fn drop_before(&mut self, end: i64) {
        if self.open.as_ref().is_some_and(|o| o.window_end <= end) {
            self.close_open();
        }
        self.chunks.retain(|c| c.max_t >= end);
    }

    /// Bytes this series holds on the heap and inline (labels counted as pointers only).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.labels.len() * std::mem::size_of::<SymLabel>()
            + self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.chunks.iter().map(|c| c.data.len()).sum::<usize>()
            + self.open.as_ref().map_or(0, |o| o.enc.len_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_across_chunks_and_windows() {
        let mut s = MemSeries::new(Box::new([]));
        for i in 0..300i64 {
            assert_eq!(s.check(i * 1000, i as f64), Ok(true));
            s.append(i * 1000, i as f64, 100_000);
        }
        assert_eq!(s.check(5, 1.0), Err(Reject::OutOfOrder));
        assert_eq!(s.check(299_000, 299.0), Ok(false));
        assert_eq!(s.check(299_000, 1.0), Err(Reject::Duplicate));
        let (ts, vs) = s.samples(i64::MIN, i64::MAX);
        assert_eq!(ts.len(), 300);
        assert_eq!(vs[299], 299.0);
        let (ts, _) = s.samples_before(100_000);
        assert_eq!(ts.len(), 100);
        let (ts, _) = s.samples(50_500, 150_000);
        assert_eq!((ts.first().copied(), ts.len()), (Some(51_000), 100));
        s.drop_before(200_000);
        assert_eq!(s.min_t(), Some(200_000));
        assert_eq!(s.samples(i64::MIN, i64::MAX).0.len(), 100);
    }
}
