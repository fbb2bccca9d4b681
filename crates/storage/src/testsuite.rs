//! The conformance suite: what every backend of [`ItemStore`] must do. Each function takes a
//! fresh store and the [`ManualClock`] it was opened with, and panics on a violation. A backend
//! runs all of them with [`crate::storage_testsuite!`]:
//!
//! ```ignore
//! async fn setup(clock: Arc<ManualClock>) -> Option<TestStore> { ... }
//! agentry_storage::storage_testsuite!(setup);
//! ```

mod reads;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::clock::ManualClock;
use crate::error::Error;
pub use reads::*;

use crate::item::{Attributes, Condition, Key, Query, TableSpec, Write};
use crate::{ItemStore, ItemStoreExt};

/// A store under test and whatever must live as long as it (a temporary directory, a schema
/// dropped on drop).
pub struct TestStore {
    pub store: Box<dyn ItemStore>,
    pub guard: Box<dyn std::any::Any + Send>,
    /// Run after a test that passed (a failed test leaves its data to look at).
    pub cleanup: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

/// Runs every suite test as a `#[tokio::test]` against stores from `$setup`, an async fn taking
/// `Arc<ManualClock>` and returning `Option<TestStore>` (`None`: skipped, the setup said why).
#[macro_export]
macro_rules! storage_testsuite {
    ($setup:path) => {
        $crate::storage_testsuite!(@tests $setup;
            put_get_and_versions, table_definitions, invalid_names_and_keys, oversize_item,
            conditional_writes, conditional_put_race, transaction_all_or_nothing,
            transaction_limits, query_pages_both_orders, query_ranges, bad_cursor,
            index_newest_first, index_follows_updates, ttl_expiry, change_stream, many_concurrent_writers,
            contended_updates, no_write_skew_on_absent_items);
    };
    (@tests $setup:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let clock = ::std::sync::Arc::new($crate::ManualClock::new($crate::testsuite::START));
                let Some(t) = $setup(clock.clone()).await else { return };
                $crate::testsuite::$name(&*t.store, &clock).await;
                let $crate::testsuite::TestStore { store, guard, cleanup } = t;
                drop(store);
                if let Some(cleanup) = cleanup {
                    cleanup.await;
                }
                drop(guard);
            }
        )*
    };
}

/// The clock's reading when each test starts.
pub const START: i64 = 1_800_000_000;

fn attrs(v: Value) -> Attributes {
    match v {
        Value::Object(m) => m,
        _ => panic!("test attributes must be an object"),
    }
}

fn k(pk: &str, sk: &str) -> Key {
    Key::new(pk, sk)
}

async fn table(store: &dyn ItemStore, spec: TableSpec) -> String {
    store
        .create_table(&spec)
        .await
        .unwrap_or_else(|e| panic!("create table {:?}: {e}", spec.name));
    spec.name
}

fn expect_invalid<T: std::fmt::Debug>(r: crate::Result<T>, field: &str) -> String {
    match r {
        Err(Error::InvalidInput { field: f, message }) => {
            assert_eq!(f, field, "invalid input names the wrong field: {message}");
            message
        }
        other => panic!("expected invalid {field}, got {other:?}"),
    }
}

pub async fn put_get_and_versions(store: &dyn ItemStore, _clock: &ManualClock) {
    let t = table(store, TableSpec::new("Users")).await;
    assert_eq!(store.get(&t, &k("u1", "profile")).await.unwrap(), None);
    let a = attrs(
        json!({"name": "Ada", "tags": ["x", "ü"], "nested": {"n": 1.5, "null": null}, "z": "\u{0}"}),
    );
    assert_eq!(
        store.put(&t, k("u1", "profile"), a.clone()).await.unwrap(),
        1
    );
    let item = store
        .get(&t, &k("u1", "profile"))
        .await
        .unwrap()
        .expect("item just put");
    assert_eq!(item.attributes, a);
    assert_eq!(item.version, 1);
    assert_eq!(item.key, k("u1", "profile"));
    assert_eq!(
        store
            .put(&t, k("u1", "profile"), attrs(json!({"name": "Ada L."})))
            .await
            .unwrap(),
        2
    );
    let item = store.get(&t, &k("u1", "profile")).await.unwrap().unwrap();
    assert_eq!(
        (item.version, item.attributes),
        (2, attrs(json!({"name": "Ada L."})))
    );
    // Keys are exact: neither a longer sort key nor another partition matches.
    assert_eq!(store.get(&t, &k("u1", "profil")).await.unwrap(), None);
    assert_eq!(store.get(&t, &k("u2", "profile")).await.unwrap(), None);
    store.delete(&t, k("u1", "profile")).await.unwrap();
    assert_eq!(store.get(&t, &k("u1", "profile")).await.unwrap(), None);
    // Deleting an absent item is not an error; re-creating starts at version 1.
    store.delete(&t, k("u1", "profile")).await.unwrap();
    assert_eq!(store.put(&t, k("u1", "profile"), a).await.unwrap(), 1);
}

