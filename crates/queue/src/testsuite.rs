//! The conformance suite: what every backend must do, written once. Each test takes a fresh
//! queue service and the [`ManualClock`] it reads, and moves the clock instead of sleeping;
//! only long-poll tests wait on real time, and briefly. Backends run every test through
//! [`crate::testsuite!`], which takes a setup function returning the service, its clock and a
//! guard kept alive for the test (a temporary directory), or `None` when the test is skipped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{
    AttributeValue, Clock, Error, MAX_MESSAGE_SIZE, ManualClock, Message, Queue, QueueAttributes, QueueExt, ReceiveOptions,
    RedrivePolicy, SendMessage,
};

/// Runs every conformance test against a backend. `$setup` is an async fn returning
/// `Option<(Arc<dyn Queue>, ManualClock, impl Sized)>`.
#[macro_export]
macro_rules! testsuite {
    ($setup:path) => {
        $crate::testsuite!(@tests $setup;
            queue_lifecycle,
            create_is_idempotent_and_detects_conflicts,
            invalid_queue_names_and_attributes,
            send_receive_delete,
            visibility_timeout_expires_and_receive_count_grows,
            stale_receipt_handle_deletes_nothing,
            change_visibility,
            per_receive_visibility_timeout,
            message_and_queue_delay,
            retention_period,
            dead_letter_at_exactly_max_receive_count,
            redrive_to_explicit_destination,
            fifo_group_order,
            fifo_order_under_concurrent_consumers,
            fifo_deduplication_window,
            fifo_content_based_deduplication,
            fifo_rules,
            long_poll_woken_by_send,
            long_poll_times_out,
            batch_limits,
            size_limit,
            priority_queue,
            purge,
        );
    };
    (@tests $setup:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((queue, clock, _guard)) = $setup().await else { return };
                $crate::testsuite::$name(&*queue, &clock).await;
            }
        )*
    };
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

async fn create(q: &dyn Queue, name: &str, attrs: QueueAttributes) {
    q.create_queue(name, &attrs).await.unwrap_or_else(|e| panic!("create {name}: {e}"));
}

async fn receive(q: &dyn Queue, name: &str, options: ReceiveOptions) -> Vec<Message> {
    q.receive(name, options).await.unwrap_or_else(|e| panic!("receive from {name}: {e}"))
}

async fn receive_one(q: &dyn Queue, name: &str) -> Option<Message> {
    let mut got = receive(q, name, ReceiveOptions::max(1).wait(Duration::ZERO)).await;
    assert!(got.len() <= 1);
    got.pop()
}

async fn send(q: &dyn Queue, name: &str, m: SendMessage) -> String {
    q.send(name, m).await.unwrap_or_else(|e| panic!("send to {name}: {e}")).message_id
}

fn field_of(e: &Error) -> &str {
    match e {
        Error::InvalidParameter { field, .. } => field,
        other => panic!("expected an invalid parameter, got {other:?}"),
    }
}

pub async fn queue_lifecycle(q: &dyn Queue, _clock: &ManualClock) {
    create(q, "life-a", QueueAttributes::default()).await;
    create(q, "life-b.fifo", QueueAttributes::default()).await;
    create(q, "other", QueueAttributes::default()).await;
    let info = q.get_queue("life-b.fifo").await.unwrap();
    assert!(info.fifo);
    assert_eq!(info.attributes, QueueAttributes::default());
    assert_eq!(q.list_queues("life-").await.unwrap(), ["life-a", "life-b.fifo"]);
    send(q, "life-a", SendMessage::new("kept?")).await;
    q.delete_queue("life-a").await.unwrap();
    assert_eq!(q.get_queue("life-a").await.unwrap_err(), Error::QueueDoesNotExist("life-a".into()));
    let e = q.send("life-a", SendMessage::new("x")).await.unwrap_err();
    assert_eq!(e.to_string(), "queue \"life-a\" does not exist");
    assert!(matches!(q.receive("life-a", ReceiveOptions::default()).await, Err(Error::QueueDoesNotExist(_))));
    assert!(matches!(q.delete_queue("life-a").await, Err(Error::QueueDoesNotExist(_))));
    // A queue made again under the old name starts empty.
    create(q, "life-a", QueueAttributes::default()).await;
    assert!(receive_one(q, "life-a").await.is_none());
}

