//! Test lakes: buckets of engine-written Parquet blocks with known contents, and an object
//! store wrapper that counts the bytes each file had read.

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use promlake_engine::parquet::{ParquetBlockWriter, WriterOptions};
use promlake_engine::{Bucket, BucketConfig, Labels};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use ulid::Ulid;

/// 2023-11-14T22:13:20Z in ms.
pub const BASE: i64 = 1_700_000_000_000;
pub const MINUTE: i64 = 60_000;

/// Counts bytes fetched per object.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    bytes: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Display for CountingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

impl CountingStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        CountingStore { inner, bytes: Mutex::new(HashMap::new()) }
    }

    /// Bytes read so far from objects whose path ends with `suffix`.
    pub fn read(&self, suffix: &str) -> u64 {
        self.bytes.lock().unwrap().iter().filter(|(k, _)| k.ends_with(suffix)).map(|(_, v)| v).sum()
    }

    /// Bytes read so far from objects whose path contains `part`.
    pub fn read_in(&self, part: &str) -> u64 {
        self.bytes.lock().unwrap().iter().filter(|(k, _)| k.contains(part)).map(|(_, v)| v).sum()
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let r = self.inner.get_opts(location, options).await?;
        if !r.meta.location.as_ref().is_empty() {
            let n = r.range.end - r.range.start;

            *self.bytes.lock().unwrap().entry(location.to_string()).or_default() += n;
        }
        Ok(r)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A bucket in a temporary directory, read through a counting store.
pub struct TestLake {
    pub _dir: tempfile::TempDir,
    pub bucket: Bucket,
    pub counter: Arc<CountingStore>,
}

impl TestLake {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let plain =
            Bucket::open(&BucketConfig::from_url(format!("file://{}", dir.path().display()))).unwrap();
        let counter = Arc::new(CountingStore::new(plain.store().clone()));
        let bucket = Bucket::from_store(counter.clone(), plain.url().to_string());
        TestLake { _dir: dir, bucket, counter }
    }
}

/// A fixed block id from a number.
pub fn block_id(n: u128) -> Ulid {
    Ulid::from_parts(1_700_000_000_000, n)
}

pub fn meta_json(
    id: &Ulid,
    min: i64,
    max: i64,
    external: &[(&str, &str)],
    resolution: i64,
) -> promlake_compat::BlockMeta {
    let labels: serde_json::Map<String, serde_json::Value> =
        external.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string()))).collect();
    let json = serde_json::json!({
        "ulid": id.to_string(), "minTime": min, "maxTime": max, "stats": {}, "compaction": {"level": 1},
        "version": 1,
        "thanos": {"labels": labels, "downsample": {"resolution": resolution}, "source": "test"},
        "promlake": {"format_version": 1}
    });
    promlake_compat::BlockMeta::parse("test", json.to_string().as_bytes()).unwrap()
}

/// One series: labels and (ts, value) points.
pub type TestSeries = (Labels, Vec<(i64, f64)>);

