//! Thanos's StoreAPI on the wire (reference: thanos.md §2): a gRPC server that exposes any
//! [`SeriesSource`] as `thanos.Store` + `thanos.info.Info`, and a client that turns any StoreAPI
//! endpoint — promlake or a real Thanos sidecar, store, receive or querier — into a
//! [`SeriesSource`].
//!
//! ```text
//!  SeriesSource ──► server.rs: Series (external labels, without_replica_labels, Prometheus
//!       ▲                     order, XOR chunks, limits, warning frames, batches),
//!       │                     LabelNames, LabelValues, old Store.Info
//!       │           info.rs:  thanos.info.Info (label sets, time range, component)
//!       │                          │ gRPC (tonic, max message size as Thanos: 2 GiB)
//!       └────────── client.rs ◄────┘ decode XOR, merge split frames, trim to the range,
//!                                    warning frames into SelectRequest::warnings
//! ```
//!
//! [`routes`] builds the two services so a binary can add more (Flight SQL) on the same port;
//! [`serve`] runs them on a listener. Helpers: `matchers.rs` (labels and matchers ↔ wire,
//! Prometheus label order), `chunks.rs` (samples ↔ XOR `AggrChunk`s, xxhash64 chunk hashes),
//! `aggr_chunks.rs` (downsampled pieces ↔ aggregate `AggrChunk`s with Thanos's counter framing),
//! `metrics.rs` (counters for `/metrics`), `shard.rs` (vertical sharding).

mod aggr_chunks;
mod chunks;
mod client;
mod info;
mod matchers;
mod metrics;
mod server;
mod shard;

pub use aggr_chunks::{decode_pieces, encode_aggr_chunks, has_aggregates, requested_aggregates};
pub use chunks::{MAX_CHUNK_SAMPLES, chunk_hash, decode_chunk_into, encode_chunks};
pub use client::{ClientOptions, EndpointInfo, OPEN_END, OPEN_START, SeriesOptions, StoreClient};
pub use matchers::{
    compare_labels, labels_from_proto, labels_to_proto, matchers_from_proto, matchers_to_proto,
};
pub use metrics::StoreMetrics;
pub use promlake_proto::thanos::PartialResponseStrategy;
pub use shard::in_shard;

use crate::{Error, SeriesSource};
use promlake_proto::thanos::StoreType;
use std::sync::Arc;
use tonic::service::Routes;

/// Largest gRPC message either side accepts or sends (Thanos uses `math.MaxInt32`).
pub const MAX_MESSAGE_BYTES: usize = i32::MAX as usize;

/// Which Thanos component a server presents itself as (Info `ComponentType`, old `StoreType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Component {
    /// `thanos store`: blocks from object storage.
    #[default]
    Store,
    /// `thanos query`: a querier exposing its merged view.
    Query,
    /// `thanos sidecar`.
    Sidecar,
    /// `thanos receive`.
    Receive,
    /// `thanos rule`.
    Rule,
    /// A debugging source.
    Debug,
}

impl Component {
    /// Thanos's component name (`"store"`, `"query"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Store => "store",
            Component::Query => "query",
            Component::Sidecar => "sidecar",
            Component::Receive => "receive",
            Component::Rule => "rule",
            Component::Debug => "debug",
        }
    }

    /// The old Info API's store type.
    pub fn store_type(self) -> StoreType {
        match self {
            Component::Store => StoreType::Store,
            Component::Query => StoreType::Query,
            Component::Sidecar => StoreType::Sidecar,
            Component::Receive => StoreType::Receive,
            Component::Rule => StoreType::Rule,
            Component::Debug => StoreType::Debug,
        }
    }

    /// Parses a component name as Thanos spells it.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "store" => Component::Store,
            "query" => Component::Query,
            "sidecar" => Component::Sidecar,
            "receive" => Component::Receive,
            "rule" => Component::Rule,
            "debug" => Component::Debug,
            _ => return None,
        })
    }
}

/// Per-request limits; a Series request over them fails with `ResourceExhausted`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreLimits {
    /// Most series one Series request may return (0: no limit); `--store.limits.request-series`.
    pub max_series: u64,
    /// Most samples one Series request may return (0: no limit); `--store.limits.request-samples`.
    pub max_samples: u64,
}

/// How the StoreAPI server presents and protects itself.
#[derive(Debug, Clone, Default)]
pub struct StoreServerOptions {
    /// The component name in Info.
    pub component: Component,
    /// Request limits.
    pub limits: StoreLimits,
    /// Series requests answered at once (0: no limit); more wait for a turn, which bounds the
    /// memory of concurrent answers (Thanos's `--store.grpc.series-max-concurrency`).
    pub max_concurrent_series: usize,
    /// Counters the server updates (rendered on `/metrics` by the binary).
    pub metrics: Arc<StoreMetrics>,
    /// Where Series requests allowing downsampled data (`max_resolution_window > 0`) are
    /// answered from, as aggregate chunks (`promlake store`: the bucket's downsampled blocks);
    /// `None` answers every request from the source's raw samples.
    pub downsampled: Option<Arc<dyn crate::downsampled::PieceSource>>,
}

/// The gRPC services `thanos.Store` and `thanos.info.Info` over `source`, ready to be served
/// (with [`serve`]) or merged with more services on the same port.
pub fn routes(source: Arc<dyn SeriesSource>, opts: StoreServerOptions) -> Routes {
    use promlake_proto::thanos::info::info_server::InfoServer;
    use promlake_proto::thanos::store_server::StoreServer;
    let store = StoreServer::new(server::StoreService::new(source.clone(), opts.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let info = InfoServer::new(info::InfoService::new(source, opts))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    Routes::new(store).add_service(info)
}

/// Serves `routes` on `listener` until `shutdown` resolves (in-flight calls then finish).
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: Routes,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> crate::Result<()> {
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), shutdown)
        .await
        .map_err(|e| Error::Remote { endpoint: addr, code: tonic::Code::Unavailable, message: e.to_string() })
}

tokio::task_local! {
    static PARTIAL_RESPONSE: PartialResponseStrategy;
}

/// The partial-response strategy of the StoreAPI request being served, for a source that fans
/// out (a querier's merged view): under WARN it answers what it has and reports failed
/// endpoints in [`crate::SelectRequest::warnings`]; under ABORT it fails. `None` outside a
/// StoreAPI request (read it in `select` before spawning tasks: it is task-local).
pub fn requested_partial_response() -> Option<PartialResponseStrategy> {
    PARTIAL_RESPONSE.try_with(|s| *s).ok()
}

/// The gRPC status for an engine error: bad input → `InvalidArgument`, a remote endpoint's
/// status → the same code, anything else → `Internal`.
pub fn status_of(e: &Error) -> tonic::Status {
    match e {
        Error::Matcher { .. } | Error::InvalidArgument(_) => tonic::Status::invalid_argument(e.to_string()),
        Error::Remote { code, .. } => tonic::Status::new(*code, e.to_string()),
        _ => tonic::Status::internal(e.to_string()),
    }
}
