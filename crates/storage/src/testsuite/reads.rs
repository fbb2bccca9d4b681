//! Conformance tests of reads: queries and their cursors, ranges, indexes, TTL and the change
//! stream.

use std::collections::BTreeSet;

use serde_json::json;

use super::{START, attrs, expect_invalid, k, table};
use crate::clock::ManualClock;
use crate::item::{ChangeKind, Condition, Query, SortRange, TableSpec};
use crate::{ItemStore, ItemStoreExt};

pub async fn query_pages_both_orders(store: &dyn ItemStore, _clock: &ManualClock) {
    let t = table(store, TableSpec::new("Pages")).await;
    let sks: Vec<String> = (0..25).map(|i| format!("item#{i:02}")).collect();
    for sk in &sks {
        store
            .put(&t, k("p", sk), attrs(json!({"sk": sk})))
            .await
            .unwrap();
    }
    store
        .put(&t, k("other", "item#00"), attrs(json!({})))
        .await
        .unwrap();
    store
        .put(&t, k("p0", "item#00"), attrs(json!({})))
        .await
        .unwrap();
    for descending in [false, true] {
        let mut expected = sks.clone();
        if descending {
            expected.reverse();
        }
        let mut q = Query::partition(&t, "p").limit(7);
        q.descending = descending;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = store.query(&q).await.unwrap();
            pages += 1;
            assert!(page.items.len() <= 7);
            seen.extend(page.items.iter().map(|i| i.key.sk.clone()));
            assert!(page.items.iter().all(|i| i.key.pk == "p"));
            match page.cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
            assert!(pages < 10, "cursor loops");
        }
        assert_eq!(seen, expected, "descending={descending}");
        assert_eq!(pages, 4);
    }
    // A page that ends exactly at the last item.
    let page = store
        .query(&Query::partition(&t, "p").limit(25))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 25);
    if let Some(c) = page.cursor {
        assert!(
            store
                .query(&Query::partition(&t, "p").limit(25).after(Some(c)))
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }
    expect_invalid(
        store.query(&Query::partition(&t, "p").limit(0)).await,
        "limit",
    );
    expect_invalid(
        store.query(&Query::partition(&t, "p").limit(5000)).await,
        "limit",
    );
}

pub async fn query_ranges(store: &dyn ItemStore, _clock: &ManualClock) {
    let t = table(store, TableSpec::new("Ranges")).await;
    for sk in [
        "a",
        "msg#001",
        "msg#002",
        "msg#010",
        "msg$",
        "msg",
        "tool#1",
        "ü",
        "\u{10FFFF}x",
    ] {
        store.put(&t, k("s", sk), attrs(json!({}))).await.unwrap();
    }
    let sks = |q: Query| async move {
        store
            .query_all(&q)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.key.sk)
            .collect::<Vec<_>>()
    };
    let q = || Query::partition(&t, "s");
    assert_eq!(
        sks(q().prefix("msg#")).await,
        ["msg#001", "msg#002", "msg#010"]
    );
    assert_eq!(
        sks(q().prefix("msg#").descending()).await,
        ["msg#010", "msg#002", "msg#001"]
    );
    assert_eq!(
        sks(q().range(SortRange::Between("msg#002".into(), "msg#010".into()))).await,
        ["msg#002", "msg#010"]
    );
    assert_eq!(
        sks(q().range(SortRange::From("tool".into()))).await,
        ["tool#1", "ü", "\u{10FFFF}x"]
    );
    assert_eq!(
        sks(q().range(SortRange::To("msg".into()))).await,
        ["a", "msg"]
    );
    assert_eq!(sks(q().prefix("\u{10FFFF}")).await, ["\u{10FFFF}x"]);
    assert_eq!(sks(q().prefix("ü")).await, ["ü"]);
    assert!(sks(q().prefix("zzz")).await.is_empty());
    // Prefix pages in descending order.
    let page = store
        .query(&q().prefix("msg#").descending().limit(2))
        .await
        .unwrap();
    let sk: Vec<_> = page.items.iter().map(|i| i.key.sk.as_str()).collect();
    assert_eq!(sk, ["msg#010", "msg#002"]);
    let rest = store
        .query(&q().prefix("msg#").descending().limit(2).after(page.cursor))
        .await
        .unwrap();
    assert_eq!(
        rest.items
            .iter()
            .map(|i| i.key.sk.as_str())
            .collect::<Vec<_>>(),
        ["msg#001"]
    );
    assert_eq!(rest.cursor, None);
    expect_invalid(
        store
            .query(&q().range(SortRange::Between("b".into(), "a".into())))
            .await,
        "range",
    );
}

