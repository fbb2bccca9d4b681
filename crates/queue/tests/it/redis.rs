//! The conformance suite against a real Redis server (`AGENTRY_TEST_REDIS_URL`), each test
//! under its own key prefix, removed afterwards.

/// The server to test against; `None` (after saying so) when unset, a failure under CI.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub fn redis_url() -> Option<String> {
    match std::env::var("AGENTRY_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("AGENTRY_TEST_REDIS_URL not set, and CI=true: the redis tests must run")
        }
        _ => {
            println!("skipped: AGENTRY_TEST_REDIS_URL not set");
            None
        }
    }
}

#[cfg(not(feature = "redis"))]
#[test]
fn redis_backend_not_built() {
    println!("skipped: the redis feature is off");
}

#[cfg(feature = "redis")]
mod suite {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use agentry_queue::redis::RedisQueue;
    use agentry_queue::{
        ManualClock, Queue, QueueAttributes, QueueExt, ReceiveOptions, SendMessage,
    };

    use super::redis_url;

    /// Removes the test's keys when the test ends, passed or failed.
    pub struct Cleanup(Arc<RedisQueue>);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let q = self.0.clone();
            tokio::task::block_in_place(|| {
                let _ = tokio::runtime::Handle::current().block_on(q.destroy());
            });
        }
    }

    pub fn unique_prefix() -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!(
            "agentry-test-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        )
    }

    async fn setup() -> Option<(Arc<dyn Queue>, ManualClock, Cleanup)> {
        let url = redis_url()?;
        let clock = ManualClock::new();
        let queue = Arc::new(
            RedisQueue::connect(&url, &unique_prefix(), Arc::new(clock.clone()))
                .await
                .unwrap(),
        );
        Some((queue.clone(), clock, Cleanup(queue)))
    }

    agentry_queue::testsuite!(setup);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_on_one_node_wakes_a_long_poll_on_another() {
        let Some(url) = redis_url() else { return };
        let prefix = unique_prefix();
        let clock = Arc::new(ManualClock::new());
        let a = Arc::new(
            RedisQueue::connect(&url, &prefix, clock.clone())
                .await
                .unwrap(),
        );
        let b = RedisQueue::connect(&url, &prefix, clock).await.unwrap();
        let _cleanup = Cleanup(a.clone());
        a.create_queue("nodes", &QueueAttributes::default())
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let (got, ()) = tokio::join!(
            a.receive(
                "nodes",
                ReceiveOptions::max(1).wait(std::time::Duration::from_secs(15))
            ),
            async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                b.send("nodes", SendMessage::new("from b")).await.unwrap();
            }
        );
        assert_eq!(got.unwrap()[0].body, "from b");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    /// Queues written by the first key layout (receive state in a `rcv` hash, an expiry index
    /// `exp`, no layout in the settings) are refused with an error that says what to do, and
    /// deleting them removes every key they had, so they can be created again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queue_in_an_older_key_layout_is_refused_until_made_again() {
        let Some(url) = redis_url() else { return };
        let prefix = unique_prefix();
        let q = Arc::new(
            RedisQueue::connect(&url, &prefix, Arc::new(ManualClock::new()))
                .await
                .unwrap(),
        );
        let _cleanup = Cleanup(q.clone());
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        for name in ["old", "old.fifo"] {
            q.create_queue(name, &QueueAttributes::default())
                .await
                .unwrap();
            let key = |suffix: &str| format!("{prefix}:q:{name}:{suffix}");
            let id = "4bd3c5c6-8d8e-4d0b-9a53-2e1f1f6f2a10";
            let group = if name.ends_with(".fifo") { "g1" } else { "" };
            // The first layout's value: "seq ord sent vis prio src group", then the blob.
            let mut old = redis::pipe();
            if !group.is_empty() {
                old.rpush(key("g:g1"), id);
            }
            let _: () = old
                .hdel(key("meta"), "layout")
                .hset(
                    key("msg"),
                    id,
                    format!("1 1 1700000000000 1700000000000 0  {group}\n0:0:body"),
                )
                .hset(key("rcv"), id, "1 1700000000000 0123456789abcdef")
                .zadd(key("exp"), id, 1_800_000_000_000_i64)
                .zadd(key("ready"), id, 1)
                .query_async(&mut conn)
                .await
                .unwrap();
            let mut m = SendMessage::new("new");
            if !group.is_empty() {
                m = m.group("g1").dedup("d0");
            }
            let e = q.send(name, m).await.unwrap_err();
            assert!(
                e.to_string().contains("older Redis key layout")
                    && e.to_string().contains("delete the queue"),
                "{e}"
            );
            let e = q.receive(name, ReceiveOptions::max(1)).await.unwrap_err();
            assert!(e.to_string().contains("older Redis key layout"), "{e}");
            let e = q
                .create_queue(name, &QueueAttributes::default())
                .await
                .unwrap_err();
            assert!(e.to_string().contains("older Redis key layout"), "{e}");
            q.delete_queue(name).await.unwrap();
            for suffix in ["meta", "msg", "rcv", "exp", "ready", "inv", "g:g1"] {
                let exists: bool = redis::cmd("EXISTS")
                    .arg(key(suffix))
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                assert!(!exists, "{name}: {suffix} left behind");
            }
            q.create_queue(name, &QueueAttributes::default())
                .await
                .unwrap();
            let mut m = SendMessage::new("again");
            if name.ends_with(".fifo") {
                m = m.group("g1").dedup("d1");
            }
            q.send(name, m).await.unwrap();
            let got = q.receive(name, ReceiveOptions::max(1)).await.unwrap();
            assert_eq!(got[0].body, "again");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_server_is_unavailable_and_retryable() {
        let started = std::time::Instant::now();
        let e = agentry_queue::open("redis://127.0.0.1:1")
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e:?}");
        assert!(
            e.to_string().contains("redis at redis://127.0.0.1:1"),
            "{e}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn resolver_opens_redis_with_a_prefix() {
        let Some(url) = redis_url() else { return };
        let prefix = unique_prefix();
        let q = agentry_queue::open(&format!("{url}?prefix={prefix}"))
            .await
            .unwrap();
        q.create_queue("jobs", &QueueAttributes::default())
            .await
            .unwrap();
        q.send("jobs", SendMessage::new("via url")).await.unwrap();
        let other = agentry_queue::open(&format!("{url}?prefix={prefix}-other"))
            .await
            .unwrap();
        assert!(
            other.get_queue("jobs").await.is_err(),
            "prefixes keep deployments apart"
        );
        let m = q.receive("jobs", ReceiveOptions::max(1)).await.unwrap();
        assert_eq!(m[0].body, "via url");
        let e = agentry_queue::open(&format!("{url}?colour=red"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("\"colour\""), "{e}");
        q.delete_queue("jobs").await.unwrap();
    }
}
