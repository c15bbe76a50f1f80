//! `thanos.info.Info`: what a querier learns about this endpoint before sending queries —
//! the external label sets it serves, its time range, its component type and that it honours
//! `without_replica_labels`.

use super::StoreServerOptions;
use super::matchers::labels_to_proto;
use crate::SeriesSource;
use promlake_proto::thanos::ZLabelSet;
use promlake_proto::thanos::info::{InfoRequest, InfoResponse, StoreInfo, info_server::Info};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The `thanos.info.Info` service.
#[derive(Debug)]
pub(crate) struct InfoService {
    source: Arc<dyn SeriesSource>,
    opts: StoreServerOptions,
}

impl InfoService {
    pub(crate) fn new(source: Arc<dyn SeriesSource>, opts: StoreServerOptions) -> Self {
        InfoService { source, opts }
    }
}

#[tonic::async_trait]
impl Info for InfoService {
    async fn info(&self, _request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let (min_time, max_time) = self.source.time_range();
        let label_sets = self.source.label_sets().await;
        Ok(Response::new(InfoResponse {
            label_sets: label_sets.iter().map(|l| ZLabelSet { labels: labels_to_proto(l) }).collect(),
            component_type: self.opts.component.as_str().to_string(),
            store: Some(StoreInfo {
                min_time,
                max_time,
                supports_sharding: false,
                supports_without_replica_labels: true,
                tsdb_infos: Vec::new(),
                supports_projections: false,
            }),
            ..Default::default()
        }))
    }
}
