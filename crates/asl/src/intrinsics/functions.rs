//! The 18 `States.*` functions over evaluated arguments. Each returns its value or the
//! cause of a `States.IntrinsicFailure`.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Number, Value};

use crate::env::Host;
use crate::jsonpath::{java_string, json_eq};

/// Longest string AWS accepts in `States.Base64Encode`, `States.Base64Decode`, `States.Hash`.
const MAX_STRING_CHARS: usize = 10_000;
/// Base64 as Java's basic encoder writes it and its decoder reads it: padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// Longest array `States.ArrayRange` may produce.
const MAX_RANGE_ITEMS: usize = 1000;

/// (least, most) arguments a function takes; `None` for an unknown function.
pub(crate) fn arity(name: &str) -> Option<(usize, Option<usize>)> {
    Some(match name {
        "States.Format" => (1, None),
        "States.Array" => (0, None),
        "States.UUID" => (0, Some(0)),
        "States.StringToJson"
        | "States.JsonToString"
        | "States.ArrayLength"
        | "States.ArrayUnique"
        | "States.Base64Encode"
        | "States.Base64Decode" => (1, Some(1)),
        "States.ArrayPartition"
        | "States.ArrayContains"
        | "States.ArrayGetItem"
        | "States.Hash"
        | "States.MathAdd"
        | "States.StringSplit" => (2, Some(2)),
        "States.ArrayRange" | "States.JsonMerge" => (3, Some(3)),
        "States.MathRandom" => (2, Some(3)),
        _ => return None,
    })
}

