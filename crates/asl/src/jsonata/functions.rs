//! The functions AWS adds to JSONata (`$partition`, `$range`, `$hash`, `$random` with a seed,
//! `$uuid`, `$parse`), the impure built-ins redirected to the caller's [`Host`] (`$now`,
//! `$millis`, `$random`, `$shuffle`), and `$eval`, which AWS does not offer.

use jsonata_core::evaluator::{Evaluator, EvaluatorError};
use jsonata_core::value::JValue;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::engine::{evaluate_helper, to_jvalue, with_host};
use crate::env::Host;

type Result = std::result::Result<JValue, EvaluatorError>;

/// Most items `$range` builds, as JSONata limits its own range operator.
const MAX_RANGE: f64 = 10_000_000.0;

pub(crate) fn register(ev: &mut Evaluator) {
    const MSG: &str = "the AWS JSONata functions have unique names";
    ev.register_fn("partition", partition).expect(MSG);
    ev.register_fn("range", range).expect(MSG);
    ev.register_fn("hash", hash).expect(MSG);
    ev.register_fn("uuid", uuid).expect(MSG);
    ev.register_fn("parse", parse).expect(MSG);
    const OVERRIDE: &str = "impure built-ins can be overridden";
    ev.register_fn_override("random", random).expect(OVERRIDE);
    ev.register_fn_override("now", now).expect(OVERRIDE);
    ev.register_fn_override("millis", millis).expect(OVERRIDE);
    ev.register_fn_override("shuffle", shuffle).expect(OVERRIDE);
    ev.register_fn_override("eval", |_: &[JValue]| -> Result {
        Err(error("T1006: Attempted to invoke a non-function"))
    })
    .expect(OVERRIDE);
}

fn error(msg: impl Into<String>) -> EvaluatorError {
    EvaluatorError::EvaluationError(msg.into())
}

fn arg(args: &[JValue], i: usize) -> &JValue {
    args.get(i).unwrap_or(&JValue::Undefined)
}

fn host<R>(f: impl FnOnce(&mut dyn Host) -> R) -> std::result::Result<R, EvaluatorError> {
    with_host(f).ok_or_else(|| error("no host is installed for this evaluation"))
}

/// `$partition(array, size)`: consecutive chunks of `size` items, the last one shorter.
fn partition(args: &[JValue]) -> Result {
    let items: Vec<JValue> = match arg(args, 0) {
        JValue::Undefined => return Ok(JValue::Undefined),
        JValue::Array(items) => items.iter().cloned().collect(),
        single => vec![single.clone()],
    };
    let size = match arg(args, 1) {
        JValue::Number(n) if *n >= 1.0 && n.fract() == 0.0 => *n as usize,
        other => {
            return Err(error(format!(
                "The size argument of the partition function must be a positive integer, but was {}",
                describe(other)
            )));
        }
    };
    let chunks = items
        .chunks(size)
        .map(|c| JValue::array(c.to_vec()))
        .collect();
    Ok(JValue::array(chunks))
}

/// `$range(start, end, step)`: `start`, `start + step`, ... up to and including `end`. The
/// result is a sequence, so a single item stands alone (`$range(1, 9, 9)` is `1`).
fn range(args: &[JValue]) -> Result {
    let mut nums = [0.0; 3];
    for (i, name) in ["start", "end", "step"].iter().enumerate() {
        match arg(args, i) {
            JValue::Number(n) => nums[i] = *n,
            JValue::Undefined => return Ok(JValue::Undefined),
            other => {
                return Err(error(format!(
                    "The {name} argument of the range function must be a number, but was {}",
                    describe(other)
                )));
            }
        }
    }
    let [start, end, step] = nums;
    if step == 0.0 || !step.is_finite() {
        return Err(error(
            "The step argument of the range function must not be zero",
        ));
    }
    let count = ((end - start) / step).floor() + 1.0;
    if count > MAX_RANGE {
        return Err(error(format!(
            "D2014: The size of the sequence allocated by the range function must not exceed {MAX_RANGE:.0}, attempted to allocate {count:.0}"
        )));
    }
    let count = if count.is_finite() && count > 0.0 {
        count as usize
    } else {
        0
    };
    let items = (0..count)
        .map(|i| JValue::Number(start + step * i as f64))
        .collect();
    Ok(JValue::sequence(items))
}

