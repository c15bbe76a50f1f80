//! The compactor over an in-memory bucket of Parquet blocks written for each case: vertical
//! compaction of replicas (one-to-one and penalty, exact outputs), redundant blocks after a
//! crash, downsampled groups (concatenation, overlaps), 5m → 1h, retention and aborted uploads.

use object_store::memory::InMemory;
use object_store::{ObjectStoreExt, PutPayload};
use promlake_compat::BlockMeta;
use promlake_compat::meta::{Compaction, Downsample, ThanosMeta};
use promlake_engine::compact::downsample::downsample_raw;
use promlake_engine::compact::{CompactOptions, DedupFunc, NoProgress, Retention, run_pass};
use promlake_engine::parquet::{
    AggrBlock, AggrBlockWriter, AggrSeries, ParquetBlock, ParquetBlockWriter, RES_1H, RES_5M, WriterOptions,
};
use promlake_engine::{Bucket, Labels, SelectRequest, SeriesSource};
use std::sync::Arc;
use ulid::Ulid;

pub(super) const H: i64 = 3_600_000;

type Series = Vec<(Labels, Vec<i64>, Vec<f64>)>;

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().map(|&(k, v)| (k, v)))
}

fn meta(
    id: Ulid,
    min: i64,
    max: i64,
    level: u32,
    sources: &[Ulid],
    ext: &[(&str, &str)],
    res: i64,
) -> BlockMeta {
    BlockMeta {
        ulid: id.to_string(),
        min_time: min,
        max_time: max,
        stats: Default::default(),
        compaction: Compaction {
            level,
            sources: if sources.is_empty() {
                vec![id.to_string()]
            } else {
                sources.iter().map(Ulid::to_string).collect()
            },
            ..Default::default()
        },
        version: 1,
        thanos: Some(ThanosMeta {
            version: 1,
            labels: ext.iter().map(|&(k, v)| (k.to_string(), v.to_string())).collect(),
            downsample: Downsample { resolution: res },
            source: "test".into(),
            ..Default::default()
        }),
        promlake: None,
    }
}

/// Writes a raw block; its time range is [min, max) of the given bounds.
pub(super) fn put_raw(
    rt: &tokio::runtime::Runtime,
    bucket: &Bucket,
    (min, max): (i64, i64),
    level: u32,
    sources: &[Ulid],
    ext: &[(&str, &str)],
    mut series: Series,
) -> Ulid {
    series.sort_by(|a, b| a.0.block_order(&b.0));
    let mut w = ParquetBlockWriter::new(WriterOptions::default()).unwrap();
    for (l, t, v) in &series {
        w.append(l.clone(), t, v).unwrap();
    }
    let id = Ulid::generate();
    let written = w.finish().unwrap();
    rt.block_on(written.upload(bucket, &id, meta(id, min, max, level, sources, ext, 0))).unwrap();
    id
}

fn put_aggr(
    rt: &tokio::runtime::Runtime,
    bucket: &Bucket,
    range: (i64, i64),
    res: i64,
    series: Vec<(Labels, AggrSeries)>,
) -> Ulid {
    put_aggr_ext(rt, bucket, range, res, &[], series)
}

/// Writes a downsampled block with external labels `ext`.
pub(super) fn put_aggr_ext(
    rt: &tokio::runtime::Runtime,
    bucket: &Bucket,
    (min, max): (i64, i64),
    res: i64,
    ext: &[(&str, &str)],
    series: Vec<(Labels, AggrSeries)>,
) -> Ulid {
    let mut w = AggrBlockWriter::new(WriterOptions::default()).unwrap();
    for (l, s) in &series {
        w.append(l.clone(), s).unwrap();
    }
    let id = Ulid::generate();
    rt.block_on(w.finish().unwrap().upload(bucket, &id, meta(id, min, max, 2, &[], ext, res))).unwrap();
    id
}

pub(super) fn memory_bucket() -> Bucket {
    Bucket::from_store(Arc::new(InMemory::new()), "memory://")
}

fn opts() -> CompactOptions {
    CompactOptions { delete_delay_ms: 0, downsampling: false, ..Default::default() }
}

fn read_all(rt: &tokio::runtime::Runtime, bucket: &Bucket) -> Vec<(BlockMeta, Series)> {
    rt.block_on(async {
        let mut out = Vec::new();
        for info in bucket.list_blocks().await.unwrap() {
            if info.meta.thanos.as_ref().unwrap().downsample.resolution != 0 {
                continue;
            }
            let b = ParquetBlock::open(bucket, info.meta.clone()).await.unwrap();
            let mut s = b.select(&SelectRequest::all()).await.unwrap();
            let mut series = Vec::new();
            use futures::StreamExt;
            while let Some(batch) = s.next().await {
                series.extend(batch.unwrap().to_series());
            }
            out.push((info.meta, series));
        }
        out
    })
}

