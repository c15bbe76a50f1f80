//! The receiver's own metrics, rendered at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters updated on the write path and by the block cutter.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Remote-write requests by HTTP status code.
    requests: Mutex<BTreeMap<u16, u64>>,
    /// Samples appended to a head.
    pub samples_appended: AtomicU64,
    /// Samples rejected as out of order.
    pub out_of_order: AtomicU64,
    /// Samples rejected as duplicates.
    pub duplicate: AtomicU64,
    /// Samples rejected as out of bounds.
    pub out_of_bounds: AtomicU64,
    /// Series rejected for their labels.
    pub invalid_series: AtomicU64,
    /// Blocks uploaded.
    pub blocks_uploaded: AtomicU64,
    /// Block cuts or uploads that failed (retried later).
    pub upload_failures: AtomicU64,
    /// WAL segments deleted after uploads.
    pub wal_truncated_segments: AtomicU64,
    /// Records replayed from the WAL at start.
    pub wal_replayed_records: AtomicU64,
}

/// Per-tenant gauges sampled at render time.
#[derive(Debug, Clone)]
pub struct TenantGauges {
    /// The tenant.
    pub tenant: String,
    /// Series in its head.
    pub series: usize,
    /// Estimated head memory.
    pub bytes: usize,
}

fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, code: u16) {
        *self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(code).or_default() +=
            1;
    }

    /// The text exposition; `tenants` and `wal_*` are gauges sampled by the caller.
    pub fn render(
        &self,
        tenants: &[TenantGauges],
        wal_segments: usize,
        wal_syncs: u64,
        ready: bool,
    ) -> String {
        let mut s = String::new();
        let counter = |s: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let _ = writeln!(
            s,
            "# HELP promlake_receive_requests_total Remote-write requests by HTTP status code.\n# TYPE promlake_receive_requests_total counter"
        );
        for (code, n) in self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            let _ = writeln!(s, "promlake_receive_requests_total{{code=\"{code}\"}} {n}");
        }
        counter(
            &mut s,
            "promlake_receive_samples_appended_total",
            "Samples appended to a head.",
            self.samples_appended.load(Relaxed),
        );
        let _ = writeln!(
            s,
            "# HELP promlake_receive_samples_rejected_total Samples rejected, by reason.\n# TYPE promlake_receive_samples_rejected_total counter"
        );
        for (reason, v) in [
            ("out_of_order", &self.out_of_order),
            ("duplicate", &self.duplicate),
            ("out_of_bounds", &self.out_of_bounds),
        ] {
            let _ = writeln!(
                s,
                "promlake_receive_samples_rejected_total{{reason=\"{reason}\"}} {}",
                v.load(Relaxed)
            );
        }
        counter(
            &mut s,
            "promlake_receive_invalid_series_total",
            "Series rejected for invalid labels.",
            self.invalid_series.load(Relaxed),
        );
        counter(
            &mut s,
            "promlake_receive_blocks_uploaded_total",
            "Parquet blocks cut from a head and uploaded.",
            self.blocks_uploaded.load(Relaxed),
        );
        counter(
            &mut s,
            "promlake_receive_upload_failures_total",
            "Block cuts or uploads that failed (retried).",
            self.upload_failures.load(Relaxed),
        );
        counter(
            &mut s,
            "promlake_receive_wal_truncated_segments_total",
            "WAL segments deleted after their data was uploaded.",
            self.wal_truncated_segments.load(Relaxed),
        );
        counter(
            &mut s,
            "promlake_receive_wal_replayed_records_total",
            "WAL records replayed at start.",
            self.wal_replayed_records.load(Relaxed),
        );
        counter(
            &mut s,
            "promlake_receive_wal_syncs_total",
            "WAL writes (each one fsync under --tsdb.wal.fsync=always), shared by concurrent requests.",
            wal_syncs,
        );
        let _ = writeln!(
            s,
            "# HELP promlake_receive_wal_segments WAL segments on disk.\n# TYPE promlake_receive_wal_segments gauge\npromlake_receive_wal_segments {wal_segments}"
        );
        let _ = writeln!(
            s,
            "# HELP promlake_receive_head_series Series in a tenant's head.\n# TYPE promlake_receive_head_series gauge"
        );
        for t in tenants {
            let _ = writeln!(
                s,
                "promlake_receive_head_series{{tenant=\"{}\"}} {}",
                label_value(&t.tenant),
                t.series
            );
        }
        let _ = writeln!(
            s,
            "# HELP promlake_receive_head_memory_bytes Estimated memory of a tenant's head.\n# TYPE promlake_receive_head_memory_bytes gauge"
        );
        for t in tenants {
            let _ = writeln!(
                s,
                "promlake_receive_head_memory_bytes{{tenant=\"{}\"}} {}",
                label_value(&t.tenant),
                t.bytes
            );
        }
        let _ = writeln!(
            s,
            "# HELP promlake_receive_ready Whether the WAL replay finished.\n# TYPE promlake_receive_ready gauge\npromlake_receive_ready {}",
            u8::from(ready)
        );
        s
    }
}
