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
}
