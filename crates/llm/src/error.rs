//! The one error type. Each variant has a stable name ([`Error::name`], e.g. `Llm.Throttled`)
//! that a state machine's `Retry` and `Catch` match, and says whether retrying may help.

/// What went wrong with a model call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The provider is rate limiting (HTTP 429, Bedrock's ThrottlingException, Anthropic's
    /// `overloaded_error` / `rate_limit_error`). Retry with backoff.
    #[error("{provider}: throttled: {message}")]
    Throttled { provider: String, message: String },
    /// The conversation does not fit the model's context window, before the call (by the
    /// estimate, when the strategy is `fail` or dropping turns cannot make it fit) or as the
    /// provider reported it.
    #[error("model \"{model}\": context window exceeded: {message}")]
    ContextWindowExceeded { model: String, message: String },
    /// The provider refused the credentials (HTTP 401/403).
    #[error("{provider}: authentication failed: {message}")]
    AuthFailed { provider: String, message: String },
    /// The provider (or this crate, before sending) found the request malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No route or provider knows the model, or the provider answered 404 for it.
    #[error("model \"{model}\" not found: {message}")]
    ModelNotFound { model: String, message: String },
    /// The provider failed or could not be reached (5xx, connection refused, timeout, a stream
    /// that broke off). Retry with backoff.
    #[error("{provider}: service unavailable: {message}")]
    ServiceUnavailable { provider: String, message: String },
    /// A hard budget refused the call before it was made.
    #[error("budget exceeded for {scope}: {message}")]
    BudgetExceeded { scope: String, message: String },
    /// The recorded provider has no exchange matching the request.
    #[error(
        "no recording for model \"{model}\" matches request {digest} ({summary}); record it with a recording provider or add it to {file}"
    )]
    NoRecording {
        model: String,
        digest: String,
        summary: String,
        file: String,
    },
    /// The provider answered something this crate could not understand.
    #[error("{provider}: unexpected response: {message}")]
    Protocol { provider: String, message: String },
    /// The configuration is wrong (unknown provider, missing key, unreadable file).
    #[error("llm config: {0}")]
    Config(String),
}

/// The names [`Error::name`] returns, for `ErrorEquals` in state machines.
pub mod names {
    pub const THROTTLED: &str = "Llm.Throttled";
    pub const CONTEXT_WINDOW_EXCEEDED: &str = "Llm.ContextWindowExceeded";
    pub const AUTH_FAILED: &str = "Llm.AuthFailed";
    pub const INVALID_REQUEST: &str = "Llm.InvalidRequest";
    pub const MODEL_NOT_FOUND: &str = "Llm.ModelNotFound";
    pub const SERVICE_UNAVAILABLE: &str = "Llm.ServiceUnavailable";
    pub const BUDGET_EXCEEDED: &str = "Llm.BudgetExceeded";
    pub const NO_RECORDING: &str = "Llm.NoRecording";
    pub const PROTOCOL: &str = "Llm.ProtocolError";
    pub const CONFIG: &str = "Llm.ConfigInvalid";
}

impl Error {
    /// The error's stable name, e.g. `Llm.Throttled`.
    pub fn name(&self) -> &'static str {
        match self {
            Error::Throttled { .. } => names::THROTTLED,
            Error::ContextWindowExceeded { .. } => names::CONTEXT_WINDOW_EXCEEDED,
            Error::AuthFailed { .. } => names::AUTH_FAILED,
            Error::InvalidRequest(_) => names::INVALID_REQUEST,
            Error::ModelNotFound { .. } => names::MODEL_NOT_FOUND,
            Error::ServiceUnavailable { .. } => names::SERVICE_UNAVAILABLE,
            Error::BudgetExceeded { .. } => names::BUDGET_EXCEEDED,
            Error::NoRecording { .. } => names::NO_RECORDING,
            Error::Protocol { .. } => names::PROTOCOL,
            Error::Config(_) => names::CONFIG,
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Throttled { .. } | Error::ServiceUnavailable { .. }
        )
    }

    /// Maps an HTTP error answer to an error, from its status and the body's message (and the
    /// provider's error type or code, when it has one).
    pub fn from_http(provider: &str, model: &str, status: u16, kind: &str, message: &str) -> Self {
        let message = if kind.is_empty() {
            message.to_string()
        } else {
            format!("{kind}: {message}")
        };
        let lower = message.to_ascii_lowercase();
        let provider = provider.to_string();
        if status == 429
            || status == 529
            || lower.contains("throttl")
            || lower.contains("overloaded_error")
            || lower.contains("rate_limit")
        {
            return Error::Throttled { provider, message };
        }
        if is_context_overflow(&lower) {
            return Error::ContextWindowExceeded {
                model: model.to_string(),
                message,
            };
        }
        match status {
            401 | 403 => Error::AuthFailed { provider, message },
            404 => Error::ModelNotFound {
                model: model.to_string(),
                message,
            },
            400 | 409 | 413 | 422 => Error::InvalidRequest(format!("{provider}: {message}")),
            _ => Error::ServiceUnavailable { provider, message },
        }
    }

    /// A transport failure (connection refused, reset, timeout).
    pub fn transport(provider: &str, err: impl std::fmt::Display) -> Self {
        Error::ServiceUnavailable {
            provider: provider.to_string(),
            message: err.to_string(),
        }
    }
}

/// How providers word a prompt that is too long: OpenAI's `context_length_exceeded`, vLLM's
/// "maximum context length", Anthropic's "prompt is too long", Bedrock's "Input is too long" /
/// "too many input tokens", llama.cpp's "exceeds the available context size".
fn is_context_overflow(lower: &str) -> bool {
    [
        "context_length_exceeded",
        "maximum context length",
        "context window",
        "prompt is too long",
        "input is too long",
        "too many input tokens",
        "exceeds the available context size",
        "context length",
    ]
    .iter()
    .any(|p| lower.contains(p))
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_map_to_named_errors() {
        let e = |status, kind, msg| Error::from_http("p", "m", status, kind, msg).name();
        assert_eq!(e(429, "", "slow down"), "Llm.Throttled");
        assert_eq!(e(529, "overloaded_error", "Overloaded"), "Llm.Throttled");
        assert_eq!(
            e(
                400,
                "context_length_exceeded",
                "This model's maximum context length is 8192 tokens"
            ),
            "Llm.ContextWindowExceeded"
        );
        assert_eq!(
            e(
                400,
                "invalid_request_error",
                "prompt is too long: 210000 tokens > 200000 maximum"
            ),
            "Llm.ContextWindowExceeded"
        );
        assert_eq!(e(401, "", "bad key"), "Llm.AuthFailed");
        assert_eq!(e(404, "", "no such model"), "Llm.ModelNotFound");
        assert_eq!(e(400, "", "messages: field required"), "Llm.InvalidRequest");
        assert_eq!(e(503, "", "down"), "Llm.ServiceUnavailable");
    }
}
