//! The Anthropic provider against a local Messages API server.

use std::time::Duration;

use agentry_llm::anthropic::AnthropicProvider;
use agentry_llm::*;
use serde_json::json;

use crate::support::*;

fn request() -> ConverseRequest {
    serde_json::from_value(json!({
        "modelId": "claude-sonnet-4-20250514",
        "system": [{"text": "Use tools when needed."}],
        "messages": [
            {"role": "user", "content": [{"text": "What's the weather in San Francisco?"},
                {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}]},
            {"role": "assistant", "content": [{"text": "Let me check."},
                {"toolUse": {"toolUseId": "toolu_01A", "name": "get_weather", "input": {"location": "SF"}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "toolu_01A",
                "content": [{"text": "unknown city"}], "status": "error"}}]}
        ],
        "inferenceConfig": {"maxTokens": 1024, "stopSequences": ["\n\nHuman:"]},
        "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "description": "Get the current weather",
            "inputSchema": {"json": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}}],
            "toolChoice": {"tool": {"name": "get_weather"}}}
    }))
    .unwrap()
}

fn provider(server: &Server) -> AnthropicProvider {
    AnthropicProvider::new(&server.url, "sk-ant-test".into(), Duration::from_secs(10)).unwrap()
}

#[tokio::test]
async fn converse_sends_a_messages_body_and_reads_tool_use() {
    let server = Server::start(vec![Reply::json(
        200,
        json!({"id": "msg_01Aq9w938a90dw8q", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-20250514",
            "content": [{"type": "text", "text": "I'll use the full name."},
                {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {"location": "San Francisco, CA"}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 472, "output_tokens": 89, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}),
    )])
    .await;
    let out = provider(&server).converse(&request()).await.unwrap();
    assert_eq!(out.stop_reason, StopReason::ToolUse);
    assert_eq!(out.text(), "I'll use the full name.");
    assert_eq!(out.usage, TokenUsage::new(472, 89));
    assert_eq!(
        out.message().tool_uses().next().unwrap().input,
        json!({"location": "San Francisco, CA"})
    );

    let seen = &server.requests()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    let body = seen.json();
    assert_eq!(body["model"], "claude-sonnet-4-20250514");
    assert_eq!(body["max_tokens"], 1024);
    assert_eq!(body["system"], "Use tools when needed.");
    assert_eq!(body["stop_sequences"], json!(["\n\nHuman:"]));
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );
    assert_eq!(
        body["tools"][0]["input_schema"]["required"],
        json!(["location"])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "What's the weather in San Francisco?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"location": "SF"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A",
                "content": [{"type": "text", "text": "unknown city"}], "is_error": true}]}
        ])
    );
}

fn event(name: &str, data: serde_json::Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn stream_body(with_error: bool) -> String {
    let mut s = String::new();
    s += &event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-20250514", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 472, "output_tokens": 2}}}),
    );
    s += &event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    s += &event("ping", json!({"type": "ping"}));
    s += &event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Okay, let"}}),
    );
    s += &event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "'s check."}}),
    );
    if with_error {
        s += &event(
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        );
        return s;
    }
    s += &event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    );
    s += &event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}}),
    );
    s += &event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
    );
    s += &event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"location\":"}}),
    );
    s += &event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": " \"San Francisco, CA\"}"}}),
    );
    s += &event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 1}),
    );
    s += &event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 89}}),
    );
    s += &event("message_stop", json!({"type": "message_stop"}));
    s
}

#[tokio::test]
async fn stream_maps_every_event_type() {
    let server = Server::start(vec![Reply::sse(&stream_body(false))]).await;
    let p = provider(&server);
    let (events, err) = drain(p.converse_stream(&request()).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(server.requests()[0].json()["stream"], true);
    let json: Vec<_> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(json[0], json!({"messageStart": {"role": "assistant"}}));
    assert_eq!(
        json[1],
        json!({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Okay, let"}}})
    );
    assert_eq!(
        json[3],
        json!({"contentBlockStop": {"contentBlockIndex": 0}})
    );
    assert_eq!(
        json[4],
        json!({"contentBlockStart": {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather"}}}})
    );
    assert_eq!(
        json[json.len() - 2],
        json!({"messageStop": {"stopReason": "tool_use"}})
    );
    assert_eq!(
        json[json.len() - 1]["metadata"]["usage"],
        json!({"inputTokens": 472, "outputTokens": 89, "totalTokens": 561})
    );

    let out = collect_stream("anthropic", p.converse_stream(&request()).await.unwrap())
        .await
        .unwrap();
    assert_eq!(out.text(), "Okay, let's check.");
    assert_eq!(
        out.message().tool_uses().next().unwrap().input,
        json!({"location": "San Francisco, CA"})
    );
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_it_with_a_named_error() {
    let server = Server::start(vec![Reply::sse(&stream_body(true))]).await;
    let (events, err) = drain(provider(&server).converse_stream(&request()).await.unwrap()).await;
    assert_eq!(events.len(), 3);
    let err = err.unwrap();
    assert_eq!(err.name(), "Llm.Throttled");
    assert!(err.to_string().contains("Overloaded"), "{err}");
}

#[tokio::test]
async fn error_answers_map_to_named_errors() {
    let e = |t: &str, m: &str| json!({"type": "error", "error": {"type": t, "message": m}});
    let server = Server::start(vec![
        Reply::json(
            429,
            e(
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            ),
        ),
        Reply::json(529, e("overloaded_error", "Overloaded")),
        Reply::json(
            400,
            e(
                "invalid_request_error",
                "prompt is too long: 215417 tokens > 200000 maximum",
            ),
        ),
        Reply::json(401, e("authentication_error", "invalid x-api-key")),
        Reply::json(404, e("not_found_error", "model: claude-nope")),
        Reply::json(
            400,
            e(
                "invalid_request_error",
                "messages.1.content.0.tool_use.input: Field required",
            ),
        ),
        Reply::json(500, e("api_error", "Internal server error")),
    ])
    .await;
    let p = provider(&server);
    let mut got = Vec::new();
    for _ in 0..7 {
        got.push(p.converse(&request()).await.unwrap_err().name());
    }
    assert_eq!(
        got,
        [
            "Llm.Throttled",
            "Llm.Throttled",
            "Llm.ContextWindowExceeded",
            "Llm.AuthFailed",
            "Llm.ModelNotFound",
            "Llm.InvalidRequest",
            "Llm.ServiceUnavailable"
        ]
    );
}
