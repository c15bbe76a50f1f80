use std::collections::{HashMap, HashSet};
use std::process::Command;

use super::*;
use crate::blocks;

fn small() -> GenConfig {
    GenConfig { hosts: 3, duration_ms: 3_600_000, ..GenConfig::default() }
}

fn render(cfg: &GenConfig) -> (String, GenStats) {
    let mut out = Vec::new();
    let stats = generate(cfg, &mut out).expect("generating into memory cannot fail");
    (String::from_utf8(out).expect("output is UTF-8"), stats)
}

/// Name of a sample line's metric, its series key, value and timestamp in milliseconds.
fn parse_sample(line: &str) -> (&str, &str, f64, i64) {
    let (key, rest) = line.rsplit_once("} ").expect("sample lines have labels");
    let (value, ts) = rest.split_once(' ').expect("value and timestamp");
    let name = key.split('{').next().expect("name");
    let (secs, ms) = ts.split_once('.').expect("timestamps have three decimals");
    assert_eq!(ms.len(), 3, "{line}");
    let ts = secs.parse::<i64>().expect("seconds") * 1000 + ms.parse::<i64>().expect("millis");
    (name, key, value.parse().expect("value"), ts)
}

#[test]
fn output_is_well_formed_openmetrics() {
    let cfg = small();
    let (text, stats) = render(&cfg);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"));
    assert_eq!(stats.bytes, text.len() as u64);

    let mut types: HashMap<&str, &str> = HashMap::new();
    let mut finished: HashSet<&str> = HashSet::new();
    let mut current: Option<(&str, f64, i64)> = None;
    let mut samples = 0u64;
    let mut series = 0u64;
    let mut per_host: HashMap<&str, u64> = HashMap::new();
    for line in &lines[..lines.len() - 1] {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let (family, kind) = t.split_once(' ').expect("# TYPE name kind");
            assert!(types.insert(family, kind).is_none(), "family {family} declared twice");
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line}");
        let (name, key, value, ts) = parse_sample(line);
        samples += 1;
        let family = types
            .iter()
            .filter(|(f, _)| name.starts_with(**f))
            .max_by_key(|(f, _)| f.len())
            .map(|(f, k)| (*f, *k))
            .expect("every sample belongs to a declared family");
        if family.1 == "counter" {
            assert_eq!(name, format!("{}_total", family.0), "counter samples use _total");
        }
        let monotonic = family.1 == "counter"
            || name.ends_with("_bucket")
            || name.ends_with("_sum")
            || name.ends_with("_count");
        match current {
            Some((k, prev_v, prev_ts)) if k == key => {
                assert!(ts > prev_ts, "timestamps must increase: {line}");
                assert!(!monotonic || value >= prev_v, "counter went down: {line} after {prev_v}");
            }
            _ => {
                if let Some((k, _, _)) = current {
                    finished.insert(k);
                }
                assert!(!finished.contains(key), "series {key} is not consecutive");
                series += 1;
                let instance = key.split("instance=\"").nth(1).expect("instance label");
                *per_host.entry(&instance[..8]).or_default() += 1;
            }
        }
        current = Some((key, value, ts));
    }
    assert_eq!((samples, series), (stats.samples, stats.series));
    assert_eq!(samples, series * cfg.steps());
    assert_eq!(per_host.len(), 3);
    for (host, n) in per_host {
        assert!((300..=500).contains(&n), "{host} has {n} series; want 300..=500");
    }
}

#[test]
fn output_is_deterministic_per_seed() {
    let cfg = GenConfig { duration_ms: 600_000, ..small() };
    assert_eq!(render(&cfg).0, render(&cfg).0);
    let other = GenConfig { seed: 2, ..cfg.clone() };
    assert_ne!(render(&cfg).0, render(&other).0);
}

#[test]
fn jitter_applies_to_some_hosts_only() {
    let cfg = GenConfig { hosts: 40, ..GenConfig::default() };
    let jittery = (1..=40).filter(|&h| cfg.host_jitters(h)).count();
    assert!((8..=32).contains(&jittery), "{jittery} of 40 hosts jitter");
    for h in 1..=40 {
        for k in 0..100 {
            let off = cfg.timestamp(h, k) - cfg.start_ms - k as i64 * cfg.interval_ms;
            assert!((0..=5).contains(&off));
            if !cfg.host_jitters(h) {
                assert_eq!(off, 0);
            }
        }
    }
    let exact = GenConfig { jitter_max_ms: 0, ..cfg };
    assert!((1..=40).all(|h| !exact.host_jitters(h)));
}

#[test]
fn rejects_bad_configs_naming_the_value() {
    let bad = GenConfig { jitter_max_ms: 20_000, ..GenConfig::default() };
    let msg = bad.validate().map_err(|e| e.to_string()).expect_err("jitter above interval");
    assert!(msg.contains("20000ms"), "{msg}");
    assert!(GenConfig { hosts: 0, ..GenConfig::default() }.validate().is_err());
}

