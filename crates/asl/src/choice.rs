//! JSONPath Choice rules: `Variable` with one comparison operator, and `And`/`Or`/`Not`.
//! A comparison between values of different types is false, not an error, as on AWS.

use std::cmp::Ordering;

use serde_json::Value;

use crate::env::Scope;
use crate::error::Failure;
use crate::jsonpath;
use crate::time::parse_rfc3339_ns;

/// Evaluates one Choice rule (a top-level rule or a nested one) against `scope`.
pub fn evaluate(rule: &Value, scope: &Scope) -> Result<bool, Failure> {
    let obj = match rule.as_object() {
        Some(o) => o,
        None => return Ok(false),
    };
    if let Some(all) = obj.get("And").and_then(Value::as_array) {
        for r in all {
            if !evaluate(r, scope)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(any) = obj.get("Or").and_then(Value::as_array) {
        for r in any {
            if evaluate(r, scope)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if let Some(not) = obj.get("Not") {
        return Ok(!evaluate(not, scope)?);
    }
    let Some(variable) = obj.get("Variable").and_then(Value::as_str) else {
        return Ok(false);
    };
    let value = jsonpath::read(variable, scope)?;
    for (op, operand) in obj {
        if matches!(
            op.as_str(),
            "Variable" | "Next" | "Comment" | "Assign" | "Output"
        ) {
            continue;
        }
        return compare(op, value.as_ref(), operand, scope, variable);
    }
    Ok(false)
}

fn compare(
    op: &str,
    value: Option<&Value>,
    operand: &Value,
    scope: &Scope,
    variable: &str,
) -> Result<bool, Failure> {
    if op == "IsPresent" {
        return Ok(value.is_some() == operand.as_bool().unwrap_or(false));
    }
    let Some(value) = value else {
        return Err(Failure::runtime(format!(
            "Invalid path '{variable}' : No results for path: {}",
            bracketed(variable)
        )));
    };
    let want = || operand.as_bool().unwrap_or(false);
    let is_ts = |v: &Value| v.as_str().and_then(parse_rfc3339_ns).is_some();
    let (base, operand) = match op.strip_suffix("Path") {
        Some(base) if !op.starts_with("Is") => {
            let path = operand.as_str().unwrap_or("");
            match jsonpath::read(path, scope)? {
                Some(v) => (base, v),
                None => {
                    return Err(Failure::runtime(format!(
                        "Invalid path '{path}' : No results for path: {}",
                        bracketed(path)
                    )));
                }
            }
        }
        _ => (op, operand.clone()),
    };
    Ok(match base {
        "IsNull" => value.is_null() == want(),
        "IsNumeric" => value.is_number() == want(),
        "IsString" => value.is_string() == want(),
        "IsBoolean" => value.is_boolean() == want(),
        "IsTimestamp" => is_ts(value) == want(),
        "StringEquals" => str_cmp(value, &operand) == Some(Ordering::Equal),
        "StringLessThan" => str_cmp(value, &operand) == Some(Ordering::Less),
        "StringGreaterThan" => str_cmp(value, &operand) == Some(Ordering::Greater),
        "StringLessThanEquals" => matches!(
            str_cmp(value, &operand),
            Some(Ordering::Less | Ordering::Equal)
        ),
        "StringGreaterThanEquals" => {
            matches!(
                str_cmp(value, &operand),
                Some(Ordering::Greater | Ordering::Equal)
            )
        }
        "StringMatches" => match (value.as_str(), operand.as_str()) {
            (Some(v), Some(p)) => string_matches(v, p),
            _ => false,
        },
        "NumericEquals" => num_cmp(value, &operand) == Some(Ordering::Equal),
        "NumericLessThan" => num_cmp(value, &operand) == Some(Ordering::Less),
        "NumericGreaterThan" => num_cmp(value, &operand) == Some(Ordering::Greater),
        "NumericLessThanEquals" => matches!(
            num_cmp(value, &operand),
            Some(Ordering::Less | Ordering::Equal)
        ),
        "NumericGreaterThanEquals" => {
            matches!(
                num_cmp(value, &operand),
                Some(Ordering::Greater | Ordering::Equal)
            )
        }
        "BooleanEquals" => match (value.as_bool(), operand.as_bool()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        "TimestampEquals" => ts_cmp(value, &operand) == Some(Ordering::Equal),
        "TimestampLessThan" => ts_cmp(value, &operand) == Some(Ordering::Less),
        "TimestampGreaterThan" => ts_cmp(value, &operand) == Some(Ordering::Greater),
        "TimestampLessThanEquals" => matches!(
            ts_cmp(value, &operand),
            Some(Ordering::Less | Ordering::Equal)
        ),
        "TimestampGreaterThanEquals" => {
            matches!(
                ts_cmp(value, &operand),
                Some(Ordering::Greater | Ordering::Equal)
            )
        }
        _ => false,
    })
}

fn str_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    Some(a.as_str()?.cmp(b.as_str()?))
}

fn num_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn ts_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    Some(parse_rfc3339_ns(a.as_str()?)?.cmp(&parse_rfc3339_ns(b.as_str()?)?))
}

/// `*` matches any run of characters; `\*` a literal star, `\\` a literal backslash.
pub fn string_matches(text: &str, pattern: &str) -> bool {
    // Tokens: Some(c) literal, None wildcard.
    let mut toks: Vec<Option<char>> = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.next() {
                Some(n) => toks.push(Some(n)),
                None => toks.push(Some('\\')),
            },
            '*' => toks.push(None),
            c => toks.push(Some(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Classic glob matching with backtracking on the last star.
    let (mut t, mut p) = (0usize, 0usize);
    let (mut star, mut mark) = (None, 0usize);
    while t < text.len() {
        if p < toks.len() && toks[p] == Some(text[t]) {
            t += 1;
            p += 1;
        } else if p < toks.len() && toks[p].is_none() {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while p < toks.len() && toks[p].is_none() {
        p += 1;
    }
    p == toks.len()
}

/// `$.a.b[0]` → `$['a']['b'][0]`, the form AWS prints in "No results for path" messages.
pub fn bracketed(path: &str) -> String {
    let rest = path.trim_start_matches('$');
    let mut out = String::from("$");
    for seg in rest.split('.').filter(|s| !s.is_empty()) {
        let (name, idx) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if !name.is_empty() {
            out.push_str(&format!("['{name}']"));
        }
        out.push_str(idx);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_matches_handles_wildcards_and_escapes() {
        assert!(string_matches("log-2024.txt", "log-*.txt"));
        assert!(string_matches("a*b", "a\\*b"));
        assert!(!string_matches("axb", "a\\*b"));
        assert!(string_matches("anything", "*"));
        assert!(!string_matches("abc", "ab"));
        assert!(string_matches("", "*"));
    }

    #[test]
    fn bracketed_matches_aws_form() {
        assert_eq!(bracketed("$.NoSuchInputPath"), "$['NoSuchInputPath']");
        assert_eq!(bracketed("$.a.b[0]"), "$['a']['b'][0]");
    }
}
