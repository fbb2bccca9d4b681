//! The typed model of a state machine definition. Parsing assumes [`crate::validate`] has
//! accepted the definition; it still refuses shapes it cannot represent, with a message naming
//! the state and field, so a definition that skipped validation cannot panic the interpreter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ValidationError;

/// `JSONPath` (the default) or `JSONata`, per machine and per state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryLanguage {
    #[default]
    #[serde(rename = "JSONPath")]
    JsonPath,
    #[serde(rename = "JSONata")]
    Jsonata,
}

/// A whole machine, or the body of a Parallel branch or Map item processor.
#[derive(Clone, Debug)]
pub struct StateMachine {
    pub start_at: String,
    pub states: BTreeMap<String, State>,
    pub comment: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub query_language: Option<QueryLanguage>,
    pub processor_config: Option<ProcessorConfig>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessorConfig {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub execution_type: Option<String>,
}

/// Fields shared by several state types; each type uses the ones the spec allows it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Common {
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub query_language: Option<QueryLanguage>,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub end: bool,
    #[serde(default)]
    pub input_path: Option<Value>,
    #[serde(default)]
    pub output_path: Option<Value>,
    /// Kept as a value: JSON `null` (discard) differs from absent (`$`).
    #[serde(default, deserialize_with = "present")]
    pub result_path: Option<Value>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub result_selector: Option<Value>,
    #[serde(default)]
    pub arguments: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub output: Option<Value>,
    #[serde(default)]
    pub assign: Option<Value>,
    #[serde(default)]
    pub retry: Vec<Retrier>,
    #[serde(default)]
    pub catch: Vec<Catcher>,
}

/// Keeps a JSON `null` as `Some(Value::Null)` instead of folding it into `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Retrier {
    pub error_equals: Vec<String>,
    #[serde(default)]
    pub interval_seconds: Option<f64>,
    #[serde(default)]
    pub max_attempts: Option<u64>,
    #[serde(default)]
    pub backoff_rate: Option<f64>,
    #[serde(default)]
    pub max_delay_seconds: Option<f64>,
    #[serde(default)]
    pub jitter_strategy: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

impl Retrier {
    pub fn interval(&self) -> f64 {
        self.interval_seconds.unwrap_or(1.0)
    }
    pub fn attempts(&self) -> u64 {
        self.max_attempts.unwrap_or(3)
    }
    pub fn backoff(&self) -> f64 {
        self.backoff_rate.unwrap_or(2.0)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    #[serde(default, deserialize_with = "present")]
    pub result_path: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub output: Option<Value>,
    #[serde(default)]
    pub assign: Option<Value>,
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Clone, Debug)]
pub struct State {
    pub common: Common,
    pub kind: Kind,
    /// Whether any field can read the context object (`$$` in JSONPath, `$states` in
    /// JSONata); states that cannot are run without building it.
    pub reads_context: bool,
}

#[derive(Clone, Debug)]
pub enum Kind {
    Pass(Pass),
    Task(Box<Task>),
    Choice(Choice),
    Wait(Wait),
    Succeed,
    Fail(Fail),
    Parallel(Parallel),
    Map(Box<Map>),
}

