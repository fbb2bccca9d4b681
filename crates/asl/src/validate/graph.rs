//! Transitions within each container (the machine, a Parallel branch, a Map's item
//! processor): targets that name no state, states nothing reaches, workflows without a
//! terminal state, and state names used twice.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::Diagnostics;

/// Checks the container at `prefix` (`""` for the machine) and every container nested in it.
pub(super) fn check(container: &Map<String, Value>, prefix: &str, d: &mut Diagnostics) {
    let Some(states) = container.get("States").and_then(Value::as_object) else {
        return;
    };
    let start = container.get("StartAt").and_then(Value::as_str);

    if let Some(start) = start.filter(|s| !states.contains_key(*s)) {
        d.push(
            "MISSING_TRANSITION_TARGET",
            format!("Missing 'Next' target: {start}"),
            Some(format!("{prefix}/StartAt")),
        );
    }
    // AWS calls a state unreachable when no transition names it (StartAt included), not by
    // walking the graph: a cycle that StartAt never enters passes.
    let mut targeted: HashSet<&str> = start.into_iter().collect();
    for (name, state) in states {
        let path = format!("{prefix}/States/{name}");
        for (target, at) in targets(state, &path) {
            if !states.contains_key(target) {
                d.push(
                    "MISSING_TRANSITION_TARGET",
                    format!("Missing 'Next' target: {target}"),
                    Some(at),
                );
            }
            targeted.insert(target);
        }
    }

    let terminal = states.values().any(|s| {
        s.get("End") == Some(&Value::Bool(true))
            || matches!(
                s.get("Type").and_then(Value::as_str),
                Some("Succeed" | "Fail")
            )
    });
    if !terminal {
        d.push("MISSING_END_STATE", "Workflow has no terminal state", None);
    } else {
        for name in states.keys() {
            if !targeted.contains(name.as_str()) {
                d.push(
                    "MISSING_TRANSITION_TARGET",
                    format!("State \"{name}\" is not reachable."),
                    Some(format!("{prefix}/States/{name}")),
                );
            }
        }
    }

    for (name, state) in states {
        for (nested, path) in nested_containers(state, &format!("{prefix}/States/{name}")) {
            check(nested, &path, d);
        }
    }
}

/// Every transition out of a state, with where it is written.
fn targets<'a>(state: &'a Value, path: &str) -> Vec<(&'a str, String)> {
    let mut out = vec![];
    if let Some(n) = state.get("Next").and_then(Value::as_str) {
        out.push((n, format!("{path}/Next")));
    }
    if let Some(rules) = state.get("Choices").and_then(Value::as_array) {
        for (i, rule) in rules.iter().enumerate() {
            if let Some(n) = rule.get("Next").and_then(Value::as_str) {
                out.push((n, format!("{path}/Choices[{i}]/Next")));
            }
        }
    }
    if let Some(n) = state.get("Default").and_then(Value::as_str) {
        out.push((n, format!("{path}/Default")));
    }
    if let Some(catchers) = state.get("Catch").and_then(Value::as_array) {
        for (i, c) in catchers.iter().enumerate() {
            if let Some(n) = c.get("Next").and_then(Value::as_str) {
                out.push((n, format!("{path}/Catch[{i}]/Next")));
            }
        }
    }
    out
}

/// The containers a Parallel or Map state holds, with their paths.
pub(super) fn nested_containers<'a>(
    state: &'a Value,
    path: &str,
) -> Vec<(&'a Map<String, Value>, String)> {
    let mut out = vec![];
    if let Some(branches) = state.get("Branches").and_then(Value::as_array) {
        for (i, b) in branches.iter().enumerate() {
            if let Some(b) = b.as_object() {
                out.push((b, format!("{path}/Branches[{i}]")));
            }
        }
    }
    for field in ["ItemProcessor", "Iterator"] {
        if let Some(p) = state.get(field).and_then(Value::as_object) {
            out.push((p, format!("{path}/{field}")));
        }
    }
    out
}

/// State names, and the `Label`s of Map states, must be unique across the whole machine,
/// nested containers included.
pub(super) fn check_duplicates(
    container: &Map<String, Value>,
    prefix: &str,
    seen: &mut HashSet<String>,
    labels: &mut HashSet<String>,
    d: &mut Diagnostics,
) {
    let Some(states) = container.get("States").and_then(Value::as_object) else {
        return;
    };
    for (name, state) in states {
        let path = format!("{prefix}/States/{name}");
        if !seen.insert(name.clone()) {
            d.push(
                "DUPLICATE_STATE_NAME",
                format!("Duplicate State name: {name}"),
                Some(path.clone()),
            );
        }
        if let Some(label) = state.get("Label").and_then(Value::as_str)
            && !labels.insert(label.to_owned())
        {
            d.push(
                "DUPLICATE_LABEL_NAME",
                format!("Duplicate Label name: {label}"),
                Some(format!("{path}/Label")),
            );
        }
        for (nested, nested_path) in nested_containers(state, &path) {
            check_duplicates(nested, &nested_path, seen, labels, d);
        }
    }
}
