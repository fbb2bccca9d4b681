//! The facade: routing, budgets, the cache, context strategies and the ledger, with
//! OpenAI-compatible servers on local ports as the providers.

use std::sync::{Arc, Mutex};

use agentry_llm::*;
use serde_json::{Value, json};

use crate::support::*;

fn completion(text: &str, prompt: u64, completion: u64) -> Reply {
    Reply::json(
        200,
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1727000000, "model": "served",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}),
    )
}

/// A facade over `big` (route `complex`) and `small` (route `fast`).
async fn llm(big: &Server, small: &Server, extra: Value) -> Llm {
    let mut config = json!({
        "providers": {
            "big": {"kind": "openai", "base_url": format!("{}/v1", big.url)},
            "small": {"kind": "openai", "base_url": format!("{}/v1", small.url)}
        },
        "routes": {"complex": {"provider": "big", "model": "big-model"}, "fast": {"provider": "small", "model": "small-model"}},
        "models": {
            "big-model": {"provider": "big", "input_per_1m": 3.0, "output_per_1m": 15.0},
            "small-model": {"input_per_1k": 0.001, "output_per_1k": 0.002},
            "direct-model": {"provider": "small"}
        },
        "cache": {"enabled": false}
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    Llm::from_config(serde_json::from_value(config).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn routes_and_model_ids_reach_their_provider_and_the_ledger_adds_up_per_label() {
    let (big, small) = (
        Server::start(vec![completion("big answer", 1000, 200)]).await,
        Server::start(vec![completion("small answer", 100, 20)]).await,
    );
    let llm = llm(&big, &small, json!({})).await;
    let labels = CallLabels::default()
        .execution("arn:exec:1")
        .session("s1")
        .user("ada")
        .tenant("acme");
    let mut events = llm.subscribe();

    assert_eq!(
        llm.converse(ConverseRequest::user("complex", "plan"), &labels)
            .await
            .unwrap()
            .text(),
        "big answer"
    );
    assert_eq!(
        llm.converse(ConverseRequest::user("fast", "classify"), &labels)
            .await
            .unwrap()
            .text(),
        "small answer"
    );
    assert_eq!(
        llm.converse(
            ConverseRequest::user("direct-model", "x"),
            &labels.clone().execution("arn:exec:2")
        )
        .await
        .unwrap()
        .text(),
        "small answer"
    );
    assert_eq!(big.requests()[0].json()["model"], "big-model");
    assert_eq!(small.requests()[0].json()["model"], "small-model");
    assert_eq!(small.requests()[1].json()["model"], "direct-model");
    let e = llm
        .converse(ConverseRequest::user("gpt-9", "x"), &labels)
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Llm.ModelNotFound");
    assert!(e.to_string().contains("complex, fast"), "{e}");

    let exec1 = llm
        .ledger()
        .totals(ScopeKind::Execution, "arn:exec:1")
        .await
        .unwrap();
    assert_eq!(
        (exec1.calls, exec1.input_tokens, exec1.output_tokens),
        (2, 1100, 220)
    );
    // 1000 * 3/1M + 200 * 15/1M + 100 * 0.001/1k + 20 * 0.002/1k
    assert!(
        (exec1.cost_usd - (0.003 + 0.003 + 0.0001 + 0.00004)).abs() < 1e-12,
        "{}",
        exec1.cost_usd
    );
    let tenant = llm
        .ledger()
        .totals(ScopeKind::Tenant, "acme")
        .await
        .unwrap();
    assert_eq!((tenant.calls, tenant.tokens()), (3, 1440));
    assert_eq!(
        llm.ledger()
            .totals(ScopeKind::Tenant, "other")
            .await
            .unwrap(),
        Totals::default()
    );
    let LlmEvent::Call(first) = events.recv().await.unwrap() else {
        panic!()
    };
    assert_eq!(
        (
            first.route.as_deref(),
            first.provider.as_str(),
            first.model.as_str()
        ),
        (Some("complex"), "big", "big-model")
    );
}

#[tokio::test]
async fn a_hard_budget_refuses_before_calling_and_a_soft_one_warns() {
    let (big, small) = (
        Server::start(vec![completion("ok", 82, 17)]).await,
        Server::start(vec![]).await,
    );
    let llm = llm(
        &big,
        &small,
        json!({"budgets": [
            {"scope": "tenant", "max_tokens": 150, "hard": true},
            {"scope": "user", "id": "ada", "max_tokens": 90},
            {"scope": "session", "max_cost_usd": 0.0001, "hard": true}
        ]}),
    )
    .await;
    let mut events = llm.subscribe();
    let ada = CallLabels::default().user("ada").tenant("acme");
    llm.converse(ConverseRequest::user("complex", "first"), &ada)
        .await
        .unwrap();
    // 99 tokens spent of 150: the next call's prompt estimate fits, so it is made.
    llm.converse(ConverseRequest::user("complex", "second"), &ada)
        .await
        .unwrap();
    assert_eq!(big.count(), 2);
    let e = llm
        .converse(ConverseRequest::user("complex", "third"), &ada)
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Llm.BudgetExceeded");
    assert!(e.to_string().contains("tenant \"acme\""), "{e}");
    assert_eq!(big.count(), 2, "a refused call must not reach the provider");
    // Another tenant is not affected.
    llm.converse(
        ConverseRequest::user("complex", "x"),
        &CallLabels::default().tenant("globex"),
    )
    .await
    .unwrap();
    assert_eq!(big.count(), 3);

    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    let warnings: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            LlmEvent::BudgetWarning(n) => Some(n),
            _ => None,
        })
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "the soft budget warns once, when crossed: {seen:?}"
    );
    assert_eq!(
        (
            warnings[0].scope,
            warnings[0].id.as_str(),
            warnings[0].spent
        ),
        (ScopeKind::User, "ada", 99.0)
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, LlmEvent::BudgetRefused(n) if n.id == "acme"))
    );

    // A cost budget: the first call costs 82*3/1M + 17*15/1M = 0.000501 > 0.0001.
    let s = CallLabels::default().session("s1");
    llm.converse(ConverseRequest::user("complex", "a"), &s)
        .await
        .unwrap();
    let before = big.count();
    let e = llm
        .converse(ConverseRequest::user("complex", "b"), &s)
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Llm.BudgetExceeded");
    assert_eq!(big.count(), before);
}

