//! Integration tests of the native block reader against three real Prometheus 2.42 blocks
//! and their golden `promtool tsdb dump`.

#![expect(clippy::unwrap_used, reason = "test code")]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use promlake_compat::chunks::ENCODING_XOR;
use promlake_compat::dumpfmt::{format_labels, parse_dump_line};
use promlake_compat::tombstones::{Interval, Tombstones};
use promlake_compat::xor::{XorDecoder, XorEncoder, decode_xor_into};
use promlake_compat::{Error, NativeBlock, SeriesEntry, discover_blocks};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/tsdb-blocks/tiny");
const BLOCK: &str = "01M8AXQ5BJNE0SYE3RJCX48A98";

type Labels = Vec<(String, String)>;
type Samples = Vec<(i64, f64)>;

fn store_at(dir: &FsPath) -> Arc<dyn ObjectStore> {
    Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap())
}

fn golden() -> BTreeMap<Labels, Samples> {
    let f = std::fs::File::open(format!("{TINY}/promtool-dump.txt.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(f).read_to_string(&mut text).unwrap();
    let mut out: BTreeMap<Labels, Samples> = BTreeMap::new();
    for line in text.lines() {
        let (labels, v, t) = parse_dump_line(line).unwrap();
        out.entry(labels).or_default().push((t, v));
    }
    out
}

async fn open_all(dir: &FsPath) -> Vec<NativeBlock> {
    let store = store_at(dir);
    let mut blocks = Vec::new();
    for p in discover_blocks(store.as_ref(), &Path::from("")).await.unwrap() {
        blocks.push(NativeBlock::open(store.clone(), &p).await.unwrap());
    }
    blocks
}

async fn decode_block(b: &NativeBlock) -> promlake_compat::Result<BTreeMap<Labels, Samples>> {
    let all: Vec<&SeriesEntry> = b.series().iter().collect();
    let range = b.fetch_chunks(&all).await?;
    let mut out = BTreeMap::new();
    for s in b.series() {
        let (mut ts, mut vals) = (Vec::new(), Vec::new());
        let n = b.decode_series(s, &range, &mut ts, &mut vals)?;
        assert_eq!(n, ts.len());
        out.insert(s.labels.clone(), ts.into_iter().zip(vals).collect());
    }
    Ok(out)
}

/// Copies the tiny block `BLOCK` into a fresh writable temp dir.
fn copy_block() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(BLOCK);
    std::fs::create_dir_all(dst.join("chunks")).unwrap();
    for f in ["meta.json", "index", "tombstones", "chunks/000001"] {
        std::fs::write(dst.join(f), std::fs::read(format!("{TINY}/{BLOCK}/{f}")).unwrap()).unwrap();
    }
    (tmp, dst)
}

fn edit(path: &FsPath, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = std::fs::read(path).unwrap();
    f(&mut b);
    std::fs::write(path, b).unwrap();
}

/// Opens the block in `tmp` and decodes everything; returns the first error.
async fn open_and_decode(tmp: &FsPath) -> promlake_compat::Result<()> {
    let b = NativeBlock::open(store_at(tmp), &Path::from(BLOCK)).await?;
    decode_block(&b).await.map(|_| ())
}

#[tokio::test]
async fn decoded_blocks_match_promtool_dump() {
    let golden = golden();
    let blocks = open_all(FsPath::new(TINY)).await;
    assert_eq!(blocks.len(), 3);
    let mut got: BTreeMap<Labels, Samples> = BTreeMap::new();
    let mut total = 0u64;
    for b in &blocks {
        let decoded = decode_block(b).await.unwrap();
        assert_eq!(decoded.len() as u64, b.meta().stats.num_series);
        let n: usize = decoded.values().map(Vec::len).sum();
        assert_eq!(n as u64, b.meta().stats.num_samples, "block {}", b.meta().ulid);
        total += n as u64;
        for (l, s) in decoded {
            got.entry(l).or_default().extend(s);
        }
    }
    assert_eq!(total, 5784);
    assert_eq!(got.keys().collect::<Vec<_>>(), golden.keys().collect::<Vec<_>>());
    for (labels, want) in &golden {
        let have = &got[labels];
        assert_eq!(have.len(), want.len(), "{}", format_labels(labels));
        for (i, ((ht, hv), (wt, wv))) in have.iter().zip(want).enumerate() {
            assert_eq!(ht, wt, "{} sample {i}", format_labels(labels));
            assert!(
                hv.to_bits() == wv.to_bits() || (hv.is_nan() && wv.is_nan()),
                "{} sample {i}: {hv} != {wv}",
                format_labels(labels)
            );
        }
    }
}

#[tokio::test]
async fn real_chunks_reencode_byte_exact() {
    let mut chunks = 0;
    for b in open_all(FsPath::new(TINY)).await {
        let all: Vec<&SeriesEntry> = b.series().iter().collect();
        let range = b.fetch_chunks(&all).await.unwrap();
        for s in b.series() {
            for c in &s.chunks {
                let raw = b.chunk(&range, c.chunk_ref).unwrap();
                assert_eq!(raw.encoding, ENCODING_XOR);
                let dec = XorDecoder::new(raw.data).unwrap();
                let n = dec.num_samples();
                let mut enc = XorEncoder::new();
                let mut first_last = (i64::MAX, i64::MIN);
                for sample in dec {
                    let (t, v) = sample.unwrap();
                    first_last = (first_last.0.min(t), first_last.1.max(t));
                    enc.append(t, v);
                }
                assert_eq!(enc.num_samples(), n);
                assert_eq!(first_last, (c.min_time, c.max_time), "chunk meta times");
                assert_eq!(
                    enc.finish(),
                    raw.data,
                    "chunk {:#x} of {}",
                    c.chunk_ref,
                    format_labels(&s.labels)
                );
                chunks += 1;
            }
        }
    }
    assert_eq!(chunks, 72);
}

#[tokio::test]
async fn postings_labels_and_meta() {
    let store = store_at(FsPath::new(TINY));
    let b = NativeBlock::open(store, &Path::from(BLOCK)).await.unwrap();
    assert_eq!(b.meta().ulid, BLOCK);
    assert_eq!((b.meta().min_time, b.meta().max_time), (1_700_000_000_000, 1_700_006_360_001));
    assert_eq!(b.dir().as_ref(), BLOCK);
    assert_eq!(b.index().version(), 2);
    assert!(b.tombstones().is_empty());
    assert_eq!(b.size_bytes(), 2418 + 6976 + 271 + 9);

    let want: Vec<u64> = b
        .series()
        .iter()
        .filter(|s| s.labels.iter().any(|(n, v)| n == "__name__" && v == "http_requests_total"))
        .map(|s| s.series_ref)
        .collect();
    assert_eq!(want.len(), 8);
    assert_eq!(b.postings("__name__", "http_requests_total").await.unwrap(), want);
    let all: Vec<u64> = b.series().iter().map(|s| s.series_ref).collect();
    assert_eq!(b.postings("", "").await.unwrap(), all);
    assert_eq!(b.postings("job", "web").await.unwrap().len(), 6);
    assert!(b.postings("job", "nope").await.unwrap().is_empty());
    assert!(b.postings("nope", "x").await.unwrap().is_empty());

    assert_eq!(b.label_names(), ["__name__", "code", "instance", "job", "le", "method", "sensor"]);
    assert_eq!(b.label_values("le"), ["+Inf", "0.1", "0.5", "1.0"]);
    assert!(b.label_values("missing").is_empty());
    // Series are sorted by labels in the index.
    let labels: Vec<&Labels> = b.series().iter().map(|s| &s.labels).collect();
    assert!(labels.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn discover_finds_data_dir_children_and_single_block() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for d in ["01AAA/chunks", "01BBB", "wal", "chunks_head", "partial"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in [
        "01AAA/meta.json",
        "01AAA/index",
        "01BBB/meta.json",
        "01BBB/index",
        "wal/meta.json",
        "wal/index",
        "partial/index",
    ] {
        std::fs::write(root.join(f), b"x").unwrap();
    }
    let store = store_at(root);
    let found = discover_blocks(store.as_ref(), &Path::from("")).await.unwrap();
    assert_eq!(found, [Path::from("01AAA"), Path::from("01BBB")]);
    let one = discover_blocks(store.as_ref(), &Path::from("01BBB")).await.unwrap();
    assert_eq!(one, [Path::from("01BBB")]);
    assert!(discover_blocks(store.as_ref(), &Path::from("empty")).await.unwrap().is_empty());
}

#[tokio::test]
async fn fetch_subset_and_reject_uncovered_series() {
    let b = NativeBlock::open(store_at(FsPath::new(TINY)), &Path::from(BLOCK)).await.unwrap();
    let full = decode_block(&b).await.unwrap();
    let subset: Vec<&SeriesEntry> = b.series()[5..9].iter().collect();
    let range = b.fetch_chunks(&subset).await.unwrap();
    assert!(range.len_bytes() < 6976);
    for s in &subset {
        let (mut ts, mut vals) = (Vec::new(), Vec::new());
        b.decode_series(s, &range, &mut ts, &mut vals).unwrap();
        let got: Samples = ts.into_iter().zip(vals).collect();
        assert_eq!(got, full[&s.labels]);
    }
    let (mut ts, mut vals) = (vec![1], vec![1.0]);
    let e = b.decode_series(&b.series()[0], &range, &mut ts, &mut vals).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert_eq!((ts, vals), (vec![1], vec![1.0]), "nothing appended on error");
}

#[tokio::test]
async fn tombstones_drop_deleted_samples() {
    let (tmp, dir) = copy_block();
    let store = store_at(tmp.path());
    let before = NativeBlock::open(store.clone(), &Path::from(BLOCK)).await.unwrap();
    let victim = before.series()[3].clone();
    let full = decode_block(&before).await.unwrap();
    let samples = &full[&victim.labels];
    let (lo, hi) = (samples[10].0, samples[20].0);
    let mut t = Tombstones::new();
    t.add(victim.series_ref, Interval { min_time: lo, max_time: hi });
    std::fs::write(dir.join("tombstones"), t.encode()).unwrap();

    let after = NativeBlock::open(store, &Path::from(BLOCK)).await.unwrap();
    assert_eq!(after.tombstones().num_intervals(), 1);
    let decoded = decode_block(&after).await.unwrap();
    let want: Samples = samples.iter().copied().filter(|(t, _)| *t < lo || *t > hi).collect();
    assert_eq!(want.len(), samples.len() - 11);
    assert_eq!(decoded[&victim.labels], want);
    for (l, s) in &decoded {
        if *l != victim.labels {
            assert_eq!(s, &full[l], "untouched series {}", format_labels(l));
        }
    }
}

#[tokio::test]
async fn histogram_chunks_are_unsupported_naming_series() {
    let (tmp, dir) = copy_block();
    let b = NativeBlock::open(store_at(tmp.path()), &Path::from(BLOCK)).await.unwrap();
    let s = b.series()[0].clone();
    let off = (s.chunks[0].chunk_ref & 0xffff_ffff) as usize;
    edit(&dir.join("chunks/000001"), |bytes| {
        let (len, n) = (bytes[off] as usize | ((bytes[off + 1] as usize & 0x7f) << 7), 2);
        assert!(bytes[off] & 0x80 != 0 && bytes[off + 1] & 0x80 == 0, "test expects a 2-byte length");
        let body = off + n..off + n + 1 + len;
        bytes[body.start] = 2;
        let crc = crc32c::crc32c(&bytes[body.clone()]);
        bytes[body.end..body.end + 4].copy_from_slice(&crc.to_be_bytes());
    });
    let e = open_and_decode(tmp.path()).await.unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("chunks/000001") && msg.contains("histogram") && msg.contains(&format_labels(&s.labels)),
        "{msg}"
    );
}

/// Applies `corrupt` to a fresh copy of the block, then expects `open` + decoding of all
/// series to fail with an error matching `is_expected` whose message names `file`.
async fn expect_corruption(file: &str, corrupt: impl FnOnce(&FsPath), is_expected: fn(&Error) -> bool) {
    let (tmp, dir) = copy_block();
    corrupt(&dir);
    let e = open_and_decode(tmp.path()).await.unwrap_err();
    assert!(is_expected(&e), "{file}: unexpected error {e:?}");
    let want = format!("{BLOCK}/{file}");
    assert!(e.to_string().contains(&want), "{e} does not name {want}");
    assert_eq!(e.path(), Some(want.as_str()));
}

#[tokio::test]
async fn corruption_is_reported_with_the_file() {
    let b = NativeBlock::open(store_at(FsPath::new(TINY)), &Path::from(BLOCK)).await.unwrap();
    let toc = *b.index().toc();
    let first_chunk = (b.series()[0].chunks[0].chunk_ref & 0xffff_ffff) as usize;
    fn checksum(e: &Error) -> bool {
        matches!(e, Error::Checksum { .. })
    }
    fn corrupt(e: &Error) -> bool {
        matches!(e, Error::Corrupt { .. })
    }

    let sym = toc.symbols as usize + 12;
    expect_corruption("index", |d| edit(&d.join("index"), |b| b[sym] ^= 0x01), checksum).await;
    let ser = b.series()[0].series_ref as usize * 16 + 3;
    expect_corruption("index", |d| edit(&d.join("index"), |b| b[ser] ^= 0x10), checksum).await;
    let pt = toc.postings_table as usize + 10;
    expect_corruption("index", |d| edit(&d.join("index"), |b| b[pt] ^= 0x10), checksum).await;
    expect_corruption(
        "index",
        |d| edit(&d.join("index"), |b| b.truncate(b.len() / 2)),
        |e| checksum(e) || corrupt(e),
    )
    .await;
    expect_corruption("index", |d| edit(&d.join("index"), |b| b.truncate(30)), corrupt).await;
    expect_corruption("index", |d| edit(&d.join("index"), |b| b[0] = 0), corrupt).await;
    expect_corruption(
        "index",
        |d| edit(&d.join("index"), |b| b[4] = 1),
        |e| matches!(e, Error::Unsupported { what, .. } if what.contains("version 1")),
    )
    .await;
    expect_corruption(
        "index",
        |d| std::fs::remove_file(d.join("index")).unwrap(),
        |e| matches!(e, Error::NotFound { .. }),
    )
    .await;

    let rec = first_chunk + 5;
    expect_corruption("chunks/000001", |d| edit(&d.join("chunks/000001"), |b| b[rec] ^= 0x04), checksum)
        .await;
    expect_corruption(
        "chunks/000001",
        |d| edit(&d.join("chunks/000001"), |b| b.truncate(b.len() - 100)),
        corrupt,
    )
    .await;
    expect_corruption("chunks/000001", |d| edit(&d.join("chunks/000001"), |b| b.truncate(5)), corrupt).await;
    expect_corruption("chunks/000001", |d| edit(&d.join("chunks/000001"), |b| b[1] = 0), corrupt).await;

    expect_corruption("tombstones", |d| edit(&d.join("tombstones"), |b| b[7] ^= 0xff), checksum).await;
    expect_corruption("tombstones", |d| edit(&d.join("tombstones"), |b| b.truncate(6)), corrupt).await;

    let bad_meta = |e: &Error| matches!(e, Error::BadMeta { .. });
    expect_corruption("meta.json", |d| std::fs::write(d.join("meta.json"), "{\"ulid\": ").unwrap(), bad_meta)
        .await;
    expect_corruption(
        "meta.json",
        |d| {
            edit(&d.join("meta.json"), |b| {
                let s = String::from_utf8(b.clone()).unwrap().replace("\"version\": 1", "\"version\": 2");
                *b = s.into_bytes();
            })
        },
        bad_meta,
    )
    .await;
}

#[tokio::test]
async fn every_single_byte_flip_is_an_error_or_harmless_never_a_panic() {
    // In-memory store: same code paths as a bucket, fast enough to flip every byte.
    let store = Arc::new(object_store::memory::InMemory::new());
    let files = ["meta.json", "index", "tombstones", "chunks/000001"];
    for f in files {
        let b = std::fs::read(format!("{TINY}/{BLOCK}/{f}")).unwrap();
        store.put(&Path::from(format!("{BLOCK}/{f}")), b.into()).await.unwrap();
    }
    let dir = Path::from(BLOCK);
    let toc = *NativeBlock::open(store.clone(), &dir).await.unwrap().index().toc();
    let (mut errors, mut harmless) = (0, 0);
    for f in ["index", "chunks/000001", "tombstones"] {
        let path = Path::from(format!("{BLOCK}/{f}"));
        let orig = std::fs::read(format!("{TINY}/{BLOCK}/{f}")).unwrap();
        for i in 0..orig.len() {
            let mut b = orig.clone();
            b[i] ^= 0xa5;
            store.put(&path, b.into()).await.unwrap();
            let res = match NativeBlock::open(store.clone(), &dir).await {
                Ok(block) => read_everything(&block).await,
                Err(e) => Err(e),
            };
            match res {
                Err(e) => {
                    assert!(e.path().is_some_and(|p| p.starts_with(BLOCK)), "{e}");
                    errors += 1;
                }
                Ok(()) => {
                    // Unread bytes: legacy label index sections, zero padding between
                    // series entries, the segment header's padding.
                    let ok = match f {
                        "index" => {
                            let i = i as u64;
                            (toc.label_indices..toc.postings).contains(&i)
                                || (toc.label_indices_table..toc.postings_table).contains(&i)
                                || ((toc.series..toc.label_indices).contains(&i) && orig[i as usize] == 0)
                        }
                        "chunks/000001" => (5..8).contains(&i),
                        _ => false,
                    };
                    assert!(ok, "flipping {f} byte {i} went unnoticed");
                    harmless += 1;
                }
            }
        }
        store.put(&path, orig.into()).await.unwrap();
    }
    assert!(errors > 8 * harmless, "{errors} errors, {harmless} harmless flips");
    decode_block(&NativeBlock::open(store, &dir).await.unwrap()).await.unwrap();
}

/// Decodes every series and reads every postings list.
async fn read_everything(b: &NativeBlock) -> promlake_compat::Result<()> {
    decode_block(b).await?;
    b.postings("", "").await?;
    for name in b.label_names() {
        for value in b.label_values(&name) {
            b.postings(&name, &value).await?;
        }
    }
    Ok(())
}

/// Decode throughput on the real chunks. Run with
/// `cargo test --release -p promlake-compat --test compat -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "timing report only"]
async fn decode_throughput() {
    let mut datas = Vec::new();
    for b in open_all(FsPath::new(TINY)).await {
        let all: Vec<&SeriesEntry> = b.series().iter().collect();
        let range = b.fetch_chunks(&all).await.unwrap();
        for s in b.series() {
            for c in &s.chunks {
                datas.push(b.chunk(&range, c.chunk_ref).unwrap().data.to_vec());
            }
        }
    }
    let (mut ts, mut vals) = (Vec::with_capacity(1 << 16), Vec::with_capacity(1 << 16));
    let start = std::time::Instant::now();
    let mut n = 0usize;
    for _ in 0..3000 {
        for d in &datas {
            ts.clear();
            vals.clear();
            n += decode_xor_into(d, &mut ts, &mut vals).unwrap();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("decoded {n} samples in {secs:.3}s: {:.1} M samples/s", n as f64 / secs / 1e6);
}
