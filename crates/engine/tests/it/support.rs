//! A node on a temporary directory's SQLite store and queue, with test resources that record
//! every invocation.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentry_engine::{Engine, EngineConfig, ExecutionDescription, Node, ResourceTable, TaskError};
use serde_json::{Value, json};

pub const ECHO: &str = "arn:aws:lambda:local:000000000000:function:echo";
pub const FLAKY: &str = "arn:aws:lambda:local:000000000000:function:flaky";
pub const FAIL: &str = "arn:aws:lambda:local:000000000000:function:fail";
pub const SLOW: &str = "arn:aws:lambda:local:000000000000:function:slow";
pub const HANG: &str = "arn:aws:lambda:local:000000000000:function:hang";
/// Runs 2.5 s: longer than the tests' outbox grace period.
pub const LONG: &str = "arn:aws:lambda:local:000000000000:function:long";
pub const TOKEN: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";

/// What the test resources saw.
#[derive(Clone, Default)]
pub struct Calls {
    /// Idempotency keys of every invocation, in order (duplicates included), with the node.
    pub keys: Arc<Mutex<Vec<(String, String)>>>,
    /// Task tokens handed to the token resource, with the task's input.
    pub tokens: Arc<Mutex<Vec<(String, Value)>>>,
    /// Also print `CALL key` on stdout for each invocation (a child process reporting to its
    /// parent).
    pub print: bool,
}

impl Calls {
    pub fn keys(&self) -> Vec<String> {
        self.keys
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn tokens(&self) -> Vec<(String, Value)> {
        self.tokens.lock().unwrap().clone()
    }

    /// Invocations per node.
    pub fn by_node(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for (_, node) in self.keys.lock().unwrap().iter() {
            *m.entry(node.clone()).or_default() += 1;
        }
        m
    }
}

/// The attempt number at the end of an idempotency key (`execution:entered:attempt`).
fn attempt(key: &str) -> u64 {
    key.rsplit(':')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0)
}

pub fn resources(node: &str, calls: &Calls) -> ResourceTable {
    let record = |calls: &Calls, node: &str| {
        let (calls, node) = (calls.clone(), node.to_string());
        move |key: &str| {
            if calls.print {
                println!("CALL {key}");
            }
            calls
                .keys
                .lock()
                .unwrap()
                .push((key.to_string(), node.clone()))
        }
    };
    let mut t = ResourceTable::new();
    let r = record(calls, node);
    t.register(ECHO, move |req| {
        r(&req.idempotency_key);
        async move { Ok(req.input) }
    });
    let r = record(calls, node);
    // Fails the first two attempts of each state entry, then succeeds.
    t.register(FLAKY, move |req| {
        r(&req.idempotency_key);
        async move {
            if attempt(&req.idempotency_key) < 2 {
                Err(TaskError::new(
                    "Flaky.Error",
                    format!("attempt {}", attempt(&req.idempotency_key)),
                ))
            } else {
                Ok(json!({"attempts": attempt(&req.idempotency_key) + 1}))
            }
        }
    });
    let r = record(calls, node);
    t.register(FAIL, move |req| {
        r(&req.idempotency_key);
        async move { Err(TaskError::new("Custom.Error", "it broke")) }
    });
    let r = record(calls, node);
    t.register(SLOW, move |req| {
        r(&req.idempotency_key);
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(req.input)
        }
    });
    let r = record(calls, node);
    t.register(LONG, move |req| {
        r(&req.idempotency_key);
        async move {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            Ok(req.input)
        }
    });
    let r = record(calls, node);
    t.register(HANG, move |req| {
        r(&req.idempotency_key);
        async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(req.input)
        }
    });
    let r = record(calls, node);
    let tokens = calls.tokens.clone();
    t.register(TOKEN, move |req| {
        r(&req.idempotency_key);
        tokens.lock().unwrap().push((
            req.task_token.clone().unwrap_or_default(),
            req.input.clone(),
        ));
        async move { Ok(json!(null)) }
    });
    t
}

pub fn config() -> EngineConfig {
    EngineConfig {
        visibility_timeout: Duration::from_secs(2),
        poll_wait: Duration::from_millis(100),
        timer_poll: Duration::from_millis(200),
        outbox_grace: Duration::from_millis(1000),
        outbox_sweep: Duration::from_millis(300),
        ..EngineConfig::default()
    }
}

pub fn urls(dir: &Path) -> (String, String) {
    (
        format!("sqlite://{}", dir.join("store.db").display()),
        format!("sqlite://{}", dir.join("queue.db").display()),
    )
}

pub async fn open_urls(store: &str, queue: &str, node: &str, calls: &Calls) -> Engine {
    let store = agentry_storage::open(store).await.unwrap();
    let queue = agentry_queue::open(queue).await.unwrap();
    Engine::open(store, queue, resources(node, calls), config())
        .await
        .unwrap()
}

pub async fn open(dir: &Path, node: &str, calls: &Calls) -> Engine {
    let (s, q) = urls(dir);
    open_urls(&s, &q, node, calls).await
}

/// A running node on a fresh directory.
pub struct Harness {
    pub engine: Engine,
    pub calls: Calls,
    _node: Node,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let calls = Calls::default();
        let engine = open(dir.path(), "a", &calls).await;
        let node = engine.run();
        Self {
            engine,
            calls,
            _node: node,
            _dir: dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    pub async fn machine(&self, name: &str, definition: Value) -> String {
        self.engine
            .create_state_machine(name, &definition.to_string())
            .await
            .unwrap()
    }

    /// Starts an execution and waits (up to 30 s) for it to end.
    pub async fn run(&self, machine: &str, input: Value) -> ExecutionDescription {
        let started = self
            .engine
            .start_execution(machine, None, &input.to_string())
            .await
            .unwrap();
        finish(&self.engine, &started.execution_arn).await
    }
}

/// Waits up to 30 s for an execution to end, and checks its history is well formed.
pub async fn finish(engine: &Engine, arn: &str) -> ExecutionDescription {
    let d = engine
        .wait_for_execution(arn, Duration::from_secs(30))
        .await
        .unwrap();
    assert_ne!(d.status, "RUNNING", "{arn} did not finish in time");
    check_history(&engine.history(arn).await.unwrap());
    d
}

/// Ids run 1, 2, 3... each once; each event links to an earlier one; one terminal event per
/// run (a redrive follows the terminal event of the run before it), last.
pub fn check_history(events: &[Value]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e["id"],
            json!(i as u64 + 1),
            "history ids are not contiguous: {events:#?}"
        );
        assert!(e["previousEventId"].as_u64().unwrap() < i as u64 + 1);
    }
    let terminal = |e: &Value| {
        matches!(
            e["type"].as_str().unwrap(),
            "ExecutionSucceeded" | "ExecutionFailed" | "ExecutionAborted" | "ExecutionTimedOut"
        )
    };
    for run in events.split(|e| e["type"] == "ExecutionRedriven") {
        let n = run.iter().filter(|e| terminal(e)).count();
        assert!(n <= 1, "more than one terminal event in a run");
        if n == 1 {
            let last = run.last().unwrap()["type"].as_str().unwrap();
            assert!(
                last.starts_with("Execution"),
                "terminal event is not last: {last}"
            );
        }
    }
    for (i, e) in events.iter().enumerate() {
        if e["type"] == "ExecutionRedriven" {
            assert!(
                i > 0 && terminal(&events[i - 1]),
                "a redrive follows no end"
            );
        }
    }
}

pub fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}
