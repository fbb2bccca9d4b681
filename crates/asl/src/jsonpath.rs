//! JSONPath as Step Functions applies it: paths over the input (`$`), the context object
//! (`$$`) and variables (`$name`); payload templates (`Parameters`, `ResultSelector`,
//! `ItemSelector`, `Assign` with `.$` keys and intrinsic functions); and writing a result
//! at a `ResultPath`.
//!
//! AWS evaluates paths with Jayway JsonPath and passes its messages on, so `path` follows
//! Jayway's rules (definite paths give one value or fail, indefinite ones give an array).

mod filter;
mod path;

use serde_json::{Map, Value};

use crate::env::{Host, Scope};
use crate::error::Failure;
use crate::intrinsics;

pub(crate) use filter::json_eq;
pub(crate) use path::java_string;
use path::{NotFound, Path, Root};

/// The error AWS raises when a `ResultPath` cannot be written into the input.
const REFERENCE_PATH_CONFLICT: &str = "States.ReferencePathConflict";

/// Checks the syntax of a path (`$...`, `$$...` or `$name...`) as AWS does at validation;
/// `reference` restricts it to a reference path (single value: names and indexes only).
pub fn check(path: &str, reference: bool) -> Result<(), String> {
    let parsed = Path::parse(path)?;
    if parsed.root == Root::Current {
        return Err(format!("'{path}' must start with '$'"));
    }
    if reference && !parsed.is_reference() {
        return Err(format!("'{path}' is not a valid reference path"));
    }
    Ok(())
}

/// Reads `path` as AWS does. `Ok(None)` when the path matches nothing.
pub fn read(path: &str, scope: &Scope) -> Result<Option<Value>, Failure> {
    match query(path, scope) {
        Ok(found) => Ok(found.ok()),
        Err(e) => Err(Failure::runtime(format!("Invalid path '{path}' : {e}"))),
    }
}

/// `InputPath` / `OutputPath`: `None` path yields `{}`; no match is a located `States.Runtime`
/// ("Invalid path '$.x' : No results for path: $['x']").
pub fn select(path: Option<&str>, scope: &Scope) -> Result<Value, Failure> {
    let Some(path) = path else {
        return Ok(Value::Object(Map::new()));
    };
    match query(path, scope) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(NotFound(why))) => Err(Failure::runtime(format!("Invalid path '{path}' : {why}"))),
        Err(e) => Err(Failure::runtime(format!("Invalid path '{path}' : {e}"))),
    }
}

/// Evaluates a payload template: keys ending in `.$` take a path or an intrinsic function
/// call, everything else is copied. Used for `Parameters`, `ResultSelector`, `ItemSelector`
/// and JSONPath-mode `Assign`.
pub fn eval_payload(
    template: &Value,
    scope: &Scope,
    host: &mut dyn Host,
) -> Result<Value, Failure> {
    match template {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, value) in map {
                match (key.strip_suffix(".$"), value) {
                    (Some(name), Value::String(expr)) => {
                        out.insert(name.to_string(), eval_expression(expr, key, scope, host)?);
                    }
                    _ => {
                        out.insert(key.clone(), eval_payload(value, scope, host)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => Ok(Value::Array(
            items
                .iter()
                .map(|v| eval_payload(v, scope, host))
                .collect::<Result<_, _>>()?,
        )),
        other => Ok(other.clone()),
    }
}

/// The value of one `.$` field: a path or an intrinsic function call. `field` is the key as
/// written (with its `.$`), which AWS names in its causes.
pub fn eval_expression(
    expr: &str,
    field: &str,
    scope: &Scope,
    host: &mut dyn Host,
) -> Result<Value, Failure> {
    if intrinsics::is_call(expr) {
        return intrinsics::eval_in_field(expr, field, scope, host);
    }
    match query(expr, scope) {
        Ok(Ok(v)) => Ok(v),
        _ => Err(not_found(expr, field, scope.input)),
    }
}

/// Applies `ResultPath`: `None` (field absent) replaces the input with the result ("$"),
/// `Some(Value::Null)` discards the result and keeps the input, a path writes the result there.
pub fn apply_result_path(
    input: &Value,
    result_path: Option<&Value>,
    result: Value,
) -> Result<Value, Failure> {
    let path = match result_path {
        None => return Ok(result),
        Some(Value::Null) => return Ok(input.clone()),
        Some(Value::String(p)) => p,
        Some(other) => return Err(Failure::runtime(format!("Invalid ResultPath {other}"))),
    };
    let parsed =
        Path::parse(path).map_err(|e| Failure::runtime(format!("Invalid path '{path}' : {e}")))?;
    if parsed.root != Root::Input || !parsed.is_reference() {
        return Err(Failure::runtime(format!(
            "Invalid path '{path}' : not a reference path"
        )));
    }
    let conflict = || {
        Failure::new(
            REFERENCE_PATH_CONFLICT,
            format!(
                "Unable to apply ReferencePath {path} to input {}",
                compact(input)
            ),
        )
    };
    let mut out = input.clone();
    let mut slot = &mut out;
    for token in &parsed.tokens {
        slot = match token {
            path::Token::Property(names) => {
                let Value::Object(map) = slot else {
                    return Err(conflict());
                };
                map.entry(names[0].clone())
                    .or_insert_with(|| Value::Object(Map::new()))
            }
            path::Token::Index(indexes) => {
                let Value::Array(items) = slot else {
                    return Err(conflict());
                };
                let index = usize::try_from(indexes[0]).map_err(|_| conflict())?;
                items.get_mut(index).ok_or_else(conflict)?
            }
            _ => return Err(conflict()),
        };
    }
    *slot = result;
    Ok(out)
}

/// Evaluates a path against the scope. The outer error is a syntax error; the inner one says
/// the path found nothing, with Jayway's message.
pub(crate) fn query(path: &str, scope: &Scope) -> Result<Result<Value, NotFound>, String> {
    let parsed = Path::parse(path)?;
    let root = match &parsed.root {
        Root::Input => scope.input,
        Root::Context => scope.context,
        Root::Variable(name) => match scope.vars.get(name) {
            Some(v) => v,
            None => return Ok(Err(NotFound(format!("No results for path: ${name}")))),
        },
        Root::Current => return Err(format!("'{path}' must start with '$'")),
    };
    Ok(parsed.evaluate(root, root))
}

/// AWS's cause for a `.$` path that matched nothing.
pub(crate) fn not_found(path: &str, field: &str, input: &Value) -> Failure {
    Failure::runtime(format!(
        "The JSONPath '{path}' specified for the field '{field}' could not be found in the input '{}'",
        compact(input)
    ))
}

/// JSON text as AWS prints values inside causes: compact, keys in their order.
pub(crate) fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
