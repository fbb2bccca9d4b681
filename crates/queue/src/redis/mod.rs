//! Queues in Redis, for several nodes sharing one server. Every operation that reads and
//! changes a queue is one Lua script (`lua/`), so it is atomic on the server: two receivers
//! can never take the same message. Messages wait in sorted sets keyed by delivery order
//! (`ready`) and by visible-at time (`inv`); FIFO groups keep their order in a list of which
//! only the head is deliverable. Concurrent sends, receives and deletes are coalesced into
//! one script call each (`batch`). Sends publish on a channel that wakes long polls on every
//! node, while someone long-polls. Durable as far as the server is configured to be (AOF
//! `appendfsync always` for the SQLite backend's guarantee).
//!
//! What the server spends per message is what bounds throughput, so the scripts are written
//! for it: a message is a field of a per-queue hash, not a key of its own, and a script
//! handles a whole coalesced batch with one command per hash and sorted set; a message's
//! receive state is its member in the sorted sets, and the receipt handle is that member, so
//! a delete is one ZREM and one HDEL; the client's part of a message (`blob`) is stored and
//! returned without the script parsing it; numbers are formatted as few times as possible.
//! The key layout is described in `lua/common.lua`; it is versioned (`LAYOUT` in each
//! queue's settings), and queues stored in another layout are refused with an error saying
//! to delete and create them again.
//!
//! Scripts touch keys they compute from the prefix and queue name, so the backend needs a
//! single Redis server (or a primary), not a cluster. Time is the callers' clock: nodes'
//! clocks should agree to well within a visibility timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::poll::{Attempt, Waiters, long_poll};
use crate::{
    Clock, Error, Message, Queue, QueueAttributes, QueueInfo, QueueStats, ReceiveOptions, Result,
    SendMessage, Sent, is_fifo, millis_of, validate,
};

mod batch;
mod blob;

const COMMON: &str = include_str!("lua/common.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{COMMON}\n{body}"))
}

struct Scripts {
    visibility: Script,
    admin: Script,
}

/// A script's answer after its status.
enum Answer {
    Ok(Vec<String>),
    /// A status other than "OK" or "NOQUEUE".
    Refused(String),
}

/// A queue as stored in the `queues` hash.
#[derive(Serialize, Deserialize)]
struct Stored {
    attributes: QueueAttributes,
    created_at: i64,
}

pub struct RedisQueue {
    conn: ConnectionManager,
    prefix: String,
    clock: Arc<dyn Clock>,
    waiters: Arc<Waiters>,
    scripts: Scripts,
    /// Queue settings by name. Sends check against the creation time they were read at, so
    /// a queue deleted and made again elsewhere is read afresh.
    infos: Mutex<HashMap<String, QueueInfo>>,
    listener: tokio::task::JoinHandle<()>,
    sends: batch::Coalescer,
    deletes: batch::Coalescer,
    receives: batch::Coalescer,
    tokens: Tokens,
    ids: Ids,
}

/// Receipt tokens: distinct for every receive this process makes, and not guessable from
/// outside it, without a call to the system's random source each.
struct Tokens {
    base: u64,
    next: std::sync::atomic::AtomicU64,
}

impl Tokens {
    fn new() -> Self {
        Self {
            base: uuid::Uuid::new_v4().as_u64_pair().0,
            next: Default::default(),
        }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SplitMix64's finalizer: a bijection, so distinct counts give distinct tokens.
        let mut z = self
            .base
            .wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        format!("{:016x}", z ^ (z >> 31))
    }
}

/// Message ids: UUIDs of version 4's form, distinct for every send this process makes,
/// without a call to the system's random source each. The first half (60 random bits) is
/// drawn once per process; the second counts on from a random start in its 62 free bits.
struct Ids {
    hi: u64,
    lo: u64,
    next: std::sync::atomic::AtomicU64,
}

