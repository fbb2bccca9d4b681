//! The `States.*` intrinsic functions of JSONPath payload templates.
//!
//! `parse` reads a call into a tree; `functions` holds the 18 functions with AWS's argument
//! rules. Arguments are evaluated innermost first, paths against the same scope as the field.

mod functions;
mod parse;

use serde_json::Value;

use crate::env::{Host, Scope};
use crate::error::Failure;
use crate::jsonpath;
use parse::{Arg, Call};

/// True when `s` looks like an intrinsic function call (`States.Name(...)`).
pub fn is_call(s: &str) -> bool {
    s.trim_start().starts_with("States.")
}

/// Parses an intrinsic function call (syntax, function name, argument count) without
/// evaluating it; the error text is what AWS reports for an invalid call at validation.
pub fn check(expr: &str) -> Result<(), String> {
    let call = parse::parse(expr)?;
    if depth(&call) > MAX_NESTING {
        return Err(format!(
            "intrinsic functions can be nested at most {MAX_NESTING} deep"
        ));
    }
    check_call(&call)
}

/// How deep AWS lets intrinsic function calls nest within one field.
const MAX_NESTING: usize = 10;

fn depth(call: &Call) -> usize {
    1 + call
        .args
        .iter()
        .filter_map(|a| match a {
            Arg::Call(inner) => Some(depth(inner)),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

fn check_call(call: &Call) -> Result<(), String> {
    let (min, max) = functions::arity(&call.name)
        .ok_or_else(|| format!("unknown intrinsic function {}", call.name))?;
    let n = call.args.len();
    if n < min || max.is_some_and(|max| n > max) {
        let expected = match max {
            Some(max) if max == min => format!("{min}"),
            Some(max) => format!("{min} to {max}"),
            None => format!("at least {min}"),
        };
        return Err(format!("{} takes {expected} arguments, got {n}", call.name));
    }
    for arg in &call.args {
        if let Arg::Call(inner) = arg {
            check_call(inner)?;
        }
    }
    Ok(())
}

/// Evaluates one intrinsic function call, arguments included. Where the call is the value of
/// a field, prefer [`eval_in_field`]: AWS names the field when a path argument finds nothing.
pub fn eval(expr: &str, scope: &Scope, host: &mut dyn Host) -> Result<Value, Failure> {
    eval_in_field(expr, expr, scope, host)
}

/// Evaluates a call written in the field `field` (`"value.$"`, `"CausePath"`), which AWS
/// names when a path argument finds nothing.
pub fn eval_in_field(
    expr: &str,
    field: &str,
    scope: &Scope,
    host: &mut dyn Host,
) -> Result<Value, Failure> {
    let call = parse::parse(expr).map_err(|e| {
        Failure::intrinsic(format!("Invalid intrinsic function call '{expr}': {e}"))
    })?;
    check_call(&call).map_err(|e| {
        Failure::intrinsic(format!("Invalid intrinsic function call '{expr}': {e}"))
    })?;
    eval_call(&call, field, scope, host)
}

fn eval_call(
    call: &Call,
    field: &str,
    scope: &Scope,
    host: &mut dyn Host,
) -> Result<Value, Failure> {
    let mut args = Vec::with_capacity(call.args.len());
    for arg in &call.args {
        args.push(match arg {
            Arg::Text { value, .. } => Value::String(value.clone()),
            Arg::Literal(v) => v.clone(),
            Arg::Path(path) => match jsonpath::query(path, scope) {
                Ok(Ok(v)) => v,
                _ => return Err(jsonpath::not_found(path, field, scope.input)),
            },
            Arg::Call(inner) => eval_call(inner, field, scope, host)?,
        });
    }
    // States.Format reads `{}` placeholders from the literal text, where `\{` is no placeholder.
    let template_raw = match (call.name.as_str(), call.args.first()) {
        ("States.Format", Some(Arg::Text { raw, .. })) => Some(raw.as_str()),
        _ => None,
    };
    functions::apply(&call.name, args, template_raw, host).map_err(Failure::intrinsic)
}

#[cfg(test)]
mod conformance;

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::env::FixedHost;

    // Values below are AWS's recorded answers (conformance cases), unless a test says otherwise.

    fn run(expr: &str, input: Value) -> Result<Value, Failure> {
        let context = json!({"StateMachine": {"Name": "statemachine_1"}});
        let vars = Map::new();
        let scope = Scope {
            input: &input,
            context: &context,
            vars: &vars,
        };
        eval(expr, &scope, &mut FixedHost::new(0, 3))
    }

    fn ok(expr: &str, input: Value) -> Value {
        run(expr, input).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    #[test]
    fn format_renders_strings_bare_and_objects_as_java_does() {
        let f = "States.Format('Formatting arguments fst={} and snd={}.', $.fst, $.snd)";
        assert_eq!(
            ok(
                f,
                json!({"fst": {"Arg1": 1, "Arg2": []}, "snd": {"Arg1": 1, "Arg2": []}})
            ),
            json!("Formatting arguments fst={Arg1=1, Arg2=[]} and snd={Arg1=1, Arg2=[]}.")
        );
        assert_eq!(
            ok(f, json!({"fst": null, "snd": 1.1})),
            json!("Formatting arguments fst=null and snd=1.1.")
        );
        assert_eq!(
            ok(
                "States.Format('Formatting argument {}.', $.v)",
                json!({"v": "{\"Arg1\": 1, \"Arg2\": []}"})
            ),
            json!("Formatting argument {\"Arg1\": 1, \"Arg2\": []}.")
        );
        // AWS documents `\{` and `\}` as literal braces.
        assert_eq!(
            ok(r"States.Format('\{} {}', 'x')", json!({})),
            json!("{} x")
        );
    }

    #[test]
    fn math_add_rounds_each_argument_half_up() {
        for (a, b, sum) in [
            (-9.0, 3.0, -6),
            (1.49, 1.5, 3),
            (1.5, 1.51, 4),
            (-0.5, 0.5, 1),
            (-0.5, 0.0, 0),
            (-2.5, 0.0, -2),
        ] {
            assert_eq!(
                ok("States.MathAdd($.a, $.b)", json!({"a": a, "b": b})),
                json!(sum),
                "{a} + {b}"
            );
        }
        assert_eq!(ok("States.MathAdd(-9, 3)", json!({})), json!(-6));
        // AWS documents 32-bit integer arguments.
        assert_eq!(
            run("States.MathAdd(9223372036854775807, 1)", json!({}))
                .unwrap_err()
                .error_name(),
            "States.IntrinsicFailure"
        );
        assert!(run("States.ArrayRange(-2147483648, 2147483647, 1)", json!({})).is_err());
    }

    #[test]
    fn string_split_splits_on_any_delimiter_and_drops_empty_parts() {
        assert_eq!(
            ok("States.StringSplit($.s, ',')", json!({"s": ", , ,"})),
            json!([" ", " "])
        );
        assert_eq!(
            ok("States.StringSplit($.s, ',')", json!({"s": ",,,,"})),
            json!([])
        );
        assert_eq!(
            ok(
                "States.StringSplit($.s, $.d)",
                json!({"s": "split on T and \nnew line", "d": "T\n"})
            ),
            json!(["split on ", " and ", "new line"])
        );
        assert_eq!(
            ok("States.StringSplit('Hello\nWorld', '\n')", json!({})),
            json!(["Hello", "World"])
        );
    }

    #[test]
    fn hash_supports_aws_algorithms() {
        let data = json!({"d": "input data"});
        assert_eq!(
            ok("States.Hash($.d, 'MD5')", data.clone()),
            json!("812f45842bc6d66ee14572ce20db8e86")
        );
        assert_eq!(
            ok("States.Hash($.d, 'SHA-1')", data.clone()),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
        );
        assert_eq!(
            ok("States.Hash($.d, 'SHA-384')", data.clone()),
            json!(
                "d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562"
            )
        );
        assert_eq!(
            ok("States.Hash('Hash this string', 'SHA-256')", json!({})),
            json!("1cac63f39fd68d8c531f27b807610fb3d50f0fc3f186995767fb6316e7200a3e")
        );
        let err = run("States.Hash($.d, 'SHA-999')", data).unwrap_err();
        assert_eq!(err.error_name(), "States.IntrinsicFailure");
    }

    #[test]
    fn json_conversions() {
        assert_eq!(
            ok("States.StringToJson($.s)", json!({"s": ""})),
            Value::Null
        );
        assert_eq!(
            ok("States.StringToJson($.s)", json!({"s": " "})),
            Value::Null
        );
        assert_eq!(ok("States.StringToJson($.s)", json!({"s": "-0"})), json!(0));
        assert_eq!(
            ok(
                "States.StringToJson($.s)",
                json!({"s": "{\"Arg1\": 1, \"Arg2\": []}"})
            ),
            json!({"Arg1": 1, "Arg2": []})
        );
        assert_eq!(
            ok(
                "States.JsonToString($.v)",
                json!({"v": {"Arg1": 1, "Arg2": []}})
            ),
            json!("{\"Arg1\":1,\"Arg2\":[]}")
        );
        assert_eq!(
            ok("States.JsonToString($.v)", json!({"v": "HelloWorld"})),
            json!("\"HelloWorld\"")
        );
        assert_eq!(
            ok("States.JsonToString($.v)", json!({"v": 1.1})),
            json!("1.1")
        );
    }

    #[test]
    fn json_merge_is_shallow_only() {
        let input = json!({"a": {"a": {"a1": 1, "a2": 2}, "b": 2, "d": 3}, "b": {"a": {"a3": 1, "a4": 2}, "c": 3, "d": 4}});
        assert_eq!(
            ok("States.JsonMerge($.a, $.b, false)", input.clone()),
            json!({"a": {"a3": 1, "a4": 2}, "b": 2, "d": 4, "c": 3})
        );
        assert_eq!(
            ok(
                r#"States.JsonMerge(States.StringToJson('{"constant_in_literal": "false"}'), $.b, false)"#,
                input.clone()
            ),
            json!({"constant_in_literal": "false", "a": {"a3": 1, "a4": 2}, "c": 3, "d": 4})
        );
        // AWS documents that only shallow merging is supported.
        assert_eq!(
            run("States.JsonMerge($.a, $.b, true)", input)
                .unwrap_err()
                .error_name(),
            "States.IntrinsicFailure"
        );
    }

    #[test]
    fn array_functions() {
        let nine = json!({"a": [1, 2, 3, 4, 5, 6, 7, 8, 9]});
        assert_eq!(ok("States.ArrayGetItem($.a, 5)", nine.clone()), json!(6));
        assert_eq!(ok("States.ArrayLength($.a)", nine.clone()), json!(9));
        assert_eq!(
            ok("States.ArrayPartition($.a, 4)", nine),
            json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]])
        );
        assert_eq!(
            ok("States.ArrayPartition($.a, 3)", json!({"a": []})),
            json!([])
        );
        assert_eq!(
            ok("States.ArrayRange(0, 10, 3)", json!({})),
            json!([0, 3, 6, 9])
        );
        assert_eq!(
            ok("States.ArrayRange(1, 9, 2)", json!({})),
            json!([1, 3, 5, 7, 9])
        );
        assert_eq!(ok("States.Array()", json!({})), json!([]));
        assert_eq!(
            ok("States.Array($.a, 'b', 1, null)", json!({"a": 0})),
            json!([0, "b", 1, null])
        );
        let contains = json!({"a": [{"1": 2, "2": []}], "v": {"1": 2, "2": []}});
        assert_eq!(ok("States.ArrayContains($.a, $.v)", contains), json!(true));
        assert_eq!(
            ok(
                "States.ArrayContains($.a, $.v)",
                json!({"a": [], "v": null})
            ),
            json!(false)
        );
        // AWS's documented example.
        assert_eq!(
            ok(
                "States.ArrayUnique($.a)",
                json!({"a": [1, 2, 3, 3, 3, 3, 3, 3, 4]})
            ),
            json!([1, 2, 3, 4])
        );
        assert_eq!(
            run("States.ArrayGetItem($.a, 3)", json!({"a": [1]}))
                .unwrap_err()
                .error_name(),
            "States.IntrinsicFailure"
        );
    }

    #[test]
    fn base64_round_trip() {
        assert_eq!(
            ok("States.Base64Encode('Hello World')", json!({})),
            json!("SGVsbG8gV29ybGQ=")
        );
        assert_eq!(
            ok("States.Base64Decode('SGVsbG8gV29ybGQ=')", json!({})),
            json!("Hello World")
        );
        assert_eq!(ok("States.Base64Encode($.s)", json!({"s": ""})), json!(""));
        // Not recorded: Java's decoder, which AWS runs on, does not require the padding.
        assert_eq!(
            ok("States.Base64Decode('SGVsbG8gV29ybGQ')", json!({})),
            json!("Hello World")
        );
        assert_eq!(
            run("States.Base64Decode('not base64!')", json!({}))
                .unwrap_err()
                .error_name(),
            "States.IntrinsicFailure"
        );
    }

    #[test]
    fn nested_calls_read_the_context_object() {
        let e = "States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), \
                 States.MathAdd(States.ArrayLength(States.StringSplit($$.StateMachine.Name, '-')), -1))";
        assert_eq!(ok(e, json!({})), json!("statemachine_1"));
    }

    #[test]
    fn random_and_uuid_come_from_the_host_or_the_seed() {
        let a = ok("States.MathRandom(0, 999, 3)", json!({}));
        assert_eq!(a, ok("States.MathRandom(0, 999, 3)", json!({})));
        assert!((0..999).contains(&a.as_i64().unwrap()));
        let r = ok("States.MathRandom(-99999, -9999)", json!({}))
            .as_i64()
            .unwrap();
        assert!((-99999..-9999).contains(&r));
        assert_eq!(
            ok("States.UUID()", json!({})),
            json!(FixedHost::new(0, 3).uuid())
        );
    }

    #[test]
    fn missing_path_argument_names_the_field() {
        let context = json!({});
        let vars = Map::new();
        let input = json!({"a": 1});
        let scope = Scope {
            input: &input,
            context: &context,
            vars: &vars,
        };
        let err = eval_in_field(
            "States.Format('{}', $.nope)",
            "out.$",
            &scope,
            &mut FixedHost::new(0, 1),
        )
        .unwrap_err();
        assert_eq!(err.error_name(), "States.Runtime");
        assert_eq!(
            err.cause.as_deref(),
            Some(
                "The JSONPath '$.nope' specified for the field 'out.$' could not be found in the input '{\"a\":1}'"
            )
        );
    }

    #[test]
    fn check_refuses_what_aws_refuses() {
        assert!(check("States.Format('Hello {}', $.name)").is_ok());
        assert!(
            check("States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), 0)").is_ok()
        );
        assert!(check("States.UUID()").is_ok());
        // Recorded: AWS refuses `\"` inside an intrinsic's string.
        assert!(
            check(r#"States.Format('He said, \"Hello, {}!\"', 'Test \"Name\" Here')"#).is_err()
        );
        assert!(
            check(r#"States.StringToJson('{"text":"An \"escaped double quote\" here"}')"#).is_err()
        );
        assert!(check("States.NoSuchFunction(1)").is_err());
        assert!(check("States.ArrayLength()").is_err());
        assert!(check("States.MathRandom(1, 2, 3, 4)").is_err());
        assert!(check("States.Format('x'").is_err());
        // AWS documents at most 10 nested calls in one field.
        let nested = |n: usize| format!("{}1{}", "States.Array(".repeat(n), ")".repeat(n));
        assert!(check(&nested(10)).is_ok());
        assert!(check(&nested(11)).is_err());
    }

    #[test]
    fn malformed_text_is_refused_without_panicking() {
        let samples = [
            "States.Format('He said {} \\{é\\}', $.a[?(@.b == 'ü' && @.c >= 1.5e3 || !@.d)], States.Array(-1, true, null))",
            "$.a..b[*]['x','y'][1:3][-1].c.length()",
            "$$.Execution.Input['k\\'ey']\u{3000}[\u{3000}1é]",
            "$var.x[0]",
        ];
        let input = json!({"a": [{"b": "ü", "c": 2000, "d": false}], "x": {"y": 1}});
        let context = json!({});
        let vars = Map::new();
        let scope = Scope {
            input: &input,
            context: &context,
            vars: &vars,
        };
        for sample in samples {
            for (end, _) in sample
                .char_indices()
                .chain(std::iter::once((sample.len(), ' ')))
            {
                let text = &sample[..end];
                let _ = check(text);
                let _ = jsonpath::check(text, false);
                let _ = eval(text, &scope, &mut FixedHost::new(0, 1));
                let _ = jsonpath::read(text, &scope);
            }
        }
    }
}
