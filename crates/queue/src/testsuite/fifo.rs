//! FIFO queues (group order, deduplication) and concurrent consumers.

use super::*;

fn fifo_message(group: &str, body: &str) -> SendMessage {
    SendMessage::new(body).group(group).dedup(body)
}

pub async fn fifo_group_order(q: &dyn Queue, clock: &ManualClock) {
    create(
        q,
        "order.fifo",
        QueueAttributes {
            visibility_timeout: secs(30),
            ..Default::default()
        },
    )
    .await;
    let mut seqs = Vec::new();
    for (g, b) in [
        ("a", "a1"),
        ("b", "b1"),
        ("a", "a2"),
        ("a", "a3"),
        ("b", "b2"),
    ] {
        let sent = q.send("order.fifo", fifo_message(g, b)).await.unwrap();
        seqs.push(
            sent.sequence_number
                .expect("FIFO sends answer a sequence number"),
        );
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequence numbers increase: {seqs:?}"
    );
    let a1 = receive_one(q, "order.fifo").await.unwrap();
    assert_eq!(
        (a1.body.as_str(), a1.group_id.as_deref()),
        ("a1", Some("a"))
    );
    let b1 = receive_one(q, "order.fifo").await.unwrap();
    assert_eq!(b1.body, "b1", "group a is blocked while a1 is in flight");
    assert!(
        receive_one(q, "order.fifo").await.is_none(),
        "both groups are blocked"
    );
    q.delete("order.fifo", &a1.receipt_handle).await.unwrap();
    assert_eq!(receive_one(q, "order.fifo").await.unwrap().body, "a2");
    // b1 is not deleted: when its timeout passes it comes back before b2.
    clock.advance(secs(30));
    let got: Vec<_> = receive(q, "order.fifo", ReceiveOptions::max(10))
        .await
        .into_iter()
        .map(|m| m.body)
        .collect();
    let pos = |b: &str| got.iter().position(|x| x == b);
    assert!(pos("b1").is_some(), "{got:?}");
    assert!(pos("b2").is_none() || pos("b1") < pos("b2"), "{got:?}");
    assert!(
        got.iter().all(|b| b != "a3") || pos("a2") < pos("a3"),
        "{got:?}"
    );
}

pub async fn fifo_order_under_concurrent_consumers(q: &dyn Queue, _clock: &ManualClock) {
    const GROUPS: usize = 3;
    const PER_GROUP: usize = 12;
    create(q, "concurrent.fifo", QueueAttributes::default()).await;
    for i in 0..PER_GROUP {
        let batch = (0..GROUPS)
            .map(|g| fifo_message(&format!("g{g}"), &format!("g{g}-{i:02}")))
            .collect();
        for r in q.send_batch("concurrent.fifo", batch).await.unwrap() {
            r.unwrap();
        }
    }
    let seen: Mutex<HashMap<String, Vec<String>>> = Mutex::default();
    let consumer = |n: usize| {
        let seen = &seen;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let total: usize = seen.lock().unwrap().values().map(Vec::len).sum();
                if total == GROUPS * PER_GROUP || Instant::now() > deadline {
                    return;
                }
                let options = ReceiveOptions::max(1 + n % 3).wait(Duration::from_millis(200));
                for m in q.receive("concurrent.fifo", options).await.unwrap() {
                    let group = m.group_id.clone().unwrap();
                    seen.lock()
                        .unwrap()
                        .entry(group)
                        .or_default()
                        .push(m.body.clone());
                    tokio::task::yield_now().await;
                    q.delete("concurrent.fifo", &m.receipt_handle)
                        .await
                        .unwrap();
                }
            }
        }
    };
    futures_join4(consumer(0), consumer(1), consumer(2), consumer(3)).await;
    let seen = seen.into_inner().unwrap();
    for g in 0..GROUPS {
        let expected: Vec<_> = (0..PER_GROUP).map(|i| format!("g{g}-{i:02}")).collect();
        assert_eq!(
            seen[&format!("g{g}")],
            expected,
            "group g{g} processed out of order or incompletely"
        );
    }
}

