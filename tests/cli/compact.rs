//! `promlake compact` and `tools bucket verify|mark|retention` on promtool-written blocks:
//! compaction levels, raw samples bit-exact against `promtool tsdb dump`, 5m aggregates
//! against a brute-force computation, native and Parquet inputs mixed, the HTTP endpoints,
//! and crash safety (the compactor killed at random moments, then run to completion).

use crate::harness::*;
use object_store::ObjectStoreExt;
use promlake_compat::dumpfmt::format_labels;
use promlake_engine::compact::downsample::window_end;
use promlake_engine::parquet::{AggrBlock, ParquetBlock};
use promlake_engine::{Bucket, SelectRequest, SeriesSource};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// 2d-aligned start (unix seconds).
const T0: i64 = 1_700_006_400;

/// OpenMetrics for `hours` of 60s-interval data: two counters (one resets), two gauges, one
/// series that stops after 30h. Small on purpose: ~300 samples per hour.
fn openmetrics(hours: i64) -> String {
    let mut s = String::from("# TYPE app_requests counter\n");
    let steps = hours * 60;
    for (k, inst) in ["a", "b"].iter().enumerate() {
        let mut v = 0.0;
        for i in 0..steps {
            v += ((i * 7 + k as i64) % 13) as f64;
            if k == 0 && i == 1000 {
                v = 1.0;
            }
            writeln!(s, "app_requests_total{{instance=\"{inst}\"}} {v} {}", T0 + i * 60).unwrap();
        }
    }
    s.push_str("# TYPE app_temp gauge\n");
    for (k, room) in ["x", "y"].iter().enumerate() {
        for i in 0..steps {
            let v = ((i as f64 / 50.0 + k as f64).sin() * 5000.0).round() / 1000.0 + 20.0;
            writeln!(s, "app_temp{{room=\"{room}\"}} {v} {}", T0 + i * 60 + 7).unwrap();
        }
    }
    s.push_str("# TYPE app_short gauge\n");
    for i in 0..(30 * 60).min(steps) {
        writeln!(s, "app_short {} {}", i % 17, T0 + i * 60 + 30).unwrap();
    }
    s.push_str("# EOF\n");
    s
}

/// Writes the blocks with promtool and returns (blocks dir, golden samples).
fn promtool_blocks(dir: &Path, hours: i64) -> Samples {
    promtool_create_blocks(&openmetrics(hours), dir);
    promtool_dump(dir)
}

