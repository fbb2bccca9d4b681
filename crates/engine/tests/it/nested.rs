//! Nested executions: `arn:aws:states:::states:startExecution` in each integration pattern.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const START: &str = "arn:aws:states:::states:startExecution";

fn greeter() -> Value {
    json!({"StartAt": "Greet", "States": {"Greet": {"Type": "Pass",
        "Parameters": {"greeting.$": "States.Format('hi {}', $.who)"}, "End": true}}})
}

fn waiter() -> Value {
    json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 300, "End": true}}})
}

fn parent(resource: &str, child: &str, input: Value) -> Value {
    json!({"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": resource,
        "Parameters": {"StateMachineArn": child, "Input": input}, "End": true}}})
}

/// The executions of a machine, waiting up to 10 s for at least one.
async fn children(h: &Harness, machine: &str) -> Vec<agentry_engine::ExecutionDescription> {
    for _ in 0..200 {
        let page = h
            .engine
            .list_executions(machine, None, None, None)
            .await
            .unwrap();
        if !page.items.is_empty() {
            return page.items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no child execution started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_children_hand_their_result_to_the_parent() {
    let h = Harness::new().await;
    let child = h.machine("greeter", greeter()).await;
    let input = json!({"who.$": "$.who", "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"});
    let m2 = h
        .machine(
            "parent2",
            parent(&format!("{START}.sync:2"), &child, input.clone()),
        )
        .await;
    let d = h.run(&m2, json!({"who": "bob"})).await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    let out = d.output_json().unwrap();
    assert_eq!(out["Status"], "SUCCEEDED");
    assert_eq!(out["Output"], json!({"greeting": "hi bob"}));
    assert_eq!(out["StateMachineArn"], json!(child));
    // The linking field stays in the child's input, naming the parent.
    assert_eq!(
        out["Input"]["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"],
        json!(d.execution_arn)
    );
    assert!(out["StopDate"].as_i64().unwrap() >= out["StartDate"].as_i64().unwrap());
    let kids = children(&h, &child).await;
    assert_eq!(kids.len(), 1);
    assert_eq!(json!(kids[0].execution_arn), out["ExecutionArn"]);

    let m1 = h
        .machine("parent1", parent(&format!("{START}.sync"), &child, input))
        .await;
    let out = h
        .run(&m1, json!({"who": "ann"}))
        .await
        .output_json()
        .unwrap();
    // `.sync` gives Input and Output as JSON text.
    assert_eq!(out["Output"], json!("{\"greeting\":\"hi ann\"}"));
    assert!(out["Input"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_child_fails_the_task_and_catch_sees_it() {
    let h = Harness::new().await;
    let child = h
        .machine(
            "breaks",
            json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Child.Broke", "Cause": "no"}}}),
        )
        .await;
    let m = h
        .machine(
            "catches",
            json!({"StartAt": "Call", "States": {
                "Call": {"Type": "Task", "Resource": format!("{START}.sync:2"),
                    "Parameters": {"StateMachineArn": child, "Input": {}},
                    "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}], "End": true},
                "Caught": {"Type": "Pass", "End": true}}}),
        )
        .await;
    let d = h.run(&m, json!({})).await;
    assert_eq!(d.status, "SUCCEEDED");
    let out = d.output_json().unwrap();
    assert_eq!(out["Error"], "States.TaskFailed");
    let cause: Value = serde_json::from_str(out["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["Status"], "FAILED");
    assert_eq!(cause["Error"], "Child.Broke");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_response_and_callback_starts() {
    let h = Harness::new().await;
    let child = h.machine("greeter", greeter()).await;
    let m = h
        .machine("fire", parent(START, &child, json!({"who": "eve"})))
        .await;
    let out = h.run(&m, json!({})).await.output_json().unwrap();
    let arn = out["ExecutionArn"].as_str().unwrap().to_string();
    assert!(out["StartDate"].as_i64().is_some());
    let kid = finish(&h.engine, &arn).await;
    assert_eq!(kid.output_json(), Some(json!({"greeting": "hi eve"})));

    // The callback pattern: the child gets the token in its input and someone answers it.
    let slow = h.machine("slow", waiter()).await;
    let m = h
        .machine(
            "callback",
            parent(
                &format!("{START}.waitForTaskToken"),
                &slow,
                json!({"token.$": "$$.Task.Token"}),
            ),
        )
        .await;
    let started = h.engine.start_execution(&m, None, "{}").await.unwrap();
    let kid = &children(&h, &slow).await[0];
    let input: Value = serde_json::from_str(&kid.input).unwrap();
    h.engine
        .send_task_success(input["token"].as_str().unwrap(), r#"{"answered": true}"#)
        .await
        .unwrap();
    let d = finish(&h.engine, &started.execution_arn).await;
    assert_eq!(d.output_json(), Some(json!({"answered": true})));
    h.engine
        .stop_execution(&kid.execution_arn, None, None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_parent_stops_its_sync_child() {
    let h = Harness::new().await;
    let slow = h.machine("slow", waiter()).await;
    let m = h
        .machine("waits", parent(&format!("{START}.sync"), &slow, json!({})))
        .await;
    let started = h.engine.start_execution(&m, None, "{}").await.unwrap();
    let kid = children(&h, &slow).await[0].execution_arn.clone();
    h.engine
        .stop_execution(&started.execution_arn, None, None)
        .await
        .unwrap();
    let d = finish(&h.engine, &kid).await;
    assert_eq!(d.status, "ABORTED");
    let missing = h
        .machine(
            "to-nowhere",
            parent(
                &format!("{START}.sync"),
                "arn:aws:states:local:000000000000:stateMachine:absent",
                json!({}),
            ),
        )
        .await;
    let d = h.run(&missing, json!({})).await;
    assert_eq!(d.status, "FAILED");
    assert_eq!(
        d.error.as_deref(),
        Some("StepFunctions.StateMachineDoesNotExistException")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_express_child_answers_its_parent() {
    let h = Harness::new().await;
    let child = h
        .engine
        .create_state_machine_of_type(
            "quick-greeter",
            &greeter().to_string(),
            agentry_asl::validate::MachineType::Express,
        )
        .await
        .unwrap();
    let m = h
        .machine(
            "waits-for-express",
            parent(&format!("{START}.sync:2"), &child, json!({"who": "zed"})),
        )
        .await;
    let d = h.run(&m, json!({})).await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    let out = d.output_json().unwrap();
    assert_eq!(out["Output"], json!({"greeting": "hi zed"}));
    assert!(
        out["ExecutionArn"]
            .as_str()
            .unwrap()
            .contains(":express:quick-greeter:")
    );
}
