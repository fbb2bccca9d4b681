//! kill -9 crash test of the SQLite backend, with the SQLite item store in the same process as
//! a worker uses them. A child process (this test binary, re-invoked with
//! `AGENTRY_QUEUE_CRASH_DB` set) sends, receives and deletes messages and, for each message it
//! received, writes an item to the store before deleting the message, printing each
//! acknowledged step; the parent kills it with SIGKILL at random moments, several times,
//! then checks from the printed record and what is left in the queue and the store that
//! nothing acknowledged (a send, an item) was lost or damaged, that every message sent was
//! either processed into the store or is still queued, and that no message went to two
//! consumers within its visibility timeout.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agentry_queue::sqlite::SqliteQueue;
use agentry_queue::{Queue, QueueAttributes, QueueExt, ReceiveOptions, SendMessage};
use agentry_storage::sqlite::{SqliteOptions, SqliteStore};
use agentry_storage::{ItemStore as _, ItemStoreExt, Key, TableSpec};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

const QUEUE: &str = "crash";
const TABLE: &str = "Processed";
const VISIBILITY: Duration = Duration::from_secs(2);
const ROUNDS: usize = 6;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn attributes() -> QueueAttributes {
    QueueAttributes {
        visibility_timeout: VISIBILITY,
        ..Default::default()
    }
}

/// A small random number without a dependency: the clock's nanoseconds, mixed.
fn random(below: u64) -> u64 {
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x % below
}

/// The child's side: runs only when re-invoked by [`kill_nine_loses_nothing_acknowledged`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_process() {
    let Ok(path) = std::env::var("AGENTRY_QUEUE_CRASH_DB") else {
        return;
    };
    let round = std::env::var("AGENTRY_QUEUE_CRASH_ROUND").unwrap();
    let q = Arc::new(SqliteQueue::open(&path).await.unwrap());
    q.create_queue(QUEUE, &attributes()).await.unwrap();
    let store = Arc::new(
        SqliteStore::open(&store_path(&path), SqliteOptions::default())
            .await
            .unwrap(),
    );
    store.create_table(&TableSpec::new(TABLE)).await.unwrap();
    let mut tasks = Vec::new();
    for k in 0..2 {
        let (q, round) = (q.clone(), round.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                if i % 4 == 0 {
                    let batch = (0..3)
                        .map(|j| SendMessage::new(format!("{round}-{k}-{i}-{j}")))
                        .collect();
                    for r in q
                        .send_batch(QUEUE, batch)
                        .await
                        .unwrap()
                        .into_iter()
                        .enumerate()
                    {
                        r.1.unwrap();
                        println!("SENT {round}-{k}-{i}-{}", r.0);
                    }
                } else {
                    q.send(QUEUE, SendMessage::new(format!("{round}-{k}-{i}")))
                        .await
                        .unwrap();
                    println!("SENT {round}-{k}-{i}");
                }
                // Keep the backlog small, so receivers and deleters are busy at the kill too.
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }));
    }
    for k in 0..3 {
        let (q, store) = (q.clone(), store.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0u64.. {
                let before = now_ms();
                let options = ReceiveOptions::max(1 + k).wait(Duration::from_millis(500));
                let got = q.receive(QUEUE, options).await.unwrap();
                let after = now_ms();
                for m in got {
                    println!("RECV {} {before} {after}", m.body);
                    // The worker's side effect, made before the message is deleted: one item
                    // per receive (a redelivery writes another), so none can hide a loss.
                    let receive = format!("{}#{before}#{k}", m.body);
                    store
                        .put(TABLE, Key::new(&m.body, &receive), processed(&m.body))
                        .await
                        .unwrap();
                    println!("STORED {} {receive}", m.body);
                    // Leave some undeleted, so they come back after their visibility timeout.
                    if !(n + k as u64).is_multiple_of(7) {
                        println!("DELETING {}", m.body);
                        q.delete(QUEUE, &m.receipt_handle).await.unwrap();
                        println!("DEL {} {}", m.body, now_ms());
                    }
                }
            }
        }));
    }
    // Never outlive a parent that failed to kill us.
    let _ = tokio::time::timeout(Duration::from_secs(30), futures_all(tasks)).await;
}

fn store_path(queue_db: &str) -> String {
    format!("{queue_db}.store")
}

/// The item a worker writes for a message: enough text that a torn write would show.
fn processed(body: &str) -> serde_json::Map<String, serde_json::Value> {
    json!({"body": body, "text": format!("processed {body}; ").repeat(20)})
        .as_object()
        .unwrap()
        .clone()
}

async fn futures_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

#[derive(Default)]
struct Record {
    sent: HashSet<String>,
    /// Per body: (time before the receive call, time after it returned).
    received: HashMap<String, Vec<(i64, i64)>>,
    deleting: HashSet<String>,
    deleted_at: HashMap<String, i64>,
    /// Items the store acknowledged: (message body, sort key).
    stored: HashSet<(String, String)>,
}

