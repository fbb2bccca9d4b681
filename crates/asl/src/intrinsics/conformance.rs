//! The recorded AWS cases whose machine is made of JSONPath Pass states (InputPath, Parameters
//! or Result, ResultPath, OutputPath, Assign), run through `jsonpath` and `intrinsics` alone and
//! compared with AWS's output or error as the conformance README says. The interpreter's suite runs
//! every case; this one pins down paths and intrinsics before an interpreter exists.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::env::{FixedHost, Scope};
use crate::error::Failure;
use crate::jsonpath;

/// Cases passing when this floor was set; a change that lowers the count fails the test.
const FLOOR: usize = 177;

const STATE_MACHINE: &str = "statemachine_1";
const EXECUTION: &str = "ex1";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "111111111111";
const ROLE_ARN: &str = "arn:aws:iam::111111111111:role/capture-sfn-role";
const NOW: &str = "2026-11-25T15:55:44.123Z";

fn cases_dir() -> Option<PathBuf> {
    let candidates = match std::env::var_os("AGENTRY_CONFORMANCE_DIR") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/asl-conformance/cases"
            )),
            PathBuf::from("/work/shared/asl-conformance/cases"),
        ],
    };
    candidates.into_iter().find(|d| d.is_dir())
}

/// The definition of a case whose machine is made of JSONPath Pass states only, when this test
/// can run it (the service's own errors, API and payload size, are left out). A TestState
/// case's single Pass state becomes a machine of that one state.
fn pass_machine(case: &Value) -> Option<Value> {
    let expected = &case["expected"];
    if expected["status"] == "API_ERROR" || expected["error"] == "States.DataLimitExceeded" {
        return None;
    }
    let definition = match case["api"].as_str() {
        Some("StartExecution" | "StartSyncExecution") => case["definition"].clone(),
        Some("TestState") if case["test_state_params"]["mock"].is_null() => {
            json!({"StartAt": "State", "States": {"State": case["definition"]}})
        }
        _ => return None,
    };
    pass_states(&definition)?;
    Some(definition)
}

fn pass_states(definition: &Value) -> Option<&Map<String, Value>> {
    if definition["QueryLanguage"] == "JSONata" {
        return None;
    }
    let allowed = [
        "Type",
        "Next",
        "End",
        "Comment",
        "Parameters",
        "Result",
        "ResultPath",
        "InputPath",
        "OutputPath",
        "Assign",
    ];
    let states = definition["States"].as_object()?;
    states
        .values()
        .all(|s| {
            s["Type"] == "Pass"
                && s.as_object()
                    .is_some_and(|s| s.keys().all(|k| allowed.contains(&k.as_str())))
        })
        .then_some(states)
}

/// The context object AWS gives a Pass state (express executions have no RedriveCount and an
/// `express:` execution ARN).
fn context(input: &Value, state_name: &str, express: bool) -> Value {
    let mut ctx = json!({
        "Execution": {
            "Id": format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:{STATE_MACHINE}:{EXECUTION}"),
            "Input": input,
            "StartTime": NOW,
            "Name": EXECUTION,
            "RoleArn": ROLE_ARN,
            "RedriveCount": 0,
        },
        "StateMachine": {
            "Id": format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STATE_MACHINE}"),
            "Name": STATE_MACHINE,
        },
        "State": { "Name": state_name, "EnteredTime": NOW },
    });
    if express {
        let execution = ctx["Execution"].as_object_mut().unwrap();
        execution.remove("RedriveCount");
        execution.insert(
            "Id".into(),
            json!(format!(
                "arn:aws:states:{REGION}:{ACCOUNT}:express:{STATE_MACHINE}:{EXECUTION}:7c5b3e1e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
            )),
        );
    }
    ctx
}