/// Applies `name` to its evaluated `args`. `template_raw` is the literal text of
/// `States.Format`'s first argument when it was written as a quoted string.
pub(crate) fn apply(
    name: &str,
    args: Vec<Value>,
    template_raw: Option<&str>,
    host: &mut dyn Host,
) -> Result<Value, String> {
    let f = Args { name, args };
    match name {
        "States.Format" => f.format(template_raw),
        "States.StringToJson" => {
            let s = f.string(0)?;
            if s.trim().is_empty() {
                return Ok(Value::Null);
            }
            let mut value: Value = serde_json::from_str(s)
                .map_err(|_| f.invalid(&format!("'{s}' is not valid JSON")))?;
            // Jackson reads `-0` as the integer 0, serde_json as the float -0.0.
            if !s.contains("-0.") && !s.contains("-0e") && !s.contains("-0E") {
                integer_zeros(&mut value);
            }
            Ok(value)
        }
        "States.JsonToString" => Ok(Value::String(
            serde_json::to_string(&f.args[0]).unwrap_or_default(),
        )),
        "States.Array" => Ok(Value::Array(f.args)),
        "States.ArrayPartition" => {
            let items = f.array(0)?;
            let size = f.integer(1)?;
            if size <= 0 {
                return Err(f.invalid("the chunk size must be greater than 0"));
            }
            Ok(Value::Array(
                items
                    .chunks(size as usize)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            ))
        }
        "States.ArrayContains" => {
            let items = f.array(0)?;
            Ok(Value::Bool(items.iter().any(|v| json_eq(v, &f.args[1]))))
        }
        "States.ArrayRange" => {
            let (start, end, step) = (f.rounded(0)?, f.rounded(1)?, f.rounded(2)?);
            if step == 0 {
                return Err(f.invalid("the step must not be 0"));
            }
            let count = if (step > 0 && end >= start) || (step < 0 && end <= start) {
                ((end - start) / step + 1) as usize
            } else {
                0
            };
            if count > MAX_RANGE_ITEMS {
                return Err(f.invalid(&format!(
                    "the range has {count} items, more than {MAX_RANGE_ITEMS}"
                )));
            }
            Ok(Value::Array(
                (0..count as i64)
                    .map(|k| Value::from(start + k * step))
                    .collect(),
            ))
        }
        "States.ArrayGetItem" => {
            let items = f.array(0)?;
            let index = f.integer(1)?;
            usize::try_from(index)
                .ok()
                .and_then(|i| items.get(i))
                .cloned()
                .ok_or_else(|| {
                    f.invalid(&format!(
                        "index {index} is out of bounds for an array of length {}",
                        items.len()
                    ))
                })
        }
        "States.ArrayLength" => Ok(Value::from(f.array(0)?.len())),
        "States.ArrayUnique" => {
            let mut unique: Vec<Value> = Vec::new();
            for v in f.array(0)? {
                if !unique.iter().any(|u| json_eq(u, v)) {
                    unique.push(v.clone());
                }
            }
            Ok(Value::Array(unique))
        }
        "States.Base64Encode" => Ok(Value::String(BASE64.encode(f.bounded_string(0)?))),
        "States.Base64Decode" => {
            let bytes = BASE64
                .decode(f.bounded_string(0)?)
                .map_err(|_| f.invalid("the argument is not valid base64"))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| f.invalid("the decoded bytes are not valid UTF-8"))
        }
        "States.Hash" => {
            let data = f.bounded_string(0)?;
            let algorithm = f.string(1)?;
            let digest = hash(algorithm, data.as_bytes()).ok_or_else(|| {
                f.invalid(&format!(
                    "'{algorithm}' is not a supported algorithm: use MD5, SHA-1, SHA-256, SHA-384 or SHA-512"
                ))
            })?;
            Ok(Value::String(digest))
        }
        "States.JsonMerge" => {
            let (Value::Object(first), Value::Object(second)) = (&f.args[0], &f.args[1]) else {
                return Err(f.invalid("the first two arguments must be JSON objects"));
            };
            match f.args[2] {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    return Err(f.invalid("only the shallow merging mode is supported: the third argument must be false"));
                }
                _ => return Err(f.invalid("the third argument must be a boolean")),
            }
            let mut merged: Map<String, Value> = first.clone();
            for (k, v) in second {
                merged.insert(k.clone(), v.clone());
            }
            Ok(Value::Object(merged))
        }
        "States.MathRandom" => {
            let (start, end) = (f.rounded(0)?, f.rounded(1)?);
            if end < start {
                return Err(f.invalid("the end must not be less than the start"));
            }
            let span = end - start;
            let offset = match f.args.get(2) {
                Some(_) => JavaRandom::new(f.rounded(2)?).below(span),
                None => (host.random() * span as f64).floor() as i64,
            };
            Ok(Value::from(
                start
                    + if span == 0 {
                        0
                    } else {
                        offset.clamp(0, span - 1)
                    },
            ))
        }
        "States.MathAdd" => Ok(Value::from(f.rounded(0)? + f.rounded(1)?)),
        "States.StringSplit" => {
            let s = f.string(0)?;
            let delimiters = f.string(1)?;
            // Java's StringTokenizer: any delimiter character splits, empty tokens vanish.
            Ok(Value::Array(
                s.split(|c| delimiters.contains(c))
                    .filter(|t| !t.is_empty())
                    .map(|t| Value::String(t.to_string()))
                    .collect(),
            ))
        }
        "States.UUID" => Ok(Value::String(host.uuid())),
        other => Err(format!("unknown intrinsic function {other}")),
    }
}

struct Args<'a> {
    name: &'a str,
    args: Vec<Value>,
}

