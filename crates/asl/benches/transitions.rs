//! State transitions per second of the pure interpreter: a 20-state Pass chain and a 100-item
//! inline Map, run to the end in memory. With `AGENTRY_BENCH_MOTO=1` (and `moto` importable by
//! `python3`, as `.ci/run` installs it) the same machines run on moto's Step Functions
//! interpreter in the same run, and the ratio is printed.
//!
//! Run: `cargo bench -p agentry-asl --bench transitions`.

use std::time::{Duration, Instant};

use agentry_asl::exec::drive::{Virtual, run_to_end};
use agentry_asl::{ExecutionInfo, FixedHost, StateMachine, Status};
use serde_json::{Value, json};

fn pass_chain(n: usize) -> Value {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let mut s = json!({"Type": "Pass", "ResultPath": format!("$.s{i}"), "Result": i});
        if i + 1 == n {
            s["End"] = json!(true);
        } else {
            s["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), s);
    }
    json!({"StartAt": "S0", "States": states})
}

fn map_of(n: usize) -> (Value, Value) {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.items",
        "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"double.$": "States.MathAdd($.v, $.v)"}, "End": true}}},
        "End": true}}});
    let input = json!({"items": (0..n).collect::<Vec<_>>()});
    (def, input)
}

/// Runs `def` repeatedly for about `budget`; returns (executions, transitions) per second.
fn measure(def: &Value, input: &Value, transitions_per_run: usize, budget: Duration) -> (f64, f64) {
    let machine = StateMachine::from_value(def).unwrap();
    let mut runs = 0u64;
    let start = Instant::now();
    while start.elapsed() < budget {
        let mut rt = Virtual(FixedHost::new(1_700_000_000_000, runs + 1));
        let ex = run_to_end(
            &machine,
            ExecutionInfo::local("bench", "run", 0),
            input.clone(),
            &mut rt,
        );
        assert_eq!(ex.status, Status::Succeeded);
        runs += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    (
        runs as f64 / secs,
        (runs as f64 * transitions_per_run as f64) / secs,
    )
}

/// The same machine on moto's interpreter, in-process in Python through boto3 (no HTTP server):
/// transitions per second, counting each execution from start to observed completion.
fn moto(def: &Value, input: &Value, transitions_per_run: usize) -> Option<f64> {
    let script = format!(
        r#"
import json, time, boto3
from moto import mock_aws
defn = json.loads('''{def}''')
inp = '''{input}'''
with mock_aws(config={{"stepfunctions": {{"execute_state_machine": True}}}}):
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    arn = sfn.create_state_machine(name="bench", definition=json.dumps(defn), roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
    runs = 0
    t0 = time.time()
    while time.time() - t0 < 3:
        ex = sfn.start_execution(stateMachineArn=arn, name=f"e{{runs}}", input=inp)["executionArn"]
        while sfn.describe_execution(executionArn=ex)["status"] == "RUNNING":
            time.sleep(0.001)
        runs += 1
    print(runs / (time.time() - t0))
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
    let runs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some(runs * transitions_per_run as f64)
}

fn main() {
    let budget = Duration::from_secs(3);
    let with_moto = std::env::var("AGENTRY_BENCH_MOTO").is_ok_and(|v| v == "1");
    // A Pass chain of 20 states is 20 transitions; a 100-item Map is the Map state plus one
    // state per item.
    let chain = pass_chain(20);
    let (map_def, map_input) = map_of(100);
    for (name, def, input, transitions) in [
        ("20-state Pass chain", &chain, &json!({}), 20usize),
        ("100-item Map", &map_def, &map_input, 101),
    ] {
        let (execs, tps) = measure(def, input, transitions, budget);
        print!("{name:<22} agentry: {tps:>12.0} transitions/s ({execs:.0} executions/s)");
        if with_moto {
            match moto(def, input, transitions) {
                Some(m) => print!("   moto: {m:>10.0} transitions/s   ratio {:.1}x", tps / m),
                None => print!("   moto: unavailable"),
            }
        }
        println!();
    }
}
