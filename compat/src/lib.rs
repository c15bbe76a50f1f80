//! Prometheus/Thanos native formats for promlake.
//!
//! `compat` sits below `engine` and above `proto`: the engine converts native Prometheus TSDB
//! blocks (as written by Prometheus, the Thanos sidecar or receive) into promlake's Parquet
//! blocks through this crate, and everything here reads through [`object_store::ObjectStore`]
//! with ranged requests, so a block can live on local disk (`LocalFileSystem`) or in a bucket.
//!
//! ```text
//!   <block>/meta.json ──► meta::BlockMeta          (Prometheus + thanos + promlake sections)
//!   <block>/index ──────► index::IndexReader       (TOC, symbols, series, postings; v2/v3)
//!   <block>/chunks/NNN ─► chunks::ChunkReader      (ranged reads, CRC-checked records)
//!   <block>/tombstones ─► tombstones::Tombstones   (deleted intervals)
//!                 all joined by block::NativeBlock ──► xor::decode_xor_into ──► (ts, value) vectors
//! ```
//!
//! Entry points: [`discover_blocks`] finds blocks under a prefix, [`NativeBlock::open`] opens
//! one, [`NativeBlock::fetch_chunks`] + [`NativeBlock::decode_series`] stream its samples.
//! [`xor::XorEncoder`] writes Prometheus-identical XOR chunks. [`dumpfmt`] parses and prints
//! `promtool tsdb dump` lines for golden tests. Malformed input never panics: it is an
//! [`Error`] naming the object path and the problem.

pub mod block;
pub mod chunks;
pub mod dumpfmt;
mod encoding;
pub mod error;
pub mod index;
mod io;
pub mod meta;
pub mod tombstones;
pub mod xor;

pub use block::{ChunkMeta, ChunkRange, NativeBlock, SeriesEntry, discover_blocks};
pub use error::{Error, Result};
pub use meta::BlockMeta;

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn block_types_are_send_and_sync() {
        assert_send_sync::<super::NativeBlock>();
        assert_send_sync::<super::ChunkRange>();
        assert_send_sync::<super::Error>();
    }

    fn is_send<T: Send>(_: T) {}

    /// Compile-time check: the async API can be driven from any thread (rayon + block_on).
    #[expect(dead_code, reason = "only needs to type-check")]
    fn block_futures_are_send(b: &super::NativeBlock, s: &[&super::SeriesEntry]) {
        is_send(b.fetch_chunks(s));
        is_send(b.postings("a", "b"));
    }

    #[test]
    fn open_and_discover_futures_are_send() {
        let store: std::sync::Arc<dyn object_store::ObjectStore> =
            std::sync::Arc::new(object_store::memory::InMemory::new());
        let dir = object_store::path::Path::from("x");
        is_send(super::NativeBlock::open(store.clone(), &dir));
        is_send(super::discover_blocks(store.as_ref(), &dir));
    }
}