pub async fn create_is_idempotent_and_detects_conflicts(q: &dyn Queue, _clock: &ManualClock) {
    let attrs = QueueAttributes { visibility_timeout: secs(45), ..Default::default() };
    let first = q.create_queue("same", &attrs).await.unwrap();
    let again = q.create_queue("same", &attrs).await.unwrap();
    assert_eq!(first, again);
    let e = q.create_queue("same", &QueueAttributes::default()).await.unwrap_err();
    assert_eq!(e, Error::QueueAlreadyExists("same".into()));
    assert_eq!(e.to_string(), "queue \"same\" already exists with different attributes");
}

pub async fn invalid_queue_names_and_attributes(q: &dyn Queue, _clock: &ManualClock) {
    for bad in ["", "has space", "dot.inside", "slash/name", ".fifo", "ümlaut"] {
        let e = q.create_queue(bad, &QueueAttributes::default()).await.unwrap_err();
        assert!(matches!(e, Error::InvalidQueueName { ref name, .. } if name == bad), "{bad:?}: {e:?}");
    }
    let long = "a".repeat(81);
    let e = q.create_queue(&long, &QueueAttributes::default()).await.unwrap_err();
    assert!(e.to_string().contains("longer than 80 characters"), "{e}");
    q.create_queue(&"a".repeat(80), &QueueAttributes::default()).await.unwrap();
    q.create_queue(&format!("{}.fifo", "b".repeat(75)), &QueueAttributes::default()).await.unwrap();

    let too_long = QueueAttributes { visibility_timeout: Duration::from_secs(12 * 3600 + 1), ..Default::default() };
    assert_eq!(field_of(&q.create_queue("attrs", &too_long).await.unwrap_err()), "VisibilityTimeout");
    let cbd = QueueAttributes { content_based_deduplication: true, ..Default::default() };
    assert_eq!(field_of(&q.create_queue("attrs", &cbd).await.unwrap_err()), "ContentBasedDeduplication");
    let missing_dlq = QueueAttributes {
        redrive_policy: Some(RedrivePolicy { dead_letter_target: "nowhere".into(), max_receive_count: 3 }),
        ..Default::default()
    };
    let e = q.create_queue("attrs", &missing_dlq).await.unwrap_err();
    assert_eq!(field_of(&e), "RedrivePolicy.deadLetterTargetArn");
    assert!(e.to_string().contains("\"nowhere\" does not exist"), "{e}");
    assert!(matches!(q.get_queue("attrs").await, Err(Error::QueueDoesNotExist(_))), "a refused queue is not created");
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
    assert!(receive_one(q, "basic").await.is_none(), "in flight: invisible");
    q.delete("basic", &got.receipt_handle).await.unwrap();
    q.delete("basic", &got.receipt_handle).await.expect("deleting twice is not an error");
    clock.advance(secs(60));
    assert!(receive_one(q, "basic").await.is_none(), "deleted: never comes back");
    let e = q.delete("basic", "not-a-handle").await.unwrap_err();
    assert_eq!(e, Error::ReceiptHandleIsInvalid("not-a-handle".into()));
}

