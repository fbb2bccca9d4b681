//! Asynchronous Express executions: started through StartExecution, run in memory.

use std::time::Duration;

use agentry_asl::validate::MachineType;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_executions_run_in_the_background_without_history() {
    let h = Harness::new().await;
    let definition = json!({"StartAt": "Wait", "States": {
        "Wait": {"Type": "Wait", "Seconds": 1, "Next": "Call"},
        "Call": {"Type": "Task", "Resource": ECHO, "End": true}}});
    let m = h
        .engine
        .create_state_machine_of_type("quick", &definition.to_string(), MachineType::Express)
        .await
        .unwrap();
    let started = h
        .engine
        .start_execution(&m, Some("first"), r#"{"n": 1}"#)
        .await
        .unwrap();
    let arn = started.execution_arn.clone();
    assert!(
        arn.starts_with("arn:aws:states:local:000000000000:express:quick:first:"),
        "{arn}"
    );
    // The task runs (after the Wait), with the execution's ARN in its idempotency key.
    let mut ran = false;
    for _ in 0..200 {
        if h.calls.keys().iter().any(|k| k.starts_with(&arn)) {
            ran = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ran, "the express execution's task never ran");
    // Express executions are not described, as on AWS.
    let e = h.engine.describe_execution(&arn).await.unwrap_err();
    assert_eq!(e.aws_name(), "InvalidArn");
    let e = h
        .engine
        .get_execution_history(&arn, None, false, None)
        .await
        .unwrap_err();
    assert_eq!(e.aws_name(), "InvalidArn");
    // Nor listed: ListExecutions does not take EXPRESS machines, as on AWS.
    let e = h
        .engine
        .list_executions(&m, None, None, None)
        .await
        .unwrap_err();
    assert_eq!(e.aws_name(), "StateMachineTypeNotSupported");
    // Names are not kept: the same name starts another execution.
    let again = h
        .engine
        .start_execution(&m, Some("first"), "{}")
        .await
        .unwrap();
    assert_ne!(again.execution_arn, arn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_express_execution_of_a_stopped_node_runs_again_on_another() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Calls::default();
    let a = open(dir.path(), "a", &calls).await;
    let node_a = a.run();
    let m = a
        .create_state_machine_of_type(
            "stuck",
            &json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": HANG, "End": true}}})
                .to_string(),
            MachineType::Express,
        )
        .await
        .unwrap();
    let arn = a
        .start_execution(&m, None, "{}")
        .await
        .unwrap()
        .execution_arn;
    let ran_on = |node: &str| {
        calls
            .keys
            .lock()
            .unwrap()
            .iter()
            .any(|(k, n)| k.starts_with(&arn) && n == node)
    };
    for _ in 0..200 {
        if ran_on("a") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ran_on("a"));
    node_a.stop().await;
    let b = open(dir.path(), "b", &calls).await;
    let _node_b = b.run();
    // After the start message's visibility timeout (2 s here) node b runs it from the start.
    for _ in 0..400 {
        if ran_on("b") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ran_on("b"), "the express execution was not run again");
}
