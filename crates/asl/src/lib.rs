//! Amazon States Language, as AWS Step Functions runs it: parse and validate a definition,
//! and advance an execution one event at a time, returning the effects the runtime must carry
//! out. Pure: no I/O, no clock and no randomness of its own (see [`env::Host`]).
//!
//! Layout:
//! - `env`: the scope expressions read and the caller-supplied clock, ids and randomness
//! - `error`: validation errors and runtime failures, predefined error names
//! - `validate`: AWS's CreateStateMachine rules and messages
//! - `jsonpath`: paths, payload templates, `ResultPath`
//! - `intrinsics`: the `States.*` functions
//! - `jsonata`: `{% %}` expressions and AWS's JSONata functions
//! - `definition`: the typed model of a definition
//! - `choice`: JSONPath Choice rules
//! - `exec`: the execution step function (threads, Retry/Catch, Map/Parallel)
//! - `history`: AWS's history event shapes
//! - `test_state`: the TestState API
//! - `mock_shapes`: TestState's check of mocked results against AWS API output shapes
//! - `time`: RFC 3339 parsing and formatting

pub mod choice;
pub mod definition;
pub mod env;
pub mod error;
pub mod exec;
pub mod history;
pub mod intrinsics;
pub mod jsonata;
pub mod jsonpath;
pub mod mock_shapes;
pub mod test_state;
pub mod time;
pub mod validate;

pub use definition::StateMachine;
pub use env::{FixedHost, Host, Scope};
pub use error::{Diagnostic, Failure, ValidationError};
pub use exec::{Effect, Event, Execution, ExecutionInfo, Status, Step, TaskRequest};

/// Validates definition text as CreateStateMachine does (JSON syntax and duplicate keys
/// included) and builds the machine to run.
pub fn create_text(
    text: &str,
    machine_type: validate::MachineType,
) -> Result<StateMachine, ValidationError> {
    validate::validate_text(text, machine_type)?;
    StateMachine::from_value(&definition::parse_text(text)?)
}

/// Validates a definition as CreateStateMachine does and builds the machine to run.
pub fn create(
    definition: &serde_json::Value,
    machine_type: validate::MachineType,
) -> Result<StateMachine, ValidationError> {
    validate::validate(definition, machine_type)?;
    StateMachine::from_value(definition)
}
