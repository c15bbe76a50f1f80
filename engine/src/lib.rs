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
//! bucket as one source) and [`promql::Engine`] (PromQL over any source; conformance is run
//! against Prometheus's promqltest scripts in `tests/engine/promqltest.rs`).

pub mod bucket;
pub mod catalog;
pub mod convert;
mod error;
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
pub use source::{SelectHints, SelectRequest, SeriesBatch, SeriesSource, SeriesStream, Warnings};
