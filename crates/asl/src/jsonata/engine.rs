//! The JSONata engine behind a small seam: `jsonata-core` today, anything that can evaluate an
//! expression with variables and host functions tomorrow.
//!
//! `jsonata-core` values hold `Rc`s and its evaluator is not `Send`, so everything here runs
//! synchronously on the caller's thread; parsed expressions are cached per thread.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::ptr::NonNull;
use std::rc::Rc;

use jsonata_core::ast::AstNode;
use jsonata_core::evaluator::{Context, Evaluator, EvaluatorError};
use jsonata_core::value::{JArray, JMap, JValue};
use serde_json::{Map, Number, Value};

use super::functions;
use super::messages::reference_message;
use crate::env::Host;

/// What an expression produced.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// JSONata's "no value" (a path that matched nothing, an unbound variable).
    Undefined,
    Value(Value),
    /// A function, or a value holding one: JSON cannot carry it.
    Unsupported,
}

/// An evaluation error, as `CODE: message` when JSONata gives it a code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EngineError(pub String);

/// The seam: evaluate one expression with `$states` and the variables bound.
pub(crate) trait Engine {
    /// Variables converted once to the engine's representation, reused for every expression of
    /// one template.
    type Bindings;

    fn bind(&self, states: &Value, vars: &Map<String, Value>) -> Self::Bindings;

    /// Parses `expr` without evaluating it.
    fn check(&self, expr: &str) -> Result<(), EngineError>;

    fn evaluate(
        &self,
        expr: &str,
        bindings: &Self::Bindings,
        host: &mut dyn Host,
    ) -> Result<Outcome, EngineError>;
}

/// The engine in use.
pub(crate) type Current = CoreEngine;

/// `jsonata-core`, with AWS's functions registered on every evaluator.
#[derive(Default)]
pub(crate) struct CoreEngine;

/// Parsed expressions kept per thread; dropped wholesale past this many.
const MAX_CACHED: usize = 2048;

thread_local! {
    static PARSED: RefCell<HashMap<String, Rc<AstNode>>> = RefCell::new(HashMap::new());
    /// The caller's [`Host`] while an expression runs on this thread (see [`HostGuard`]).
    static HOST: Cell<Option<NonNull<dyn Host>>> = const { Cell::new(None) };
}

impl Engine for CoreEngine {
    type Bindings = Vec<(String, JValue)>;

    fn bind(&self, states: &Value, vars: &Map<String, Value>) -> Self::Bindings {
        let mut out = Vec::with_capacity(vars.len() + 1);
        for (name, value) in vars {
            out.push((name.clone(), to_jvalue(value)));
        }
        // `$states` is reserved: no variable can be named so (validation refuses it).
        out.push(("states".to_string(), to_jvalue(states)));
        out
    }

    fn check(&self, expr: &str) -> Result<(), EngineError> {
        parse(expr).map(drop)
    }

    fn evaluate(
        &self,
        expr: &str,
        bindings: &Self::Bindings,
        host: &mut dyn Host,
    ) -> Result<Outcome, EngineError> {
        let ast = parse(expr)?;
        let mut context = Context::new();
        for (name, value) in bindings {
            context.bind(name.clone(), value.clone());
        }
        let mut evaluator = Evaluator::with_context(context);
        functions::register(&mut evaluator);
        let _guard = HostGuard::install(host);
        // A bug in the engine must fail this state, not take the execution's thread down.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            evaluator.evaluate(&ast, &JValue::Undefined)
        }))
        .map_err(|_| EngineError("the JSONata engine failed on this expression".to_string()))?
        .map_err(|e| EngineError(reference_message(e.message(), expr)))?;
        Ok(from_jvalue(&result))
    }
}

fn parse(expr: &str) -> Result<Rc<AstNode>, EngineError> {
    if let Some(ast) = PARSED.with(|p| p.borrow().get(expr).cloned()) {
        return Ok(ast);
    }
    let parsed = std::panic::catch_unwind(|| jsonata_core::parser::parse(expr))
        .map_err(|_| EngineError("the JSONata engine failed to parse this expression".into()))?;
    let ast = Rc::new(parsed.map_err(|e| EngineError(e.to_string()))?);
    PARSED.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() >= MAX_CACHED {
            p.clear();
        }
        p.insert(expr.to_string(), ast.clone());
    });
    Ok(ast)
}