pub async fn visibility_timeout_expires_and_receive_count_grows(q: &dyn Queue, clock: &ManualClock) {
    create(q, "vis", QueueAttributes { visibility_timeout: secs(30), ..Default::default() }).await;
    let id = send(q, "vis", SendMessage::new("work")).await;
    let first = receive_one(q, "vis").await.unwrap();
    clock.advance(Duration::from_millis(29_999));
    assert!(receive_one(q, "vis").await.is_none(), "still within its visibility timeout");
    clock.advance(Duration::from_millis(1));
    let second = receive_one(q, "vis").await.expect("back once the timeout passes");
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
    create(q, "stale", QueueAttributes { visibility_timeout: secs(10), ..Default::default() }).await;
    send(q, "stale", SendMessage::new("m")).await;
    let old = receive_one(q, "stale").await.unwrap();
    clock.advance(secs(11));
    let new = receive_one(q, "stale").await.unwrap();
    // The first consumer, late, must not delete the message the second one now holds.
    q.delete("stale", &old.receipt_handle).await.unwrap();
    let e = q.change_visibility("stale", &old.receipt_handle, secs(100)).await.unwrap_err();
    assert!(matches!(e, Error::ReceiptHandleIsInvalid(_)), "{e:?}");
    clock.advance(secs(11));
    let again = receive_one(q, "stale").await.expect("a stale handle deleted nothing");
    assert_eq!(again.message_id, new.message_id);
    assert_eq!(again.receive_count, 3);
}

pub async fn change_visibility(q: &dyn Queue, clock: &ManualClock) {
    create(q, "chvis", QueueAttributes { visibility_timeout: secs(30), ..Default::default() }).await;
    send(q, "chvis", SendMessage::new("m")).await;
    let m = receive_one(q, "chvis").await.unwrap();
    q.change_visibility("chvis", &m.receipt_handle, Duration::ZERO).await.unwrap();
    let m = receive_one(q, "chvis").await.expect("visible at once after a zero timeout");
    assert_eq!(m.receive_count, 2);
    clock.advance(secs(20));
    q.change_visibility("chvis", &m.receipt_handle, secs(60)).await.unwrap();
    clock.advance(secs(59));
    assert!(receive_one(q, "chvis").await.is_none(), "extended: 60 s from the change");
    clock.advance(secs(2));
    let m2 = receive_one(q, "chvis").await.unwrap();
    assert_eq!(m2.receive_count, 3);
    let e = q.change_visibility("chvis", &m2.receipt_handle, Duration::from_secs(13 * 3600)).await.unwrap_err();
    assert_eq!(field_of(&e), "VisibilityTimeout");
    q.delete("chvis", &m2.receipt_handle).await.unwrap();
    assert!(q.change_visibility("chvis", &m2.receipt_handle, secs(1)).await.is_err(), "deleted: not in flight");
    assert!(matches!(
        q.change_visibility("chvis", "garbage", secs(1)).await,
        Err(Error::ReceiptHandleIsInvalid(_))
    ));
}

pub async fn per_receive_visibility_timeout(q: &dyn Queue, clock: &ManualClock) {
    create(q, "rvis", QueueAttributes { visibility_timeout: secs(300), ..Default::default() }).await;
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
    let e = q.send("delay", SendMessage::new("x").delay(Duration::from_secs(15 * 60 + 1))).await.unwrap_err();
    assert_eq!(field_of(&e), "DelaySeconds");

    create(q, "qdelay", QueueAttributes { delay: secs(10), ..Default::default() }).await;
    send(q, "qdelay", SendMessage::new("queue delay")).await;
    send(q, "qdelay", SendMessage::new("no delay").delay(Duration::ZERO)).await;
    assert_eq!(receive_one(q, "qdelay").await.unwrap().body, "no delay", "a message's delay overrides the queue's");
    assert!(receive_one(q, "qdelay").await.is_none());
    clock.advance(secs(10));
    assert_eq!(receive_one(q, "qdelay").await.unwrap().body, "queue delay");
}

