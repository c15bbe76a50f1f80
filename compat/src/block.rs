//! [`NativeBlock`]: one Prometheus TSDB block read through an object store, and
//! [`discover_blocks`] to find blocks under a directory.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

pub use crate::chunks::ChunkRange;
use crate::chunks::{ChunkReader, ENCODING_XOR, RawChunk, encoding_name};
use crate::dumpfmt::format_labels;
use crate::error::{Error, Result};
use crate::index::IndexReader;
pub use crate::index::{ChunkMeta, SeriesEntry};
use crate::io::{get_all, get_optional};
use crate::meta::BlockMeta;
use crate::tombstones::Tombstones;

/// An opened native block: meta, index (series in memory), chunk segments and tombstones.
///
/// Cheap to share across threads (`Send + Sync`); chunk data is fetched on demand with
/// [`NativeBlock::fetch_chunks`] and decoded with [`NativeBlock::decode_series`].
#[derive(Debug)]
pub struct NativeBlock {
    dir: Path,
    meta: BlockMeta,
    meta_size: u64,
    index: IndexReader,
    series: Vec<SeriesEntry>,
    chunks: ChunkReader,
    tombstones: Tombstones,
    tombstones_size: u64,
}

impl NativeBlock {
    /// Opens the block at `dir` (an object-store prefix holding meta.json, index, chunks/,
    /// optional tombstones). Reads meta.json, the index TOC, symbols, series entries and
    /// postings offset table, the tombstones, and lists the chunk segment files.
    pub async fn open(store: Arc<dyn ObjectStore>, dir: &Path) -> Result<NativeBlock> {
        let meta_path = dir.clone().join("meta.json");
        let index_path = dir.clone().join("index");
        let chunks_dir = dir.clone().join("chunks");
        let tomb_path = dir.clone().join("tombstones");
        let (meta_bytes, mut index, chunks, tomb_bytes) = futures::try_join!(
            get_all(store.as_ref(), &meta_path),
            IndexReader::open(store.clone(), &index_path),
            ChunkReader::open(store.clone(), &chunks_dir),
            get_optional(store.as_ref(), &tomb_path),
        )?;
        let meta = BlockMeta::parse(meta_path.as_ref(), &meta_bytes)?;
        let (tombstones, tombstones_size) = match tomb_bytes {
            Some(b) => (Tombstones::parse(tomb_path.as_ref(), &b)?, b.len() as u64),
            None => (Tombstones::new(), 0),
        };
        let series = index.take_series();
        Ok(NativeBlock {
            dir: dir.clone(),
            meta,
            meta_size: meta_bytes.len() as u64,
            index,
            series,
            chunks,
            tombstones,
            tombstones_size,
        })
    }

    /// The parsed meta.json.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's directory prefix.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// All series in index order.
    pub fn series(&self) -> &[SeriesEntry] {
        &self.series
    }

    /// The index reader (symbols, TOC, version).
    pub fn index(&self) -> &IndexReader {
        &self.index
    }

    /// The chunk segment reader.
    pub fn chunk_reader(&self) -> &ChunkReader {
        &self.chunks
    }

    /// Deleted intervals.
    pub fn tombstones(&self) -> &Tombstones {
        &self.tombstones
    }

    /// Label names, sorted, excluding the all-postings key.
    pub fn label_names(&self) -> Vec<String> {
        self.index.label_names()
    }

