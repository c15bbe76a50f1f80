//! Query-time deduplication of HA replicas (Thanos's `--query.replica-label`,
//! `reference/thanos.md` §5).
//!
//! ```text
//!  inner source ──select──► series with replica labels ──strip──► group equal label sets
//!                                                                   │ (replicas ordered by their
//!                                                                   ▼  original labels)
//!                                     penalty merge per group (counter-aware for rate & co)
//! ```
//!
//! [`DedupSource`] wraps any [`SeriesSource`] (usually the querier's fan-out): series that
//! differ only in replica labels are merged with [`penalty::merge_replicas`]; the counter
//! adjustment is on when the selector sits inside `rate`, `increase`, `irate` or `resets`
//! ([`SelectHints::func`](crate::SelectHints)). Label names and values leave the replica
//! labels out, as Thanos's stores do for `without_replica_labels`.

pub mod penalty;
#[cfg(test)]
mod tests;

use crate::source::{Part, SelectRequest, SeriesSource, SeriesStream, merge_overlapping};
use crate::{Labels, Matcher, Result, Warnings};
use async_trait::async_trait;
use futures::StreamExt;
use std::sync::Arc;

/// Is the counter adjustment wanted for this function around the selector (Thanos's
/// `isCounter`)?
pub fn is_counter_function(func: Option<&str>) -> bool {
    matches!(func, Some("rate" | "increase" | "irate" | "resets"))
}

/// How replicas are merged (Thanos's `--deduplication.func`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DedupFunc {
    /// The penalty algorithm: one replica at a time, switching across gaps.
    #[default]
    Penalty,
    /// Prometheus's chained merge: every timestamp of any replica, equal timestamps once (the
    /// first replica's value).
    Chain,
}

impl DedupFunc {
    /// Parses Thanos's names `penalty` and `chain`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "penalty" => Ok(DedupFunc::Penalty),
            "chain" => Ok(DedupFunc::Chain),
            other => Err(crate::Error::InvalidArgument(format!(
                "unknown deduplication function {other:?} (expected penalty or chain)"
            ))),
        }
    }
}

/// A source whose replicas (series equal but for the replica labels) are merged into one.
#[derive(Debug, Clone)]
pub struct DedupSource {
    inner: Arc<dyn SeriesSource>,
    replica_labels: Vec<String>,
    func: DedupFunc,
    external: Labels,
}

impl DedupSource {
    /// Deduplicates `inner` by `replica_labels` with the penalty algorithm; with no replica
    /// labels, series pass unchanged.
    pub fn new(inner: Arc<dyn SeriesSource>, replica_labels: Vec<String>) -> Self {
        let external = strip(inner.external_labels(), &replica_labels);
        DedupSource { inner, replica_labels, func: DedupFunc::Penalty, external }
    }

    /// The same with another merge function.
    pub fn with_func(mut self, func: DedupFunc) -> Self {
        self.func = func;
        self
    }

    /// The replica labels.
    pub fn replica_labels(&self) -> &[String] {
        &self.replica_labels
    }
}

/// `labels` without the replica labels.
pub fn strip(labels: &Labels, replica_labels: &[String]) -> Labels {
    if replica_labels.is_empty() || !labels.iter().any(|l| replica_labels.contains(&l.name)) {
        return labels.clone();
    }
    Labels::from_pairs(
        labels
            .iter()
            .filter(|l| !replica_labels.contains(&l.name))
            .map(|l| (l.name.clone(), l.value.clone())),
    )
}

/// Deduplicates a list of series: strips the replica labels, groups equal label sets and merges
/// each group with `func` (`counter`: the penalty merge's counter adjustment). The result is in
/// label order.
pub fn dedup_series(
    series: Vec<(Labels, Part)>,
    replica_labels: &[String],
    func: DedupFunc,
    counter: bool,
) -> Vec<(Labels, Part)> {
    let mut keyed: Vec<(Labels, Labels, Part)> =
        series.into_iter().map(|(l, part)| (strip(&l, replica_labels), l, part)).collect();
    keyed.sort_by(|a, b| a.0.block_order(&b.0).then_with(|| a.1.block_order(&b.1)));
    let mut out = Vec::with_capacity(keyed.len());
    let mut i = 0;
    while i < keyed.len() {
        let mut j = i + 1;
        while j < keyed.len() && keyed[j].0 == keyed[i].0 {
            j += 1;
        }
        let group = &keyed[i..j];
        // One replica: its samples as they are.
        if let [(key, _, part)] = group {
            out.push((key.clone(), part.clone()));
            i = j;
            continue;
        }
        let (ts, vs) = match func {
            DedupFunc::Penalty => {
                let replicas: Vec<(&[i64], &[f64])> =
                    group.iter().map(|s| (&s.2.0[..], &s.2.1[..])).collect();
                penalty::merge_replicas(&replicas, counter)
            }
            // Every timestamp of any replica once, in order; on equal timestamps the first
            // replica wins.
            DedupFunc::Chain => merge_overlapping(&group.iter().map(|s| s.2.clone()).collect::<Vec<_>>()),
        };
        out.push((group[0].0.clone(), (ts.into(), vs.into())));
        i = j;
    }
    out
}

#[async_trait]
impl SeriesSource for DedupSource {
    async fn select(&self, req: &SelectRequest) -> Result<SeriesStream> {
        if self.replica_labels.is_empty() {
            return self.inner.select(req).await;
        }
        let mut stream = self.inner.select(req).await?;
        let mut series = Vec::new();
        while let Some(batch) = stream.next().await {
            series.extend(batch?.parts()?);
        }
        let counter = is_counter_function(req.hints.func.as_deref());
        let series = dedup_series(series, &self.replica_labels, self.func, counter);
        Ok(crate::source::parts_stream(series.into_iter().map(|(l, p)| (l, vec![p])).collect()))
    }

    /// The inner series without the replica labels, each label set once.
    async fn series_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
        warnings: &Warnings,
    ) -> Result<Vec<Labels>> {
        let inner = self.inner.series_between(matchers, min_time, max_time, warnings).await?;
        let found: std::collections::HashSet<Labels> =
            inner.iter().map(|l| strip(l, &self.replica_labels)).collect();
        Ok(found.into_iter().collect())
    }

    async fn label_names_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        let mut names = self.inner.label_names_between(matchers, min_time, max_time).await?;
        names.retain(|n| !self.replica_labels.contains(n));
        Ok(names)
    }

    async fn label_values_between(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        if self.replica_labels.iter().any(|r| r == name) {
            return Ok(Vec::new());
        }
        self.inner.label_values_between(name, matchers, min_time, max_time).await
    }

    fn time_range(&self) -> (i64, i64) {
        self.inner.time_range()
    }

    fn external_labels(&self) -> &Labels {
        &self.external
    }
}
