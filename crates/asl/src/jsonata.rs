//! JSONata as Step Functions applies it: `{% expr %}` strings in `Arguments`, `Output`,
//! `Assign`, `Condition` and the other JSONata fields, with `$states` bound and AWS's added
//! functions (`$partition`, `$range`, `$hash`, `$random`, `$uuid`, `$parse`) and no `$eval`.
//!
//! Failures carry AWS's causes word for word (`The JSONata expression '...' specified for the
//! field '...' ...`); the interpreter prefixes the state's location.

#[cfg(test)]
mod corpus_tests;
mod engine;
mod functions;
mod messages;

use serde_json::{Map, Value};

use self::engine::{Current, Engine, Outcome};
use crate::env::Host;
use crate::error::Failure;

/// Evaluates every `{% ... %}` string in `template` (objects and arrays recursively), with
/// `states` bound to `$states` and `vars` as variables. `field` names the field for error
/// messages (e.g. `Output`, `Arguments`), nested keys extend it as AWS does (`Output/result`).
pub fn eval_template(
    template: &Value,
    field: &str,
    states: &Value,
    vars: &Map<String, Value>,
    host: &mut dyn Host,
) -> Result<Value, Failure> {
    Scope::new(states, vars, host).template(template, field)
}

/// Evaluates one JSONata expression (without `{% %}`); `Ok(None)` when it is undefined.
pub fn eval_expr(
    expr: &str,
    states: &Value,
    vars: &Map<String, Value>,
    host: &mut dyn Host,
) -> Result<Option<Value>, Failure> {
    match Scope::new(states, vars, host).outcome(expr) {
        Ok(Outcome::Value(v)) => Ok(Some(v)),
        Ok(Outcome::Undefined) => Ok(None),
        Ok(Outcome::Unsupported) => Err(Failure::query_evaluation(format!(
            "The JSONata expression '{expr}' returned an unsupported result type."
        ))),
        Err(e) => Err(Failure::query_evaluation(format!(
            "The JSONata expression '{expr}' threw an error during evaluation. {}",
            e.0
        ))),
    }
}

/// Evaluates a field that must produce one JSON type (`Items` an array, `Condition` a boolean):
/// as [`eval_template`], then, when the field is a `{% %}` expression, checks the result's type
/// with AWS's cause ([`expect_type`]). Literal values are the validator's business.
pub fn eval_typed(
    template: &Value,
    field: &str,
    expected: JsonType,
    states: &Value,
    vars: &Map<String, Value>,
    host: &mut dyn Host,
) -> Result<Value, Failure> {
    let value = eval_template(template, field, states, vars, host)?;
    if let Some(expr) = template.as_str().and_then(expression) {
        expect_type(expr, field, &value, expected)?;
    }
    Ok(value)
}

/// Checks the syntax of one JSONata expression (without `{% %}`) without evaluating it; the
/// error is the engine's message (`S0207: Unexpected end of expression`).
pub fn check(expr: &str) -> Result<(), String> {
    Current::default().check(expr).map_err(|e| e.0)
}

/// The expression inside a `{% ... %}` string (trimmed), or `None` for any other string.
pub fn expression(s: &str) -> Option<&str> {
    s.strip_prefix("{%")?.strip_suffix("%}").map(str::trim)
}

/// A JSON type as AWS names it in result-type errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonType {
    Array,
    Boolean,
    Null,
    Number,
    Object,
    String,
}

impl JsonType {
    pub fn of(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(_) => Self::Boolean,
            Value::Number(_) => Self::Number,
            Value::String(_) => Self::String,
            Value::Array(_) => Self::Array,
            Value::Object(_) => Self::Object,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Array => "array",
            Self::Boolean => "boolean",
            Self::Null => "null",
            Self::Number => "number",
            Self::Object => "object",
            Self::String => "string",
        }
    }
}

