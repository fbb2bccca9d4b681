//! `/v1/tools` and `/v1/approvals`: a tenant's tools (its own HTTP tools and the global ones),
//! registration refusals, metrics, and calls held for approval, answered through the API,
//! with tools served by a local HTTP endpoint that records what it receives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentry_api::{LimitsConfig, router};
use agentry_tools::engine::ToolTasks;
use agentry_tools::{Approval, InvokerSpec, Policy, Registry, ToolSpec};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{call, enc, state_with, token_of};

/// A durable engine whose Task resources are the registry's tools, and the gateway over both.
pub struct ToolEnv {
    pub app: axum::Router,
    pub engine: agentry_engine::Engine,
    pub registry: Arc<Registry>,
    pub tasks: Arc<ToolTasks>,
    /// What the registry remembers (saved tools, approval requests).
    pub memory: Arc<agentry_tools::memory::MemoryStore>,
    _node: agentry_engine::Node,
    _dir: tempfile::TempDir,
}

pub async fn tool_env() -> ToolEnv {
    let dir = tempfile::tempdir().unwrap();
    let store = agentry_storage::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    let queue = agentry_queue::open(&format!("sqlite://{}", dir.path().join("q.db").display()))
        .await
        .unwrap();
    let config = agentry_engine::EngineConfig {
        poll_wait: Duration::from_millis(100),
        timer_poll: Duration::from_millis(100),
        ..Default::default()
    };
    let memory = Arc::new(agentry_tools::memory::MemoryStore::default());
    let registry = Arc::new(Registry::with_memory(memory.clone()));
    registry
        .add_builtin(Arc::new(agentry_tools::builtin::DataAnalysis))
        .unwrap();
    let mut resources = agentry_engine::ResourceTable::new();
    let tasks = agentry_tools::engine::register(&mut resources, registry.clone());
    let engine = agentry_engine::Engine::open(store, queue, resources, config)
        .await
        .unwrap();
    tasks.connect(Arc::new(engine.clone()));
    let node = engine.run();
    let app = router(
        state_with(Some(engine.clone()), LimitsConfig::default())
            .with_tools(registry.clone(), tasks.clone()),
    );
    ToolEnv {
        app,
        engine,
        registry,
        tasks,
        memory,
        _node: node,
        _dir: dir,
    }
}

/// What the endpoint received: (x-agentry-tenant header, body).
type Calls = Arc<Mutex<Vec<(String, Value)>>>;

