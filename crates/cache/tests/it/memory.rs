use std::sync::Arc;
use std::time::Duration;

use agentry_cache::{Cache, CacheExt, KeyTtl, MemoryCache, MemoryConfig};

async fn cache(_test: &str) -> Option<Arc<dyn Cache>> {
    Some(Arc::new(MemoryCache::new(MemoryConfig::default())))
}

agentry_cache::cache_suite!(
    #[tokio::test(start_paused = true)]
    cache
);

fn bounded(max_bytes: usize) -> MemoryCache {
    MemoryCache::new(MemoryConfig {
        max_bytes,
        ..MemoryConfig::default()
    })
}

#[tokio::test(start_paused = true)]
async fn eviction_keeps_the_bound_and_drops_least_recently_used() {
    let cache = bounded(4_000);
    let value = vec![b'x'; 200];
    for i in 0..10 {
        cache.put(&format!("k{i}"), &value).await.unwrap();
    }
    assert_eq!(cache.stats().evicted, 0, "{:?}", cache.stats());
    // Touch the oldest keys so they become the most recently used.
    for i in 0..3 {
        assert!(cache.get(&format!("k{i}")).await.unwrap().is_some());
    }
    for i in 10..30 {
        cache.put(&format!("k{i}"), &value).await.unwrap();
        assert!(cache.stats().used_bytes <= 4_000, "{:?}", cache.stats());
    }
    let stats = cache.stats();
    assert!(stats.evicted > 0 && stats.keys < 30, "{stats:?}");
    // Survivors are exactly the most recently used keys: the newest writes, then the touched
    // ones; the untouched early keys went first.
    let mut present = Vec::new();
    for i in 0..30 {
        if cache.get(&format!("k{i}")).await.unwrap().is_some() {
            present.push(i);
        }
    }
    let survivors = stats.keys;
    let expected: Vec<i32> = (30 - survivors as i32..30).collect();
    assert_eq!(present, expected, "survivors {present:?}");
    assert!(cache.get("k3").await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn touched_keys_outlive_untouched_ones() {
    let cache = bounded(2_000);
    let value = vec![0u8; 300];
    for key in ["a", "b", "c", "d"] {
        cache.put(key, &value).await.unwrap();
    }
    cache.get("a").await.unwrap();
    cache.hset("h", &[("f", &value)]).await.unwrap();
    cache.put("e", &value).await.unwrap();
    // Entries are ~365 bytes: five fit, the sixth evicts "b" (least recently used), not "a".
    assert!(cache.get("a").await.unwrap().is_some());
    assert!(cache.get("b").await.unwrap().is_none());
    assert!(cache.get("c").await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn an_entry_larger_than_the_bound_is_refused_and_nothing_is_lost() {
    let cache = bounded(1_000);
    cache.put("keep", b"v").await.unwrap();
    let e = cache.put("big", &[0u8; 2_000]).await.unwrap_err();
    assert!(matches!(e, agentry_cache::Error::TooLarge { .. }), "{e}");
    assert!(e.to_string().starts_with("entry \"big\" is 2"), "{e}");
    let e = cache
        .hset("ctx", &[("f", &[0u8; 2_000][..])])
        .await
        .unwrap_err();
    assert!(matches!(e, agentry_cache::Error::TooLarge { .. }), "{e}");
    assert_eq!(cache.get("keep").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(cache.hgetall("ctx").await.unwrap().len(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_sweep_reclaims_expired_keys_nobody_touches() {
    let cache = MemoryCache::new(MemoryConfig {
        sweep_interval_ms: 50,
        ..MemoryConfig::default()
    });
    for i in 0..2_000 {
        cache
            .put_ttl(&format!("k{i}"), b"v", Duration::from_secs(10))
            .await
            .unwrap();
    }
    cache.put("stays", b"v").await.unwrap();
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(cache.stats().keys, 2_001);
    assert!(
        matches!(cache.ttl("k0").await.unwrap(), KeyTtl::Expires(d) if d <= Duration::from_secs(1))
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let stats = cache.stats();
    assert_eq!((stats.keys, stats.expired), (1, 2_000), "{stats:?}");
    assert!(stats.used_bytes < 200, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_threads_race_for_one_lease_and_count_exactly() {
    let cache = Arc::new(MemoryCache::default());
    cache.put("lease", b"free").await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let cache = cache.clone();
        tasks.spawn(async move {
            let mut won = 0;
            for _ in 0..100 {
                cache.incr("n").await.unwrap();
            }
            if cache
                .compare_and_set(
                    "lease",
                    Some(b"free"),
                    Some(format!("t{i}").as_bytes()),
                    None,
                )
                .await
                .unwrap()
            {
                won += 1;
            }
            won
        });
    }
    let wins: i32 = tasks.join_all().await.into_iter().sum();
    assert_eq!(wins, 1);
    assert_eq!(cache.get("n").await.unwrap().as_deref(), Some(&b"6400"[..]));
}

#[tokio::test]
async fn a_slow_subscriber_loses_the_oldest_messages_and_says_so() {
    let cache = MemoryCache::new(MemoryConfig {
        channel_capacity: 4,
        ..MemoryConfig::default()
    });
    let mut sub = cache.subscribe("c").await.unwrap();
    for i in 0..10 {
        cache.publish("c", format!("{i}").as_bytes()).await.unwrap();
    }
    assert_eq!(&sub.recv().await.unwrap().payload[..], b"6");
    assert_eq!(sub.lagged(), 6);
}
