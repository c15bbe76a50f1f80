//! The one error type of promlake-ingest, with its HTTP status for remote-write clients.

/// What went wrong while receiving, storing or shipping samples.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request body is not a valid remote-write request (bad snappy, bad protobuf).
    #[error("{0}")]
    BadRequest(String),

    /// The request is larger than the configured limit.
    #[error("{0}")]
    TooLarge(String),

    /// A tenant is over its series limit.
    #[error("{0}")]
    TooManySeries(String),

    /// The receiver is not ready (replaying its WAL) or shutting down.
    #[error("{0}")]
    Unavailable(String),

    /// Local file I/O failed (WAL, state files).
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },

    /// A WAL segment is damaged beyond the torn tail a crash may leave.
    #[error("WAL segment {path}: {reason}")]
    Corrupt {
        /// The segment file.
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// A configuration file or flag is invalid.
    #[error("{0}")]
    Config(String),

    /// A background task (block writing, WAL sync on a blocking thread) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),

    /// The engine failed (block writing, upload).
    #[error(transparent)]
    Engine(#[from] promlake_engine::Error),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io { path: path.to_string(), source }
    }

    /// The HTTP status a remote-write client sees for this error (Thanos receive's codes).
    pub fn http_status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::TooLarge(_) => 413,
            Error::TooManySeries(_) => 429,
            Error::Unavailable(_) => 503,
            _ => 500,
        }
    }
}

/// The result type of promlake-ingest.
pub type Result<T, E = Error> = std::result::Result<T, E>;
