//! Per-state rules: which fields each state type accepts, their types and ranges, the
//! JSONPath/JSONata split, payload templates, Retry/Catch, Choice rules, Wait and Map settings.
//! Everything here reports `SCHEMA_VALIDATION_FAILED`.

use serde_json::{Map, Value};

use super::text::is_rfc3339;
use super::{Diagnostics, MachineType, QueryLanguage, guarded, resource};

pub(super) const STATE_TYPES: &str = "[Task, Wait, Pass, Succeed, Fail, Choice, Parallel, Map]";

const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];

/// Fields each state type accepts besides [`COMMON`], in either query language.
fn fields_of(ty: &str) -> &'static [&'static str] {
    match ty {
        "Pass" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "Result",
            "Assign",
            "Output",
        ],
        "Task" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "Resource",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Retry",
            "Catch",
            "Credentials",
            "Arguments",
            "Output",
            "Assign",
        ],
        "Choice" => &[
            "InputPath",
            "OutputPath",
            "Choices",
            "Default",
            "Assign",
            "Output",
        ],
        "Wait" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Seconds",
            "Timestamp",
            "SecondsPath",
            "TimestampPath",
            "Assign",
            "Output",
        ],
        "Succeed" => &["InputPath", "OutputPath", "Output"],
        "Fail" => &["Error", "Cause", "ErrorPath", "CausePath"],
        "Parallel" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "Branches",
            "Retry",
            "Catch",
            "Arguments",
            "Output",
            "Assign",
        ],
        "Map" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "ItemsPath",
            "Items",
            "ItemSelector",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "Iterator",
            "ItemProcessor",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "Label",
            "Retry",
            "Catch",
            "Arguments",
            "Output",
            "Assign",
        ],
        _ => &[],
    }
}

/// Fields only a JSONPath state may use.
const JSONPATH_ONLY: &[&str] = &[
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Result",
    "ItemsPath",
    "SecondsPath",
    "TimestampPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "MaxConcurrencyPath",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentagePath",
    "ErrorPath",
    "CausePath",
    "Iterator",
];

/// Fields only a JSONata state may use.
const JSONATA_ONLY: &[&str] = &["Arguments", "Output", "Items"];

const COMPARISON_OPERATORS: &[&str] = &[
    "BooleanEquals",
    "BooleanEqualsPath",
    "IsBoolean",
    "IsNull",
    "IsNumeric",
    "IsPresent",
    "IsString",
    "IsTimestamp",
    "NumericEquals",
    "NumericEqualsPath",
    "NumericGreaterThan",
    "NumericGreaterThanPath",
    "NumericGreaterThanEquals",
    "NumericGreaterThanEqualsPath",
    "NumericLessThan",
    "NumericLessThanPath",
    "NumericLessThanEquals",
    "NumericLessThanEqualsPath",
    "StringEquals",
    "StringEqualsPath",
    "StringGreaterThan",
    "StringGreaterThanPath",
    "StringGreaterThanEquals",
    "StringGreaterThanEqualsPath",
    "StringLessThan",
    "StringLessThanPath",
    "StringLessThanEquals",
    "StringLessThanEqualsPath",
    "StringMatches",
    "TimestampEquals",
    "TimestampEqualsPath",
    "TimestampGreaterThan",
    "TimestampGreaterThanPath",
    "TimestampGreaterThanEquals",
    "TimestampGreaterThanEqualsPath",
    "TimestampLessThan",
    "TimestampLessThanPath",
    "TimestampLessThanEquals",
    "TimestampLessThanEqualsPath",
];

/// One state at `path` (`/States/<name>`, or nested under a branch or item processor).
pub(super) struct StateCx<'a> {
    pub path: String,
    pub state: &'a Map<String, Value>,
    pub ql: QueryLanguage,
    pub machine_type: MachineType,
}

impl StateCx<'_> {
    fn at(&self, field: &str) -> String {
        format!("{}/{field}", self.path)
    }

    fn jsonata(&self) -> bool {
        self.ql == QueryLanguage::JSONata
    }
}