pub async fn concurrent_receivers_never_share_a_message(q: &dyn Queue, _clock: &ManualClock) {
    const MESSAGES: usize = 60;
    create(q, "shared", QueueAttributes::default()).await;
    for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(10) {
        let batch = chunk
            .iter()
            .map(|i| SendMessage::new(format!("m{i:02}")))
            .collect();
        for r in q.send_batch("shared", batch).await.unwrap() {
            r.unwrap();
        }
    }
    let seen: Mutex<Vec<String>> = Mutex::default();
    let receiver = |n: usize| {
        let seen = &seen;
        async move {
            loop {
                let max = 1 + n % 4;
                let got = q.receive("shared", ReceiveOptions::max(max)).await.unwrap();
                assert!(got.len() <= max, "asked for {max}, got {}", got.len());
                if got.is_empty() {
                    return;
                }
                seen.lock().unwrap().extend(got.into_iter().map(|m| m.body));
            }
        }
    };
    futures_join4(receiver(0), receiver(1), receiver(2), receiver(3)).await;
    let mut seen = seen.into_inner().unwrap();
    seen.sort();
    let expected: Vec<_> = (0..MESSAGES).map(|i| format!("m{i:02}")).collect();
    assert_eq!(
        seen, expected,
        "every message exactly once while within its visibility timeout"
    );
}

pub(crate) async fn futures_join4(
    a: impl Future<Output = ()>,
    b: impl Future<Output = ()>,
    c: impl Future<Output = ()>,
    d: impl Future<Output = ()>,
) {
    tokio::join!(a, b, c, d);
}

pub async fn fifo_deduplication_window(q: &dyn Queue, clock: &ManualClock) {
    create(q, "dedup.fifo", QueueAttributes::default()).await;
    let first = q
        .send("dedup.fifo", SendMessage::new("one").group("g").dedup("d1"))
        .await
        .unwrap();
    clock.advance(secs(299));
    let again = q
        .send(
            "dedup.fifo",
            SendMessage::new("one, resent").group("g").dedup("d1"),
        )
        .await
        .unwrap();
    assert_eq!(
        again.message_id, first.message_id,
        "within 5 minutes: the first send's answer"
    );
    let got = receive(q, "dedup.fifo", ReceiveOptions::max(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "one");
    assert_eq!(got[0].deduplication_id.as_deref(), Some("d1"));
    q.delete("dedup.fifo", &got[0].receipt_handle)
        .await
        .unwrap();
    clock.advance(secs(2));
    let later = q
        .send(
            "dedup.fifo",
            SendMessage::new("one, much later").group("g").dedup("d1"),
        )
        .await
        .unwrap();
    assert_ne!(
        later.message_id, first.message_id,
        "after the window the id is new again"
    );
    assert_eq!(
        receive_one(q, "dedup.fifo").await.unwrap().body,
        "one, much later"
    );
}

pub async fn fifo_content_based_deduplication(q: &dyn Queue, _clock: &ManualClock) {
    create(
        q,
        "cbd.fifo",
        QueueAttributes {
            content_based_deduplication: true,
            ..Default::default()
        },
    )
    .await;
    let a = send(q, "cbd.fifo", SendMessage::new("same body").group("g1")).await;
    let b = send(q, "cbd.fifo", SendMessage::new("same body").group("g2")).await;
    assert_eq!(a, b);
    send(q, "cbd.fifo", SendMessage::new("other body").group("g3")).await;
    assert_eq!(
        receive(q, "cbd.fifo", ReceiveOptions::max(10)).await.len(),
        2
    );
}

pub async fn fifo_rules(q: &dyn Queue, _clock: &ManualClock) {
    create(q, "rules.fifo", QueueAttributes::default()).await;
    create(q, "rules-std", QueueAttributes::default()).await;
    let e = q
        .send("rules.fifo", SendMessage::new("x").dedup("d"))
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "MessageGroupId");
    let e = q
        .send("rules.fifo", SendMessage::new("x").group("g"))
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "MessageDeduplicationId");
    let e = q
        .send("rules.fifo", fifo_message("g", "x").delay(secs(1)))
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "DelaySeconds");
    let e = q
        .send("rules-std", SendMessage::new("x").group("g"))
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "MessageGroupId");
    let e = q
        .create_queue(
            "rules2.fifo",
            &QueueAttributes {
                priority: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "Priority");
    let dlq = RedrivePolicy {
        dead_letter_target: "rules-std".into(),
        max_receive_count: 1,
    };
    let e = q
        .create_queue(
            "rules3.fifo",
            &QueueAttributes {
                redrive_policy: Some(dlq),
                ..Default::default()
            },
        )
        .await;
    assert!(e.unwrap_err().to_string().contains("same type"));
}
