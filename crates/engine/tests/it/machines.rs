//! State machine lifecycle: deleting machines and versions.

use std::time::Duration;

use agentry_engine::Error;
use serde_json::json;

use crate::support::*;

fn asks() -> serde_json::Value {
    json!({"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": TOKEN, "End": true}}})
}

fn pass(result: i64) -> serde_json::Value {
    json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": result, "End": true}}})
}

/// Waits until the token resource has seen `n` tokens; returns the last.
async fn token(h: &Harness, n: usize) -> String {
    for _ in 0..300 {
        let t = h.calls.tokens();
        if t.len() >= n {
            return t[n - 1].0.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no task token arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_machine_without_executions_is_gone_with_its_versions() {
    let h = Harness::new().await;
    let m = h.machine("short-lived", pass(1)).await;
    let v = h
        .engine
        .publish_state_machine_version(&m, None)
        .await
        .unwrap();
    let done = h.run(&m, json!({})).await;
    h.engine.delete_state_machine(&m).await.unwrap();
    let gone = h.engine.describe_state_machine(&m).await.unwrap_err();
    assert!(matches!(gone, Error::StateMachineDoesNotExist(_)), "{gone}");
    let gone = h
        .engine
        .describe_state_machine(&v.state_machine_version_arn)
        .await
        .unwrap_err();
    assert!(matches!(gone, Error::StateMachineDoesNotExist(_)), "{gone}");
    let refused = h.engine.start_execution(&m, None, "{}").await.unwrap_err();
    assert!(matches!(refused, Error::StateMachineDoesNotExist(_)));
    assert!(h.engine.list_state_machines().await.unwrap().is_empty());
    // Its finished executions are still described; deleting again changes nothing.
    let d = h
        .engine
        .describe_execution(&done.execution_arn)
        .await
        .unwrap();
    assert_eq!(d.status, "SUCCEEDED");
    h.engine.delete_state_machine(&m).await.unwrap();
    // The name can be used again; the new machine runs its own definition.
    let again = h.machine("short-lived", pass(2)).await;
    assert_eq!(again, m);
    let d = h.engine.describe_state_machine(&m).await.unwrap();
    assert_eq!(d.status, "ACTIVE");
    assert_eq!(h.run(&m, json!({})).await.output_json(), Some(json!(2)));
    let v1 = h
        .engine
        .publish_state_machine_version(&m, None)
        .await
        .unwrap();
    assert!(v1.state_machine_version_arn.ends_with(":short-lived:1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_machine_lets_its_running_executions_finish_then_goes() {
    let h = Harness::new().await;
    let m = h.machine("draining", asks()).await;
    let running = h.engine.start_execution(&m, None, "{}").await.unwrap();
    let t = token(&h, 1).await;
    h.engine.delete_state_machine(&m).await.unwrap();
    let d = h.engine.describe_state_machine(&m).await.unwrap();
    assert_eq!(d.status, "DELETING");
    let refused = h.engine.start_execution(&m, None, "{}").await.unwrap_err();
    assert!(
        matches!(refused, Error::StateMachineDeleting(_)),
        "{refused}"
    );
    assert_eq!(refused.aws_name(), "StateMachineDeleting");
    let refused = h
        .engine
        .update_state_machine(&m, &pass(1).to_string())
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::StateMachineDeleting(_)));
    h.engine
        .send_task_success(&t, r#"{"ok": true}"#)
        .await
        .unwrap();
    let d = finish(&h.engine, &running.execution_arn).await;
    assert_eq!(d.status, "SUCCEEDED");
    assert_eq!(d.output_json(), Some(json!({"ok": true})));
    let gone = h.engine.describe_state_machine(&m).await.unwrap_err();
    assert!(matches!(gone, Error::StateMachineDoesNotExist(_)), "{gone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_version_stops_new_starts_through_it_only() {
    let h = Harness::new().await;
    let m = h.machine("versioned", asks()).await;
    let v1 = h
        .engine
        .publish_state_machine_version(&m, None)
        .await
        .unwrap()
        .state_machine_version_arn;
    let running = h.engine.start_execution(&v1, None, "{}").await.unwrap();
    let t = token(&h, 1).await;
    h.engine.delete_state_machine_version(&v1).await.unwrap();
    let refused = h.engine.start_execution(&v1, None, "{}").await.unwrap_err();
    assert!(
        matches!(refused, Error::StateMachineDoesNotExist(_)),
        "{refused}"
    );
    // Idempotent, and the machine itself is untouched.
    h.engine.delete_state_machine_version(&v1).await.unwrap();
    assert_eq!(
        h.engine.describe_state_machine(&m).await.unwrap().status,
        "ACTIVE"
    );
    let bad = h.engine.delete_state_machine_version(&m).await.unwrap_err();
    assert_eq!(bad.aws_name(), "InvalidArn");
    h.engine.send_task_success(&t, "1").await.unwrap();
    let d = finish(&h.engine, &running.execution_arn).await;
    assert_eq!(d.status, "SUCCEEDED");
    assert_eq!(d.state_machine_version_arn.as_deref(), Some(v1.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_account_cannot_delete_a_machine() {
    let h = Harness::new().await;
    let acme = h.engine.for_account("111111111111").unwrap();
    let other = h.engine.for_account("222222222222").unwrap();
    let m = acme
        .create_state_machine("mine", &pass(1).to_string())
        .await
        .unwrap();
    // Another account's ARN names nothing there: the delete succeeds as for a missing machine.
    other.delete_state_machine(&m).await.unwrap();
    other
        .delete_state_machine_version(&format!("{m}:1"))
        .await
        .unwrap();
    assert_eq!(
        acme.describe_state_machine(&m).await.unwrap().status,
        "ACTIVE"
    );
}

fn route(arn: &str, weight: u32) -> agentry_engine::Route {
    agentry_engine::Route {
        state_machine_version_arn: arn.to_string(),
        weight,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_route_starts_to_versions_by_weight() {
    let h = Harness::new().await;
    let e = &h.engine;
    let m = h.machine("aliased", pass(1)).await;
    let v1 = e
        .publish_state_machine_version(&m, None)
        .await
        .unwrap()
        .state_machine_version_arn;
    e.update_state_machine(&m, &pass(2).to_string())
        .await
        .unwrap();
    let v2 = e
        .publish_state_machine_version(&m, None)
        .await
        .unwrap()
        .state_machine_version_arn;
    let (alias, _) = e
        .create_state_machine_alias("prod", Some("live"), &[route(&v1, 100)])
        .await
        .unwrap();
    assert_eq!(alias, format!("{m}:prod"));
    // Creating it again the same way answers with it; differently, a conflict.
    let (again, _) = e
        .create_state_machine_alias("prod", Some("live"), &[route(&v1, 100)])
        .await
        .unwrap();
    assert_eq!(again, alias);
    let conflict = e
        .create_state_machine_alias("prod", None, &[route(&v2, 100)])
        .await
        .unwrap_err();
    assert_eq!(conflict.aws_name(), "ConflictException");
    let d = e.describe_state_machine_alias(&alias).await.unwrap();
    assert_eq!(d.name, "prod");
    assert_eq!(d.description.as_deref(), Some("live"));
    assert_eq!(d.routing_configuration, vec![route(&v1, 100)]);
    let started = e.start_execution(&alias, None, "{}").await.unwrap();
    let d = finish(e, &started.execution_arn).await;
    assert_eq!(d.output_json(), Some(json!(1)));
    assert_eq!(d.state_machine_alias_arn.as_deref(), Some(alias.as_str()));
    assert_eq!(d.state_machine_version_arn.as_deref(), Some(v1.as_str()));
    assert_eq!(d.state_machine_arn, m);
    let started = &e.history(&d.execution_arn).await.unwrap()[0];
    assert_eq!(
        started["executionStartedEventDetails"]["stateMachineAliasArn"],
        json!(alias)
    );
    assert_eq!(
        started["executionStartedEventDetails"]["stateMachineVersionArn"],
        json!(v1)
    );

    // Half and half: both versions run.
    e.update_state_machine_alias(&alias, None, Some(&[route(&v1, 50), route(&v2, 50)]))
        .await
        .unwrap();
    let mut outputs = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let d = h.run(&alias, json!({})).await;
        let version = d.state_machine_version_arn.clone().unwrap();
        let expected = if version == v1 { json!(1) } else { json!(2) };
        assert_eq!(d.output_json(), Some(expected));
        outputs.insert(version);
    }
    assert_eq!(outputs.len(), 2, "one of the versions never ran");
    // A version an alias routes to cannot be deleted.
    let conflict = e.delete_state_machine_version(&v2).await.unwrap_err();
    assert_eq!(conflict.aws_name(), "ConflictException");
    e.update_state_machine_alias(&alias, Some("all on two"), Some(&[route(&v2, 100)]))
        .await
        .unwrap();
    assert_eq!(h.run(&alias, json!({})).await.output_json(), Some(json!(2)));
    // Listing through the alias or a version gives the executions started that way.
    let through_alias = e
        .list_executions(&alias, None, Some(1000), None)
        .await
        .unwrap();
    assert_eq!(through_alias.items.len(), 42);
    let through_v1 = e
        .list_executions(&v1, None, Some(1000), None)
        .await
        .unwrap();
    assert!(
        through_v1
            .items
            .iter()
            .all(|d| d.state_machine_version_arn.as_deref() == Some(v1.as_str()))
    );
    assert!(!through_v1.items.is_empty() && through_v1.items.len() < 42);
    let listed = e.list_state_machine_aliases(&m).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].description.as_deref(), Some("all on two"));
    assert!(listed[0].update_date.is_some());

    e.delete_state_machine_alias(&alias).await.unwrap();
    let gone = e.describe_state_machine_alias(&alias).await.unwrap_err();
    assert_eq!(gone.aws_name(), "ResourceNotFound");
    let gone = e.start_execution(&alias, None, "{}").await.unwrap_err();
    assert_eq!(gone.aws_name(), "StateMachineDoesNotExist");
    let gone = e.delete_state_machine_alias(&alias).await.unwrap_err();
    assert_eq!(gone.aws_name(), "ResourceNotFound");
    e.delete_state_machine_version(&v2).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_alias_requests_are_named_and_aliases_go_with_their_machine() {
    let h = Harness::new().await;
    let e = &h.engine;
    let m = h.machine("routed", pass(1)).await;
    let other = h.machine("elsewhere", pass(1)).await;
    let v1 = e
        .publish_state_machine_version(&m, None)
        .await
        .unwrap()
        .state_machine_version_arn;
    let w1 = e
        .publish_state_machine_version(&other, None)
        .await
        .unwrap()
        .state_machine_version_arn;
    let cases = [
        ("prod", vec![route(&v1, 90)], "ValidationException"),
        ("prod", vec![], "ValidationException"),
        (
            "prod",
            vec![route(&v1, 50), route(&w1, 50)],
            "ValidationException",
        ),
        (
            "prod",
            vec![route(&v1, 50), route(&v1, 50)],
            "ValidationException",
        ),
        (
            "prod",
            vec![route(&format!("{m}:9"), 100)],
            "ResourceNotFound",
        ),
        ("prod", vec![route(&m, 100)], "ValidationException"),
        ("123", vec![route(&v1, 100)], "ValidationException"),
    ];
    for (name, routes, code) in cases {
        let err = e
            .create_state_machine_alias(name, None, &routes)
            .await
            .unwrap_err();
        assert_eq!(err.aws_name(), code, "{name} {routes:?}: {err}");
    }
    let (alias, _) = e
        .create_state_machine_alias("live", None, &[route(&v1, 100)])
        .await
        .unwrap();
    // Another account sees no such alias.
    let stranger = e.for_account("222222222222").unwrap();
    let err = stranger
        .describe_state_machine_alias(&alias)
        .await
        .unwrap_err();
    assert_eq!(err.aws_name(), "ResourceNotFound");
    let err = stranger
        .start_execution(&alias, None, "{}")
        .await
        .unwrap_err();
    assert_eq!(err.aws_name(), "StateMachineDoesNotExist");
    // Deleting the machine takes its aliases and versions along.
    e.delete_state_machine(&m).await.unwrap();
    h.machine("routed", pass(3)).await;
    assert!(e.list_state_machine_aliases(&m).await.unwrap().is_empty());
    assert_eq!(
        e.describe_state_machine_alias(&alias)
            .await
            .unwrap_err()
            .aws_name(),
        "ResourceNotFound"
    );
}
