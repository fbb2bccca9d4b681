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
//! the same loop against the Redis backend, and a batched loop (send_batch of 10, receive of
//! up to 10, delete_batch of what came), both compared with `redis-benchmark -P 16 -q -t
//! set,lpush` on the same server. Every message sent, received and deleted counts as one
//! operation each in both loops. Limit and queue alternate over three rounds; the ratio is
//! the queue's best round over the limit's best. The server time the scripts take per
//! operation (`INFO commandstats`) is printed with the ceiling it implies: the rate the
//! server would reach doing nothing but run the scripts.
//!
//! Where it stands on the 2-core development machine (redis 7.0; redis-benchmark ≈ 1.6-1.7 M/s
//! when the machine is quiet, 0.75-0.95 M/s while other builds run). Each message costs the
//! server 9 element operations in the scripts (send: HSET msg, ZADD ready; receive: ZRANGE
//! and ZREM ready, HMGET msg, ZADD inv; delete: ZMSCORE, ZREM inv, HDEL msg), down from 14
//! before the receipt state moved into the in-flight member and the expiry index went
//! (layout 2, `src/redis/lua/common.lua`). Measured in alternating runs against the previous
//! layout on the same server:
//!
//! - batched loop: 1.36-1.59 µs of script per operation (was 1.63-2.18), 0.37-0.43 µs of it
//!   in the commands (was 0.56-0.70). Quiet machine: ≈ 520 k ops/s, 31-32 % of
//!   redis-benchmark (was ≈ 445 k, 26-27 %); busy machine: 306-384 k ops/s, 39-42 % best
//!   round against best round (was 233-332 k, 30-38 %). The goal of 30 % is met, barely,
//!   when the machine is quiet.
//! - single loop: 2.55-2.78 µs of script per operation (was 2.8-3.5); ≈ 160 k ops/s, about
//!   10 % when quiet and 15-18 % when busy (was ≈ 155 k, 9-10 % and 14-17 %). Not met.
//!
//! Where the time goes now. Batched, the scripts keep the server busy about 72 % of the time
//! when the machine is quiet; of their 1.4 µs per operation, about 0.4 µs are the commands
//! (ZADD, whose scores Redis parses as doubles, is the largest; ZMSCORE answers scores
//! formatted as doubles, ≈ 0.25 µs a handle) and 1 µs is Lua: every argument and every
//! command answer is copied into a Lua string and every command argument out again (in the
//! send script, taking a message's three arguments in costs ≈ 0.5 µs and its own loop, one
//! sequence number formatted and one concatenation, ≈ 0.4 µs), plus ≈ 3.5 µs per script call
//! (the shared prologue defining its functions, ≈ 2.3 µs, and the call itself). Past ≈ 32 %
//! the remaining server time is mostly that conversion work, which only fewer, larger values
//! per message would cut (or a server-side module instead of scripts). The single loop is
//! bound by the client, not the server: the scripts keep the server busy only 35-45 % of the
//! time, and the client's per-call work (allocation, task wake-ups, the reply parser) takes
//! the machine's other core; concurrent callers coalesce only ≈ 7 operations into a script
//! call, so the per-call cost also weighs ≈ 0.5 µs per operation. Runs where another
//! process slows redis-benchmark show higher ratios; the best-round comparison is there so
//! they do not pass for the goal being met.
//!
//! `cargo bench -p agentry-queue --features redis --bench queue`; `AGENTRY_BENCH_SECS` sets
//! each measurement's length (default 3), `AGENTRY_BENCH_CLIENTS` the concurrency (default 32),
//! `AGENTRY_BENCH_ONLY` one backend (`sqlite` or `redis`), `AGENTRY_BENCH_MODE` one of the Redis
//! loops (`single` or `batched`).

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

/// How each client moves messages: one at a time, or through the batch calls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// send -> receive(max 1) -> delete.
    Single,
    /// send_batch of 10 -> receive(max 10) -> delete_batch of what was received (the Redis
    /// measurement's second loop).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Batched,
}

