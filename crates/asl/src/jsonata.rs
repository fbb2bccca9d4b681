//! JSONata as Step Functions applies it: `{% expr %}` strings in `Arguments`, `Output`,
//! `Assign`, `Condition` and the other JSONata fields, with `$states` bound and AWS's added
//! functions (`$partition`, `$range`, `$hash`, `$random`, `$uuid`, `$parse`) and no `$eval`.

use serde_json::{Map, Value};

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
    let _ = (template, field, states, vars, host);
    todo!("jsonata::eval_template")
}

/// Evaluates one JSONata expression (without `{% %}`); `Ok(None)` when it is undefined.
pub fn eval_expr(
    expr: &str,
    states: &Value,
    vars: &Map<String, Value>,
    host: &mut dyn Host,
) -> Result<Option<Value>, Failure> {
    let _ = (expr, states, vars, host);
    todo!("jsonata::eval_expr")
}
