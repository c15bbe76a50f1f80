//! Remote endpoints with health: Thanos's endpoint set.
//!
//! Each refresh resolves the [`EndpointSpec`]s, connects to new addresses through the
//! [`Connector`] and asks every endpoint for its [`EndpointInfo`] (bounded by the info
//! timeout). An endpoint whose last Info failed is unhealthy: queries skip it and count it as
//! failed (a warning under WARN, an error under ABORT) until it has been unhealthy for the
//! unhealthy timeout; after that it is left out of queries silently, as Thanos drops it, and
//! it comes back with its next good Info. Addresses a `dns+` name no longer resolves to are
//! forgotten.

use super::discovery::EndpointSpec;
use super::{Member, MemberContext, MemberSet};
use crate::{Labels, Result, SeriesSource};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// What an endpoint says about itself (Thanos `thanos.info.Info`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointInfo {
    /// External label sets of its data.
    pub label_sets: Vec<Labels>,
    /// Earliest sample (ms).
    pub min_time: i64,
    /// Latest sample (ms).
    pub max_time: i64,
}

/// A remote store the querier reads (a StoreAPI client, usually).
#[async_trait]
pub trait Endpoint: Send + Sync + std::fmt::Debug {
    /// Asks the endpoint what it holds; an error makes it unhealthy.
    async fn info(&self) -> Result<EndpointInfo>;

    /// The endpoint's data as a series source for a query with `ctx`.
    fn source(&self, ctx: &MemberContext) -> Arc<dyn SeriesSource>;
}

/// Opens endpoints by address.
#[async_trait]
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// An endpoint for `address` (`HOST:PORT`); connecting may be lazy.
    async fn connect(&self, address: &str) -> Result<Arc<dyn Endpoint>>;
}

/// Timing of the health checks.
#[derive(Debug, Clone)]
pub struct EndpointSetOptions {
    /// Longest wait for one Info answer (Thanos: 5s).
    pub info_timeout: Duration,
    /// How long an unhealthy endpoint still counts (`--store.unhealthy-timeout`, Thanos: 5m).
    pub unhealthy_timeout: Duration,
    /// How often [`EndpointSet::run`] refreshes (Thanos: 5s).
    pub refresh_interval: Duration,
}

impl Default for EndpointSetOptions {
    fn default() -> Self {
        EndpointSetOptions {
            info_timeout: Duration::from_secs(5),
            unhealthy_timeout: Duration::from_secs(300),
            refresh_interval: Duration::from_secs(5),
        }
    }
}

/// The health of one endpoint, for logs and status pages.
#[derive(Debug, Clone)]
pub struct EndpointStatus {
    /// Its address.
    pub address: String,
    /// The last good Info, if any.
    pub info: Option<EndpointInfo>,
    /// The last Info's error; `None`: healthy.
    pub last_error: Option<String>,
    /// When it was last healthy (or first seen, when never).
    pub healthy_since: Instant,
    /// When its Info was last asked for (wall clock); `None`: not checked yet.
    pub last_check: Option<std::time::SystemTime>,
}

#[derive(Debug)]
struct State {
    endpoint: Option<Arc<dyn Endpoint>>,
    info: Option<EndpointInfo>,
    last_error: Option<String>,
    /// Last good Info, or when first seen.
    last_ok: Instant,
    /// When the last check finished (wall clock).
    last_check: Option<std::time::SystemTime>,
}

/// Health-checked endpoints; a [`MemberSet`] for [`Fanout`](super::Fanout).
#[derive(Debug)]
pub struct EndpointSet {
    specs: Vec<EndpointSpec>,
    connector: Arc<dyn Connector>,
    opts: EndpointSetOptions,
    /// Per spec, the addresses it last resolved to.
    resolved: tokio::sync::Mutex<Vec<Vec<String>>>,
    state: RwLock<BTreeMap<String, State>>,
}

impl EndpointSet {
    /// A set over `specs`; call [`refresh`](Self::refresh) (or [`run`](Self::run)) to fill it.
    pub fn new(specs: Vec<EndpointSpec>, connector: Arc<dyn Connector>, opts: EndpointSetOptions) -> Self {
        let n = specs.len();
        EndpointSet {
            specs,
            connector,
            opts,
            resolved: tokio::sync::Mutex::new(vec![Vec::new(); n]),
            state: RwLock::new(BTreeMap::new()),
        }
    }