impl Args<'_> {
    fn invalid(&self, why: &str) -> String {
        format!("Invalid arguments in {}: {why}", self.name)
    }

    fn ordinal(i: usize) -> &'static str {
        ["first", "second", "third"]
            .get(i)
            .copied()
            .unwrap_or("next")
    }

    fn string(&self, i: usize) -> Result<&str, String> {
        self.args[i].as_str().ok_or_else(|| {
            self.invalid(&format!(
                "the {} argument must be a string",
                Self::ordinal(i)
            ))
        })
    }

    fn bounded_string(&self, i: usize) -> Result<&str, String> {
        let s = self.string(i)?;
        if s.chars().count() > MAX_STRING_CHARS {
            return Err(self.invalid(&format!(
                "the {} argument is longer than {MAX_STRING_CHARS} characters",
                Self::ordinal(i)
            )));
        }
        Ok(s)
    }

    fn array(&self, i: usize) -> Result<&Vec<Value>, String> {
        self.args[i].as_array().ok_or_else(|| {
            self.invalid(&format!(
                "the {} argument must be an array",
                Self::ordinal(i)
            ))
        })
    }

    /// An integer argument; a number with a fractional part is refused.
    fn integer(&self, i: usize) -> Result<i64, String> {
        let n = self.args[i].as_number();
        n.and_then(Number::as_i64)
            .or_else(|| {
                n.and_then(Number::as_f64)
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| {
                self.invalid(&format!(
                    "the {} argument must be an integer",
                    Self::ordinal(i)
                ))
            })
    }

    /// A numeric argument rounded to the nearest integer, halves up (Java's `Math.round`),
    /// within the 32-bit range.
    fn rounded(&self, i: usize) -> Result<i64, String> {
        let n = self.args[i].as_number().ok_or_else(|| {
            self.invalid(&format!(
                "the {} argument must be a number",
                Self::ordinal(i)
            ))
        })?;
        let value = n
            .as_i64()
            .unwrap_or_else(|| (n.as_f64().unwrap_or(0.0) + 0.5).floor() as i64);
        // AWS's functions work on 32-bit integers; keeping to them also keeps sums in range.
        if i32::try_from(value).is_err() {
            return Err(self.invalid(&format!(
                "the {} argument must be between {} and {}",
                Self::ordinal(i),
                i32::MIN,
                i32::MAX
            )));
        }
        Ok(value)
    }

    fn format(&self, template_raw: Option<&str>) -> Result<Value, String> {
        let template = self.string(0)?;
        let values = &self.args[1..];
        let mut out = String::new();
        let mut used = 0;
        let mut chars = template_raw.unwrap_or(template).chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if template_raw.is_some() => out.extend(chars.next()),
                '{' if chars.peek() == Some(&'}') => {
                    chars.next();
                    let value = values.get(used).ok_or_else(|| {
                        self.invalid(
                            "the format string has more placeholders than there are arguments",
                        )
                    })?;
                    out.push_str(&java_string(value));
                    used += 1;
                }
                c => out.push(c),
            }
        }
        if used != values.len() {
            return Err(
                self.invalid("the format string has fewer placeholders than there are arguments")
            );
        }
        Ok(Value::String(out))
    }
}

fn integer_zeros(v: &mut Value) {
    match v {
        Value::Number(n) if n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative()) => {
            *v = Value::from(0)
        }
        Value::Array(items) => items.iter_mut().for_each(integer_zeros),
        Value::Object(map) => map.values_mut().for_each(integer_zeros),
        _ => {}
    }
}

fn hash(algorithm: &str, data: &[u8]) -> Option<String> {
    use sha2::Digest as _;
    let bytes: Vec<u8> = match algorithm {
        "MD5" => md5::Md5::digest(data).to_vec(),
        "SHA-1" => sha1::Sha1::digest(data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    };
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `java.util.Random`: a seeded `States.MathRandom` gives the same number every time.
struct JavaRandom {
    seed: u64,
}

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> Self {
        Self {
            seed: (seed as u64 ^ Self::MULTIPLIER) & Self::MASK,
        }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.seed >> (48 - bits)) as i32
    }

    /// A number in [0, bound); 0 when the bound is not positive.
    fn below(&mut self, bound: i64) -> i64 {
        let Ok(bound) = i32::try_from(bound) else {
            return 0;
        };
        if bound <= 0 {
            return 0;
        }
        if bound & -bound == bound {
            return (bound as i64 * self.next(31) as i64) >> 31;
        }
        loop {
            let bits = self.next(31);
            let val = bits % bound;
            if bits.wrapping_sub(val).wrapping_add(bound - 1) >= 0 {
                return val as i64;
            }
        }
    }
}
