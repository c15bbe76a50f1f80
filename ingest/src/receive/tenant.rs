//! Tenants: one [`Head`] per tenant, created on the first write, and [`TenantsSource`], the
//! one [`SeriesSource`] over every tenant's head that the StoreAPI serves.

use super::head::{Head, batches};
use async_trait::async_trait;
use promlake_engine::source::{SelectRequest, SeriesSource, SeriesStream};
use promlake_engine::{Labels, Matcher};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

/// The heads by tenant, shared between the receiver and its sources.
#[derive(Debug)]
pub struct Heads {
    map: RwLock<BTreeMap<String, Arc<Head>>>,
    external: Labels,
    tenant_label: String,
    block_ms: i64,
}

impl Heads {
    /// No tenants yet; `external` are the `--label`s, `tenant_label` the label naming the tenant.
    pub fn new(external: Labels, tenant_label: String, block_ms: i64) -> Self {
        Heads { map: RwLock::new(BTreeMap::new()), external, tenant_label, block_ms }
    }

    /// The external labels of `tenant`'s series and blocks: the `--label`s plus the tenant label.
    pub fn tenant_labels(&self, tenant: &str) -> Labels {
        self.external.merged(&Labels::from_pairs([(self.tenant_label.as_str(), tenant)]))
    }

    /// The head of `tenant`, created when missing.
    pub fn get_or_create(&self, tenant: &str) -> Arc<Head> {
        if let Some(h) = self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(tenant) {
            return h.clone();
        }
        let mut map = self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(tenant.to_string())
            .or_insert_with(|| {
                tracing::info!(tenant, "new tenant head");
                Arc::new(Head::new(tenant, self.tenant_labels(tenant), self.block_ms))
            })
            .clone()
    }

    /// Every head, by tenant name.
    pub fn all(&self) -> Vec<Arc<Head>> {
        self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner).values().cloned().collect()
    }

    /// The `--label`s (without the tenant label).
    pub fn external(&self) -> &Labels {
        &self.external
    }
}

/// Every tenant's head as one source; series carry their tenant label.
#[derive(Debug, Clone)]
pub struct TenantsSource {
    heads: Arc<Heads>,
}

impl TenantsSource {
    /// A source over `heads` (tenants created later are included).
    pub fn new(heads: Arc<Heads>) -> Self {
        TenantsSource { heads }
    }
}

#[async_trait]
impl SeriesSource for TenantsSource {
    async fn select(&self, req: &SelectRequest) -> promlake_engine::Result<SeriesStream> {
        let mut all = Vec::new();
        for h in self.heads.all() {
            all.extend(h.select_series(&req.matchers, req.min_time, req.max_time));
        }
        all.sort_by(|a, b| a.0.block_order(&b.0));
        batches(all)
    }

    async fn label_names_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> promlake_engine::Result<Vec<String>> {
        let mut out = BTreeSet::new();
        for h in self.heads.all() {
            out.extend(h.label_names_between(matchers, min_time, max_time).await?);
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
        let mut out = BTreeSet::new();
        for h in self.heads.all() {
            out.extend(h.label_values_between(name, matchers, min_time, max_time).await?);
        }
        Ok(out.into_iter().collect())
    }

    fn time_range(&self) -> (i64, i64) {
        let min = self.heads.all().iter().map(|h| h.time_range().0).min();
        (min.unwrap_or(0), i64::MAX)
    }

    fn external_labels(&self) -> &Labels {
        self.heads.external()
    }

    /// One label set per tenant: the `--label`s plus the tenant label.
    async fn label_sets(&self) -> Vec<Labels> {
        self.heads.all().iter().map(|h| self.heads.tenant_labels(h.tenant())).collect()
    }
}
