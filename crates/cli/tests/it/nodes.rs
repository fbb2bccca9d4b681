//! Two `agentry serve` processes on one PostgreSQL store and one Redis server share the
//! executions: both take starts, and when one is killed the other finishes its executions.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Server;

/// The server URLs, or why the test is skipped (a failure under `CI=true`).
fn server_urls() -> Option<(String, String)> {
    if !cfg!(all(feature = "postgres", feature = "redis")) {
        eprintln!(
            "skipped: two nodes on postgres + redis (built without features postgres and redis)"
        );
        return None;
    }
    let get = |k: &str| std::env::var(k).ok().filter(|u| !u.is_empty());
    match (
        get("AGENTRY_TEST_POSTGRES_URL"),
        get("AGENTRY_TEST_REDIS_URL"),
    ) {
        (Some(pg), Some(redis)) => Some((pg, redis)),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but AGENTRY_TEST_POSTGRES_URL or AGENTRY_TEST_REDIS_URL is not set"
            );
            eprintln!("skipped: two nodes on postgres + redis (server URLs not set)");
            None
        }
    }
}

fn describe(server: &Server, arn: &str) -> Value {
    server.aws("DescribeExecution", json!({"executionArn": arn}))
}

#[test]
fn two_servers_on_postgres_and_redis_share_executions_and_survive_one_killed() {
    let Some((pg, redis)) = server_urls() else {
        return;
    };
    // A schema and key prefix of their own, so runs never see each other's data.
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let sep = |u: &str| if u.contains('?') { '&' } else { '?' };
    let store = format!("{pg}{}schema=cli_{run}", sep(&pg));
    let queue = format!("{redis}{}prefix=cli-{run}", sep(&redis));
    // Both nodes read one data directory (its development signing key, so one token works on
    // both); a killed node's work is taken up within seconds rather than the default 30.
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("agentry.toml");
    std::fs::write(
        &config,
        "[engine]\nvisibility_timeout = 2000\npoll_wait = 100\ntimer_poll = 200\n\
         outbox_grace = 1000\noutbox_sweep = 300\n",
    )
    .unwrap();
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--store",
        &store,
        "--queue",
        &queue,
    ];
    let a = Server::start_with(data.path(), &args);
    let b = Server::start_with(data.path(), &args);
    let definition = json!({"StartAt": "Nap", "States": {
        "Nap": {"Type": "Wait", "Seconds": 1, "Next": "Each"},
        "Each": {"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": {"StartAt": "Doze", "States": {
            "Doze": {"Type": "Wait", "Seconds": 1, "Next": "Echo"},
            "Echo": {"Type": "Pass", "End": true}}}, "ResultPath": "$.echoed", "End": true}}});
    let machine = a.aws(
        "CreateStateMachine",
        json!({"name": "shared", "definition": definition.to_string(), "roleArn": "arn:aws:iam::1:role/r"}),
    );
    let machine = machine["stateMachineArn"].as_str().unwrap().to_string();
    // Both nodes see the machine, and take starts.
    let mut started = Vec::new();
    for i in 0..10 {
        let node = if i % 2 == 0 { &a } else { &b };
        let input = json!({"n": i, "items": [i, i + 1, i + 2]});
        let s = node.aws(
            "StartExecution",
            json!({"stateMachineArn": machine, "name": format!("run-{i}"), "input": input.to_string()}),
        );
        started.push((s["executionArn"].as_str().unwrap().to_string(), input));
    }
    // b dies mid-run: its executions' timers falling due, their work in its hands.
    std::thread::sleep(Duration::from_millis(1300));
    b.kill();
    let deadline = Instant::now() + Duration::from_secs(60);
    for (arn, input) in &started {
        let d = loop {
            let d = describe(&a, arn);
            if d["status"] != "RUNNING" || Instant::now() > deadline {
                break d;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(d["status"], "SUCCEEDED", "{arn}: {d}");
        let mut expected = input.clone();
        expected["echoed"] = input["items"].clone();
        let output: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
        assert_eq!(output, expected, "{arn}");
        // Every state entered once: no transition recorded twice.
        let history = a.aws(
            "GetExecutionHistory",
            json!({"executionArn": arn, "maxResults": 1000}),
        );
        let entered: Vec<String> = history["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| {
                e["stateEnteredEventDetails"]["name"]
                    .as_str()
                    .map(String::from)
            })
            .collect();
        assert_eq!(entered.len(), 1 + 1 + 3 * 2, "{arn}: {entered:?}");
    }
    a.kill();
}
