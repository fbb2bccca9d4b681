//! Unit tests per rule, and the conformance walk: every definition AWS refused at
//! CreateStateMachine must be refused with AWS's code and message, and every definition AWS
//! ran must be accepted.

use serde_json::{Value, json};

use super::*;

fn cause(definition: Value) -> String {
    validate(&definition, MachineType::Standard)
        .expect_err("definition should be refused")
        .message
}

fn pass_machine(state: Value) -> Value {
    json!({"StartAt": "S", "States": {"S": state}})
}

#[test]
fn accepts_a_minimal_machine() {
    validate(
        &pass_machine(json!({"Type": "Pass", "End": true})),
        MachineType::Standard,
    )
    .unwrap();
}

#[test]
fn requires_states() {
    assert_eq!(
        cause(json!({"StartAt": "S"})),
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: These fields are required: [States] at /'"
    );
}

#[test]
fn names_the_unknown_state_type() {
    assert_eq!(
        cause(pass_machine(json!({"Type": "Sleep", "End": true}))),
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: The field 'Type' should have one of these \
         values: [Task, Wait, Pass, Succeed, Fail, Choice, Parallel, Map] at /States/S/Type'"
    );
}

#[test]
fn refuses_fields_the_state_type_does_not_support() {
    assert_eq!(
        cause(pass_machine(
            json!({"Type": "Pass", "TimeoutSeconds": 3, "End": true})
        )),
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: Field 'TimeoutSeconds' is not supported at /States/S'"
    );
    let c = cause(pass_machine(
        json!({"Type": "Pass", "Catch": [], "Retry": [], "End": true}),
    ));
    assert!(
        c.contains(
            "Field 'Catch' is not supported at /States/S, SCHEMA_VALIDATION_FAILED: Field 'Retry'"
        ),
        "{c}"
    );
}

#[test]
fn refuses_jsonpath_fields_in_jsonata_states_and_back() {
    let c = cause(
        json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": {"Type": "Pass", "InputPath": "$", "End": true}}}),
    );
    assert!(c.contains("The QueryLanguage is set to 'JSONata', but field 'InputPath' is only supported for the 'JSONPath' QueryLanguage at /States/S"), "{c}");
    let c = cause(pass_machine(
        json!({"Type": "Pass", "Output": {}, "End": true}),
    ));
    assert!(
        c.contains("field 'Output' is only supported for the 'JSONata' QueryLanguage at /States/S"),
        "{c}"
    );
    // A JSONPath machine may hold JSONata states, not the other way round.
    validate(
        &pass_machine(
            json!({"Type": "Pass", "QueryLanguage": "JSONata", "Output": {}, "End": true}),
        ),
        MachineType::Standard,
    )
    .unwrap();
    let c = cause(
        json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}}}),
    );
    assert_eq!(
        c,
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: 'QueryLanguage' can not be 'JSONPath' if \
         set to 'JSONata' for whole state machine at /States/S'"
    );
}

#[test]
fn jsonata_paths_must_start_from_a_variable() {
    assert_eq!(
        cause(
            json!({"QueryLanguage": "JSONata", "StartAt": "E", "States": {"E": {"Type": "Pass", "Output": {"v": "{% phone %}"}, "End": true}}})
        ),
        "Invalid State Machine Definition: 'UNSUPPORTED_JSONATA_EXPRESSION: Reference to 'phone' at the top level \
         is not supported. at /States/E/Output/v'"
    );
    assert_eq!(
        cause(
            json!({"QueryLanguage": "JSONata", "StartAt": "Main", "States": {"Main": {"Type": "Pass", "Output": "{% 1 + %}", "End": true}}})
        ),
        "Invalid State Machine Definition: 'INVALID_JSONATA_EXPRESSION: Unexpected end of expression at /States/Main/Output'"
    );
    // Only exact `{%`...`%}` strings are expressions.
    validate(
        &json!({"QueryLanguage": "JSONata", "StartAt": "E", "States": {"E": {"Type": "Pass", "Output": {"v": " {% phone %} "}, "End": true}}}),
        MachineType::Standard,
    )
    .unwrap();
}

