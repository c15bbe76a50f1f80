//! A StoreAPI client: any endpoint speaking `thanos.Store` and `thanos.info.Info` (promlake,
//! or a real Thanos sidecar, store, receive or querier) as a [`SeriesSource`].
//!
//! A select sends one Series request, collects the frames still XOR-encoded (consecutive
//! frames of one label set are one series), records warning frames in
//! [`SelectRequest::warnings`], puts the series into the engine's block order, and decodes
//! them lazily batch by batch: samples time-ordered, duplicates (overlapping chunks) once,
//! trimmed to the requested range. A series sent as downsampled aggregate chunks (the request
//! allowed `max_resolution_window`) is decoded into per-block pieces and joined into the values
//! of the aggregate the function hint reads, exactly as [`crate::downsampled::ResolutionSource`]
//! does in-process.

use super::aggr_chunks::{decode_pieces, has_aggregates};
use super::chunks::decode_chunk_into;
use super::matchers::{labels_from_proto, matchers_to_proto};
use super::{MAX_MESSAGE_BYTES, PartialResponseStrategy};
use crate::downsampled::{self, aggr_for_func};
use crate::source::{SelectHints, SelectRequest, SeriesBatch, SeriesSource, SeriesStream};
use crate::{Error, Labels, Matcher, Result};
use async_trait::async_trait;
use futures::StreamExt;
use promlake_proto::thanos::chunk::Encoding;
use promlake_proto::thanos::info::info_client::InfoClient;
use promlake_proto::thanos::store_client::StoreClient as GrpcStore;
use promlake_proto::thanos::{
    self as pb, Aggr, Func, LabelNamesRequest, LabelValuesRequest, QueryHints, Range, SeriesRequest,
    series_response,
};
use std::sync::{OnceLock, RwLock};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Series per decoded batch.
const BATCH_SERIES: usize = 512;
/// Samples per decoded batch (a batch ends at whichever limit comes first).
const BATCH_SAMPLES: usize = 1 << 20;

/// Prometheus's API `minTime` (ms), what Thanos queriers send for an open start.
pub const OPEN_START: i64 = -9_223_309_901_257_974_000;
/// Prometheus's API `maxTime` (ms), what Thanos queriers send for an open end.
pub const OPEN_END: i64 = 9_223_309_901_257_973_999;

/// How the client talks to its endpoint.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Partial-response strategy of requests made through the [`SeriesSource`] methods: under
    /// WARN a querier endpoint answers what it has plus warnings when its own stores fail.
    pub partial_response: PartialResponseStrategy,
    /// Deadline of each call (Thanos's `--store.response-timeout`): sent as `grpc-timeout` and
    /// enforced here too, over a whole Series stream; `DeadlineExceeded` when it passes.
    pub timeout: Option<Duration>,
    /// How long to wait for the TCP connection.
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            partial_response: PartialResponseStrategy::Warn,
            timeout: None,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// What an endpoint says about itself (`thanos.info.Info`, or the old `Store.Info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointInfo {
    /// The external label sets it serves.
    pub label_sets: Vec<Labels>,
    /// Earliest sample it may hold (ms).
    pub min_time: i64,
    /// Latest sample it may hold (ms; `i64::MAX` for "up to now and beyond").
    pub max_time: i64,
    /// It honours `without_replica_labels`.
    pub supports_without_replica_labels: bool,
    /// It honours `shard_info`.
    pub supports_sharding: bool,
    /// `"store"`, `"sidecar"`, `"query"`, `"receive"`, `"rule"`, ...
    pub component_type: String,
    /// It serves the StoreAPI (Info's `store` field is set).
    pub store_api: bool,
}

/// Per-call Series options beyond a [`SelectRequest`].
#[derive(Debug, Clone, Default)]
pub struct SeriesOptions {
    /// External (replica) labels the endpoint should drop and sort without.
    pub without_replica_labels: Vec<String>,
    /// Labels only: the series come back without samples.
    pub skip_chunks: bool,
    /// Most series to return (0: all).
    pub limit: i64,
    /// Overrides [`ClientOptions::partial_response`].
    pub partial_response: Option<PartialResponseStrategy>,
}

/// A StoreAPI endpoint as a [`SeriesSource`].
#[derive(Debug)]
pub struct StoreClient {
    endpoint: String,
    channel: Channel,
    opts: ClientOptions,
    info: RwLock<Option<EndpointInfo>>,
    external: OnceLock<Labels>,
    empty: Labels,
}

