//! `promlake receive`: Prometheus remote write into a WAL-backed head, cut into Parquet blocks.
//!
//! Wiring only: validate the flags into a `ReceiveConfig`, bind the listeners (remote write,
//! HTTP), replay the WAL in the background (`/-/ready` answers 200 once done), run the block
//! cutter, serve the StoreAPI and WriteableStore (hashring forwarding) on the gRPC address, and
//! on SIGINT/SIGTERM close the WAL. The receiver lives in `promlake_ingest::receive`.

use crate::flags::BucketArgs;
use crate::probes::shutdown_signal;
use anyhow::{Context, Result, bail};
use clap::Args;
use promlake_engine::Labels;
use promlake_engine::catalog::BucketSource;
use promlake_engine::storeapi::{self, Component, StoreServerOptions};
use promlake_ingest::receive::forward::{Router, WriteService, watch_file};
use promlake_ingest::receive::hashring::Hashrings;
use promlake_ingest::receive::http::{self as rw_http, HttpState, ops_service};
use promlake_ingest::receive::limits::Limits;
use promlake_ingest::receive::wal::SyncPolicy;
use promlake_ingest::receive::{ReceiveConfig, Receiver};
use promlake_proto::thanos::writeable_store_server::WriteableStoreServer;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Flags of `promlake receive`.
#[derive(Debug, Args)]
pub struct ReceiveArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    /// Local directory of the write-ahead log and the receiver's state.
    #[arg(long = "tsdb.path", env = "PROMLAKE_TSDB_PATH", default_value = "./data")]
    tsdb_path: PathBuf,
    /// External label added to every series and block (repeatable): --label receive=r1 or --label 'receive="r1"'.
    #[arg(long = "label", value_name = "NAME=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Listen address (host:port) of remote write (POST /api/v1/receive and /api/v1/write).
    #[arg(
        long = "remote-write.address",
        env = "PROMLAKE_REMOTE_WRITE_ADDRESS",
        default_value = "127.0.0.1:19291"
    )]
    remote_write_address: String,
    /// Listen address (host:port) of the gRPC server: Thanos StoreAPI (thanos.Store, thanos.info.Info) over every
    /// tenant's head and the blocks this receiver uploaded (those with its --labels), and thanos.WriteableStore
    /// for writes forwarded by hashring peers.
    #[arg(long = "grpc-address", env = "PROMLAKE_GRPC_ADDRESS", default_value = "127.0.0.1:10901")]
    grpc_address: String,
    /// Listen address (host:port) of the HTTP server: /metrics, /-/healthy and /-/ready.
    #[arg(long = "http-address", env = "PROMLAKE_HTTP_ADDRESS", default_value = "127.0.0.1:10902")]
    http_address: String,
    /// Length of the blocks cut from the head, aligned to multiples of it (2h as in Prometheus;
    /// shorter values such as 1m are for tests). A window is cut once data or the clock is half
    /// a block past its end.
    #[arg(long = "tsdb.block-duration", env = "PROMLAKE_TSDB_BLOCK_DURATION", default_value = "2h", value_parser = duration)]
    block_duration: Duration,
    /// When a write is on disk before it is acknowledged: "always" (write and fdatasync, one
    /// fsync shared by all requests that arrive meanwhile; survives power loss) or "never"
    /// (written to the OS before the answer, no fsync; survives kill -9, not a machine crash).
    #[arg(long = "tsdb.wal.fsync", env = "PROMLAKE_TSDB_WAL_FSYNC", default_value = "always")]
    wal_fsync: SyncPolicy,
    /// HTTP header naming the tenant of a write request.
    #[arg(
        long = "receive.tenant-header",
        env = "PROMLAKE_RECEIVE_TENANT_HEADER",
        default_value = "THANOS-TENANT"
    )]
    tenant_header: String,
    /// Tenant of requests without the tenant header.
    #[arg(
        long = "receive.default-tenant-id",
        env = "PROMLAKE_RECEIVE_DEFAULT_TENANT_ID",
        default_value = "default-tenant"
    )]
    default_tenant: String,
    /// External label holding the tenant, added to every series and block.
    #[arg(
        long = "receive.tenant-label-name",
        env = "PROMLAKE_RECEIVE_TENANT_LABEL_NAME",
        default_value = "tenant_id"
    )]
    tenant_label: String,
    /// Thanos hashrings JSON file ([{"hashring", "tenants", "endpoints": ["host:grpc-port", ...]}]),
    /// re-read every 5s: series are spread over the endpoints (hashmod) and forwarded over gRPC.
    #[arg(long = "receive.hashrings-file", env = "PROMLAKE_RECEIVE_HASHRINGS_FILE", value_name = "FILE")]
    hashrings_file: Option<PathBuf>,
    /// This receiver's endpoint as written in the hashrings file (its gRPC host:port); without it
    /// every series is forwarded.
    #[arg(
        long = "receive.local-endpoint",
        env = "PROMLAKE_RECEIVE_LOCAL_ENDPOINT",
        value_name = "HOST:PORT"
    )]
    local_endpoint: Option<String>,
    /// Copies of each series written over the hashring; a write succeeds once a majority (RF/2+1) stored it.
    #[arg(
        long = "receive.replication-factor",
        env = "PROMLAKE_RECEIVE_REPLICATION_FACTOR",
        default_value_t = 1
    )]
    replication_factor: usize,
    /// Timeout of one forwarded write to a peer.
    #[arg(long = "receive-forward-timeout", env = "PROMLAKE_RECEIVE_FORWARD_TIMEOUT", default_value = "5s", value_parser = duration)]
    forward_timeout: Duration,
    /// Thanos limits configuration file (write.default / write.tenants: request.size_bytes_limit,
    /// series_limit, samples_limit → HTTP 413; head_series_limit → HTTP 429).
    #[arg(
        long = "receive.limits-config-file",
        env = "PROMLAKE_RECEIVE_LIMITS_CONFIG_FILE",
        value_name = "FILE"
    )]
    limits_file: Option<PathBuf>,
    /// The limits configuration given inline (YAML); replaces --receive.limits-config-file.
    #[arg(long = "receive.limits-config", env = "PROMLAKE_RECEIVE_LIMITS_CONFIG", value_name = "YAML")]
    limits_inline: Option<String>,
}