fn pts(ts: &[i64], v: f64) -> (Vec<i64>, Vec<f64>) {
    (ts.to_vec(), vec![v; ts.len()])
}

#[test]
fn penalty_vertical_compaction_merges_replicas_exactly() {
    let rt = runtime();
    let bucket = memory_bucket();
    let up = labels(&[("__name__", "up"), ("job", "x")]);
    let only_b = labels(&[("__name__", "only_b")]);
    let (at, av) = pts(&[0, 10_000, 20_000, 70_000, 80_000], 1.0);
    let (bt, bv) = pts(&[3_000, 13_000, 23_000, 33_000, 43_000, 53_000, 63_000, 73_000, 83_000], 2.0);
    let a = put_raw(
        &rt,
        &bucket,
        (0, 2 * H),
        1,
        &[],
        &[("cluster", "c"), ("replica", "a")],
        vec![(up.clone(), at, av)],
    );
    let b = put_raw(
        &rt,
        &bucket,
        (0, 2 * H),
        1,
        &[],
        &[("cluster", "c"), ("replica", "b")],
        vec![(up.clone(), bt, bv), (only_b.clone(), vec![5, 6], vec![9.0, 9.5])],
    );
    let o = CompactOptions { replica_labels: vec!["replica".into()], dedup: DedupFunc::Penalty, ..opts() };
    let report = run_pass(rt.handle(), &bucket, &o, &NoProgress).unwrap();
    assert_eq!((report.compactions, report.deleted), (1, 2), "{report:?}");
    let blocks = read_all(&rt, &bucket);
    assert_eq!(blocks.len(), 1);
    let (m, series) = &blocks[0];
    assert_eq!(m.compaction.level, 2);
    let mut srcs = vec![a.to_string(), b.to_string()];
    srcs.sort();
    assert_eq!(m.compaction.sources, srcs);
    assert_eq!(m.external_labels(), [("cluster".to_string(), "c".to_string())].into());
    assert_eq!(series.len(), 2);
    // a until its gap, then b (a's return at 70s falls in its penalty window).
    assert_eq!(series[0].0, only_b.merged(&labels(&[("cluster", "c")])));
    assert_eq!(series[0].1, vec![5, 6]);
    assert_eq!(series[1].1, vec![0, 10_000, 20_000, 43_000, 53_000, 63_000, 73_000, 83_000]);
    assert_eq!(series[1].2, vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]);
}

#[test]
fn one_to_one_vertical_compaction_collapses_identical_samples() {
    let rt = runtime();
    let bucket = memory_bucket();
    let s = labels(&[("__name__", "m")]);
    let ts: Vec<i64> = (0..100).map(|i| i * 15_000).collect();
    let vals: Vec<f64> = (0..100).map(|i| i as f64).collect();
    let mut ts_b = ts.clone();
    let mut vals_b: Vec<f64> = vals.clone();
    ts_b.push(1_500_000 + 7);
    vals_b.push(-1.0);
    put_raw(
        &rt,
        &bucket,
        (0, 2 * H),
        1,
        &[],
        &[("replica", "1")],
        vec![(s.clone(), ts.clone(), vals.clone())],
    );
    put_raw(&rt, &bucket, (0, 2 * H), 1, &[], &[("replica", "2")], vec![(s.clone(), ts_b, vals_b)]);
    let o = CompactOptions { replica_labels: vec!["replica".into()], ..opts() };
    run_pass(rt.handle(), &bucket, &o, &NoProgress).unwrap();
    let blocks = read_all(&rt, &bucket);
    assert_eq!(blocks.len(), 1);
    let (_, series) = &blocks[0];
    let mut want_t = ts;
    want_t.push(1_500_007);
    let mut want_v = vals;
    want_v.push(-1.0);
    assert_eq!((series[0].1.clone(), series[0].2.clone()), (want_t, want_v));
}

