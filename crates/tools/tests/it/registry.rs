//! The registry: schemas, process and HTTP invokers, secrets, limits, idempotency, metrics,
//! tenants and configuration.

use std::sync::Arc;
use std::time::Duration;

use agentry_tools::memory::ItemMemory;
use agentry_tools::{
    Call, Error, InvokerSpec, Outcome, Policy, Registry, SecretRef, ToolSpec, ToolsConfig,
};
use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::{local_only, process_tool, script, serve};

fn echo_tool(dir: &std::path::Path) -> ToolSpec {
    process_tool("echo", &script(dir, "echo.sh", "exec /bin/cat"))
}

#[tokio::test]
async fn schema_failures_name_the_failing_field() {
    let dir = tempfile::tempdir().unwrap();
    let r = Registry::new();
    r.register(
        echo_tool(dir.path())
            .input_schema(json!({
                "type": "object",
                "required": ["url"],
                "properties": {"url": {"type": "string"}, "n": {"type": "integer"},
                               "opts": {"type": "object", "properties": {"depth": {"maximum": 3}}}}
            }))
            .output_schema(json!({"type": "object", "required": ["answer"]})),
    )
    .unwrap();
    let cases = [
        (json!({"url": "x", "n": "seven"}), "/n"),
        (json!({"n": 1}), "/url"),
        (json!({"url": "x", "opts": {"depth": 9}}), "/opts/depth"),
    ];
    for (input, pointer) in cases {
        let e = r
            .invoke(Call::new("echo", input.clone()))
            .await
            .unwrap_err();
        assert_eq!(e.name(), "Tools.SchemaValidation", "{e}");
        match &e {
            Error::SchemaValidation {
                which, pointer: p, ..
            } => {
                assert_eq!((*which, p.as_str()), ("input", pointer), "{e}");
            }
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains(pointer), "{e}");
    }
    // The echo returns its input, which lacks "answer": the output check fails.
    let e = r
        .invoke(Call::new("echo", json!({"url": "x"})))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::SchemaValidation { which: "output", pointer, .. } if pointer == "/answer"),
        "{e}"
    );
    // An invalid schema is refused at registration.
    let bad = r.register(echo_tool(dir.path()).input_schema(json!({"type": "nonsense"})));
    assert!(
        matches!(bad, Err(Error::Config(ref m)) if m.contains("input schema")),
        "{bad:?}"
    );
}

#[tokio::test]
async fn process_tools_run_in_their_scope_with_a_cleared_environment_and_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "env.sh",
        r#"read -r event
printf '{"event":%s,"cwd":"%s","home":"%s","custom":"%s","key_len":%s,"key":"%s","allowed":"%s","tool":"%s"}' \
  "$event" "$(pwd)" "$HOME" "$CUSTOM" "${#API_KEY}" "$API_KEY" "$AGENTRY_ALLOWED_PATHS" "$AGENTRY_TOOL""#,
    );
    let r = Registry::new();
    r.add_secrets([("search-key", "s3cr3t-value")]);
    let mut policy = Policy::default().with_working_dir(work.path());
    policy.allowed_paths = vec!["/srv/reports".into()];
    policy.env.insert("CUSTOM".into(), "declared".into());
    policy.secrets.push(SecretRef {
        name: "search-key".into(),
        env: Some("API_KEY".into()),
        header: None,
    });
    r.register(process_tool("env", &s).policy(policy)).unwrap();
    let out = r.invoke(Call::new("env", json!({"q": 1}))).await.unwrap();
    assert_eq!(out["event"], json!({"q": 1}));
    assert_eq!(
        out["cwd"],
        json!(work.path().canonicalize().unwrap().display().to_string())
    );
    assert_eq!(
        out["home"],
        json!(""),
        "the environment is not cleared: {out}"
    );
    assert_eq!(out["custom"], json!("declared"));
    assert_eq!(
        out["key_len"],
        json!(12),
        "the secret did not reach the process"
    );
    assert_eq!(
        out["key"],
        json!("***"),
        "a secret was echoed in the output: {out}"
    );
    assert_eq!(
        out["allowed"],
        json!(format!("{}:/srv/reports", work.path().display()))
    );
    assert_eq!(out["tool"], json!("env"));
    // A secret nobody provided is a configuration error naming it.
    let mut p = Policy::default();
    p.secrets.push(SecretRef {
        name: "missing".into(),
        env: Some("X".into()),
        header: None,
    });
    let e = r.register(process_tool("x", &s).policy(p)).unwrap_err();
    assert!(e.to_string().contains("secret \"missing\""), "{e}");
}