impl Ids {
    const COUNT: u64 = u64::MAX >> 2;
    /// RFC 4122's variant in the top two bits.
    const VARIANT: u64 = 0b10 << 62;

    fn new() -> Self {
        let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
        Self {
            hi,
            lo,
            next: Default::default(),
        }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let lo = (self.lo.wrapping_add(n) & Self::COUNT) | Self::VARIANT;
        uuid::Uuid::from_u64_pair(self.hi, lo).to_string()
    }
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisQueue {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

fn unavailable(e: redis::RedisError) -> Error {
    Error::Unavailable(format!("redis: {e}"))
}

impl RedisQueue {
    /// Connects to the server at `url`, keeping this deployment's keys under `prefix`.
    pub async fn connect(url: &str, prefix: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| Error::InvalidUrl {
            url: crate::resolver::redact(url),
            reason: e.to_string(),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(10)));
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| {
                Error::Unavailable(format!("redis at {}: {e}", crate::resolver::redact(url)))
            })?;
        let waiters = Arc::new(Waiters::default());
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let listener = tokio::spawn(listen(
            client,
            format!("{prefix}:notify"),
            waiters.clone(),
            ready_tx,
        ));
        // Long polls rely on the subscription; wait for it, but not forever.
        let _ = tokio::time::timeout(Duration::from_secs(5), ready).await;
        Ok(Self {
            conn: conn.clone(),
            prefix: prefix.to_owned(),
            clock,
            waiters,
            sends: batch::Coalescer::start(
                conn.clone(),
                prefix.to_owned(),
                script(include_str!("lua/send.lua")),
                true,
                0,
                1,
            ),
            deletes: batch::Coalescer::start(
                conn.clone(),
                prefix.to_owned(),
                script(include_str!("lua/delete.lua")),
                false,
                0,
                0,
            ),
            receives: batch::Coalescer::start(
                conn.clone(),
                prefix.to_owned(),
                script(include_str!("lua/receive.lua")),
                true,
                1,
                2,
            ),
            scripts: Scripts {
                visibility: script(include_str!("lua/visibility.lua")),
                admin: script(include_str!("lua/admin.lua")),
            },
            infos: Mutex::default(),
            listener,
            tokens: Tokens::new(),
            ids: Ids::new(),
        })
    }

