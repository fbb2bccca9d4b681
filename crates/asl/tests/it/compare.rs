//! The conformance README's comparison rules (a port of `compare.py`): normalise our result as
//! the recorded responses were normalised, then match structurally, with `<...>` tokens in
//! expected strings matching any non-empty text (the same text for the same token).

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

static ISO8601: LazyLock<Regex> = LazyLock::new(|| {
    // compare.py's PATTERN_ISO8601: only real calendar dates and times count.
    Regex::new(concat!(
        r"(?:[1-9]\d{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)",
        r"|(?:[1-9]\d(?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[13579][26])00)-02-29)",
        r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?(?:Z|[+-][01]\d:?(?:[0-5]\d)?)"
    ))
    .unwrap()
});
static TOKEN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<[A-Za-z0-9_\-.:/ ]+?>").unwrap());

pub struct Wildcards {
    /// Literals standing for any substring (regex transformers' replacements).
    pub subs: Vec<String>,
    /// Literals standing for any whole value.
    pub whole: Vec<String>,
}

impl Wildcards {
    pub fn of(case: &Value) -> Self {
        let mut subs = Vec::new();
        let mut whole = Vec::new();
        for t in case["snapshot_transformers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(r) = t["replacement"].as_str() else {
                continue;
            };
            if r.is_empty() || TOKEN.find(r).is_some_and(|m| m.as_str() == r) {
                continue;
            }
            if t["type"] == "regex" {
                subs.push(r.to_string());
            } else if !t["reference"].as_bool().unwrap_or(true) {
                whole.push(r.to_string());
            }
        }
        subs.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { subs, whole }
    }
}

pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let lk = k.to_ascii_lowercase();
                    let is_ts_key =
                        lk.contains("timestamp") || k == "creationTime" || k == "ingestionTime";
                    let iso = x.as_str().is_some_and(|s| ISO8601.is_match(s));
                    if is_ts_key && !iso {
                        (k.clone(), Value::String("timestamp".into()))
                    } else {
                        (k.clone(), normalize(x))
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::String(s) => {
            let s = s
                .replace("us-east-1", "<region>")
                .replace("arn:aws:", "arn:<partition>:");
            Value::String(ISO8601.replace_all(&s, "date").into_owned())
        }
        other => other.clone(),
    }
}

pub fn matches(
    exp: &Value,
    act: &Value,
    b: &mut HashMap<String, String>,
    path: &str,
    diffs: &mut Vec<String>,
    w: &Wildcards,
) -> bool {
    if let Value::String(e) = exp
        && w.whole.iter().any(|x| x == e)
    {
        return true;
    }
    match (exp, act) {
        (Value::Object(e), Value::Object(a)) => {
            let mut ek: Vec<_> = e.keys().collect();
            let mut ak: Vec<_> = a.keys().collect();
            ek.sort();
            ak.sort();
            if ek != ak {
                diffs.push(format!("{path}: keys {ek:?} != {ak:?}"));
                return false;
            }
            let mut ok = true;
            for (k, ev) in e {
                ok &= matches(ev, &a[k], b, &format!("{path}.{k}"), diffs, w);
            }
            ok
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                diffs.push(format!("{path}: {} != {}", short(exp), short(act)));
                return false;
            }
            let mut ok = true;
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                ok &= matches(x, y, b, &format!("{path}[{i}]"), diffs, w);
            }
            ok
        }
        (Value::Number(x), Value::Number(y)) => {
            let ok = x.as_f64() == y.as_f64();
            if !ok {
                diffs.push(format!("{path}: {x} != {y}"));
            }
            ok
        }
        (Value::String(e), Value::String(a)) => {
            let ok = str_match(e, a, b, w);
            if !ok {
                diffs.push(format!("{path}: {e:?} != {a:?}"));
            }
            ok
        }
        _ => {
            let ok = exp == act;
            if !ok {
                diffs.push(format!("{path}: {} != {}", short(exp), short(act)));
            }
            ok
        }
    }
}