/// Evaluates an expression the AWS functions build on (e.g. `$fromMillis` for `$now`), on a
/// fresh evaluator with `vars` bound. Host functions never call back into the running one.
pub(crate) fn evaluate_helper(
    expr: &str,
    vars: &[(&str, JValue)],
) -> Result<JValue, EvaluatorError> {
    let ast = parse(expr).map_err(|e| EvaluatorError::EvaluationError(e.0))?;
    let mut context = Context::new();
    for (name, value) in vars {
        context.bind((*name).to_string(), value.clone());
    }
    Evaluator::with_context(context).evaluate(&ast, &JValue::Undefined)
}

/// Makes the caller's [`Host`] reachable from host functions (which `jsonata-core` wants
/// `'static`) for exactly the duration of one evaluation.
struct HostGuard {
    previous: Option<NonNull<dyn Host>>,
}

impl HostGuard {
    fn install(host: &mut dyn Host) -> Self {
        let ptr = NonNull::from(host);
        // SAFETY: only the lifetime is erased. The pointer is reachable through `HOST` only
        // until this guard drops (also on unwind), which happens before the `&mut` it came from
        // is usable again, and it is dereferenced only by `with_host`, never re-entrantly.
        let ptr: NonNull<dyn Host> = unsafe { std::mem::transmute(ptr) };
        let previous = HOST.with(|h| h.replace(Some(ptr)));
        HostGuard { previous }
    }
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        HOST.with(|h| h.set(self.previous));
    }
}

/// Runs `f` with the host of the evaluation running on this thread.
pub(crate) fn with_host<R>(f: impl FnOnce(&mut dyn Host) -> R) -> Option<R> {
    let ptr = HOST.with(|h| h.take())?;
    // SAFETY: see `HostGuard::install`; taking the pointer out of the cell while `f` runs makes
    // a second, aliasing borrow impossible even if `f` were to re-enter.
    let result = f(unsafe { &mut *ptr.as_ptr() });
    HOST.with(|h| h.set(Some(ptr)));
    Some(result)
}

/// JSON into the engine's values. JSONata numbers are doubles.
pub(crate) fn to_jvalue(v: &Value) -> JValue {
    match v {
        Value::Null => JValue::Null,
        Value::Bool(b) => JValue::Bool(*b),
        Value::Number(n) => JValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => JValue::string(s.as_str()),
        Value::Array(items) => {
            let flat = !items.iter().any(Value::is_array);
            JValue::Array(JArray::new_flat(
                items.iter().map(to_jvalue).collect(),
                flat,
            ))
        }
        Value::Object(map) => JValue::Object(Rc::new(
            map.iter()
                .map(|(k, v)| (k.clone(), to_jvalue(v)))
                .collect::<JMap>(),
        )),
    }
}

/// The engine's values back into JSON: integral doubles become integers (AWS prints `3`, not
/// `3.0`); undefined members of objects disappear and of arrays are skipped, as
/// `JSON.stringify` does in jsonata-js.
pub(crate) fn from_jvalue(v: &JValue) -> Outcome {
    match to_json(v) {
        Ok(Some(value)) => Outcome::Value(value),
        Ok(None) => Outcome::Undefined,
        Err(Unsupported) => Outcome::Unsupported,
    }
}

struct Unsupported;

fn to_json(v: &JValue) -> Result<Option<Value>, Unsupported> {
    Ok(Some(match v {
        JValue::Undefined => return Ok(None),
        JValue::Null => Value::Null,
        JValue::Bool(b) => Value::Bool(*b),
        JValue::Number(n) => number(*n),
        JValue::String(s) => Value::String(s.to_string()),
        JValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                if let Some(value) = to_json(item)? {
                    out.push(value);
                }
            }
            Value::Array(out)
        }
        JValue::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, item) in map.iter() {
                if let Some(value) = to_json(item)? {
                    out.insert(k.clone(), value);
                }
            }
            Value::Object(out)
        }
        _ => return Err(Unsupported),
    }))
}

/// A JSONata number as JSON: integral values within `i64` print as integers.
pub(crate) fn number(n: f64) -> Value {
    // 2^63 is exactly representable; anything at or above it does not fit an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if n.is_finite() && n.fract() == 0.0 && n.abs() < LIMIT {
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}
