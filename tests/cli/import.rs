//! `promlake tools import` and `tools bucket ls` against real Prometheus blocks.

use crate::harness::*;
use std::fmt::Write;

#[test]
fn tiny_blocks_import_bit_exact_and_list() {
    let lake = tempfile::tempdir().unwrap();
    let url = format!("file://{}", lake.path().display());
    let out = promlake_ok(&["tools", "import", "--bucket", &url, tiny_blocks().to_str().unwrap()], &[]);
    assert!(out.contains("3 imported, 0 skipped, 0 failed"), "{out}");

    let golden = tiny_golden();
    assert_eq!(count(&golden), 5784);
    assert_same(&read_bucket(&local_bucket(lake.path())), &golden);

    let json: serde_json::Value =
        serde_json::from_str(&promlake_ok(&["tools", "bucket", "ls", "--bucket", &url, "-o", "json"], &[]))
            .unwrap();
    let blocks = json.as_array().unwrap();
    assert_eq!(blocks.len(), 3);
    let ulids: Vec<&str> = blocks.iter().map(|b| b["ulid"].as_str().unwrap()).collect();
    assert_eq!(
        ulids,
        ["01M8AXQ5BJNE0SYE3RJCX48A98", "01M8AXQ5DHQ0AK9RKPV1D1GJAY", "01M8AXQ5EFTB4RSDBHAYF9QW20"]
    );
    assert_eq!(blocks.iter().map(|b| b["numSamples"].as_u64().unwrap()).sum::<u64>(), 5784);
    assert!(blocks.iter().all(|b| b["format"] == "parquet" && b["numSeries"] == 24 && b["resolution"] == 0));
    assert_eq!(blocks[0]["minTime"], 1_700_000_000_000i64);

    let table = promlake_ok(&["tools", "bucket", "ls", "--bucket", &url], &[]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ULID") && lines[0].contains("SAMPLES"), "{table}");
    assert!(lines[1].starts_with("01M8AXQ5BJNE0SYE3RJCX48A98  2023-11-14T22:13:20.000Z"), "{table}");
    assert_eq!(lines.len(), 4);

    // A re-run is a no-op and leaves the files untouched.
    let meta = lake.path().join("01M8AXQ5BJNE0SYE3RJCX48A98/meta.json");
    let before = std::fs::metadata(&meta).unwrap().modified().unwrap();
    let out = promlake_ok(&["tools", "import", "--bucket", &url, tiny_blocks().to_str().unwrap()], &[]);
    assert!(out.contains("0 imported, 3 skipped, 0 failed"), "{out}");
    assert_eq!(std::fs::metadata(&meta).unwrap().modified().unwrap(), before);
}

#[test]
fn label_flag_merges_external_labels() {
    let lake = tempfile::tempdir().unwrap();
    let url = format!("file://{}", lake.path().display());
    let block = tiny_blocks().join("01M8AXQ5DHQ0AK9RKPV1D1GJAY");
    promlake_ok(
        &[
            "tools",
            "import",
            "--bucket",
            &url,
            "--label",
            "cluster=eu1",
            "--label",
            "replica=a",
            block.to_str().unwrap(),
        ],
        &[],
    );
    let json: serde_json::Value =
        serde_json::from_str(&promlake_ok(&["tools", "bucket", "ls", "--bucket", &url, "-o", "json"], &[]))
            .unwrap();
    assert_eq!(json[0]["labels"], serde_json::json!({"cluster": "eu1", "replica": "a"}));
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(lake.path().join("01M8AXQ5DHQ0AK9RKPV1D1GJAY/meta.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["promlake"]["format_version"], 1);
    assert_eq!(meta["thanos"]["labels"]["cluster"], "eu1");
    assert_eq!(meta["ulid"], "01M8AXQ5DHQ0AK9RKPV1D1GJAY");

    let bad =
        promlake(&["tools", "import", "--bucket", &url, "--label", "9x=1", block.to_str().unwrap()], &[]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a valid label name"));
}

/// splitmix64: a deterministic generator for test data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// OpenMetrics covering what blocks hold: counters with resets, gauges (with NaN and ±Inf),
/// a classic histogram, series that start and stop, unicode and escaped label values, 5h of
/// data (several 2h blocks), scrape jitter in milliseconds.
fn generated_openmetrics() -> String {
    let mut rng = Rng(42);
    let start = 1_700_006_400i64; // aligned to 2h
    let steps = 5 * 240; // 5h at 15s
    let ts = |i: i64, jitter: i64| format!("{}.{:03}", start + i * 15 + jitter / 1000, jitter % 1000);
    let mut s = String::new();
    s.push_str("# TYPE app_requests counter\n");
    for (inst, path) in [("a:80", "/api"), ("b:80", "/a\\\"b\\\\c\\nd"), ("c:80", "/café ☕ ünïcødé")] {
        let mut v = 0.0f64;
        for i in 0..steps {
            if i == 500 && inst == "a:80" {
                v = 0.0; // counter reset
            }
            v += (rng.f() * 20.0).floor();
            let jitter = (rng.next() % 7) as i64;
            writeln!(s, "app_requests_total{{instance=\"{inst}\",path=\"{path}\"}} {v} {}", ts(i, jitter))
                .unwrap();
        }
    }
    s.push_str("# TYPE app_temperature gauge\n");
    for room in ["kitchen", "attic"] {
        for i in 0..steps {
            let v = match i {
                100 => "NaN".to_string(),
                101 => "+Inf".to_string(),
                102 => "-Inf".to_string(),
                _ => format!("{}", 20.0 + (i as f64 / 50.0).sin() * 3.0 + rng.f() * 0.01),
            };
            writeln!(s, "app_temperature{{room=\"{room}\"}} {v} {}", ts(i, 0)).unwrap();
        }
    }
    s.push_str("# TYPE app_batch_job_running gauge\n");
    for i in 240..720 {
        // starts after 1h, stops after 3h
        writeln!(s, "app_batch_job_running{{job=\"nightly\"}} 1 {}", ts(i, 0)).unwrap();
    }
    s.push_str("# TYPE app_latency_seconds histogram\n");
    let les = ["0.05", "0.1", "0.5", "1", "+Inf"];
    let mut counts = [0u64; 5];
    let (mut sum, mut total) = (0.0f64, 0u64);
    let mut rows: Vec<Vec<String>> = vec![Vec::new(); 7];
    for i in 0..steps {
        let n = rng.next() % 10;
        for _ in 0..n {
            let x = rng.f() * 1.5;
            sum += x;
            total += 1;
            for (k, le) in les.iter().enumerate() {
                if *le == "+Inf" || x <= le.parse::<f64>().unwrap() {
                    counts[k] += 1;
                }
            }
        }
        for (k, le) in les.iter().enumerate() {
            rows[k].push(format!("app_latency_seconds_bucket{{le=\"{le}\"}} {} {}", counts[k], ts(i, 0)));
        }
        rows[5].push(format!("app_latency_seconds_count {total} {}", ts(i, 0)));
        rows[6].push(format!("app_latency_seconds_sum {sum} {}", ts(i, 0)));
    }
    for r in rows {
        for line in r {
            s.push_str(&line);
            s.push('\n');
        }
    }
    s.push_str("# EOF\n");
    s
}

#[test]
fn promtool_written_blocks_import_bit_exact() {
    let native = tempfile::tempdir().unwrap();
    promtool_create_blocks(&generated_openmetrics(), native.path());
    let expected = promtool_dump(native.path());
    assert_eq!(expected.len(), 3 + 2 + 1 + 7, "series written by promtool");
    let blocks = std::fs::read_dir(native.path()).unwrap().count();
    assert!(blocks >= 3, "expected several blocks, got {blocks}");

    let lake = tempfile::tempdir().unwrap();
    let url = format!("file://{}", lake.path().display());
    let out = promlake_ok(&["tools", "import", "--bucket", &url, native.path().to_str().unwrap()], &[]);
    assert!(out.contains(&format!("{blocks} imported")), "{out}");
    let actual = read_bucket(&local_bucket(lake.path()));
    assert_same(&actual, &expected);
    // The special values survived bit for bit.
    let temp = &actual["{__name__=\"app_temperature\", room=\"attic\"}"];
    assert_eq!(temp[100].1, GO_NAN);
    assert_eq!(f64::from_bits(temp[101].1), f64::INFINITY);
}

fn assert_rejected(args: &[&str], lake: &std::path::Path, wants: &[&str]) {
    let out = promlake(args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure for {args:?}");
    for w in wants {
        assert!(stderr.contains(w), "stderr lacks {w:?}: {stderr}");
    }
    // Nothing half-written is visible: no block directory holds a meta.json.
    if lake.exists() {
        for e in std::fs::read_dir(lake).unwrap() {
            let e = e.unwrap();
            assert!(!e.path().join("meta.json").exists(), "visible block {:?} after failure", e.file_name());
        }
    }
}

fn flip_byte(path: &std::path::Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x55;
    std::fs::write(path, b).unwrap();
}

fn truncate(path: &std::path::Path, len: impl FnOnce(u64) -> u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let old = f.metadata().unwrap().len();
    f.set_len(len(old)).unwrap();
}

#[test]
fn corrupt_inputs_are_named_and_nothing_becomes_visible() {
    let block = "01M8AXQ5BJNE0SYE3RJCX48A98";
    let lake = tempfile::tempdir().unwrap();
    let url = format!("file://{}", lake.path().display());
    type Damage = fn(&std::path::Path);
    let cases: [(&str, Damage, &[&str]); 5] = [
        ("flipped byte in the index symbol table", |b| flip_byte(&b.join("index"), 12), &["index", "CRC32C"]),
        ("truncated index", |b| truncate(&b.join("index"), |n| n / 2), &["index"]),
        ("flipped byte inside a chunk", |b| flip_byte(&b.join("chunks/000001"), 40), &["chunks/000001"]),
        ("truncated chunk file", |b| truncate(&b.join("chunks/000001"), |_| 3000), &["chunks/000001"]),
        ("bad meta.json", |b| std::fs::write(b.join("meta.json"), "{\"ulid\": ").unwrap(), &["meta.json"]),
    ];
    for (what, damage, wants) in cases {
        let d = tempfile::tempdir().unwrap();
        copy_dir(&tiny_blocks().join(block), &d.path().join(block));
        damage(&d.path().join(block));
        eprintln!("case: {what}");
        assert_rejected(
            &["tools", "import", "--bucket", &url, d.path().to_str().unwrap()],
            lake.path(),
            wants,
        );
    }

    // A path that holds no block, and one that does not exist.
    let empty = tempfile::tempdir().unwrap();
    let no_block = ["tools", "import", "--bucket", &url, empty.path().to_str().unwrap()];
    assert_rejected(&no_block, lake.path(), &["no Prometheus block found"]);
    let missing = ["tools", "import", "--bucket", &url, "/nonexistent/promlake"];
    assert_rejected(&missing, lake.path(), &["/nonexistent/promlake"]);

    // The failed imports did not poison the bucket: the good block imports afterwards.
    let d = tempfile::tempdir().unwrap();
    copy_dir(&tiny_blocks().join(block), &d.path().join(block));
    let out = promlake_ok(&["tools", "import", "--bucket", &url, d.path().to_str().unwrap()], &[]);
    assert!(out.contains("1 imported"), "{out}");
}