#[test]
fn inputs_of_a_finished_compaction_are_marked_not_compacted_again() {
    let rt = runtime();
    let bucket = memory_bucket();
    let s = labels(&[("__name__", "m")]);
    let a = put_raw(&rt, &bucket, (0, 2 * H), 1, &[], &[], vec![(s.clone(), vec![1, 2], vec![1.0, 2.0])]);
    let b = put_raw(&rt, &bucket, (2 * H, 4 * H), 1, &[], &[], vec![(s.clone(), vec![2 * H], vec![3.0])]);
    // The compactor was killed after uploading the result, before marking its inputs.
    let c =
        put_raw(&rt, &bucket, (0, 4 * H), 2, &[a, b], &[], vec![(s, vec![1, 2, 2 * H], vec![1.0, 2.0, 3.0])]);
    let o = CompactOptions { delete_delay_ms: 48 * H, ..opts() };
    let report = run_pass(rt.handle(), &bucket, &o, &NoProgress).unwrap();
    assert_eq!((report.compactions, report.marked_for_deletion, report.deleted), (0, 2, 0), "{report:?}");
    rt.block_on(async {
        for id in [a, b] {
            let mark = Bucket::block_path(&id, "deletion-mark.json");
            let bytes = bucket.store().get(&mark).await.unwrap().bytes().await.unwrap();
            let j: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(j["id"], id.to_string());
            assert_eq!(j["version"], 1);
        }
        assert!(bucket.store().head(&Bucket::block_path(&c, "deletion-mark.json")).await.is_err());
    });
}

fn aggr(ts: &[i64], counter: &[f64], first: f64, last: f64) -> AggrSeries {
    let mut a =
        AggrSeries { first_time: ts[0] - 1000, first_value: first, last_value: last, ..Default::default() };
    for (&t, &c) in ts.iter().zip(counter) {
        a.push(t, 2, c, c - 1.0, c, c);
    }
    a
}

#[test]
fn downsampled_groups_concatenate_and_overlaps_are_marked_no_compact() {
    let rt = runtime();
    let bucket = memory_bucket();
    let s = labels(&[("__name__", "c")]);
    // Three 8h 5m-blocks in the first 2d range and two newer ones: the first three compact.
    let w = |h: i64| h * H + RES_5M - 1;
    put_aggr(
        &rt,
        &bucket,
        (0, 8 * H),
        RES_5M,
        vec![(s.clone(), aggr(&[w(0), w(1)], &[10.0, 20.0], 5.0, 20.0))],
    );
    put_aggr(
        &rt,
        &bucket,
        (8 * H, 16 * H),
        RES_5M,
        vec![(s.clone(), aggr(&[w(8), w(9)], &[25.0, 30.0], 21.0, 30.0))],
    );
    // A reset between block 2 and 3 (raw 30 → 4).
    put_aggr(&rt, &bucket, (16 * H, 24 * H), RES_5M, vec![(s.clone(), aggr(&[w(16)], &[6.0], 4.0, 6.0))]);
    put_aggr(&rt, &bucket, (48 * H, 56 * H), RES_5M, vec![(s.clone(), aggr(&[w(48)], &[1.0], 1.0, 1.0))]);
    put_aggr(&rt, &bucket, (56 * H, 64 * H), RES_5M, vec![(s.clone(), aggr(&[w(56)], &[1.0], 1.0, 1.0))]);
    let report = run_pass(rt.handle(), &bucket, &opts(), &NoProgress).unwrap();
    assert_eq!(report.compactions, 1, "{report:?}");
    let metas = rt.block_on(bucket.list_blocks()).unwrap();
    assert_eq!(metas.len(), 3);
    let merged = rt.block_on(AggrBlock::open(&bucket, metas[0].meta.clone())).unwrap();
    assert_eq!(merged.meta().compaction.level, 3);
    let got = rt.block_on(merged.read_range(0..1)).unwrap().remove(0);
    assert_eq!(got.ts, vec![w(0), w(1), w(8), w(9), w(16)]);
    // 20 → block 2 continues (21 ≥ 20: +1 +4 to 25, +5 to 30), then a reset: +4, +2.
    assert_eq!(got.counter, vec![10.0, 20.0, 25.0, 30.0, 36.0]);
    assert_eq!((got.first_value, got.last_value), (5.0, 6.0));
    assert_eq!(got.count, vec![2; 5]);

    // Two overlapping 5m blocks (e.g. replicas downsampled before deduplication): no-compact.
    let bucket = memory_bucket();
    let x = put_aggr(&rt, &bucket, (0, 8 * H), RES_5M, vec![(s.clone(), aggr(&[w(0)], &[1.0], 1.0, 1.0))]);
    let y = put_aggr(&rt, &bucket, (4 * H, 12 * H), RES_5M, vec![(s, aggr(&[w(5)], &[1.0], 1.0, 1.0))]);
    let report = run_pass(rt.handle(), &bucket, &opts(), &NoProgress).unwrap();
    assert_eq!((report.compactions, report.no_compact_marked), (0, 2), "{report:?}");
    rt.block_on(async {
        for id in [x, y] {
            let p = Bucket::block_path(&id, "no-compact-mark.json");
            let j: serde_json::Value =
                serde_json::from_slice(&bucket.store().get(&p).await.unwrap().bytes().await.unwrap())
                    .unwrap();
            assert_eq!(j["reason"], "downsample-vertical-compaction");
        }
    });
    // A second pass leaves them alone.
    let report = run_pass(rt.handle(), &bucket, &opts(), &NoProgress).unwrap();
    assert_eq!((report.compactions, report.no_compact_marked), (0, 0));
}