pub fn str_match(
    exp: &str,
    act: &str,
    bindings: &mut HashMap<String, String>,
    w: &Wildcards,
) -> bool {
    if exp == act {
        return true;
    }
    let mut exp = exp.to_string();
    for (i, lit) in w.subs.iter().enumerate() {
        if exp.contains(lit.as_str()) {
            exp = exp.replace(lit.as_str(), &format!("<__literal_{i}__>"));
        }
    }
    let toks: Vec<String> = TOKEN
        .find_iter(&exp)
        .map(|m| m.as_str().to_string())
        .collect();
    if toks.is_empty() {
        return false;
    }
    let parts: Vec<&str> = TOKEN.split(&exp).collect();
    let mut rx = String::from("(?s)^");
    let mut groups: Vec<String> = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        rx.push_str(&regex::escape(p));
        if let Some(t) = toks.get(i) {
            if let Some(bound) = bindings.get(t) {
                rx.push_str(&regex::escape(bound));
            } else {
                rx.push_str(&format!("(?P<g{}>.+?)", groups.len()));
                groups.push(t.clone());
            }
        }
    }
    rx.push('$');
    let Ok(re) = Regex::new(&rx) else {
        return false;
    };
    let Some(caps) = re.captures(act) else {
        return false;
    };
    let mut local: HashMap<String, String> = HashMap::new();
    for (i, t) in groups.iter().enumerate() {
        let text = caps
            .name(&format!("g{i}"))
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        if let Some(prev) = local.get(t)
            && *prev != text
        {
            return false;
        }
        local.insert(t.clone(), text);
    }
    for (t, text) in local {
        if !t.starts_with("<__literal_") {
            bindings.insert(t, text);
        }
    }
    true
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 200 {
        format!("{}…", &s[..200])
    } else {
        s
    }
}

/// What an engine produced for one case.
#[derive(Debug, Default)]
pub struct Actual {
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub next_state: Option<String>,
    /// History events in AWS's JSON shape, for executions.
    pub history: Option<Vec<Value>>,
}

/// Compares a result with a case's `expected`; returns the differences (empty: a pass).
pub fn compare(case: &Value, act: &Actual) -> Vec<String> {
    let exp = &case["expected"];
    let w = Wildcards::of(case);
    let mut diffs = Vec::new();
    let mut b = HashMap::new();
    if exp["status"].as_str() != Some(act.status.as_str()) {
        diffs.push(format!("status: {} != {}", exp["status"], act.status));
    }
    if let Some(e) = exp.get("output") {
        let a = normalize(act.output.as_ref().unwrap_or(&Value::Null));
        matches(e, &a, &mut b, "$output", &mut diffs, &w);
    }
    for (k, a) in [("error", &act.error), ("cause", &act.cause)] {
        let Some(e) = exp.get(k) else { continue };
        match e {
            Value::Object(_) | Value::Array(_) => {
                let a = a
                    .as_deref()
                    .map(|s| serde_json::from_str(s).unwrap_or(Value::String(s.into())));
                let a = normalize(&a.unwrap_or(Value::Null));
                matches(e, &a, &mut b, &format!("${k}"), &mut diffs, &w);
            }
            Value::Null if a.is_none() => {}
            Value::String(es) if w.whole.iter().any(|x| x == es) => {}
            Value::String(es) => {
                let a = a.as_deref().map(|s| normalize(&Value::String(s.into())));
                match a {
                    Some(Value::String(a)) if str_match(es, &a, &mut b, &w) => {}
                    other => diffs.push(format!("{k}: {es:?} != {other:?}")),
                }
            }
            _ => diffs.push(format!("{k}: {e} != {a:?}")),
        }
    }
    if let Some(ns) = exp.get("nextState").and_then(Value::as_str)
        && act.next_state.as_deref() != Some(ns)
    {
        diffs.push(format!("nextState: {ns:?} != {:?}", act.next_state));
    }
    diffs
}

/// Compares our history with the recorded one, event for event.
pub fn compare_history(case: &Value, recorded: &Value, ours: &[Value]) -> Vec<String> {
    let w = Wildcards::of(case);
    let mut diffs = Vec::new();
    let mut b = HashMap::new();
    let exp = recorded.as_array().cloned().unwrap_or_default();
    if exp.len() != ours.len() {
        let kinds = |v: &[Value]| {
            v.iter()
                .map(|e| e["type"].as_str().unwrap_or("?").to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        diffs.push(format!(
            "{} events != {}: [{}] vs [{}]",
            exp.len(),
            ours.len(),
            kinds(&exp),
            kinds(ours)
        ));
        return diffs;
    }
    for (i, (e, a)) in exp.iter().zip(ours).enumerate() {
        let a = normalize(&parse_objects(a));
        matches(e, &a, &mut b, &format!("$history[{i}]"), &mut diffs, &w);
    }
    diffs
}

/// The corpus stored JSON text that starts with `{` parsed; do the same to ours.
fn parse_objects(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), parse_objects(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(parse_objects).collect()),
        Value::String(s) if s.starts_with('{') => {
            serde_json::from_str(s).unwrap_or_else(|_| v.clone())
        }
        other => other.clone(),
    }
}
