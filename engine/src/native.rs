//! Native Prometheus/Thanos TSDB blocks as a [`SeriesSource`].

use crate::source::{SelectRequest, SeriesBatch, SeriesSource, SeriesStream};
use crate::{Labels, Matcher, Result, matcher::matches_all, overlaps};
use async_trait::async_trait;
use promlake_compat::{NativeBlock, SeriesEntry};
use std::collections::BTreeSet;

/// Series per batch of a select.
const SELECT_BATCH_SERIES: usize = 1024;

/// A native block opened for queries; labels include the block's external labels.
#[derive(Debug)]
pub struct NativeSource {
    block: NativeBlock,
    labels: Vec<Labels>,
    external: Labels,
}

impl NativeSource {
    /// Wraps an open native block.
    pub fn new(block: NativeBlock) -> Self {
        let external =
            Labels::from_pairs(block.meta().thanos.as_ref().map(|t| t.labels.clone()).unwrap_or_default());
        let labels = block
            .series()
            .iter()
            .map(|s| Labels::from_pairs(s.labels.iter().cloned()).merged(&external))
            .collect();
        NativeSource { block, labels, external }
    }

    fn matching<'a>(&'a self, matchers: &'a [Matcher]) -> impl Iterator<Item = usize> + 'a {
        (0..self.labels.len()).filter(move |&i| matches_all(matchers, &self.labels[i]))
    }
}

#[async_trait]
impl SeriesSource for NativeSource {
    async fn select(&self, req: &SelectRequest) -> Result<SeriesStream> {
        let all = self.block.series();
        let mut wanted: Vec<usize> = self
            .matching(&req.matchers)
            .filter(|&i| {
                all[i].chunks.iter().any(|c| c.max_time >= req.min_time && c.min_time <= req.max_time)
            })
            .collect();
        wanted.sort_by(|&a, &b| self.labels[a].block_order(&self.labels[b]));
        let mut out = Vec::new();
        for group in wanted.chunks(SELECT_BATCH_SERIES) {
            let entries: Vec<&SeriesEntry> = group.iter().map(|&i| &all[i]).collect();
            let range = self.block.fetch_chunks(&entries).await?;
            let mut series = Vec::with_capacity(group.len());
            for (&i, e) in group.iter().zip(&entries) {
                let (mut ts, mut vals) = (Vec::new(), Vec::new());
                self.block.decode_series(e, &range, &mut ts, &mut vals)?;
                let keep: Vec<usize> =
                    (0..ts.len()).filter(|&k| ts[k] >= req.min_time && ts[k] <= req.max_time).collect();
                if !keep.is_empty() {
                    series.push((
                        self.labels[i].clone(),
                        keep.iter().map(|&k| ts[k]).collect(),
                        keep.iter().map(|&k| vals[k]).collect(),
                    ));
                }
            }
            out.push(SeriesBatch::from_series(series));
        }
        Ok(Box::pin(futures::stream::iter(out)))
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
        for i in self.matching(matchers) {
            names.extend(self.labels[i].iter().map(|l| l.name.clone()));
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
        for i in self.matching(matchers) {
            if let Some(v) = self.labels[i].get(name) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }

    fn time_range(&self) -> (i64, i64) {
        (self.block.meta().min_time, self.block.meta().max_time)
    }

    fn external_labels(&self) -> &Labels {
        &self.external
    }
}