    /// Runs a script with the common arguments (prefix, queue, now) before `args`. Scripts
    /// answer a status first: "NOQUEUE" becomes [`Error::QueueDoesNotExist`], anything but
    /// "OK" is left to the caller in [`Answer::Refused`].
    async fn run(&self, script: &Script, queue: &str, now: i64, args: &[String]) -> Result<Answer> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(&self.prefix).arg(queue).arg(now);
        for a in args {
            invocation.arg(a);
        }
        let mut conn = self.conn.clone();
        let out: Vec<String> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        self.interpret(queue, out)
    }

    fn interpret(&self, queue: &str, mut out: Vec<String>) -> Result<Answer> {
        if out.is_empty() {
            return Err(Error::Backend("redis script answered nothing".into()));
        }
        let status = out.remove(0);
        match status.as_str() {
            "OK" => Ok(Answer::Ok(out)),
            "NOQUEUE" => {
                self.forget(queue);
                Err(Error::QueueDoesNotExist(queue.to_owned()))
            }
            "LAYOUT" => {
                self.forget(queue);
                Err(Error::Backend(format!(
                    "queue \"{queue}\" (or its dead-letter queue) is stored in an older Redis key \
                     layout than this version reads (layout {LAYOUT}); delete the queue and create \
                     it again"
                )))
            }
            _ => Ok(Answer::Refused(status)),
        }
    }

    /// Runs a script whose only refusal is an unknown queue.
    async fn run_ok(
        &self,
        script: &Script,
        queue: &str,
        now: i64,
        args: &[String],
    ) -> Result<Vec<String>> {
        match self.run(script, queue, now, args).await? {
            Answer::Ok(out) => Ok(out),
            Answer::Refused(status) => Err(Error::Backend(format!(
                "redis script answered \"{status}\""
            ))),
        }
    }

    async fn admin(&self, queue: &str, op: &str, args: &[&str]) -> Result<Vec<String>> {
        let mut all = vec![op.to_owned()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        self.run_ok(&self.scripts.admin, queue, self.clock.now_ms(), &all)
            .await
    }

    fn forget(&self, queue: &str) {
        self.infos.lock().expect("infos lock").remove(queue);
    }

    async fn fetch_info(&self, queue: &str) -> Result<QueueInfo> {
        let mut conn = self.conn.clone();
        let stored: Option<String> = conn
            .hget(format!("{}:queues", self.prefix), queue)
            .await
            .map_err(unavailable)?;
        let Some(stored) = stored else {
            self.forget(queue);
            return Err(Error::QueueDoesNotExist(queue.to_owned()));
        };
        let info = parse_stored(queue, &stored)?;
        self.infos
            .lock()
            .expect("infos lock")
            .insert(queue.to_owned(), info.clone());
        Ok(info)
    }

    async fn info(&self, queue: &str) -> Result<QueueInfo> {
        if let Some(info) = self.infos.lock().expect("infos lock").get(queue) {
            return Ok(info.clone());
        }
        self.fetch_info(queue).await
    }

    /// Deletes every key under this queue service's prefix: for tests and teardown.
    pub async fn destroy(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let keys: Vec<String> = {
            let mut iter = conn
                .scan_match::<_, String>(format!("{}:*", self.prefix))
                .await
                .map_err(unavailable)?;
            let mut keys = Vec::new();
            while let Some(k) = iter.next_item().await {
                keys.push(k.map_err(unavailable)?);
            }
            keys
        };
        for chunk in keys.chunks(500) {
            let _: () = conn.del(chunk).await.map_err(unavailable)?;
        }
        Ok(())
    }

    async fn receive_once(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
        now: i64,
    ) -> Result<(Vec<Message>, Option<i64>)> {
        let job = batch::Job {
            queue: queue.to_owned(),
            key: vec![
                millis_of(visibility).to_string(),
                if wait.is_zero() { "0" } else { "1" }.to_owned(),
            ],
            entries: max,
            args: (0..max).map(|_| self.tokens.next()).collect(),
            now,
            reply: oneshot::channel().0,
        };
        let raw = self.receives.submit(job).await?;
        let out = match self.interpret(queue, raw)? {
            Answer::Ok(out) => out,
            Answer::Refused(status) => {
                return Err(Error::Backend(format!(
                    "redis receive answered \"{status}\""
                )));
            }
        };
        let next_due = out
            .first()
            .and_then(|s| s.parse::<f64>().ok())
            .map(|f| f as i64);
        let mut messages = Vec::with_capacity(out.len().saturating_sub(1) / 2);
        let mut fields = out.into_iter().skip(1);
        while let Some(handle) = fields.next() {
            let Some(stored) = fields.next() else {
                return Err(Error::Backend(
                    "redis receive answered a partial message".into(),
                ));
            };
            messages.push(blob::message(handle, &stored)?);
        }
        Ok((messages, next_due))
    }
}

fn parse_stored(queue: &str, stored: &str) -> Result<QueueInfo> {
    let s: Stored = serde_json::from_str(stored).map_err(|e| {
        Error::Backend(format!(
            "queue \"{queue}\": stored attributes are unreadable: {e}"
        ))
    })?;
    Ok(QueueInfo {
        name: queue.to_owned(),
        fifo: is_fifo(queue),
        attributes: s.attributes,
        created_at: s.created_at,
    })
}

/// The layout of a queue's keys these scripts read and write (`lua/common.lua`). Queues
/// stored in another layout are refused with an error saying so; deleting them works.
const LAYOUT: u32 = 2;

