//! `/api/v1/blocks`: the bucket's block metas in Thanos bucket web's shape,
//! `{"blocks": [meta.json, ...], "label": "...", "refreshedAt": "..."}`, listed from the bucket
//! on each request. Without a bucket the answer is a 404 error saying so.

use super::json;
use super::stores::rfc3339;
use super::ui::UiState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::time::SystemTime;

/// The handler of `/api/v1/blocks`.
pub(super) async fn blocks(State(ui): State<UiState>) -> Response {
    let Some(bucket) = ui.bucket.get() else {
        let body =
            json::error_envelope("not_found", "no bucket: start the querier with --bucket to list blocks");
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    };
    let blocks = match bucket.list_blocks().await {
        Ok(b) => b,
        Err(e) => {
            let body =
                json::error_envelope("internal", &format!("listing the blocks of {}: {e}", bucket.url()));
            return (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "application/json")], body)
                .into_response();
        }
    };
    let metas: Vec<Value> = blocks.iter().filter_map(|b| serde_json::to_value(&b.meta).ok()).collect();
    let data = json!({
        "blocks": metas,
        "label": ui.label.get().map(String::as_str).unwrap_or(""),
        "refreshedAt": rfc3339(SystemTime::now()),
    });
    let body = json::success_envelope(&data.to_string());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
