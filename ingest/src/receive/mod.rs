//! `promlake receive`: Prometheus remote write into a WAL-backed, per-tenant in-memory head
//! that is cut into Parquet blocks in the bucket every block duration.
//!
//! ```text
//!  POST /api/v1/receive ─► http (snappy, protobuf, limits, tenant header)
//!        │
//!        ▼
//!  Receiver::write ─► Head::append (per tenant, under its lock) ─► Wal::append
//!        │                                                           │ group commit:
//!        └──────────── answer once durable ◄──── wal-sync thread: write + fdatasync
//!
//!  cut (every tick): window [s, s+D) of a head is due once data or the clock reach s+1.5D
//!    ─► ParquetBlockWriter ─► upload (meta.json last) ─► uploaded.json ─► drop from head
//!    ─► delete WAL segments whose samples are all uploaded
//! ```
//!
//! Restart: [`Receiver::open`] replays the WAL into the heads, skipping what `uploaded.json`
//! says is already in the bucket, so every acknowledged sample is back before `/-/ready`.

pub mod cut;
pub mod forward;
pub mod hashring;
pub mod head;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod series;
pub mod source;
pub mod tenant;
pub mod wal;

use crate::{Error, Result};
use head::AppendResult;
use limits::{Limits, check_request};
use metrics::{Metrics, TenantGauges};
use promlake_engine::Labels;
use promlake_engine::catalog::BucketSource;
use promlake_proto::prometheus::WriteRequest;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock};
use tenant::{Heads, TenantsSource};
use wal::{SyncPolicy, Wal};

/// Everything the receiver needs to know, validated.
#[derive(Debug, Clone)]
pub struct ReceiveConfig {
    /// Local directory of the WAL and state (`--tsdb.path`).
    pub tsdb_path: PathBuf,
    /// Block duration in ms (`--tsdb.block-duration`).
    pub block_ms: i64,
    /// External labels (`--label`).
    pub external: Labels,
    /// The label carrying the tenant (`--receive.tenant-label-name`).
    pub tenant_label: String,
    /// Tenant of requests without the tenant header (`--receive.default-tenant-id`).
    pub default_tenant: String,
    /// When WAL records reach the disk (`--tsdb.wal.fsync`).
    pub wal_sync: SyncPolicy,
    /// Request and head limits (`--receive.limits-config-file`).
    pub limits: Limits,
}

/// The receiver: heads, WAL and counters. Shared by the HTTP handlers and the block cutter.
#[derive(Debug)]
pub struct Receiver {
    cfg: ReceiveConfig,
    heads: Arc<Heads>,
    wal: OnceLock<Arc<Wal>>,
    uploaded: Mutex<BTreeMap<String, i64>>,
    metrics: Metrics,
    blocks: OnceLock<Arc<BucketSource>>,
}

impl Receiver {
    /// A receiver that is not ready yet: call [`Receiver::replay`] (blocking) next.
    pub fn new(cfg: ReceiveConfig) -> Arc<Self> {
        let heads = Arc::new(Heads::new(cfg.external.clone(), cfg.tenant_label.clone(), cfg.block_ms));
        Arc::new(Receiver {
            cfg,
            heads,
            wal: OnceLock::new(),
            uploaded: Mutex::new(BTreeMap::new()),
            metrics: Metrics::default(),
            blocks: OnceLock::new(),
        })
    }

    /// Replays the WAL into the heads and opens it for writes (blocking I/O: run it on a
    /// blocking thread). The receiver is ready afterwards.
    pub fn replay(&self) -> Result<()> {
        std::fs::create_dir_all(&self.cfg.tsdb_path)
            .map_err(|e| Error::io(self.cfg.tsdb_path.display(), e))?;
        let uploaded = cut::read_uploaded(&self.cfg.tsdb_path)?;
        for (tenant, end) in &uploaded {
            self.heads.get_or_create(tenant).set_min_valid_time(*end);
        }
        *self.uploaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = uploaded;
        let started = std::time::Instant::now();
        let mut bad = 0u64;
        let (wal, stats) = Wal::open(&self.cfg.tsdb_path.join("wal"), self.cfg.wal_sync, |rec| {
            let req: WriteRequest = match prost::Message::decode(rec.request) {
                Ok(r) => r,
                Err(_) => {
                    bad += 1;
                    return None;
                }
            };
            let max = req.timeseries.iter().flat_map(|t| t.samples.iter().map(|s| s.timestamp)).max();
            let head = self.heads.get_or_create(rec.tenant);
            if head.append(&req, None, 0, |_, _| Ok(0)).is_err() {
                bad += 1;
            }
            max
        })?;
        if bad > 0 {
            tracing::warn!(records = bad, "WAL records that could not be decoded were skipped");
        }
        self.metrics.wal_replayed_records.store(stats.records, Relaxed);
        let series: usize = self.heads.all().iter().map(|h| h.num_series()).sum();
        tracing::info!(
            segments = stats.segments,
            records = stats.records,
            series,
            elapsed = ?started.elapsed(),
            "WAL replay done; ready"
        );
        let _ = self.wal.set(wal);
        Ok(())
    }

