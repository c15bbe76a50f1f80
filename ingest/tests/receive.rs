//! The receiver without HTTP: appends, conflicts, tenants, WAL replay, block cuts and WAL
//! truncation, read back through the head's `SeriesSource` and the engine's Parquet reader.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use futures::StreamExt;
use promlake_engine::parquet::ParquetBlock;
use promlake_engine::{Bucket, BucketConfig, Labels, Matcher, SelectRequest, SeriesSource};
use promlake_ingest::receive::limits::Limits;
use promlake_ingest::receive::wal::SyncPolicy;
use promlake_ingest::receive::{ReceiveConfig, Receiver};
use promlake_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use std::path::Path;
use std::sync::Arc;

type Series = Vec<(Labels, Vec<i64>, Vec<f64>)>;

fn config(dir: &Path, block_ms: i64) -> ReceiveConfig {
    ReceiveConfig {
        tsdb_path: dir.to_path_buf(),
        block_ms,
        external: Labels::from_pairs([("receive", "r1")]),
        tenant_label: "tenant_id".into(),
        default_tenant: "default-tenant".into(),
        wal_sync: SyncPolicy::Always,
        limits: Limits::default(),
    }
}

fn open(dir: &Path, block_ms: i64) -> Arc<Receiver> {
    let r = Receiver::new(config(dir, block_ms));
    r.replay().unwrap();
    r
}

fn ts(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels.iter().map(|(n, v)| Label { name: n.to_string(), value: v.to_string() }).collect(),
        samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect(),
        ..Default::default()
    }
}

async fn write(
    r: &Receiver,
    tenant: &str,
    series: Vec<TimeSeries>,
) -> promlake_ingest::receive::head::AppendResult {
    let req = WriteRequest { timeseries: series, ..Default::default() };
    let raw = prost::Message::encode_to_vec(&req);
    r.write(tenant, &raw, &req).await.unwrap()
}

async fn select(src: &dyn SeriesSource, matchers: Vec<Matcher>) -> Series {
    let req = SelectRequest { matchers, ..SelectRequest::all() };
    let mut out = Vec::new();
    let mut s = src.select(&req).await.unwrap();
    while let Some(b) = s.next().await {
        out.extend(b.unwrap().to_series());
    }
    out
}

#[tokio::test]
async fn appends_conflicts_tenants_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), 7_200_000);
    let up = [("__name__", "up"), ("job", "a")];
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let res = write(&r, "t1", vec![ts(&up, &[(1000, 1.0), (2000, 0.5), (3000, stale)])]).await;
    assert_eq!((res.appended, res.conflicts()), (3, 0));
    // Out of order, duplicate, exact duplicate (ignored) and one new sample in one request.
    let res =
        write(&r, "t1", vec![ts(&up, &[(1500, 9.0), (3000, 7.0), (4000, 4.0)]), ts(&up, &[(4000, 4.0)])])
            .await;
    assert_eq!((res.appended, res.out_of_order, res.duplicate), (1, 1, 1));
    assert!(res.first_conflict.unwrap().contains("out of order sample"));
    // Invalid labels: that series is rejected, the other one stored.
    let res = write(&r, "t2", vec![ts(&[("b", "1"), ("a", "2")], &[(1, 1.0)]), ts(&up, &[(10, 2.0)])]).await;
    assert_eq!((res.invalid_series, res.appended), (1, 1));
    assert!(res.first_invalid.unwrap().contains("not sorted"));

    let src = r.source();
    let got = select(src.as_ref(), vec![Matcher::equal("__name__", "up")]).await;
    assert_eq!(got.len(), 2, "{got:?}");
    let t1 = &got[0];
    assert_eq!(t1.0.get("tenant_id"), Some("t1"));
    assert_eq!(t1.0.get("receive"), Some("r1"));
    assert_eq!(t1.1, vec![1000, 2000, 3000, 4000]);
    assert_eq!(t1.2[2].to_bits(), 0x7ff0_0000_0000_0002, "staleness marker kept bit-exact");
    let only_t2 = select(src.as_ref(), vec![Matcher::equal("tenant_id", "t2")]).await;
    assert_eq!(only_t2.len(), 1);
    assert_eq!(src.label_values("tenant_id", &[]).await.unwrap(), vec!["t1", "t2"]);

    // Replay: a new receiver on the same directory sees the same data.
    r.close().unwrap();
    drop(r);
    let r2 = open(dir.path(), 7_200_000);
    let again = select(r2.source().as_ref(), vec![Matcher::equal("__name__", "up")]).await;
    assert_eq!(format!("{again:?}"), format!("{got:?}"));
}

#[tokio::test]
async fn series_limit_rejects_whole_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), 7_200_000);
    cfg.limits = Limits::from_yaml("test", "write:\n  default:\n    head_series_limit: 2\n").unwrap();
    let r = Receiver::new(cfg);
    r.replay().unwrap();
    let a = ts(&[("__name__", "a")], &[(1, 1.0)]);
    let b = ts(&[("__name__", "b")], &[(1, 1.0)]);
    let c = ts(&[("__name__", "c")], &[(1, 1.0)]);
    let req = WriteRequest { timeseries: vec![a, b.clone()], ..Default::default() };
    r.write("t", &prost::Message::encode_to_vec(&req), &req).await.unwrap();
    let req = WriteRequest { timeseries: vec![b, c], ..Default::default() };
    let err = r.write("t", &prost::Message::encode_to_vec(&req), &req).await.unwrap_err();
    assert_eq!(err.http_status(), 429, "{err}");
    assert_eq!(r.heads().get_or_create("t").num_series(), 2);
}