#[tokio::test]
async fn identical_requests_are_answered_from_the_cache_and_the_ledger_shows_what_it_saved() {
    let (big, small) = (
        Server::start(vec![completion("cached answer", 500, 50)]).await,
        Server::start(vec![]).await,
    );
    let llm = llm(
        &big,
        &small,
        json!({"cache": {"enabled": true, "ttl_seconds": 60}}),
    )
    .await;
    let labels = CallLabels::default().tenant("acme");
    let req = ConverseRequest::user("complex", "What is 2+2?").with_max_tokens(64);
    let a = llm.converse(req.clone(), &labels).await.unwrap();
    let b = llm.converse(req.clone(), &labels).await.unwrap();
    assert_eq!(big.count(), 1, "the second call must come from the cache");
    assert_eq!(a.output, b.output);
    let streamed = collect_stream(
        "llm",
        llm.converse_stream(req.clone(), &labels).await.unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(streamed.text(), "cached answer");
    assert_eq!(big.count(), 1);
    let t = llm
        .ledger()
        .totals(ScopeKind::Tenant, "acme")
        .await
        .unwrap();
    assert_eq!(
        (
            t.calls,
            t.cache_hits,
            t.saved_input_tokens,
            t.saved_output_tokens
        ),
        (1, 2, 1000, 100)
    );
    assert!((t.saved_cost_usd - 2.0 * (500.0 * 3e-6 + 50.0 * 15e-6)).abs() < 1e-12);
    // A different parameter is a different request; a route and the model id it leads to make
    // the same request.
    llm.converse(
        ConverseRequest::user("complex", "What is 2+2?").with_max_tokens(65),
        &labels,
    )
    .await
    .unwrap();
    assert_eq!(big.count(), 2);
    llm.converse(
        ConverseRequest::user("big-model", "What is 2+2?").with_max_tokens(64),
        &labels,
    )
    .await
    .unwrap();
    assert_eq!(big.count(), 2);
}

fn long_conversation() -> ConverseRequest {
    let filler = "word ".repeat(200); // ~250 tokens a message
    serde_json::from_value(json!({
        "modelId": "complex",
        "messages": [
            {"role": "user", "content": [{"text": format!("TASK: compare prices. {filler}")}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "search", "input": {"q": filler}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": filler}]}}]},
            {"role": "assistant", "content": [{"text": format!("first findings {filler}")}]},
            {"role": "user", "content": [{"text": format!("dig deeper {filler}")}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t2", "name": "search", "input": {"q": "deeper"}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t2", "content": [{"text": "deeper result"}]}}]}
        ],
        "inferenceConfig": {"maxTokens": 100}
    }))
    .unwrap()
}

fn window(n: u64, strategy: &str) -> Value {
    json!({
        "models": {"big-model": {"context_window": n}, "small-model": {}},
        "context": {"strategy": strategy, "keep_first_user": true}
    })
}

#[tokio::test]
async fn drop_oldest_keeps_the_task_and_tool_pairs_together() {
    let (big, small) = (
        Server::start(vec![completion("ok", 1, 1)]).await,
        Server::start(vec![]).await,
    );
    let llm = llm(&big, &small, window(700, "drop_oldest")).await;
    llm.converse(long_conversation(), &CallLabels::default())
        .await
        .unwrap();
    let sent = big.requests()[0].json()["messages"].clone();
    let roles: Vec<&str> = sent
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    // The task stays; the first tool exchange and the findings go; the last turn stays whole.
    assert_eq!(roles, ["user", "assistant", "tool"], "{sent:#}");
    let first = sent[0]["content"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| sent[0]["content"].to_string());
    assert!(
        first.contains("TASK: compare prices") && first.contains("dig deeper"),
        "{first}"
    );
    assert_eq!(sent[1]["tool_calls"][0]["id"], "t2");
    assert_eq!(sent[2]["tool_call_id"], "t2");
    assert!(!sent.to_string().contains("first findings"));
    // A window that would fit everything but the first tool use must not send its result alone.
    let wider = llm_with(&big, &small, window(1150, "drop_oldest")).await;
    wider
        .converse(long_conversation(), &CallLabels::default())
        .await
        .unwrap();
    let sent = big.requests()[1].json()["messages"].to_string();
    assert!(!sent.contains("\"t1\""), "{sent}");
    assert!(sent.contains("first findings"), "{sent}");
    // When not even the last turn fits, the call fails before reaching the provider.
    let tiny = llm_with(&big, &small, window(150, "drop_oldest")).await;
    let e = tiny
        .converse(long_conversation(), &CallLabels::default())
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Llm.ContextWindowExceeded");
    assert_eq!(big.count(), 2);
}

async fn llm_with(big: &Server, small: &Server, extra: Value) -> Llm {
    llm(big, small, extra).await
}

#[tokio::test]
async fn fail_refuses_an_overflowing_conversation_without_calling() {
    let (big, small) = (
        Server::start(vec![completion("ok", 1, 1)]).await,
        Server::start(vec![]).await,
    );
    let llm = llm(&big, &small, window(700, "fail")).await;
    let e = llm
        .converse(long_conversation(), &CallLabels::default())
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Llm.ContextWindowExceeded");
    assert!(e.to_string().contains("700-token window"), "{e}");
    assert_eq!(big.count(), 0);
}

#[tokio::test]
async fn summarize_replaces_the_oldest_turns_with_a_summary_from_the_fast_route() {
    let (big, small) = (
        Server::start(vec![completion("final", 1, 1)]).await,
        Server::start(vec![completion(
            "Searched prices; found vendor A at $10.",
            300,
            12,
        )])
        .await,
    );
    let llm = llm(&big, &small, window(1100, "summarize")).await;
    let labels = CallLabels::default().execution("arn:exec:sum");
    llm.converse(long_conversation(), &labels).await.unwrap();
    let ask = small.requests()[0].json();
    assert_eq!(ask["model"], "small-model");
    let transcript = ask["messages"].to_string();
    assert!(
        transcript.contains("called tool search") && transcript.contains("first findings"),
        "{transcript}"
    );
    let sent = big.requests()[0].json()["messages"].to_string();
    assert!(
        sent.contains("Summary of the earlier conversation") && sent.contains("vendor A at $10"),
        "{sent}"
    );
    assert!(sent.contains("TASK: compare prices") && !sent.contains("first findings"));
    // Both calls are on the execution's bill.
    let t = llm
        .ledger()
        .totals(ScopeKind::Execution, "arn:exec:sum")
        .await
        .unwrap();
    assert_eq!(t.calls, 2);
}

#[tokio::test]
async fn streams_record_usage_when_done_and_feed_the_delta_sink() {
    #[derive(Default)]
    struct Sink(Mutex<Vec<(String, StreamEvent)>>);
    impl DeltaSink for Sink {
        fn on_event(&self, execution_arn: &str, event: &StreamEvent) {
            self.0
                .lock()
                .unwrap()
                .push((execution_arn.to_string(), event.clone()));
        }
    }
    let sse = format!(
        "data: {}\n\ndata: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": null}]}),
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}}),
    );
    let (big, small) = (
        Server::start(vec![Reply::sse(&sse)]).await,
        Server::start(vec![]).await,
    );
    let sink = Arc::new(Sink::default());
    let llm = llm(&big, &small, json!({}))
        .await
        .with_delta_sink(sink.clone());
    let labels = CallLabels::default().execution("arn:exec:s");
    let (events, err) = drain(
        llm.converse_stream(ConverseRequest::user("complex", "hi"), &labels)
            .await
            .unwrap(),
    )
    .await;
    assert!(err.is_none());
    let got = sink.0.lock().unwrap().clone();
    assert_eq!(got.len(), events.len());
    assert!(got.iter().all(|(x, _)| x == "arn:exec:s"));
    let t = llm
        .ledger()
        .totals(ScopeKind::Execution, "arn:exec:s")
        .await
        .unwrap();
    assert_eq!((t.calls, t.input_tokens, t.output_tokens), (1, 7, 1));
}

