//! Evaluator tests: real queries over a [`MemorySource`] with expected values.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use super::{Engine, PromqlError, QueryOptions, Value};
use crate::Labels;
use crate::memory::MemorySource;

const M: i64 = 60_000;

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())))
}

/// `http_requests{job, instance}` every 5m from 0 to 50m with values i*step*mult.
fn source() -> MemorySource {
    let mut series = Vec::new();
    for (job, inst, mult) in [("api", "0", 1.0), ("api", "1", 2.0), ("web", "0", 3.0), ("web", "1", 4.0)] {
        let ts: Vec<i64> = (0..=10).map(|i| i * 5 * M).collect();
        let vs: Vec<f64> = (0..=10).map(|i| i as f64 * 10.0 * mult).collect();
        series.push((l(&[("__name__", "http_requests"), ("job", job), ("instance", inst)]), ts, vs));
    }
    // A series that goes stale at 20m.
    series.push((
        l(&[("__name__", "flappy")]),
        vec![0, 10 * M, 20 * M],
        vec![1.0, 2.0, f64::from_bits(super::selector::STALE_NAN_BITS)],
    ));
    MemorySource::new(series)
}

async fn instant(q: &str, t: i64) -> Result<Value, PromqlError> {
    Engine::new(QueryOptions::default()).instant(&source(), q, t).await
}

fn vector(v: Value) -> Vec<(String, f64)> {
    match v {
        Value::Vector(s) => s.into_iter().map(|s| (s.labels.to_string(), s.v)).collect(),
        other => panic!("not a vector: {other:?}"),
    }
}

