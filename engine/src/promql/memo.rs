//! Work remembered across evaluation steps. A series keeps one shared label set for the whole
//! query, so what an operator derives from its labels (a group, a match signature, a bucket
//! bound) is computed at the first step and looked up by the label set's address afterwards.

use crate::Labels;
use rustc_hash::FxHashMap;
use std::collections::HashMap;

/// A value derived from each series' labels, computed once per series.
pub(crate) struct PerSeries<T> {
    /// Label set address -> (the label set, kept alive so the address stays unique; the value).
    map: FxHashMap<usize, (Labels, T)>,
}

impl<T> Default for PerSeries<T> {
    fn default() -> Self {
        PerSeries { map: FxHashMap::default() }
    }
}

impl<T: Clone> PerSeries<T> {
    /// The value for `labels`, computing it with `derive` the first time.
    pub(crate) fn get_or(&mut self, labels: &Labels, derive: impl FnOnce(&Labels) -> T) -> T {
        if let Some((_, v)) = self.map.get(&labels.shared_id()) {
            return v.clone();
        }
        let v = derive(labels);
        self.map.insert(labels.shared_id(), (labels.clone(), v.clone()));
        v
    }
}

/// Dense ids for distinct keys (e.g. output groups), in order of first appearance.
pub(crate) struct Interner<K> {
    ids: HashMap<K, usize>,
    /// Id -> key.
    pub(crate) keys: Vec<K>,
}

impl<K> Default for Interner<K> {
    fn default() -> Self {
        Interner { ids: HashMap::new(), keys: Vec::new() }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Interner<K> {
    /// The id of `key`, assigning the next one to a new key.
    pub(crate) fn intern(&mut self, key: K) -> usize {
        let next = self.keys.len();
        let id = *self.ids.entry(key.clone()).or_insert(next);
        if id == next {
            self.keys.push(key);
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_once_per_series_and_interns_keys() {
        let a = Labels::from_pairs([("job", "a"), ("i", "1")]);
        let b = Labels::from_pairs([("job", "a"), ("i", "2")]);
        let mut memo: PerSeries<usize> = PerSeries::default();
        let mut groups: Interner<Labels> = Interner::default();
        let mut calls = 0;
        for _step in 0..3 {
            for l in [a.clone(), b.clone()] {
                let g = memo.get_or(&l, |l| {
                    calls += 1;
                    groups.intern(Labels::from_pairs([("job", l.get("job").unwrap_or(""))]))
                });
                assert_eq!(g, 0);
            }
        }
        assert_eq!(calls, 2);
        assert_eq!(groups.keys.len(), 1);
        // An equal label set built separately is another series: derived again, same group.
        let a2 = Labels::from_pairs([("job", "a"), ("i", "1")]);
        assert_eq!(memo.get_or(&a2, |_| 7), 7);
    }
}
