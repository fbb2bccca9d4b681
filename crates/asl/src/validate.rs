//! The rules AWS enforces at CreateStateMachine and ValidateStateMachineDefinition, with its
//! error codes and message text.

use serde_json::Value;

use crate::error::ValidationError;

/// STANDARD or EXPRESS: some rules differ (`.sync` and `.waitForTaskToken` are Standard-only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MachineType {
    #[default]
    Standard,
    Express,
}

/// Validates a parsed definition. The first error found, as AWS reports it.
pub fn validate(definition: &Value, machine_type: MachineType) -> Result<(), ValidationError> {
    let _ = (definition, machine_type);
    todo!("validate::validate")
}