#[tokio::test]
async fn selectors_lookback_staleness_offset_at() {
    let v = vector(instant(r#"http_requests{job="api"}"#, 52 * M).await.unwrap());
    assert_eq!(
        v,
        [
            (r#"{__name__="http_requests", instance="0", job="api"}"#.into(), 100.0),
            (r#"{__name__="http_requests", instance="1", job="api"}"#.into(), 200.0)
        ]
    );
    // Lookback is 5m, left-open: at 56m nothing from 50m... still within (51m, 56m]? no.
    assert!(vector(instant("http_requests", 56 * M).await.unwrap()).is_empty());
    assert_eq!(
        vector(instant(r#"http_requests{instance="0",job="api"} offset 10m"#, 50 * M).await.unwrap())[0].1,
        80.0
    );
    assert_eq!(
        vector(instant(r#"http_requests{instance="0",job="api"} offset -10m"#, 30 * M).await.unwrap())[0].1,
        80.0
    );
    assert_eq!(
        vector(instant(r#"http_requests{instance="0",job="api"} @ 100"#, 50 * M).await.unwrap())[0].1,
        0.0
    );
    assert_eq!(
        vector(instant(r#"http_requests{instance="0",job="api"} @ end()"#, 25 * M).await.unwrap())[0].1,
        50.0
    );
    // Staleness: gone at 20m even though lookback would reach 10m.
    assert_eq!(vector(instant("flappy", 14 * M).await.unwrap())[0].1, 2.0);
    assert!(vector(instant("flappy", 21 * M).await.unwrap()).is_empty());
    // Matrix selector: left-open window.
    match instant(r#"http_requests{instance="0",job="api"}[10m]"#, 50 * M).await.unwrap() {
        Value::Matrix(m) => assert_eq!(m[0].points, [(45 * M, 90.0), (50 * M, 100.0)]),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn binary_operators_and_matching() {
    let v = vector(instant(r#"http_requests{job="api"} * 2"#, 50 * M).await.unwrap());
    assert_eq!(v[0], (r#"{instance="0", job="api"}"#.into(), 200.0));
    let v = vector(instant(r#"http_requests > 250"#, 50 * M).await.unwrap());
    assert_eq!(v.len(), 2);
    assert!(v[0].0.contains("__name__"));
    let v = vector(instant(r#"http_requests > bool 250"#, 50 * M).await.unwrap());
    assert_eq!(v.iter().map(|x| x.1).collect::<Vec<_>>(), [0.0, 1.0, 0.0, 1.0]);
    let v = vector(
        instant(r#"http_requests / on(job) group_left sum by (job) (http_requests)"#, 50 * M).await.unwrap(),
    );
    assert_eq!(v[0], (r#"{instance="0", job="api"}"#.into(), 100.0 / 300.0));
    let err = instant(r#"http_requests / on(job) http_requests"#, 50 * M).await.unwrap_err();
    assert!(err.to_string().contains("many-to-many matching not allowed"), "{err}");
    // The series in the message are shown as Prometheus shows them: a function dropped the name.
    let err = instant(r#"http_requests / on(job) abs(http_requests)"#, 50 * M).await.unwrap_err().to_string();
    assert!(err.contains(r#"[{instance="0", job="api"}, {instance="1", job="api"}]"#), "{err}");
    // 3.x: many-to-one matching is an error even where a comparison filters pairs away.
    for op in ["==", "+"] {
        let q = format!("http_requests {op} ignoring(instance) max by (job) (http_requests)");
        let err = instant(&q, 50 * M).await.unwrap_err().to_string();
        assert!(err.contains("many-to-one matching must be explicit"), "{q}: {err}");
    }
    let v =
        vector(instant(r#"http_requests{job="api"} or http_requests{instance="1"}"#, 50 * M).await.unwrap());
    assert_eq!(v.len(), 3);
    let v =
        vector(instant(r#"http_requests unless on(job) http_requests{job="web"}"#, 50 * M).await.unwrap());
    assert_eq!(v.len(), 2);
    match instant("1 + 2 * 3 ^ 2", 0).await.unwrap() {
        Value::Scalar { v, .. } => assert_eq!(v, 19.0),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn aggregations() {
    let v = vector(instant("sum by (job) (http_requests)", 50 * M).await.unwrap());
    assert_eq!(v, [(r#"{job="api"}"#.into(), 300.0), (r#"{job="web"}"#.into(), 700.0)]);
    let v = vector(instant("avg without (instance) (http_requests)", 50 * M).await.unwrap());
    assert_eq!(v[1].1, 350.0);
    let v = vector(instant("count(http_requests)", 50 * M).await.unwrap());
    assert_eq!(v, [("{}".into(), 4.0)]);
    let v = vector(instant("topk(2, http_requests)", 50 * M).await.unwrap());
    assert_eq!(v.iter().map(|x| x.1).collect::<Vec<_>>(), [400.0, 300.0]);
    let v = vector(instant("quantile(0.5, http_requests)", 50 * M).await.unwrap());
    assert_eq!(v[0].1, 250.0);
    let v = vector(instant("stddev(http_requests)", 50 * M).await.unwrap());
    assert!((v[0].1 - 111.803_398_874_989_48).abs() < 1e-9);
    let v = vector(instant(r#"count_values("value", http_requests)"#, 50 * M).await.unwrap());
    assert_eq!(v.len(), 4);
}

#[tokio::test]
async fn range_queries_subqueries_and_functions() {
    let e = Engine::new(QueryOptions::default());
    match e.range(&source(), r#"http_requests{job="api",instance="0"}"#, 0, 10 * M, 5 * M).await.unwrap() {
        Value::Matrix(m) => {
            assert_eq!(m.len(), 1);
            assert_eq!(m[0].points, [(0, 0.0), (5 * M, 10.0), (10 * M, 20.0)]);
        }
        other => panic!("{other:?}"),
    }
    match e.range(&source(), "time()", 0, 2 * M, M).await.unwrap() {
        Value::Matrix(m) => assert_eq!(m[0].points, [(0, 0.0), (M, 60.0), (2 * M, 120.0)]),
        other => panic!("{other:?}"),
    }
    match instant(r#"http_requests{job="api",instance="0"}[10m:5m]"#, 50 * M).await.unwrap() {
        Value::Matrix(m) => assert_eq!(m[0].points, [(45 * M, 90.0), (50 * M, 100.0)]),
        other => panic!("{other:?}"),
    }
    let v = vector(instant("absent(nonexistent{job=\"x\"})", 0).await.unwrap());
    assert_eq!(v, [(r#"{job="x"}"#.into(), 1.0)]);
    let v = vector(instant("timestamp(flappy)", 14 * M).await.unwrap());
    assert_eq!(v[0].1, 600.0);
    let v = vector(instant("sort_desc(http_requests)", 50 * M).await.unwrap());
    assert_eq!(v.iter().map(|x| x.1).collect::<Vec<_>>(), [400.0, 300.0, 200.0, 100.0]);
    assert!(
        matches!(instant("scalar(http_requests)", 50 * M).await.unwrap(), Value::Scalar { v, .. } if v.is_nan())
    );
    assert!(instant("nosuchfunction(x)", 0).await.is_err());
    assert!(matches!(instant("sum(", 0).await, Err(PromqlError::BadData(_))));
    assert!(matches!(e.range(&source(), "http_requests[5m]", 0, 10, 1).await, Err(PromqlError::BadData(_))));
}

#[tokio::test]
async fn limits() {
    let e = Engine::new(QueryOptions { max_samples: 3, ..Default::default() });
    assert!(matches!(
        e.instant(&source(), "http_requests", 50 * M).await,
        Err(PromqlError::TooManySamples(_))
    ));
}

#[tokio::test]
async fn limit_and_sort_by_label() {
    let v = vector(instant("count(limitk by (job) (1, http_requests))", 50 * M).await.unwrap());
    assert_eq!(v, [("{}".into(), 2.0)]);
    // limit_ratio(r) and limit_ratio(r - 1) partition the input.
    let v = vector(
        instant("count(limit_ratio(0.3, http_requests) or limit_ratio(-0.7, http_requests))", 50 * M)
            .await
            .unwrap(),
    );
    assert_eq!(v, [("{}".into(), 4.0)]);
    let v = vector(
        instant("count(limit_ratio(0.3, http_requests) and limit_ratio(-0.7, http_requests))", 50 * M)
            .await
            .unwrap(),
    );
    assert!(v.is_empty());
    let v = vector(instant(r#"sort_by_label_desc(http_requests, "instance", "job")"#, 50 * M).await.unwrap());
    assert_eq!(v.iter().map(|x| x.1).collect::<Vec<_>>(), [400.0, 200.0, 300.0, 100.0]);
    let err = instant("topk(NaN, http_requests)", 50 * M).await.unwrap_err();
    assert_eq!(err.to_string(), "Parameter value is NaN");
}

#[tokio::test]
async fn unsupported_features_are_errors() {
    for q in [
        "histogram_count(http_requests)",
        "info(http_requests)",
        "histogram_quantiles(http_requests, \"q\", 0.5)",
    ] {
        assert!(instant(q, 0).await.is_err(), "{q}");
    }
    let e = Engine::new(QueryOptions { timeout: std::time::Duration::ZERO, ..Default::default() });
    assert!(matches!(e.instant(&source(), "http_requests", 0).await, Err(PromqlError::Timeout(_))));
}

#[test]
fn query_futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let (e, s) = (Engine::default(), source());
    is_send(&e.instant(&s, "up", 0));
    is_send(&e.range(&s, "up", 0, 1, 1));
}

/// 64 series `g{i="k"}`, one sample a minute for 10h, value `1000k + minute`: large enough
/// (64 series x 601 steps) that selectors, range functions, aggregations and binary operators
/// take their parallel paths, whose results must match the closed forms.
#[tokio::test]
async fn parallel_step_runs_match_closed_forms() {
    let series: Vec<_> = (0..64)
        .map(|k| {
            let ts: Vec<i64> = (0..=600).map(|m| m * M).collect();
            let vs: Vec<f64> = (0..=600).map(|m| (1000 * k + m) as f64).collect();
            (l(&[("__name__", "g"), ("i", &k.to_string())]), ts, vs)
        })
        .collect();
    let src = MemorySource::new(series);
    let range = |q: &'static str| {
        let src = &src;
        async move {
            match Engine::new(QueryOptions::default()).range(src, q, 0, 600 * M, M).await.unwrap() {
                Value::Matrix(m) => m,
                other => panic!("not a matrix: {other:?}"),
            }
        }
    };
    let sum = range("sum(g)").await;
    assert_eq!(sum.len(), 1);
    assert_eq!(sum[0].points.len(), 601);
    for &(t, v) in &sum[0].points {
        assert_eq!(v, (1000 * 2016 + 64 * (t / M)) as f64, "sum at {t}");
    }
    let diff = range("g - on(i) g").await;
    assert_eq!(diff.len(), 64);
    assert!(diff.iter().all(|s| s.points.len() == 601 && s.points.iter().all(|p| p.1 == 0.0)));
    let count = range("count(g > 32000)").await;
    for &(t, v) in &count[0].points {
        let want = (0..64).filter(|k| 1000 * k + t / M > 32000).count() as f64;
        assert_eq!(v, want, "count at {t}");
    }
    let rate = range("rate(g[5m])").await;
    assert_eq!(rate.len(), 64);
    for s in rate.iter().filter(|s| s.labels.get("i") != Some("0")) {
        assert_eq!(s.points.len(), 600, "{}", s.labels);
        for &(t, v) in s.points.iter().filter(|p| p.0 >= 10 * M) {
            assert!((v - 1.0 / 60.0).abs() < 1e-12, "{} at {t}: {v}", s.labels);
        }
    }
}
