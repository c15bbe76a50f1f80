//! Counters of the StoreAPI server, rendered in the Prometheus text format on `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// (gRPC service, method, status code) of answered calls.
type CallKey = (&'static str, &'static str, &'static str);

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
    handled: Mutex<BTreeMap<CallKey, (u64, f64)>>,
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

    /// Records one answered call: its gRPC status code and how long it took.
    pub(crate) fn handled(
        &self,
        service: &'static str,
        method: &'static str,
        code: tonic::Code,
        took: Duration,
    ) {
        let code = match code {
            tonic::Code::Ok => "OK",
            tonic::Code::Cancelled => "Canceled",
            tonic::Code::InvalidArgument => "InvalidArgument",
            tonic::Code::DeadlineExceeded => "DeadlineExceeded",
            tonic::Code::ResourceExhausted => "ResourceExhausted",
            tonic::Code::Unavailable => "Unavailable",
            tonic::Code::Internal => "Internal",
            _ => "Unknown",
        };
        if let Ok(mut h) = self.handled.lock() {
            let e = h.entry((service, method, code)).or_default();
            e.0 += 1;
            e.1 += took.as_secs_f64();
        }
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
        let Ok(handled) = self.handled.lock() else { return out };
        out.push_str(
            "# HELP promlake_grpc_server_handled_total gRPC calls answered, by method and status code.\n",
        );
        out.push_str("# TYPE promlake_grpc_server_handled_total counter\n");
        for ((service, method, code), (n, _)) in handled.iter() {
            let _ = writeln!(
                out,
                "promlake_grpc_server_handled_total{{grpc_service=\"{service}\",grpc_method=\"{method}\",grpc_code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP promlake_grpc_server_handling_seconds_sum Time spent answering gRPC calls, by method and status code.\n");
        out.push_str("# TYPE promlake_grpc_server_handling_seconds_sum counter\n");
        for ((service, method, code), (_, secs)) in handled.iter() {
            let _ = writeln!(
                out,
                "promlake_grpc_server_handling_seconds_sum{{grpc_service=\"{service}\",grpc_method=\"{method}\",grpc_code=\"{code}\"}} {secs}"
            );
        }
        out
    }
}
