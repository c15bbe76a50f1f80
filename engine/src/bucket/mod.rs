//! The bucket: blocks in object storage, one directory per block named by its ULID, as in
//! Thanos. `meta.json` is written last and deleted first; a directory without it is an
//! unfinished upload and invisible to readers.

mod config;

pub use config::{BucketConfig, S3Options};

use crate::{Error, Result};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use promlake_compat::BlockMeta;
use serde::Serialize;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use ulid::Ulid;

/// The name of a block's metadata file.
pub const META_FILE: &str = "meta.json";

/// How a block stores its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockFormat {
    /// promlake Parquet block (`series.parquet` + `samples.parquet`).
    Parquet,
    /// Native Prometheus/Thanos TSDB block (`index` + `chunks/`).
    Native,
}

/// A block visible in the bucket.
#[derive(Debug, Clone)]
pub struct BlockInfo {
    /// Its meta.json.
    pub meta: BlockMeta,
    /// Parquet or native.
    pub format: BlockFormat,
}

impl BlockInfo {
    /// Classifies a block by its meta.json.
    pub fn from_meta(meta: BlockMeta) -> Self {
        let format = if meta.promlake.is_some() { BlockFormat::Parquet } else { BlockFormat::Native };
        BlockInfo { meta, format }
    }
}

/// An object-store bucket holding blocks.
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    url: String,
    /// The directory of a `file://` bucket opened from its URL.
    local: Option<std::path::PathBuf>,
}

impl Bucket {
    /// Opens the bucket a configuration points at.
    pub fn open(config: &BucketConfig) -> Result<Self> {
        let (store, url) = config.build()?;
        let local =
            url::Url::parse(&url).ok().filter(|u| u.scheme() == "file").and_then(|u| u.to_file_path().ok());
        Ok(Bucket { store, url, local })
    }

    /// Wraps an existing store (tests, in-memory buckets).
    pub fn from_store(store: Arc<dyn ObjectStore>, url: impl Into<String>) -> Self {
        Bucket { store, url: url.into(), local: None }
    }

    /// The local file holding object `path` when the bucket is a `file://` directory (for
    /// readers that read it directly, without the object store's thread hops and buffers).
    pub fn local_path(&self, path: &Path) -> Option<std::path::PathBuf> {
        self.local.as_ref().map(|dir| dir.join(path.as_ref()))
    }

    /// The underlying object store, rooted at the bucket's prefix.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The URL the bucket was opened from, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The path of `file` inside block `id`.
    pub fn block_path(id: &Ulid, file: &str) -> Path {
        Path::from(id.to_string()).join(file)
    }

    /// IDs of every top-level directory named by a ULID (finished or not).
    pub async fn block_dirs(&self) -> Result<Vec<Ulid>> {
        let list = self.store.list_with_delimiter(None).await.map_err(|e| Error::store(&self.url, e))?;
        let mut ids: Vec<Ulid> = list
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().and_then(|n| Ulid::from_string(n).ok()))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The meta.json of block `id`, or `None` when the block is absent or unfinished.
    pub async fn read_meta(&self, id: &Ulid) -> Result<Option<BlockMeta>> {
        let path = Self::block_path(id, META_FILE);
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await.map_err(|e| Error::store(&path, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(Error::store(&path, e)),
        };
        let shown = format!("{}/{path}", self.url.trim_end_matches('/'));
        Ok(Some(BlockMeta::parse(&shown, &bytes)?))
    }

    /// Does the bucket hold a finished block `id`?
    pub async fn has_block(&self, id: &Ulid) -> Result<bool> {
        let path = Self::block_path(id, META_FILE);
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(Error::store(&path, e)),
        }
    }

    /// Every finished block, sorted by (minTime, ULID).
    pub async fn list_blocks(&self) -> Result<Vec<BlockInfo>> {
        let ids = self.block_dirs().await?;
        let mut blocks: Vec<BlockInfo> = futures::stream::iter(ids)
            .map(|id| async move { self.read_meta(&id).await })
            .buffer_unordered(16)
            .try_filter_map(|m| async move { Ok(m.map(BlockInfo::from_meta)) })
            .try_collect()
            .await?;
        blocks.sort_by(|a, b| (a.meta.min_time, &a.meta.ulid).cmp(&(b.meta.min_time, &b.meta.ulid)));
        Ok(blocks)
    }

