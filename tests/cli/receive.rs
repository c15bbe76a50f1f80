//! `promlake receive`: a real Prometheus 2.42 remote-writing its own and node_exporter's
//! metrics, a kill -9 in the middle of concurrent writes, and bad input (400/409/413/415/429).

use crate::harness::*;
use futures::StreamExt;
use promlake_engine::parquet::ParquetBlock;
use promlake_engine::storeapi::{ClientOptions, EndpointInfo, StoreClient};
use promlake_engine::{Bucket, Labels, Matcher, SelectRequest, SeriesSource};
use promlake_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

/// A running `promlake receive` with its directories (kept across restarts).
struct Receive {
    proc: Option<Proc>,
    rw_port: u16,
    http_port: u16,
    grpc_port: u16,
    tsdb: TempDir,
    lake: TempDir,
    extra: Vec<String>,
}

impl Receive {
    fn start(extra: &[&str]) -> Receive {
        Self::start_on(free_port(), extra)
    }

    fn start_on(grpc_port: u16, extra: &[&str]) -> Receive {
        let mut r = Receive {
            proc: None,
            rw_port: free_port(),
            http_port: free_port(),
            grpc_port,
            tsdb: tempfile::tempdir().unwrap(),
            lake: tempfile::tempdir().unwrap(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        r.restart();
        r
    }

    fn restart(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_promlake"))
            .args(["receive", "--bucket", &format!("file://{}", self.lake.path().display())])
            .args(["--tsdb.path", self.tsdb.path().to_str().unwrap(), "--label", "receive=r1"])
            .args(["--remote-write.address", &format!("127.0.0.1:{}", self.rw_port)])
            .args(["--http-address", &format!("127.0.0.1:{}", self.http_port)])
            .args(["--grpc-address", &format!("127.0.0.1:{}", self.grpc_port)])
            .args(&self.extra)
            .env("PROMLAKE_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.proc = Some(Proc(child));
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(self.http_port, "/-/ready").0 != 200 {
            if let Some(Proc(c)) = &mut self.proc
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("promlake receive exited early: {status}");
            }
            assert!(Instant::now() < deadline, "receive not ready within 60s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits for a clean exit.
    fn terminate(&mut self) {
        if let Some(mut p) = self.proc.take() {
            let ok = Command::new("kill").args(["-TERM", &p.0.id().to_string()]).status().unwrap();
            assert!(ok.success());
            let status = p.0.wait().unwrap();
            assert!(status.success(), "receive exited with {status} after SIGTERM");
        }
    }

    /// SIGKILL, no chance to flush anything.
    fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.0.kill().unwrap();
            p.0.wait().unwrap();
        }
    }

    fn write(&self, tenant: Option<&str>, req: &WriteRequest) -> (u16, String) {
        let body = snap::raw::Encoder::new().compress_vec(&prost::Message::encode_to_vec(req)).unwrap();
        let mut headers = vec![("Content-Encoding", "snappy"), ("Content-Type", "application/x-protobuf")];
        if let Some(t) = tenant {
            headers.push(("THANOS-TENANT", t));
        }
        post(self.rw_port, "/api/v1/receive", &headers, &body)
    }

    /// Series from the StoreAPI (thanos.Store/Series) with the info the endpoint advertises.
    fn store_select(&self, matchers: Vec<Matcher>) -> (EndpointInfo, Series) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let addr = format!("127.0.0.1:{}", self.grpc_port);
            let client = StoreClient::connect(&addr, ClientOptions::default()).await.unwrap();
            let req = SelectRequest { matchers, ..SelectRequest::all() };
            let mut s = client.select(&req).await.unwrap();
            let mut out = Vec::new();
            while let Some(b) = s.next().await {
                out.extend(b.unwrap().to_series());
            }
            (client.info().await.unwrap(), out)
        })
    }

    fn bucket(&self) -> Bucket {
        local_bucket(self.lake.path())
    }

    fn metric(&self, line_prefix: &str) -> f64 {
        let (_, text) = get(self.http_port, "/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(line_prefix).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{line_prefix} not in /metrics:\n{text}"))
    }
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels.iter().map(|(n, v)| Label { name: n.to_string(), value: v.to_string() }).collect(),
        samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect(),
        ..Default::default()
    }
}

