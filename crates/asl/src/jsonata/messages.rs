//! Error messages in jsonata-js's words. AWS reports a JSONata error as `CODE: message` with
//! the reference implementation's message (`T1006: Attempted to invoke a non-function`);
//! `jsonata-core` raises the same codes but words some messages its own way.

/// jsonata-js's rendering of `message` (as `jsonata-core` gives it, `CODE: text`) for an error
/// raised while evaluating `expr`. Messages without a known rewording pass through unchanged.
pub(crate) fn reference_message(message: &str, expr: &str) -> String {
    let Some((code, text)) = message.split_once(": ") else {
        return message.to_string();
    };
    let reworded = match code {
        // jsonata-core appends the callee; the reference does not.
        "T1006" => Some("Attempted to invoke a non-function".to_string()),
        // Operators are JSON-quoted in the reference (`{{token}}` is stringified).
        "T2001" | "T2002" => operand_side(text),
        "T2003" => Some("The left side of the range operator (..) must evaluate to an integer".into()),
        "T2004" => {
            Some("The right side of the range operator (..) must evaluate to an integer".into())
        }
        "D3001" => Some("Attempting to invoke string function on Infinity or NaN".into()),
        "D3010" => Some("Second argument of replace function cannot be an empty string".into()),
        "D3020" => Some("Third argument of split function must evaluate to a positive number".into()),
        "D3030" => text
            .strip_prefix("Cannot convert '")
            .and_then(|t| t.strip_suffix("' to number"))
            .map(|v| format!("Unable to cast value to a number: {}", json_string(v))),
        "D3100" => text.rsplit_once("got ").map(|(_, radix)| {
            format!("The radix of the formatBase function must be between 2 and 36.  It was given {radix}")
        }),
        "D3138" => Some(
            "The $single() function expected exactly 1 matching result.  Instead it matched more."
                .into(),
        ),
        "T0410" => signature_mismatch(text, expr),
        _ => None,
    };
    match reworded {
        Some(text) => format!("{code}: {text}"),
        None => message.to_string(),
    }
}

/// `The left side of the + operator ...` → `The left side of the "+" operator ...`.
fn operand_side(text: &str) -> Option<String> {
    let (side, rest) = text.strip_prefix("The ")?.split_once(" side of the ")?;
    let (op, rest) = rest.split_once(" operator ")?;
    Some(format!(
        "The {side} side of the {} operator {rest}",
        json_string(op)
    ))
}

/// `Argument N of function "name" does not match function signature`, naming the function
/// from the message or, failing that, from the expression when it calls exactly one.
fn signature_mismatch(text: &str, expr: &str) -> Option<String> {
    let rest = text.strip_prefix("Argument ")?;
    let (index, rest) = rest.split_once(' ')?;
    index.parse::<usize>().ok()?;
    let name = match rest.strip_prefix("of function ") {
        Some(rest) => rest.split(' ').next()?.trim_start_matches('$').to_string(),
        None => single_callee(expr)?,
    };
    if name.is_empty() || name == "undefined" {
        return None;
    }
    Some(format!(
        "Argument {index} of function {} does not match function signature",
        json_string(&name)
    ))
}

/// The function an expression calls when it calls exactly one (`$uppercase(x)` → `uppercase`).
fn single_callee(expr: &str) -> Option<String> {
    let mut callees = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                // Skip string literals, honouring backslash escapes.
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'$' => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                {
                    end += 1;
                }
                if end > start && bytes.get(end) == Some(&b'(') {
                    callees.push(&expr[start..end]);
                }
                i = end.max(i + 1) - 1;
            }
            _ => {}
        }
        i += 1;
    }
    match callees.as_slice() {
        [one] => Some((*one).to_string()),
        _ => None,
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewords_as_jsonata_js_does() {
        for (core, expr, reference) in [
            (
                "T1006: Attempted to invoke a non-function: $randomSeeded",
                "$randomSeeded(1)",
                "T1006: Attempted to invoke a non-function",
            ),
            (
                "T2001: The left side of the + operator must evaluate to a number",
                "'a' + 1",
                "T2001: The left side of the \"+\" operator must evaluate to a number",
            ),
            (
                "D3030: Cannot convert 'x' to number",
                "$number('x')",
                "D3030: Unable to cast value to a number: \"x\"",
            ),
            (
                "T0410: Argument 1 must be String",
                "$uppercase(1)",
                "T0410: Argument 1 of function \"uppercase\" does not match function signature",
            ),
            (
                "T0410: Argument 1 of function $join does not match function signature",
                "$join(1)",
                "T0410: Argument 1 of function \"join\" does not match function signature",
            ),
            ("D3137: boom", "$error('boom')", "D3137: boom"),
        ] {
            assert_eq!(reference_message(core, expr), reference, "{core}");
        }
    }

    #[test]
    fn names_a_callee_only_when_there_is_one() {
        assert_eq!(
            single_callee("$uppercase($states.input.x)"),
            Some("uppercase".into())
        );
        assert_eq!(
            single_callee("$uppercase('$lowercase(')"),
            Some("uppercase".into())
        );
        assert_eq!(single_callee("$a($b(1))"), None);
        assert_eq!(single_callee("$x + 1"), None);
    }
}
