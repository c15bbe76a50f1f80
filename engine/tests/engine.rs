//! Engine integration tests: the Parquet block format round trip, the series-source seam over
//! both block kinds, and conversion of the real Prometheus blocks.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

#[path = "engine/fanout.rs"]
mod fanout;
#[path = "engine/promqltest.rs"]
mod promqltest;
#[path = "engine/storeapi.rs"]
mod storeapi;
#[path = "engine/storeapi_acceptance.rs"]
mod storeapi_acceptance;
#[path = "engine/storeapi_client.rs"]
mod storeapi_client;
#[path = "engine/storeapi_downsampled.rs"]
mod storeapi_downsampled;

#[path = "engine/compact.rs"]
mod compact;

use futures::StreamExt;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use promlake_compat::NativeBlock;
use promlake_engine::convert::{ImportOptions, NativeBlockRef, NoProgress, import_blocks};
use promlake_engine::native::NativeSource;
use promlake_engine::parquet::{ParquetBlock, ParquetBlockWriter, WriterOptions};
use promlake_engine::{Bucket, Labels, MatchOp, Matcher, SelectRequest, SeriesSource};
use std::sync::Arc;
use ulid::Ulid;

type Series = Vec<(Labels, Vec<i64>, Vec<f64>)>;

async fn collect(source: &dyn SeriesSource, req: &SelectRequest) -> Series {
    let mut out = Vec::new();
    let mut s = source.select(req).await.unwrap();
    while let Some(b) = s.next().await {
        out.extend(b.unwrap().to_series());
    }
    out
}

fn memory_bucket() -> Bucket {
    Bucket::from_store(Arc::new(InMemory::new()), "memory://")
}

fn meta_for(id: &Ulid) -> promlake_compat::BlockMeta {
    promlake_compat::BlockMeta::parse(
        "test",
        format!(r#"{{"ulid":"{id}","minTime":0,"maxTime":1000000,"stats":{{}},"compaction":{{"level":1}},"version":1}}"#)
            .as_bytes(),
    )
    .unwrap()
}

#[tokio::test]
async fn writer_reader_round_trip_with_row_ranges_and_time_pruning() {
    let bucket = memory_bucket();
    // Small pages and row groups so reads of one series cross page and group boundaries.
    let opts = WriterOptions { row_group_rows: 1000, page_rows: 100, batch_rows: 333, ..Default::default() };
    let mut w = ParquetBlockWriter::new(opts).unwrap();
    let mut expected: Series = Vec::new();
    for m in ["a_metric", "b_metric"] {
        for i in 0..20 {
            let labels = Labels::from_pairs([
                ("__name__", m.to_string()),
                ("instance", format!("host-{i:02}")),
                ("series_id", format!("label-{i}")),
            ]);
            let n = 50 + i * 17;
            let ts: Vec<i64> = (0..n as i64).map(|k| k * 15_000 + i as i64).collect();
            let vals: Vec<f64> = (0..n)
                .map(|k| if k == 7 { f64::from_bits(0x7ff0_0000_0000_0002) } else { k as f64 * 1.5 })
                .collect();
            w.append(labels.clone(), &ts, &vals).unwrap();
            expected.push((labels, ts, vals));
        }
    }
    // Out-of-order series are refused.
    let err = w.append(Labels::from_pairs([("__name__", "a_metric")]), &[1], &[1.0]).unwrap_err();
    assert!(err.to_string().contains("out of order"), "{err}");
    let written = w.finish().unwrap();
    assert_eq!(written.num_series, 40);
    let id = Ulid::generate();
    written.upload(&bucket, &id, meta_for(&id)).await.unwrap();

    let info = bucket.list_blocks().await.unwrap();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].format, promlake_engine::BlockFormat::Parquet);
    let block = ParquetBlock::open(&bucket, info[0].meta.clone()).await.unwrap();
    // The label literally named series_id survives the column rename.
    assert_eq!(block.series()[3].labels.get("series_id"), Some("label-3"));

    let all = collect(&block, &SelectRequest::all()).await;
    assert_eq!(all.len(), expected.len());
    for (a, e) in all.iter().zip(&expected) {
        assert_eq!(a.0, e.0);
        assert_eq!(a.1, e.1);
        let bits = |v: &Vec<f64>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a.2), bits(&e.2), "values of {}", a.0);
    }

    // A regex selection plus a time window.
    let req = SelectRequest {
        matchers: vec![
            Matcher::new(MatchOp::Equal, "__name__", "b_metric").unwrap(),
            Matcher::new(MatchOp::Regex, "instance", "host-1[0-2]").unwrap(),
        ],
        min_time: 150_000,
        max_time: 300_000,
        hints: Default::default(),
        warnings: Default::default(),
    };
    let got = collect(&block, &req).await;
    assert_eq!(got.len(), 3);
    for (l, ts, _) in &got {
        assert_eq!(l.metric_name(), Some("b_metric"));
        assert!(ts.iter().all(|t| (150_000..=300_000).contains(t)));
        assert_eq!(ts.len(), 10);
    }
    assert_eq!(block.label_values("instance", &req.matchers[..1]).await.unwrap().len(), 20);

    // Through the decoded-samples cache: the same answers, the repeat served from memory.
    let cache = promlake_engine::parquet::SamplesCache::new(1 << 20);
    let cached = ParquetBlock::open(&bucket, info[0].meta.clone()).await.unwrap().with_cache(cache.clone());
    assert_eq!(collect(&cached, &req).await, got);
    assert_eq!(cache.hit_counts(), (0, 3));
    assert_eq!(cache.usage().0, 3);
    let wider = SelectRequest { min_time: 0, max_time: i64::MAX, ..req.clone() };
    let bits = |s: Series| {
        s.into_iter()
            .map(|(l, t, v)| (l, t, v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
    };
    let direct = bits(collect(&block, &wider).await);
    assert_eq!(bits(collect(&cached, &wider).await), direct);
    assert_eq!(cache.hit_counts(), (3, 3));
    assert!(direct.iter().map(|s| s.1.len()).sum::<usize>() > got.iter().map(|s| s.1.len()).sum::<usize>());
    assert_eq!(block.label_names(&[]).await.unwrap(), ["__name__", "instance", "series_id"]);

    // An unfinished block (no meta.json) is invisible.
    let hidden = Ulid::generate();
    bucket.put_bytes(&Bucket::block_path(&hidden, "series.parquet"), b"x".to_vec()).await.unwrap();
    assert_eq!(bucket.list_blocks().await.unwrap().len(), 1);
    assert!(!bucket.has_block(&hidden).await.unwrap());
}

fn tiny() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/tsdb-blocks/tiny")
}

