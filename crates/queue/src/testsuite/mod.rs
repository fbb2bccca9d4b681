//! The conformance suite: what every backend must do, written once. Each test takes a fresh
//! queue service and the [`ManualClock`] it reads, and moves the clock instead of sleeping;
//! only long-poll tests wait on real time, and briefly. Backends run every test through
//! [`crate::testsuite!`], which takes a setup function returning the service, its clock and a
//! guard kept alive for the test (a temporary directory), or `None` when the test is skipped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{
    AttributeValue, Clock, Error, MAX_MESSAGE_SIZE, ManualClock, Message, Queue, QueueAttributes,
    QueueExt, ReceiveOptions, RedrivePolicy, SendMessage,
};

mod delivery;
mod fifo;
mod limits;
mod queues;

pub use delivery::*;
pub use fifo::*;
pub use limits::*;
pub use queues::*;

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
            handle_deletes_until_received_again,
            change_visibility,
            per_receive_visibility_timeout,
            message_and_queue_delay,
            retention_period,
            dead_letter_at_exactly_max_receive_count,
            redrive_to_explicit_destination,
            many_messages_through_a_dead_letter_queue,
            fifo_group_order,
            fifo_order_under_concurrent_consumers,
            concurrent_receivers_never_share_a_message,
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

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(crate) async fn create(q: &dyn Queue, name: &str, attrs: QueueAttributes) {
    q.create_queue(name, &attrs)
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
}

pub(crate) async fn receive(q: &dyn Queue, name: &str, options: ReceiveOptions) -> Vec<Message> {
    q.receive(name, options)
        .await
        .unwrap_or_else(|e| panic!("receive from {name}: {e}"))
}

pub(crate) async fn receive_one(q: &dyn Queue, name: &str) -> Option<Message> {
    let mut got = receive(q, name, ReceiveOptions::max(1).wait(Duration::ZERO)).await;
    assert!(got.len() <= 1);
    got.pop()
}

pub(crate) async fn send(q: &dyn Queue, name: &str, m: SendMessage) -> String {
    q.send(name, m)
        .await
        .unwrap_or_else(|e| panic!("send to {name}: {e}"))
        .message_id
}

pub(crate) fn field_of(e: &Error) -> &str {
    match e {
        Error::InvalidParameter { field, .. } => field,
        other => panic!("expected an invalid parameter, got {other:?}"),
    }
}
