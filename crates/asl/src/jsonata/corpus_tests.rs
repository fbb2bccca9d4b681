//! Every single-state JSONata Pass case of the conformance corpus (Output and Assign only),
//! evaluated through [`eval_template`] and compared with what AWS recorded.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::eval_template;
use crate::env::FixedHost;
use crate::error::Failure;

fn cases_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("AGENTRY_CONFORMANCE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let beside_repo =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/asl-conformance/cases");
    [
        beside_repo,
        PathBuf::from("/work/shared/asl-conformance/cases"),
    ]
    .into_iter()
    .find(|dir| dir.is_dir())
}

/// The state of a one-state JSONata Pass machine using only `Output` and `Assign`.
fn single_pass_state(case: &Value) -> Option<(&str, &Map<String, Value>)> {
    if !matches!(
        case["api"].as_str(),
        Some("StartExecution" | "StartSyncExecution")
    ) {
        return None;
    }
    let definition = &case["definition"];
    let states = definition["States"].as_object()?;
    if states.len() != 1 {
        return None;
    }
    let (name, state) = states.iter().next()?;
    let state = state.as_object()?;
    let language = state
        .get("QueryLanguage")
        .or(definition.get("QueryLanguage"));
    let allowed = [
        "Type",
        "Output",
        "Assign",
        "End",
        "QueryLanguage",
        "Comment",
    ];
    (state.get("Type") == Some(&json!("Pass"))
        && language == Some(&json!("JSONata"))
        && state.keys().all(|k| allowed.contains(&k.as_str())))
    .then_some((name.as_str(), state))
}

fn run_pass(state: &Map<String, Value>, input: &Value) -> Result<Value, Failure> {
    let states = json!({
        "input": input,
        "context": {
            "Execution": { "Id": "arn:aws:states:<region>:111111111111:execution:m:e", "Input": input },
            "State": { "Name": "State0", "RetryCount": 0 },
        },
    });
    let vars = Map::new();
    let mut host = FixedHost::new(1_700_000_000_000, 1);
    if let Some(assign) = state.get("Assign") {
        eval_template(assign, "Assign", &states, &vars, &mut host)?;
    }
    match state.get("Output") {
        Some(output) => eval_template(output, "Output", &states, &vars, &mut host),
        None => Ok(input.clone()),
    }
}

/// Structural equality with numbers by value and `<...>` tokens in expected strings matching
/// any non-empty text.
fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) => same_text(a, b),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        _ => expected == actual,
    }
}

fn same_text(expected: &str, actual: &str) -> bool {
    match expected
        .find('<')
        .and_then(|start| Some((start, start + expected[start..].find('>')?)))
    {
        None => expected == actual,
        Some((start, end)) => {
            let (prefix, rest) = (&expected[..start], &expected[end + 1..]);
            let Some(tail) = actual.strip_prefix(prefix) else {
                return false;
            };
            (1..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| same_text(rest, &tail[i..]))
        }
    }
}

#[test]
fn single_state_jsonata_pass_cases() {
    let Some(dir) = cases_dir() else {
        println!("skipped: no conformance cases (set AGENTRY_CONFORMANCE_DIR)");
        return;
    };
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("cases dir is readable")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();

    let (mut total, mut failing) = (0, Vec::new());
    for path in paths {
        let case: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let Some((name, state)) = single_pass_state(&case) else {
            continue;
        };
        total += 1;
        let input = if case["input"].is_null() {
            json!({})
        } else {
            case["input"].clone()
        };
        let expected = &case["expected"];
        let ok = match (expected["status"].as_str(), run_pass(state, &input)) {
            (Some("SUCCEEDED"), Ok(output)) => same(&expected["output"], &output),
            (Some("FAILED"), Err(failure)) => {
                let cause = format!(
                    "An error occurred while executing the state '{name}' (entered at the event id #2). {}",
                    failure.cause.as_deref().unwrap_or("")
                );
                expected["error"].as_str() == failure.error.as_deref()
                    && same_text(expected["cause"].as_str().unwrap_or(""), &cause)
            }
            _ => false,
        };
        if !ok {
            failing.push(case["name"].as_str().unwrap_or("?").to_string());
        }
    }
    println!(
        "jsonata single-state Pass cases: {}/{total} passed",
        total - failing.len()
    );
    for name in &failing {
        println!("  failing: {name}");
    }
    assert!(
        total > 0,
        "no single-state JSONata Pass case in {}",
        dir.display()
    );
    assert!(
        failing.is_empty(),
        "{} of {total} cases fail",
        failing.len()
    );
}
