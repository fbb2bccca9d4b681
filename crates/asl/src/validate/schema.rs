//! Per-state rules: which fields each state type accepts, their types and ranges, the
//! JSONPath/JSONata split, payload templates, Retry/Catch, Choice rules, Wait and Map settings.
//! Everything here reports `SCHEMA_VALIDATION_FAILED`.

use serde_json::{Map, Value};

use super::text::is_rfc3339;
use super::{Diagnostics, MachineType, QueryLanguage, choice, jsonata_refs, resource, retry};

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

    if cx.jsonata() {
        for (key, value) in state {
            // Structural fields and nested states are not expressions (nested states are
            // checked on their own).
            let structural = matches!(
                key.as_str(),
                "Type"
                    | "Comment"
                    | "QueryLanguage"
                    | "Resource"
                    | "Label"
                    | "ItemProcessor"
                    | "Iterator"
                    | "Branches"
            );
            if !structural {
                jsonata_refs::check_value(value, &cx.at(key), d);
            }
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
    if end.is_some_and(|v| !v.is_boolean()) {
        d.schema(
            "The value for the field 'End' must be a BOOLEAN",
            &cx.at("End"),
        );
    }
    let ends = end == Some(&Value::Bool(true));
    match (next.is_some(), ends) {
        (true, true) => exclusive(cx.state, &["Next", "End"], &cx.path, d),
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
            Some(_) => d.schema(not_a_path(reference), &cx.at(field)),
        }
    }
}

/// AWS's words for a value that is not a path of the required kind.
pub(super) fn not_a_path(reference: bool) -> &'static str {
    if reference {
        "Value is not a Reference Path"
    } else {
        "Value is not a JSONPath"
    }
}

pub(super) fn path_ok(p: &str, reference: bool) -> bool {
    p.starts_with('$') && crate::jsonpath::check(p, reference).is_ok()
}