/// Checks a receipt handle's form, "ID:rc:first:tok" (the message's member in the in-flight
/// set): the scripts compare it whole, so only its form matters here.
fn check_handle(handle: &str) -> Result<()> {
    let mut parts = handle.split(':');
    let digits =
        |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    let ok = parts
        .next()
        .is_some_and(|id| id.len() == 36 && uuid::Uuid::parse_str(id).is_ok())
        && digits(parts.next())
        && digits(parts.next())
        && parts
            .next()
            .is_some_and(|tok| tok.len() == 16 && tok.bytes().all(|b| b.is_ascii_hexdigit()))
        && parts.next().is_none();
    if ok {
        Ok(())
    } else {
        Err(Error::ReceiptHandleIsInvalid(handle.to_owned()))
    }
}

/// Follows the notification channel, waking local long polls, and resubscribes after a
/// dropped connection (waking everyone, since notifications may have been missed).
async fn listen(
    client: redis::Client,
    channel: String,
    waiters: Arc<Waiters>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                    waiters.wake_all();
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        if let Ok(queue) = msg.get_payload::<String>() {
                            waiters.wake(&queue);
                        }
                    }
                    tracing::warn!(
                        channel,
                        "redis queue: notification subscription ended, resubscribing"
                    );
                }
                Err(e) => {
                    tracing::warn!(channel, error = %e, "redis queue: cannot subscribe to notifications")
                }
            },
            Err(e) => {
                tracing::warn!(channel, error = %e, "redis queue: cannot connect for notifications")
            }
        }
        waiters.wake_all();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[async_trait]
impl Queue for RedisQueue {
    async fn create_queue(&self, name: &str, attributes: &QueueAttributes) -> Result<QueueInfo> {
        validate::queue_name(name)?;
        validate::attributes(name, attributes)?;
        let now = self.clock.now_ms();
        let json = serde_json::to_string(&Stored {
            attributes: attributes.clone(),
            created_at: now,
        })
        .expect("queue serializes");
        let dlq = attributes
            .redrive_policy
            .as_ref()
            .map_or("", |p| p.dead_letter_queue());
        let args = [
            "create".to_owned(),
            json,
            dlq.to_owned(),
            millis_of(attributes.retention).to_string(),
            if attributes.priority { "1" } else { "0" }.to_owned(),
            attributes
                .redrive_policy
                .as_ref()
                .map_or(0, |p| p.max_receive_count)
                .to_string(),
            now.to_string(),
        ];
        let out = match self.run(&self.scripts.admin, name, now, &args).await? {
            Answer::Ok(out) => out,
            Answer::Refused(_) => {
                return Err(Error::invalid(
                    "RedrivePolicy.deadLetterTargetArn",
                    format!("dead-letter queue \"{dlq}\" does not exist"),
                ));
            }
        };
        let info = parse_stored(name, &out[0])?;
        if &info.attributes != attributes {
            return Err(Error::QueueAlreadyExists(name.to_owned()));
        }
        self.infos
            .lock()
            .expect("infos lock")
            .insert(name.to_owned(), info.clone());
        Ok(info)
    }

    async fn get_queue(&self, name: &str) -> Result<QueueInfo> {
        self.fetch_info(name).await
    }