#[tokio::test]
async fn cut_uploads_block_and_truncates_wal() {
    let dir = tempfile::tempdir().unwrap();
    let lake = tempfile::tempdir().unwrap();
    let bucket = Bucket::open(&BucketConfig::from_url(format!("file://{}", lake.path().display()))).unwrap();
    let d = 60_000;
    let r = open(dir.path(), d);
    // Two windows of data: [0, 60s) and [60s, 120s); series b only in the first.
    let a: Vec<(i64, f64)> = (0..120).map(|i| (i * 1000, i as f64)).collect();
    write(&r, "t1", vec![ts(&[("__name__", "a")], &a), ts(&[("__name__", "b"), ("x", "1")], &[(5000, 5.0)])])
        .await;
    let segs_before = r.wal().unwrap().segments();
    let metas = r.cut_due(&bucket, true).await.unwrap();
    assert_eq!(metas.len(), 2, "both windows ended long ago");
    let m = &metas[0];
    assert_eq!((m.min_time, m.max_time, m.stats.num_series, m.stats.num_samples), (0, 60_000, 2, 61));
    let labels = &m.thanos.as_ref().unwrap().labels;
    assert_eq!(labels.get("tenant_id").map(String::as_str), Some("t1"));
    assert_eq!(labels.get("receive").map(String::as_str), Some("r1"));
    // The head is empty; the WAL segments holding that data are gone.
    assert_eq!(r.heads().get_or_create("t1").num_series(), 0);
    let segs_after = r.wal().unwrap().segments();
    assert!(segs_before.iter().all(|s| !segs_after.contains(s)), "{segs_before:?} -> {segs_after:?}");
    // Samples in an uploaded window are now out of bounds.
    let res = write(&r, "t1", vec![ts(&[("__name__", "a")], &[(119_500, 1.0)])]).await;
    assert_eq!(res.out_of_bounds, 1);

    // Everything is in the bucket, exactly.
    let mut got: Vec<(String, Vec<i64>)> = Vec::new();
    for info in bucket.list_blocks().await.unwrap() {
        let block = ParquetBlock::open(&bucket, info.meta).await.unwrap();
        for (l, t, _) in select(&block, vec![]).await {
            got.push((l.to_string(), t));
        }
    }
    got.sort();
    let a_ts: Vec<i64> = a.iter().map(|s| s.0).collect();
    let (first, second) = a_ts.split_at(60);
    assert_eq!(got.len(), 3);
    assert!(got.contains(&(r#"{__name__="a", receive="r1", tenant_id="t1"}"#.to_string(), first.to_vec())));
    assert!(got.contains(&(r#"{__name__="a", receive="r1", tenant_id="t1"}"#.to_string(), second.to_vec())));

    // A restart replays nothing already uploaded.
    r.close().unwrap();
    drop(r);
    let r2 = open(dir.path(), d);
    assert!(select(r2.source().as_ref(), vec![]).await.is_empty());
}

/// Memory per active series: 2,000 node_exporter-like series (5 labels) with one full chunk
/// (120 samples at a 15s interval) each. Prints the figure and keeps it bounded.
#[tokio::test]
async fn memory_per_active_series() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), 7_200_000);
    let n_series = 2_000;
    let mut after_first = 0.0;
    let mut value = vec![0.0f64; n_series];
    for step in 0..120i64 {
        let batch: Vec<TimeSeries> = (0..n_series)
            .map(|i| {
                // Counter-like values with irregular increments, scrape jitter of a few ms.
                value[i] += ((i as i64 * 7919 + step * 104_729) % 1000) as f64 / 100.0;
                let cpu = (i % 64).to_string();
                let inst = format!("10.0.{}.{}:9100", i / 64 / 250, i / 64 % 250);
                let name = format!("node_metric_{}_total", i % 7);
                let t = 1_700_000_000_000 + step * 15_000 + (i as i64 % 5);
                ts(
                    &[
                        ("__name__", &name),
                        ("cpu", &cpu),
                        ("instance", &inst),
                        ("job", "node"),
                        ("mode", "user"),
                    ],
                    &[(t, value[i])],
                )
            })
            .collect();
        write(&r, "t", batch).await;
        if step == 0 {
            after_first = r.heads().get_or_create("t").memory_bytes() as f64 / n_series as f64;
        }
    }
    let head = r.heads().get_or_create("t");
    assert_eq!(head.num_series(), n_series);
    let per_series = head.memory_bytes() as f64 / n_series as f64;
    let per_sample = (per_series - after_first) / 119.0;
    eprintln!(
        "head memory: {after_first:.0} bytes per series with 1 sample (labels interned, indexes), \
         {per_series:.0} with 120 samples ({per_sample:.2} bytes per further sample, XOR)"
    );
    assert!(after_first < 512.0, "{after_first} bytes per series of overhead");
    assert!(per_sample < 10.0, "{per_sample} bytes per sample");
}
