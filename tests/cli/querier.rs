//! `promlake query` as Thanos's global querier: two `promlake store` processes holding an HA
//! pair (Prometheus 2.42 blocks imported with `replica=a`, and the same samples scraped 3s
//! later with a 30-minute gap, written by promtool, with `replica=b`), a querier over both,
//! queriers of queriers, and a real Prometheus 2.42 over the original blocks as the truth: the
//! penalty merge stays on replica a, so the deduplicated answer is exactly Prometheus's.

use crate::harness::*;
use crate::query::{Normalized, Server, assert_same_result, enc, normalize, start_prometheus};
use serde_json::Value as Json;
use std::io::Read;
use std::process::{Command, Stdio};

/// The gap in replica b: [GAP_START, GAP_END) in ms (samples are every 60s from 1700000000).
const GAP_START: i64 = 1_700_003_600_000;
const GAP_END: i64 = 1_700_005_400_000;

/// The subcommand serving a bucket over StoreAPI.
const STORE: &str = "store";

/// A server with its gRPC port.
struct Grpc {
    server: Server,
    grpc: u16,
}

impl Grpc {
    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.grpc)
    }
}

/// Replica b scrapes 3s after replica a (a different scrape phase). Under Thanos's initial
/// penalty of 5s; with a larger phase the merge takes replica b's first sample too (see the
/// dedup unit test `phase_beyond_the_initial_penalty_takes_one_sample_of_the_other`).
const PHASE_MS: i64 = 3_000;

/// The golden dump of the tiny blocks as OpenMetrics text, without samples `skip` rejects,
/// every timestamp moved by `shift` ms.
fn openmetrics(skip: impl Fn(i64) -> bool, shift: i64) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(tiny_blocks().join("promtool-dump.txt.gz")).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        // {__name__="m", a="b"} VALUE TS_MS
        let (labels, rest) = line.rsplit_once('}').unwrap();
        let mut parts = rest.split_whitespace();
        let (value, ts) = (parts.next().unwrap(), parts.next().unwrap().parse::<i64>().unwrap());
        if skip(ts) {
            continue;
        }
        let ts = ts + shift;
        let labels = labels.trim_start_matches('{');
        let (name, others) = match labels.split_once(", ") {
            Some((n, o)) => (n, o),
            None => (labels, ""),
        };
        let name = name.trim_start_matches("__name__=\"").trim_end_matches('"');
        out.push_str(&format!(
            "{name}{{{}}} {value} {}.{:03}\n",
            others.replace(", ", ","),
            ts / 1000,
            ts % 1000
        ));
    }
    out.push_str("# EOF\n");
    out
}

/// A local bucket holding `blocks` imported with external labels `labels`.
fn bucket(blocks: &std::path::Path, labels: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let mut args = vec!["tools", "import", "--bucket", &url];
    for l in labels {
        args.extend(["--label", l]);
    }
    let blocks = blocks.to_str().unwrap();
    args.push(blocks);
    promlake_ok(&args, &[]);
    (dir, url)
}

