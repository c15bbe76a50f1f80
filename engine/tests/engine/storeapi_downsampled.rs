//! Downsampled data over the StoreAPI: a server over a bucket of raw, 5m and 1h blocks
//! (the [`BucketView`] as its [`PieceSource`]) sends aggregate chunks; the client decodes
//! them, and PromQL through the wire answers exactly what it answers in-process, at every
//! resolution. Also: only the requested aggregates travel, the coarsest resolution allowed is
//! chosen with gaps filled from finer blocks, and Info covers every resolution.

use super::compact::{H, labels, memory_bucket, put_aggr_ext, put_raw, runtime};
use promlake_engine::compact::downsample::{downsample_aggr, downsample_raw};
use promlake_engine::downsampled::raw_to_aggr;
use promlake_engine::downsampled::{BucketView, PieceSource};
use promlake_engine::parquet::{RES_1H, RES_5M};
use promlake_engine::promql::{Engine, QueryOptions, Value};
use promlake_engine::storeapi::{self, ClientOptions, StoreClient, StoreServerOptions};
use promlake_engine::{Labels, MatchOp, Matcher, SelectHints, SelectRequest};
use promlake_proto::thanos::{self as pb, LabelMatcher, SeriesRequest, series_response};
use std::sync::Arc;

/// 2d-aligned start (ms).
const START: i64 = 1_700_006_400_000;

/// A bucket: raw 0-48h with its 5m block, a 1h block of 0-24h, raw 48-50h (the gap).
/// Returns the raw samples of the two series (gauge `g`, counter `c_total`).
fn bucket(rt: &tokio::runtime::Runtime) -> promlake_engine::Bucket {
    let bucket = memory_bucket();
    let n = 50 * 60;
    let ts: Vec<i64> = (0..n).map(|i| START + i * 60_000 + 7_000).collect();
    let gauge: Vec<f64> = (0..n).map(|i| ((i as f64) / 40.0).sin() * 10.0 + (i % 7) as f64).collect();
    let mut c = 0.0;
    let counter: Vec<f64> = (0..n)
        .map(|i| {
            c = if i % 1000 == 999 { 3.0 } else { c + (i % 13) as f64 };
            c
        })
        .collect();
    let ext = [("cluster", "eu")];
    let g = labels(&[("__name__", "g")]);
    let ctr = labels(&[("__name__", "c_total")]);
    let cut = 48 * 60;
    let series = |a: usize, b: usize| {
        // Block order: c_total before g.
        vec![
            (ctr.clone(), ts[a..b].to_vec(), counter[a..b].to_vec()),
            (g.clone(), ts[a..b].to_vec(), gauge[a..b].to_vec()),
        ]
    };
    put_raw(rt, &bucket, (START, START + 48 * H), 3, &[], &ext, series(0, cut));
    put_raw(rt, &bucket, (START + 48 * H, START + 50 * H), 1, &[], &ext, series(cut, n as usize));
    let five: Vec<(Labels, _)> =
        series(0, cut).into_iter().map(|(l, t, v)| (l, downsample_raw(&t, &v, RES_5M).unwrap())).collect();
    let day = 24 * 12;
    let hour: Vec<(Labels, _)> = five
        .iter()
        .map(|(l, s)| {
            let mut first = s.clone();
            for v in [&mut first.sum, &mut first.min, &mut first.max, &mut first.counter] {
                v.truncate(day);
            }
            first.ts.truncate(day);
            first.count.truncate(day);
            (l.clone(), downsample_aggr(&first, RES_1H).unwrap())
        })
        .collect();
    put_aggr_ext(rt, &bucket, (START, START + 48 * H), RES_5M, &ext, five);
    put_aggr_ext(rt, &bucket, (START, START + 24 * H), RES_1H, &ext, hour);
    bucket
}