fn req(ts: Vec<TimeSeries>) -> WriteRequest {
    WriteRequest { timeseries: ts, ..Default::default() }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Series with their samples.
type Series = Vec<(Labels, Vec<i64>, Vec<f64>)>;

/// Every block of the bucket: its meta and its series (full labels) with samples.
fn blocks(bucket: &Bucket) -> Vec<(promlake_compat::BlockMeta, Series)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        for info in bucket.list_blocks().await.unwrap() {
            let block = ParquetBlock::open(bucket, info.meta.clone()).await.unwrap();
            let mut s = block.select(&SelectRequest::all()).await.unwrap();
            let mut series = Vec::new();
            while let Some(b) = s.next().await {
                series.extend(b.unwrap().to_series());
            }
            out.push((info.meta, series));
        }
        out.sort_by_key(|b| b.0.min_time);
        out
    })
}

#[test]
fn bad_input_gets_clear_answers() {
    let limits =
        "write:\n  tenants:\n    small: {request: {size_bytes_limit: 64}}\n    few: {head_series_limit: 1}\n";
    let r = Receive::start(&["--receive.limits-config", limits]);
    let up = [("__name__", "up"), ("job", "a")];

    assert_eq!(r.write(None, &req(vec![series(&up, &[(2000, 1.0)])])), (200, String::new()));

    let (code, msg) = post(r.rw_port, "/api/v1/receive", &[], b"definitely not snappy");
    assert_eq!(code, 400, "{msg}");
    assert!(msg.contains("snappy"), "{msg}");
    let junk = snap::raw::Encoder::new().compress_vec(&[0xff, 0xff, 0xff, 0x01]).unwrap();
    let (code, msg) = post(r.rw_port, "/api/v1/write", &[], &junk);
    assert_eq!(code, 400, "{msg}");
    assert!(msg.contains("protobuf"), "{msg}");

    // Unsorted and duplicate label names: 400 naming the problem; the valid series is stored.
    let before = r.metric("promlake_receive_samples_appended_total");
    let (code, msg) = r.write(
        None,
        &req(vec![
            series(&[("job", "a"), ("__name__", "x")], &[(1, 1.0)]),
            series(&[("__name__", "y"), ("__name__", "z")], &[(1, 1.0)]),
            series(&[("__name__", "ok")], &[(1, 1.0)]),
        ]),
    );
    assert_eq!(code, 400, "{msg}");
    assert!(msg.contains("2 series with invalid labels") && msg.contains("not sorted"), "{msg}");
    assert_eq!(r.metric("promlake_receive_samples_appended_total"), before + 1.0);

    // Out of order and duplicate: 409, the rest of the request kept.
    let (code, msg) = r.write(
        None,
        &req(vec![
            series(&up, &[(1000, 1.0), (2000, 5.0), (3000, 1.0)]),
            series(&[("__name__", "other")], &[(1000, 1.0)]),
        ]),
    );
    assert_eq!(code, 409, "{msg}");
    assert!(
        msg.contains("1 out of order")
            && msg.contains("1 duplicate")
            && msg.contains("2 other samples were stored"),
        "{msg}"
    );
    assert_eq!(r.metric("promlake_receive_samples_appended_total"), before + 3.0);

    // Request size limit of tenant "small": 413.
    let big: Vec<(i64, f64)> = (0..50).map(|i| (i, i as f64)).collect();
    let (code, msg) = r.write(Some("small"), &req(vec![series(&up, &big)]));
    assert_eq!(code, 413, "{msg}");
    assert!(msg.contains("64 bytes"), "{msg}");
    // Head series limit of tenant "few": 429, nothing stored.
    let (code, msg) =
        r.write(Some("few"), &req(vec![series(&up, &[(1, 1.0)]), series(&[("__name__", "b")], &[(1, 1.0)])]));
    assert_eq!(code, 429, "{msg}");
    assert!(msg.contains("head series limit of 1"), "{msg}");
    // Invalid tenant name, remote write 2.0.
    let (code, _) = r.write(Some("../etc"), &req(vec![series(&up, &[(1, 1.0)])]));
    assert_eq!(code, 400);
    let (code, msg) = post(
        r.rw_port,
        "/api/v1/receive",
        &[("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")],
        &junk,
    );
    assert_eq!(code, 415, "{msg}");

    assert_eq!(get(r.http_port, "/-/healthy").0, 200);
    assert_eq!(r.metric("promlake_receive_requests_total{code=\"409\"}"), 1.0);
    assert_eq!(r.metric("promlake_receive_samples_rejected_total{reason=\"out_of_order\"}"), 1.0);
}

