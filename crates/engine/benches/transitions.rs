//! Durable steps per second on the embedded default (SQLite store + SQLite queue, full
//! synchronous), for many concurrent executions, against this disk's fsync rate measured in
//! the same run; and the time from StartExecution to completion of a 20-state Pass chain and a
//! 100-item Map.
//!
//! `cargo bench -p agentry-engine`; `AGENTRY_BENCH_EXECUTIONS` sets the concurrent executions
//! (default 200), each running 10 Task states one after another. With `AGENTRY_BENCH_MOTO=1`
//! the two latencies are also measured on moto's Step Functions interpreter (in-process through
//! boto3, which spares moto the HTTP hop; `AGENTRY_BENCH_PYTHON` names a Python with `moto`).

use std::io::Write;
use std::time::{Duration, Instant};

use agentry_engine::{Engine, EngineConfig, ResourceTable};
use serde_json::json;

const ECHO: &str = "arn:aws:lambda:local:000000000000:function:echo";

/// write + fdatasync of 4 KiB, one after another, for a second: separate durable commits.
fn fsyncs_per_second(dir: &std::path::Path) -> f64 {
    let mut f = std::fs::File::create(dir.join("fsync-probe")).unwrap();
    let block = vec![7u8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        f.write_all(&block).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn engine(dir: &std::path::Path) -> Engine {
    let store = agentry_storage::open(&format!("sqlite://{}", dir.join("store.db").display()))
        .await
        .unwrap();
    let queue = agentry_queue::open(&format!("sqlite://{}", dir.join("queue.db").display()))
        .await
        .unwrap();
    let resources = ResourceTable::new().with(ECHO, |req| async move { Ok(req.input) });
    let config = EngineConfig {
        workers: 16,
        max_running_tasks: 256,
        poll_wait: Duration::from_millis(50),
        timer_poll: Duration::from_millis(100),
        ..EngineConfig::default()
    };
    Engine::open(store, queue, resources, config).await.unwrap()
}

async fn run_all(engine: &Engine, machine: &str, n: usize) -> Duration {
    let start = Instant::now();
    let mut arns = Vec::new();
    for i in 0..n {
        arns.push(
            engine
                .start_execution(
                    machine,
                    Some(&format!("e{i}")),
                    &json!({"i": i}).to_string(),
                )
                .await
                .unwrap()
                .execution_arn,
        );
    }
    for arn in &arns {
        let d = engine
            .wait_for_execution(arn, Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    }
    start.elapsed()
}

async fn latency(
    engine: &Engine,
    machine: &str,
    input: serde_json::Value,
    runs: usize,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..runs {
        let start = Instant::now();
        let s = engine
            .start_execution(machine, None, &input.to_string())
            .await
            .unwrap();
        let d = engine
            .wait_for_execution(&s.execution_arn, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(d.status, "SUCCEEDED");
        total += start.elapsed();
    }
    total / runs as u32
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("AGENTRY_BENCH_EXECUTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
    // The disk is shared: its rate is measured just before and just after the run.
    let fsyncs_before = fsyncs_per_second(dir.path());
    let engine = engine(dir.path()).await;
    let _node = engine.run();

    let mut states = serde_json::Map::new();
    for k in 0..10 {
        let next = if k < 9 {
            json!({"Next": format!("T{}", k + 1)})
        } else {
            json!({"End": true})
        };
        let mut s = json!({"Type": "Task", "Resource": ECHO});
        s.as_object_mut()
            .unwrap()
            .extend(next.as_object().unwrap().clone());
        states.insert(format!("T{k}"), s);
    }
    let tasks = engine
        .create_state_machine(
            "tasks",
            &json!({"StartAt": "T0", "States": states}).to_string(),
        )
        .await
        .unwrap();
    let took = run_all(&engine, &tasks, n).await;
    let fsyncs = (fsyncs_before + fsyncs_per_second(dir.path())) / 2.0;
    // Each execution commits 11 steps: the start, then one per task result.
    let steps = (n * 11) as f64 / took.as_secs_f64();
    let transitions = (n * 10) as f64 / took.as_secs_f64();
    println!("fsyncs/s on this disk: {fsyncs:.0} (mean of before and after the run)");
    println!(
        "{n} concurrent executions x 10 tasks: {:.2} s, {steps:.0} durable steps/s ({:.2} per fsync), {transitions:.0} task transitions/s",
        took.as_secs_f64(),
        steps / fsyncs
    );

    let mut chain = serde_json::Map::new();
    for k in 0..20 {
        let next = if k < 19 {
            json!({"Next": format!("P{}", k + 1)})
        } else {
            json!({"End": true})
        };
        let mut s = json!({"Type": "Pass"});
        s.as_object_mut()
            .unwrap()
            .extend(next.as_object().unwrap().clone());
        chain.insert(format!("P{k}"), s);
    }
    let chain = engine
        .create_state_machine(
            "chain",
            &json!({"StartAt": "P0", "States": chain}).to_string(),
        )
        .await
        .unwrap();
    let map = engine
        .create_state_machine(
            "map",
            &json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}}).to_string(),
        )
        .await
        .unwrap();
    let with_moto = std::env::var("AGENTRY_BENCH_MOTO").is_ok_and(|v| v == "1");
    for (name, machine, input) in [
        ("20-state Pass chain", &chain, json!({})),
        (
            "100-item Map of Pass",
            &map,
            json!((0..100).collect::<Vec<_>>()),
        ),
    ] {
        let ours = latency(&engine, machine, input.clone(), 20)
            .await
            .as_secs_f64()
            * 1000.0;
        print!("start to completion, {name:<21}: agentry {ours:>7.1} ms");
        if with_moto {
            let def = engine
                .describe_state_machine(machine)
                .await
                .unwrap()
                .definition;
            match moto_ms(&def, &input) {
                Some(m) => print!("   moto {m:>7.1} ms   agentry {:.0}x faster", m / ours),
                None => print!("   moto unavailable"),
            }
        }
        println!();
    }
    let fan = engine
        .create_state_machine(
            "fan",
            &json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": ECHO, "End": true}}}, "End": true}}}).to_string(),
        )
        .await
        .unwrap();
    let fan_ms = latency(&engine, &fan, json!((0..100).collect::<Vec<_>>()), 10)
        .await
        .as_secs_f64()
        * 1000.0;
    println!("start to completion, 100-item Map of Tasks (all at once): agentry {fan_ms:.1} ms");
}

/// Mean milliseconds from StartExecution to observed completion on moto's interpreter.
fn moto_ms(def: &str, input: &serde_json::Value) -> Option<f64> {
    let script = format!(
        r#"
import json, time, boto3
from moto import mock_aws
defn = '''{def}'''
inp = '''{input}'''
with mock_aws(config={{"stepfunctions": {{"execute_state_machine": True}}}}):
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    arn = sfn.create_state_machine(name="bench", definition=defn, roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
    runs, total = 0, 0.0
    while runs < 20:
        t0 = time.time()
        ex = sfn.start_execution(stateMachineArn=arn, name=f"e{{runs}}", input=inp)["executionArn"]
        while sfn.describe_execution(executionArn=ex)["status"] == "RUNNING":
            time.sleep(0.001)
        total += time.time() - t0
        runs += 1
    print(total / runs * 1000)
"#
    );
    let py = std::env::var("AGENTRY_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "moto run failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
