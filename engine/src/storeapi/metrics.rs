//! Counters of the StoreAPI server, rendered in the Prometheus text format on `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What the StoreAPI server has answered; updated once per request.
#[derive(Debug, Default)]
pub struct StoreMetrics {
    series_requests: AtomicU64,
    series_failed: AtomicU64,
    series_sent: AtomicU64,
    chunks_sent: AtomicU64,
    samples_sent: AtomicU64,
    label_requests: AtomicU64,
    limit_hits: AtomicU64,
}

impl StoreMetrics {
    pub(crate) fn series_request(&self) {
        self.series_requests.fetch_add(1, Relaxed);
    }

    pub(crate) fn series_failed(&self) {
        self.series_failed.fetch_add(1, Relaxed);
    }

    pub(crate) fn sent(&self, series: u64, chunks: u64, samples: u64) {
        self.series_sent.fetch_add(series, Relaxed);
        self.chunks_sent.fetch_add(chunks, Relaxed);
        self.samples_sent.fetch_add(samples, Relaxed);
    }

    pub(crate) fn label_request(&self) {
        self.label_requests.fetch_add(1, Relaxed);
    }

    pub(crate) fn limit_hit(&self) {
        self.limit_hits.fetch_add(1, Relaxed);
    }

    /// The counters in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let rows: [(&str, &str, &AtomicU64); 7] = [
            (
                "promlake_store_series_requests_total",
                "StoreAPI Series requests received.",
                &self.series_requests,
            ),
            (
                "promlake_store_series_requests_failed_total",
                "Series requests answered with an error.",
                &self.series_failed,
            ),
            ("promlake_store_series_sent_total", "Series sent in Series responses.", &self.series_sent),
            ("promlake_store_chunks_sent_total", "XOR chunks sent in Series responses.", &self.chunks_sent),
            ("promlake_store_samples_sent_total", "Samples sent in Series responses.", &self.samples_sent),
            (
                "promlake_store_label_requests_total",
                "LabelNames and LabelValues requests received.",
                &self.label_requests,
            ),
            (
                "promlake_store_limit_exceeded_total",
                "Series requests refused by --store.limits.*.",
                &self.limit_hits,
            ),
        ];
        for (name, help, v) in rows {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Relaxed));
        }
        out
    }
}
