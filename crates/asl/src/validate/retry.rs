//! `Retry` and `Catch` on Task, Parallel and Map states: retrier and catcher fields, their
//! ranges, and where `States.ALL` may appear.

use serde_json::{Map, Value};

use super::Diagnostics;
use super::schema::{Bounds, StateCx, check_bounds, check_template, not_a_path, path_ok};

pub(super) fn check_retry_catch(cx: &StateCx<'_>, d: &mut Diagnostics) {
    for field in ["Retry", "Catch"] {
        let Some(v) = cx.state.get(field) else {
            continue;
        };
        let Some(items) = v.as_array() else {
            d.schema(
                format!("The value for the field '{field}' must be an ARRAY"),
                &cx.at(field),
            );
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let at = cx.at(&format!("{field}[{i}]"));
            let last = i + 1 == items.len();
            let Some(obj) = item.as_object() else {
                d.schema("The value must be an OBJECT", &at);
                continue;
            };
            let allowed: &[&str] = if field == "Retry" {
                &[
                    "ErrorEquals",
                    "IntervalSeconds",
                    "MaxAttempts",
                    "BackoffRate",
                    "MaxDelaySeconds",
                    "JitterStrategy",
                    "Comment",
                ]
            } else {
                &[
                    "ErrorEquals",
                    "Next",
                    "ResultPath",
                    "Assign",
                    "Output",
                    "Comment",
                ]
            };
            for key in obj.keys() {
                if !allowed.contains(&key.as_str()) {
                    d.schema(format!("Field '{key}' is not supported"), &at);
                }
            }
            let mut required = vec![];
            if !obj.contains_key("ErrorEquals") {
                required.push("ErrorEquals");
            }
            if field == "Catch" && !obj.contains_key("Next") {
                required.push("Next");
            }
            if !required.is_empty() {
                d.schema(
                    format!("These fields are required: [{}]", required.join(", ")),
                    &at,
                );
            }
            if let Some(errors) = obj.get("ErrorEquals") {
                check_error_equals(errors, &format!("{at}/ErrorEquals"), last, field, d);
            }
            if field == "Retry" {
                check_retrier_numbers(obj, &at, d);
            } else {
                if cx.jsonata() && obj.contains_key("ResultPath") {
                    d.schema(
                        "The QueryLanguage is set to 'JSONata', but field 'ResultPath' is only supported for the 'JSONPath' QueryLanguage",
                        &at,
                    );
                } else if !cx.jsonata() && obj.contains_key("Output") {
                    d.schema(
                        "The QueryLanguage is set to 'JSONPath', but field 'Output' is only supported for the 'JSONata' QueryLanguage",
                        &at,
                    );
                }
                if !cx.jsonata() {
                    match obj.get("ResultPath") {
                        None | Some(Value::Null) => {}
                        Some(Value::String(p)) if path_ok(p, true) => {}
                        Some(_) => d.schema(not_a_path(true), &format!("{at}/ResultPath")),
                    }
                    if let Some(a) = obj.get("Assign") {
                        check_template(a, &format!("{at}/Assign"), d);
                    }
                }
            }
        }
    }
}

fn check_error_equals(errors: &Value, at: &str, last: bool, field: &str, d: &mut Diagnostics) {
    let Some(list) = errors.as_array() else {
        d.schema("The value for the field 'ErrorEquals' must be an ARRAY", at);
        return;
    };
    if list.is_empty() {
        d.schema("Value cannot be empty", at);
        return;
    }
    if list.iter().any(|e| !e.is_string()) {
        d.schema(
            "The value for the field 'ErrorEquals' must be an array of STRING",
            at,
        );
        return;
    }
    if list.iter().any(|e| e == "States.ALL") {
        if list.len() > 1 {
            d.schema("States.ALL must appear alone in ErrorEquals", at);
        } else if !last {
            d.schema(
                format!(
                    "States.ALL must appear in the last {} entry",
                    if field == "Retry" {
                        "Retrier"
                    } else {
                        "Catcher"
                    }
                ),
                at,
            );
        }
    }
}

fn check_retrier_numbers(obj: &Map<String, Value>, at: &str, d: &mut Diagnostics) {
    for (field, bounds) in [
        ("IntervalSeconds", Bounds::int(1, Some(99_999_999))),
        ("MaxAttempts", Bounds::int(0, Some(99_999_999))),
        ("MaxDelaySeconds", Bounds::int(1, Some(31_622_400))),
        ("BackoffRate", Bounds::decimal(1.0, None)),
    ] {
        if let Some(v) = obj.get(field) {
            check_bounds(v, &format!("{at}/{field}"), bounds, d);
        }
    }
    if let Some(v) = obj.get("JitterStrategy")
        && !matches!(v.as_str(), Some("FULL" | "NONE"))
    {
        d.schema(
            "The field 'JitterStrategy' should have one of these values: [FULL, NONE]",
            &format!("{at}/JitterStrategy"),
        );
    }
}
