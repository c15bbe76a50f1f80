//! What `promlake up` prints on start: where its data lives and where to point Prometheus
//! (a `remote_write` snippet to paste), Grafana, curl and Flight SQL clients.

use std::net::SocketAddr;
use std::path::Path;

/// The bound addresses.
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    /// The HTTP API.
    pub http: SocketAddr,
    /// StoreAPI and Flight SQL.
    pub grpc: SocketAddr,
    /// Remote write.
    pub remote_write: SocketAddr,
}

/// An address clients can dial: a wildcard bind is reachable on localhost.
fn dialable(a: SocketAddr) -> String {
    if a.ip().is_unspecified() { format!("localhost:{}", a.port()) } else { a.to_string() }
}

/// The start-up text.
pub fn start_text(dir: &Path, bucket: &Path, a: &Addresses) -> String {
    let (http, grpc, rw) = (dialable(a.http), dialable(a.grpc), dialable(a.remote_write));
    format!(
        "promlake up: receive + store + query + compact in one process\n\
         \x20 data dir:  {dir}\n\
         \x20 bucket:    file://{bucket}  (Parquet blocks; DuckDB, polars, pyarrow read them as they are)\n\
         \n\
         Prometheus: add to prometheus.yml\n\
         \n\
         remote_write:\n\
         \x20 - url: http://{rw}/api/v1/receive\n\
         \n\
         Grafana:    add a Prometheus data source with URL http://{http}\n\
         PromQL:     curl 'http://{http}/api/v1/query?query=up'\n\
         SQL:        curl 'http://{http}/api/v1/sql' --data-urlencode 'query=SELECT count(*) FROM metrics'\n\
         Flight SQL: grpc://{grpc}  (pyarrow.flight, ADBC); StoreAPI for `promlake query --endpoint {grpc}`\n",
        dir = dir.display(),
        bucket = bucket.display(),
    )
}

/// Prints [`start_text`] to stdout.
pub fn print_start(dir: &Path, bucket: &Path, a: &Addresses) {
    println!("{}", start_text(dir, bucket, a));
}

/// Prints the ready line.
pub fn print_ready(blocks: usize) {
    println!("ready: {blocks} blocks in the bucket; the WAL is replayed");
}
