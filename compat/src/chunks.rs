//! Reader for the chunk segment files under a block's `chunks/` directory.
//!
//! A segment is an 8-byte header (magic `0x85BD40DD`, version 1, 3 zero bytes) followed by
//! records `uvarint len | encoding (1B) | data (len bytes) | CRC32C(encoding + data)`.
//! A chunk ref is `segment index (0-based over the sorted files) << 32 | byte offset`.
//! [`ChunkReader::fetch`] reads one byte range per touched segment into a [`ChunkRange`];
//! [`ChunkReader::chunk`] then slices and CRC-checks single records out of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::future::try_join_all;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::encoding::{check_crc, uvarint};
use crate::error::{Error, Result};
use crate::io::get_range_exact;

/// Magic number of a chunk segment file.
pub const SEGMENT_MAGIC: u32 = 0x85BD_40DD;
/// Size of a segment header.
pub const SEGMENT_HEADER_LEN: u64 = 8;
/// Chunk encoding byte of XOR float chunks.
pub const ENCODING_XOR: u8 = 1;
/// Chunk encoding byte of native histogram chunks.
pub const ENCODING_HISTOGRAM: u8 = 2;
/// Chunk encoding byte of float histogram chunks.
pub const ENCODING_FLOAT_HISTOGRAM: u8 = 3;
/// Thanos downsampled aggregate chunk.
pub const ENCODING_AGGR: u8 = 0xFF;

/// Bytes read past the last chunk's start, hoping to cover its whole record.
const READ_AHEAD: u64 = 16 * 1024;

/// Human-readable name of a chunk encoding byte.
pub fn encoding_name(enc: u8) -> String {
    match enc {
        0 => "none".to_owned(),
        ENCODING_XOR => "XOR".to_owned(),
        ENCODING_HISTOGRAM => "histogram".to_owned(),
        ENCODING_FLOAT_HISTOGRAM => "float histogram".to_owned(),
        4 => "XOR2".to_owned(),
        5 => "histogram with start timestamps".to_owned(),
        6 => "float histogram with start timestamps".to_owned(),
        ENCODING_AGGR => "Thanos aggregate".to_owned(),
        other => format!("unknown ({other})"),
    }
}

/// One segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Object path, e.g. `<block>/chunks/000001`.
    pub path: Path,
    /// Size in bytes.
    pub size: u64,
}

/// One chunk record sliced out of a [`ChunkRange`].
#[derive(Debug, Clone, Copy)]
pub struct RawChunk<'a> {
    /// Encoding byte (see the `ENCODING_*` constants).
    pub encoding: u8,
    /// Chunk data after the encoding byte.
    pub data: &'a [u8],
}

#[derive(Debug, Clone)]
struct Part {
    segment: u32,
    start: u64,
    bytes: Bytes,
}

/// Chunk bytes fetched for a set of series: at most one contiguous byte range per segment.
#[derive(Debug, Clone, Default)]
pub struct ChunkRange {
    parts: Vec<Part>,
}

impl ChunkRange {
    /// Total bytes held.
    pub fn len_bytes(&self) -> usize {
        self.parts.iter().map(|p| p.bytes.len()).sum()
    }

    fn find(&self, segment: u32, offset: u64) -> Option<(&Part, usize)> {
        let i = self.parts.binary_search_by_key(&segment, |p| p.segment).ok()?;
        let part = &self.parts[i];
        let rel = offset.checked_sub(part.start)?;
        let rel = usize::try_from(rel).ok()?;
        (rel < part.bytes.len()).then_some((part, rel))
    }
}

/// The segment files of one block.
#[derive(Debug)]
pub struct ChunkReader {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    segments: Vec<Segment>,
}

impl ChunkReader {
    /// Lists `chunks_dir` (numeric file names, sorted by number) and checks each header.
    pub async fn open(store: Arc<dyn ObjectStore>, chunks_dir: &Path) -> Result<Self> {
        let listing = store
            .list_with_delimiter(Some(chunks_dir))
            .await
            .map_err(|e| Error::store(chunks_dir.as_ref(), e))?;
        let mut numbered: Vec<(u64, Segment)> = listing
            .objects
            .into_iter()
            .filter_map(|o| {
                let n = o.location.filename()?.parse::<u64>().ok()?;
                Some((n, Segment { path: o.location, size: o.size }))
            })
            .collect();
        numbered.sort_by_key(|(n, _)| *n);
        let segments: Vec<Segment> = numbered.into_iter().map(|(_, s)| s).collect();
        try_join_all(segments.iter().map(|s| check_header(store.as_ref(), s))).await?;
        Ok(ChunkReader { store, dir: chunks_dir.clone(), segments })
    }