#[test]
fn the_config_reads_from_toml() {
    let config: LlmConfig = toml::from_str(
        r#"
        default_route = "complex"
        [providers.local]
        kind = "openai"
        base_url = "http://localhost:11434/v1"
        [providers.demo]
        kind = "recorded"
        path = "recordings/demo.jsonl"
        [routes]
        complex = { provider = "local", model = "llama3.1:70b" }
        fast = { provider = "demo", model = "demo" }
        [models."llama3.1:70b"]
        context_window = 131072
        input_per_1m = 0.6
        [context]
        strategy = "summarize"
        [cache]
        ttl_seconds = 600
        [[budgets]]
        scope = "tenant"
        max_cost_usd = 5.0
        hard = true
        "#,
    )
    .unwrap();
    assert_eq!(
        config.routes["fast"],
        RouteConfig {
            provider: "demo".into(),
            model: "demo".into()
        }
    );
    assert_eq!(config.models["llama3.1:70b"].context_window, 131072);
    assert_eq!(config.models["llama3.1:70b"].chars_per_token, 4.0);
    assert_eq!(config.context.strategy, OverflowStrategy::Summarize);
    assert_eq!(config.budgets[0].scope, ScopeKind::Tenant);
    let e = toml::from_str::<LlmConfig>("[routes]\ncomplex = { provider = \"x\", modle = \"y\" }")
        .unwrap_err();
    assert!(e.to_string().contains("modle"), "{e}");
}

