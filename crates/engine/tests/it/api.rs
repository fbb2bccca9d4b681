//! The Step Functions API over the durable engine: names, stop, paging, versions, tokens.

use std::time::Duration;

use agentry_engine::Error;
use serde_json::json;

use crate::support::*;

fn waiting() -> serde_json::Value {
    json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 300, "End": true}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_names_are_idempotent_as_on_aws() {
    let h = Harness::new().await;
    let m = h.machine("names", waiting()).await;
    let a = h
        .engine
        .start_execution(&m, Some("run-1"), r#"{"x": 1}"#)
        .await
        .unwrap();
    let again = h
        .engine
        .start_execution(&m, Some("run-1"), r#"{"x": 1}"#)
        .await
        .unwrap();
    assert_eq!(a, again);
    let other = h
        .engine
        .start_execution(&m, Some("run-1"), r#"{"x": 2}"#)
        .await
        .unwrap_err();
    assert!(matches!(other, Error::ExecutionAlreadyExists(_)), "{other}");
    assert_eq!(other.aws_name(), "ExecutionAlreadyExists");
    h.engine
        .stop_execution(&a.execution_arn, None, None)
        .await
        .unwrap();
    // A closed execution's name cannot be reused, even with the same input.
    let closed = h
        .engine
        .start_execution(&m, Some("run-1"), r#"{"x": 1}"#)
        .await
        .unwrap_err();
    assert!(matches!(closed, Error::ExecutionAlreadyExists(_)));
    let bad = h
        .engine
        .start_execution(&m, Some("run 2"), "{}")
        .await
        .unwrap_err();
    assert_eq!(bad.aws_name(), "InvalidName");
    let bad = h
        .engine
        .start_execution(&m, Some("run-2"), "{not json")
        .await
        .unwrap_err();
    assert_eq!(bad.aws_name(), "InvalidExecutionInput");
    let missing = h
        .engine
        .start_execution(&format!("{m}-nope"), None, "{}")
        .await
        .unwrap_err();
    assert_eq!(missing.aws_name(), "StateMachineDoesNotExist");
    let missing = h
        .engine
        .describe_execution(&a.execution_arn.replace("run-1", "run-9"))
        .await
        .unwrap_err();
    assert_eq!(missing.aws_name(), "ExecutionDoesNotExist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_aborts_a_waiting_execution() {
    let h = Harness::new().await;
    let m = h.machine("stop", waiting()).await;
    let s = h.engine.start_execution(&m, Some("s"), "{}").await.unwrap();
    let stopped = h
        .engine
        .stop_execution(&s.execution_arn, Some("User.Stop"), Some("enough"))
        .await
        .unwrap();
    let d = h.engine.describe_execution(&s.execution_arn).await.unwrap();
    assert_eq!(d.status, "ABORTED");
    assert_eq!(d.stop_date, Some(stopped));
    assert_eq!(
        (d.error.as_deref(), d.cause.as_deref()),
        (Some("User.Stop"), Some("enough"))
    );
    let events = h.engine.history(&s.execution_arn).await.unwrap();
    check_history(&events);
    assert_eq!(types(&events).last().unwrap(), "ExecutionAborted");
    // Stopping again changes nothing.
    h.engine
        .stop_execution(&s.execution_arn, None, None)
        .await
        .unwrap();
    assert_eq!(
        h.engine.history(&s.execution_arn).await.unwrap().len(),
        events.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_forward_and_backward() {
    let h = Harness::new().await;
    let m = h
        .machine(
            "pages",
            json!({"StartAt": "Each", "States": {"Each": {"Type": "Map",
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}}),
        )
        .await;
    let d = h.run(&m, json!((0..30).collect::<Vec<_>>())).await;
    let all = h.engine.history(&d.execution_arn).await.unwrap();
    let mut forward = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = h
            .engine
            .get_execution_history(&d.execution_arn, Some(25), false, token)
            .await
            .unwrap();
        assert!(page.items.len() <= 25);
        forward.extend(page.items);
        pages += 1;
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(forward, all);
    assert!(pages >= all.len() / 25);
    let back = h
        .engine
        .get_execution_history(&d.execution_arn, Some(3), true, None)
        .await
        .unwrap();
    assert_eq!(back.items[0], *all.last().unwrap());
    assert_eq!(back.items[2], all[all.len() - 3]);
    assert!(back.next_token.is_some());
    // A step's events are stored several to an item: pages of any size, either way, cut
    // through those items and still give every event once, in order.
    for size in [1, 7, 100] {
        for reverse in [false, true] {
            let mut got = Vec::new();
            let mut token = None;
            loop {
                let page = h
                    .engine
                    .get_execution_history(&d.execution_arn, Some(size), reverse, token)
                    .await
                    .unwrap();
                assert!(page.items.len() <= size as usize);
                got.extend(page.items);
                match page.next_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            let mut want = all.clone();
            if reverse {
                want.reverse();
            }
            assert_eq!(got, want, "pages of {size}, reverse {reverse}");
        }
    }
    let bad = h
        .engine
        .get_execution_history(&d.execution_arn, Some(3), false, Some("garbage".into()))
        .await;
    assert_eq!(bad.unwrap_err().aws_name(), "InvalidToken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_executions_filters_by_status_and_pages() {
    let h = Harness::new().await;
    let m = h.machine("listing", waiting()).await;
    let done = h
        .machine(
            "listing-done",
            json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
        )
        .await;
    let mut running = Vec::new();
    for i in 0..5 {
        running.push(
            h.engine
                .start_execution(&m, Some(&format!("r{i}")), "{}")
                .await
                .unwrap()
                .execution_arn,
        );
    }
    h.engine
        .stop_execution(&running[0], None, None)
        .await
        .unwrap();
    h.run(&done, json!({})).await;
    let page = h
        .engine
        .list_executions(&m, None, Some(2), None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    // Newest first.
    assert_eq!(page.items[0].name, "r4");
    let rest = h
        .engine
        .list_executions(&m, None, Some(10), page.next_token)
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 3);
    let r = h
        .engine
        .list_executions(&m, Some("RUNNING"), None, None)
        .await
        .unwrap();
    assert_eq!(r.items.len(), 4);
    let a = h
        .engine
        .list_executions(&m, Some("ABORTED"), None, None)
        .await
        .unwrap();
    assert_eq!(
        a.items.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["r0"]
    );
    let s = h
        .engine
        .list_executions(&done, Some("SUCCEEDED"), None, None)
        .await
        .unwrap();
    assert_eq!(s.items.len(), 1);
    let missing = h
        .engine
        .list_executions(&format!("{m}-nope"), None, None, None)
        .await
        .unwrap_err();
    assert_eq!(missing.aws_name(), "StateMachineDoesNotExist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_keep_the_definition_they_published() {
    let h = Harness::new().await;
    let def = |r: &str| {
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": r, "End": true}}})
            .to_string()
    };
    let m = h
        .engine
        .create_state_machine("versioned", &def("one"))
        .await
        .unwrap();
    assert_eq!(
        h.engine
            .create_state_machine("versioned", &def("one"))
            .await
            .unwrap(),
        m
    );
    let clash = h
        .engine
        .create_state_machine("versioned", &def("two"))
        .await
        .unwrap_err();
    assert_eq!(clash.aws_name(), "StateMachineAlreadyExists");
    let v1 = h
        .engine
        .publish_state_machine_version(&m, Some("first"))
        .await
        .unwrap();
    assert_eq!(v1.state_machine_version_arn, format!("{m}:1"));
    assert_eq!(
        h.engine
            .publish_state_machine_version(&m, None)
            .await
            .unwrap(),
        v1
    );
    h.engine
        .update_state_machine(&m, &def("two"))
        .await
        .unwrap();
    let latest = h.run(&m, json!({})).await;
    assert_eq!(latest.output_json(), Some(json!("two")));
    let s = h
        .engine
        .start_execution(&v1.state_machine_version_arn, None, "{}")
        .await
        .unwrap();
    let old = finish(&h.engine, &s.execution_arn).await;
    assert_eq!(old.output_json(), Some(json!("one")));
    assert_eq!(
        old.state_machine_version_arn.as_deref(),
        Some(v1.state_machine_version_arn.as_str())
    );
    let d = h
        .engine
        .describe_state_machine(&v1.state_machine_version_arn)
        .await
        .unwrap();
    assert_eq!(
        (d.revision_id.as_str(), d.version_description.as_deref()),
        ("1", Some("first"))
    );
    assert_eq!(
        h.engine
            .describe_state_machine(&m)
            .await
            .unwrap()
            .revision_id,
        "2"
    );
    let invalid = h
        .engine
        .create_state_machine("bad", r#"{"StartAt": "X", "States": {}}"#)
        .await
        .unwrap_err();
    assert_eq!(invalid.aws_name(), "InvalidDefinition");
    assert_eq!(h.engine.list_state_machines().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_task_token_is_answered_through_the_api() {
    let h = Harness::new().await;
    let m = h
        .machine(
            "approval",
            json!({"StartAt": "Ask", "States": {
                "Ask": {"Type": "Task", "Resource": TOKEN, "HeartbeatSeconds": 60,
                    "Parameters": {"QueueUrl": "approvals", "MessageBody": {"token.$": "$$.Task.Token"}},
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Refused"}], "End": true},
                "Refused": {"Type": "Pass", "Result": "refused", "End": true}
            }}),
        )
        .await;
    let yes = h
        .engine
        .start_execution(&m, Some("yes"), "{}")
        .await
        .unwrap();
    let token = wait_token(&h, 1).await;
    h.engine.send_task_heartbeat(&token).await.unwrap();
    h.engine
        .send_task_success(&token, r#"{"approved": true}"#)
        .await
        .unwrap();
    let d = finish(&h.engine, &yes.execution_arn).await;
    assert_eq!(d.output_json(), Some(json!({"approved": true})));
    // The token is spent: a second answer finds the task gone.
    let late = h.engine.send_task_success(&token, "{}").await.unwrap_err();
    assert_eq!(late.aws_name(), "TaskTimedOut");
    let bad = h
        .engine
        .send_task_success(&token, "{not json")
        .await
        .unwrap_err();
    assert_eq!(bad.aws_name(), "InvalidOutput");
    let unknown = h
        .engine
        .send_task_success("not-a-token", "{}")
        .await
        .unwrap_err();
    assert_eq!(unknown.aws_name(), "InvalidToken");

    let no = h
        .engine
        .start_execution(&m, Some("no"), "{}")
        .await
        .unwrap();
    let token = wait_token(&h, 2).await;
    h.engine
        .send_task_failure(&token, Some("Human.Refused"), Some("not today"))
        .await
        .unwrap();
    let d = finish(&h.engine, &no.execution_arn).await;
    assert_eq!(d.output_json(), Some(json!("refused")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_deadline_times_a_silent_task_out() {
    let h = Harness::new().await;
    let m = h
        .machine(
            "silent",
            json!({"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": TOKEN, "HeartbeatSeconds": 1,
                "Parameters": {"QueueUrl": "approvals", "MessageBody": {"token.$": "$$.Task.Token"}}, "End": true}}}),
        )
        .await;
    let s = h.engine.start_execution(&m, None, "{}").await.unwrap();
    let token = wait_token(&h, 1).await;
    let d = finish(&h.engine, &s.execution_arn).await;
    assert_eq!(
        (d.status.as_str(), d.error.as_deref()),
        ("FAILED", Some("States.HeartbeatTimeout"))
    );
    let late = h.engine.send_task_success(&token, "{}").await.unwrap_err();
    assert_eq!(late.aws_name(), "TaskTimedOut");
}

/// Waits for the token resource to have been invoked `n` times; returns the last token.
async fn wait_token(h: &Harness, n: usize) -> String {
    for _ in 0..300 {
        let tokens = h.calls.tokens();
        if tokens.len() >= n {
            let (token, input) = tokens[n - 1].clone();
            assert!(
                input.to_string().contains(&token),
                "the task's input carries its token"
            );
            return token;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the token resource was not invoked {n} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_see_only_their_own_machines_executions_and_tokens() {
    let h = Harness::new().await;
    let acme = h.engine.for_account("111111111111").unwrap();
    let other = h.engine.for_account("222222222222").unwrap();
    let definition = json!({"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": TOKEN, "End": true}}})
    .to_string();
    let m = acme
        .create_state_machine("shared-name", &definition)
        .await
        .unwrap();
    assert_eq!(
        m,
        "arn:aws:states:local:111111111111:stateMachine:shared-name"
    );
    // The same name in another account is another machine.
    let m2 = other
        .create_state_machine("shared-name", &waiting().to_string())
        .await
        .unwrap();
    assert_ne!(m, m2);
    let started = acme.start_execution(&m, Some("run"), "{}").await.unwrap();
    let arn = started.execution_arn.clone();
    assert!(arn.starts_with("arn:aws:states:local:111111111111:execution:shared-name:"));

    // Everything of acme's, asked for by the other account, answers as for what does not exist.
    let gone = |e: Error| e.aws_name().to_string();
    assert_eq!(
        gone(other.describe_state_machine(&m).await.unwrap_err()),
        "StateMachineDoesNotExist"
    );
    assert_eq!(
        gone(other.start_execution(&m, None, "{}").await.unwrap_err()),
        "StateMachineDoesNotExist"
    );
    assert_eq!(
        gone(
            other
                .update_state_machine(&m, &definition)
                .await
                .unwrap_err()
        ),
        "StateMachineDoesNotExist"
    );
    assert_eq!(
        gone(
            other
                .publish_state_machine_version(&m, None)
                .await
                .unwrap_err()
        ),
        "StateMachineDoesNotExist"
    );
    assert_eq!(
        gone(
            other
                .list_executions(&m, None, None, None)
                .await
                .unwrap_err()
        ),
        "StateMachineDoesNotExist"
    );
    assert_eq!(
        gone(other.describe_execution(&arn).await.unwrap_err()),
        "ExecutionDoesNotExist"
    );
    assert_eq!(
        gone(
            other
                .get_execution_history(&arn, None, false, None)
                .await
                .unwrap_err()
        ),
        "ExecutionDoesNotExist"
    );
    assert_eq!(
        gone(other.stop_execution(&arn, None, None).await.unwrap_err()),
        "ExecutionDoesNotExist"
    );
    let listed: Vec<String> = other
        .list_state_machines()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.state_machine_arn)
        .collect();
    assert_eq!(listed, vec![m2.clone()]);

    // The task token of acme's execution is unknown to the other account.
    let token = loop {
        if let Some((t, _)) = h.calls.tokens().into_iter().next() {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        gone(other.send_task_success(&token, "{}").await.unwrap_err()),
        "InvalidToken"
    );
    assert_eq!(
        acme.describe_execution(&arn).await.unwrap().status,
        "RUNNING"
    );
    acme.send_task_success(&token, r#"{"ok": true}"#)
        .await
        .unwrap();
    let d = finish(&acme, &arn).await;
    assert_eq!(d.status, "SUCCEEDED");
    assert_eq!(d.state_machine_arn, m);
    assert!(h.engine.for_account("12").is_err());
}
