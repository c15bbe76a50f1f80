//! Integration tests of promlake-sql over real Parquet blocks in a local bucket: the .slt
//! files in `tests/slt/` (the SQL surface), filter pushdown measured in bytes read, and the
//! Flight SQL service over a real gRPC socket.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

#[path = "sql/fixture.rs"]
mod fixture;
#[path = "sql/flight.rs"]
mod flight;
#[path = "sql/native.rs"]
mod native;
#[path = "sql/pushdown.rs"]
mod pushdown;
#[path = "sql/slt.rs"]
mod slt;
