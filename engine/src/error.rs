//! The engine's one error type.

/// Everything that can go wrong in the engine: bad input (matchers, bucket URLs, block files),
/// storage failures and format violations. Messages name the offending value or file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A native TSDB block could not be read.
    #[error(transparent)]
    Native(#[from] promlake_compat::Error),

    /// The object store failed for `path`.
    #[error("object store: {path}: {source}")]
    ObjectStore {
        /// The object or prefix being accessed.
        path: String,
        /// The underlying failure.
        #[source]
        source: object_store::Error,
    },

    /// The bucket configuration (URL, flags or objstore YAML) is invalid.
    #[error("bucket configuration: {0}")]
    BucketConfig(String),

    /// A label matcher is invalid (bad regex, empty name).
    #[error("invalid matcher {matcher}: {reason}")]
    Matcher {
        /// The matcher as written.
        matcher: String,
        /// Why it is invalid.
        reason: String,
    },

    /// A Parquet block file is unreadable or violates format version 1.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Parquet encoding or decoding failed for `path`.
    #[error("{path}: parquet: {source}")]
    Parquet {
        /// The file.
        path: String,
        /// The underlying failure.
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// Arrow array construction failed (a bug or a schema mismatch).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    /// Series handed to a block writer were not in label order.
    #[error("series out of order: {current} after {previous}")]
    OutOfOrder {
        /// The series written before.
        previous: String,
        /// The series that should have come first.
        current: String,
    },

    /// Local temporary file I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// The local file.
        path: String,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },

    /// Invalid input from a user (flags, arguments).
    #[error("{0}")]
    InvalidArgument(String),

    /// A remote StoreAPI endpoint failed: a gRPC error status, or it could not be reached.
    #[error("{endpoint}: {code:?}: {message}")]
    Remote {
        /// The endpoint (host:port).
        endpoint: String,
        /// The gRPC status code (`Unavailable` when the endpoint cannot be reached).
        code: tonic::Code,
        /// The status message.
        message: String,
    },
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn store(path: impl std::fmt::Display, source: object_store::Error) -> Self {
        Error::ObjectStore { path: path.to_string(), source }
    }

    pub(crate) fn parquet(path: impl std::fmt::Display, source: parquet::errors::ParquetError) -> Self {
        Error::Parquet { path: path.to_string(), source }
    }

    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io { path: path.to_string(), source }
    }

    pub(crate) fn format(path: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Error::Format { path: path.to_string(), reason: reason.into() }
    }
}
