//! Hashring routing and replication: a request is split by series over the endpoints of its
//! tenant's ring (`replication_factor` replicas each), the local share is written here and
//! the rest forwarded over gRPC `thanos.WriteableStore/RemoteWrite` (with `replica` set so the
//! peer stores it without forwarding again). The write succeeds once every series reached a
//! quorum of its replicas ([`write_quorum`]); a down peer costs one replica, not the write.
//!
//! [`WriteService`] is the gRPC side: forwarded writes land in the local receiver.

use super::Receiver;
use super::hashring::{Hashrings, series_hash, write_quorum};
use promlake_proto::prometheus::{TimeSeries, WriteRequest};
use promlake_proto::thanos::writeable_store_client::WriteableStoreClient;
use promlake_proto::thanos::writeable_store_server::WriteableStore;
use promlake_proto::thanos::{WriteRequest as ThanosWriteRequest, WriteResponse};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Per-endpoint result: `Ok((status, message))` when the endpoint answered (2xx or 4xx),
/// `Err(reason)` when it could not store the data (down, timeout, 5xx).
type Delivery = std::result::Result<(u16, String), String>;

/// Routes writes over the hashrings.
#[derive(Debug)]
pub struct Router {
    receiver: Arc<Receiver>,
    local: Option<String>,
    rf: usize,
    rings: RwLock<Arc<Hashrings>>,
    clients: Mutex<HashMap<String, WriteableStoreClient<Channel>>>,
    timeout: Duration,
}

impl Router {
    /// A router for `receiver`, which is `local` (its `--receive.local-endpoint`) in the rings.
    pub fn new(
        receiver: Arc<Receiver>,
        rings: Hashrings,
        local: Option<String>,
        rf: usize,
        timeout: Duration,
    ) -> Self {
        Router {
            receiver,
            local,
            rf: rf.max(1),
            rings: RwLock::new(Arc::new(rings)),
            clients: Mutex::new(HashMap::new()),
            timeout,
        }
    }

    /// Replaces the rings (file reload).
    pub fn set_rings(&self, rings: Hashrings) {
        *self.rings.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(rings);
    }