/// Runs one Pass state as AWS does: InputPath, Parameters (or Result), ResultPath and
/// OutputPath; `Assign` reads the state's result and the variables as they were before the
/// state, and its values are visible from the next state on.
fn run_pass(
    state: &Map<String, Value>,
    input: &Value,
    context: &Value,
    vars: &mut Map<String, Value>,
    host: &mut FixedHost,
) -> Result<Value, Failure> {
    let path_field = |name: &str| match state.get(name) {
        None => Some("$"),
        Some(v) => v.as_str(),
    };
    let effective = jsonpath::select(
        path_field("InputPath"),
        &Scope {
            input,
            context,
            vars,
        },
    )?;
    // With both, AWS takes Result (recorded TestState cases).
    let result = match (state.get("Result"), state.get("Parameters")) {
        (Some(result), _) => result.clone(),
        (None, Some(params)) => jsonpath::eval_payload(
            params,
            &Scope {
                input: &effective,
                context,
                vars,
            },
            host,
        )?,
        (None, None) => effective.clone(),
    };
    let assigned = match state.get("Assign") {
        Some(assign) => jsonpath::eval_payload(
            assign,
            &Scope {
                input: &result,
                context,
                vars,
            },
            host,
        )?,
        None => json!({}),
    };
    let output = jsonpath::apply_result_path(input, state.get("ResultPath"), result)?;
    let output = jsonpath::select(
        path_field("OutputPath"),
        &Scope {
            input: &output,
            context,
            vars,
        },
    )?;
    if let Value::Object(assigned) = assigned {
        vars.extend(assigned);
    }
    Ok(output)
}

/// Runs a machine of Pass states from StartAt; on failure, the failing state's name.
fn run_machine(
    definition: &Value,
    express: bool,
    states: &Map<String, Value>,
    input: &Value,
) -> Result<Value, (String, Failure)> {
    let mut vars = Map::new();
    let mut host = FixedHost::new(0, 7);
    let mut name = definition["StartAt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut value = input.clone();
    for _ in 0..100 {
        let state = states[&name].as_object().expect("a state is an object");
        let ctx = context(input, &name, express);
        value =
            run_pass(state, &value, &ctx, &mut vars, &mut host).map_err(|f| (name.clone(), f))?;
        match state.get("Next").and_then(Value::as_str) {
            Some(next) => name = next.to_string(),
            None => break,
        }
    }
    Ok(value)
}

#[test]
fn recorded_pass_state_machines() {
    let Some(dir) = cases_dir() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "conformance cases not found (AGENTRY_CONFORMANCE_DIR)"
        );
        eprintln!("conformance cases not found: set AGENTRY_CONFORMANCE_DIR; skipped");
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let (mut passed, mut single_passed, mut single_total, mut failed) = (0, 0, 0, Vec::new());
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
    {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let Some(definition) = pass_machine(&case) else {
            continue;
        };
        let states = pass_states(&definition).expect("checked by pass_machine");
        let single = states.len() == 1 && states.values().all(|s| s.get("Assign").is_none());
        let input = match (&case["input"], &case["input_raw"]) {
            (Value::Null, Value::Null) => json!({}),
            (input, _) => input.clone(),
        };
        let express = case["state_machine_type"] == "EXPRESS";
        let outcome = run_machine(&definition, express, states, &input);
        let mut cmp = Comparison::new(&case);
        let expected = &case["expected"];
        let ok = match &outcome {
            Ok(output) => {
                expected["status"] == "SUCCEEDED"
                    && cmp.matches(&expected["output"], &normalize(output))
            }
            Err((state_name, f)) => {
                let cause = f.cause.clone().unwrap_or_default();
                // Pass states run without Retry, so the failing state was entered at event 2,
                // 4, 6, ...: the location token of the recorded cause is compared loosely.
                let cause = if f.located {
                    format!(
                        "An error occurred while executing the state '{state_name}' (entered at the event id #<n>). {cause}"
                    )
                } else {
                    cause
                };
                let expected_cause = expected["cause"].as_str().map(|c| {
                    let mut c = c.to_string();
                    if let (Some(at), Some(close)) = (c.find("event id #"), c.find("). ")) {
                        c.replace_range(at + "event id #".len()..close, "<n>");
                    }
                    Value::String(c)
                });
                expected["status"] == "FAILED"
                    && cmp.matches(&expected["error"], &Value::from(f.error_name()))
                    && expected_cause
                        .is_some_and(|e| cmp.matches(&e, &normalize(&Value::String(cause))))
            }
        };
        single_total += usize::from(single);
        if ok {
            passed += 1;
            single_passed += usize::from(single);
        } else {
            let got: String = format!("{outcome:?}").chars().take(300).collect();
            failed.push(format!(
                "{}: got {got}",
                case["name"].as_str().unwrap_or("?")
            ));
        }
    }
    println!(
        "Pass-state machines: {passed}/{} passed ({single_passed}/{single_total} with a single state and no Assign)",
        passed + failed.len()
    );
    for f in &failed {
        println!("  FAILED {f}");
    }
    assert!(
        passed >= FLOOR,
        "{passed} cases passed, fewer than the floor of {FLOOR}"
    );
}

