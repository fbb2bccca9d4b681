//! JSONPath as Step Functions applies it: paths over the input (`$`), the context object
//! (`$$`) and variables (`$name`); payload templates (`Parameters`, `ResultSelector`,
//! `ItemSelector`, `Assign` with `.$` keys and intrinsic functions); and writing a result
//! at a `ResultPath`.

use serde_json::Value;

use crate::env::{Host, Scope};
use crate::error::Failure;

/// Checks the syntax of a path (`$...`, `$$...` or `$name...`) as AWS does at validation;
/// `reference` restricts it to a reference path (single value: names and indexes only).
pub fn check(path: &str, reference: bool) -> Result<(), String> {
    let _ = (path, reference);
    todo!("jsonpath::check")
}

/// Reads `path` as AWS does. `Ok(None)` when the path matches nothing.
pub fn read(path: &str, scope: &Scope) -> Result<Option<Value>, Failure> {
    let _ = (path, scope);
    todo!("jsonpath::read")
}

/// `InputPath` / `OutputPath`: `None` path yields `{}`; no match is a located `States.Runtime`
/// ("Invalid path '$.x' : No results for path: $['x']").
pub fn select(path: Option<&str>, scope: &Scope) -> Result<Value, Failure> {
    let _ = (path, scope);
    todo!("jsonpath::select")
}

/// Evaluates a payload template: keys ending in `.$` take a path or an intrinsic function
/// call, everything else is copied. Used for `Parameters`, `ResultSelector`, `ItemSelector`
/// and JSONPath-mode `Assign`.
pub fn eval_payload(template: &Value, scope: &Scope, host: &mut dyn Host) -> Result<Value, Failure> {
    let _ = (template, scope, host);
    todo!("jsonpath::eval_payload")
}

/// Applies `ResultPath`: `None` (field absent) replaces the input with the result ("$"),
/// `Some(Value::Null)` discards the result and keeps the input, a path writes the result there.
pub fn apply_result_path(input: &Value, result_path: Option<&Value>, result: Value) -> Result<Value, Failure> {
    let _ = (input, result_path, result);
    todo!("jsonpath::apply_result_path")
}
