//! Queue throughput against the machine's own limits, measured in the same run.
//!
//! SQLite: concurrent clients each loop send -> receive -> delete on one queue
//! (`synchronous=FULL`). The limit it is compared with is the raw group-commit rate: the same
//! number of concurrent clients (tasks on the same runtime) each inserting one small row,
//! their inserts batched by one writer thread into one transaction and one fsync per batch,
//! with the same pragmas. Raw and queue rounds alternate and the median ratio is reported,
//! because the development machine is shared and its fsync latency swings widely. Every
//! queue operation is a durable write too, so queue operations per second over raw durable
//! row writes per second says how much the queue's own work costs on top of the fsyncs both
//! must pay. The single-client commit rate (one fsync per row) is printed for scale.
//!
//! Redis (feature `redis`, server from `AGENTRY_BENCH_REDIS_URL` or `AGENTRY_TEST_REDIS_URL`):
//! the same loop against the Redis backend, compared with `redis-benchmark -P 16 -q -t
//! set,lpush` run against the same server just before.
//!
//! `cargo bench -p agentry-queue --features redis --bench queue`; `AGENTRY_BENCH_SECS` sets
//! each measurement's length (default 3), `AGENTRY_BENCH_CLIENTS` the concurrency (default 32).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agentry_queue::sqlite::SqliteQueue;
use agentry_queue::{Queue, QueueAttributes, QueueExt, ReceiveOptions, SendMessage};
use tokio::sync::oneshot;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `clients` copies of send -> receive -> delete for `secs`; answers operations per second.
async fn queue_ops(q: Arc<dyn Queue>, queue: &str, clients: usize, secs: u64) -> f64 {
    q.create_queue(queue, &QueueAttributes::default())
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let body = "x".repeat(100);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (q, stop, ops, queue, body) = (
                q.clone(),
                stop.clone(),
                ops.clone(),
                queue.to_owned(),
                body.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    q.send(&queue, SendMessage::new(body.clone()))
                        .await
                        .unwrap();
                    let got = q.receive(&queue, ReceiveOptions::max(1)).await.unwrap();
                    ops.fetch_add(2, Ordering::Relaxed);
                    for m in got {
                        q.delete(&queue, &m.receipt_handle).await.unwrap();
                        ops.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let done = ops.load(Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    done as f64 / elapsed.as_secs_f64()
}

fn raw_connection(path: &std::path::Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .unwrap();
    c
}

/// One client, one row per transaction: the fsync-bound commit rate.
fn raw_single_commits(path: &std::path::Path, secs: u64) -> f64 {
    let c = raw_connection(path);
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        c.execute("INSERT INTO t (v) VALUES (?1)", ["x".repeat(100)])
            .unwrap();
        n += 1;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// `clients` tasks on the same runtime as the queue's clients, each inserting one row at a
/// time through one writer thread that commits whatever has queued up as one transaction:
/// rows per second. Same thread layout as the queue (runtime workers plus one writer), so
/// both get the same share of a busy machine.
async fn raw_group_commits(path: &std::path::Path, clients: usize, secs: u64) -> f64 {
    let (tx, rx) = mpsc::channel::<oneshot::Sender<()>>();
    let path = path.to_owned();
    let writer = std::thread::spawn(move || {
        let c = raw_connection(&path);
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            c.execute_batch("BEGIN IMMEDIATE").unwrap();
            {
                let mut stmt = c.prepare_cached("INSERT INTO t (v) VALUES (?1)").unwrap();
                for _ in &batch {
                    stmt.execute(["x".repeat(100)]).unwrap();
                }
            }
            c.execute_batch("COMMIT").unwrap();
            for done in batch {
                let _ = done.send(());
            }
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let rows = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (tx, stop, rows) = (tx.clone(), stop.clone(), rows.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let (done_tx, done) = oneshot::channel();
                    tx.send(done_tx).unwrap();
                    done.await.unwrap();
                    rows.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let n = rows.load(Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    drop(tx);
    tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    n as f64 / elapsed.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let secs = env_u64("AGENTRY_BENCH_SECS", 3);
    let clients = env_u64("AGENTRY_BENCH_CLIENTS", 32) as usize;
    let only = std::env::var("AGENTRY_BENCH_ONLY").unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    println!(
        "queue benchmark: {clients} concurrent clients, {secs} s per measurement, synchronous=FULL"
    );
    if only != "redis" {
        sqlite_part(dir.path(), clients, secs).await;
    }
    #[cfg(feature = "redis")]
    if only != "sqlite" {
        redis_part(clients, secs).await;
    }
    #[cfg(not(feature = "redis"))]
    println!("redis: skipped (built without the redis feature)");
}

/// Alternates raw and queue measurements, so both see the same share of a shared machine;
/// each pair gives a ratio, and the median is the result.
async fn sqlite_part(dir: &std::path::Path, clients: usize, secs: u64) {
    const ROUNDS: usize = 3;
    let path = dir.join("raw-single.db");
    let single = tokio::task::spawn_blocking(move || raw_single_commits(&path, secs))
        .await
        .unwrap();
    println!("sqlite raw commits, 1 client, 1 row per fsync:       {single:>10.0} rows/s");
    let q: Arc<dyn Queue> = Arc::new(SqliteQueue::open(dir.join("queue.db")).await.unwrap());
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let group = raw_group_commits(&dir.join("raw-group.db"), clients, secs).await;
        let ops = queue_ops(q.clone(), "bench", clients, secs).await;
        let ratio = 100.0 * ops / group;
        println!(
            "round {round}: raw group commit (the limit) {group:>8.0} rows/s, \
             queue send+receive+delete {ops:>8.0} ops/s ({:.0} messages/s): {ratio:.0} %",
            ops / 3.0
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "sqlite ratio: {:.0} % of the raw group-commit limit, median of {ROUNDS} rounds (goal >= 50 %)",
        ratios[ROUNDS / 2]
    );
}

#[cfg(feature = "redis")]
async fn redis_part(clients: usize, secs: u64) {
    let Some(url) = std::env::var("AGENTRY_BENCH_REDIS_URL")
        .or_else(|_| std::env::var("AGENTRY_TEST_REDIS_URL"))
        .ok()
    else {
        println!("redis: skipped (AGENTRY_BENCH_REDIS_URL / AGENTRY_TEST_REDIS_URL not set)");
        return;
    };
    let hostport = url
        .trim_start_matches("redis://")
        .split(['/', '?'])
        .next()
        .unwrap_or("127.0.0.1:6379");
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "6379"));
    let out = std::process::Command::new("redis-benchmark")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-P",
            "16",
            "-q",
            "-t",
            "set,lpush",
            "-n",
            "300000",
        ])
        .output();
    let mut peer = Vec::new();
    match out {
        Ok(out) => {
            // Lines look like "SET: 512345.67 requests per second, p50=..." after \r progress.
            for line in String::from_utf8_lossy(&out.stdout).split(['\r', '\n']) {
                if let Some((name, rest)) = line.split_once(": ")
                    && let Some(rps) = rest
                        .split_whitespace()
                        .next()
                        .and_then(|v| v.parse::<f64>().ok())
                    && rest.contains("requests per second")
                {
                    println!("redis-benchmark -P 16 {name}: {rps:>10.0} requests/s");
                    peer.push(rps);
                }
            }
        }
        Err(e) => println!("redis-benchmark could not run: {e}"),
    }
    let prefix = format!("agentry-bench-{}", std::process::id());
    let rq = Arc::new(
        agentry_queue::redis::RedisQueue::connect(
            &url,
            &prefix,
            Arc::new(agentry_queue::SystemClock),
        )
        .await
        .unwrap(),
    );
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let before = script_time(&mut conn).await;
    let ops = queue_ops(rq.clone(), "bench", clients, secs).await;
    let after = script_time(&mut conn).await;
    rq.destroy().await.unwrap();
    println!(
        "redis queue send+receive+delete, {clients} clients:     {ops:>10.0} ops/s ({:.0} messages/s)",
        ops / 3.0
    );
    if let (Some((calls0, usec0)), Some((calls1, usec1))) = (before, after) {
        let total = ops * secs as f64;
        println!(
            "redis server time in queue scripts: {:.1} µs per queue operation ({:.1} operations per script call)",
            (usec1 - usec0) / total,
            total / (calls1 - calls0).max(1.0)
        );
    }
    if !peer.is_empty() {
        let peer = peer.iter().sum::<f64>() / peer.len() as f64;
        println!(
            "redis ratio: {:.1} % of redis-benchmark's pipelined rate {peer:.0}/s (goal >= 30 %)",
            100.0 * ops / peer
        );
    }
}

/// Calls and microseconds the server has spent in EVALSHA so far (`INFO commandstats`).
#[cfg(feature = "redis")]
async fn script_time(conn: &mut redis::aio::MultiplexedConnection) -> Option<(f64, f64)> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .ok()?;
    let line = info.lines().find(|l| l.starts_with("cmdstat_evalsha:"))?;
    let field = |name: &str| {
        line.split([':', ',']).find_map(|kv| {
            kv.strip_prefix(name)?
                .strip_prefix('=')?
                .parse::<f64>()
                .ok()
        })
    };
    Some((field("calls")?, field("usec")?))
}