/// The rewrites the recorded responses went through, applied to our output.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, x)| {
                    let timestamp = k.to_ascii_lowercase().contains("timestamp");
                    let x = if timestamp
                        && x.as_str()
                            .is_none_or(|s| iso_date_len(s.as_bytes()).is_none())
                    {
                        Value::from("timestamp")
                    } else {
                        normalize(x)
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::String(s) => {
            let s = s
                .replace(REGION, "<region>")
                .replace("arn:aws:", "arn:<partition>:");
            Value::String(replace_iso_dates(&s))
        }
        other => other.clone(),
    }
}

fn replace_iso_dates(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(len) = iso_date_len(&bytes[i..]) {
            out.push_str("date");
            i += len;
        } else {
            let c = s[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Length of an ISO-8601 date-time (`2026-11-25T15:55:44.123Z`) at the start of `b`.
fn iso_date_len(b: &[u8]) -> Option<usize> {
    let digits =
        |at: usize, n: usize| b.len() >= at + n && b[at..at + n].iter().all(u8::is_ascii_digit);
    let shape = digits(0, 4)
        && b.get(4) == Some(&b'-')
        && digits(5, 2)
        && b.get(7) == Some(&b'-')
        && digits(8, 2)
        && b.get(10) == Some(&b'T')
        && digits(11, 2)
        && b.get(13) == Some(&b':')
        && digits(14, 2)
        && b.get(16) == Some(&b':')
        && digits(17, 2);
    if !shape {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    match b.get(i) {
        Some(b'Z') => Some(i + 1),
        Some(b'+' | b'-') if digits(i + 1, 2) => {
            let mut j = i + 3;
            if b.get(j) == Some(&b':') {
                j += 1;
            }
            Some(if digits(j, 2) { j + 2 } else { i + 3 })
        }
        _ => None,
    }
}

/// Placeholder-aware comparison (compare.py's `matches`): `<...>` tokens match any non-empty
/// text, the same token the same text throughout a case.
struct Comparison {
    bindings: HashMap<String, String>,
    /// Words a regex transformer put in place of text: they match any text.
    substrings: Vec<String>,
    /// Words a value transformer put in place of a whole value: they match any value.
    whole: Vec<String>,
}

impl Comparison {
    fn new(case: &Value) -> Self {
        let (mut substrings, mut whole) = (Vec::new(), Vec::new());
        for t in case["snapshot_transformers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(r) = t["replacement"].as_str() else {
                continue;
            };
            if r.is_empty() || (r.starts_with('<') && r.ends_with('>')) {
                continue;
            }
            if t["type"] == "regex" {
                substrings.push(r.to_string());
            } else if t["reference"] == false {
                whole.push(r.to_string());
            }
        }
        substrings.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self {
            bindings: HashMap::new(),
            substrings,
            whole,
        }
    }

    fn matches(&mut self, exp: &Value, act: &Value) -> bool {
        if exp
            .as_str()
            .is_some_and(|s| self.whole.iter().any(|w| w == s))
        {
            return true;
        }
        match (exp, act) {
            (Value::Object(e), Value::Object(a)) => {
                e.len() == a.len()
                    && e.iter()
                        .all(|(k, x)| a.get(k).is_some_and(|y| self.matches(x, y)))
            }
            (Value::Array(e), Value::Array(a)) => {
                e.len() == a.len() && e.iter().zip(a).all(|(x, y)| self.matches(x, y))
            }
            (Value::Number(_), Value::Number(_)) => jsonpath::json_eq(exp, act),
            (Value::String(e), Value::String(a)) => e == a || self.str_matches(e, a),
            _ => exp == act,
        }
    }

    fn str_matches(&mut self, exp: &str, act: &str) -> bool {
        let mut exp = exp.to_string();
        for (i, lit) in self.substrings.iter().enumerate() {
            exp = exp.replace(lit.as_str(), &format!("<__literal_{i}__>"));
        }
        let parts = split_tokens(&exp);
        if parts.len() == 1 {
            return false;
        }
        let mut bindings = self.bindings.clone();
        if match_parts(&parts, act, &mut bindings) {
            self.bindings = bindings;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
enum Part {
    Text(String),
    Token(String),
}

/// Splits an expected string into literal text and `<...>` tokens.
fn split_tokens(s: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let token_len = rest[open + 1..].find('>').filter(|&n| {
            n > 0
                && rest[open + 1..open + 1 + n]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.:/ ".contains(c))
        });
        match token_len {
            Some(n) => {
                parts.push(Part::Text(std::mem::take(&mut text)));
                parts.push(Part::Token(rest[open..open + n + 2].to_string()));
                rest = &rest[open + n + 2..];
            }
            None => {
                text.push('<');
                rest = &rest[open + 1..];
            }
        }
    }
    text.push_str(rest);
    parts.push(Part::Text(text));
    parts
}

fn match_parts(parts: &[Part], act: &str, bindings: &mut HashMap<String, String>) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return act.is_empty();
    };
    match first {
        Part::Text(t) => act
            .strip_prefix(t.as_str())
            .is_some_and(|a| match_parts(rest, a, bindings)),
        Part::Token(tok) => {
            if let Some(bound) = bindings.get(tok).cloned() {
                return act
                    .strip_prefix(bound.as_str())
                    .is_some_and(|a| match_parts(rest, a, bindings));
            }
            for (end, _) in act
                .char_indices()
                .skip(1)
                .chain(std::iter::once((act.len(), ' ')))
            {
                let mut trial = bindings.clone();
                trial.insert(tok.clone(), act[..end].to_string());
                if match_parts(rest, &act[end..], &mut trial) {
                    *bindings = trial;
                    return true;
                }
            }
            false
        }
    }
}

/// Every path and intrinsic call in a definition AWS accepted must pass `check`, and the
/// `.$` values of the definitions AWS refused for them must not.
#[test]
fn recorded_paths_and_calls_pass_check() {
    let Some(dir) = cases_dir() else {
        eprintln!("conformance cases not found: set AGENTRY_CONFORMANCE_DIR; skipped");
        return;
    };
    let (mut checked, mut wrong) = (0, Vec::new());
    for file in std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
    {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Ok(case) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let refused = case["expected"]["status"] == "API_ERROR";
        let refused_for_expression = refused
            && case["expected"]["cause"].as_str().is_some_and(|c| {
                c.contains("must be a valid JSONPath or a valid intrinsic function call")
            });
        if refused && !refused_for_expression {
            continue;
        }
        let jsonata = case["definition"]["QueryLanguage"] == "JSONata";
        let mut found = Vec::new();
        collect_expressions(&case["definition"], jsonata, &mut found);
        for (expr, reference) in found {
            checked += 1;
            let verdict = if crate::intrinsics::is_call(&expr) {
                crate::intrinsics::check(&expr)
            } else {
                jsonpath::check(&expr, reference)
            };
            if verdict.is_ok() == refused_for_expression {
                wrong.push(format!(
                    "{}: {expr}: {verdict:?}",
                    case["name"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    println!("{checked} recorded paths and calls checked");
    assert!(
        wrong.is_empty(),
        "check disagrees with AWS on:\n{}",
        wrong.join("\n")
    );
}

/// Paths (with whether they must be reference paths) and `.$` values in JSONPath states.
fn collect_expressions(v: &Value, jsonata: bool, out: &mut Vec<(String, bool)>) {
    const REFERENCE: [&str; 11] = [
        "ResultPath",
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
    ];
    match v {
        Value::Object(map) => {
            let jsonata = match map.get("QueryLanguage").and_then(Value::as_str) {
                Some(lang) => lang == "JSONata",
                None => jsonata,
            };
            for (k, x) in map {
                match (jsonata, x.as_str()) {
                    (false, Some(s)) if REFERENCE.contains(&k.as_str()) => {
                        out.push((s.to_string(), !crate::intrinsics::is_call(s)))
                    }
                    // `.$` values, InputPath/OutputPath, Choice's Variable and `...Path` comparators.
                    (false, Some(s))
                        if k.ends_with(".$") || k.ends_with("Path") || k == "Variable" =>
                    {
                        out.push((s.to_string(), false))
                    }
                    _ => {}
                }
                if k != "Result" {
                    collect_expressions(x, jsonata, out);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|x| collect_expressions(x, jsonata, out)),
        _ => {}
    }
}
