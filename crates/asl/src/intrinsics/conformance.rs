//! The recorded AWS cases whose machine is one JSONPath Pass state (InputPath, Parameters or
//! Result, ResultPath, OutputPath), run through `jsonpath` and `intrinsics` alone and compared
//! with AWS's output or error as the conformance README says. The interpreter's suite runs
//! every case; this one pins down paths and intrinsics before an interpreter exists.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::env::{FixedHost, Scope};
use crate::error::Failure;
use crate::jsonpath;

/// Cases passing when this floor was set; a change that lowers the count fails the test.
const FLOOR: usize = 153;

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

/// The Pass state of a case, when the case is one this test can run.
fn single_pass_state(case: &Value) -> Option<(&str, &Map<String, Value>)> {
    if !matches!(
        case["api"].as_str(),
        Some("StartExecution" | "StartSyncExecution")
    ) {
        return None;
    }
    let definition = &case["definition"];
    let states = definition["States"].as_object()?;
    let (name, state) = states.iter().next().filter(|_| states.len() == 1)?;
    let state = state.as_object()?;
    let allowed = [
        "Type",
        "End",
        "Comment",
        "Parameters",
        "Result",
        "ResultPath",
        "InputPath",
        "OutputPath",
    ];
    let jsonata = definition.get("QueryLanguage").and_then(Value::as_str) == Some("JSONata");
    // API errors and payload size limits belong to the service, not to paths.
    let expected = &case["expected"];
    let service_level =
        expected["status"] == "API_ERROR" || expected["error"] == "States.DataLimitExceeded";
    (state.get("Type")?.as_str() == Some("Pass")
        && !jsonata
        && !service_level
        && state.keys().all(|k| allowed.contains(&k.as_str())))
    .then_some((name.as_str(), state))
}

fn context(input: &Value, state_name: &str) -> Value {
    json!({
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
    })
}

/// Runs the Pass state as AWS does: InputPath, Parameters (or Result), ResultPath, OutputPath.
fn run_pass(state: &Map<String, Value>, input: &Value, context: &Value) -> Result<Value, Failure> {
    let vars = Map::new();
    let mut host = FixedHost::new(0, 7);
    let path_field = |name: &str| match state.get(name) {
        None => Some("$"),
        Some(v) => v.as_str(),
    };
    let scope = Scope {
        input,
        context,
        vars: &vars,
    };
    let effective = jsonpath::select(path_field("InputPath"), &scope)?;
    let result = match (state.get("Parameters"), state.get("Result")) {
        (Some(params), _) => jsonpath::eval_payload(
            params,
            &Scope {
                input: &effective,
                context,
                vars: &vars,
            },
            &mut host,
        )?,
        (None, Some(result)) => result.clone(),
        (None, None) => effective.clone(),
    };
    let output = jsonpath::apply_result_path(input, state.get("ResultPath"), result)?;
    jsonpath::select(
        path_field("OutputPath"),
        &Scope {
            input: &output,
            context,
            vars: &vars,
        },
    )
}

#[test]
fn recorded_single_pass_state_cases() {
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
    let (mut passed, mut failed) = (0, Vec::new());
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
    {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let Some((state_name, state)) = single_pass_state(&case) else {
            continue;
        };
        let input = match (&case["input"], &case["input_raw"]) {
            (Value::Null, Value::Null) => json!({}),
            (input, _) => input.clone(),
        };
        let ctx = context(&input, state_name);
        let outcome = run_pass(state, &input, &ctx);
        let mut cmp = Comparison::new(&case);
        let expected = &case["expected"];
        let ok = match &outcome {
            Ok(output) => {
                expected["status"] == "SUCCEEDED"
                    && cmp.matches(&expected["output"], &normalize(output))
            }
            Err(f) => {
                let cause = f.cause.clone().unwrap_or_default();
                let cause = if f.located {
                    format!(
                        "An error occurred while executing the state '{state_name}' (entered at the event id #2). {cause}"
                    )
                } else {
                    cause
                };
                expected["status"] == "FAILED"
                    && cmp.matches(&expected["error"], &Value::from(f.error_name()))
                    && cmp.matches(&expected["cause"], &normalize(&Value::String(cause)))
            }
        };
        if ok {
            passed += 1;
        } else {
            let got: String = format!("{outcome:?}").chars().take(300).collect();
            failed.push(format!(
                "{}: got {got}",
                case["name"].as_str().unwrap_or("?")
            ));
        }
    }
    println!(
        "single Pass state cases: {passed}/{} passed",
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