/// A tool endpoint on a real socket: answers a POSTed JSON event with
/// `{"echo": event, "n": calls so far}`, as an HTTP tool's endpoint does.
async fn endpoint() -> (String, Calls) {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let app = axum::Router::new().route(
        "/tool",
        axum::routing::post(
            move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
                let seen = seen.clone();
                async move {
                    let tenant = headers
                        .get("x-agentry-tenant")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let mut c = seen.lock().unwrap();
                    c.push((tenant, body.clone()));
                    axum::Json(json!({"echo": body, "n": c.len()}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/tool"), calls)
}

/// A tenant's HTTP tool reaching the local endpoint: only the operator can grant the
/// loopback network, so the test registers it as configuration would.
fn local_tool(name: &str, tenant: &str, url: &str) -> ToolSpec {
    ToolSpec::new(
        name,
        InvokerSpec::Http {
            url: url.into(),
            headers: Default::default(),
        },
    )
    .tenant(tenant)
    .description("looks things up")
    .input_schema(
        json!({"type": "object", "required": ["q"], "properties": {"q": {"type": "string"}}}),
    )
    .policy(
        Policy::default()
            .allow_hosts(["127.0.0.1"])
            .allow_private(["127.0.0.1/32"]),
    )
}

async fn start(app: &axum::Router, who: &str, machine: &str, def: &Value, input: Value) -> String {
    let (s, v) = call(
        app,
        "PUT",
        &format!("/v1/state-machines/{machine}"),
        Some(who),
        Some(json!({"definition": def}).to_string()),
    )
    .await;
    if s == StatusCode::NOT_FOUND {
        let (s, v) = call(
            app,
            "POST",
            "/v1/state-machines",
            Some(who),
            Some(json!({"name": machine, "definition": def}).to_string()),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    } else {
        assert!(s.is_success(), "{v}");
    }
    let (s, v) = call(
        app,
        "POST",
        &format!("/v1/state-machines/{machine}/executions"),
        Some(who),
        Some(json!({"input": input}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["executionArn"].as_str().unwrap().to_string()
}

async fn finish(app: &axum::Router, who: &str, arn: &str) -> Value {
    for _ in 0..300 {
        let (_, v) = call(
            app,
            "GET",
            &format!("/v1/executions/{}", enc(arn)),
            Some(who),
            None,
        )
        .await;
        if v["status"] != "RUNNING" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{arn} did not finish");
}

fn create(body: Value) -> Option<String> {
    Some(body.to_string())
}

#[tokio::test]
async fn tenants_register_list_describe_and_delete_their_http_tools() {
    let env = tool_env().await;
    let app = &env.app;
    let acme = token_of("acme", "alice");
    let globex = token_of("globex", "bob");
    let (s, v) = call(
        app,
        "POST",
        "/v1/tools",
        Some(&acme),
        create(json!({
            "name": "weather", "description": "the weather", "version": "2",
            "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "outputSchema": {"type": "object"},
            "url": "https://api.example.com/weather", "timeoutMs": 5000
        })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["owner"], "acme");
    assert_eq!(v["kind"], "http");
    assert_eq!(v["allowedHosts"], json!(["api.example.com"]));
    assert_eq!(v["timeoutMs"], 5000);
    assert_eq!(
        env.registry.get(Some("acme"), "weather").unwrap().version,
        "2"
    );
    // Saved: a registry opened on the same memory after a restart has it again.
    let restarted = Registry::with_memory(env.memory.clone());
    assert_eq!(restarted.restore().await.unwrap(), 1);
    assert_eq!(restarted.get(Some("acme"), "weather").unwrap().version, "2");

    let (s, v) = call(app, "GET", "/v1/tools", Some(&acme), None).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["data_analysis", "weather"]);
    let global = &v["items"][0];
    assert_eq!(global["owner"], Value::Null);
    assert_eq!(global["kind"], "builtin");
    assert_eq!(global["approvalRequired"], false);
    assert!(global["inputSchema"].is_object());
    // globex sees the global tool only.
    let (_, v) = call(app, "GET", "/v1/tools", Some(&globex), None).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");

    let (s, v) = call(app, "GET", "/v1/tools/weather", Some(&acme), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["description"], "the weather");
    assert_eq!(v["version"], "2");
    assert_eq!(v["url"], "https://api.example.com/weather");
    assert_eq!(v["outputSchema"], json!({"type": "object"}));
    let (s, v) = call(app, "GET", "/v1/tools/weather", Some(&globex), None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("ToolNotFound"))
    );
    let (s, _) = call(app, "GET", "/v1/tools/nothing", Some(&acme), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A global tool is not the tenant's to delete; another tenant's is not there at all.
    let (s, v) = call(app, "DELETE", "/v1/tools/data_analysis", Some(&acme), None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("ToolNotOwned"))
    );
    assert!(env.registry.get(None, "data_analysis").is_some());
    let (s, _) = call(app, "DELETE", "/v1/tools/weather", Some(&globex), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(app, "DELETE", "/v1/tools/weather", Some(&acme), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let restarted = Registry::with_memory(env.memory.clone());
    assert_eq!(
        restarted.restore().await.unwrap(),
        0,
        "a deleted tool came back"
    );
    let (s, _) = call(app, "GET", "/v1/tools/weather", Some(&acme), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(app, "DELETE", "/v1/tools/weather", Some(&acme), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn registrations_name_the_field_that_is_wrong() {
    let env = tool_env().await;
    let acme = token_of("acme", "alice");
    let ok = json!({"name": "t", "url": "https://api.example.com/x"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let cases = [
        (
            with("allowPrivateNetworks", json!(["10.0.0.0/8"])),
            "allowPrivateNetworks",
            "private",
        ),
        (
            with("command", json!("/bin/sh")),
            "command",
            "process tools",
        ),
        (
            with("invoker", json!({"type": "process", "command": "/bin/sh"})),
            "invoker",
            "only HTTP tools",
        ),
        (
            with("url", json!("http://127.0.0.1:9/x")),
            "url",
            "127.0.0.1",
        ),
        (
            with("url", json!("http://169.254.169.254/latest")),
            "url",
            "169.254.169.254",
        ),
        (with("url", json!("file:///etc/passwd")), "url", "scheme"),
        (with("url", json!("not a url")), "url", "not a URL"),
        (
            with("allowedHosts", json!(["other.example.com"])),
            "url",
            "allow-list",
        ),
        (
            with("inputSchema", json!({"type": 12})),
            "inputSchema",
            "JSON Schema",
        ),
        (
            with("outputSchema", json!({"minimum": "zero"})),
            "outputSchema",
            "JSON Schema",
        ),
        (
            with("inputSchema", json!("string")),
            "inputSchema",
            "object",
        ),
        (with("name", json!("has space")), "name", "letters"),
        (with("name", json!("")), "name", "letters"),
        (with("timeoutMs", json!(0)), "timeoutMs", "1 to 300000"),
        (with("timeoutMs", json!(300001)), "timeoutMs", "1 to 300000"),
        (with("allowedHosts", json!([])), "allowedHosts", "at least"),
        (
            with("headers", json!({"bad header": "x"})),
            "headers",
            "header name",
        ),
    ];
    for (body, field, says) in cases {
        let (s, v) = call(
            &env.app,
            "POST",
            "/v1/tools",
            Some(&acme),
            create(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        let msg = v["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("\"{field}\"")) && msg.contains(says),
            "{body}: {msg}"
        );
    }
    // A field the API does not know, and a missing one.
    let (s, v) = call(
        &env.app,
        "POST",
        "/v1/tools",
        Some(&acme),
        create(with("secrets", json!(["k"]))),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("secrets"), "{v}");
    let (s, v) = call(
        &env.app,
        "POST",
        "/v1/tools",
        Some(&acme),
        create(json!({"name": "t"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("url"), "{v}");
    // Nothing was registered.
    assert!(env.registry.get(Some("acme"), "t").is_none());
    // An empty list of private networks asks for nothing and is accepted.
    let (s, v) = call(
        &env.app,
        "POST",
        "/v1/tools",
        Some(&acme),
        create(with("allowPrivateNetworks", json!([]))),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        env.registry
            .get(Some("acme"), "t")
            .unwrap()
            .policy
            .allow_private_networks
            .is_empty()
    );
}

#[tokio::test]
async fn a_tenants_http_tool_runs_in_its_state_machines_and_is_measured() {
    let env = tool_env().await;
    let app = &env.app;
    let acme = token_of("acme", "alice");
    let globex = token_of("globex", "bob");
    let (url, calls) = endpoint().await;
    // Through the API, the same endpoint is refused: it is on a private network.
    let (s, v) = call(
        app,
        "POST",
        "/v1/tools",
        Some(&acme),
        create(json!({"name": "lookup", "url": url})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    env.registry
        .register(local_tool("lookup", "acme", &url))
        .unwrap();
    let (s, v) = call(app, "GET", "/v1/tools/lookup", Some(&acme), None).await;
    assert_eq!((s, &v["owner"]), (StatusCode::OK, &json!("acme")), "{v}");

    let def = json!({"StartAt": "Look", "States": {"Look": {"Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "lookup", "Payload": {"q.$": "$.q"}},
        "OutputPath": "$.Payload", "End": true}}});
    let arn = start(app, &acme, "look", &def, json!({"q": "rust"})).await;
    let d = finish(app, &acme, &arn).await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert_eq!(d["output"].clone(), json!({"echo": {"q": "rust"}, "n": 1}));
    assert_eq!(
        calls.lock().unwrap().clone(),
        vec![("acme".to_string(), json!({"q": "rust"}))]
    );
    // Input that fails the tool's schema fails the task before any request.
    let bad = start(app, &acme, "look", &def, json!({"q": 5})).await;
    let d = finish(app, &acme, &bad).await;
    assert_eq!(
        (d["status"].as_str(), d["error"].as_str()),
        (Some("FAILED"), Some("Tools.SchemaValidation")),
        "{d}"
    );
    assert_eq!(calls.lock().unwrap().len(), 1);

    let (s, m) = call(app, "GET", "/v1/tools/lookup/metrics", Some(&acme), None).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(
        (m["calls"].as_u64(), m["errors"].as_u64()),
        (Some(2), Some(1)),
        "{m}"
    );
    let counts: u64 = m["latency"]["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(counts, 2);
    assert_eq!(
        m["latency"]["bucketsUs"].as_array().unwrap().len(),
        m["latency"]["counts"].as_array().unwrap().len()
    );
    assert_eq!(
        m["latency"]["bucketsUs"].as_array().unwrap().last(),
        Some(&Value::Null)
    );
    assert!(m["latency"]["maxUs"].as_u64().unwrap() > 0);
    // A global tool nobody called yet: zeros.
    let (s, m) = call(
        app,
        "GET",
        "/v1/tools/data_analysis/metrics",
        Some(&acme),
        None,
    )
    .await;
    assert_eq!((s, m["calls"].as_u64()), (StatusCode::OK, Some(0)), "{m}");
    // globex has no tool of that name: its machine fails with Tools.NotFound and reaches
    // nothing, and the metrics are not there for it.
    let theirs = start(app, &globex, "look", &def, json!({"q": "x"})).await;
    let d = finish(app, &globex, &theirs).await;
    assert_eq!(d["error"], "Tools.NotFound", "{d}");
    assert_eq!(calls.lock().unwrap().len(), 1);
    let (s, _) = call(app, "GET", "/v1/tools/lookup/metrics", Some(&globex), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A name that resolves to loopback passes registration, but the call is refused once
    // the name resolves: the endpoint is never reached.
    let by_name = url.replace("127.0.0.1", "localhost");
    let (s, v) = call(
        app,
        "POST",
        "/v1/tools",
        Some(&acme),
        create(json!({"name": "sneaky", "url": by_name})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let def = json!({"StartAt": "S", "States": {"S": {"Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "sneaky", "Payload": {}}, "End": true}}});
    let arn = start(app, &acme, "sneaky", &def, json!({})).await;
    let d = finish(app, &acme, &arn).await;
    assert_eq!(d["error"], "Tools.Forbidden", "{d}");
    assert_eq!(calls.lock().unwrap().len(), 1);
}

async fn wait_approvals(app: &axum::Router, who: &str, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let (s, v) = call(app, "GET", "/v1/approvals", Some(who), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let items = v["items"].as_array().unwrap().clone();
        if items.len() >= n {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no approval requests were listed");
}

#[tokio::test]
async fn approval_gated_calls_wait_and_are_approved_or_rejected_through_the_api() {
    let env = tool_env().await;
    let app = &env.app;
    let acme = token_of("acme", "alice");
    let globex = token_of("globex", "bob");
    let (url, calls) = endpoint().await;
    env.registry
        .register(local_tool("publish", "acme", &url).approval(Approval::Always))
        .unwrap();
    let (_, v) = call(app, "GET", "/v1/tools/publish", Some(&acme), None).await;
    assert_eq!(v["approvalRequired"], true, "{v}");
    let def = json!({"StartAt": "Publish", "States": {
        "Publish": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "publish", "Payload": {"q.$": "$.q"}},
            "ResultSelector": {"published.$": "$.Payload.echo.q"},
            "Catch": [{"ErrorEquals": ["Tools.ApprovalDenied"], "ResultPath": "$.denied", "Next": "Denied"}],
            "End": true},
        "Denied": {"Type": "Pass", "End": true}}});
    let yes = start(app, &acme, "publish", &def, json!({"q": "launch"})).await;
    let pending = wait_approvals(app, &acme, 1).await;
    assert_eq!(pending.len(), 1);
    let p = &pending[0];
    assert_eq!(p["tool"], "publish");
    assert_eq!(p["arguments"], json!({"q": "launch"}));
    assert_eq!(p["executionArn"], json!(yes));
    assert!(p["reason"].as_str().unwrap().contains("always"), "{p}");
    assert!(p["requestedAt"].as_str().unwrap().ends_with('Z'), "{p}");
    let token = p["token"].as_str().unwrap().to_string();
    // Another tenant sees none of it and cannot answer it.
    let (_, v) = call(app, "GET", "/v1/approvals", Some(&globex), None).await;
    assert_eq!(v["items"], json!([]));
    let (s, v) = call(
        app,
        "POST",
        &format!("/v1/approvals/{}/approve", enc(&token)),
        Some(&globex),
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("ApprovalNotFound"))
    );
    // Nothing ran while it waited.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(calls.lock().unwrap().is_empty());
    let (_, d) = call(
        app,
        "GET",
        &format!("/v1/executions/{}", enc(&yes)),
        Some(&acme),
        None,
    )
    .await;
    assert_eq!(d["status"], "RUNNING");

    let (s, v) = call(
        app,
        "POST",
        &format!("/v1/approvals/{}/approve", enc(&token)),
        Some(&acme),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "SUCCEEDED");
    assert_eq!(v["output"], json!({"echo": {"q": "launch"}, "n": 1}));
    let d = finish(app, &acme, &yes).await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert_eq!(d["output"].clone(), json!({"published": "launch"}));
    assert_eq!(
        calls.lock().unwrap().clone(),
        vec![("acme".to_string(), json!({"q": "launch"}))]
    );
    // Answered: gone from the list, and a second answer finds nothing.
    let (_, v) = call(app, "GET", "/v1/approvals", Some(&acme), None).await;
    assert_eq!(v["items"], json!([]));
    let (s, _) = call(
        app,
        "POST",
        &format!("/v1/approvals/{}/approve", enc(&token)),
        Some(&acme),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Rejected: the task fails with Tools.ApprovalDenied, which the machine catches.
    let no = start(app, &acme, "publish", &def, json!({"q": "leak"})).await;
    let token = wait_approvals(app, &acme, 1).await[0]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let reject = format!("/v1/approvals/{}/reject", enc(&token));
    let (s, v) = call(
        app,
        "POST",
        &reject,
        Some(&acme),
        create(json!({"reason": " "})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("\"reason\""), "{v}");
    let (s, _) = call(
        app,
        "POST",
        &reject,
        Some(&globex),
        create(json!({"reason": "no"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = call(
        app,
        "POST",
        &reject,
        Some(&acme),
        create(json!({"reason": "not public yet"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let d = finish(app, &acme, &no).await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let out = d["output"].clone();
    assert_eq!(out["denied"]["Error"], "Tools.ApprovalDenied", "{out}");
    assert!(
        out["denied"]["Cause"]
            .as_str()
            .unwrap()
            .contains("not public yet"),
        "{out}"
    );
    assert_eq!(calls.lock().unwrap().len(), 1, "a rejected call ran");
    // Unknown tokens.
    let (s, v) = call(app, "POST", "/v1/approvals/nope/approve", Some(&acme), None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("ApprovalNotFound"))
    );
    let (s, _) = call(
        app,
        "POST",
        "/v1/approvals/nope/reject",
        Some(&acme),
        create(json!({"reason": "x"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        env.tasks
            .registry()
            .pending_approvals(None)
            .await
            .unwrap()
            .is_empty()
    );
    drop(env.engine);
}

#[tokio::test]
async fn without_tools_the_routes_answer_503() {
    let e = super::engine().await;
    let app = router(state_with(Some(e.engine.clone()), LimitsConfig::default()));
    let t = super::token();
    for (m, p) in [
        ("GET", "/v1/tools"),
        ("GET", "/v1/tools/x"),
        ("GET", "/v1/approvals"),
    ] {
        let (s, v) = call(&app, m, p, Some(&t), None).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("ToolsUnavailable")),
            "{p}"
        );
    }
}
