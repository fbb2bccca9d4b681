//! Open-loop load on the gateway: the server runs in-process on loopback (durable engine on
//! SQLite in a temporary directory) and each scenario sends requests at a fixed rate whatever
//! the answers' latency, so slow answers cannot slow the load down (no coordinated omission:
//! each latency is measured from when its request was due). Scenarios: `/healthz` (the
//! baseline: HTTP, auth-free routing, the client), StartSyncExecution of a small Express
//! machine (JSON API and AWS protocol), and StartExecution of a small Standard machine.
//!
//! `AGENTRY_BENCH_RATE` (default 500 requests/s) and `AGENTRY_BENCH_SECS` (default 5).

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentry_api::{AppState, Auth, DevKey, LimitsConfig};
use serde_json::json;

struct Outcome {
    name: &'static str,
    sent: usize,
    ok: usize,
    elapsed: Duration,
    /// Latencies of successful requests, sorted.
    lat: Vec<Duration>,
}

impl Outcome {
    fn pct(&self, p: f64) -> Duration {
        if self.lat.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.lat.len() as f64 * p).ceil() as usize).clamp(1, self.lat.len()) - 1;
        self.lat[i]
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Sends `make()` at `rate` per second for `secs`, each on its own task.
async fn open_loop(
    name: &'static str,
    rate: f64,
    secs: f64,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Outcome {
    let total = (rate * secs) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let req = make();
        handles.push(tokio::spawn(async move {
            let ok = match req.send().await {
                Ok(r) => {
                    let good = r.status().is_success();
                    let _ = r.bytes().await;
                    good
                }
                Err(_) => false,
            };
            (ok, due.elapsed())
        }));
    }
    let mut lat = Vec::with_capacity(total);
    let mut ok = 0;
    for h in handles {
        let (good, l) = h.await.expect("request task");
        if good {
            ok += 1;
            lat.push(l);
        }
    }
    let elapsed = start.elapsed();
    lat.sort();
    Outcome {
        name,
        sent: total,
        ok,
        elapsed,
        lat,
    }
}

fn main() {
    let rate: f64 = std::env::var("AGENTRY_BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500.0);
    let secs: f64 = std::env::var("AGENTRY_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(rate, secs));
}

async fn run(rate: f64, secs: f64) {
    let dir = tempfile::tempdir().unwrap();
    let store = agentry_storage::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    let queue = agentry_queue::open(&format!("sqlite://{}", dir.path().join("q.db").display()))
        .await
        .unwrap();
    let engine = agentry_engine::Engine::open(
        store,
        queue,
        agentry_engine::ResourceTable::new(),
        Default::default(),
    )
    .await
    .unwrap();
    let node = engine.run();
    let key = DevKey::from_secret(b"bench");
    let token = key
        .issue("bench", "load", Duration::from_secs(3600))
        .unwrap();
    let limits = LimitsConfig {
        requests_per_second: 0.0,
        ..Default::default()
    };
    let state = AppState::new(Some(engine), Auth::dev(key), limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(agentry_api::run(listener, state, async {
        let _ = stopped.await;
    }));
    let base = Arc::new(format!("http://{addr}"));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let auth = format!("Bearer {token}");
    let def = json!({"StartAt": "Greet", "States": {
        "Greet": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('Hello, {}!', $.name)"}, "Next": "Done"},
        "Done": {"Type": "Succeed"}}});
    for (name, ty) in [("quick", "EXPRESS"), ("durable", "STANDARD")] {
        let r = client
            .post(format!("{base}/v1/state-machines"))
            .header("authorization", &auth)
            .body(json!({"name": name, "definition": def, "type": ty}).to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "create {name}: {}", r.status());
    }
    let express_arn = {
        let r = client
            .get(format!("{base}/v1/state-machines/quick"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        r.json::<serde_json::Value>().await.unwrap()["stateMachineArn"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let input = json!({"input": {"name": "bench"}}).to_string();
    let aws_body =
        json!({"stateMachineArn": express_arn, "input": "{\"name\": \"bench\"}"}).to_string();

    let healthz = || client.get(format!("{base}/healthz"));
    let sync = || {
        client
            .post(format!(
                "{base}/v1/state-machines/quick/executions?sync=true"
            ))
            .header("authorization", &auth)
            .body(input.clone())
    };
    let aws_sync = || {
        client
            .post(format!("{base}/"))
            .header("authorization", &auth)
            .header("x-amz-target", "AWSStepFunctions.StartSyncExecution")
            .header("content-type", "application/x-amz-json-1.0")
            .body(aws_body.clone())
    };
    let standard = || {
        client
            .post(format!("{base}/v1/state-machines/durable/executions"))
            .header("authorization", &auth)
            .body(input.clone())
    };
    // Warm the connection pool and the definition caches.
    open_loop("warm-up", rate, 0.5, healthz).await;
    open_loop("warm-up", rate, 0.5, sync).await;

    println!(
        "open-loop load at {rate} requests/s for {secs} s each (latency from when each request was due)"
    );
    println!(
        "{:<36} {:>7} {:>7} {:>9} {:>8} {:>8} {:>8} {:>10}",
        "scenario", "sent", "ok", "req/s", "p50 ms", "p99 ms", "max ms", "p99/base"
    );
    let base_out = open_loop("GET /healthz (baseline)", rate, secs, healthz).await;
    let outs = vec![
        open_loop("Express start-sync (JSON API)", rate, secs, sync).await,
        open_loop("Express StartSyncExecution (AWS)", rate, secs, aws_sync).await,
        open_loop("Standard start (JSON API)", rate, secs, standard).await,
    ];
    let base_p99 = ms(base_out.pct(0.99)).max(1e-6);
    for o in std::iter::once(&base_out).chain(&outs) {
        println!(
            "{:<36} {:>7} {:>7} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>9.1}x",
            o.name,
            o.sent,
            o.ok,
            o.ok as f64 / o.elapsed.as_secs_f64(),
            ms(o.pct(0.50)),
            ms(o.pct(0.99)),
            ms(o.lat.last().copied().unwrap_or_default()),
            ms(o.pct(0.99)) / base_p99,
        );
    }
    let express = &outs[0];
    println!(
        "goal: Express start-sync p99 < 10 ms at {rate} req/s: {} (p99 {:.2} ms)",
        if ms(express.pct(0.99)) < 10.0 && express.ok == express.sent {
            "met"
        } else {
            "NOT met"
        },
        ms(express.pct(0.99))
    );
    let _ = stop.send(());
    let _ = server.await;
    node.stop().await;
}
