//! The client against a server that answers the way Thanos components may and ours never
//! does: the old `Store.Info` only (no `thanos.info.Info`), a series split over several frames
//! with overlapping chunks, batch, hints and warning frames interleaved, Prometheus label
//! order that differs from the engine's block order, and chunks reaching past the range.

use super::collect;
use futures::stream::BoxStream;
use promlake_engine::storeapi::{ClientOptions, StoreClient, encode_chunks, labels_to_proto};
use promlake_engine::{Labels, SelectRequest, SeriesSource};
use promlake_proto::thanos::store_server::{Store, StoreServer};
use promlake_proto::thanos::{
    self as pb, InfoRequest, InfoResponse, LabelNamesRequest, LabelNamesResponse, LabelSet,
    LabelValuesRequest, LabelValuesResponse, SeriesRequest, SeriesResponse, StoreType,
    series_response::Result as Frame,
};
use std::sync::{Arc, Mutex};
use tonic::{Request, Response, Status};

/// A canned StoreAPI server that records the requests it gets.
#[derive(Debug, Default)]
struct Canned {
    frames: Vec<SeriesResponse>,
    seen: Arc<Mutex<Vec<SeriesRequest>>>,
}

#[tonic::async_trait]
impl Store for Canned {
    type SeriesStream = BoxStream<'static, Result<SeriesResponse, Status>>;

    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        Ok(Response::new(InfoResponse {
            labels: vec![],
            min_time: 0,
            max_time: i64::MAX,
            store_type: StoreType::Sidecar as i32,
            label_sets: vec![LabelSet { labels: labels_to_proto(&ext()) }],
        }))
    }

    async fn series(&self, r: Request<SeriesRequest>) -> Result<Response<Self::SeriesStream>, Status> {
        self.seen.lock().unwrap().push(r.into_inner());
        Ok(Response::new(Box::pin(futures::stream::iter(self.frames.clone().into_iter().map(Ok)))))
    }

    async fn label_names(
        &self,
        _: Request<LabelNamesRequest>,
    ) -> Result<Response<LabelNamesResponse>, Status> {
        Ok(Response::new(LabelNamesResponse {
            names: vec!["__name__".into(), "cluster".into()],
            warnings: vec!["slow".into()],
            hints: None,
        }))
    }

    async fn label_values(
        &self,
        _: Request<LabelValuesRequest>,
    ) -> Result<Response<LabelValuesResponse>, Status> {
        Err(Status::unavailable("downstream gone"))
    }
}

fn ext() -> Labels {
    Labels::from_pairs([("cluster", "eu1")])
}

fn series(labels: &Labels, ts: &[i64]) -> pb::Series {
    let vals: Vec<f64> = ts.iter().map(|&t| t as f64 / 1000.0).collect();
    pb::Series { labels: labels_to_proto(labels), chunks: encode_chunks(ts, &vals) }
}

fn frame(f: Frame) -> SeriesResponse {
    SeriesResponse { result: Some(f) }
}

#[tokio::test]
async fn client_merges_split_frames_reorders_and_trims() {
    let a = Labels::from_pairs([("__name__", "up"), ("job", "a"), ("cluster", "eu1")]);
    let b = Labels::from_pairs([("__name__", "zz"), ("Alpha", "1"), ("cluster", "eu1")]);
    let first: Vec<i64> = (0..120).map(|i| i * 1000).collect();
    let second: Vec<i64> = (120..240).map(|i| i * 1000).collect();
    let mut again = series(&a, &second);
    // A chunk sent twice (the same data from two blocks) and out of time order.
    again.chunks.extend(series(&a, &first).chunks);
    let hints = prost_types::Any {
        type_url: "type.googleapis.com/hintspb.SeriesResponseHints".into(),
        value: vec![],
    };
    let canned = Canned {
        frames: vec![
            // Prometheus order: {Alpha, __name__="zz"} sorts before {__name__="up", ...}.
            frame(Frame::Batch(pb::SeriesBatch { series: vec![series(&b, &first)] })),
            frame(Frame::Hints(hints)),
            // A native histogram series: left out with a warning.
            frame(Frame::Series(pb::Series {
                labels: labels_to_proto(&Labels::from_pairs([("__name__", "hist"), ("cluster", "eu1")])),
                chunks: vec![pb::AggrChunk {
                    min_time: 0,
                    max_time: 1,
                    raw: Some(pb::Chunk {
                        r#type: pb::chunk::Encoding::Histogram as i32,
                        data: vec![0, 1, 2],
                        hash: 0,
                    }),
                    ..Default::default()
                }],
            })),
            frame(Frame::Series(series(&a, &first))),
            frame(Frame::Warning("store b:10901 is down".into())),
            frame(Frame::Series(again)),
        ],
        seen: Default::default(),
    };
    let seen = canned.seen.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Only thanos.Store: thanos.info.Info answers Unimplemented, as on Thanos before v0.25.
    let routes = tonic::service::Routes::new(StoreServer::new(canned));
    tokio::spawn(promlake_engine::storeapi::serve(listener, routes, std::future::pending()));

    let client = StoreClient::connect(&addr, ClientOptions::default()).await.unwrap();
    let info = client.cached_info().unwrap();
    assert_eq!(info.component_type, "sidecar");
    assert_eq!(info.label_sets, vec![ext()]);
    assert!(!info.supports_without_replica_labels);
    assert_eq!(client.external_labels(), &ext());
    assert_eq!(client.time_range(), (0, i64::MAX));

    let req = SelectRequest {
        min_time: 10_500,
        max_time: 200_000,
        hints: promlake_engine::SelectHints {
            func: Some("rate".into()),
            range_ms: 300_000,
            ..Default::default()
        },
        ..SelectRequest::all()
    };
    let got = collect(&client, &req).await;
    assert_eq!(got.iter().map(|s| s.0.clone()).collect::<Vec<_>>(), [a.clone(), b.clone()], "block order");
    let want: Vec<i64> = (11..=200).map(|i| i * 1000).collect();
    assert_eq!(got[0].1, want, "split frames merged, duplicate chunk once, trimmed to the range");
    assert_eq!(got[0].2, want.iter().map(|&t| t as f64 / 1000.0).collect::<Vec<_>>());
    assert_eq!(got[1].1, (11..120).map(|i| i * 1000).collect::<Vec<_>>());
    let warnings = req.warnings.get();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(warnings[0], "store b:10901 is down");
    assert!(warnings[1].contains("1 native histogram chunks left out"), "{warnings:?}");

    // What went on the wire: the range, the hints, and Thanos's aggregates for rate.
    let sent = seen.lock().unwrap().pop().unwrap();
    assert_eq!((sent.min_time, sent.max_time), (10_500, 200_000));
    let qh = sent.query_hints.unwrap();
    assert_eq!((qh.func.unwrap().name.as_str(), qh.range.unwrap().millis), ("rate", 300_000));
    assert_eq!(sent.aggregates, [pb::Aggr::Counter as i32]);
    assert_eq!(sent.partial_response_strategy, pb::PartialResponseStrategy::Warn as i32);

    // Label calls: warnings come back beside the names; errors carry the status code.
    let (names, warnings) = client.label_names_in(0, 1, &[]).await.unwrap();
    assert_eq!((names.len(), warnings), (2, vec!["slow".to_string()]));
    let err = client.label_values("job", &[]).await.unwrap_err();
    assert!(matches!(&err, promlake_engine::Error::Remote { code: tonic::Code::Unavailable, .. }), "{err}");
}
