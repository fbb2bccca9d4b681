//! Runs every case of the States Language conformance corpus (recorded against AWS Step
//! Functions) and compares with the corpus's rules. Prints passed/total per area and the
//! failing cases; fails if the pass count drops below the floor in `conformance-floor`.
//!
//! `AGENTRY_CONFORMANCE_DIR` names the cases folder (default: `../shared/asl-conformance/cases`
//! beside the repository). `AGENTRY_CONFORMANCE_CASE=text` runs only cases whose name contains
//! the text and prints their differences.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agentry_asl::exec::drive::{Virtual, run_to_end_with_text};
use agentry_asl::validate::MachineType;
use agentry_asl::{ExecutionInfo, FixedHost, StateMachine, test_state};
use serde_json::Value;

use crate::compare::{Actual, compare};

fn cases_dir() -> Option<PathBuf> {
    let dir = match std::env::var("AGENTRY_CONFORMANCE_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/asl-conformance/cases")
        }
    };
    dir.is_dir().then_some(dir)
}

fn machine_type(case: &Value) -> MachineType {
    if case["state_machine_type"] == "EXPRESS" {
        MachineType::Express
    } else {
        MachineType::Standard
    }
}

fn api_error(e: agentry_asl::ValidationError) -> Actual {
    Actual {
        status: "API_ERROR".into(),
        error: Some(e.code),
        cause: Some(e.message),
        ..Default::default()
    }
}

/// Validates and parses a case's definition as CreateStateMachine would.
fn create(case: &Value) -> Result<StateMachine, agentry_asl::ValidationError> {
    match case["definition_raw"].as_str() {
        Some(raw) => agentry_asl::create_text(raw, machine_type(case)),
        None => agentry_asl::create(&case["definition"], machine_type(case)),
    }
}

fn capture_time_ms(case: &Value) -> i64 {
    case["capture_time_utc"]
        .as_str()
        .and_then(|s| {
            // "2026-11-25T15:08:43.961472+00:00": keep milliseconds.
            let (head, tail) = s.split_once('.').unwrap_or((s, "+00:00"));
            let ms: String = tail
                .chars()
                .take_while(char::is_ascii_digit)
                .take(3)
                .collect();
            let off = &tail[tail.find(['+', '-', 'Z']).unwrap_or(tail.len())..];
            agentry_asl::time::parse_rfc3339_ms(&format!(
                "{head}.{ms:0<3}{}",
                if off.is_empty() { "Z" } else { off }
            ))
        })
        .unwrap_or(1_732_000_000_000)
}

fn run_case(case: &Value) -> Actual {
    match case["api"].as_str().unwrap_or_default() {
        "CreateStateMachine" | "UpdateStateMachine" => match create(case) {
            Ok(_) => Actual {
                status: "SUCCEEDED".into(),
                ..Default::default()
            },
            Err(e) => api_error(e),
        },
        "TestState" => test_state_case(case),
        _ => {
            let def = match create(case) {
                Ok(d) => d,
                Err(e) => return api_error(e),
            };
            let input = match case["input_raw"].as_str() {
                Some(raw) => match agentry_asl::exec::parse_input(raw) {
                    Ok(v) => v,
                    Err(e) => return api_error(e),
                },
                None => case
                    .get("input")
                    .cloned()
                    .filter(|v| !v.is_null())
                    .unwrap_or(Value::Object(Default::default())),
            };
            let now = capture_time_ms(case);
            let info = ExecutionInfo {
                execution_arn: "arn:aws:states:us-east-1:111111111111:execution:machine:exec"
                    .into(),
                name: "exec".into(),
                state_machine_arn: "arn:aws:states:us-east-1:111111111111:stateMachine:machine"
                    .into(),
                state_machine_name: "machine".into(),
                role_arn: "arn:aws:iam::111111111111:role/capture-sfn-role".into(),
                start_time_ms: now,
                redrive_count: 0,
                express: case["state_machine_type"] == "EXPRESS",
                ..ExecutionInfo::default()
            };
            let info = if info.express {
                ExecutionInfo {
                    execution_arn:
                        "arn:aws:states:us-east-1:111111111111:express:machine:exec:0b5c0c1e".into(),
                    ..info
                }
            } else {
                info
            };
            let mut rt = Recorder(Virtual(FixedHost::new(now, 0x5eed)), Vec::new());
            let ex = run_to_end_with_text(&def, info, input, case["input_raw"].as_str(), &mut rt);
            Actual {
                status: ex.status.as_str().into(),
                output: ex.output,
                error: ex.error,
                cause: ex.cause,
                next_state: None,
                history: Some(rt.1.iter().map(|e| e.to_aws_json()).collect()),
            }
        }
    }
}

/// The virtual runtime, keeping the history events as they are recorded.
struct Recorder(Virtual, Vec<agentry_asl::history::HistoryEvent>);

impl agentry_asl::Host for Recorder {
    fn now_ms(&self) -> i64 {
        self.0.now_ms()
    }
    fn random(&mut self) -> f64 {
        self.0.random()
    }
    fn uuid(&mut self) -> String {
        self.0.uuid()
    }
}

