//! API errors: Prometheus's `errorType`s and HTTP codes.

use super::json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use promlake_engine::promql::PromqlError;

/// Why an API request failed, by Prometheus's error classes.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A bad parameter or an unparsable query (`bad_data`, HTTP 400).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed (`execution`, HTTP 422).
    #[error("{0}")]
    Execution(String),
    /// The query ran past its timeout (`timeout`, HTTP 503).
    #[error("{0}")]
    Timeout(String),
    /// The bucket is not loaded yet (`unavailable`, HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    /// A storage or internal failure (`internal`, HTTP 500).
    #[error("{0}")]
    Internal(String),
}

/// `Result` of an API handler.
pub type Result<T> = std::result::Result<T, ApiError>;

impl ApiError {
    /// Prometheus's `invalid parameter "NAME": REASON` (`bad_data`).
    pub fn invalid_param(name: &str, reason: impl std::fmt::Display) -> Self {
        ApiError::BadData(format!("invalid parameter {name:?}: {reason}"))
    }

    /// Prometheus's `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            ApiError::BadData(_) => "bad_data",
            ApiError::Execution(_) => "execution",
            ApiError::Timeout(_) => "timeout",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The HTTP status Prometheus answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadData(_) => StatusCode::BAD_REQUEST,
            ApiError::Execution(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Timeout(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<PromqlError> for ApiError {
    fn from(e: PromqlError) -> Self {
        let msg = e.to_string();
        match e.http_status() {
            400 => ApiError::BadData(msg),
            422 => ApiError::Execution(msg),
            503 => ApiError::Timeout(msg),
            _ => ApiError::Internal(msg),
        }
    }
}

impl From<promlake_engine::Error> for ApiError {
    fn from(e: promlake_engine::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json::error_envelope(self.error_type(), &self.to_string());
        (self.status(), [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}
