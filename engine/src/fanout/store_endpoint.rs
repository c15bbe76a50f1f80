//! StoreAPI endpoints as fan-out members: the [`Connector`] of `promlake query`.
//!
//! Each endpoint is one lazily connected [`StoreClient`]; per query it is wrapped with the
//! request's partial-response strategy (sent on the wire) and warnings sink (label calls'
//! warnings; Series warnings frames go to the select request's sink). Under ABORT an answer
//! that came back with warnings fails, as in Thanos's proxy: a querier endpoint reports its own
//! failed stores as warnings.

use super::endpoints::{Connector, Endpoint, EndpointInfo};
use super::{MemberContext, PartialResponse};
use crate::source::{SelectRequest, SeriesSource, SeriesStream, Warnings};
use crate::storeapi::{ClientOptions, PartialResponseStrategy, SeriesOptions, StoreClient};
use crate::{Error, Labels, Matcher, Result};
use async_trait::async_trait;
use std::sync::Arc;

/// Opens [`StoreClient`]s (lazily connected) with these options.
#[derive(Debug, Clone, Default)]
pub struct StoreConnector {
    /// Client options (the partial-response strategy is set per request).
    pub options: ClientOptions,
}

#[async_trait]
impl Connector for StoreConnector {
    async fn connect(&self, address: &str) -> Result<Arc<dyn Endpoint>> {
        Ok(Arc::new(StoreEndpoint { client: Arc::new(StoreClient::new(address, self.options.clone())?) }))
    }
}

/// One StoreAPI endpoint.
#[derive(Debug)]
pub struct StoreEndpoint {
    client: Arc<StoreClient>,
}

#[async_trait]
impl Endpoint for StoreEndpoint {
    async fn info(&self) -> Result<EndpointInfo> {
        let i = self.client.info().await?;
        if !i.store_api {
            return Err(Error::Unavailable(format!(
                "{} does not serve the StoreAPI",
                self.client.endpoint()
            )));
        }
        Ok(EndpointInfo { label_sets: i.label_sets, min_time: i.min_time, max_time: i.max_time })
    }

    fn source(&self, ctx: &MemberContext) -> Arc<dyn SeriesSource> {
        Arc::new(RequestView {
            client: self.client.clone(),
            strategy: match ctx.partial_response {
                PartialResponse::Warn => PartialResponseStrategy::Warn,
                PartialResponse::Abort => PartialResponseStrategy::Abort,
            },
            warnings: ctx.warnings.clone(),
        })
    }
}

/// A client seen through one request's strategy and warnings sink.
#[derive(Debug)]
struct RequestView {
    client: Arc<StoreClient>,
    strategy: PartialResponseStrategy,
    warnings: Option<Warnings>,
}

impl RequestView {
    fn report(&self, warnings: Vec<String>) -> Result<()> {
        if warnings.is_empty() {
            return Ok(());
        }
        if self.strategy == PartialResponseStrategy::Abort {
            return Err(Error::Unavailable(format!("{}: {}", self.client.endpoint(), warnings.join("; "))));
        }
        if let Some(sink) = &self.warnings {
            warnings.into_iter().for_each(|w| sink.push(w));
        }
        Ok(())
    }
}

#[async_trait]
impl SeriesSource for RequestView {
    async fn select(&self, req: &SelectRequest) -> Result<SeriesStream> {
        // No skip_chunks for the "series" hint: a querier endpoint's own sources would answer
        // label-only series, which its StoreAPI server (sources leave out series without
        // samples) drops.
        let opts = SeriesOptions { partial_response: Some(self.strategy), ..Default::default() };
        // The client reads every frame before it returns, so the warnings are known here.
        let sink = Warnings::default();
        let mut own = req.clone();
        own.warnings = sink.clone();
        let stream = self.client.select_with(&own, &opts).await?;
        let warnings = sink.get();
        if self.strategy == PartialResponseStrategy::Abort && !warnings.is_empty() {
            return Err(Error::Unavailable(format!("{}: {}", self.client.endpoint(), warnings.join("; "))));
        }
        warnings.into_iter().for_each(|w| req.warnings.push(w));
        Ok(stream)
    }

    /// The endpoint's answer for the window (the StoreAPI request carries it).
    async fn label_names_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        let (names, warnings) = self.client.label_names_in(min_time, max_time, matchers).await?;
        self.report(warnings)?;
        Ok(names)
    }

    /// The endpoint's answer for the window (the StoreAPI request carries it).
    async fn label_values_between(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        let (values, warnings) = self.client.label_values_in(name, min_time, max_time, matchers).await?;
        self.report(warnings)?;
        Ok(values)
    }

    fn time_range(&self) -> (i64, i64) {
        self.client.time_range()
    }

    fn external_labels(&self) -> &Labels {
        self.client.external_labels()
    }
}
