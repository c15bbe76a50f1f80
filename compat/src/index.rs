//! Reader for the Prometheus TSDB `index` file (format versions 2 and 3).
//!
//! Opening reads, with ranged requests only: the 52-byte TOC (suffix range), then in one batch
//! the 5-byte header, the symbol table, the series section and the postings offset table.
//! Postings lists are fetched on demand by [`IndexReader::postings`]. Every section, series
//! entry and postings list is CRC32C-checked.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path;

use crate::encoding::{Dec, DecErr, check_crc, uvarint};
use crate::error::{Error, Result};
use crate::io::{get_range_exact, get_ranges_exact, get_suffix};

/// Magic number at the start of an index file.
pub const INDEX_MAGIC: u32 = 0xBAAA_D700;
/// Size of the table of contents at the end of the file.
pub const TOC_LEN: u64 = 6 * 8 + 4;
/// Size of the file header (magic + version).
const HEADER_LEN: u64 = 5;

/// A chunk of a series as recorded in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// First sample timestamp (ms).
    pub min_time: i64,
    /// Last sample timestamp (ms, inclusive).
    pub max_time: i64,
    /// `segment index << 32 | byte offset` into `chunks/`.
    pub chunk_ref: u64,
}

/// One series of the index: its labels and chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesEntry {
    /// Series reference: byte offset of the entry / 16.
    pub series_ref: u64,
    /// Label pairs sorted by name, as stored.
    pub labels: Vec<(String, String)>,
    /// Chunks in time order.
    pub chunks: Vec<ChunkMeta>,
}

/// Section offsets from the table of contents (0 = absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Toc {
    /// Symbol table.
    pub symbols: u64,
    /// First series entry.
    pub series: u64,
    /// Legacy label indices.
    pub label_indices: u64,
    /// Legacy label offset table.
    pub label_indices_table: u64,
    /// First postings list.
    pub postings: u64,
    /// Postings offset table.
    pub postings_table: u64,
}

impl Toc {
    fn offsets(&self) -> [u64; 6] {
        [
            self.symbols,
            self.series,
            self.label_indices,
            self.label_indices_table,
            self.postings,
            self.postings_table,
        ]
    }

    /// End of the section starting at `start`: the next section's start or the TOC.
    fn section_end(&self, start: u64, toc_start: u64) -> u64 {
        self.offsets().into_iter().filter(|&o| o > start).min().unwrap_or(toc_start).min(toc_start)
    }
}

/// An opened index: symbols, series entries and the postings offset table in memory.
#[derive(Debug)]
pub struct IndexReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    version: u8,
    toc: Toc,
    symbols: Vec<String>,
    series: Vec<SeriesEntry>,
    /// Label name -> (value, postings list offset), in table order.
    postings_table: BTreeMap<String, Vec<(String, u64)>>,
    /// Every postings list offset, sorted, to bound each list's ranged read.
    postings_offsets: Vec<u64>,
    /// End of the postings lists region.
    postings_end: u64,
}