#[test]
fn raw_10d_block_gets_5m_and_1h_blocks() {
    let rt = runtime();
    let bucket = memory_bucket();
    let s = labels(&[("__name__", "g"), ("i", "1")]);
    let start = 1_700_006_400_000i64;
    let ts: Vec<i64> = (0..1441).map(|i| start + i * 600_000 + (i % 7) * 1000).collect();
    let vals: Vec<f64> = (0..1441).map(|i| ((i * 37) % 101) as f64).collect();
    let max = ts[ts.len() - 1] + 1;
    put_raw(&rt, &bucket, (start, max), 4, &[], &[("k", "v")], vec![(s.clone(), ts.clone(), vals.clone())]);
    let o = CompactOptions { downsampling: true, ..opts() };
    let report = run_pass(rt.handle(), &bucket, &o, &NoProgress).unwrap();
    assert_eq!(report.downsamples, 2, "{report:?}");
    let blocks = rt.block_on(bucket.list_blocks()).unwrap();
    let res: Vec<i64> =
        blocks.iter().map(|b| b.meta.thanos.as_ref().unwrap().downsample.resolution).collect();
    assert_eq!(res.iter().filter(|&&r| r == RES_5M).count(), 1);
    for want_res in [RES_5M, RES_1H] {
        let info = blocks
            .iter()
            .find(|b| b.meta.thanos.as_ref().unwrap().downsample.resolution == want_res)
            .unwrap();
        assert_eq!((info.meta.min_time, info.meta.max_time, info.meta.compaction.level), (start, max, 4));
        assert_eq!(info.meta.external_labels(), [("k".to_string(), "v".to_string())].into());
        let b = rt.block_on(AggrBlock::open(&bucket, info.meta.clone())).unwrap();
        let got = rt.block_on(b.read_range(0..1)).unwrap().remove(0);
        let want = downsample_raw(&ts, &vals, want_res).unwrap();
        assert_eq!((&got.ts, &got.count, &got.min, &got.max), (&want.ts, &want.count, &want.min, &want.max));
        assert_eq!(got.counter, want.counter);
        assert_eq!(b.series()[0].labels, s);
    }
    // Nothing left to do.
    let report = run_pass(rt.handle(), &bucket, &o, &NoProgress).unwrap();
    assert_eq!((report.downsamples, report.compactions), (0, 0));
}