    /// Resolves the specs, connects new addresses and asks every endpoint for its Info.
    pub async fn refresh(&self) {
        let mut resolved = self.resolved.lock().await;
        for (i, spec) in self.specs.iter().enumerate() {
            match spec.resolve().await {
                Ok(addrs) => {
                    if let Some(slot) = resolved.get_mut(i) {
                        *slot = addrs;
                    }
                }
                // Keep the last known addresses, as Thanos does.
                Err(e) => tracing::warn!(endpoint = %spec, error = %e, "endpoint resolution failed"),
            }
        }
        let wanted: Vec<String> = {
            let mut all: Vec<String> = resolved.iter().flatten().cloned().collect();
            all.sort();
            all.dedup();
            all
        };
        drop(resolved);
        let known: BTreeMap<String, Option<Arc<dyn Endpoint>>> = {
            let mut st = self.write();
            st.retain(|addr, _| wanted.contains(addr));
            wanted
                .iter()
                .map(|a| {
                    let e = st
                        .entry(a.clone())
                        .or_insert_with(|| State {
                            endpoint: None,
                            info: None,
                            last_error: Some("not checked yet".into()),
                            last_ok: Instant::now(),
                            last_check: None,
                        })
                        .endpoint
                        .clone();
                    (a.clone(), e)
                })
                .collect()
        };
        let checks = known.into_iter().map(|(addr, ep)| async move {
            let r = async {
                let ep = match ep {
                    Some(ep) => ep,
                    None => self.connector.connect(&addr).await.map_err(|e| (None, e.to_string()))?,
                };
                let info = match tokio::time::timeout(self.opts.info_timeout, ep.info()).await {
                    Ok(Ok(info)) => info,
                    Ok(Err(e)) => return Err((Some(ep), e.to_string())),
                    Err(_) => {
                        return Err((
                            Some(ep),
                            format!("no Info answer within {:?}", self.opts.info_timeout),
                        ));
                    }
                };
                Ok((ep, info))
            }
            .await;
            (addr, r)
        });
        let results = futures::future::join_all(checks).await;
        let mut st = self.write();
        for (addr, r) in results {
            let Some(s) = st.get_mut(&addr) else { continue };
            s.last_check = Some(std::time::SystemTime::now());
            match r {
                Ok((ep, info)) => {
                    if s.last_error.is_some() {
                        tracing::info!(endpoint = %addr, "endpoint healthy");
                    }
                    s.endpoint = Some(ep);
                    s.info = Some(info);
                    s.last_error = None;
                    s.last_ok = Instant::now();
                }
                Err((ep, e)) => {
                    if s.last_error.is_none() || s.info.is_none() {
                        tracing::warn!(endpoint = %addr, error = %e, "endpoint unhealthy");
                    }
                    if ep.is_some() {
                        s.endpoint = ep;
                    }
                    s.last_error = Some(e);
                }
            }
        }
    }

    /// Refreshes every refresh interval, forever.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.opts.refresh_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.refresh().await;
        }
    }

    /// The health of every endpoint.
    pub fn status(&self) -> Vec<EndpointStatus> {
        self.read()
            .iter()
            .map(|(a, s)| EndpointStatus {
                address: a.clone(),
                info: s.info.clone(),
                last_error: s.last_error.clone(),
                healthy_since: s.last_ok,
                last_check: s.last_check,
            })
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, State>> {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, State>> {
        self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl MemberSet for EndpointSet {
    fn members(&self, ctx: &MemberContext) -> Vec<Member> {
        let now = Instant::now();
        let mut out = Vec::new();
        for (addr, s) in self.read().iter() {
            let (label_sets, min_time, max_time) = match &s.info {
                Some(i) => (i.label_sets.clone(), i.min_time, i.max_time),
                None => (Vec::new(), i64::MIN, i64::MAX),
            };
            match (&s.last_error, &s.endpoint) {
                (None, Some(ep)) => out.push(Member {
                    name: addr.clone(),
                    source: Some(ep.source(ctx)),
                    problem: None,
                    label_sets,
                    min_time,
                    max_time,
                }),
                (err, _) if now.duration_since(s.last_ok) < self.opts.unhealthy_timeout => out.push(Member {
                    name: addr.clone(),
                    source: None,
                    problem: Some(format!(
                        "endpoint unhealthy: {}",
                        err.as_deref().unwrap_or("not connected")
                    )),
                    label_sets,
                    min_time,
                    max_time,
                }),
                _ => {}
            }
        }
        out
    }
}
