//! `meta.json`: the Prometheus block meta (version 1) plus the Thanos and promlake sections.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// A block's `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Block ULID (equals the directory name).
    pub ulid: String,
    /// First timestamp (ms, inclusive).
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// End timestamp (ms, exclusive).
    #[serde(rename = "maxTime")]
    pub max_time: i64,
    /// Sample, series and chunk counts.
    #[serde(default)]
    pub stats: BlockStats,
    /// Compaction lineage.
    #[serde(default)]
    pub compaction: Compaction,
    /// Meta format version; must be 1.
    pub version: u32,
    /// Thanos extension, absent in plain Prometheus blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thanos: Option<ThanosMeta>,
    /// promlake extension, set by promlake's Parquet blocks only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promlake: Option<PromlakeMeta>,
}

/// `stats` of a block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStats {
    /// Samples of all kinds.
    #[serde(rename = "numSamples", default)]
    pub num_samples: u64,
    /// Float samples (newer Prometheus only).
    #[serde(rename = "numFloatSamples", default, skip_serializing_if = "is_zero_u64")]
    pub num_float_samples: u64,
    /// Native histogram samples (newer Prometheus only).
    #[serde(rename = "numHistogramSamples", default, skip_serializing_if = "is_zero_u64")]
    pub num_histogram_samples: u64,
    /// Series.
    #[serde(rename = "numSeries", default)]
    pub num_series: u64,
    /// Chunks.
    #[serde(rename = "numChunks", default)]
    pub num_chunks: u64,
    /// Tombstone intervals.
    #[serde(rename = "numTombstones", default, skip_serializing_if = "is_zero_u64")]
    pub num_tombstones: u64,
}

/// `compaction` of a block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    /// 1 for blocks cut from the head, +1 per compaction.
    #[serde(default)]
    pub level: u32,
    /// ULIDs of all level-1 ancestors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Direct inputs of the compaction that produced this block.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    /// Marked deletable by the compactor.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deletable: bool,
    /// Compaction of this block failed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub failed: bool,
    /// Free-form hints (e.g. `from-out-of-order`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

/// A parent block reference in `compaction.parents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDesc {
    /// Parent ULID.
    pub ulid: String,
    /// Parent minTime.
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// Parent maxTime.
    #[serde(rename = "maxTime")]
    pub max_time: i64,
}

/// The `thanos` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThanosMeta {
    /// Thanos meta version (1 when absent).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub version: u32,
    /// External labels identifying the stream/tenant.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Downsampling resolution.
    #[serde(default)]
    pub downsample: Downsample,
    /// Producer: `sidecar`, `receive`, `compactor`, `bucket.upload`, ...
    #[serde(default)]
    pub source: String,
    /// Deprecated list of chunk segment files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segment_files: Vec<String>,
    /// All files of the block with sizes (and optional hashes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ThanosFile>,
    /// `{series_max_size, chunk_max_size}`, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_stats: Option<serde_json::Value>,
    /// Rewrites applied by `tools bucket rewrite`, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrites: Vec<serde_json::Value>,
    /// Free-form extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
    /// RFC 3339 upload time, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_time: Option<String>,
}

/// `thanos.downsample`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downsample {
    /// Resolution in ms: 0 raw, 300000 (5m), 3600000 (1h).
    #[serde(default)]
    pub resolution: i64,
}

/// One entry of `thanos.files`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThanosFile {
    /// Path relative to the block directory, e.g. `chunks/000001`.
    pub rel_path: String,
    /// Size in bytes (absent for meta.json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// `{hashFunc, value}` if computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<serde_json::Value>,
}

/// The `promlake` section of promlake's Parquet blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromlakeMeta {
    /// Version of promlake's block layout.
    pub format_version: u32,
}

