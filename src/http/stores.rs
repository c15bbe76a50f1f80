//! `/api/v1/stores`: the querier's sources with their health, in Thanos's shape — a map from
//! component type to `[{name, lastCheck, lastError, labelSets, minTime, maxTime}]`. Remote
//! StoreAPI endpoints (`--endpoint`) come from the endpoint set's last Info checks and are
//! listed as `store`; the in-process bucket (`--bucket`) is listed as `bucket`, its label
//! sets and time range read from its blocks when asked.

use super::json;
use super::ui::UiState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use promlake_engine::Labels;
use serde_json::{Map, Value, json};
use std::time::SystemTime;

/// The handler of `/api/v1/stores`.
pub(super) async fn stores(State(ui): State<UiState>) -> Response {
    let mut endpoints = Vec::new();
    let mut addresses = Vec::new();
    if let Some(set) = ui.endpoints.get() {
        for s in set.status() {
            addresses.push(s.address.clone());
            let (label_sets, min, max) = match &s.info {
                Some(i) => (i.label_sets.as_slice(), i.min_time, i.max_time),
                None => (&[][..], i64::MIN, i64::MAX),
            };
            endpoints.push(entry(&s.address, s.last_check, s.last_error.as_deref(), label_sets, min, max));
        }
    }
    let mut local = Vec::new();
    match ui.fanout.get() {
        Some(fanout) => {
            for m in fanout.members() {
                if addresses.contains(&m.name) {
                    continue;
                }
                let sets = match &m.source {
                    Some(src) => src.label_sets().await,
                    None => m.label_sets.clone(),
                };
                // In process: checked now, by this request.
                local.push(entry(
                    &m.name,
                    Some(SystemTime::now()),
                    m.problem.as_deref(),
                    &sets,
                    m.min_time,
                    m.max_time,
                ));
            }
        }
        None if ui.bucket.get().is_some() => {
            local.push(entry("bucket", None, Some("the bucket is not loaded yet"), &[], i64::MIN, i64::MAX));
        }
        None => {}
    }
    let mut data = Map::new();
    if !endpoints.is_empty() {
        data.insert("store".into(), Value::Array(endpoints));
    }
    if !local.is_empty() {
        data.insert("bucket".into(), Value::Array(local));
    }
    let body = json::success_envelope(&Value::Object(data).to_string());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// One source as Thanos's `EndpointStatus` JSON.
fn entry(
    name: &str,
    last_check: Option<SystemTime>,
    error: Option<&str>,
    sets: &[Labels],
    min: i64,
    max: i64,
) -> Value {
    let sets: Vec<Value> = sets
        .iter()
        .map(|l| Value::Object(l.iter().map(|p| (p.name.clone(), Value::String(p.value.clone()))).collect()))
        .collect();
    json!({
        "name": name,
        "lastCheck": last_check.map(rfc3339),
        "lastError": error,
        "labelSets": sets,
        "minTime": min,
        "maxTime": max,
    })
}

/// A wall-clock time as RFC 3339 with milliseconds, UTC.
pub(super) fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}
