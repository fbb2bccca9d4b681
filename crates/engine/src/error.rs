//! The engine's one error type. Variants that AWS Step Functions has carry its exception names
//! ([`Error::aws_name`]), so the API layer can answer as AWS does.

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("state machine does not exist: {0}")]
    StateMachineDoesNotExist(String),
    #[error("state machine already exists: {0}")]
    StateMachineAlreadyExists(String),
    /// DeleteStateMachine was called; its running executions are finishing.
    #[error("state machine is being deleted: {0}")]
    StateMachineDeleting(String),
    #[error("{0}")]
    ActivityDoesNotExist(String),
    /// An alias or version that does not exist (AWS's `ResourceNotFound`).
    #[error("{0}")]
    ResourceNotFound(String),
    /// A change that contradicts another (a version an alias still routes to).
    #[error("{0}")]
    Conflict(String),
    /// A request whose fields break AWS's constraints, in AWS's words.
    #[error("{0}")]
    Validation(String),
    /// An operation EXPRESS state machines do not have (ListExecutions, for one).
    #[error("{0}")]
    StateMachineTypeNotSupported(String),
    /// RedriveExecution of an execution that cannot be redriven (running, succeeded, too old).
    #[error("{0}")]
    ExecutionNotRedrivable(String),
    #[error("execution does not exist: {0}")]
    ExecutionDoesNotExist(String),
    /// Same name, different input (or a finished execution of that name, as AWS says).
    #[error("execution already exists: {0}")]
    ExecutionAlreadyExists(String),
    /// A definition that `asl::validate` refuses; `code` is AWS's (`InvalidDefinition`...).
    #[error("{code}: {message}")]
    InvalidDefinition { code: String, message: String },
    #[error("invalid name: {0}")]
    InvalidName(String),
    #[error("invalid arn: {0}")]
    InvalidArn(String),
    /// StartExecution input that is not JSON or is too large.
    #[error("{code}: {message}")]
    InvalidExecutionInput { code: String, message: String },
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// SendTaskSuccess output that is not JSON.
    #[error("invalid output: {0}")]
    InvalidOutput(String),
    /// The task the token names has finished, timed out or was cancelled.
    #[error("task timed out: {0}")]
    TaskTimedOut(String),
    #[error("invalid pagination token: {0}")]
    InvalidPaginationToken(String),
    /// The store failed; `retryable` says whether trying again may help.
    #[error("store: {0}")]
    Store(#[from] agentry_storage::Error),
    #[error("queue: {0}")]
    Queue(#[from] agentry_queue::Error),
    /// Stored data that cannot be read back.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Another node kept advancing the same execution; the work is retried later.
    #[error("execution {0} is contended: gave up after repeated version conflicts")]
    Contended(String),
}

impl Error {
    /// The AWS Step Functions exception name for this error.
    pub fn aws_name(&self) -> &'static str {
        match self {
            Error::StateMachineDoesNotExist(_) => "StateMachineDoesNotExist",
            Error::StateMachineAlreadyExists(_) => "StateMachineAlreadyExists",
            Error::StateMachineDeleting(_) => "StateMachineDeleting",
            Error::ResourceNotFound(_) => "ResourceNotFound",
            Error::ActivityDoesNotExist(_) => "ActivityDoesNotExist",
            Error::Conflict(_) => "ConflictException",
            Error::Validation(_) => "ValidationException",
            Error::ExecutionNotRedrivable(_) => "ExecutionNotRedrivable",
            Error::StateMachineTypeNotSupported(_) => "StateMachineTypeNotSupported",
            Error::ExecutionDoesNotExist(_) => "ExecutionDoesNotExist",
            Error::ExecutionAlreadyExists(_) => "ExecutionAlreadyExists",
            Error::InvalidDefinition { .. } => "InvalidDefinition",
            Error::InvalidName(_) => "InvalidName",
            Error::InvalidArn(_) => "InvalidArn",
            Error::InvalidExecutionInput { .. } => "InvalidExecutionInput",
            Error::InvalidToken(_) | Error::InvalidPaginationToken(_) => "InvalidToken",
            Error::InvalidOutput(_) => "InvalidOutput",
            Error::TaskTimedOut(_) => "TaskTimedOut",
            Error::Store(_) | Error::Queue(_) | Error::Corrupt(_) | Error::Contended(_) => {
                "ServiceUnavailable"
            }
        }
    }

    /// Whether trying the same call again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Store(e) => e.is_retryable(),
            Error::Queue(e) => e.is_retryable(),
            Error::Contended(_) => true,
            _ => false,
        }
    }
}
