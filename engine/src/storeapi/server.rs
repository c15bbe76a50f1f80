//! `thanos.Store` over a [`SeriesSource`]: Series (server-streaming), LabelNames, LabelValues
//! and the old `Store.Info` that queriers before v0.37 call.
//!
//! A Series request is answered in three steps: select from the source, turning every series
//! into its final label set (source external labels injected, `without_replica_labels`
//! removed) with XOR chunks (or none under `skip_chunks`), counting against the limits; sort
//! by full label set (Prometheus order, which the source's block order need not match once
//! labels change); then stream the frames (one series each, or `batch` frames of
//! `response_batch_size`), followed by the warnings the source reported.
//!
//! When the request's `max_resolution_window` allows downsampled data and the server was
//! given a [`crate::downsampled::PieceSource`], the series come from it as per-block pieces:
//! downsampled ones are sent as aggregate chunks carrying the requested `aggregates`, raw
//! ones (gaps filled from finer data) as raw chunks.

use super::aggr_chunks::{encode_aggr_chunks, requested_aggregates};
use super::chunks::encode_chunks;
use super::matchers::{compare_labels, labels_to_proto, matchers_from_proto, strip_labels};
use super::shard::in_shard;
use super::{StoreServerOptions, status_of};
use crate::downsampled::Piece;
use crate::source::{SelectHints, SelectRequest, SeriesBatch, SeriesSource, Warnings};
use crate::{Error, Labels, Matcher};
use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, TimestampMillisecondType, UInt32Type};
use futures::StreamExt;
use futures::stream::BoxStream;
use promlake_proto::thanos::{
    self as pb, InfoRequest, InfoResponse, LabelNamesRequest, LabelNamesResponse, LabelSet,
    LabelValuesRequest, LabelValuesResponse, PartialResponseStrategy, SeriesRequest, SeriesResponse,
    series_response,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The `thanos.Store` service.
#[derive(Debug)]
pub(crate) struct StoreService {
    source: Arc<dyn SeriesSource>,
    opts: StoreServerOptions,
    /// Turns for Series requests (`max_concurrent_series`).
    turns: Option<Arc<tokio::sync::Semaphore>>,
}

/// The data of one selected series.
enum Data<'a> {
    /// Raw samples.
    Raw(&'a [i64], &'a [f64]),
    /// Per-block pieces of a downsampled answer.
    Pieces(&'a [Piece]),
}

/// A series' pieces as chunks (raw pieces as raw XOR chunks, downsampled ones as aggregate
/// chunks with `aggrs`), in the pieces' order, and the samples (windows) they carry.
fn encode_pieces(pieces: &[Piece], aggrs: &[pb::Aggr]) -> (Vec<pb::AggrChunk>, u64) {
    let mut chunks = Vec::new();
    let mut samples = 0;
    for p in pieces {
        match p {
            Piece::Raw(ts, vals) => {
                chunks.extend(encode_chunks(ts, vals));
                samples += ts.len() as u64;
            }
            Piece::Aggr(a) => {
                chunks.extend(encode_aggr_chunks(a, aggrs));
                samples += a.len() as u64;
            }
        }
    }
    (chunks, samples)
}

/// One series ready to send.
struct Encoded {
    labels: Labels,
    chunks: Vec<pb::AggrChunk>,
    samples: u64,
    /// Several series were merged into this one.
    merged: bool,
}

impl StoreService {
    pub(crate) fn new(source: Arc<dyn SeriesSource>, opts: StoreServerOptions) -> Self {
        let turns = (opts.max_concurrent_series > 0)
            .then(|| Arc::new(tokio::sync::Semaphore::new(opts.max_concurrent_series)));
        StoreService { source, opts, turns }
    }

    /// Names of the labels that are external labels of the source (any of its label sets).
    async fn external_names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> =
            self.source.external_labels().iter().map(|l| l.name.clone()).collect();
        for set in self.source.label_sets().await {
            names.extend(set.iter().map(|l| l.name.clone()));
        }
        names.into_iter().collect()
    }

    /// Whether `[start, end]` overlaps the source's time range (both 0: not given).
    fn overlaps(&self, start: i64, end: i64) -> bool {
        let (min, max) = self.source.time_range();
        (start == 0 && end == 0) || min > max || (start <= max && end >= min)
    }

    async fn collect_series(&self, req: SeriesRequest) -> Result<Vec<SeriesResponse>, Status> {
        if req.min_time > req.max_time {
            return Err(Status::invalid_argument(format!(
                "invalid time range: min_time {} is after max_time {}",
                req.min_time, req.max_time
            )));
        }
        let matchers = matchers_from_proto(&req.matchers).map_err(|e| status_of(&e))?;
        let abort = abort(req.partial_response_disabled, req.partial_response_strategy);
        let ext = self.source.external_labels().clone();
        let Some(matchers) = split_external(matchers, &ext) else {
            return Ok(Vec::new());
        };
        let ext_names =
            if req.without_replica_labels.is_empty() { Vec::new() } else { self.external_names().await };
        let warnings = Warnings::default();
        let select = SelectRequest {
            matchers,
            min_time: req.min_time,
            max_time: req.max_time,
            hints: hints_of(&req),
            warnings: warnings.clone(),
        };
        // With a request `limit`, the limits apply to what is left after truncation.
        let check_early = req.limit <= 0;
        let mut out: Vec<Encoded> = Vec::new();
        let mut total_samples = 0u64;
        let aggrs = requested_aggregates(&req.aggregates);
        let mut add = |labels: &Labels, data: Data<'_>| -> Result<(), Status> {
            let mut labels = if ext.is_empty() { labels.clone() } else { labels.merged(&ext) };
            labels = strip_labels(&labels, &req.without_replica_labels, &ext_names);
            if !in_shard(&labels, req.shard_info.as_ref()) {
                return Ok(());
            }
            let (chunks, samples) = match (req.skip_chunks, data) {
                (true, _) => (Vec::new(), 0),
                (false, Data::Raw(ts, vals)) => (encode_chunks(ts, vals), ts.len() as u64),
                (false, Data::Pieces(pieces)) => encode_pieces(pieces, &aggrs),
            };
            total_samples += samples;
            out.push(Encoded { labels, chunks, samples, merged: false });
            if check_early {
                self.check_limits(out.len() as u64, total_samples)?;
            }
            Ok(())
        };
        // Downsampled data, when the request allows it and the source has some: sent as
        // aggregate chunks (raw pieces filling gaps as raw chunks).
        let pieces = match &self.opts.downsampled {
            Some(ds) if select.hints.max_resolution_ms > 0 => match ds.select_pieces(&select).await {
                Ok(p) => p,
                Err(e) => {
                    fail_or_warn(e, abort, &warnings)?;
                    Some(Vec::new())
                }
            },
            _ => None,
        };
        match pieces {
            Some(series) => {
                for (labels, pieces) in &series {
                    add(labels, Data::Pieces(pieces))?;
                }
            }
            None => match self.source.select(&select).await {
                Err(e) => fail_or_warn(e, abort, &warnings)?,
                Ok(mut stream) => {
                    while let Some(batch) = stream.next().await {
                        match batch {
                            Ok(batch) => for_each_series(&batch, |l, ts, vals| add(l, Data::Raw(ts, vals)))?,
                            Err(e) => {
                                fail_or_warn(e, abort, &warnings)?;
                                break;
                            }
                        }
                    }
                }
            },
        }
        out.sort_by(|a, b| compare_labels(&a.labels, &b.labels));
        let mut out = merge_equal(out);
        if req.limit > 0 {
            out.truncate(req.limit as usize);
            let samples = out.iter().map(|s| s.samples).sum();
            self.check_limits(out.len() as u64, samples)?;
        }
        let (n_series, n_chunks, n_samples) = (
            out.len() as u64,
            out.iter().map(|s| s.chunks.len() as u64).sum(),
            out.iter().map(|s| s.samples).sum(),
        );
        let mut frames = to_frames(out, req.response_batch_size);
        frames.extend(
            warnings
                .get()
                .into_iter()
                .map(|w| SeriesResponse { result: Some(series_response::Result::Warning(w)) }),
        );
        self.opts.metrics.sent(n_series, n_chunks, n_samples);
        Ok(frames)
    }

    fn check_limits(&self, series: u64, samples: u64) -> Result<(), Status> {
        let l = self.opts.limits;
        if l.max_series > 0 && series > l.max_series {
            self.opts.metrics.limit_hit();
            return Err(Status::resource_exhausted(format!(
                "exceeded series limit: the request selects more than {} series (--store.limits.request-series)",
                l.max_series
            )));
        }
        if l.max_samples > 0 && samples > l.max_samples {
            self.opts.metrics.limit_hit();
            return Err(Status::resource_exhausted(format!(
                "exceeded samples limit: the request selects more than {} samples (--store.limits.request-samples)",
                l.max_samples
            )));
        }
        Ok(())
    }
}