/// Imports `blocks` as Parquet, except every `native_every`-th block, which is copied into
/// the bucket as a native TSDB block (the compactor reads both).
fn fill_bucket(lake: &Path, blocks: &Path, native_every: usize) {
    let mut dirs: Vec<_> = std::fs::read_dir(blocks).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    let url = format!("file://{}", lake.display());
    for (i, d) in dirs.iter().enumerate() {
        if native_every > 0 && i % native_every == 1 {
            copy_dir(d, &lake.join(d.file_name().unwrap()));
        } else {
            promlake_ok(&["tools", "import", "--bucket", &url, d.to_str().unwrap()], &[]);
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn resolution(meta: &promlake_compat::BlockMeta) -> i64 {
    meta.thanos.as_ref().map(|t| t.downsample.resolution).unwrap_or(0)
}

/// Raw samples of every visible raw block (Parquet or native), unioned per series with
/// duplicate timestamps once — what a querier sees. Also returns the sum of samples over
/// blocks not marked for deletion.
fn read_raw(bucket: &Bucket) -> (Samples, usize) {
    rt().block_on(async {
        let mut out: BTreeMap<String, BTreeMap<i64, u64>> = BTreeMap::new();
        let mut unmarked = 0;
        for info in bucket.list_blocks().await.unwrap() {
            if resolution(&info.meta) != 0 {
                continue;
            }
            let marked = bucket
                .store()
                .head(&Bucket::block_path(
                    &info.meta.ulid.parse::<ulid::Ulid>().unwrap(),
                    "deletion-mark.json",
                ))
                .await
                .is_ok();
            let source: Box<dyn SeriesSource> = match info.format {
                promlake_engine::BlockFormat::Parquet => {
                    Box::new(ParquetBlock::open(bucket, info.meta.clone()).await.unwrap())
                }
                promlake_engine::BlockFormat::Native => {
                    let b = promlake_compat::NativeBlock::open(
                        bucket.store().clone(),
                        &object_store::path::Path::from(info.meta.ulid.as_str()),
                    )
                    .await
                    .unwrap();
                    Box::new(promlake_engine::native::NativeSource::new(b))
                }
            };
            let mut stream = source.select(&SelectRequest::all()).await.unwrap();
            use futures::StreamExt;
            while let Some(batch) = stream.next().await {
                for (labels, ts, vals) in batch.unwrap().to_series() {
                    if !marked {
                        unmarked += ts.len();
                    }
                    let own: Vec<(String, String)> =
                        labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
                    let e = out.entry(format_labels(&own)).or_default();
                    for (t, v) in ts.into_iter().zip(vals) {
                        e.entry(t).or_insert(v.to_bits());
                    }
                }
            }
        }
        (out.into_iter().map(|(k, v)| (k, v.into_iter().collect())).collect(), unmarked)
    })
}

fn ls(url: &str) -> Vec<Json> {
    let out = promlake_ok(&["tools", "bucket", "ls", "--bucket", url, "-o", "json"], &[]);
    serde_json::from_str::<Json>(&out).unwrap().as_array().unwrap().clone()
}

/// (resolution, level, span in hours rounded) of every block, sorted.
fn shape(blocks: &[Json]) -> Vec<(i64, u64, i64)> {
    let mut v: Vec<(i64, u64, i64)> = blocks
        .iter()
        .map(|b| {
            let span = b["maxTime"].as_i64().unwrap() - b["minTime"].as_i64().unwrap();
            (
                b["resolution"].as_i64().unwrap(),
                b["compactionLevel"].as_u64().unwrap(),
                (span + 1_800_000) / 3_600_000,
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn compacts_to_2d_and_8h_downsamples_and_keeps_every_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let blocks = tmp.path().join("blocks");
    let golden = promtool_blocks(&blocks, 60);
    assert_eq!(count(&golden), 4 * 3600 + 30 * 60);
    let lake = tmp.path().join("lake");
    fill_bucket(&lake, &blocks, 3);
    let url = format!("file://{}", lake.display());
    assert_eq!(ls(&url).len(), 30);

    let out = promlake_ok(
        &["compact", "--bucket", &url, "--delete-delay=0s", "--http-address", "127.0.0.1:0"],
        &[],
    );
    assert!(out.contains("8 compactions, 1 downsamplings"), "{out}");

    // 0-48h → one 2d block (level 3) and its 5m block; 48-56h → 8h (level 2); the last two
    // 2h blocks wait for more data.
    let after = ls(&url);
    assert_eq!(
        shape(&after),
        vec![(0, 1, 2), (0, 1, 2), (0, 2, 8), (0, 3, 48), (300_000, 3, 48)],
        "{after:#?}"
    );
    assert!(after.iter().all(|b| b["format"] == "parquet" || b["compactionLevel"] == 1));
    let bucket = local_bucket(&lake);
    let (raw, unmarked) = read_raw(&bucket);
    assert_same(&raw, &golden);
    assert_eq!(unmarked, count(&golden), "no sample is stored twice");

    // The 2d block's meta: sources are the 24 imported blocks, parents the six 8h blocks.
    let two_d = after.iter().find(|b| b["compactionLevel"] == 3 && b["resolution"] == 0).unwrap();
    let meta: Json = serde_json::from_slice(
        &std::fs::read(lake.join(two_d["ulid"].as_str().unwrap()).join("meta.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["compaction"]["sources"].as_array().unwrap().len(), 24);
    assert_eq!(meta["compaction"]["parents"].as_array().unwrap().len(), 6);
    assert_eq!(meta["thanos"]["source"], "compactor");
    assert_eq!(meta["promlake"]["format_version"], 1);

    // The 5m block against a brute-force aggregation of the golden samples of 0-48h.
    let five = after.iter().find(|b| b["resolution"] == 300_000).unwrap();
    check_5m(&bucket, five["ulid"].as_str().unwrap(), &golden, two_d["maxTime"].as_i64().unwrap());

    // DuckDB reads the 5m block as plain tables: windows per series and raw samples counted.
    let dir = lake.join(five["ulid"].as_str().unwrap());
    let sql = "select s.__name__, count(*), sum(d.count) from 'samples.parquet' d \
               join 'series.parquet' s using (series_id) group by all order by all";
    let out = std::process::Command::new(crate::python::python())
        .current_dir(&dir)
        .args(["-c", &format!("import duckdb; print(duckdb.sql(\"{sql}\").fetchall())")])
        .output()
        .unwrap();
    assert!(out.status.success(), "duckdb: {}", String::from_utf8_lossy(&out.stderr));
    // 48h = 576 windows per full series (app_short stops after 30h: 360); raw samples counted
    // once each (1 full 2d of 60s samples = 2880 per series, 1800 for app_short).
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "[('app_requests_total', 1152, 5760), ('app_short', 360, 1800), ('app_temp', 1152, 5760)]"
    );

    // PromQL reads the 5m block when the request allows it (Thanos's max_source_resolution).
    query_downsampled(&url);
    // The same answers through `promlake store` + a querier over the StoreAPI.
    crate::store_downsampled::store_and_querier_agree_with_bucket(&url, &after, T0);

    // A second pass has nothing to do; verify finds nothing wrong.
    let out = promlake_ok(
        &["compact", "--bucket", &url, "--delete-delay=0s", "--http-address", "127.0.0.1:0"],
        &[],
    );
    assert!(out.contains("0 compactions, 0 downsamplings"), "{out}");
    let out = promlake_ok(&["tools", "bucket", "verify", "--bucket", &url], &[]);
    assert!(out.contains("0 issues"), "{out}");
}

fn check_5m(bucket: &Bucket, ulid: &str, golden: &Samples, max_time: i64) {
    let res = 300_000;
    rt().block_on(async {
        let meta = bucket.read_meta(&ulid.parse::<ulid::Ulid>().unwrap()).await.unwrap().unwrap();
        let block = AggrBlock::open(bucket, meta).await.unwrap();
        let series = block.read_range(0..block.series().len()).await.unwrap();
        assert_eq!(series.len(), 5);
        for (info, got) in block.series().iter().zip(&series) {
            let own: Vec<(String, String)> =
                info.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
            let raw: Vec<(i64, f64)> = golden[&format_labels(&own)]
                .iter()
                .filter(|p| p.0 < max_time)
                .map(|&(t, b)| (t, f64::from_bits(b)))
                .collect();
            let last_t = raw.last().unwrap().0;
            let mut windows: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for &(t, v) in &raw {
                windows.entry(window_end(t, res).min(last_t)).or_default().push(v);
            }
            assert_eq!(got.ts, windows.keys().copied().collect::<Vec<_>>(), "{}", info.labels);
            for (k, vs) in windows.values().enumerate() {
                assert_eq!(got.count[k], vs.len() as i64);
                assert!((got.sum[k] - vs.iter().sum::<f64>()).abs() < 1e-6);
                assert_eq!(got.min[k], vs.iter().copied().fold(f64::MAX, f64::min));
                assert_eq!(got.max[k], vs.iter().copied().fold(-f64::MAX, f64::max));
            }
            // The counter is the reset-adjusted running total read at each window's end.
            let (mut total, mut last) = (raw[0].1, raw[0].1);
            let mut at_end = BTreeMap::new();
            for &(t, v) in &raw[1..] {
                total += if v < last { v } else { v - last };
                last = v;
                at_end.insert(window_end(t, res).min(last_t), total);
            }
            at_end.entry(window_end(raw[0].0, res)).or_insert(raw[0].1);
            assert_eq!(got.counter, at_end.values().copied().collect::<Vec<_>>(), "{}", info.labels);
            assert_eq!((got.first_time, got.first_value, got.last_value), (raw[0].0, raw[0].1, last));
        }
    });
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_compact(url: &str, extra: &[&str]) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_promlake"))
        .args(["compact", "--bucket", url, "--delete-delay=0s"])
        .args(extra)
        .env("PROMLAKE_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

#[test]
fn killed_at_random_moments_the_bucket_stays_consistent_and_a_rerun_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let blocks = tmp.path().join("blocks");
    let golden = promtool_blocks(&blocks, 60);
    let lake = tmp.path().join("lake");
    fill_bucket(&lake, &blocks, 4);
    let url = format!("file://{}", lake.display());
    let bucket = local_bucket(&lake);

    // How long an uninterrupted run takes, on a copy.
    let copy = tmp.path().join("copy");
    copy_dir(&lake, &copy);
    let started = Instant::now();
    promlake_ok(
        &[
            "compact",
            "--bucket",
            &format!("file://{}", copy.display()),
            "--delete-delay=0s",
            "--http-address",
            "127.0.0.1:0",
        ],
        &[],
    );
    let full = started.elapsed().as_millis() as u64;

    // Episodes from the initial bucket: kill three times at random moments (each run picks
    // up what the killed one left), checking after every kill, then run to completion. Later
    // runs of an episode have less left to do and often finish before their kill, so episodes
    // go on (up to 12) until at least 6 kills landed mid-run.
    let initial = tmp.path().join("initial");
    copy_dir(&lake, &initial);
    let mut rng = 0x5eed_u64;
    let mut kills = 0;
    let mut runs = 0;
    for episode in 0..12 {
        if kills >= 6 {
            break;
        }
        if episode > 0 {
            std::fs::remove_dir_all(&lake).unwrap();
            copy_dir(&initial, &lake);
        }
        for _ in 0..3 {
            rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let delay = 20 + (rng >> 33) % (full * 4 / 5).max(50);
            let mut p = spawn_compact(&url, &["--http-address", "127.0.0.1:0"]);
            runs += 1;
            std::thread::sleep(Duration::from_millis(delay));
            if p.0.try_wait().unwrap().is_none() {
                kills += 1;
            }
            let _ = p.0.kill();
            let _ = p.0.wait();
            // Whatever is visible is whole and holds every sample (duplicates only as whole
            // blocks whose sources a newer block covers, collapsed by timestamp).
            let (raw, _) = read_raw(&bucket);
            assert_same(&raw, &golden);
        }
    }
    eprintln!("{kills} of {runs} runs killed mid-way (full run {full}ms)");
    assert!(kills >= 6, "only {kills} of {runs} runs were killed mid-way (full run {full}ms)");

    promlake_ok(&["compact", "--bucket", &url, "--delete-delay=0s", "--http-address", "127.0.0.1:0"], &[]);
    let (raw, unmarked) = read_raw(&bucket);
    assert_same(&raw, &golden);
    assert_eq!(unmarked, count(&golden), "no sample is stored twice");
    assert_eq!(shape(&ls(&url)), vec![(0, 1, 2), (0, 1, 2), (0, 2, 8), (0, 3, 48), (300_000, 3, 48)]);
    // Unfinished uploads of killed runs may remain (invisible; removed after 2 days): verify
    // reports them but nothing else.
    let out = promlake_ok(&["tools", "bucket", "verify", "--bucket", &url], &[]);
    assert!(out.lines().filter(|l| l.contains("  ") && !l.contains("partial_upload")).count() == 0, "{out}");
}

/// GET `path` → (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    (status, text.split_once("\r\n\r\n").unwrap().1.to_string())
}

#[test]
fn wait_mode_serves_metrics_and_probes_and_retention_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let blocks = tmp.path().join("blocks");
    promtool_blocks(&blocks, 10);
    let lake = tmp.path().join("lake");
    fill_bucket(&lake, &blocks, 0);
    let url = format!("file://{}", lake.display());
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _p = spawn_compact(
        &url,
        &["--wait", "--wait-interval=1h", "--http-address", &addr, "--retention.resolution-raw=1d"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        assert!(Instant::now() < deadline, "no finished pass within 60s");
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            drop(s);
            let (code, body) = get(port, "/metrics");
            assert_eq!(code, 200);
            if body.contains("promlake_compact_iterations_total 1") {
                break body;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(get(port, "/-/healthy").0, 200);
    assert_eq!(get(port, "/-/ready").0, 200);
    // The data is from 2023: a 1d raw retention marks and (delay 0s) deletes everything.
    assert!(metrics.contains("promlake_compact_retention_blocks_marked_total "), "{metrics}");
    assert!(!metrics.contains("promlake_compact_retention_blocks_marked_total 0\n"), "{metrics}");
    assert!(ls(&url).is_empty());
}

#[test]
fn bucket_tools_mark_verify_and_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let blocks = tmp.path().join("blocks");
    promtool_blocks(&blocks, 12);
    let lake = tmp.path().join("lake");
    fill_bucket(&lake, &blocks, 0);
    let url = format!("file://{}", lake.display());
    let ids: Vec<String> = ls(&url).iter().map(|b| b["ulid"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 6);

    // A no-compact mark on the second block splits the first 8h range: as in Thanos only the
    // run after it (blocks 3 and 4) is compacted; the newest block waits.
    let out = promlake_ok(
        &[
            "tools",
            "bucket",
            "mark",
            "--bucket",
            &url,
            "--id",
            &ids[1],
            "--marker",
            "no-compact-mark.json",
            "--details",
            "test",
        ],
        &[],
    );
    assert!(out.contains("marked"), "{out}");
    let mark: Json =
        serde_json::from_slice(&std::fs::read(lake.join(&ids[1]).join("no-compact-mark.json")).unwrap())
            .unwrap();
    assert_eq!(
        (mark["reason"].as_str(), mark["details"].as_str(), mark["version"].as_u64()),
        (Some("manual"), Some("test"), Some(1))
    );
    promlake_ok(&["compact", "--bucket", &url, "--delete-delay=0s", "--http-address", "127.0.0.1:0"], &[]);
    let after = ls(&url);
    assert!(after.iter().any(|b| b["ulid"] == ids[1].as_str()), "the marked block stays");
    assert_eq!(shape(&after), vec![(0, 1, 2), (0, 1, 2), (0, 1, 2), (0, 1, 2), (0, 2, 4)]);

    // Bad input: not a ULID, no such block, unknown marker.
    let bad = promlake(
        &["tools", "bucket", "mark", "--bucket", &url, "--id", "nope", "--marker", "deletion-mark.json"],
        &[],
    );
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("not a ULID"));
    let bad = promlake(
        &[
            "tools",
            "bucket",
            "mark",
            "--bucket",
            &url,
            "--id",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "--marker",
            "deletion-mark.json",
        ],
        &[],
    );
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("no such block"));
    let bad =
        promlake(&["tools", "bucket", "mark", "--bucket", &url, "--id", &ids[1], "--marker", "x.json"], &[]);
    assert!(!bad.status.success());

    // verify: a block with a missing file and a duplicated compaction (a source brought back).
    let damaged =
        after.iter().find(|b| b["compactionLevel"] == 2).unwrap()["ulid"].as_str().unwrap().to_string();
    let restored = ids[2].clone();
    let fresh = tmp.path().join("fresh");
    fill_bucket(&fresh, &blocks, 0);
    copy_dir(&fresh.join(&restored), &lake.join(&restored));
    let out = promlake(&["tools", "bucket", "verify", "--bucket", &url], &[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(text.contains(&format!("{restored}  duplicated_compaction")), "{text}");
    let out = promlake_ok(&["tools", "bucket", "verify", "--bucket", &url, "--repair"], &[]);
    assert!(out.contains("(repaired)"), "{out}");
    assert!(lake.join(&restored).join("deletion-mark.json").exists());
    std::fs::remove_file(lake.join(&damaged).join("samples.parquet")).unwrap();
    let out = promlake(&["tools", "bucket", "verify", "--bucket", &url], &[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains(&format!("{damaged}  missing_file  samples.parquet is missing")), "{text}");

    // retention: everything is from 2023.
    let out = promlake_ok(
        &["tools", "bucket", "retention", "--bucket", &url, "--retention.resolution-raw=30d"],
        &[],
    );
    assert!(out.contains("blocks marked for deletion"), "{out}");
    assert!(lake.join(&ids[1]).join("deletion-mark.json").exists());
    let bad = promlake(&["tools", "bucket", "retention", "--bucket", &url], &[]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("no retention set"));
}

#[test]
fn bad_flags_are_named() {
    let lake = tempfile::tempdir().unwrap();
    let url = format!("file://{}", lake.path().display());
    let bad = promlake(&["compact", "--bucket", &url, "--deduplication.func", "chain"], &[]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown deduplication function"));
    let bad = promlake(
        &["compact", "--bucket", &url, "--compact.concurrency", "0", "--http-address", "127.0.0.1:0"],
        &[],
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--compact.concurrency"));
    let bad = promlake(&["compact", "--bucket", &url, "--delete-delay", "soon"], &[]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("delete-delay"));
}

#[test]
fn compacts_a_bucket_on_s3() {
    use crate::s3::{CREDS, Moto};
    let moto = Moto::start();
    moto.create_bucket("metrics");
    let tmp = tempfile::tempdir().unwrap();
    let blocks = tmp.path().join("blocks");
    let golden = promtool_blocks(&blocks, 12);
    let args = ["--bucket", "s3://metrics/lake", "--s3.endpoint", moto.endpoint.as_str()];
    let mut import = vec!["tools", "import", "--label", "cluster=eu1"];
    import.extend(args);
    import.push(blocks.to_str().unwrap());
    assert!(promlake_ok(&import, &CREDS).contains("6 imported"));
    let mut compact = vec!["compact", "--delete-delay=0s", "--http-address", "127.0.0.1:0"];
    compact.extend(args);
    let out = promlake_ok(&compact, &CREDS);
    assert!(out.contains("1 compactions") && out.contains("4 deleted"), "{out}");
    let mut ls = vec!["tools", "bucket", "ls", "-o", "json"];
    ls.extend(args);
    let json: Json = serde_json::from_str(&promlake_ok(&ls, &CREDS)).unwrap();
    assert_eq!(shape(json.as_array().unwrap()), vec![(0, 1, 2), (0, 1, 2), (0, 2, 8)]);
    assert!(json.as_array().unwrap().iter().all(|b| b["labels"]["cluster"] == "eu1"));
    let cfg = promlake_engine::BucketConfig {
        s3: promlake_engine::bucket::S3Options {
            endpoint: Some(moto.endpoint.clone()),
            access_key: Some("testing".into()),
            secret_key: Some("testing".into()),
            region: Some("us-east-1".into()),
            ..Default::default()
        },
        ..promlake_engine::BucketConfig::from_url("s3://metrics/lake")
    };
    let bucket = Bucket::open(&cfg).unwrap();
    assert_same(&read_bucket(&bucket), &golden);
}

/// `promlake query` over the compacted bucket: `max_source_resolution=5m` reads the 5m block
/// (count_over_time counts windows there, as in Thanos), max/min over time agree with raw data,
/// and a bad value is a 400.
fn query_downsampled(url: &str) {
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_promlake"))
        .args(["query", "--bucket", url, "--http-address", &format!("127.0.0.1:{port}")])
        .args(["--grpc-address", &format!("127.0.0.1:{}", free_port())])
        .env("PROMLAKE_LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = crate::query::Server { child, port, _dirs: Vec::new() }.wait_ready("promlake query");
    let t = T0 + 24 * 3600;
    let value = |q: &str, res: &str| -> f64 {
        let path =
            format!("/api/v1/query?query={}&time={t}&max_source_resolution={res}", crate::query::enc(q));
        let body = server.json(&path);
        let result = body["data"]["result"].as_array().unwrap();
        assert_eq!(result.len(), 1, "{q} at {res}: {body}");
        result[0]["value"][1].as_str().unwrap().parse().unwrap()
    };
    let q = r#"count_over_time(app_temp{room="x"}[1h])"#;
    assert_eq!(value(q, "0s"), 60.0);
    assert_eq!(value(q, "5m"), 12.0);
    for q in [r#"max_over_time(app_temp{room="x"}[1h])"#, r#"min_over_time(app_temp{room="x"}[1h])"#] {
        assert_eq!(value(q, "5m"), value(q, "0s"), "{q}");
    }
    let (code, body) = server.get("/api/v1/query?query=up&max_source_resolution=bogus");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("max_source_resolution"), "{body}");
}
