//! StoreAPI conformance over a real tonic channel on 127.0.0.1: the server over a memory
//! source and over a bucket of Parquet blocks, read back with the client and with raw
//! Series calls.

use super::{collect, memory_bucket, tiny_blocks};
use async_trait::async_trait;
use futures::StreamExt;
use promlake_engine::catalog::BucketSource;
use promlake_engine::convert::{ImportOptions, NoProgress, import_blocks};
use promlake_engine::memory::MemorySource;
use promlake_engine::storeapi::{
    self, ClientOptions, Component, SeriesOptions, StoreClient, StoreLimits, StoreServerOptions, chunk_hash,
    compare_labels, labels_from_proto,
};
use promlake_engine::{Error, Labels, MatchOp, Matcher, SelectRequest, SeriesSource, SeriesStream};
use promlake_proto::thanos::{self as pb, LabelMatcher, SeriesRequest, label_matcher::Type, series_response};
use std::sync::Arc;

type Series = Vec<(Labels, Vec<i64>, Vec<f64>)>;

const STALE: u64 = 0x7ff0_0000_0000_0002;

/// A server on a free port, stopped on drop.
struct TestServer {
    addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn start(source: Arc<dyn SeriesSource>, opts: StoreServerOptions) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let routes = storeapi::routes(source, opts);
    tokio::spawn(async move {
        storeapi::serve(listener, routes, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestServer { addr, stop: Some(tx) }
}

/// Series with more than one chunk's worth of samples, a staleness marker, a label name that
/// sorts before `__name__` (so Prometheus order differs from block order) and a series
/// without a metric name.
fn sample_series() -> Series {
    let mut out = Vec::new();
    for (i, labels) in [
        Labels::from_pairs([("__name__", "up"), ("job", "api"), ("instance", "a:9090")]),
        Labels::from_pairs([("__name__", "up"), ("job", "api"), ("instance", "b:9090")]),
        Labels::from_pairs([("__name__", "http_requests_total"), ("job", "api"), ("code", "200")]),
        Labels::from_pairs([("__name__", "zeta"), ("Alpha", "1")]),
        Labels::from_pairs([("job", "nameless")]),
    ]
    .into_iter()
    .enumerate()
    {
        let n = 100 + 97 * i as i64;
        let ts: Vec<i64> = (0..n).map(|k| 1_000_000 + k * 15_000 + i as i64).collect();
        let vals: Vec<f64> = (0..n)
            .map(|k| if k == 50 { f64::from_bits(STALE) } else { (k as f64) * 1.25 + i as f64 })
            .collect();
        out.push((labels, ts, vals));
    }
    out
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn assert_same(a: &Series, e: &Series) {
    assert_eq!(a.len(), e.len(), "series count");
    for (x, y) in a.iter().zip(e) {
        assert_eq!(x.0, y.0);
        assert_eq!(x.1, y.1, "timestamps of {}", x.0);
        assert_eq!(bits(&x.2), bits(&y.2), "values of {}", x.0);
    }
}

fn eq(name: &str, value: &str) -> LabelMatcher {
    LabelMatcher { r#type: Type::Eq as i32, name: name.into(), value: value.into() }
}

fn all_time() -> SeriesRequest {
    SeriesRequest {
        min_time: i64::MIN,
        max_time: i64::MAX,
        matchers: vec![eq("job", "api")],
        ..Default::default()
    }
}

/// Series frames of a raw call, and the warnings.
async fn raw(client: &StoreClient, req: SeriesRequest) -> (Vec<pb::Series>, Vec<String>, usize) {
    let mut frames = client.series(req).await.unwrap();
    let (mut series, mut warnings, mut n_frames) = (Vec::new(), Vec::new(), 0);
    while let Some(f) = frames.message().await.unwrap() {
        n_frames += 1;
        match f.result.unwrap() {
            series_response::Result::Series(s) => series.push(s),
            series_response::Result::Batch(b) => series.extend(b.series),
            series_response::Result::Warning(w) => warnings.push(w),
            series_response::Result::Hints(_) => {}
        }
    }
    (series, warnings, n_frames)
}

async fn code_of(client: &StoreClient, req: SeriesRequest) -> tonic::Code {
    match client.series(req).await {
        Err(Error::Remote { code, .. }) => code,
        Err(e) => panic!("unexpected error {e}"),
        Ok(mut s) => loop {
            match s.message().await {
                Err(status) => break status.code(),
                Ok(None) => break tonic::Code::Ok,
                Ok(Some(_)) => {}
            }
        },
    }
}

#[tokio::test]
async fn memory_source_round_trip_over_grpc() {
    let series = sample_series();
    let ext = Labels::from_pairs([("cluster", "eu1"), ("replica", "a")]);
    let source = Arc::new(MemorySource::new(series.clone()).with_external_labels(ext.clone()));
    let server = start(source.clone(), StoreServerOptions::default()).await;
    let client = StoreClient::connect(&server.addr, ClientOptions::default()).await.unwrap();

    let info = client.info().await.unwrap();
    assert_eq!(info.component_type, "store");
    assert!(info.store_api && info.supports_without_replica_labels);
    assert_eq!(info.label_sets, vec![ext.clone()]);
    assert_eq!((info.min_time, info.max_time), source.time_range());
    assert_eq!(client.external_labels(), &ext);

    // Through the client as a series source: every sample equal, external labels in.
    let mut expected: Series =
        series.iter().map(|(l, t, v)| (l.merged(&ext), t.clone(), v.clone())).collect();
    expected.sort_by(|a, b| a.0.block_order(&b.0));
    assert_same(&collect(&client, &SelectRequest::all()).await, &expected);

    // A time window is trimmed exactly although chunks extend beyond it.
    let req = SelectRequest { min_time: 1_300_000, max_time: 2_000_000, ..SelectRequest::all() };
    let windowed: Series = expected
        .iter()
        .map(|(l, t, v)| {
            let keep: Vec<usize> =
                (0..t.len()).filter(|&i| (1_300_000..=2_000_000).contains(&t[i])).collect();
            (l.clone(), keep.iter().map(|&i| t[i]).collect(), keep.iter().map(|&i| v[i]).collect())
        })
        .collect();
    assert_same(&collect(&client, &req).await, &windowed);

    // Raw frames: Prometheus order, ≤120-sample XOR chunks with xxhash64 hashes.
    let mut req = all_time();
    req.matchers.clear();
    let (frames, warnings, _) = raw(&client, req).await;
    assert!(warnings.is_empty());
    assert_eq!(frames.len(), 5);
    let labels: Vec<Labels> = frames.iter().map(|s| labels_from_proto(&s.labels)).collect();
    assert!(labels.windows(2).all(|w| compare_labels(&w[0], &w[1]).is_lt()), "{labels:?}");
    assert_eq!(labels[0].get("Alpha"), Some("1"), "Alpha sorts before __name__");
    for s in &frames {
        let mut n = 0;
        for c in &s.chunks {
            let raw = c.raw.as_ref().unwrap();
            assert_eq!(raw.r#type, 0, "storepb XOR");
            assert_eq!(raw.hash, chunk_hash(&raw.data));
            let count = u16::from_be_bytes([raw.data[0], raw.data[1]]) as usize;
            assert!(count <= 120 && count > 0);
            n += count;
        }
        let l = labels_from_proto(&s.labels);
        let src = expected.iter().find(|e| e.0 == l).unwrap();
        assert_eq!(n, src.1.len());
        assert_eq!(s.chunks.first().unwrap().min_time, src.1[0]);
        assert_eq!(s.chunks.last().unwrap().max_time, *src.1.last().unwrap());
    }

    // Label APIs include the external labels.
    let names = client.label_names(&[]).await.unwrap();
    assert_eq!(names, ["Alpha", "__name__", "cluster", "code", "instance", "job", "replica"]);
    assert_eq!(client.label_values("cluster", &[]).await.unwrap(), ["eu1"]);
    assert_eq!(
        client.label_values("instance", &[Matcher::equal("__name__", "up")]).await.unwrap(),
        ["a:9090", "b:9090"]
    );
}

#[tokio::test]
async fn series_options_and_external_label_pruning() {
    let ext = Labels::from_pairs([("cluster", "eu1"), ("replica", "a")]);
    let source = Arc::new(MemorySource::new(sample_series()).with_external_labels(ext));
    let server = start(source, StoreServerOptions::default()).await;
    let client = StoreClient::connect(&server.addr, ClientOptions::default()).await.unwrap();

    // without_replica_labels strips external labels only (job is a series label).
    let req = SeriesRequest { without_replica_labels: vec!["replica".into(), "job".into()], ..all_time() };
    let (frames, _, _) = raw(&client, req).await;
    assert_eq!(frames.len(), 3);
    for s in &frames {
        let l = labels_from_proto(&s.labels);
        assert_eq!(l.get("replica"), None);
        assert_eq!(l.get("job"), Some("api"));
        assert_eq!(l.get("cluster"), Some("eu1"));
    }
    let sel = SelectRequest { matchers: vec![Matcher::equal("job", "api")], ..SelectRequest::all() };
    let opts = SeriesOptions { without_replica_labels: vec!["replica".into()], ..Default::default() };
    let got = collect_with(&client, &sel, &opts).await;
    assert!(got.iter().all(|s| s.0.get("replica").is_none() && !s.1.is_empty()));

    // skip_chunks: labels only.
    let (frames, _, _) = raw(&client, SeriesRequest { skip_chunks: true, ..all_time() }).await;
    assert_eq!(frames.len(), 3);
    assert!(frames.iter().all(|s| s.chunks.is_empty()));

    // limit truncates; response_batch_size packs series into batch frames.
    let (frames, _, _) = raw(&client, SeriesRequest { limit: 2, ..all_time() }).await;
    assert_eq!(frames.len(), 2);
    let mut req = all_time();
    req.matchers.clear();
    req.response_batch_size = 2;
    let (frames, _, n_frames) = raw(&client, req).await;
    assert_eq!((frames.len(), n_frames), (5, 3));

    // Vertical sharding: three shards partition the series.
    assert!(client.cached_info().unwrap().supports_sharding);
    let mut sharded = Vec::new();
    for shard_index in 0..3 {
        let shard_info = Some(pb::ShardInfo { shard_index, total_shards: 3, by: false, labels: vec![] });
        let mut req = all_time();
        req.matchers.clear();
        req.shard_info = shard_info;
        sharded.extend(raw(&client, req).await.0.into_iter().map(|s| labels_from_proto(&s.labels)));
    }
    sharded.sort_by(compare_labels);
    let mut req = all_time();
    req.matchers.clear();
    let all: Vec<Labels> = raw(&client, req).await.0.iter().map(|s| labels_from_proto(&s.labels)).collect();
    assert_eq!(sharded, all);

    // A matcher on an external label that does not match: empty answer, no error.
    let mut req = all_time();
    req.matchers.push(eq("cluster", "us1"));
    let (frames, warnings, n) = raw(&client, req).await;
    assert_eq!((frames.len(), warnings.len(), n), (0, 0, 0));
    let mut req = all_time();
    req.matchers.push(eq("cluster", "eu1"));
    assert_eq!(raw(&client, req).await.0.len(), 3);

    // Bad requests are InvalidArgument.
    let bad_re = LabelMatcher { r#type: Type::Re as i32, name: "job".into(), value: "(".into() };
    assert_eq!(
        code_of(&client, SeriesRequest { matchers: vec![bad_re], ..all_time() }).await,
        tonic::Code::InvalidArgument
    );
    let bad_type = LabelMatcher { r#type: 7, name: "job".into(), value: "x".into() };
    assert_eq!(
        code_of(&client, SeriesRequest { matchers: vec![bad_type], ..all_time() }).await,
        tonic::Code::InvalidArgument
    );
    assert_eq!(
        code_of(&client, SeriesRequest { min_time: 10, max_time: 5, ..all_time() }).await,
        tonic::Code::InvalidArgument
    );
    let err = client.label_values("", &[]).await.unwrap_err();
    assert!(matches!(err, Error::Remote { code: tonic::Code::InvalidArgument, .. }), "{err}");
}

async fn collect_with(client: &StoreClient, req: &SelectRequest, opts: &SeriesOptions) -> Series {
    let mut out = Vec::new();
    let mut s = client.select_with(req, opts).await.unwrap();
    while let Some(b) = s.next().await {
        out.extend(b.unwrap().to_series());
    }
    out
}

/// A source that reports a warning on every select, or fails.
#[derive(Debug)]
struct Flaky {
    inner: MemorySource,
    fail: bool,
    delay_ms: u64,
}

#[async_trait]
impl SeriesSource for Flaky {
    async fn select(&self, req: &SelectRequest) -> promlake_engine::Result<SeriesStream> {
        tokio::time::sleep(std::time::Duration::from_millis(self.delay_ms)).await;
        if self.fail {
            return Err(Error::Remote {
                endpoint: "downstream:10901".into(),
                code: tonic::Code::Unavailable,
                message: "connection refused".into(),
            });
        }
        let strategy = storeapi::requested_partial_response();
        req.warnings.push(format!("store downstream:10901 is slow (strategy {strategy:?})"));
        self.inner.select(req).await
    }
    async fn label_names_between(
        &self,
        m: &[Matcher],
        a: i64,
        b: i64,
    ) -> promlake_engine::Result<Vec<String>> {
        self.inner.label_names_between(m, a, b).await
    }
    async fn label_values_between(
        &self,
        n: &str,
        m: &[Matcher],
        a: i64,
        b: i64,
    ) -> promlake_engine::Result<Vec<String>> {
        self.inner.label_values_between(n, m, a, b).await
    }
    fn time_range(&self) -> (i64, i64) {
        self.inner.time_range()
    }
    fn external_labels(&self) -> &Labels {
        self.inner.external_labels()
    }
}

#[tokio::test]
async fn warnings_partial_response_and_limits() {
    let inner = MemorySource::new(sample_series());
    let warn = start(
        Arc::new(Flaky { inner: inner.clone(), fail: false, delay_ms: 0 }),
        StoreServerOptions::default(),
    )
    .await;
    let client = StoreClient::connect(&warn.addr, ClientOptions::default()).await.unwrap();
    let req = SelectRequest { matchers: vec![Matcher::equal("job", "api")], ..SelectRequest::all() };
    assert_eq!(collect(&client, &req).await.len(), 3);
    // The source sees the request's partial-response strategy.
    assert_eq!(req.warnings.get(), ["store downstream:10901 is slow (strategy Some(Warn))"]);
    let req = SelectRequest { warnings: Default::default(), ..req };
    let abort = SeriesOptions {
        partial_response: Some(storeapi::PartialResponseStrategy::Abort),
        ..Default::default()
    };
    assert_eq!(collect_with(&client, &req, &abort).await.len(), 3);
    assert_eq!(req.warnings.get(), ["store downstream:10901 is slow (strategy Some(Abort))"]);

    // A slow endpoint: the client's deadline covers the whole call.
    let slow =
        start(Arc::new(Flaky { inner: inner.clone(), fail: false, delay_ms: 3000 }), Default::default())
            .await;
    let opts = ClientOptions { timeout: Some(std::time::Duration::from_millis(300)), ..Default::default() };
    let client = StoreClient::connect(&slow.addr, opts).await.unwrap();
    let started = std::time::Instant::now();
    let err = collect_err(&client, &req).await;
    assert!(err.contains("DeadlineExceeded"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));

    // One Series request at a time: two concurrent ones take twice the source's time.
    let one_at_a_time = start(
        Arc::new(Flaky { inner: inner.clone(), fail: false, delay_ms: 400 }),
        StoreServerOptions { max_concurrent_series: 1, ..Default::default() },
    )
    .await;
    let client = StoreClient::connect(&one_at_a_time.addr, ClientOptions::default()).await.unwrap();
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(collect(&client, &req), collect(&client, &req));
    assert_eq!((a.len(), b.len()), (3, 3));
    assert!(started.elapsed() >= std::time::Duration::from_millis(800), "{:?}", started.elapsed());

    let failing = start(
        Arc::new(Flaky { inner: inner.clone(), fail: true, delay_ms: 0 }),
        StoreServerOptions { component: Component::Query, ..Default::default() },
    )
    .await;
    let client = StoreClient::connect(&failing.addr, ClientOptions::default()).await.unwrap();
    assert_eq!(client.cached_info().unwrap().component_type, "query");
    // WARN (the default): an empty answer and the failure as a warning frame.
    let (frames, warnings, _) = raw(&client, all_time()).await;
    assert!(frames.is_empty());
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("connection refused"), "{warnings:?}");
    // ABORT: the failure is the call's status.
    let abort = SeriesRequest { partial_response_strategy: 1, ..all_time() };
    assert_eq!(code_of(&client, abort).await, tonic::Code::Unavailable);

    let limited = start(
        Arc::new(inner),
        StoreServerOptions { limits: StoreLimits { max_series: 2, max_samples: 0 }, ..Default::default() },
    )
    .await;
    let client = StoreClient::connect(&limited.addr, ClientOptions::default()).await.unwrap();
    assert_eq!(code_of(&client, all_time()).await, tonic::Code::ResourceExhausted);
    // Under the limit thanks to the request's own limit.
    assert_eq!(raw(&client, SeriesRequest { limit: 2, ..all_time() }).await.0.len(), 2);
    let by_samples = start(
        Arc::new(MemorySource::new(sample_series())),
        StoreServerOptions { limits: StoreLimits { max_series: 0, max_samples: 500 }, ..Default::default() },
    )
    .await;
    let client = StoreClient::connect(&by_samples.addr, ClientOptions::default()).await.unwrap();
    let err = collect_err(&client, &SelectRequest::all()).await;
    assert!(err.contains("samples limit"), "{err}");
}

async fn collect_err(client: &StoreClient, req: &SelectRequest) -> String {
    match client.select(req).await {
        Err(e) => e.to_string(),
        Ok(mut s) => {
            while let Some(b) = s.next().await {
                if let Err(e) = b {
                    return e.to_string();
                }
            }
            panic!("no error")
        }
    }
}

#[test]
fn parquet_bucket_round_trip_over_grpc() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (_, blocks) = tiny_blocks(&rt);
    let bucket = memory_bucket();
    let opts = ImportOptions { labels: Labels::from_pairs([("cluster", "eu1")]), ..Default::default() };
    let outcomes = import_blocks(rt.handle(), &bucket, &blocks, &opts, &NoProgress);
    assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");
    rt.block_on(async {
        let source: Arc<dyn SeriesSource> = Arc::new(BucketSource::open(bucket).await.unwrap());
        let server = start(source.clone(), StoreServerOptions::default()).await;
        let client = StoreClient::connect(&server.addr, ClientOptions::default()).await.unwrap();
        let info = client.info().await.unwrap();
        assert_eq!(info.label_sets, vec![Labels::from_pairs([("cluster", "eu1")])]);
        assert_eq!((info.min_time, info.max_time), source.time_range());

        let direct = collect(source.as_ref(), &SelectRequest::all()).await;
        assert_eq!(direct.iter().map(|s| s.1.len()).sum::<usize>(), 5784);
        assert_same(&collect(&client, &SelectRequest::all()).await, &direct);

        let req = SelectRequest {
            matchers: vec![Matcher::new(MatchOp::Regex, "__name__", "request_duration_seconds_.*").unwrap()],
            min_time: 1_700_003_000_000,
            max_time: 1_700_009_000_000,
            ..SelectRequest::all()
        };
        let direct = collect(source.as_ref(), &req).await;
        assert!(!direct.is_empty());
        assert_same(&collect(&client, &req).await, &direct);
        assert_eq!(client.label_names(&[]).await.unwrap(), source.label_names(&[]).await.unwrap());
    });
}
