//! When a message is delivered: visibility timeouts, delays, retention, dead-letter queues.

use super::*;

pub async fn visibility_timeout_expires_and_receive_count_grows(
    q: &dyn Queue,
    clock: &ManualClock,
) {
    create(
        q,
        "vis",
        QueueAttributes {
            visibility_timeout: secs(30),
            ..Default::default()
        },
    )
    .await;
    let id = send(q, "vis", SendMessage::new("work")).await;
    let first = receive_one(q, "vis").await.unwrap();
    clock.advance(Duration::from_millis(29_999));
    assert!(
        receive_one(q, "vis").await.is_none(),
        "still within its visibility timeout"
    );
    clock.advance(Duration::from_millis(1));
    let second = receive_one(q, "vis")
        .await
        .expect("back once the timeout passes");
    assert_eq!(second.message_id, id);
    assert_eq!(second.receive_count, 2);
    assert_eq!(second.first_received_at, first.first_received_at);
    assert_ne!(second.receipt_handle, first.receipt_handle);
    clock.advance(secs(31));
    let third = receive_one(q, "vis").await.unwrap();
    assert_eq!(third.receive_count, 3);
    q.delete("vis", &third.receipt_handle).await.unwrap();
    clock.advance(secs(31));
    assert!(receive_one(q, "vis").await.is_none());
}

pub async fn stale_receipt_handle_deletes_nothing(q: &dyn Queue, clock: &ManualClock) {
    create(
        q,
        "stale",
        QueueAttributes {
            visibility_timeout: secs(10),
            ..Default::default()
        },
    )
    .await;
    send(q, "stale", SendMessage::new("m")).await;
    let old = receive_one(q, "stale").await.unwrap();
    clock.advance(secs(11));
    let new = receive_one(q, "stale").await.unwrap();
    // The first consumer, late, must not delete the message the second one now holds.
    q.delete("stale", &old.receipt_handle).await.unwrap();
    let e = q
        .change_visibility("stale", &old.receipt_handle, secs(100))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ReceiptHandleIsInvalid(_)), "{e:?}");
    clock.advance(secs(11));
    let again = receive_one(q, "stale")
        .await
        .expect("a stale handle deleted nothing");
    assert_eq!(again.message_id, new.message_id);
    assert_eq!(again.receive_count, 3);
}

/// A handle deletes its message until the message is received again, even once its
/// visibility timeout has passed, as in SQS.
pub async fn handle_deletes_until_received_again(q: &dyn Queue, clock: &ManualClock) {
    create(
        q,
        "late",
        QueueAttributes {
            visibility_timeout: secs(10),
            ..Default::default()
        },
    )
    .await;
    send(q, "late", SendMessage::new("a")).await;
    send(q, "late", SendMessage::new("b")).await;
    let first = receive(q, "late", ReceiveOptions::max(10)).await;
    assert_eq!(first.len(), 2);
    clock.advance(secs(11));
    let again = receive(q, "late", ReceiveOptions::max(1)).await;
    assert_eq!(again.len(), 1);
    let (held, other): (Vec<_>, Vec<_>) = first
        .iter()
        .partition(|m| m.message_id == again[0].message_id);
    // Visible again, not received since: its handle still deletes it.
    q.delete("late", &other[0].receipt_handle).await.unwrap();
    // Received since: the old handle deletes nothing.
    q.delete("late", &held[0].receipt_handle).await.unwrap();
    clock.advance(secs(11));
    let last = receive(q, "late", ReceiveOptions::max(10)).await;
    assert_eq!(
        last.iter()
            .map(|m| m.message_id.as_str())
            .collect::<Vec<_>>(),
        [again[0].message_id.as_str()]
    );
    assert_eq!(last[0].receive_count, 3);
}

pub async fn change_visibility(q: &dyn Queue, clock: &ManualClock) {
    create(
        q,
        "chvis",
        QueueAttributes {
            visibility_timeout: secs(30),
            ..Default::default()
        },
    )
    .await;
    send(q, "chvis", SendMessage::new("m")).await;
    let m = receive_one(q, "chvis").await.unwrap();
    q.change_visibility("chvis", &m.receipt_handle, Duration::ZERO)
        .await
        .unwrap();
    let m = receive_one(q, "chvis")
        .await
        .expect("visible at once after a zero timeout");
    assert_eq!(m.receive_count, 2);
    clock.advance(secs(20));
    q.change_visibility("chvis", &m.receipt_handle, secs(60))
        .await
        .unwrap();
    clock.advance(secs(59));
    assert!(
        receive_one(q, "chvis").await.is_none(),
        "extended: 60 s from the change"
    );
    clock.advance(secs(2));
    let m2 = receive_one(q, "chvis").await.unwrap();
    assert_eq!(m2.receive_count, 3);
    let e = q
        .change_visibility("chvis", &m2.receipt_handle, Duration::from_secs(13 * 3600))
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "VisibilityTimeout");
    q.delete("chvis", &m2.receipt_handle).await.unwrap();
    assert!(
        q.change_visibility("chvis", &m2.receipt_handle, secs(1))
            .await
            .is_err(),
        "deleted: not in flight"
    );
    assert!(matches!(
        q.change_visibility("chvis", "garbage", secs(1)).await,
        Err(Error::ReceiptHandleIsInvalid(_))
    ));
}