/// Checks one state's own fields; nested containers are walked by the caller.
pub(super) fn check_state(cx: &StateCx<'_>, d: &mut Diagnostics) {
    let state = cx.state;
    let Some(ty_value) = state.get("Type") else {
        d.schema("These fields are required: [Type]", &cx.path);
        return;
    };
    let ty = ty_value.as_str().unwrap_or("");
    if fields_of(ty).is_empty() {
        d.schema(
            format!("The field 'Type' should have one of these values: {STATE_TYPES}"),
            &cx.at("Type"),
        );
        return;
    }
    for key in state.keys() {
        if !COMMON.contains(&key.as_str()) && !fields_of(ty).contains(&key.as_str()) {
            d.schema(format!("Field '{key}' is not supported"), &cx.path);
        }
    }
    for key in state.keys() {
        let key = key.as_str();
        if cx.jsonata() && JSONPATH_ONLY.contains(&key) {
            d.schema(
                format!("The QueryLanguage is set to 'JSONata', but field '{key}' is only supported for the 'JSONPath' QueryLanguage"),
                &cx.path,
            );
        } else if !cx.jsonata() && JSONATA_ONLY.contains(&key) {
            d.schema(
                format!("The QueryLanguage is set to 'JSONPath', but field '{key}' is only supported for the 'JSONata' QueryLanguage"),
                &cx.path,
            );
        }
    }

    check_transition(cx, ty, d);
    check_paths(cx, d);
    check_templates(cx, d);
    if let Some(v) = state.get("Comment") {
        expect_string(cx, "Comment", v, d);
    }
    match ty {
        "Task" => check_task(cx, d),
        "Choice" => check_choice(cx, d),
        "Wait" => check_wait(cx, d),
        "Fail" => check_fail(cx, d),
        "Parallel" => match state.get("Branches") {
            None => d.schema("These fields are required: [Branches]", &cx.path),
            Some(Value::Array(b)) if b.is_empty() => {
                d.schema("Value cannot be empty", &cx.at("Branches"))
            }
            Some(Value::Array(_)) => {}
            Some(_) => d.schema(
                "The value for the field 'Branches' must be an ARRAY",
                &cx.at("Branches"),
            ),
        },
        "Map" => check_map(cx, d),
        _ => {}
    }
    if matches!(ty, "Task" | "Parallel" | "Map") {
        check_retry_catch(cx, d);
    }
}

fn expect_string(cx: &StateCx<'_>, field: &str, v: &Value, d: &mut Diagnostics) {
    if !v.is_string() {
        d.schema(
            format!("The value for the field '{field}' must be a STRING"),
            &cx.at(field),
        );
    }
}

fn check_transition(cx: &StateCx<'_>, ty: &str, d: &mut Diagnostics) {
    if !matches!(ty, "Pass" | "Task" | "Wait" | "Parallel" | "Map") {
        return;
    }
    let next = cx.state.get("Next");
    let end = cx.state.get("End");
    if let Some(v) = next {
        expect_string(cx, "Next", v, d);
    }
    if let Some(v) = end.filter(|v| !v.is_boolean()) {
        let _ = v;
        d.schema(
            "The value for the field 'End' must be a BOOLEAN",
            &cx.at("End"),
        );
    }
    let ends = end == Some(&Value::Bool(true));
    match (next.is_some(), ends) {
        (true, true) => d.schema("Only one of these fields is allowed: [Next, End]", &cx.path),
        (false, false) => d.schema(
            "Exactly one of these fields is required: [Next, End]",
            &cx.path,
        ),
        _ => {}
    }
}

/// Path-valued fields (JSONPath states only; the JSONata split is reported above).
fn check_paths(cx: &StateCx<'_>, d: &mut Diagnostics) {
    if cx.jsonata() {
        return;
    }
    for (field, reference, nullable) in [
        ("InputPath", false, true),
        ("OutputPath", false, true),
        ("ResultPath", true, true),
        ("ItemsPath", true, false),
        ("SecondsPath", true, false),
        ("TimestampPath", true, false),
        ("TimeoutSecondsPath", true, false),
        ("HeartbeatSecondsPath", true, false),
        ("MaxConcurrencyPath", true, false),
        ("ToleratedFailureCountPath", true, false),
        ("ToleratedFailurePercentagePath", true, false),
    ] {
        match cx.state.get(field) {
            None => {}
            Some(Value::Null) if nullable => {}
            Some(Value::String(p)) if path_ok(p, reference) => {}
            Some(_) => {
                let kind = if reference {
                    "ReferencePath"
                } else {
                    "JSONPath"
                };
                d.schema(
                    format!("The value for the field '{field}' must be a valid {kind}"),
                    &cx.at(field),
                );
            }
        }
    }
}

