//! The agent loop shipped in `examples/agent-loop`, run offline by `agentry run`: the model
//! (recorded exchanges) asks for tools, the tools really run, their results go back to the
//! model, until it ends its turn or the turn limit stops it.

use std::process::Command;

use serde_json::{Value, json};

use super::write;

const LOOP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/agent-loop/agent-loop.asl.json"
);
const INPUT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/agent-loop/input.json"
);

/// `agentry run LOOP --json` with `args`; the parsed last line of stdout.
fn run(dir: &tempfile::TempDir, args: &[&str]) -> Value {
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_agentry"))
        .args(["run", LOOP, "--json", "--data", data.to_str().unwrap()])
        .args(args)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn the_agent_loop_runs_offline_calling_the_tool_the_model_asks_for() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(&dir, &["--input", &format!("@{INPUT}")]);
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    let out = &r["output"];
    assert_eq!(out["turns"], 2);
    assert_eq!(out["toolsCalled"], json!(["data_analysis"]));
    assert_eq!(out["stopReason"], "end_turn");
    assert!(
        out["answer"].as_str().unwrap().contains("entry $25"),
        "{out}"
    );
    // The figures the model was given back were computed by the tool, from the CSV.
    let messages = out["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        4,
        "user, assistant (tool use), user (result), assistant"
    );
    let result = &messages[2]["Content"][0]["ToolResult"];
    assert_eq!(result["Status"], "success");
    let groups = &result["Content"][0]["Json"]["groups"];
    let median = |tier: &str| {
        groups
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["tier"] == tier)
            .unwrap()["median(price)"]
            .clone()
    };
    assert_eq!(
        (median("entry"), median("mid"), median("top")),
        (json!(25), json!(89), json!(249))
    );
}

#[test]
fn the_turn_limit_stops_a_model_that_keeps_asking() {
    let dir = tempfile::tempdir().unwrap();
    let mut input: Value = serde_json::from_str(&std::fs::read_to_string(INPUT).unwrap()).unwrap();
    input["maxTurns"] = json!(1);
    let r = run(&dir, &["--input", &input.to_string()]);
    assert_eq!(r["status"], "FAILED", "{r}");
    assert_eq!(r["error"], "Agent.TurnLimit");
    assert!(r["cause"].as_str().unwrap().contains("1 turns"), "{r}");
}

#[test]
fn a_failing_tool_call_goes_back_to_the_model_as_an_error_result() {
    // A model (recorded in a file of the test's own, through [llm]) that asks for a tool that
    // does not exist, then answers with what it was told.
    let dir = tempfile::tempdir().unwrap();
    let recordings = json!([
        {"request": {"system": [{"text": "test"}], "messages": [{"role": "user", "content": [{"text": "go"}]}]},
         "response": {"toolUse": [{"toolUseId": "t1", "name": "no_such_tool", "input": {}}]}},
        {"request": {"system": [{"text": "test"}]},
         "response": {"text": "the tool failed"}}
    ]);
    let rec = write(&dir, "rec.json", &recordings.to_string());
    let config = write(
        &dir,
        "agentry.toml",
        &format!(
            "[llm.providers.test]\nkind = \"recorded\"\npath = \"{rec}\"\n\n[llm.routes.complex]\nprovider = \"test\"\nmodel = \"m\"\n"
        ),
    );
    let input = json!({"system": "test", "messages": [{"Role": "user", "Content": [{"Text": "go"}]}],
        "tools": [{"ToolSpec": {"Name": "no_such_tool", "InputSchema": {"Json": {"type": "object"}}}}]});
    let r = run(&dir, &["--config", &config, "--input", &input.to_string()]);
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    assert_eq!(r["output"]["answer"], "the tool failed");
    let result = &r["output"]["messages"][2]["Content"][0]["ToolResult"];
    assert_eq!(result["Status"], "error", "{result}");
    assert!(
        result["Content"][0]["Text"]
            .as_str()
            .unwrap()
            .contains("no_such_tool"),
        "{result}"
    );
}
