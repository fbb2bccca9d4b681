//! Crash test: a child process (this test binary, re-run in writer mode) writes items from many
//! tasks and prints each write the store acknowledged; it is killed with SIGKILL at a random
//! moment, several times over the same database. After each kill the database must open and
//! hold every acknowledged write, intact.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use agentry_storage::sqlite::{SqliteOptions, SqliteStore};
use agentry_storage::{Error, ItemStore as _, ItemStoreExt, Key, Query, TableSpec};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

const CHILD_ENV: &str = "AGENTRY_STORAGE_CRASH_CHILD";
const WRITERS: usize = 8;

fn spec() -> TableSpec {
    TableSpec::new("Crash")
        .with_index("by-writer", "writer", "n")
        .with_stream()
}

fn payload(round: u32, w: usize, n: u64) -> String {
    format!("round {round} writer {w} item {n} ").repeat(1 + (n % 7) as usize)
}

/// Not a test of its own: the entry point of the writer child. Without the variable it
/// returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_entry() {
    let Ok(spec_env) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (path, round) = spec_env.split_once('|').expect("path|round");
    let round: u32 = round.parse().unwrap();
    let store = Arc::new(
        SqliteStore::open(path, SqliteOptions::default())
            .await
            .expect("child opens store"),
    );
    store
        .create_table(&spec())
        .await
        .expect("child creates table");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let pk = format!("r{round}-w{w}");
            let counter = Key::new(format!("counter-w{w}"), "c");
            let mut version = store
                .get("Crash", &counter)
                .await
                .unwrap()
                .map_or(0, |i| i.version);
            for n in 0u64.. {
                let attrs = json!({"n": n, "writer": pk, "payload": payload(round, w, n)});
                store
                    .put_if_absent(
                        "Crash",
                        Key::new(&pk, format!("{n:08}")),
                        attrs.as_object().unwrap().clone(),
                    )
                    .await
                    .unwrap();
                println!("ack item {pk} {n}");
                let attrs = json!({"last": n, "round": round});
                version = if version == 0 {
                    store
                        .put_if_absent("Crash", counter.clone(), attrs.as_object().unwrap().clone())
                        .await
                        .unwrap()
                } else {
                    store
                        .put_if_version(
                            "Crash",
                            counter.clone(),
                            attrs.as_object().unwrap().clone(),
                            version,
                        )
                        .await
                        .unwrap()
                };
                println!("ack counter counter-w{w} {version}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// A small xorshift generator seeded from the clock: the kill moments differ per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let exe = std::env::current_exe().unwrap();
    let mut acked_items: Vec<(String, u64)> = Vec::new();
    let mut acked_counters: HashMap<String, u64> = HashMap::new();
    for round in 0..4u32 {
        let mut child = tokio::process::Command::new(&exe)
            .args([
                "--exact",
                "crash::crash_child_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{}|{round}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn writer child");
        let stdout = child.stdout.take().unwrap();
        let reader = tokio::spawn(async move {
            let mut lines = Vec::new();
            let mut r = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                match r.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    // A line cut by the kill was never fully acknowledged.
                    Ok(_) if buf.ends_with(b"\n") => {
                        lines.push(String::from_utf8_lossy(&buf).trim_end().to_owned())
                    }
                    Ok(_) => break,
                }
            }
            lines
        });
        // Let the child start (it opens the store first), then kill it mid-stream.
        tokio::time::sleep(Duration::from_millis(150 + rng.next(600))).await;
        child.start_kill().expect("SIGKILL the child");
        let status = child.wait().await.unwrap();
        assert!(!status.success(), "the child was killed, not finished");
        let lines = reader.await.unwrap();
        let before = acked_items.len();
        for line in &lines {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["ack", "item", pk, n] => acked_items.push((pk.to_string(), n.parse().unwrap())),
                ["ack", "counter", pk, v] => {
                    acked_counters.insert(pk.to_string(), v.parse().unwrap());
                }
                _ => {}
            }
        }
        eprintln!(
            "crash round {round}: {} writes acknowledged before SIGKILL",
            acked_items.len() - before
        );
        assert!(
            acked_items.len() > before,
            "round {round}: the child acknowledged writes before it was killed ({} lines)",
            lines.len()
        );
        verify(&path, &acked_items, &acked_counters).await;
    }
}

async fn verify(path: &std::path::Path, items: &[(String, u64)], counters: &HashMap<String, u64>) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let store = SqliteStore::open(path, SqliteOptions::default())
        .await
        .expect("reopen after kill");
    for (pk, n) in items {
        let item = store
            .get("Crash", &Key::new(pk, format!("{n:08}")))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged item ({pk}, {n}) lost"));
        let (round, w) = parse_pk(pk);
        assert_eq!(item.attributes["n"], json!(n));
        assert_eq!(
            item.attributes["payload"],
            json!(payload(round, w, *n)),
            "item ({pk}, {n}) intact"
        );
    }
    for (pk, v) in counters {
        let item = store
            .get("Crash", &Key::new(pk, "c"))
            .await
            .unwrap()
            .expect("acknowledged counter present");
        // The child may have committed one more update it had no time to print.
        assert!(
            item.version == *v || item.version == v + 1,
            "{pk}: acknowledged version {v}, stored {}",
            item.version
        );
    }
    // Index entries and the stream were committed with the items.
    let (pk, _) = items.last().unwrap();
    let indexed = store
        .query_all(&Query::index("Crash", "by-writer", pk))
        .await
        .unwrap();
    let acked_here = items.iter().filter(|(p, _)| p == pk).count();
    assert!(
        indexed.len() >= acked_here,
        "index holds every acknowledged item of {pk}"
    );
    let changes = store.read_changes("Crash", pk, 0, 1000).await.unwrap();
    assert!(
        changes.len() >= acked_here,
        "stream holds every acknowledged write of {pk}"
    );
    let missing = store.get("Nope", &Key::new("a", "b")).await;
    assert!(matches!(missing, Err(Error::NotFound { .. })));
}

fn parse_pk(pk: &str) -> (u32, usize) {
    let (r, w) = pk.split_once('-').unwrap();
    (r[1..].parse().unwrap(), w[1..].parse().unwrap())
}
