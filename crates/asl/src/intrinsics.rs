//! The `States.*` intrinsic functions of JSONPath payload templates.
//!
//! `parse` reads a call into a tree; `functions` holds the 18 functions with AWS's argument
//! rules. Arguments are evaluated innermost first, paths against the same scope as the field.

mod functions;
mod parse;

use serde_json::Value;

use crate::env::{Host, Scope};
use crate::error::Failure;
use crate::jsonpath;
use parse::{Arg, Call};

/// True when `s` looks like an intrinsic function call (`States.Name(...)`).
pub fn is_call(s: &str) -> bool {
    s.trim_start().starts_with("States.")
}

/// Parses an intrinsic function call (syntax, function name, argument count) without
/// evaluating it; the error text is what AWS reports for an invalid call at validation.
pub fn check(expr: &str) -> Result<(), String> {
    check_call(&parse::parse(expr)?)
}

fn check_call(call: &Call) -> Result<(), String> {
    let (min, max) = functions::arity(&call.name)
        .ok_or_else(|| format!("unknown intrinsic function {}", call.name))?;
    let n = call.args.len();
    if n < min || max.is_some_and(|max| n > max) {
        let expected = match max {
            Some(max) if max == min => format!("{min}"),
            Some(max) => format!("{min} to {max}"),
            None => format!("at least {min}"),
        };
        return Err(format!("{} takes {expected} arguments, got {n}", call.name));
    }
    for arg in &call.args {
        if let Arg::Call(inner) = arg {
            check_call(inner)?;
        }
    }
    Ok(())
}

/// Evaluates one intrinsic function call, arguments included.
pub fn eval(expr: &str, scope: &Scope, host: &mut dyn Host) -> Result<Value, Failure> {
    eval_in_field(expr, expr, scope, host)
}

/// Evaluates a call written in the field `field` (`"value.$"`, `"CausePath"`), which AWS
/// names when a path argument finds nothing.
pub fn eval_in_field(
    expr: &str,
    field: &str,
    scope: &Scope,
    host: &mut dyn Host,
) -> Result<Value, Failure> {
    let call = parse::parse(expr).map_err(|e| {
        Failure::intrinsic(format!("Invalid intrinsic function call '{expr}': {e}"))
    })?;
    check_call(&call).map_err(|e| {
        Failure::intrinsic(format!("Invalid intrinsic function call '{expr}': {e}"))
    })?;
    eval_call(&call, field, scope, host)
}

fn eval_call(
    call: &Call,
    field: &str,
    scope: &Scope,
    host: &mut dyn Host,
) -> Result<Value, Failure> {
    let mut args = Vec::with_capacity(call.args.len());
    for arg in &call.args {
        args.push(match arg {
            Arg::Text { value, .. } => Value::String(value.clone()),
            Arg::Literal(v) => v.clone(),
            Arg::Path(path) => match jsonpath::query(path, scope) {
                Ok(Ok(v)) => v,
                _ => return Err(jsonpath::not_found(path, field, scope.input)),
            },
            Arg::Call(inner) => eval_call(inner, field, scope, host)?,
        });
    }
    // States.Format reads `{}` placeholders from the literal text, where `\{` is no placeholder.
    let template_raw = match (call.name.as_str(), call.args.first()) {
        ("States.Format", Some(Arg::Text { raw, .. })) => Some(raw.as_str()),
        _ => None,
    };
    functions::apply(&call.name, args, template_raw, host).map_err(Failure::intrinsic)
}

#[cfg(test)]
mod conformance;