impl IndexReader {
    /// Opens the index at `path`, reading TOC, header, symbols, series and the postings
    /// offset table.
    pub async fn open(store: Arc<dyn ObjectStore>, path: &Path) -> Result<Self> {
        let p = path.as_ref();
        let (toc_bytes, size) = get_suffix(store.as_ref(), path, TOC_LEN).await?;
        if size < HEADER_LEN + TOC_LEN || toc_bytes.len() as u64 != TOC_LEN {
            return Err(Error::corrupt(p, format!("file of {size} bytes is too short for an index")));
        }
        let toc = parse_toc(p, &toc_bytes)?;
        let toc_start = size - TOC_LEN;
        for (name, off) in ["symbols", "series", "postings offset table"].iter().zip([
            toc.symbols,
            toc.series,
            toc.postings_table,
        ]) {
            if off < HEADER_LEN || off >= toc_start {
                return Err(Error::corrupt(
                    p,
                    format!("TOC {name} offset {off} outside the file (size {size})"),
                ));
            }
        }
        for off in toc.offsets() {
            if off > toc_start {
                return Err(Error::corrupt(p, format!("TOC offset {off} beyond the file (size {size})")));
            }
        }
        let ranges = [
            0..HEADER_LEN,
            toc.symbols..toc.section_end(toc.symbols, toc_start),
            toc.series..toc.section_end(toc.series, toc_start),
            toc.postings_table..toc_start,
        ];
        let parts = get_ranges_exact(store.as_ref(), path, &ranges).await?;
        let [header, sym_bytes, series_bytes, table_bytes] = parts.as_slice() else {
            return Err(Error::corrupt(p, "object store returned the wrong number of ranges"));
        };
        let version = parse_header(p, header)?;
        let symbols = parse_symbols(p, toc.symbols, sym_bytes)?;
        let series = parse_series_section(p, toc.series, series_bytes, &symbols)?;
        let (postings_table, mut postings_offsets) =
            parse_postings_table(p, toc.postings_table, table_bytes)?;
        postings_offsets.sort_unstable();
        let postings_end = [toc.label_indices_table, toc.postings_table]
            .into_iter()
            .filter(|&o| o > toc.postings)
            .min()
            .unwrap_or(toc_start);
        Ok(IndexReader {
            store,
            path: path.clone(),
            size,
            version,
            toc,
            symbols,
            series,
            postings_table,
            postings_offsets,
            postings_end,
        })
    }

    /// Object path of the index file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Format version from the header (2 or 3).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The table of contents.
    pub fn toc(&self) -> &Toc {
        &self.toc
    }

    /// The symbol table, sorted.
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    /// All series, in index order.
    pub fn series(&self) -> &[SeriesEntry] {
        &self.series
    }

    /// Takes the series out of the reader (leaves it empty).
    pub fn take_series(&mut self) -> Vec<SeriesEntry> {
        std::mem::take(&mut self.series)
    }

    /// Label names from the postings offset table, sorted, without the all-postings key.
    pub fn label_names(&self) -> Vec<String> {
        self.postings_table.keys().filter(|k| !k.is_empty()).cloned().collect()
    }

    /// Values of label `name`, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.postings_table
            .get(name)
            .map(|vs| vs.iter().map(|(v, _)| v.clone()).collect())
            .unwrap_or_default()
    }

    /// Series refs having `name="value"` (`("", "")` = all series), with one ranged read of
    /// that postings list. Unknown pairs give an empty list.
    pub async fn postings(&self, name: &str, value: &str) -> Result<Vec<u64>> {
        let p = self.path.as_ref();
        let Some(off) = self
            .postings_table
            .get(name)
            .and_then(|vs| vs.binary_search_by(|(v, _)| v.as_str().cmp(value)).ok().map(|i| vs[i].1))
        else {
            return Ok(Vec::new());
        };
        let next = self.postings_offsets.partition_point(|&o| o <= off);
        let end = self.postings_offsets.get(next).copied().unwrap_or(self.postings_end);
        if off < self.toc.postings || end <= off || end > self.size {
            return Err(Error::corrupt(
                p,
                format!("postings list for {name}={value:?} at offset {off} outside the postings section"),
            ));
        }
        let bytes = get_range_exact(self.store.as_ref(), &self.path, off..end).await?;
        let what = || format!("postings list {name}={value:?} at offset {off}");
        let body = section(p, &bytes, &what)?;
        let mut d = Dec::new(body);
        let n = d.be32().map_err(|e| Error::corrupt(p, format!("{}: {e}", what())))? as usize;
        if d.remaining() != n.saturating_mul(4) {
            return Err(Error::corrupt(
                p,
                format!("{}: {n} entries need {} bytes, have {}", what(), n * 4, d.remaining()),
            ));
        }
        let mut refs = Vec::with_capacity(n);
        for _ in 0..n {
            refs.push(u64::from(d.be32().map_err(|e| Error::corrupt(p, format!("{}: {e}", what())))?));
        }
        Ok(refs)
    }
}

