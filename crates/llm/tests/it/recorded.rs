//! Recorded exchanges: hand-written files, replay, the record → replay round trip, and the
//! error for a request nobody recorded.

use std::sync::Arc;
use std::time::Duration;

use agentry_llm::openai::OpenAiProvider;
use agentry_llm::recorded::request_digest;
use agentry_llm::*;
use serde_json::json;

use crate::support::*;

const HAND_WRITTEN: &str = r#"[
  {"request": {"modelId": "demo", "messages": [{"role": "user", "content": [{"text": "Research competitor pricing"}]}]},
   "response": {"toolUse": [{"name": "web_search", "input": {"query": "competitor pricing 2026"}}]}},
  {"request": {"modelId": "demo"},
   "response": {"text": "I can only talk about pricing."}},
  {"request": {"modelId": "demo", "system": [{"text": "Be brief."}],
               "messages": [{"role": "user", "content": [{"text": "  Research competitor pricing\n"}]}]},
   "response": {"text": "Brief: search first.", "usage": {"inputTokens": 12, "outputTokens": 4, "totalTokens": 16}}}
]"#;

#[tokio::test]
async fn hand_written_short_forms_play_back_most_specific_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.json");
    std::fs::write(&path, HAND_WRITTEN).unwrap();
    let p = RecordedProvider::open(&path).unwrap();

    let first = p
        .converse(&ConverseRequest::user(
            "demo",
            "Research competitor pricing",
        ))
        .await
        .unwrap();
    assert_eq!(first.stop_reason, StopReason::ToolUse);
    let t = first.message().tool_uses().next().unwrap();
    assert_eq!(
        (t.name.as_str(), &t.input),
        ("web_search", &json!({"query": "competitor pricing 2026"}))
    );
    assert!(!t.tool_use_id.is_empty());

    // The entry naming the system prompt too is more specific; text is compared trimmed.
    let brief = p
        .converse(
            &ConverseRequest::user("demo", "Research competitor pricing").with_system("Be brief."),
        )
        .await
        .unwrap();
    assert_eq!(brief.text(), "Brief: search first.");
    assert_eq!(brief.usage.total_tokens, 16);

    // Anything else for the model falls to the entry that gives only the model.
    let other = p
        .converse(&ConverseRequest::user("demo", "Tell me a joke"))
        .await
        .unwrap();
    assert_eq!(
        (other.text().as_str(), &other.stop_reason),
        ("I can only talk about pricing.", &StopReason::EndTurn)
    );

    // Streams replay the same answer as events.
    let s = p
        .converse_stream(&ConverseRequest::user(
            "demo",
            "Research competitor pricing",
        ))
        .await
        .unwrap();
    assert_eq!(collect_stream("recorded", s).await.unwrap(), first);
}

#[tokio::test]
async fn a_request_nobody_recorded_fails_naming_the_model_and_its_digest() {
    let p = RecordedProvider::from_exchanges(
        serde_json::from_value(json!([{"request": {"modelId": "demo", "messages": [{"role": "user", "content": [{"text": "hi"}]}]}, "response": {"text": "hello"}}])).unwrap(),
        "demo.jsonl",
    )
    .unwrap();
    let req = ConverseRequest::user(
        "other-model",
        "What did we find about competitor X last month?",
    );
    let err = p.converse(&req).await.unwrap_err();
    assert_eq!(err.name(), "Llm.NoRecording");
    let msg = err.to_string();
    assert!(msg.contains("\"other-model\""), "{msg}");
    assert!(msg.contains(&request_digest(&req)), "{msg}");
    assert!(
        msg.contains("What did we find about competitor X last month?"),
        "{msg}"
    );
    assert!(msg.contains("demo.jsonl"), "{msg}");
    assert!(request_digest(&req).starts_with("sha256:") && request_digest(&req).len() == 19);
    assert_eq!(
        p.converse_stream(&req).await.err().unwrap().name(),
        "Llm.NoRecording"
    );
}

#[tokio::test]
async fn bad_recording_files_say_where() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, "// a comment\n{\"request\": {}, \"response\": {\"text\": \"ok\"}}\n{\"request\": {}, \"respons\": {}}\n").unwrap();
    let e = RecordedProvider::open(&path).err().unwrap();
    assert!(e.to_string().contains("line 3"), "{e}");
    std::fs::write(
        &path,
        "{\"request\": {}, \"response\": {\"txt\": \"ok\"}}\n",
    )
    .unwrap();
    let e = RecordedProvider::open(&path).err().unwrap();
    assert!(e.to_string().contains("unknown field \"txt\""), "{e}");
}

#[tokio::test]
async fn recording_a_real_provider_then_replaying_it_without_the_server() {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let sse = chunk(json!({"role": "assistant", "content": "Streamed "}), None)
        + &chunk(json!({"content": "answer"}), None)
        + &chunk(json!({}), Some("stop"))
        + &format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})
        )
        + "data: [DONE]\n\n";
    let server = Server::start(vec![
        Reply::json(200, json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Recorded answer"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}})),
        Reply::sse(&sse),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.jsonl");
    let real = Arc::new(
        OpenAiProvider::new(&format!("{}/v1", server.url), None, Duration::from_secs(5)).unwrap(),
    );
    let recorder = RecordingProvider::new(real, &file);
    let plain = ConverseRequest::user("m", "first question").with_max_tokens(100);
    let streamed = ConverseRequest::user("m", "second question");
    let live = recorder.converse(&plain).await.unwrap();
    let live_stream = collect_stream("openai", recorder.converse_stream(&streamed).await.unwrap())
        .await
        .unwrap();
    assert_eq!(live_stream.text(), "Streamed answer");
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert!(lines.contains(&request_digest(&plain)));
    drop(server);

    let replay = RecordedProvider::open(&file).unwrap();
    let again = replay.converse(&plain).await.unwrap();
    assert_eq!(again.output, live.output);
    assert_eq!(again.usage, live.usage);
    let again_stream = replay.converse(&streamed).await.unwrap();
    assert_eq!(again_stream.text(), "Streamed answer");
    assert_eq!(again_stream.usage, TokenUsage::new(9, 2));
    // The recording matches on parameters too.
    let e = replay
        .converse(&ConverseRequest::user("m", "first question").with_max_tokens(200))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Llm.NoRecording");
}