pub async fn table_definitions(store: &dyn ItemStore, _clock: &ManualClock) {
    let spec = TableSpec::new("AgentSessions")
        .with_index("by-user", "user", "created")
        .with_ttl("expires")
        .with_stream();
    store.create_table(&spec).await.unwrap();
    store
        .create_table(&spec)
        .await
        .expect("creating the same table again succeeds");
    assert_eq!(store.describe_table("AgentSessions").await.unwrap(), spec);
    let other = TableSpec::new("AgentSessions");
    assert!(matches!(
        store.create_table(&other).await,
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(
        store.describe_table("AgentSessions").await.unwrap(),
        spec,
        "definition unchanged"
    );
    for r in [
        store.get("Missing", &k("a", "b")).await.map(drop),
        store
            .put("Missing", k("a", "b"), attrs(json!({})))
            .await
            .map(drop),
        store
            .query(&Query::partition("Missing", "a"))
            .await
            .map(drop),
        store.describe_table("Missing").await.map(drop),
    ] {
        match r {
            Err(e @ Error::NotFound { .. }) => {
                assert!(e.to_string().contains("\"Missing\""), "{e}")
            }
            other => panic!("expected table not found, got {other:?}"),
        }
    }
    let dup = TableSpec::new("Dups")
        .with_index("ix1", "a", "b")
        .with_index("ix1", "c", "d");
    expect_invalid(store.create_table(&dup).await, "index name");
    let missing_index = store
        .query(&Query::index("AgentSessions", "by-nothing", "u"))
        .await;
    assert!(
        matches!(missing_index, Err(Error::NotFound { .. })),
        "{missing_index:?}"
    );
}

pub async fn invalid_names_and_keys(store: &dyn ItemStore, _clock: &ManualClock) {
    let t = table(store, TableSpec::new("Tools")).await;
    for name in ["ab", "has space", "semi;colon", "quote'", &"x".repeat(256)] {
        let msg = expect_invalid(
            store.create_table(&TableSpec::new(name)).await,
            "table name",
        );
        assert!(
            msg.contains(&format!("{name:?}")),
            "error names the table: {msg}"
        );
        expect_invalid(store.get(name, &k("a", "b")).await, "table name");
    }
    expect_invalid(
        store.put(&t, k("", "b"), attrs(json!({}))).await,
        "partition key",
    );
    expect_invalid(
        store.put(&t, k("a", ""), attrs(json!({}))).await,
        "sort key",
    );
    expect_invalid(
        store
            .put(&t, k(&"p".repeat(2049), "b"), attrs(json!({})))
            .await,
        "partition key",
    );
    expect_invalid(
        store
            .put(&t, k("a", &"s".repeat(1025)), attrs(json!({})))
            .await,
        "sort key",
    );
    expect_invalid(store.get(&t, &k("a\0b", "c")).await, "partition key");
    // Largest keys allowed are fine.
    store
        .put(
            &t,
            k(&"p".repeat(2048), &"s".repeat(1024)),
            attrs(json!({})),
        )
        .await
        .unwrap();
}

pub async fn oversize_item(store: &dyn ItemStore, _clock: &ManualClock) {
    let t = table(store, TableSpec::new("KnowledgeBase")).await;
    store
        .put(&t, k("doc", "1"), attrs(json!({"body": "small"})))
        .await
        .unwrap();
    let big = attrs(json!({"body": "x".repeat(400 * 1024)}));
    let msg = expect_invalid(store.put(&t, k("doc", "1"), big.clone()).await, "item");
    assert!(
        msg.contains("\"doc\"") && msg.contains("\"1\"") && msg.contains("KnowledgeBase"),
        "error names the item: {msg}"
    );
    let kept = store.get(&t, &k("doc", "1")).await.unwrap().unwrap();
    assert_eq!(
        (kept.version, kept.attributes),
        (1, attrs(json!({"body": "small"}))),
        "stored item untouched"
    );
    // In a transaction the whole transaction is refused.
    let r = store
        .transact(vec![
            Write::put(&t, k("doc", "2"), attrs(json!({}))),
            Write::put(&t, k("doc", "3"), big),
        ])
        .await;
    expect_invalid(r, "item");
    assert_eq!(store.get(&t, &k("doc", "2")).await.unwrap(), None);
    // Just under the limit is accepted.
    let fits = attrs(json!({"body": "y".repeat(400 * 1024 - 100)}));
    store.put(&t, k("doc", "4"), fits.clone()).await.unwrap();
    assert_eq!(
        store
            .get(&t, &k("doc", "4"))
            .await
            .unwrap()
            .unwrap()
            .attributes,
        fits
    );
}

pub async fn conditional_writes(store: &dyn ItemStore, _clock: &ManualClock) {
    let t = table(store, TableSpec::new("Executions")).await;
    let key = k("exec-1", "meta");
    assert_eq!(
        store
            .put_if_absent(&t, key.clone(), attrs(json!({"s": "RUNNING"})))
            .await
            .unwrap(),
        1
    );
    let e = store
        .put_if_absent(&t, key.clone(), attrs(json!({"s": "X"})))
        .await
        .unwrap_err();
    match &e {
        Error::ConditionFailed {
            index,
            item,
            reason,
        } => {
            assert_eq!(*index, 0);
            assert_eq!(
                (item.table.as_str(), item.pk.as_str(), item.sk.as_str()),
                ("Executions", "exec-1", "meta")
            );
            assert!(reason.contains("version 1"), "{reason}");
        }
        other => panic!("expected condition failure, got {other:?}"),
    }
    assert!(!e.is_retryable() && e.is_condition_failed());
    assert_eq!(
        store
            .put_if_version(&t, key.clone(), attrs(json!({"s": "DONE"})), 1)
            .await
            .unwrap(),
        2
    );
    let stale = store
        .put_if_version(&t, key.clone(), attrs(json!({"s": "STALE"})), 1)
        .await;
    assert!(
        matches!(stale, Err(Error::ConditionFailed { .. })),
        "{stale:?}"
    );
    assert_eq!(
        store.get(&t, &key).await.unwrap().unwrap().attributes,
        attrs(json!({"s": "DONE"}))
    );
    let absent = store
        .put_when(&t, k("exec-2", "meta"), attrs(json!({})), Condition::Exists)
        .await;
    assert!(
        matches!(absent, Err(Error::ConditionFailed { .. })),
        "{absent:?}"
    );
    let absent = store
        .put_if_version(&t, k("exec-2", "meta"), attrs(json!({})), 1)
        .await;
    assert!(
        matches!(absent, Err(Error::ConditionFailed { .. })),
        "{absent:?}"
    );
    assert_eq!(store.get(&t, &k("exec-2", "meta")).await.unwrap(), None);
    assert!(
        store
            .delete_when(&t, key.clone(), Condition::Version(1))
            .await
            .is_err()
    );
    assert!(store.get(&t, &key).await.unwrap().is_some());
    store
        .delete_when(&t, key.clone(), Condition::Version(2))
        .await
        .unwrap();
    assert_eq!(store.get(&t, &key).await.unwrap(), None);
    assert!(store.delete_when(&t, key, Condition::Exists).await.is_err());
}

pub async fn conditional_put_race(store: &dyn ItemStore, _clock: &ManualClock) {
    let t = table(store, TableSpec::new("Executions")).await;
    let key = k("exec-race", "meta");
    store
        .put(&t, key.clone(), attrs(json!({"step": 0})))
        .await
        .unwrap();
    for round in 1..=10u64 {
        // Every writer read the same version; exactly one may advance it.
        let writers = (0..4).map(|w| {
            let key = key.clone();
            let t = t.clone();
            async move {
                store
                    .put_if_version(&t, key, attrs(json!({"step": round, "writer": w})), round)
                    .await
            }
        });
        let results = futures_join_all(writers).await;
        let wins: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
        assert_eq!(
            wins.len(),
            1,
            "round {round}: exactly one writer wins, got {results:?}"
        );
        assert_eq!(*wins[0].as_ref().unwrap(), round + 1);
        assert!(
            results
                .iter()
                .filter(|r| r.is_err())
                .all(|r| matches!(r, Err(Error::ConditionFailed { .. })))
        );
    }
    let item = store.get(&t, &key).await.unwrap().unwrap();
    assert_eq!(
        (item.version, item.attributes["step"].clone()),
        (11, json!(10))
    );
    // Two creators racing for the same new item: one creates, one is told it exists.
    let (a, b) = tokio::join!(
        store.put_if_absent(&t, k("exec-new", "meta"), attrs(json!({"by": "a"}))),
        store.put_if_absent(&t, k("exec-new", "meta"), attrs(json!({"by": "b"})))
    );
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one creator wins: {a:?} {b:?}"
    );
}

/// Polls futures concurrently on the current task (no spawning: they borrow the store).
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("all futures finished"))
        .collect()
}

