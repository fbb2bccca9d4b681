//! RedriveExecution: failed, timed out and aborted executions run again from where they
//! stopped.

use std::time::Duration;

use agentry_engine::Error;
use serde_json::json;

use crate::support::*;

/// Waits until the token resource has seen `n` tokens; returns the `n`th with its input.
async fn token(h: &Harness, n: usize) -> (String, serde_json::Value) {
    for _ in 0..300 {
        let t = h.calls.tokens();
        if t.len() >= n {
            return t[n - 1].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task token {n} did not arrive");
}

fn prepare_then_ask() -> serde_json::Value {
    json!({"StartAt": "Prep", "States": {
        "Prep": {"Type": "Pass", "Result": "prepared", "ResultPath": "$.prep", "Next": "Ask"},
        "Ask": {"Type": "Task", "Resource": TOKEN,
                "Parameters": {"QueueUrl": "q", "MessageBody": {
                    "count.$": "$$.Execution.RedriveCount", "prep.$": "$.prep"}},
                "End": true}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_execution_redrives_from_the_failed_state() {
    let h = Harness::new().await;
    let m = h.machine("redriven", prepare_then_ask()).await;
    let started = h.engine.start_execution(&m, None, "{}").await.unwrap();
    let arn = started.execution_arn;
    let (t1, input) = token(&h, 1).await;
    assert_eq!(
        input["MessageBody"],
        json!({"count": 0, "prep": "prepared"})
    );
    h.engine
        .send_task_failure(&t1, Some("Broke"), Some("first time"))
        .await
        .unwrap();
    let d = finish(&h.engine, &arn).await;
    assert_eq!(d.status, "FAILED");
    assert_eq!(
        (d.redrive_count, d.redrive_status.as_str()),
        (0, "REDRIVABLE")
    );

    let date = h.engine.redrive_execution(&arn, None).await.unwrap();
    let d = h.engine.describe_execution(&arn).await.unwrap();
    assert_eq!(d.status, "RUNNING");
    assert_eq!(d.redrive_count, 1);
    assert_eq!(d.redrive_date, Some(date));
    assert_eq!(d.stop_date, None);
    assert_eq!(d.error, None);
    assert_eq!(d.redrive_status, "NOT_REDRIVABLE");
    let again = h.engine.redrive_execution(&arn, None).await.unwrap_err();
    assert!(matches!(again, Error::ExecutionNotRedrivable(_)), "{again}");
    assert_eq!(again.aws_name(), "ExecutionNotRedrivable");
    // The failed task runs again (a new token); the state before it does not.
    let (t2, input) = token(&h, 2).await;
    assert_ne!(t1, t2);
    assert_eq!(
        input["MessageBody"],
        json!({"count": 1, "prep": "prepared"})
    );
    // The first attempt's token answers no more.
    let stale = h.engine.send_task_success(&t1, "1").await.unwrap_err();
    assert_eq!(stale.aws_name(), "TaskTimedOut");
    h.engine.send_task_success(&t2, r#""done""#).await.unwrap();
    let d = finish(&h.engine, &arn).await;
    assert_eq!(d.status, "SUCCEEDED");
    assert_eq!(d.output_json(), Some(json!("done")));
    assert_eq!(d.redrive_count, 1);
    assert_eq!(
        d.redrive_status_reason.as_deref(),
        Some("Execution is SUCCEEDED and cannot be redriven")
    );
    let history = h.engine.history(&arn).await.unwrap();
    let kinds = types(&history);
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskFailed",
            "ExecutionFailed",
            "ExecutionRedriven",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert_eq!(
        history[8]["executionRedrivenEventDetails"],
        json!({"redriveCount": 1})
    );
    let e = h.engine.redrive_execution(&arn, None).await.unwrap_err();
    assert!(e.to_string().contains("SUCCEEDED"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_executions_redrive_and_client_tokens_make_it_idempotent() {
    let h = Harness::new().await;
    let m = h
        .machine(
            "stopped",
            json!({"StartAt": "W", "States": {
                "W": {"Type": "Wait", "Seconds": 300, "Next": "T"},
                "T": {"Type": "Task", "Resource": ECHO, "End": true}}}),
        )
        .await;
    let arn = h
        .engine
        .start_execution(&m, None, r#"{"x": 1}"#)
        .await
        .unwrap()
        .execution_arn;
    let other = h.engine.for_account("222222222222").unwrap();
    assert!(matches!(
        other.redrive_execution(&arn, None).await,
        Err(Error::ExecutionDoesNotExist(_))
    ));
    h.engine.stop_execution(&arn, None, None).await.unwrap();
    let first = h
        .engine
        .redrive_execution(&arn, Some("token-1"))
        .await
        .unwrap();
    let second = h
        .engine
        .redrive_execution(&arn, Some("token-1"))
        .await
        .unwrap();
    assert_eq!(first, second);
    let d = h.engine.describe_execution(&arn).await.unwrap();
    assert_eq!((d.status.as_str(), d.redrive_count), ("RUNNING", 1));
    // Stopped again and redriven again: the count goes on.
    h.engine.stop_execution(&arn, None, None).await.unwrap();
    h.engine.redrive_execution(&arn, None).await.unwrap();
    let d = h.engine.describe_execution(&arn).await.unwrap();
    assert_eq!(d.redrive_count, 2);
    let kinds = types(&h.engine.history(&arn).await.unwrap());
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "WaitStateEntered",
            "ExecutionAborted",
            "ExecutionRedriven",
            "WaitStateEntered",
            "ExecutionAborted",
            "ExecutionRedriven",
            "WaitStateEntered"
        ]
    );
    h.engine.stop_execution(&arn, None, None).await.unwrap();
    check_history(&h.engine.history(&arn).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_of_a_machine_being_deleted_are_not_redrivable() {
    let h = Harness::new().await;
    let m = h
        .machine(
            "going",
            json!({"StartAt": "F", "States": {"F": {"Type": "Task", "Resource": FAIL, "End": true}}}),
        )
        .await;
    let d = h.run(&m, json!({})).await;
    assert_eq!(d.status, "FAILED");
    h.engine.delete_state_machine(&m).await.unwrap();
    let described = h.engine.describe_execution(&d.execution_arn).await.unwrap();
    assert_eq!(described.redrive_status, "NOT_REDRIVABLE");
    assert_eq!(
        described.redrive_status_reason.as_deref(),
        Some("State machine is in DELETING status")
    );
    let e = h
        .engine
        .redrive_execution(&d.execution_arn, None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ExecutionNotRedrivable(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redriven_map_runs_only_its_failed_iteration() {
    let h = Harness::new().await;
    let m = h
        .machine(
            "fan",
            json!({"StartAt": "Each", "States": {"Each": {"Type": "Map",
                "ItemProcessor": {"StartAt": "Ask", "States": {"Ask": {"Type": "Task",
                    "Resource": TOKEN, "Parameters": {"QueueUrl": "q", "MessageBody.$": "$"},
                    "End": true}}},
                "End": true}}}),
        )
        .await;
    let arn = h
        .engine
        .start_execution(&m, None, "[1, 2, 3]")
        .await
        .unwrap()
        .execution_arn;
    for n in 1..=3 {
        token(&h, n).await;
    }
    let tokens = h.calls.tokens();
    let body = |i: usize| tokens[i].1["MessageBody"].clone();
    for (i, (t, _)) in tokens.iter().enumerate() {
        if body(i) != json!(2) {
            h.engine
                .send_task_success(t, &body(i).to_string())
                .await
                .unwrap();
        }
    }
    let failing = tokens
        .iter()
        .position(|(_, i)| i["MessageBody"] == json!(2))
        .unwrap();
    h.engine
        .send_task_failure(&tokens[failing].0, Some("No"), None)
        .await
        .unwrap();
    assert_eq!(finish(&h.engine, &arn).await.status, "FAILED");
    h.engine.redrive_execution(&arn, None).await.unwrap();
    let (t, input) = token(&h, 4).await;
    assert_eq!(input["MessageBody"], json!(2));
    h.engine.send_task_success(&t, r#""two""#).await.unwrap();
    let d = finish(&h.engine, &arn).await;
    assert_eq!(d.status, "SUCCEEDED");
    assert_eq!(d.output_json(), Some(json!([1, "two", 3])));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        h.calls.tokens().len(),
        4,
        "only the failed iteration ran again"
    );
}
