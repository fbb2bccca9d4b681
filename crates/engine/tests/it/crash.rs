//! kill -9: a child process (this test binary re-invoked with `AGENTRY_ENGINE_CRASH_DIR`) runs
//! a node; the parent kills it with SIGKILL at random moments, several times. From the middle
//! rounds on the parent runs a node of its own beside the children (two processes sharing the
//! files, one of them dying), and at the end alone. Every execution must end with the output an uninterrupted run gives, and no
//! transition may appear twice in its history.

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::nodes::{busy_input, busy_machine, busy_output};
use crate::support::*;

const ROUNDS: usize = 8;
const EXECUTIONS: usize = 16;

/// A small random number without a dependency: the clock's nanoseconds, mixed.
fn random(below: u64) -> u64 {
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x % below
}

/// The child's side: runs only when re-invoked by [`kill_nine_mid_run_loses_nothing`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_process() {
    let Ok(dir) = std::env::var("AGENTRY_ENGINE_CRASH_DIR") else {
        return;
    };
    let calls = Calls {
        print: true,
        ..Calls::default()
    };
    let engine = open(std::path::Path::new(&dir), "child", &calls).await;
    let _node = engine.run();
    println!("READY");
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_mid_run_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Calls::default();
    let engine = open(dir.path(), "parent", &calls).await;
    let m = engine
        .create_state_machine("busy", &busy_machine())
        .await
        .unwrap();
    let mut arns = Vec::new();
    for i in 0..EXECUTIONS {
        let s = engine
            .start_execution(&m, Some(&format!("crash-{i}")), &busy_input(i).to_string())
            .await
            .unwrap();
        arns.push(s.execution_arn);
    }
    let exe = std::env::current_exe().unwrap();
    let mut child_keys: Vec<String> = Vec::new();
    let mut parent_node = None;
    for round in 0..ROUNDS {
        if round == ROUNDS / 2 {
            parent_node = Some(engine.run());
        }
        let mut child = tokio::process::Command::new(&exe)
            .args([
                "crash::crash_child_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("AGENTRY_ENGINE_CRASH_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Collect what it invoked, up to its death.
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(async move {
            let mut keys = Vec::new();
            let mut ready_tx = Some(ready_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(k) = line.strip_prefix("CALL ") {
                    keys.push(k.to_string());
                } else if line.contains("READY") {
                    ready_tx.take().map(|t| t.send(()));
                }
            }
            keys
        });
        ready.await.expect("child exited before it was ready");
        // Let it work a random while, then kill it without warning.
        tokio::time::sleep(Duration::from_millis(100 + random(900))).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        let keys = reader.await.unwrap();
        let done = futures_done(&engine, &arns).await;
        eprintln!(
            "round {round}: child killed after {} invocations with {done} of {EXECUTIONS} executions finished",
            keys.len()
        );
        child_keys.extend(keys);
    }
    let _node = parent_node.expect("the parent's node runs");
    let mut scheduled = 0;
    for (i, arn) in arns.iter().enumerate() {
        let d = finish(&engine, arn).await;
        assert_eq!(d.status, "SUCCEEDED", "{d:?}");
        assert_eq!(d.output_json(), Some(busy_output(i)));
        let events = engine.history(arn).await.unwrap();
        let tasks = events
            .iter()
            .filter(|e| e["type"] == "TaskScheduled")
            .count();
        assert_eq!(tasks, 6 * 2 + 3, "a transition was recorded twice or lost");
        scheduled += tasks;
    }
    // Every task attempt was invoked (by a child or by the parent), some more than once.
    let mut keys = child_keys;
    keys.extend(calls.keys());
    let distinct: std::collections::HashSet<&String> = keys.iter().collect();
    assert_eq!(
        distinct.len(),
        scheduled,
        "every scheduled task invoked at least once"
    );
    assert!(
        distinct
            .iter()
            .all(|k| arns.iter().any(|a| k.starts_with(&format!("{a}:"))))
    );
    eprintln!(
        "{scheduled} task attempts: {} invocations, {} duplicates after kill -9",
        keys.len(),
        keys.len() - distinct.len()
    );
}

async fn futures_done(engine: &agentry_engine::Engine, arns: &[String]) -> usize {
    let mut n = 0;
    for arn in arns {
        if engine.describe_execution(arn).await.unwrap().status != "RUNNING" {
            n += 1;
        }
    }
    n
}

/// Runs a child node on `dir` for `ms` milliseconds after it is ready, then kills it with
/// SIGKILL; returns the idempotency keys it invoked.
async fn child_node_killed_after(dir: &std::path::Path, ms: u64) -> Vec<String> {
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::crash_child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AGENTRY_ENGINE_CRASH_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let mut keys = Vec::new();
        let mut ready_tx = Some(ready_tx);
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(k) = line.strip_prefix("CALL ") {
                keys.push(k.to_string());
            } else if line.contains("READY") {
                ready_tx.take().map(|t| t.send(()));
            }
        }
        keys
    });
    ready.await.expect("child exited before it was ready");
    tokio::time::sleep(Duration::from_millis(ms)).await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    reader.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_map_of_200_tasks_survives_kill_nine_with_every_result_once() {
    const ITEMS: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let calls = Calls::default();
    let engine = open(dir.path(), "parent", &calls).await;
    let m = engine
        .create_state_machine(
            "fan-out",
            &serde_json::json!({"StartAt": "Each", "States": {"Each": {"Type": "Map",
                "ItemsPath": "$.items", "MaxConcurrency": 10,
                "ItemProcessor": {"StartAt": "Work", "States": {"Work": {"Type": "Task",
                    "Resource": SLOW,
                    "Parameters": {"item.$": "$", "double.$": "States.MathAdd($, $)"},
                    "End": true}}},
                "End": true}}})
            .to_string(),
        )
        .await
        .unwrap();
    let items: Vec<u64> = (0..ITEMS).collect();
    let arn = engine
        .start_execution(
            &m,
            Some("fan-out"),
            &serde_json::json!({ "items": items }).to_string(),
        )
        .await
        .unwrap()
        .execution_arn;
    // Two child nodes killed mid-run (the Map takes about 4 s uninterrupted), then a node of
    // the parent's own takes over what they left.
    let mut child_keys = Vec::new();
    for round in 0..2 {
        // The second child first waits out the visibility timeout (2 s) of the tasks the
        // first one held.
        let keys = child_node_killed_after(dir.path(), 2_000 * round + 500 + random(1000)).await;
        eprintln!(
            "round {round}: child killed after {} invocations",
            keys.len()
        );
        child_keys.extend(keys);
    }
    let status = engine.describe_execution(&arn).await.unwrap().status;
    assert_eq!(status, "RUNNING", "the Map finished before any kill");
    let _node = engine.run();
    let d = finish(&engine, &arn).await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    let expected: Vec<serde_json::Value> = (0..ITEMS)
        .map(|i| serde_json::json!({"item": i, "double": 2 * i}))
        .collect();
    assert_eq!(d.output_json(), Some(serde_json::Value::Array(expected)));
    let events = engine.history(&arn).await.unwrap();
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(count("MapIterationSucceeded"), ITEMS as usize);
    assert_eq!(count("TaskScheduled"), ITEMS as usize);
    assert_eq!(count("TaskSucceeded"), ITEMS as usize);
    let mut keys = child_keys;
    keys.extend(calls.keys());
    let distinct: std::collections::HashSet<&String> = keys.iter().collect();
    assert_eq!(distinct.len(), ITEMS as usize, "every item's task invoked");
    eprintln!(
        "{ITEMS} items: {} invocations, {} repeated after kill -9",
        keys.len(),
        keys.len() - distinct.len()
    );
}
