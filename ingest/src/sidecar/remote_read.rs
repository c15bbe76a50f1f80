//! A [`SeriesSource`] over a Prometheus server's remote read endpoint (`POST /api/v1/read`):
//! asks for `STREAMED_XOR_CHUNKS` (varint-length + CRC32C framed `ChunkedReadResponse`
//! messages) and accepts the `SAMPLES` answer (one snappy-compressed `ReadResponse`) of
//! servers without it. Matchers on external labels are answered here (Prometheus never
//! stores them); series come back with the external labels added.

use super::prometheus::PrometheusClient;
use async_trait::async_trait;
use futures::StreamExt;
use promlake_engine::{
    Error, Labels, MatchOp, Matcher, Result, SelectRequest, SeriesBatch, SeriesSource, SeriesStream,
};
use promlake_proto::prometheus as pb;
use prost::Message;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// One series as read: labels, timestamps (ms), values.
pub type Series = (Labels, Vec<i64>, Vec<f64>);

/// Content type of a streamed remote read answer.
const STREAMED: &str = "application/x-streamed-protobuf";

/// The data a Prometheus server holds, read remotely.
#[derive(Debug)]
pub struct RemoteReadSource {
    prom: PrometheusClient,
    external: Labels,
    min_time: Arc<AtomicI64>,
}

impl RemoteReadSource {
    /// A source over `prom` whose series carry `external` labels; `min_time` (shared, updated
    /// by the caller) is the oldest time Prometheus holds.
    pub fn new(prom: PrometheusClient, external: Labels, min_time: Arc<AtomicI64>) -> Self {
        RemoteReadSource { prom, external, min_time }
    }

    /// `[min_time, max_time]` limited to what Prometheus holds and to what its API parses.
    fn window(&self, min_time: i64, max_time: i64) -> (i64, i64) {
        (min_time.max(self.min_time.load(Ordering::Relaxed)), max_time.min(i64::MAX / 2))
    }

    /// Matchers for Prometheus: those on external labels are checked here and dropped; `None`
    /// when one of them rejects the external labels (nothing can match).
    fn local_matchers(&self, matchers: &[Matcher]) -> Option<Vec<Matcher>> {
        let mut out = Vec::new();
        for m in matchers {
            match self.external.get(&m.name) {
                Some(v) if !m.matches_value(Some(v)) => return None,
                Some(_) => {}
                None => out.push(m.clone()),
            }
        }
        Some(out)
    }