#[test]
fn needs_exactly_one_of_next_and_end() {
    let both = cause(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B", "End": true}, "B": {"Type": "Succeed"}}}),
    );
    assert!(both.contains("[Next, End] at /States/A"), "{both}");
    let neither = cause(pass_machine(json!({"Type": "Pass"})));
    assert!(neither.contains("[Next, End] at /States/S"), "{neither}");
}

#[test]
fn reports_missing_targets_and_unreachable_states_together() {
    assert_eq!(
        cause(json!({"StartAt": "pass1", "States": {
            "pass1": {"Type": "Pass", "Next": "pass3"},
            "pass2": {"Type": "Pass", "End": true}
        }})),
        "Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: pass3 at /States/pass1/Next, \
         MISSING_TRANSITION_TARGET: State \"pass2\" is not reachable. at /States/pass2'"
    );
}

#[test]
fn start_at_must_name_a_state() {
    assert_eq!(
        cause(json!({"StartAt": "Nope", "States": {"A": {"Type": "Succeed"}}})),
        "Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: Nope at /StartAt, \
         MISSING_TRANSITION_TARGET: State \"A\" is not reachable. at /States/A'"
    );
}

#[test]
fn unreachable_means_no_transition_names_the_state() {
    // As AWS reported for this shape: only "Pass One" is unreachable, "Success" is named.
    assert_eq!(
        cause(json!({"StartAt": "Not sure", "States": {
            "Pass One": {"Type": "Pass", "Next": "Success"},
            "Success": {"Type": "Succeed"}
        }})),
        "Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: Not sure at /StartAt, \
         MISSING_TRANSITION_TARGET: State \"Pass One\" is not reachable. at /States/Pass One'"
    );
}

#[test]
fn a_loop_without_a_terminal_state_is_missing_its_end() {
    assert_eq!(
        cause(
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}, "C": {"Type": "Pass", "Next": "A"}}})
        ),
        "Invalid State Machine Definition: 'MISSING_END_STATE: Workflow has no terminal state at null'"
    );
}

#[test]
fn dangling_choice_default_and_catch_targets_all_say_next() {
    let c = cause(json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "X"}], "Default": "Y"},
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Z"}], "End": true}
    }}));
    for part in [
        "Missing 'Next' target: X at /States/C/Choices[0]/Next",
        "Missing 'Next' target: Y at /States/C/Default",
        "Missing 'Next' target: Z at /States/T/Catch[0]/Next",
        "State \"T\" is not reachable. at /States/T",
    ] {
        assert!(c.contains(part), "{part} not in {c}");
    }
}

#[test]
fn checks_nested_containers_with_their_paths() {
    let c = cause(pass_machine(
        json!({"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "In", "States": {"In": {"Type": "Pass", "Next": "Gone"}}}
        ]}),
    ));
    assert!(
        c.contains("Missing 'Next' target: Gone at /States/S/Branches[0]/States/In/Next"),
        "{c}"
    );
    let c = cause(pass_machine(
        json!({"Type": "Parallel", "End": true, "Branches": []}),
    ));
    assert!(
        c.contains("Value cannot be empty at /States/S/Branches"),
        "{c}"
    );
}

#[test]
fn state_names_are_unique_across_the_machine() {
    let c = cause(
        json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Next": "Done", "Branches": [
        {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    ]}, "Done": {"Type": "Succeed"}}}),
    );
    assert!(c.contains("DUPLICATE_STATE_NAME"), "{c}");
}

#[test]
fn map_labels_are_unique() {
    let map = |label: &str, next: Option<&str>| {
        let mut m = json!({"Type": "Map", "Label": label,
            "ItemProcessor": {"StartAt": format!("In{label}{}", next.is_some()), "States": {format!("In{label}{}", next.is_some()): {"Type": "Succeed"}}}});
        match next {
            Some(n) => m["Next"] = json!(n),
            None => m["End"] = json!(true),
        }
        m
    };
    let c = cause(
        json!({"StartAt": "A", "States": {"A": map("same", Some("B")), "B": map("same", None)}}),
    );
    assert!(c.contains("DUPLICATE_LABEL_NAME"), "{c}");
}

