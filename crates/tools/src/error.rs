//! The one error type of the crate. Each error has a name in the `Tools.*` family (or, for a
//! function that reported its own failure, the function's `errorType`), which is what a state
//! machine's `Retry` and `Catch` match on.

/// What went wrong with a tool call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("tool \"{0}\" is not registered")]
    NotFound(String),
    #[error("tool \"{tool}\": {which} does not match its schema at \"{pointer}\": {message}")]
    SchemaValidation {
        tool: String,
        /// `input` or `output`.
        which: &'static str,
        /// JSON pointer of the failing field (`""` for the whole document).
        pointer: String,
        message: String,
    },
    #[error("tool \"{tool}\" timed out after {millis} ms")]
    Timeout { tool: String, millis: u64 },
    #[error("tool \"{tool}\": output exceeds the limit of {limit} bytes")]
    OutputTooLarge { tool: String, limit: usize },
    #[error("tool \"{tool}\": {reason}")]
    Forbidden { tool: String, reason: String },
    #[error("tool \"{tool}\" failed: {message}")]
    Failed { tool: String, message: String },
    /// The function reported its own error, Lambda style (`{"errorType", "errorMessage"}`).
    #[error("tool \"{tool}\" raised {error_type}: {message}")]
    Function {
        tool: String,
        error_type: String,
        message: String,
    },
    #[error("tool \"{tool}\" requires approval: {reason}")]
    ApprovalRequired { tool: String, reason: String },
    #[error("tool \"{tool}\": approval was refused: {reason}")]
    ApprovalDenied { tool: String, reason: String },
    #[error("invalid tool configuration: {0}")]
    Config(String),
    #[error("tool store unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error's name as a state machine sees it.
    pub fn name(&self) -> &str {
        match self {
            Error::NotFound(_) => "Tools.NotFound",
            Error::SchemaValidation { .. } => "Tools.SchemaValidation",
            Error::Timeout { .. } => "Tools.Timeout",
            Error::OutputTooLarge { .. } => "Tools.OutputTooLarge",
            Error::Forbidden { .. } => "Tools.Forbidden",
            Error::Failed { .. } => "Tools.Failed",
            Error::Function { error_type, .. } => error_type,
            Error::ApprovalRequired { .. } => "Tools.ApprovalRequired",
            Error::ApprovalDenied { .. } => "Tools.ApprovalDenied",
            Error::Config(_) => "Tools.InvalidConfig",
            Error::Unavailable(_) => "Tools.Unavailable",
        }
    }

    /// Whether trying the same call again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. } | Error::Unavailable(_) | Error::Failed { .. }
        )
    }

    pub(crate) fn failed(tool: &str, message: impl Into<String>) -> Self {
        Error::Failed {
            tool: tool.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn forbidden(tool: &str, reason: impl Into<String>) -> Self {
        Error::Forbidden {
            tool: tool.to_owned(),
            reason: reason.into(),
        }
    }

    /// The same error with every occurrence of each secret value replaced by `***`.
    pub(crate) fn redacted(self, secrets: &[String]) -> Self {
        let r = |s: String| redact(&s, secrets);
        match self {
            Error::Failed { tool, message } => Error::Failed {
                tool,
                message: r(message),
            },
            Error::Function {
                tool,
                error_type,
                message,
            } => Error::Function {
                tool,
                error_type: r(error_type),
                message: r(message),
            },
            Error::Forbidden { tool, reason } => Error::Forbidden {
                tool,
                reason: r(reason),
            },
            Error::SchemaValidation {
                tool,
                which,
                pointer,
                message,
            } => Error::SchemaValidation {
                tool,
                which,
                pointer,
                message: r(message),
            },
            other => other,
        }
    }
}

/// `text` with every occurrence of each (non-empty) secret replaced by `***`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}
