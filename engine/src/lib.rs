//! promlake's engine: the data model, the series-source seam, the bucket and the Parquet block
//! format. Everything above it (query, store, receive, sidecar, compact, SQL) reads and writes
//! history through this crate.
//!
//! ```text
//!  native TSDB block ──(compat)──► convert ──► ParquetBlockWriter ──► Bucket (object_store)
//!                                                                        │
//!  query / store ◄── SeriesSource ◄── ParquetBlock / NativeSource ◄──────┘
//! ```
//!
//! Main types: [`Labels`] and [`Matcher`] (the data model), [`SeriesSource`] (implemented by
//! every data source; returns [`SeriesBatch`]es of Arrow samples), [`Bucket`] and
//! [`BucketConfig`] (blocks in object storage, opened from a URL or a Thanos objstore YAML),
//! [`parquet::ParquetBlockWriter`] / [`parquet::ParquetBlock`] (format version 1, DESIGN.md §3)
//! and [`convert::import_blocks`] (native → Parquet), [`catalog::BucketSource`] (all blocks of a
//! bucket as one source), [`storeapi`] (Thanos's StoreAPI: a gRPC server over any source and a
//! client that is a source), [`fanout::Fanout`] (the querier's merged view over endpoints and
//! in-process sources, with partial response), [`dedup::DedupSource`] (HA replicas merged with
//! Thanos's penalty algorithm), [`promql::Engine`] (PromQL over any source; conformance is run
//! against Prometheus's promqltest scripts in `tests/engine/promqltest.rs`),
//! [`compact::run_pass`] (the compactor: compaction, vertical dedup, downsampling, retention)
//! and [`downsampled::ResolutionSource`] (a bucket read at a maximum resolution).

pub mod bucket;
pub mod catalog;
pub mod compact;
pub mod convert;
pub mod dedup;
pub mod downsampled;
mod error;
pub mod fanout;
pub mod labels;
pub mod matcher;
pub mod memory;
pub mod native;
pub mod parquet;
pub mod promql;
pub mod source;
pub mod storeapi;

pub use bucket::{BlockFormat, BlockInfo, Bucket, BucketConfig};
pub use error::{Error, Result};
pub use labels::{Label, Labels};
pub use matcher::{MatchOp, Matcher};
pub use source::{SelectHints, SelectRequest, SeriesBatch, SeriesSource, SeriesStream, Warnings, overlaps};
