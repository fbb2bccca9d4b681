//! The Bedrock task resources, run by the durable engine: Converse → Choice on StopReason,
//! InvokeModel with a native Anthropic body, and named errors caught by the state machine.

use std::sync::Arc;
use std::time::Duration;

use agentry_engine::{Engine, EngineConfig, ResourceTable};
use agentry_llm::*;
use serde_json::{Value, json};

const RECORDING: &str = r#"
// The offline demo's model: what it answers, by request.
{"request": {"modelId": "demo-model", "messages": [{"role": "user", "content": [{"text": "Research competitor pricing"}]}]}, "response": {"toolUse": [{"toolUseId": "tooluse_1", "name": "web_search", "input": {"query": "competitor pricing", "MaxResults": 5}}], "usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 42}}}
{"request": {"modelId": "demo-model", "messages": [{"role": "user", "content": [{"text": "Say hi"}]}]}, "response": {"text": "Hello!", "usage": {"inputTokens": 8, "outputTokens": 2, "totalTokens": 10}}}
{"request": {"modelId": "demo-model", "messages": [{"role": "user", "content": [{"text": "Summarize: prices rose"}]}], "inferenceConfig": {"maxTokens": 200}}, "response": {"text": "Prices went up.", "usage": {"inputTokens": 14, "outputTokens": 4, "totalTokens": 18}}}
"#;

struct Harness {
    engine: Engine,
    llm: Arc<Llm>,
    _node: agentry_engine::Node,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Harness {
        Self::with_sink(None).await
    }

    async fn with_sink(sink: Option<Arc<dyn DeltaSink>>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let recording = dir.path().join("demo.jsonl");
        std::fs::write(&recording, RECORDING).unwrap();
        let config: LlmConfig = serde_json::from_value(json!({
            "providers": {"demo": {"kind": "recorded", "path": recording}},
            "routes": {"complex": {"provider": "demo", "model": "demo-model"}},
        }))
        .unwrap();
        let mut llm = Llm::from_config(config).await.unwrap();
        if let Some(sink) = sink {
            llm = llm.with_delta_sink(sink);
        }
        let llm = Arc::new(llm);
        let mut table = ResourceTable::new();
        agentry_llm::register(&mut table, llm.clone());
        let store = agentry_storage::open(&format!(
            "sqlite://{}",
            dir.path().join("store.db").display()
        ))
        .await
        .unwrap();
        let queue = agentry_queue::open(&format!(
            "sqlite://{}",
            dir.path().join("queue.db").display()
        ))
        .await
        .unwrap();
        let config = EngineConfig {
            visibility_timeout: Duration::from_secs(2),
            poll_wait: Duration::from_millis(100),
            timer_poll: Duration::from_millis(200),
            ..EngineConfig::default()
        };
        let engine = Engine::open(store, queue, table, config).await.unwrap();
        let node = engine.run();
        Harness {
            engine,
            llm,
            _node: node,
            _dir: dir,
        }
    }

    async fn run(
        &self,
        name: &str,
        definition: Value,
        input: Value,
    ) -> agentry_engine::ExecutionDescription {
        let arn = self
            .engine
            .create_state_machine(name, &definition.to_string())
            .await
            .unwrap();
        let started = self
            .engine
            .start_execution(&arn, None, &input.to_string())
            .await
            .unwrap();
        let d = self
            .engine
            .wait_for_execution(&started.execution_arn, Duration::from_secs(30))
            .await
            .unwrap();
        assert_ne!(d.status, "RUNNING");
        d
    }
}

fn agent_step() -> Value {
    json!({"StartAt": "Think", "States": {
        "Think": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:bedrockruntime:converse",
            "Parameters": {"ModelId": "complex", "Messages.$": "$.messages"},
            "ResultPath": "$.reply", "Next": "Route"},
        "Route": {"Type": "Choice", "Choices": [
            {"Variable": "$.reply.StopReason", "StringEquals": "tool_use", "Next": "UseTool"}
        ], "Default": "Answer"},
        "UseTool": {"Type": "Pass", "Parameters": {
            "tool.$": "$.reply.Output.Message.Content[0].ToolUse.Name",
            "input.$": "$.reply.Output.Message.Content[0].ToolUse.Input",
            "tokens.$": "$.reply.Usage.TotalTokens"}, "End": true},
        "Answer": {"Type": "Pass", "OutputPath": "$.reply.Output.Message.Content[0].Text", "End": true}
    }})
}

fn user(text: &str) -> Value {
    json!({"messages": [{"Role": "user", "Content": [{"Text": text}]}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converse_then_choice_on_stop_reason() {
    let h = Harness::new().await;
    let d = h
        .run("agent", agent_step(), user("Research competitor pricing"))
        .await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    // The tool input is a document: its keys keep their case.
    assert_eq!(
        d.output_json(),
        Some(
            json!({"tool": "web_search", "input": {"query": "competitor pricing", "MaxResults": 5}, "tokens": 42})
        )
    );
    let t = h
        .llm
        .ledger()
        .totals(ScopeKind::Execution, &d.execution_arn)
        .await
        .unwrap();
    assert_eq!(
        (t.calls, t.tokens()),
        (1, 42),
        "calls are labelled with the execution's ARN"
    );

    let d = h.run("agent2", agent_step(), user("Say hi")).await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    assert_eq!(d.output_json(), Some(json!("Hello!")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converse_output_is_pascal_case_as_the_sdk_integration_returns() {
    let h = Harness::new().await;
    let d = h
        .run(
            "raw",
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:bedrockruntime:converse",
                "Parameters": {"ModelId": "complex", "Messages.$": "$.messages"}, "End": true}}}),
            user("Say hi"),
        )
        .await;
    let out = d.output_json().unwrap();
    assert_eq!(
        out["Output"],
        json!({"Message": {"Role": "assistant", "Content": [{"Text": "Hello!"}]}})
    );
    assert_eq!(out["StopReason"], "end_turn");
    assert_eq!(
        out["Usage"],
        json!({"InputTokens": 8, "OutputTokens": 2, "TotalTokens": 10})
    );
    assert!(out["Metrics"]["LatencyMs"].is_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_model_with_a_native_anthropic_body() {
    let h = Harness::new().await;
    let d = h
        .run(
            "invoke",
            json!({"StartAt": "Summarize", "States": {"Summarize": {"Type": "Task", "Resource": "arn:aws:states:::bedrock:invokeModel",
                "Parameters": {"ModelId": "complex", "ContentType": "application/json", "Accept": "application/json",
                    "Body": {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 200,
                        "messages": [{"role": "user", "content": [{"type": "text", "text.$": "States.Format('Summarize: {}', $.news)"}]}]}},
                "ResultSelector": {"summary.$": "$.Body.content[0].text", "stop.$": "$.Body.stop_reason", "usage.$": "$.Body.usage", "type.$": "$.ContentType"},
                "End": true}}}),
            json!({"news": "prices rose"}),
        )
        .await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    assert_eq!(
        d.output_json(),
        Some(
            json!({"summary": "Prices went up.", "stop": "end_turn", "usage": {"input_tokens": 14, "output_tokens": 4}, "type": "application/json"})
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_errors_are_named_task_errors_the_machine_can_catch() {
    let h = Harness::new().await;
    let d = h
        .run(
            "catch",
            json!({"StartAt": "Think", "States": {
                "Think": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:bedrockruntime:converse",
                    "Parameters": {"ModelId": "complex", "Messages.$": "$.messages"},
                    "Retry": [{"ErrorEquals": ["Llm.Throttled"], "MaxAttempts": 2}],
                    "Catch": [{"ErrorEquals": ["Llm.NoRecording"], "ResultPath": "$.error", "Next": "Fallback"}],
                    "End": true},
                "Fallback": {"Type": "Pass", "End": true}
            }}),
            user("Something nobody recorded"),
        )
        .await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    let out = d.output_json().unwrap();
    assert_eq!(out["error"]["Error"], "Llm.NoRecording");
    assert!(
        out["error"]["Cause"]
            .as_str()
            .unwrap()
            .contains("\"demo-model\""),
        "{out}"
    );

    let bad = h
        .run(
            "bad",
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:bedrockruntime:converse",
                "Parameters": {"ModelId": "complex", "Messages": "not a list"}, "End": true}}}),
            json!({}),
        )
        .await;
    assert_eq!(
        (bad.status.as_str(), bad.error.as_deref()),
        ("FAILED", Some("Llm.InvalidRequest"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_loop_runs_on_the_demo_recording() {
    let dir = tempfile::tempdir().unwrap();
    let config: LlmConfig = serde_json::from_value(json!({
        "providers": {"demo": {"kind": "recorded", "path": concat!(env!("CARGO_MANIFEST_DIR"), "/recordings/demo.json")}},
        "routes": {"complex": {"provider": "demo", "model": "demo-model"}},
    }))
    .unwrap();
    let llm = Arc::new(Llm::from_config(config).await.unwrap());
    let mut table = ResourceTable::new();
    agentry_llm::register(&mut table, llm.clone());
    let store = agentry_storage::open(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ))
    .await
    .unwrap();
    let queue = agentry_queue::open(&format!(
        "sqlite://{}",
        dir.path().join("queue.db").display()
    ))
    .await
    .unwrap();
    let engine = Engine::open(
        store,
        queue,
        table,
        EngineConfig {
            poll_wait: Duration::from_millis(100),
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap();
    let _node = engine.run();
    // Converse with tools → Choice on StopReason → the tool's result appended → Converse again.
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Think", "States": {
        "Think": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:bedrockruntime:converse",
            "Arguments": {"ModelId": "complex", "Messages": "{% $states.input.messages %}",
                "ToolConfig": {"Tools": [{"ToolSpec": {"Name": "web_search", "Description": "Search the web",
                    "InputSchema": {"Json": {"type": "object", "properties": {"query": {"type": "string"}}}}}}]}},
            "Output": {"messages": "{% $states.input.messages %}", "reply": "{% $states.result %}"},
            "Next": "Route"},
        "Route": {"Type": "Choice", "Choices": [
            {"Condition": "{% $states.input.reply.StopReason = 'tool_use' %}", "Next": "Search"}
        ], "Default": "Done"},
        "Search": {"Type": "Pass", "Output": {"messages": "{% $append($states.input.messages, [$states.input.reply.Output.Message, {'Role': 'user', 'Content': [{'ToolResult': {'ToolUseId': $states.input.reply.Output.Message.Content[ToolUse].ToolUse.ToolUseId, 'Content': [{'Text': 'Competitor A: $29/user/month; Competitor B: $25/user/month; Competitor C: free tier, $19/user/month'}]}}]}]) %}"},
            "Next": "Think"},
        "Done": {"Type": "Pass", "Output": "{% $states.input.reply.Output.Message.Content[0].Text %}", "End": true}
    }});
    let arn = engine
        .create_state_machine("agent-loop", &definition.to_string())
        .await
        .unwrap();
    let input = json!({"messages": [{"Role": "user", "Content": [{"Text": "Research competitive pricing for our new product and write a summary report"}]}]});
    let started = engine
        .start_execution(&arn, None, &input.to_string())
        .await
        .unwrap();
    let d = engine
        .wait_for_execution(&started.execution_arn, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    let answer = d.output_json().unwrap();
    assert!(
        answer
            .as_str()
            .unwrap()
            .starts_with("Summary: competitors charge $19-29"),
        "{answer}"
    );
    let t = llm
        .ledger()
        .totals(ScopeKind::Execution, &d.execution_arn)
        .await
        .unwrap();
    assert_eq!(t.calls, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_delta_sink_task_calls_stream_under_the_execution_arn() {
    #[derive(Default)]
    struct Sink(std::sync::Mutex<Vec<(String, StreamEvent)>>);
    impl DeltaSink for Sink {
        fn on_event(&self, execution_arn: &str, event: &StreamEvent) {
            self.0
                .lock()
                .unwrap()
                .push((execution_arn.to_string(), event.clone()));
        }
    }
    let sink = Arc::new(Sink::default());
    let h = Harness::with_sink(Some(sink.clone())).await;
    let d = h.run("streamed", agent_step(), user("Say hi")).await;
    assert_eq!(d.output_json(), Some(json!("Hello!")));
    let got = sink.0.lock().unwrap().clone();
    assert!(
        got.iter().all(|(arn, _)| *arn == d.execution_arn),
        "{got:?}"
    );
    let text: String = got
        .iter()
        .filter_map(|(_, e)| match e {
            StreamEvent::ContentBlockDelta(ContentBlockDelta {
                delta: BlockDelta::Text(t),
                ..
            }) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Hello!", "{got:?}");
    assert!(matches!(got.last(), Some((_, StreamEvent::Metadata(_)))));
}

#[tokio::test]
async fn invoke_model_understands_each_family_native_body() {
    let recorded = RecordedProvider::from_exchanges(
        serde_json::from_value(json!([
            {"request": {"modelId": "amazon.titan-text-express-v1", "messages": [{"role": "user", "content": [{"text": "Name five first names."}]}],
                "inferenceConfig": {"maxTokens": 100, "temperature": 1.0}},
             "response": {"text": "Ada, Alan, Grace, Edsger, Barbara", "usage": {"inputTokens": 6, "outputTokens": 11, "totalTokens": 17}}},
            {"request": {"modelId": "meta.llama3-8b-instruct-v1:0", "messages": [{"role": "user", "content": [{"text": "Say hi"}]}]},
             "response": {"text": "Hi!", "stopReason": "max_tokens", "usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4}}},
            {"request": {"modelId": "amazon.nova-lite-v1:0", "system": [{"text": "Be brief."}], "messages": [{"role": "user", "content": [{"text": "Hello"}]}]},
             "response": {"text": "Hello.", "usage": {"inputTokens": 4, "outputTokens": 2, "totalTokens": 6}}}
        ]))
        .unwrap(),
        "inline",
    )
    .unwrap();
    let llm = Llm::new(
        LlmConfig {
            cache: CacheConfig {
                enabled: false,
                ..Default::default()
            },
            ..Default::default()
        },
        std::collections::HashMap::from([(
            "aws".to_string(),
            Arc::new(recorded) as Arc<dyn Provider>,
        )]),
    )
    .unwrap();
    let labels = CallLabels::default();
    let invoke = |model: &str, body: Value| {
        agentry_llm::states::invoke_model_task(
            &llm,
            json!({"ModelId": model, "Body": body}),
            &labels,
        )
    };
    let titan = invoke("amazon.titan-text-express-v1", json!({"inputText": "Name five first names.", "textGenerationConfig": {"maxTokenCount": 100, "temperature": 1}})).await.unwrap();
    assert_eq!(
        titan,
        json!({"Body": {"inputTextTokenCount": 6, "results": [{"tokenCount": 11, "outputText": "Ada, Alan, Grace, Edsger, Barbara", "completionReason": "FINISH"}]}, "ContentType": "application/json"})
    );
    let llama = invoke(
        "meta.llama3-8b-instruct-v1:0",
        json!({"prompt": "Say hi", "max_gen_len": 512}),
    )
    .await;
    // The recorded request has no inferenceConfig, so it matches any.
    assert_eq!(
        llama.unwrap()["Body"],
        json!({"generation": "Hi!", "prompt_token_count": 3, "generation_token_count": 1, "stop_reason": "length"})
    );
    let nova = invoke("amazon.nova-lite-v1:0", json!({"system": [{"text": "Be brief."}], "messages": [{"role": "user", "content": [{"text": "Hello"}]}], "inferenceConfig": {"max_new_tokens": 50}})).await.unwrap();
    assert_eq!(
        nova["Body"]["output"]["message"]["content"],
        json!([{"text": "Hello."}])
    );
    assert_eq!(nova["Body"]["usage"]["totalTokens"], 6);
    let e = invoke("x", json!({"foo": 1})).await.unwrap_err();
    assert_eq!(e.name(), "Llm.InvalidRequest");
    assert!(e.to_string().contains("known model family"), "{e}");
}