/// Starts `promlake SUBCOMMAND ARGS... --http-address --grpc-address` and waits for readiness.
fn start(subcommand: &str, args: &[String], dirs: Vec<tempfile::TempDir>) -> Grpc {
    let (port, grpc) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_promlake"))
        .arg(subcommand)
        .args(args)
        .args([
            "--http-address",
            &format!("127.0.0.1:{port}"),
            "--grpc-address",
            &format!("127.0.0.1:{grpc}"),
        ])
        .env("PROMLAKE_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Grpc { server: Server { child, port, _dirs: dirs }.wait_ready(subcommand), grpc }
}

fn querier(endpoints: &[&Grpc], extra: &[&str]) -> Grpc {
    let mut args: Vec<String> = Vec::new();
    for e in endpoints {
        args.extend(["--endpoint".into(), e.endpoint()]);
    }
    args.extend(["--endpoint.info-interval".into(), "1s".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    start("query", &args, Vec::new())
}

/// Queries compared with Prometheus 2.42 over the original blocks, instant and range.
const COMPARED: &[&str] = &[
    "http_requests_total",
    "rate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    "irate(http_requests_total[5m])",
    "resets(http_requests_total[30m])",
    "avg by (instance) (node_temperature_celsius)",
    "max_over_time(node_temperature_celsius[30m])",
    "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
];

fn paths(query: &str) -> Vec<String> {
    let mut out: Vec<String> = ["1700000030", "1700003615", "1700004630", "1700007230.5", "1700014500"]
        .iter()
        .map(|t| format!("/api/v1/query?query={}&time={t}", enc(query)))
        .collect();
    out.push(format!("/api/v1/query_range?query={}&start=1700000015&end=1700014410&step=60", enc(query)));
    out
}

/// A result without label `name` in its series (Prometheus has no external labels).
fn without_label(n: Normalized, name: &str) -> Normalized {
    let series =
        n.1.into_iter()
            .map(|(k, v)| match serde_json::from_str::<Json>(&k) {
                Ok(Json::Object(mut m)) => {
                    m.remove(name);
                    (Json::Object(m).to_string(), v)
                }
                _ => (k, v),
            })
            .collect();
    (n.0, series)
}

/// Every compared query answers as Prometheus 2.42 does over the original blocks, without
/// warnings.
fn same_as_prometheus(q: &Server, prom: &Server) {
    for &query in COMPARED {
        for path in paths(query) {
            let (qc, qb) = q.get(&path);
            let (pc, pb) = prom.get(&path);
            assert_eq!((qc, pc), (200, 200), "{path}: {qb} / {pb}");
            assert_same_result(query, &path, &without_label(normalize(&qb), "cluster"), &normalize(&pb));
            assert!(!qb.contains("\"warnings\""), "{path}: {qb}");
        }
    }
}

/// With dedup=false both replicas answer; replica b lacks the gap's samples.
fn replica_b_lacks_the_gap(q: &Server) {
    let counts = ok_json(
        q,
        &format!(
            "/api/v1/query?query={}&time=1700014500&dedup=false",
            enc("count_over_time(http_requests_total[5h])")
        ),
    );
    let result = counts["data"]["result"].as_array().unwrap();
    let per_replica = |r: &str| -> Vec<f64> {
        result
            .iter()
            .filter(|s| s["metric"]["replica"] == r)
            .map(|s| s["value"][1].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let (a, b) = (per_replica("a"), per_replica("b"));
    assert_eq!(a.len(), b.len());
    assert!(!a.is_empty());
    assert_eq!(a.len() * 2, result.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x - y, ((GAP_END - GAP_START) / 60_000) as f64, "replica b lacks the gap's samples");
    }
}

/// tests/cli/store_client.py (the store tests' independent client) against a gRPC port.
fn python_store_client(g: &Grpc) -> Json {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/store_client.py");
    let protos = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/proto");
    let out = Command::new(crate::python::python())
        .args([script, protos, &g.endpoint(), "partition"])
        .output()
        .unwrap();
    assert!(out.status.success(), "store_client.py: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ok_json(s: &Server, path: &str) -> Json {
    let (code, body) = s.get(path);
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn ha_pair_dedup_partial_response_and_federation() {
    // Replica b: the same data 3s later, with a 30-minute gap, written by promtool.
    let gapped = tempfile::tempdir().unwrap();
    promtool_create_blocks(&openmetrics(|t| (GAP_START..GAP_END).contains(&t), PHASE_MS), gapped.path());
    let (dir_a, url_a) = bucket(&tiny_blocks(), &["replica=a", "cluster=eu"]);
    let (dir_b, url_b) = bucket(gapped.path(), &["replica=b", "cluster=eu"]);
    let store_a = start(STORE, &["--bucket".into(), url_a], vec![dir_a]);
    let store_b = start(STORE, &["--bucket".into(), url_b], vec![dir_b]);
    let q = querier(&[&store_a, &store_b], &["--query.replica-label", "replica"]);
    let prom = start_prometheus();

    // Deduplicated: one series per HA pair, equal to the single Prometheus holding the data.
    same_as_prometheus(&q.server, &prom);

    // dedup=false: both replicas, b missing its gap.
    replica_b_lacks_the_gap(&q.server);
    let labels = |extra: &str| ok_json(&q.server, &format!("/api/v1/labels{extra}"))["data"].clone();
    assert!(!labels("").as_array().unwrap().iter().any(|l| l == "replica"));
    assert!(labels("?dedup=false").as_array().unwrap().iter().any(|l| l == "replica"));
    assert_eq!(
        ok_json(&q.server, "/api/v1/label/replica/values?dedup=false")["data"],
        serde_json::json!(["a", "b"])
    );
    let series = |extra: &str| {
        ok_json(&q.server, &format!("/api/v1/series?match[]=http_requests_total{extra}"))["data"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(series("&dedup=false"), 2 * series(""));
    // replicaLabels[] overrides the flag: deduplicating by another label keeps both replicas.
    assert_eq!(series("&replicaLabels[]=cluster"), 2 * series(""));

    // Queriers of queriers: one querier per replica, a top querier deduplicating over both.
    let qa = querier(&[&store_a], &[]);
    let qb = querier(&[&store_b], &[]);
    let top = querier(&[&qa, &qb], &["--query.replica-label", "replica"]);
    for &query in COMPARED {
        for path in paths(query) {
            assert_same_result(
                query,
                &path,
                &normalize(&top.server.get(&path).1),
                &normalize(&q.server.get(&path).1),
            );
        }
    }
    assert_eq!(
        ok_json(&top.server, "/api/v1/series?match[]=http_requests_total&dedup=false"),
        ok_json(&q.server, "/api/v1/series?match[]=http_requests_total&dedup=false")
    );

    // An independent StoreAPI client (Python grpcio, stubs generated from our protos) sees the
    // querier as a Thanos querier: component "query", both stores' label sets, every replica.
    let py = python_store_client(&q);
    assert_eq!(py["info"]["component"], "query", "{py}");
    assert_eq!(
        py["info"]["label_sets"],
        serde_json::json!([{"cluster": "eu", "replica": "a"}, {"cluster": "eu", "replica": "b"}])
    );
    let one = py["one"]["series"].as_array().unwrap();
    assert_eq!(
        one.len(),
        ok_json(&q.server, "/api/v1/series?match[]=node_temperature_celsius&dedup=false")["data"]
            .as_array()
            .unwrap()
            .len()
    );
    assert!(one.iter().all(|s| s["labels"]["replica"] == "a" || s["labels"]["replica"] == "b"));
    assert!(one.iter().all(|s| s["chunks"].as_array().unwrap().iter().all(|c| c["hash_ok"] == true)));

    let metric = |s: &Server, name: &str| -> f64 {
        let (_, text) = s.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    // Pruning by external labels: a selector on replica="a" is sent to store a only.
    let calls = || {
        let series = "promlake_store_series_requests_total";
        (metric(&store_a.server, series), metric(&store_b.server, series))
    };
    let before = calls();
    let only_a = ok_json(
        &q.server,
        &format!("/api/v1/query?query={}&dedup=false&time=1700003615", enc("up_or_not{replica=\"a\"}")),
    );
    assert_eq!(only_a["data"]["result"], serde_json::json!([]));
    let after = calls();
    assert_eq!((after.0 - before.0, after.1 - before.1), (1.0, 0.0), "{before:?} -> {after:?}");
    // Replica b goes away: WARN answers from replica a (still the whole truth) with a warning;
    // ABORT (partial_response=false) fails.
    drop(store_b);
    // Once the queriers' Info rounds (every 1s) have seen it gone: queriers skip it as
    // unhealthy, and the per-replica querier still advertises its last known range and labels,
    // so the querier above does not prune it away.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while metric(&q.server, "promlake_query_endpoints{state=\"unhealthy\"}") != 1.0 {
        assert!(std::time::Instant::now() < deadline, "store b never turned unhealthy");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let path = format!(
        "/api/v1/query_range?query={}&start=1700000015&end=1700014410&step=60",
        enc("rate(http_requests_total[5m])")
    );
    for server in [&q.server, &top.server] {
        let (code, body) = server.get(&path);
        assert_eq!(code, 200, "{body}");
        let j: Json = serde_json::from_str(&body).unwrap();
        assert!(!j["warnings"].as_array().unwrap().is_empty(), "{body}");
        assert_same_result(
            "rate",
            &path,
            &without_label(normalize(&body), "cluster"),
            &normalize(&prom.get(&path).1),
        );
        let (code, body) = server.get(&format!("{path}&partial_response=false"));
        assert!(code >= 400, "{code} {body}");
        let j: Json = serde_json::from_str(&body).unwrap();
        assert_eq!(j["status"], "error", "{body}");
    }

    // /metrics: partial responses counted, endpoints by health; the per-replica queriers
    // counted the Series calls they served.
    assert!(metric(&q.server, "promlake_query_partial_responses_total") >= 1.0);
    assert!(metric(&qa.server, "promlake_store_series_requests_total") >= 1.0);
    assert_eq!(metric(&q.server, "promlake_query_endpoints{state=\"healthy\"}"), 1.0);
}

#[test]
fn embedded_bucket_holding_both_replicas_dedups_like_one_prometheus() {
    let gapped = tempfile::tempdir().unwrap();
    promtool_create_blocks(&openmetrics(|t| (GAP_START..GAP_END).contains(&t), PHASE_MS), gapped.path());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    promlake_ok(
        &["tools", "import", "--bucket", &url, "--label", "replica=a", tiny_blocks().to_str().unwrap()],
        &[],
    );
    promlake_ok(
        &["tools", "import", "--bucket", &url, "--label", "replica=b", gapped.path().to_str().unwrap()],
        &[],
    );
    let q = start(
        "query",
        &["--bucket".into(), url.clone(), "--query.replica-label".into(), "replica".into()],
        vec![dir],
    );
    let prom = start_prometheus();
    same_as_prometheus(&q.server, &prom);
    replica_b_lacks_the_gap(&q.server);
    let n = |extra: &str| {
        ok_json(&q.server, &format!("/api/v1/series?match[]=node_temperature_celsius{extra}"))["data"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(n("&dedup=false"), 2 * n(""));

    // dns+: every address localhost resolves to; the one q listens on answers like q.
    let via_dns = start(
        "query",
        &[
            "--endpoint".into(),
            format!("dns+localhost:{}", q.grpc),
            "--query.replica-label".into(),
            "replica".into(),
        ],
        Vec::new(),
    );
    let dns_n =
        ok_json(&via_dns.server, "/api/v1/series?match[]=node_temperature_celsius&dedup=false")["data"]
            .as_array()
            .unwrap()
            .len();
    assert_eq!(dns_n, n("&dedup=false"));

    // --deduplication.func=chain keeps every sample of both replicas (their timestamps differ
    // by the 3s phase), so a series counts a's samples plus b's.
    let chain = start(
        "query",
        &[
            "--bucket".into(),
            url,
            "--query.replica-label".into(),
            "replica".into(),
            "--deduplication.func".into(),
            "chain".into(),
        ],
        Vec::new(),
    );
    // Per series without the replica label: the counts of its answers (one per replica).
    let count = |s: &Server, extra: &str| -> std::collections::BTreeMap<String, Vec<f64>> {
        let q = enc("count_over_time(node_temperature_celsius[5h])");
        let mut out: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        for r in ok_json(s, &format!("/api/v1/query?query={q}&time=1700014500{extra}"))["data"]["result"]
            .as_array()
            .unwrap()
        {
            let mut metric = r["metric"].clone();
            let replica = metric.as_object_mut().unwrap().remove("replica");
            let v: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
            let e = out.entry(metric.to_string()).or_default();
            // Replica a first.
            if replica.is_some_and(|r| r == "b") { e.push(v) } else { e.insert(0, v) }
        }
        out
    };
    let (penalty, chained, replicas) =
        (count(&q.server, ""), count(&chain.server, ""), count(&q.server, "&dedup=false"));
    assert!(!chained.is_empty());
    assert_eq!(chained.keys().collect::<Vec<_>>(), replicas.keys().collect::<Vec<_>>());
    for (k, r) in &replicas {
        assert_eq!(r.len(), 2, "{k}: two replicas");
        assert!(r[0] > r[1], "{k}: replica b lacks the gap: {r:?}");
        assert_eq!(chained[k], vec![r[0] + r[1]], "{k}: chain = a + b");
        assert_eq!(penalty[k], vec![r[0]], "{k}: penalty = replica a");
    }
}

#[test]
fn flags_are_validated() {
    let out = promlake(&["query"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--endpoint") && err.contains("--bucket"), "{err}");
    let out = promlake(&["query", "--endpoint", "no-port"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"no-port\": expected HOST:PORT"));
    let out = promlake(&["query", "--endpoint", "dnssrv+_grpc._tcp.x:1"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported discovery \"dnssrv\""));
}

#[test]
fn bad_dedup_parameter_is_bad_data() {
    let (dir, url) = bucket(&tiny_blocks(), &[]);
    let q = start("query", &["--bucket".into(), url], vec![dir]);
    let (code, body) = q.server.get("/api/v1/query?query=up&dedup=maybe");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid parameter \\\"dedup\\\""), "{body}");
    let (code, body) = q.server.get("/api/v1/labels?partial_response=x");
    assert_eq!(code, 400, "{body}");
}
