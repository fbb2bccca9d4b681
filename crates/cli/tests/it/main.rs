//! The `agentry` binary's commands, run as a user runs them.

use std::process::{Command, Output};

use serde_json::{Value, json};

fn agentry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(args)
        .output()
        .expect("agentry runs")
}

fn write(dir: &tempfile::TempDir, name: &str, v: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, v).unwrap();
    p.to_str().unwrap().to_string()
}

fn stdout_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

const HELLO: &str = r#"{"StartAt": "Greet", "States": {
  "Greet": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('Hello, {}!', $.name)"}, "Next": "Check"},
  "Check": {"Type": "Choice", "Choices": [{"Variable": "$.greeting", "StringMatches": "Hello*", "Next": "Done"}], "Default": "Bad"},
  "Bad": {"Type": "Fail", "Error": "Unexpected", "Cause": "no greeting"},
  "Done": {"Type": "Succeed"}}}"#;

#[test]
fn validate_accepts_and_rejects_with_aws_codes() {
    let dir = tempfile::tempdir().unwrap();
    let ok = write(&dir, "ok.json", HELLO);
    let o = agentry(&["validate", &ok]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "valid");

    let bad = write(
        &dir,
        "bad.json",
        r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}"#,
    );
    let o = agentry(&["validate", &bad, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = stdout_json(&o);
    assert_eq!(v["valid"], false);
    assert_eq!(v["error"], "InvalidDefinition");
    let cause = v["cause"].as_str().unwrap();
    assert!(
        cause.contains("Nowhere") && cause.contains("/States/A/Next"),
        "{cause}"
    );
}

#[test]
fn validate_explains_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, needle) in [
        (
            "nojson.json",
            "this is not json",
            "INVALID_JSON_DESCRIPTION",
        ),
        ("array.json", "[1, 2]", "InvalidDefinition"),
        (
            "type.json",
            r#"{"StartAt": "A", "States": {"A": {"Type": "Teleport", "End": true}}}"#,
            "/States/A/Type",
        ),
    ] {
        let f = write(&dir, name, text);
        let o = agentry(&["validate", &f]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(needle), "{name}: {out}");
    }
    let o = agentry(&["validate", "/no/such/file.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read /no/such/file.json"));
}

#[test]
fn run_prints_output_as_json_value() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "hello.json", HELLO);
    let o = agentry(&["run", &f, "--input", r#"{"name": "agents"}"#, "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = stdout_json(&o);
    assert_eq!(
        v,
        json!({"status": "SUCCEEDED", "output": {"greeting": "Hello, agents!"}, "error": null, "cause": null})
    );
}

#[test]
fn run_reports_failures_and_unknown_resources() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "task.json",
        r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true}}}"#,
    );
    let o = agentry(&["run", &f, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = stdout_json(&o);
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["error"], "States.TaskFailed");
    assert!(
        v["cause"]
            .as_str()
            .unwrap()
            .contains("arn:aws:states:::lambda:invoke")
    );
}

#[test]
fn run_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "hello.json", HELLO);
    let o = agentry(&["run", &f, "--input", "{not json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Invalid State Machine Execution Input"));
    let big = format!("{{\"x\": \"{}\"}}", "a".repeat(300 * 1024));
    let input = write(&dir, "big.json", &big);
    let o = agentry(&["run", &f, "--input", &format!("@{input}")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("over the limit"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn test_state_runs_one_state_with_a_mock() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "task.json",
        r#"{"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "ResultPath": "$.r",
            "Catch": [{"ErrorEquals": ["Boom"], "Next": "Handle"}], "Next": "After"}"#,
    );
    let o = agentry(&[
        "test-state",
        &f,
        "--input",
        r#"{"a": 1}"#,
        "--mock",
        r#"{"result": "{\"ok\": true}"}"#,
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = stdout_json(&o);
    assert_eq!(v["status"], "SUCCEEDED");
    assert_eq!(v["output"], json!({"a": 1, "r": {"ok": true}}));
    assert_eq!(v["nextState"], "After");

    let o = agentry(&[
        "test-state",
        &f,
        "--mock",
        r#"{"errorOutput": {"error": "Boom", "cause": "x"}}"#,
        "--json",
    ]);
    let v = stdout_json(&o);
    assert_eq!(v["status"], "CAUGHT_ERROR");
    assert_eq!(v["nextState"], "Handle");
    assert_eq!(v["error"], "Boom");
}

#[test]
fn serve_answers_http_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_string();
    assert!(line.contains("listening on"), "{line}");
    let body = r#"{"definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"ok": 1}, "End": true}}}}"#;
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(s, "POST /v1/run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains(r#""output":{"ok":1}"#), "{resp}");
    assert!(resp.contains(r#""status":"SUCCEEDED""#), "{resp}");
    // SIGTERM: graceful shutdown, exit code 0.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