#[test]
fn state_names_are_at_most_80_characters() {
    let name = "n".repeat(81);
    assert_eq!(
        cause(json!({"StartAt": name, "States": {name.clone(): {"Type": "Succeed"}}})),
        format!(
            "Invalid State Machine Definition: 'INVALID_STATE_NAME: Invalid State name: State '{name}' exceeds the \
             80-character limit allowed by the service at /States/{name}'"
        )
    );
    let name = "n".repeat(80);
    validate(
        &json!({"StartAt": name, "States": {name.clone(): {"Type": "Succeed"}}}),
        MachineType::Standard,
    )
    .unwrap();
}

#[test]
fn wait_needs_exactly_one_duration_and_a_real_timestamp() {
    let c = cause(pass_machine(
        json!({"Type": "Wait", "Seconds": 1, "Timestamp": "2016-03-14T01:59:00Z", "End": true}),
    ));
    assert_eq!(
        c,
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: There should only be one of the following \
         fields: [Seconds, Timestamp, SecondsPath, TimestampPath] at /States/S'"
    );
    assert_eq!(
        cause(pass_machine(
            json!({"Type": "Wait", "Timestamp": "2016-12-05 21:29:29Z", "End": true})
        )),
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: String does not match RFC3339 timestamp at /States/S/Timestamp'"
    );
}

#[test]
fn numbers_stay_within_aws_bounds() {
    let map = |extra: Value| {
        let mut state = json!({"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}});
        state
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        pass_machine(state)
    };
    assert_eq!(
        cause(map(json!({"ToleratedFailurePercentage": 100.5}))),
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: Maximum value is 100.0 at /States/S/ToleratedFailurePercentage'"
    );
    assert!(
        cause(map(json!({"MaxConcurrency": -1})))
            .contains("Minimum value is 0 at /States/S/MaxConcurrency")
    );
    assert!(
        cause(map(json!({"ItemBatcher": {"MaxItemsPerBatch": 2, "MaxItemsPerBatchPath": "$.n"}})))
            .contains("There should only be one of the following fields: [MaxItemsPerBatch, MaxItemsPerBatchPath] at /States/S/ItemBatcher")
    );
    assert!(
        cause(map(json!({"MaxConcurrencyPath": "$$.Execution.Input.n"})))
            .contains("Value is not a Reference Path at /States/S/MaxConcurrencyPath")
    );
}

#[test]
fn nested_states_take_the_machines_query_language() {
    let c = cause(pass_machine(
        json!({"Type": "Map", "QueryLanguage": "JSONata", "End": true,
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Output": {}, "End": true}}}}),
    ));
    assert!(c.contains("field 'Output' is only supported for the 'JSONata' QueryLanguage at /States/S/ItemProcessor/States/P"), "{c}");
    let c = cause(pass_machine(json!({"Type": "Map", "End": true,
        "ItemProcessor": {"QueryLanguage": "JSONata", "StartAt": "P", "States": {"P": {"Type": "Succeed"}}}})));
    assert!(
        c.contains("Field 'QueryLanguage' is not supported at /States/S/ItemProcessor"),
        "{c}"
    );
}

#[test]
fn heartbeat_must_be_shorter_than_timeout() {
    let c = cause(pass_machine(
        json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSeconds": 5, "HeartbeatSeconds": 5, "End": true}),
    ));
    assert!(c.contains("at /States/S/HeartbeatSeconds"), "{c}");
}

#[test]
fn retry_and_catch_rules() {
    let task = |retry: Value| {
        pass_machine(
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Retry": retry, "End": true}),
        )
    };
    assert!(
        cause(task(json!([{"ErrorEquals": []}])))
            .contains("Value cannot be empty at /States/S/Retry[0]/ErrorEquals")
    );
    assert!(
        cause(task(json!([{"ErrorEquals": ["States.ALL", "X"]}])))
            .contains("at /States/S/Retry[0]/ErrorEquals")
    );
    assert!(
        cause(task(
            json!([{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}])
        ))
        .contains("at /States/S/Retry[0]/ErrorEquals")
    );
    assert!(
        cause(task(json!([{"ErrorEquals": ["X"], "BackoffRate": 0.5}])))
            .contains("at /States/S/Retry[0]/BackoffRate")
    );
    assert!(
        cause(task(
            json!([{"ErrorEquals": ["X"], "JitterStrategy": "SOME"}])
        ))
        .contains("at /States/S/Retry[0]/JitterStrategy")
    );
    validate(
        &task(json!([{"ErrorEquals": ["X"]}, {"ErrorEquals": ["States.ALL"], "MaxAttempts": 0}])),
        MachineType::Standard,
    )
    .unwrap();
}

#[test]
fn choice_rules_hold_exactly_one_comparison() {
    let choice = |rule: Value| json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [rule], "Default": "D"}, "D": {"Type": "Succeed"}}});
    assert!(
        cause(choice(json!({"Variable": "$.a", "Next": "D"}))).contains("at /States/C/Choices[0]")
    );
    assert!(
        cause(choice(
            json!({"Variable": "$.a", "StringEquals": "x", "IsNull": true, "Next": "D"})
        ))
        .contains("at /States/C/Choices[0]")
    );
    assert!(
        cause(choice(json!({"Variable": "$.a", "StringEquals": "x"})))
            .contains("These fields are required: [Next] at /States/C/Choices[0]")
    );
    assert!(
        cause(choice(
            json!({"Variable": "$.a", "NumericEquals": "1", "Next": "D"})
        ))
        .contains("at /States/C/Choices[0]/NumericEquals")
    );
    assert!(
        cause(choice(json!({"And": [], "Next": "D"})))
            .contains("Value cannot be empty at /States/C/Choices[0]/And")
    );
    validate(
        &choice(json!({"Not": {"Variable": "$.a", "IsPresent": true}, "Next": "D"})),
        MachineType::Standard,
    )
    .unwrap();
}