    /// The segment files in chunk-ref order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Sum of the segment sizes.
    pub fn total_size(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    fn segment(&self, chunk_ref: u64) -> Result<(u32, &Segment, u64)> {
        let seg = (chunk_ref >> 32) as u32;
        let off = chunk_ref & 0xffff_ffff;
        let s = self.segments.get(seg as usize).ok_or_else(|| {
            Error::corrupt(
                self.dir.as_ref(),
                format!(
                    "chunk ref {chunk_ref:#x} names segment {seg}, but only {} segment files exist",
                    self.segments.len()
                ),
            )
        })?;
        if off < SEGMENT_HEADER_LEN || off >= s.size {
            return Err(Error::corrupt(
                s.path.as_ref(),
                format!("chunk ref {chunk_ref:#x}: offset {off} outside the file of {} bytes", s.size),
            ));
        }
        Ok((seg, s, off))
    }

    /// Fetches every chunk in `refs` with one ranged read per touched segment (plus one more
    /// if the last record runs past the read-ahead).
    pub async fn fetch(&self, refs: &[u64]) -> Result<ChunkRange> {
        let mut spans: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for &r in refs {
            let (seg, _, off) = self.segment(r)?;
            let e = spans.entry(seg).or_insert((off, off));
            e.0 = e.0.min(off);
            e.1 = e.1.max(off);
        }
        let parts =
            try_join_all(spans.into_iter().map(|(seg, (first, last))| self.fetch_span(seg, first, last)))
                .await?;
        Ok(ChunkRange { parts })
    }

    async fn fetch_span(&self, seg: u32, first: u64, last: u64) -> Result<Part> {
        let s = &self.segments[seg as usize];
        let p = s.path.as_ref();
        let end = last.saturating_add(READ_AHEAD).min(s.size);
        let bytes = get_range_exact(self.store.as_ref(), &s.path, first..end).await?;
        // The last record's length is only known now.
        let rel = (last - first) as usize;
        let (len, n) = uvarint(&bytes[rel..])
            .map_err(|e| Error::corrupt(p, format!("chunk at offset {last}: length: {e}")))?;
        let need = last
            .checked_add(n as u64 + 1 + 4)
            .and_then(|x| x.checked_add(len))
            .filter(|&x| x <= s.size)
            .ok_or_else(|| {
                Error::corrupt(
                    p,
                    format!(
                        "chunk at offset {last} of length {len} runs past the end of the {}-byte file",
                        s.size
                    ),
                )
            })?;
        let bytes = if need > end {
            let rest = get_range_exact(self.store.as_ref(), &s.path, end..need).await?;
            let mut all = BytesMut::with_capacity(bytes.len() + rest.len());
            all.extend_from_slice(&bytes);
            all.extend_from_slice(&rest);
            all.freeze()
        } else {
            bytes
        };
        Ok(Part { segment: seg, start: first, bytes })
    }

    /// Slices the record of `chunk_ref` out of `range` and checks its CRC32C.
    pub fn chunk<'r>(&self, range: &'r ChunkRange, chunk_ref: u64) -> Result<RawChunk<'r>> {
        let (seg, s, off) = self.segment(chunk_ref)?;
        let p = s.path.as_ref();
        let (part, rel) = range.find(seg, off).ok_or_else(|| {
            Error::corrupt(
                p,
                format!("chunk ref {chunk_ref:#x} is not in the fetched range (fetch_chunks must cover its series)"),
            )
        })?;
        let b = &part.bytes[rel..];
        let (len, n) =
            uvarint(b).map_err(|e| Error::corrupt(p, format!("chunk at offset {off}: length: {e}")))?;
        let body = usize::try_from(len)
            .ok()
            .and_then(|len| b.get(n..n.checked_add(len)?.checked_add(1)?))
            .ok_or_else(|| {
                Error::corrupt(
                    p,
                    format!("chunk at offset {off} of length {len} runs past the end of the data"),
                )
            })?;
        let crc = b.get(n + body.len()..n + body.len() + 4).ok_or_else(|| {
            Error::corrupt(p, format!("chunk at offset {off}: checksum past the end of the data"))
        })?;
        let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        check_crc(p, || format!("chunk at offset {off}"), body, stored)?;
        Ok(RawChunk { encoding: body[0], data: &body[1..] })
    }
}

async fn check_header(store: &dyn ObjectStore, s: &Segment) -> Result<()> {
    let p = s.path.as_ref();
    if s.size < SEGMENT_HEADER_LEN {
        return Err(Error::corrupt(p, format!("{} bytes is shorter than the segment header", s.size)));
    }
    let h = get_range_exact(store, &s.path, 0..SEGMENT_HEADER_LEN).await?;
    let magic = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    if magic != SEGMENT_MAGIC {
        return Err(Error::corrupt(p, format!("bad magic {magic:#010x}, expected {SEGMENT_MAGIC:#010x}")));
    }
    if h[4] != 1 {
        return Err(Error::Unsupported {
            path: p.to_owned(),
            what: format!("chunk segment format version {} (supported: 1)", h[4]),
        });
    }
    Ok(())
}