/// Checks the type of what `expr` (the text inside `{% %}`) produced for `field`, failing as
/// AWS does: `The JSONata expression '$ItemsVar' specified for the field 'Items' returned an
/// unexpected result type. Expected 'array', but was 'string' for value: "string"`.
pub fn expect_type(
    expr: &str,
    field: &str,
    value: &Value,
    expected: JsonType,
) -> Result<(), Failure> {
    if JsonType::of(value) == expected {
        return Ok(());
    }
    Err(unexpected_type(expr, field, expected.name(), value))
}

/// AWS's cause for a result of the wrong type; `expected` as AWS words it (`array`).
pub fn unexpected_type(expr: &str, field: &str, expected: &str, value: &Value) -> Failure {
    Failure::query_evaluation(format!(
        "The JSONata expression '{expr}' specified for the field '{field}' returned an unexpected \
         result type. Expected '{expected}', but was '{}' for value: {value}",
        JsonType::of(value).name()
    ))
}

/// AWS's cause for a result JSON cannot hold (a function).
pub fn unsupported_type(expr: &str, field: &str) -> Failure {
    Failure::query_evaluation(format!(
        "The JSONata expression '{expr}' specified for the field '{field}' returned an \
         unsupported result type."
    ))
}

/// AWS's cause for an expression that produced nothing.
pub fn undefined_result(expr: &str, field: &str) -> Failure {
    Failure::query_evaluation(format!(
        "The JSONata expression '{expr}' specified for the field '{field}' returned nothing \
         (undefined)."
    ))
}

/// AWS's cause for an expression that raised an error (`message` as `T1006: ...`).
pub fn evaluation_error(expr: &str, field: &str, message: &str) -> Failure {
    Failure::query_evaluation(format!(
        "The JSONata expression '{expr}' specified for the field '{field}' threw an error during \
         evaluation. {message}"
    ))
}

/// One evaluation context: the bindings are converted for the engine on first use and shared
/// by every expression of a template.
struct Scope<'a> {
    engine: Current,
    states: &'a Value,
    vars: &'a Map<String, Value>,
    bindings: Option<<Current as Engine>::Bindings>,
    host: &'a mut dyn Host,
}

impl<'a> Scope<'a> {
    fn new(states: &'a Value, vars: &'a Map<String, Value>, host: &'a mut dyn Host) -> Self {
        Scope {
            engine: Current::default(),
            states,
            vars,
            bindings: None,
            host,
        }
    }

    fn outcome(&mut self, expr: &str) -> Result<Outcome, engine::EngineError> {
        let bindings = match &self.bindings {
            Some(b) => b,
            None => self
                .bindings
                .insert(self.engine.bind(self.states, self.vars)),
        };
        self.engine.evaluate(expr, bindings, &mut *self.host)
    }