pub async fn per_receive_visibility_timeout(q: &dyn Queue, clock: &ManualClock) {
    create(
        q,
        "rvis",
        QueueAttributes {
            visibility_timeout: secs(300),
            ..Default::default()
        },
    )
    .await;
    send(q, "rvis", SendMessage::new("m")).await;
    let got = receive(q, "rvis", ReceiveOptions::max(1).visibility(secs(5))).await;
    assert_eq!(got.len(), 1);
    clock.advance(secs(4));
    assert!(receive_one(q, "rvis").await.is_none());
    clock.advance(secs(1));
    assert_eq!(receive_one(q, "rvis").await.unwrap().receive_count, 2);
}

pub async fn message_and_queue_delay(q: &dyn Queue, clock: &ManualClock) {
    create(q, "delay", QueueAttributes::default()).await;
    send(q, "delay", SendMessage::new("later").delay(secs(60))).await;
    send(q, "delay", SendMessage::new("now")).await;
    let now = receive_one(q, "delay").await.unwrap();
    assert_eq!(now.body, "now");
    q.delete("delay", &now.receipt_handle).await.unwrap();
    assert!(receive_one(q, "delay").await.is_none());
    assert_eq!(q.stats("delay").await.unwrap().delayed, 1);
    clock.advance(secs(59));
    assert!(receive_one(q, "delay").await.is_none());
    clock.advance(secs(1));
    assert_eq!(receive_one(q, "delay").await.unwrap().body, "later");
    let e = q
        .send(
            "delay",
            SendMessage::new("x").delay(Duration::from_secs(15 * 60 + 1)),
        )
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "DelaySeconds");

    create(
        q,
        "qdelay",
        QueueAttributes {
            delay: secs(10),
            ..Default::default()
        },
    )
    .await;
    send(q, "qdelay", SendMessage::new("queue delay")).await;
    send(
        q,
        "qdelay",
        SendMessage::new("no delay").delay(Duration::ZERO),
    )
    .await;
    assert_eq!(
        receive_one(q, "qdelay").await.unwrap().body,
        "no delay",
        "a message's delay overrides the queue's"
    );
    assert!(receive_one(q, "qdelay").await.is_none());
    clock.advance(secs(10));
    assert_eq!(receive_one(q, "qdelay").await.unwrap().body, "queue delay");
}

pub async fn retention_period(q: &dyn Queue, clock: &ManualClock) {
    create(
        q,
        "retain",
        QueueAttributes {
            retention: secs(60),
            visibility_timeout: secs(10),
            ..Default::default()
        },
    )
    .await;
    send(q, "retain", SendMessage::new("old")).await;
    clock.advance(secs(30));
    send(q, "retain", SendMessage::new("young")).await;
    receive_one(q, "retain")
        .await
        .expect("old, received once and not deleted");
    clock.advance(secs(31));
    let got = receive(q, "retain", ReceiveOptions::max(10)).await;
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["young"]
    );
    clock.advance(secs(60));
    assert!(
        receive_one(q, "retain").await.is_none(),
        "past retention: gone"
    );
    assert_eq!(q.stats("retain").await.unwrap().visible, 0);
}

pub async fn dead_letter_at_exactly_max_receive_count(q: &dyn Queue, clock: &ManualClock) {
    create(q, "dlq", QueueAttributes::default()).await;
    let policy = RedrivePolicy {
        dead_letter_target: "arn:aws:sqs:us-east-1:000000000000:dlq".into(),
        max_receive_count: 3,
    };
    create(
        q,
        "src",
        QueueAttributes {
            visibility_timeout: secs(10),
            redrive_policy: Some(policy),
            ..Default::default()
        },
    )
    .await;
    let id = send(
        q,
        "src",
        SendMessage::new("poison").attribute("a", AttributeValue::String("b".into())),
    )
    .await;
    for n in 1..=3 {
        let m = receive_one(q, "src")
            .await
            .unwrap_or_else(|| panic!("receive {n} of maxReceiveCount 3"));
        assert_eq!(m.receive_count, n);
        clock.advance(secs(10));
    }
    assert!(
        receive_one(q, "src").await.is_none(),
        "the fourth receive attempt moves it instead"
    );
    assert_eq!(q.stats("src").await.unwrap(), Default::default());
    let dead = receive_one(q, "dlq")
        .await
        .expect("in the dead-letter queue");
    assert_eq!(dead.message_id, id);
    assert_eq!(dead.body, "poison");
    assert_eq!(dead.attributes.len(), 1);
    q.change_visibility("dlq", &dead.receipt_handle, Duration::ZERO)
        .await
        .unwrap();

    assert_eq!(q.redrive("dlq", None).await.unwrap(), 1);
    assert!(receive_one(q, "dlq").await.is_none());
    let back = receive_one(q, "src").await.expect("redriven to its source");
    assert_eq!(back.message_id, id);
    assert_eq!(
        back.receive_count, 1,
        "a redriven message starts counting again"
    );
    q.delete("src", &back.receipt_handle).await.unwrap();
    assert!(matches!(
        q.redrive("no-such-dlq", None).await,
        Err(Error::QueueDoesNotExist(_))
    ));
}