pub async fn bad_cursor(store: &dyn ItemStore, _clock: &ManualClock) {
    let t = table(store, TableSpec::new("Cursors")).await;
    store.put(&t, k("p", "1"), attrs(json!({}))).await.unwrap();
    for c in ["not a cursor", "zz", "7b7d", ""] {
        let r = store
            .query(&Query::partition(&t, "p").after(Some(c.to_owned())))
            .await;
        expect_invalid(r, "cursor");
    }
}

/// An item is in an index under its current values only: re-written with the same values it
/// is there once, with its new attributes; with others it moves; without them it leaves.
pub async fn index_follows_updates(store: &dyn ItemStore, _clock: &ManualClock) {
    let spec = TableSpec::new("Runs").with_index("by-owner", "owner", "at");
    let t = table(store, spec).await;
    let in_index = |owner: &'static str| {
        let t = t.clone();
        async move {
            store
                .query_all(&Query::index(&t, "by-owner", owner))
                .await
                .unwrap()
                .into_iter()
                .map(|i| (i.key.pk, i.attributes["n"].as_i64().unwrap()))
                .collect::<Vec<_>>()
        }
    };
    let put = |n: i64, v: serde_json::Value| {
        let t = t.clone();
        async move {
            let mut a = attrs(v);
            a.insert("n".into(), json!(n));
            store.put(&t, k("run-1", "meta"), a).await.unwrap();
        }
    };
    put(1, json!({"owner": "ada", "at": 5})).await;
    put(2, json!({"owner": "ada", "at": 5})).await;
    assert_eq!(in_index("ada").await, [("run-1".to_string(), 2)]);
    put(3, json!({"owner": "ada", "at": 6})).await;
    assert_eq!(in_index("ada").await, [("run-1".to_string(), 3)]);
    put(4, json!({"owner": "bob", "at": 6})).await;
    assert!(in_index("ada").await.is_empty());
    assert_eq!(in_index("bob").await, [("run-1".to_string(), 4)]);
    put(5, json!({"at": 6})).await;
    assert!(in_index("bob").await.is_empty());
    put(6, json!({"owner": "bob", "at": 7})).await;
    assert_eq!(in_index("bob").await, [("run-1".to_string(), 6)]);
    store.delete(&t, k("run-1", "meta")).await.unwrap();
    assert!(in_index("bob").await.is_empty());
}

