//! `promlake sidecar`: sits next to a Prometheus server. It reads the server's external labels
//! ([`prometheus`]), ships every completed TSDB block to the bucket as a Parquet block with the
//! same ULID ([`shipper`]) and serves the data Prometheus still holds over StoreAPI through
//! remote read ([`remote_read`]).

pub mod prometheus;
pub mod remote_read;
pub mod shipper;

pub use prometheus::PrometheusClient;
pub use remote_read::RemoteReadSource;
pub use shipper::{Shipper, ShipperOptions, SyncReport};
