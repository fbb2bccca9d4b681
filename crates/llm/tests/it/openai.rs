//! The OpenAI-compatible provider against a local Chat Completions server.

use std::time::Duration;

use agentry_llm::openai::OpenAiProvider;
use agentry_llm::*;
use serde_json::json;

use crate::support::*;

fn weather_request() -> ConverseRequest {
    serde_json::from_value(json!({
        "modelId": "gpt-4o-mini",
        "system": [{"text": "You are terse."}],
        "messages": [
            {"role": "user", "content": [{"text": "Weather in Paris?"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "call_prev", "name": "get_weather", "input": {"city": "Lyon"}}}]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "call_prev", "content": [{"json": {"temp_c": 18}}], "status": "success"}},
                {"text": "Now Paris."}
            ]}
        ],
        "inferenceConfig": {"maxTokens": 256, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
        "toolConfig": {
            "tools": [{"toolSpec": {"name": "get_weather", "description": "Current weather",
                "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}}],
            "toolChoice": {"auto": {}}
        }
    }))
    .unwrap()
}

fn provider(server: &Server) -> OpenAiProvider {
    OpenAiProvider::new(
        &format!("{}/v1", server.url),
        Some("sk-test".into()),
        Duration::from_secs(10),
    )
    .unwrap()
}

#[tokio::test]
async fn converse_translates_messages_tools_and_tool_calls() {
    let server = Server::start(vec![Reply::json(
        200,
        json!({
            "id": "chatcmpl-AB1xYz", "object": "chat.completion", "created": 1727000000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "call_Xk2", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}],
                "refusal": null}, "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99},
            "system_fingerprint": "fp_0ba0d124f1"
        }),
    )])
    .await;
    let out = provider(&server)
        .converse(&weather_request())
        .await
        .unwrap();
    assert_eq!(out.stop_reason, StopReason::ToolUse);
    assert_eq!(out.usage, TokenUsage::new(82, 17));
    let uses: Vec<_> = out.message().tool_uses().collect();
    assert_eq!(uses.len(), 1);
    assert_eq!(uses[0].tool_use_id, "call_Xk2");
    assert_eq!(uses[0].input, json!({"city": "Paris"}));

    let seen = &server.requests()[0];
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(seen.header("authorization"), Some("Bearer sk-test"));
    let body = seen.json();
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_prev", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Lyon\"}"}}]},
            {"role": "tool", "tool_call_id": "call_prev", "content": "{\"temp_c\":18}"},
            {"role": "user", "content": "Now Paris."}
        ])
    );
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["stop"], json!(["END"]));
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(
        body["tools"][0],
        json!({"type": "function", "function": {"name": "get_weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
    );
    assert!(body.get("stream").is_none());
}

fn chunk(delta: serde_json::Value, finish: Option<&str>) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1727000001,
            "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_0ba0d124f1",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            "usage": null})
    )
}