fn duration(s: &str) -> Result<Duration, String> {
    crate::http::parse_prometheus_duration(s)
}

/// `name=value` or `name="value"` (Thanos's form).
fn parse_label(s: &str) -> Result<(String, String), String> {
    let Some((k, v)) = s.split_once('=') else {
        return Err(format!("{s:?} is not NAME=VALUE"));
    };
    let valid = k
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if k.is_empty() || !valid {
        return Err(format!("{k:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)"));
    }
    let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
    if v.is_empty() {
        return Err(format!("label {k} has an empty value"));
    }
    Ok((k.to_string(), v.to_string()))
}

impl ReceiveArgs {
    fn config(&self) -> Result<ReceiveConfig> {
        let block_ms = i64::try_from(self.block_duration.as_millis()).unwrap_or(i64::MAX);
        if block_ms < 1000 {
            bail!("--tsdb.block-duration must be at least 1s, got {:?}", self.block_duration);
        }
        if parse_label(&format!("{}=x", self.tenant_label)).is_err() {
            bail!("--receive.tenant-label-name {:?} is not a valid label name", self.tenant_label);
        }
        if self.default_tenant.is_empty() {
            bail!("--receive.default-tenant-id must not be empty");
        }
        let limits = match (&self.limits_inline, &self.limits_file) {
            (Some(y), _) => Limits::from_yaml("--receive.limits-config", y)?,
            (None, Some(f)) => {
                let y = std::fs::read_to_string(f)
                    .with_context(|| format!("reading --receive.limits-config-file {}", f.display()))?;
                Limits::from_yaml(&format!("--receive.limits-config-file {}", f.display()), &y)?
            }
            (None, None) => Limits::default(),
        };
        Ok(ReceiveConfig {
            tsdb_path: self.tsdb_path.clone(),
            block_ms,
            external: Labels::from_pairs(self.labels.clone()),
            tenant_label: self.tenant_label.clone(),
            default_tenant: self.default_tenant.clone(),
            wal_sync: self.wal_fsync,
            limits,
        })
    }

