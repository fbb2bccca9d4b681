//! Durability across nodes: a timer due while no node ran, a timer longer than the queue can
//! delay, two nodes sharing the work (one of them stopping mid-run), on SQLite and on
//! PostgreSQL + Redis, and the tasks a node runs of its own steps: once however long they
//! take, and by another node when it stops.

use std::collections::HashSet;
use std::sync::Arc;
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

/// Stops a node mid-run, abandoning whatever it holds: its messages come back to the other
/// node after their visibility timeout.
fn stop_later(node: agentry_engine::Node) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        node.stop().await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_the_same_files_share_the_work_and_survive_one_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Calls::default();
    let a = open(dir.path(), "a", &calls).await;
    let b = open(dir.path(), "b", &calls).await;
    let (_na, nb) = (a.run(), b.run());
    let killer = stop_later(nb);
    share_work(&[a, b], &calls, 12).await;
    killer.await.unwrap();
    let by_node = calls.by_node();
    assert!(
        by_node.get("a").copied().unwrap_or(0) > 0 && by_node.get("b").copied().unwrap_or(0) > 0,
        "{by_node:?}"
    );
}

/// The URLs of the server-backed variant, or why it is skipped. Under `CI=true` missing URLs
/// fail; a build without the `postgres` and `redis` features has no such variant to run.
fn server_urls() -> Option<(String, String)> {
    if !cfg!(all(feature = "postgres", feature = "redis")) {
        eprintln!(
            "skipped: postgres + redis engine test (built without features postgres and redis)"
        );
        return None;
    }
    let pg = std::env::var("AGENTRY_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let redis = std::env::var("AGENTRY_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if let (Some(pg), Some(redis)) = (&pg, &redis) {
        return Some((pg.clone(), redis.clone()));
    }
    let missing: Vec<&str> = [
        (pg.is_none(), "AGENTRY_TEST_POSTGRES_URL"),
        (redis.is_none(), "AGENTRY_TEST_REDIS_URL"),
    ]
    .iter()
    .filter(|(m, _)| *m)
    .map(|(_, n)| *n)
    .collect();
    let why = format!("{} not set", missing.join(" and "));
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but the postgres + redis engine test cannot run: {why}"
    );
    eprintln!("skipped: postgres + redis engine test ({why})");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_postgres_and_redis_share_the_work_and_survive_one_stopping() {
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
    let (_na, nb) = (a.run(), b.run());
    let killer = stop_later(nb);
    share_work(&[a, b], &calls, 8).await;
    killer.await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_beyond_the_queue_delay_waits_in_the_store() {
    let h = Harness::new().await;
    let m = h
        .machine(
            "long-nap",
            json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}}),
        )
        .await;
    let s = h.engine.start_execution(&m, None, "{}").await.unwrap();
    // Two timer polls pass: the hour-long timer stays a stored item, not a queue message
    // (SQS-shaped delays stop at 15 minutes).
    tokio::time::sleep(h.engine.config().timer_poll * 2).await;
    assert_eq!(h.engine.pending_timers().await.unwrap(), 1);
    let (_, queue) = urls(h.dir());
    let queue = agentry_queue::open(&queue).await.unwrap();
    let stats = queue.stats(&h.engine.config().work_queue).await.unwrap();
    assert_eq!((stats.visible, stats.delayed, stats.in_flight), (0, 0, 0));
    h.engine
        .stop_execution(&s.execution_arn, None, None)
        .await
        .unwrap();
    assert_eq!(h.engine.pending_timers().await.unwrap(), 0);
}

fn long_task_machine() -> String {
    json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": LONG, "End": true}}})
        .to_string()
}

