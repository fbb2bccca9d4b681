//! The Choice state: its rules in JSONPath (`Variable` with one comparison operator, or a
//! boolean combination) and in JSONata (`Condition`).

use serde_json::{Map, Value};

use super::Diagnostics;
use super::schema::{StateCx, exclusive, expect_string, not_a_path, path_ok};
use super::text::is_rfc3339;

#[rustfmt::skip]
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

pub(super) fn check_choice(cx: &StateCx<'_>, d: &mut Diagnostics) {
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
                Some(_) => d.schema(not_a_path(false), &format!("{at}/Variable")),
            }
            let op = operators[0];
            check_operand(op, &rule[op], &format!("{at}/{op}"), d);
        }
        ([], _) => exclusive(rule, &operators, at, d),
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
            exclusive(rule, &all, at, d);
        }
    }
}

fn check_operand(op: &str, v: &Value, at: &str, d: &mut Diagnostics) {
    if op.ends_with("Path") {
        if !v.as_str().is_some_and(|p| path_ok(p, false)) {
            d.schema(not_a_path(false), at);
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
