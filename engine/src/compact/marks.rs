//! Thanos block markers and the bucket's view for the compactor: `deletion-mark.json`,
//! `no-compact-mark.json`, unfinished (partial) uploads, and block deletion in Thanos's order
//! (meta.json first, data next, deletion-mark.json last).

use crate::bucket::{BlockInfo, Bucket, META_FILE};
use crate::{Error, Result};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use promlake_compat::BlockMeta;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use ulid::Ulid;

/// Name of the deletion marker.
pub const DELETION_MARK: &str = "deletion-mark.json";
/// Name of the no-compact marker.
pub const NO_COMPACT_MARK: &str = "no-compact-mark.json";
/// Name of the no-downsample marker.
pub const NO_DOWNSAMPLE_MARK: &str = "no-downsample-mark.json";
/// A directory without meta.json whose newest object is older than this (ms) is an aborted
/// upload and is removed (Thanos: 2 days).
pub const PARTIAL_UPLOAD_THRESHOLD_MS: i64 = 2 * 24 * 3_600_000;

/// `deletion-mark.json`: the block goes after `--delete-delay`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionMark {
    /// Block ULID.
    pub id: String,
    /// Always 1.
    pub version: u32,
    /// Why.
    #[serde(default)]
    pub details: String,
    /// When it was marked (unix seconds).
    pub deletion_time: i64,
}

/// `no-compact-mark.json`: the compactor leaves the block alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoCompactMark {
    /// Block ULID.
    pub id: String,
    /// Always 1.
    pub version: u32,
    /// Why, in words.
    #[serde(default)]
    pub details: String,
    /// When it was marked (unix seconds).
    pub no_compact_time: i64,
    /// `manual`, `index-size-exceeding`, `block-index-out-of-order-chunk`,
    /// `downsample-vertical-compaction`.
    #[serde(default)]
    pub reason: String,
}

/// Reason of a no-compact mark put on overlapping downsampled blocks (as Thanos).
pub const REASON_DOWNSAMPLE_VERTICAL: &str = "downsample-vertical-compaction";
/// Reason of a mark set by hand.
pub const REASON_MANUAL: &str = "manual";

/// One directory of the bucket named by a ULID.
#[derive(Debug, Clone)]
pub struct BlockDir {
    /// Its ULID.
    pub id: Ulid,
    /// meta.json when the block is finished and parses.
    pub meta: Option<BlockMeta>,
    /// Why meta.json exists but could not be read.
    pub meta_error: Option<String>,
    /// Its deletion mark, if any.
    pub deletion: Option<DeletionMark>,
    /// Its no-compact mark, if any.
    pub no_compact: Option<NoCompactMark>,
    /// Files (relative to the block dir) and their sizes.
    pub files: BTreeMap<String, u64>,
    /// Newest object modification (ms since epoch).
    pub last_modified_ms: i64,
}

impl BlockDir {
    /// The finished block, if any.
    pub fn info(&self) -> Option<BlockInfo> {
        self.meta.clone().map(BlockInfo::from_meta)
    }
}

/// meta.json files already read, by block: a block's meta never changes, so repeated scans
/// (several per pass, one pass every `--wait-interval`) read each only once.
#[derive(Debug, Default)]
pub struct MetaCache(std::sync::Mutex<std::collections::HashMap<Ulid, BlockMeta>>);

impl MetaCache {
    fn get(&self, id: &Ulid) -> Option<BlockMeta> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(id).cloned()
    }

    fn put(&self, id: Ulid, meta: BlockMeta) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, meta);
    }

    /// Forgets blocks no longer listed.
    fn retain(&self, present: &BTreeSet<Ulid>) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|id, _| present.contains(id));
    }
}

/// Lists every ULID directory of the bucket with its files, meta and markers (one recursive
/// listing plus a read per meta.json and marker).
pub async fn scan(bucket: &Bucket) -> Result<Vec<BlockDir>> {
    scan_cached(bucket, &MetaCache::default()).await
}