fn parse_toc(p: &str, b: &[u8]) -> Result<Toc> {
    let mut d = Dec::new(b);
    let mut o = [0u64; 6];
    for x in &mut o {
        *x = d.be64().map_err(|e| Error::corrupt(p, format!("TOC: {e}")))?;
    }
    let stored = d.be32().map_err(|e| Error::corrupt(p, format!("TOC: {e}")))?;
    check_crc(p, || "TOC".to_owned(), &b[..48], stored)?;
    Ok(Toc {
        symbols: o[0],
        series: o[1],
        label_indices: o[2],
        label_indices_table: o[3],
        postings: o[4],
        postings_table: o[5],
    })
}

fn parse_header(p: &str, b: &[u8]) -> Result<u8> {
    let [m0, m1, m2, m3, version] = *b else {
        return Err(Error::corrupt(p, "header shorter than 5 bytes"));
    };
    let magic = u32::from_be_bytes([m0, m1, m2, m3]);
    if magic != INDEX_MAGIC {
        return Err(Error::corrupt(p, format!("bad magic {magic:#010x}, expected {INDEX_MAGIC:#010x}")));
    }
    if version != 2 && version != 3 {
        return Err(Error::Unsupported {
            path: p.to_owned(),
            what: format!("index format version {version} (supported: 2, 3)"),
        });
    }
    Ok(version)
}

/// Splits a `len(4) | payload | crc(4)` section off the start of `b` (trailing padding
/// allowed), verifying the CRC; returns the payload.
fn section<'a>(p: &str, b: &'a [u8], what: &dyn Fn() -> String) -> Result<&'a [u8]> {
    let mut d = Dec::new(b);
    let len = d.be32().map_err(|e| Error::corrupt(p, format!("{}: {e}", what())))? as usize;
    let body = d.bytes(len).map_err(|_| {
        Error::corrupt(
            p,
            format!("{}: length {len} exceeds the {} bytes available", what(), b.len().saturating_sub(8)),
        )
    })?;
    let stored = d.be32().map_err(|_| Error::corrupt(p, format!("{}: checksum missing", what())))?;
    check_crc(p, what, body, stored)?;
    Ok(body)
}

fn corrupt_at(p: &str, what: &str, off: u64, e: DecErr) -> Error {
    Error::corrupt(p, format!("{what} at offset {off}: {e}"))
}

fn parse_symbols(p: &str, off: u64, b: &[u8]) -> Result<Vec<String>> {
    let what = || format!("symbol table at offset {off}");
    let body = section(p, b, &what)?;
    let mut d = Dec::new(body);
    let n = d.be32().map_err(|e| corrupt_at(p, "symbol table", off, e))? as usize;
    let mut symbols = Vec::with_capacity(n.min(body.len()));
    for i in 0..n {
        let s = d
            .uvarint_bytes()
            .map_err(|e| Error::corrupt(p, format!("symbol {i} of {n} at offset {off}: {e}")))?;
        let s =
            std::str::from_utf8(s).map_err(|e| Error::corrupt(p, format!("symbol {i} is not UTF-8: {e}")))?;
        symbols.push(s.to_owned());
    }
    Ok(symbols)
}

fn symbol<'s>(p: &str, symbols: &'s [String], ord: u32, entry_off: u64) -> Result<&'s str> {
    symbols.get(ord as usize).map(String::as_str).ok_or_else(|| {
        Error::corrupt(
            p,
            format!(
                "series entry at offset {entry_off}: symbol ref {ord} out of range ({} symbols)",
                symbols.len()
            ),
        )
    })
}

