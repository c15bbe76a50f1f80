//! The querier's merged view over many series sources (Thanos's proxy store).
//!
//! ```text
//!                      ┌─ prune: time range, external-label matchers (per member label sets)
//!  select ──► Fanout ──┼─ query the rest concurrently (--store.response-timeout per frame)
//!                      ├─ a failed member: WARN → warning in req.warnings, ABORT → error
//!                      └─ merge: one label-ordered list, equal label sets chained
//! ```
//!
//! Members come from a [`MemberSet`]: a fixed list of in-process sources ([`StaticMembers`],
//! e.g. the embedded bucket) or the health-checked remote endpoints of
//! [`endpoints::EndpointSet`], or both ([`Members`]). A [`Fanout`] is cheap to clone; the HTTP
//! API makes a per-request view with the request's partial-response strategy and warnings sink.

pub mod discovery;
pub mod endpoints;
mod merge;
pub mod store_endpoint;
#[cfg(test)]
mod tests;

pub use merge::merge_series;

use crate::source::{Part, SelectRequest, SeriesSource, SeriesStream, Warnings};
use crate::{Error, Labels, Matcher, Result};
use async_trait::async_trait;
use futures::StreamExt;
use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What to do when a member fails or times out (Thanos's `PartialResponseStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartialResponse {
    /// Answer with the other members' data and a warning.
    #[default]
    Warn,
    /// Fail the request.
    Abort,
}

/// Fan-out behaviour.
#[derive(Debug, Clone, Default)]
pub struct FanoutOptions {
    /// Default strategy when a request does not choose one.
    pub partial_response: PartialResponse,
    /// Longest wait for a member's next frame (`--store.response-timeout`); `None`: no limit.
    pub response_timeout: Option<Duration>,
}

/// One member as a query sees it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its name in warnings and logs (an address, or `bucket`).
    pub name: String,
    /// The source, or `None` when the member is unhealthy (it then counts as failed).
    pub source: Option<Arc<dyn SeriesSource>>,
    /// Why it is unhealthy, when it is.
    pub problem: Option<String>,
    /// Its external label sets (Thanos Info `label_sets`); empty: unknown, never pruned.
    pub label_sets: Vec<Labels>,
    /// Earliest sample it may hold (ms).
    pub min_time: i64,
    /// Latest sample it may hold (ms).
    pub max_time: i64,
}

impl Member {
    /// A healthy in-process member: label sets and time range come from the source.
    pub fn of_source(name: impl Into<String>, source: Arc<dyn SeriesSource>) -> Self {
        let ext = source.external_labels();
        let label_sets = if ext.is_empty() { Vec::new() } else { vec![ext.clone()] };
        let (min_time, max_time) = source.time_range();
        Member { name: name.into(), source: Some(source), problem: None, label_sets, min_time, max_time }
    }

    /// May this member hold series matching `matchers` in `[min, max]`?
    pub fn wanted(&self, matchers: &[Matcher], min: i64, max: i64) -> bool {
        self.max_time >= min && self.min_time <= max && label_sets_match(matchers, &self.label_sets)
    }
}

/// Thanos's store matching on external labels: a label set matches when every matcher whose
/// label it carries matches; no label sets match everything.
pub fn label_sets_match(matchers: &[Matcher], sets: &[Labels]) -> bool {
    sets.is_empty()
        || sets
            .iter()
            .any(|set| matchers.iter().all(|m| set.get(&m.name).is_none_or(|v| m.matches_value(Some(v)))))
}

/// What a query asks of its members beyond the select request: how partial a remote member's
/// own answer may be (a querier endpoint fans out further) and where label calls report
/// warnings.
#[derive(Debug, Clone, Default)]
pub struct MemberContext {
    /// The request's partial-response strategy.
    pub partial_response: PartialResponse,
    /// The request's warnings sink for label names and values.
    pub warnings: Option<Warnings>,
}

