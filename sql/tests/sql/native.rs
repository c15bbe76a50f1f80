//! Native TSDB blocks in the bucket: the real Prometheus 2.42 blocks of testdata beside an
//! engine-written Parquet block; `series`, `samples` and `metrics` include both.

use crate::fixture::{TestLake, small_lake};
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use promlake_compat::NativeBlock;
use promlake_sql::{SqlOptions, SqlSession};
use std::path::PathBuf;

fn tiny_blocks() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/tsdb-blocks/tiny");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    v.sort();
    v
}

async fn upload_dir(lake: &TestLake, local: &std::path::Path, prefix: &str) {
    for e in std::fs::read_dir(local).unwrap() {
        let e = e.unwrap();
        let name = format!("{prefix}/{}", e.file_name().to_str().unwrap());
        if e.file_type().unwrap().is_dir() {
            Box::pin(upload_dir(lake, &e.path(), &name)).await;
        } else {
            let bytes = std::fs::read(e.path()).unwrap();
            lake.bucket.store().put(&Path::from(name), bytes.into()).await.unwrap();
        }
    }
}

fn scalar(b: &[RecordBatch]) -> i64 {
    b[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_blocks_are_tables_too() {
    let lake = TestLake::new();
    small_lake(&lake.bucket).await;
    let session = SqlSession::new(lake.bucket.clone(), SqlOptions::default()).unwrap();
    let parquet_samples = scalar(&session.query("SELECT count(*) FROM samples").await.unwrap());
    let parquet_series = scalar(&session.query("SELECT count(*) FROM series").await.unwrap());

    // Upload the promtool-written blocks as they are and count them through compat.
    let (mut samples, mut series) = (0i64, 0i64);
    for b in tiny_blocks() {
        let id = b.file_name().unwrap().to_str().unwrap().to_string();
        upload_dir(&lake, &b, &id).await;
        let nb = NativeBlock::open(lake.bucket.store().clone(), &Path::from(id.as_str())).await.unwrap();
        samples += nb.meta().stats.num_samples as i64;
        series += nb.series().len() as i64;
    }
    let session = SqlSession::new(lake.bucket.clone(), SqlOptions::default()).unwrap();
    let total = parquet_samples + samples;
    assert_eq!(scalar(&session.query("SELECT count(*) FROM samples").await.unwrap()), total);
    assert_eq!(scalar(&session.query("SELECT count(*) FROM metrics").await.unwrap()), total);
    assert_eq!(scalar(&session.query("SELECT count(*) FROM series").await.unwrap()), parquet_series + series);
    let joined = session
        .query(
            "SELECT count(*) FROM series se JOIN samples s ON s.block = se.block AND s.series_id = se.series_id",
        )
        .await
        .unwrap();
    assert_eq!(scalar(&joined), total);
    // Label filters select native series too, and time filters cut their samples.
    // (964: the samples of node_temperature_celsius in testdata's promtool-dump.txt.gz.)
    let temp = "SELECT count(*) FROM metrics WHERE __name__ = 'node_temperature_celsius'";
    assert_eq!(scalar(&session.query(temp).await.unwrap()), 964);
    let cut = session
        .query("SELECT count(*) FROM samples WHERE timestamp < (SELECT max(timestamp) FROM samples)")
        .await
        .unwrap();
    assert!(scalar(&cut) < total);
}
