//! Per-call overhead of the `Llm` layer (routing, context estimate, budget check, cache lookup
//! and write, ledger) over calling the provider directly, against a local stub Chat Completions
//! server on the same machine; and the latency of a cache hit. Prints microseconds per call and
//! the difference, in one run.
//!
//! `cargo bench -p agentry-llm --bench overhead` (`AGENTRY_BENCH_CALLS` sets the calls per
//! measurement, default 2000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentry_llm::openai::OpenAiProvider;
use agentry_llm::*;
use serde_json::json;

async fn stub_server() -> String {
    let body = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1727000000, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "The answer is 4."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 25, "completion_tokens": 6, "total_tokens": 31}})
    .to_string();
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { ([("content-type", "application/json")], body) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn request(model: &str, i: usize) -> ConverseRequest {
    ConverseRequest::user(
        model,
        format!("Question {i}: what is 2 + 2? Answer briefly."),
    )
    .with_system("You are a careful calculator.")
    .with_max_tokens(64)
}

fn micros(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("AGENTRY_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let url = stub_server().await;
    let direct = OpenAiProvider::new(&url, None, Duration::from_secs(10)).unwrap();
    let config: LlmConfig = serde_json::from_value(json!({
        "providers": {"stub": {"kind": "openai", "base_url": url}},
        "routes": {"complex": {"provider": "stub", "model": "m"}},
        "models": {"m": {"input_per_1m": 3.0, "output_per_1m": 15.0, "context_window": 8192}},
        "budgets": [{"scope": "tenant", "max_cost_usd": 1e9, "hard": true}, {"scope": "user", "max_tokens": 1000000000}],
        "cache": {"enabled": true, "ttl_seconds": 600}
    }))
    .unwrap();
    let llm = Arc::new(Llm::from_config(config).await.unwrap());
    let labels = CallLabels::default()
        .execution("arn:bench")
        .session("s")
        .user("u")
        .tenant("t");

    // Warm up connections and allocators on both paths.
    for i in 0..200 {
        direct.converse(&request("m", i)).await.unwrap();
        llm.converse(request("complex", 1_000_000 + i), &labels)
            .await
            .unwrap();
    }

    // Alternate batches so both paths see the same machine conditions.
    let (mut t_direct, mut t_layer) = (Duration::ZERO, Duration::ZERO);
    let batch = 100;
    let mut i = 0;
    while i < n {
        let start = Instant::now();
        for k in i..i + batch {
            direct.converse(&request("m", k)).await.unwrap();
        }
        t_direct += start.elapsed();
        let start = Instant::now();
        for k in i..i + batch {
            // Distinct requests: every call misses the cache, is sent, then cached.
            llm.converse(request("complex", 2_000_000 + k), &labels)
                .await
                .unwrap();
        }
        t_layer += start.elapsed();
        i += batch;
    }
    let hit = request("complex", 42);
    llm.converse(hit.clone(), &labels).await.unwrap();
    let start = Instant::now();
    for _ in 0..n {
        llm.converse(hit.clone(), &labels).await.unwrap();
    }
    let t_hit = start.elapsed();

    let (d, l, h) = (micros(t_direct, n), micros(t_layer, n), micros(t_hit, n));
    println!("llm overhead, {n} calls each, local stub Chat Completions server");
    println!("  provider directly:                 {d:8.1} us/call");
    println!("  through Llm (route, budgets, cache miss+write, ledger): {l:8.1} us/call");
    println!(
        "  layer overhead:                    {:8.1} us/call ({:.2}x direct)",
        l - d,
        l / d
    );
    println!(
        "  cache hit through Llm:             {h:8.1} us/call ({:.1}x faster than the provider)",
        d / h
    );
    let totals = llm.ledger().overall().await.unwrap();
    println!(
        "  ledger: {} calls, {} cache hits, {} tokens saved",
        totals.calls,
        totals.cache_hits,
        totals.saved_input_tokens + totals.saved_output_tokens
    );
}