/// `$hash(value, algorithm)`: the lowercase hex digest of a string.
fn hash(args: &[JValue]) -> Result {
    let value = match arg(args, 0) {
        JValue::Undefined => return Ok(JValue::Undefined),
        JValue::String(s) => s.clone(),
        other => {
            return Err(error(format!(
                "The value argument of the hash function must be a string, but was {}",
                describe(other)
            )));
        }
    };
    let algorithm = arg(args, 1).as_str().unwrap_or("");
    let bytes = value.as_bytes();
    let digest = match algorithm {
        "MD5" => hex(&Md5::digest(bytes)),
        "SHA-1" => hex(&Sha1::digest(bytes)),
        "SHA-256" => hex(&Sha256::digest(bytes)),
        "SHA-384" => hex(&Sha384::digest(bytes)),
        "SHA-512" => hex(&Sha512::digest(bytes)),
        _ => {
            return Err(error(format!(
                "The hash algorithm must be one of MD5, SHA-1, SHA-256, SHA-384, SHA-512, but was {}",
                describe(arg(args, 1))
            )));
        }
    };
    Ok(JValue::string(digest))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `$random([seed])`: the host's randomness, or a number fixed by the seed.
fn random(args: &[JValue]) -> Result {
    match arg(args, 0) {
        JValue::Undefined => Ok(JValue::Number(host(|h| h.random())?)),
        seed => {
            let text = serde_json::Value::from(seed).to_string();
            // FNV-1a over the seed's JSON text, then splitmix64: stable across runs and builds.
            let mut x = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^= x >> 31;
            Ok(JValue::Number((x >> 11) as f64 / (1u64 << 53) as f64))
        }
    }
}

/// `$uuid()`: a version 4 UUID from the host.
fn uuid(_: &[JValue]) -> Result {
    Ok(JValue::string(host(|h| h.uuid())?))
}

/// `$parse(text)`: the JSON value a string holds.
fn parse(args: &[JValue]) -> Result {
    match arg(args, 0) {
        JValue::Undefined => Ok(JValue::Undefined),
        JValue::String(s) => match serde_json::from_str::<serde_json::Value>(s) {
            Ok(value) => Ok(to_jvalue(&value)),
            Err(e) => Err(error(format!(
                "The argument of the parse function is not valid JSON: {e}"
            ))),
        },
        other => Err(error(format!(
            "The argument of the parse function must be a string, but was {}",
            describe(other)
        ))),
    }
}

/// `$now([picture [, timezone]])` at the host's time.
fn now(args: &[JValue]) -> Result {
    let ms = JValue::Number(host(|h| h.now_ms())? as f64);
    let expr = match args.len() {
        0 => "$fromMillis($ms)",
        1 => "$fromMillis($ms, $picture)",
        _ => "$fromMillis($ms, $picture, $timezone)",
    };
    evaluate_helper(
        expr,
        &[
            ("ms", ms),
            ("picture", arg(args, 0).clone()),
            ("timezone", arg(args, 1).clone()),
        ],
    )
}

/// `$millis()` at the host's time.
fn millis(_: &[JValue]) -> Result {
    Ok(JValue::Number(host(|h| h.now_ms())? as f64))
}

/// `$shuffle(array)` with the host's randomness, by jsonata-js's inside-out Fisher-Yates.
fn shuffle(args: &[JValue]) -> Result {
    let items: Vec<JValue> = match arg(args, 0) {
        JValue::Undefined => return Ok(JValue::Undefined),
        JValue::Array(items) => items.iter().cloned().collect(),
        single => vec![single.clone()],
    };
    if items.len() <= 1 {
        return Ok(JValue::array(items));
    }
    let mut result: Vec<JValue> = Vec::with_capacity(items.len());
    host(|h| {
        for (i, item) in items.into_iter().enumerate() {
            let j = ((h.random() * (i + 1) as f64).floor() as usize).min(i);
            if j == i {
                result.push(item);
            } else {
                let displaced = std::mem::replace(&mut result[j], item);
                result.push(displaced);
            }
        }
    })?;
    Ok(JValue::array(result))
}

fn describe(v: &JValue) -> String {
    match v {
        JValue::Undefined => "undefined".to_string(),
        JValue::Lambda(_) | JValue::Builtin { .. } => "a function".to_string(),
        other => serde_json::Value::from(other).to_string(),
    }
}
