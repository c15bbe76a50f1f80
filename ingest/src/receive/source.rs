//! What a receiver serves over the StoreAPI: every tenant's head plus the blocks it has
//! uploaded (those carrying its `--label`s), merged so a series that crosses a block cut comes
//! back as one series. Without `--label`s only the heads are served, since the bucket's other
//! blocks would be indistinguishable from this receiver's.

use super::head::batches;
use super::tenant::TenantsSource;
use async_trait::async_trait;
use futures::StreamExt;
use promlake_engine::catalog::BucketSource;
use promlake_engine::source::{SelectRequest, SeriesSource, SeriesStream};
use promlake_engine::{Labels, Matcher};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Heads and own uploaded blocks as one source.
#[derive(Debug)]
pub struct ReceiveSource {
    heads: TenantsSource,
    blocks: Option<Arc<BucketSource>>,
    own: Vec<Matcher>,
}

impl ReceiveSource {
    /// `blocks` is the bucket; only blocks whose external labels include `external` are read.
    pub fn new(heads: TenantsSource, blocks: Option<Arc<BucketSource>>, external: &Labels) -> Self {
        let own: Vec<Matcher> =
            external.iter().map(|l| Matcher::equal(l.name.clone(), l.value.clone())).collect();
        let blocks = if own.is_empty() { None } else { blocks };
        ReceiveSource { heads, blocks, own }
    }

    fn with_own(&self, matchers: &[Matcher]) -> Vec<Matcher> {
        matchers.iter().cloned().chain(self.own.iter().cloned()).collect()
    }
}

#[async_trait]
impl SeriesSource for ReceiveSource {
    async fn select(&self, req: &SelectRequest) -> promlake_engine::Result<SeriesStream> {
        let Some(blocks) = &self.blocks else { return self.heads.select(req).await };
        let mut merged: BTreeMap<String, (Labels, Vec<(i64, f64)>)> = BTreeMap::new();
        let block_req = SelectRequest { matchers: self.with_own(&req.matchers), ..req.clone() };
        let mut streams = vec![blocks.select(&block_req).await?, self.heads.select(req).await?];
        for stream in &mut streams {
            while let Some(batch) = stream.next().await {
                for (labels, ts, vals) in batch?.to_series() {
                    let e = merged.entry(labels.to_string()).or_insert_with(|| (labels, Vec::new()));
                    e.1.extend(ts.into_iter().zip(vals));
                }
            }
        }
        let mut series: Vec<(Labels, Vec<i64>, Vec<f64>)> = merged
            .into_values()
            .map(|(labels, mut points)| {
                points.sort_by_key(|p| p.0);
                points.dedup_by_key(|p| p.0);
                let (ts, vals) = points.into_iter().unzip();
                (labels, ts, vals)
            })
            .collect();
        series.sort_by(|a, b| a.0.block_order(&b.0));
        batches(series)
    }

    async fn label_names_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> promlake_engine::Result<Vec<String>> {
        let heads = self.heads.label_names_between(matchers, min_time, max_time).await?;
        let mut out: BTreeSet<String> = heads.into_iter().collect();
        if let Some(b) = &self.blocks {
            out.extend(b.label_names_between(&self.with_own(matchers), min_time, max_time).await?);
        }
        Ok(out.into_iter().collect())
    }

    async fn label_values_between(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> promlake_engine::Result<Vec<String>> {
        let heads = self.heads.label_values_between(name, matchers, min_time, max_time).await?;
        let mut out: BTreeSet<String> = heads.into_iter().collect();
        if let Some(b) = &self.blocks {
            out.extend(b.label_values_between(name, &self.with_own(matchers), min_time, max_time).await?);
        }
        Ok(out.into_iter().collect())
    }

    fn time_range(&self) -> (i64, i64) {
        let heads = self.heads.time_range().0;
        let blocks = self.blocks.as_ref().map(|b| b.time_range().0).filter(|m| *m != i64::MAX);
        (blocks.map_or(heads, |b| b.min(heads)), i64::MAX)
    }

    fn external_labels(&self) -> &Labels {
        self.heads.external_labels()
    }

    async fn label_sets(&self) -> Vec<Labels> {
        let mut sets = self.heads.label_sets().await;
        if let Some(b) = &self.blocks {
            for l in b.label_sets().await {
                if self.own.iter().all(|m| m.matches(&l)) && !sets.contains(&l) {
                    sets.push(l);
                }
            }
        }
        sets
    }
}
