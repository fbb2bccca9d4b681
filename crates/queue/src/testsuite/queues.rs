//! Queues themselves: creating, naming, sending, deleting, purging.

use super::*;

pub async fn queue_lifecycle(q: &dyn Queue, _clock: &ManualClock) {
    create(q, "life-a", QueueAttributes::default()).await;
    create(q, "life-b.fifo", QueueAttributes::default()).await;
    create(q, "other", QueueAttributes::default()).await;
    let info = q.get_queue("life-b.fifo").await.unwrap();
    assert!(info.fifo);
    assert_eq!(info.attributes, QueueAttributes::default());
    assert_eq!(
        q.list_queues("life-").await.unwrap(),
        ["life-a", "life-b.fifo"]
    );
    send(q, "life-a", SendMessage::new("kept?")).await;
    q.delete_queue("life-a").await.unwrap();
    assert_eq!(
        q.get_queue("life-a").await.unwrap_err(),
        Error::QueueDoesNotExist("life-a".into())
    );
    let e = q.send("life-a", SendMessage::new("x")).await.unwrap_err();
    assert_eq!(e.to_string(), "queue \"life-a\" does not exist");
    assert!(matches!(
        q.receive("life-a", ReceiveOptions::default()).await,
        Err(Error::QueueDoesNotExist(_))
    ));
    assert!(matches!(
        q.delete_queue("life-a").await,
        Err(Error::QueueDoesNotExist(_))
    ));
    // A queue made again under the old name starts empty.
    create(q, "life-a", QueueAttributes::default()).await;
    assert!(receive_one(q, "life-a").await.is_none());
}

pub async fn create_is_idempotent_and_detects_conflicts(q: &dyn Queue, _clock: &ManualClock) {
    let attrs = QueueAttributes {
        visibility_timeout: secs(45),
        ..Default::default()
    };
    let first = q.create_queue("same", &attrs).await.unwrap();
    let again = q.create_queue("same", &attrs).await.unwrap();
    assert_eq!(first, again);
    let e = q
        .create_queue("same", &QueueAttributes::default())
        .await
        .unwrap_err();
    assert_eq!(e, Error::QueueAlreadyExists("same".into()));
    assert_eq!(
        e.to_string(),
        "queue \"same\" already exists with different attributes"
    );
}

pub async fn invalid_queue_names_and_attributes(q: &dyn Queue, _clock: &ManualClock) {
    for bad in [
        "",
        "has space",
        "dot.inside",
        "slash/name",
        ".fifo",
        "ümlaut",
    ] {
        let e = q
            .create_queue(bad, &QueueAttributes::default())
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::InvalidQueueName { ref name, .. } if name == bad),
            "{bad:?}: {e:?}"
        );
    }
    let long = "a".repeat(81);
    let e = q
        .create_queue(&long, &QueueAttributes::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("longer than 80 characters"), "{e}");
    q.create_queue(&"a".repeat(80), &QueueAttributes::default())
        .await
        .unwrap();
    q.create_queue(
        &format!("{}.fifo", "b".repeat(75)),
        &QueueAttributes::default(),
    )
    .await
    .unwrap();

    let too_long = QueueAttributes {
        visibility_timeout: Duration::from_secs(12 * 3600 + 1),
        ..Default::default()
    };
    assert_eq!(
        field_of(&q.create_queue("attrs", &too_long).await.unwrap_err()),
        "VisibilityTimeout"
    );
    let cbd = QueueAttributes {
        content_based_deduplication: true,
        ..Default::default()
    };
    assert_eq!(
        field_of(&q.create_queue("attrs", &cbd).await.unwrap_err()),
        "ContentBasedDeduplication"
    );
    let missing_dlq = QueueAttributes {
        redrive_policy: Some(RedrivePolicy {
            dead_letter_target: "nowhere".into(),
            max_receive_count: 3,
        }),
        ..Default::default()
    };
    let e = q.create_queue("attrs", &missing_dlq).await.unwrap_err();
    assert_eq!(field_of(&e), "RedrivePolicy.deadLetterTargetArn");
    assert!(e.to_string().contains("\"nowhere\" does not exist"), "{e}");
    assert!(
        matches!(q.get_queue("attrs").await, Err(Error::QueueDoesNotExist(_))),
        "a refused queue is not created"
    );
}

pub async fn send_receive_delete(q: &dyn Queue, clock: &ManualClock) {
    create(q, "basic", QueueAttributes::default()).await;
    let sent_at = clock.now_ms();
    let m = SendMessage::new("hello")
        .attribute("kind", AttributeValue::String("greeting".into()))
        .attribute("n", AttributeValue::Number("42".into()))
        .attribute("raw", AttributeValue::Binary(vec![0, 1, 255]));
    let id = send(q, "basic", m.clone()).await;
    let stats = q.stats("basic").await.unwrap();
    assert_eq!((stats.visible, stats.in_flight, stats.delayed), (1, 0, 0));
    clock.advance(secs(1));
    let got = receive_one(q, "basic").await.expect("the message sent");
    assert_eq!(got.message_id, id);
    assert_eq!(got.body, "hello");
    assert_eq!(got.attributes, m.attributes);
    assert_eq!(got.receive_count, 1);
    assert_eq!(got.sent_at, sent_at);
    assert_eq!(got.first_received_at, sent_at + 1000);
    assert_eq!(got.group_id, None);
    let stats = q.stats("basic").await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (0, 1));
    assert!(
        receive_one(q, "basic").await.is_none(),
        "in flight: invisible"
    );
    q.delete("basic", &got.receipt_handle).await.unwrap();
    q.delete("basic", &got.receipt_handle)
        .await
        .expect("deleting twice is not an error");
    clock.advance(secs(60));
    assert!(
        receive_one(q, "basic").await.is_none(),
        "deleted: never comes back"
    );
    let e = q.delete("basic", "not-a-handle").await.unwrap_err();
    assert_eq!(e, Error::ReceiptHandleIsInvalid("not-a-handle".into()));
}

pub async fn purge(q: &dyn Queue, clock: &ManualClock) {
    create(q, "purge", QueueAttributes::default()).await;
    for i in 0..5 {
        send(q, "purge", SendMessage::new(format!("m{i}"))).await;
    }
    let in_flight = receive_one(q, "purge").await.unwrap();
    q.purge("purge").await.unwrap();
    clock.advance(secs(60));
    assert!(receive_one(q, "purge").await.is_none());
    q.delete("purge", &in_flight.receipt_handle).await.unwrap();
    send(q, "purge", SendMessage::new("after")).await;
    assert_eq!(receive_one(q, "purge").await.unwrap().body, "after");
}
