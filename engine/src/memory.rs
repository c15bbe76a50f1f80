//! An in-memory [`SeriesSource`]: series held as sorted vectors. Used by the PromQL test
//! runner (promqltest `load`) and, later, as the shape of the receive head.

use crate::source::{SelectRequest, SeriesBatch, SeriesSource, SeriesStream};
use crate::{Labels, Matcher, Result, matcher::matches_all, overlaps};
use async_trait::async_trait;
use std::collections::BTreeSet;

/// Series kept in memory, in block order.
#[derive(Debug, Default, Clone)]
pub struct MemorySource {
    series: Vec<(Labels, Vec<i64>, Vec<f64>)>,
    external: Labels,
}

impl MemorySource {
    /// Builds a source; series are sorted into block order and samples by time. Series with
    /// the same labels are merged (later samples at the same timestamp win).
    pub fn new(series: impl IntoIterator<Item = (Labels, Vec<i64>, Vec<f64>)>) -> Self {
        type Points = std::collections::BTreeMap<i64, f64>;
        let mut merged: std::collections::BTreeMap<String, (Labels, Points)> = Default::default();
        for (labels, ts, vals) in series {
            let key = labels.to_string();
            let entry = merged.entry(key).or_insert_with(|| (labels, Default::default()));
            for (t, v) in ts.into_iter().zip(vals) {
                entry.1.insert(t, v);
            }
        }
        let mut series: Vec<(Labels, Vec<i64>, Vec<f64>)> = merged
            .into_values()
            .map(|(l, s)| {
                let (ts, vals) = s.into_iter().unzip();
                (l, ts, vals)
            })
            .collect();
        series.sort_by(|a, b| a.0.block_order(&b.0));
        MemorySource { series, external: Labels::default() }
    }

    /// The same series with these external labels: selects, label names and values see every
    /// series with them merged in (external labels win), as block sources do.
    pub fn with_external_labels(mut self, external: Labels) -> Self {
        self.external = external;
        self
    }

    fn full(&self, labels: &Labels) -> Labels {
        if self.external.is_empty() { labels.clone() } else { labels.merged(&self.external) }
    }

    /// Every series.
    pub fn series(&self) -> &[(Labels, Vec<i64>, Vec<f64>)] {
        &self.series
    }
}

#[async_trait]
impl SeriesSource for MemorySource {
    async fn select(&self, req: &SelectRequest) -> Result<SeriesStream> {
        let mut out = Vec::new();
        for (labels, ts, vals) in &self.series {
            let labels = self.full(labels);
            if !matches_all(&req.matchers, &labels) {
                continue;
            }
            let lo = ts.partition_point(|&t| t < req.min_time);
            let hi = ts.partition_point(|&t| t <= req.max_time);
            if lo < hi {
                out.push((labels, ts[lo..hi].to_vec(), vals[lo..hi].to_vec()));
            }
        }
        if !self.external.is_empty() {
            out.sort_by(|a, b| a.0.block_order(&b.0));
        }
        let batch = SeriesBatch::from_series(out);
        Ok(Box::pin(futures::stream::iter([batch])))
    }

    async fn label_names_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        if !overlaps(self.time_range(), min_time, max_time) {
            return Ok(Vec::new());
        }
        let mut names = BTreeSet::new();
        for l in self.series.iter().map(|s| self.full(&s.0)).filter(|l| matches_all(matchers, l)) {
            names.extend(l.iter().map(|l| l.name.clone()));
        }
        Ok(names.into_iter().collect())
    }

    async fn label_values_between(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        if !overlaps(self.time_range(), min_time, max_time) {
            return Ok(Vec::new());
        }
        let mut values = BTreeSet::new();
        for l in self.series.iter().map(|s| self.full(&s.0)).filter(|l| matches_all(matchers, l)) {
            if let Some(v) = l.get(name) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }

    fn time_range(&self) -> (i64, i64) {
        let min = self.series.iter().filter_map(|s| s.1.first()).min().copied().unwrap_or(0);
        let max = self.series.iter().filter_map(|s| s.1.last()).max().copied().unwrap_or(0);
        (min, max)
    }

    fn external_labels(&self) -> &Labels {
        &self.external
    }
}
