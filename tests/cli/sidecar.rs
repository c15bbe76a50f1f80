//! `promlake sidecar` next to a real Prometheus 2.42 scraping itself every second with 1-minute
//! blocks: blocks are shipped as Parquet with the same ULID and exactly the native samples
//! (against `promtool tsdb dump`), a restart uploads nothing again (thanos.shipper.json), and
//! fresh data through `promlake query --endpoint <sidecar>` answers as Prometheus itself does.
//! Without external labels the sidecar refuses to start.

use crate::harness::*;
use crate::query::{Normalized, Server, assert_same_result, enc, normalize};
use serde_json::Value as Json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts Prometheus 2.42 with `global` as its global config section, scraping itself every
/// second, cutting 1-minute blocks.
fn prometheus(global: &str) -> Server {
    let data = tempfile::tempdir().unwrap();
    let conf_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = conf_dir.path().join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\n{global}\nscrape_configs:\n  - job_name: prometheus\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        ),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!("--storage.tsdb.path={}", data.path().display()))
        .arg("--storage.tsdb.min-block-duration=1m")
        .arg("--storage.tsdb.max-block-duration=1m")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus not found: run scripts/test.sh, which installs Debian's prometheus package");
    Server { child, port, _dirs: vec![data, conf_dir] }.wait_ready("prometheus")
}

fn data_dir(prom: &Server) -> &Path {
    prom._dirs[0].path()
}

/// Starts the sidecar; its log (info level) goes to `log`.
fn sidecar(prom: &Server, bucket: &Path, grpc: u16, log: &Path) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_promlake"))
        .args(["sidecar", "--prometheus.url", &format!("http://127.0.0.1:{}", prom.port)])
        .args(["--tsdb.path", data_dir(prom).to_str().unwrap()])
        .args(["--bucket", &format!("file://{}", bucket.display())])
        .args(["--grpc-address", &format!("127.0.0.1:{grpc}")])
        .args(["--http-address", &format!("127.0.0.1:{port}")])
        .args(["--shipper.sync-interval", "1s", "--prometheus.refresh-interval", "1s"])
        .env("PROMLAKE_LOG_LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    Server { child, port, _dirs: Vec::new() }.wait_ready("sidecar")
}

fn shipped(prom: &Server) -> Vec<String> {
    match std::fs::read(data_dir(prom).join("thanos.shipper.json")) {
        Ok(b) => {
            let j: Json = serde_json::from_slice(&b).unwrap();
            assert_eq!(j["version"], 1);
            j["uploaded"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_string()).collect()
        }
        Err(_) => Vec::new(),
    }
}

/// A result without the external labels (Prometheus's own API does not add them).
fn without_external(n: Normalized) -> Normalized {
    let series =
        n.1.into_iter()
            .map(|(k, v)| match serde_json::from_str::<Json>(&k) {
                Ok(Json::Object(mut m)) => {
                    m.remove("cluster");
                    m.remove("replica");
                    (Json::Object(m).to_string(), v)
                }
                _ => (k, v),
            })
            .collect();
    (n.0, series)
}

/// Every NaN as Go's NaN (the dump text cannot tell staleness markers from NaN).
fn nan_as_go(mut s: Samples) -> Samples {
    for v in s.values_mut() {
        for p in v.iter_mut() {
            if f64::from_bits(p.1).is_nan() {
                p.1 = GO_NAN;
            }
        }
    }
    s
}

