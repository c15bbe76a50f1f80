//! `promlake sql`: the shell and `-c` over real promtool-written blocks; the Flight SQL
//! server checked with real clients (the ADBC Flight SQL driver, pyarrow.flight), `/api/v1/sql`
//! in its three formats, and DuckDB computing the same aggregation from the same Parquet files.

use crate::harness::*;
use crate::python::python;
use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tiny-blocks lake with external label cluster=eu1.
fn lake() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    promlake_ok(
        &["tools", "import", "--bucket", &url, "--label", "cluster=eu1", tiny_blocks().to_str().unwrap()],
        &[],
    );
    (dir, url)
}

#[test]
fn one_statement_with_c() {
    let (_dir, url) = lake();
    let out = promlake_ok(&["sql", "--bucket", &url, "-c", "SELECT count(*) AS n FROM samples"], &[]);
    let total = count(&tiny_golden());
    assert!(out.contains(&format!("| {total} ")), "{out}");
    assert!(out.contains("+--"), "a readable table: {out}");

    let out = promlake_ok(
        &[
            "sql",
            "--bucket",
            &url,
            "--format",
            "csv",
            "-c",
            "SELECT DISTINCT cluster, job FROM metrics WHERE job IS NOT NULL ORDER BY job",
        ],
        &[],
    );
    assert_eq!(out, "cluster,job\neu1,api\neu1,web\n");

    let bad = promlake(&["sql", "--bucket", &url, "-c", "SELECT * FROM nope"], &[]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("nope") && err.contains("not found"), "{err}");

    let bad = promlake(&["sql", "-c", "SELECT 1"], &[]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--bucket"));
}

#[test]
fn shell_reads_statements_from_stdin() {
    let (_dir, url) = lake();
    let mut child = Command::new(env!("CARGO_BIN_EXE_promlake"))
        .args(["sql", "--bucket", &url])
        .env("PROMLAKE_LOG_LEVEL", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT count(DISTINCT __name__) AS metrics\n  FROM series;\nSELECT broken;\nSELECT 40 + 2 AS answer;\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("| 5 "), "{stdout}");
    assert!(stdout.contains("| 42 "), "{stdout}");
    assert!(stderr.contains("broken"), "{stderr}");
    assert!(!out.status.success(), "a failed statement from a pipe sets the exit code");
}

struct Served {
    child: Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn flight_sql_clients_and_http_agree_with_duckdb() {
    let (dir, url) = lake();
    let (grpc, http) = (free_port(), free_port());
    let mut served = Served {
        child: Command::new(env!("CARGO_BIN_EXE_promlake"))
            .args(["sql", "--bucket", &url, "--grpc-address", &format!("127.0.0.1:{grpc}")])
            .args(["--http-address", &format!("127.0.0.1:{http}")])
            .env("PROMLAKE_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", grpc)).is_err() || TcpStream::connect(("127.0.0.1", http)).is_err()
    {
        assert!(served.child.try_wait().unwrap().is_none(), "promlake sql exited early");
        assert!(Instant::now() < deadline, "promlake sql did not listen within 60s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/sql_clients.py");
    let out = Command::new(python())
        .arg(script)
        .arg(grpc.to_string())
        .arg(http.to_string())
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "sql_clients.py: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // The same aggregation through ADBC, pyarrow.flight, HTTP (JSON, Arrow) and DuckDB.
    let duck = &v["duckdb_agg"];
    assert_eq!(duck.as_array().unwrap().len(), 2, "{duck}");
    for key in ["adbc_agg", "pyarrow_agg"] {
        same_rows(&v[key], duck, key);
    }
    same_rows(&v["http_arrow"][2], duck, "http arrow");
    let json_rows: Vec<serde_json::Value> = v["http_json"][2]["data"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::json!([r["instance"], r["n"], r["avg"]]))
        .collect();
    same_rows(&serde_json::Value::Array(json_rows), duck, "http json");
    assert_eq!(v["http_json"][0], 200);
    assert_eq!(v["http_json"][1], "application/json");
    assert_eq!(v["http_arrow"][1], "application/vnd.apache.arrow.stream");
    let csv = v["http_csv"][2].as_str().unwrap();
    assert!(csv.starts_with("instance,n,avg\na:9090,"), "{csv}");
    assert_eq!(v["http_error"][0], 400);
    assert_eq!(v["http_error"][1]["errorType"], "bad_data");
    assert_eq!(v["http_bad_format"][0], 400);
    assert!(v["http_bad_format"][1]["error"].as_str().unwrap().contains("xml"));

    // Prepared statement with bound parameters: 8 series of 241 samples.
    assert_eq!(v["adbc_param_count"], 8 * 241);
    assert!(v["adbc_promql_rows"].as_i64().unwrap() > 0);
    assert!(v["adbc_error"].as_str().unwrap().contains("no_such_table"), "{}", v["adbc_error"]);

    // Catalog calls.
    assert_eq!(v["adbc_catalogs"], serde_json::json!(["promlake"]));
    let tables: Vec<&str> =
        v["adbc_tables"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    for t in ["promlake.public.metrics:VIEW", "promlake.public.samples:TABLE", "promlake.public.series:TABLE"]
    {
        assert!(tables.contains(&t), "{tables:?}");
    }
    assert_eq!(v["adbc_table_types"], serde_json::json!(["TABLE", "VIEW"]));
    let cols: Vec<&str> =
        v["adbc_metrics_columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    for c in ["__name__", "cluster", "instance", "timestamp", "value"] {
        assert!(cols.contains(&c), "{cols:?}");
    }
    assert_eq!(v["adbc_vendor"], "promlake");

    // The PromQL ticket: sum by instance of the two sensors, every 5m over 10m.
    let promql = v["promql_ticket"].as_array().unwrap();
    assert_eq!(promql.len(), 2 * 3, "{promql:?}");
    assert!(promql.iter().all(|r| r[0] == "a:9090" || r[0] == "b:9090"));
    assert!(
        v["promql_ticket_error"].as_str().unwrap().contains("unclosed left parenthesis"),
        "{}",
        v["promql_ticket_error"]
    );
}

fn same_rows(a: &serde_json::Value, b: &serde_json::Value, what: &str) {
    let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
    assert_eq!(a.len(), b.len(), "{what}: {a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x[0], y[0], "{what}: instance");
        assert_eq!(x[1].as_i64(), y[1].as_i64(), "{what}: count");
        let (p, q) = (x[2].as_f64().unwrap(), y[2].as_f64().unwrap());
        assert!((p - q).abs() <= 1e-9 * q.abs().max(1.0), "{what}: avg {p} vs {q}");
    }
}

/// The `__name__` of a Go-formatted label set.
fn metric_of(series: &str) -> String {
    series.strip_prefix("{__name__=\"").and_then(|r| r.split('"').next()).unwrap_or_default().to_string()
}

#[test]
fn native_and_parquet_blocks_answer_sql_alike() {
    // One promtool-written block stays native in the bucket, another is imported as Parquet.
    let mut blocks: Vec<_> = std::fs::read_dir(tiny_blocks())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    blocks.sort();
    let (native, parquet) = (&blocks[0], &blocks[1]);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    copy_dir(native, &dir.path().join(native.file_name().unwrap()));
    promlake_ok(&["tools", "import", "--bucket", &url, parquet.to_str().unwrap()], &[]);

    // promtool's view of the same blocks.
    let dump_of = |blocks: &[&std::path::PathBuf]| {
        let d = tempfile::tempdir().unwrap();
        for b in blocks {
            copy_dir(b, &d.path().join(b.file_name().unwrap()));
        }
        promtool_dump(d.path())
    };
    let dump = dump_of(&[native, parquet]);
    let native_dump = dump_of(&[native]);
    let parquet_dump = dump_of(&[parquet]);
    assert!(!native_dump.is_empty() && !parquet_dump.is_empty());

    let sql = |q: &str| promlake_ok(&["sql", "--bucket", &url, "--format", "csv", "-c", q], &[]);
    let total = count(&dump);
    assert_eq!(sql("SELECT count(*) AS n FROM samples"), format!("n\n{total}\n"));
    assert_eq!(sql("SELECT count(*) AS n FROM metrics"), format!("n\n{total}\n"));
    let native_id = native.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        sql(&format!("SELECT count(*) AS n FROM samples WHERE block = '{native_id}'")),
        format!("n\n{}\n", count(&native_dump)),
        "the native block's own samples"
    );
    // Series per block: every series of each block once.
    let series_per_block = sql("SELECT count(*) AS n FROM series");
    assert_eq!(series_per_block, format!("n\n{}\n", native_dump.len() + parquet_dump.len()));

    // Samples per metric and their time span, through the join and the metrics view.
    let mut expected = String::from("name,n,first,last\n");
    let mut per_metric: std::collections::BTreeMap<String, (usize, i64, i64)> = Default::default();
    for (series, points) in &dump {
        let e = per_metric.entry(metric_of(series)).or_insert((0, i64::MAX, i64::MIN));
        e.0 += points.len();
        for (t, _) in points {
            e.1 = e.1.min(*t);
            e.2 = e.2.max(*t);
        }
    }
    for (name, (n, first, last)) in &per_metric {
        expected.push_str(&format!("{name},{n},{first},{last}\n"));
    }
    let view = sql("SELECT __name__ AS name, count(*) AS n, CAST(min(timestamp) AS BIGINT) AS first, \
         CAST(max(timestamp) AS BIGINT) AS last FROM metrics GROUP BY __name__ ORDER BY __name__");
    assert_eq!(view, expected);
    let join = sql("SELECT se.__name__ AS name, count(*) AS n, CAST(min(s.timestamp) AS BIGINT) AS first, \
         CAST(max(s.timestamp) AS BIGINT) AS last FROM series se JOIN samples s \
         ON s.block = se.block AND s.series_id = se.series_id GROUP BY se.__name__ ORDER BY se.__name__");
    assert_eq!(join, expected);
}
