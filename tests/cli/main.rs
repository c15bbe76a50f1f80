//! End-to-end tests of the `promlake` binary against real peers: Prometheus 2.42's promtool
//! (writes blocks, dumps them as the golden truth), pyarrow and DuckDB (read our Parquet),
//! moto_server (a real S3 API on 127.0.0.1). `scripts/test.sh` installs them all.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected I/O errors")]

mod compact;
mod harness;
mod import;
mod python;
mod querier;
mod query;
mod receive;
mod s3;
mod sidecar;
mod sql;
mod store;
mod store_downsampled;
mod up;
mod webui;