/// The current members of a fan-out.
pub trait MemberSet: Send + Sync + std::fmt::Debug {
    /// A snapshot of the members a query with `ctx` should consider.
    fn members(&self, ctx: &MemberContext) -> Vec<Member>;
}

/// Fixed in-process sources (the embedded bucket, tests).
#[derive(Debug, Clone, Default)]
pub struct StaticMembers(pub Vec<(String, Arc<dyn SeriesSource>)>);

impl MemberSet for StaticMembers {
    fn members(&self, _: &MemberContext) -> Vec<Member> {
        self.0.iter().map(|(n, s)| Member::of_source(n.clone(), s.clone())).collect()
    }
}

/// Several member sets as one.
#[derive(Debug, Clone, Default)]
pub struct Members(pub Vec<Arc<dyn MemberSet>>);

impl MemberSet for Members {
    fn members(&self, ctx: &MemberContext) -> Vec<Member> {
        self.0.iter().flat_map(|s| s.members(ctx)).collect()
    }
}

/// The merged view over a [`MemberSet`].
#[derive(Debug, Clone)]
pub struct Fanout {
    set: Arc<dyn MemberSet>,
    opts: FanoutOptions,
    warnings: Option<Warnings>,
    /// End every select that collected warnings with an error (see [`Fanout::for_store_api`]).
    report_at_end: bool,
    empty: Labels,
}

impl Fanout {
    /// A fan-out over `set`.
    pub fn new(set: Arc<dyn MemberSet>, opts: FanoutOptions) -> Self {
        Fanout { set, opts, warnings: None, report_at_end: false, empty: Labels::default() }
    }

    /// The view a StoreAPI server serves, which applies each request's own strategy: failed
    /// members become warnings (their data is kept) and a select that collected any ends with
    /// an error item after the last batch. The server then answers the data plus a warning under
    /// WARN and a gRPC error under ABORT, as Thanos's querier does.
    pub fn for_store_api(&self) -> Self {
        let mut f = self.with_partial_response(PartialResponse::Warn);
        f.report_at_end = true;
        f
    }

    /// The same view with another partial-response strategy.
    pub fn with_partial_response(&self, strategy: PartialResponse) -> Self {
        let mut f = self.clone();
        f.opts.partial_response = strategy;
        f
    }

    /// The same view, reporting label-call warnings to `warnings` (selects report to the
    /// request's own sink).
    pub fn with_warnings(&self, warnings: Warnings) -> Self {
        let mut f = self.clone();
        f.warnings = Some(warnings);
        f
    }

    /// The options in force.
    pub fn options(&self) -> &FanoutOptions {
        &self.opts
    }

    /// The current members, as this view's requests see them.
    pub fn members(&self) -> Vec<Member> {
        let ctx =
            MemberContext { partial_response: self.opts.partial_response, warnings: self.warnings.clone() };
        self.set.members(&ctx)
    }

    /// Handles a member failure by the strategy: a warning (Ok) or the error.
    fn failed(&self, sink: Option<&Warnings>, member: &str, reason: &str) -> Result<()> {
        let msg = if reason.starts_with(member) { reason.to_string() } else { format!("{member}: {reason}") };
        match self.opts.partial_response {
            PartialResponse::Warn => {
                tracing::warn!(member, reason, "partial response");
                if let Some(w) = sink {
                    w.push(msg);
                }
                Ok(())
            }
            PartialResponse::Abort => Err(Error::Unavailable(msg)),
        }
    }

    /// Runs `call` on every member concurrently, each bounded by `timeout`; failures go through
    /// the strategy.
    async fn each<T, F, Fut>(
        &self,
        members: Vec<Member>,
        sink: Option<&Warnings>,
        timeout: Option<Duration>,
        call: F,
    ) -> Result<Vec<T>>
    where
        F: Fn(Arc<dyn SeriesSource>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let calls = members.iter().map(|m| {
            let fut = m.source.clone().map(&call);
            async move {
                match fut {
                    None => Err(m.problem.clone().unwrap_or_else(|| "unhealthy".into())),
                    Some(f) => within(timeout, f).await,
                }
            }
        });
        let results = futures::future::join_all(calls).await;
        let mut out = Vec::with_capacity(results.len());
        for (m, r) in members.iter().zip(results) {
            match r {
                Ok(v) => out.push(v),
                Err(reason) => self.failed(sink, &m.name, &reason)?,
            }
        }
        Ok(out)
    }
}

