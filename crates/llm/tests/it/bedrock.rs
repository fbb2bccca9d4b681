//! The Bedrock provider (through the AWS SDK) against a local server speaking Bedrock's REST
//! JSON for Converse and AWS event-stream frames for ConverseStream.

use std::sync::Arc;

use agentry_llm::bedrock::BedrockProvider;
use agentry_llm::*;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use serde_json::{Value, json};

use crate::support::*;

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

/// CRC-32 (IEEE 802.3, reflected, as the event-stream format uses).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One event-stream message: prelude (total length, headers length, prelude CRC), headers
/// (name length, name, type 7 = string, value length, value), payload, message CRC.
fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (k, v) in headers {
        h.push(k.len() as u8);
        h.extend(k.as_bytes());
        h.push(7);
        h.extend((v.len() as u16).to_be_bytes());
        h.extend(v.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut out = Vec::new();
    out.extend((total as u32).to_be_bytes());
    out.extend((h.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend(prelude_crc.to_be_bytes());
    out.extend(h);
    out.extend(payload);
    let crc = crc32(&out);
    out.extend(crc.to_be_bytes());
    out
}

fn event(kind: &str, mut payload: Value) -> Vec<u8> {
    // Bedrock pads event payloads with a "p" field of varying length.
    payload["p"] = json!("abcdefghijklmnopqrstu"[..(kind.len() % 17) + 2]);
    frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    frame(
        &[
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({"message": message}).to_string().as_bytes(),
    )
}

/// The frames cut into uneven chunks, so frames straddle reads.
fn chunked(frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let all: Vec<u8> = frames.concat();
    all.chunks(23).map(<[u8]>::to_vec).collect()
}

fn provider(server: &Server) -> BedrockProvider {
    let conf = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDLOCALTEST",
            "local-secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(&server.url)
        .retry_config(RetryConfig::disabled())
        .build();
    BedrockProvider::from_client(aws_sdk_bedrockruntime::Client::from_conf(conf))
}

fn request() -> ConverseRequest {
    serde_json::from_value(json!({
        "modelId": MODEL,
        "system": [{"text": "You pick songs."}],
        "messages": [{"role": "user", "content": [{"text": "What is the most popular song on WZPZ?"}]}],
        "inferenceConfig": {"maxTokens": 512, "stopSequences": ["STOP"]},
        "toolConfig": {"tools": [{"toolSpec": {"name": "top_song", "description": "Get the most popular song played on a radio station.",
            "inputSchema": {"json": {"type": "object", "properties": {"sign": {"type": "string"}}, "required": ["sign"]}}}}]}
    }))
    .unwrap()
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[tokio::test]
async fn converse_over_rest_json() {
    let server = Server::start(vec![Reply::json(
        200,
        json!({"output": {"message": {"role": "assistant", "content": [
                {"text": "I'll look that up."},
                {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "top_song", "input": {"sign": "WZPZ"}}}]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 375, "outputTokens": 72, "totalTokens": 447},
            "metrics": {"latencyMs": 1340}}),
    )
    .header("x-amzn-RequestId", "5f6a1c2e-0000-4c1e-9d1e-000000000000")])
    .await;
    let out = provider(&server).converse(&request()).await.unwrap();
    assert_eq!(out.stop_reason, StopReason::ToolUse);
    assert_eq!(out.usage, TokenUsage::new(375, 72));
    assert_eq!(out.metrics.latency_ms, 1340);
    assert_eq!(out.text(), "I'll look that up.");
    assert_eq!(
        out.message().tool_uses().next().unwrap().input,
        json!({"sign": "WZPZ"})
    );

    let seen = &server.requests()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.path,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    assert!(
        seen.header("authorization")
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 Credential=AKIDLOCALTEST/")
    );
    // The SDK sends Converse's JSON: ours, less the model id (it is in the path).
    let mut want = serde_json::to_value(request()).unwrap();
    want.as_object_mut().unwrap().remove("modelId");
    assert_eq!(seen.json(), want);
}

#[tokio::test]
async fn converse_stream_over_event_stream_frames() {
    let frames = vec![
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Let me"}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": " check."}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "top_song"}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"sign\":"}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": " \"WZPZ\"}"}}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 1})),
        event("messageStop", json!({"stopReason": "tool_use"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 375, "outputTokens": 72, "totalTokens": 447}, "metrics": {"latencyMs": 812}}),
        ),
    ];
    let server = Server::start(vec![Reply::bytes(
        200,
        "application/vnd.amazon.eventstream",
        chunked(&frames),
    )])
    .await;
    let p = provider(&server);
    let (events, err) = drain(p.converse_stream(&request()).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(events.len(), 10);
    assert_eq!(
        serde_json::to_value(&events[5]).unwrap(),
        json!({"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"sign\":"}}}})
    );
    assert!(server.requests()[0].path.ends_with("/converse-stream"));
    let out = collect_stream("bedrock", p.converse_stream(&request()).await.unwrap())
        .await
        .unwrap();
    assert_eq!(out.text(), "Let me check.");
    assert_eq!(
        out.message().tool_uses().next().unwrap().input,
        json!({"sign": "WZPZ"})
    );
    assert_eq!(out.usage.total_tokens, 447);
    assert_eq!(out.metrics.latency_ms, 812);
}

