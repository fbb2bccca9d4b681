//! The `agentry` binary's commands, run as a user runs them.

mod agent_loop;
mod demo;
mod guards;
mod nodes;

use std::process::{Command, Output};

use serde_json::{Value, json};

/// The development key pair the README documents.
const DEV_ACCESS_KEY_ID: &str = "AKIAAGENTRYDEVELOPER";
const DEV_SECRET_ACCESS_KEY: &str = "agentry/development/only/secret/key00000";

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
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let f = write(
        &dir,
        "task.json",
        r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "End": true}}}"#,
    );
    let o = agentry(&["run", &f, "--json", "--data", data]);
    assert_eq!(o.status.code(), Some(1));
    let v = stdout_json(&o);
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["error"], "States.TaskFailed");
    assert!(
        v["cause"]
            .as_str()
            .unwrap()
            .contains("arn:aws:states:::dynamodb:putItem"),
        "{v}"
    );
    // A tool call without the function to call says what is missing.
    let f = write(
        &dir,
        "lambda.json",
        r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true}}}"#,
    );
    let v = stdout_json(&agentry(&["run", &f, "--json", "--data", data]));
    assert_eq!(v["status"], "FAILED");
    assert!(v["cause"].as_str().unwrap().contains("FunctionName"), "{v}");
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
    // Inspection data as AWS returns it: each stage's value as JSON text.
    let stage =
        |k: &str| serde_json::from_str::<Value>(v["inspectionData"][k].as_str().unwrap()).unwrap();
    assert_eq!(stage("input"), json!({"a": 1}));
    assert_eq!(stage("result"), json!({"ok": true}));
    assert_eq!(stage("afterResultPath"), json!({"a": 1, "r": {"ok": true}}));

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

/// A running `agentry serve` on a free port with its data in `data`, and a development token
/// of the default tenant for it.
struct Server {
    child: std::process::Child,
    addr: String,
    token: String,
}