/// Whether the request asks for errors rather than partial answers.
fn abort(disabled: bool, strategy: i32) -> bool {
    disabled || strategy == PartialResponseStrategy::Abort as i32
}

fn strategy_of(disabled: bool, strategy: i32) -> PartialResponseStrategy {
    match abort(disabled, strategy) {
        true => PartialResponseStrategy::Abort,
        false => PartialResponseStrategy::Warn,
    }
}

/// Under ABORT (or for bad input) the error fails the request; under WARN it becomes a warning.
fn fail_or_warn(e: Error, abort: bool, warnings: &Warnings) -> Result<(), Status> {
    if abort || matches!(e, Error::Matcher { .. } | Error::InvalidArgument(_)) {
        return Err(status_of(&e));
    }
    warnings.push(e.to_string());
    Ok(())
}

/// Drops the matchers on the source's external labels after checking them: `None` when one
/// does not match (the source has nothing for the request).
fn split_external(matchers: Vec<Matcher>, ext: &Labels) -> Option<Vec<Matcher>> {
    let mut rest = Vec::with_capacity(matchers.len());
    for m in matchers {
        if ext.get(&m.name).is_some() {
            if !m.matches(ext) {
                return None;
            }
        } else {
            rest.push(m);
        }
    }
    Some(rest)
}