pub fn series(labels: &[(&str, &str)], points: impl IntoIterator<Item = (i64, f64)>) -> TestSeries {
    (
        Labels::from_pairs(labels.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
        points.into_iter().collect(),
    )
}

/// Writes a raw block with `opts` and uploads it (meta.json last).
pub async fn write_block(
    bucket: &Bucket,
    id: Ulid,
    external: &[(&str, &str)],
    mut data: Vec<TestSeries>,
    opts: WriterOptions,
) {
    data.sort_by(|a, b| a.0.block_order(&b.0));
    let min = data.iter().flat_map(|s| s.1.iter().map(|p| p.0)).min().unwrap();
    let max = data.iter().flat_map(|s| s.1.iter().map(|p| p.0)).max().unwrap() + 1;
    let mut w = ParquetBlockWriter::new(opts).unwrap();
    for (labels, points) in data {
        let ts: Vec<i64> = points.iter().map(|p| p.0).collect();
        let vals: Vec<f64> = points.iter().map(|p| p.1).collect();
        w.append(labels, &ts, &vals).unwrap();
    }
    w.finish().unwrap().upload(bucket, &id, meta_json(&id, min, max, external, 0)).await.unwrap();
}

/// The small lake the .slt files describe (see `slt/README.md`):
/// block 1 (cluster=eu1), minutes 0..9: node_load1 host-0 = k, host-1 = 10+k;
///   http_requests_total{code=200} = 100k, {code=500} = k (handler=/api, instance=host-0, job=api)
/// block 2 (cluster=us1), minutes 10..19: node_load1 host-0 = 100+k, host-2 = 20+k; up{env=prod, host-2} = 1
/// block 3 (cluster=eu1, 5m resolution): node_load1 host-0 windows at minutes 4 and 9.
pub async fn small_lake(bucket: &Bucket) {
    let t = |k: i64| BASE + k * MINUTE;
    let node = |inst: &str, off: f64, from: i64| {
        series(
            &[("__name__", "node_load1"), ("instance", inst), ("job", "node")],
            (0..10).map(move |k| (t(from + k), off + k as f64)),
        )
    };
    let http = |code: &str, mul: f64| {
        series(
            &[
                ("__name__", "http_requests_total"),
                ("code", code),
                ("handler", "/api"),
                ("instance", "host-0"),
                ("job", "api"),
            ],
            (0..10).map(move |k| (t(k), mul * k as f64)),
        )
    };
    write_block(
        bucket,
        block_id(1),
        &[("cluster", "eu1")],
        vec![node("host-0", 0.0, 0), node("host-1", 10.0, 0), http("200", 100.0), http("500", 1.0)],
        WriterOptions::default(),
    )
    .await;
    let up = series(
        &[("__name__", "up"), ("env", "prod"), ("instance", "host-2"), ("job", "node")],
        (0..10).map(|k| (t(10 + k), 1.0)),
    );
    write_block(
        bucket,
        block_id(2),
        &[("cluster", "us1")],
        vec![node("host-0", 100.0, 10), node("host-2", 20.0, 10), up],
        WriterOptions::default(),
    )
    .await;
    write_downsampled(bucket, block_id(3)).await;
}

/// A 5m block written by hand in the downsampled schema of DESIGN.md §3.
async fn write_downsampled(bucket: &Bucket, id: Ulid) {
    use arrow::array::{
        Float64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array, UInt64Array,
    };
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use parquet::arrow::ArrowWriter;
    let write = |batch: RecordBatch| {
        let mut buf = Vec::new();
        let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        buf
    };
    let series = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("series_id", DataType::UInt32, false),
            Field::new("__name__", DataType::Utf8, true),
            Field::new("instance", DataType::Utf8, true),
            Field::new("job", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(UInt32Array::from(vec![0])),
            Arc::new(StringArray::from(vec!["node_load1"])),
            Arc::new(StringArray::from(vec!["host-0"])),
            Arc::new(StringArray::from(vec!["node"])),
        ],
    )
    .unwrap();
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let samples = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("series_id", DataType::UInt32, false),
            Field::new("timestamp", ts, false),
            Field::new("count", DataType::UInt64, false),
            Field::new("sum", DataType::Float64, false),
            Field::new("min", DataType::Float64, false),
            Field::new("max", DataType::Float64, false),
            Field::new("counter", DataType::Float64, false),
        ])),
        vec![
            Arc::new(UInt32Array::from(vec![0, 0])),
            Arc::new(
                TimestampMillisecondArray::from(vec![BASE + 4 * MINUTE, BASE + 9 * MINUTE])
                    .with_timezone("UTC"),
            ),
            Arc::new(UInt64Array::from(vec![5, 5])),
            Arc::new(Float64Array::from(vec![10.0, 35.0])),
            Arc::new(Float64Array::from(vec![0.0, 5.0])),
            Arc::new(Float64Array::from(vec![4.0, 9.0])),
            Arc::new(Float64Array::from(vec![4.0, 9.0])),
        ],
    )
    .unwrap();
    bucket.put_bytes(&Bucket::block_path(&id, "series.parquet"), write(series)).await.unwrap();
    bucket.put_bytes(&Bucket::block_path(&id, "samples.parquet"), write(samples)).await.unwrap();
    let meta = meta_json(&id, BASE, BASE + 10 * MINUTE, &[("cluster", "eu1")], 300_000);
    bucket.put_bytes(&Bucket::block_path(&id, "meta.json"), meta.to_json_pretty()).await.unwrap();
}
