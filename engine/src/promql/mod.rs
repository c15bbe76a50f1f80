//! PromQL with Prometheus 3.x semantics over any [`SeriesSource`](crate::SeriesSource).
//!
//! ```text
//!  query text ──promql-parser──► AST ──eval──► selectors: SeriesSource::select (matchers + time range)
//!                                        └───► operators/functions over per-series sample vectors
//! ```
//!
//! Entry point: [`Engine`] with [`Engine::instant`] and [`Engine::range`], returning a
//! [`Value`]. Errors are [`PromqlError`]s that map to Prometheus's API `errorType`s.

pub mod functions;
mod value;

pub use value::{PromqlError, QueryOptions, Sample, Series, Value};

use crate::SeriesSource;

/// Evaluates PromQL queries.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: QueryOptions,
}

impl Engine {
    /// An engine with these limits and defaults.
    pub fn new(opts: QueryOptions) -> Self {
        Engine { opts }
    }

    /// The engine's options.
    pub fn options(&self) -> &QueryOptions {
        &self.opts
    }

    /// Evaluates `query` at `time_ms`: a scalar, string or instant vector (Prometheus's
    /// `/api/v1/query`; a range-vector query returns a matrix).
    pub async fn instant(&self, source: &dyn SeriesSource, query: &str, time_ms: i64) -> Result<Value, PromqlError> {
        let _ = (source, query, time_ms);
        Err(PromqlError::Execution("the PromQL evaluator is not built yet".into()))
    }

    /// Evaluates `query` at every step from `start_ms` to `end_ms` inclusive: a matrix
    /// (Prometheus's `/api/v1/query_range`).
    pub async fn range(
        &self,
        source: &dyn SeriesSource,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, PromqlError> {
        let _ = (source, query, start_ms, end_ms, step_ms);
        Err(PromqlError::Execution("the PromQL evaluator is not built yet".into()))
    }
}
