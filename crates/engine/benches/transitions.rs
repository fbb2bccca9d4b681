//! Durable steps per second on the embedded default (SQLite store + SQLite queue, full
//! synchronous), for many concurrent executions, against this disk's fsync rate measured in
//! the same run; and the time from StartExecution to completion of a 20-state Pass chain and a
//! 100-item Map.
//!
//! `cargo bench -p agentry-engine`; `AGENTRY_BENCH_EXECUTIONS` sets the concurrent executions
//! (default 200, all started at once), each running 10 Task states one after another;
//! `AGENTRY_BENCH_RUNS` how many times each latency is measured (default 50). The two latencies are also
//! measured on moto's Step Functions interpreter in server mode: the server at
//! `AGENTRY_BENCH_MOTO_URL`, or one the bench starts when the Python named by
//! `AGENTRY_BENCH_PYTHON` (default `python3`) has `moto[server]` and boto3. Without a server it
//! falls back to moto in-process (sparing moto the HTTP hop), and says so.
//!
//! Measured on the 2-core development machine, 3 runs with moto 5.2.5's server started by the
//! bench, the disk at 4900 to 6600 fsyncs/s:
//! - durable steps/s: 7300-10100 (1.32-1.55 per fsync; task transitions 1.20-1.41 per fsync);
//!   with 1000 executions 6200-9000 (1.12-1.99 per fsync). The round before gave 4550-5850
//!   (0.69-0.82).
//! - 20-state Pass chain: 0.69-0.81 ms, 25-37x moto (20.6-26.9 ms);
//! - 100-item Map of Pass: 2.8-3.4 ms, 34-43x moto (117-122 ms);
//! - 100-item Map of Tasks: 9.3-10.9 ms.
//!
//! What got it there: a node runs the tasks of the steps it commits itself (the step's outbox
//! item standing as their durable record) instead of a task-queue send, receive and delete per
//! task; the SQLite writer commits its batch without a savepoint per transaction and leaves
//! the WAL checkpoint to a thread of its own; the interpreter runs on the runtime for machines
//! without Map or Parallel; a start reads its machine once. The machine is CPU-bound at this
//! rate (2 cores for the engine, the store's writer and the bench): each step still costs a
//! commit of the record, its history events and its outbox item, and a batched delete of the
//! outbox item before it (leaving that delete out altogether measured no faster).

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