    async fn list_queues(&self, prefix: &str) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        let mut names: Vec<String> = conn
            .hkeys(format!("{}:queues", self.prefix))
            .await
            .map_err(unavailable)?;
        names.retain(|n| n.starts_with(prefix));
        names.sort();
        Ok(names)
    }

    async fn delete_queue(&self, name: &str) -> Result<()> {
        self.admin(name, "delete", &[]).await?;
        self.forget(name);
        Ok(())
    }

    async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<SendMessage>,
    ) -> Result<Vec<Result<Sent>>> {
        validate::send_batch(&messages)?;
        for attempt in 0..2 {
            let info = if attempt == 0 {
                self.info(queue).await?
            } else {
                self.fetch_info(queue).await?
            };
            let now = self.clock.now_ms();
            let expires = now + millis_of(info.attributes.retention);
            let mut results: Vec<Option<Result<Sent>>> = Vec::with_capacity(messages.len());
            let mut args = Vec::with_capacity(messages.len() * 3);
            let mut ids = Vec::with_capacity(messages.len());
            let mut count = 0;
            for m in &messages {
                match validate::message(queue, &info.attributes, m) {
                    Err(e) => results.push(Some(Err(e))),
                    Ok(checked) => {
                        count += 1;
                        results.push(None);
                        let id = self.ids.next();
                        let dedup = checked.deduplication_id.unwrap_or_default();
                        let group = m.group_id.as_deref().unwrap_or_default();
                        let visible = now + millis_of(checked.delay);
                        // Most messages have none of these: an empty field spares the
                        // script parsing four.
                        let opts = if group.is_empty()
                            && dedup.is_empty()
                            && m.priority == 0
                            && visible == now
                        {
                            String::new()
                        } else {
                            format!("{group} {dedup} {} {visible}", m.priority)
                        };
                        let stored =
                            blob::stored(expires, now, visible, m.priority, group, m, &dedup);
                        args.extend([id.clone(), stored, opts]);
                        ids.push(id);
                    }
                }
            }
            if count == 0 {
                return Ok(results
                    .into_iter()
                    .map(|r| r.expect("every entry failed"))
                    .collect());
            }
            let job = batch::Job {
                queue: queue.to_owned(),
                key: vec![info.created_at.to_string()],
                entries: count,
                args,
                now,
                reply: oneshot::channel().0,
            };
            let raw = self.sends.submit(job).await?;
            // "STALE": the queue was deleted and made again since we read it; read it again.
            let out = match self.interpret(queue, raw)? {
                Answer::Ok(out) => out,
                Answer::Refused(_) => continue,
            };
            let (mut answers, mut ids) = (out.into_iter(), ids.into_iter());
            return Ok(results
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|| {
                        let (Some(id), Some(answer)) = (ids.next(), answers.next()) else {
                            return Err(Error::Backend(
                                "redis send answered too few messages".into(),
                            ));
                        };
                        // "ID seq": deduplicated, the earlier message's.
                        let (id, seq) = match answer.split_once(' ') {
                            Some((earlier, seq)) => (earlier.to_owned(), seq.to_owned()),
                            None => (id, answer),
                        };
                        Ok(Sent {
                            message_id: id,
                            sequence_number: info
                                .fifo
                                .then(|| format!("{:020}", seq.parse::<u64>().unwrap_or(0))),
                        })
                    })
                })
                .collect());
        }
        Err(Error::Unavailable(format!(
            "queue \"{queue}\" keeps changing while sending"
        )))
    }

    async fn receive(&self, queue: &str, options: ReceiveOptions) -> Result<Vec<Message>> {
        let info = self.info(queue).await?;
        let (max, visibility, wait) = validate::receive(&options, &info.attributes)?;
        let started = tokio::time::Instant::now();
        long_poll(&self.waiters, &*self.clock, queue, |now| async move {
            let left = wait.saturating_sub(started.elapsed());
            let (messages, next_due) = self.receive_once(queue, max, visibility, left, now).await?;
            Ok(Attempt {
                messages,
                wait,
                next_due,
            })
        })
        .await
    }

    async fn delete_batch(
        &self,
        queue: &str,
        receipt_handles: Vec<String>,
    ) -> Result<Vec<Result<()>>> {
        validate::delete_batch(&receipt_handles)?;
        let mut args = Vec::new();
        let results: Vec<Result<()>> = receipt_handles
            .into_iter()
            .map(|h| {
                check_handle(&h)?;
                args.push(h);
                Ok(())
            })
            .collect();
        let job = batch::Job {
            queue: queue.to_owned(),
            key: Vec::new(),
            entries: args.len(),
            args,
            now: self.clock.now_ms(),
            reply: oneshot::channel().0,
        };
        let raw = self.deletes.submit(job).await?;
        self.interpret(queue, raw)?;
        Ok(results)
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<()> {
        validate::visibility(timeout)?;
        check_handle(receipt_handle)?;
        let args = [receipt_handle.to_owned(), millis_of(timeout).to_string()];
        match self
            .run(&self.scripts.visibility, queue, self.clock.now_ms(), &args)
            .await?
        {
            Answer::Ok(_) => Ok(()),
            Answer::Refused(status) if status == "NOTINFLIGHT" => {
                Err(Error::MessageNotInflight(receipt_handle.to_owned()))
            }
            Answer::Refused(_) => Err(Error::ReceiptHandleIsInvalid(receipt_handle.to_owned())),
        }
    }

    async fn purge(&self, queue: &str) -> Result<()> {
        self.admin(queue, "purge", &[]).await.map(drop)
    }

    async fn redrive(&self, dead_letter_queue: &str, destination: Option<&str>) -> Result<u64> {
        if let Some(d) = destination {
            let (to, from) = (
                self.fetch_info(d).await?,
                self.fetch_info(dead_letter_queue).await?,
            );
            if to.fifo != from.fifo {
                return Err(Error::Redrive(format!(
                    "queue \"{d}\" is not of the same type as \"{dead_letter_queue}\""
                )));
            }
        }
        let out = self
            .admin(dead_letter_queue, "redrive", &[destination.unwrap_or("")])
            .await?;
        Ok(out.first().and_then(|n| n.parse().ok()).unwrap_or(0))
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats> {
        let out = self.admin(queue, "stats", &[]).await?;
        let n = |i: usize| out.get(i).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok(QueueStats {
            visible: n(0),
            in_flight: n(1),
            delayed: n(2),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_distinct_version_4_uuids() {
        let ids = Ids::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = ids.next();
            let u = uuid::Uuid::parse_str(&id).unwrap();
            assert_eq!(u.get_version(), Some(uuid::Version::Random), "{id}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert!(seen.insert(id));
        }
        // Where the counter wraps, its 62 bits roll over without touching the variant.
        let wrap = Ids::new();
        wrap.next.store(
            Ids::COUNT - (wrap.lo & Ids::COUNT),
            std::sync::atomic::Ordering::Relaxed,
        );
        let (a, b) = (wrap.next(), wrap.next());
        assert!(a.ends_with("-bfff-ffffffffffff"), "{a}");
        assert!(b.ends_with("-8000-000000000000"), "{b}");
        assert_eq!(
            uuid::Uuid::parse_str(&b).unwrap().get_variant(),
            uuid::Variant::RFC4122
        );
    }

    #[test]
    fn receipt_handles_are_checked_for_their_form() {
        let good = "4bd3c5c6-8d8e-4d0b-9a53-2e1f1f6f2a10:2:1700000000001:0123456789abcdef";
        assert!(check_handle(good).is_ok());
        for bad in [
            "",
            "not-a-handle",
            "4bd3c5c6-8d8e-4d0b-9a53-2e1f1f6f2a10:0123456789abcdef",
            "4bd3c5c6-8d8e-4d0b-9a53-2e1f1f6f2a10:2:x:0123456789abcdef",
            "4bd3c5c6-8d8e-4d0b-9a53-2e1f1f6f2a10:2:1700000000001:0123456789abcdeg",
            "4bd3c5c6-8d8e-4d0b-9a53-2e1f1f6f2a10:2:1700000000001:0123456789abcdef:1",
            "4bd3c5c68d8e4d0b9a532e1f1f6f2a10xxxx:2:1700000000001:0123456789abcdef",
        ] {
            assert!(
                matches!(check_handle(bad), Err(Error::ReceiptHandleIsInvalid(_))),
                "{bad:?}"
            );
        }
    }
}
