//! Agents, profiles, sessions, their live turns and the knowledge base through `/v1`, with
//! turns run by the durable engine; other users' and tenants' sessions are invisible.

use std::sync::Arc;
use std::time::Duration;

use agentry_api::LimitsConfig;
use agentry_sessions::{MemoryKnowledge, Sessions};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{TOKEN_RESOURCE, TestEngine, call, engine, state_with, token, token_of};

struct World {
    app: axum::Router,
    te: TestEngine,
    deltas: agentry_api::Deltas,
}

async fn world() -> World {
    let te = engine().await;
    let store = agentry_storage::open(&format!(
        "sqlite://{}",
        te.dir.path().join("s.db").display()
    ))
    .await
    .unwrap();
    let sessions = Sessions::open(store)
        .await
        .unwrap()
        .with_knowledge(Arc::new(MemoryKnowledge::default()))
        .with_cache(agentry_cache::open("memory://").await.unwrap());
    let deltas: agentry_api::Deltas = tokio::sync::broadcast::channel(16).0;
    let state = state_with(Some(te.engine.clone()), LimitsConfig::default())
        .with_sessions(sessions)
        .with_deltas(deltas.clone());
    World {
        app: agentry_api::router(state),
        te,
        deltas,
    }
}

/// A turn waits for its task token to be answered, then answers with what it was given.
fn machine() -> Value {
    json!({"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": TOKEN_RESOURCE,
            "Parameters": {"QueueUrl": "asks", "MessageBody": {"m.$": "$.message"},
                "TaskToken.$": "$$.Task.Token"},
            "ResultPath": "$.reply", "Next": "Done"},
        "Done": {"Type": "Pass", "Parameters": {
            "answer.$": "States.Format('the pricing strategy of {} is {}', $.reply.competitor, $.reply.strategy)",
            "artifacts": [{"key": "reports/pricing.html"}]}, "End": true}}})
}