/// Starts `n` executions at once (as many clients would) and waits for all of them.
async fn run_all(engine: &Engine, machine: &str, n: usize) -> Duration {
    let start = Instant::now();
    let mut starts = tokio::task::JoinSet::new();
    for i in 0..n {
        let (engine, machine) = (engine.clone(), machine.to_string());
        starts.spawn(async move {
            engine
                .start_execution(
                    &machine,
                    Some(&format!("e{i}")),
                    &json!({"i": i}).to_string(),
                )
                .await
                .unwrap()
                .execution_arn
        });
    }
    let arns = starts.join_all().await;
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
    let runs: usize = std::env::var("AGENTRY_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
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
    let moto = Moto::find();
    println!("moto: {}", moto.describe());
    for (name, machine, input) in [
        ("20-state Pass chain", &chain, json!({})),
        (
            "100-item Map of Pass",
            &map,
            json!((0..100).collect::<Vec<_>>()),
        ),
    ] {
        let ours = latency(&engine, machine, input.clone(), runs)
            .await
            .as_secs_f64()
            * 1000.0;
        print!("start to completion, {name:<21}: agentry {ours:>7.2} ms");
        if let Some(mode) = &moto.mode {
            let def = engine
                .describe_state_machine(machine)
                .await
                .unwrap()
                .definition;
            match mode.ms(&def, &input) {
                Some(m) => print!("   moto {m:>7.1} ms   agentry {:.0}x faster", m / ours),
                None => print!("   moto failed"),
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

/// How moto's Step Functions interpreter is reached: a moto server (the peer the comparison
/// is meant against), or, when no server can be had, moto in-process through boto3.
enum MotoMode {
    Server { url: String, python: String },
    InProcess { python: String },
}

struct Moto {
    mode: Option<MotoMode>,
    /// A moto server this bench started: stopped when the bench ends.
    child: Option<std::process::Child>,
    why_not: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn python_has(python: &str, module: &str) -> bool {
    std::process::Command::new(python)
        .args(["-c", &format!("import {module}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Moto {
    /// `AGENTRY_BENCH_MOTO_URL` names a running moto server; otherwise, when the Python named
    /// by `AGENTRY_BENCH_PYTHON` (default `python3`) has moto's server, one is started on a
    /// free port; otherwise moto runs in-process in that Python, if it has moto at all.
    fn find() -> Self {
        let python = std::env::var("AGENTRY_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
        let found = |mode, child| Moto {
            mode: Some(mode),
            child,
            why_not: String::new(),
        };
        if !python_has(&python, "boto3") {
            return Moto {
                mode: None,
                child: None,
                why_not: format!("{python} has no boto3 (set AGENTRY_BENCH_PYTHON)"),
            };
        }
        if let Ok(url) = std::env::var("AGENTRY_BENCH_MOTO_URL") {
            return found(MotoMode::Server { url, python }, None);
        }
        if python_has(&python, "moto.server") {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_or(5055, |a| a.port());
            if let Ok(mut child) = std::process::Command::new(&python)
                .args(["-m", "moto.server", "-p", &port.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
            {
                let deadline = Instant::now() + Duration::from_secs(30);
                while Instant::now() < deadline {
                    if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                        let url = format!("http://127.0.0.1:{port}");
                        return found(MotoMode::Server { url, python }, Some(child));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if python_has(&python, "moto") {
            return found(MotoMode::InProcess { python }, None);
        }
        Moto {
            mode: None,
            child: None,
            why_not: format!(
                "{python} has no moto (set AGENTRY_BENCH_PYTHON or AGENTRY_BENCH_MOTO_URL)"
            ),
        }
    }

    fn describe(&self) -> String {
        match &self.mode {
            Some(MotoMode::Server { url, .. }) if self.child.is_some() => {
                format!("server mode, started by this bench at {url}")
            }
            Some(MotoMode::Server { url, .. }) => format!("server mode at {url}"),
            Some(MotoMode::InProcess { .. }) => {
                "IN-PROCESS fallback through boto3 (no moto server available)".into()
            }
            None => format!("not measured: {}", self.why_not),
        }
    }
}

impl MotoMode {
    /// Mean milliseconds from StartExecution to observed completion on moto's interpreter,
    /// polling DescribeExecution every millisecond.
    fn ms(&self, def: &str, input: &serde_json::Value) -> Option<f64> {
        let (python, setup) = match self {
            MotoMode::Server { url, python } => (
                python,
                format!(
                    r#"
import urllib.request
req = urllib.request.Request("{url}/moto-api/config", data=json.dumps({{"stepfunctions": {{"execute_state_machine": True}}}}).encode(), method="POST", headers={{"Content-Type": "application/json"}})
urllib.request.urlopen(req).read()
sfn = boto3.client("stepfunctions", region_name="us-east-1", endpoint_url="{url}", aws_access_key_id="testing", aws_secret_access_key="testing")
"#
                ),
            ),
            MotoMode::InProcess { python } => (
                python,
                r#"
from moto import mock_aws
mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
mock.start()
sfn = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
"#
                .to_string(),
            ),
        };
        let script = format!(
            r#"
import json, time, uuid, boto3
defn = '''{def}'''
inp = '''{input}'''
{setup}
arn = sfn.create_state_machine(name="bench-" + uuid.uuid4().hex[:8], definition=defn, roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
runs, total = 0, 0.0
while runs < 20:
    t0 = time.time()
    ex = sfn.start_execution(stateMachineArn=arn, name=f"e{{runs}}", input=inp)["executionArn"]
    while True:
        d = sfn.describe_execution(executionArn=ex)
        if d["status"] != "RUNNING":
            break
        time.sleep(0.001)
    assert d["status"] == "SUCCEEDED", d
    total += time.time() - t0
    runs += 1
print(total / runs * 1000)
"#
        );
        let out = std::process::Command::new(python)
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
}