/// [`scan`], reading only the meta.json files `cache` does not hold yet.
pub async fn scan_cached(bucket: &Bucket, cache: &MetaCache) -> Result<Vec<BlockDir>> {
    let store = bucket.store();
    let objects: Vec<object_store::ObjectMeta> =
        store.list(None).try_collect().await.map_err(|e| Error::store(bucket.url(), e))?;
    let mut dirs: BTreeMap<Ulid, BlockDir> = BTreeMap::new();
    for o in objects {
        let mut parts = o.location.parts();
        let Some(first) = parts.next() else { continue };
        let Ok(id) = Ulid::from_string(first.as_ref()) else { continue };
        let rel: Vec<String> = parts.map(|p| p.as_ref().to_string()).collect();
        let d = dirs.entry(id).or_insert_with(|| BlockDir {
            id,
            meta: None,
            meta_error: None,
            deletion: None,
            no_compact: None,
            files: BTreeMap::new(),
            last_modified_ms: i64::MIN,
        });
        d.files.insert(rel.join("/"), o.size);
        d.last_modified_ms = d.last_modified_ms.max(o.last_modified.timestamp_millis());
    }
    let mut out: Vec<BlockDir> = futures::stream::iter(dirs.into_values())
        .map(|mut d| async move {
            if d.files.contains_key(META_FILE) {
                if let Some(m) = cache.get(&d.id) {
                    d.meta = Some(m);
                } else {
                    match bucket.read_meta(&d.id).await {
                        Ok(m) => {
                            if let Some(m) = &m {
                                cache.put(d.id, m.clone());
                            }
                            d.meta = m;
                        }
                        Err(e) => d.meta_error = Some(e.to_string()),
                    }
                }
            }
            if d.files.contains_key(DELETION_MARK) {
                d.deletion = read_json(bucket, &Bucket::block_path(&d.id, DELETION_MARK)).await?;
            }
            if d.files.contains_key(NO_COMPACT_MARK) {
                d.no_compact = read_json(bucket, &Bucket::block_path(&d.id, NO_COMPACT_MARK)).await?;
            }
            Ok::<_, Error>(d)
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    out.sort_by_key(|d| d.id);
    cache.retain(&out.iter().filter(|d| d.files.contains_key(META_FILE)).map(|d| d.id).collect());
    Ok(out)
}

/// Reads a JSON marker; a missing object is `None`, an unparsable one is logged and `None`
/// (a broken marker must not stop the compactor; `tools bucket verify` reports it).
async fn read_json<T: serde::de::DeserializeOwned>(bucket: &Bucket, path: &Path) -> Result<Option<T>> {
    let bytes = match bucket.store().get(path).await {
        Ok(r) => r.bytes().await.map_err(|e| Error::store(path, e))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Error::store(path, e)),
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            tracing::warn!(path = %path, error = %e, "unreadable marker; ignoring it");
            Ok(None)
        }
    }
}

/// Uploads `deletion-mark.json` for `id` unless one exists. Returns whether it was written.
pub async fn mark_for_deletion(bucket: &Bucket, id: &Ulid, details: &str, now_ms: i64) -> Result<bool> {
    let path = Bucket::block_path(id, DELETION_MARK);
    if read_json::<DeletionMark>(bucket, &path).await?.is_some() {
        return Ok(false);
    }
    let mark = DeletionMark {
        id: id.to_string(),
        version: 1,
        details: details.to_string(),
        deletion_time: now_ms.div_euclid(1000),
    };
    bucket.put_bytes(&path, to_json(&mark)?).await?;
    Ok(true)
}

/// Uploads `no-compact-mark.json` for `id` unless one exists. Returns whether it was written.
pub async fn mark_no_compact(
    bucket: &Bucket,
    id: &Ulid,
    reason: &str,
    details: &str,
    now_ms: i64,
) -> Result<bool> {
    let path = Bucket::block_path(id, NO_COMPACT_MARK);
    if read_json::<NoCompactMark>(bucket, &path).await?.is_some() {
        return Ok(false);
    }
    let mark = NoCompactMark {
        id: id.to_string(),
        version: 1,
        details: details.to_string(),
        no_compact_time: now_ms.div_euclid(1000),
        reason: reason.to_string(),
    };
    bucket.put_bytes(&path, to_json(&mark)?).await?;
    Ok(true)
}

/// Removes marker `name` of block `id` (absent is fine).
pub async fn remove_marker(bucket: &Bucket, id: &Ulid, name: &str) -> Result<()> {
    let path = Bucket::block_path(id, name);
    match bucket.store().delete(&path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(Error::store(&path, e)),
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(|e| Error::InvalidArgument(format!("marker JSON: {e}")))
}

/// Deletes block `id` in Thanos's order: meta.json first (readers stop seeing it), then the
/// data, then `deletion-mark.json` last (so an interrupted deletion is finished next time).
pub async fn delete_block(bucket: &Bucket, id: &Ulid) -> Result<()> {
    bucket.delete_block_then(id, Some(DELETION_MARK)).await
}

/// Directories without meta.json that should go: an interrupted deletion (a deletion mark
/// remains) at once, an aborted upload once its newest object is older than
/// [`PARTIAL_UPLOAD_THRESHOLD_MS`].
pub fn partial_uploads_to_delete(dirs: &[BlockDir], now_ms: i64) -> Vec<Ulid> {
    dirs.iter()
        .filter(|d| d.meta.is_none() && d.meta_error.is_none() && !d.files.contains_key(META_FILE))
        .filter(|d| {
            d.files.contains_key(DELETION_MARK)
                || now_ms.saturating_sub(d.last_modified_ms) > PARTIAL_UPLOAD_THRESHOLD_MS
        })
        .map(|d| d.id)
        .collect()
}

/// Block ids with a deletion mark older than `delay_ms` (ready to delete).
pub fn deletable(dirs: &[BlockDir], delay_ms: i64, now_ms: i64) -> BTreeSet<Ulid> {
    dirs.iter()
        .filter(|d| {
            d.deletion
                .as_ref()
                .is_some_and(|m| now_ms.saturating_sub(m.deletion_time.saturating_mul(1000)) >= delay_ms)
        })
        .map(|d| d.id)
        .collect()
}