fn path_ok(p: &str, reference: bool) -> bool {
    p.starts_with('$') && guarded(|| crate::jsonpath::check(p, reference).is_ok())
}

fn path_or_intrinsic_ok(p: &str) -> bool {
    if crate::intrinsics::is_call(p) {
        guarded(|| crate::intrinsics::check(p).is_ok())
    } else {
        path_ok(p, false)
    }
}

/// Payload templates: every `.$` key holds a path or an intrinsic function call.
fn check_templates(cx: &StateCx<'_>, d: &mut Diagnostics) {
    if cx.jsonata() {
        return;
    }
    for field in ["Parameters", "ResultSelector", "ItemSelector", "Assign"] {
        if let Some(v) = cx.state.get(field) {
            check_template(v, &cx.at(field), d);
        }
    }
    if let Some(Value::Object(creds)) = cx.state.get("Credentials") {
        check_template(&Value::Object(creds.clone()), &cx.at("Credentials"), d);
    }
}

pub(super) fn check_template(v: &Value, path: &str, d: &mut Diagnostics) {
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                if key.ends_with(".$") {
                    let ok = value.as_str().is_some_and(path_or_intrinsic_ok);
                    if !ok {
                        d.schema(
                            format!("The value for the field '{key}' must be a valid JSONPath or a valid intrinsic function call"),
                            path,
                        );
                    }
                } else if value.is_object() || value.is_array() {
                    check_template(value, &format!("{path}/{key}"), d);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_template(item, &format!("{path}[{i}]"), d);
            }
        }
        _ => {}
    }
}

fn is_expression(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        let t = s.trim();
        t.starts_with("{%") && t.ends_with("%}")
    })
}

/// An integer field: a JSON integer in range, or (JSONata) an expression.
fn check_int(
    cx: &StateCx<'_>,
    field: &str,
    min: i64,
    max: i64,
    d: &mut Diagnostics,
) -> Option<i64> {
    let v = cx.state.get(field)?;
    if cx.jsonata() && is_expression(v) {
        return None;
    }
    match v.as_i64() {
        Some(n) if (min..=max).contains(&n) => Some(n),
        Some(_) if min > 0 && v.as_i64().is_some_and(|n| n < min) => {
            d.schema(
                format!("The value for the field '{field}' must be greater than or equal to {min}"),
                &cx.at(field),
            );
            None
        }
        Some(_) => {
            d.schema(
                format!("The value for the field '{field}' must be between {min} and {max}"),
                &cx.at(field),
            );
            None
        }
        None => {
            d.schema(
                format!("The value for the field '{field}' must be an INTEGER"),
                &cx.at(field),
            );
            None
        }
    }
}

fn exclusive(cx: &StateCx<'_>, a: &str, b: &str, d: &mut Diagnostics) {
    if cx.state.contains_key(a) && cx.state.contains_key(b) {
        d.schema(
            format!("Only one of these fields is allowed: [{a}, {b}]"),
            &cx.path,
        );
    }
}