impl Fanout {
    /// The union of `call`'s answers from the members whose external labels may match
    /// `matchers` and whose data overlaps `[min, max]`: each item once, in the order of `C` (the
    /// set the answers are gathered in). Failures go through the strategy, reported to `sink`.
    async fn union_between<C, T, F, Fut>(
        &self,
        matchers: &[Matcher],
        (min, max): (i64, i64),
        sink: Option<&Warnings>,
        call: F,
    ) -> Result<Vec<T>>
    where
        C: FromIterator<T> + IntoIterator<Item = T>,
        F: Fn(Arc<dyn SeriesSource>) -> Fut,
        Fut: Future<Output = Result<Vec<T>>>,
    {
        let wanted = self.members().into_iter().filter(|m| m.wanted(matchers, min, max)).collect();
        let lists = self.each(wanted, sink, self.opts.response_timeout, call).await?;
        Ok(lists.into_iter().flatten().collect::<C>().into_iter().collect())
    }

    /// Selects from the wanted members and merges their answers.
    async fn select_members(&self, req: &SelectRequest) -> Result<SeriesStream> {
        let timeout = self.opts.response_timeout;
        let wanted: Vec<Member> = self
            .members()
            .into_iter()
            .filter(|m| m.wanted(&req.matchers, req.min_time, req.max_time))
            .collect();
        // One healthy member (the embedded bucket alone, one endpoint): its stream as it is,
        // nothing to merge.
        if let [m] = wanted.as_slice()
            && let Some(src) = m.source.clone()
        {
            return match within(timeout, src.select(req)).await {
                Ok(stream) => Ok(self.guarded(stream, m.name.clone(), req.warnings.clone())),
                Err(reason) => {
                    self.failed(Some(&req.warnings), &m.name, &reason)?;
                    Ok(Box::pin(futures::stream::empty()))
                }
            };
        }
        let lists = self
            .each(
                wanted,
                Some(&req.warnings),
                // The response timeout applies per frame, inside `collect`.
                None,
                |src| collect(src, req.clone(), timeout),
            )
            .await?;
        Ok(crate::source::parts_stream(merge_series(lists)))
    }
}

impl Fanout {
    /// A member's stream with the response timeout per frame; a failure mid-stream ends it with
    /// a warning (WARN) or an error (ABORT).
    fn guarded(&self, stream: SeriesStream, member: String, warnings: Warnings) -> SeriesStream {
        let timeout = self.opts.response_timeout;
        let fanout = self.clone();
        let state = Some((stream, member, warnings, fanout));
        Box::pin(futures::stream::unfold(state, move |state| async move {
            let (mut stream, member, warnings, fanout) = state?;
            let next = match timeout {
                None => stream.next().await,
                Some(d) => match tokio::time::timeout(d, stream.next()).await {
                    Ok(n) => n,
                    Err(_) => {
                        Some(Err(Error::Unavailable(format!("no data within the response timeout of {d:?}"))))
                    }
                },
            };
            match next {
                None => None,
                Some(Ok(batch)) => Some((Ok(batch), Some((stream, member, warnings, fanout)))),
                Some(Err(e)) => match fanout.failed(Some(&warnings), &member, &e.to_string()) {
                    Ok(()) => None,
                    Err(e) => Some((Err(e), None)),
                },
            }
        }))
    }
}