    /// Whether the WAL replay finished.
    pub fn is_ready(&self) -> bool {
        self.wal.get().is_some()
    }

    /// The configuration.
    pub fn config(&self) -> &ReceiveConfig {
        &self.cfg
    }

    /// The heads.
    pub fn heads(&self) -> &Arc<Heads> {
        &self.heads
    }

    /// Serves the blocks this receiver uploaded (those with its `--label`s) next to the heads;
    /// the cutter refreshes them after each upload, before dropping the data from the head.
    pub fn set_blocks(&self, blocks: Arc<BucketSource>) {
        let _ = self.blocks.set(blocks);
    }

    /// Every tenant's head, plus the uploaded blocks once [`Self::set_blocks`] was called, as one
    /// series source (for the StoreAPI).
    pub fn source(&self) -> Arc<dyn promlake_engine::SeriesSource> {
        let heads = TenantsSource::new(self.heads.clone());
        Arc::new(source::ReceiveSource::new(heads, self.blocks.get().cloned(), &self.cfg.external))
    }

    /// The uploaded blocks being served, if any.
    pub fn blocks(&self) -> Option<&Arc<BucketSource>> {
        self.blocks.get()
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The WAL, once ready.
    pub fn wal(&self) -> Result<&Arc<Wal>> {
        self.wal
            .get()
            .ok_or_else(|| Error::Unavailable("the receiver is replaying its WAL; not ready".into()))
    }

    /// Appends a decoded request for `tenant` and returns once it is durable in the WAL.
    /// `raw` is the protobuf as received (logged as is when every sample is accepted).
    /// Rejected samples are reported in the result; the rest is stored.
    pub async fn write(&self, tenant: &str, raw: &[u8], req: &WriteRequest) -> Result<AppendResult> {
        let wal = self.wal()?;
        let limits = self.cfg.limits.for_tenant(tenant);
        let samples: usize = req.timeseries.iter().map(|t| t.samples.len()).sum();
        check_request(&limits.request, req.timeseries.len() as u64, samples as u64)?;
        let head = self.heads.get_or_create(tenant);
        let res = head.append(req, Some(raw), limits.head_series_limit.unwrap_or(0), |bytes, max_ts| {
            wal.append_request(tenant, bytes, max_ts)
        })?;
        let m = &self.metrics;
        m.samples_appended.fetch_add(res.appended, Relaxed);
        m.out_of_order.fetch_add(res.out_of_order, Relaxed);
        m.duplicate.fetch_add(res.duplicate, Relaxed);
        m.out_of_bounds.fetch_add(res.out_of_bounds, Relaxed);
        m.invalid_series.fetch_add(res.invalid_series, Relaxed);
        if let Some(seq) = res.wal_seq {
            wal.wait_durable(seq).await?;
        }
        Ok(res)
    }

    /// The `/metrics` text.
    pub fn render_metrics(&self) -> String {
        let tenants: Vec<TenantGauges> = self
            .heads
            .all()
            .iter()
            .map(|h| TenantGauges {
                tenant: h.tenant().to_string(),
                series: h.num_series(),
                bytes: h.memory_bytes(),
            })
            .collect();
        let (segments, syncs) = self.wal.get().map_or((0, 0), |w| (w.segments().len(), w.syncs()));
        self.metrics.render(&tenants, segments, syncs, self.is_ready())
    }

    /// Flushes and closes the WAL (graceful shutdown; everything acknowledged is on disk anyway).
    pub fn close(&self) -> Result<()> {
        match self.wal.get() {
            Some(w) => w.close(),
            None => Ok(()),
        }
    }

    fn uploaded_until(&self, tenant: &str) -> i64 {
        self.uploaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(tenant)
            .copied()
            .unwrap_or(i64::MIN)
    }
}
