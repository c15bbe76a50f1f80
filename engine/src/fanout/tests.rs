//! Fan-out over in-process sources: pruning, merging, partial responses, endpoint health.

use super::endpoints::{Connector, Endpoint, EndpointInfo, EndpointSet, EndpointSetOptions};
use super::*;
use crate::SeriesBatch;
use crate::memory::MemorySource;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// A memory source with external labels, counting its selects; it can be made to fail or hang.
#[derive(Debug)]
struct TestSource {
    inner: MemorySource,
    ext: Labels,
    selects: AtomicUsize,
    fail: AtomicBool,
    hang: AtomicBool,
}

impl TestSource {
    fn new(ext: &[(&str, &str)], series: Vec<(Labels, Vec<i64>, Vec<f64>)>) -> Arc<Self> {
        let ext = l(ext);
        let series = series.into_iter().map(|(s, t, v)| (s.merged(&ext), t, v));
        Arc::new(TestSource {
            inner: MemorySource::new(series),
            ext,
            selects: AtomicUsize::new(0),
            fail: AtomicBool::new(false),
            hang: AtomicBool::new(false),
        })
    }

    async fn trouble(&self) -> Result<()> {
        if self.hang.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("connection refused".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl SeriesSource for TestSource {
    async fn select(&self, req: &SelectRequest) -> Result<SeriesStream> {
        self.selects.fetch_add(1, Ordering::SeqCst);
        self.trouble().await?;
        self.inner.select(req).await
    }
    async fn label_names_between(&self, m: &[Matcher], a: i64, b: i64) -> Result<Vec<String>> {
        self.trouble().await?;
        self.inner.label_names_between(m, a, b).await
    }
    async fn label_values_between(&self, n: &str, m: &[Matcher], a: i64, b: i64) -> Result<Vec<String>> {
        self.trouble().await?;
        self.inner.label_values_between(n, m, a, b).await
    }
    fn time_range(&self) -> (i64, i64) {
        self.inner.time_range()
    }
    fn external_labels(&self) -> &Labels {
        &self.ext
    }
}

fn up(job: &str) -> Labels {
    l(&[("__name__", "up"), ("job", job)])
}

fn two_sites() -> (Arc<TestSource>, Arc<TestSource>, Fanout) {
    let eu = TestSource::new(
        &[("site", "eu")],
        vec![(up("a"), vec![0, 10], vec![1.0, 1.0]), (up("c"), vec![0], vec![3.0])],
    );
    let us = TestSource::new(&[("site", "us")], vec![(up("b"), vec![100, 200], vec![2.0, 2.0])]);
    let set = StaticMembers(vec![("eu".into(), eu.clone() as _), ("us".into(), us.clone() as _)]);
    (eu, us, Fanout::new(Arc::new(set), FanoutOptions::default()))
}

async fn select(src: &dyn SeriesSource, req: &SelectRequest) -> Result<Vec<(Labels, Vec<i64>, Vec<f64>)>> {
    let mut out = Vec::new();
    let mut s = src.select(req).await?;
    while let Some(b) = s.next().await {
        out.extend(b?.to_series());
    }
    Ok(out)
}

#[tokio::test]
async fn merges_members_in_label_order() -> Result<()> {
    let (_, _, fan) = two_sites();
    let got = select(&fan, &SelectRequest::all()).await?;
    let names: Vec<String> = got.iter().map(|s| s.0.to_string()).collect();
    assert_eq!(
        names,
        [
            r#"{__name__="up", job="a", site="eu"}"#,
            r#"{__name__="up", job="b", site="us"}"#,
            r#"{__name__="up", job="c", site="eu"}"#
        ]
    );
    assert_eq!(fan.label_values("site", &[]).await?, ["eu", "us"]);
    assert_eq!(fan.label_sets().await, [l(&[("site", "eu")]), l(&[("site", "us")])]);
    assert_eq!(fan.time_range(), (0, 200));
    Ok(())
}

#[tokio::test]
async fn prunes_by_external_labels_and_time() -> Result<()> {
    let (eu, us, fan) = two_sites();
    let mut req = SelectRequest::all();
    req.matchers = vec![Matcher::equal("site", "us")];
    assert_eq!(select(&fan, &req).await?.len(), 1);
    assert_eq!((eu.selects.load(Ordering::SeqCst), us.selects.load(Ordering::SeqCst)), (0, 1));
    // A matcher on a label no member carries externally prunes nothing.
    let mut req = SelectRequest::all();
    req.matchers = vec![Matcher::equal("job", "a")];
    assert_eq!(select(&fan, &req).await?.len(), 1);
    assert_eq!((eu.selects.load(Ordering::SeqCst), us.selects.load(Ordering::SeqCst)), (1, 2));
    // Time: eu holds [0, 10] only.
    let mut req = SelectRequest::all();
    req.min_time = 50;
    assert_eq!(select(&fan, &req).await?.len(), 1);
    assert_eq!((eu.selects.load(Ordering::SeqCst), us.selects.load(Ordering::SeqCst)), (1, 3));
    Ok(())
}

#[tokio::test]
async fn failing_member_warns_or_aborts() -> Result<()> {
    let (eu, _, fan) = two_sites();
    eu.fail.store(true, Ordering::SeqCst);
    let req = SelectRequest::all();
    let got = select(&fan, &req).await?;
    assert_eq!(got.len(), 1, "us still answers");
    assert_eq!(req.warnings.get(), ["eu: connection refused"]);

    let abort = fan.with_partial_response(PartialResponse::Abort);
    let err = select(&abort, &SelectRequest::all()).await.err().map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("eu: connection refused"));

    let w = Warnings::default();
    assert_eq!(fan.with_warnings(w.clone()).label_names(&[]).await?, ["__name__", "job", "site"]);
    assert_eq!(w.get(), ["eu: connection refused"]);
    assert!(abort.label_values("job", &[]).await.is_err());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn response_timeout_turns_a_hanging_member_into_a_warning() -> Result<()> {
    let (_, us, fan) = two_sites();
    us.hang.store(true, Ordering::SeqCst);
    let opts = FanoutOptions { response_timeout: Some(Duration::from_millis(500)), ..Default::default() };
    let fan = Fanout::new(fan.set.clone(), opts);
    let req = SelectRequest::all();
    let got = select(&fan, &req).await?;
    assert_eq!(got.len(), 2);
    assert_eq!(req.warnings.get(), ["us: no data within the response timeout of 500ms"]);
    let w = Warnings::default();
    assert_eq!(fan.with_warnings(w.clone()).label_values("job", &[]).await?, ["a", "c"]);
    assert_eq!(w.get(), ["us: no answer within the response timeout of 500ms"]);
    Ok(())
}

/// Endpoints over test sources; an address whose source is "down" fails Info.
#[derive(Debug)]
struct TestConnector(BTreeMapSources);
type BTreeMapSources = std::collections::BTreeMap<String, Arc<TestSource>>;

#[derive(Debug)]
struct TestEndpoint(Arc<TestSource>);

#[async_trait]
impl Endpoint for TestEndpoint {
    async fn info(&self) -> Result<EndpointInfo> {
        self.0.trouble().await?;
        let (min_time, max_time) = self.0.time_range();
        Ok(EndpointInfo { label_sets: vec![self.0.ext.clone()], min_time, max_time })
    }
    fn source(&self, _: &MemberContext) -> Arc<dyn SeriesSource> {
        self.0.clone()
    }
}

#[async_trait]
impl Connector for TestConnector {
    async fn connect(&self, address: &str) -> Result<Arc<dyn Endpoint>> {
        let s = self.0.get(address).ok_or_else(|| Error::Unavailable(format!("no such host {address}")))?;
        Ok(Arc::new(TestEndpoint(s.clone())))
    }
}

#[tokio::test(start_paused = true)]
async fn unhealthy_endpoints_warn_until_the_unhealthy_timeout() -> Result<()> {
    let (eu, us, _) = two_sites();
    let conn = TestConnector([("eu:1".to_string(), eu.clone()), ("us:1".to_string(), us.clone())].into());
    let specs = ["eu:1", "us:1", "gone:1"]
        .iter()
        .map(|s| discovery::EndpointSpec::parse(s))
        .collect::<Result<_>>()?;
    let opts = EndpointSetOptions { unhealthy_timeout: Duration::from_secs(60), ..Default::default() };
    let set = Arc::new(EndpointSet::new(specs, Arc::new(conn), opts));
    set.refresh().await;
    let fan = Fanout::new(set.clone(), FanoutOptions::default());
    let req = SelectRequest::all();
    assert_eq!(select(&fan, &req).await?.len(), 3);
    assert_eq!(req.warnings.get(), ["gone:1: endpoint unhealthy: no such host gone:1"]);
    assert_eq!(fan.label_sets().await, [l(&[("site", "eu")]), l(&[("site", "us")])]);

    eu.fail.store(true, Ordering::SeqCst);
    set.refresh().await;
    let eu_before = eu.selects.load(Ordering::SeqCst);
    let req = SelectRequest::all();
    assert_eq!(select(&fan, &req).await?.len(), 1);
    assert_eq!(eu.selects.load(Ordering::SeqCst), eu_before, "an unhealthy endpoint is not queried");
    assert_eq!(
        req.warnings.get(),
        ["eu:1: endpoint unhealthy: connection refused", "gone:1: endpoint unhealthy: no such host gone:1"]
    );
    // Pruned by its last known labels: no warning for a query of the other site.
    let mut req = SelectRequest::all();
    req.matchers = vec![Matcher::equal("site", "us")];
    select(&fan, &req).await?;
    assert_eq!(req.warnings.get(), ["gone:1: endpoint unhealthy: no such host gone:1"]);

    // Past the unhealthy timeout both are dropped silently; a recovered one comes back.
    tokio::time::advance(Duration::from_secs(61)).await;
    set.refresh().await;
    let req = SelectRequest::all();
    assert_eq!(select(&fan, &req).await?.len(), 1);
    assert!(req.warnings.get().is_empty());
    eu.fail.store(false, Ordering::SeqCst);
    set.refresh().await;
    assert_eq!(select(&fan, &SelectRequest::all()).await?.len(), 3);
    let status = set.status();
    assert_eq!(status.iter().filter(|s| s.last_error.is_none()).count(), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn one_member_streams_through_with_the_same_failure_handling() -> Result<()> {
    let (eu, _, _) = two_sites();
    let opts = FanoutOptions { response_timeout: Some(Duration::from_millis(500)), ..Default::default() };
    let fan = Fanout::new(Arc::new(StaticMembers(vec![("eu".into(), eu.clone() as _)])), opts);
    assert_eq!(select(&fan, &SelectRequest::all()).await?.len(), 2);

    eu.fail.store(true, Ordering::SeqCst);
    let req = SelectRequest::all();
    assert!(select(&fan, &req).await?.is_empty());
    assert_eq!(req.warnings.get(), ["eu: connection refused"]);
    let abort = fan.with_partial_response(PartialResponse::Abort);
    assert!(select(&abort, &SelectRequest::all()).await.is_err());

    eu.fail.store(false, Ordering::SeqCst);
    eu.hang.store(true, Ordering::SeqCst);
    let req = SelectRequest::all();
    assert!(select(&fan, &req).await?.is_empty());
    assert_eq!(req.warnings.get(), ["eu: no answer within the response timeout of 500ms"]);
    Ok(())
}

/// Members as given.
#[derive(Debug)]
struct Fixed(Vec<Member>);

impl MemberSet for Fixed {
    fn members(&self, _: &MemberContext) -> Vec<Member> {
        self.0.clone()
    }
}

#[tokio::test]
async fn the_only_member_unhealthy_gives_a_warning() -> Result<()> {
    let down = Member {
        name: "x:1".into(),
        source: None,
        problem: Some("endpoint unhealthy: refused".into()),
        label_sets: Vec::new(),
        min_time: i64::MIN,
        max_time: i64::MAX,
    };
    let fan = Fanout::new(Arc::new(Fixed(vec![down])), FanoutOptions::default());
    let req = SelectRequest::all();
    assert!(select(&fan, &req).await?.is_empty());
    assert_eq!(req.warnings.get(), ["x:1: endpoint unhealthy: refused"]);
    assert!(select(&fan.with_partial_response(PartialResponse::Abort), &SelectRequest::all()).await.is_err());
    // Behind a StoreAPI server: the select ends with the failure as an error item.
    let req = SelectRequest::all();
    let mut s = fan.for_store_api().select(&req).await?;
    let mut items = Vec::new();
    while let Some(i) = s.next().await {
        items.push(i.map(|b| b.labels.len()).map_err(|e| e.to_string()));
    }
    assert_eq!(items, [Err("x:1: endpoint unhealthy: refused".to_string())]);
    Ok(())
}

/// One batch, then silence.
#[derive(Debug)]
struct Stall(Labels);

#[async_trait]
impl SeriesSource for Stall {
    async fn select(&self, _: &SelectRequest) -> Result<SeriesStream> {
        let first = SeriesBatch::from_series(vec![(up("a"), vec![1], vec![1.0])]);
        Ok(Box::pin(futures::stream::iter([first]).chain(futures::stream::pending())))
    }
    async fn label_names_between(&self, _: &[Matcher], _: i64, _: i64) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    async fn label_values_between(&self, _: &str, _: &[Matcher], _: i64, _: i64) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    fn time_range(&self) -> (i64, i64) {
        (0, 10)
    }
    fn external_labels(&self) -> &Labels {
        &self.0
    }
}

#[tokio::test(start_paused = true)]
async fn a_member_stalling_mid_stream_hits_the_response_timeout() -> Result<()> {
    let opts = FanoutOptions { response_timeout: Some(Duration::from_millis(500)), ..Default::default() };
    let set = StaticMembers(vec![("slow".into(), Arc::new(Stall(Labels::default())) as _)]);
    let fan = Fanout::new(Arc::new(set), opts);
    let req = SelectRequest::all();
    assert_eq!(select(&fan, &req).await?.len(), 1, "the batch before the stall is kept");
    assert_eq!(req.warnings.get(), ["slow: no data within the response timeout of 500ms"]);
    assert!(select(&fan.with_partial_response(PartialResponse::Abort), &SelectRequest::all()).await.is_err());
    Ok(())
}