/// `fut` bounded by `timeout`; errors as messages.
async fn within<T>(timeout: Option<Duration>, fut: impl Future<Output = Result<T>>) -> Result<T, String> {
    match timeout {
        None => fut.await.map_err(|e| e.to_string()),
        Some(d) => match tokio::time::timeout(d, fut).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within the response timeout of {d:?}")),
        },
    }
}

/// Reads a whole select from one source, waiting at most `timeout` for each frame.
async fn collect(
    source: Arc<dyn SeriesSource>,
    req: SelectRequest,
    timeout: Option<Duration>,
) -> Result<Vec<(Labels, Part)>> {
    let timed_out = |d: Duration| Error::Unavailable(format!("no data within the response timeout of {d:?}"));
    let mut stream = match timeout {
        None => source.select(&req).await?,
        Some(d) => tokio::time::timeout(d, source.select(&req)).await.map_err(|_| timed_out(d))??,
    };
    let mut out = Vec::new();
    loop {
        let next = match timeout {
            None => stream.next().await,
            Some(d) => tokio::time::timeout(d, stream.next()).await.map_err(|_| timed_out(d))?,
        };
        match next {
            Some(batch) => out.extend(batch?.parts()?),
            None => return Ok(out),
        }
    }
}

#[async_trait]
impl SeriesSource for Fanout {
    async fn select(&self, req: &SelectRequest) -> Result<SeriesStream> {
        let stream = self.select_members(req).await?;
        if !self.report_at_end {
            return Ok(stream);
        }
        let warnings = req.warnings.clone();
        let end = futures::stream::once(async move {
            // The server records it once more as a warning under WARN (Warnings keeps
            // duplicates once), or fails the call under ABORT.
            warnings.get().into_iter().next().map(|first| Err(Error::Unavailable(first)))
        })
        .filter_map(std::future::ready);
        Ok(Box::pin(stream.chain(end)))
    }

    /// The union over the members whose data overlaps the window.
    async fn series_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
        warnings: &Warnings,
    ) -> Result<Vec<Labels>> {
        self.union_between::<HashSet<Labels>, _, _, _>(
            matchers,
            (min_time, max_time),
            Some(warnings),
            |src| async move { src.series_between(matchers, min_time, max_time, warnings).await },
        )
        .await
    }

    /// The union over the members whose data overlaps the window.
    async fn label_names_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        let sink = self.warnings.as_ref();
        self.union_between::<BTreeSet<String>, _, _, _>(
            matchers,
            (min_time, max_time),
            sink,
            |src| async move { src.label_names_between(matchers, min_time, max_time).await },
        )
        .await
    }

    /// The union over the members whose data overlaps the window.
    async fn label_values_between(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        let sink = self.warnings.as_ref();
        self.union_between::<BTreeSet<String>, _, _, _>(
            matchers,
            (min_time, max_time),
            sink,
            |src| async move { src.label_values_between(name, matchers, min_time, max_time).await },
        )
        .await
    }

    /// The union over every member, unhealthy ones included (their last known range, or all
    /// time): a querier above must not prune this one while its members' failures still count.
    /// With no members at all, all time.
    fn time_range(&self) -> (i64, i64) {
        let members = self.members();
        if members.is_empty() {
            return (i64::MIN, i64::MAX);
        }
        members.iter().fold((i64::MAX, i64::MIN), |acc, m| (acc.0.min(m.min_time), acc.1.max(m.max_time)))
    }

    fn external_labels(&self) -> &Labels {
        &self.empty
    }

    /// Every member's external label sets (an unhealthy one's last known), deduplicated: what a
    /// querier advertises in its own Info, so the querier above can prune it.
    async fn label_sets(&self) -> Vec<Labels> {
        let mut out: Vec<Labels> = Vec::new();
        for m in self.members() {
            let sets = match &m.source {
                Some(src) if m.label_sets.is_empty() => src.label_sets().await,
                _ => m.label_sets,
            };
            for set in sets {
                if !out.contains(&set) {
                    out.push(set);
                }
            }
        }
        out.sort_by(|a, b| a.block_order(b));
        out
    }
}
