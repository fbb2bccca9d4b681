//! Activities: workers poll for tasks, answer them with the task token, and are held to
//! HeartbeatSeconds.

use std::time::Duration;

use agentry_engine::Error;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_takes_an_activity_task_and_answers_it() {
    let h = Harness::new().await;
    let e = &h.engine;
    let activity = e.create_activity("review").await.unwrap();
    assert_eq!(
        activity.activity_arn,
        "arn:aws:states:local:000000000000:activity:review"
    );
    // Created again: the same activity.
    assert_eq!(e.create_activity("review").await.unwrap(), activity);
    assert_eq!(e.list_activities().await.unwrap(), vec![activity.clone()]);
    let m = h
        .machine(
            "reviewed",
            json!({"StartAt": "Review", "States": {"Review": {"Type": "Task",
                "Resource": activity.activity_arn, "Parameters": {"doc.$": "$.doc"},
                "HeartbeatSeconds": 30, "End": true}}}),
        )
        .await;
    // A worker polling before any task exists waits for one.
    let worker = {
        let e = e.clone();
        let arn = activity.activity_arn.clone();
        tokio::spawn(async move {
            e.get_activity_task(&arn, Some("worker-1"), Duration::from_secs(20))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ex = e
        .start_execution(&m, None, r#"{"doc": "draft"}"#)
        .await
        .unwrap()
        .execution_arn;
    let task = worker.await.unwrap().unwrap().expect("a task");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&task.input).unwrap(),
        json!({"doc": "draft"})
    );
    // Handed to one worker only.
    let none = e
        .get_activity_task(&activity.activity_arn, None, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(none, None);
    e.send_task_heartbeat(&task.task_token).await.unwrap();
    e.send_task_success(&task.task_token, r#"{"approved": true}"#)
        .await
        .unwrap();
    let d = finish(e, &ex).await;
    assert_eq!(d.status, "SUCCEEDED");
    assert_eq!(d.output_json(), Some(json!({"approved": true})));
    let history = e.history(&ex).await.unwrap();
    assert_eq!(
        types(&history),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "ActivityScheduled",
            "ActivityStarted",
            "ActivitySucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert_eq!(
        history[2]["activityScheduledEventDetails"]["resource"],
        json!(activity.activity_arn)
    );
    assert_eq!(
        history[2]["activityScheduledEventDetails"]["heartbeatInSeconds"],
        30
    );
    assert_eq!(
        history[3]["activityStartedEventDetails"],
        json!({"workerName": "worker-1"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_failures_and_missed_heartbeats_fail_the_task() {
    let h = Harness::new().await;
    let e = &h.engine;
    let arn = e
        .create_activity("flaky-worker")
        .await
        .unwrap()
        .activity_arn;
    let m = h
        .machine(
            "held",
            json!({"StartAt": "Work", "States": {"Work": {"Type": "Task",
                "Resource": arn, "HeartbeatSeconds": 1, "End": true}}}),
        )
        .await;
    let ex = e
        .start_execution(&m, None, "{}")
        .await
        .unwrap()
        .execution_arn;
    let task = e
        .get_activity_task(&arn, None, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    e.send_task_failure(&task.task_token, Some("Worker.Broke"), Some("disk full"))
        .await
        .unwrap();
    let d = finish(e, &ex).await;
    assert_eq!(d.status, "FAILED");
    assert_eq!(d.error.as_deref(), Some("Worker.Broke"));
    assert!(types(&e.history(&ex).await.unwrap()).contains(&"ActivityFailed".to_string()));

    // Taken and never heard from again: HeartbeatSeconds times it out.
    let ex = e
        .start_execution(&m, None, "{}")
        .await
        .unwrap()
        .execution_arn;
    let task = e
        .get_activity_task(&arn, None, Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    let d = finish(e, &ex).await;
    assert_eq!(d.status, "FAILED");
    assert_eq!(d.error.as_deref(), Some("States.HeartbeatTimeout"));
    let kinds = types(&e.history(&ex).await.unwrap());
    assert!(kinds.contains(&"ActivityTimedOut".to_string()), "{kinds:?}");
    let late = e
        .send_task_success(&task.task_token, "1")
        .await
        .unwrap_err();
    assert_eq!(late.aws_name(), "TaskTimedOut");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_belong_to_their_account() {
    let h = Harness::new().await;
    let acme = h.engine.for_account("111111111111").unwrap();
    let other = h.engine.for_account("222222222222").unwrap();
    let arn = acme.create_activity("private").await.unwrap().activity_arn;
    for err in [
        other.describe_activity(&arn).await.unwrap_err(),
        other
            .get_activity_task(&arn, None, Duration::from_millis(10))
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, Error::ActivityDoesNotExist(_)), "{err}");
    }
    assert!(other.list_activities().await.unwrap().is_empty());
    other.delete_activity(&arn).await.unwrap();
    assert!(acme.describe_activity(&arn).await.is_ok());
    // A machine of another account naming it fails its task rather than reaching it.
    let m = other
        .create_state_machine(
            "thief",
            &json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": arn, "End": true}}})
                .to_string(),
        )
        .await
        .unwrap();
    let ex = other.start_execution(&m, None, "{}").await.unwrap();
    let d = finish(&other, &ex.execution_arn).await;
    assert_eq!(d.status, "FAILED");
    assert_eq!(
        acme.get_activity_task(&arn, None, Duration::from_millis(300))
            .await
            .unwrap(),
        None
    );
    acme.delete_activity(&arn).await.unwrap();
    let gone = acme.describe_activity(&arn).await.unwrap_err();
    assert_eq!(gone.aws_name(), "ActivityDoesNotExist");
    let bad = acme
        .describe_activity("arn:aws:states:local:111111111111:stateMachine:x")
        .await
        .unwrap_err();
    assert_eq!(bad.aws_name(), "InvalidArn");
}
