//! Thanos's StoreAPI acceptance cases (`pkg/store/acceptance_test.go`, closed-box: label
//! names, label values and series over a store with external label `region="eu-west"`),
//! run over gRPC against our server on two stores: a memory source, and a bucket of two
//! Parquet blocks that differ only in their `replica` external label, asked with
//! `without_replica_labels: ["replica"]` as Thanos's bucket-store variant does.

use super::memory_bucket;
use promlake_engine::catalog::BucketSource;
use promlake_engine::memory::MemorySource;
use promlake_engine::parquet::{ParquetBlockWriter, WriterOptions};
use promlake_engine::storeapi::{self, OPEN_END, OPEN_START, StoreServerOptions};
use promlake_engine::{Labels, SeriesSource};
use promlake_proto::thanos::store_client::StoreClient as Grpc;
use promlake_proto::thanos::{
    LabelMatcher, LabelNamesRequest, LabelValuesRequest, SeriesRequest, label_matcher::Type, series_response,
};
use std::sync::Arc;

type Pairs = &'static [(&'static str, &'static str)];

struct NameCall {
    matchers: Vec<LabelMatcher>,
    end: i64,
    expected: &'static [&'static str],
}

struct ValueCall {
    label: &'static str,
    matchers: Vec<LabelMatcher>,
    end: i64,
    expected: &'static [&'static str],
}

struct SeriesCall {
    matchers: Vec<LabelMatcher>,
    skip_chunks: bool,
    expected: &'static [Pairs],
}

struct Case {
    desc: &'static str,
    /// Series and the timestamp of their one sample.
    append: Vec<(Pairs, i64)>,
    names: Vec<NameCall>,
    values: Vec<ValueCall>,
    series: Vec<SeriesCall>,
}

fn m(t: Type, name: &str, value: &str) -> LabelMatcher {
    LabelMatcher { r#type: t as i32, name: name.into(), value: value.into() }
}

fn names(matchers: Vec<LabelMatcher>, expected: &'static [&'static str]) -> NameCall {
    NameCall { matchers, end: OPEN_END, expected }
}