/// Concurrent writers record every batch answered 200; the receiver is killed with SIGKILL at a
/// random moment and restarted; a block cut afterwards holds every acknowledged sample.
#[test]
fn kill9_loses_no_acknowledged_sample() {
    let mut r = Receive::start(&["--tsdb.block-duration", "1m"]);
    // A future window, so neither the wall clock nor the data cuts it while writing.
    let start = (now_ms() + 600_000) / 60_000 * 60_000;
    let acked: Arc<Mutex<Vec<(usize, i64)>>> = Arc::default();
    let port = r.rw_port;
    let writers: Vec<_> = (0..4usize)
        .map(|w| {
            let acked = acked.clone();
            std::thread::spawn(move || {
                for i in 0..50_000i64 {
                    let ts: Vec<TimeSeries> = (0..5)
                        .map(|k| {
                            let (w, k) = (w.to_string(), k.to_string());
                            series(
                                &[("__name__", "durability"), ("series", &k), ("writer", &w)],
                                &[(start + i, i as f64)],
                            )
                        })
                        .collect();
                    let body = snap::raw::Encoder::new()
                        .compress_vec(&prost::Message::encode_to_vec(&req(ts)))
                        .unwrap();
                    match post(port, "/api/v1/receive", &[], &body).0 {
                        200 => acked.lock().unwrap().push((w, i)),
                        0 => return,
                        other => panic!("writer {w} batch {i}: HTTP {other}"),
                    }
                }
            })
        })
        .collect();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    std::thread::sleep(Duration::from_millis(300 + nanos % 1200));
    r.kill9();
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "too few acknowledged batches ({}) to test anything", acked.len());

    r.restart();
    // Replayed into the head: every acknowledged sample is served over the StoreAPI.
    let (info, head) = r.store_select(vec![Matcher::equal("__name__", "durability")]);
    assert_eq!(info.component_type, "receive");
    let in_head: HashMap<(String, String), BTreeMap<i64, f64>> = head
        .iter()
        .map(|(l, ts, vs)| {
            let key = (l.get("writer").unwrap_or("").to_string(), l.get("series").unwrap_or("").to_string());
            (key, ts.iter().copied().zip(vs.iter().copied()).collect())
        })
        .collect();
    for (w, i) in &acked {
        for k in 0..5 {
            let got = in_head.get(&(w.to_string(), k.to_string())).and_then(|s| s.get(&(start + i)));
            assert_eq!(
                got,
                Some(&(*i as f64)),
                "after restart, head lacks acknowledged batch {i} of writer {w}"
            );
        }
    }
    // A sample 1.5 windows later makes the window due; wait for its block.
    let trigger = req(vec![series(&[("__name__", "trigger")], &[(start + 90_000, 1.0)])]);
    assert_eq!(r.write(None, &trigger).0, 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        let b = blocks(&r.bucket());
        if !b.is_empty() {
            break b;
        }
        assert!(Instant::now() < deadline, "no block cut within 60s");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(found.len(), 1);
    let (meta, series) = &found[0];
    assert_eq!(meta.max_time, start + 60_000);
    let mut stored: HashMap<(String, String), BTreeMap<i64, f64>> = HashMap::new();
    for (l, ts, vs) in series {
        let key = (l.get("writer").unwrap_or("").to_string(), l.get("series").unwrap_or("").to_string());
        stored.entry(key).or_default().extend(ts.iter().copied().zip(vs.iter().copied()));
    }
    for (w, i) in &acked {
        for k in 0..5 {
            let got = stored.get(&(w.to_string(), k.to_string())).and_then(|s| s.get(&(start + i)));
            assert_eq!(got, Some(&(*i as f64)), "acknowledged batch {i} of writer {w} (series {k}) lost");
        }
    }
    eprintln!("kill -9 after {} acknowledged batches: all {} samples present", acked.len(), acked.len() * 5);
}

