//! Durability across nodes: a timer due while no node ran, two nodes sharing the work, and
//! the same on PostgreSQL + Redis.

use std::collections::HashSet;
use std::time::Duration;

use agentry_engine::Engine;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_due_while_no_node_ran_fires_when_one_returns() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Calls::default();
    let arn = {
        let engine = open(dir.path(), "a", &calls).await;
        let node = engine.run();
        let m = engine
            .create_state_machine(
                "nap",
                &json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "Next": "T"},
                    "T": {"Type": "Task", "Resource": ECHO, "End": true}}})
                .to_string(),
            )
            .await
            .unwrap();
        let s = engine
            .start_execution(&m, Some("nap"), r#"{"woke": true}"#)
            .await
            .unwrap();
        node.stop().await;
        s.execution_arn
    };
    // Let the timer fall due with no node running (setup, not an assertion).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let engine = open(dir.path(), "b", &calls).await;
    assert_eq!(
        engine.describe_execution(&arn).await.unwrap().status,
        "RUNNING"
    );
    let _node = engine.run();
    let d = finish(&engine, &arn).await;
    assert_eq!(d.output_json(), Some(json!({"woke": true})));
    assert_eq!(calls.by_node().get("b"), Some(&1));
}

/// A machine with a Map of tasks, a retry with backoff and a Wait: several steps per item.
pub fn busy_machine() -> String {
    json!({"StartAt": "Each", "States": {
        "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 3,
            "ItemProcessor": {"StartAt": "Echo", "States": {
                "Echo": {"Type": "Task", "Resource": ECHO, "Next": "Slow"},
                "Slow": {"Type": "Task", "Resource": SLOW, "End": true}
            }}, "ResultPath": "$.echoed", "Next": "Flaky"},
        "Flaky": {"Type": "Task", "Resource": FLAKY, "ResultPath": "$.flaky",
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "BackoffRate": 1.0, "MaxAttempts": 3}],
            "Next": "Nap"},
        "Nap": {"Type": "Wait", "Seconds": 1, "End": true}
    }})
    .to_string()
}

pub fn busy_input(i: usize) -> Value {
    json!({"n": i, "items": (0..6).map(|k| json!({"k": k, "of": i})).collect::<Vec<_>>()})
}

pub fn busy_output(i: usize) -> Value {
    let mut v = busy_input(i);
    v["echoed"] = v["items"].clone();
    v["flaky"] = json!({"attempts": 3});
    v
}

/// Starts `n` executions alternately on the engines, waits for all, and checks outputs,
/// histories and that every scheduled task's key was invoked.
pub async fn share_work(engines: &[Engine], calls: &Calls, n: usize) {
    let m = engines[0]
        .create_state_machine("busy", &busy_machine())
        .await
        .unwrap();
    let mut arns = Vec::new();
    for i in 0..n {
        let e = &engines[i % engines.len()];
        arns.push(
            e.start_execution(&m, Some(&format!("busy-{i}")), &busy_input(i).to_string())
                .await
                .unwrap()
                .execution_arn,
        );
    }
    let mut scheduled = HashSet::new();
    for (i, arn) in arns.iter().enumerate() {
        let d = finish(&engines[(i + 1) % engines.len()], arn).await;
        assert_eq!(d.status, "SUCCEEDED", "{d:?}");
        assert_eq!(d.output_json(), Some(busy_output(i)));
        let events = engines[0].history(arn).await.unwrap();
        let tasks = events
            .iter()
            .filter(|e| e["type"] == "TaskScheduled")
            .count();
        assert_eq!(tasks, 6 * 2 + 3, "each task scheduled once per attempt");
        for e in &events {
            if e["type"] == "TaskStateEntered" {
                scheduled.insert(e["id"].as_u64().unwrap());
            }
        }
    }
    let keys = calls.keys();
    let distinct: HashSet<&String> = keys.iter().collect();
    assert_eq!(
        distinct.len(),
        n * (6 * 2 + 3),
        "every task attempt invoked at least once"
    );
    eprintln!(
        "{n} executions: {} invocations, {} duplicates, by node {:?}",
        keys.len(),
        keys.len() - distinct.len(),
        calls.by_node()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_the_same_files_share_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Calls::default();
    let a = open(dir.path(), "a", &calls).await;
    let b = open(dir.path(), "b", &calls).await;
    let (_na, _nb) = (a.run(), b.run());
    share_work(&[a, b], &calls, 12).await;
    let by_node = calls.by_node();
    assert!(
        by_node.get("a").copied().unwrap_or(0) > 0 && by_node.get("b").copied().unwrap_or(0) > 0,
        "{by_node:?}"
    );
}

/// The URLs of the server-backed variant, or why it is skipped (a failure under `CI=true`).
fn server_urls() -> Option<(String, String)> {
    let pg = std::env::var("AGENTRY_TEST_POSTGRES_URL").ok();
    let redis = std::env::var("AGENTRY_TEST_REDIS_URL").ok();
    let built = cfg!(all(feature = "postgres", feature = "redis"));
    match (pg, redis) {
        (Some(pg), Some(redis)) if built => Some((pg, redis)),
        (pg, redis) => {
            let why = if !built {
                "built without features postgres and redis".to_string()
            } else {
                format!(
                    "{} not set",
                    [
                        (pg.is_none(), "AGENTRY_TEST_POSTGRES_URL"),
                        (redis.is_none(), "AGENTRY_TEST_REDIS_URL")
                    ]
                    .iter()
                    .filter(|(missing, _)| *missing)
                    .map(|(_, n)| *n)
                    .collect::<Vec<_>>()
                    .join(" and ")
                )
            };
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but the postgres + redis engine test cannot run: {why}"
            );
            eprintln!("skipped: postgres + redis engine test ({why})");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_postgres_and_redis_share_the_work() {
    let Some((pg, redis)) = server_urls() else {
        return;
    };
    // A schema and queue prefix of its own, so runs never see each other's data.
    let run = uuid_like();
    let sep = if pg.contains('?') { '&' } else { '?' };
    let store = format!("{pg}{sep}schema=engine_{run}");
    let sep = if redis.contains('?') { '&' } else { '?' };
    let queue = format!("{redis}{sep}prefix=engine-{run}");
    let calls = Calls::default();
    let a = open_urls(&store, &queue, "a", &calls).await;
    let b = open_urls(&store, &queue, "b", &calls).await;
    let (_na, _nb) = (a.run(), b.run());
    share_work(&[a, b], &calls, 8).await;
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