/// The three real Prometheus blocks, as import sources, and the store they sit in.
fn tiny_blocks(rt: &tokio::runtime::Runtime) -> (Arc<dyn ObjectStore>, Vec<NativeBlockRef>) {
    let store: Arc<dyn ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(tiny()).unwrap());
    let blocks = rt
        .block_on(promlake_compat::discover_blocks(store.as_ref(), &object_store::path::Path::default()))
        .unwrap()
        .into_iter()
        .map(|d| NativeBlockRef { store: store.clone(), display: d.to_string(), root: String::new(), dir: d })
        .collect();
    (store, blocks)
}

#[test]
fn native_and_parquet_sources_answer_alike() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (_, blocks) = tiny_blocks(&rt);
    assert_eq!(blocks.len(), 3);
    let bucket = memory_bucket();
    let opts = ImportOptions { labels: Labels::from_pairs([("cluster", "eu1")]), ..Default::default() };
    let outcomes = import_blocks(rt.handle(), &bucket, &blocks, &opts, &NoProgress);
    assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");

    rt.block_on(async {
        let req = SelectRequest {
            matchers: vec![
                Matcher::new(MatchOp::Regex, "__name__", "request_duration_seconds_.*").unwrap(),
                Matcher::equal("cluster", "eu1"),
            ],
            min_time: 1_700_003_000_000,
            max_time: 1_700_009_000_000,
            hints: Default::default(),
            warnings: Default::default(),
        };
        let mut native_total = 0;
        for (b, info) in blocks.iter().zip(bucket.list_blocks().await.unwrap()) {
            let native = NativeSource::new(NativeBlock::open(b.store.clone(), &b.dir).await.unwrap());
            let parquet = ParquetBlock::open(&bucket, info.meta).await.unwrap();
            let from_parquet = collect(&parquet, &req).await;
            // The source block has no external labels; add the imported one for comparison.
            let from_native: Series =
                collect(&native, &SelectRequest { matchers: req.matchers[..1].to_vec(), ..req.clone() })
                    .await
                    .into_iter()
                    .map(|(l, t, v)| (l.merged(&Labels::from_pairs([("cluster", "eu1")])), t, v))
                    .collect();
            assert_eq!(from_parquet.len(), from_native.len());
            for (p, n) in from_parquet.iter().zip(&from_native) {
                assert_eq!(p.0, n.0);
                assert_eq!(p.1, n.1);
                assert_eq!(
                    p.2.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    n.2.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                );
            }
            native_total += from_native.iter().map(|s| s.1.len()).sum::<usize>();
        }
        assert!(native_total > 0);
    });
}

