//! `promlake store` against an independent StoreAPI client: Python grpcio stubs generated in
//! the test from our .proto files (tests/cli/store_client.py, which decodes the XOR chunks
//! and checks the chunk hashes itself), compared with `promtool tsdb dump` of the same blocks.

use crate::harness::*;
use crate::python::python;
use promlake_compat::dumpfmt::format_labels;
use serde_json::Value as Json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `promlake store` process, killed on drop.
struct Store {
    child: Child,
    grpc: u16,
    http: u16,
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Store {
    /// Starts `promlake store ARGS` on free ports and waits until it is ready.
    fn start(args: &[&str]) -> Store {
        let (grpc, http) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_promlake"))
            .arg("store")
            .args([
                "--grpc-address",
                &format!("127.0.0.1:{grpc}"),
                "--http-address",
                &format!("127.0.0.1:{http}"),
            ])
            .args(args)
            .env("PROMLAKE_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut store = Store { child, grpc, http };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = store.child.try_wait() {
                panic!("promlake store exited early: {status}");
            }
            if store.get("/-/ready").0 == 200 {
                return store;
            }
            assert!(Instant::now() < deadline, "promlake store not ready within 60s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// (status, body) of a GET on the HTTP port; (0, "") while it does not listen.
    fn get(&self, path: &str) -> (u16, String) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.http)) else { return (0, String::new()) };
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        (head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), body.to_string())
    }

    /// The value of an unlabelled metric on /metrics.
    fn metric(&self, name: &str) -> f64 {
        let (code, body) = self.get("/metrics");
        assert_eq!(code, 200);
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} not in /metrics:\n{body}"))
            .parse()
            .unwrap()
    }

    /// Runs the Python client in `mode` and parses its JSON.
    fn python_client(&self, mode: &str) -> Json {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/store_client.py");
        let protos = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/proto");
        let out = Command::new(python())
            .args([script, protos, &format!("127.0.0.1:{}", self.grpc), mode])
            .output()
            .unwrap();
        assert!(out.status.success(), "store_client.py: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// OpenMetrics text of series long enough for several chunks, with a label name (`Zone`)
/// that sorts before `__name__`, so Prometheus's order differs from the metric-name order.
fn openmetrics() -> String {
    let mut s = String::from("# TYPE zz_batch_jobs gauge\n");
    for (zone, inst) in [("eu", "x"), ("us", "x"), ("us", "y")] {
        for k in 0..600i64 {
            let v = if k == 77 { "NaN".to_string() } else { format!("{}", (k as f64) * 0.75 - 3.0) };
            s.push_str(&format!(
                "zz_batch_jobs{{Zone=\"{zone}\",instance=\"{inst}\"}} {v} {}\n",
                1_700_100_000 + k * 15
            ));
        }
    }
    s.push_str("# EOF\n");
    s
}

/// A series' labels as sorted (name, value) pairs.
fn pairs(labels: &Json) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = labels
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

/// Samples of the Python client's answer, with the external label `cluster` dropped.
fn samples_of(series: &[Json]) -> Samples {
    let mut out = Samples::new();
    for s in series {
        let own: Vec<(String, String)> =
            pairs(&s["labels"]).into_iter().filter(|(k, _)| k != "cluster").collect();
        let e = out.entry(format_labels(&own)).or_default();
        for p in s["samples"].as_array().unwrap() {
            e.push((p[0].as_i64().unwrap(), u64::from_str_radix(p[1].as_str().unwrap(), 16).unwrap()));
        }
    }
    out
}

fn block_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("meta.json").exists())
        .collect();
    v.sort();
    v
}

