//! Long polling, batches, sizes and priorities.

use super::*;

pub async fn long_poll_woken_by_send(q: &dyn Queue, _clock: &ManualClock) {
    create(q, "poll", QueueAttributes::default()).await;
    let started = Instant::now();
    let (got, ()) = tokio::join!(
        receive(q, "poll", ReceiveOptions::max(1).wait(secs(10))),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            send(q, "poll", SendMessage::new("wake up")).await;
        }
    );
    let waited = started.elapsed();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "wake up");
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(
        waited < Duration::from_secs(5),
        "woken by the send, not by the 10 s timeout: {waited:?}"
    );
    // The queue's default wait applies when the receive names none.
    create(
        q,
        "poll-default",
        QueueAttributes {
            receive_wait_time: secs(10),
            ..Default::default()
        },
    )
    .await;
    let (got, ()) = tokio::join!(receive(q, "poll-default", ReceiveOptions::max(1)), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        send(q, "poll-default", SendMessage::new("x")).await;
    });
    assert_eq!(got.len(), 1);
}

pub async fn long_poll_times_out(q: &dyn Queue, _clock: &ManualClock) {
    create(q, "poll-empty", QueueAttributes::default()).await;
    let started = Instant::now();
    assert!(
        receive(
            q,
            "poll-empty",
            ReceiveOptions::max(1).wait(Duration::from_millis(700))
        )
        .await
        .is_empty()
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(650) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let e = q
        .receive("poll-empty", ReceiveOptions::max(1).wait(secs(21)))
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "WaitTimeSeconds");
}

pub async fn batch_limits(q: &dyn Queue, _clock: &ManualClock) {
    create(q, "batch", QueueAttributes::default()).await;
    let eleven: Vec<_> = (0..11).map(|i| SendMessage::new(format!("m{i}"))).collect();
    assert_eq!(
        q.send_batch("batch", eleven).await.unwrap_err(),
        Error::BatchTooLarge {
            size: 11,
            limit: 10
        }
    );
    assert_eq!(
        q.send_batch("batch", vec![]).await.unwrap_err(),
        Error::EmptyBatch
    );
    let mut ten: Vec<_> = (0..10).map(|i| SendMessage::new(format!("m{i}"))).collect();
    ten[3].body = "bad \u{0} char".into();
    ten[7].body = String::new();
    let results = q.send_batch("batch", ten).await.unwrap();
    assert_eq!(results.len(), 10);
    for (i, r) in results.iter().enumerate() {
        match i {
            3 | 7 => assert_eq!(field_of(r.as_ref().unwrap_err()), "MessageBody"),
            _ => assert!(r.is_ok(), "entry {i}: {r:?}"),
        }
    }
    let e = q
        .receive("batch", ReceiveOptions::max(11))
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "MaxNumberOfMessages");
    let got = receive(q, "batch", ReceiveOptions::max(10)).await;
    assert_eq!(got.len(), 8);
    let mut handles: Vec<_> = got.iter().map(|m| m.receipt_handle.clone()).collect();
    handles.push("forged".into());
    handles.push("also-forged".into());
    handles.push("third".into());
    assert_eq!(
        q.delete_batch("batch", handles.clone()).await.unwrap_err(),
        Error::BatchTooLarge {
            size: 11,
            limit: 10
        }
    );
    handles.pop();
    let results = q.delete_batch("batch", handles).await.unwrap();
    assert!(results[..8].iter().all(Result::is_ok));
    assert!(matches!(results[8], Err(Error::ReceiptHandleIsInvalid(_))));
    assert_eq!(q.stats("batch").await.unwrap(), Default::default());
    // Together the entries of a batch may not exceed the message size limit either.
    let big = "x".repeat(100 * 1024);
    let three = vec![
        SendMessage::new(big.clone()),
        SendMessage::new(big.clone()),
        SendMessage::new(big),
    ];
    assert!(matches!(
        q.send_batch("batch", three).await,
        Err(Error::BatchRequestTooLong { .. })
    ));
}

pub async fn size_limit(q: &dyn Queue, _clock: &ManualClock) {
    create(q, "size", QueueAttributes::default()).await;
    let e = q
        .send("size", SendMessage::new("x".repeat(MAX_MESSAGE_SIZE + 1)))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        Error::MessageTooLarge {
            size: MAX_MESSAGE_SIZE + 1,
            limit: MAX_MESSAGE_SIZE
        }
    );
    assert_eq!(
        e.to_string(),
        "message of 262145 bytes is larger than the limit of 262144 bytes"
    );
    // Attributes count against the limit too.
    let m = SendMessage::new("x".repeat(MAX_MESSAGE_SIZE - 10))
        .attribute("name", AttributeValue::String("v".into()));
    assert!(matches!(
        q.send("size", m).await,
        Err(Error::MessageTooLarge { .. })
    ));
    let exact = "é".repeat(MAX_MESSAGE_SIZE / 2);
    send(q, "size", SendMessage::new(exact.clone())).await;
    assert_eq!(receive_one(q, "size").await.unwrap().body, exact);
    create(
        q,
        "small",
        QueueAttributes {
            max_message_size: 1024,
            ..Default::default()
        },
    )
    .await;
    let e = q
        .send("small", SendMessage::new("x".repeat(1025)))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        Error::MessageTooLarge {
            size: 1025,
            limit: 1024
        }
    );
}

pub async fn priority_queue(q: &dyn Queue, clock: &ManualClock) {
    create(
        q,
        "prio",
        QueueAttributes {
            priority: true,
            visibility_timeout: secs(10),
            ..Default::default()
        },
    )
    .await;
    for (body, p) in [
        ("low", 1),
        ("high", 9),
        ("mid", 5),
        ("high-2", 9),
        ("none", 0),
    ] {
        send(q, "prio", SendMessage::new(body).priority(p)).await;
    }
    let first = receive_one(q, "prio").await.unwrap();
    assert_eq!((first.body.as_str(), first.priority), ("high", 9));
    let rest: Vec<_> = receive(q, "prio", ReceiveOptions::max(10))
        .await
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(rest, ["high-2", "mid", "low", "none"]);
    // A message whose visibility timeout passes keeps its priority.
    clock.advance(secs(10));
    send(q, "prio", SendMessage::new("newer-mid").priority(5)).await;
    let again: Vec<_> = receive(q, "prio", ReceiveOptions::max(3))
        .await
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(again, ["high", "high-2", "mid"]);
}