    fn rings(&self) -> Arc<Hashrings> {
        self.rings.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn client(&self, endpoint: &str) -> std::result::Result<WriteableStoreClient<Channel>, String> {
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(endpoint) {
            return Ok(c.clone());
        }
        let uri = if endpoint.contains("://") { endpoint.to_string() } else { format!("http://{endpoint}") };
        let channel = Endpoint::from_shared(uri)
            .map_err(|e| format!("invalid endpoint {endpoint:?}: {e}"))?
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .connect_lazy();
        let c = WriteableStoreClient::new(channel)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        clients.insert(endpoint.to_string(), c.clone());
        Ok(c)
    }

    /// Writes `req` for `tenant` over the ring; returns the HTTP status and message.
    pub async fn write(&self, tenant: &str, raw: &[u8], req: &WriteRequest) -> (u16, String) {
        let rings = self.rings();
        let Some(ring) = rings.ring_for(tenant) else {
            return (500, format!("no hashring serves tenant {tenant:?}"));
        };
        if self.rf > ring.endpoints.len() {
            return (
                500,
                format!(
                    "replication factor {} is larger than the {} endpoints of hashring {:?}",
                    self.rf,
                    ring.endpoints.len(),
                    ring.name
                ),
            );
        }
        let mut batches: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let mut placement: Vec<Vec<usize>> = Vec::with_capacity(req.timeseries.len());
        for (i, ts) in req.timeseries.iter().enumerate() {
            let h = series_hash(tenant, &ts.labels);
            let eps: Vec<usize> = ring.replicas(h, self.rf).collect();
            for &e in &eps {
                batches.entry(e).or_default().push(i);
            }
            placement.push(eps);
        }
        let all = req.timeseries.len();
        let sends = batches.into_iter().map(|(e, idx)| {
            let endpoint = ring.endpoints.get(e).cloned().unwrap_or_default();
            async move {
                let series: Vec<TimeSeries> =
                    idx.iter().filter_map(|&i| req.timeseries.get(i).cloned()).collect();
                let d = if self.local.as_deref() == Some(endpoint.as_str()) {
                    let sub = WriteRequest { timeseries: series, ..Default::default() };
                    let raw_sub =
                        if idx.len() == all { None } else { Some(prost::Message::encode_to_vec(&sub)) };
                    local_write(&self.receiver, tenant, raw_sub.as_deref().unwrap_or(raw), &sub).await
                } else {
                    self.forward(&endpoint, tenant, series).await
                };
                (e, endpoint, d)
            }
        });
        let results: Vec<(usize, String, Delivery)> = futures::future::join_all(sends).await;
        let by_ep: HashMap<usize, &Delivery> = results.iter().map(|(e, _, d)| (*e, d)).collect();
        let quorum = write_quorum(self.rf);
        let failed_series = placement
            .iter()
            .filter(|eps| eps.iter().filter(|e| by_ep.get(e).is_some_and(|d| d.is_ok())).count() < quorum)
            .count();
        if failed_series > 0 {
            let errs: Vec<String> = results
                .iter()
                .filter_map(|(_, ep, d)| d.as_ref().err().map(|e| format!("{ep}: {e}")))
                .collect();
            return (
                503,
                format!(
                    "write quorum {quorum} of replication factor {} not reached for {failed_series} series: {}",
                    self.rf,
                    errs.join("; ")
                ),
            );
        }
        for (_, (code, msg)) in results.iter().filter_map(|(e, _, d)| d.as_ref().ok().map(|d| (e, d))) {
            if *code >= 400 {
                return (*code, msg.clone());
            }
        }
        (200, String::new())
    }

    async fn forward(&self, endpoint: &str, tenant: &str, series: Vec<TimeSeries>) -> Delivery {
        let mut client = self.client(endpoint)?;
        let req = ThanosWriteRequest {
            timeseries: series,
            tenant: tenant.to_string(),
            replica: 1,
            ..Default::default()
        };
        let mut request = tonic::Request::new(req);
        request.set_timeout(self.timeout);
        if let Ok(v) = tenant.parse() {
            request.metadata_mut().insert("thanos-tenant", v);
        }
        match client.remote_write(request).await {
            Ok(_) => Ok((200, String::new())),
            Err(s) => match s.code() {
                tonic::Code::AlreadyExists => Ok((409, s.message().to_string())),
                tonic::Code::InvalidArgument => Ok((400, s.message().to_string())),
                tonic::Code::ResourceExhausted => Ok((429, s.message().to_string())),
                code => Err(format!("{code:?}: {}", s.message())),
            },
        }
    }
}

async fn local_write(rx: &Receiver, tenant: &str, raw: &[u8], req: &WriteRequest) -> Delivery {
    match rx.write(tenant, raw, req).await {
        Ok(res) => Ok(res.status(tenant)),
        Err(e) if e.http_status() < 500 => Ok((e.http_status(), e.to_string())),
        Err(e) => Err(e.to_string()),
    }
}

/// Polls the hashrings file every `every` and installs a changed, valid version.
pub async fn watch_file(router: Arc<Router>, path: PathBuf, every: Duration) {
    let mut last = std::fs::read_to_string(&path).ok();
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let Ok(now) = std::fs::read_to_string(&path) else { continue };
        if last.as_deref() == Some(now.as_str()) {
            continue;
        }
        match Hashrings::parse(&path.display().to_string(), &now) {
            Ok(h) => {
                tracing::info!(file = %path.display(), rings = h.rings.len(), "hashrings reloaded");
                router.set_rings(h);
            }
            Err(e) => {
                tracing::warn!(error = %e, "hashrings file changed but is invalid; keeping the previous rings")
            }
        }
        last = Some(now);
    }
}

/// `thanos.WriteableStore`: forwarded (replica > 0) writes are stored locally; others are
/// routed like an HTTP write.
#[derive(Debug)]
pub struct WriteService {
    /// The local receiver.
    pub receiver: Arc<Receiver>,
    /// The router, when a hashring is configured.
    pub router: Option<Arc<Router>>,
}

fn status_for(code: u16, msg: String) -> tonic::Status {
    match code {
        409 => tonic::Status::already_exists(msg),
        400 | 415 => tonic::Status::invalid_argument(msg),
        413 | 429 => tonic::Status::resource_exhausted(msg),
        503 => tonic::Status::unavailable(msg),
        _ => tonic::Status::internal(msg),
    }
}

#[tonic::async_trait]
impl WriteableStore for WriteService {
    async fn remote_write(
        &self,
        request: tonic::Request<ThanosWriteRequest>,
    ) -> std::result::Result<tonic::Response<WriteResponse>, tonic::Status> {
        let from_meta =
            request.metadata().get("thanos-tenant").and_then(|v| v.to_str().ok()).map(str::to_string);
        let r = request.into_inner();
        let tenant = Some(r.tenant.clone())
            .filter(|t| !t.is_empty())
            .or(from_meta)
            .unwrap_or_else(|| self.receiver.config().default_tenant.clone());
        let req = WriteRequest { timeseries: r.timeseries, ..Default::default() };
        let raw = prost::Message::encode_to_vec(&req);
        let (code, msg) = match (&self.router, r.replica) {
            (Some(router), 0) => router.write(&tenant, &raw, &req).await,
            _ => match local_write(&self.receiver, &tenant, &raw, &req).await {
                Ok(x) => x,
                Err(e) => (503, e),
            },
        };
        if code < 300 { Ok(tonic::Response::new(WriteResponse {})) } else { Err(status_for(code, msg)) }
    }
}
