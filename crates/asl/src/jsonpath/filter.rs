//! Filter expressions (`[?(@.price < 10 && @.tag == 'x')]`) as Jayway evaluates them:
//! comparisons, `&&`, `||`, `!`, parentheses and existence checks.

use serde_json::Value;

use super::path::{Parser, Path, Root};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Filter {
    Or(Box<Filter>, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Compare(Operand, Op, Operand),
    Exists(Operand),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Operand {
    Path(Path),
    Literal(Value),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

pub(crate) fn parse(src: &str) -> Result<Filter, String> {
    let mut p = FilterParser { src, pos: 0 };
    let f = p.or()?;
    p.skip_spaces();
    if p.pos != src.len() {
        return Err(format!("unexpected '{}' in filter", &src[p.pos..]));
    }
    Ok(f)
}

impl Filter {
    /// True when `node` passes the filter; `doc` is what `$` means inside it.
    pub fn matches(&self, node: &Value, doc: &Value) -> bool {
        match self {
            Filter::Or(a, b) => a.matches(node, doc) || b.matches(node, doc),
            Filter::And(a, b) => a.matches(node, doc) && b.matches(node, doc),
            Filter::Not(f) => !f.matches(node, doc),
            Filter::Exists(o) => o.value(node, doc).is_some(),
            Filter::Compare(l, op, r) => compare(l.value(node, doc), *op, r.value(node, doc)),
        }
    }
}

impl Operand {
    fn value(&self, node: &Value, doc: &Value) -> Option<Value> {
        match self {
            Operand::Literal(v) => Some(v.clone()),
            Operand::Path(p) => {
                let root = match p.root {
                    Root::Current => node,
                    Root::Input => doc,
                    Root::Context | Root::Variable(_) => return None,
                };
                p.evaluate(root, doc).ok()
            }
        }
    }
}

fn compare(l: Option<Value>, op: Op, r: Option<Value>) -> bool {
    let (Some(l), Some(r)) = (l, r) else {
        return op == Op::Ne;
    };
    match op {
        Op::Eq => json_eq(&l, &r),
        Op::Ne => !json_eq(&l, &r),
        _ => {
            let ord = match (&l, &r) {
                (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
                (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
                _ => None,
            };
            let Some(ord) = ord else { return false };
            match op {
                Op::Lt => ord.is_lt(),
                Op::Le => ord.is_le(),
                Op::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            }
        }
    }
}

/// JSON equality with numbers compared by value (`1 == 1.0`).
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

struct FilterParser<'a> {
    src: &'a str,
    pos: usize,
}

impl FilterParser<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn skip_spaces(&mut self) {
        while self.rest().starts_with(|c: char| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_spaces();
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.eat("&&") {
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.rest().trim_start().starts_with("!=") {
            return Err("unexpected '!=' in filter".into());
        }
        if self.eat("!") {
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.eat("(") {
            let f = self.or()?;
            if !self.eat(")") {
                return Err("expected ')' in filter".into());
            }
            return Ok(f);
        }
        let left = self.operand()?;
        let op = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find(|(s, _)| self.eat(s))
        .map(|(_, op)| op);
        match op {
            Some(op) => Ok(Filter::Compare(left, op, self.operand()?)),
            None => {
                self.skip_spaces();
                let r = self.rest();
                if r.starts_with("=~") || r.starts_with(|c: char| c.is_alphabetic()) {
                    return Err(format!("unsupported filter operator in '{}'", self.src));
                }
                Ok(Filter::Exists(left))
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        self.skip_spaces();
        let rest = self.rest();
        if rest.starts_with('@') || rest.starts_with('$') {
            let mut p = Parser {
                src: self.src,
                pos: self.pos,
                in_filter: true,
            };
            let path = p.path()?;
            self.pos = p.pos;
            return Ok(Operand::Path(path));
        }
        if let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
            let mut out = String::new();
            let mut escaped = false;
            for (i, c) in rest[1..].char_indices() {
                if escaped {
                    out.push(c);
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    self.pos += i + 2;
                    return Ok(Operand::Literal(Value::String(out)));
                } else {
                    out.push(c);
                }
            }
            return Err("unclosed string in filter".into());
        }
        let end = rest
            .find(|c: char| {
                c.is_whitespace() || matches!(c, ')' | '=' | '!' | '<' | '>' | '&' | '|')
            })
            .unwrap_or(rest.len());
        let word = &rest[..end];
        let value = match word {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            _ => serde_json::from_str::<serde_json::Number>(word)
                .map(Value::Number)
                .map_err(|_| format!("invalid operand '{word}' in filter"))?,
        };
        self.pos += end;
        Ok(Operand::Literal(value))
    }
}