pub async fn retention_period(q: &dyn Queue, clock: &ManualClock) {
    create(q, "retain", QueueAttributes { retention: secs(60), visibility_timeout: secs(10), ..Default::default() })
        .await;
    send(q, "retain", SendMessage::new("old")).await;
    clock.advance(secs(30));
    send(q, "retain", SendMessage::new("young")).await;
    receive_one(q, "retain").await.expect("old, received once and not deleted");
    clock.advance(secs(31));
    let got = receive(q, "retain", ReceiveOptions::max(10)).await;
    assert_eq!(got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["young"]);
    clock.advance(secs(60));
    assert!(receive_one(q, "retain").await.is_none(), "past retention: gone");
    assert_eq!(q.stats("retain").await.unwrap().visible, 0);
}

pub async fn dead_letter_at_exactly_max_receive_count(q: &dyn Queue, clock: &ManualClock) {
    create(q, "dlq", QueueAttributes::default()).await;
    let policy = RedrivePolicy { dead_letter_target: "arn:aws:sqs:us-east-1:000000000000:dlq".into(), max_receive_count: 3 };
    create(q, "src", QueueAttributes { visibility_timeout: secs(10), redrive_policy: Some(policy), ..Default::default() })
        .await;
    let id = send(q, "src", SendMessage::new("poison").attribute("a", AttributeValue::String("b".into()))).await;
    for n in 1..=3 {
        let m = receive_one(q, "src").await.unwrap_or_else(|| panic!("receive {n} of maxReceiveCount 3"));
        assert_eq!(m.receive_count, n);
        clock.advance(secs(10));
    }
    assert!(receive_one(q, "src").await.is_none(), "the fourth receive attempt moves it instead");
    assert_eq!(q.stats("src").await.unwrap(), Default::default());
    let dead = receive_one(q, "dlq").await.expect("in the dead-letter queue");
    assert_eq!(dead.message_id, id);
    assert_eq!(dead.body, "poison");
    assert_eq!(dead.attributes.len(), 1);
    q.change_visibility("dlq", &dead.receipt_handle, Duration::ZERO).await.unwrap();

    assert_eq!(q.redrive("dlq", None).await.unwrap(), 1);
    assert!(receive_one(q, "dlq").await.is_none());
    let back = receive_one(q, "src").await.expect("redriven to its source");
    assert_eq!(back.message_id, id);
    assert_eq!(back.receive_count, 1, "a redriven message starts counting again");
    q.delete("src", &back.receipt_handle).await.unwrap();
    assert!(matches!(q.redrive("no-such-dlq", None).await, Err(Error::QueueDoesNotExist(_))));
}

pub async fn redrive_to_explicit_destination(q: &dyn Queue, clock: &ManualClock) {
    create(q, "dlq2", QueueAttributes::default()).await;
    create(q, "elsewhere", QueueAttributes::default()).await;
    let policy = RedrivePolicy { dead_letter_target: "dlq2".into(), max_receive_count: 1 };
    create(q, "src2", QueueAttributes { visibility_timeout: secs(5), redrive_policy: Some(policy), ..Default::default() })
        .await;
    for i in 0..3 {
        send(q, "src2", SendMessage::new(format!("m{i}"))).await;
    }
    assert_eq!(receive(q, "src2", ReceiveOptions::max(10)).await.len(), 3);
    clock.advance(secs(5));
    assert!(receive(q, "src2", ReceiveOptions::max(10)).await.is_empty());
    assert_eq!(q.stats("dlq2").await.unwrap().visible, 3);
    assert_eq!(q.redrive("dlq2", Some("elsewhere")).await.unwrap(), 3);
    let mut bodies: Vec<_> = receive(q, "elsewhere", ReceiveOptions::max(10)).await.into_iter().map(|m| m.body).collect();
    bodies.sort();
    assert_eq!(bodies, ["m0", "m1", "m2"]);
}

fn fifo_message(group: &str, body: &str) -> SendMessage {
    SendMessage::new(body).group(group).dedup(body)
}

