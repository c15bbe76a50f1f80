//! `promlake query`: Prometheus's HTTP API over everything the querier reaches — StoreAPI
//! endpoints (`--endpoint`, health-checked) and, with `--bucket`, the bucket's blocks in
//! process — merged, deduplicated by `--query.replica-label`, and served again over StoreAPI on
//! `--grpc-address` so queriers stack.
//!
//! Wiring only: validate the flags, bind the listeners, load the bucket in the background
//! (the server answers `/-/ready` with 200 once it is loaded) and refresh it every
//! `--sync-block-duration`; the endpoint set refreshes itself. The API lives in `crate::http`,
//! the gRPC services in `crate::grpc`.

use crate::flags::{BucketArgs, SamplesCacheArgs};
use crate::http::{ApiState, router};
use crate::probes::shutdown_signal;
use anyhow::{Context, Result, bail};
use clap::{ArgAction, Args};
use promlake_engine::SeriesSource;
use promlake_engine::catalog::BucketSourceOptions;
use promlake_engine::dedup::DedupFunc;
use promlake_engine::downsampled::BucketView;
use promlake_engine::fanout::discovery::EndpointSpec;
use promlake_engine::fanout::endpoints::{EndpointSet, EndpointSetOptions};
use promlake_engine::fanout::store_endpoint::StoreConnector;
use promlake_engine::fanout::{Fanout, FanoutOptions, MemberSet, Members, PartialResponse, StaticMembers};
use promlake_engine::promql::QueryOptions;
use promlake_engine::storeapi::StoreMetrics;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Flags of `promlake query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Listen address (host:port) of the HTTP server: the Prometheus HTTP API, /metrics, /-/healthy and /-/ready.
    #[arg(long = "http-address", env = "PROMLAKE_HTTP_ADDRESS", default_value = "127.0.0.1:10902")]
    http_address: String,
    /// Listen address (host:port) of the gRPC server: StoreAPI (thanos.Store) and thanos.info.Info over the merged, not deduplicated, view, so other queriers can use this one as an endpoint.
    #[arg(long = "grpc-address", env = "PROMLAKE_GRPC_ADDRESS", default_value = "127.0.0.1:10901")]
    grpc_address: String,
    /// A StoreAPI endpoint to query (HOST:PORT, or dns+HOST:PORT for every A/AAAA record of HOST); repeatable.
    #[arg(long = "endpoint", env = "PROMLAKE_ENDPOINT", value_name = "HOST:PORT", value_delimiter = ',')]
    endpoints: Vec<String>,
    /// Label that tells HA replicas apart; series differing only in replica labels are deduplicated (repeatable).
    #[arg(
        long = "query.replica-label",
        env = "PROMLAKE_QUERY_REPLICA_LABEL",
        value_name = "LABEL",
        value_delimiter = ','
    )]
    replica_labels: Vec<String>,
    /// How replicas are merged: penalty (Thanos's default: one replica at a time, switching across gaps) or chain (every sample of every replica, equal timestamps once).
    #[arg(long = "deduplication.func", env = "PROMLAKE_DEDUPLICATION_FUNC", default_value = "penalty", value_parser = dedup_func)]
    dedup_func: DedupFunc,
    /// Answer with partial data and warnings when an endpoint fails or times out (the default when a request has no partial_response parameter); false: fail the request.
    #[arg(long = "query.partial-response", env = "PROMLAKE_QUERY_PARTIAL_RESPONSE", value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    partial_response: bool,
    /// Same as --query.partial-response=false (Thanos's spelling).
    #[arg(long = "no-query.partial-response")]
    no_partial_response: bool,
    /// Longest an endpoint may take to answer (per batch of series) before it counts as failed (0s: as long as the query runs).
    #[arg(long = "store.response-timeout", env = "PROMLAKE_STORE_RESPONSE_TIMEOUT", default_value = "0s", value_parser = duration)]
    response_timeout: Duration,
    /// How long an endpoint whose Info fails keeps being reported in warnings before it is left out silently.
    #[arg(long = "store.unhealthy-timeout", env = "PROMLAKE_STORE_UNHEALTHY_TIMEOUT", default_value = "5m", value_parser = duration)]
    unhealthy_timeout: Duration,
    /// How often endpoints are resolved and asked for their Info.
    #[arg(long = "endpoint.info-interval", env = "PROMLAKE_ENDPOINT_INFO_INTERVAL", default_value = "5s", value_parser = duration)]
    info_interval: Duration,
    /// Optional: the bucket to serve in process, merged with the endpoints.
    #[command(flatten)]
    bucket: BucketArgs,
    #[command(flatten)]
    samples_cache: SamplesCacheArgs,
    /// How far back an instant selector looks for a sample (a duration such as 5m, 1h30m, 30s).
    #[arg(long = "query.lookback-delta", env = "PROMLAKE_QUERY_LOOKBACK_DELTA", default_value = "5m", value_parser = duration)]
    lookback_delta: Duration,
    /// Read downsampled data (5m, 1h) when a request gives no `max_source_resolution`: up to a
    /// fifth of a range query's step, as Thanos does.
    #[arg(long = "query.auto-downsampling", env = "PROMLAKE_QUERY_AUTO_DOWNSAMPLING")]
    auto_downsampling: bool,
    /// Longest a query may run; a request's `timeout` parameter can only shorten it.
    #[arg(long = "query.timeout", env = "PROMLAKE_QUERY_TIMEOUT", default_value = "2m", value_parser = duration)]
    timeout: Duration,
    /// Most samples a single query may hold in memory at once.
    #[arg(long = "query.max-samples", env = "PROMLAKE_QUERY_MAX_SAMPLES", default_value_t = 50_000_000)]
    max_samples: usize,
    /// How often to re-list the bucket for new and deleted blocks (0s: never).
    #[arg(long = "sync-block-duration", env = "PROMLAKE_SYNC_BLOCK_DURATION", default_value = "3m", value_parser = duration)]
    sync_interval: Duration,
}

/// Flag values are Prometheus durations.
fn duration(s: &str) -> Result<Duration, String> {
    crate::http::parse_prometheus_duration(s)
}

fn dedup_func(s: &str) -> Result<DedupFunc, String> {
    DedupFunc::parse(s).map_err(|e| e.to_string())
}

/// The flags, validated.
struct Config {
    specs: Vec<EndpointSpec>,
    fanout: FanoutOptions,
    endpoints: EndpointSetOptions,
    query: QueryOptions,
    has_bucket: bool,
}

impl QueryArgs {
    fn config(&self) -> Result<Config> {
        if self.lookback_delta.is_zero() {
            bail!("--query.lookback-delta must be positive");
        }
        if self.timeout.is_zero() {
            bail!("--query.timeout must be positive");
        }
        if self.info_interval.is_zero() {
            bail!("--endpoint.info-interval must be positive");
        }
        if let Some(bad) = self.replica_labels.iter().find(|l| l.is_empty() || l.contains(['=', '{', '"'])) {
            bail!("--query.replica-label {bad:?} is not a label name");
        }
        let specs = self.endpoints.iter().map(|e| EndpointSpec::parse(e)).collect::<Result<Vec<_>, _>>()?;
        let b = &self.bucket;
        let has_bucket =
            b.bucket.is_some() || b.objstore_config.is_some() || b.objstore_config_file.is_some();
        if specs.is_empty() && !has_bucket {
            bail!("nothing to query: pass --endpoint HOST:PORT (repeatable) and/or --bucket URL");
        }
        let partial = if self.partial_response && !self.no_partial_response {
            PartialResponse::Warn
        } else {
            PartialResponse::Abort
        };
        Ok(Config {
            specs,
            fanout: FanoutOptions {
                partial_response: partial,
                response_timeout: (!self.response_timeout.is_zero()).then_some(self.response_timeout),
            },
            endpoints: EndpointSetOptions {
                unhealthy_timeout: self.unhealthy_timeout,
                refresh_interval: self.info_interval,
                ..Default::default()
            },
            query: QueryOptions {
                lookback_delta_ms: i64::try_from(self.lookback_delta.as_millis()).unwrap_or(i64::MAX),
                max_samples: self.max_samples,
                timeout: self.timeout,
                max_resolution_ms: 0,
                auto_downsampling: self.auto_downsampling,
            },
            has_bucket,
        })
    }

    /// Serves until interrupted (SIGINT/SIGTERM), or fails when the bucket cannot be loaded.
    pub async fn run(self) -> Result<ExitCode> {
        let cfg = self.config()?;
        let bucket = if cfg.has_bucket { Some(self.bucket.open()?) } else { None };
        let state = ApiState::new(cfg.query.clone(), self.replica_labels.clone(), self.dedup_func);
        if let Some(b) = &bucket {
            state.set_bucket(b.clone());
        }
        // SQL (`/api/v1/sql`, Flight SQL on the gRPC port) reads the bucket, when there is one.
        let sql = match &bucket {
            Some(b) => Some(promlake_sql::SqlSession::new(
                b.clone(),
                promlake_sql::SqlOptions { promql: cfg.query.clone(), ..Default::default() },
            )?),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(&self.http_address)
            .await
            .with_context(|| format!("listening on --http-address {}", self.http_address))?;
        let grpc_listener = tokio::net::TcpListener::bind(&self.grpc_address)
            .await
            .with_context(|| format!("listening on --grpc-address {}", self.grpc_address))?;
        tracing::info!(
            http = %listener.local_addr()?,
            grpc = %grpc_listener.local_addr()?,
            endpoints = cfg.specs.len(),
            bucket = cfg.has_bucket,
            "serving the Prometheus HTTP API and StoreAPI"
        );

        let mut sets: Vec<Arc<dyn MemberSet>> = Vec::new();
        let endpoint_set = (!cfg.specs.is_empty()).then(|| {
            Arc::new(EndpointSet::new(
                cfg.specs.clone(),
                Arc::new(StoreConnector::default()),
                cfg.endpoints.clone(),
            ))
        });
        let samples_cache = self.samples_cache.cache();
        if bucket.is_some() {
            let c = samples_cache.clone();
            state.add_metrics(Arc::new(move || c.render()));
        }
        let store_metrics = Arc::new(StoreMetrics::default());
        state.add_metrics({
            let m = store_metrics.clone();
            Arc::new(move || m.render())
        });
        if let Some(set) = &endpoint_set {
            state.set_endpoints(set.clone());
            state.add_metrics({
                let set = set.clone();
                Arc::new(move || endpoint_metrics(&set))
            });
            // The first round before serving, so that the first queries see the endpoints.
            set.refresh().await;
            sets.push(set.clone());
            tokio::spawn(set.clone().run());
        }
        let fanout_opts = cfg.fanout.clone();
        let (grpc_tx, grpc_rx) = tokio::sync::oneshot::channel::<Fanout>();
        let loader = {
            let state = state.clone();
            let sync = self.sync_interval;
            async move {
                let Some(bucket) = bucket else {
                    let fanout = Fanout::new(Arc::new(Members(sets)), fanout_opts);
                    state.set_view(fanout.clone());
                    let _ = grpc_tx.send(fanout);
                    return std::future::pending::<Result<()>>().await;
                };
                let opts = BucketSourceOptions { samples_cache, ..Default::default() };
                let source =
                    Arc::new(BucketView::open_with(bucket, opts).await.context("loading the bucket")?);
                tracing::info!(blocks = source.raw().block_ids().await.len(), "bucket loaded; ready");
                sets.push(Arc::new(StaticMembers(vec![(
                    "bucket".into(),
                    source.clone() as Arc<dyn SeriesSource>,
                )])));
                let fanout = Fanout::new(Arc::new(Members(sets)), fanout_opts);
                state.set_view(fanout.clone());
                let _ = grpc_tx.send(fanout);
                if sync.is_zero() {
                    return std::future::pending::<Result<()>>().await;
                }
                let mut tick = tokio::time::interval(sync);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    match source.refresh().await {
                        Ok(()) => {
                            tracing::debug!(blocks = source.raw().block_ids().await.len(), "bucket synced")
                        }
                        Err(e) => tracing::warn!(error = %e, "bucket sync failed; keeping the known blocks"),
                    }
                }
            }
        };
        let flight_sql = sql.clone();
        let grpc = async move {
            // Serve once the view exists (the bucket is loaded).
            let Ok(fanout) = grpc_rx.await else { return std::future::pending::<Result<()>>().await };
            crate::grpc::serve(
                grpc_listener,
                crate::grpc::query_routes(fanout, store_metrics, flight_sql),
                shutdown_signal(),
            )
            .await
        };
        let mut app = router(state);
        if let Some(sql) = sql {
            app = app.layer(axum::Extension(sql));
        }
        let server = axum::serve(listener, app).with_graceful_shutdown(shutdown_signal());
        tokio::select! {
            r = server => r.context("HTTP server")?,
            r = loader => r?,
            r = grpc => r.context("gRPC server")?,
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `promlake_query_endpoints{state}`: endpoints by health.
fn endpoint_metrics(set: &EndpointSet) -> String {
    let status = set.status();
    let healthy = status.iter().filter(|s| s.last_error.is_none()).count();
    format!(
        "# HELP promlake_query_endpoints StoreAPI endpoints by health (Info answered on the last check or not).\n\
         # TYPE promlake_query_endpoints gauge\n\
         promlake_query_endpoints{{state=\"healthy\"}} {healthy}\n\
         promlake_query_endpoints{{state=\"unhealthy\"}} {}\n",
        status.len() - healthy
    )
}
