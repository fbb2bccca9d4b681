//! One JSONPath expression, parsed and evaluated the way Jayway JsonPath (the library behind
//! Step Functions' JSONPath mode) does: the same definite/indefinite rules, the same
//! "not found" outcomes and the same message texts, which AWS passes on in its causes.

use serde_json::{Map, Value};

use super::filter::{self, Filter};

/// What a path starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Root {
    /// `$`: the state's input.
    Input,
    /// `$$`: the context object.
    Context,
    /// `$name`: a variable.
    Variable(String),
    /// `@`: the current node of a filter.
    Current,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Token {
    /// `.a`, `['a']`, `['a','b']`.
    Property(Vec<String>),
    /// `[0]`, `[-1]`, `[0,2]`.
    Index(Vec<i64>),
    /// `[1:3]`, `[1:]`, `[:2]`.
    Slice(Option<i64>, Option<i64>),
    /// `.*`, `[*]`.
    Wildcard,
    /// `..`: the node and all its descendants.
    Scan,
    /// `[?(...)]`.
    Filter(Filter),
    /// `.length()` and friends: parsed, but Step Functions finds nothing through them.
    Function(String),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Path {
    pub root: Root,
    pub tokens: Vec<Token>,
}

/// Why a path yielded nothing; the text is Jayway's `PathNotFoundException` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NotFound(pub String);

impl Path {
    pub fn parse(text: &str) -> Result<Path, String> {
        let mut parser = Parser {
            src: text.trim(),
            pos: 0,
            in_filter: false,
        };
        let path = parser.path()?;
        if parser.pos != parser.src.len() {
            return Err(format!(
                "unexpected '{}' at position {}",
                &parser.src[parser.pos..],
                parser.pos
            ));
        }
        Ok(path)
    }

    /// A path that names at most one node (Jayway's `isDefinite`).
    pub fn is_definite(&self) -> bool {
        let last = self.tokens.len().saturating_sub(1);
        self.tokens.iter().enumerate().all(|(i, t)| match t {
            Token::Property(names) => names.len() == 1 || i == last,
            Token::Index(indexes) => indexes.len() == 1,
            Token::Function(_) => true,
            _ => false,
        })
    }

    /// A reference path: names and single indexes only (ResultPath, ItemsPath, ...).
    pub fn is_reference(&self) -> bool {
        self.tokens.iter().all(|t| match t {
            Token::Property(names) => names.len() == 1,
            Token::Index(indexes) => indexes.len() == 1 && indexes[0] >= 0,
            _ => false,
        })
    }

    /// Jayway's rendering (`$['a'][0]`), which its messages use.
    pub fn jayway_string(&self) -> String {
        let mut s = String::from(if self.root == Root::Current { "@" } else { "$" });
        for t in &self.tokens {
            s.push_str(&token_string(t));
        }
        s
    }

    /// Evaluates against `root` (the value the path's root names) with `doc` as `$` inside
    /// filters. Definite paths give the one value, indefinite ones an array of the matches.
    pub fn evaluate(&self, root: &Value, doc: &Value) -> Result<Value, NotFound> {
        let mut out = Vec::new();
        let mut walk = Walk {
            path: self,
            doc,
            out: &mut out,
        };
        let walked = walk.step(0, "$".to_string(), root, true);
        if !self.is_definite() {
            // AWS answers an indefinite path that cannot be followed with an empty array.
            return Ok(Value::Array(if walked.is_ok() { out } else { Vec::new() }));
        }
        walked?;
        out.into_iter()
            .next()
            .ok_or_else(|| NotFound(format!("No results for path: {}", self.jayway_string())))
    }
}

fn token_string(t: &Token) -> String {
    match t {
        Token::Property(names) => {
            format!(
                "[{}]",
                names
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
        Token::Index(idx) => format!(
            "[{}]",
            idx.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
        ),
        Token::Slice(from, to) => format!(
            "[{}:{}]",
            from.map(|v| v.to_string()).unwrap_or_default(),
            to.map(|v| v.to_string()).unwrap_or_default()
        ),
        Token::Wildcard => "[*]".into(),
        Token::Scan => "..".into(),
        Token::Filter(_) => "[?]".into(),
        Token::Function(name) => format!(".{name}()"),
    }
}

struct Walk<'a> {
    path: &'a Path,
    doc: &'a Value,
    out: &'a mut Vec<Value>,
}

impl Walk<'_> {
    fn step(
        &mut self,
        i: usize,
        at: String,
        node: &Value,
        upstream_definite: bool,
    ) -> Result<(), NotFound> {
        let Some(token) = self.path.tokens.get(i) else {
            self.out.push(node.clone());
            return Ok(());
        };
        let leaf = i + 1 == self.path.tokens.len();
        match token {
            Token::Property(names) => {
                let Value::Object(map) = node else {
                    if !upstream_definite {
                        return Ok(());
                    }
                    return Err(NotFound(format!(
                        "Expected to find an object with property {} in path {at} but found '{}'. \
                         This is not a json object according to the JsonProvider: \
                         'com.jayway.jsonpath.spi.json.JacksonJsonProvider'.",
                        token_string(token),
                        java_class(node)
                    )));
                };
                if names.len() > 1 && leaf {
                    // Jayway merges several leaf properties into one object.
                    let merged: Map<String, Value> = names
                        .iter()
                        .filter_map(|n| map.get(n).map(|v| (n.clone(), v.clone())))
                        .collect();
                    self.out.push(Value::Object(merged));
                    return Ok(());
                }
                let definite = upstream_definite && names.len() == 1;
                for name in names {
                    let here = format!("{at}['{name}']");
                    match map.get(name) {
                        Some(v) => self.step(i + 1, here, v, definite)?,
                        None if leaf || !definite => {}
                        None => return Err(NotFound(format!("Missing property in path {here}"))),
                    }
                }
                Ok(())
            }
            Token::Index(indexes) => {
                let Some(items) = self.array(i, &at, node, upstream_definite)? else {
                    return Ok(());
                };
                let definite = upstream_definite && indexes.len() == 1;
                for &index in indexes {
                    let effective = if index < 0 {
                        items.len() as i64 + index
                    } else {
                        index
                    };
                    if effective >= 0 && (effective as usize) < items.len() {
                        self.step(
                            i + 1,
                            format!("{at}[{index}]"),
                            &items[effective as usize],
                            definite,
                        )?;
                    }
                }
                Ok(())
            }
            Token::Slice(from, to) => {
                let Some(items) = self.array(i, &at, node, upstream_definite)? else {
                    return Ok(());
                };
                let len = items.len() as i64;
                let norm = |v: i64| if v < 0 { (len + v).max(0) } else { v.min(len) };
                let start = from.map(norm).unwrap_or(0);
                let end = to.map(norm).unwrap_or(len);
                for k in start..end.max(start) {
                    self.step(i + 1, format!("{at}[{k}]"), &items[k as usize], false)?;
                }
                Ok(())
            }
            Token::Wildcard => {
                match node {
                    Value::Object(map) => {
                        for (k, v) in map {
                            self.step(i + 1, format!("{at}['{k}']"), v, false)?;
                        }
                    }
                    Value::Array(items) => {
                        for (k, v) in items.iter().enumerate() {
                            self.step(i + 1, format!("{at}[{k}]"), v, false)?;
                        }
                    }
                    _ => {}
                }
                Ok(())
            }
            Token::Scan => self.scan(i, &at, node),
            Token::Filter(f) => {
                match node {
                    Value::Array(items) => {
                        for (k, v) in items.iter().enumerate() {
                            if f.matches(v, self.doc) {
                                self.step(i + 1, format!("{at}[{k}]"), v, false)?;
                            }
                        }
                    }
                    Value::Object(_) if f.matches(node, self.doc) => {
                        self.step(i + 1, at, node, false)?
                    }
                    _ => {}
                }
                Ok(())
            }
            Token::Function(_) => Ok(()),
        }
    }

    fn array<'v>(
        &self,
        i: usize,
        at: &str,
        node: &'v Value,
        upstream_definite: bool,
    ) -> Result<Option<&'v Vec<Value>>, NotFound> {
        match node {
            Value::Array(items) => Ok(Some(items)),
            _ if !upstream_definite => Ok(None),
            Value::Null => Err(NotFound(format!("The path {at} is null"))),
            _ => {
                let rest: String = self.path.tokens[i..].iter().map(token_string).collect();
                Err(NotFound(format!(
                    "Filter: {rest} can only be applied to arrays. Current context is: {}",
                    java_string(node)
                )))
            }
        }
    }

    fn scan(&mut self, i: usize, at: &str, node: &Value) -> Result<(), NotFound> {
        self.step(i + 1, at.to_string(), node, false)?;
        match node {
            Value::Object(map) => {
                for (k, v) in map {
                    if v.is_object() || v.is_array() {
                        self.scan(i, &format!("{at}['{k}']"), v)?;
                    }
                }
            }
            Value::Array(items) => {
                for (k, v) in items.iter().enumerate() {
                    if v.is_object() || v.is_array() {
                        self.scan(i, &format!("{at}[{k}]"), v)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The Java class Jackson maps a JSON value to, as Jayway names it in its messages.
fn java_class(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "java.lang.Boolean",
        Value::Number(n) if n.is_f64() => "java.lang.Double",
        Value::Number(n) if n.as_i64().is_some_and(|x| i32::try_from(x).is_ok()) => {
            "java.lang.Integer"
        }
        Value::Number(_) => "java.lang.Long",
        Value::String(_) => "java.lang.String",
        Value::Array(_) => "java.util.ArrayList",
        Value::Object(_) => "java.util.LinkedHashMap",
    }
}

/// Java's `toString` of the value Jackson maps JSON to: `{a=1, b=[x, y]}`; strings bare.
pub(crate) fn java_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(java_string).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}={}", java_string(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

pub(crate) struct Parser<'a> {
    pub src: &'a str,
    pub pos: usize,
    /// Inside a filter, a bare name also ends at operators, spaces and `)`.
    pub in_filter: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    pub fn path(&mut self) -> Result<Path, String> {
        let root = if self.eat('@') {
            Root::Current
        } else if !self.eat('$') {
            return Err("a path must start with '$'".into());
        } else if self.eat('$') {
            Root::Context
        } else if self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            let start = self.pos;
            while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                self.pos += self.peek().map_or(1, char::len_utf8);
            }
            Root::Variable(self.src[start..self.pos].to_string())
        } else {
            Root::Input
        };
        let mut tokens = Vec::new();
        loop {
            match self.peek() {
                Some('.') if self.src[self.pos..].starts_with("..") => {
                    self.pos += 2;
                    tokens.push(Token::Scan);
                    match self.peek() {
                        Some('[') => {}
                        Some('*') => {
                            self.pos += 1;
                            tokens.push(Token::Wildcard);
                        }
                        _ => tokens.push(self.dot_name()?),
                    }
                }
                Some('.') => {
                    self.pos += 1;
                    if self.eat('*') {
                        tokens.push(Token::Wildcard);
                    } else {
                        tokens.push(self.dot_name()?);
                    }
                }
                Some('[') => {
                    self.pos += 1;
                    tokens.push(self.bracket()?);
                }
                _ => break,
            }
        }
        Ok(Path { root, tokens })
    }

    fn dot_name(&mut self) -> Result<Token, String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            let stop = c == '.'
                || c == '['
                || c == '('
                || c.is_whitespace()
                || (self.in_filter && matches!(c, ')' | '=' | '!' | '<' | '>' | '&' | '|' | ','));
            if stop {
                break;
            }
            self.pos += c.len_utf8();
        }
        let name = &self.src[start..self.pos];
        if name.is_empty() {
            return Err(format!("path must not end with a '.' at position {start}"));
        }
        if self.src[self.pos..].starts_with("()") {
            self.pos += 2;
            return Ok(Token::Function(name.to_string()));
        }
        if self.peek() == Some('(') {
            return Err(format!("unexpected '(' at position {}", self.pos));
        }
        Ok(Token::Property(vec![name.to_string()]))
    }

    fn bracket(&mut self) -> Result<Token, String> {
        self.skip_spaces();
        let token = match self.peek() {
            Some(q @ ('\'' | '"')) => {
                let mut names = Vec::new();
                loop {
                    self.skip_spaces();
                    if !self.eat(q) {
                        return Err(format!("expected a quoted name at position {}", self.pos));
                    }
                    names.push(self.quoted(q)?);
                    self.skip_spaces();
                    if !self.eat(',') {
                        break;
                    }
                }
                Token::Property(names)
            }
            Some('*') => {
                self.pos += 1;
                Token::Wildcard
            }
            Some('?') => {
                self.pos += 1;
                self.skip_spaces();
                if !self.eat('(') {
                    return Err(format!("expected '(' after '?' at position {}", self.pos));
                }
                let start = self.pos;
                let end = matching_paren(self.src, start)
                    .ok_or_else(|| format!("unclosed filter at position {start}"))?;
                let filter = filter::parse(&self.src[start..end])?;
                self.pos = end + 1;
                Token::Filter(filter)
            }
            Some(c) if c == '-' || c == ':' || c.is_ascii_digit() => {
                let start = self.pos;
                while let Some(c) = self.peek().filter(|&c| c != ']') {
                    self.pos += c.len_utf8();
                }
                number_token(&self.src[start..self.pos])?
            }
            _ => {
                return Err(format!(
                    "unexpected character in brackets at position {}",
                    self.pos
                ));
            }
        };
        self.skip_spaces();
        if !self.eat(']') {
            return Err(format!("expected ']' at position {}", self.pos));
        }
        Ok(token)
    }

    /// A quoted name; a backslash escapes only the quote itself (AWS keeps other
    /// backslashes as they are).
    fn quoted(&mut self, q: char) -> Result<String, String> {
        let mut out = String::new();
        let mut chars = self.src[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '\\' && self.src[self.pos + i + 1..].starts_with(q) {
                out.push(q);
                chars.next();
            } else if c == q {
                self.pos += i + 1;
                return Ok(out);
            } else {
                out.push(c);
            }
        }
        Err("unclosed quoted name".into())
    }
}

/// Index of the `)` closing a `(` just before `start`, skipping quoted text.
pub(crate) fn matching_paren(src: &str, start: usize) -> Option<usize> {
    let mut depth = 1;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in src[start..].char_indices() {
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
            '\'' | '"' => quote = Some(c),
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(start + i);
                }
            }
            _ => {}
        }
    }
    None
}

fn number_token(text: &str) -> Result<Token, String> {
    let int = |s: &str| -> Result<Option<i64>, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|_| format!("invalid array index '{s}'"))
    };
    if text.contains(':') {
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() != 2 {
            return Err(format!("invalid array slice '{text}'"));
        }
        return Ok(Token::Slice(int(parts[0])?, int(parts[1])?));
    }
    let indexes = text
        .split(',')
        .map(|p| int(p)?.ok_or_else(|| format!("invalid array index '{text}'")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Token::Index(indexes))
}