#[tokio::test]
async fn exception_frame_mid_stream_is_a_named_error() {
    let frames = vec![
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        ),
        exception(
            "throttlingException",
            "Too many tokens, please wait before trying again.",
        ),
    ];
    let server = Server::start(vec![Reply::bytes(
        200,
        "application/vnd.amazon.eventstream",
        chunked(&frames),
    )])
    .await;
    let (events, err) = drain(provider(&server).converse_stream(&request()).await.unwrap()).await;
    assert_eq!(events.len(), 2);
    let err = err.unwrap();
    assert_eq!(err.name(), "Llm.Throttled", "{err}");
}

#[tokio::test]
async fn error_answers_map_to_named_errors() {
    let err = |status: u16, kind: &str, message: &str| {
        Reply::json(status, json!({"message": message})).header(
            "x-amzn-ErrorType",
            &format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        )
    };
    let server = Server::start(vec![
        err(
            429,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        err(
            400,
            "ValidationException",
            "Input is too long for requested model.",
        ),
        err(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        err(
            404,
            "ResourceNotFoundException",
            "Could not resolve the foundation model from the provided model identifier.",
        ),
        err(
            400,
            "ValidationException",
            "The model returned the following errors: temperature: range: 0..1",
        ),
        err(
            503,
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.",
        ),
    ])
    .await;
    let p = provider(&server);
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(p.converse(&request()).await.unwrap_err().name());
    }
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
}

#[tokio::test]
async fn the_config_points_bedrock_at_an_endpoint_and_routes_to_it() {
    let server = Server::start(vec![Reply::json(
        200,
        json!({"output": {"message": {"role": "assistant", "content": [{"text": "WZPZ plays Elemental Hotel."}]}},
            "stopReason": "end_turn", "usage": {"inputTokens": 20, "outputTokens": 8, "totalTokens": 28}, "metrics": {"latencyMs": 90}}),
    )])
    .await;
    // Credentials come from the usual chain: here, the environment.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDFROMENV");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "secret-from-env");
    }
    let config: LlmConfig = serde_json::from_value(json!({
        "providers": {"aws": {"kind": "bedrock", "region": "eu-west-1", "endpoint_url": server.url}},
        "routes": {"complex": {"provider": "aws", "model": MODEL}},
        "cache": {"enabled": false}
    }))
    .unwrap();
    let llm = Arc::new(Llm::from_config(config).await.unwrap());
    let out = llm
        .converse(
            ConverseRequest::user("complex", "hi"),
            &CallLabels::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.text(), "WZPZ plays Elemental Hotel.");
    let seen = &server.requests()[0];
    assert!(seen.path.starts_with("/model/anthropic.claude-3-haiku"));
    let auth = seen.header("authorization").unwrap();
    assert!(
        auth.contains("Credential=AKIDFROMENV/")
            && auth.contains("/eu-west-1/bedrock/aws4_request"),
        "{auth}"
    );
}
