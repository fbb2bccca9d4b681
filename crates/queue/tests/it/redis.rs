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