pub async fn transaction_all_or_nothing(store: &dyn ItemStore, _clock: &ManualClock) {
    let t = table(store, TableSpec::new("History").with_stream()).await;
    store
        .put(&t, k("e1", "state"), attrs(json!({"v": "old"})))
        .await
        .unwrap();
    store
        .put(&t, k("e1", "gone"), attrs(json!({})))
        .await
        .unwrap();
    let writes = vec![
        Write::put(&t, k("e1", "state"), attrs(json!({"v": "new"}))).when(Condition::Version(1)),
        Write::put(
            &t,
            k("e1", "event-1"),
            attrs(json!({"type": "TaskStateEntered"})),
        )
        .when(Condition::Absent),
        Write::delete(&t, k("e1", "gone")),
        Write::check(&t, k("e1", "lock"), Condition::Exists),
    ];
    let err = store.transact(writes.clone()).await.unwrap_err();
    match &err {
        Error::ConditionFailed { index, item, .. } => {
            assert_eq!(*index, 3, "the failing write's position: {err}");
            assert_eq!(item.sk, "lock");
        }
        other => panic!("expected condition failure, got {other:?}"),
    }
    assert!(err.to_string().contains("\"lock\""), "{err}");
    // Nothing of the failed transaction is visible, not even in the stream.
    assert_eq!(
        store
            .get(&t, &k("e1", "state"))
            .await
            .unwrap()
            .unwrap()
            .attributes["v"],
        json!("old")
    );
    assert_eq!(store.get(&t, &k("e1", "event-1")).await.unwrap(), None);
    assert!(store.get(&t, &k("e1", "gone")).await.unwrap().is_some());
    assert_eq!(store.read_changes(&t, "e1", 0, 100).await.unwrap().len(), 2);
    store
        .put(&t, k("e1", "lock"), attrs(json!({})))
        .await
        .unwrap();
    let versions = store.transact(writes).await.unwrap();
    assert_eq!(versions, vec![Some(2), Some(1), None, None]);
    assert_eq!(
        store
            .get(&t, &k("e1", "state"))
            .await
            .unwrap()
            .unwrap()
            .attributes["v"],
        json!("new")
    );
    assert!(store.get(&t, &k("e1", "event-1")).await.unwrap().is_some());
    assert_eq!(store.get(&t, &k("e1", "gone")).await.unwrap(), None);
    // A transaction across tables.
    let t2 = table(store, TableSpec::new("Timers")).await;
    store
        .transact(vec![
            Write::put(&t, k("e2", "a"), attrs(json!({}))),
            Write::put(&t2, k("e2", "timer"), attrs(json!({"due": 5}))),
        ])
        .await
        .unwrap();
    assert!(store.get(&t2, &k("e2", "timer")).await.unwrap().is_some());
}

