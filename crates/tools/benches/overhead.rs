//! What the registry adds to a tool call: schema checks, policy, timeout, metrics and
//! idempotency bookkeeping. Compares, in one run:
//!
//! - `data_analysis` called through the registry against the same analysis called directly;
//! - a do-nothing built-in through the registry (the registry's own cost, absolute);
//! - a process tool (`/bin/cat` echoing its event) through the registry against spawning the
//!   same process directly with tokio.
//!
//! `cargo bench -p agentry-tools --bench overhead`

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentry_tools::builtin::{DataAnalysis, Table, analyse};
use agentry_tools::{Builtin, Call, InvokerSpec, Registry, ToolContext, ToolSpec};
use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Noop;

#[async_trait]
impl Builtin for Noop {
    fn spec(&self) -> ToolSpec {
        ToolSpec::new(
            "noop",
            InvokerSpec::Builtin {
                name: "noop".into(),
            },
        )
        .input_schema(json!({
            "type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}
        }))
    }

    async fn call(&self, input: Value, _cx: &ToolContext<'_>) -> agentry_tools::Result<Value> {
        Ok(input)
    }
}

fn us(d: Duration, n: u32) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

async fn time<F, Fut>(n: u32, mut f: F) -> f64
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for i in 0..n.min(50) {
        f(i).await;
    }
    let t = Instant::now();
    for i in 0..n {
        f(i).await;
    }
    us(t.elapsed(), n)
}

async fn cat_directly(event: &Value) -> Value {
    let mut child = tokio::process::Command::new("/bin/cat")
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&serde_json::to_vec(event).unwrap())
        .await
        .unwrap();
    drop(stdin);
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    child.wait().await.unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = Registry::new();
        r.add_builtin(Arc::new(DataAnalysis)).unwrap();
        r.add_builtin(Arc::new(Noop)).unwrap();
        r.register(ToolSpec::new(
            "cat",
            InvokerSpec::Process { command: "/bin/cat".into(), args: vec![] },
        ))
        .unwrap();

        let mut csv = String::from("region,price,units\n");
        for i in 0..50 {
            csv.push_str(&format!("{},{},{}\n", ["EU", "US", "APAC"][i % 3], 10 + i, i * 7 % 13));
        }
        let req = json!({"csv": csv, "group_by": {"by": "region", "aggregates": [{"op": "mean", "column": "price"}]}});
        let n = 3_000;
        let direct = time(n, |_| {
            let (csv, req) = (&csv, &req);
            async move {
                let t = Table::from_csv(csv).unwrap();
                std::hint::black_box(analyse(&t, req).unwrap());
            }
        })
        .await;
        let registry = time(n, |_| {
            let (r, req) = (&r, &req);
            async move {
                std::hint::black_box(r.invoke(Call::new("data_analysis", req.clone())).await.unwrap());
            }
        })
        .await;
        let keyed = time(n, |i| {
            let (r, req) = (&r, &req);
            async move {
                std::hint::black_box(r.invoke(Call::new("data_analysis", req.clone()).key(format!("k{i}"))).await.unwrap());
            }
        })
        .await;
        let noop = time(20_000, |i| {
            let r = &r;
            async move {
                std::hint::black_box(r.invoke(Call::new("noop", json!({"x": i}))).await.unwrap());
            }
        })
        .await;
        let event = json!({"query": "competitor pricing", "limit": 5});
        let m = 300;
        let spawn = time(m, |_| {
            let event = &event;
            async move {
                std::hint::black_box(cat_directly(event).await);
            }
        })
        .await;
        let process = time(m, |_| {
            let (r, event) = (&r, &event);
            async move {
                std::hint::black_box(r.invoke(Call::new("cat", event.clone())).await.unwrap());
            }
        })
        .await;

        println!("tool call overhead (µs per call, 2 cores)");
        println!("  data_analysis (50-row CSV, group-by)");
        println!("    called directly             {direct:>9.1}");
        println!("    through the registry        {registry:>9.1}   ratio {:.2}x  (+{:.1} µs)", registry / direct, registry - direct);
        println!("    with an idempotency key     {keyed:>9.1}   ratio {:.2}x  (+{:.1} µs, result remembered in memory)", keyed / direct, keyed - direct);
        println!("  do-nothing built-in through the registry {noop:>6.1}");
        println!("  process tool (/bin/cat echoing the event)");
        println!("    spawned directly (tokio)    {spawn:>9.1}");
        println!("    through the registry        {process:>9.1}   ratio {:.2}x  (+{:.1} µs: cleared env, scratch dir, limits)", process / spawn, process - spawn);
    });
}