#[test]
fn store_serves_parquet_and_native_blocks_to_a_python_grpc_client() {
    let lake = tempfile::tempdir().unwrap();
    let url = format!("file://{}", lake.path().display());
    promlake_ok(
        &["tools", "import", "--bucket", &url, "--label", "cluster=eu1", tiny_blocks().to_str().unwrap()],
        &[],
    );
    // promtool-written blocks copied in as they are: native blocks beside the Parquet ones.
    let native = tempfile::tempdir().unwrap();
    promtool_create_blocks(&openmetrics(), native.path());
    let native_blocks = block_dirs(native.path());
    assert_eq!(native_blocks.len(), 2, "600 samples at 15s span two 2h blocks");
    for b in &native_blocks {
        copy_dir(b, &lake.path().join(b.file_name().unwrap()));
    }
    let mut golden = tiny_golden();
    golden.extend(promtool_dump(native.path()));
    let metas: Vec<Json> = block_dirs(lake.path())
        .iter()
        .map(|d| serde_json::from_slice(&std::fs::read(d.join("meta.json")).unwrap()).unwrap())
        .collect();
    assert_eq!(metas.len(), 5);
    let min_time = metas.iter().map(|m| m["minTime"].as_i64().unwrap()).min().unwrap();
    let max_time = metas.iter().map(|m| m["maxTime"].as_i64().unwrap()).max().unwrap();

    let store = Store::start(&[
        "--bucket",
        &url,
        "--sync-block-duration",
        "1s",
        "--ignore-deletion-marks-delay",
        "0s",
    ]);
    assert_eq!(store.get("/-/healthy").0, 200);
    assert_eq!(store.metric("promlake_store_blocks_loaded"), 5.0);
    let v = store.python_client("full");

    // Info, new and old.
    let info = &v["info"];
    assert_eq!(info["component"], "store");
    assert_eq!(info["has_store"], true);
    assert_eq!(info["without_replica_labels"], true);
    assert_eq!(
        (info["min_time"].as_i64().unwrap(), info["max_time"].as_i64().unwrap()),
        (min_time, max_time)
    );
    assert_eq!(info["label_sets"], serde_json::json!([{}, {"cluster": "eu1"}]));
    assert_eq!(v["old_info"]["store_type"], 4, "StoreType STORE");
    assert_eq!(v["old_info"]["label_sets"], info["label_sets"]);
    assert_eq!(v["old_info"]["min_time"], info["min_time"]);

    // Series: every sample of every block, bit for bit, in Prometheus label order, with the
    // Parquet blocks' external label injected.
    let all = v["all"]["series"].as_array().unwrap();
    assert_eq!(all.len(), golden.len());
    let order: Vec<Vec<(String, String)>> = all.iter().map(|s| pairs(&s["labels"])).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "series not in label order");
    assert!(order[0].iter().any(|(k, _)| k == "Zone"), "Zone sorts before __name__: {:?}", order[0]);
    for s in all {
        let l = pairs(&s["labels"]);
        let name = &l.iter().find(|(k, _)| k == "__name__").unwrap().1;
        let has_cluster = l.contains(&("cluster".into(), "eu1".into()));
        assert_eq!(has_cluster, !name.starts_with("zz_"), "external label of {l:?}");
    }
    assert_same(&samples_of(all), &golden);
    let mut multi_chunk = 0;
    for s in all {
        let chunks = s["chunks"].as_array().unwrap();
        multi_chunk += usize::from(chunks.len() > 1);
        for c in chunks {
            assert_eq!(c["type"], 0, "storepb XOR");
            assert_eq!(c["hash_ok"], true, "xxhash64 of the chunk data");
            assert!(c["n"].as_u64().unwrap() <= 120);
            assert_eq!((&c["min"], &c["max"]), (&c["first"], &c["last"]));
        }
    }
    assert!(multi_chunk >= 3, "the promtool series span several chunks");

    // Labels only, batched, without the external label.
    let batched = &v["batched"];
    let series = batched["series"].as_array().unwrap();
    assert_eq!(series.len(), all.len());
    assert_eq!(batched["frames"].as_u64().unwrap() as usize, all.len().div_ceil(10));
    assert!(
        series
            .iter()
            .all(|s| s["chunks"].as_array().unwrap().is_empty() && s["labels"].get("cluster").is_none())
    );

    let names: Vec<&str> = v["label_names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert_eq!(names, ["Zone", "__name__", "cluster", "code", "instance", "job", "le", "method", "sensor"]);
    let metrics: std::collections::BTreeSet<&str> =
        golden.keys().map(|k| k.split("__name__=\"").nth(1).unwrap().split('"').next().unwrap()).collect();
    assert_eq!(v["label_values"], serde_json::json!(metrics));
    assert_eq!(v["bad_matcher"], "INVALID_ARGUMENT");

    // Re-sync: a block marked for deletion and an unfinished upload (no meta.json) are not served.
    let marked = native_blocks[1].file_name().unwrap().to_str().unwrap().to_string();
    std::fs::write(
        lake.path().join(&marked).join("deletion-mark.json"),
        format!(r#"{{"id":"{marked}","version":1,"details":"test","deletion_time":1700000000}}"#),
    )
    .unwrap();
    let partial = lake.path().join("01JZZZZZZZZZZZZZZZZZZZZZZZ");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("index"), b"partial upload").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.metric("promlake_store_blocks_loaded") != 4.0 {
        assert!(Instant::now() < deadline, "the marked block is still served after 30s");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(store.metric("promlake_store_series_requests_total") >= 3.0);
    let handled = |method: &str, code: &str| {
        store.metric(&format!(
            "promlake_grpc_server_handled_total{{grpc_service=\"thanos.Store\",grpc_method=\"{method}\",grpc_code=\"{code}\"}}"
        ))
    };
    assert_eq!(handled("Series", "OK"), 2.0);
    assert_eq!(handled("Series", "InvalidArgument"), 1.0);
    assert_eq!(handled("LabelValues", "OK"), 1.0);
}

#[test]
fn store_time_partition_and_request_limits() {
    let lake = tempfile::tempdir().unwrap();
    let url = format!("file://{}", lake.path().display());
    promlake_ok(&["tools", "import", "--bucket", &url, tiny_blocks().to_str().unwrap()], &[]);
    let (lo, hi) = (1_700_002_800_000i64, 1_700_010_000_000i64);
    // The bucket as a Thanos objstore configuration, as a Thanos store gateway takes it.
    let objstore = format!("type: FILESYSTEM\nconfig:\n  directory: {}\n", lake.path().display());
    let store = Store::start(&[
        "--objstore.config",
        &objstore,
        "--min-time",
        "2023-11-14T23:00:00Z",
        "--max-time",
        "2023-11-15T02:00:00+01:00",
        "--store.limits.request-series",
        "5",
    ]);
    let v = store.python_client("partition");
    assert_eq!((v["info"]["min_time"].as_i64().unwrap(), v["info"]["max_time"].as_i64().unwrap()), (lo, hi));
    let mut expected = tiny_golden();
    expected.retain(|k, _| k.contains("node_temperature_celsius"));
    for s in expected.values_mut() {
        s.retain(|(t, _)| (lo..=hi).contains(t));
    }
    let got = samples_of(v["one"]["series"].as_array().unwrap());
    assert_eq!(got.len(), 4);
    assert_same(&got, &expected);
    assert_eq!(v["limited"], "RESOURCE_EXHAUSTED", "24 series > --store.limits.request-series 5");
    assert_eq!(store.metric("promlake_store_limit_exceeded_total"), 1.0);

    // Bad flags are refused before anything starts.
    let bad = promlake(&["store", "--bucket", &url, "--min-time", "yesterday"], &[]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--min-time \"yesterday\""));
}