#[test]
fn map_settings_are_in_range() {
    let map = |extra: Value| {
        let mut state = json!({"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}});
        state
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        pass_machine(state)
    };
    assert!(cause(map(json!({"MaxConcurrency": -1}))).contains("at /States/S/MaxConcurrency"));
    assert!(
        cause(map(json!({"ToleratedFailurePercentage": 101})))
            .contains("at /States/S/ToleratedFailurePercentage")
    );
    assert!(
        cause(pass_machine(json!({"Type": "Map", "End": true})))
            .contains("These fields are required: [ItemProcessor] at /States/S")
    );
    let bad_mode = map(json!({}));
    let mut bad_mode = bad_mode;
    bad_mode["States"]["S"]["ItemProcessor"]["ProcessorConfig"] = json!({"Mode": "PARALLEL"});
    assert!(cause(bad_mode).contains("at /States/S/ItemProcessor/ProcessorConfig/Mode"));
}

#[test]
fn credentials_need_a_role() {
    assert_eq!(
        cause(pass_machine(
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Credentials": {}, "End": true})
        )),
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: The field 'RoleArn' is required but was missing at /States/S/Credentials'"
    );
}

#[test]
fn template_keys_ending_in_dollar_need_a_path() {
    assert_eq!(
        cause(pass_machine(
            json!({"Type": "Pass", "Parameters": {"x.$": "not a path"}, "End": true})
        )),
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: The value for the field 'x.$' must be a valid \
         JSONPath or a valid intrinsic function call at /States/S/Parameters'"
    );
}

#[test]
fn resources_must_be_known_and_express_has_no_callbacks() {
    let task = |r: &str| pass_machine(json!({"Type": "Task", "Resource": r, "End": true}));
    assert!(
        cause(task("arn:aws:states:::dynamodb:query"))
            .contains("The resource provided arn:aws:states:::dynamodb:query is not recognized.")
    );
    validate(
        &task("arn:aws:states:::sns:publish.waitForTaskToken"),
        MachineType::Standard,
    )
    .unwrap();
    let e = validate(
        &task("arn:aws:states:::sns:publish.waitForTaskToken"),
        MachineType::Express,
    )
    .unwrap_err();
    assert!(
        e.message
            .ends_with("'.waitForTaskToken' service integration  at /States/S/Resource'"),
        "{}",
        e.message
    );
    let e = validate(
        &task("arn:aws:states:::states:startExecution.sync:2"),
        MachineType::Express,
    )
    .unwrap_err();
    assert!(
        e.message
            .contains("'.sync' service integration at /States/S/Resource"),
        "{}",
        e.message
    );
}

#[test]
fn optimised_integrations_need_their_required_parameters() {
    let task = |params: Value| {
        pass_machine(
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": params, "End": true}),
        )
    };
    assert_eq!(
        cause(task(json!({"Payload": {}}))),
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: The field 'FunctionName' is required but was \
         missing at /States/S/Parameters'"
    );
    validate(
        &task(json!({"FunctionName.$": "$.fn"})),
        MachineType::Standard,
    )
    .unwrap();
}

#[test]
fn map_labels_fail_as_aws_quotes_them() {
    let def = pass_machine(json!({"Type": "Map", "Label": "a b", "End": true,
        "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}));
    let e = validate(&def, MachineType::Standard).unwrap_err();
    assert_eq!(
        e.message,
        r#"Error=ValueError Args=["Label contains invalid character: ' '"] in definition '{"StartAt": "S", "States": {"S": {"Type": "Map", "Label": "a b", "End": true, "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}}}'."#
    );
    // Definition text is quoted as sent.
    let text = r#"{"StartAt":"S","States":{"S":{"Type":"Map","Label":"","End":true,"ItemProcessor":{"StartAt":"I","States":{"I":{"Type":"Succeed"}}}}}}"#;
    assert_eq!(
        validate_text(text, MachineType::Standard)
            .unwrap_err()
            .message,
        format!("Error=ValueError Args=['Label cannot be empty'] in definition '{text}'.")
    );
    assert_eq!(
        check_label(&"x".repeat(41)).unwrap(),
        "Label cannot exceed 40 characters"
    );
    assert_eq!(check_label("").unwrap(), "Label cannot be empty");
    assert_eq!(check_label("ok-label_1"), None);
}

#[test]
fn text_entry_point_refuses_bad_json_and_duplicate_keys() {
    let e = validate_text("{\"StartAt\": ", MachineType::Standard).unwrap_err();
    assert!(
        e.message
            .starts_with("Invalid State Machine Definition: 'INVALID_JSON_DESCRIPTION: "),
        "{}",
        e.message
    );
    let e = validate_text(
        r#"{"StartAt": "A", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}"#,
        MachineType::Standard,
    )
    .unwrap_err();
    assert!(
        e.message.contains("Duplicate field 'StartAt'"),
        "{}",
        e.message
    );
    validate_text(
        r#"{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}"#,
        MachineType::Standard,
    )
    .unwrap();
}

#[test]
fn test_state_checks_one_state_under_its_placeholder_name() {
    let e = validate_state(
        &json!({"Type": "Parallel", "Branches": [], "End": true}),
        MachineType::Standard,
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: Value cannot be empty at /States/StateName/Branches'"
    );
    validate_state(
        &json!({"Type": "Pass", "Next": "Elsewhere"}),
        MachineType::Standard,
    )
    .unwrap();
}

// ---- conformance ----

/// `compare.py`'s rule for text: a `<...>` token in `expected` matches any non-empty text.
fn text_matches(expected: &str, actual: &str) -> bool {
    fn is_token_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || "_-.:/ ".contains(c)
    }
    // Split expected into literal parts and tokens.
    let mut parts: Vec<(bool, &str)> = vec![];
    let mut rest = expected;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        match after.find('>') {
            Some(close) if close > 0 && after[..close].chars().all(is_token_char) => {
                parts.push((false, &rest[..open]));
                parts.push((true, &rest[open..open + close + 2]));
                rest = &after[close + 1..];
            }
            _ => {
                parts.push((false, &rest[..open + 1]));
                rest = after;
            }
        }
    }
    parts.push((false, rest));
    fn go(parts: &[(bool, &str)], actual: &str) -> bool {
        match parts.split_first() {
            None => actual.is_empty(),
            Some(((false, lit), tail)) => actual.strip_prefix(lit).is_some_and(|a| go(tail, a)),
            Some(((true, _), tail)) => (1..=actual.len())
                .filter(|i| actual.is_char_boundary(*i))
                .any(|i| go(tail, &actual[i..])),
        }
    }
    go(&parts, actual)
}

fn normalise(actual: &str) -> String {
    actual.replace("arn:aws:", "arn:<partition>:")
}

#[test]
fn conformance_cases() {
    let dir = std::env::var("AGENTRY_CONFORMANCE_DIR")
        .unwrap_or_else(|_| "/work/shared/asl-conformance/cases".into());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("conformance cases not found at {dir}");
        }
        eprintln!("conformance cases not found at {dir}: skipped");
        return;
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();

    let (mut refused_total, mut refused_ok) = (0, 0);
    let (mut accepted_total, mut false_positives) = (0, vec![]);
    let mut mismatches = vec![];
    for path in paths {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = case["name"].as_str().unwrap_or_default().to_owned();
        let api = case["api"].as_str().unwrap_or_default();
        let expected = &case["expected"];
        // The Express API cases were recorded against an EXPRESS machine though the case
        // says STANDARD.
        let machine_type = if case["state_machine_type"] == "EXPRESS"
            || name.starts_with("test_sfn_api_express.py")
        {
            MachineType::Express
        } else {
            MachineType::Standard
        };
        let run = || match case["definition_raw"].as_str() {
            Some(raw) => validate_text(raw, machine_type),
            None => validate(&case["definition"], machine_type),
        };
        match api {
            "StartExecution" | "StartSyncExecution" => {
                accepted_total += 1;
                if let Err(e) = run() {
                    false_positives.push(format!("{name}: {}", e.message));
                }
            }
            "TestState" if expected["error"] != "InvalidDefinition" => {
                // TestState ran these (or refused them for API reasons, such as a mock that
                // does not fit): the definitions themselves are valid.
                accepted_total += 1;
                let got = if case["definition"].get("Type").is_some() {
                    validate_state(&case["definition"], machine_type)
                } else {
                    run()
                };
                if let Err(e) = got {
                    false_positives.push(format!("{name}: {}", e.message));
                }
            }
            "CreateStateMachine" | "UpdateStateMachine" | "TestState"
                if expected["status"] == "API_ERROR"
                    && expected["error"] == "InvalidDefinition" =>
            {
                let want = expected["cause"].as_str().unwrap_or_default();
                // TestState's refusal of Map and Parallel is an API rule, not a definition rule.
                if want.starts_with("TestState API") {
                    continue;
                }
                refused_total += 1;
                let got = if api == "TestState" && case["definition"].get("Type").is_some() {
                    validate_state(&case["definition"], machine_type)
                } else {
                    run()
                };
                match got {
                    Err(e)
                        if e.code == "InvalidDefinition"
                            && text_matches(want, &normalise(&e.message)) =>
                    {
                        refused_ok += 1
                    }
                    other => mismatches.push(format!("{name}\n  want: {want}\n  got:  {other:?}")),
                }
            }
            _ => {}
        }
    }
    println!("refused by AWS: {refused_ok}/{refused_total} matched");
    println!(
        "accepted by AWS: {}/{accepted_total} accepted, {} false positives",
        accepted_total - false_positives.len(),
        false_positives.len()
    );
    for m in &mismatches {
        println!("MISMATCH {m}");
    }
    for f in &false_positives {
        println!("FALSE POSITIVE {f}");
    }
    assert!(
        false_positives.is_empty(),
        "{} accepted definitions refused",
        false_positives.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} refusals differ from AWS",
        mismatches.len()
    );
}

#[test]
fn token_matching_follows_compare_py() {
    assert!(text_matches("a <x> b", "a anything b"));
    assert!(!text_matches("a <x> b", "a  b"));
    assert!(text_matches(
        "arn:<partition>:states",
        "arn:<partition>:states"
    ));
    assert!(text_matches("x < y", "x < y"));
}