    /// Writes a small object in one request.
    pub async fn put_bytes(&self, path: &Path, bytes: Vec<u8>) -> Result<()> {
        self.store.put(path, PutPayload::from(bytes)).await.map_err(|e| Error::store(path, e))?;
        Ok(())
    }

    /// Streams a local file to `dest` (multipart for large files). Returns its size.
    pub async fn upload_file(&self, local: &std::path::Path, dest: &Path) -> Result<u64> {
        if let Some(target) = self.local_path(dest) {
            // A local bucket: a kernel-side copy instead of buffering the file in memory.
            if let Some(dir) = target.parent() {
                tokio::fs::create_dir_all(dir).await.map_err(|e| Error::io(dir.display(), e))?;
            }
            return tokio::fs::copy(local, &target).await.map_err(|e| Error::io(target.display(), e));
        }
        let mut file = tokio::fs::File::open(local).await.map_err(|e| Error::io(local.display(), e))?;
        let mut writer = object_store::buffered::BufWriter::new(self.store.clone(), dest.clone());
        let n = tokio::io::copy(&mut file, &mut writer).await.map_err(|e| Error::io(dest, e))?;
        writer.shutdown().await.map_err(|e| Error::io(dest, e))?;
        Ok(n)
    }

    /// Deletes every object under block `id`, meta.json first, so readers stop seeing it at once.
    pub async fn delete_block(&self, id: &Ulid) -> Result<()> {
        self.delete_block_then(id, None).await
    }

    /// As [`Bucket::delete_block`], with the block's file `last` (if present) deleted after all
    /// the others, so an interrupted deletion still shows it.
    pub async fn delete_block_then(&self, id: &Ulid, last: Option<&str>) -> Result<()> {
        let meta = Self::block_path(id, META_FILE);
        match self.store.delete(&meta).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(Error::store(&meta, e)),
        }
        let prefix = Path::from(id.to_string());
        let mut objects: Vec<Path> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|e| Error::store(&prefix, e))?;
        if let Some(last) = last {
            let last = Self::block_path(id, last);
            objects.sort_by_key(|p| *p == last);
        }
        for p in objects {
            match self.store.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::store(&p, e)),
            }
        }
        // A `file://` bucket keeps directories after their last file goes; remove the block's
        // (now empty) directories so the bucket lists as an object store would. Best effort:
        // a directory that is not empty (a concurrent upload) stays.
        if let Some(dir) = self.local_path(&prefix) {
            remove_empty_dirs(&dir);
        }
        Ok(())
    }
}

/// Removes `dir` and its subdirectories if they hold no files; errors are ignored.
fn remove_empty_dirs(dir: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&e.path());
            }
        }
    }
    // Fails (and is ignored) when the directory still holds something.
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[tokio::test]
    async fn deleting_a_block_of_a_file_bucket_leaves_no_directory() {
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::from_directory_path(dir.path()).unwrap();
        let bucket = Bucket::open(&BucketConfig::from_url(url.as_str())).unwrap();
        let (gone, kept) = (Ulid::from_parts(1, 1), Ulid::from_parts(2, 2));
        for id in [gone, kept] {
            for file in [META_FILE, "samples.parquet", "chunks/000001", "deletion-mark.json"] {
                bucket.put_bytes(&Path::from(format!("{id}/{file}")), b"x".to_vec()).await.unwrap();
            }
        }
        bucket.delete_block_then(&gone, Some("deletion-mark.json")).await.unwrap();
        assert!(!dir.path().join(gone.to_string()).exists());
        assert!(dir.path().join(kept.to_string()).join("chunks/000001").exists());
        assert_eq!(bucket.block_dirs().await.unwrap(), vec![kept]);
    }
}
