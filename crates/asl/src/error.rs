//! Errors: definitions AWS would refuse, and failures raised while a state runs.

use std::fmt;

/// Predefined error names (States Language spec and AWS additions).
pub mod names {
    pub const ALL: &str = "States.ALL";
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const PERMISSIONS: &str = "States.Permissions";
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
    pub const RESULT_WRITER_FAILED: &str = "States.ResultWriterFailed";
    pub const RUNTIME: &str = "States.Runtime";
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
}

/// A definition AWS would refuse at CreateStateMachine / ValidateStateMachineDefinition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ValidationError {
    /// AWS error code, e.g. `InvalidDefinition`.
    pub code: String,
    /// AWS message text, e.g. `Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: ...'`.
    pub message: String,
    /// The findings the message joins, one by one (ValidateStateMachineDefinition lists
    /// them); empty for errors that are not about the definition's content.
    pub diagnostics: Vec<Diagnostic>,
}

/// One finding about a definition, as ValidateStateMachineDefinition reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// E.g. `SCHEMA_VALIDATION_FAILED`, `MISSING_TRANSITION_TARGET`.
    pub code: String,
    pub message: String,
    /// A JSON pointer into the definition, e.g. `/States/Plan/Next`.
    pub location: Option<String>,
}

impl ValidationError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            diagnostics: Vec::new(),
        }
    }

    /// `InvalidDefinition` with AWS's `Invalid State Machine Definition: '...'` wrapping.
    pub fn definition(detail: impl fmt::Display) -> Self {
        Self::new(
            "InvalidDefinition",
            format!("Invalid State Machine Definition: '{detail}'"),
        )
    }
}

/// A failure raised while a state runs: an error name and a cause, as AWS reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub error: Option<String>,
    pub cause: Option<String>,
    /// When set, the cause is prefixed with AWS's location sentence
    /// ("An error occurred while executing the state 'X' (entered at the event id #N). ")
    /// by the interpreter, which knows the state and event.
    pub located: bool,
}

impl Failure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            cause: Some(cause.into()),
            located: false,
        }
    }

    /// `States.Runtime`, located at the running state.
    pub fn runtime(cause: impl Into<String>) -> Self {
        Self {
            located: true,
            ..Self::new(names::RUNTIME, cause)
        }
    }

    /// `States.QueryEvaluationError`, located at the running state.
    pub fn query_evaluation(cause: impl Into<String>) -> Self {
        Self {
            located: true,
            ..Self::new(names::QUERY_EVALUATION_ERROR, cause)
        }
    }

    /// `States.IntrinsicFailure`, located at the running state.
    pub fn intrinsic(cause: impl Into<String>) -> Self {
        Self {
            located: true,
            ..Self::new(names::INTRINSIC_FAILURE, cause)
        }
    }

    pub fn error_name(&self) -> &str {
        self.error.as_deref().unwrap_or("")
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error.as_deref().unwrap_or("(no error)"))?;
        if let Some(c) = &self.cause {
            write!(f, ": {c}")?;
        }
        Ok(())
    }
}
