//! Message queues with Amazon SQS semantics: the task-queue role of agentry. Work for
//! executions (start, task result arrived, timer due) travels as messages; whichever node
//! receives a message holds it invisible for a visibility timeout, does the work and deletes
//! it. The contract is the one SQS honours, so an SQS backend can be added without changing
//! callers; the embedded default keeps messages in SQLite, and Redis serves several nodes.
//!
//! Layout:
//! - `lib.rs`: the [`Queue`] contract, its request and response types, the [`Clock`]
//! - `error`: the one [`Error`] every backend maps its failures into
//! - `poll`: long polling without spinning, shared by the backends
//! - `validate`: SQS's limits and naming rules, shared by all backends
//! - `sqlite`: the durable embedded backend (one writer thread, group commit)
//! - `redis`: the Redis backend (Lua scripts over sorted sets), feature `redis`
//! - `resolver`: a backend from a URL (`sqlite://path`, `redis://host`)
//! - `testsuite`: the conformance tests every backend passes

pub mod error;
mod poll;
pub mod resolver;
pub mod sqlite;
pub mod testsuite;
pub mod validate;

#[cfg(feature = "redis")]
pub mod redis;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use error::{Error, Result};
pub use resolver::{open, open_with_clock};

/// The most messages one batch call (send, receive, delete) may carry, as in SQS.
pub const MAX_BATCH: usize = 10;
/// The largest message (body plus attribute names, types and values), as in SQS: 256 KiB.
pub const MAX_MESSAGE_SIZE: usize = 256 * 1024;
/// How long a FIFO queue remembers a deduplication id.
pub const DEDUPLICATION_WINDOW: Duration = Duration::from_secs(5 * 60);
/// The longest long poll.
pub const MAX_WAIT_TIME: Duration = Duration::from_secs(20);
/// The longest delay of a message or a queue.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// The longest visibility timeout.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);

/// A queue's settings, as SQS's queue attributes. Two `create_queue` calls with the same name
/// and equal attributes return the same queue; with different attributes the second fails
/// with [`Error::QueueAlreadyExists`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueAttributes {
    /// How long a received message stays invisible to other receivers (0 s to 12 h; SQS
    /// `VisibilityTimeout`, default 30 s).
    #[serde(with = "millis")]
    pub visibility_timeout: Duration,
    /// Delay of every message sent to the queue (0 to 15 min; `DelaySeconds`).
    #[serde(with = "millis")]
    pub delay: Duration,
    /// How long a message is kept before it disappears, received or not (60 s to 14 days;
    /// `MessageRetentionPeriod`, default 4 days).
    #[serde(with = "millis")]
    pub retention: Duration,
    /// Default long-poll wait of a receive that names none (0 to 20 s;
    /// `ReceiveMessageWaitTimeSeconds`).
    #[serde(with = "millis")]
    pub receive_wait_time: Duration,
    /// Largest message accepted (1 KiB to 256 KiB; `MaximumMessageSize`).
    pub max_message_size: usize,
    /// Where messages go after too many receives (`RedrivePolicy`).
    pub redrive_policy: Option<RedrivePolicy>,
    /// FIFO only: a message without a deduplication id is deduplicated by the SHA-256 of its
    /// body (`ContentBasedDeduplication`).
    pub content_based_deduplication: bool,
    /// Standard queues only: messages with a higher [`SendMessage::priority`] are received
    /// first; equal priorities in send order. Not an SQS feature: an SQS backend refuses it.
    pub priority: bool,
}

impl Default for QueueAttributes {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(30),
            delay: Duration::ZERO,
            retention: Duration::from_secs(4 * 24 * 3600),
            receive_wait_time: Duration::ZERO,
            max_message_size: MAX_MESSAGE_SIZE,
            redrive_policy: None,
            content_based_deduplication: false,
            priority: false,
        }
    }
}

