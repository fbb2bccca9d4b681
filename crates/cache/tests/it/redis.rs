//! The suite against a real Redis server (`AGENTRY_TEST_REDIS_URL`), each test under a key
//! prefix of its own, emptied before the test starts.

use std::sync::Arc;

use agentry_cache::redis::RedisCache;
use agentry_cache::{Cache, Error};

fn server_url() -> Option<String> {
    match std::env::var("AGENTRY_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("AGENTRY_TEST_REDIS_URL not set (required when CI=true)")
        }
        _ => {
            println!("skipped: AGENTRY_TEST_REDIS_URL not set");
            None
        }
    }
}

async fn cache(test: &str) -> Option<Arc<dyn Cache>> {
    let url = server_url()?;
    let cache = RedisCache::connect(&url, &format!("agentry-test:cache:{test}:"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    cache.delete_prefix("").await.unwrap();
    Some(Arc::new(cache))
}

agentry_cache::cache_suite!(
    #[tokio::test]
    cache
);

#[tokio::test]
async fn url_prefix_isolates_keys_and_channels() {
    let Some(url) = server_url() else { return };
    let sep = if url.contains('?') { '&' } else { '?' };
    let a = agentry_cache::open(&format!("{url}{sep}prefix=agentry-test:cache:iso-a:"))
        .await
        .unwrap();
    let b = agentry_cache::open(&format!("{url}{sep}prefix=agentry-test:cache:iso-b:"))
        .await
        .unwrap();
    a.delete_prefix("").await.unwrap();
    b.delete_prefix("").await.unwrap();
    a.set("k", b"a", Default::default()).await.unwrap();
    assert_eq!(b.get("k").await.unwrap(), None);
    let mut sub = b.subscribe("events").await.unwrap();
    assert_eq!(a.publish("events", b"for a").await.unwrap(), 0);
    b.publish("events", b"for b").await.unwrap();
    assert_eq!(&sub.recv().await.unwrap().payload[..], b"for b");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_retryable() {
    // Port 1 on localhost refuses connections.
    let e = RedisCache::open("redis://127.0.0.1:1").await.unwrap_err();
    assert!(
        matches!(e, Error::Unavailable(_)) && e.is_retryable(),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("cache unavailable: redis at redis://127.0.0.1:1"),
        "{e}"
    );
    let e = RedisCache::open("redis://:secret@127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(!e.to_string().contains("secret"), "{e}");
}

#[tokio::test]
async fn a_malformed_url_is_named() {
    let e = agentry_cache::open("redis://127.0.0.1:notaport")
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::InvalidUrl { .. }), "{e}");
    assert!(e.to_string().contains("redis://127.0.0.1:notaport"), "{e}");
}

#[tokio::test]
async fn subscriptions_survive_a_dropped_connection() {
    let Some(url) = server_url() else { return };
    let prefix = "agentry-test:cache:reconnect:";
    let cache = RedisCache::connect(&url, prefix).await.unwrap();
    let mut sub = cache.subscribe("events").await.unwrap();
    cache.publish("events", b"before").await.unwrap();
    assert_eq!(&sub.recv().await.unwrap().payload[..], b"before");

    // Kill the subscription connection from the server side, as a failover or a network
    // blip would.
    let mut admin = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut admin)
        .await
        .unwrap();
    let line = clients
        .lines()
        .find(|l| l.contains(&format!(" name=agentry-sub:{prefix} ")))
        .expect("the subscription connection is named after the prefix");
    let id = line
        .split(' ')
        .find_map(|f| f.strip_prefix("id="))
        .unwrap()
        .to_owned();
    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&id)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(killed, 1);

    // Messages published while it reconnects may be lost (at-most-once); after that the same
    // subscription receives again without the caller doing anything.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message after reconnecting"
        );
        cache.publish("events", b"after").await.unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_millis(200), sub.recv()).await;
        if let Ok(Some(message)) = got {
            assert_eq!(&message.payload[..], b"after");
            break;
        }
    }
}