#[tokio::test]
async fn object_store_listing_ignores_non_block_dirs() {
    let bucket = memory_bucket();
    bucket.store().put(&"debug/metas/x.json".into(), b"{}".to_vec().into()).await.unwrap();
    bucket.store().put(&"not-a-ulid/meta.json".into(), b"{}".to_vec().into()).await.unwrap();
    assert!(bucket.list_blocks().await.unwrap().is_empty());
    // A corrupt meta.json of a real block dir is an error naming it.
    let id = Ulid::generate();
    bucket.put_bytes(&Bucket::block_path(&id, "meta.json"), b"{".to_vec()).await.unwrap();
    let err = bucket.list_blocks().await.unwrap_err().to_string();
    assert!(err.contains(&format!("{id}/meta.json")), "{err}");
}

#[test]
fn bucket_source_merges_series_across_blocks_and_formats() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (store, blocks) = tiny_blocks(&rt);
    let bucket = memory_bucket();
    // Two blocks as Parquet, the third copied in as a native block: one bucket, both formats.
    let outcomes = import_blocks(rt.handle(), &bucket, &blocks[..2], &ImportOptions::default(), &NoProgress);
    assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");
    rt.block_on(async {
        let native = &blocks[2];
        let files: Vec<object_store::ObjectMeta> =
            store.list(Some(&native.dir)).map(|m| m.unwrap()).collect::<Vec<_>>().await;
        for f in files {
            let bytes = store.get(&f.location).await.unwrap().bytes().await.unwrap();
            bucket.store().put(&f.location, bytes.into()).await.unwrap();
        }
        let source = promlake_engine::catalog::BucketSource::open(bucket.clone()).await.unwrap();
        assert_eq!(source.block_ids().await.len(), 3);
        let all = collect(&source, &SelectRequest::all()).await;
        assert_eq!(all.len(), 24, "series merged across the three blocks");
        assert_eq!(all.iter().map(|s| s.1.len()).sum::<usize>(), 5784);
        assert!(all.iter().all(|s| s.1.windows(2).all(|w| w[0] < w[1])));
        let names = source.label_values("__name__", &[]).await.unwrap();
        assert!(names.contains(&"http_requests_total".to_string()), "{names:?}");
    });
}

/// Label names and values, and the series API's label sets, for a time window: blocks that do
/// not overlap it are not asked, and a series counts from its time span in a block, so a window
/// between two of its samples still finds it.
#[tokio::test]
async fn metadata_calls_take_a_time_window() {
    let bucket = memory_bucket();
    for (instance, start) in [("old", 0i64), ("new", 7_200_000)] {
        let mut w = ParquetBlockWriter::new(WriterOptions::default()).unwrap();
        let labels = Labels::from_pairs([("__name__", "up"), ("instance", instance)]);
        let ts: Vec<i64> = (0..60).map(|k| start + k * 60_000).collect();
        w.append(labels, &ts, &vec![1.0; ts.len()]).unwrap();
        let id = Ulid::generate();
        let mut meta = meta_for(&id);
        (meta.min_time, meta.max_time) = (start, start + 7_200_000);
        w.finish().unwrap().upload(&bucket, &id, meta).await.unwrap();
    }
    let source = promlake_engine::catalog::BucketSource::open(bucket).await.unwrap();
    let values = |min, max| source.label_values_between("instance", &[], min, max);
    assert_eq!(values(i64::MIN, i64::MAX).await.unwrap(), ["new", "old"]);
    assert_eq!(source.label_values("instance", &[]).await.unwrap(), ["new", "old"]);
    assert_eq!(values(7_500_000, 8_000_000).await.unwrap(), ["new"]);
    assert_eq!(values(60_000, 120_000).await.unwrap(), ["old"]);
    assert!(values(20_000_000, 30_000_000).await.unwrap().is_empty());
    let empty = values(8_000_000, 7_500_000).await.unwrap();
    assert!(empty.is_empty(), "an empty window: {empty:?}");
    assert!(source.label_names_between(&[], -5_000, -1).await.unwrap().is_empty());

    // 7_530_000 falls between two samples of "new" (one a minute).
    let found = source.series_between(&[], 7_530_000, 7_530_000, &Default::default()).await.unwrap();
    assert_eq!(found, [Labels::from_pairs([("__name__", "up"), ("instance", "new")])]);
    assert!(
        collect(&source, &SelectRequest { min_time: 7_530_000, max_time: 7_530_000, ..SelectRequest::all() })
            .await
            .is_empty()
    );
}