/// A dead-letter queue and the number of receives after which a message moves there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedrivePolicy {
    /// The dead-letter queue: its name or an SQS ARN ending in its name
    /// (`deadLetterTargetArn`). It must exist and be of the same type (FIFO or standard).
    pub dead_letter_target: String,
    /// A message received this many times and not deleted moves to the dead-letter queue on
    /// the next receive attempt (1 to 1000; `maxReceiveCount`).
    pub max_receive_count: u32,
}

impl RedrivePolicy {
    /// The dead-letter queue's name, whether given as a name or as an ARN.
    pub fn dead_letter_queue(&self) -> &str {
        self.dead_letter_target
            .rsplit(':')
            .next()
            .unwrap_or_default()
    }
}

/// A queue as created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueInfo {
    pub name: String,
    pub fifo: bool,
    pub attributes: QueueAttributes,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// Approximate counts of a queue's messages (`ApproximateNumberOfMessages*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Visible now.
    pub visible: u64,
    /// Received and within their visibility timeout.
    pub in_flight: u64,
    /// Sent with a delay that has not passed.
    pub delayed: u64,
}

/// A message attribute: a typed value beside the body (SQS `MessageAttributes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum AttributeValue {
    /// `String`, or a custom type `String.xyz` (the suffix is kept).
    String(String),
    /// `Number`: kept as the decimal text it was sent as.
    Number(String),
    Binary(Vec<u8>),
}

impl AttributeValue {
    fn size(&self) -> usize {
        match self {
            Self::String(s) => "String".len() + s.len(),
            Self::Number(s) => "Number".len() + s.len(),
            Self::Binary(b) => "Binary".len() + b.len(),
        }
    }
}

/// One message to send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendMessage {
    pub body: String,
    /// Per-message delay (0 to 15 min), overriding the queue's. FIFO queues refuse it, as SQS
    /// does: their delay is the queue's.
    pub delay: Option<Duration>,
    pub attributes: BTreeMap<String, AttributeValue>,
    /// FIFO: the message group; required there, refused on standard queues.
    pub group_id: Option<String>,
    /// FIFO: a second send with the same id within [`DEDUPLICATION_WINDOW`] is accepted but
    /// not enqueued again, and answers with the first send's message id.
    pub deduplication_id: Option<String>,
    /// Priority queues: higher is received first (0 to 255). Ignored elsewhere.
    pub priority: u8,
}

impl SendMessage {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    pub fn group(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    pub fn dedup(mut self, deduplication_id: impl Into<String>) -> Self {
        self.deduplication_id = Some(deduplication_id.into());
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    pub fn attribute(mut self, name: impl Into<String>, value: AttributeValue) -> Self {
        self.attributes.insert(name.into(), value);
        self
    }

    /// The size SQS counts against the limit: body plus attribute names, types and values.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.size())
                .sum::<usize>()
    }
}

/// A message accepted by the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub message_id: String,
    /// FIFO: the message's position in the queue, increasing in send order.
    pub sequence_number: Option<String>,
}

/// How to receive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiveOptions {
    /// 1 to 10; `None` is 1.
    pub max_messages: Option<usize>,
    /// Overrides the queue's visibility timeout for these messages.
    pub visibility_timeout: Option<Duration>,
    /// Long poll: wait up to this long (at most 20 s) for a first message. `None` uses the
    /// queue's `receive_wait_time`.
    pub wait_time: Option<Duration>,
}

impl ReceiveOptions {
    pub fn max(n: usize) -> Self {
        Self {
            max_messages: Some(n),
            ..Self::default()
        }
    }

    pub fn visibility(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = Some(timeout);
        self
    }

    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait_time = Some(wait);
        self
    }
}

/// A received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub message_id: String,
    /// Names this receive: delete and change visibility with it. A later receive of the same
    /// message issues a new handle; deleting with an older one succeeds without deleting, as
    /// in SQS.
    pub receipt_handle: String,
    pub body: String,
    pub attributes: BTreeMap<String, AttributeValue>,
    /// How many times the message has been received, this time included
    /// (`ApproximateReceiveCount`).
    pub receive_count: u32,
    /// When the message was sent, milliseconds since the Unix epoch (`SentTimestamp`).
    pub sent_at: i64,
    /// When it was first received (`ApproximateFirstReceiveTimestamp`).
    pub first_received_at: i64,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    pub sequence_number: Option<String>,
    pub priority: u8,
}