impl Record {
    fn line(&mut self, line: &str) {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["SENT", body] => {
                self.sent.insert((*body).to_owned());
            }
            ["RECV", body, before, after] => {
                self.received
                    .entry((*body).to_owned())
                    .or_default()
                    .push((before.parse().unwrap(), after.parse().unwrap()));
            }
            ["DELETING", body] => {
                self.deleting.insert((*body).to_owned());
            }
            ["STORED", body, sk] => {
                self.stored.insert(((*body).to_owned(), (*sk).to_owned()));
            }
            ["DEL", body, at] => {
                self.deleted_at
                    .insert((*body).to_owned(), at.parse().unwrap());
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_loses_nothing_acknowledged() {
    if std::env::var("AGENTRY_QUEUE_CRASH_DB").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut record = Record::default();
    for round in 0..ROUNDS {
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "crash::crash_child_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("AGENTRY_QUEUE_CRASH_DB", &db)
            .env("AGENTRY_QUEUE_CRASH_ROUND", format!("r{round}"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let run_for = Duration::from_millis(400 + random(1200));
        let deadline = tokio::time::Instant::now() + run_for;
        let mut buf = String::new();
        let partial = loop {
            buf.clear();
            match tokio::time::timeout_at(deadline, lines.read_line(&mut buf)).await {
                Ok(Ok(0)) => panic!("crash child exited on its own in round {round}"),
                Ok(Ok(_)) if buf.ends_with('\n') => record.line(buf.trim_end()),
                Ok(Err(e)) => panic!("reading the crash child: {e}"),
                // Out of time (or at a cut-off line): keep what part of a line was read.
                Ok(Ok(_)) | Err(_) => break buf.clone(),
            }
        };
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        // What the child printed before dying still counts; a cut-off last line does not.
        let mut rest = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut lines, &mut rest)
            .await
            .unwrap();
        let rest = format!("{partial}{rest}");
        let complete = rest.rfind('\n').map_or("", |i| &rest[..i]);
        for l in complete.lines() {
            record.line(l);
        }
    }
    assert!(
        record.sent.len() > 50,
        "the child made too little progress to test anything: {} sends",
        record.sent.len()
    );

    // After the last kill: wait out every visibility timeout, then take what is left.
    tokio::time::sleep(VISIBILITY + Duration::from_millis(500)).await;
    let q = SqliteQueue::open(&db).await.unwrap();
    let mut remaining = HashSet::new();
    loop {
        let before = now_ms();
        let got = q.receive(QUEUE, ReceiveOptions::max(10)).await.unwrap();
        let after = now_ms();
        if got.is_empty() {
            break;
        }
        let mut handles = Vec::new();
        for m in got {
            record
                .received
                .entry(m.body.clone())
                .or_default()
                .push((before, after));
            assert!(
                remaining.insert(m.body.clone()),
                "{} delivered twice while draining",
                m.body
            );
            handles.push(m.receipt_handle);
        }
        for r in q.delete_batch(QUEUE, handles).await.unwrap() {
            r.unwrap();
        }
    }

    let lost: Vec<_> = record
        .sent
        .iter()
        .filter(|b| !remaining.contains(*b) && !record.deleting.contains(*b))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged sends lost after kill -9: {lost:?}"
    );

    // Every item the store acknowledged is there, intact; every message deleted was processed
    // first (its item is stored), so nothing sent went unprocessed and unqueued.
    let store = SqliteStore::open(&store_path(db.to_str().unwrap()), SqliteOptions::default())
        .await
        .unwrap();
    for (body, sk) in &record.stored {
        let item = store
            .get(TABLE, &Key::new(body, sk))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged item {body} {sk} lost after kill -9"));
        assert_eq!(
            serde_json::Value::Object(item.attributes),
            serde_json::Value::Object(processed(body)),
            "item {body} {sk} damaged"
        );
    }
    let processed_bodies: HashSet<&String> = record.stored.iter().map(|(b, _)| b).collect();
    for body in &record.sent {
        assert!(
            remaining.contains(body) || processed_bodies.contains(body),
            "{body} was sent but is neither queued nor processed"
        );
    }
    for (body, at) in &record.deleted_at {
        assert!(
            !remaining.contains(body),
            "{body} was deleted (acknowledged at {at}) but came back"
        );
        let later = record
            .received
            .get(body)
            .into_iter()
            .flatten()
            .filter(|(before, _)| before > at)
            .count();
        assert_eq!(
            later, 0,
            "{body} was received again after its delete was acknowledged"
        );
    }
    let vis = VISIBILITY.as_millis() as i64;
    let mut redelivered = 0;
    for (body, receipts) in &mut record.received {
        receipts.sort();
        for pair in receipts.windows(2) {
            let ((first_before, _), (_, second_after)) = (pair[0], pair[1]);
            // The first receive made the message invisible no earlier than `first_before`; the
            // second returned by `second_after`. Sooner than the timeout is a double delivery.
            assert!(
                second_after >= first_before + vis,
                "{body} delivered twice within its visibility timeout: {receipts:?}"
            );
            redelivered += 1;
        }
    }
    println!(
        "crash test: {ROUNDS} kills, {} sends acknowledged, {} items stored, {} deleted, {} left, {redelivered} redeliveries",
        record.sent.len(),
        record.stored.len(),
        record.deleted_at.len(),
        remaining.len()
    );
}
