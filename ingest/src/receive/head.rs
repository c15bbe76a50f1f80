//! The in-memory head of one tenant: every series written since the last block cut, with
//! interned labels, a hash index for appends, a metric-name index for selects, and samples
//! as XOR chunks ([`MemSeries`]). It implements [`SeriesSource`] so the StoreAPI and PromQL
//! read fresh data from it.
//!
//! Appends run under the head's write lock together with the WAL append, so the WAL holds
//! records in exactly the order the head applied them and a replay rebuilds the same head.

use super::series::{MemSeries, Reject, SymLabel};
use crate::{Error, Result};
use async_trait::async_trait;
use promlake_engine::matcher::matches_all;
use promlake_engine::source::{SelectRequest, SeriesBatch, SeriesSource, SeriesStream};
use promlake_engine::{Labels, MatchOp, Matcher, overlaps};
use promlake_proto::prometheus::{TimeSeries, WriteRequest};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Series per [`SeriesBatch`] of a select.
const BATCH_SERIES: usize = 1024;

/// What happened to one request's samples.
#[derive(Debug, Default, Clone)]
pub struct AppendResult {
    /// Samples appended.
    pub appended: u64,
    /// Samples older than the newest sample of their series.
    pub out_of_order: u64,
    /// Samples at the timestamp of the newest sample of their series with another value.
    pub duplicate: u64,
    /// Samples older than the head accepts (their block was already cut).
    pub out_of_bounds: u64,
    /// Series rejected for their labels.
    pub invalid_series: u64,
    /// Native histogram samples (not stored: Parquet format v1 has no histograms).
    pub histograms: u64,
    /// A description of the first conflicting sample.
    pub first_conflict: Option<String>,
    /// A description of the first invalid series.
    pub first_invalid: Option<String>,
    /// Series created by this request.
    pub new_series: u64,
    /// WAL sequence number of the record holding the appended samples.
    pub wal_seq: Option<u64>,
}

impl AppendResult {
    /// Samples rejected as conflicts (HTTP 409).
    pub fn conflicts(&self) -> u64 {
        self.out_of_order + self.duplicate + self.out_of_bounds
    }

    /// The HTTP status and message a client gets (Thanos receive's codes): 400 when series
    /// had invalid labels or histograms, 409 when samples conflicted, else 200 (empty message).
    pub fn status(&self, tenant: &str) -> (u16, String) {
        let r = self;
        if r.invalid_series > 0 || r.histograms > 0 {
            let mut parts = Vec::new();
            if r.invalid_series > 0 {
                parts.push(format!(
                    "{} series with invalid labels were rejected; first: {}",
                    r.invalid_series,
                    r.first_invalid.as_deref().unwrap_or("")
                ));
            }
            if r.histograms > 0 {
                parts
                    .push(format!("{} native histogram samples were rejected (not supported)", r.histograms));
            }
            return (
                400,
                format!("tenant {tenant:?}: {}; {} other samples were stored", parts.join("; "), r.appended),
            );
        }
        if r.conflicts() > 0 {
            return (
                409,
                format!(
                    "tenant {tenant:?}: {} samples conflict ({} out of order, {} duplicate sample for timestamp, {} out of bounds) and were not stored; {} other samples were stored; first: {}",
                    r.conflicts(),
                    r.out_of_order,
                    r.duplicate,
                    r.out_of_bounds,
                    r.appended,
                    r.first_conflict.as_deref().unwrap_or("")
                ),
            );
        }
        (200, String::new())
    }
}

struct Inner {
    series: Vec<MemSeries>,
    by_hash: HashMap<u64, Vec<u32>>,
    by_name: HashMap<Arc<str>, Vec<u32>>,
    symbols: HashSet<Arc<str>>,
    /// Samples before this are rejected (their window was cut into a block).
    min_valid_t: i64,
    max_t: i64,
}

