//! `/api/v1/sql`: a SQL statement over the bucket (`query=`), answered as JSON (default), CSV
//! or Arrow IPC (`format=json|csv|arrow`, or the `Accept` header). GET or form POST; a POST
//! with another content type sends the statement as the body.
//!
//! The session comes from an [`axum::Extension`] layer the command adds (`promlake query`
//! with a bucket); without it the endpoint answers 503. Errors use Prometheus's JSON shape:
//! bad SQL is `bad_data` (400).

use super::error::ApiError;
use super::params::Params;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use promlake_sql::SqlSession;
use promlake_sql::format::Format;

/// Handles `/api/v1/sql`.
pub async fn query(
    session: Option<Extension<SqlSession>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    match run(session.map(|Extension(s)| s), &headers, q.as_deref(), &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run(
    session: Option<SqlSession>,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    let p = Params::new(is_form.then_some(body.as_ref()), raw_query);
    let sql = match p.get("query") {
        "" if !is_form && !body.is_empty() => std::str::from_utf8(body)
            .map_err(|_| ApiError::BadData("the request body is not UTF-8 SQL".into()))?
            .to_string(),
        "" => return Err(ApiError::invalid_param("query", "missing SQL statement")),
        q => q.to_string(),
    };
    let format = match p.get("format") {
        "" => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .and_then(Format::from_accept)
            .unwrap_or(Format::Json),
        f => Format::parse(f).map_err(|e| ApiError::invalid_param("format", e))?,
    };
    let session = session.ok_or_else(|| ApiError::Unavailable("SQL needs a bucket (--bucket)".into()))?;
    let df = session.plan(&sql).await.map_err(sql_error)?;
    let schema = df.schema().inner().clone();
    let batches = df.collect().await.map_err(|e| sql_error(e.into()))?;
    let body = format.encode(&schema, &batches).map_err(sql_error)?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

fn sql_error(e: promlake_sql::Error) -> ApiError {
    if e.is_user_error() { ApiError::BadData(e.to_string()) } else { ApiError::Internal(e.to_string()) }
}