fn check_task(cx: &StateCx<'_>, d: &mut Diagnostics) {
    match cx.state.get("Resource") {
        None => d.schema("These fields are required: [Resource]", &cx.path),
        Some(Value::String(r)) => resource::check(r, &cx.at("Resource"), cx.machine_type, d),
        Some(_) => expect_string(cx, "Resource", &Value::Null, d),
    }
    exclusive(cx, "TimeoutSeconds", "TimeoutSecondsPath", d);
    exclusive(cx, "HeartbeatSeconds", "HeartbeatSecondsPath", d);
    let timeout = check_int(cx, "TimeoutSeconds", 1, 99_999_999, d);
    let heartbeat = check_int(cx, "HeartbeatSeconds", 1, 99_999_999, d);
    if let (Some(t), Some(h)) = (timeout, heartbeat) {
        if h >= t {
            d.schema(
                "HeartbeatSeconds must be smaller than TimeoutSeconds",
                &cx.at("HeartbeatSeconds"),
            );
        }
    }
    if let Some(creds) = cx.state.get("Credentials") {
        let has_role = creds.as_object().is_some_and(|c| {
            c.contains_key("RoleArn")
                || c.contains_key("RoleArn.$")
                || c.contains_key("RoleArnPath")
        });
        if !has_role {
            d.schema(
                "The field 'RoleArn' is required but was missing",
                &cx.at("Credentials"),
            );
        }
    }
}

fn check_wait(cx: &StateCx<'_>, d: &mut Diagnostics) {
    let given: Vec<&str> = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"]
        .into_iter()
        .filter(|f| cx.state.contains_key(*f))
        .collect();
    if given.len() != 1 {
        d.schema("Exactly one of these fields is required: [Seconds, Timestamp, SecondsPath, TimestampPath]", &cx.path);
    }
    check_int(cx, "Seconds", 0, 99_999_999, d);
    if let Some(ts) = cx.state.get("Timestamp") {
        let ok = (cx.jsonata() && is_expression(ts)) || ts.as_str().is_some_and(is_rfc3339);
        if !ok {
            d.schema(
                "String does not match RFC3339 timestamp",
                &cx.at("Timestamp"),
            );
        }
    }
}

fn check_fail(cx: &StateCx<'_>, d: &mut Diagnostics) {
    exclusive(cx, "Error", "ErrorPath", d);
    exclusive(cx, "Cause", "CausePath", d);
    for field in ["Error", "Cause"] {
        if let Some(v) = cx.state.get(field) {
            expect_string(cx, field, v, d);
        }
    }
    if cx.jsonata() {
        return;
    }
    for field in ["ErrorPath", "CausePath"] {
        if let Some(v) = cx.state.get(field) {
            if !v.as_str().is_some_and(path_or_intrinsic_ok) {
                d.schema(
                    format!("The value for the field '{field}' must be a valid JSONPath or a valid intrinsic function call"),
                    &cx.at(field),
                );
            }
        }
    }
}

fn check_map(cx: &StateCx<'_>, d: &mut Diagnostics) {
    let processor = match (cx.state.get("ItemProcessor"), cx.state.get("Iterator")) {
        (None, None) => {
            d.schema("These fields are required: [ItemProcessor]", &cx.path);
            None
        }
        (Some(_), Some(_)) => {
            d.schema(
                "Only one of these fields is allowed: [ItemProcessor, Iterator]",
                &cx.path,
            );
            None
        }
        (Some(p), None) => Some(("ItemProcessor", p)),
        (None, Some(p)) => Some(("Iterator", p)),
    };
    if let Some((field, Value::Object(p))) = processor {
        if let Some(config) = p.get("ProcessorConfig") {
            let base = cx.at(&format!("{field}/ProcessorConfig"));
            match config.as_object() {
                Some(config) => {
                    if let Some(mode) = config.get("Mode") {
                        if !matches!(mode.as_str(), Some("INLINE" | "DISTRIBUTED")) {
                            d.schema("The field 'Mode' should have one of these values: [INLINE, DISTRIBUTED]", &format!("{base}/Mode"));
                        }
                    }
                    if let Some(et) = config.get("ExecutionType") {
                        if !matches!(et.as_str(), Some("STANDARD" | "EXPRESS")) {
                            d.schema(
                                "The field 'ExecutionType' should have one of these values: [STANDARD, EXPRESS]",
                                &format!("{base}/ExecutionType"),
                            );
                        }
                    }
                }
                None => d.schema(
                    "The value for the field 'ProcessorConfig' must be an OBJECT",
                    &base,
                ),
            }
        }
    }
    exclusive(cx, "ItemsPath", "Items", d);
    exclusive(cx, "ItemSelector", "Parameters", d);
    exclusive(cx, "MaxConcurrency", "MaxConcurrencyPath", d);
    exclusive(cx, "ToleratedFailureCount", "ToleratedFailureCountPath", d);
    exclusive(
        cx,
        "ToleratedFailurePercentage",
        "ToleratedFailurePercentagePath",
        d,
    );
    check_int(cx, "MaxConcurrency", 0, i64::MAX, d);
    check_int(cx, "ToleratedFailureCount", 0, i64::MAX, d);
    if let Some(v) = cx.state.get("ToleratedFailurePercentage") {
        let ok = (cx.jsonata() && is_expression(v))
            || v.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p));
        if !ok {
            d.schema(
                "The value for the field 'ToleratedFailurePercentage' must be between 0 and 100",
                &cx.at("ToleratedFailurePercentage"),
            );
        }
    }
}

