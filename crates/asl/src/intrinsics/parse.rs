//! The syntax of an intrinsic function call: `States.Name(arg, ...)` where an argument is a
//! quoted string, a number, `true`/`false`/`null`, a path or another call.

use serde_json::Value;

use crate::jsonpath;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Call {
    /// The full name, `States.Format`.
    pub name: String,
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    /// A quoted string: its value, and the text between the quotes (escapes kept), which
    /// `States.Format` needs to tell `\{}` from `{}`.
    Text {
        value: String,
        raw: String,
    },
    /// A number, `true`, `false` or `null`.
    Literal(Value),
    /// `$...`, `$$...` or `$name...`.
    Path(String),
    Call(Call),
}

pub(crate) fn parse(expr: &str) -> Result<Call, String> {
    let mut p = Parser { src: expr, pos: 0 };
    p.skip_spaces();
    let call = p.call()?;
    p.skip_spaces();
    if p.pos != expr.len() {
        return Err(format!(
            "unexpected '{}' after the function call",
            &expr[p.pos..]
        ));
    }
    Ok(call)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_spaces();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn call(&mut self) -> Result<Call, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            self.pos += 1;
        }
        let name = &self.src[start..self.pos];
        if !name.starts_with("States.") || name.len() == "States.".len() {
            return Err(format!("'{name}' is not an intrinsic function name"));
        }
        if !self.eat('(') {
            return Err(format!("expected '(' after {name}"));
        }
        let mut args = Vec::new();
        if !self.eat(')') {
            loop {
                args.push(self.arg()?);
                if self.eat(',') {
                    continue;
                }
                if self.eat(')') {
                    break;
                }
                return Err(format!("expected ',' or ')' in the arguments of {name}"));
            }
        }
        Ok(Call {
            name: name.to_string(),
            args,
        })
    }

    fn arg(&mut self) -> Result<Arg, String> {
        self.skip_spaces();
        match self.peek() {
            Some('\'') => {
                self.pos += 1;
                self.text()
            }
            Some('$') => {
                let path = self.path_text();
                jsonpath::check(path, false).map_err(|e| format!("invalid path '{path}': {e}"))?;
                Ok(Arg::Path(path.to_string()))
            }
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
                {
                    self.pos += 1;
                }
                let text = &self.src[start..self.pos];
                serde_json::from_str::<serde_json::Number>(text)
                    .map(|n| Arg::Literal(Value::Number(n)))
                    .map_err(|_| format!("invalid number '{text}'"))
            }
            Some(_) if self.rest().starts_with("States.") => Ok(Arg::Call(self.call()?)),
            Some(_) => {
                for (word, value) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ] {
                    if self.rest().starts_with(word)
                        && !self.rest()[word.len()..]
                            .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                    {
                        self.pos += word.len();
                        return Ok(Arg::Literal(value));
                    }
                }
                Err(format!("unexpected '{}' in the arguments", self.rest()))
            }
            None => Err("unexpected end of the function call".into()),
        }
    }

    /// A quoted string after its opening quote. Only `\'`, `\{`, `\}` and `\\` are escapes;
    /// AWS refuses any other backslash sequence.
    fn text(&mut self) -> Result<Arg, String> {
        let start = self.pos;
        let mut value = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e @ ('\'' | '{' | '}' | '\\'))) => value.push(e),
                    Some((_, e)) => {
                        return Err(format!("invalid escape sequence '\\{e}' in a string"));
                    }
                    None => break,
                },
                '\'' => {
                    let raw = self.src[start..start + i].to_string();
                    self.pos = start + i + 1;
                    return Ok(Arg::Text { value, raw });
                }
                c => value.push(c),
            }
        }
        Err("unclosed string in the arguments".into())
    }

    /// A path runs to the next `,` or `)` outside brackets and quotes.
    fn path_text(&mut self) -> &str {
        let start = self.pos;
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        let mut escaped = false;
        for (i, c) in self.src[start..].char_indices() {
            if let Some(q) = quote {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                continue;
            }
            match c {
                '\'' | '"' if depth > 0 => quote = Some(c),
                '[' | '(' if depth > 0 || c == '[' => depth += 1,
                ']' | ')' if depth > 0 => depth -= 1,
                ',' | ')' if depth == 0 => {
                    self.pos = start + i;
                    return self.src[start..start + i].trim_end();
                }
                _ => {}
            }
        }
        self.pos = self.src.len();
        self.src[start..].trim_end()
    }
}
