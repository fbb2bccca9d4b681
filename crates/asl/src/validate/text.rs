//! Text forms AWS's messages embed: Python's `repr` of strings and `json.dumps` of a
//! definition (the Map `Label` rule reports through a Python `ValueError`), and the RFC 3339
//! timestamps the Wait state accepts.

use std::fmt::Write;

use serde_json::Value;

/// Python's `repr(s)` for a `str`: single quotes unless the text holds a single quote and no
/// double quote; backslashes, the chosen quote and non-printable characters escaped.
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if py_printable(c) => out.push(c),
            c => {
                let n = c as u32;
                if n <= 0xff {
                    let _ = write!(out, "\\x{n:02x}");
                } else if n <= 0xffff {
                    let _ = write!(out, "\\u{n:04x}");
                } else {
                    let _ = write!(out, "\\U{n:08x}");
                }
            }
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable` for one character, for the ranges a definition realistically
/// holds: controls, the C1 block, separators other than the space, and format characters.
fn py_printable(c: char) -> bool {
    let n = c as u32;
    !(n < 0x20
        || (0x7f..=0xa0).contains(&n)
        || n == 0xad
        || (0x2000..=0x200f).contains(&n)
        || (0x2028..=0x202f).contains(&n)
        || (0x205f..=0x206f).contains(&n)
        || n == 0x3000
        || n == 0xfeff
        || (0xd800..=0xdfff).contains(&n)
        || (0xe000..=0xf8ff).contains(&n))
}

/// Python's `json.dumps(value)` with its defaults: `", "` and `": "` separators, non-ASCII
/// escaped as `\uXXXX`, keys in document order.
pub fn py_json_dumps(value: &Value) -> String {
    let mut out = String::new();
    dump(value, &mut out);
    out
}

fn dump(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                out.push_str(&py_float(f));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => dump_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dump(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dump_str(k, out);
                out.push_str(": ");
                dump(v, out);
            }
            out.push('}');
        }
    }
}

fn py_float(f: f64) -> String {
    if f.is_finite() && f == f.trunc() && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        let s = format!("{f:e}");
        // Python prints 1e+20 and 1.5e-07 where Rust prints 1e20 and 1.5e-7.
        match s.split_once('e') {
            Some((m, e)) if f.abs() >= 1e16 || f.abs() < 1e-4 => {
                let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
                format!("{m}e{sign}{digits:0>2}")
            }
            _ => f.to_string(),
        }
    }
}

fn dump_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON syntax error worded as the Jackson parser behind AWS words it: the message (with
/// its `\n at [Source: ...]` tail) and the location AWS reports separately.
pub fn jackson_error(text: &str, error: &serde_json::Error) -> (String, String) {
    let line = error.line().max(1);
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    let offset = (line_start + error.column().saturating_sub(1)).min(text.len());
    let offset = (0..=offset)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let is_token_char = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_token_char(*c))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = text[start..]
        .char_indices()
        .find(|(_, c)| !is_token_char(*c))
        .map_or(text.len(), |(i, _)| start + i);
    let full = error.to_string();
    let unexpected_token = error.is_syntax()
        && (full.starts_with("expected value") || full.starts_with("expected ident"));
    let (message, column_at) = if unexpected_token
        && end > start
        && !text[start..end].starts_with(|c: char| c.is_ascii_digit())
    {
        let token = &text[start..end];
        (
            format!(
                "Unrecognized token '{token}': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
            ),
            end,
        )
    } else {
        let plain = full.split(" at line ").next().unwrap_or(&full);
        let mut chars = plain.chars();
        let capitalised: String = chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default();
        (capitalised, offset)
    };
    let line_start = text[..column_at].rfind('\n').map_or(0, |i| i + 1);
    let line_no = text[..column_at].matches('\n').count() + 1;
    let column = text[line_start..column_at].chars().count() + 1;
    let location = format!(
        "[Source: {}; line: {line_no}, column: {column}]",
        jackson_source(text)
    );
    (format!("{message}\n at {location}"), location)
}

/// Jackson's source description: the text quoted, cut after 500 characters.
fn jackson_source(text: &str) -> String {
    let count = text.chars().count();
    if count <= 500 {
        format!("(String)\"{text}\"")
    } else {
        let head: String = text.chars().take(500).collect();
        format!("(String)\"{head}\"[truncated {} chars]", count - 500)
    }
}

/// An RFC 3339 date-time as the Wait state's `Timestamp` requires:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, with real calendar dates and, as the States
/// Language requires, an uppercase `T` and `Z`.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return false;
    }
    let (Some(hour), Some(minute), Some(second)) = (digits(11..13), digits(14..16), digits(17..19))
    else {
        return false;
    };
    if b[13] != b':' || b[16] != b':' {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest.as_bytes() {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| {
                (a.is_ascii_digit() && b.is_ascii_digit()).then(|| (a - b'0') * 10 + (b - b'0'))
            };
            matches!((two(*h1, *h2), two(*m1, *m2)), (Some(h), Some(m)) if h <= 23 && m <= 59)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn repr_picks_quotes_and_escapes_like_python() {
        assert_eq!(py_repr("a"), "'a'");
        assert_eq!(py_repr("'"), "\"'\"");
        assert_eq!(py_repr("\""), "'\"'");
        assert_eq!(py_repr("'\""), "'\\'\"'");
        assert_eq!(py_repr("\\"), "'\\\\'");
        assert_eq!(py_repr("\u{85}"), "'\\x85'");
        assert_eq!(py_repr("\n"), "'\\n'");
        assert_eq!(py_repr("é"), "'é'");
    }

    #[test]
    fn json_dumps_matches_python_defaults() {
        let v = json!({"a": [1, 2.5, true, null], "b": "x\u{85}\"é"});
        assert_eq!(
            py_json_dumps(&v),
            r#"{"a": [1, 2.5, true, null], "b": "x\u0085\"\u00e9"}"#
        );
        assert_eq!(py_json_dumps(&json!(1.0)), "1.0");
    }

    #[test]
    fn json_errors_read_like_jackson() {
        let text = "not a definition";
        let e = serde_json::from_str::<Value>(text).unwrap_err();
        let (message, location) = jackson_error(text, &e);
        assert_eq!(
            location,
            "[Source: (String)\"not a definition\"; line: 1, column: 4]"
        );
        assert_eq!(
            message,
            "Unrecognized token 'not': was expecting (JSON String, Number, Array, Object or token 'null', \
             'true' or 'false')\n at [Source: (String)\"not a definition\"; line: 1, column: 4]"
        );
    }

    #[test]
    fn rfc3339_accepts_only_full_date_times() {
        assert!(is_rfc3339("2016-03-14T01:59:00Z"));
        assert!(is_rfc3339("2016-03-14T01:59:00.123+01:00"));
        assert!(is_rfc3339("2016-02-29T01:59:00Z"));
        for bad in [
            "2016-13-05T21:29:29Z",
            "05-12-2016T21:29:29Z",
            "2016-12-05T25:29:29Z",
            "2016-12-05 21:29:29Z",
            "2016-12-05T21:29:29",
            "2015-02-29T01:59:00Z",
            "2016-03-14t01:59:00Z",
            "2016-03-14T01:59:00z",
            "{% '2016-03-14T01:59:00Z' %}",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
