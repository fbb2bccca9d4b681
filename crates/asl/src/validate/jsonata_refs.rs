//! JSONata expressions in JSONata states: AWS evaluates them with no context item, so a path
//! that starts from a bare name (`phone` rather than `$states.input.phone` or `$phone`) reads
//! nothing, and AWS refuses the definition:
//! `UNSUPPORTED_JSONATA_EXPRESSION: Reference to 'phone' at the top level is not supported.`
//!
//! An expression that does not parse is refused first, with the parser's message
//! (`INVALID_JSONATA_EXPRESSION: Unexpected end of expression`). The reference scan is
//! deliberately conservative: what it cannot tokenize it leaves alone, so it never refuses
//! what AWS accepts.

use serde_json::Value;

use super::Diagnostics;

/// The `{% ... %}` body of a JSONata expression string; AWS reads only exact delimiters.
pub(super) fn expression_body(s: &str) -> Option<&str> {
    s.strip_prefix("{%")?.strip_suffix("%}")
}

/// Walks every string under `value` (a field of a JSONata state) at `path`.
pub(super) fn check_value(value: &Value, path: &str, d: &mut Diagnostics) {
    match value {
        Value::String(s) => {
            if let Some(body) = expression_body(s) {
                if let Err(e) = crate::jsonata::check(body.trim()) {
                    d.push(
                        "INVALID_JSONATA_EXPRESSION",
                        without_code(&e),
                        Some(path.to_owned()),
                    );
                    return;
                }
                for name in top_level_references(body).unwrap_or_default() {
                    d.push(
                        "UNSUPPORTED_JSONATA_EXPRESSION",
                        format!("Reference to '{name}' at the top level is not supported."),
                        Some(path.to_owned()),
                    );
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_value(item, &format!("{path}[{i}]"), d);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                check_value(item, &format!("{path}/{key}"), d);
            }
        }
        _ => {}
    }
}

/// The engine's message without its `S0207: ` style code, which AWS leaves out.
fn without_code(message: &str) -> String {
    match message.split_once(": ") {
        Some((code, rest)) if code.len() == 5 && code[1..].bytes().all(|b| b.is_ascii_digit()) => {
            rest.to_owned()
        }
        _ => message.to_owned(),
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    /// A field name (plain or backquoted).
    Name(String),
    /// A variable, a literal, or anything else that ends an operand.
    Operand,
    Punct(char),
    /// An operator or keyword that expects an operand after it.
    Operator,
}

fn ends_operand(t: Option<&Token>) -> bool {
    matches!(
        t,
        Some(Token::Name(_) | Token::Operand | Token::Punct(')' | ']' | '}'))
    )
}

/// The distinct bare names that start a path at the top level, in order of appearance.
/// `None` when the expression does not tokenize.
pub(super) fn top_level_references(expr: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut prev: Option<Token> = None;
    // Each open bracket records whether names inside it are read against a context item
    // (a predicate, a step block, a group-by or a function body) rather than at the top.
    let mut frames: Vec<(char, bool)> = vec![];
    let mut found: Vec<String> = vec![];
    let relative = |frames: &Vec<(char, bool)>| frames.last().is_some_and(|f| f.1);

    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            let close = (i + 2..chars.len().saturating_sub(1))
                .find(|&j| chars[j] == '*' && chars[j + 1] == '/')?;
            i = close + 2;
            continue;
        }
        let token = match c {
            '"' | '\'' => {
                i = skip_string(&chars, i)?;
                Token::Operand
            }
            '`' => {
                let close = (i + 1..chars.len()).find(|&j| chars[j] == '`')?;
                let name: String = chars[i + 1..close].iter().collect();
                i = close + 1;
                name_token(name, prev.as_ref(), &mut found, relative(&frames))
            }
            '$' => {
                i += 1;
                if chars.get(i) == Some(&'$') {
                    i += 1;
                }
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                Token::Operand
            }
            c if c.is_ascii_digit() => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    // `1..3` is a range, not a number with two points.
                    if chars[i] == '.' && chars.get(i + 1) == Some(&'.') {
                        break;
                    }
                    i += 1;
                }
                Token::Operand
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                match word.as_str() {
                    "and" | "or" | "in" if ends_operand(prev.as_ref()) => Token::Operator,
                    "true" | "false" | "null" => Token::Operand,
                    "function" | "λ" => Token::Operator,
                    _ => name_token(word, prev.as_ref(), &mut found, relative(&frames)),
                }
            }
            '/' if !ends_operand(prev.as_ref()) => {
                // A regular expression literal.
                let mut j = i + 1;
                loop {
                    match chars.get(j)? {
                        '\\' => j += 2,
                        '/' => break,
                        _ => j += 1,
                    }
                }
                i = j + 1;
                while i < chars.len() && chars[i].is_ascii_alphabetic() {
                    i += 1;
                }
                Token::Operand
            }
            '[' | '(' | '{' => {
                let after_dot = prev == Some(Token::Punct('.')) || prev == Some(Token::Punct('^'));
                let is_relative = match c {
                    '[' => ends_operand(prev.as_ref()) || relative(&frames),
                    // A call's arguments keep the caller's context; a step block does not.
                    '(' => after_dot || relative(&frames),
                    // After an operand: a group-by, or a function body.
                    _ => after_dot || ends_operand(prev.as_ref()) || relative(&frames),
                };
                frames.push((c, is_relative));
                i += 1;
                Token::Punct(c)
            }
            ']' | ')' | '}' => {
                let open = frames.pop()?.0;
                if !matches!((open, c), ('[', ']') | ('(', ')') | ('{', '}')) {
                    return None;
                }
                i += 1;
                Token::Punct(c)
            }
            '.' if chars.get(i + 1) == Some(&'.') => {
                i += 2;
                Token::Operator
            }
            '.' | '^' => {
                i += 1;
                Token::Punct(c)
            }
            ',' | ';' | ':' | '?' | '+' | '-' | '*' | '/' | '%' | '=' | '!' | '<' | '>' | '&'
            | '~' | '|' | '@' | '#' => {
                i += 1;
                // `:=`, `!=`, `<=`, `>=`, `~>`, `**` are single operators.
                if matches!(chars.get(i), Some('=' | '>' | '*'))
                    && matches!(c, ':' | '!' | '<' | '>' | '~' | '*')
                {
                    i += 1;
                }
                if c == '*' || c == '%' {
                    // A wildcard or parent step reads the context like a name.
                    if !ends_operand(prev.as_ref()) {
                        prev = Some(Token::Operand);
                        continue;
                    }
                }
                Token::Operator
            }
            _ => return None,
        };
        prev = Some(token);
    }
    frames.is_empty().then_some(found)
}