#[test]
fn formats_numbers_like_exporters() {
    let fixed = |m, d| {
        let mut v = Vec::new();
        push_fixed(&mut v, m, d);
        String::from_utf8(v).expect("ascii")
    };
    assert_eq!(fixed(12345678, 2), "123456.78");
    assert_eq!(fixed(12345670, 2), "123456.7");
    assert_eq!(fixed(12345600, 2), "123456");
    assert_eq!(fixed(123, 9), "0.000000123");
    assert_eq!(fixed(0, 0), "0");
    let mut ts = Vec::new();
    push_timestamp(&mut ts, 1_699_999_215_003);
    assert_eq!(ts, b"1699999215.003");
    assert_eq!(parse_duration_ms("15s"), Ok(15_000));
    assert_eq!(parse_duration_ms("1.5h"), Ok(5_400_000));
    assert_eq!(parse_duration_ms("250ms"), Ok(250));
    assert!(parse_duration_ms("15x").is_err());
}

/// promtool (Prometheus 2.42, Debian package `prometheus`) must accept the file and store every
/// sample at the intended millisecond.
#[test]
fn promtool_accepts_the_output() {
    let cfg = GenConfig { hosts: 2, duration_ms: 3 * 3_600_000, interval_ms: 30_000, ..GenConfig::default() };
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("data.om");
    let file = std::fs::File::create(&input).expect("create input");
    let stats = generate(&cfg, file).expect("generate");
    let out = dir.path().join("native");
    let result = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&input)
        .arg(&out)
        .output()
        .expect("promtool must be installed (apt-get install prometheus)");
    assert!(result.status.success(), "promtool failed: {}", String::from_utf8_lossy(&result.stderr));
    let summary = blocks::summarize(&out).expect("read blocks");
    assert!(summary.blocks >= 2, "3 hours make at least two 2h blocks: {summary:?}");
    assert_eq!(summary.samples, stats.samples);

    // Block time ranges pin the stored timestamps: the first block starts at the first scrape
    // and the last block ends one millisecond after the latest (jittered) scrape.
    let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
    for entry in std::fs::read_dir(&out).expect("list blocks") {
        let meta = std::fs::read(entry.expect("entry").path().join("meta.json")).expect("meta");
        let meta: serde_json::Value = serde_json::from_slice(&meta).expect("json");
        min_t = min_t.min(meta["minTime"].as_i64().expect("minTime"));
        max_t = max_t.max(meta["maxTime"].as_i64().expect("maxTime"));
    }
    let last = cfg.steps() - 1;
    let latest = (1..=2).map(|h| cfg.timestamp(h, last)).max().expect("two hosts");
    assert_eq!((min_t, max_t), (cfg.start_ms, latest + 1));
}

#[test]
fn split_output_routes_samples_to_their_block_range() {
    let cfg = GenConfig {
        hosts: 2,
        duration_ms: 3 * 3_600_000,
        interval_ms: 60_000,
        jitter_hosts: 1.0,
        ..GenConfig::default()
    };
    let (whole, total) = render(&cfg);
    let mut starts = Vec::new();
    let stats = generate_split(&cfg, Some(7_200_000), |w, n| {
        assert_eq!(n, 2);
        starts.push(w.start_ms);
        Ok(Vec::new())
    })
    .expect("generate");
    assert_eq!(starts, [cfg.start_ms, cfg.start_ms + 7_200_000]);
    assert_eq!(stats.iter().map(|s| s.samples).sum::<u64>(), total.samples);
    assert_eq!(stats[0].series, total.series);
    assert_eq!(stats[0].samples, total.series * 120);

    // Concatenating the windows' sample lines per series gives the unsplit output.
    let mut windows: Vec<String> = Vec::new();
    let dir = tempfile::tempdir().expect("temp dir");
    generate_split(&cfg, Some(7_200_000), |w, _| {
        let path = dir.path().join(format!("{}.om", w.index));
        std::fs::File::create(path)
    })
    .expect("generate");
    for w in 0..2 {
        let text = std::fs::read_to_string(dir.path().join(format!("{w}.om"))).expect("read");
        assert!(text.ends_with("# EOF\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let ts = parse_sample(line).3;
            let lo = cfg.start_ms + w as i64 * 7_200_000;
            assert!((lo..lo + 7_200_000).contains(&ts), "{line} outside window {w}");
        }
        windows.push(text);
    }
    let samples = |t: &str| -> Vec<String> {
        let mut v: Vec<String> = t.lines().filter(|l| !l.starts_with('#')).map(str::to_string).collect();
        v.sort();
        v
    };
    let mut joined = samples(&windows[0]);
    joined.extend(samples(&windows[1]));
    joined.sort();
    assert_eq!(joined, samples(&whole));
}
