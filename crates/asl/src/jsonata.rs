//! JSONata as Step Functions applies it: `{% expr %}` strings in `Arguments`, `Output`,
//! `Assign`, `Condition` and the other JSONata fields, with `$states` bound and AWS's added
//! functions (`$partition`, `$range`, `$hash`, `$random`, `$uuid`, `$parse`) and no `$eval`.
//!
//! Failures carry AWS's causes word for word (`The JSONata expression '...' specified for the
//! field '...' ...`); the interpreter prefixes the state's location.

mod engine;
mod functions;

use serde_json::{Map, Value};

use self::engine::{Current, Engine, Outcome};
use crate::env::Host;
use crate::error::Failure;

/// Evaluates every `{% ... %}` string in `template` (objects and arrays recursively), with
/// `states` bound to `$states` and `vars` as variables. `field` names the field for error
/// messages (e.g. `Output`, `Arguments`), nested keys extend it as AWS does (`Output/result`).
pub fn eval_template(
    template: &Value,
    field: &str,
    states: &Value,
    vars: &Map<String, Value>,
    host: &mut dyn Host,
) -> Result<Value, Failure> {
    Scope::new(states, vars, host).template(template, field)
}

/// Evaluates one JSONata expression (without `{% %}`); `Ok(None)` when it is undefined.
pub fn eval_expr(
    expr: &str,
    states: &Value,
    vars: &Map<String, Value>,
    host: &mut dyn Host,
) -> Result<Option<Value>, Failure> {
    match Scope::new(states, vars, host).outcome(expr) {
        Ok(Outcome::Value(v)) => Ok(Some(v)),
        Ok(Outcome::Undefined) => Ok(None),
        Ok(Outcome::Unsupported) => Err(Failure::query_evaluation(format!(
            "The JSONata expression '{expr}' returned an unsupported result type."
        ))),
        Err(e) => Err(Failure::query_evaluation(format!(
            "The JSONata expression '{expr}' threw an error during evaluation. {}",
            e.0
        ))),
    }
}

/// The expression inside a `{% ... %}` string (trimmed), or `None` for any other string.
pub fn expression(s: &str) -> Option<&str> {
    s.strip_prefix("{%")?.strip_suffix("%}").map(str::trim)
}

/// A JSON type as AWS names it in result-type errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonType {
    Array,
    Boolean,
    Null,
    Number,
    Object,
    String,
}

impl JsonType {
    pub fn of(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(_) => Self::Boolean,
            Value::Number(_) => Self::Number,
            Value::String(_) => Self::String,
            Value::Array(_) => Self::Array,
            Value::Object(_) => Self::Object,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Array => "array",
            Self::Boolean => "boolean",
            Self::Null => "null",
            Self::Number => "number",
            Self::Object => "object",
            Self::String => "string",
        }
    }
}

/// Checks the type of what `expr` (the text inside `{% %}`) produced for `field`, failing as
/// AWS does: `The JSONata expression '$ItemsVar' specified for the field 'Items' returned an
/// unexpected result type. Expected 'array', but was 'string' for value: "string"`.
pub fn expect_type(expr: &str, field: &str, value: &Value, expected: JsonType) -> Result<(), Failure> {
    if JsonType::of(value) == expected {
        return Ok(());
    }
    Err(unexpected_type(expr, field, expected.name(), value))
}

/// AWS's cause for a result of the wrong type; `expected` as AWS words it (`array`).
pub fn unexpected_type(expr: &str, field: &str, expected: &str, value: &Value) -> Failure {
    Failure::query_evaluation(format!(
        "The JSONata expression '{expr}' specified for the field '{field}' returned an unexpected \
         result type. Expected '{expected}', but was '{}' for value: {value}",
        JsonType::of(value).name()
    ))
}

/// AWS's cause for a result JSON cannot hold (a function).
pub fn unsupported_type(expr: &str, field: &str) -> Failure {
    Failure::query_evaluation(format!(
        "The JSONata expression '{expr}' specified for the field '{field}' returned an \
         unsupported result type."
    ))
}

/// AWS's cause for an expression that produced nothing.
pub fn undefined_result(expr: &str, field: &str) -> Failure {
    Failure::query_evaluation(format!(
        "The JSONata expression '{expr}' specified for the field '{field}' returned nothing \
         (undefined)."
    ))
}

/// AWS's cause for an expression that raised an error (`message` as `T1006: ...`).
pub fn evaluation_error(expr: &str, field: &str, message: &str) -> Failure {
    Failure::query_evaluation(format!(
        "The JSONata expression '{expr}' specified for the field '{field}' threw an error during \
         evaluation. {message}"
    ))
}

/// One evaluation context: the bindings are converted for the engine on first use and shared
/// by every expression of a template.
struct Scope<'a> {
    engine: Current,
    states: &'a Value,
    vars: &'a Map<String, Value>,
    bindings: Option<<Current as Engine>::Bindings>,
    host: &'a mut dyn Host,
}

impl<'a> Scope<'a> {
    fn new(states: &'a Value, vars: &'a Map<String, Value>, host: &'a mut dyn Host) -> Self {
        Scope { engine: engine::CoreEngine, states, vars, bindings: None, host }
    }

    fn outcome(&mut self, expr: &str) -> Result<Outcome, engine::EngineError> {
        let bindings = match &self.bindings {
            Some(b) => b,
            None => self.bindings.insert(self.engine.bind(self.states, self.vars)),
        };
        self.engine.evaluate(expr, bindings, &mut *self.host)
    }

    fn template(&mut self, template: &Value, field: &str) -> Result<Value, Failure> {
        match template {
            Value::String(s) => match expression(s) {
                Some(expr) => match self.outcome(expr) {
                    Ok(Outcome::Value(v)) => Ok(v),
                    Ok(Outcome::Undefined) => Err(undefined_result(expr, field)),
                    Ok(Outcome::Unsupported) => Err(unsupported_type(expr, field)),
                    Err(e) => Err(evaluation_error(expr, field, &e.0)),
                },
                None => Ok(template.clone()),
            },
            Value::Object(map) => {
                let mut out = Map::with_capacity(map.len());
                for (key, value) in map {
                    out.insert(key.clone(), self.template(value, &format!("{field}/{key}"))?);
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.template(item, &format!("{field}/{i}")))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            other => Ok(other.clone()),
        }
    }
}
