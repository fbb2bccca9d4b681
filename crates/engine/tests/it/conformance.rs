//! The States Language conformance cases, run through the durable engine: each case's
//! definition is created as a state machine, started with the case's input, and its stored
//! result compared with what AWS recorded, by the same rules as the interpreter's own
//! conformance test. Cases that wait longer than a second are left out (the engine runs on the
//! real clock); the count of cases run and passed is printed, and may not drop below the floor
//! in `tests/conformance-floor`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentry_engine::Error;
use serde_json::Value;

use crate::compare::{Actual, compare, compare_history};
use crate::support::Harness;

fn cases_dir() -> Option<PathBuf> {
    let dir = match std::env::var("AGENTRY_CONFORMANCE_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/asl-conformance/cases")
        }
    };
    dir.is_dir().then_some(dir)
}

fn api_error(code: &str, message: &str) -> Actual {
    Actual {
        status: "API_ERROR".into(),
        error: Some(code.into()),
        cause: Some(message.into()),
        ..Default::default()
    }
}

async fn run_case(h: &Harness, i: usize, case: &Value) -> Actual {
    let definition = match case["definition_raw"].as_str() {
        Some(raw) => raw.to_string(),
        None => case["definition"].to_string(),
    };
    let machine = match h
        .engine
        .create_state_machine(&format!("case{i}"), &definition)
        .await
    {
        Ok(arn) => arn,
        Err(Error::InvalidDefinition { code, message }) => return api_error(&code, &message),
        Err(e) => panic!("create_state_machine: {e}"),
    };
    let input = match case["input_raw"].as_str() {
        Some(raw) => raw.to_string(),
        None => case
            .get("input")
            .filter(|v| !v.is_null())
            .map_or_else(|| "{}".to_string(), Value::to_string),
    };
    let started = match h.engine.start_execution(&machine, None, &input).await {
        Ok(s) => s,
        Err(Error::InvalidExecutionInput { code, message }) => return api_error(&code, &message),
        Err(e) => panic!("start_execution: {e}"),
    };
    let d = h
        .engine
        .wait_for_execution(&started.execution_arn, Duration::from_secs(60))
        .await
        .unwrap();
    Actual {
        status: d.status.clone(),
        output: d
            .output
            .as_deref()
            .map(|o| serde_json::from_str(o).unwrap_or(Value::String(o.into()))),
        error: d.error.clone(),
        cause: d.cause.clone(),
        next_state: None,
        history: Some(h.engine.history(&started.execution_arn).await.unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_through_the_engine() {
    let Some(dir) = cases_dir() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "conformance cases not found: set AGENTRY_CONFORMANCE_DIR"
        );
        eprintln!("skipped: conformance cases not found (set AGENTRY_CONFORMANCE_DIR)");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let cases: Vec<Value> = files
        .iter()
        .map(|f| serde_json::from_slice::<Value>(&std::fs::read(f).unwrap()).unwrap())
        .filter(|c| {
            matches!(
                c["api"].as_str(),
                Some("StartExecution" | "StartSyncExecution")
            )
        })
        .filter(|c| c["max_wait_seconds"].as_u64().unwrap_or(0) <= 1)
        .collect();
    let h = std::sync::Arc::new(Harness::new().await);
    let (mut passed, mut histories, mut histories_ok) = (0, 0, 0);
    let mut failing = Vec::new();
    // Many executions at once, as the engine is meant to run them.
    for (chunk_no, chunk) in cases.chunks(64).enumerate() {
        let mut set = tokio::task::JoinSet::new();
        for (j, case) in chunk.iter().enumerate() {
            let (h, case) = (h.clone(), case.clone());
            set.spawn(async move { (j, run_case(&h, chunk_no * 64 + j, &case).await) });
        }
        while let Some(joined) = set.join_next().await {
            let (j, actual) = joined.unwrap();
            let case = &chunk[j];
            if let (Some(recorded), Some(ours)) = (case.get("recorded_history"), &actual.history) {
                histories += 1;
                if compare_history(case, recorded, ours).is_empty() {
                    histories_ok += 1;
                }
            }
            if compare(case, &actual).is_empty() {
                passed += 1;
            } else {
                failing.push(case["name"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    failing.sort();
    println!(
        "conformance through the engine: {passed}/{} execution cases pass",
        cases.len()
    );
    println!("  histories: {histories_ok}/{histories} match AWS's event for event");
    for n in &failing {
        println!("  {n}");
    }
    // `tests/conformance-floor`: "cases N" and "histories N", one per line.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-floor"),
    )
    .unwrap_or_default();
    for (key, got) in [("cases", passed), ("histories", histories_ok)] {
        let floor: usize = text
            .lines()
            .find_map(|l| l.strip_prefix(key).map(str::trim))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(
            got >= floor,
            "conformance through the engine dropped: {got} {key} match, the floor is {floor}"
        );
    }
}