/// A graceful shutdown (SIGTERM) exits 0 and a restart serves everything written before.
#[test]
fn graceful_shutdown_loses_nothing() {
    let mut r = Receive::start(&["--tsdb.wal.fsync", "never"]);
    for i in 0..50i64 {
        let ts = vec![series(&[("__name__", "graceful"), ("tenant_series", "x")], &[(1_000 + i, i as f64)])];
        assert_eq!(r.write(Some("t1"), &req(ts)).0, 200);
    }
    r.terminate();
    r.restart();
    let (_, got) = r.store_select(vec![Matcher::equal("__name__", "graceful")]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.get("tenant_id"), Some("t1"));
    assert_eq!(got[0].1, (1_000..1_050).collect::<Vec<i64>>());
}

fn start_node_exporter() -> Option<(Proc, u16)> {
    let port = free_port();
    let child = Command::new("prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    Some((Proc(child), port))
}

/// Prometheus's own samples of `query` in `[start, end)` from its HTTP API.
fn prometheus_range(port: u16, metric: &str, start: i64, end: i64) -> BTreeMap<String, Vec<(i64, u64)>> {
    let secs = (end - start) / 1000;
    let q = format!("{metric}[{secs}s]");
    let path = format!(
        "/api/v1/query?query={}&time={}",
        q.replace('[', "%5B").replace(']', "%5D"),
        (end - 1) as f64 / 1000.0
    );
    let (code, body) = get(port, &path);
    assert_eq!(code, 200, "{body}");
    let j: Json = serde_json::from_str(&body).unwrap();
    let mut out = BTreeMap::new();
    for s in j["data"]["result"].as_array().unwrap() {
        let labels = Labels::from_pairs(
            s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())),
        );
        let vals = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                    p[1].as_str().unwrap().parse::<f64>().unwrap().to_bits(),
                )
            })
            .collect();
        out.insert(labels.to_string(), vals);
    }
    out
}

/// Prometheus 2.42 scrapes itself and node_exporter every second and remote-writes to receive;
/// a complete 20s block is cut, uploaded and holds exactly what Prometheus itself stored.
#[test]
fn prometheus_remote_write_lands_in_blocks() {
    let r = Receive::start(&["--tsdb.block-duration", "20s"]);
    let node = start_node_exporter();
    let node_job = node
        .as_ref()
        .map(|(_, p)| format!("  - job_name: node\n    static_configs: [{{targets: ['127.0.0.1:{p}']}}]\n"))
        .unwrap_or_default();
    let config = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: prometheus\n    static_configs: [{{targets: ['SELF']}}]\n{node_job}remote_write:\n  - url: http://127.0.0.1:{}/api/v1/receive\n    queue_config: {{batch_send_deadline: 1s}}\n",
        r.rw_port
    );
    let (_prom, prom_port, _dir) = start_prometheus(&config);

    // The first block starts with Prometheus's first scrape; the second is a complete window.
    let deadline = Instant::now() + Duration::from_secs(120);
    let found = loop {
        let b = blocks(&r.bucket());
        if b.len() >= 2 {
            break b;
        }
        assert!(Instant::now() < deadline, "fewer than 2 blocks after 120s ({})", b.len());
        std::thread::sleep(Duration::from_secs(1));
    };
    let (meta, series) = &found[1];
    assert_eq!(meta.max_time % 20_000, 0, "windows are aligned");
    let start = meta.max_time - 20_000;
    assert!(meta.min_time >= start);
    let labels = &meta.thanos.as_ref().unwrap().labels;
    assert_eq!(labels.get("receive").map(String::as_str), Some("r1"));
    assert_eq!(labels.get("tenant_id").map(String::as_str), Some("default-tenant"));
    assert!(series.len() > 100, "only {} series", series.len());
    if node.is_some() {
        assert!(
            series.iter().any(|s| s.0.metric_name() == Some("node_cpu_seconds_total")),
            "no node_exporter series"
        );
    }
    // Exact agreement with Prometheus's own TSDB for some metrics.
    let own = |l: &Labels| {
        Labels::from_pairs(
            l.iter().filter(|l| !labels.contains_key(&l.name)).map(|l| (l.name.clone(), l.value.clone())),
        )
    };
    for metric in ["up", "scrape_samples_scraped", "prometheus_tsdb_head_series"] {
        let theirs = prometheus_range(prom_port, metric, start, meta.max_time);
        let ours: BTreeMap<String, Vec<(i64, u64)>> = series
            .iter()
            .filter(|s| s.0.metric_name() == Some(metric))
            .map(|(l, ts, vs)| {
                (own(l).to_string(), ts.iter().copied().zip(vs.iter().map(|v| v.to_bits())).collect())
            })
            .collect();
        assert!(!theirs.is_empty(), "{metric}: Prometheus has nothing");
        assert_eq!(ours, theirs, "{metric}: block differs from Prometheus");
        assert!(theirs.values().all(|v| v.len() >= 15), "{metric}: too few samples in 20s: {theirs:?}");
    }
    // Fresh data (still in the head) over the StoreAPI, with the external and tenant labels.
    let (info, fresh) = r.store_select(vec![Matcher::equal("__name__", "up")]);
    assert_eq!(info.component_type, "receive");
    assert!(
        info.label_sets
            .iter()
            .any(|l| l.get("tenant_id") == Some("default-tenant") && l.get("receive") == Some("r1")),
        "{info:?}"
    );
    assert!(!fresh.is_empty());
    for (l, ts, _) in &fresh {
        assert_eq!((l.get("receive"), l.get("tenant_id")), (Some("r1"), Some("default-tenant")), "{l}");
        assert!(ts.last().is_some_and(|t| *t >= meta.max_time), "{l}: no sample after the cut block");
        // The uploaded blocks are served too: the cut window comes back whole.
        let in_block = series.iter().find(|s| &s.0 == l).map(|s| s.1.clone()).unwrap_or_default();
        assert!(!in_block.is_empty(), "{l} not in the cut block");
        let served: Vec<i64> = ts.iter().copied().filter(|t| *t >= start && *t < meta.max_time).collect();
        assert_eq!(served, in_block, "{l}: StoreAPI lacks the uploaded window");
    }
}