#[tokio::test]
async fn stream_assembles_text_and_tool_call_argument_deltas() {
    let mut sse = String::new();
    sse += &chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    );
    sse += &chunk(json!({"content": "Checking"}), None);
    sse += &chunk(json!({"content": " now."}), None);
    sse += &chunk(
        json!({"tool_calls": [{"index": 0, "id": "call_A", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        None,
    );
    sse += &chunk(
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ci"}}]}),
        None,
    );
    sse += &chunk(
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "ty\": \"Paris\"}"}}]}),
        None,
    );
    sse += &chunk(
        json!({"tool_calls": [{"index": 1, "id": "call_B", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]}),
        None,
    );
    sse += &chunk(json!({}), Some("tool_calls"));
    sse += &format!(
        "data: {}\r\n\r\n",
        json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1727000001,
            "model": "gpt-4o-mini-2024-07-18", "choices": [],
            "usage": {"prompt_tokens": 82, "completion_tokens": 40, "total_tokens": 122}})
    );
    sse += "data: [DONE]\n\n";
    let server = Server::start(vec![Reply::sse(&sse)]).await;
    let p = provider(&server);
    let (events, err) = drain(p.converse_stream(&weather_request()).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    let body = server.requests()[0].json();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    // The text block closes when the first tool call starts; tool blocks have starts.
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            serde_json::to_value(e)
                .unwrap()
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .clone()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "contentBlockStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStart",
            "contentBlockDelta",
            "contentBlockStop",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    assert_eq!(
        serde_json::to_value(&events[5]).unwrap(),
        json!({"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"ci"}}}})
    );
    let out = collect_stream("openai", provider_stream(&p).await).await;
    let out = out.unwrap();
    assert_eq!(out.text(), "Checking now.");
    let uses: Vec<_> = out.message().tool_uses().collect();
    assert_eq!(uses[0].input, json!({"city": "Paris"}));
    assert_eq!(uses[1].input, json!({"city": "Rome"}));
    assert_eq!(out.stop_reason, StopReason::ToolUse);
    assert_eq!(out.usage, TokenUsage::new(82, 40));
}

async fn provider_stream(p: &OpenAiProvider) -> EventStream {
    p.converse_stream(&weather_request()).await.unwrap()
}

#[tokio::test]
async fn stream_that_stops_before_finishing_is_unavailable_not_a_truncated_answer() {
    let sse = chunk(json!({"role": "assistant", "content": "Par"}), None);
    let server = Server::start(vec![Reply::sse(&sse)]).await;
    let (_, err) = drain(
        provider(&server)
            .converse_stream(&weather_request())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(err.unwrap().name(), "Llm.ServiceUnavailable");
}

#[tokio::test]
async fn error_answers_map_to_named_errors() {
    let server = Server::start(vec![
        Reply::json(429, json!({"error": {"message": "Rate limit reached for gpt-4o-mini in organization org-abc on tokens per min (TPM): Limit 200000, Used 199100, Requested 1432. Please try again in 159ms.", "type": "tokens", "param": null, "code": "rate_limit_exceeded"}})),
        Reply::json(400, json!({"error": {"message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130532 tokens. Please reduce the length of the messages.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})),
        Reply::json(401, json!({"error": {"message": "Incorrect API key provided: sk-test. You can find your API key at https://platform.openai.com/account/api-keys.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})),
        Reply::json(404, json!({"error": "model \"llama9\" not found, try pulling it first"})),
        Reply::json(400, json!({"error": {"message": "Invalid value for 'temperature': must be between 0 and 2.", "type": "invalid_request_error", "param": "temperature", "code": null}})),
        Reply::json(503, json!({"error": {"message": "The server is overloaded or not ready yet.", "type": "server_error"}})),
    ])
    .await;
    let p = provider(&server);
    let mut names = Vec::new();
    for _ in 0..6 {
        names.push(p.converse(&weather_request()).await.unwrap_err());
    }
    let got: Vec<&str> = names.iter().map(|e| e.name()).collect();
    assert_eq!(
        got,
        [
            "Llm.Throttled",
            "Llm.ContextWindowExceeded",
            "Llm.AuthFailed",
            "Llm.ModelNotFound",
            "Llm.InvalidRequest",
            "Llm.ServiceUnavailable"
        ]
    );
    assert!(names[0].is_retryable() && !names[1].is_retryable());
    assert!(
        names[1].to_string().contains("130532 tokens"),
        "{}",
        names[1]
    );
    // A refused stream fails at once with the same mapping.
    server.script(vec![Reply::json(429, json!({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}))]);
    let e = p.converse_stream(&weather_request()).await.err().unwrap();
    assert_eq!(e.name(), "Llm.Throttled");
}

#[tokio::test]
async fn unreachable_server_is_service_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let p = OpenAiProvider::new(&url, None, Duration::from_secs(5)).unwrap();
    let e = p.converse(&weather_request()).await.unwrap_err();
    assert_eq!(e.name(), "Llm.ServiceUnavailable");
}