impl StoreClient {
    /// A client for `endpoint` (`host:port` or `http://host:port`) that connects on first use.
    /// Must be called inside a tokio runtime.
    pub fn new(endpoint: &str, opts: ClientOptions) -> Result<Self> {
        let uri = if endpoint.contains("://") { endpoint.to_string() } else { format!("http://{endpoint}") };
        let channel = Endpoint::from_shared(uri)
            .map_err(|e| Error::InvalidArgument(format!("invalid StoreAPI endpoint {endpoint:?}: {e}")))?
            .connect_timeout(opts.connect_timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(StoreClient {
            endpoint: endpoint.to_string(),
            channel,
            opts,
            info: RwLock::new(None),
            external: OnceLock::new(),
            empty: Labels::default(),
        })
    }

    /// Connects to `endpoint` and asks for its Info (which the source methods then use).
    pub async fn connect(endpoint: &str, opts: ClientOptions) -> Result<Self> {
        let client = Self::new(endpoint, opts)?;
        client.info().await?;
        Ok(client)
    }

    /// The endpoint as given.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The last Info answer, if any.
    pub fn cached_info(&self) -> Option<EndpointInfo> {
        self.info.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(t) = self.opts.timeout {
            req.set_timeout(t);
        }
        req
    }

    /// Runs a call under [`ClientOptions::timeout`]: `DeadlineExceeded` when it passes.
    async fn deadline<T>(&self, what: &str, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        match self.opts.timeout {
            Some(t) => tokio::time::timeout(t, call).await.map_err(|_| Error::Remote {
                endpoint: self.endpoint.clone(),
                code: tonic::Code::DeadlineExceeded,
                message: format!("{what} did not finish within {t:?}"),
            })?,
            None => call.await,
        }
    }

    fn remote(&self, s: tonic::Status) -> Error {
        // A tonic server enforcing our grpc-timeout answers Cancelled "Timeout expired" where
        // a Go server answers DeadlineExceeded.
        let code = match s.code() {
            tonic::Code::Cancelled if self.opts.timeout.is_some() && s.message() == "Timeout expired" => {
                tonic::Code::DeadlineExceeded
            }
            code => code,
        };
        Error::Remote { endpoint: self.endpoint.clone(), code, message: s.message().to_string() }
    }

    fn store(&self) -> GrpcStore<Channel> {
        GrpcStore::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Asks the endpoint what it serves (`thanos.info.Info`, falling back to the old
    /// `thanos.Store/Info` for endpoints older than the Info API) and remembers the answer.
    pub async fn info(&self) -> Result<EndpointInfo> {
        self.deadline("Info", self.fetch_info()).await
    }

    async fn fetch_info(&self) -> Result<EndpointInfo> {
        let mut info_client =
            InfoClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let info = match info_client.info(self.request(pb::info::InfoRequest {})).await {
            Ok(r) => {
                let r = r.into_inner();
                let store_api = r.store.is_some();
                let store = r.store.unwrap_or_default();
                EndpointInfo {
                    label_sets: r.label_sets.iter().map(|s| labels_from_proto(&s.labels)).collect(),
                    min_time: store.min_time,
                    max_time: store.max_time,
                    supports_without_replica_labels: store.supports_without_replica_labels,
                    supports_sharding: store.supports_sharding,
                    component_type: r.component_type,
                    store_api,
                }
            }
            Err(s) if s.code() == tonic::Code::Unimplemented => {
                let r =
                    self.store().info(self.request(pb::InfoRequest {})).await.map_err(|s| self.remote(s))?;
                let r = r.into_inner();
                let mut label_sets: Vec<Labels> =
                    r.label_sets.iter().map(|s| labels_from_proto(&s.labels)).collect();
                if label_sets.is_empty() && !r.labels.is_empty() {
                    label_sets.push(labels_from_proto(&r.labels));
                }
                EndpointInfo {
                    label_sets,
                    min_time: r.min_time,
                    max_time: r.max_time,
                    supports_without_replica_labels: false,
                    supports_sharding: false,
                    component_type: pb::StoreType::try_from(r.store_type)
                        .map(|t| t.as_str_name().to_ascii_lowercase())
                        .unwrap_or_default(),
                    store_api: true,
                }
            }
            Err(s) => return Err(self.remote(s)),
        };
        let common = common_labels(&info.label_sets);
        let _ = self.external.set(common);
        *self.info.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(info.clone());
        Ok(info)
    }

    /// The raw Series call: the frames as the endpoint sends them.
    pub async fn series(&self, req: SeriesRequest) -> Result<tonic::Streaming<pb::SeriesResponse>> {
        Ok(self.store().series(self.request(req)).await.map_err(|s| self.remote(s))?.into_inner())
    }

    /// Selects like [`SeriesSource::select`], with the Series options the trait lacks.
    pub async fn select_with(&self, req: &SelectRequest, opts: &SeriesOptions) -> Result<SeriesStream> {
        let strategy = opts.partial_response.unwrap_or(self.opts.partial_response);
        let sreq = SeriesRequest {
            min_time: req.min_time,
            max_time: req.max_time,
            matchers: matchers_to_proto(&req.matchers),
            max_resolution_window: req.hints.max_resolution_ms,
            aggregates: aggregates_for(req.hints.func.as_deref()).into_iter().map(|a| a as i32).collect(),
            partial_response_strategy: strategy as i32,
            partial_response_disabled: strategy == PartialResponseStrategy::Abort,
            skip_chunks: opts.skip_chunks,
            query_hints: query_hints(&req.hints),
            without_replica_labels: opts.without_replica_labels.clone(),
            limit: opts.limit,
            ..Default::default()
        };
        let collect = async {
            let mut frames = self.series(sreq).await?;
            // Collect still encoded; consecutive frames with one label set are one series.
            let mut series: Vec<(Labels, Vec<pb::AggrChunk>)> = Vec::new();
            let mut histograms = 0usize;
            while let Some(frame) = frames.message().await.map_err(|s| self.remote(s))? {
                let mut add = |mut s: pb::Series| {
                    // Native histogram chunks have no place in float samples: left out, reported.
                    let before = s.chunks.len();
                    s.chunks.retain(|c| c.raw.as_ref().is_none_or(|r| r.r#type == Encoding::Xor as i32));
                    histograms += before - s.chunks.len();
                    let labels = labels_from_proto(&s.labels);
                    match series.last_mut() {
                        Some(last) if last.0 == labels => last.1.extend(s.chunks),
                        _ => series.push((labels, s.chunks)),
                    }
                };
                match frame.result {
                    Some(series_response::Result::Series(s)) => add(s),
                    Some(series_response::Result::Batch(b)) => b.series.into_iter().for_each(add),
                    Some(series_response::Result::Warning(w)) => req.warnings.push(w),
                    Some(series_response::Result::Hints(_)) | None => {}
                }
            }
            if histograms > 0 {
                req.warnings.push(format!(
                    "{}: {histograms} native histogram chunks left out (only float samples are supported)",
                    self.endpoint
                ));
            }
            Ok::<_, Error>(series)
        };
        // The deadline covers the whole stream, not only its start.
        let mut series = self.deadline("Series", collect).await?;
        // Prometheus order → the engine's block order (they differ for label names sorting
        // before `__name__`); stable, so split series stay in order.
        if !series.windows(2).all(|w| w[0].0.block_order(&w[1].0).is_le()) {
            series.sort_by(|a, b| a.0.block_order(&b.0));
        }
        let state = Decode {
            series: series.into_iter(),
            min_time: req.min_time,
            max_time: req.max_time,
            keep_empty: opts.skip_chunks,
            aggr: aggr_for_func(req.hints.func.as_deref()),
        };
        Ok(futures::stream::unfold(state, |mut st| async move { st.next_batch().map(|b| (b, st)) }).boxed())
    }

    /// Label names of series matching `matchers` in `[start, end]` (ms), and the warnings.
    pub async fn label_names_in(
        &self,
        start: i64,
        end: i64,
        matchers: &[Matcher],
    ) -> Result<(Vec<String>, Vec<String>)> {
        let req = LabelNamesRequest {
            partial_response_strategy: self.opts.partial_response as i32,
            partial_response_disabled: self.opts.partial_response == PartialResponseStrategy::Abort,
            start: start.max(OPEN_START),
            end: end.min(OPEN_END),
            matchers: matchers_to_proto(matchers),
            ..Default::default()
        };
        let call = async { self.store().label_names(self.request(req)).await.map_err(|s| self.remote(s)) };
        let r = self.deadline("LabelNames", call).await?.into_inner();
        Ok((r.names, r.warnings))
    }

    /// Values of label `name` among series matching `matchers` in `[start, end]` (ms), and the
    /// warnings.
    pub async fn label_values_in(
        &self,
        name: &str,
        start: i64,
        end: i64,
        matchers: &[Matcher],
    ) -> Result<(Vec<String>, Vec<String>)> {
        let req = LabelValuesRequest {
            label: name.to_string(),
            partial_response_strategy: self.opts.partial_response as i32,
            partial_response_disabled: self.opts.partial_response == PartialResponseStrategy::Abort,
            start: start.max(OPEN_START),
            end: end.min(OPEN_END),
            matchers: matchers_to_proto(matchers),
            ..Default::default()
        };
        let call = async { self.store().label_values(self.request(req)).await.map_err(|s| self.remote(s)) };
        let r = self.deadline("LabelValues", call).await?.into_inner();
        Ok((r.values, r.warnings))
    }
}

/// The labels shared by every set (name and value); none for no sets.
fn common_labels(sets: &[Labels]) -> Labels {
    let Some((first, rest)) = sets.split_first() else { return Labels::default() };
    Labels::from_pairs(
        first
            .iter()
            .filter(|l| rest.iter().all(|s| s.get(&l.name) == Some(l.value.as_str())))
            .map(|l| (l.name.as_str(), l.value.as_str())),
    )
}

/// Thanos's `aggrsFromFunc`: which downsampled aggregates a function needs (the one
/// [`aggr_for_func`] reads; count and sum for an average).
fn aggregates_for(func: Option<&str>) -> Vec<Aggr> {
    match aggr_for_func(func) {
        downsampled::Aggr::Min => vec![Aggr::Min],
        downsampled::Aggr::Max => vec![Aggr::Max],
        downsampled::Aggr::Count => vec![Aggr::Count],
        downsampled::Aggr::Sum => vec![Aggr::Sum],
        downsampled::Aggr::Counter => vec![Aggr::Counter],
        downsampled::Aggr::Avg => vec![Aggr::Count, Aggr::Sum],
    }
}

fn query_hints(h: &SelectHints) -> Option<QueryHints> {
    if h.func.is_none() && h.range_ms == 0 && h.step_ms == 0 {
        return None;
    }
    Some(QueryHints {
        step_millis: h.step_ms,
        func: h.func.as_ref().map(|name| Func { name: name.clone() }),
        range: (h.range_ms > 0).then_some(Range { millis: h.range_ms }),
        ..Default::default()
    })
}

/// Lazy decoding of collected series into batches.
struct Decode {
    series: std::vec::IntoIter<(Labels, Vec<pb::AggrChunk>)>,
    min_time: i64,
    max_time: i64,
    keep_empty: bool,
    /// The aggregate downsampled series are read by.
    aggr: downsampled::Aggr,
}

impl Decode {
    fn next_batch(&mut self) -> Option<Result<SeriesBatch>> {
        let mut out = Vec::new();
        let mut samples = 0;
        for (labels, chunks) in self.series.by_ref() {
            if chunks.iter().any(|c| c.raw.is_none() && has_aggregates(c)) {
                let pieces = match decode_pieces(&chunks) {
                    Ok(p) => p,
                    Err(e) => return Some(Err(e)),
                };
                let (ts, vals) = downsampled::join(pieces, self.aggr, self.min_time, self.max_time);
                if ts.is_empty() && !self.keep_empty {
                    continue;
                }
                samples += ts.len();
                out.push((labels, ts, vals));
                if out.len() >= BATCH_SERIES || samples >= BATCH_SAMPLES {
                    break;
                }
                continue;
            }
            let (mut ts, mut vals) = (Vec::new(), Vec::new());
            for c in &chunks {
                if let Err(e) = decode_chunk_into(c, &mut ts, &mut vals) {
                    return Some(Err(e));
                }
            }
            if !ts.windows(2).all(|w| w[0] < w[1]) {
                let mut points: Vec<(i64, f64)> = ts.into_iter().zip(vals).collect();
                points.sort_by_key(|p| p.0);
                points.dedup_by_key(|p| p.0);
                (ts, vals) = points.into_iter().unzip();
            }
            let lo = ts.partition_point(|&t| t < self.min_time);
            let hi = ts.partition_point(|&t| t <= self.max_time);
            if lo >= hi && !self.keep_empty {
                continue;
            }
            ts.truncate(hi);
            vals.truncate(hi);
            ts.drain(..lo.min(hi));
            vals.drain(..lo.min(hi));
            samples += ts.len();
            out.push((labels, ts, vals));
            if out.len() >= BATCH_SERIES || samples >= BATCH_SAMPLES {
                break;
            }
        }
        if out.is_empty() {
            return None;
        }
        Some(SeriesBatch::from_series(out))
    }
}

#[async_trait]
impl SeriesSource for StoreClient {
    async fn select(&self, req: &SelectRequest) -> Result<SeriesStream> {
        self.select_with(req, &SeriesOptions::default()).await
    }

    async fn label_names_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        let (names, warnings) = self.label_names_in(min_time, max_time, matchers).await?;
        for w in warnings {
            tracing::warn!(endpoint = %self.endpoint, warning = %w, "LabelNames warning");
        }
        Ok(names)
    }

    async fn label_values_between(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        let (values, warnings) = self.label_values_in(name, min_time, max_time, matchers).await?;
        for w in warnings {
            tracing::warn!(endpoint = %self.endpoint, warning = %w, "LabelValues warning");
        }
        Ok(values)
    }

    fn time_range(&self) -> (i64, i64) {
        match &*self.info.read().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Some(i) => (i.min_time, i.max_time),
            None => (i64::MIN, i64::MAX),
        }
    }

    fn external_labels(&self) -> &Labels {
        self.external.get().unwrap_or(&self.empty)
    }

    async fn label_sets(&self) -> Vec<Labels> {
        self.cached_info().map(|i| i.label_sets).unwrap_or_default()
    }
}