struct Served {
    addr: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(view: Arc<BucketView>) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let opts =
        StoreServerOptions { downsampled: Some(view.clone() as Arc<dyn PieceSource>), ..Default::default() };
    let routes = storeapi::routes(view, opts);
    tokio::spawn(async move {
        storeapi::serve(listener, routes, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Served { addr, _stop: tx }
}

fn matrix(v: Value) -> Vec<(String, Vec<(i64, f64)>)> {
    match v {
        Value::Matrix(m) => m.into_iter().map(|s| (s.labels.to_string(), s.points)).collect(),
        other => panic!("not a matrix: {other:?}"),
    }
}

#[test]
fn promql_through_the_wire_equals_in_process_at_every_resolution() {
    let rt = runtime();
    let bucket = bucket(&rt);
    let view = Arc::new(rt.block_on(BucketView::open(bucket)).unwrap());
    let served = rt.block_on(serve(view.clone()));
    let client = rt.block_on(StoreClient::connect(&served.addr, ClientOptions::default())).unwrap();

    // Info covers every resolution and names the blocks' external labels.
    let info = rt.block_on(client.info()).unwrap();
    assert_eq!((info.min_time, info.max_time), (START, START + 50 * H));
    assert_eq!(info.label_sets, vec![Labels::from_pairs([("cluster", "eu")])]);

    let (from, to, step) = (START + 2 * H, START + 50 * H, H);
    let mut compared = 0;
    for res in [0, RES_5M, RES_1H] {
        let engine = Engine::new(QueryOptions {
            max_resolution_ms: res,
            lookback_delta_ms: 300_000.max(res),
            ..Default::default()
        });
        for q in [
            "count_over_time(g[1h])",
            "min_over_time(g[2h])",
            "max_over_time(g[1h])",
            "sum_over_time(g[1h])",
            "avg_over_time(g[3h])",
            "g",
            "rate(c_total[2h])",
            "increase(c_total[3h])",
        ] {
            let local = matrix(rt.block_on(engine.range(view.as_ref(), q, from, to, step)).unwrap());
            let remote = matrix(rt.block_on(engine.range(&client, q, from, to, step)).unwrap());
            assert!(!local.is_empty() && local[0].1.len() > 40, "{q} at {res}: {local:?}");
            assert_eq!(remote, local, "{q} at resolution {res}");
            compared += 1;
        }
        // count_over_time tells the resolution read: 60 raw samples, 12 5m windows or one 1h
        // window per hour in the first day (the 1h block), then 12 (5m), then 60 (raw gap).
        let counts =
            matrix(rt.block_on(engine.range(&client, "count_over_time(g[1h])", from, to, step)).unwrap());
        let at = |t: i64| counts[0].1.iter().find(|p| p.0 == t).unwrap().1;
        let expect = match res {
            0 => (60.0, 60.0, 60.0),
            RES_5M => (12.0, 12.0, 60.0),
            _ => (1.0, 12.0, 60.0),
        };
        assert_eq!((at(START + 12 * H), at(START + 36 * H), at(START + 50 * H)), expect, "resolution {res}");
    }
    assert_eq!(compared, 24);
    // Across the 1h → 5m → raw joins the counter stays continuous: read as `rate` reads it
    // at 1h, it never drops and ends at the reset-adjusted total of the raw samples.
    let select = |res: i64, func: &str| {
        let mut req = SelectRequest::all();
        req.matchers = vec![Matcher::new(MatchOp::Equal, "__name__", "c_total").unwrap()];
        req.hints = SelectHints { func: Some(func.into()), max_resolution_ms: res, ..Default::default() };
        let got = rt.block_on(super::collect(&client, &req));
        assert_eq!(got.len(), 1);
        got.into_iter().next().unwrap()
    };
    let (_, raw_ts, raw_vals) = select(0, "rate");
    let want = raw_to_aggr(&raw_ts, &raw_vals).counter.last().copied().unwrap();
    let (_, ts, vals) = select(RES_1H, "rate");
    assert!(ts.len() < raw_ts.len() / 4);
    assert!(vals.windows(2).all(|w| w[1] >= w[0]), "{vals:?}");
    assert_eq!(vals.last().copied(), Some(want));
}

#[test]
fn series_sends_only_the_requested_aggregates_and_raw_chunks_for_gaps() {
    let rt = runtime();
    let bucket = bucket(&rt);
    let view = Arc::new(rt.block_on(BucketView::open(bucket)).unwrap());
    let served = rt.block_on(serve(view));
    let client = rt.block_on(StoreClient::connect(&served.addr, ClientOptions::default())).unwrap();
    let frames = |window: i64, aggregates: Vec<pb::Aggr>| -> Vec<pb::Series> {
        rt.block_on(async {
            let mut s = client
                .series(SeriesRequest {
                    min_time: START,
                    max_time: START + 50 * H,
                    matchers: vec![LabelMatcher { r#type: 0, name: "__name__".into(), value: "g".into() }],
                    max_resolution_window: window,
                    aggregates: aggregates.into_iter().map(|a| a as i32).collect(),
                    ..Default::default()
                })
                .await
                .unwrap();
            let mut out = Vec::new();
            while let Some(f) = s.message().await.unwrap() {
                if let Some(series_response::Result::Series(s)) = f.result {
                    out.push(s);
                }
            }
            out
        })
    };
    // 5m: 48h of windows as aggregate chunks carrying only `min`, then raw chunks for 48-50h.
    let got = frames(RES_5M, vec![pb::Aggr::Min]);
    assert_eq!(got.len(), 1);
    let chunks = &got[0].chunks;
    let (aggr, raw): (Vec<_>, Vec<_>) = chunks.iter().partition(|c| c.raw.is_none());
    assert_eq!(aggr.len(), (48 * 12usize).div_ceil(120));
    assert!(
        aggr.iter().all(|c| c.min.is_some() && c.count.is_none() && c.sum.is_none() && c.counter.is_none())
    );
    assert!(aggr.iter().all(|c| c.max_time < START + 48 * H));
    assert_eq!(raw.len(), 1, "120 raw samples of 48-50h");
    assert!(raw[0].min_time >= START + 48 * H);
    let decoded = storeapi::decode_pieces(chunks).unwrap();
    assert_eq!(decoded.len(), 2);
    // 1h: the first day from the 1h block (24 windows), the second from the 5m block (288
    // windows and the one before them, which the client rebases the counter on).
    let got = frames(RES_1H, vec![pb::Aggr::Count, pb::Aggr::Sum]);
    let windows: Vec<usize> = got[0]
        .chunks
        .iter()
        .filter(|c| c.raw.is_none())
        .map(|c| {
            u16::from_be_bytes([c.count.as_ref().unwrap().data[0], c.count.as_ref().unwrap().data[1]])
                as usize
        })
        .collect();
    assert_eq!(windows.iter().sum::<usize>(), 24 + 24 * 12 + 1);
    // Raw only: raw chunks, aggregates ignored.
    let got = frames(0, vec![pb::Aggr::Min]);
    assert!(got[0].chunks.iter().all(|c| c.raw.is_some() && c.min.is_none()));
}
