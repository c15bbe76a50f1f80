//! promlake-ingest: data coming in. It will hold `receive` (Prometheus remote write, WAL,
//! head, 2h Parquet block cutting, tenants, hashring) and `sidecar` (ships each new TSDB block
//! of a Prometheus to the bucket through `promlake_engine::convert`, serves fresh data by
//! remote read). It sits above `engine` and never below it.
//!
//! Nothing is built here yet: the crate exists so the crate graph of DESIGN.md §2 holds from
//! the start. The ingest issue fills it.

pub mod sidecar;