/// The select hints carried by a request (query hints, or the deprecated step/range fields).
fn hints_of(req: &SeriesRequest) -> SelectHints {
    let qh = req.query_hints.as_ref();
    SelectHints {
        func: qh.and_then(|h| h.func.as_ref()).map(|f| f.name.clone()).filter(|f| !f.is_empty()),
        range_ms: qh.and_then(|h| h.range.as_ref()).map(|r| r.millis).filter(|&r| r > 0).unwrap_or(req.range),
        step_ms: qh.map(|h| h.step_millis).filter(|&s| s > 0).unwrap_or(req.step),
        max_resolution_ms: req.max_resolution_window.max(0),
    }
}

/// Calls `f` with each series of the batch that has samples (rows are grouped by series).
fn for_each_series(
    batch: &SeriesBatch,
    mut f: impl FnMut(&Labels, &[i64], &[f64]) -> Result<(), Status>,
) -> Result<(), Status> {
    let cols = batch.samples.columns();
    let (Some(idx), Some(ts), Some(vals)) = (
        cols.first().and_then(|c| c.as_primitive_opt::<UInt32Type>()),
        cols.get(1).and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>()),
        cols.get(2).and_then(|c| c.as_primitive_opt::<Float64Type>()),
    ) else {
        return Err(Status::internal("series batch without the series/timestamp/value columns"));
    };
    let (idx, ts, vals) = (idx.values(), ts.values(), vals.values());
    let mut start = 0;
    while let Some(&i) = idx.get(start) {
        let end = start + idx[start..].iter().take_while(|&&j| j == i).count();
        let labels = batch.labels.get(i as usize).ok_or_else(|| {
            Status::internal(format!("series batch row refers to series {i} of {}", batch.labels.len()))
        })?;
        f(labels, &ts[start..end], &vals[start..end])?;
        start = end;
    }
    Ok(())
}

/// Merges neighbours with one label set (the same series from several blocks, or replicas
/// once `without_replica_labels` removed what told them apart) into one series: chunks in
/// time order, identical chunks (same range and hash) once, as Thanos's response heap does.
fn merge_equal(sorted: Vec<Encoded>) -> Vec<Encoded> {
    let mut out: Vec<Encoded> = Vec::with_capacity(sorted.len());
    for s in sorted {
        match out.last_mut() {
            Some(last) if last.labels == s.labels => {
                last.chunks.extend(s.chunks);
                last.samples += s.samples;
                last.merged = true;
            }
            _ => out.push(s),
        }
    }
    for s in out.iter_mut().filter(|s| s.merged) {
        s.chunks.sort_by_key(|c| (c.min_time, c.max_time));
        let before = s.chunks.len();
        s.chunks.dedup_by(|a, b| a == b);
        if s.chunks.len() < before {
            s.samples = s.chunks.iter().map(chunk_samples).sum();
        }
    }
    out
}