pub async fn redrive_to_explicit_destination(q: &dyn Queue, clock: &ManualClock) {
    create(q, "dlq2", QueueAttributes::default()).await;
    create(q, "elsewhere", QueueAttributes::default()).await;
    let policy = RedrivePolicy {
        dead_letter_target: "dlq2".into(),
        max_receive_count: 1,
    };
    create(
        q,
        "src2",
        QueueAttributes {
            visibility_timeout: secs(5),
            redrive_policy: Some(policy),
            ..Default::default()
        },
    )
    .await;
    for i in 0..3 {
        send(q, "src2", SendMessage::new(format!("m{i}"))).await;
    }
    assert_eq!(receive(q, "src2", ReceiveOptions::max(10)).await.len(), 3);
    clock.advance(secs(5));
    assert!(receive(q, "src2", ReceiveOptions::max(10)).await.is_empty());
    assert_eq!(q.stats("dlq2").await.unwrap().visible, 3);
    assert_eq!(q.redrive("dlq2", Some("elsewhere")).await.unwrap(), 3);
    let mut bodies: Vec<_> = receive(q, "elsewhere", ReceiveOptions::max(10))
        .await
        .into_iter()
        .map(|m| m.body)
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["m0", "m1", "m2"]);
}

/// More than a thousand messages in flight at once, through a dead-letter queue and back:
/// sizes past what the small cases above reach, where backends batch and page their work.
pub async fn many_messages_through_a_dead_letter_queue(q: &dyn Queue, clock: &ManualClock) {
    const N: usize = 1100;
    create(q, "many-dlq", QueueAttributes::default()).await;
    let policy = RedrivePolicy {
        dead_letter_target: "many-dlq".into(),
        max_receive_count: 1,
    };
    let attrs = QueueAttributes {
        visibility_timeout: secs(10),
        redrive_policy: Some(policy),
        ..Default::default()
    };
    create(q, "many", attrs).await;
    let mut sent = std::collections::HashSet::new();
    for b in 0..N / 10 {
        let batch = (0..10)
            .map(|i| SendMessage::new(format!("m{}", b * 10 + i)))
            .collect();
        for r in q.send_batch("many", batch).await.unwrap() {
            sent.insert(r.unwrap().message_id);
        }
    }
    assert_eq!(sent.len(), N);

    let receive_all = |queue: &'static str| async move {
        let mut got = Vec::new();
        loop {
            let ms = receive(q, queue, ReceiveOptions::max(10).wait(Duration::ZERO)).await;
            if ms.is_empty() {
                return got;
            }
            got.extend(ms);
        }
    };
    let got = receive_all("many").await;
    assert_eq!(got.len(), N, "every message once");
    assert!(got.iter().all(|m| m.receive_count == 1));
    let ids: std::collections::HashSet<_> = got.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(ids, sent, "none twice");
    assert_eq!(q.stats("many").await.unwrap().in_flight, N as u64);

    // Visible again, each after one receive: every attempt moves messages to the DLQ.
    clock.advance(secs(10));
    for _ in 0..N {
        assert!(
            receive(q, "many", ReceiveOptions::max(10).wait(Duration::ZERO))
                .await
                .is_empty(),
            "a message past maxReceiveCount is moved, not delivered"
        );
        if q.stats("many").await.unwrap() == Default::default() {
            break;
        }
    }
    assert_eq!(q.stats("many").await.unwrap(), Default::default());
    assert_eq!(q.stats("many-dlq").await.unwrap().visible, N as u64);

    assert_eq!(q.redrive("many-dlq", None).await.unwrap(), N as u64);
    assert_eq!(q.stats("many").await.unwrap().visible, N as u64);
    let again = receive_all("many").await;
    assert_eq!(again.len(), N);
    assert!(
        again.iter().all(|m| m.receive_count == 1),
        "a redrive starts the count afresh"
    );
    for chunk in again.chunks(10) {
        let handles = chunk.iter().map(|m| m.receipt_handle.clone()).collect();
        for r in q.delete_batch("many", handles).await.unwrap() {
            r.unwrap();
        }
    }
    assert_eq!(q.stats("many").await.unwrap(), Default::default());
    assert_eq!(q.stats("many-dlq").await.unwrap(), Default::default());
}
