//! Samples ↔ StoreAPI chunks: XOR chunks of at most [`MAX_CHUNK_SAMPLES`] samples with
//! storepb's encoding number (`XOR = 0`, not Prometheus's 1) and the xxhash64 of the chunk
//! bytes that Thanos queriers use to drop identical chunks across replicas.

use crate::{Error, Result};
use promlake_compat::xor::{XorEncoder, decode_xor_into};
use promlake_proto::thanos::{AggrChunk, Chunk, chunk::Encoding};

/// Samples per chunk, as Prometheus's head cuts them.
pub const MAX_CHUNK_SAMPLES: usize = 120;

/// xxhash64 (seed 0) of chunk bytes, as Thanos's `storepb.Chunk.hash`.
pub fn chunk_hash(data: &[u8]) -> u64 {
    twox_hash::XxHash64::oneshot(0, data)
}

/// Encodes one series' samples (time-ordered) into raw XOR chunks.
pub fn encode_chunks(ts: &[i64], vals: &[f64]) -> Vec<AggrChunk> {
    ts.chunks(MAX_CHUNK_SAMPLES)
        .zip(vals.chunks(MAX_CHUNK_SAMPLES))
        .filter_map(|(t, v)| {
            let (first, last) = (t.first()?, t.last()?);
            let mut enc = XorEncoder::new();
            for (&t, &v) in t.iter().zip(v) {
                enc.append(t, v);
            }
            let data = enc.finish();
            Some(AggrChunk {
                min_time: *first,
                max_time: *last,
                raw: Some(Chunk { r#type: Encoding::Xor as i32, hash: chunk_hash(&data), data }),
                ..Default::default()
            })
        })
        .collect()
}

/// Decodes the raw XOR data of `chunk`, appending samples; chunks without raw data (a
/// downsampled answer) or of another encoding are an error naming what was found.
pub fn decode_chunk_into(chunk: &AggrChunk, ts: &mut Vec<i64>, vals: &mut Vec<f64>) -> Result<usize> {
    let Some(raw) = &chunk.raw else {
        return Err(Error::InvalidArgument(format!(
            "chunk [{}, {}] carries no raw data (a downsampled aggregate chunk)",
            chunk.min_time, chunk.max_time
        )));
    };
    if raw.r#type != Encoding::Xor as i32 {
        let name = Encoding::try_from(raw.r#type).map(|e| e.as_str_name()).unwrap_or("unknown");
        return Err(Error::InvalidArgument(format!(
            "chunk encoding {} ({name}) is not supported; only XOR float chunks are",
            raw.r#type
        )));
    }
    Ok(decode_xor_into(&raw.data, ts, vals)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_at_most_120_samples_and_decode_back() {
        let ts: Vec<i64> = (0..250).map(|i| i * 15_000).collect();
        let vals: Vec<f64> = (0..250).map(|i| f64::from(i) * 0.5).collect();
        let chunks = encode_chunks(&ts, &vals);
        assert_eq!(chunks.len(), 3);
        assert_eq!((chunks[1].min_time, chunks[1].max_time), (120 * 15_000, 239 * 15_000));
        let (mut t2, mut v2) = (Vec::new(), Vec::new());
        for c in &chunks {
            let raw = c.raw.as_ref().map(|r| (r.r#type, r.hash, chunk_hash(&r.data)));
            assert!(matches!(raw, Some((0, h, h2)) if h == h2 && h != 0));
            decode_chunk_into(c, &mut t2, &mut v2).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(t2, ts);
        assert_eq!(v2, vals);
    }

    #[test]
    fn xxhash64_matches_the_reference_vectors() {
        // xxhash64 of "" and "abc" with seed 0 (cespare/xxhash, the library Thanos uses).
        assert_eq!(chunk_hash(b""), 0xef46_db37_51d8_e999);
        assert_eq!(chunk_hash(b"abc"), 0x44bc_2cf5_ad77_0999);
    }
}