/// Three receivers in one hashring with replication factor 3, one of them down: writes still
/// reach a quorum (2) and both live receivers hold every acknowledged sample with the tenant
/// label; with two down, writes fail with 503 instead of being acknowledged.
#[test]
fn hashring_replication_survives_a_down_peer() {
    let grpc: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("hashrings.json");
    let eps: Vec<String> = grpc.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    std::fs::write(&ring, format!("[{{\"hashring\": \"default\", \"endpoints\": [{}]}}]", eps.join(", ")))
        .unwrap();
    let node = |i: usize| {
        let local = format!("127.0.0.1:{}", grpc[i]);
        Receive::start_on(
            grpc[i],
            &[
                "--receive.hashrings-file",
                ring.to_str().unwrap(),
                "--receive.local-endpoint",
                &local,
                "--receive.replication-factor",
                "3",
                "--receive-forward-timeout",
                "2s",
            ],
        )
    };
    let a = node(0);
    let mut b = node(1);
    // Node 2 is never started.
    let mut expected: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for batch in 0..10i64 {
        let ts: Vec<TimeSeries> = (0..20)
            .map(|k| {
                series(&[("__name__", "ring_test"), ("k", &k.to_string())], &[(1_000 + batch, batch as f64)])
            })
            .collect();
        let via = if batch % 2 == 0 { &a } else { &b };
        let (code, msg) = via.write(Some("team-a"), &req(ts));
        assert_eq!(code, 200, "batch {batch}: {msg}");
        for k in 0..20 {
            expected.entry(k.to_string()).or_default().push(1_000 + batch);
        }
    }
    for (name, r) in [("a", &a), ("b", &b)] {
        let (_, got) = r.store_select(vec![Matcher::equal("__name__", "ring_test")]);
        let got: BTreeMap<String, Vec<i64>> = got
            .iter()
            .map(|(l, ts, _)| {
                assert_eq!(l.get("tenant_id"), Some("team-a"), "{l}");
                (l.get("k").unwrap().to_string(), ts.clone())
            })
            .collect();
        assert_eq!(got, expected, "receiver {name} lacks replicated samples");
    }
    // Two of three down: no quorum, the write is refused (503, Prometheus retries it).
    b.kill9();
    let (code, msg) = a
        .write(Some("team-a"), &req(vec![series(&[("__name__", "ring_test"), ("k", "0")], &[(5_000, 1.0)])]));
    assert_eq!(code, 503, "{msg}");
    assert!(msg.contains("quorum"), "{msg}");
}
