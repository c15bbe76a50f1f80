//! The querier's path over real gRPC on 127.0.0.1: StoreAPI servers over memory sources (one of
//! them slow), the endpoint set with `StoreConnector`, the fan-out with a response timeout and
//! both partial-response strategies, and deduplication of the two replicas it returns.

use super::collect;
use async_trait::async_trait;
use promlake_engine::dedup::DedupSource;
use promlake_engine::fanout::discovery::EndpointSpec;
use promlake_engine::fanout::endpoints::{EndpointSet, EndpointSetOptions};
use promlake_engine::fanout::store_endpoint::StoreConnector;
use promlake_engine::fanout::{Fanout, FanoutOptions, PartialResponse};
use promlake_engine::memory::MemorySource;
use promlake_engine::storeapi::{
    self, ClientOptions, PartialResponseStrategy, SeriesOptions, StoreClient, StoreServerOptions,
};
use promlake_engine::{Labels, Matcher, SelectHints, SelectRequest, SeriesSource, SeriesStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A source whose selects wait `delay_ms` first.
#[derive(Debug)]
struct Slow {
    inner: MemorySource,
    delay_ms: AtomicU64,
}

#[async_trait]
impl SeriesSource for Slow {
    async fn select(&self, req: &SelectRequest) -> promlake_engine::Result<SeriesStream> {
        tokio::time::sleep(Duration::from_millis(self.delay_ms.load(Ordering::SeqCst))).await;
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

async fn serve(source: Arc<dyn SeriesSource>) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let routes = storeapi::routes(source, StoreServerOptions::default());
    tokio::spawn(storeapi::serve(listener, routes, async {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// A counter scraped every 15s by two replicas; replica a stops at 60s, replica b restarted
/// before the data starts and counts from 1.
fn replica(name: &str, ts: &[i64], vs: &[f64]) -> MemorySource {
    MemorySource::new([(Labels::from_pairs([("__name__", "requests_total")]), ts.to_vec(), vs.to_vec())])
        .with_external_labels(Labels::from_pairs([("replica", name)]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_over_grpc_timeouts_strategies_and_dedup() {
    let a = replica("a", &[0, 15_000, 30_000, 45_000, 60_000], &[100.0, 110.0, 120.0, 130.0, 140.0]);
    let b = Arc::new(Slow {
        inner: replica(
            "b",
            &[5_000, 20_000, 35_000, 50_000, 65_000, 80_000, 95_000],
            &[1., 2., 3., 4., 5., 6., 7.],
        ),
        delay_ms: AtomicU64::new(0),
    });
    let (addr_a, _stop_a) = serve(Arc::new(a)).await;
    let (addr_b, _stop_b) = serve(b.clone()).await;
    let specs = vec![EndpointSpec::parse(&addr_a).unwrap(), EndpointSpec::parse(&addr_b).unwrap()];
    let set =
        Arc::new(EndpointSet::new(specs, Arc::new(StoreConnector::default()), EndpointSetOptions::default()));
    set.refresh().await;
    assert!(set.status().iter().all(|s| s.last_error.is_none()), "{:?}", set.status());
    let opts = FanoutOptions { response_timeout: Some(Duration::from_millis(500)), ..Default::default() };
    let fanout = Fanout::new(set.clone(), opts);
    assert_eq!(
        fanout.label_sets().await,
        [Labels::from_pairs([("replica", "a")]), Labels::from_pairs([("replica", "b")])]
    );

    // Both replicas; deduplicated with the counter adjustment under rate().
    let all = collect(&fanout, &SelectRequest::all()).await;
    assert_eq!(all.len(), 2);
    let mut req = SelectRequest::all();
    req.hints = SelectHints { func: Some("rate".into()), range_ms: 300_000, ..Default::default() };
    let dedup = DedupSource::new(Arc::new(fanout.clone()), vec!["replica".into()]);
    let got = collect(&dedup, &req).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, Labels::from_pairs([("__name__", "requests_total")]));
    // a until 60s, then b past the penalty (2×15s after 60s: 80s is skipped), lifted by
    // 140 − 7 so the counter does not go down.
    assert_eq!(got[0].1, [0, 15_000, 30_000, 45_000, 60_000, 95_000]);
    assert_eq!(got[0].2, [100.0, 110.0, 120.0, 130.0, 140.0, 140.0]);
    // Not a counter function: the replicas' own values.
    let plain = collect(&dedup, &SelectRequest::all()).await;
    assert_eq!(plain[0].2, [100.0, 110.0, 120.0, 130.0, 140.0, 7.0]);

    // Replica b answers too slowly: WARN keeps a's data with a warning, ABORT fails.
    b.delay_ms.store(3_000, Ordering::SeqCst);
    let req = SelectRequest::all();
    let got = collect(&fanout, &req).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.get("replica"), Some("a"));
    let w = req.warnings.get();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains(&addr_b) && w[0].contains("response timeout"), "{w:?}");
    let abort = fanout.with_partial_response(PartialResponse::Abort);
    let err = abort.select(&SelectRequest::all()).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains(&addr_b), "{err}");

    // The fan-out served over StoreAPI (a querier's gRPC port) applies each request's strategy:
    // WARN gives replica a and a warning frame, ABORT a gRPC error.
    let (addr_q, _stop_q) = serve(Arc::new(fanout.for_store_api())).await;
    let client = StoreClient::new(&addr_q, ClientOptions::default()).unwrap();
    let warn = SeriesOptions { partial_response: Some(PartialResponseStrategy::Warn), ..Default::default() };
    let req = SelectRequest::all();
    let got = collect(&ClientWith(&client, warn), &req).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.get("replica"), Some("a"));
    assert!(req.warnings.get().iter().any(|w| w.contains(&addr_b)), "{:?}", req.warnings.get());
    let abort =
        SeriesOptions { partial_response: Some(PartialResponseStrategy::Abort), ..Default::default() };
    let err = client.select_with(&SelectRequest::all(), &abort).await.err().map(|e| e.to_string());
    assert!(err.as_deref().unwrap_or_default().contains(&addr_b), "{err:?}");
}

/// A client selecting with fixed Series options.
#[derive(Debug)]
struct ClientWith<'a>(&'a StoreClient, SeriesOptions);

#[async_trait]
impl SeriesSource for ClientWith<'_> {
    async fn select(&self, req: &SelectRequest) -> promlake_engine::Result<SeriesStream> {
        self.0.select_with(req, &self.1).await
    }
    async fn label_names_between(
        &self,
        m: &[Matcher],
        a: i64,
        b: i64,
    ) -> promlake_engine::Result<Vec<String>> {
        self.0.label_names_between(m, a, b).await
    }
    async fn label_values_between(
        &self,
        n: &str,
        m: &[Matcher],
        a: i64,
        b: i64,
    ) -> promlake_engine::Result<Vec<String>> {
        self.0.label_values_between(n, m, a, b).await
    }
    fn time_range(&self) -> (i64, i64) {
        self.0.time_range()
    }
    fn external_labels(&self) -> &Labels {
        self.0.external_labels()
    }
}
