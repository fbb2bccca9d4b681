//! The conformance suite: what every backend must do, as async functions over `&dyn Cache`.
//! Each backend's tests run all of them through [`cache_suite!`]; the suite is the definition
//! of correct. A backend hands each test a cache of its own (a fresh memory cache, or a Redis
//! key prefix per test), so tests may use fixed key names.
//!
//! Expiry tests sleep with `tokio::time::sleep`: on a paused runtime (the memory backend's
//! tests) that costs no time; against a server it waits for real, a fraction of a second.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;

use crate::{Cache, CacheExt, End, Error, KeyTtl, SetOptions, ZRange};

/// A test's result; a failure is a message saying what differed, and where.
pub type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!("{}:{}: {}", file!(), line!(), format!($($fmt)+)));
        }
    };
}

macro_rules! ensure_eq {
    ($left:expr, $right:expr) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            return Err(format!(
                "{}:{}: {} == {}\n  left: {:?}\n right: {:?}",
                file!(),
                line!(),
                stringify!($left),
                stringify!($right),
                l,
                r
            ));
        }
    }};
}

/// Turn a cache error into a test failure naming the expression.
macro_rules! ok {
    ($e:expr) => {
        $e.await
            .map_err(|e| format!("{}:{}: {}: {e}", file!(), line!(), stringify!($e)))?
    };
}