/// One tenant's head.
pub struct Head {
    tenant: String,
    external: Labels,
    block_ms: i64,
    /// xxhash64 of the label pairs (collisions are resolved by comparing labels).
    hasher: BuildHasherDefault<twox_hash::XxHash64>,
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head").field("tenant", &self.tenant).field("external", &self.external).finish()
    }
}

/// Thanos's label validation (`labelpb.ValidateLabels`): non-empty, no empty names or values,
/// names strictly increasing.
pub fn validate_labels(ts: &TimeSeries) -> std::result::Result<(), &'static str> {
    let mut prev: Option<&str> = None;
    if ts.labels.is_empty() {
        return Err("empty label set");
    }
    for l in &ts.labels {
        if l.name.is_empty() || l.value.is_empty() {
            return Err("label set contains a label with empty name or value");
        }
        if let Some(p) = prev {
            if l.name == p {
                return Err("label set contains duplicate label names");
            }
            if l.name.as_str() < p {
                return Err("label set is not sorted by label name");
            }
        }
        prev = Some(&l.name);
    }
    Ok(())
}

fn describe(ts: &TimeSeries) -> String {
    Labels::from_pairs(ts.labels.iter().map(|l| (l.name.as_str(), l.value.as_str()))).to_string()
}

impl Head {
    /// An empty head for `tenant`; `external` are the labels added to every series (the
    /// receiver's `--label`s and the tenant label); `block_ms` aligns chunk boundaries.
    pub fn new(tenant: impl Into<String>, external: Labels, block_ms: i64) -> Self {
        Head {
            tenant: tenant.into(),
            external,
            block_ms,
            hasher: BuildHasherDefault::default(),
            inner: RwLock::new(Inner {
                series: Vec::new(),
                by_hash: HashMap::new(),
                by_name: HashMap::new(),
                symbols: HashSet::new(),
                min_valid_t: i64::MIN,
                max_t: i64::MIN,
            }),
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Block duration (ms) chunks are aligned to.
    pub fn block_ms(&self) -> i64 {
        self.block_ms
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn hash(&self, ts: &TimeSeries) -> u64 {
        let mut h = self.hasher.build_hasher();
        for l in &ts.labels {
            l.name.hash(&mut h);
            l.value.hash(&mut h);
        }
        h.finish()
    }

    fn lookup(inner: &Inner, hash: u64, ts: &TimeSeries) -> Option<u32> {
        inner.by_hash.get(&hash)?.iter().copied().find(|&r| {
            inner.series.get(r as usize).is_some_and(|s| {
                s.labels.len() == ts.labels.len()
                    && s.labels.iter().zip(&ts.labels).all(|(a, b)| *a.0 == *b.name && *a.1 == *b.value)
            })
        })
    }

    /// Samples older than this are rejected as out of bounds.
    pub fn set_min_valid_time(&self, t: i64) {
        let mut inner = self.write();
        inner.min_valid_t = inner.min_valid_t.max(t);
    }

    /// Appends `req` (labels already checked by the caller are re-checked here) and, still under
    /// the lock, hands the protobuf bytes of what was appended to `log` (the WAL), which returns
    /// a sequence number. `raw` is the request as received: logged as is when every sample was
    /// accepted. `series_limit` (0: none) rejects the whole request with
    /// [`Error::TooManySeries`] when it would create series beyond the limit.
    pub fn append(
        &self,
        req: &WriteRequest,
        raw: Option<&[u8]>,
        series_limit: u64,
        log: impl FnOnce(&[u8], i64) -> Result<u64>,
    ) -> Result<AppendResult> {
        let mut inner = self.write();
        let hashes: Vec<u64> = req.timeseries.iter().map(|ts| self.hash(ts)).collect();
        if series_limit > 0 {
            let new: HashSet<u64> = req
                .timeseries
                .iter()
                .zip(&hashes)
                .filter(|(ts, h)| Self::lookup(&inner, **h, ts).is_none())
                .map(|(_, h)| *h)
                .collect();
            let total = inner.series.len() as u64 + new.len() as u64;
            if !new.is_empty() && total > series_limit {
                return Err(Error::TooManySeries(format!(
                    "tenant {:?}: {} new series would exceed the head series limit of {series_limit} (the head holds {})",
                    self.tenant,
                    new.len(),
                    inner.series.len()
                )));
            }
        }
        let mut res = AppendResult::default();
        // (series index, sample index) of rejected samples; whole series rejected have all.
        let mut rejected: Vec<(usize, Option<usize>)> = Vec::new();
        let mut max_ts = i64::MIN;
        for (i, (ts, &h)) in req.timeseries.iter().zip(&hashes).enumerate() {
            res.histograms += ts.histograms.len() as u64;
            if let Err(reason) = validate_labels(ts) {
                res.invalid_series += 1;
                res.first_invalid.get_or_insert_with(|| format!("{reason}: {}", describe(ts)));
                rejected.push((i, None));
                continue;
            }
            if ts.samples.is_empty() {
                continue;
            }
            let r = match Self::lookup(&inner, h, ts) {
                Some(r) => r,
                None => {
                    res.new_series += 1;
                    self.create(&mut inner, h, ts)?
                }
            };
            let min_valid = inner.min_valid_t;
            let block_ms = self.block_ms;
            let Some(series) = inner.series.get_mut(r as usize) else { continue };
            for (j, s) in ts.samples.iter().enumerate() {
                let verdict = if s.timestamp < min_valid {
                    Err(None)
                } else {
                    series.check(s.timestamp, s.value).map_err(Some)
                };
                match verdict {
                    Ok(true) => {
                        series.append(s.timestamp, s.value, block_ms);
                        res.appended += 1;
                        max_ts = max_ts.max(s.timestamp);
                    }
                    Ok(false) => rejected.push((i, Some(j))),
                    Err(why) => {
                        let what = match why {
                            None => {
                                res.out_of_bounds += 1;
                                "out of bounds"
                            }
                            Some(Reject::OutOfOrder) => {
                                res.out_of_order += 1;
                                "out of order sample"
                            }
                            Some(Reject::Duplicate) => {
                                res.duplicate += 1;
                                "duplicate sample for timestamp"
                            }
                        };
                        res.first_conflict.get_or_insert_with(|| {
                            format!(
                                "{what}: series {} timestamp {} (newest in the head: {})",
                                describe(ts),
                                s.timestamp,
                                series.last_t()
                            )
                        });
                        rejected.push((i, Some(j)));
                    }
                }
            }
        }
        inner.max_t = inner.max_t.max(max_ts);
        if res.appended > 0 {
            let seq = match raw {
                Some(raw) if rejected.is_empty() && res.histograms == 0 => log(raw, max_ts)?,
                _ => log(&prost::Message::encode_to_vec(&filtered(req, &rejected)), max_ts)?,
            };
            res.wal_seq = Some(seq);
        }
        Ok(res)
    }

    fn create(&self, inner: &mut Inner, hash: u64, ts: &TimeSeries) -> Result<u32> {
        let r = u32::try_from(inner.series.len()).map_err(|_| {
            Error::TooManySeries(format!("tenant {:?}: 2^32 series in one head", self.tenant))
        })?;
        let mut intern = |s: &str| -> Arc<str> {
            if let Some(a) = inner.symbols.get(s) {
                return a.clone();
            }
            let a: Arc<str> = s.into();
            inner.symbols.insert(a.clone());
            a
        };
        let labels: Box<[SymLabel]> = ts.labels.iter().map(|l| (intern(&l.name), intern(&l.value))).collect();
        if let Some((_, name)) = labels.iter().find(|l| &*l.0 == promlake_engine::labels::METRIC_NAME) {
            inner.by_name.entry(name.clone()).or_default().push(r);
        }
        inner.series.push(MemSeries::new(labels));
        inner.by_hash.entry(hash).or_default().push(r);
        Ok(r)
    }

    fn full_labels(&self, s: &MemSeries) -> Labels {
        Labels::from_pairs(
            s.labels
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .chain(self.external.iter().map(|l| (l.name.clone(), l.value.clone()))),
        )
    }

    fn own_labels(s: &MemSeries) -> Labels {
        Labels::from_pairs(s.labels.iter().map(|(n, v)| (n.to_string(), v.to_string())))
    }

    /// Series indexes worth checking against `matchers` (by metric name when one is given).
    fn candidates(inner: &Inner, matchers: &[Matcher]) -> Vec<u32> {
        let by_name = matchers
            .iter()
            .find(|m| m.op == MatchOp::Equal && m.name == promlake_engine::labels::METRIC_NAME);
        match by_name {
            Some(m) => inner.by_name.get(m.value.as_str()).cloned().unwrap_or_default(),
            None => (0..inner.series.len() as u32).collect(),
        }
    }

    /// Series (full labels) matching `matchers` with their samples in `[min, max]`, in block order.
    pub fn select_series(
        &self,
        matchers: &[Matcher],
        min: i64,
        max: i64,
    ) -> Vec<(Labels, Vec<i64>, Vec<f64>)> {
        let inner = self.read();
        let mut out = Vec::new();
        for r in Self::candidates(&inner, matchers) {
            let Some(s) = inner.series.get(r as usize) else { continue };
            let labels = self.full_labels(s);
            if !matches_all(matchers, &labels) {
                continue;
            }
            let (ts, vs) = s.samples(min, max);
            if !ts.is_empty() {
                out.push((labels, ts, vs));
            }
        }
        drop(inner);
        out.sort_by(|a, b| a.0.block_order(&b.0));
        out
    }

    /// Label sets (full) of series matching `matchers`.
    pub fn label_sets(&self, matchers: &[Matcher]) -> Vec<Labels> {
        let inner = self.read();
        Self::candidates(&inner, matchers)
            .into_iter()
            .filter_map(|r| inner.series.get(r as usize))
            .filter(|s| !s.is_empty())
            .map(|s| self.full_labels(s))
            .filter(|l| matches_all(matchers, l))
            .collect()
    }

    /// Number of series.
    pub fn num_series(&self) -> usize {
        self.read().series.len()
    }

    /// Earliest sample held, newest sample appended.
    pub fn bounds(&self) -> (Option<i64>, i64) {
        let inner = self.read();
        (inner.series.iter().filter_map(MemSeries::min_t).min(), inner.max_t)
    }

    /// Estimated bytes of memory held (series, chunks, symbols, indexes).
    pub fn memory_bytes(&self) -> usize {
        let inner = self.read();
        let series: usize = inner.series.iter().map(MemSeries::memory_bytes).sum();
        let symbols: usize = inner.symbols.iter().map(|s| s.len() + 16 + 16).sum();
        let index = inner.by_hash.len() * (8 + 24 + 8) + inner.series.len() * 8;
        series + symbols + index + inner.series.capacity().saturating_sub(inner.series.len()) * 64
    }

    /// Starts cutting the window ending at `end`: from now on samples before `end` are rejected,
    /// and the series' own labels (no external labels) with their samples before `end` are
    /// returned in block order. The head keeps serving them until [`Self::finish_cut`].
    pub fn begin_cut(&self, end: i64) -> Vec<(Labels, Vec<i64>, Vec<f64>)> {
        let mut inner = self.write();
        inner.min_valid_t = inner.min_valid_t.max(end);
        drop(inner);
        let inner = self.read();
        let mut out: Vec<(Labels, Vec<i64>, Vec<f64>)> = inner
            .series
            .iter()
            .filter(|s| s.min_t().is_some_and(|t| t < end))
            .map(|s| {
                let (ts, vs) = s.samples_before(end);
                (Self::own_labels(s), ts, vs)
            })
            .filter(|s| !s.1.is_empty())
            .collect();
        drop(inner);
        out.sort_by(|a, b| a.0.block_order(&b.0));
        out
    }

    /// Drops the samples before `end` (now in the bucket) and series left without samples.
    pub fn finish_cut(&self, end: i64) {
        let mut inner = self.write();
        let old = std::mem::take(&mut inner.series);
        inner.by_hash.clear();
        inner.by_name.clear();
        let mut kept = Vec::with_capacity(old.len());
        let mut used: HashSet<Arc<str>> = HashSet::new();
        for mut s in old {
            s.drop_before(end);
            if s.is_empty() {
                continue;
            }
            let r = kept.len() as u32;
            let mut h = self.hasher.build_hasher();
            for (n, v) in s.labels.iter() {
                // Same as hashing the request's `String`s in `hash`.
                (**n).hash(&mut h);
                (**v).hash(&mut h);
                used.insert(n.clone());
                used.insert(v.clone());
            }
            inner.by_hash.entry(h.finish()).or_default().push(r);
            if let Some((_, name)) = s.labels.iter().find(|l| &*l.0 == promlake_engine::labels::METRIC_NAME) {
                inner.by_name.entry(name.clone()).or_default().push(r);
            }
            kept.push(s);
        }
        inner.series = kept;
        inner.symbols = used;
    }
}

/// `req` without the rejected series and samples (and without histograms and exemplars).
fn filtered(req: &WriteRequest, rejected: &[(usize, Option<usize>)]) -> WriteRequest {
    let mut out = WriteRequest::default();
    let mut rej = rejected.iter().peekable();
    for (i, ts) in req.timeseries.iter().enumerate() {
        let mut skip_series = false;
        let mut skip: BTreeSet<usize> = BTreeSet::new();
        while let Some(&&(si, sj)) = rej.peek() {
            if si != i {
                break;
            }
            match sj {
                None => skip_series = true,
                Some(j) => {
                    skip.insert(j);
                }
            }
            rej.next();
        }
        if skip_series {
            continue;
        }
        let samples: Vec<_> =
            ts.samples.iter().enumerate().filter(|(j, _)| !skip.contains(j)).map(|(_, s)| *s).collect();
        if !samples.is_empty() {
            out.timeseries.push(TimeSeries { labels: ts.labels.clone(), samples, ..Default::default() });
        }
    }
    out
}

#[async_trait]
impl SeriesSource for Head {
    async fn select(&self, req: &SelectRequest) -> promlake_engine::Result<SeriesStream> {
        let series = self.select_series(&req.matchers, req.min_time, req.max_time);
        batches(series)
    }

    async fn label_names_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> promlake_engine::Result<Vec<String>> {
        if !overlaps(self.time_range(), min_time, max_time) {
            return Ok(Vec::new());
        }
        let names: BTreeSet<String> =
            self.label_sets(matchers).iter().flat_map(|l| l.iter().map(|l| l.name.clone())).collect();
        Ok(names.into_iter().collect())
    }

    async fn label_values_between(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> promlake_engine::Result<Vec<String>> {
        if !overlaps(self.time_range(), min_time, max_time) {
            return Ok(Vec::new());
        }
        let values: BTreeSet<String> =
            self.label_sets(matchers).iter().filter_map(|l| l.get(name).map(str::to_string)).collect();
        Ok(values.into_iter().collect())
    }

    fn time_range(&self) -> (i64, i64) {
        let (min, _) = self.bounds();
        (min.unwrap_or(self.read().min_valid_t.max(0)), i64::MAX)
    }

    fn external_labels(&self) -> &Labels {
        &self.external
    }
}

/// Splits selected series into a stream of batches.
pub fn batches(series: Vec<(Labels, Vec<i64>, Vec<f64>)>) -> promlake_engine::Result<SeriesStream> {
    let mut out = Vec::new();
    let mut it = series.into_iter().peekable();
    while it.peek().is_some() {
        let chunk: Vec<_> = it.by_ref().take(BATCH_SERIES).collect();
        out.push(SeriesBatch::from_series(chunk));
    }
    Ok(Box::pin(futures::stream::iter(out)))
}