impl Kind {
    /// The state type's name as AWS prints it in history events (`PassStateEntered`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Pass(_) => "Pass",
            Kind::Task(_) => "Task",
            Kind::Choice(_) => "Choice",
            Kind::Wait(_) => "Wait",
            Kind::Succeed => "Succeed",
            Kind::Fail(_) => "Fail",
            Kind::Parallel(_) => "Parallel",
            Kind::Map(_) => "Map",
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Pass {
    #[serde(default)]
    pub result: Option<Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Task {
    pub resource: Value,
    #[serde(default)]
    pub timeout_seconds: Option<Value>,
    #[serde(default)]
    pub timeout_seconds_path: Option<String>,
    #[serde(default)]
    pub heartbeat_seconds: Option<Value>,
    #[serde(default)]
    pub heartbeat_seconds_path: Option<String>,
    #[serde(default)]
    pub credentials: Option<Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Choice {
    #[serde(default)]
    pub choices: Vec<Value>,
    #[serde(default)]
    pub default: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Wait {
    #[serde(default)]
    pub seconds: Option<Value>,
    #[serde(default)]
    pub seconds_path: Option<String>,
    #[serde(default)]
    pub timestamp: Option<Value>,
    #[serde(default)]
    pub timestamp_path: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Fail {
    #[serde(default)]
    pub error: Option<Value>,
    #[serde(default)]
    pub error_path: Option<String>,
    #[serde(default)]
    pub cause: Option<Value>,
    #[serde(default)]
    pub cause_path: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Parallel {
    pub branches: Vec<StateMachine>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Map {
    #[serde(default, alias = "Iterator")]
    pub item_processor: Option<StateMachine>,
    #[serde(default)]
    pub items_path: Option<String>,
    #[serde(default)]
    pub items: Option<Value>,
    #[serde(default, alias = "Parameters")]
    pub item_selector: Option<Value>,
    #[serde(default)]
    pub max_concurrency: Option<Value>,
    #[serde(default)]
    pub max_concurrency_path: Option<String>,
    #[serde(default)]
    pub tolerated_failure_count: Option<Value>,
    #[serde(default)]
    pub tolerated_failure_count_path: Option<String>,
    #[serde(default)]
    pub tolerated_failure_percentage: Option<Value>,
    #[serde(default)]
    pub tolerated_failure_percentage_path: Option<String>,
    #[serde(default)]
    pub item_reader: Option<Value>,
    #[serde(default)]
    pub item_batcher: Option<Value>,
    #[serde(default)]
    pub result_writer: Option<Value>,
    #[serde(default)]
    pub label: Option<String>,
}

/// Parses definition text as JSON; refuses what is not JSON with AWS's error code.
pub fn parse_text(text: &str) -> Result<Value, ValidationError> {
    serde_json::from_str(text)
        .map_err(|e| ValidationError::definition(format!("INVALID_JSON_DESCRIPTION: {e}")))
}

impl StateMachine {
    /// Parses a definition that has passed validation (or is being tried as one).
    pub fn from_value(v: &Value) -> Result<Self, ValidationError> {
        let obj = v
            .as_object()
            .ok_or_else(|| ValidationError::definition("the definition must be a JSON object"))?;
        let start_at = obj
            .get("StartAt")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ValidationError::definition(
                    "SCHEMA_VALIDATION_FAILED: These fields are required: [StartAt] at /",
                )
            })?
            .to_string();
        let states_v = obj
            .get("States")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                ValidationError::definition(
                    "SCHEMA_VALIDATION_FAILED: These fields are required: [States] at /",
                )
            })?;
        let mut states = BTreeMap::new();
        for (name, sv) in states_v {
            states.insert(name.clone(), State::from_value(name, sv)?);
        }
        let field = |k: &str| obj.get(k).cloned().unwrap_or(Value::Null);
        let de_err = |k: &str, e: serde_json::Error| {
            ValidationError::definition(format!(
                "SCHEMA_VALIDATION_FAILED: field \"{k}\": {e} at /"
            ))
        };
        Ok(StateMachine {
            start_at,
            states,
            comment: obj
                .get("Comment")
                .and_then(Value::as_str)
                .map(str::to_string),
            timeout_seconds: obj.get("TimeoutSeconds").and_then(Value::as_u64),
            query_language: serde_json::from_value(field("QueryLanguage"))
                .map_err(|e| de_err("QueryLanguage", e))?,
            processor_config: serde_json::from_value(field("ProcessorConfig"))
                .map_err(|e| de_err("ProcessorConfig", e))?,
        })
    }

    pub fn state(&self, name: &str) -> Option<&State> {
        self.states.get(name)
    }
}

impl<'de> Deserialize<'de> for StateMachine {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        StateMachine::from_value(&v).map_err(serde::de::Error::custom)
    }
}

impl State {
    pub fn from_value(name: &str, v: &Value) -> Result<Self, ValidationError> {
        let err = |e: serde_json::Error| {
            ValidationError::definition(format!("SCHEMA_VALIDATION_FAILED: {e} at /States/{name}"))
        };
        let ty = v.get("Type").and_then(Value::as_str).ok_or_else(|| {
            ValidationError::definition(format!(
                "SCHEMA_VALIDATION_FAILED: These fields are required: [Type] at /States/{name}"
            ))
        })?;
        let common: Common = serde_json::from_value(v.clone()).map_err(err)?;
        let kind = match ty {
            "Pass" => Kind::Pass(serde_json::from_value(v.clone()).map_err(err)?),
            "Task" => Kind::Task(Box::new(serde_json::from_value(v.clone()).map_err(err)?)),
            "Choice" => Kind::Choice(serde_json::from_value(v.clone()).map_err(err)?),
            "Wait" => Kind::Wait(serde_json::from_value(v.clone()).map_err(err)?),
            "Succeed" => Kind::Succeed,
            "Fail" => Kind::Fail(serde_json::from_value(v.clone()).map_err(err)?),
            "Parallel" => Kind::Parallel(serde_json::from_value(v.clone()).map_err(err)?),
            "Map" => Kind::Map(Box::new(serde_json::from_value(v.clone()).map_err(err)?)),
            _ => {
                return Err(ValidationError::definition(format!(
                    "SCHEMA_VALIDATION_FAILED: The field 'Type' should have one of these values: [Task, Wait, Pass, Succeed, Fail, Choice, Parallel, Map] at /States/{name}/Type"
                )));
            }
        };
        let text = v.to_string();
        let reads_context = text.contains("$$") || text.contains("$states");
        Ok(State {
            common,
            kind,
            reads_context,
        })
    }

    /// The state's query language: its own, else the machine's.
    pub fn language(&self, machine: QueryLanguage) -> QueryLanguage {
        self.common.query_language.unwrap_or(machine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_state_type_and_keeps_null_result_path() {
        let def = json!({
            "StartAt": "P",
            "States": {
                "P": {"Type": "Pass", "ResultPath": null, "Next": "C"},
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "W"}], "Default": "F"},
                "W": {"Type": "Wait", "Seconds": 1, "Next": "M"},
                "M": {"Type": "Map", "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}, "Next": "Par"},
                "Par": {"Type": "Parallel", "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}], "Next": "T"},
                "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Retry": [{"ErrorEquals": ["States.ALL"]}], "End": true},
                "F": {"Type": "Fail", "Error": "E"}
            }
        });
        let m = StateMachine::from_value(&def).unwrap();
        assert_eq!(m.states.len(), 7);
        assert_eq!(m.state("P").unwrap().common.result_path, Some(Value::Null));
        assert_eq!(m.state("W").unwrap().common.result_path, None);
        let Kind::Map(map) = &m.state("M").unwrap().kind else {
            panic!("not a map")
        };
        assert_eq!(map.item_processor.as_ref().unwrap().start_at, "I");
        let Kind::Task(t) = &m.state("T").unwrap().kind else {
            panic!("not a task")
        };
        assert_eq!(m.state("T").unwrap().common.retry[0].attempts(), 3);
        assert_eq!(t.resource, json!("arn:aws:states:::lambda:invoke"));
    }

    #[test]
    fn unknown_type_names_the_state() {
        let def = json!({"StartAt": "X", "States": {"X": {"Type": "Nope", "End": true}}});
        let e = StateMachine::from_value(&def).unwrap_err();
        assert!(e.message.contains("/States/X/Type"), "{}", e.message);
    }
}
