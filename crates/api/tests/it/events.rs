//! Live history over Server-Sent Events and WebSocket on a real socket: a client that reads
//! part of the stream, disconnects and reconnects from the last id it saw gets the whole
//! history, each event once.

use std::time::Duration;

use agentry_api::LimitsConfig;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};

use super::{enc, engine, serve, state_with, token};

/// One parsed SSE event.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    id: u64,
    event: String,
    data: Value,
}

/// Reads SSE events from `resp`; stops after `max` events or when the stream ends.
async fn read_sse(resp: &mut reqwest::Response, max: usize, buf: &mut String) -> (Vec<Sse>, bool) {
    let mut out = Vec::new();
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (None, String::new(), String::new());
            for line in block.lines() {
                let field = |p: &str| {
                    line.strip_prefix(p)
                        .map(|v| v.strip_prefix(' ').unwrap_or(v).to_string())
                };
                if let Some(v) = field("id:") {
                    id = v.parse().ok();
                } else if let Some(v) = field("event:") {
                    event = v;
                } else if let Some(v) = field("data:") {
                    data.push_str(&v);
                }
            }
            if let Some(id) = id {
                out.push(Sse {
                    id,
                    event,
                    data: serde_json::from_str(&data).unwrap(),
                });
                if out.len() == max {
                    return (out, false);
                }
            }
        }
        match tokio::time::timeout(Duration::from_secs(20), resp.chunk())
            .await
            .expect("stream stalled")
            .unwrap()
        {
            Some(bytes) => buf.push_str(&String::from_utf8_lossy(&bytes)),
            None => return (out, true),
        }
    }
}

const STEPS: &str = r#"{"StartAt": "P1", "States": {
  "P1": {"Type": "Pass", "Next": "W1"},
  "W1": {"Type": "Wait", "Seconds": 1, "Next": "P2"},
  "P2": {"Type": "Pass", "Next": "W2"},
  "W2": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
  "Done": {"Type": "Succeed"}}}"#;

