//! promlake-ingest: data coming in. [`receive`] takes Prometheus remote write into a
//! write-ahead log and a per-tenant in-memory head (a [`promlake_engine::SeriesSource`] for
//! fresh data) and cuts the head into Parquet blocks in the bucket every block duration.
//! [`sidecar`] ships a Prometheus's own TSDB blocks to the bucket as Parquet and serves its fresh
//! data over remote read. It sits above `engine` and never below it.
//!
//! Main types: [`receive::Receiver`] (write path, replay, block cutting),
//! [`receive::wal::Wal`] (segments with CRC32C records, group commit),
//! [`receive::head::Head`] (series with XOR chunks), [`receive::http::router`] (axum routes).

mod error;
pub mod receive;
pub mod sidecar;

pub use error::{Error, Result};
