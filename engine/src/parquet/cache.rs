//! A memory-bounded cache of decoded samples, per (block, series), shared by the blocks of a
//! bucket source. Dashboards re-run the same queries every few seconds; with the series' samples
//! already decoded, a repeated read skips fetching and decompressing Parquet pages (a page holds
//! up to 128Ki rows, far more than one series' samples). Least recently used series go first
//! when the budget is exceeded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use ulid::Ulid;

/// The default budget of decoded samples, in bytes.
pub const DEFAULT_SAMPLES_CACHE_BYTES: usize = 256 << 20;

/// One series' samples in one block, in time order.
#[derive(Debug, Default)]
pub struct CachedSeries {
    /// Timestamps (ms).
    pub ts: Vec<i64>,
    /// Values.
    pub vs: Vec<f64>,
}

impl CachedSeries {
    fn bytes(&self) -> usize {
        self.ts.len() * 8 + self.vs.len() * 8 + 64
    }
}

struct Entry {
    data: Arc<CachedSeries>,
    last_used: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<(Ulid, u32), Entry>,
    bytes: usize,
    tick: u64,
    hits: u64,
    misses: u64,
}

/// The cache. Cheap to share (`Arc`); a budget of 0 disables it.
pub struct SamplesCache {
    budget: usize,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for SamplesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (entries, bytes) = self.usage();
        f.debug_struct("SamplesCache")
            .field("budget", &self.budget)
            .field("entries", &entries)
            .field("bytes", &bytes)
            .finish()
    }
}

impl SamplesCache {
    /// A cache holding at most `budget` bytes of decoded samples.
    pub fn new(budget: usize) -> Arc<Self> {
        Arc::new(SamplesCache { budget, inner: Mutex::new(Inner::default()) })
    }

    /// Is caching on?
    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    /// The cached samples of `series` in `block`, if present.
    pub fn get(&self, block: Ulid, series: u32) -> Option<Arc<CachedSeries>> {
        let mut inner = self.inner.lock().ok()?;
        inner.tick += 1;
        let tick = inner.tick;
        match inner.map.get_mut(&(block, series)) {
            Some(e) => {
                e.last_used = tick;
                let data = e.data.clone();
                inner.hits += 1;
                Some(data)
            }
            None => {
                inner.misses += 1;
                None
            }
        }
    }

    /// Remembers the samples of `series` in `block`, evicting the least recently used series
    /// when over budget. Series larger than an eighth of the budget are not kept.
    pub fn insert(&self, block: Ulid, series: u32, data: Arc<CachedSeries>) {
        let size = data.bytes();
        if size > self.budget / 8 {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else { return };
        inner.tick += 1;
        let last_used = inner.tick;
        if let Some(old) = inner.map.insert((block, series), Entry { data, last_used }) {
            inner.bytes -= old.data.bytes();
        }
        inner.bytes += size;
        if inner.bytes > self.budget {
            // Evict down to 90% of the budget at once, so eviction's sort is amortized.
            let target = self.budget / 10 * 9;
            let mut by_age: Vec<(u64, (Ulid, u32))> =
                inner.map.iter().map(|(k, e)| (e.last_used, *k)).collect();
            by_age.sort_unstable();
            for (_, key) in by_age {
                if inner.bytes <= target {
                    break;
                }
                if let Some(e) = inner.map.remove(&key) {
                    inner.bytes -= e.data.bytes();
                }
            }
        }
    }

    /// Drops every series of `block` (when the block leaves the bucket).
    pub fn forget_block(&self, block: Ulid) {
        let Ok(mut inner) = self.inner.lock() else { return };
        let mut freed = 0;
        inner.map.retain(|k, e| {
            let keep = k.0 != block;
            if !keep {
                freed += e.data.bytes();
            }
            keep
        });
        inner.bytes -= freed;
    }

    /// (cached series, bytes held).
    pub fn usage(&self) -> (usize, usize) {
        self.inner.lock().map(|i| (i.map.len(), i.bytes)).unwrap_or_default()
    }

    /// The cache's metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let (series, bytes) = self.usage();
        let (hits, misses) = self.hit_counts();
        let rows = [
            ("promlake_samples_cache_bytes", "gauge", "Bytes of decoded samples held.", bytes as u64),
            ("promlake_samples_cache_max_bytes", "gauge", "The cache's budget.", self.budget as u64),
            ("promlake_samples_cache_series", "gauge", "Block series held.", series as u64),
            ("promlake_samples_cache_hits_total", "counter", "Series reads served from the cache.", hits),
            ("promlake_samples_cache_misses_total", "counter", "Series reads that decoded pages.", misses),
        ];
        rows.iter()
            .map(|(name, kind, help, v)| format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"))
            .collect()
    }

    /// (hits, misses) since start.
    pub fn hit_counts(&self) -> (u64, u64) {
        self.inner.lock().map(|i| (i.hits, i.misses)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize) -> Arc<CachedSeries> {
        Arc::new(CachedSeries { ts: (0..n as i64).collect(), vs: vec![1.0; n] })
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let one = series(100).bytes();
        let cache = SamplesCache::new(one * 10);
        let b = Ulid::nil();
        for i in 0..10 {
            cache.insert(b, i, series(100));
        }
        assert_eq!(cache.usage().0, 10);
        // Touch series 0 so it is the most recently used, then overflow the budget.
        assert!(cache.get(b, 0).is_some());
        cache.insert(b, 10, series(100));
        let (entries, bytes) = cache.usage();
        assert!(bytes <= one * 9, "{bytes} bytes held");
        assert_eq!(entries, 9);
        assert!(cache.get(b, 0).is_some(), "recently used series was evicted");
        assert!(cache.get(b, 1).is_none(), "oldest series was kept");
        assert!(cache.get(b, 10).is_some());
        cache.forget_block(b);
        assert_eq!(cache.usage(), (0, 0));
    }

    #[test]
    fn zero_budget_keeps_nothing() {
        let cache = SamplesCache::new(0);
        cache.insert(Ulid::nil(), 1, series(1));
        assert!(!cache.enabled());
        assert!(cache.get(Ulid::nil(), 1).is_none());
    }
}
