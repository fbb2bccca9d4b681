//! Every kind of state, run durably to its end.

use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_then_task_succeeds_with_the_task_output() {
    let h = Harness::new().await;
    let m = h
        .machine(
            "pass-task",
            json!({"StartAt": "P", "States": {
                "P": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('hi {}', $.name)"}, "Next": "T"},
                "T": {"Type": "Task", "Resource": ECHO, "End": true}
            }}),
        )
        .await;
    let d = h.run(&m, json!({"name": "ada"})).await;
    assert_eq!(d.status, "SUCCEEDED");
    assert_eq!(d.output_json(), Some(json!({"greeting": "hi ada"})));
    let events = h.engine.history(&d.execution_arn).await.unwrap();
    assert_eq!(
        types(&events),
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert_eq!(
        events[4]["taskScheduledEventDetails"]["resource"],
        json!(ECHO)
    );
    assert_eq!(h.calls.keys().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choice_map_parallel_and_wait() {
    let h = Harness::new().await;
    let m = h
        .machine(
            "mixed",
            json!({"StartAt": "Route", "States": {
                "Route": {"Type": "Choice", "Choices": [
                    {"Variable": "$.kind", "StringEquals": "many", "Next": "Each"}
                ], "Default": "Nope"},
                "Nope": {"Type": "Fail", "Error": "Wrong.Kind"},
                "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
                    "ItemProcessor": {"StartAt": "Double", "States": {
                        "Double": {"Type": "Pass", "Parameters": {"v.$": "States.MathAdd($, $)"}, "Next": "Echo"},
                        "Echo": {"Type": "Task", "Resource": ECHO, "End": true}
                    }},
                    "ResultPath": "$.doubled", "Next": "Both"},
                "Both": {"Type": "Parallel", "Branches": [
                    {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 1, "Next": "Left"},
                        "Left": {"Type": "Pass", "Result": "left", "End": true}}},
                    {"StartAt": "Right", "States": {"Right": {"Type": "Task", "Resource": ECHO,
                        "Parameters": {"n.$": "States.ArrayLength($.doubled)"}, "End": true}}}
                ], "End": true}
            }}),
        )
        .await;
    let d = h
        .run(&m, json!({"kind": "many", "items": [1, 2, 3, 4, 5]}))
        .await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    assert_eq!(d.output_json(), Some(json!(["left", {"n": 5}])));
    assert_eq!(h.calls.keys().len(), 6);
    let other = h.run(&m, json!({"kind": "few"})).await;
    assert_eq!(
        (other.status.as_str(), other.error.as_deref()),
        ("FAILED", Some("Wrong.Kind"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_backoff_then_catch() {
    let h = Harness::new().await;
    let m = h
        .machine(
            "retry-catch",
            json!({"StartAt": "Flaky", "States": {
                "Flaky": {"Type": "Task", "Resource": FLAKY, "ResultPath": "$.flaky",
                    "Retry": [{"ErrorEquals": ["Flaky.Error"], "IntervalSeconds": 1, "BackoffRate": 1.0, "MaxAttempts": 3}],
                    "Next": "Broken"},
                "Broken": {"Type": "Task", "Resource": FAIL,
                    "Retry": [{"ErrorEquals": ["Custom.Error"], "IntervalSeconds": 1, "MaxAttempts": 1}],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Handled"}],
                    "End": true},
                "Handled": {"Type": "Pass", "End": true}
            }}),
        )
        .await;
    let d = h.run(&m, json!({})).await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    assert_eq!(
        d.output_json(),
        Some(
            json!({"flaky": {"attempts": 3}, "caught": {"Error": "Custom.Error", "Cause": "it broke"}})
        )
    );
    // Three attempts of the flaky task, two of the broken one, each with its own key.
    let keys = h.calls.keys();
    assert_eq!(keys.len(), 5, "{keys:?}");
    assert_eq!(
        keys.iter().collect::<std::collections::HashSet<_>>().len(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_resource_fails_naming_it() {
    let h = Harness::new().await;
    let m = h
        .machine(
            "unknown",
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::bedrock:invokeModel", "End": true}}}),
        )
        .await;
    let d = h.run(&m, json!({})).await;
    assert_eq!(d.status, "FAILED");
    assert_eq!(d.error.as_deref(), Some("States.TaskFailed"));
    assert!(
        d.cause
            .unwrap()
            .contains("arn:aws:states:::bedrock:invokeModel")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_larger_than_a_transaction_commits_whole() {
    // A Map of 3000 Pass iterations after a Task is one step of about 12,000 events: over a
    // hundred history items, so several transactions, on top of the record the Task's step
    // left in the node's cache.
    let h = Harness::new().await;
    let m = h
        .machine(
            "big-map",
            json!({"StartAt": "First", "States": {
                "First": {"Type": "Task", "Resource": ECHO, "Next": "Each"},
                "Each": {"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {
                    "P": {"Type": "Pass", "Parameters": {"i.$": "$"}, "End": true}}}, "End": true}
            }}),
        )
        .await;
    let items: Vec<u64> = (0..3000).collect();
    let d = h.run(&m, json!(items)).await;
    assert_eq!(d.status, "SUCCEEDED");
    let out = d.output_json().unwrap();
    assert_eq!(out.as_array().unwrap().len(), 3000);
    assert_eq!(out[2999], json!({"i": 2999}));
    let events = h.engine.history(&d.execution_arn).await.unwrap();
    assert!(events.len() > 12_000, "{}", events.len());
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=events.len() as u64).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_of_tasks_and_executions() {
    let h = Harness::new().await;
    let task = h
        .machine(
            "task-timeout",
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": HANG, "TimeoutSeconds": 1, "End": true}}}),
        )
        .await;
    let d = h.run(&task, json!({})).await;
    assert_eq!(
        (d.status.as_str(), d.error.as_deref()),
        ("FAILED", Some("States.Timeout"))
    );
    let events = h.engine.history(&d.execution_arn).await.unwrap();
    assert!(types(&events).contains(&"TaskTimedOut".to_string()));
    let execution = h
        .machine(
            "execution-timeout",
            json!({"TimeoutSeconds": 1, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": true}}}),
        )
        .await;
    let d = h.run(&execution, json!({})).await;
    assert_eq!(d.status, "TIMED_OUT");
    // The Wait's timer, due in a minute, went with the execution.
    assert_eq!(h.engine.pending_timers().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_that_never_waits_fails_at_the_history_limit() {
    let h = Harness::new().await;
    let m = h
        .machine(
            "spin",
            json!({"StartAt": "A", "States": {
                "A": {"Type": "Pass", "Next": "B"},
                "B": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": true, "Next": "End"}], "Default": "A"},
                "End": {"Type": "Succeed"}
            }}),
        )
        .await;
    let d = h.run(&m, json!({})).await;
    assert_eq!(
        (d.status.as_str(), d.error.as_deref()),
        ("FAILED", Some("States.Runtime"))
    );
    let events = h.engine.history(&d.execution_arn).await.unwrap();
    assert_eq!(events.len(), 25_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_near_the_limit_survive_records_longer_than_an_item() {
    // 200 KB of input is held several times in the interpreter state (the input, its text,
    // the state's input): far more than one 400 KB item.
    let h = Harness::new().await;
    let m = h
        .machine(
            "big-payload",
            json!({"StartAt": "Nap", "States": {
                "Nap": {"Type": "Wait", "Seconds": 1, "Next": "T"},
                "T": {"Type": "Task", "Resource": ECHO, "End": true}
            }}),
        )
        .await;
    let blob: String = (0..200 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let input = json!({"blob": blob, "note": "quotes \" and unicode é survive"});
    let d = h.run(&m, input.clone()).await;
    assert_eq!(d.status, "SUCCEEDED", "{:?}", d.error);
    assert_eq!(d.output_json(), Some(input.clone()));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&d.input).unwrap(),
        input
    );
    let listed = h
        .engine
        .list_executions(&m, None, None, None)
        .await
        .unwrap();
    assert_eq!(listed.items[0].output_json(), Some(input));
}