    fn template(&mut self, template: &Value, field: &str) -> Result<Value, Failure> {
        match template {
            Value::String(s) => match expression(s) {
                Some(expr) => match self.outcome(expr) {
                    Ok(Outcome::Value(v)) => Ok(v),
                    Ok(Outcome::Undefined) => Err(undefined_result(expr, field)),
                    Ok(Outcome::Unsupported) => Err(unsupported_type(expr, field)),
                    Err(e) => Err(evaluation_error(expr, field, &e.0)),
                },
                None => Ok(template.clone()),
            },
            Value::Object(map) => {
                let mut out = Map::with_capacity(map.len());
                for (key, value) in map {
                    out.insert(
                        key.clone(),
                        self.template(value, &format!("{field}/{key}"))?,
                    );
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.template(item, &format!("{field}/{i}")))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            other => Ok(other.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Expected values are AWS's, as recorded in the conformance cases.

    use serde_json::json;

    use super::*;
    use crate::env::FixedHost;

    fn states(input: Value) -> Value {
        json!({ "input": input, "context": { "Execution": { "Id": "arn:aws:states:::execution:m:e" } } })
    }

    fn eval(expr: &str, input: Value) -> Result<Option<Value>, Failure> {
        eval_expr(expr, &states(input), &Map::new(), &mut FixedHost::new(0, 1))
    }

    fn template(template: Value, field: &str, input: Value) -> Result<Value, Failure> {
        eval_template(
            &template,
            field,
            &states(input),
            &Map::new(),
            &mut FixedHost::new(0, 1),
        )
    }

    fn cause(result: Result<Value, Failure>) -> String {
        let failure = result.expect_err("evaluation should fail");
        assert_eq!(failure.error_name(), "States.QueryEvaluationError");
        assert!(failure.located);
        failure.cause.unwrap()
    }

    #[test]
    fn partition_chunks_with_a_shorter_last_chunk() {
        let expr = "$partition($states.input.FunctionInput.fst, $states.input.FunctionInput.snd)";
        for (fst, snd, expected) in [
            (json!([0]), 1, json!([[0]])),
            (json!([0, 1, 2]), 2, json!([[0, 1], [2]])),
            (json!([0, 1, 2]), 5, json!([[0, 1, 2]])),
            (json!([0, 1, 2, 3]), 3, json!([[0, 1, 2], [3]])),
            (json!([0, 1]), 1, json!([[0], [1]])),
        ] {
            let input = json!({ "FunctionInput": { "fst": fst, "snd": snd } });
            assert_eq!(eval(expr, input).unwrap(), Some(expected));
        }
    }

    #[test]
    fn range_is_inclusive_and_a_single_item_stands_alone() {
        let expr = "$range($states.input.FunctionInput.fst, $states.input.FunctionInput.snd, \
                    $states.input.FunctionInput.trd)";
        for (fst, snd, trd, expected) in [
            (0, 9, 3, json!([0, 3, 6, 9])),
            (0, 10, 3, json!([0, 3, 6, 9])),
            (1, 9, 9, json!(1)),
            (1, 9, 2, json!([1, 3, 5, 7, 9])),
        ] {
            let input = json!({ "FunctionInput": { "fst": fst, "snd": snd, "trd": trd } });
            let out = eval(expr, input).unwrap().unwrap();
            assert_eq!(
                out.to_string(),
                expected.to_string(),
                "integral numbers print as integers"
            );
        }
    }

    #[test]
    fn parse_reads_json_text() {
        for (text, expected) in [
            ("-0", json!(0)),
            ("1", json!(1)),
            ("true", json!(true)),
            ("\"HelloWorld\"", json!("HelloWorld")),
        ] {
            let out = eval(
                "$parse($states.input.FunctionInput)",
                json!({ "FunctionInput": text }),
            );
            assert_eq!(out.unwrap().unwrap().to_string(), expected.to_string());
        }
    }

    #[test]
    fn hash_matches_aws_digests() {
        for (algorithm, digest) in [
            ("MD5", "812f45842bc6d66ee14572ce20db8e86"),
            ("SHA-1", "aaff4a450a104cd177d28d18d74485e8cae074b7"),
            (
                "SHA-384",
                "d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562",
            ),
            (
                "SHA-512",
                "6ce4adb348546d4f449c4d25aad9a7c9cb711d9e91982d3f0b29ca2f3f47d4ce2deba23bf2954f0f1d593fc50283731a533d30d425402d4f91316d871303aac4",
            ),
        ] {
            let input = json!({ "data": "input data", "alg": algorithm });
            let out = eval("$hash($states.input.data, $states.input.alg)", input);
            assert_eq!(out.unwrap(), Some(json!(digest)), "{algorithm}");
        }
    }

    #[test]
    fn unknown_function_fails_with_aws_cause() {
        let result = template(
            json!({ "FunctionResult": "{% $randomSeeded($states.input.FunctionInput.fst) %}" }),
            "Output",
            json!({ "FunctionInput": "fst" }),
        );
        assert_eq!(
            cause(result),
            "The JSONata expression '$randomSeeded($states.input.FunctionInput.fst)' specified for \
             the field 'Output/FunctionResult' threw an error during evaluation. T1006: Attempted \
             to invoke a non-function"
        );
    }

    #[test]
    fn undefined_results_name_the_field_path() {
        for (tpl, field, path) in [
            (json!("{% $doesNotExist %}"), "Output", "Output"),
            (
                json!({ "result": "{% $doesNotExist %}" }),
                "Output",
                "Output/result",
            ),
            (
                json!({ "result": "{% $doesNotExist %}" }),
                "Assign",
                "Assign/result",
            ),
            (
                json!({ "FunctionName": "{% $doesNotExist %}" }),
                "Arguments",
                "Arguments/FunctionName",
            ),
            (json!("{% $doesNotExist %}"), "Arguments", "Arguments"),
        ] {
            assert_eq!(
                cause(template(tpl, field, json!({}))),
                format!(
                    "The JSONata expression '$doesNotExist' specified for the field '{path}' \
                     returned nothing (undefined)."
                )
            );
        }
    }

    #[test]
    fn items_type_errors_match_aws() {
        for (expr, expected) in [
            (
                "true",
                "Expected 'array', but was 'boolean' for value: true",
            ),
            ("null", "Expected 'array', but was 'null' for value: null"),
            ("1", "Expected 'array', but was 'number' for value: 1"),
            (
                "{'foo': 'bar'}",
                "Expected 'array', but was 'object' for value: {\"foo\":\"bar\"}",
            ),
            (
                "'string'",
                "Expected 'array', but was 'string' for value: \"string\"",
            ),
        ] {
            let items = json!(format!("{{% {expr} %}}"));
            let st = states(json!({}));
            let mut host = FixedHost::new(0, 1);
            let result = eval_typed(
                &items,
                "Items",
                JsonType::Array,
                &st,
                &Map::new(),
                &mut host,
            );
            assert_eq!(
                cause(result),
                format!(
                    "The JSONata expression '{expr}' specified for the field 'Items' returned an \
                     unexpected result type. {expected}"
                )
            );
        }
        let vars = json!({ "ItemsVar": "string" }).as_object().unwrap().clone();
        let result = eval_typed(
            &json!("{% $ItemsVar %}"),
            "Items",
            JsonType::Array,
            &states(json!({})),
            &vars,
            &mut FixedHost::new(0, 1),
        );
        assert_eq!(
            cause(result),
            "The JSONata expression '$ItemsVar' specified for the field 'Items' returned an \
             unexpected result type. Expected 'array', but was 'string' for value: \"string\""
        );
        assert_eq!(
            template(json!("{% [0] %}"), "Items", json!({})).unwrap(),
            json!([0])
        );
    }

    #[test]
    fn a_function_result_is_unsupported() {
        assert_eq!(
            cause(template(
                json!("{% $fn := function($x){$x} %}"),
                "Items",
                json!({})
            )),
            "The JSONata expression '$fn := function($x){$x}' specified for the field 'Items' \
             returned an unsupported result type."
        );
    }

    #[test]
    fn templates_copy_everything_but_whole_expressions() {
        let out = template(
            json!([null, 0, 0.1, true, "string", [], "$nosuchvar", "$.no.such.path",
                   "{% $states.input %}", { "key": "{% true %}" }, " {% states.input %} "]),
            "Output",
            json!({ "input_value": "stringliteral" }),
        );
        assert_eq!(
            out.unwrap(),
            json!([null, 0, 0.1, true, "string", [], "$nosuchvar", "$.no.such.path",
                   { "input_value": "stringliteral" }, { "key": true }, " {% states.input %} "])
        );
    }

    #[test]
    fn regular_expressions_and_merge() {
        assert_eq!(
            eval("$contains('hello$world', /^hello\\$/)", json!({})).unwrap(),
            Some(json!(true))
        );
        assert_eq!(
            eval("$contains(\"hello$world\", /^hello\\$/)", json!({})).unwrap(),
            Some(json!(true))
        );
        let input = json!({ "part1": { "hello": "world" }, "part2": { "foo": "bar" } });
        assert_eq!(
            eval("$merge([$states.input.part1, $states.input.part2])", input).unwrap(),
            Some(json!({ "hello": "world", "foo": "bar" }))
        );
    }

    #[test]
    fn variables_are_bound_and_null_is_not_undefined() {
        let vars = json!({ "var_constant_1": 1, "nothing": null })
            .as_object()
            .unwrap()
            .clone();
        let st = states(json!({ "input_values": [1, 2, 3] }));
        let mut host = FixedHost::new(0, 1);
        let sum = eval_expr(
            "$sum($states.input.input_values) + $var_constant_1",
            &st,
            &vars,
            &mut host,
        );
        assert_eq!(sum.unwrap(), Some(json!(7)));
        assert_eq!(
            eval_expr("$nothing", &st, &vars, &mut host).unwrap(),
            Some(Value::Null)
        );
        assert_eq!(eval_expr("$missing", &st, &vars, &mut host).unwrap(), None);
    }

    #[test]
    fn time_ids_and_randomness_come_from_the_host() {
        let st = states(json!({}));
        let vars = Map::new();
        let mut host = FixedHost::new(1_457_920_740_000, 9);
        let now = eval_expr("$now()", &st, &vars, &mut host).unwrap();
        assert_eq!(now, Some(json!("2016-03-14T01:59:00.000Z")));
        let millis = eval_expr("$millis()", &st, &vars, &mut host).unwrap();
        assert_eq!(millis, Some(json!(1_457_920_740_000i64)));
        let year = eval_expr("$now('[Y0001]')", &st, &vars, &mut host).unwrap();
        assert_eq!(year, Some(json!("2016")));

        let mut expected = host.clone();
        let uuid = eval_expr("$uuid()", &st, &vars, &mut host).unwrap();
        assert_eq!(uuid, Some(json!(expected.uuid())));
        let random = eval_expr("$random()", &st, &vars, &mut host).unwrap();
        assert_eq!(random.unwrap().as_f64().unwrap(), expected.random());

        let a = eval_expr("$random(42)", &st, &vars, &mut host)
            .unwrap()
            .unwrap();
        let b = eval_expr("$random(42)", &st, &vars, &mut FixedHost::new(0, 77))
            .unwrap()
            .unwrap();
        assert_eq!(a, b, "a seed fixes the number");
        assert!((0.0..1.0).contains(&a.as_f64().unwrap()));
    }

    #[test]
    fn shuffle_draws_from_the_host() {
        let st = states(json!({ "items": [1, 2, 3, 4, 5] }));
        let vars = Map::new();
        let shuffled = |seed| {
            let mut host = FixedHost::new(0, seed);
            eval_expr("$shuffle($states.input.items)", &st, &vars, &mut host)
                .unwrap()
                .unwrap()
        };
        assert_eq!(
            shuffled(3),
            shuffled(3),
            "the same draws give the same order"
        );
        let mut items: Vec<i64> = shuffled(3)
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        items.sort();
        assert_eq!(items, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn check_parses_without_evaluating() {
        assert_eq!(check("$doesNotExist"), Ok(()));
        assert_eq!(check("$partition([1, 2], 1)"), Ok(()));
        assert_eq!(
            check("1 +"),
            Err("S0207: Unexpected end of expression".to_string())
        );
    }

    #[test]
    fn eval_is_not_available() {
        let failure = eval("$eval('1 + 1')", json!({})).unwrap_err();
        assert!(
            failure
                .cause
                .unwrap()
                .ends_with("T1006: Attempted to invoke a non-function")
        );
    }

    #[test]
    fn integral_results_print_as_integers() {
        assert_eq!(eval("6 / 2", json!({})).unwrap().unwrap().to_string(), "3");
        assert_eq!(
            eval("1 / 4", json!({})).unwrap().unwrap().to_string(),
            "0.25"
        );
        assert_eq!(
            eval("[1.0, 2.5]", json!({})).unwrap().unwrap().to_string(),
            "[1,2.5]"
        );
    }
}