    /// Runs one remote read query and returns its series (labels as Prometheus sent them).
    /// Without matchers (all were on external labels) it selects every series, as
    /// Prometheus's TSDB selects nothing for an empty matcher list.
    pub async fn read(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Series>> {
        let every;
        let matchers = if matchers.is_empty() {
            every = [Matcher::new(MatchOp::Regex, "__name__", ".+")?];
            &every[..]
        } else {
            matchers
        };
        let req = pb::ReadRequest {
            queries: vec![pb::Query {
                start_timestamp_ms: start,
                end_timestamp_ms: end,
                matchers: matchers.iter().map(to_proto).collect(),
                hints: None,
            }],
            accepted_response_types: vec![
                pb::read_request::ResponseType::StreamedXorChunks as i32,
                pb::read_request::ResponseType::Samples as i32,
            ],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .map_err(|e| Error::Unavailable(format!("snappy: {e}")))?;
        let (ctype, bytes) = self
            .prom
            .post(
                "/api/v1/read",
                &[
                    ("Content-Type", "application/x-protobuf"),
                    ("Content-Encoding", "snappy"),
                    ("X-Prometheus-Remote-Read-Version", "0.1.0"),
                ],
                body,
            )
            .await?;
        let mut out = if ctype.starts_with(STREAMED) {
            decode_streamed(&bytes, start, end)?
        } else {
            decode_samples(&bytes)?
        };
        out.retain(|s| !s.1.is_empty());
        Ok(out)
    }
}

fn to_proto(m: &Matcher) -> pb::LabelMatcher {
    use pb::label_matcher::Type;
    let t = match m.op {
        MatchOp::Equal => Type::Eq,
        MatchOp::NotEqual => Type::Neq,
        MatchOp::Regex => Type::Re,
        MatchOp::NotRegex => Type::Nre,
    };
    pb::LabelMatcher { r#type: t as i32, name: m.name.clone(), value: m.value.clone() }
}

fn labels_of(l: &[pb::Label]) -> Labels {
    Labels::from_pairs(l.iter().map(|l| (l.name.clone(), l.value.clone())))
}

fn bad(reason: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("remote read answer: {reason}"))
}

/// Decodes the framed `ChunkedReadResponse` stream, keeping samples in `[start, end]`.
fn decode_streamed(mut buf: &[u8], start: i64, end: i64) -> Result<Vec<Series>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let len = prost::encoding::decode_varint(&mut buf).map_err(bad)?;
        let len = usize::try_from(len).map_err(bad)?;
        let (Some(crc), Some(rest)) = (buf.get(..4), buf.get(4..)) else {
            return Err(bad("truncated frame header"));
        };
        let want = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let Some(msg) = rest.get(..len) else { return Err(bad("truncated frame")) };
        if crc32c::crc32c(msg) != want {
            return Err(bad("frame checksum mismatch"));
        }
        buf = rest.get(len..).unwrap_or_default();
        let resp = pb::ChunkedReadResponse::decode(msg).map_err(bad)?;
        for s in resp.chunked_series {
            let (mut ts, mut vals) = (Vec::new(), Vec::new());
            for c in &s.chunks {
                if c.r#type != pb::chunk::Encoding::Xor as i32 {
                    return Err(bad(format!(
                        "chunk encoding {} (only float XOR chunks are supported)",
                        c.r#type
                    )));
                }
                promlake_compat::xor::decode_xor_into(&c.data, &mut ts, &mut vals).map_err(bad)?;
            }
            // Chunks are in time order but may overlap: keep the first sample of a timestamp.
            let (mut t2, mut v2) = (Vec::with_capacity(ts.len()), Vec::with_capacity(ts.len()));
            for (t, v) in ts.into_iter().zip(vals) {
                if t >= start && t <= end && t2.last().is_none_or(|&l| t > l) {
                    t2.push(t);
                    v2.push(v);
                }
            }
            out.push((labels_of(&s.labels), t2, v2));
        }
    }
    Ok(out)
}

/// Decodes a snappy-compressed `ReadResponse` (`SAMPLES`).
fn decode_samples(body: &[u8]) -> Result<Vec<Series>> {
    let raw = snap::raw::Decoder::new().decompress_vec(body).map_err(bad)?;
    let resp = pb::ReadResponse::decode(raw.as_slice()).map_err(bad)?;
    let mut out = Vec::new();
    for r in resp.results {
        for s in r.timeseries {
            let ts = s.samples.iter().map(|x| x.timestamp).collect();
            let vals = s.samples.iter().map(|x| x.value).collect();
            out.push((labels_of(&s.labels), ts, vals));
        }
    }
    Ok(out)
}

#[async_trait]
impl SeriesSource for RemoteReadSource {
    async fn select(&self, req: &SelectRequest) -> Result<SeriesStream> {
        let Some(matchers) = self.local_matchers(&req.matchers) else {
            return Ok(futures::stream::empty().boxed());
        };
        let mut series = self.read(&matchers, req.min_time, req.max_time).await?;
        for s in &mut series {
            s.0 = s.0.merged(&self.external);
        }
        series.sort_by(|a, b| a.0.block_order(&b.0));
        let batch = SeriesBatch::from_series(series)?;
        Ok(futures::stream::iter([Ok(batch)]).boxed())
    }