/// Run every test of the suite for a backend. `$make` is an async fn taking the test's name
/// and returning `Option<Arc<dyn Cache>>` holding nothing but what the test writes (`None`
/// skips the test, for a server that is not configured); `$attr` is the test attribute.
#[macro_export]
macro_rules! cache_suite {
    (#[$attr:meta] $make:path) => {
        $crate::cache_suite!(@tests #[$attr] $make;
            strings, set_conditions, binary_and_empty_values, expiry, ttl_changes,
            compare_and_set, compare_and_set_race, counters, concurrent_increments,
            hashes, wrong_type, sorted_sets, sorted_set_ties, sorted_set_pops, publish_subscribe,
            pattern_subscribe, prefixes, json_helpers);
    };
    (@tests #[$attr:meta] $make:path; $($name:ident),* $(,)?) => {
        $(
            #[$attr]
            async fn $name() {
                let Some(cache) = $make(stringify!($name)).await else { return };
                if let Err(failure) = $crate::testsuite::$name(&*cache).await {
                    panic!("{failure}");
                }
            }
        )*
    };
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Run futures concurrently on this task (the suite only gets a borrowed cache, so it
/// cannot spawn); against a server their commands are in flight at the same time.
async fn join_all<'a, T>(futures: Vec<Pin<Box<dyn Future<Output = T> + Send + 'a>>>) -> Vec<T> {
    let mut futures: Vec<_> = futures.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in futures.iter_mut().zip(out.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|v| v.expect("every future finished"))
        .collect()
}

pub async fn strings(cache: &dyn Cache) -> Outcome {
    ensure_eq!(ok!(cache.get("k")), None);
    ensure!(
        ok!(cache.set("k", b"v1", SetOptions::default())),
        "plain set writes"
    );
    ensure_eq!(ok!(cache.get("k")), Some(b("v1")));
    ok!(cache.put("k", b"v2"));
    ensure_eq!(ok!(cache.get("k")), Some(b("v2")));
    ok!(cache.put("other", b"x"));
    ensure_eq!(ok!(cache.delete(&["k", "other", "missing"])), 2);
    ensure_eq!(ok!(cache.get("k")), None);
    ensure_eq!(ok!(cache.delete(&["k"])), 0);
    Ok(())
}

pub async fn set_conditions(cache: &dyn Cache) -> Outcome {
    ensure!(
        !ok!(cache.set("k", b"x", SetOptions::default().if_present())),
        "if_present on absent key"
    );
    ensure_eq!(ok!(cache.get("k")), None);
    ensure!(
        ok!(cache.set_if_absent("k", b"first", None)),
        "if_absent on absent key writes"
    );
    ensure!(
        !ok!(cache.set_if_absent("k", b"second", None)),
        "if_absent on present key"
    );
    ensure_eq!(ok!(cache.get("k")), Some(b("first")));
    ensure!(
        ok!(cache.set("k", b"third", SetOptions::default().if_present())),
        "if_present writes"
    );
    ensure_eq!(ok!(cache.get("k")), Some(b("third")));
    Ok(())
}

pub async fn binary_and_empty_values(cache: &dyn Cache) -> Outcome {
    let bytes: Vec<u8> = (0..=255).collect();
    ok!(cache.put("bin", &bytes));
    ensure_eq!(ok!(cache.get("bin")), Some(Bytes::from(bytes.clone())));
    ok!(cache.put("empty", b""));
    ensure_eq!(ok!(cache.get("empty")), Some(Bytes::new()));
    ok!(cache.hset("h", &[("bin", &bytes), ("empty", b"")]));
    ensure_eq!(ok!(cache.hget("h", "bin")), Some(Bytes::from(bytes)));
    ensure_eq!(ok!(cache.hget("h", "empty")), Some(Bytes::new()));
    ok!(cache.put("ключ ✓", b"unicode key"));
    ensure_eq!(ok!(cache.get("ключ ✓")), Some(b("unicode key")));
    Ok(())
}

pub async fn expiry(cache: &dyn Cache) -> Outcome {
    ok!(cache.put_ttl("short", b"v", Duration::from_millis(100)));
    ok!(cache.put("long", b"v"));
    ok!(cache.hset("h", &[("f", b"v")]));
    ok!(cache.expire("h", Some(Duration::from_millis(100))));
    ok!(cache.zadd("z", &[("m", 1.0)]));
    ok!(cache.expire("z", Some(Duration::from_millis(100))));
    ensure_eq!(ok!(cache.get("short")), Some(b("v")));
    tokio::time::sleep(Duration::from_millis(250)).await;
    ensure_eq!(ok!(cache.get("short")), None);
    ensure_eq!(ok!(cache.ttl("short")), KeyTtl::Missing);
    ensure_eq!(ok!(cache.hgetall("h")).len(), 0);
    ensure_eq!(ok!(cache.zcard("z")), 0);
    ensure_eq!(ok!(cache.get("long")), Some(b("v")));
    // An expired key is absent for conditional writes too.
    ensure!(
        ok!(cache.set_if_absent("short", b"again", None)),
        "set_if_absent after expiry"
    );
    ensure_eq!(ok!(cache.incr("h")), 1);
    ensure!(
        ok!(cache.scan_prefix("z")).is_empty(),
        "expired keys are not listed"
    );
    Ok(())
}

pub async fn ttl_changes(cache: &dyn Cache) -> Outcome {
    ensure_eq!(ok!(cache.ttl("k")), KeyTtl::Missing);
    ok!(cache.put("k", b"v"));
    ensure_eq!(ok!(cache.ttl("k")), KeyTtl::Persistent);
    ensure!(
        ok!(cache.expire("k", Some(Duration::from_secs(100)))),
        "expire on present key"
    );
    match ok!(cache.ttl("k")) {
        KeyTtl::Expires(d) => ensure!(
            d > Duration::from_secs(95) && d <= Duration::from_secs(100),
            "ttl {d:?}"
        ),
        other => return Err(format!("expected an expiry, got {other:?}")),
    }
    // Counter and hash writes keep the expiry; set replaces it.
    ok!(cache.put_ttl("n", b"1", Duration::from_secs(100)));
    ok!(cache.incr("n"));
    ensure!(
        matches!(ok!(cache.ttl("n")), KeyTtl::Expires(_)),
        "incr keeps the expiry"
    );
    ok!(cache.put("n", b"5"));
    ensure_eq!(ok!(cache.ttl("n")), KeyTtl::Persistent);
    ok!(cache.hset("h", &[("f", b"1")]));
    ok!(cache.expire("h", Some(Duration::from_secs(100))));
    ok!(cache.hset("h", &[("g", b"2")]));
    ok!(cache.hincr_by("h", "f", 1));
    ok!(cache.hdel("h", &["g"]));
    ensure!(
        matches!(ok!(cache.ttl("h")), KeyTtl::Expires(_)),
        "hash writes keep the expiry"
    );
    ok!(cache.zadd("z", &[("m", 1.0)]));
    ok!(cache.expire("z", Some(Duration::from_secs(100))));
    ok!(cache.zincr_by("z", "m", 1.0));
    ensure!(
        matches!(ok!(cache.ttl("z")), KeyTtl::Expires(_)),
        "sorted-set writes keep the expiry"
    );
    ensure!(ok!(cache.expire("k", None)), "persist");
    ensure_eq!(ok!(cache.ttl("k")), KeyTtl::Persistent);
    ensure!(
        !ok!(cache.expire("missing", Some(Duration::from_secs(1)))),
        "expire on absent key"
    );
    // Sub-millisecond TTLs round up rather than becoming zero.
    ok!(cache.put_ttl("tiny", b"v", Duration::from_micros(10)));
    let zero = cache.set("k", b"v", SetOptions::ttl(Duration::ZERO)).await;
    ensure!(
        matches!(zero, Err(Error::InvalidInput { field: "ttl", .. })),
        "zero ttl: {zero:?}"
    );
    ensure!(
        ok!(cache.expire("k", Some(Duration::ZERO))),
        "expire(0) on a present key"
    );
    ensure_eq!(ok!(cache.get("k")), None);
    Ok(())
}

pub async fn compare_and_set(cache: &dyn Cache) -> Outcome {
    ensure!(
        !ok!(cache.compare_and_set("k", Some(b"a"), Some(b"b"), None)),
        "cas on absent key"
    );
    ensure!(
        ok!(cache.compare_and_set("k", None, Some(b"a"), None)),
        "cas expecting absence"
    );
    ensure!(
        !ok!(cache.compare_and_set("k", None, Some(b"z"), None)),
        "cas expecting absence, present"
    );
    ensure!(
        !ok!(cache.compare_and_set("k", Some(b"x"), Some(b"b"), None)),
        "cas with stale value"
    );
    ensure_eq!(ok!(cache.get("k")), Some(b("a")));
    ensure!(
        ok!(cache.compare_and_set("k", Some(b"a"), Some(b"b"), Some(Duration::from_secs(60)))),
        "cas"
    );
    ensure_eq!(ok!(cache.get("k")), Some(b("b")));
    ensure!(
        matches!(ok!(cache.ttl("k")), KeyTtl::Expires(_)),
        "cas sets the ttl"
    );
    ensure!(
        ok!(cache.compare_and_set("k", Some(b"b"), Some(b"c"), None)),
        "cas"
    );
    ensure_eq!(ok!(cache.ttl("k")), KeyTtl::Persistent);
    // Releasing a lease: delete only if it still holds our token.
    ensure!(
        !ok!(cache.compare_and_set("k", Some(b"other"), None, None)),
        "delete with wrong token"
    );
    ensure!(
        ok!(cache.compare_and_set("k", Some(b"c"), None, None)),
        "delete with right token"
    );
    ensure_eq!(ok!(cache.get("k")), None);
    ok!(cache.hset("h", &[("f", b"v")]));
    let wrong = cache.compare_and_set("h", None, Some(b"x"), None).await;
    ensure!(
        matches!(wrong, Err(Error::WrongType { .. })),
        "cas on a hash: {wrong:?}"
    );
    Ok(())
}

pub async fn compare_and_set_race(cache: &dyn Cache) -> Outcome {
    ok!(cache.put("lease", b"v0"));
    let values: Vec<String> = (0..16).map(|i| format!("owner-{i}")).collect();
    let attempts = values
        .iter()
        .map(|v| {
            Box::pin(cache.compare_and_set("lease", Some(b"v0"), Some(v.as_bytes()), None))
                as Pin<Box<_>>
        })
        .collect();
    let results: Vec<crate::Result<bool>> = join_all(attempts).await;
    let mut winners = Vec::new();
    for (value, result) in values.iter().zip(results) {
        if result.map_err(|e| e.to_string())? {
            winners.push(value.clone());
        }
    }
    ensure_eq!(winners.len(), 1);
    ensure_eq!(ok!(cache.get("lease")), Some(b(&winners[0])));
    Ok(())
}

pub async fn counters(cache: &dyn Cache) -> Outcome {
    ensure_eq!(ok!(cache.incr("c")), 1);
    ensure_eq!(ok!(cache.incr_by("c", 41)), 42);
    ensure_eq!(ok!(cache.incr_by("c", -50)), -8);
    ensure_eq!(ok!(cache.get("c")), Some(b("-8")));
    ok!(cache.put("text", b"abc"));
    let e = cache.incr("text").await;
    ensure!(
        matches!(e, Err(Error::NotInteger { .. })),
        "incr on text: {e:?}"
    );
    ensure_eq!(ok!(cache.get("text")), Some(b("abc")));
    ok!(cache.put("big", i64::MAX.to_string().as_bytes()));
    let e = cache.incr("big").await;
    ensure!(
        matches!(e, Err(Error::NotInteger { .. })),
        "overflow: {e:?}"
    );
    ensure_eq!(ok!(cache.get("big")), Some(b(&i64::MAX.to_string())));
    Ok(())
}

pub async fn concurrent_increments(cache: &dyn Cache) -> Outcome {
    let work = (0..50)
        .map(|_| {
            Box::pin(async move {
                for _ in 0..10 {
                    cache.incr("progress").await?;
                    cache.hincr_by("ctx", "done", 2).await?;
                }
                Ok::<_, Error>(())
            }) as Pin<Box<_>>
        })
        .collect();
    let results: Vec<crate::Result<()>> = join_all(work).await;
    for result in results {
        result.map_err(|e| e.to_string())?;
    }
    ensure_eq!(ok!(cache.get("progress")), Some(b("500")));
    ensure_eq!(ok!(cache.hget("ctx", "done")), Some(b("1000")));
    Ok(())
}

pub async fn hashes(cache: &dyn Cache) -> Outcome {
    ensure_eq!(
        ok!(cache.hset("ctx", &[("plan", b"p1"), ("step", b"1")])),
        2
    );
    ensure_eq!(
        ok!(cache.hset("ctx", &[("step", b"2"), ("notes", b"n")])),
        1
    );
    ensure_eq!(ok!(cache.hget("ctx", "step")), Some(b("2")));
    ensure_eq!(ok!(cache.hget("ctx", "missing")), None);
    ensure_eq!(ok!(cache.hget("missing", "step")), None);
    let all = ok!(cache.hgetall("ctx"));
    let fields: Vec<(&str, &[u8])> = all.iter().map(|(k, v)| (k.as_str(), v.as_ref())).collect();
    ensure_eq!(
        fields,
        vec![("notes", &b"n"[..]), ("plan", b"p1"), ("step", b"2")]
    );
    ensure_eq!(ok!(cache.hincr_by("ctx", "tokens", 100)), 100);
    ensure_eq!(ok!(cache.hincr_by("ctx", "tokens", -1)), 99);
    let e = cache.hincr_by("ctx", "plan", 1).await;
    ensure!(
        matches!(e, Err(Error::NotInteger { .. })),
        "hincr on text field: {e:?}"
    );
    ensure_eq!(ok!(cache.hdel("ctx", &["plan", "step", "nope"])), 2);
    ensure_eq!(ok!(cache.hdel("missing", &["plan"])), 0);
    ensure_eq!(ok!(cache.hdel("ctx", &["notes", "tokens"])), 2);
    // A hash whose last field goes disappears.
    ensure_eq!(ok!(cache.ttl("ctx")), KeyTtl::Missing);
    ensure!(ok!(cache.hgetall("ctx")).is_empty(), "empty hash");
    Ok(())
}

pub async fn wrong_type(cache: &dyn Cache) -> Outcome {
    ok!(cache.put("s", b"text"));
    ok!(cache.hset("h", &[("f", b"v")]));
    ok!(cache.zadd("z", &[("m", 1.0)]));
    let checks: Vec<(&str, Result<(), Error>)> = vec![
        (
            "hset on string",
            cache.hset("s", &[("f", b"v")]).await.map(drop),
        ),
        ("hget on string", cache.hget("s", "f").await.map(drop)),
        ("hgetall on string", cache.hgetall("s").await.map(drop)),
        (
            "hincr_by on string",
            cache.hincr_by("s", "f", 1).await.map(drop),
        ),
        (
            "zadd on string",
            cache.zadd("s", &[("m", 1.0)]).await.map(drop),
        ),
        ("get on hash", cache.get("h").await.map(drop)),
        ("incr on hash", cache.incr("h").await.map(drop)),
        (
            "zrange on hash",
            cache.zrange("h", ZRange::all()).await.map(drop),
        ),
        ("zcard on hash", cache.zcard("h").await.map(drop)),
        ("zpop on hash", cache.zpop("h", End::Min, 1).await.map(drop)),
        (
            "hdel on sorted set",
            cache.hdel("z", &["m"]).await.map(drop),
        ),
        (
            "zincr_by on hash",
            cache.zincr_by("h", "m", 1.0).await.map(drop),
        ),
    ];
    for (what, result) in checks {
        match result {
            Err(Error::WrongType { key }) => {
                ensure!(["s", "h", "z"].contains(&key.as_str()), "{what}: key {key}")
            }
            other => return Err(format!("{what}: expected WrongType, got {other:?}")),
        }
    }
    // Nothing changed, and kind-agnostic operations still work.
    ensure_eq!(ok!(cache.get("s")), Some(b("text")));
    ensure_eq!(ok!(cache.hget("h", "f")), Some(b("v")));
    ensure_eq!(ok!(cache.zcard("z")), 1);
    ensure!(
        ok!(cache.set("h", b"now a string", SetOptions::default())),
        "set replaces any kind"
    );
    ensure_eq!(ok!(cache.get("h")), Some(b("now a string")));
    ensure_eq!(ok!(cache.delete(&["s", "h", "z"])), 3);
    Ok(())
}

pub async fn sorted_sets(cache: &dyn Cache) -> Outcome {
    let usage = [
        ("search", 5.0),
        ("fetch", 12.0),
        ("summarize", 3.0),
        ("translate", -1.5),
    ];
    ensure_eq!(ok!(cache.zadd("tools", &usage)), 4);
    ensure_eq!(
        ok!(cache.zadd("tools", &[("search", 6.0), ("write", 0.0)])),
        1
    );
    ensure_eq!(ok!(cache.zcard("tools")), 5);
    ensure_eq!(ok!(cache.zscore("tools", "search")), Some(6.0));
    ensure_eq!(ok!(cache.zscore("tools", "nope")), None);
    ensure_eq!(ok!(cache.zincr_by("tools", "summarize", 4.5)), 7.5);
    ensure_eq!(ok!(cache.zincr_by("tools", "new", 2.0)), 2.0);
    let all = ok!(cache.zrange("tools", ZRange::all()));
    let expected = vec![
        ("translate".to_owned(), -1.5),
        ("write".to_owned(), 0.0),
        ("new".to_owned(), 2.0),
        ("search".to_owned(), 6.0),
        ("summarize".to_owned(), 7.5),
        ("fetch".to_owned(), 12.0),
    ];
    ensure_eq!(all, expected);
    ensure_eq!(
        ok!(cache.top("tools", 2)),
        vec![("fetch".to_owned(), 12.0), ("summarize".to_owned(), 7.5)]
    );
    ensure_eq!(
        ok!(cache.zrange("tools", ZRange::ranks(-2, -1))),
        expected[4..].to_vec()
    );
    ensure_eq!(
        ok!(cache.zrange("tools", ZRange::ranks(1, 2).rev())),
        vec![expected[4].clone(), expected[3].clone()]
    );
    ensure_eq!(ok!(cache.zrange("tools", ZRange::ranks(10, 20))), vec![]);
    ensure_eq!(
        ok!(cache.zrange("tools", ZRange::scores(0.0, 6.0))),
        expected[1..4].to_vec()
    );
    let open = ZRange::Score {
        min: std::ops::Bound::Excluded(0.0),
        max: std::ops::Bound::Unbounded,
        rev: true,
        limit: None,
    };
    let above_zero: Vec<_> = expected[2..].iter().rev().cloned().collect();
    ensure_eq!(ok!(cache.zrange("tools", open)), above_zero);
    ensure_eq!(
        ok!(cache.zrange("tools", open.limit(1, 2))),
        above_zero[1..3].to_vec()
    );
    let below = ZRange::Score {
        min: std::ops::Bound::Unbounded,
        max: std::ops::Bound::Excluded(2.0),
        rev: false,
        limit: None,
    };
    ensure_eq!(ok!(cache.zrange("tools", below)), expected[..2].to_vec());
    ensure_eq!(ok!(cache.zrem("tools", &["write", "nope"])), 1);
    ensure_eq!(ok!(cache.zcard("tools")), 5);
    ensure_eq!(ok!(cache.zrange("missing", ZRange::all())), vec![]);
    ensure_eq!(ok!(cache.zcard("missing")), 0);
    // Infinite scores are allowed, NaN is not.
    ok!(cache.zadd(
        "inf",
        &[("top", f64::INFINITY), ("bottom", f64::NEG_INFINITY)]
    ));
    ensure_eq!(
        ok!(cache.zrange("inf", ZRange::all())),
        vec![
            ("bottom".to_owned(), f64::NEG_INFINITY),
            ("top".to_owned(), f64::INFINITY)
        ]
    );
    let nan = cache.zadd("tools", &[("x", f64::NAN)]).await;
    ensure!(
        matches!(nan, Err(Error::InvalidInput { .. })),
        "NaN score: {nan:?}"
    );
    let nan = cache.zincr_by("inf", "top", f64::NEG_INFINITY).await;
    ensure!(
        matches!(nan, Err(Error::InvalidInput { .. })),
        "inf + -inf: {nan:?}"
    );
    ensure_eq!(ok!(cache.zscore("inf", "top")), Some(f64::INFINITY));
    Ok(())
}

pub async fn sorted_set_ties(cache: &dyn Cache) -> Outcome {
    // Equal scores order by member bytes, whatever the insertion order.
    ok!(cache.zadd(
        "prio",
        &[("c", 1.0), ("a", 1.0), ("B", 1.0), ("b", 1.0), ("z", 0.5)]
    ));
    let names = |v: Vec<(String, f64)>| v.into_iter().map(|(m, _)| m).collect::<Vec<_>>();
    ensure_eq!(
        names(ok!(cache.zrange("prio", ZRange::all()))),
        ["z", "B", "a", "b", "c"]
    );
    ensure_eq!(
        names(ok!(cache.zrange("prio", ZRange::all().rev()))),
        ["c", "b", "a", "B", "z"]
    );
    ensure_eq!(
        names(ok!(
            cache.zrange("prio", ZRange::scores(1.0, 1.0).limit(1, 2))
        )),
        ["a", "b"]
    );
    ensure_eq!(
        names(ok!(
            cache.zrange("prio", ZRange::scores(1.0, 1.0).rev().limit(0, 2))
        )),
        ["c", "b"]
    );
    ensure_eq!(names(ok!(cache.zpop("prio", End::Max, 1))), ["c"]);
    ensure_eq!(names(ok!(cache.zpop("prio", End::Min, 2))), ["z", "B"]);
    Ok(())
}

pub async fn sorted_set_pops(cache: &dyn Cache) -> Outcome {
    ok!(cache.zadd("q", &[("low", 1.0), ("mid", 5.0), ("high", 9.0)]));
    ensure_eq!(
        ok!(cache.zpop("q", End::Max, 1)),
        vec![("high".to_owned(), 9.0)]
    );
    ensure_eq!(
        ok!(cache.zpop("q", End::Min, 1)),
        vec![("low".to_owned(), 1.0)]
    );
    ensure_eq!(
        ok!(cache.zpop("q", End::Min, 10)),
        vec![("mid".to_owned(), 5.0)]
    );
    ensure_eq!(ok!(cache.zpop("q", End::Min, 1)), vec![]);
    // The emptied set is gone: the key can hold another kind now.
    ensure_eq!(ok!(cache.ttl("q")), KeyTtl::Missing);
    ok!(cache.put("q", b"free"));
    Ok(())
}

async fn next(sub: &mut crate::Subscription) -> Result<crate::Message, String> {
    tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .map_err(|_| "no message within 5 s".to_owned())?
        .ok_or_else(|| "subscription ended".to_owned())
}

pub async fn publish_subscribe(cache: &dyn Cache) -> Outcome {
    ensure_eq!(ok!(cache.publish("exec.1.events", b"nobody")), 0);
    let mut first = ok!(cache.subscribe("exec.1.events"));
    let mut second = ok!(cache.subscribe("exec.1.events"));
    let mut unrelated = ok!(cache.subscribe("exec.2.events"));
    let received = ok!(cache.publish("exec.1.events", b"state entered"));
    ensure!(received >= 1, "publish with subscribers counted {received}");
    ok!(cache.publish("exec.1.events", b"tool called"));
    ok!(cache.publish("exec.2.events", b"other"));
    for sub in [&mut first, &mut second] {
        let m = next(sub).await?;
        ensure_eq!(
            (m.channel.as_str(), m.pattern.as_deref(), &m.payload[..]),
            ("exec.1.events", None, &b"state entered"[..])
        );
        ensure_eq!(&next(sub).await?.payload[..], b"tool called");
    }
    ensure_eq!(&next(&mut unrelated).await?.payload[..], b"other");
    // A subscriber that leaves does not stop the others.
    drop(first);
    ok!(cache.publish("exec.1.events", b"after"));
    ensure_eq!(&next(&mut second).await?.payload[..], b"after");
    Ok(())
}

pub async fn pattern_subscribe(cache: &dyn Cache) -> Outcome {
    let mut all = ok!(cache.psubscribe("exec.*.events"));
    let mut exact = ok!(cache.subscribe("exec.7.events"));
    ok!(cache.publish("exec.7.log", b"not matched"));
    ok!(cache.publish("exec.7.events", b"one"));
    ok!(cache.publish("exec.8.events", b"two"));
    let m = next(&mut all).await?;
    ensure_eq!(
        (m.channel.as_str(), m.pattern.as_deref(), &m.payload[..]),
        ("exec.7.events", Some("exec.*.events"), &b"one"[..])
    );
    let m = next(&mut all).await?;
    ensure_eq!(
        (m.channel.as_str(), &m.payload[..]),
        ("exec.8.events", &b"two"[..])
    );
    let m = next(&mut exact).await?;
    ensure_eq!(
        (m.channel.as_str(), m.pattern.as_deref(), &m.payload[..]),
        ("exec.7.events", None, &b"one"[..])
    );
    Ok(())
}

pub async fn prefixes(cache: &dyn Cache) -> Outcome {
    ok!(cache.put("exec:1:a", b"1"));
    ok!(cache.hset("exec:1:ctx", &[("f", b"v")]));
    ok!(cache.zadd("exec:1:prio", &[("m", 1.0)]));
    ok!(cache.put("exec:10:a", b"1"));
    ok!(cache.put("exec:2:a", b"1"));
    ok!(cache.put("exec:*:odd", b"1"));
    let mut keys = ok!(cache.scan_prefix("exec:1:"));
    keys.sort();
    ensure_eq!(keys, ["exec:1:a", "exec:1:ctx", "exec:1:prio"]);
    // Glob characters in a prefix are literal.
    ensure_eq!(ok!(cache.scan_prefix("exec:*")), ["exec:*:odd"]);
    ensure_eq!(ok!(cache.delete_prefix("exec:1:")), 3);
    ensure!(ok!(cache.scan_prefix("exec:1:")).is_empty(), "deleted");
    ensure_eq!(ok!(cache.get("exec:10:a")), Some(b("1")));
    ensure_eq!(ok!(cache.delete_prefix("nothing:")), 0);
    Ok(())
}

pub async fn json_helpers(cache: &dyn Cache) -> Outcome {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Plan {
        steps: Vec<String>,
    }
    let plan = Plan {
        steps: vec!["search".into(), "summarize".into()],
    };
    ok!(cache.set_json("plan", &plan, SetOptions::default()));
    ensure_eq!(ok!(cache.get_json::<Plan>("plan")), Some(plan));
    ok!(cache.hset_json("ctx", "budget", &serde_json::json!({"tokens": 1000})));
    ensure_eq!(
        ok!(cache.hget_json::<serde_json::Value>("ctx", "budget")),
        Some(serde_json::json!({"tokens": 1000}))
    );
    ok!(cache.put("bad", b"{not json"));
    let bad = cache.get_json::<Plan>("bad").await;
    ensure!(
        matches!(&bad, Err(Error::Decode { what, .. }) if what == "key \"bad\""),
        "bad JSON: {bad:?}"
    );
    Ok(())
}