/// Creates the state machine and the agent `pricing` in the default tenant.
async fn setup(w: &World) {
    let (s, b) = call(
        &w.app,
        "POST",
        "/v1/state-machines",
        Some(&token()),
        Some(json!({"name": "pricing-flow", "definition": machine()}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = call(
        &w.app,
        "POST",
        "/v1/agents",
        Some(&token()),
        Some(json!({"name": "pricing", "config": {"state_machine": "pricing-flow"}}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["version"], 1);
}

async fn wait_token(te: &TestEngine, n: usize) -> String {
    for _ in 0..200 {
        if let Some(t) = te.tokens.lock().unwrap().get(n - 1) {
            return t.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no task token {n}");
}

#[tokio::test]
async fn agents_and_profiles() {
    let w = world().await;
    let t = token();
    // An agent must name a state machine that exists.
    let (s, b) = call(
        &w.app,
        "POST",
        "/v1/agents",
        Some(&t),
        Some(json!({"name": "pricing", "config": {"state_machine": "nope"}}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, b) = call(
        &w.app,
        "POST",
        "/v1/agents",
        Some(&t),
        Some(json!({"name": "pricing", "config": {"state_machin": "x"}}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b["message"].as_str().unwrap().contains("state_machin"),
        "{b}"
    );
    setup(&w).await;
    // A changed configuration is a new version; both stay readable.
    let (s, b) = call(
        &w.app,
        "POST",
        "/v1/agents",
        Some(&t),
        Some(
            json!({"name": "pricing", "config": {"state_machine": "pricing-flow", "tools": ["web_fetch"]}})
                .to_string(),
        ),
    )
    .await;
    assert_eq!((s, b["version"].clone()), (StatusCode::CREATED, json!(2)));
    let (_, b) = call(&w.app, "GET", "/v1/agents/pricing", Some(&t), None).await;
    assert_eq!(b["config"]["tools"], json!(["web_fetch"]));
    let (_, b) = call(
        &w.app,
        "GET",
        "/v1/agents/pricing?version=1",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(b["config"]["tools"], json!([]));
    let (s, _) = call(&w.app, "GET", "/v1/agents/other", Some(&t), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, b) = call(&w.app, "GET", "/v1/agents", Some(&t), None).await;
    assert_eq!(b["agents"].as_array().unwrap().len(), 1);
    // Another tenant has no agents.
    let (_, b) = call(
        &w.app,
        "GET",
        "/v1/agents",
        Some(&token_of("acme", "a")),
        None,
    )
    .await;
    assert_eq!(b["agents"], json!([]));

    let (_, b) = call(&w.app, "GET", "/v1/users/me/profile", Some(&t), None).await;
    assert_eq!(b, json!({}));
    let profile = json!({"industry": "retail", "preferences": {"currency": "EUR"}});
    let (s, b) = call(
        &w.app,
        "PUT",
        "/v1/users/me/profile",
        Some(&t),
        Some(profile.to_string()),
    )
    .await;
    assert_eq!((s, b), (StatusCode::OK, profile.clone()));
    let (_, b) = call(&w.app, "GET", "/v1/users/me/profile", Some(&t), None).await;
    assert_eq!(b, profile);
    let (_, b) = call(
        &w.app,
        "GET",
        "/v1/users/me/profile",
        Some(&token_of("default", "someone-else")),
        None,
    )
    .await;
    assert_eq!(b, json!({}));
    let (s, _) = call(
        &w.app,
        "PUT",
        "/v1/users/me/profile",
        Some(&t),
        Some("[1]".into()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Reads a whole SSE body into `(event, data)` pairs.
fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            Some((event?, serde_json::from_str(&data).ok()?))
        })
        .collect()
}

#[tokio::test]
async fn a_session_runs_turns_streams_them_and_files_what_they_found() {
    let w = world().await;
    setup(&w).await;
    let t = token();
    let (s, _) = call(
        &w.app,
        "POST",
        "/v1/sessions",
        Some(&t),
        Some(json!({"agent": "nobody"}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, session) = call(
        &w.app,
        "POST",
        "/v1/sessions",
        Some(&t),
        Some(json!({"agent": "pricing", "title": "Q3 pricing"}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    assert_eq!(session["status"], "NEW");
    let id = session["id"].as_str().unwrap().to_string();
    let msgs = format!("/v1/sessions/{id}/messages");

    let (s, _) = call(
        &w.app,
        "POST",
        &msgs,
        Some(&t),
        Some(json!({"message": " "}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, turn) = call(
        &w.app,
        "POST",
        &msgs,
        Some(&t),
        Some(json!({"message": "What does Contoso charge?"}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{turn}");
    assert_eq!(
        (turn["n"].clone(), turn["status"].clone()),
        (json!(1), json!("RUNNING"))
    );
    // The agent's default policy rejects a message while a turn runs.
    let (s, b) = call(
        &w.app,
        "POST",
        &msgs,
        Some(&t),
        Some(json!({"message": "and Fabrikam?"}).to_string()),
    )
    .await;
    assert_eq!(
        (s, b["error"].clone()),
        (StatusCode::CONFLICT, json!("SessionBusy"))
    );
    let (_, b) = call(&w.app, "GET", &format!("/v1/sessions/{id}"), Some(&t), None).await;
    assert_eq!(b["status"], "RUNNING");
    // The running turn's working context, from the cache.
    assert_eq!(b["context"]["status"], "RUNNING", "{b}");
    assert_eq!(b["context"]["turn"], 1, "{b}");

    // Follow the turn live while it is answered.
    let app = w.app.clone();
    let (path, tk) = (format!("/v1/sessions/{id}/events"), t.clone());
    let follow = tokio::spawn(async move {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let req = axum::http::Request::get(path)
            .header("authorization", format!("Bearer {tk}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = tokio::time::timeout(Duration::from_secs(30), resp.into_body().collect())
            .await
            .expect("the stream ends after the turn")
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    });
    let task_token = wait_token(&w.te, 1).await;
    // Model output streamed during the turn reaches its followers (and only this turn's).
    while w.deltas.receiver_count() == 0 {
        tokio::task::yield_now().await;
    }
    let arn = turn["execution_arn"].as_str().unwrap().to_string();
    w.deltas
        .send((
            "arn:of:another:execution".into(),
            json!({"text": "not this turn's"}),
        ))
        .unwrap();
    w.deltas
        .send((arn, json!({"text": "Contoso prices per seat"})))
        .unwrap();
    w.te.engine
        .send_task_success(
            &task_token,
            &json!({"competitor": "Contoso", "strategy": "per-seat tiers"}).to_string(),
        )
        .await
        .unwrap();
    let events = sse_events(&follow.await.unwrap());
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"turn_started"), "{kinds:?}");
    assert!(kinds.contains(&"TaskScheduled"), "{kinds:?}");
    assert!(kinds.contains(&"ExecutionSucceeded"), "{kinds:?}");
    let ended = kinds
        .iter()
        .position(|k| *k == "turn_ended")
        .expect("turn_ended");
    assert!(
        ended
            > kinds
                .iter()
                .position(|k| *k == "ExecutionSucceeded")
                .unwrap()
    );
    let (_, answer) = events.iter().find(|(k, _)| k == "answer").expect("answer");
    assert_eq!(
        answer["text"],
        "the pricing strategy of Contoso is per-seat tiers"
    );

    let (_, b) = call(&w.app, "GET", &format!("/v1/sessions/{id}"), Some(&t), None).await;
    assert_eq!(b["status"], "SUCCEEDED", "{b}");
    assert_eq!(b["title"], "Q3 pricing");
    assert_eq!(b["artifacts"], json!([{"key": "reports/pricing.html"}]));
    assert!(
        b["tools_used"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_str().unwrap().contains("sqs:sendMessage")),
        "{b}"
    );
    assert_eq!(b["turns"][0]["message"], "What does Contoso charge?");

    // What the turn found is searchable, by agent and time.
    let (s, b) = call(
        &w.app,
        "GET",
        "/v1/knowledge?q=Contoso%20strategy",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let hits = b["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{b}");
    assert!(hits[0]["text"].as_str().unwrap().contains("per-seat tiers"));
    assert_eq!(hits[0]["session"], id.as_str());
    let (_, b) = call(
        &w.app,
        "GET",
        "/v1/knowledge?q=Contoso&agent=pricing&since=1d",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(b["hits"].as_array().unwrap().len(), 1);
    let (_, b) = call(
        &w.app,
        "GET",
        "/v1/knowledge?q=Contoso&agent=other",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(b["hits"], json!([]));
    let future = agentry_api_time_ms() + 3_600_000;
    let (_, b) = call(
        &w.app,
        "GET",
        &format!("/v1/knowledge?q=Contoso&since={future}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(b["hits"], json!([]));
    let (s, _) = call(
        &w.app,
        "GET",
        "/v1/knowledge?q=Contoso&since=lately",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call(&w.app, "GET", "/v1/knowledge", Some(&t), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Another user of the tenant finds nothing of it.
    let (_, b) = call(
        &w.app,
        "GET",
        "/v1/knowledge?q=Contoso",
        Some(&token_of("default", "eve")),
        None,
    )
    .await;
    assert_eq!(b["hits"], json!([]));

    // The next message runs as turn 2, with turn 1 in its history.
    let (s, turn) = call(
        &w.app,
        "POST",
        &msgs,
        Some(&t),
        Some(json!({"message": "and Fabrikam?"}).to_string()),
    )
    .await;
    assert_eq!((s, turn["n"].clone()), (StatusCode::ACCEPTED, json!(2)));
}

fn agentry_api_time_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn listing_pages_newest_first_and_only_the_callers_own() {
    let w = world().await;
    setup(&w).await;
    let t = token();
    let mut ids = Vec::new();
    for title in ["one", "two", "three"] {
        let (_, b) = call(
            &w.app,
            "POST",
            "/v1/sessions",
            Some(&t),
            Some(json!({"agent": "pricing", "title": title}).to_string()),
        )
        .await;
        ids.push(b["id"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (_, p1) = call(&w.app, "GET", "/v1/sessions?limit=2", Some(&t), None).await;
    let titles: Vec<&str> = p1["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["three", "two"]);
    let cursor = p1["cursor"].as_str().expect("a next page");
    let (_, p2) = call(
        &w.app,
        "GET",
        &format!("/v1/sessions?user=me&limit=2&cursor={}", super::enc(cursor)),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(p2["sessions"][0]["title"], "one");
    assert_eq!(p2["sessions"].as_array().unwrap().len(), 1);
    let (s, _) = call(&w.app, "GET", "/v1/sessions?limit=0", Some(&t), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call(&w.app, "GET", "/v1/sessions?user=eve", Some(&t), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Another user of the tenant, and a user of another tenant, see none of them: their ids
    // answer exactly as ids that do not exist.
    let unknown = "/v1/sessions/00000000-0000-4000-8000-000000000000";
    for other in [token_of("default", "eve"), token_of("acme", "tester")] {
        let (_, b) = call(&w.app, "GET", "/v1/sessions", Some(&other), None).await;
        assert_eq!(b["sessions"], json!([]));
        let (s0, b0) = call(&w.app, "GET", unknown, Some(&other), None).await;
        assert_eq!(s0, StatusCode::NOT_FOUND);
        let (s, b) = call(
            &w.app,
            "GET",
            &format!("/v1/sessions/{}", ids[0]),
            Some(&other),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(
            b["message"].as_str().unwrap().replace(&ids[0], "ID"),
            b0["message"]
                .as_str()
                .unwrap()
                .replace("00000000-0000-4000-8000-000000000000", "ID")
        );
        let (s, _) = call(
            &w.app,
            "POST",
            &format!("/v1/sessions/{}/messages", ids[0]),
            Some(&other),
            Some(json!({"message": "hi"}).to_string()),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = call(
            &w.app,
            "GET",
            &format!("/v1/sessions/{}/events", ids[0]),
            Some(&other),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    let (s, _) = call(&w.app, "GET", "/v1/sessions/not-a-uuid", Some(&t), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_a_sessions_service_the_routes_say_so() {
    let te = engine().await;
    let app = agentry_api::router(state_with(Some(te.engine.clone()), LimitsConfig::default()));
    let (s, b) = call(&app, "GET", "/v1/sessions", Some(&token()), None).await;
    assert_eq!(
        (s, b["error"].clone()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!("SessionsUnavailable")
        )
    );
}