/// Runs `clients` copies of the loop for `secs`; answers operations per second, where each
/// message sent, each message received and each message deleted is one operation (the
/// single loop also counts a receive that found nothing, which hardly happens).
async fn queue_ops(q: Arc<dyn Queue>, queue: &str, mode: Mode, clients: usize, secs: u64) -> f64 {
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
                    match mode {
                        Mode::Single => {
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
                        Mode::Batched => {
                            let batch = (0..agentry_queue::MAX_BATCH)
                                .map(|_| SendMessage::new(body.clone()))
                                .collect();
                            for r in q.send_batch(&queue, batch).await.unwrap() {
                                r.unwrap();
                                ops.fetch_add(1, Ordering::Relaxed);
                            }
                            let got = q
                                .receive(&queue, ReceiveOptions::max(agentry_queue::MAX_BATCH))
                                .await
                                .unwrap();
                            if got.is_empty() {
                                continue;
                            }
                            ops.fetch_add(got.len() as u64, Ordering::Relaxed);
                            let handles = got.into_iter().map(|m| m.receipt_handle).collect();
                            for r in q.delete_batch(&queue, handles).await.unwrap() {
                                r.unwrap();
                                ops.fetch_add(1, Ordering::Relaxed);
                            }
                        }
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
    q.delete_queue(queue).await.unwrap();
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
        let ops = queue_ops(q.clone(), "bench", Mode::Single, clients, secs).await;
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
    // Limit and queue alternate over a few rounds, because the machine is shared: other work
    // depresses redis-benchmark's rate far more than the queue's (it swings by half between
    // runs), so a ratio against one depressed limit flatters the queue. The result is the
    // queue's best round against the limit's best round, each as undisturbed as this run saw
    // it; per-round ratios are printed too.
    const ROUNDS: usize = 3;
    let only_mode = std::env::var("AGENTRY_BENCH_MODE").unwrap_or_default();
    let modes: Vec<_> = [
        (Mode::Single, "single (send, receive 1, delete)"),
        (Mode::Batched, "batched (send 10, receive 10, delete 10)"),
    ]
    .into_iter()
    .filter(|(_, label)| only_mode.is_empty() || label.starts_with(&only_mode))
    .collect();
    let mut ratios = vec![Vec::new(); modes.len()];
    let mut ops = vec![Vec::new(); modes.len()];
    let mut script_usec = vec![Vec::new(); modes.len()];
    let mut peers = Vec::new();
    for round in 1..=ROUNDS {
        let rates = redis_benchmark(host, port);
        if rates.is_empty() {
            break;
        }
        let peer = rates.iter().sum::<f64>() / rates.len() as f64;
        peers.push(peer);
        println!(
            "round {round}: redis-benchmark -P 16 SET and LPUSH {peer:>8.0} requests/s (the limit)"
        );
        for (i, (mode, label)) in modes.iter().enumerate() {
            let before = script_time(&mut conn).await;
            let started = Instant::now();
            let rate = queue_ops(rq.clone(), "bench", *mode, clients, secs).await;
            let elapsed = started.elapsed().as_secs_f64();
            ops[i].push(rate);
            let after = script_time(&mut conn).await;
            let ratio = 100.0 * rate / peer;
            println!(
                "  queue {label}: {rate:>8.0} ops/s ({:.0} messages/s): {ratio:.1} %",
                rate / 3.0
            );
            ratios[i].push(ratio);
            if let (Some(b), Some(a)) = (before, after) {
                // Over the whole measurement, queue creation and deletion included.
                let total = rate * elapsed;
                let usec = (a.usec - b.usec) / total;
                println!(
                    "    server time in scripts: {usec:.2} µs per operation, {:.2} µs of it in the \
                     Redis commands they call; {:.1} operations per script call; scripts kept the \
                     server busy {:.0} % of the time",
                    (a.commands_usec - b.commands_usec) / total,
                    total / (a.calls - b.calls).max(1.0),
                    (a.usec - b.usec) / 1e4 / elapsed
                );
                script_usec[i].push(usec);
            }
        }
    }
    rq.destroy().await.unwrap();
    if peers.is_empty() {
        println!("redis: no ratio (redis-benchmark did not run)");
        return;
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let peer = best(&peers);
    for (i, (_, label)) in modes.iter().enumerate() {
        let ratio = 100.0 * best(&ops[i]) / peer;
        println!(
            "redis ratio, {label}: {ratio:.1} % of redis-benchmark's pipelined rate, best round against \
             best round (per-round median {:.1} %; goal >= 30 %: {})",
            median(&mut ratios[i]),
            if ratio >= 30.0 { "met" } else { "not met" }
        );
        if !script_usec[i].is_empty() {
            // The server runs one script at a time: at this cost per operation, this is the
            // most it could do with nothing else to do (no network, no other clients).
            let usec = median(&mut script_usec[i]);
            println!(
                "  server-side ceiling at {usec:.2} µs of script per operation (median): {:.0} ops/s, \
                 {:.1} % of redis-benchmark's best rate",
                1e6 / usec,
                100.0 * 1e6 / usec / peer
            );
        }
    }
}

/// `redis-benchmark -P 16 -q -t set,lpush` against the server: requests per second of each.
#[cfg(feature = "redis")]
fn redis_benchmark(host: &str, port: &str) -> Vec<f64> {
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
    let mut rates = Vec::new();
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
                    rates.push(rps);
                }
            }
        }
        Err(e) => println!("redis-benchmark could not run: {e}"),
    }
    rates
}

/// What the server has spent on scripts so far (`INFO commandstats`).
#[cfg(feature = "redis")]
#[derive(Clone, Copy)]
struct ScriptTime {
    /// EVALSHA calls.
    calls: f64,
    /// Microseconds in EVALSHA, the commands the scripts call included.
    usec: f64,
    /// Microseconds in the commands scripts call (every command but EVALSHA and INFO; only
    /// the scripts run while the queue is measured).
    commands_usec: f64,
}

#[cfg(feature = "redis")]
async fn script_time(conn: &mut redis::aio::MultiplexedConnection) -> Option<ScriptTime> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .ok()?;
    let mut t = ScriptTime {
        calls: 0.0,
        usec: 0.0,
        commands_usec: 0.0,
    };
    for line in info.lines() {
        let Some((name, stats)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let field = |f: &str| {
            stats
                .split(',')
                .find_map(|kv| kv.strip_prefix(f)?.strip_prefix('=')?.parse::<f64>().ok())
        };
        match name {
            "evalsha" => (t.calls, t.usec) = (field("calls")?, field("usec")?),
            "info" | "eval" => {}
            _ => t.commands_usec += field("usec").unwrap_or(0.0),
        }
    }
    Some(t)
}