/// A name starts a top-level path unless it is a step (after `.`) or read in a context.
fn name_token(
    name: String,
    prev: Option<&Token>,
    found: &mut Vec<String>,
    relative: bool,
) -> Token {
    let is_step = prev == Some(&Token::Punct('.'));
    if !is_step && !relative && !found.contains(&name) {
        found.push(name.clone());
    }
    Token::Name(name)
}

fn skip_string(chars: &[char], start: usize) -> Option<usize> {
    let quote = chars[start];
    let mut j = start + 1;
    loop {
        match chars.get(j)? {
            '\\' => j += 2,
            c if *c == quote => return Some(j + 1),
            _ => j += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(expr: &str) -> Vec<String> {
        top_level_references(expr).expect("tokenizes")
    }

    #[test]
    fn finds_bare_names_at_the_top_level() {
        assert_eq!(refs(" phone "), ["phone"]);
        assert_eq!(refs("states.input"), ["states"]);
        assert_eq!(refs("a.b + c"), ["a", "c"]);
        assert_eq!(refs("{'k': v}"), ["v"]);
        assert_eq!(refs("[a, 1]"), ["a"]);
        assert_eq!(refs("$x ? yes : no"), ["yes", "no"]);
        assert_eq!(refs("`my name`"), ["my name"]);
    }

    #[test]
    fn leaves_variables_steps_predicates_and_bodies_alone() {
        for expr in [
            " $states.input.a.b ",
            "$states.input.items[price > 5].name",
            "$states.input.items.(price * qty)",
            "$map($states.result, function($v) { $v = 1 ? 'pass' : 'failed' })",
            "$count($states.result[$ = 0])",
            "$contains('hello$world', /^hello\\$/)",
            "$states.input.value >= 20 and $states.input.value < 30",
            "$fn := function($x){$x}",
            "[1, 'two', 3]",
            "{'foo': 'bar'}",
            "$sum($states.input.input_values) + $var_constant_1",
            "$states.input.a & 'x' & \"y\"",
            "[1..3]",
            "$states.input.items^(price)",
            "$states.input.items{type: $sum(price)}",
            "true and false or null",
            "$states.input.* ",
            "/* comment */ $x",
        ] {
            assert_eq!(refs(expr), Vec::<String>::new(), "{expr}");
        }
    }

    #[test]
    fn gives_up_on_what_it_cannot_tokenize() {
        assert_eq!(top_level_references("a[1,2)"), None);
        assert_eq!(top_level_references("\"unterminated"), None);
    }
}
