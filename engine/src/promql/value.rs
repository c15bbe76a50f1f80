//! Query results, options and errors.

use crate::Labels;
use std::time::Duration;

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels (metric name dropped where PromQL drops it).
    pub labels: Labels,
    /// Evaluation timestamp (ms).
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// One series of a matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// (timestamp ms, value), time-ordered.
    pub points: Vec<(i64, f64)>,
}

/// A query result.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar at a time.
    Scalar {
        /// Timestamp (ms).
        t: i64,
        /// Value.
        v: f64,
    },
    /// A string at a time.
    String {
        /// Timestamp (ms).
        t: i64,
        /// Value.
        s: String,
    },
    /// An instant vector.
    Vector(Vec<Sample>),
    /// A range vector or a range query's result.
    Matrix(Vec<Series>),
}

/// Query limits and defaults.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// How far back an instant selector looks for a sample (Prometheus: 5m).
    pub lookback_delta_ms: i64,
    /// Most samples a query may hold in memory at once.
    pub max_samples: usize,
    /// Longest a query may run.
    pub timeout: Duration,
    /// The coarsest downsampled resolution (ms) selectors may read; 0: raw data only.
    pub max_resolution_ms: i64,
    /// Without a `max_source_resolution` parameter, read downsampled data up to a fifth of the
    /// step (`--query.auto-downsampling`).
    pub auto_downsampling: bool,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_resolution_ms: 0,
            auto_downsampling: false,
        }
    }
}

/// Why a query failed, with Prometheus's API error classes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromqlError {
    /// The query text does not parse or is ill-typed (`bad_data`, HTTP 400).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed (`execution`, HTTP 422).
    #[error("{0}")]
    Execution(String),
    /// `--query.timeout` passed (`timeout`, HTTP 503).
    #[error("query timed out in {0}")]
    Timeout(String),
    /// `--query.max-samples` exceeded (`execution`, HTTP 422).
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(String),
    /// A storage error (`internal`, HTTP 500).
    #[error("{0}")]
    Storage(String),
}

impl PromqlError {
    /// Prometheus's `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            PromqlError::BadData(_) => "bad_data",
            PromqlError::Execution(_) | PromqlError::TooManySamples(_) => "execution",
            PromqlError::Timeout(_) => "timeout",
            PromqlError::Storage(_) => "internal",
        }
    }

    /// The HTTP status Prometheus answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            PromqlError::BadData(_) => 400,
            PromqlError::Execution(_) | PromqlError::TooManySamples(_) => 422,
            PromqlError::Timeout(_) => 503,
            PromqlError::Storage(_) => 500,
        }
    }
}

impl From<crate::Error> for PromqlError {
    fn from(e: crate::Error) -> Self {
        PromqlError::Storage(e.to_string())
    }
}
