//! Protobuf and gRPC definitions shared by promlake, generated at build time from
//! the `.proto` files under `proto/` (protox + tonic-prost-build, no system
//! `protoc`). This crate is the leaf of the crate graph: it holds only `.proto`
//! sources and generated code, and `promlake-compat` and `promlake-engine` build
//! on it. Field numbers, names and packages match Thanos and Prometheus exactly,
//! so messages are wire compatible with real Thanos components; gogoproto options
//! of the originals are dropped since they do not affect the wire.
//!
//! Modules, one per protobuf package:
//! * [`thanos`]: StoreAPI (`thanos.Store`: `Series`, `LabelNames`, `LabelValues`,
//!   legacy `Info`), `thanos.WriteableStore` (`RemoteWrite`), labels, chunks and
//!   matchers. Server and client: [`thanos::store_server`],
//!   [`thanos::store_client`], [`thanos::writeable_store_server`],
//!   [`thanos::writeable_store_client`].
//! * [`thanos::info`]: the `thanos.info.Info` discovery service.
//! * [`prometheus`]: Prometheus remote write 1.0 and remote read messages
//!   (`WriteRequest`, `TimeSeries`, `ReadRequest`, `ChunkedReadResponse`, ...).
//!   Thanos' `prometheus_copy` package is wire-identical and is represented by
//!   this module too.
//! * [`hintspb`]: store hints carried in `google.protobuf.Any`
//!   (type URL `type.googleapis.com/hintspb.<Message>`).

/// Package `thanos`: StoreAPI and receive-forwarding messages and services.
#[allow(clippy::all, missing_debug_implementations, rustdoc::all)]
pub mod thanos {
    include!(concat!(env!("OUT_DIR"), "/thanos.rs"));

    /// Package `thanos.info`: the Info API used by queriers for discovery.
    pub mod info {
        include!(concat!(env!("OUT_DIR"), "/thanos.info.rs"));
    }
}

/// Package `prometheus`: remote write 1.0 and remote read.
#[allow(clippy::all, missing_debug_implementations, rustdoc::all)]
pub mod prometheus {
    include!(concat!(env!("OUT_DIR"), "/prometheus.rs"));
}

/// Package `hintspb`: Thanos store request/response hints.
#[allow(clippy::all, missing_debug_implementations, rustdoc::all)]
pub mod hintspb {
    include!(concat!(env!("OUT_DIR"), "/hintspb.rs"));
}
