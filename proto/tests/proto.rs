//! Wire-format and gRPC round-trip tests for the generated protobuf code.

use std::error::Error;

use futures::stream;
use promlake_proto::hintspb;
use promlake_proto::prometheus;
use promlake_proto::thanos::info::info_client::InfoClient;
use promlake_proto::thanos::info::info_server::{Info, InfoServer};
use promlake_proto::thanos::store_client::StoreClient;
use promlake_proto::thanos::store_server::{Store, StoreServer};
use promlake_proto::thanos::{self, info};
use prost::Message;
use tonic::{Request, Response, Status};

type TestResult = Result<(), Box<dyn Error>>;

fn label(name: &str, value: &str) -> thanos::Label {
    thanos::Label { name: name.to_owned(), value: value.to_owned() }
}

#[test]
fn prometheus_write_request_wire_bytes() -> TestResult {
    let req = prometheus::WriteRequest {
        timeseries: vec![prometheus::TimeSeries {
            labels: vec![prometheus::Label { name: "__name__".into(), value: "up".into() }],
            samples: vec![prometheus::Sample { value: 1.0, timestamp: 1000 }],
            exemplars: vec![],
            histograms: vec![],
        }],
        metadata: vec![prometheus::MetricMetadata {
            r#type: prometheus::metric_metadata::MetricType::Counter as i32,
            metric_family_name: "up".into(),
            help: "h".into(),
            unit: String::new(),
        }],
    };
    let bytes = req.encode_to_vec();

    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0x0a, 30][..],                            // WriteRequest.timeseries (1, LEN) len 30
        &[0x0a, 14],                                // TimeSeries.labels (1, LEN) len 14
        &[0x0a, 8], b"__name__",                    //   Label.name (1, LEN)
        &[0x12, 2], b"up",                          //   Label.value (2, LEN)
        &[0x12, 12],                                // TimeSeries.samples (2, LEN) len 12
        &[0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f],      //   Sample.value (1, I64) = 1.0
        &[0x10, 0xe8, 0x07],                        //   Sample.timestamp (2, VARINT) = 1000
        &[0x1a, 9],                                 // WriteRequest.metadata (3, LEN) len 9
        &[0x08, 0x01],                              //   MetricMetadata.type (1) = COUNTER
        &[0x12, 2], b"up",                          //   metric_family_name (2)
        &[0x22, 1], b"h",                           //   help (4)
    ]
    .concat();
    assert_eq!(bytes, expected);

    let decoded = prometheus::WriteRequest::decode(bytes.as_slice())?;
    assert_eq!(decoded, req);
    Ok(())
}

#[test]
fn thanos_series_request_wire_bytes() -> TestResult {
    let req = thanos::SeriesRequest {
        min_time: 1,
        max_time: 2,
        matchers: vec![thanos::LabelMatcher {
            r#type: thanos::label_matcher::Type::Re as i32,
            name: "job".into(),
            value: "a.*".into(),
        }],
        partial_response_strategy: thanos::PartialResponseStrategy::Abort as i32,
        skip_chunks: true,
        shard_info: Some(thanos::ShardInfo { shard_index: 1, total_shards: 3, by: false, labels: vec![] }),
        without_replica_labels: vec!["replica".into()],
        limit: 10,
        response_batch_size: 5,
        ..Default::default()
    };
    let bytes = req.encode_to_vec();

    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0x08, 0x01][..],              // min_time (1) = 1
        &[0x10, 0x02],                  // max_time (2) = 2
        &[0x1a, 12],                    // matchers (3, LEN) len 12
        &[0x08, 0x02],                  //   type (1) = RE
        &[0x12, 3], b"job",             //   name (2)
        &[0x1a, 3], b"a.*",             //   value (3)
        &[0x38, 0x01],                  // partial_response_strategy (7) = ABORT
        &[0x40, 0x01],                  // skip_chunks (8) = true
        &[0x6a, 4, 0x08, 1, 0x10, 3],   // shard_info (13, LEN) {shard_index 1, total_shards 3}
        &[0x72, 7], b"replica",         // without_replica_labels (14, LEN)
        &[0x78, 10],                    // limit (15) = 10
        &[0x80, 0x01, 5],               // response_batch_size (16) = 5 (two-byte tag)
    ]
    .concat();
    assert_eq!(bytes, expected);

    let decoded = thanos::SeriesRequest::decode(bytes.as_slice())?;
    assert_eq!(decoded, req);
    Ok(())
}

