//! Vertical query sharding (`SeriesRequest.shard_info`, used by Thanos's query frontend): a
//! series belongs to shard `xxhash64(name 0xff value 0xff ...) % total_shards` over the labels
//! the shard is `by` (or all labels but those, `without`), as Thanos's `ShardMatcher`.

use super::chunks::chunk_hash;
use crate::Labels;
use promlake_proto::thanos::ShardInfo;

/// Whether the series with these (final) labels belongs to the requested shard; every series
/// does when the request is not sharded.
pub fn in_shard(labels: &Labels, shard: Option<&ShardInfo>) -> bool {
    let Some(s) = shard.filter(|s| s.total_shards >= 1) else { return true };
    let mut buf = Vec::with_capacity(128);
    for l in labels.iter() {
        if s.labels.contains(&l.name) == s.by {
            buf.extend_from_slice(l.name.as_bytes());
            buf.push(0xff);
            buf.extend_from_slice(l.value.as_bytes());
            buf.push(0xff);
        }
    }
    chunk_hash(&buf) % s.total_shards as u64 == s.shard_index as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_series_by_the_chosen_labels() {
        let series: Vec<Labels> = (0..200)
            .map(|i| {
                Labels::from_pairs([
                    ("__name__", "m".to_string()),
                    ("pod", format!("p{i}")),
                    ("job", "j".into()),
                ])
            })
            .collect();
        // `by (pod)` and `without (job)` both spread the series over the shards.
        for (by, label) in [(true, "pod"), (false, "job")] {
            let shards: Vec<ShardInfo> = (0..4)
                .map(|i| ShardInfo { shard_index: i, total_shards: 4, by, labels: vec![label.into()] })
                .collect();
            let mut sizes = [0usize; 4];
            for l in &series {
                let hits: Vec<usize> = (0..4).filter(|&i| in_shard(l, shards.get(i))).collect();
                assert_eq!(hits.len(), 1, "{l} in shards {hits:?}");
                sizes[hits[0]] += 1;
            }
            assert!(sizes.iter().all(|&n| n > 20), "{sizes:?}");
        }
        // `by pod`: the hash covers exactly "pod\xffp7\xff".
        let l = &series[7];
        let one = ShardInfo { shard_index: 0, total_shards: 1_000_003, by: true, labels: vec!["pod".into()] };
        let want = chunk_hash(b"pod\xffp7\xff") % 1_000_003;
        assert!(in_shard(l, Some(&ShardInfo { shard_index: want as i64, ..one })));
        assert!(in_shard(l, None));
    }
}
