//! The one error type of the storage role. It says what happened, never which backend it came
//! from; each backend maps its own failures into it.

use std::fmt;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An item's address in an error message: table, partition key and sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRef {
    pub table: String,
    pub pk: String,
    pub sk: String,
}

impl fmt::Display for ItemRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "item (pk {:?}, sk {:?}) in table {:?}",
            self.pk, self.sk, self.table
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A table (or index) that does not exist.
    #[error("{what} not found")]
    NotFound { what: String },

    /// Creating something that exists with a different definition.
    #[error("{what} already exists{}", detail_suffix(.detail))]
    AlreadyExists { what: String, detail: String },

    /// A write's condition did not hold; nothing in its transaction was written. Re-read the
    /// item and decide again: retrying the same write blindly fails the same way.
    #[error("transaction write {index}: {item}: condition failed: {reason}")]
    ConditionFailed {
        /// Position of the failing write in its transaction (0 for a single write).
        index: usize,
        item: ItemRef,
        reason: String,
    },

    /// The request is malformed; `field` names what is wrong.
    #[error("invalid {field}: {message}")]
    InvalidInput { field: String, message: String },

    /// This build or backend cannot do what was asked (a backend left out of the build).
    #[error("{0}")]
    Unsupported(String),

    /// The backend could not be reached or was busy; the operation did not take effect, or
    /// may have (see the contract on idempotency), and may be retried.
    #[error("storage unavailable: {message}")]
    Unavailable { message: String },

    /// Stored data could not be read back (not expected; reported rather than guessed around).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),

    /// Opening a store failed for a reason retrying will not fix (missing or read-only
    /// directory, a database written by a newer version).
    #[error("cannot open store: {0}")]
    Open(String),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl Error {
    /// True when the same call may succeed if made again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// True for a failed condition (optimistic concurrency conflict).
    pub fn is_condition_failed(&self) -> bool {
        matches!(self, Error::ConditionFailed { .. })
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn unavailable(message: impl fmt::Display) -> Self {
        Error::Unavailable {
            message: message.to_string(),
        }
    }

    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn table_not_found(table: &str) -> Self {
        Error::NotFound {
            what: format!("table {table:?}"),
        }
    }
}
