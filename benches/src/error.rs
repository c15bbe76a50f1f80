//! The crate's error type.

use std::fmt;
use std::path::PathBuf;

/// Failures of the generator and of block inspection, each naming the offending value or path.
#[derive(Debug)]
pub enum Error {
    /// A generator parameter is out of range; the message names the value and the allowed range.
    Config(String),
    /// Writing generated data failed.
    Write(std::io::Error),
    /// Reading a file or directory failed.
    Io {
        /// The path being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A block's `meta.json` is not valid JSON or lacks `stats`.
    Meta {
        /// The `meta.json` path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(msg) => write!(f, "invalid generator config: {msg}"),
            Error::Write(e) => write!(f, "writing generated data: {e}"),
            Error::Io { path, source } => write!(f, "reading {}: {source}", path.display()),
            Error::Meta { path, reason } => {
                write!(f, "bad block meta {}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Write(e) | Error::Io { source: e, .. } => Some(e),
            Error::Config(_) | Error::Meta { .. } => None,
        }
    }
}