/// The sample count in an XOR chunk's header (raw, or the windows of an aggregate chunk).
fn chunk_samples(c: &pb::AggrChunk) -> u64 {
    [&c.raw, &c.count, &c.sum, &c.min, &c.max, &c.counter]
        .into_iter()
        .flatten()
        .next()
        .and_then(|r| r.data.get(..2))
        .map(|b| u64::from(u16::from_be_bytes([b[0], b[1]])))
        .unwrap_or(0)
}

fn to_frames(out: Vec<Encoded>, batch_size: i64) -> Vec<SeriesResponse> {
    let series = out.into_iter().map(|s| pb::Series { labels: labels_to_proto(&s.labels), chunks: s.chunks });
    if batch_size <= 1 {
        return series.map(|s| SeriesResponse { result: Some(series_response::Result::Series(s)) }).collect();
    }
    let mut frames = Vec::new();
    let mut current = Vec::new();
    for s in series {
        current.push(s);
        if current.len() as i64 >= batch_size {
            let series = std::mem::take(&mut current);
            frames.push(SeriesResponse {
                result: Some(series_response::Result::Batch(pb::SeriesBatch { series })),
            });
        }
    }
    if !current.is_empty() {
        frames.push(SeriesResponse {
            result: Some(series_response::Result::Batch(pb::SeriesBatch { series: current })),
        });
    }
    frames
}

/// The answers, timed and counted by the trait methods below.
impl StoreService {
    async fn answer_info(&self) -> Result<Response<InfoResponse>, Status> {
        let (min_time, max_time) = self.source.time_range();
        let label_sets = self.source.label_sets().await;
        Ok(Response::new(InfoResponse {
            labels: Vec::new(),
            min_time,
            max_time,
            store_type: self.opts.component.store_type() as i32,
            label_sets: label_sets.iter().map(|l| LabelSet { labels: labels_to_proto(l) }).collect(),
        }))
    }

    async fn answer_series(&self, request: Request<SeriesRequest>) -> Result<Response<SeriesStream>, Status> {
        self.opts.metrics.series_request();
        let req = request.into_inner();
        let strategy = strategy_of(req.partial_response_disabled, req.partial_response_strategy);
        // A turn is held until the answer is streamed out.
        let turn = match &self.turns {
            Some(t) => {
                Some(t.clone().acquire_owned().await.map_err(|_| Status::unavailable("shutting down"))?)
            }
            None => None,
        };
        match super::PARTIAL_RESPONSE.scope(strategy, self.collect_series(req)).await {
            Ok(frames) => Ok(Response::new(
                futures::stream::iter(frames.into_iter().map(move |f| {
                    let _turn = &turn;
                    Ok(f)
                }))
                .boxed(),
            )),
            Err(status) => {
                self.opts.metrics.series_failed();
                tracing::debug!(code = ?status.code(), message = status.message(), "Series request failed");
                Err(status)
            }
        }
    }

    async fn answer_label_names(
        &self,
        request: Request<LabelNamesRequest>,
    ) -> Result<Response<LabelNamesResponse>, Status> {
        self.opts.metrics.label_request();
        let req = request.into_inner();
        let matchers = matchers_from_proto(&req.matchers).map_err(|e| status_of(&e))?;
        let ext = self.source.external_labels().clone();
        let empty = Response::new(LabelNamesResponse::default());
        let Some(matchers) = split_external(matchers, &ext) else { return Ok(empty) };
        if !self.overlaps(req.start, req.end) {
            return Ok(empty);
        }
        let strip = stripped(&req.without_replica_labels, &self.external_names().await);
        let strategy = strategy_of(req.partial_response_disabled, req.partial_response_strategy);
        let warnings = Warnings::default();
        let mut names: BTreeSet<String> = match super::PARTIAL_RESPONSE
            .scope(strategy, self.source.label_names_between(&matchers, req.start, req.end))
            .await
        {
            Ok(names) => names.into_iter().collect(),
            Err(e) => {
                fail_or_warn(
                    e,
                    abort(req.partial_response_disabled, req.partial_response_strategy),
                    &warnings,
                )?;
                BTreeSet::new()
            }
        };
        // External labels exist only on series: none without any.
        if !names.is_empty() {
            names.extend(ext.iter().map(|l| l.name.clone()));
        }
        let mut names: Vec<String> = names.into_iter().filter(|n| !strip.contains(n)).collect();
        if req.limit > 0 {
            names.truncate(req.limit as usize);
        }
        Ok(Response::new(LabelNamesResponse { names, warnings: warnings.get(), hints: None }))
    }

