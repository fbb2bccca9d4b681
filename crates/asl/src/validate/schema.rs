//! Per-state rules: which fields each state type accepts, their types and ranges, the
//! JSONPath/JSONata split, payload templates, Retry/Catch, Choice rules, Wait and Map settings.
//! Everything here reports `SCHEMA_VALIDATION_FAILED`.

use serde_json::{Map, Value};

use super::text::is_rfc3339;
use super::{Diagnostics, MachineType, QueryLanguage, choice, guarded, resource, retry};

pub(super) const STATE_TYPES: &str = "[Task, Wait, Pass, Succeed, Fail, Choice, Parallel, Map]";

const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];

/// Fields each state type accepts besides [`COMMON`], in either query language.
#[rustfmt::skip]
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
#[rustfmt::skip]
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

/// One state at `path` (`/States/<name>`, or nested under a branch or item processor).
pub(super) struct StateCx<'a> {
    pub path: String,
    pub state: &'a Map<String, Value>,
    pub ql: QueryLanguage,
    pub machine_type: MachineType,
}

impl StateCx<'_> {
    pub(super) fn at(&self, field: &str) -> String {
        format!("{}/{field}", self.path)
    }

    pub(super) fn jsonata(&self) -> bool {
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
        "Choice" => choice::check_choice(cx, d),
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
        retry::check_retry_catch(cx, d);
    }
}

pub(super) fn expect_string(cx: &StateCx<'_>, field: &str, v: &Value, d: &mut Diagnostics) {
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

pub(super) fn path_ok(p: &str, reference: bool) -> bool {
    p.starts_with('$') && guarded(|| crate::jsonpath::check(p, reference).is_ok())
}

pub(super) fn path_or_intrinsic_ok(p: &str) -> bool {
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

pub(super) fn is_expression(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        let t = s.trim();
        t.starts_with("{%") && t.ends_with("%}")
    })
}

/// An integer field: a JSON integer in range, or (JSONata) an expression.
pub(super) fn check_int(
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

pub(super) fn exclusive(cx: &StateCx<'_>, a: &str, b: &str, d: &mut Diagnostics) {
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
        Some(Value::String(r)) => {
            resource::check(r, &cx.at("Resource"), cx.machine_type, d);
            for field in ["Parameters", "Arguments"] {
                if let Some(p) = cx.state.get(field) {
                    resource::check_parameters(r, p, &cx.at(field), d);
                }
            }
        }
        Some(_) => expect_string(cx, "Resource", &Value::Null, d),
    }
    exclusive(cx, "TimeoutSeconds", "TimeoutSecondsPath", d);
    exclusive(cx, "HeartbeatSeconds", "HeartbeatSecondsPath", d);
    let timeout = check_int(cx, "TimeoutSeconds", 1, 99_999_999, d);
    let heartbeat = check_int(cx, "HeartbeatSeconds", 1, 99_999_999, d);
    if let (Some(t), Some(h)) = (timeout, heartbeat)
        && h >= t
    {
        d.schema(
            "HeartbeatSeconds must be smaller than TimeoutSeconds",
            &cx.at("HeartbeatSeconds"),
        );
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
        if let Some(v) = cx.state.get(field)
            && !v.as_str().is_some_and(path_or_intrinsic_ok)
        {
            d.schema(
                    format!("The value for the field '{field}' must be a valid JSONPath or a valid intrinsic function call"),
                    &cx.at(field),
                );
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
    if let Some((field, Value::Object(p))) = processor
        && let Some(config) = p.get("ProcessorConfig")
    {
        let base = cx.at(&format!("{field}/ProcessorConfig"));
        match config.as_object() {
            Some(config) => {
                if let Some(mode) = config.get("Mode")
                    && !matches!(mode.as_str(), Some("INLINE" | "DISTRIBUTED"))
                {
                    d.schema(
                        "The field 'Mode' should have one of these values: [INLINE, DISTRIBUTED]",
                        &format!("{base}/Mode"),
                    );
                }
                if let Some(et) = config.get("ExecutionType")
                    && !matches!(et.as_str(), Some("STANDARD" | "EXPRESS"))
                {
                    d.schema(
                                "The field 'ExecutionType' should have one of these values: [STANDARD, EXPRESS]",
                                &format!("{base}/ExecutionType"),
                            );
                }
            }
            None => d.schema(
                "The value for the field 'ProcessorConfig' must be an OBJECT",
                &base,
            ),
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