pub async fn transaction_limits(store: &dyn ItemStore, _clock: &ManualClock) {
    let t = table(store, TableSpec::new("Limits")).await;
    let writes = |n: usize| {
        (0..n)
            .map(|i| Write::put(&t, k("p", &format!("{i:03}")), attrs(json!({"i": i}))))
            .collect::<Vec<_>>()
    };
    expect_invalid(store.transact(writes(101)).await, "transaction");
    assert!(
        store
            .query_all(&Query::partition(&t, "p"))
            .await
            .unwrap()
            .is_empty()
    );
    expect_invalid(store.transact(vec![]).await, "transaction");
    let dup = vec![
        Write::put(&t, k("p", "1"), attrs(json!({}))),
        Write::delete(&t, k("p", "1")),
    ];
    expect_invalid(store.transact(dup).await, "transaction");
    assert_eq!(store.transact(writes(100)).await.unwrap().len(), 100);
    assert_eq!(
        store
            .query_all(&Query::partition(&t, "p"))
            .await
            .unwrap()
            .len(),
        100
    );
    // A write to a missing table fails the transaction as a whole.
    let r = store
        .transact(vec![
            Write::put(&t, k("q", "1"), attrs(json!({}))),
            Write::put("NoSuchTable", k("q", "1"), attrs(json!({}))),
        ])
        .await;
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    assert_eq!(store.get(&t, &k("q", "1")).await.unwrap(), None);
}

