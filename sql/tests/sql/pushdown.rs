//! Filter pushdown, proven by counting the bytes read from each file: label filters read only
//! the matching series' row ranges, timestamp filters skip blocks and pages.

use crate::fixture::{BASE, MINUTE, TestLake, block_id, series, write_block};
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};
use promlake_engine::parquet::WriterOptions;
use promlake_sql::{SqlOptions, SqlSession};

const SERIES: usize = 200;
const POINTS: i64 = 2000;

async fn big_lake() -> TestLake {
    let lake = TestLake::new();
    // Two blocks, one after the other; 200 series of 2000 samples each; small pages so a
    // series spans several of them.
    let opts = || WriterOptions { row_group_rows: 100_000, page_rows: 256, ..Default::default() };
    for (n, offset) in [(1u128, 0i64), (2, POINTS)] {
        let data = (0..SERIES)
            .map(|i| {
                let inst = format!("i-{i:03}");
                series(
                    &[("__name__", "big_metric"), ("instance", &inst), ("job", "bench")],
                    (0..POINTS).map(move |k| (BASE + (offset + k) * MINUTE, value(i, offset + k))),
                )
            })
            .collect();
        write_block(&lake.bucket, block_id(n), &[], data, opts()).await;
    }
    lake
}

/// Incompressible but reproducible values, so byte counts reflect rows read.
fn value(i: usize, k: i64) -> f64 {
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (k as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs `sql` and sums `object_store_bytes_read` (bytes the Parquet reader asked for, before the object
/// store coalesces ranges) over the plan.
async fn bytes_scanned(session: &SqlSession, sql: &str) -> (Vec<RecordBatch>, usize) {
    let df = session.plan(sql).await.unwrap();
    let ctx = df.task_ctx();
    let plan = df.create_physical_plan().await.unwrap();
    let batches = promlake_sql::datafusion::physical_plan::collect(plan.clone(), std::sync::Arc::new(ctx))
        .await
        .unwrap();
    fn walk(p: &std::sync::Arc<dyn promlake_sql::datafusion::physical_plan::ExecutionPlan>, sum: &mut usize) {
        if let Some(m) = p.metrics() {
            *sum += m.sum_by_name("object_store_bytes_read").map(|v| v.as_usize()).unwrap_or(0);
        }
        for c in p.children() {
            walk(c, sum);
        }
    }
    let mut sum = 0;
    walk(&plan, &mut sum);
    (batches, sum)
}

fn scalar_i64(b: &[RecordBatch], col: usize) -> i64 {
    b[0].column(col).as_primitive::<Int64Type>().value(0)
}

fn scalar_f64(b: &[RecordBatch], col: usize) -> f64 {
    b[0].column(col).as_primitive::<Float64Type>().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_time_filters_read_only_what_they_need() {
    let lake = big_lake().await;
    let session = SqlSession::new(lake.bucket.clone(), SqlOptions::default()).unwrap();
    let samples = "samples.parquet";

    // Warm the caches (series, footers and page indexes), then measure the full scan.
    session.query("SELECT count(*) FROM metrics").await.unwrap();
    session.query("SELECT count(*) FROM metrics WHERE instance = 'i-100'").await.unwrap();
    let before = lake.counter.read(samples);
    let all = session.query("SELECT count(*), sum(value) FROM metrics").await.unwrap();
    let full = lake.counter.read(samples) - before;
    assert_eq!(scalar_i64(&all, 0), 2 * SERIES as i64 * POINTS);

    // One series by label: exact answer, a small fraction of the bytes.
    let before = lake.counter.read(samples);
    let one =
        session.query("SELECT count(*), sum(value) FROM metrics WHERE instance = 'i-007'").await.unwrap();
    let one_bytes = lake.counter.read(samples) - before;

    assert_eq!(scalar_i64(&one, 0), 2 * POINTS);
    let expected: f64 = (0..2 * POINTS).map(|k| value(7, k)).sum();
    assert!((scalar_f64(&one, 1) - expected).abs() < 1e-6, "{} vs {expected}", scalar_f64(&one, 1));
    assert!(one_bytes * 10 < full, "one series read {one_bytes} bytes of a {full}-byte full scan");

    // The same series over ten minutes of the second block: the first block is not touched,
    // and the page index narrows the series' row range to a page or two (measured before the
    // object store coalesces nearby ranges).
    let b1 = block_id(1).to_string();
    let before_b1 = lake.counter.read_in(&b1);
    let (_, whole) =
        bytes_scanned(&session, "SELECT count(*), sum(value) FROM metrics WHERE instance = 'i-007'").await;
    let t0 = BASE + (POINTS + 100) * MINUTE;
    let q = format!(
        "SELECT count(*), sum(value) FROM metrics WHERE instance = 'i-007' AND timestamp >= to_timestamp_millis({t0}) \
         AND timestamp < to_timestamp_millis({})",
        t0 + 10 * MINUTE
    );
    let before_b1_narrow = lake.counter.read_in(&b1);
    let (narrow, narrow_bytes) = bytes_scanned(&session, &q).await;
    assert_eq!(scalar_i64(&narrow, 0), 10);
    assert_eq!(
        lake.counter.read_in(&b1),
        before_b1_narrow,
        "the first block was read for a range outside it"
    );
    assert!(before_b1_narrow > before_b1);
    assert!(narrow_bytes * 3 < whole, "ten minutes scanned {narrow_bytes} bytes, the whole series {whole}");

    // `samples` skips blocks by timestamp too.
    let (before_b1, before) = (lake.counter.read_in(&b1), lake.counter.read(samples));
    let q = format!(
        "SELECT count(*) FROM samples WHERE timestamp >= to_timestamp_millis({})",
        BASE + POINTS * MINUTE
    );
    let later = session.query(&q).await.unwrap();
    assert_eq!(scalar_i64(&later, 0), SERIES as i64 * POINTS);
    assert_eq!(lake.counter.read_in(&b1), before_b1);
    assert!(lake.counter.read(samples) > before);

    // EXPLAIN ANALYZE shows what was selected and pruned.
    let plan = session
        .query("EXPLAIN ANALYZE SELECT count(*) FROM metrics WHERE instance IN ('i-001', 'i-002')")
        .await
        .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&plan).unwrap().to_string();
    assert!(text.contains("MetricsExec: blocks=2, series=4"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_blocks_appear_without_restart() {
    let lake = TestLake::new();
    let opts = SqlOptions { block_list_ttl: std::time::Duration::ZERO, ..Default::default() };
    let session = SqlSession::new(lake.bucket.clone(), opts).unwrap();
    let n = session.query("SELECT count(*) FROM samples").await.unwrap();
    assert_eq!(scalar_i64(&n, 0), 0);
    let s = series(&[("__name__", "late"), ("zone", "z1")], (0..5).map(|k| (BASE + k * MINUTE, 1.0)));
    write_block(&lake.bucket, block_id(9), &[("replica", "a")], vec![s], WriterOptions::default()).await;
    let b =
        session.query("SELECT zone, replica, count(*) FROM metrics GROUP BY zone, replica").await.unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&b).unwrap().to_string();
    assert!(text.contains("| z1   | a       | 5        |"), "{text}");
}