impl BlockMeta {
    /// Parses and validates `bytes` read from `path`: version must be 1, ulid non-empty and
    /// `minTime <= maxTime`. Errors are [`Error::BadMeta`] naming `path`.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<Self> {
        let bad = |reason: String| Error::BadMeta { path: path.to_owned(), reason };
        let meta: BlockMeta = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if meta.version != 1 {
            return Err(bad(format!("version {} (only version 1 is supported)", meta.version)));
        }
        if meta.ulid.is_empty() {
            return Err(bad("empty ulid".to_owned()));
        }
        if meta.min_time > meta.max_time {
            return Err(bad(format!("minTime {} is after maxTime {}", meta.min_time, meta.max_time)));
        }
        Ok(meta)
    }

    /// Serializes as indented JSON (tab-free, two spaces), ending without a newline.
    pub fn to_json_pretty(&self) -> Vec<u8> {
        // Only strings, integers, maps with string keys and JSON values: cannot fail.
        serde_json::to_vec_pretty(self).expect("BlockMeta serializes to JSON")
    }

    /// External labels (`thanos.labels`), empty when there is no Thanos section.
    pub fn external_labels(&self) -> BTreeMap<String, String> {
        self.thanos.as_ref().map(|t| t.labels.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "test code")]
    use super::*;

    const PROM: &str = r#"{
	"ulid": "01M8AXQ5BJNE0SYE3RJCX48A98",
	"minTime": 1700000000000,
	"maxTime": 1700006360001,
	"stats": {"numSamples": 2568, "numSeries": 24, "numChunks": 24},
	"compaction": {"level": 1, "sources": ["01M8AXQ5BJNE0SYE3RJCX48A98"]},
	"version": 1
}"#;

    const THANOS: &str = r#"{
	"ulid": "01HQ0000000000000000000000",
	"minTime": 0, "maxTime": 7200000,
	"stats": {"numSamples": 10, "numFloatSamples": 10, "numSeries": 1, "numChunks": 1, "numTombstones": 2},
	"compaction": {"level": 2, "sources": ["A", "B"], "parents": [{"ulid": "A", "minTime": 0, "maxTime": 1}],
	               "deletable": true, "hints": ["from-out-of-order"]},
	"version": 1,
	"thanos": {
		"labels": {"cluster": "eu1", "replica": "a"},
		"downsample": {"resolution": 300000},
		"source": "compactor",
		"segment_files": ["000001"],
		"files": [{"rel_path": "chunks/000001", "size_bytes": 123}, {"rel_path": "meta.json"}],
		"index_stats": {"series_max_size": 100, "chunk_max_size": 200},
		"extensions": {"x": 1},
		"unknown_field": true
	},
	"promlake": {"format_version": 1}
}"#;

    #[test]
    fn parses_prometheus_meta() {
        let m = BlockMeta::parse("b/meta.json", PROM.as_bytes()).unwrap();
        assert_eq!(m.ulid, "01M8AXQ5BJNE0SYE3RJCX48A98");
        assert_eq!((m.min_time, m.max_time), (1_700_000_000_000, 1_700_006_360_001));
        assert_eq!(m.stats.num_samples, 2568);
        assert_eq!(m.compaction.level, 1);
        assert!(m.thanos.is_none() && m.promlake.is_none());
        let json: serde_json::Value = serde_json::from_slice(&m.to_json_pretty()).unwrap();
        let orig: serde_json::Value = serde_json::from_str(PROM).unwrap();
        assert_eq!(json, orig);
    }

    #[test]
    fn parses_thanos_meta_and_round_trips() {
        let m = BlockMeta::parse("b/meta.json", THANOS.as_bytes()).unwrap();
        let t = m.thanos.as_ref().unwrap();
        assert_eq!(t.labels["cluster"], "eu1");
        assert_eq!(t.downsample.resolution, 300_000);
        assert_eq!(t.files[0].size_bytes, Some(123));
        assert_eq!(t.files[1].size_bytes, None);
        assert_eq!(m.compaction.parents[0].ulid, "A");
        assert!(m.compaction.deletable && !m.compaction.failed);
        assert_eq!(m.promlake, Some(PromlakeMeta { format_version: 1 }));
        let again = BlockMeta::parse("x", &m.to_json_pretty()).unwrap();
        assert_eq!(again, m);
        let text = String::from_utf8(m.to_json_pretty()).unwrap();
        assert!(!text.contains("failed") && !text.contains("unknown_field"));
    }

    #[test]
    fn rejects_bad_meta_naming_path() {
        let cases = [
            ("{not json", "key must be a string"),
            (r#"{"ulid":"x","minTime":0,"maxTime":1,"version":2}"#, "version 2"),
            (r#"{"ulid":"","minTime":0,"maxTime":1,"version":1}"#, "empty ulid"),
            (r#"{"ulid":"x","minTime":5,"maxTime":1,"version":1}"#, "after maxTime"),
            (r#"{"ulid":"x","minTime":0,"maxTime":1}"#, "missing field `version`"),
        ];
        for (json, want) in cases {
            let e = BlockMeta::parse("blk/meta.json", json.as_bytes()).unwrap_err();
            assert!(matches!(e, Error::BadMeta { .. }), "{e:?}");
            let msg = e.to_string();
            assert!(msg.starts_with("blk/meta.json: invalid meta.json: "), "{msg}");
            assert!(msg.contains(want), "{msg} lacks {want}");
        }
    }
}
