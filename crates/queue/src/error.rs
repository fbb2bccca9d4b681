//! The queue role's one error type. Variants say what happened, in SQS's terms, never which
//! backend it happened in.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("queue \"{0}\" does not exist")]
    QueueDoesNotExist(String),
    #[error("queue \"{0}\" already exists with different attributes")]
    QueueAlreadyExists(String),
    #[error("queue name \"{name}\" is invalid: {reason}")]
    InvalidQueueName { name: String, reason: String },
    #[error("message of {size} bytes is larger than the limit of {limit} bytes")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("batch of {size} entries is larger than the limit of {limit}")]
    BatchTooLarge { size: usize, limit: usize },
    #[error("batch of {size} bytes is larger than the limit of {limit} bytes")]
    BatchRequestTooLong { size: usize, limit: usize },
    #[error("batch is empty")]
    EmptyBatch,
    #[error("parameter \"{field}\" is invalid: {reason}")]
    InvalidParameter { field: String, reason: String },
    #[error("receipt handle \"{0}\" is invalid")]
    ReceiptHandleIsInvalid(String),
    #[error("message of receipt handle \"{0}\" is not in flight")]
    MessageNotInflight(String),
    #[error("redrive: {0}")]
    Redrive(String),
    /// The backend could not be reached or failed; the same call may succeed if retried.
    #[error("queue backend unavailable: {0}")]
    Unavailable(String),
    /// The backend's stored data or configuration is not what this build understands.
    #[error("queue backend: {0}")]
    Backend(String),
    #[error("queue backend \"{0}\" is not supported in this build")]
    NotSupported(String),
    #[error("queue url \"{url}\" is invalid: {reason}")]
    InvalidUrl { url: String, reason: String },
}

impl Error {
    /// Whether the same call may succeed if made again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}