#[tokio::test]
async fn failing_processes_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = Registry::new();
    r.add_secrets([("tok", "hunter2-token")]);
    let mut crash_policy = Policy::default();
    crash_policy.secrets.push(SecretRef {
        name: "tok".into(),
        env: Some("TOKEN".into()),
        header: None,
    });
    r.register(
        process_tool(
            "crash",
            &script(d, "crash.sh", "echo \"boom with $TOKEN\" >&2; exit 3"),
        )
        .policy(crash_policy),
    )
    .unwrap();
    r.register(process_tool(
        "garbage",
        &script(d, "garbage.sh", "echo 'Traceback: not json'"),
    ))
    .unwrap();
    r.register(process_tool("silent", &script(d, "silent.sh", "exit 0")))
        .unwrap();
    r.register(process_tool(
        "raises",
        &script(
            d,
            "raises.sh",
            r#"printf '{"errorType":"Pricing.NoData","errorMessage":"no prices for X"}'; exit 1"#,
        ),
    ))
    .unwrap();
    r.register(
        process_tool("slow", &script(d, "slow.sh", "exec /bin/sleep 5"))
            .policy(Policy::default().with_timeout(Duration::from_millis(300))),
    )
    .unwrap();
    r.register(
        process_tool(
            "flood",
            &script(d, "flood.sh", "exec /usr/bin/yes '\"xxxxxxxxxxxxxxxx\"'"),
        )
        .policy(Policy::default().with_max_output(10_000)),
    )
    .unwrap();

    let e = r.invoke(Call::new("crash", json!({}))).await.unwrap_err();
    assert_eq!(e.name(), "Tools.Failed");
    let m = e.to_string();
    assert!(
        m.contains("exited with status 3") && m.contains("boom with ***"),
        "{m}"
    );
    assert!(!m.contains("hunter2"), "secret leaked into an error: {m}");

    let e = r.invoke(Call::new("garbage", json!({}))).await.unwrap_err();
    assert!(
        e.to_string().contains("not JSON") && e.to_string().contains("Traceback"),
        "{e}"
    );
    let e = r.invoke(Call::new("silent", json!({}))).await.unwrap_err();
    assert!(e.to_string().contains("printed nothing"), "{e}");

    let e = r.invoke(Call::new("raises", json!({}))).await.unwrap_err();
    assert_eq!(e.name(), "Pricing.NoData");
    assert!(e.to_string().contains("no prices for X"), "{e}");

    let started = std::time::Instant::now();
    let e = r.invoke(Call::new("slow", json!({}))).await.unwrap_err();
    assert_eq!(e.name(), "Tools.Timeout", "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // `yes` never stops: the limit must stop reading and end the process.
    let started = std::time::Instant::now();
    let e = tokio::time::timeout(
        Duration::from_secs(10),
        r.invoke(Call::new("flood", json!({}))),
    )
    .await
    .expect("reading stopped at the limit")
    .unwrap_err();
    assert_eq!(e.name(), "Tools.OutputTooLarge", "{e}");
    assert!(e.to_string().contains("10000 bytes"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let unknown = r.invoke(Call::new("nope", json!({}))).await.unwrap_err();
    assert_eq!(unknown.name(), "Tools.NotFound");
}

#[tokio::test]
async fn a_timed_out_process_tool_ends_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "spawner.sh",
        "/bin/sleep 30 & echo $! > pid; wait",
    );
    let r = Registry::new();
    r.register(
        process_tool("spawner", &s).policy(
            Policy::default()
                .with_working_dir(work.path())
                .with_timeout(Duration::from_millis(500)),
        ),
    )
    .unwrap();
    let e = r.invoke(Call::new("spawner", json!({}))).await.unwrap_err();
    assert_eq!(e.name(), "Tools.Timeout");
    let pid = std::fs::read_to_string(work.path().join("pid")).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    for _ in 0..50 {
        // Gone, or a zombie waiting for its new parent to reap it.
        match std::fs::read_to_string(&stat) {
            Err(_) => return,
            Ok(s) if s.rsplit(')').next().unwrap().trim_start().starts_with('Z') => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!(
        "the tool's background process {} outlived the call",
        pid.trim()
    );
}

#[tokio::test]
async fn http_tools_post_the_event_with_secret_headers() {
    let app = axum::Router::new()
        .route(
            "/fn",
            post(|headers: HeaderMap, Json(event): Json<Value>| async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                Json(json!({"got": event, "auth_seen": auth, "tenant": headers.get("x-agentry-tenant").and_then(|v| v.to_str().ok())}))
            }),
        )
        .route("/fail", post(|| async { (StatusCode::BAD_GATEWAY, "upstream down") }))
        .route(
            "/raise",
            post(|| async { Json(json!({"errorType": "Quota.Exceeded", "errorMessage": "try later"})) }),
        )
        .route("/big", post(|| async { "x".repeat(100_000) }));
    let addr = serve(app).await;
    let r = Registry::new();
    r.add_secrets([("api", "Bearer tok-123456")]);
    let tool = |name: &str, path: &str| {
        let mut p = local_only();
        p.secrets.push(SecretRef {
            name: "api".into(),
            env: None,
            header: Some("authorization".into()),
        });
        ToolSpec::new(
            name,
            InvokerSpec::Http {
                url: format!("http://{addr}{path}"),
                headers: Default::default(),
            },
        )
        .policy(p.with_max_output(50_000))
    };
    r.register(tool("fn", "/fn")).unwrap();
    r.register(tool("fail", "/fail")).unwrap();
    r.register(tool("raise", "/raise")).unwrap();
    r.register(tool("big", "/big")).unwrap();
    let out = r
        .invoke(Call::new("fn", json!({"a": 1})).tenant("acme"))
        .await
        .unwrap();
    assert_eq!(out["got"], json!({"a": 1}));
    assert_eq!(out["tenant"], json!("acme"));
    assert_eq!(
        out["auth_seen"],
        json!("***"),
        "the header arrived but its echo must be redacted"
    );
    let e = r.invoke(Call::new("fail", json!({}))).await.unwrap_err();
    assert!(
        e.to_string().contains("HTTP 502") && e.to_string().contains("upstream down"),
        "{e}"
    );
    let e = r.invoke(Call::new("raise", json!({}))).await.unwrap_err();
    assert_eq!(e.name(), "Quota.Exceeded");
    let e = r.invoke(Call::new("big", json!({}))).await.unwrap_err();
    assert_eq!(e.name(), "Tools.OutputTooLarge");
}

/// A tool with a side effect: each run appends a line to `runs` in its working directory.
fn counting_tool(dir: &std::path::Path, work: &std::path::Path) -> ToolSpec {
    let s = script(
        dir,
        "count.sh",
        "echo run >> runs; printf '{\"runs\":%s}' \"$(/usr/bin/wc -l < runs)\"",
    );
    let p = Policy::default().with_working_dir(work);
    process_tool("count", &s).policy(p)
}

fn runs(work: &std::path::Path) -> usize {
    std::fs::read_to_string(work.join("runs"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_retried_call_returns_the_remembered_result_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    {
        let store = agentry_storage::open(&url).await.unwrap();
        let r = Registry::with_memory(Arc::new(ItemMemory::new(store).await.unwrap()));
        r.register(counting_tool(dir.path(), work.path())).unwrap();
        let a = r
            .invoke(Call::new("count", json!({})).key("k1"))
            .await
            .unwrap();
        let again = r
            .invoke(Call::new("count", json!({})).key("k1"))
            .await
            .unwrap();
        assert_eq!(a, again);
        assert_eq!(runs(work.path()), 1, "a retry repeated the side effect");
        r.invoke(Call::new("count", json!({})).key("k2"))
            .await
            .unwrap();
        assert_eq!(runs(work.path()), 2);
        // Same key, other tenant: another call.
        r.invoke(Call::new("count", json!({})).key("k1").tenant("other"))
            .await
            .unwrap();
        assert_eq!(runs(work.path()), 3);
    }
    let store = agentry_storage::open(&url).await.unwrap();
    let r = Registry::with_memory(Arc::new(ItemMemory::new(store).await.unwrap()));
    r.register(counting_tool(dir.path(), work.path())).unwrap();
    let after = r
        .invoke(Call::new("count", json!({})).key("k1"))
        .await
        .unwrap();
    assert_eq!(after, json!({"runs": 1}));
    assert_eq!(
        runs(work.path()),
        3,
        "the remembered result did not survive the restart"
    );
}

#[tokio::test]
async fn metrics_count_calls_errors_and_latency_per_tool_and_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let r = Registry::new();
    r.register(echo_tool(dir.path()).input_schema(json!({"type": "object", "required": ["x"]})))
        .unwrap();
    for _ in 0..3 {
        r.invoke(Call::new("echo", json!({"x": 1})).tenant("a"))
            .await
            .unwrap();
    }
    r.invoke(Call::new("echo", json!({})).tenant("a"))
        .await
        .unwrap_err();
    r.invoke(Call::new("echo", json!({"x": 1})).tenant("b"))
        .await
        .unwrap();
    let m = r.metrics();
    let a = m.get("echo", "a").unwrap();
    assert_eq!((a.calls, a.errors), (4, 1));
    assert_eq!(a.latency_buckets.iter().sum::<u64>(), 4);
    assert!(a.latency_sum_us > 0 && a.latency_max_us > 0);
    assert_eq!(m.get("echo", "b").unwrap().calls, 1);
}

#[tokio::test]
async fn tenants_see_global_tools_and_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let r = Registry::new();
    r.register(echo_tool(dir.path())).unwrap();
    let mut own = echo_tool(dir.path()).tenant("acme").version("2");
    own.name = "pricing".into();
    r.register(own).unwrap();
    let names = |t: &str| r.list(t).into_iter().map(|s| s.name).collect::<Vec<_>>();
    assert_eq!(names("acme"), ["echo", "pricing"]);
    assert_eq!(names("globex"), ["echo"]);
    assert!(
        r.invoke(Call::new("pricing", json!({})).tenant("acme"))
            .await
            .is_ok()
    );
    let e = r
        .invoke(Call::new("pricing", json!({})).tenant("globex"))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Tools.NotFound");
}

#[tokio::test]
async fn tools_load_from_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let echo = script(dir.path(), "echo.sh", "exec /bin/cat");
    let config: ToolsConfig = serde_json::from_value(json!({
        "secrets": {"k": "v"},
        "tools": [{
            "name": "echo", "description": "echoes",
            "invoker": {"type": "process", "command": echo},
            "policy": {"timeout_ms": 5000, "secrets": [{"name": "k", "env": "K"}]},
            "approval": {"when": "always"}
        }]
    }))
    .unwrap();
    let r = Registry::new();
    r.load(&config).unwrap();
    let spec = r.spec("default", "echo").unwrap();
    assert_eq!(spec.policy.timeout_ms, 5000);
    assert!(matches!(
        r.call(Call::new("echo", json!({}))).await.unwrap(),
        Outcome::NeedsApproval(_)
    ));
    assert_eq!(
        r.invoke(Call::new("echo", json!({"a": 1})).approved())
            .await
            .unwrap(),
        json!({"a": 1})
    );
    let typo = serde_json::from_value::<ToolsConfig>(
        json!({"tools": [{"name": "x", "invoker": {"type": "process", "command": "/bin/true"}, "polcy": {}}]}),
    );
    assert!(typo.unwrap_err().to_string().contains("polcy"));
    let nope = ToolSpec::new(
        "n",
        InvokerSpec::Builtin {
            name: "missing".into(),
        },
    );
    assert!(
        r.register(nope)
            .unwrap_err()
            .to_string()
            .contains("no built-in tool named \"missing\"")
    );
}