/// `agentry token` for the data directory `data`.
fn token(data: &std::path::Path, tenant: &str) -> String {
    let o = agentry(&[
        "token",
        "--tenant",
        tenant,
        "--user",
        "tester",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

impl Server {
    fn start(data: &std::path::Path) -> Server {
        Self::start_with(data, &[])
    }

    fn start_with(data: &std::path::Path, extra: &[&str]) -> Server {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_agentry"))
            .args(["serve", "--addr", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        assert!(line.contains("listening on"), "{line}");
        let addr = line
            .split("http://")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        let token = token(data, "default");
        Server { child, addr, token }
    }

    /// One HTTP request with the server's token; answers (status line, body).
    fn request(&self, path: &str, headers: &[(&str, &str)], body: &str) -> (String, String) {
        let auth = format!("Bearer {}", self.token);
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(headers);
        self.raw("POST", path, &all, body)
    }

    /// One HTTP request as given; answers (status line, body).
    fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (String, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
        (
            head.lines().next().unwrap_or("").to_string(),
            body.to_string(),
        )
    }

    /// A Step Functions API call in AWS's JSON protocol.
    fn aws(&self, action: &str, body: Value) -> Value {
        let target = format!("AWSStepFunctions.{action}");
        let (status, body) = self.request(
            "/",
            &[
                ("X-Amz-Target", &target),
                ("Content-Type", "application/x-amz-json-1.0"),
            ],
            &body.to_string(),
        );
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert!(status.contains("200"), "{action}: {status} {v}");
        v
    }

    fn kill(self) {}
}

impl Drop for Server {
    // A failing test must not leave a server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_answers_http_and_stops_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path());
    let body = r#"{"definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"ok": 1}, "End": true}}}}"#;
    let (status, resp) = server.request("/v1/run", &[("Content-Type", "application/json")], body);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(resp.contains(r#""output":{"ok":1}"#), "{resp}");
    assert!(resp.contains(r#""status":"SUCCEEDED""#), "{resp}");
    // SIGTERM: graceful shutdown, exit code 0.
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    let status = server.child.wait().unwrap();
    std::mem::forget(server);
    assert!(status.success(), "{status:?}");
}

#[test]
fn executions_survive_a_killed_server() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let definition = json!({"StartAt": "Wait", "States": {
        "Wait": {"Type": "Wait", "Seconds": 2, "Next": "Done"},
        "Done": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('Hello, {}!', $.name)"}, "End": true}}});
    let machine = server.aws("CreateStateMachine", json!({"name": "hello", "definition": definition.to_string(), "roleArn": "arn:aws:iam::1:role/r"}));
    let arn = machine["stateMachineArn"].as_str().unwrap().to_string();
    let started = server.aws(
        "StartExecution",
        json!({"stateMachineArn": arn, "name": "first", "input": "{\"name\": \"durable\"}"}),
    );
    let exec = started["executionArn"].as_str().unwrap().to_string();
    assert_eq!(
        server.aws("DescribeExecution", json!({"executionArn": exec}))["status"],
        "RUNNING"
    );
    // As on AWS: the same name and input while it runs answer with the same execution.
    let again = server.aws(
        "StartExecution",
        json!({"stateMachineArn": arn, "name": "first", "input": "{\"name\": \"durable\"}"}),
    );
    assert_eq!(again["executionArn"], exec.as_str());
    // The process dies while the execution waits; a new one on the same data finishes it.
    server.kill();
    let server = Server::start(data.path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let described = loop {
        let d = server.aws("DescribeExecution", json!({"executionArn": exec}));
        if d["status"] != "RUNNING" || std::time::Instant::now() > deadline {
            break d;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(described["status"], "SUCCEEDED", "{described}");
    assert_eq!(
        serde_json::from_str::<Value>(described["output"].as_str().unwrap()).unwrap(),
        json!({"greeting": "Hello, durable!"})
    );
    let history = server.aws("GetExecutionHistory", json!({"executionArn": exec}));
    let kinds: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "WaitStateEntered",
            "WaitStateExited",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
    // Once it has ended, the name is taken: ExecutionAlreadyExists.
    let target = "AWSStepFunctions.StartExecution";
    let (status, body) = server.request(
        "/",
        &[
            ("X-Amz-Target", target),
            ("Content-Type", "application/x-amz-json-1.0"),
        ],
        &json!({"stateMachineArn": arn, "name": "first", "input": "{}"}).to_string(),
    );
    assert!(status.contains("400"), "{status}");
    assert!(body.contains("ExecutionAlreadyExists"), "{body}");
    server.kill();
}

/// The Python with boto3 and the AWS CLI that `.ci/run` installs; `None` means skip (a failure
/// under `CI=true`).
fn real_clients() -> Option<(String, String)> {
    match (
        std::env::var("AGENTRY_TEST_PYTHON"),
        std::env::var("AGENTRY_TEST_AWS_CLI"),
    ) {
        (Ok(py), Ok(aws)) => Some((py, aws)),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "AGENTRY_TEST_PYTHON / AGENTRY_TEST_AWS_CLI not set (.ci/run installs boto3 and the AWS CLI)"
            );
            eprintln!("skipped: AGENTRY_TEST_PYTHON / AGENTRY_TEST_AWS_CLI not set");
            None
        }
    }
}

#[test]
fn boto3_and_the_aws_cli_work_unchanged() {
    let Some((python, aws)) = real_clients() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let endpoint = format!("http://{}", server.addr);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/clients/boto3_flow.py"
    );
    let out = Command::new(&python)
        .arg(script)
        .arg(&endpoint)
        .arg(DEV_ACCESS_KEY_ID)
        .arg(DEV_SECRET_ACCESS_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "boto3 flow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["machines"], json!(["greeter", "quick"]));
    assert_eq!(
        v["sync"],
        json!({"status": "SUCCEEDED", "output": {"greeting": "Hello, sync!"}, "express": true})
    );
    assert_eq!(v["status"], "SUCCEEDED");
    assert_eq!(v["output"], json!({"greeting": "Hello, boto3!"}));
    assert_eq!(
        v["history"],
        json!([
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "ChoiceStateEntered",
            "ChoiceStateExited",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded"
        ])
    );
    assert_eq!(v["listed"], json!(["first"]));
    assert_eq!(
        v["errors"],
        json!({"sync on standard": "StateMachineTypeNotSupported",
               "missing execution": "ExecutionDoesNotExist", "bad definition": "InvalidDefinition",
               "name reused": "ExecutionAlreadyExists", "bad input": "InvalidExecutionInput",
               "wrong secret": "InvalidSignatureException",
               "redrive succeeded": "ExecutionNotRedrivable", "deleted activity": "ActivityDoesNotExist",
               "version in use": "ConflictException", "deleted alias": "ResourceNotFound",
               "deleted machine": "StateMachineDoesNotExist", "deleted version": "StateMachineDoesNotExist"})
    );
    // An activity worker fails the first attempt; the execution is redriven from that state.
    assert_eq!(
        v["activity_redrive"],
        json!({
            "first": {"doc": "draft", "attempt": 0},
            "second": {"doc": "draft", "attempt": 1},
            "failed": ["FAILED", "REDRIVABLE"],
            "redrive_date": true,
            "done": ["SUCCEEDED", {"approved": true}, 1],
            "redriven_events": 1,
            "activity_events": ["ActivityFailed", "ActivityScheduled", "ActivityStarted", "ActivitySucceeded"],
            "activities": ["reviewer"]
        })
    );
    assert_eq!(
        v["alias"],
        json!({
            "arn_suffix": ["aliased", "live"],
            "status": "SUCCEEDED",
            "output": {"greeting": "Hello, alias!"},
            "via": [true, true],
            "routing": [[true, 100]],
            "listed": 1
        })
    );
    assert_eq!(
        v["test_state"],
        json!({"status": "SUCCEEDED", "output": {"a": 1, "r": {"x": 1}}, "nextState": "N"})
    );

    // The AWS CLI, as a user types it.
    let cli = |args: &[&str]| {
        let out = Command::new(&aws)
            .args([
                "stepfunctions",
                "--endpoint-url",
                &endpoint,
                "--region",
                "us-east-1",
                "--output",
                "json",
            ])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", DEV_ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", DEV_SECRET_ACCESS_KEY)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = cli(&["list-state-machines"]);
    assert_eq!(code, Some(0), "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = listed["stateMachines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"greeter") && names.contains(&"quick"),
        "{names:?}"
    );
    let bad = r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}"#;
    let (code, stdout, stderr) = cli(&["validate-state-machine-definition", "--definition", bad]);
    assert_eq!(code, Some(0), "{stderr}");
    let checked: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(checked["result"], "FAIL");
    assert_eq!(
        checked["diagnostics"][0]["code"],
        "MISSING_TRANSITION_TARGET"
    );
    let (code, _, stderr) = cli(&[
        "describe-execution",
        "--execution-arn",
        "arn:aws:states:local:000000000000:execution:greeter:nope",
    ]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("ExecutionDoesNotExist"), "{stderr}");
}

#[test]
fn tokens_config_and_refusals_on_a_real_server() {
    let data = tempfile::tempdir().unwrap();
    let conf = write(
        &data,
        "agentry.toml",
        "[limits]\nmax_body_bytes = 2000\n\n[auth.accounts]\nacme = \"123456789012\"\n",
    );
    let server = Server::start_with(data.path(), &["--config", &conf]);
    // The signing key was created private to its owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.path().join("dev-signing-key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let body = json!({"name": "flow", "definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}}).to_string();
    let (status, resp) = server.raw("POST", "/v1/state-machines", &[], &body);
    assert!(status.contains("401"), "{status}");
    assert!(resp.contains("agentry token"), "{resp}");
    let (status, _) = server.raw("GET", "/healthz", &[], "");
    assert!(status.contains("200"), "{status}");
    // A token of another tenant lands in its configured account.
    let acme = format!("Bearer {}", token(data.path(), "acme"));
    let (status, resp) = server.raw(
        "POST",
        "/v1/state-machines",
        &[("Authorization", &acme)],
        &body,
    );
    assert!(status.contains("201"), "{status} {resp}");
    assert!(
        resp.contains("arn:aws:states:local:123456789012:stateMachine:flow"),
        "{resp}"
    );
    // The default tenant does not see it.
    let (status, _) = server.raw(
        "GET",
        "/v1/state-machines/flow",
        &[("Authorization", &format!("Bearer {}", server.token))],
        "",
    );
    assert!(status.contains("404"), "{status}");
    // The config's body limit.
    let big = json!({"definition": "x".repeat(3000)}).to_string();
    let (status, resp) = server.raw("POST", "/v1/validate", &[("Authorization", &acme)], &big);
    assert!(status.contains("413"), "{status} {resp}");
    // A token signed by another data directory's key is refused.
    let elsewhere = tempfile::tempdir().unwrap();
    let foreign = format!("Bearer {}", token(elsewhere.path(), "acme"));
    let (status, resp) = server.raw(
        "GET",
        "/v1/state-machines",
        &[("Authorization", &foreign)],
        "",
    );
    assert!(status.contains("401"), "{status}");
    assert!(resp.contains("token signature is invalid"), "{resp}");
    server.kill();

    // A config with an unknown field stops the server with the field named.
    let bad = write(&data, "bad.toml", "[limits]\nmax_bytes = 1\n");
    let o = agentry(&[
        "serve",
        "--config",
        &bad,
        "--data",
        data.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("max_bytes"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = agentry(&[
        "token",
        "--tenant",
        "no spaces",
        "--user",
        "u",
        "--data",
        data.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("tenant"));
}