pub async fn fifo_group_order(q: &dyn Queue, clock: &ManualClock) {
    create(q, "order.fifo", QueueAttributes { visibility_timeout: secs(30), ..Default::default() }).await;
    let mut seqs = Vec::new();
    for (g, b) in [("a", "a1"), ("b", "b1"), ("a", "a2"), ("a", "a3"), ("b", "b2")] {
        let sent = q.send("order.fifo", fifo_message(g, b)).await.unwrap();
        seqs.push(sent.sequence_number.expect("FIFO sends answer a sequence number"));
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "sequence numbers increase: {seqs:?}");
    let a1 = receive_one(q, "order.fifo").await.unwrap();
    assert_eq!((a1.body.as_str(), a1.group_id.as_deref()), ("a1", Some("a")));
    let b1 = receive_one(q, "order.fifo").await.unwrap();
    assert_eq!(b1.body, "b1", "group a is blocked while a1 is in flight");
    assert!(receive_one(q, "order.fifo").await.is_none(), "both groups are blocked");
    q.delete("order.fifo", &a1.receipt_handle).await.unwrap();
    assert_eq!(receive_one(q, "order.fifo").await.unwrap().body, "a2");
    // b1 is not deleted: when its timeout passes it comes back before b2.
    clock.advance(secs(30));
    let got: Vec<_> = receive(q, "order.fifo", ReceiveOptions::max(10)).await.into_iter().map(|m| m.body).collect();
    let pos = |b: &str| got.iter().position(|x| x == b);
    assert!(pos("b1").is_some(), "{got:?}");
    assert!(pos("b2").is_none() || pos("b1") < pos("b2"), "{got:?}");
    assert!(got.iter().all(|b| b != "a3") || pos("a2") < pos("a3"), "{got:?}");
}

pub async fn fifo_order_under_concurrent_consumers(q: &dyn Queue, _clock: &ManualClock) {
    const GROUPS: usize = 3;
    const PER_GROUP: usize = 12;
    create(q, "concurrent.fifo", QueueAttributes::default()).await;
    for i in 0..PER_GROUP {
        let batch = (0..GROUPS).map(|g| fifo_message(&format!("g{g}"), &format!("g{g}-{i:02}"))).collect();
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
                    seen.lock().unwrap().entry(group).or_default().push(m.body.clone());
                    tokio::task::yield_now().await;
                    q.delete("concurrent.fifo", &m.receipt_handle).await.unwrap();
                }
            }
        }
    };
    futures_join4(consumer(0), consumer(1), consumer(2), consumer(3)).await;
    let seen = seen.into_inner().unwrap();
    for g in 0..GROUPS {
        let expected: Vec<_> = (0..PER_GROUP).map(|i| format!("g{g}-{i:02}")).collect();
        assert_eq!(seen[&format!("g{g}")], expected, "group g{g} processed out of order or incompletely");
    }
}

async fn futures_join4(a: impl Future<Output = ()>, b: impl Future<Output = ()>, c: impl Future<Output = ()>, d: impl Future<Output = ()>) {
    tokio::join!(a, b, c, d);
}