#[tokio::test]
async fn saved_tools_are_registered_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let http = |name: &str| {
        ToolSpec::new(
            name,
            InvokerSpec::Http {
                url: "https://api.example.com/x".into(),
                headers: Default::default(),
            },
        )
        .tenant("acme")
    };
    {
        let store = agentry_storage::open(&url).await.unwrap();
        let r = Registry::with_memory(Arc::new(ItemMemory::new(store).await.unwrap()));
        r.register_saved(http("kept").description("stays"))
            .await
            .unwrap();
        r.register_saved(http("dropped")).await.unwrap();
        // Registered only in this process: not saved.
        r.register(http("fleeting")).unwrap();
        assert!(r.unregister_saved(Some("acme"), "dropped").await.unwrap());
        assert!(!r.unregister_saved(Some("acme"), "dropped").await.unwrap());
    }
    let store = agentry_storage::open(&url).await.unwrap();
    let r = Registry::with_memory(Arc::new(ItemMemory::new(store).await.unwrap()));
    assert!(r.list("acme").is_empty());
    assert_eq!(r.restore().await.unwrap(), 1);
    let names: Vec<String> = r.list("acme").into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["kept"]);
    assert_eq!(r.get(Some("acme"), "kept").unwrap().description, "stays");
    assert!(r.list("globex").is_empty());
}
