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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::env::FixedHost;

    // Values below are AWS's recorded answers (conformance cases), unless a test says otherwise.

    fn with_scope<T>(input: Value, f: impl FnOnce(&Scope) -> T) -> T {
        let context = json!({
            "Execution": {"Input": input.clone(), "Name": "ex1"},
            "StateMachine": {"Name": "statemachine_1"},
        });
        let mut vars = Map::new();
        vars.insert("x".into(), json!({"a": [10, 20]}));
        f(&Scope {
            input: &input,
            context: &context,
            vars: &vars,
        })
    }

    fn payload(template: Value, input: Value) -> Result<Value, Failure> {
        with_scope(input, |scope| {
            eval_payload(&template, scope, &mut FixedHost::new(0, 1))
        })
    }

    #[test]
    fn input_path_that_finds_nothing_names_the_jayway_path() {
        let err = with_scope(json!({"int-literal": 0}), |s| {
            select(Some("$.NoSuchInputPath"), s)
        })
        .unwrap_err();
        assert_eq!(err.error_name(), "States.Runtime");
        assert!(err.located);
        assert_eq!(
            err.cause.as_deref(),
            Some("Invalid path '$.NoSuchInputPath' : No results for path: $['NoSuchInputPath']")
        );
    }

    #[test]
    fn select_handles_root_context_and_absent_paths() {
        with_scope(json!({"input-value": 0}), |s| {
            assert_eq!(select(Some("$"), s).unwrap(), json!({"input-value": 0}));
            assert_eq!(
                select(Some("$$.Execution.Input"), s).unwrap(),
                json!({"input-value": 0})
            );
            assert_eq!(select(None, s).unwrap(), json!({}));
            assert_eq!(select(Some("$x.a[1]"), s).unwrap(), json!(20));
        });
    }

    #[test]
    fn payload_path_that_finds_nothing_prints_the_input_compactly() {
        let err = payload(
            json!({"value.$": "$.no_such_jsonpath"}),
            json!({"int-literal": 0}),
        )
        .unwrap_err();
        assert!(err.located);
        // The recorded cause hides the input as <json-input:1>; AWS prints it as compact JSON
        // (a published AWS execution failure shows '{"Jobs":[0,0,...]}').
        assert_eq!(
            err.cause.as_deref(),
            Some(
                "The JSONPath '$.no_such_jsonpath' specified for the field 'value.$' could not be found \
                 in the input '{\"int-literal\":0}'"
            )
        );
        let err = payload(
            json!({"value.$": "$$.Execution.Input.no_such_jsonpath"}),
            json!({"int-literal": 0}),
        );
        assert!(err.unwrap_err().cause.unwrap().starts_with(
            "The JSONPath '$$.Execution.Input.no_such_jsonpath' specified for the field 'value.$' could not be found"
        ));
    }

    #[test]
    fn payload_evaluates_paths_filters_and_nested_templates() {
        let users = json!({"users": [{"year": 1997, "status": 0}, {"year": 1998, "status": 1}]});
        assert_eq!(
            payload(json!({"FromInput.$": "$.users[?(@.status == 0)]"}), users).unwrap(),
            json!({"FromInput": [{"year": 1997, "status": 0}]})
        );
        let items: Vec<Value> = (0..11).map(|k| json!({"item_key": k})).collect();
        assert_eq!(
            payload(json!({"item.$": "$.items[0]"}), json!({"items": items})).unwrap(),
            json!({"item": {"item_key": 0}})
        );
        assert_eq!(
            payload(json!({"a": [{"b.$": "$.v"}], "c": 1}), json!({"v": true})).unwrap(),
            json!({"a": [{"b": true}], "c": 1})
        );
    }

    #[test]
    fn indefinite_paths_over_missing_input_give_empty_arrays() {
        for path in [
            "$.items[*]",
            "$.items[1:]",
            "$.items[:1].itemValue",
            "$.item.items[1:5]",
            "$[*]",
        ] {
            assert_eq!(
                payload(json!({"item.$": path}), json!({})).unwrap(),
                json!({"item": []}),
                "{path}"
            );
        }
    }

    #[test]
    fn slices_and_wildcards_follow_jayway() {
        // Not recorded: Jayway's documented slice semantics.
        let input = json!({"items": [{"v": 0}, {"v": 1}, {"v": 2}, {"v": 3}]});
        let got = |p: &str| payload(json!({"r.$": p}), input.clone()).unwrap()["r"].clone();
        assert_eq!(got("$.items[1:3].v"), json!([1, 2]));
        assert_eq!(got("$.items[:1].v"), json!([0]));
        assert_eq!(got("$.items[-2:].v"), json!([2, 3]));
        assert_eq!(got("$.items[*].v"), json!([0, 1, 2, 3]));
        assert_eq!(got("$..v"), json!([0, 1, 2, 3]));
        assert_eq!(got("$.items[-1]"), json!({"v": 3}));
    }

    #[test]
    fn bracket_names_keep_backslashes() {
        let input: Value = serde_json::from_str(r#"{"Test\\\"\"Name\"": "Value\"\\"}"#).unwrap();
        assert_eq!(
            payload(json!({"value.$": r#"$['Test\""Name"']"#}), input).unwrap(),
            json!({"value": "Value\"\\"})
        );
    }

    #[test]
    fn missing_property_midway_is_reported_as_jayway_does() {
        // Jayway's messages for definite paths; AWS passes them on after "Invalid path '...' : ".
        let err = with_scope(json!({"a": {}}), |s| select(Some("$.a.x"), s)).unwrap_err();
        assert_eq!(
            err.cause.as_deref(),
            Some("Invalid path '$.a.x' : No results for path: $['a']['x']")
        );
        let err = with_scope(json!({}), |s| select(Some("$.a.x"), s)).unwrap_err();
        assert_eq!(
            err.cause.as_deref(),
            Some("Invalid path '$.a.x' : Missing property in path $['a']")
        );
    }

    #[test]
    fn result_path_replaces_discards_or_merges() {
        let input = json!({"input_field": {"k": "v"}});
        assert_eq!(apply_result_path(&input, None, json!(1)).unwrap(), json!(1));
        assert_eq!(
            apply_result_path(&input, Some(&Value::Null), json!(1)).unwrap(),
            input
        );
        assert_eq!(
            apply_result_path(&input, Some(&json!("$")), json!(1)).unwrap(),
            json!(1)
        );
        assert_eq!(
            apply_result_path(&input, Some(&json!("$.result_path")), json!({"merged": 1})).unwrap(),
            json!({"input_field": {"k": "v"}, "result_path": {"merged": 1}})
        );
        assert_eq!(
            apply_result_path(&input, Some(&json!("$.detail.shipped_output")), json!(2)).unwrap(),
            json!({"input_field": {"k": "v"}, "detail": {"shipped_output": 2}})
        );
    }

    #[test]
    fn result_path_into_a_non_object_conflicts() {
        // AWS's published answer for a string input: "Unable to apply ReferencePath $.someTaskResult
        // to input \"input1\"" with error States.ReferencePathConflict.
        let err = apply_result_path(&json!("input1"), Some(&json!("$.someTaskResult")), json!(1))
            .unwrap_err();
        assert_eq!(err.error_name(), "States.ReferencePathConflict");
        assert_eq!(
            err.cause.as_deref(),
            Some("Unable to apply ReferencePath $.someTaskResult to input \"input1\"")
        );
    }

    #[test]
    fn check_accepts_paths_and_refuses_non_reference_paths_where_one_is_needed() {
        assert!(check("$.a[0]['b c']", true).is_ok());
        assert!(check("$$.Execution.Input", true).is_ok());
        assert!(check("$var.field", true).is_ok());
        assert!(check("$.users[?(@.status == 0)]", false).is_ok());
        assert!(check("$.items[*]", true).is_err());
        assert!(check("$.a[", false).is_err());
        assert!(check("a.b", false).is_err());
    }
}
