//! The gRPC port (`--grpc-address`): every gRPC service a command serves is assembled here, so
//! more services (Arrow Flight SQL) join the same port in one place.

use promlake_engine::SeriesSource;
use promlake_engine::fanout::Fanout;
use promlake_engine::storeapi::{self, Component, StoreMetrics, StoreServerOptions};
use promlake_sql::SqlSession;
use std::sync::Arc;
use tonic::service::Routes;

/// The services of `promlake query`: StoreAPI (`thanos.Store`) and `thanos.info.Info` over the
/// querier's merged view, not deduplicated (Thanos queriers serve raw replicas; the querier
/// above deduplicates), presented as component `query`; `metrics` counts what it serves. With a
/// SQL session (the querier has a bucket), Arrow Flight SQL joins the same port.
pub fn query_routes(fanout: Fanout, metrics: Arc<StoreMetrics>, sql: Option<SqlSession>) -> Routes {
    // Each Series request's own strategy decides: warnings under WARN, an error under ABORT.
    let source: Arc<dyn SeriesSource> = Arc::new(fanout.for_store_api());
    let routes = storeapi::routes(
        source,
        StoreServerOptions { component: Component::Query, metrics, ..Default::default() },
    );
    match sql {
        Some(session) => routes.add_service(promlake_sql::flight::service(session)),
        None => routes,
    }
}

/// Serves `routes` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: Routes,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    Ok(storeapi::serve(listener, routes, shutdown).await?)
}
