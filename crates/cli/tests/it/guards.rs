//! On a real `agentry serve`: a session turn may call only its agent's tools, and its model
//! calls stop at its agent's budget; the same machine run outside a session is not held.

use serde_json::{Value, json};

use super::Server;

fn post(server: &Server, path: &str, body: Value) -> Value {
    let (status, text) = server.request(
        path,
        &[("Content-Type", "application/json")],
        &body.to_string(),
    );
    assert!(status.contains(" 20"), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

fn get(server: &Server, path: &str) -> Value {
    let auth = format!("Bearer {}", server.token);
    let (status, text) = server.raw("GET", path, &[("Authorization", &auth)], "");
    assert!(status.contains("200"), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// Runs one turn of a new session with `agent` and answers the closed turn.
fn turn(server: &Server, agent: &str) -> Value {
    let s = post(server, "/v1/sessions", json!({"agent": agent}));
    let id = s["id"].as_str().unwrap();
    post(
        server,
        &format!("/v1/sessions/{id}/messages"),
        json!({"message": "go"}),
    );
    for _ in 0..400 {
        let s = get(server, &format!("/v1/sessions/{id}"));
        let t = &s["turns"][0];
        if t["status"] != "RUNNING" && t["status"] != "QUEUED" {
            return t.clone();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the turn of {agent} did not end");
}

#[test]
fn session_turns_are_held_to_their_agents_tools_and_budgets() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let tool = |name: &str, next: Value| {
        let mut s = json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {"FunctionName": name, "Payload": {"csv": "a,b\n1,2"}}});
        match next {
            Value::String(n) => s["Next"] = json!(n),
            _ => s["End"] = json!(true),
        }
        s
    };
    let uses_tools = json!({"QueryLanguage": "JSONata", "StartAt": "Analyse", "States": {
        "Analyse": tool("data_analysis", json!("Write")),
        "Write": tool("arn:aws:lambda:local:000000000000:function:create_document", Value::Null)}});
    let converse = |next: Value| {
        let mut s = json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:bedrockruntime:converse",
            "Arguments": {"ModelId": "complex", "Messages": [{"Role": "user", "Content": [{"Text": "hi"}]}]}});
        match next {
            Value::String(n) => s["Next"] = json!(n),
            _ => s["End"] = json!(true),
        }
        s
    };
    let talks_twice = json!({"QueryLanguage": "JSONata", "StartAt": "One", "States": {
        "One": converse(json!("Two")), "Two": converse(Value::Null)}});
    for (name, def) in [("uses-tools", &uses_tools), ("talks-twice", &talks_twice)] {
        post(
            &server,
            "/v1/state-machines",
            json!({"name": name, "definition": def}),
        );
    }
    for (agent, machine, config) in [
        ("analyst", "uses-tools", json!({"tools": ["data_analysis"]})),
        (
            "writer",
            "uses-tools",
            json!({"tools": ["data_analysis", "create_document"]}),
        ),
        (
            "frugal",
            "talks-twice",
            json!({"budgets": {"max_model_calls_per_turn": 1}}),
        ),
        (
            "chatty",
            "talks-twice",
            json!({"budgets": {"max_model_calls_per_turn": 2}}),
        ),
    ] {
        let mut config = config;
        config["state_machine"] = json!(machine);
        post(
            &server,
            "/v1/agents",
            json!({"name": agent, "config": config}),
        );
    }

    // The analyst may analyse but not write documents: its turn fails at the second tool.
    let t = turn(&server, "analyst");
    assert_eq!(t["status"], "FAILED", "{t}");
    assert_eq!(t["error"], "Tools.NotAllowed", "{t}");
    assert!(
        t["cause"].as_str().unwrap().contains("create_document"),
        "{t}"
    );
    // The writer may do both (create_document then fails on its input, not on the guard).
    let t = turn(&server, "writer");
    assert_ne!(t["error"], "Tools.NotAllowed", "{t}");
    // One model call per turn: the second is refused before it is made.
    let t = turn(&server, "frugal");
    assert_eq!(t["status"], "FAILED", "{t}");
    assert_eq!(t["error"], "Llm.BudgetExceeded", "{t}");
    assert!(
        t["cause"]
            .as_str()
            .unwrap()
            .contains("max_model_calls_per_turn 1"),
        "{t}"
    );
    let t = turn(&server, "chatty");
    assert_eq!(t["status"], "SUCCEEDED", "{t}");

    // Outside a session the machine is not held to any agent.
    let started = post(
        &server,
        "/v1/state-machines/uses-tools/executions",
        json!({}),
    );
    let arn = started["executionArn"].as_str().unwrap();
    let path: String = arn
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    for _ in 0..400 {
        let d = get(&server, &format!("/v1/executions/{path}"));
        if d["status"] != "RUNNING" {
            assert_ne!(d["error"], "Tools.NotAllowed", "{d}");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the execution did not end");
}
