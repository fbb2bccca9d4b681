//! Cache throughput, as ratios against a peer measured in the same run.
//!
//! - memory backend: get/set ops/s, one task and several tasks on all cores;
//! - Redis backend (feature `redis`, server from `AGENTRY_BENCH_REDIS_URL`, else
//!   `AGENTRY_TEST_REDIS_URL`, else redis://127.0.0.1:6379): get/set ops/s through the
//!   `Cache` trait against `redis-benchmark -t get,set` on the same server, with one client
//!   and with 50, and redis-benchmark's pipelined rate (`-P 16`) as the server's ceiling.
//!
//! `cargo bench -p agentry-cache --features redis --bench cache`

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentry_cache::{Cache, MemoryCache, SetOptions};

/// How long each measurement runs.
const RUN: Duration = Duration::from_secs(2);
/// redis-benchmark's default payload is 3 bytes; use the same.
const VALUE: &[u8] = b"xxx";

#[derive(Clone, Copy, Debug)]
enum Op {
    Set,
    Get,
}

/// Operations per second of `op` from `tasks` concurrent tasks over one cache.
async fn measure(cache: Arc<dyn Cache>, op: Op, tasks: usize) -> f64 {
    cache
        .set("bench:key", VALUE, SetOptions::default())
        .await
        .unwrap();
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let cache = cache.clone();
        set.spawn(async move {
            let key = format!("bench:key:{}", t % 8);
            let mut n = 0u64;
            while start.elapsed() < RUN {
                for _ in 0..64 {
                    match op {
                        Op::Set => {
                            assert!(cache.set(&key, VALUE, SetOptions::default()).await.unwrap())
                        }
                        Op::Get => drop(cache.get(&key).await.unwrap()),
                    }
                }
                n += 64;
            }
            n
        });
    }
    let total: u64 = set.join_all().await.into_iter().sum();
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("memory backend");
        let memory: Arc<dyn Cache> = Arc::new(MemoryCache::default());
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        for op in [Op::Set, Op::Get] {
            let one = measure(memory.clone(), op, 1).await;
            let many = measure(memory.clone(), op, threads * 2).await;
            println!(
                "  {op:?}: {one:>12.0} ops/s (1 task)  {many:>12.0} ops/s ({} tasks)",
                threads * 2
            );
        }
        #[cfg(feature = "redis")]
        redis_vs_redis_benchmark(memory).await;
        #[cfg(not(feature = "redis"))]
        println!("redis: skipped (build with --features redis)");
    });
}

#[cfg(feature = "redis")]
async fn redis_vs_redis_benchmark(memory: Arc<dyn Cache>) {
    use agentry_cache::redis::RedisCache;

    let url = std::env::var("AGENTRY_BENCH_REDIS_URL")
        .or_else(|_| std::env::var("AGENTRY_TEST_REDIS_URL"))
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let cache: Arc<dyn Cache> = match RedisCache::connect(&url, "agentry-bench:").await {
        Ok(cache) => Arc::new(cache),
        Err(e) => return println!("redis: skipped ({e})"),
    };
    let (host, port) = host_port(&url);
    println!("redis backend at {host}:{port} against redis-benchmark on the same server");
    for (clients, label) in [
        (1, "1 client, not pipelined"),
        (50, "50 clients, not pipelined"),
    ] {
        let requests = if clients == 1 { "40000" } else { "200000" };
        let peer = redis_benchmark(&host, port, &["-c", &clients.to_string(), "-n", requests]);
        for op in [Op::Set, Op::Get] {
            let ours = measure(cache.clone(), op, clients).await;
            let theirs = peer
                .as_ref()
                .map(|p| if matches!(op, Op::Set) { p.0 } else { p.1 });
            match theirs {
                Some(theirs) => println!(
                    "  {label:<26} {op:?}: {ours:>9.0} ops/s, redis-benchmark {theirs:>9.0} ops/s, ratio {:.2}",
                    ours / theirs
                ),
                None => println!(
                    "  {label:<26} {op:?}: {ours:>9.0} ops/s (redis-benchmark not available)"
                ),
            }
        }
    }
    if let Some((set, get)) =
        redis_benchmark(&host, port, &["-c", "50", "-P", "16", "-n", "1000000"])
    {
        let ours_set = measure(cache.clone(), Op::Set, 50).await;
        let ours_get = measure(cache.clone(), Op::Get, 50).await;
        println!(
            "  pipelined ceiling (-c 50 -P 16): SET {set:.0} ops/s (ours at 50 tasks {:.2} of it), GET {get:.0} ops/s ({:.2})",
            ours_set / set,
            ours_get / get
        );
    }
    let mem_get = measure(memory, Op::Get, 1).await;
    let redis_get = measure(cache.clone(), Op::Get, 1).await;
    println!(
        "  memory vs redis, one task GET: {:.0}x",
        mem_get / redis_get
    );
    cache.delete_prefix("").await.unwrap();
}

#[cfg(feature = "redis")]
fn host_port(url: &str) -> (String, u16) {
    let rest = url.split("://").nth(1).unwrap_or("127.0.0.1:6379");
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    let hostport = rest.split(['/', '?']).next().unwrap_or("127.0.0.1:6379");
    match hostport.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().unwrap_or(6379)),
        None => (hostport.to_owned(), 6379),
    }
}

/// SET and GET requests per second from `redis-benchmark` with extra arguments.
#[cfg(feature = "redis")]
fn redis_benchmark(host: &str, port: u16, extra: &[&str]) -> Option<(f64, f64)> {
    let output = std::process::Command::new("redis-benchmark")
        .args([
            "-h",
            host,
            "-p",
            &port.to_string(),
            "-q",
            "--csv",
            "-t",
            "get,set",
        ])
        .args(extra)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let rps = |test: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("\"{test}\"")))
            .and_then(|l| l.split(',').nth(1))
            .and_then(|v| v.trim_matches('"').parse::<f64>().ok())
    };
    Some((rps("SET")?, rps("GET")?))
}
