//! Object-store reads with errors that name the object path.

use std::ops::Range;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use crate::error::{Error, Result};

/// Reads exactly `range` of `path`; a short read (file smaller than expected) is
/// [`Error::Corrupt`]. An empty range reads nothing.
pub(crate) async fn get_range_exact(
    store: &dyn ObjectStore,
    path: &Path,
    range: Range<u64>,
) -> Result<Bytes> {
    if range.start >= range.end {
        return Ok(Bytes::new());
    }
    let want = range.end - range.start;
    let bytes = store.get_range(path, range.clone()).await.map_err(|e| Error::store(path.as_ref(), e))?;
    if bytes.len() as u64 != want {
        return Err(Error::corrupt(
            path.as_ref(),
            format!("file too short: wanted bytes {}..{}, got {} bytes", range.start, range.end, bytes.len()),
        ));
    }
    Ok(bytes)
}

/// Reads the last `n` bytes of `path`; returns them with the object's total size.
pub(crate) async fn get_suffix(store: &dyn ObjectStore, path: &Path, n: u64) -> Result<(Bytes, u64)> {
    let opts = GetOptions::new().with_range(Some(GetRange::Suffix(n)));
    let res = store.get_opts(path, opts).await.map_err(|e| Error::store(path.as_ref(), e))?;
    let size = res.meta.size;
    let bytes = res.bytes().await.map_err(|e| Error::store(path.as_ref(), e))?;
    Ok((bytes, size))
}

/// Reads all of `path`.
pub(crate) async fn get_all(store: &dyn ObjectStore, path: &Path) -> Result<Bytes> {
    let res = store.get(path).await.map_err(|e| Error::store(path.as_ref(), e))?;
    res.bytes().await.map_err(|e| Error::store(path.as_ref(), e))
}

/// Reads all of `path`, or `None` if it does not exist.
pub(crate) async fn get_optional(store: &dyn ObjectStore, path: &Path) -> Result<Option<Bytes>> {
    match get_all(store, path).await {
        Ok(b) => Ok(Some(b)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads several ranges of `path` in one batch (the store may coalesce them); each must be
/// returned in full. Empty ranges read nothing.
pub(crate) async fn get_ranges_exact(
    store: &dyn ObjectStore,
    path: &Path,
    ranges: &[Range<u64>],
) -> Result<Vec<Bytes>> {
    let wanted: Vec<Range<u64>> = ranges.iter().filter(|r| r.start < r.end).cloned().collect();
    let got = if wanted.is_empty() {
        Vec::new()
    } else {
        store.get_ranges(path, &wanted).await.map_err(|e| Error::store(path.as_ref(), e))?
    };
    let mut got = got.into_iter();
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        if r.start >= r.end {
            out.push(Bytes::new());
            continue;
        }
        let b = got.next().unwrap_or_default();
        if b.len() as u64 != r.end - r.start {
            return Err(Error::corrupt(
                path.as_ref(),
                format!("file too short: wanted bytes {}..{}, got {} bytes", r.start, r.end, b.len()),
            ));
        }
        out.push(b);
    }
    Ok(out)
}