#[tokio::test]
async fn routes_naming_unknown_providers_are_refused() {
    let config: LlmConfig = serde_json::from_value(json!({
        "providers": {}, "routes": {"complex": {"provider": "nope", "model": "m"}}
    }))
    .unwrap();
    let e = Llm::from_config(config).await.err().unwrap();
    assert!(
        e.to_string()
            .contains("route \"complex\" names unknown provider \"nope\""),
        "{e}"
    );
}

#[tokio::test(start_paused = true)]
async fn cached_answers_expire_after_their_ttl() {
    let recorded = RecordedProvider::from_exchanges(
        serde_json::from_value(json!([{"request": {"modelId": "demo-model"}, "response": {"text": "hi", "usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 6}}}])).unwrap(),
        "inline",
    )
    .unwrap();
    let config: LlmConfig = serde_json::from_value(json!({
        "routes": {"complex": {"provider": "demo", "model": "demo-model"}},
        "cache": {"ttl_seconds": 60}
    }))
    .unwrap();
    let providers = std::collections::HashMap::from([(
        "demo".to_string(),
        Arc::new(recorded) as Arc<dyn Provider>,
    )]);
    let llm = Llm::new(config, providers)
        .unwrap()
        .with_cache(agentry_cache::open("memory://").await.unwrap());
    let labels = CallLabels::default().tenant("acme");
    let totals = || async {
        llm.ledger()
            .totals(ScopeKind::Tenant, "acme")
            .await
            .unwrap()
    };
    llm.converse(ConverseRequest::user("complex", "hello"), &labels)
        .await
        .unwrap();
    tokio::time::advance(std::time::Duration::from_secs(59)).await;
    llm.converse(ConverseRequest::user("complex", "hello"), &labels)
        .await
        .unwrap();
    assert_eq!((totals().await.calls, totals().await.cache_hits), (1, 1));
    tokio::time::advance(std::time::Duration::from_secs(2)).await;
    llm.converse(ConverseRequest::user("complex", "hello"), &labels)
        .await
        .unwrap();
    assert_eq!(
        (totals().await.calls, totals().await.cache_hits),
        (2, 1),
        "the answer expired"
    );
}

#[cfg(not(feature = "bedrock"))]
#[tokio::test]
async fn bedrock_is_refused_by_a_build_without_it() {
    let config: LlmConfig =
        serde_json::from_value(json!({"providers": {"aws": {"kind": "bedrock"}}})).unwrap();
    let e = Llm::from_config(config).await.err().unwrap();
    assert_eq!(e.name(), "Llm.ConfigInvalid");
    assert!(e.to_string().contains("not supported in this build"), "{e}");
}
