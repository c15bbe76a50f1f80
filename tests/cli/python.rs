//! The Parquet files are plain tables: pyarrow and DuckDB read them and agree with the source.

use crate::harness::*;
use promlake_compat::dumpfmt::format_labels;
use std::collections::BTreeMap;
use std::process::Command;

/// The venv's python (scripts/test.sh sets PROMLAKE_PYTHON).
pub fn python() -> String {
    std::env::var("PROMLAKE_PYTHON").unwrap_or_else(|_| {
        panic!("PROMLAKE_PYTHON is not set: run the tests with scripts/test.sh, which builds the Python venv")
    })
}

#[test]
fn pyarrow_and_duckdb_read_the_lake_and_agree_with_the_source() {
    let lake = tempfile::tempdir().unwrap();
    let url = format!("file://{}", lake.path().display());
    promlake_ok(&["tools", "import", "--bucket", &url, tiny_blocks().to_str().unwrap()], &[]);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/read_lake.py");
    let out = Command::new(python()).arg(script).arg(lake.path()).output().unwrap();
    assert!(out.status.success(), "read_lake.py: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let mut from_pyarrow = Samples::new();
    for row in v["samples"].as_array().unwrap() {
        let labels: Vec<(String, String)> = row[0]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let ts = row[1].as_i64().unwrap();
        let bits = u64::from_str_radix(row[2].as_str().unwrap(), 16).unwrap();
        from_pyarrow.entry(format_labels(&labels)).or_default().push((ts, bits));
    }
    for s in from_pyarrow.values_mut() {
        s.sort();
    }
    let golden = tiny_golden();
    assert_same(&from_pyarrow, &golden);

    assert_eq!(v["duckdb_total"].as_u64().unwrap() as usize, count(&golden));
    let mut per_metric: BTreeMap<String, u64> = BTreeMap::new();
    for (k, s) in &golden {
        let name = k.split('"').nth(1).unwrap().to_string();
        *per_metric.entry(name).or_default() += s.len() as u64;
    }
    let duck: BTreeMap<String, u64> = v["duckdb_per_metric"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect();
    assert_eq!(duck, per_metric);
    assert_eq!(v["duckdb_types"]["timestamp"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(v["duckdb_types"]["value"], "DOUBLE");
}