pub async fn fifo_deduplication_window(q: &dyn Queue, clock: &ManualClock) {
    create(q, "dedup.fifo", QueueAttributes::default()).await;
    let first = q.send("dedup.fifo", SendMessage::new("one").group("g").dedup("d1")).await.unwrap();
    clock.advance(secs(299));
    let again = q.send("dedup.fifo", SendMessage::new("one, resent").group("g").dedup("d1")).await.unwrap();
    assert_eq!(again.message_id, first.message_id, "within 5 minutes: the first send's answer");
    let got = receive(q, "dedup.fifo", ReceiveOptions::max(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "one");
    assert_eq!(got[0].deduplication_id.as_deref(), Some("d1"));
    q.delete("dedup.fifo", &got[0].receipt_handle).await.unwrap();
    clock.advance(secs(2));
    let later = q.send("dedup.fifo", SendMessage::new("one, much later").group("g").dedup("d1")).await.unwrap();
    assert_ne!(later.message_id, first.message_id, "after the window the id is new again");
    assert_eq!(receive_one(q, "dedup.fifo").await.unwrap().body, "one, much later");
}

pub async fn fifo_content_based_deduplication(q: &dyn Queue, _clock: &ManualClock) {
    create(q, "cbd.fifo", QueueAttributes { content_based_deduplication: true, ..Default::default() }).await;
    let a = send(q, "cbd.fifo", SendMessage::new("same body").group("g1")).await;
    let b = send(q, "cbd.fifo", SendMessage::new("same body").group("g2")).await;
    assert_eq!(a, b);
    send(q, "cbd.fifo", SendMessage::new("other body").group("g3")).await;
    assert_eq!(receive(q, "cbd.fifo", ReceiveOptions::max(10)).await.len(), 2);
}

pub async fn fifo_rules(q: &dyn Queue, _clock: &ManualClock) {
    create(q, "rules.fifo", QueueAttributes::default()).await;
    create(q, "rules-std", QueueAttributes::default()).await;
    let e = q.send("rules.fifo", SendMessage::new("x").dedup("d")).await.unwrap_err();
    assert_eq!(field_of(&e), "MessageGroupId");
    let e = q.send("rules.fifo", SendMessage::new("x").group("g")).await.unwrap_err();
    assert_eq!(field_of(&e), "MessageDeduplicationId");
    let e = q.send("rules.fifo", fifo_message("g", "x").delay(secs(1))).await.unwrap_err();
    assert_eq!(field_of(&e), "DelaySeconds");
    let e = q.send("rules-std", SendMessage::new("x").group("g")).await.unwrap_err();
    assert_eq!(field_of(&e), "MessageGroupId");
    let e = q.create_queue("rules2.fifo", &QueueAttributes { priority: true, ..Default::default() }).await.unwrap_err();
    assert_eq!(field_of(&e), "Priority");
    let dlq = RedrivePolicy { dead_letter_target: "rules-std".into(), max_receive_count: 1 };
    let e = q.create_queue("rules3.fifo", &QueueAttributes { redrive_policy: Some(dlq), ..Default::default() }).await;
    assert!(e.unwrap_err().to_string().contains("same type"));
}

pub async fn long_poll_woken_by_send(q: &dyn Queue, _clock: &ManualClock) {
    create(q, "poll", QueueAttributes::default()).await;
    let started = Instant::now();
    let (got, ()) = tokio::join!(receive(q, "poll", ReceiveOptions::max(1).wait(secs(10))), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send(q, "poll", SendMessage::new("wake up")).await;
    });
    let waited = started.elapsed();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "wake up");
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "woken by the send, not by the 10 s timeout: {waited:?}");
    // The queue's default wait applies when the receive names none.
    create(q, "poll-default", QueueAttributes { receive_wait_time: secs(10), ..Default::default() }).await;
    let (got, ()) = tokio::join!(receive(q, "poll-default", ReceiveOptions::max(1)), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        send(q, "poll-default", SendMessage::new("x")).await;
    });
    assert_eq!(got.len(), 1);
}

pub async fn long_poll_times_out(q: &dyn Queue, _clock: &ManualClock) {
    create(q, "poll-empty", QueueAttributes::default()).await;
    let started = Instant::now();
    assert!(receive(q, "poll-empty", ReceiveOptions::max(1).wait(Duration::from_millis(700))).await.is_empty());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(650) && waited < Duration::from_secs(5), "{waited:?}");
    let e = q.receive("poll-empty", ReceiveOptions::max(1).wait(secs(21))).await.unwrap_err();
    assert_eq!(field_of(&e), "WaitTimeSeconds");
}

