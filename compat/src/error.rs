//! The crate's error type: every failure names the object path it came from.

/// Everything that can go wrong while reading a native block.
///
/// Variants carry the object path of the offending file so a message like
/// `01M8.../index: corrupt: series entry at 0x1a0 truncated` points straight at the bad bytes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object store failed (I/O, network, permissions).
    #[error("reading {path}: {source}")]
    ObjectStore {
        /// Object path being read.
        path: String,
        /// The underlying store error.
        source: object_store::Error,
    },
    /// A required file does not exist.
    #[error("{path}: no such file")]
    NotFound {
        /// Object path that was missing.
        path: String,
    },
    /// The bytes of a file do not follow the format.
    #[error("{path}: corrupt: {reason}")]
    Corrupt {
        /// Object path of the malformed file.
        path: String,
        /// What is wrong, with the offset where known.
        reason: String,
    },
    /// A CRC32C (Castagnoli) checksum did not match.
    #[error("{path}: CRC32C mismatch in {what}: stored {expected:#010x}, computed {actual:#010x}")]
    Checksum {
        /// Object path of the file.
        path: String,
        /// Which part of the file (section, entry, record and its offset).
        what: String,
        /// Checksum stored in the file.
        expected: u32,
        /// Checksum computed over the bytes read.
        actual: u32,
    },
    /// `meta.json` is not valid JSON or violates the block meta rules.
    #[error("{path}: invalid meta.json: {reason}")]
    BadMeta {
        /// Object path of the meta.json.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A well-formed feature this crate does not handle (index version, chunk encoding).
    #[error("{path}: unsupported {what}")]
    Unsupported {
        /// Object path of the file.
        path: String,
        /// The unsupported feature, naming the value found and the values accepted.
        what: String,
    },
    /// A malformed XOR chunk handed directly to [`crate::xor`] (no file involved).
    #[error("invalid XOR chunk: {reason}")]
    Xor {
        /// What is wrong with the chunk bytes.
        reason: String,
    },
}

impl Error {
    /// The object path the error is about, if it concerns a file.
    pub fn path(&self) -> Option<&str> {
        match self {
            Error::ObjectStore { path, .. }
            | Error::NotFound { path }
            | Error::Corrupt { path, .. }
            | Error::Checksum { path, .. }
            | Error::BadMeta { path, .. }
            | Error::Unsupported { path, .. } => Some(path),
            Error::Xor { .. } => None,
        }
    }

    /// Maps an object-store error for `path`, turning "not found" into [`Error::NotFound`].
    pub(crate) fn store(path: &str, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => Error::NotFound { path: path.to_owned() },
            source => Error::ObjectStore { path: path.to_owned(), source },
        }
    }

    /// Shorthand for [`Error::Corrupt`].
    pub(crate) fn corrupt(path: &str, reason: impl Into<String>) -> Self {
        Error::Corrupt { path: path.to_owned(), reason: reason.into() }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