pub(super) fn path_or_intrinsic_ok(p: &str) -> bool {
    if crate::intrinsics::is_call(p) {
        crate::intrinsics::check(p).is_ok()
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
    if let Some(creds) = cx.state.get("Credentials").filter(|c| c.is_object()) {
        check_template(creds, &cx.at("Credentials"), d);
    }
    for (outer, inner) in [
        ("ItemReader", "Parameters"),
        ("ResultWriter", "Parameters"),
        ("ItemBatcher", "BatchInput"),
    ] {
        if let Some(v) = cx.state.get(outer).and_then(|o| o.get(inner)) {
            check_template(v, &cx.at(&format!("{outer}/{inner}")), d);
        }
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
    v.as_str().and_then(jsonata_refs::expression_body).is_some()
}

/// A numeric field: a JSON number within AWS's bounds (an integer where `integer`), or in a
/// JSONata state an expression. Returns the value when it is a literal in range.
pub(super) fn check_number(
    cx: &StateCx<'_>,
    field: &str,
    bounds: Bounds,
    d: &mut Diagnostics,
) -> Option<f64> {
    let v = cx.state.get(field)?;
    if cx.jsonata() && is_expression(v) {
        return None;
    }
    check_bounds(v, &cx.at(field), bounds, d)
}

/// Inclusive bounds of a numeric field; AWS prints integer bounds as integers and decimal
/// bounds with a fraction ("Minimum value is 0.0").
#[derive(Clone, Copy)]
pub(super) struct Bounds {
    pub min: f64,
    pub max: Option<f64>,
    pub integer: bool,
}

impl Bounds {
    pub const fn int(min: i64, max: Option<i64>) -> Self {
        Self {
            min: min as f64,
            max: match max {
                Some(m) => Some(m as f64),
                None => None,
            },
            integer: true,
        }
    }

    pub const fn decimal(min: f64, max: Option<f64>) -> Self {
        Self {
            min,
            max,
            integer: false,
        }
    }

    fn show(&self, n: f64) -> String {
        if self.integer {
            format!("{}", n as i64)
        } else {
            format!("{n:.1}")
        }
    }
}

pub(super) fn check_bounds(
    v: &Value,
    at: &str,
    bounds: Bounds,
    d: &mut Diagnostics,
) -> Option<f64> {
    let n = if bounds.integer {
        v.as_i64().map(|n| n as f64)
    } else {
        v.as_f64()
    };
    let Some(n) = n else {
        let kind = if bounds.integer {
            "an integer"
        } else {
            "a number"
        };
        d.schema(format!("Value must be {kind}"), at);
        return None;
    };
    if n < bounds.min {
        d.schema(format!("Minimum value is {}", bounds.show(bounds.min)), at);
        return None;
    }
    if let Some(max) = bounds.max.filter(|m| n > *m) {
        d.schema(format!("Maximum value is {}", bounds.show(max)), at);
        return None;
    }
    Some(n)
}

/// Fields of which at most one may be given, as AWS words it.
pub(super) fn exclusive(obj: &Map<String, Value>, fields: &[&str], at: &str, d: &mut Diagnostics) {
    if fields.iter().filter(|f| obj.contains_key(**f)).count() > 1 {
        d.schema(
            format!(
                "There should only be one of the following fields: [{}]",
                fields.join(", ")
            ),
            at,
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
    exclusive(
        cx.state,
        &["TimeoutSeconds", "TimeoutSecondsPath"],
        &cx.path,
        d,
    );
    exclusive(
        cx.state,
        &["HeartbeatSeconds", "HeartbeatSecondsPath"],
        &cx.path,
        d,
    );
    let timeout = check_number(cx, "TimeoutSeconds", SECONDS_FROM_1, d);
    let heartbeat = check_number(cx, "HeartbeatSeconds", SECONDS_FROM_1, d);
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

const WAIT_FIELDS: [&str; 4] = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"];

/// `TimeoutSeconds`, `HeartbeatSeconds` and the machine's `TimeoutSeconds`.
pub(super) const SECONDS_FROM_1: Bounds = Bounds::int(1, Some(99_999_999));

fn check_wait(cx: &StateCx<'_>, d: &mut Diagnostics) {
    let given: Vec<&str> = WAIT_FIELDS
        .into_iter()
        .filter(|f| cx.state.contains_key(*f))
        .collect();
    match given.len() {
        0 => d.schema(
            format!("These fields are required: [{}]", WAIT_FIELDS.join(", ")),
            &cx.path,
        ),
        1 => {}
        _ => exclusive(cx.state, &WAIT_FIELDS, &cx.path, d),
    }
    check_number(cx, "Seconds", Bounds::int(0, Some(99_999_999)), d);
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
    exclusive(cx.state, &["Error", "ErrorPath"], &cx.path, d);
    exclusive(cx.state, &["Cause", "CausePath"], &cx.path, d);
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
            exclusive(cx.state, &["ItemProcessor", "Iterator"], &cx.path, d);
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
    let pairs = [
        ["ItemsPath", "Items"],
        ["ItemSelector", "Parameters"],
        ["MaxConcurrency", "MaxConcurrencyPath"],
        ["ToleratedFailureCount", "ToleratedFailureCountPath"],
        [
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
        ],
    ];
    for pair in pairs {
        exclusive(cx.state, &pair, &cx.path, d);
    }
    check_number(cx, "MaxConcurrency", Bounds::int(0, None), d);
    check_number(cx, "ToleratedFailureCount", Bounds::int(0, None), d);
    check_number(
        cx,
        "ToleratedFailurePercentage",
        Bounds::decimal(0.0, Some(100.0)),
        d,
    );
    // The numeric `...Path` fields read a number from the input: the context object is no
    // source for them (only `ItemsPath` may read it).
    if !cx.jsonata() {
        for field in [
            "MaxConcurrencyPath",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentagePath",
        ] {
            if cx
                .state
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|p| p.starts_with("$$"))
            {
                d.schema(not_a_path(true), &cx.at(field));
            }
        }
    }
    if let Some(batcher) = cx.state.get("ItemBatcher").and_then(Value::as_object) {
        let at = cx.at("ItemBatcher");
        check_numeric_config(
            cx,
            batcher,
            &at,
            &[
                ("MaxItemsPerBatch", None),
                ("MaxInputBytesPerBatch", Some(262_144)),
            ],
            d,
        );
    }
    if let Some(config) = cx
        .state
        .get("ItemReader")
        .and_then(|r| r.get("ReaderConfig"))
        .and_then(Value::as_object)
    {
        let at = cx.at("ItemReader/ReaderConfig");
        check_numeric_config(cx, config, &at, &[("MaxItems", Some(100_000_000))], d);
    }
}

/// Numeric settings of `ItemBatcher` and `ReaderConfig`: each a literal or its `...Path`.
fn check_numeric_config(
    cx: &StateCx<'_>,
    obj: &Map<String, Value>,
    at: &str,
    fields: &[(&str, Option<i64>)],
    d: &mut Diagnostics,
) {
    for (field, max) in fields {
        let path_field = format!("{field}Path");
        exclusive(obj, &[field, &path_field], at, d);
        if let Some(v) = obj.get(*field)
            && !(cx.jsonata() && is_expression(v))
        {
            check_bounds(v, &format!("{at}/{field}"), Bounds::int(0, *max), d);
        }
        match obj.get(&path_field) {
            Some(_) if cx.jsonata() => d.schema(
                format!(
                    "The QueryLanguage is set to 'JSONata', but field '{path_field}' is only supported for the 'JSONPath' QueryLanguage"
                ),
                at,
            ),
            Some(Value::String(p)) if !p.starts_with("$$") && path_ok(p, true) => {}
            Some(_) => d.schema(not_a_path(true), &format!("{at}/{path_field}")),
            None => {}
        }
    }
}