#[test]
fn sidecar_ships_blocks_and_serves_fresh_data() {
    let prom = prometheus("  external_labels: {cluster: c1, replica: r0}");
    let bucket = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let grpc = free_port();
    let side = sidecar(&prom, bucket.path(), grpc, &logs.path().join("1.log"));

    // Fresh data through a querier over the sidecar equals Prometheus's own answer.
    let qport = free_port();
    let q = Server {
        child: Command::new(env!("CARGO_BIN_EXE_promlake"))
            .args(["query", "--endpoint", &format!("127.0.0.1:{grpc}"), "--endpoint.info-interval", "1s"])
            .args([
                "--http-address",
                &format!("127.0.0.1:{qport}"),
                "--grpc-address",
                &format!("127.0.0.1:{}", free_port()),
            ])
            .env("PROMLAKE_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
        port: qport,
        _dirs: Vec::new(),
    }
    .wait_ready("query");
    // Prometheus's scrape manager starts its first scrape up to ~5s after start: wait until
    // it has 20 seconds of data, then use a fixed instant 2s in the past. (Windows touching
    // a counter's very first sample are left out: promlake's rate extrapolation there differs
    // from Prometheus 2.42's, which is the PromQL engine's business, not the sidecar's.)
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut t;
    loop {
        t = (now() - 2).to_string();
        let back = (now() - 20).to_string();
        let has = |s: &Server, at: &str| {
            !s.json(&format!("/api/v1/query?query=up&time={at}"))["data"]["result"]
                .as_array()
                .unwrap()
                .is_empty()
        };
        if has(&prom, &back) && has(&q, &t) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 20s of data through the sidecar within 60s: {:?}",
            q.get("/api/v1/query?query=up")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for query in [
        "count(up)",
        "up",
        "prometheus_tsdb_head_series",
        "sum by (handler) (prometheus_http_requests_total)",
        "rate(prometheus_tsdb_head_samples_appended_total[5s])",
        "count({__name__=~\"prometheus_tsdb_.*\"})",
    ] {
        for path in [
            format!("/api/v1/query?query={}&time={t}", enc(query)),
            format!(
                "/api/v1/query_range?query={}&start={}&end={t}&step=1",
                enc(query),
                t.parse::<u64>().unwrap() - 4
            ),
        ] {
            let (qc, qb) = q.get(&path);
            let (pc, pb) = prom.get(&path);
            assert_eq!((qc, pc), (200, 200), "{path}: {qb} / {pb}");
            let theirs = normalize(&pb);
            assert!(!theirs.1.is_empty(), "{path}: Prometheus has no data: {pb}");
            assert_same_result(query, &path, &without_external(normalize(&qb)), &theirs);
        }
    }
    // External-label matchers are answered by the sidecar.
    let b = q.json(&format!("/api/v1/query?query={}&time={t}", enc("count(up{cluster=\"c2\"})")));
    assert!(b["data"]["result"].as_array().unwrap().is_empty(), "{b}");
    let b =
        q.json(&format!("/api/v1/query?query={}&time={t}", enc("count(up{cluster=\"c1\",replica=~\"r.\"})")));
    assert_eq!(b["data"]["result"][0]["value"][1], "1", "{b}");

    // Only external-label matchers: every series of Prometheus.
    let ours = q.json(&format!("/api/v1/query?query={}&time={t}", enc("count({cluster=\"c1\"})")));
    let theirs = prom.json(&format!("/api/v1/query?query={}&time={t}", enc("count({job=\"prometheus\"})")));
    assert_eq!(ours["data"]["result"][0]["value"], theirs["data"]["result"][0]["value"], "{ours} / {theirs}");

    // Info through an independent client (Python grpcio): the sidecar, its external labels,
    // Prometheus's oldest time and an open max time.
    let out = Command::new(crate::python::python())
        .args([
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/store_client.py"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/proto/proto"),
            &format!("127.0.0.1:{grpc}"),
            "partition",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "store_client.py: {}", String::from_utf8_lossy(&out.stderr));
    let info: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["info"]["component"], "sidecar", "{info}");
    assert_eq!(info["info"]["label_sets"], serde_json::json!([{"cluster": "c1", "replica": "r0"}]), "{info}");
    assert_eq!(info["info"]["max_time"], i64::MAX, "{info}");
    let min = info["info"]["min_time"].as_i64().unwrap();
    let t_ms = t.parse::<i64>().unwrap() * 1000;
    assert!(min > t_ms - 120_000 && min < t_ms - 15_000, "min_time {min} vs query time {t_ms}: {info}");
    assert_eq!(info["limited"], "OK", "{info}");

    // Blocks are shipped as Prometheus cuts them (1-minute blocks: the first after ~90s).
    let deadline = Instant::now() + Duration::from_secs(240);
    while shipped(&prom).is_empty() {
        assert!(Instant::now() < deadline, "no block shipped within 240s");
        std::thread::sleep(Duration::from_secs(1));
    }
    drop(side);
    let first = shipped(&prom);
    let local = tempfile::tempdir().unwrap();
    let mut mtimes = Vec::new();
    for id in &first {
        copy_dir(&data_dir(&prom).join(id), &local.path().join(id));
        let meta_path = bucket.path().join(id).join("meta.json");
        let meta: Json = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
        assert_eq!(meta["ulid"], id.as_str());
        assert_eq!(meta["thanos"]["source"], "sidecar");
        assert_eq!(meta["thanos"]["labels"], serde_json::json!({"cluster": "c1", "replica": "r0"}));
        mtimes.push(std::fs::metadata(&meta_path).unwrap().modified().unwrap());
    }
    let native = nan_as_go(promtool_dump(local.path()));
    let parquet = nan_as_go(read_bucket(&local_bucket(bucket.path())));
    assert!(count(&native) > 100, "{} samples", count(&native));
    assert_same(&parquet, &native);

    // A restart uploads nothing again.
    let log2 = logs.path().join("2.log");
    let side = sidecar(&prom, bucket.path(), grpc, &log2);
    std::thread::sleep(Duration::from_secs(4));
    drop(side);
    let again = shipped(&prom);
    assert!(first.iter().all(|id| again.contains(id)), "{first:?} / {again:?}");
    let log = std::fs::read_to_string(&log2).unwrap();
    for (id, mtime) in first.iter().zip(&mtimes) {
        assert!(!log.contains(&format!("block={id}")), "{id} touched again:\n{log}");
        let now = std::fs::metadata(bucket.path().join(id).join("meta.json")).unwrap().modified().unwrap();
        assert_eq!(&now, mtime, "{id} re-uploaded");
    }
}

#[test]
fn sidecar_refuses_prometheus_without_external_labels() {
    let prom = prometheus("");
    let out = promlake(
        &[
            "sidecar",
            "--prometheus.url",
            &format!("http://127.0.0.1:{}", prom.port),
            "--tsdb.path",
            data_dir(&prom).to_str().unwrap(),
            "--grpc-address",
            &format!("127.0.0.1:{}", free_port()),
            "--http-address",
            &format!("127.0.0.1:{}", free_port()),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("no external labels configured on Prometheus server"), "{err}");
}