/// The node that commits a step runs its task itself, the step's outbox item standing for it:
/// a task longer than the outbox grace period must not look abandoned to the sweepers (its
/// own and another node's) while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_longer_than_the_outbox_grace_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Calls::default();
    let a = open(dir.path(), "a", &calls).await;
    let b = open(dir.path(), "b", &calls).await;
    let (_na, _nb) = (a.run(), b.run());
    assert!(config().outbox_grace < Duration::from_millis(2500));
    let m = a
        .create_state_machine("long", &long_task_machine())
        .await
        .unwrap();
    let s = a
        .start_execution(&m, Some("long"), r#"{"x": 1}"#)
        .await
        .unwrap();
    let d = finish(&a, &s.execution_arn).await;
    assert_eq!(d.output_json(), Some(json!({"x": 1})));
    assert_eq!(calls.keys().len(), 1, "{:?}", calls.keys.lock().unwrap());
    assert_eq!(calls.by_node().get("a"), Some(&1));
    // Nothing is left for a sweeper to hand out again later.
    tokio::time::sleep(config().outbox_grace + config().outbox_sweep * 2).await;
    assert_eq!(calls.keys().len(), 1, "{:?}", calls.keys.lock().unwrap());
}

/// A node that stops while it runs a task of its own step leaves the step's outbox item
/// behind: another node's sweeper hands the task out after the grace period, and the
/// execution completes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_whose_node_stops_is_run_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Calls::default();
    let a = open(dir.path(), "a", &calls).await;
    let b = open(dir.path(), "b", &calls).await;
    let na = a.run();
    let m = a
        .create_state_machine("long", &long_task_machine())
        .await
        .unwrap();
    let s = a
        .start_execution(&m, Some("orphan"), r#"{"x": 2}"#)
        .await
        .unwrap();
    // b starts only now: the task is a's.
    let _nb = b.run();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(calls.by_node().get("a"), Some(&1));
    na.stop().await;
    let d = finish(&b, &s.execution_arn).await;
    assert_eq!(d.output_json(), Some(json!({"x": 2})));
    assert_eq!(
        calls.by_node().get("b"),
        Some(&1),
        "{:?}",
        calls.keys.lock().unwrap()
    );
}

/// A node runs at most `max_running_tasks` tasks at once, those of its own steps and those it
/// takes from the task queue together: the tasks beyond its room go out on the queue, and
/// come back to it as room frees up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_beyond_a_nodes_room_wait_on_the_queue() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const COUNTED: &str = "arn:aws:lambda:local:000000000000:function:counted";
    let dir = tempfile::tempdir().unwrap();
    let (running, most, calls) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (r, m, c) = (running.clone(), most.clone(), calls.clone());
    let resources = agentry_engine::ResourceTable::new().with(COUNTED, move |req| {
        let (r, m, c) = (r.clone(), m.clone(), c.clone());
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            Ok(req.input)
        }
    });
    let (s, q) = urls(dir.path());
    let engine = Engine::open(
        agentry_storage::open(&s).await.unwrap(),
        agentry_queue::open(&q).await.unwrap(),
        resources,
        agentry_engine::EngineConfig {
            max_running_tasks: 2,
            ..config()
        },
    )
    .await
    .unwrap();
    let _node = engine.run();
    let m = engine
        .create_state_machine(
            "fan",
            &json!({"StartAt": "M", "States": {"M": {"Type": "Map",
                "ItemProcessor": {"StartAt": "T", "States": {
                    "T": {"Type": "Task", "Resource": COUNTED, "End": true}}},
                "End": true}}})
            .to_string(),
        )
        .await
        .unwrap();
    let items: Vec<usize> = (0..8).collect();
    let s = engine
        .start_execution(&m, None, &json!(items).to_string())
        .await
        .unwrap();
    let d = finish(&engine, &s.execution_arn).await;
    assert_eq!(d.output_json(), Some(json!(items)));
    assert_eq!(calls.load(Ordering::SeqCst), 8);
    assert_eq!(
        most.load(Ordering::SeqCst),
        2,
        "at most 2 at once, and 2 used"
    );
}