#[test]
fn retention_and_aborted_uploads() {
    let rt = runtime();
    let bucket = memory_bucket();
    let s = labels(&[("__name__", "m")]);
    let old = put_raw(&rt, &bucket, (0, 2 * H), 1, &[], &[], vec![(s.clone(), vec![1], vec![1.0])]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let new = put_raw(&rt, &bucket, (now - H, now), 1, &[], &[], vec![(s, vec![now - 10], vec![1.0])]);
    // An upload that never got its meta.json.
    let partial = Ulid::generate();
    rt.block_on(
        bucket.store().put(&Bucket::block_path(&partial, "samples.parquet"), PutPayload::from(vec![1u8])),
    )
    .unwrap();
    let o = CompactOptions { retention: Retention { raw_ms: 30 * 24 * H, ..Default::default() }, ..opts() };
    let report = run_pass(rt.handle(), &bucket, &o, &NoProgress).unwrap();
    assert_eq!((report.retention_marked, report.deleted, report.partial_deleted), (1, 1, 0), "{report:?}");
    let left: Vec<String> =
        rt.block_on(bucket.list_blocks()).unwrap().into_iter().map(|b| b.meta.ulid).collect();
    assert_eq!(left, vec![new.to_string()]);
    assert!(!left.contains(&old.to_string()));
    // Three days later the aborted upload is removed (and the new block is past nothing).
    let later = CompactOptions { now_ms: Some(now + 3 * 24 * H), ..o };
    let report = run_pass(rt.handle(), &bucket, &later, &NoProgress).unwrap();
    assert_eq!(report.partial_deleted, 1);
    assert!(rt.block_on(bucket.block_dirs()).unwrap().iter().all(|d| *d != partial));
}

/// PromQL over the 5m block of a 48h raw block agrees with the same query over the raw data:
/// min/max/sum/avg over whole windows exactly (up to float rounding), rate over 1h (12
/// windows) within 10% and increase over 3h within 5% (extrapolation sees fewer points);
/// the last 2h come from a raw block filling the gap after the 5m block.
#[test]
fn queries_over_5m_data_agree_with_raw() {
    use promlake_engine::downsampled::ResolutionSource;
    use promlake_engine::promql::{Engine, QueryOptions, Value};
    let rt = runtime();
    let bucket = memory_bucket();
    let start = 1_700_006_400_000i64; // 2d-aligned
    let n = 50 * 60;
    let ts: Vec<i64> = (0..n).map(|i| start + i * 60_000 + 7_000).collect();
    let gauge: Vec<f64> = (0..n).map(|i| ((i as f64) / 40.0).sin() * 10.0 + (i % 7) as f64).collect();
    let mut c = 0.0;
    let counter: Vec<f64> = (0..n)
        .map(|i| {
            c = if i % 1000 == 999 { 3.0 } else { c + (i % 13) as f64 };
            c
        })
        .collect();
    let g = labels(&[("__name__", "g")]);
    let ctr = labels(&[("__name__", "c_total")]);
    // 48h in one (downsampled) block, the last 2h in a raw block the 5m source fills the gap
    // with (counters continue across the boundary).
    let cut = 48 * 60;
    let first = vec![
        (g.clone(), ts[..cut].to_vec(), gauge[..cut].to_vec()),
        (ctr.clone(), ts[..cut].to_vec(), counter[..cut].to_vec()),
    ];
    put_raw(&rt, &bucket, (start, start + 48 * H), 3, &[], &[], first);
    let report =
        run_pass(rt.handle(), &bucket, &CompactOptions { downsampling: true, ..opts() }, &NoProgress)
            .unwrap();
    assert_eq!(report.downsamples, 1);
    let last = vec![
        (g, ts[cut..].to_vec(), gauge[cut..].to_vec()),
        (ctr, ts[cut..].to_vec(), counter[cut..].to_vec()),
    ];
    put_raw(&rt, &bucket, (start + 48 * H, start + 50 * H), 1, &[], &[], last);

    let (raw, ds) = rt.block_on(async {
        let raw = ResolutionSource::open(bucket.clone(), 0).await.unwrap();
        let ds = raw.with_max_resolution(300_000).await;
        (raw, ds)
    });
    let engine = Engine::new(QueryOptions::default());
    let (from, to, step) = (start + 2 * H, start + 50 * H, H);
    let run = |src: &ResolutionSource, q: &str| -> Vec<(i64, f64)> {
        match rt.block_on(engine.range(src, q, from, to, step)).unwrap() {
            Value::Matrix(m) => {
                assert_eq!(m.len(), 1, "{q}");
                m.into_iter().next().unwrap().points
            }
            other => panic!("{q}: {other:?}"),
        }
    };
    for (q, tol) in [
        ("min_over_time(g[1h])", 0.0),
        ("max_over_time(g[1h])", 0.0),
        ("sum_over_time(g[1h])", 1e-9),
        ("avg_over_time(g[1h])", 1e-9),
        ("rate(c_total[1h])", 0.10),
        ("increase(c_total[3h])", 0.05),
    ] {
        let (a, b) = (run(&raw, q), run(&ds, q));
        assert_eq!(a.len(), b.len(), "{q}");
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| {
                assert_eq!(x.0, y.0);
                (x.1 - y.1).abs() / x.1.abs().max(1e-9)
            })
            .fold(0.0, f64::max);
        assert!(worst <= tol, "{q}: worst relative difference {worst} > {tol}");
        println!("{q}: worst relative difference {worst:.2e}");
    }
    // The 5m source reads far fewer rows: one per window.
    let rows = |src: &ResolutionSource| {
        let req = promlake_engine::SelectRequest::all();
        rt.block_on(async {
            let mut s = src.select(&req).await.unwrap();
            let mut n = 0;
            use futures::StreamExt;
            while let Some(b) = s.next().await {
                n += b.unwrap().samples.num_rows();
            }
            n
        })
    };
    assert_eq!(rows(&raw), 2 * 50 * 60);
    assert_eq!(rows(&ds), 2 * (48 * 12 + 2 * 60));
}