fn values(label: &'static str, matchers: Vec<LabelMatcher>, expected: &'static [&'static str]) -> ValueCall {
    ValueCall { label, matchers, end: OPEN_END, expected }
}

fn series(matchers: Vec<LabelMatcher>, expected: &'static [Pairs]) -> SeriesCall {
    SeriesCall { matchers, skip_chunks: false, expected }
}

fn cases(now: i64) -> Vec<Case> {
    use Type::{Eq, Neq, Nre, Re};
    let four_hours_ago = now - 4 * 3_600_000;
    let n_series: Vec<(Pairs, i64)> = vec![
        (&[("n", "1")], 0),
        (&[("n", "1"), ("i", "a")], 0),
        (&[("n", "1"), ("i", "b")], 0),
        (&[("n", "2")], 0),
        (&[("n", "2.5")], 0),
    ];
    const IA: Pairs = &[("i", "a"), ("n", "1"), ("region", "eu-west")];
    const IB: Pairs = &[("i", "b"), ("n", "1"), ("region", "eu-west")];
    const N1: Pairs = &[("n", "1"), ("region", "eu-west")];
    const N2: Pairs = &[("n", "2"), ("region", "eu-west")];
    const N25: Pairs = &[("n", "2.5"), ("region", "eu-west")];
    vec![
        Case {
            desc: "no label in tsdb, empty results",
            append: vec![],
            names: vec![names(vec![], &[])],
            values: vec![values("foo", vec![], &[]), values("region", vec![], &["eu-west"])],
            series: vec![],
        },
        Case {
            desc: "{foo=foovalue1} 1",
            append: vec![(&[("foo", "foovalue1")], now)],
            names: vec![names(vec![], &["foo", "region"])],
            values: vec![values("foo", vec![], &["foovalue1"]), values("replica", vec![], &[])],
            series: vec![],
        },
        Case {
            desc: "{foo=foovalue1, bar=barvalue1} 1 and {foo=foovalue2} 1 and {foo=foovalue2} 1",
            append: vec![
                (&[("foo", "foovalue1")], now),
                (&[("foo", "foovalue2")], now),
                (&[("foo", "foovalue1"), ("bar", "barvalue1")], now),
            ],
            names: vec![
                names(vec![], &["bar", "foo", "region"]),
                NameCall { matchers: vec![], end: four_hours_ago, expected: &[] },
                names(vec![m(Eq, "bar", "barvalue1")], &["bar", "foo", "region"]),
                names(vec![m(Eq, "foo", "foovalue2")], &["foo", "region"]),
                names(vec![m(Eq, "bar", "different")], &[]),
                names(vec![m(Eq, "region", "eu-west")], &["bar", "foo", "region"]),
                names(vec![m(Eq, "region", "different")], &[]),
            ],
            values: vec![
                values("foo", vec![], &["foovalue1", "foovalue2"]),
                values("bar", vec![], &["barvalue1"]),
                ValueCall { label: "foo", matchers: vec![], end: four_hours_ago, expected: &[] },
                ValueCall { label: "bar", matchers: vec![], end: four_hours_ago, expected: &[] },
                values("foo", vec![m(Eq, "bar", "barvalue1")], &["foovalue1"]),
                values("foo", vec![m(Eq, "bar", "different")], &[]),
                values("region", vec![m(Eq, "__name__", "nonexistent")], &[]),
                values("region", vec![m(Eq, "region", "eu-east")], &[]),
                values("foo", vec![m(Eq, "region", "eu-west")], &["foovalue1", "foovalue2"]),
                values("bar", vec![m(Eq, "region", "eu-west")], &["barvalue1"]),
                values("foo", vec![m(Eq, "region", "different")], &[]),
                values("bar", vec![m(Eq, "region", "different")], &[]),
            ],
            series: vec![],
        },
        Case {
            desc: "conflicting internal and external labels when skipping chunks",
            append: vec![(&[("foo", "bar"), ("region", "somewhere")], 0)],
            names: vec![],
            values: vec![],
            series: vec![SeriesCall {
                matchers: vec![m(Eq, "foo", "bar")],
                skip_chunks: true,
                expected: &[&[("foo", "bar"), ("region", "eu-west")]],
            }],
        },
        Case {
            desc: "series matcher on other labels when requesting external labels",
            append: vec![
                (&[("__name__", "up"), ("foo", "bar"), ("job", "C")], 0),
                (&[("__name__", "up"), ("foo", "baz"), ("job", "C")], 0),
            ],
            names: vec![],
            values: vec![values("region", vec![m(Eq, "__name__", "up"), m(Eq, "job", "C")], &["eu-west"])],
            series: vec![],
        },
        Case {
            desc: "matching behavior",
            append: n_series,
            names: vec![],
            values: vec![],
            series: vec![
                series(vec![m(Eq, "n", "1")], &[IA, IB, N1]),
                series(vec![m(Eq, "n", "1"), m(Eq, "i", "a")], &[IA]),
                series(vec![m(Eq, "n", "1"), m(Eq, "i", "missing")], &[]),
                series(vec![m(Eq, "missing", "")], &[IA, IB, N1, N2, N25]),
                series(vec![m(Neq, "n", "1")], &[N2, N25]),
                series(vec![m(Re, "i", ".+")], &[IA, IB]),
                series(vec![m(Re, "i", ".*")], &[IA, IB, N1, N2, N25]),
                series(vec![m(Eq, "i", "")], &[N1, N2, N25]),
                series(vec![m(Neq, "i", "")], &[IA, IB]),
                series(vec![m(Neq, "missing", "")], &[]),
                series(vec![m(Eq, "n", "1"), m(Neq, "i", "a")], &[IB, N1]),
                series(vec![m(Re, "n", "^1$")], &[IA, IB, N1]),
                series(vec![m(Eq, "n", "1"), m(Re, "i", "^a$")], &[IA]),
                series(vec![m(Eq, "n", "1"), m(Re, "i", "^a?$")], &[IA, N1]),
                series(vec![m(Re, "i", "^$")], &[N1, N2, N25]),
                series(vec![m(Eq, "n", "1"), m(Re, "i", "^$")], &[N1]),
                series(vec![m(Eq, "n", "1"), m(Re, "i", "^.*$")], &[IA, IB, N1]),
                series(vec![m(Eq, "n", "1"), m(Re, "i", "^.+$")], &[IA, IB]),
                series(vec![m(Nre, "n", "^1$")], &[N2, N25]),
                series(vec![m(Nre, "n", "1")], &[N2, N25]),
                series(vec![m(Nre, "n", "1|2.5")], &[N2]),
                series(vec![m(Nre, "n", "(1|2.5)")], &[N2]),
                series(vec![m(Eq, "n", "1"), m(Nre, "i", "^a$")], &[IB, N1]),
                series(vec![m(Eq, "n", "1"), m(Nre, "i", "^a?$")], &[IB]),
                series(vec![m(Eq, "n", "1"), m(Nre, "i", "^$")], &[IA, IB]),
                series(vec![m(Eq, "n", "1"), m(Nre, "i", "^.*$")], &[]),
                series(vec![m(Eq, "n", "1"), m(Nre, "i", "^.+$")], &[N1]),
                series(vec![m(Eq, "n", "1"), m(Neq, "i", ""), m(Eq, "i", "a")], &[IA]),
                series(vec![m(Eq, "n", "1"), m(Neq, "i", "b"), m(Re, "i", "^(b|a).*$")], &[IA]),
                series(vec![m(Re, "n", "(1|2)")], &[IA, IB, N1, N2]),
                series(vec![m(Re, "i", "a|b")], &[IA, IB]),
                series(vec![m(Re, "i", "(a|b)")], &[IA, IB]),
                series(vec![m(Re, "n", "x1|2")], &[N2]),
                series(vec![m(Re, "n", "2|2\\.5")], &[N2, N25]),
                series(vec![m(Re, "i", "c||d")], &[N1, N2, N25]),
                series(vec![m(Re, "i", "(c||d)")], &[N1, N2, N25]),
            ],
        },
        Case {
            desc: "label values and names with non-equal matchers on external labels",
            append: vec![(&[("__name__", "up"), ("foo", "bar")], 0)],
            names: vec![names(vec![m(Re, "region", ".*")], &["__name__", "foo", "region"])],
            values: vec![values(
                "region",
                vec![m(Eq, "__name__", "up"), m(Re, "region", ".*")],
                &["eu-west"],
            )],
            series: vec![],
        },
        Case {
            desc: "label_values(kube_pod_info{}, pod) don't fetch postings for pod!=''",
            append: vec![
                (&[("__name__", "up"), ("pod", "pod-1")], now),
                (&[("__name__", "up"), ("pod", "pod-2")], now),
                (&[("__name__", "kube_pod_info"), ("pod", "pod-1")], now),
            ],
            names: vec![
                names(vec![m(Eq, "__name__", "kube_pod_info")], &["__name__", "pod", "region"]),
                names(vec![], &["__name__", "pod", "region"]),
            ],
            values: vec![
                values("pod", vec![m(Eq, "__name__", "kube_pod_info")], &["pod-1"]),
                values("pod", vec![], &["pod-1", "pod-2"]),
            ],
            series: vec![],
        },
    ]
}

fn to_labels(p: Pairs) -> Labels {
    Labels::from_pairs(p.iter().copied())
}

async fn run_case(case: &Case, source: Arc<dyn SeriesSource>, variant: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(storeapi::serve(
        listener,
        storeapi::routes(source, StoreServerOptions::default()),
        async {
            let _ = rx.await;
        },
    ));
    let mut grpc = Grpc::connect(format!("http://{addr}")).await.unwrap();
    let at = |what: &str| format!("{variant} / {} / {what}", case.desc);
    let replica = vec!["replica".to_string()];
    for c in &case.names {
        let req = LabelNamesRequest {
            start: OPEN_START,
            end: c.end,
            matchers: c.matchers.clone(),
            without_replica_labels: replica.clone(),
            ..Default::default()
        };
        let r = grpc.label_names(req).await.unwrap().into_inner();
        assert!(r.warnings.is_empty());
        assert_eq!(r.names, c.expected, "{}", at(&format!("label names {:?}", c.matchers)));
    }
    for c in &case.values {
        let req = LabelValuesRequest {
            label: c.label.into(),
            start: OPEN_START,
            end: c.end,
            matchers: c.matchers.clone(),
            without_replica_labels: replica.clone(),
            ..Default::default()
        };
        let r = grpc.label_values(req).await.unwrap().into_inner();
        assert!(r.warnings.is_empty());
        assert_eq!(r.values, c.expected, "{}", at(&format!("label values {} {:?}", c.label, c.matchers)));
    }
    for c in &case.series {
        let req = SeriesRequest {
            min_time: OPEN_START,
            max_time: OPEN_END,
            matchers: c.matchers.clone(),
            skip_chunks: c.skip_chunks,
            without_replica_labels: replica.clone(),
            ..Default::default()
        };
        let mut stream = grpc.series(req).await.unwrap().into_inner();
        let mut got = Vec::new();
        while let Some(f) = stream.message().await.unwrap() {
            match f.result.unwrap() {
                series_response::Result::Series(s) => {
                    assert_eq!(s.chunks.is_empty(), c.skip_chunks);
                    got.push(storeapi::labels_from_proto(&s.labels));
                }
                other => panic!("{}: unexpected frame {other:?}", at("series")),
            }
        }
        let expected: Vec<Labels> = c.expected.iter().map(|p| to_labels(p)).collect();
        assert_eq!(got, expected, "{}", at(&format!("series {:?}", c.matchers)));
    }
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test]
async fn thanos_acceptance_memory_source() {
    let now = now_ms();
    for case in cases(now) {
        let series = case.append.iter().map(|(p, t)| (to_labels(p), vec![*t], vec![1.0]));
        let source = MemorySource::new(series).with_external_labels(to_labels(&[("region", "eu-west")]));
        run_case(&case, Arc::new(source), "memory").await;
    }
}

#[tokio::test]
async fn thanos_acceptance_bucket_with_two_replicas() {
    let now = now_ms();
    for case in cases(now) {
        if case.append.is_empty() {
            continue; // As in Thanos: a bucket store cannot be built from an empty head.
        }
        let bucket = memory_bucket();
        let mut series: Vec<(Labels, i64)> = case.append.iter().map(|(p, t)| (to_labels(p), *t)).collect();
        series.sort_by(|a, b| a.0.block_order(&b.0));
        let (min, max) =
            (series.iter().map(|s| s.1).min().unwrap(), series.iter().map(|s| s.1).max().unwrap());
        for replica in ["r1", "r2"] {
            let mut w = ParquetBlockWriter::new(WriterOptions::default()).unwrap();
            for (l, t) in &series {
                w.append(l.clone(), &[*t], &[1.0]).unwrap();
            }
            let id = ulid::Ulid::generate();
            let meta = format!(
                r#"{{"ulid":"{id}","minTime":{min},"maxTime":{},"stats":{{}},"compaction":{{"level":1}},"version":1,
                "thanos":{{"labels":{{"region":"eu-west","replica":"{replica}"}},"downsample":{{"resolution":0}},"source":"test"}}}}"#,
                max + 1
            );
            let meta = promlake_compat::BlockMeta::parse("meta.json", meta.as_bytes()).unwrap();
            w.finish().unwrap().upload(&bucket, &id, meta).await.unwrap();
        }
        let source = BucketSource::open(bucket).await.unwrap();
        assert_eq!(source.block_ids().await.len(), 2);
        run_case(&case, Arc::new(source), "bucket").await;
    }
}