#[test]
fn thanos_series_response_wire_bytes_and_hints_any() -> TestResult {
    // thanos.Chunk is {type 1, data 2, hash 3}, unlike prometheus.Chunk.
    let resp = thanos::SeriesResponse {
        result: Some(thanos::series_response::Result::Series(thanos::Series {
            labels: vec![label("a", "b")],
            chunks: vec![thanos::AggrChunk {
                min_time: 1,
                max_time: 2,
                raw: Some(thanos::Chunk {
                    r#type: thanos::chunk::Encoding::Xor as i32,
                    data: vec![1, 2],
                    hash: 7,
                }),
                ..Default::default()
            }],
        })),
    };
    let bytes = resp.encode_to_vec();

    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0x0a, 22][..],                          // SeriesResponse.series (1, LEN)
        &[0x0a, 6, 0x0a, 1, b'a', 0x12, 1, b'b'], // Series.labels (1)
        &[0x12, 12],                              // Series.chunks (2, LEN)
        &[0x08, 1, 0x10, 2],                      //   AggrChunk.min_time (1), max_time (2)
        &[0x1a, 6],                               //   AggrChunk.raw (3, LEN)
        &[0x12, 2, 1, 2],                         //     Chunk.data (2); type XOR=0 omitted
        &[0x18, 7],                               //     Chunk.hash (3)
    ]
    .concat();
    assert_eq!(bytes, expected);
    assert_eq!(thanos::SeriesResponse::decode(bytes.as_slice())?, resp);

    // The oneof `batch` variant is field 4 and `warning` is field 2.
    let warning =
        thanos::SeriesResponse { result: Some(thanos::series_response::Result::Warning("w".into())) };
    assert_eq!(warning.encode_to_vec(), [0x12, 1, b'w']);
    let batch = thanos::SeriesResponse {
        result: Some(thanos::series_response::Result::Batch(thanos::SeriesBatch { series: vec![] })),
    };
    assert_eq!(batch.encode_to_vec(), [0x22, 0]);

    // hintspb messages travel inside google.protobuf.Any.
    let hints = hintspb::SeriesRequestHints {
        block_matchers: vec![thanos::LabelMatcher {
            r#type: thanos::label_matcher::Type::Eq as i32,
            name: "__block_id".into(),
            value: "01ABC".into(),
        }],
        enable_query_stats: true,
    };
    let req = thanos::SeriesRequest {
        hints: Some(prost_types::Any {
            type_url: "type.googleapis.com/hintspb.SeriesRequestHints".into(),
            value: hints.encode_to_vec(),
        }),
        ..Default::default()
    };
    let bytes = req.encode_to_vec();
    assert_eq!(bytes[0], 0x4a, "hints is field 9, LEN");
    let any = thanos::SeriesRequest::decode(bytes.as_slice())?.hints.ok_or("hints missing")?;
    assert_eq!(any.type_url, "type.googleapis.com/hintspb.SeriesRequestHints");
    assert_eq!(hintspb::SeriesRequestHints::decode(any.value.as_slice())?, hints);
    Ok(())
}

#[test]
fn info_and_remote_read_field_numbers() -> TestResult {
    let resp = info::InfoResponse {
        component_type: "store".into(),
        store: Some(info::StoreInfo { supports_without_replica_labels: true, ..Default::default() }),
        ..Default::default()
    };
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0x12, 5][..], b"store", // ComponentType (2)
        &[0x1a, 2, 0x28, 1],      // store (3) { supports_without_replica_labels (5) = true }
    ]
    .concat();
    assert_eq!(resp.encode_to_vec(), expected);

    let read = prometheus::ReadRequest {
        queries: vec![prometheus::Query {
            start_timestamp_ms: 1,
            end_timestamp_ms: 2,
            matchers: vec![],
            hints: None,
        }],
        accepted_response_types: vec![prometheus::read_request::ResponseType::StreamedXorChunks as i32],
    };
    // queries (1) {1: 1, 2: 2}; accepted_response_types (2) packed [1].
    assert_eq!(read.encode_to_vec(), [0x0a, 4, 0x08, 1, 0x10, 2, 0x12, 1, 1]);
    let chunk = prometheus::Chunk {
        min_time_ms: 1,
        max_time_ms: 2,
        r#type: prometheus::chunk::Encoding::Xor as i32,
        data: vec![9],
    };
    assert_eq!(chunk.encode_to_vec(), [0x08, 1, 0x10, 2, 0x18, 1, 0x22, 1, 9]);
    let chunked = prometheus::ChunkedReadResponse {
        chunked_series: vec![prometheus::ChunkedSeries { labels: vec![], chunks: vec![chunk] }],
        query_index: 3,
    };
    let bytes = chunked.encode_to_vec();
    assert_eq!(prometheus::ChunkedReadResponse::decode(bytes.as_slice())?, chunked);
    Ok(())
}

/// A StoreAPI serving two fixed series whose `job` label echoes the request's first matcher.
#[derive(Debug)]
struct TestStore;

#[tonic::async_trait]
impl Store for TestStore {
    async fn info(
        &self,
        _request: Request<thanos::InfoRequest>,
    ) -> Result<Response<thanos::InfoResponse>, Status> {
        Ok(Response::new(thanos::InfoResponse {
            labels: vec![],
            min_time: 100,
            max_time: i64::MAX,
            store_type: thanos::StoreType::Store as i32,
            label_sets: vec![thanos::LabelSet { labels: vec![label("cluster", "eu")] }],
        }))
    }

