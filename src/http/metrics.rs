//! Our own metrics, exposed at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Appends one unlabelled metric (`kind`: `counter` or `gauge`) in the text exposition format.
pub fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

/// Request counters and query latency.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    query_seconds_sum: f64,
    query_count: u64,
    partial_responses: u64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, handler: &str, code: u16) {
        if let Ok(mut m) = self.inner.lock() {
            *m.requests.entry((handler.to_owned(), code)).or_default() += 1;
        }
    }

    /// Counts one answer that carried warnings (a partial response).
    pub fn partial_response(&self) {
        if let Ok(mut m) = self.inner.lock() {
            m.partial_responses += 1;
        }
    }

    /// Records one query evaluation.
    pub fn query(&self, took: Duration) {
        if let Ok(mut m) = self.inner.lock() {
            m.query_seconds_sum += took.as_secs_f64();
            m.query_count += 1;
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else { return out };
        out.push_str(
            "# HELP promlake_http_requests_total HTTP requests answered, by route and status code.\n",
        );
        out.push_str("# TYPE promlake_http_requests_total counter\n");
        for ((handler, code), n) in &m.requests {
            let _ = writeln!(out, "promlake_http_requests_total{{handler={handler:?},code=\"{code}\"}} {n}");
        }
        out.push_str("# HELP promlake_query_duration_seconds PromQL evaluation time.\n");
        out.push_str("# TYPE promlake_query_duration_seconds summary\n");
        let _ = writeln!(out, "promlake_query_duration_seconds_sum {}", m.query_seconds_sum);
        let _ = writeln!(out, "promlake_query_duration_seconds_count {}", m.query_count);
        out.push_str(
            "# HELP promlake_query_partial_responses_total API answers with warnings (sources that failed under partial response).\n",
        );
        out.push_str("# TYPE promlake_query_partial_responses_total counter\n");
        let _ = writeln!(out, "promlake_query_partial_responses_total {}", m.partial_responses);
        out
    }
}