fn check_retry_catch(cx: &StateCx<'_>, d: &mut Diagnostics) {
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
                        Some(_) => d.schema(
                            "The value for the field 'ResultPath' must be a valid ReferencePath",
                            &format!("{at}/ResultPath"),
                        ),
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
    let int_at_least = |field: &str, min: i64, d: &mut Diagnostics| {
        if let Some(v) = obj.get(field) {
            match v.as_i64() {
                Some(n) if n >= min => {}
                Some(_) => d.schema(
                    format!(
                        "The value for the field '{field}' must be greater than or equal to {min}"
                    ),
                    &format!("{at}/{field}"),
                ),
                None => d.schema(
                    format!("The value for the field '{field}' must be an INTEGER"),
                    &format!("{at}/{field}"),
                ),
            }
        }
    };
    int_at_least("IntervalSeconds", 1, d);
    int_at_least("MaxAttempts", 0, d);
    int_at_least("MaxDelaySeconds", 1, d);
    if let Some(v) = obj.get("BackoffRate") {
        if !v.as_f64().is_some_and(|r| r >= 1.0) {
            d.schema(
                "The value for the field 'BackoffRate' must be greater than or equal to 1.0",
                &format!("{at}/BackoffRate"),
            );
        }
    }
    if let Some(v) = obj.get("JitterStrategy") {
        if !matches!(v.as_str(), Some("FULL" | "NONE")) {
            d.schema(
                "The field 'JitterStrategy' should have one of these values: [FULL, NONE]",
                &format!("{at}/JitterStrategy"),
            );
        }
    }
}

fn check_choice(cx: &StateCx<'_>, d: &mut Diagnostics) {
    if let Some(v) = cx.state.get("Default") {
        expect_string(cx, "Default", v, d);
    }
    let Some(choices) = cx.state.get("Choices") else {
        d.schema("These fields are required: [Choices]", &cx.path);
        return;
    };
    let Some(rules) = choices.as_array() else {
        d.schema(
            "The value for the field 'Choices' must be an ARRAY",
            &cx.at("Choices"),
        );
        return;
    };
    if rules.is_empty() {
        d.schema("Value cannot be empty", &cx.at("Choices"));
    }
    for (i, rule) in rules.iter().enumerate() {
        let at = cx.at(&format!("Choices[{i}]"));
        let Some(obj) = rule.as_object() else {
            d.schema("The value must be an OBJECT", &at);
            continue;
        };
        if !obj.contains_key("Next") {
            d.schema("These fields are required: [Next]", &at);
        }
        if cx.jsonata() {
            for key in obj.keys() {
                if !matches!(
                    key.as_str(),
                    "Condition" | "Next" | "Assign" | "Output" | "Comment"
                ) {
                    d.schema(format!("Field '{key}' is not supported"), &at);
                }
            }
            if !obj.contains_key("Condition") {
                d.schema("These fields are required: [Condition]", &at);
            }
        } else {
            if obj.contains_key("Condition") {
                d.schema(
                    "The QueryLanguage is set to 'JSONPath', but field 'Condition' is only supported for the 'JSONata' QueryLanguage",
                    &at,
                );
            }
            check_rule(obj, &at, true, d);
        }
    }
}