pub async fn many_concurrent_writers(store: &dyn ItemStore, _clock: &ManualClock) {
    let t = table(store, TableSpec::new("Concurrent").with_stream()).await;
    let writes = (0..64).map(|i| {
        let t = t.clone();
        async move {
            store
                .put_if_absent(
                    &t,
                    k(&format!("p{}", i % 4), &format!("{i:03}")),
                    attrs(json!({"i": i})),
                )
                .await
        }
    });
    let results = futures_join_all(writes).await;
    assert!(results.iter().all(|r| matches!(r, Ok(1))), "{results:?}");
    for p in 0..4 {
        let items = store
            .query_all(&Query::partition(&t, format!("p{p}")))
            .await
            .unwrap();
        assert_eq!(items.len(), 16);
        let changes = store
            .read_changes(&t, &format!("p{p}"), 0, 100)
            .await
            .unwrap();
        assert_eq!(changes.len(), 16);
        let seqs: BTreeSet<u64> = changes.iter().map(|c| c.sequence).collect();
        assert_eq!(seqs.len(), 16, "positions are distinct");
    }
}

pub async fn contended_updates(store: &dyn ItemStore, _clock: &ManualClock) {
    let t = table(store, TableSpec::new("Progress")).await;
    let key = k("exec-map", "progress");
    // Eight branches of a Map state each count five finished items into one progress item.
    let branches = (0..8).map(|_| {
        let (t, key) = (t.clone(), key.clone());
        async move {
            for _ in 0..5 {
                let bump = |item: Option<&crate::Item>| {
                    let done = item.map_or(0, |i| i.attributes["done"].as_u64().unwrap());
                    Some(attrs(json!({"done": done + 1})))
                };
                store
                    .update(&t, key.clone(), 1000, bump)
                    .await
                    .expect("update within its attempts");
            }
        }
    });
    futures_join_all(branches).await;
    let item = store.get(&t, &key).await.unwrap().unwrap();
    assert_eq!(item.attributes["done"], json!(40), "no increment lost");
    assert_eq!(item.version, 40);
    // A change that declines writes nothing.
    assert_eq!(
        store.update(&t, key.clone(), 1, |_| None).await.unwrap(),
        None
    );
    assert_eq!(store.get(&t, &key).await.unwrap().unwrap().version, 40);
}

pub async fn no_write_skew_on_absent_items(store: &dyn ItemStore, _clock: &ManualClock) {
    let t = table(store, TableSpec::new("Tokens")).await;
    // A checks that x is absent and creates y; B checks that y is absent and creates x. In any
    // serial order the second one's check fails: they must never both succeed.
    for round in 0..30 {
        let (x, y) = (k(&format!("x{round}"), "t"), k(&format!("y{round}"), "t"));
        let a = store.transact(vec![
            Write::check(&t, x.clone(), Condition::Absent),
            Write::put(&t, y.clone(), attrs(json!({"by": "a"}))),
        ]);
        let b = store.transact(vec![
            Write::put(&t, x.clone(), attrs(json!({"by": "b"}))),
            Write::check(&t, y.clone(), Condition::Absent),
        ]);
        let (a, b) = tokio::join!(a, b);
        assert!(
            a.is_ok() || b.is_ok(),
            "round {round}: one of them must win: {a:?} {b:?}"
        );
        assert!(
            !(a.is_ok() && b.is_ok()),
            "round {round}: both checks passed (write skew)"
        );
        let (gx, gy) = (
            store.get(&t, &x).await.unwrap(),
            store.get(&t, &y).await.unwrap(),
        );
        assert_eq!(
            gx.is_some(),
            b.is_ok(),
            "round {round}: x exists exactly if b committed"
        );
        assert_eq!(
            gy.is_some(),
            a.is_ok(),
            "round {round}: y exists exactly if a committed"
        );
    }
}