    /// Prometheus's answer for the window (its own block granularity).
    async fn label_names_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        let Some(m) = self.local_matchers(matchers) else { return Ok(Vec::new()) };
        let (start, end) = self.window(min_time, max_time);
        let mut names = self.prom.label_names(&m, start, end).await?;
        names.extend(self.external.iter().map(|l| l.name.clone()));
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Prometheus's answer for the window (its own block granularity).
    async fn label_values_between(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        let Some(m) = self.local_matchers(matchers) else { return Ok(Vec::new()) };
        if let Some(v) = self.external.get(name) {
            return Ok(vec![v.to_string()]);
        }
        let (start, end) = self.window(min_time, max_time);
        let mut v = self.prom.label_values(name, &m, start, end).await?;
        v.retain(|x| !x.is_empty());
        v.sort();
        Ok(v)
    }

    fn time_range(&self) -> (i64, i64) {
        (self.min_time.load(Ordering::Relaxed), i64::MAX)
    }

    fn external_labels(&self) -> &Labels {
        &self.external
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn chunk(samples: &[(i64, f64)]) -> pb::Chunk {
        let mut enc = promlake_compat::xor::XorEncoder::new();
        for &(t, v) in samples {
            enc.append(t, v);
        }
        pb::Chunk {
            min_time_ms: samples.first().map_or(0, |s| s.0),
            max_time_ms: samples.last().map_or(0, |s| s.0),
            r#type: pb::chunk::Encoding::Xor as i32,
            data: enc.finish(),
        }
    }

    fn frame(msg: &pb::ChunkedReadResponse) -> Vec<u8> {
        let body = msg.encode_to_vec();
        let mut out = Vec::new();
        prost::encoding::encode_varint(body.len() as u64, &mut out);
        out.extend(crc32c::crc32c(&body).to_be_bytes());
        out.extend(body);
        out
    }

    fn label(n: &str, v: &str) -> pb::Label {
        pb::Label { name: n.into(), value: v.into() }
    }

    #[test]
    fn streamed_frames_decode_and_clip_to_the_range() {
        let a = pb::ChunkedReadResponse {
            chunked_series: vec![pb::ChunkedSeries {
                labels: vec![label("__name__", "up")],
                chunks: vec![
                    chunk(&[(1000, 1.0), (2000, 2.0)]),
                    chunk(&[(2000, 2.0), (3000, 3.0), (4000, 4.0)]),
                ],
            }],
            query_index: 0,
        };
        let b = pb::ChunkedReadResponse {
            chunked_series: vec![pb::ChunkedSeries {
                labels: vec![label("__name__", "x")],
                chunks: vec![chunk(&[(5000, f64::from_bits(0x7ff0_0000_0000_0002))])],
            }],
            query_index: 0,
        };
        let mut body = frame(&a);
        body.extend(frame(&b));
        let out = decode_streamed(&body, 2000, 5000).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0.get("__name__"), Some("up"));
        assert_eq!(out[0].1, vec![2000, 3000, 4000]);
        assert_eq!(out[0].2, vec![2.0, 3.0, 4.0]);
        // Staleness markers keep their bits.
        assert_eq!(out[1].2[0].to_bits(), 0x7ff0_0000_0000_0002);

        let mut corrupt = frame(&a);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let err = decode_streamed(&corrupt, 0, 10_000).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        let err = decode_streamed(&frame(&a)[..10], 0, 10_000).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn samples_answer_decodes() {
        let resp = pb::ReadResponse {
            results: vec![pb::QueryResult {
                timeseries: vec![pb::TimeSeries {
                    labels: vec![label("__name__", "up"), label("job", "p")],
                    samples: vec![
                        pb::Sample { value: 1.0, timestamp: 10 },
                        pb::Sample { value: 0.0, timestamp: 20 },
                    ],
                    ..Default::default()
                }],
            }],
        };
        let body = snap::raw::Encoder::new().compress_vec(&resp.encode_to_vec()).unwrap();
        let out = decode_samples(&body).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.get("job"), Some("p"));
        assert_eq!((out[0].1.clone(), out[0].2.clone()), (vec![10, 20], vec![1.0, 0.0]));
        assert!(decode_samples(b"not snappy").is_err());
    }
}