    async fn answer_label_values(
        &self,
        request: Request<LabelValuesRequest>,
    ) -> Result<Response<LabelValuesResponse>, Status> {
        self.opts.metrics.label_request();
        let req = request.into_inner();
        if req.label.is_empty() {
            return Err(Status::invalid_argument("label name parameter cannot be empty"));
        }
        let matchers = matchers_from_proto(&req.matchers).map_err(|e| status_of(&e))?;
        let ext = self.source.external_labels().clone();
        let empty = Response::new(LabelValuesResponse::default());
        let Some(matchers) = split_external(matchers, &ext) else { return Ok(empty) };
        if !self.overlaps(req.start, req.end)
            || stripped(&req.without_replica_labels, &self.external_names().await).contains(&req.label)
        {
            return Ok(empty);
        }
        let strategy = strategy_of(req.partial_response_disabled, req.partial_response_strategy);
        let warnings = Warnings::default();
        let mut values = match ext.get(&req.label) {
            // An external label's value, when some series matches the other matchers.
            Some(v) => match matchers.is_empty() {
                true => vec![v.to_string()],
                false => {
                    match super::PARTIAL_RESPONSE
                        .scope(strategy, self.source.label_names_between(&matchers, req.start, req.end))
                        .await
                    {
                        Ok(names) if !names.is_empty() => vec![v.to_string()],
                        Ok(_) => Vec::new(),
                        Err(e) => {
                            fail_or_warn(
                                e,
                                abort(req.partial_response_disabled, req.partial_response_strategy),
                                &warnings,
                            )?;
                            Vec::new()
                        }
                    }
                }
            },
            None => match super::PARTIAL_RESPONSE
                .scope(strategy, self.source.label_values_between(&req.label, &matchers, req.start, req.end))
                .await
            {
                Ok(values) => values,
                Err(e) => {
                    fail_or_warn(
                        e,
                        abort(req.partial_response_disabled, req.partial_response_strategy),
                        &warnings,
                    )?;
                    Vec::new()
                }
            },
        };
        if req.limit > 0 {
            values.truncate(req.limit as usize);
        }
        Ok(Response::new(LabelValuesResponse { values, warnings: warnings.get(), hints: None }))
    }
}

type SeriesStream = BoxStream<'static, Result<SeriesResponse, Status>>;

/// Records the call's status code and time in the metrics.
fn timed<T>(
    metrics: &super::StoreMetrics,
    method: &'static str,
    started: std::time::Instant,
    r: Result<T, Status>,
) -> Result<T, Status> {
    let code = r.as_ref().map_or_else(Status::code, |_| tonic::Code::Ok);
    metrics.handled("thanos.Store", method, code, started.elapsed());
    r
}

#[tonic::async_trait]
impl pb::store_server::Store for StoreService {
    type SeriesStream = SeriesStream;

    async fn info(&self, _request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let started = std::time::Instant::now();
        timed(&self.opts.metrics, "Info", started, self.answer_info().await)
    }

    async fn series(&self, request: Request<SeriesRequest>) -> Result<Response<SeriesStream>, Status> {
        let started = std::time::Instant::now();
        timed(&self.opts.metrics, "Series", started, self.answer_series(request).await)
    }

    async fn label_names(
        &self,
        request: Request<LabelNamesRequest>,
    ) -> Result<Response<LabelNamesResponse>, Status> {
        let started = std::time::Instant::now();
        timed(&self.opts.metrics, "LabelNames", started, self.answer_label_names(request).await)
    }

    async fn label_values(
        &self,
        request: Request<LabelValuesRequest>,
    ) -> Result<Response<LabelValuesResponse>, Status> {
        let started = std::time::Instant::now();
        timed(&self.opts.metrics, "LabelValues", started, self.answer_label_values(request).await)
    }
}

/// The `without_replica_labels` that are external labels (only those are removed).
fn stripped(without: &[String], external_names: &[String]) -> Vec<String> {
    without.iter().filter(|n| external_names.contains(n)).cloned().collect()
}
