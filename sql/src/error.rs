//! The SQL crate's one error type.

use datafusion::error::DataFusionError;

/// What can go wrong answering SQL: the statement itself (bad SQL, unknown table, a DDL/DML
/// statement on this read-only lake), the engine underneath (bucket, blocks) or PromQL inside
/// `promql()`. Messages name the offending statement part, file or argument.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The statement is invalid or cannot run (DataFusion's message names the problem; its
    /// chain is in that message, so it is not repeated as a source).
    #[error("{0}")]
    DataFusion(DataFusionError),

    /// Reading the bucket or a block failed.
    #[error(transparent)]
    Engine(#[from] promlake_engine::Error),

    /// Arrow encoding failed (JSON, CSV or IPC output).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    /// A request argument is invalid (an output format, a `promql()` argument).
    #[error("{0}")]
    InvalidArgument(String),
}

impl From<DataFusionError> for Error {
    fn from(e: DataFusionError) -> Self {
        Error::DataFusion(e)
    }
}

impl Error {
    /// Is this the caller's fault (bad SQL, bad arguments) rather than the server's?
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::InvalidArgument(_) => true,
            Error::DataFusion(e) => is_user_df_error(e),
            Error::Engine(
                promlake_engine::Error::InvalidArgument(_) | promlake_engine::Error::Matcher { .. },
            ) => true,
            _ => false,
        }
    }
}

fn is_user_df_error(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => true,
        DataFusionError::Context(_, inner) => is_user_df_error(inner),
        DataFusionError::Diagnostic(_, inner) => is_user_df_error(inner),
        DataFusionError::External(inner) => {
            inner.downcast_ref::<Error>().is_some_and(Error::is_user_error)
                || inner.downcast_ref::<DataFusionError>().is_some_and(is_user_df_error)
        }
        _ => false,
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
