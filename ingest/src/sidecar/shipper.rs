//! The block shipper: every completed TSDB block in Prometheus's data directory becomes a
//! Parquet block with the same ULID in the bucket (external labels in `thanos.labels`,
//! `thanos.source: sidecar`, meta.json uploaded last). What was shipped is remembered in
//! `thanos.shipper.json` (Thanos's format: `{"version":1,"uploaded":[ULID...]}`) in the data
//! directory, so a restart does not upload again.
//!
//! Prometheus writes a block under `<ULID>.tmp-for-creation` and renames it when complete, so
//! a directory named by a bare ULID holding a meta.json is complete.

use promlake_compat::{BlockMeta, NativeBlock};
use promlake_engine::convert::{NoProgress, convert_block};
use promlake_engine::parquet::WriterOptions;
use promlake_engine::{Bucket, Error, Labels, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use ulid::Ulid;

/// The state file's name (as Thanos's shipper).
pub const STATE_FILE: &str = "thanos.shipper.json";

/// How to ship.
#[derive(Debug, Clone)]
pub struct ShipperOptions {
    /// Prometheus's data directory (`--tsdb.path`).
    pub tsdb_path: PathBuf,
    /// Ship blocks of compaction level > 1 too (`--shipper.upload-compacted`).
    pub upload_compacted: bool,
    /// Parquet layout.
    pub writer: WriterOptions,
}

/// Ships blocks of one Prometheus to one bucket.
#[derive(Debug)]
pub struct Shipper {
    bucket: Bucket,
    opts: ShipperOptions,
    labels: Labels,
}

/// What one [`Shipper::sync`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Blocks converted and uploaded.
    pub uploaded: Vec<Ulid>,
    /// Blocks found already in the bucket (recorded as shipped).
    pub already_present: usize,
    /// Blocks that failed (retried next time).
    pub failed: usize,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    version: u32,
    #[serde(default)]
    uploaded: Vec<String>,
}

impl Shipper {
    /// A shipper adding `labels` (Prometheus's external labels) to every block.
    pub fn new(bucket: Bucket, labels: Labels, opts: ShipperOptions) -> Self {
        Shipper { bucket, opts, labels }
    }

    fn state_path(&self) -> PathBuf {
        self.opts.tsdb_path.join(STATE_FILE)
    }

    fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.display().to_string(), source }
    }

    /// The ULIDs recorded as shipped (empty when the state file does not exist yet).
    pub fn shipped(&self) -> Result<BTreeSet<Ulid>> {
        let path = self.state_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(Self::io(&path, e)),
        };
        let state: State = serde_json::from_slice(&bytes)
            .map_err(|e| fmt_err(path.display().to_string(), format!("not a shipper state file: {e}")))?;
        if state.version != 1 {
            return Err(fmt_err(path.display().to_string(), format!("unknown version {}", state.version)));
        }
        state
            .uploaded
            .iter()
            .map(|u| {
                Ulid::from_string(u)
                    .map_err(|e| fmt_err(path.display().to_string(), format!("ulid {u:?}: {e}")))
            })
            .collect()
    }

    fn save(&self, shipped: &BTreeSet<Ulid>) -> Result<()> {
        let state = State { version: 1, uploaded: shipped.iter().map(Ulid::to_string).collect() };
        let path = self.state_path();
        let tmp = path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(&state).map_err(|e| fmt_err(STATE_FILE, e.to_string()))?;
        std::fs::write(&tmp, body).map_err(|e| Self::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Self::io(&path, e))
    }

    /// Completed blocks in the data directory eligible for shipping, oldest first.
    fn candidates(&self) -> Result<Vec<(Ulid, BlockMeta)>> {
        let dir = &self.opts.tsdb_path;
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).map_err(|e| Self::io(dir, e))? {
            let e = e.map_err(|e| Self::io(dir, e))?;
            let Some(id) = e.file_name().to_str().and_then(|n| Ulid::from_string(n).ok()) else { continue };
            let meta_path = e.path().join("meta.json");
            let Ok(bytes) = std::fs::read(&meta_path) else { continue };
            let meta = BlockMeta::parse(&meta_path.display().to_string(), &bytes)?;
            if meta.compaction.level > 1 && !self.opts.upload_compacted {
                continue;
            }
            out.push((id, meta));
        }
        out.sort_by_key(|(id, _)| *id);
        Ok(out)
    }

    /// Ships every eligible block not shipped yet; a block that fails is logged and retried
    /// on the next call. Blocks one at a time on the blocking pool.
    pub async fn sync(&self) -> Result<SyncReport> {
        let mut shipped = self.shipped()?;
        let mut report = SyncReport::default();
        for (id, meta) in self.candidates()? {
            if shipped.contains(&id) {
                continue;
            }
            if self.bucket.has_block(&id).await? {
                tracing::info!(block = %id, "block already in the bucket; recording it as shipped");
                report.already_present += 1;
                shipped.insert(id);
                self.save(&shipped)?;
                continue;
            }
            let started = std::time::Instant::now();
            match self.ship(id).await {
                Ok(()) => {
                    tracing::info!(
                        block = %id,
                        min_time = meta.min_time,
                        max_time = meta.max_time,
                        samples = meta.stats.num_samples,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "block shipped"
                    );
                    report.uploaded.push(id);
                    shipped.insert(id);
                    self.save(&shipped)?;
                }
                Err(e) => {
                    tracing::warn!(block = %id, error = %e, "shipping the block failed; retrying on the next sync");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    async fn ship(&self, id: Ulid) -> Result<()> {
        let store: Arc<dyn object_store::ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&self.opts.tsdb_path).map_err(
                |e| Error::ObjectStore { path: self.opts.tsdb_path.display().to_string(), source: e },
            )?);
        let block = NativeBlock::open(store, &object_store::path::Path::from(id.to_string())).await?;
        let rt = tokio::runtime::Handle::current();
        let writer = self.opts.writer.clone();
        let (block, written) = tokio::task::spawn_blocking(move || {
            let w = convert_block(&rt, &block, &writer, &NoProgress);
            (block, w)
        })
        .await
        .map_err(|e| Error::Unavailable(format!("conversion task: {e}")))?;
        let written = written?;
        let mut meta = block.meta().clone();
        let thanos = meta.thanos.get_or_insert_with(Default::default);
        let external = Labels::from_pairs(thanos.labels.clone()).merged(&self.labels);
        thanos.labels = external.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
        thanos.version = 1;
        thanos.source = "sidecar".to_string();
        thanos.segment_files.clear();
        if let Err(e) = written.upload(&self.bucket, &id, meta).await {
            let _ = self.bucket.delete_block(&id).await;
            return Err(e);
        }
        Ok(())
    }
}

fn fmt_err(path: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Format { path: path.into(), reason: reason.into() }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ships_each_completed_block_once() {
        let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/tsdb-blocks/tiny");
        let data = tempfile::tempdir().unwrap();
        let lake = tempfile::tempdir().unwrap();
        let ids = ["01M8AXQ5BJNE0SYE3RJCX48A98", "01M8AXQ5DHQ0AK9RKPV1D1GJAY", "01M8AXQ5EFTB4RSDBHAYF9QW20"];
        for id in ids {
            copy_dir(&tiny.join(id), &data.path().join(id));
        }
        // A block still being written, and a compacted block.
        copy_dir(&tiny.join(ids[0]), &data.path().join("01M8AXQ5BJNE0SYE3RJCX48A99.tmp-for-creation"));
        let compacted = data.path().join(ids[2]).join("meta.json");
        let mut meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&compacted).unwrap()).unwrap();
        meta["compaction"]["level"] = 2.into();
        std::fs::write(&compacted, serde_json::to_vec(&meta).unwrap()).unwrap();

        let bucket = Bucket::open(&promlake_engine::BucketConfig::from_url(format!(
            "file://{}",
            lake.path().display()
        )))
        .unwrap();
        let labels = Labels::from_pairs([("cluster", "c1")]);
        let opts = |upload_compacted| ShipperOptions {
            tsdb_path: data.path().to_path_buf(),
            upload_compacted,
            writer: WriterOptions::default(),
        };
        let shipper = Shipper::new(bucket.clone(), labels.clone(), opts(false));
        let r = shipper.sync().await.unwrap();
        let want: Vec<Ulid> = ids[..2].iter().map(|i| Ulid::from_string(i).unwrap()).collect();
        assert_eq!((r.uploaded.clone(), r.failed), (want.clone(), 0));
        assert_eq!(shipper.shipped().unwrap().into_iter().collect::<Vec<_>>(), want);
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(data.path().join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(state["version"], 1);
        // Nothing twice.
        assert_eq!(shipper.sync().await.unwrap(), SyncReport::default());

        let blocks = bucket.list_blocks().await.unwrap();
        assert_eq!(blocks.len(), 2);
        for b in &blocks {
            let t = b.meta.thanos.as_ref().unwrap();
            assert_eq!(
                (t.source.as_str(), t.labels.get("cluster").map(String::as_str)),
                ("sidecar", Some("c1"))
            );
        }

        let all = Shipper::new(bucket.clone(), labels.clone(), opts(true));
        assert_eq!(all.sync().await.unwrap().uploaded, vec![Ulid::from_string(ids[2]).unwrap()]);
        // A lost state file: blocks already in the bucket are recorded, not uploaded again.
        std::fs::remove_file(data.path().join(STATE_FILE)).unwrap();
        let r = all.sync().await.unwrap();
        assert_eq!((r.uploaded.len(), r.already_present), (0, 3));
        // A corrupt state file is an error naming it.
        std::fs::write(data.path().join(STATE_FILE), "{").unwrap();
        let err = all.sync().await.unwrap_err().to_string();
        assert!(err.contains(STATE_FILE), "{err}");
    }
}