/// The SQS contract.
///
/// - Delivery is at least once: a message acknowledged by `send` is kept (durably, as far as
///   the backend is) until it is deleted, its retention period passes, or it moves to a
///   dead-letter queue. It may be delivered again when its visibility timeout passes before
///   it is deleted, so consumers must be idempotent: the message id stays the same across
///   deliveries and is the key to deduplicate by.
/// - Visibility: a received message is invisible to every receiver until its visibility
///   timeout (the receive's, else the queue's) passes or is changed; within it no other
///   receive returns the message.
/// - Ordering: standard queues make a best effort at send order (priority queues: higher
///   priority first); FIFO queues deliver each message group in send order, and a group's
///   next message is not delivered while an earlier one is in flight.
/// - Idempotency: `create_queue` with equal attributes, `delete` of a message already
///   deleted, and FIFO sends repeating a deduplication id within the window all succeed
///   without effect.
/// - Batches (send, delete) answer per entry, in entry order; the call itself fails only
///   when the whole batch is unacceptable (too many entries, unknown queue, backend down).
#[async_trait]
pub trait Queue: Send + Sync + std::fmt::Debug {
    async fn create_queue(&self, name: &str, attributes: &QueueAttributes) -> Result<QueueInfo>;
    async fn get_queue(&self, name: &str) -> Result<QueueInfo>;
    /// Queue names starting with `prefix`, sorted.
    async fn list_queues(&self, prefix: &str) -> Result<Vec<String>>;
    /// Deletes the queue and its messages.
    async fn delete_queue(&self, name: &str) -> Result<()>;
    /// Sends up to 10 messages; each entry answers for itself.
    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<SendMessage>,
    ) -> Result<Vec<Result<Sent>>>;
    /// Receives up to `max_messages`, waiting up to the wait time for the first one.
    async fn receive(&self, queue: &str, options: ReceiveOptions) -> Result<Vec<Message>>;
    /// Deletes up to 10 messages by receipt handle; each entry answers for itself.
    async fn delete_batch(
        &self,
        queue: &str,
        receipt_handles: Vec<String>,
    ) -> Result<Vec<Result<()>>>;
    /// Sets a received message's remaining invisibility, counted from now
    /// (`ChangeMessageVisibility`); zero makes it visible at once.
    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<()>;
    /// Deletes every message of the queue.
    async fn purge(&self, queue: &str) -> Result<()>;
    /// Moves messages from a dead-letter queue back to the queue each came from, or to
    /// `destination` when given (StartMessageMoveTask); answers how many moved.
    async fn redrive(&self, dead_letter_queue: &str, destination: Option<&str>) -> Result<u64>;
    async fn stats(&self, queue: &str) -> Result<QueueStats>;
}

/// Conveniences over [`Queue`].
#[async_trait]
pub trait QueueExt: Queue {
    async fn send(&self, queue: &str, message: SendMessage) -> Result<Sent> {
        self.send_batch(queue, vec![message])
            .await?
            .pop()
            .expect("one entry answers once")
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<()> {
        self.delete_batch(queue, vec![receipt_handle.to_owned()])
            .await?
            .pop()
            .expect("one entry answers once")
    }
}

impl<Q: Queue + ?Sized> QueueExt for Q {}

/// Where a queue's time comes from: milliseconds since the Unix epoch. Backends read it for
/// every visibility, delay and retention decision, so tests move it instead of sleeping.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// A clock that moves only when told to; clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// Starts at the current wall time, so stored timestamps look real.
    pub fn new() -> Self {
        Self(Arc::new(AtomicI64::new(SystemClock.now_ms())))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Whether a queue name denotes a FIFO queue.
pub fn is_fifo(name: &str) -> bool {
    name.ends_with(".fifo")
}

fn millis_of(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
