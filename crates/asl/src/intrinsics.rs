//! The `States.*` intrinsic functions of JSONPath payload templates.

use serde_json::Value;

use crate::env::{Host, Scope};
use crate::error::Failure;

/// True when `s` looks like an intrinsic function call (`States.Name(...)`).
pub fn is_call(s: &str) -> bool {
    s.trim_start().starts_with("States.")
}

/// Parses an intrinsic function call (syntax, function name, argument count) without
/// evaluating it; the error text is what AWS reports for an invalid call at validation.
pub fn check(expr: &str) -> Result<(), String> {
    let _ = expr;
    todo!("intrinsics::check")
}

/// Evaluates one intrinsic function call, arguments included.
pub fn eval(expr: &str, scope: &Scope, host: &mut dyn Host) -> Result<Value, Failure> {
    let _ = (expr, scope, host);
    todo!("intrinsics::eval")
}