    /// Serves until interrupted (SIGINT/SIGTERM).
    pub async fn run(self) -> Result<ExitCode> {
        let cfg = self.config()?;
        let bucket = self.bucket.open()?;
        let tick = Duration::from_millis((cfg.block_ms as u64 / 20).clamp(500, 30_000));
        if self.replication_factor == 0 {
            bail!("--receive.replication-factor must be at least 1");
        }
        let receiver = Receiver::new(cfg);
        match BucketSource::open(bucket.clone()).await {
            Ok(b) => receiver.set_blocks(Arc::new(b)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the bucket; serving only the heads over the StoreAPI")
            }
        }
        let router = match &self.hashrings_file {
            None => None,
            Some(f) => {
                let json = std::fs::read_to_string(f)
                    .with_context(|| format!("reading --receive.hashrings-file {}", f.display()))?;
                let rings = Hashrings::parse(&format!("--receive.hashrings-file {}", f.display()), &json)?;
                if let Some(local) = &self.local_endpoint
                    && !rings.rings.iter().any(|r| r.endpoints.contains(local))
                {
                    tracing::warn!(%local, "--receive.local-endpoint is in no hashring; every series is forwarded");
                }
                let router = Arc::new(Router::new(
                    receiver.clone(),
                    rings,
                    self.local_endpoint.clone(),
                    self.replication_factor,
                    self.forward_timeout,
                ));
                tokio::spawn(watch_file(router.clone(), f.clone(), Duration::from_secs(5)));
                Some(router)
            }
        };
        let store_opts = StoreServerOptions { component: Component::Receive, ..Default::default() };
        let store_metrics = store_opts.metrics.clone();
        let state = HttpState {
            receiver: receiver.clone(),
            tenant_header: self.tenant_header.clone(),
            router: router.clone(),
            extra_metrics: Some(Arc::new(move || store_metrics.render())),
        };
        let rw = tokio::net::TcpListener::bind(&self.remote_write_address)
            .await
            .with_context(|| format!("listening on --remote-write.address {}", self.remote_write_address))?;
        let http = tokio::net::TcpListener::bind(&self.http_address)
            .await
            .with_context(|| format!("listening on --http-address {}", self.http_address))?;
        let grpc = tokio::net::TcpListener::bind(&self.grpc_address)
            .await
            .with_context(|| format!("listening on --grpc-address {}", self.grpc_address))?;
        tracing::info!(
            remote_write = %rw.local_addr()?,
            http = %http.local_addr()?,
            grpc = %grpc.local_addr()?,
            "serving; replaying the WAL"
        );
        let writer = WriteableStoreServer::new(WriteService { receiver: receiver.clone(), router })
            .max_decoding_message_size(storeapi::MAX_MESSAGE_BYTES);
        let routes = storeapi::routes(receiver.source(), store_opts).add_service(writer);
        let grpc_server = storeapi::serve(grpc, routes, shutdown_signal());

        let replay = {
            let r = receiver.clone();
            async move {
                tokio::task::spawn_blocking(move || r.replay()).await.context("WAL replay task")??;
                std::future::pending::<()>().await;
                Ok::<(), anyhow::Error>(())
            }
        };
        let cutter = tokio::spawn(receiver.clone().run_cutter(bucket, tick));
        let rw_server =
            axum::serve(rw, rw_http::router(state.clone())).with_graceful_shutdown(shutdown_signal());
        let http_server = axum::serve(http, ops_service(state)).with_graceful_shutdown(shutdown_signal());
        let result = tokio::select! {
            r = rw_server => r.context("remote-write server"),
            r = http_server => r.context("HTTP server"),
            r = grpc_server => r.context("gRPC server"),
            r = replay => r.context("replaying the WAL"),
        };
        cutter.abort();
        receiver.close().context("closing the WAL")?;
        result?;
        Ok(ExitCode::SUCCESS)
    }
}
