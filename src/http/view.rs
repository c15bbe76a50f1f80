//! A request's view of the querier's sources: Thanos's `dedup`, `partial_response` and
//! `replicaLabels[]` parameters applied to the [`Fanout`].

use super::ApiState;
use super::error::{ApiError, Result};
use super::params::Params;
use promlake_engine::dedup::DedupSource;
use promlake_engine::fanout::PartialResponse;
use promlake_engine::{SeriesSource, Warnings};
use std::sync::Arc;

/// Go's `strconv.ParseBool`, as Thanos parses `dedup` and `partial_response`.
fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(ApiError::invalid_param(name, format!("strconv.ParseBool: parsing {v:?}: invalid syntax"))),
    }
}

/// The source a request reads, reporting partial-response problems to `warnings`.
pub fn source(st: &ApiState, p: &Params, warnings: &Warnings) -> Result<Arc<dyn SeriesSource>> {
    let dedup = match p.get("dedup") {
        "" => true,
        v => parse_bool("dedup", v)?,
    };
    let fanout = st.fanout().ok_or_else(|| ApiError::Unavailable("the bucket is not loaded yet".into()))?;
    let strategy = match p.get("partial_response") {
        "" => fanout.options().partial_response,
        v if parse_bool("partial_response", v)? => PartialResponse::Warn,
        _ => PartialResponse::Abort,
    };
    let view = fanout.with_partial_response(strategy).with_warnings(warnings.clone());
    let requested: Vec<String> =
        p.all("replicaLabels[]").into_iter().filter(|l| !l.is_empty()).map(str::to_owned).collect();
    let replica_labels = if requested.is_empty() { st.replica_labels.clone() } else { requested };
    if dedup && !replica_labels.is_empty() {
        Ok(Arc::new(DedupSource::new(Arc::new(view), replica_labels).with_func(st.dedup_func)))
    } else {
        Ok(Arc::new(view))
    }
}