/// A JSONPath Choice Rule: a boolean combination, or `Variable` with one comparison.
fn check_rule(rule: &Map<String, Value>, at: &str, top: bool, d: &mut Diagnostics) {
    let allowed_extra: &[&str] = if top {
        &["Next", "Assign", "Comment"]
    } else {
        &["Comment"]
    };
    let combinators: Vec<&str> = ["And", "Or", "Not"]
        .into_iter()
        .filter(|k| rule.contains_key(*k))
        .collect();
    let operators: Vec<&str> = COMPARISON_OPERATORS
        .iter()
        .copied()
        .filter(|k| rule.contains_key(*k))
        .collect();
    for key in rule.keys() {
        let k = key.as_str();
        if !(allowed_extra.contains(&k)
            || k == "Variable"
            || k == "Condition"
            || combinators.contains(&k)
            || operators.contains(&k))
        {
            d.schema(format!("Field '{key}' is not supported"), at);
        }
    }
    if !top && rule.contains_key("Next") {
        d.schema("Field 'Next' is not supported", at);
    }
    match (combinators.as_slice(), operators.len()) {
        ([], 0) => d.schema(
            "A Choice Rule must contain exactly one comparison operator or one of [And, Or, Not]",
            at,
        ),
        ([], 1) => {
            match rule.get("Variable") {
                None => d.schema("These fields are required: [Variable]", at),
                Some(Value::String(p)) if path_ok(p, false) => {}
                Some(_) => d.schema(
                    "The value for the field 'Variable' must be a valid JSONPath",
                    &format!("{at}/Variable"),
                ),
            }
            let op = operators[0];
            check_operand(op, &rule[op], &format!("{at}/{op}"), d);
        }
        ([], _) => d.schema(
            format!(
                "Only one of these fields is allowed: [{}]",
                operators.join(", ")
            ),
            at,
        ),
        ([c], 0) => {
            if rule.contains_key("Variable") {
                d.schema("Field 'Variable' is not supported", at);
            }
            let inner = format!("{at}/{c}");
            match (&rule[*c], *c) {
                (Value::Object(o), "Not") => check_rule(o, &inner, false, d),
                (Value::Array(items), "And" | "Or") if !items.is_empty() => {
                    for (i, item) in items.iter().enumerate() {
                        match item.as_object() {
                            Some(o) => check_rule(o, &format!("{inner}[{i}]"), false, d),
                            None => {
                                d.schema("The value must be an OBJECT", &format!("{inner}[{i}]"))
                            }
                        }
                    }
                }
                (Value::Array(_), "And" | "Or") => d.schema("Value cannot be empty", &inner),
                (_, "Not") => d.schema("The value for the field 'Not' must be an OBJECT", &inner),
                _ => d.schema(
                    format!("The value for the field '{c}' must be an ARRAY"),
                    &inner,
                ),
            }
        }
        _ => {
            let mut all: Vec<&str> = combinators.clone();
            all.extend(&operators);
            d.schema(
                format!("Only one of these fields is allowed: [{}]", all.join(", ")),
                at,
            );
        }
    }
}

fn check_operand(op: &str, v: &Value, at: &str, d: &mut Diagnostics) {
    if op.ends_with("Path") {
        if !v.as_str().is_some_and(|p| path_ok(p, false)) {
            d.schema(
                format!("The value for the field '{op}' must be a valid JSONPath"),
                at,
            );
        }
        return;
    }
    let ok = if op.starts_with("Is") || op == "BooleanEquals" {
        v.is_boolean()
    } else if op.starts_with("Numeric") {
        v.is_number()
    } else if op.starts_with("Timestamp") {
        v.as_str().is_some_and(is_rfc3339)
    } else {
        v.is_string()
    };
    if !ok {
        let what = if op.starts_with("Timestamp") {
            "String does not match RFC3339 timestamp".to_owned()
        } else {
            let kind = if op.starts_with("Is") || op == "BooleanEquals" {
                "BOOLEAN"
            } else if op.starts_with("Numeric") {
                "NUMBER"
            } else {
                "STRING"
            };
            format!("The value for the field '{op}' must be a {kind}")
        };
        d.schema(what, at);
    }
}