pub async fn index_newest_first(store: &dyn ItemStore, _clock: &ManualClock) {
    let spec = TableSpec::new("AgentSessions").with_index("by-user", "user_id", "created_at");
    let t = table(store, spec).await;
    // Sessions of two users, created at increasing times, written out of order.
    for (i, when) in [5i64, 1, 9, 3, 7, 2, 8, 4, 6, 10, -1].iter().enumerate() {
        let user = if i % 3 == 2 { "bob" } else { "ada" };
        store
            .put(
                &t,
                k(&format!("session-{i:02}"), "meta"),
                attrs(json!({"user_id": user, "created_at": when})),
            )
            .await
            .unwrap();
    }
    // Not in the index: no user, a user that is not a string, a float timestamp.
    store
        .put(
            &t,
            k("session-x", "meta"),
            attrs(json!({"created_at": 100})),
        )
        .await
        .unwrap();
    store
        .put(
            &t,
            k("session-y", "meta"),
            attrs(json!({"user_id": 7, "created_at": 100})),
        )
        .await
        .unwrap();
    store
        .put(
            &t,
            k("session-z", "meta"),
            attrs(json!({"user_id": "ada", "created_at": 1.5})),
        )
        .await
        .unwrap();
    let times = |items: Vec<crate::Item>| {
        items
            .iter()
            .map(|i| i.attributes["created_at"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let newest = store
        .query_all(&Query::index(&t, "by-user", "ada").descending())
        .await
        .unwrap();
    assert_eq!(times(newest), [10, 8, 7, 5, 4, 3, 1, -1]);
    // Pages of 3, newest first.
    let mut q = Query::index(&t, "by-user", "ada").descending().limit(3);
    let mut all = Vec::new();
    loop {
        let page = store.query(&q).await.unwrap();
        all.extend(page.items);
        match page.cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(times(all), [10, 8, 7, 5, 4, 3, 1, -1]);
    let bob = store
        .query_all(&Query::index(&t, "by-user", "bob"))
        .await
        .unwrap();
    assert_eq!(times(bob), [2, 6, 9]);
    // Index key values obey key limits: the write is refused, the stored item kept.
    let long = attrs(json!({"user_id": "u".repeat(2049), "created_at": 1}));
    let msg = expect_invalid(
        store.put(&t, k("session-00", "meta"), long).await,
        "index key",
    );
    assert!(
        msg.contains("user_id") && msg.contains("by-user") && msg.contains("session-00"),
        "{msg}"
    );
    assert_eq!(
        store
            .get(&t, &k("session-00", "meta"))
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    // A range on the encoded sort value.
    let lo = crate::sort_value(&json!(4)).unwrap();
    let hi = crate::sort_value(&json!(8)).unwrap();
    let mid = store
        .query_all(&Query::index(&t, "by-user", "ada").range(SortRange::Between(lo, hi)))
        .await
        .unwrap();
    assert_eq!(times(mid), [4, 5, 7, 8]);
    // Moving a session to another user and deleting one update the index at once.
    store
        .put(
            &t,
            k("session-00", "meta"),
            attrs(json!({"user_id": "bob", "created_at": 5})),
        )
        .await
        .unwrap();
    store.delete(&t, k("session-09", "meta")).await.unwrap();
    let newest = store
        .query_all(&Query::index(&t, "by-user", "ada").descending())
        .await
        .unwrap();
    assert_eq!(times(newest), [8, 7, 4, 3, 1, -1]);
    let bob = store
        .query_all(&Query::index(&t, "by-user", "bob"))
        .await
        .unwrap();
    assert_eq!(times(bob), [2, 5, 6, 9]);
    // Items with equal index values come in some stable order (DynamoDB does not promise
    // which); pages across them never repeat or skip one.
    for i in 0..5 {
        store
            .put(
                &t,
                k(&format!("tie-{i}"), "meta"),
                attrs(json!({"user_id": "cy", "created_at": 1})),
            )
            .await
            .unwrap();
    }
    let mut q = Query::index(&t, "by-user", "cy").limit(2);
    let mut keys = Vec::new();
    loop {
        let page = store.query(&q).await.unwrap();
        keys.extend(page.items.into_iter().map(|i| i.key.pk));
        match page.cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    keys.sort();
    assert_eq!(keys, ["tie-0", "tie-1", "tie-2", "tie-3", "tie-4"]);
}

pub async fn ttl_expiry(store: &dyn ItemStore, clock: &ManualClock) {
    let spec = TableSpec::new("Cache")
        .with_ttl("expires_at")
        .with_index("by-kind", "kind", "n")
        .with_stream();
    let t = table(store, spec).await;
    let now = START;
    store
        .put(
            &t,
            k("c", "soon"),
            attrs(json!({"expires_at": now + 10, "kind": "llm", "n": 1})),
        )
        .await
        .unwrap();
    store
        .put(
            &t,
            k("c", "later"),
            attrs(json!({"expires_at": now + 1000, "kind": "llm", "n": 2})),
        )
        .await
        .unwrap();
    store
        .put(
            &t,
            k("c", "never"),
            attrs(json!({"expires_at": "not a number", "kind": "llm", "n": 3})),
        )
        .await
        .unwrap();
    store
        .put(&t, k("c", "past"), attrs(json!({"expires_at": now - 1})))
        .await
        .unwrap();
    assert_eq!(
        store.get(&t, &k("c", "past")).await.unwrap(),
        None,
        "already expired when written"
    );
    assert!(store.get(&t, &k("c", "soon")).await.unwrap().is_some());
    clock.advance(9);
    assert!(
        store.get(&t, &k("c", "soon")).await.unwrap().is_some(),
        "one second before expiry"
    );
    clock.advance(1);
    assert_eq!(
        store.get(&t, &k("c", "soon")).await.unwrap(),
        None,
        "gone at its expiry second"
    );
    let live: BTreeSet<_> = store
        .query_all(&Query::partition(&t, "c"))
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.key.sk)
        .collect();
    assert_eq!(
        live,
        BTreeSet::from(["later".to_owned(), "never".to_owned()])
    );
    let indexed = store
        .query_all(&Query::index(&t, "by-kind", "llm"))
        .await
        .unwrap();
    assert_eq!(
        indexed
            .iter()
            .map(|i| i.key.sk.as_str())
            .collect::<Vec<_>>(),
        ["later", "never"]
    );
    // An expired item is absent to conditions; re-creating it starts at version 1.
    assert!(
        store
            .put_when(&t, k("c", "soon"), attrs(json!({})), Condition::Exists)
            .await
            .is_err()
    );
    assert_eq!(
        store
            .put_if_absent(&t, k("c", "soon"), attrs(json!({"again": true})))
            .await
            .unwrap(),
        1
    );
    // Purging removes the expired rows and records their removal.
    let purged = store.purge_expired(&t, 100).await.unwrap();
    assert_eq!(purged, 1, "only \"past\" is still expired");
    assert_eq!(store.purge_expired(&t, 100).await.unwrap(), 0);
    let changes = store.read_changes(&t, "c", 0, 100).await.unwrap();
    let last = changes.last().unwrap();
    assert_eq!(
        (last.kind, last.key.sk.as_str()),
        (ChangeKind::Remove, "past")
    );
    assert_eq!(
        last.old.as_ref().unwrap().attributes["expires_at"],
        json!(now - 1)
    );
    clock.advance(1000);
    assert_eq!(store.get(&t, &k("c", "later")).await.unwrap(), None);
    assert_eq!(store.purge_expired(&t, 100).await.unwrap(), 1);
    assert!(store.get(&t, &k("c", "never")).await.unwrap().is_some());
    // A table without a TTL attribute ignores such attributes.
    let plain = table(store, TableSpec::new("Plain")).await;
    store
        .put(&plain, k("p", "1"), attrs(json!({"expires_at": 0})))
        .await
        .unwrap();
    assert!(store.get(&plain, &k("p", "1")).await.unwrap().is_some());
}

pub async fn change_stream(store: &dyn ItemStore, clock: &ManualClock) {
    let t = table(store, TableSpec::new("Streamed").with_stream()).await;
    store
        .put(&t, k("e1", "a"), attrs(json!({"n": 1})))
        .await
        .unwrap();
    store
        .put(&t, k("e2", "a"), attrs(json!({"n": 100})))
        .await
        .unwrap();
    clock.advance(5);
    store
        .put(&t, k("e1", "a"), attrs(json!({"n": 2})))
        .await
        .unwrap();
    store
        .put(&t, k("e1", "b"), attrs(json!({"n": 3})))
        .await
        .unwrap();
    store.delete(&t, k("e1", "a")).await.unwrap();
    store.delete(&t, k("e1", "never-existed")).await.unwrap();
    let _ = store
        .put_if_absent(&t, k("e1", "b"), attrs(json!({})))
        .await
        .unwrap_err();
    let changes = store.read_changes(&t, "e1", 0, 100).await.unwrap();
    let summary: Vec<_> = changes
        .iter()
        .map(|c| (c.kind, c.key.sk.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (ChangeKind::Insert, "a"),
            (ChangeKind::Modify, "a"),
            (ChangeKind::Insert, "b"),
            (ChangeKind::Remove, "a")
        ],
        "one change per committed write, none for no-ops or failed writes"
    );
    assert!(
        changes.windows(2).all(|w| w[0].sequence < w[1].sequence),
        "increasing positions"
    );
    assert_eq!(changes[0].old, None);
    assert_eq!(changes[0].new.as_ref().unwrap().attributes["n"], json!(1));
    assert_eq!(changes[1].old.as_ref().unwrap().attributes["n"], json!(1));
    assert_eq!(changes[1].new.as_ref().map(|i| i.version), Some(2));
    assert_eq!(changes[3].old.as_ref().map(|i| i.version), Some(2));
    assert_eq!(changes[3].new, None);
    assert_eq!((changes[0].at, changes[1].at), (START, START + 5));
    // Following from a position returns only what came after it, in pages.
    let after = store
        .read_changes(&t, "e1", changes[1].sequence, 1)
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].sequence, changes[2].sequence);
    assert!(
        store
            .read_changes(&t, "e1", changes[3].sequence, 10)
            .await
            .unwrap()
            .is_empty()
    );
    store.put(&t, k("e1", "c"), attrs(json!({}))).await.unwrap();
    let next = store
        .read_changes(&t, "e1", changes[3].sequence, 10)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].key.sk, "c");
    // Partitions have streams of their own.
    let e2 = store.read_changes(&t, "e2", 0, 10).await.unwrap();
    assert_eq!(e2.len(), 1);
    assert_eq!(e2[0].new.as_ref().unwrap().attributes["n"], json!(100));
    // Changes older than the stream's 24 hours go at the next purge; positions go on rising.
    clock.advance(crate::rules::STREAM_RETENTION_SECONDS - 1);
    store.put(&t, k("e1", "d"), attrs(json!({}))).await.unwrap();
    clock.advance(7);
    store.purge_expired(&t, 100).await.unwrap();
    let kept = store.read_changes(&t, "e1", 0, 100).await.unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].key.sk, "d");
    assert!(kept[0].sequence > next[0].sequence);
    assert!(
        store
            .read_changes(&t, "e2", 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A table without a stream says so.
    let plain = table(store, TableSpec::new("NoStream")).await;
    expect_invalid(store.read_changes(&plain, "e1", 0, 10).await, "table");
}