    /// Values of label `name`, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.index.label_values(name)
    }

    /// Series refs with `name="value"`, read with one ranged request and CRC-checked.
    pub async fn postings(&self, name: &str, value: &str) -> Result<Vec<u64>> {
        self.index.postings(name, value).await
    }

    /// Fetches all chunk bytes of `series` with one ranged read per touched segment file.
    pub async fn fetch_chunks(&self, series: &[&SeriesEntry]) -> Result<ChunkRange> {
        // Collected first: a borrowing iterator held across the await makes the future's
        // Send bound fail to resolve for callers.
        let refs: Vec<u64> = series.iter().flat_map(|s| s.chunks.iter().map(|c| c.chunk_ref)).collect();
        self.chunks.fetch(&refs).await
    }

    /// The raw, CRC-checked record of `chunk_ref` from `range`.
    pub fn chunk<'r>(&self, range: &'r ChunkRange, chunk_ref: u64) -> Result<RawChunk<'r>> {
        self.chunks.chunk(range, chunk_ref)
    }

    /// Decodes every chunk of `series` from `range` (which must come from
    /// [`Self::fetch_chunks`] over a set including it), appending samples in time order to
    /// `ts`/`vals` with tombstones applied. Non-XOR chunks are [`Error::Unsupported`].
    /// Returns the number of samples appended; on error nothing is appended.
    pub fn decode_series(
        &self,
        series: &SeriesEntry,
        range: &ChunkRange,
        ts: &mut Vec<i64>,
        vals: &mut Vec<f64>,
    ) -> Result<usize> {
        let (ts0, vals0) = (ts.len(), vals.len());
        let res = self.decode_series_inner(series, range, ts, vals);
        if res.is_err() {
            ts.truncate(ts0);
            vals.truncate(vals0);
        }
        res
    }

    fn decode_series_inner(
        &self,
        series: &SeriesEntry,
        range: &ChunkRange,
        ts: &mut Vec<i64>,
        vals: &mut Vec<f64>,
    ) -> Result<usize> {
        let start = ts.len();
        for c in &series.chunks {
            let raw = self.chunks.chunk(range, c.chunk_ref)?;
            let seg_path = || {
                self.chunks
                    .segments()
                    .get((c.chunk_ref >> 32) as usize)
                    .map(|s| s.path.to_string())
                    .unwrap_or_default()
            };
            if raw.encoding != ENCODING_XOR {
                return Err(Error::Unsupported {
                    path: seg_path(),
                    what: format!(
                        "{} chunk encoding (byte {}) at ref {:#x} of series {}; only XOR float chunks are supported",
                        encoding_name(raw.encoding),
                        raw.encoding,
                        c.chunk_ref,
                        format_labels(&series.labels)
                    ),
                });
            }
            crate::xor::decode_raw(raw.data, ts, vals).map_err(|reason| {
                Error::corrupt(
                    &seg_path(),
                    format!(
                        "XOR chunk at offset {} of series {}: {reason}",
                        c.chunk_ref & 0xffff_ffff,
                        format_labels(&series.labels)
                    ),
                )
            })?;
        }
        let deleted = self.tombstones.intervals(series.series_ref);
        if !deleted.is_empty() {
            let mut w = start;
            for r in start..ts.len() {
                let t = ts[r];
                if !deleted.iter().any(|iv| iv.contains(t)) {
                    ts[w] = t;
                    vals[w] = vals[r];
                    w += 1;
                }
            }
            ts.truncate(w);
            vals.truncate(w);
        }
        Ok(ts.len() - start)
    }

    /// Total bytes of the block's files (index + chunks + meta.json + tombstones).
    pub fn size_bytes(&self) -> u64 {
        self.index.size() + self.chunks.total_size() + self.meta_size + self.tombstones_size
    }
}

/// Finds the native blocks under `dir`: `dir` itself if it holds meta.json, otherwise every
/// immediate child holding both meta.json and index (skipping `wal/`, `chunks_head/`).
/// Returns the block prefixes sorted.
pub async fn discover_blocks(store: &dyn ObjectStore, dir: &Path) -> Result<Vec<Path>> {
    if exists(store, &dir.clone().join("meta.json")).await? {
        return Ok(vec![dir.clone()]);
    }
    let listing = store.list_with_delimiter(Some(dir)).await.map_err(|e| Error::store(dir.as_ref(), e))?;
    let candidates =
        listing.common_prefixes.into_iter().filter(|p| !matches!(p.filename(), Some("wal" | "chunks_head")));
    let mut blocks = Vec::new();
    for child in candidates {
        if exists(store, &child.clone().join("meta.json")).await?
            && exists(store, &child.clone().join("index")).await?
        {
            blocks.push(child);
        }
    }
    blocks.sort();
    Ok(blocks)
}

async fn exists(store: &dyn ObjectStore, path: &Path) -> Result<bool> {
    match store.head(path).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(Error::store(path.as_ref(), e)),
    }
}