impl agentry_asl::exec::drive::Runtime for Recorder {
    fn sleep_until(&mut self, at_ms: i64) {
        self.0.sleep_until(at_ms)
    }
    fn invoke(&mut self, req: &agentry_asl::TaskRequest) -> agentry_asl::Event {
        self.0.invoke(req)
    }
    fn on_event(&mut self, e: &agentry_asl::history::HistoryEvent) {
        self.1.push(e.clone());
    }
}

fn test_state_case(case: &Value) -> Actual {
    let p = &case["test_state_params"];
    let req = test_state::Request {
        definition: case["definition"].clone(),
        state_name: p["stateName"].as_str().map(str::to_string),
        input: case["input_raw"].as_str().map(str::to_string).or_else(|| {
            case.get("input")
                .filter(|v| !v.is_null())
                .map(Value::to_string)
        }),
        inspection_level: p["inspectionLevel"].as_str().map(str::to_string),
        mock: p.get("mock").filter(|m| !m.is_null()).cloned(),
        variables: p["variables"].as_str().map(str::to_string),
        context: p["context"].as_str().map(str::to_string),
        reveal_secrets: false,
        state_configuration: p.get("stateConfiguration").cloned(),
        info: Some(ExecutionInfo {
            execution_arn: "arn:aws:states:us-east-1:111111111111:express:machine:exec".into(),
            name: "exec".into(),
            state_machine_arn: "arn:aws:states:us-east-1:111111111111:stateMachine:machine".into(),
            state_machine_name: "machine".into(),
            role_arn: "arn:aws:iam::111111111111:role/capture-sfn-role".into(),
            start_time_ms: capture_time_ms(case),
            redrive_count: 0,
            express: true,
            ..ExecutionInfo::default()
        }),
    };
    let mut host = FixedHost::new(capture_time_ms(case), 0x5eed);
    match test_state::run(&req, &mut host) {
        Ok(r) => Actual {
            status: r.status,
            output: r
                .output
                .as_deref()
                .map(|s| serde_json::from_str(s).unwrap_or(Value::String(s.into()))),
            error: r.error,
            cause: r.cause,
            next_state: r.next_state,
            history: None,
        },
        Err(e) => api_error(e),
    }
}

#[test]
fn conformance() {
    let Some(dir) = cases_dir() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("conformance cases not found: set AGENTRY_CONFORMANCE_DIR");
        }
        eprintln!("skipped: conformance cases not found (set AGENTRY_CONFORMANCE_DIR)");
        return;
    };
    let only = std::env::var("AGENTRY_CONFORMANCE_CASE").ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut areas: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failing = Vec::new();
    let mut passed = 0;
    let (mut histories, mut histories_ok) = (0, 0);
    let mut history_failing = Vec::new();
    for f in &files {
        let case: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        let name = case["name"].as_str().unwrap_or_default().to_string();
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let actual = std::panic::catch_unwind(|| run_case(&case)).unwrap_or_else(|_| Actual {
            status: "PANIC".into(),
            ..Default::default()
        });
        let diffs = compare(&case, &actual);
        if let (Some(recorded), Some(ours)) = (case.get("recorded_history"), &actual.history) {
            histories += 1;
            let hd = crate::compare::compare_history(&case, recorded, ours);
            if hd.is_empty() {
                histories_ok += 1;
            } else {
                if only.is_some() {
                    eprintln!("HISTORY {name}\n  {}", hd.join("\n  "));
                }
                history_failing.push(name.clone());
            }
        }
        let area = areas
            .entry(case["area"].as_str().unwrap_or("?").to_string())
            .or_default();
        area.1 += 1;
        if diffs.is_empty() {
            area.0 += 1;
            passed += 1;
        } else {
            if only.is_some() {
                eprintln!(
                    "FAIL {name}\n  {}\n  actual: {actual:?}",
                    diffs.join("\n  ")
                );
            }
            failing.push(name);
        }
    }
    let total: usize = areas.values().map(|a| a.1).sum();
    println!("conformance: {passed}/{total} cases pass");
    for (area, (p, t)) in &areas {
        println!("  {area:<16} {p:>4}/{t}");
    }
    println!(
        "histories: {histories_ok}/{histories} match AWS's GetExecutionHistory event for event"
    );
    if std::env::var("AGENTRY_CONFORMANCE_HISTORY").is_ok() {
        for n in &history_failing {
            println!("  history differs: {n}");
        }
    }
    if !failing.is_empty() {
        println!("failing cases:");
        for n in &failing {
            println!("  {n}");
        }
    }
    if only.is_none() {
        // `tests/conformance-floor`: "cases N" and "histories N", one per line.
        let floor_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-floor");
        let text = std::fs::read_to_string(&floor_file).unwrap_or_default();
        let floor = |key: &str| -> usize {
            text.lines()
                .find_map(|l| l.strip_prefix(key).map(str::trim))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        for (key, got) in [("cases", passed), ("histories", histories_ok)] {
            let f = floor(key);
            assert!(
                got >= f,
                "conformance dropped: {got} {key} match, the floor is {f}"
            );
            if got > f {
                println!(
                    "conformance rose above the floor: raise \"{key}\" in tests/conformance-floor to {got}"
                );
            }
        }
    }
}