/// Thanos's `testStoreAPIsSeriesSplitSamplesIntoChunksWithMaxSizeOf120`.
#[tokio::test]
async fn thanos_acceptance_splits_into_chunks_of_120() {
    let base = (now_ms() - 2 * 86_400_000) / 1000 * 1000;
    let offset = 2 * i64::from(u16::MAX) + 5;
    let ts: Vec<i64> = (0..offset).map(|i| base + i).collect();
    let source = MemorySource::new([(to_labels(&[("a", "b")]), ts, vec![1.0; offset as usize])])
        .with_external_labels(to_labels(&[("region", "eu-west")]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = storeapi::routes(Arc::new(source), StoreServerOptions::default());
    tokio::spawn(storeapi::serve(listener, routes, std::future::pending()));
    let mut grpc = Grpc::connect(format!("http://{addr}")).await.unwrap();
    let req = SeriesRequest {
        min_time: base,
        max_time: base + offset,
        matchers: vec![m(Type::Eq, "a", "b"), m(Type::Eq, "region", "eu-west")],
        ..Default::default()
    };
    let mut stream = grpc.series(req).await.unwrap().into_inner();
    let mut frames = Vec::new();
    while let Some(f) = stream.message().await.unwrap() {
        frames.push(f);
    }
    assert_eq!(frames.len(), 1);
    let Some(series_response::Result::Series(s)) = &frames[0].result else { panic!("not a series frame") };
    assert_eq!(storeapi::labels_from_proto(&s.labels), to_labels(&[("a", "b"), ("region", "eu-west")]));
    assert_eq!(s.chunks.len(), 1093);
    let count = |i: usize| {
        let d = &s.chunks[i].raw.as_ref().unwrap().data;
        u16::from_be_bytes([d[0], d[1]])
    };
    assert!((0..1092).all(|i| count(i) == 120));
    assert_eq!(count(1092), 35);
}