#[tokio::test]
async fn sse_resumes_from_last_event_id_without_gap_or_duplicate() {
    let e = engine().await;
    let served = serve(state_with(
        Some(e.engine.clone()),
        LimitsConfig {
            events_poll_ms: 20,
            ..Default::default()
        },
    ))
    .await;
    let base = format!("http://{}", served.addr);
    let client = reqwest::Client::new();
    let t = token();
    let def: Value = serde_json::from_str(STEPS).unwrap();
    let r = client
        .post(format!("{base}/v1/state-machines"))
        .bearer_auth(&t)
        .body(json!({"name": "steps", "definition": def}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(format!("{base}/v1/state-machines/steps/executions"))
        .bearer_auth(&t)
        .body("{}")
        .send()
        .await
        .unwrap();
    let arn = r.json::<Value>().await.unwrap()["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("{base}/v1/executions/{}/events", enc(&arn));

    let mut first = client.get(&url).bearer_auth(&t).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "text/event-stream");
    let mut buf = String::new();
    let (head, ended) = read_sse(&mut first, 4, &mut buf).await;
    assert!(!ended);
    drop(first);
    let last = head.last().unwrap().id;
    let mut second = client
        .get(&url)
        .bearer_auth(&t)
        .header("Last-Event-ID", last.to_string())
        .send()
        .await
        .unwrap();
    let (tail, ended) = read_sse(&mut second, usize::MAX, &mut String::new()).await;
    assert!(ended, "the stream ends after the final event");

    let streamed: Vec<Sse> = head.into_iter().chain(tail).collect();
    let r = client
        .get(format!(
            "{base}/v1/executions/{}/history?limit=1000",
            enc(&arn)
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    let history = r.json::<Value>().await.unwrap()["events"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(history.last().unwrap()["type"], "ExecutionSucceeded");
    let expected: Vec<Sse> = history
        .iter()
        .map(|e| Sse {
            id: e["id"].as_u64().unwrap(),
            event: e["type"].as_str().unwrap().to_string(),
            data: e.clone(),
        })
        .collect();
    assert_eq!(streamed, expected);

    // After the end, resuming from the final id ends at once; ?access_token= works for
    // clients that cannot set headers.
    let mut done = client
        .get(format!("{url}?access_token={t}"))
        .header("Last-Event-ID", expected.last().unwrap().id.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let (rest, ended) = read_sse(&mut done, usize::MAX, &mut String::new()).await;
    assert!(ended && rest.is_empty(), "{rest:?}");
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn websocket_resumes_with_after() {
    let e = engine().await;
    let served = serve(state_with(
        Some(e.engine.clone()),
        LimitsConfig {
            events_poll_ms: 20,
            ..Default::default()
        },
    ))
    .await;
    let base = format!("http://{}", served.addr);
    let client = reqwest::Client::new();
    let t = token();
    let def: Value = serde_json::from_str(STEPS).unwrap();
    client
        .post(format!("{base}/v1/state-machines"))
        .bearer_auth(&t)
        .body(json!({"name": "steps", "definition": def}).to_string())
        .send()
        .await
        .unwrap();
    let r = client
        .post(format!("{base}/v1/state-machines/steps/executions"))
        .bearer_auth(&t)
        .body("{}")
        .send()
        .await
        .unwrap();
    let arn = r.json::<Value>().await.unwrap()["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let ws_url = |after: u64| {
        format!(
            "ws://{}/v1/executions/{}/events/ws?after={after}&access_token={t}",
            served.addr,
            enc(&arn)
        )
    };

    let read = |url: String, max: usize| async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut out = Vec::new();
        let mut closed = false;
        while out.len() < max {
            match tokio::time::timeout(Duration::from_secs(20), ws.next())
                .await
                .expect("stalled")
            {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                    out.push(serde_json::from_str::<Value>(&t).unwrap())
                }
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | None => {
                    closed = true;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("{e}"),
            }
        }
        let _ = ws.close(None).await;
        let _ = ws.flush().await;
        (out, closed)
    };
    let (head, closed) = read(ws_url(0), 3).await;
    assert!(!closed);
    let last = head.last().unwrap()["id"].as_u64().unwrap();
    let (tail, closed) = read(ws_url(last), usize::MAX).await;
    assert!(closed, "closed after the final event");
    let ids: Vec<u64> = head
        .iter()
        .chain(&tail)
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    // The handshake is also accepted on the SSE path itself.
    let same_path = format!(
        "ws://{}/v1/executions/{}/events?access_token={t}",
        served.addr,
        enc(&arn)
    );
    let (whole, closed) = read(same_path, usize::MAX).await;
    assert!(closed);
    let whole_ids: Vec<u64> = whole.iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(whole_ids, ids);
    let history = e
        .engine
        .for_account("000000000000")
        .unwrap()
        .history(&arn)
        .await
        .unwrap();
    let expected: Vec<u64> = history.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, expected);
    let last_msg = tail.last().unwrap();
    assert_eq!(last_msg["type"], "ExecutionSucceeded");
    assert_eq!(last_msg["event"]["type"], "ExecutionSucceeded");
}

#[tokio::test]
async fn steps_committed_on_this_node_wake_the_stream_without_polling() {
    let e = engine().await;
    // A poll interval far longer than the test: only the engine's commit notice can move it.
    let limits = LimitsConfig {
        events_poll_ms: 600_000,
        ..Default::default()
    };
    let served = serve(state_with(Some(e.engine.clone()), limits)).await;
    let base = format!("http://{}", served.addr);
    let client = reqwest::Client::new();
    let t = token();
    let def: Value = serde_json::from_str(STEPS).unwrap();
    client
        .post(format!("{base}/v1/state-machines"))
        .bearer_auth(&t)
        .body(json!({"name": "steps", "definition": def}).to_string())
        .send()
        .await
        .unwrap();
    let r = client
        .post(format!("{base}/v1/state-machines/steps/executions"))
        .bearer_auth(&t)
        .body("{}")
        .send()
        .await
        .unwrap();
    let arn = r.json::<Value>().await.unwrap()["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let started = std::time::Instant::now();
    let mut resp = client
        .get(format!("{base}/v1/executions/{}/events", enc(&arn)))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    let (all, ended) = read_sse(&mut resp, usize::MAX, &mut String::new()).await;
    assert!(ended);
    assert_eq!(all.last().unwrap().event, "ExecutionSucceeded");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_node_that_runs_nothing_follows_by_polling() {
    let e = engine().await;
    // The gateway's engine shares the store but runs no loops: every step after the start is
    // committed by the other node, so only reading the store finds the events.
    let quiet = super::peer(&e).await;
    let limits = LimitsConfig {
        events_poll_ms: 50,
        ..Default::default()
    };
    let served = serve(state_with(Some(quiet), limits)).await;
    let base = format!("http://{}", served.addr);
    let client = reqwest::Client::new();
    let t = token();
    let def: Value = serde_json::from_str(STEPS).unwrap();
    client
        .post(format!("{base}/v1/state-machines"))
        .bearer_auth(&t)
        .body(json!({"name": "steps", "definition": def}).to_string())
        .send()
        .await
        .unwrap();
    let r = client
        .post(format!("{base}/v1/state-machines/steps/executions"))
        .bearer_auth(&t)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let arn = r.json::<Value>().await.unwrap()["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let mut resp = client
        .get(format!("{base}/v1/executions/{}/events", enc(&arn)))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    let (all, ended) = read_sse(&mut resp, usize::MAX, &mut String::new()).await;
    assert!(ended);
    let types: Vec<&str> = all.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(types.first(), Some(&"ExecutionStarted"));
    assert_eq!(types.last(), Some(&"ExecutionSucceeded"));
    let ids: Vec<u64> = all.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=all.len() as u64).collect::<Vec<_>>());
}

/// `(event, id, data)` of every SSE event in a whole body, with or without an id.
fn all_sse(body: &str) -> Vec<(String, Option<u64>, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let (mut event, mut id, mut data) = (None, None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            Some((event?, id, serde_json::from_str(&data).ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_output_streams_between_the_history_events_it_happened_between() {
    let e = engine().await;
    let deltas: agentry_api::Deltas = tokio::sync::broadcast::channel(16).0;
    let app = agentry_api::router(
        state_with(Some(e.engine.clone()), LimitsConfig::default()).with_deltas(deltas.clone()),
    );
    let t = token();
    let def = json!({"StartAt": "Ask", "States": {"Ask": {"Type": "Task",
        "Resource": super::TOKEN_RESOURCE,
        "Parameters": {"QueueUrl": "q", "MessageBody": {"t.$": "$$.Task.Token"}}, "End": true}}});
    super::call(
        &app,
        "POST",
        "/v1/state-machines",
        Some(&t),
        Some(json!({"name": "ask", "definition": def}).to_string()),
    )
    .await;
    let (_, v) = super::call(
        &app,
        "POST",
        "/v1/state-machines/ask/executions",
        Some(&t),
        None,
    )
    .await;
    let arn = v["executionArn"].as_str().unwrap().to_string();
    let follow = {
        let (app, path, t) = (
            app.clone(),
            format!("/v1/executions/{}/events", enc(&arn)),
            t.clone(),
        );
        tokio::spawn(async move {
            use http_body_util::BodyExt;
            use tower::ServiceExt;
            let req = axum::http::Request::get(path)
                .header("authorization", format!("Bearer {t}"))
                .body(axum::body::Body::empty())
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let bytes = tokio::time::timeout(Duration::from_secs(30), resp.into_body().collect())
                .await
                .expect("the stream ends with the execution")
                .unwrap()
                .to_bytes();
            String::from_utf8(bytes.to_vec()).unwrap()
        })
    };
    let token = loop {
        if let Some(t) = e.tokens.lock().unwrap().first().cloned() {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    while deltas.receiver_count() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    deltas
        .send((
            "arn:of:another:execution".into(),
            json!({"text": "not this one's"}),
        ))
        .unwrap();
    deltas
        .send((arn.clone(), json!({"text": "Northwind charges $29"})))
        .unwrap();
    e.engine.send_task_success(&token, "{}").await.unwrap();
    let events = all_sse(&follow.await.unwrap());
    let kinds: Vec<&str> = events.iter().map(|(k, _, _)| k.as_str()).collect();
    let delta = kinds
        .iter()
        .position(|k| *k == "llm_delta")
        .expect("a delta");
    assert_eq!(
        kinds.iter().filter(|k| **k == "llm_delta").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(events[delta].2, json!({"text": "Northwind charges $29"}));
    assert_eq!(events[delta].1, None, "deltas carry no history id");
    let scheduled = kinds.iter().position(|k| *k == "TaskScheduled").unwrap();
    let succeeded = kinds
        .iter()
        .position(|k| *k == "ExecutionSucceeded")
        .unwrap();
    assert!(scheduled < delta && delta < succeeded, "{kinds:?}");
    // The history events are all there, in order, with their ids.
    let ids: Vec<u64> = events.iter().filter_map(|(_, id, _)| *id).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
}