/// Parses every 16-byte-aligned series entry of the section starting at file offset `base`
/// (entries start at the first 16-byte boundary at or after `base`; zero padding between).
fn parse_series_section(p: &str, base: u64, b: &[u8], symbols: &[String]) -> Result<Vec<SeriesEntry>> {
    let mut out = Vec::new();
    // The TOC points at the section start; entries begin at the next 16-byte boundary.
    let align = |pos: usize| ((base + pos as u64).div_ceil(16) * 16 - base) as usize;
    let mut pos = align(0);
    while pos < b.len() {
        let rest = &b[pos..];
        let off = base + pos as u64;
        let (len, n) = uvarint(rest).map_err(|e| corrupt_at(p, "series entry", off, e))?;
        if len == 0 {
            if rest.iter().all(|&x| x == 0) {
                break;
            }
            return Err(Error::corrupt(p, format!("series entry at offset {off}: zero length")));
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let body = rest.get(n..).and_then(|r| r.get(..len)).ok_or_else(|| {
            Error::corrupt(p, format!("series entry at offset {off}: length {len} past section end"))
        })?;
        let crc = rest.get(n + len..n + len + 4).ok_or_else(|| {
            Error::corrupt(p, format!("series entry at offset {off}: checksum past section end"))
        })?;
        let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        check_crc(p, || format!("series entry at offset {off}"), body, stored)?;
        out.push(parse_series_entry(p, off, body, symbols)?);
        pos = align(pos + n + len + 4);
    }
    Ok(out)
}

fn parse_series_entry(p: &str, off: u64, body: &[u8], symbols: &[String]) -> Result<SeriesEntry> {
    let err = |e: DecErr| corrupt_at(p, "series entry", off, e);
    let mut d = Dec::new(body);
    let nl = d.uvarint().map_err(err)? as usize;
    let mut labels = Vec::with_capacity(nl.min(body.len()));
    for _ in 0..nl {
        let name = d.uvarint32().map_err(err)?;
        let value = d.uvarint32().map_err(err)?;
        labels.push((symbol(p, symbols, name, off)?.to_owned(), symbol(p, symbols, value, off)?.to_owned()));
    }
    let nc = d.uvarint().map_err(err)? as usize;
    let mut chunks = Vec::with_capacity(nc.min(body.len()));
    if nc > 0 {
        let mint = d.varint().map_err(err)?;
        let maxt = mint.wrapping_add(d.uvarint().map_err(err)? as i64);
        let mut chunk_ref = d.uvarint().map_err(err)?;
        chunks.push(ChunkMeta { min_time: mint, max_time: maxt, chunk_ref });
        let mut prev_maxt = maxt;
        for _ in 1..nc {
            let mint = prev_maxt.wrapping_add(d.uvarint().map_err(err)? as i64);
            let maxt = mint.wrapping_add(d.uvarint().map_err(err)? as i64);
            chunk_ref = chunk_ref.wrapping_add(d.varint().map_err(err)? as u64);
            chunks.push(ChunkMeta { min_time: mint, max_time: maxt, chunk_ref });
            prev_maxt = maxt;
        }
    }
    Ok(SeriesEntry { series_ref: off / 16, labels, chunks })
}

type PostingsTable = BTreeMap<String, Vec<(String, u64)>>;

fn parse_postings_table(p: &str, off: u64, b: &[u8]) -> Result<(PostingsTable, Vec<u64>)> {
    let what = || format!("postings offset table at offset {off}");
    let body = section(p, b, &what)?;
    let err = |e: DecErr| corrupt_at(p, "postings offset table", off, e);
    let mut d = Dec::new(body);
    let n = d.be32().map_err(err)? as usize;
    let mut table: PostingsTable = BTreeMap::new();
    let mut offsets = Vec::with_capacity(n.min(body.len()));
    for i in 0..n {
        let keys = d.uvarint().map_err(err)?;
        if keys != 2 {
            return Err(Error::corrupt(
                p,
                format!("postings offset table entry {i} at byte {} has {keys} keys, expected 2", d.pos()),
            ));
        }
        let name = utf8(p, d.uvarint_bytes().map_err(err)?)?;
        let value = utf8(p, d.uvarint_bytes().map_err(err)?)?;
        let list_off = d.uvarint().map_err(err)?;
        offsets.push(list_off);
        let values = table.entry(name.to_owned()).or_default();
        if values.last().is_some_and(|(v, _)| v.as_str() >= value) {
            return Err(Error::corrupt(p, format!("postings offset table not sorted at {name}={value:?}")));
        }
        values.push((value.to_owned(), list_off));
    }
    Ok((table, offsets))
}

fn utf8<'a>(p: &str, b: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(b).map_err(|e| Error::corrupt(p, format!("label string is not UTF-8: {e}")))
}