pub async fn batch_limits(q: &dyn Queue, _clock: &ManualClock) {
    create(q, "batch", QueueAttributes::default()).await;
    let eleven: Vec<_> = (0..11).map(|i| SendMessage::new(format!("m{i}"))).collect();
    assert_eq!(q.send_batch("batch", eleven).await.unwrap_err(), Error::BatchTooLarge { size: 11, limit: 10 });
    assert_eq!(q.send_batch("batch", vec![]).await.unwrap_err(), Error::EmptyBatch);
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
    let e = q.receive("batch", ReceiveOptions::max(11)).await.unwrap_err();
    assert_eq!(field_of(&e), "MaxNumberOfMessages");
    let got = receive(q, "batch", ReceiveOptions::max(10)).await;
    assert_eq!(got.len(), 8);
    let mut handles: Vec<_> = got.iter().map(|m| m.receipt_handle.clone()).collect();
    handles.push("forged".into());
    handles.push("also-forged".into());
    handles.push("third".into());
    assert_eq!(q.delete_batch("batch", handles.clone()).await.unwrap_err(), Error::BatchTooLarge { size: 11, limit: 10 });
    handles.pop();
    let results = q.delete_batch("batch", handles).await.unwrap();
    assert!(results[..8].iter().all(Result::is_ok));
    assert!(matches!(results[8], Err(Error::ReceiptHandleIsInvalid(_))));
    assert_eq!(q.stats("batch").await.unwrap(), Default::default());
    // Together the entries of a batch may not exceed the message size limit either.
    let big = "x".repeat(100 * 1024);
    let three = vec![SendMessage::new(big.clone()), SendMessage::new(big.clone()), SendMessage::new(big)];
    assert!(matches!(q.send_batch("batch", three).await, Err(Error::BatchRequestTooLong { .. })));
}

pub async fn size_limit(q: &dyn Queue, _clock: &ManualClock) {
    create(q, "size", QueueAttributes::default()).await;
    let e = q.send("size", SendMessage::new("x".repeat(MAX_MESSAGE_SIZE + 1))).await.unwrap_err();
    assert_eq!(e, Error::MessageTooLarge { size: MAX_MESSAGE_SIZE + 1, limit: MAX_MESSAGE_SIZE });
    assert_eq!(e.to_string(), "message of 262145 bytes is larger than the limit of 262144 bytes");
    // Attributes count against the limit too.
    let m = SendMessage::new("x".repeat(MAX_MESSAGE_SIZE - 10)).attribute("name", AttributeValue::String("v".into()));
    assert!(matches!(q.send("size", m).await, Err(Error::MessageTooLarge { .. })));
    let exact = "é".repeat(MAX_MESSAGE_SIZE / 2);
    send(q, "size", SendMessage::new(exact.clone())).await;
    assert_eq!(receive_one(q, "size").await.unwrap().body, exact);
    create(q, "small", QueueAttributes { max_message_size: 1024, ..Default::default() }).await;
    let e = q.send("small", SendMessage::new("x".repeat(1025))).await.unwrap_err();
    assert_eq!(e, Error::MessageTooLarge { size: 1025, limit: 1024 });
}

pub async fn priority_queue(q: &dyn Queue, clock: &ManualClock) {
    create(q, "prio", QueueAttributes { priority: true, visibility_timeout: secs(10), ..Default::default() }).await;
    for (body, p) in [("low", 1), ("high", 9), ("mid", 5), ("high-2", 9), ("none", 0)] {
        send(q, "prio", SendMessage::new(body).priority(p)).await;
    }
    let first = receive_one(q, "prio").await.unwrap();
    assert_eq!((first.body.as_str(), first.priority), ("high", 9));
    let rest: Vec<_> = receive(q, "prio", ReceiveOptions::max(10)).await.into_iter().map(|m| m.body).collect();
    assert_eq!(rest, ["high-2", "mid", "low", "none"]);
    // A message whose visibility timeout passes keeps its priority.
    clock.advance(secs(10));
    send(q, "prio", SendMessage::new("newer-mid").priority(5)).await;
    let again: Vec<_> = receive(q, "prio", ReceiveOptions::max(3)).await.into_iter().map(|m| m.body).collect();
    assert_eq!(again, ["high", "high-2", "mid"]);
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