    type SeriesStream = stream::Iter<std::vec::IntoIter<Result<thanos::SeriesResponse, Status>>>;

    async fn series(
        &self,
        request: Request<thanos::SeriesRequest>,
    ) -> Result<Response<Self::SeriesStream>, Status> {
        let req = request.into_inner();
        let job = req
            .matchers
            .first()
            .map(|m| m.value.clone())
            .ok_or_else(|| Status::invalid_argument("no matchers"))?;
        let frames = ["a", "b"]
            .into_iter()
            .map(|instance| {
                Ok(thanos::SeriesResponse {
                    result: Some(thanos::series_response::Result::Series(thanos::Series {
                        labels: vec![
                            label("__name__", "up"),
                            label("instance", instance),
                            label("job", &job),
                        ],
                        chunks: vec![thanos::AggrChunk {
                            min_time: req.min_time,
                            max_time: req.max_time,
                            raw: Some(thanos::Chunk {
                                r#type: thanos::chunk::Encoding::Xor as i32,
                                data: vec![0, 1, 0x3f],
                                hash: 0,
                            }),
                            ..Default::default()
                        }],
                    })),
                })
            })
            .collect::<Vec<_>>();
        Ok(Response::new(stream::iter(frames)))
    }

    async fn label_names(
        &self,
        _request: Request<thanos::LabelNamesRequest>,
    ) -> Result<Response<thanos::LabelNamesResponse>, Status> {
        Ok(Response::new(thanos::LabelNamesResponse {
            names: vec!["__name__".into(), "instance".into(), "job".into()],
            ..Default::default()
        }))
    }

    async fn label_values(
        &self,
        _request: Request<thanos::LabelValuesRequest>,
    ) -> Result<Response<thanos::LabelValuesResponse>, Status> {
        Err(Status::unimplemented("label values"))
    }
}

#[tonic::async_trait]
impl Info for TestStore {
    async fn info(
        &self,
        _request: Request<info::InfoRequest>,
    ) -> Result<Response<info::InfoResponse>, Status> {
        Ok(Response::new(info::InfoResponse {
            label_sets: vec![thanos::ZLabelSet { labels: vec![label("cluster", "eu")] }],
            component_type: "store".into(),
            store: Some(info::StoreInfo {
                min_time: 100,
                max_time: i64::MAX,
                supports_sharding: false,
                supports_without_replica_labels: true,
                tsdb_infos: vec![],
                supports_projections: false,
            }),
            ..Default::default()
        }))
    }
}

#[tokio::test]
async fn tonic_store_round_trip() -> TestResult {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(StoreServer::new(TestStore))
            .add_service(InfoServer::new(TestStore))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop_rx.await;
            }),
    );

    let endpoint = format!("http://{addr}");
    let mut store = StoreClient::connect(endpoint.clone()).await?;

    let mut frames = store
        .series(thanos::SeriesRequest {
            min_time: 10,
            max_time: 20,
            matchers: vec![thanos::LabelMatcher {
                r#type: thanos::label_matcher::Type::Eq as i32,
                name: "job".into(),
                value: "node".into(),
            }],
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut series = Vec::new();
    while let Some(frame) = frames.message().await? {
        match frame.result {
            Some(thanos::series_response::Result::Series(s)) => series.push(s),
            other => return Err(format!("unexpected frame {other:?}").into()),
        }
    }
    assert_eq!(series.len(), 2);
    for (s, instance) in series.iter().zip(["a", "b"]) {
        assert_eq!(
            s.labels,
            vec![label("__name__", "up"), label("instance", instance), label("job", "node"),]
        );
        assert_eq!(s.chunks.len(), 1);
        assert_eq!((s.chunks[0].min_time, s.chunks[0].max_time), (10, 20));
        let raw = s.chunks[0].raw.as_ref().ok_or("raw chunk missing")?;
        assert_eq!(raw.data, [0, 1, 0x3f]);
    }

    let old_info = store.info(thanos::InfoRequest {}).await?.into_inner();
    assert_eq!(old_info.store_type(), thanos::StoreType::Store);
    assert_eq!((old_info.min_time, old_info.max_time), (100, i64::MAX));
    assert_eq!(old_info.label_sets[0].labels, [label("cluster", "eu")]);

    let names = store.label_names(thanos::LabelNamesRequest::default()).await?.into_inner();
    assert_eq!(names.names, ["__name__", "instance", "job"]);
    let err = store
        .label_values(thanos::LabelValuesRequest::default())
        .await
        .err()
        .ok_or("label_values should fail")?;
    assert_eq!(err.code(), tonic::Code::Unimplemented);

    let mut info_client = InfoClient::connect(endpoint).await?;
    let info = info_client.info(info::InfoRequest {}).await?.into_inner();
    assert_eq!(info.component_type, "store");
    let store_info = info.store.ok_or("store info missing")?;
    assert!(store_info.supports_without_replica_labels);
    assert_eq!(store_info.max_time, i64::MAX);
    assert!(info.rules.is_none());

    drop(store);
    drop(info_client);
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}
