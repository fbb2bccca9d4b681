//! Long polling shared by the backends: a receive that finds nothing waits for a send to the
//! queue (woken through [`Waiters`]) or for the next message to come due, never spinning.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::{Clock, Message, Result};

/// One receive attempt's outcome.
pub(crate) struct Attempt {
    pub messages: Vec<Message>,
    /// The long-poll wait that applies (the receive's, else the queue's).
    pub wait: Duration,
    /// When, in the clock's milliseconds, the earliest invisible message comes due.
    pub next_due: Option<i64>,
}

/// Receivers waiting on each queue, by queue name.
#[derive(Default)]
pub(crate) struct Waiters(Mutex<HashMap<String, Arc<Notify>>>);

impl Waiters {
    fn get(&self, queue: &str) -> Arc<Notify> {
        let mut map = self.0.lock().expect("waiters lock");
        map.entry(queue.to_owned()).or_default().clone()
    }

    /// Wakes every receiver of every queue: after notifications may have been missed.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub fn wake_all(&self) {
        let map = self.0.lock().expect("waiters lock");
        for n in map.values() {
            n.notify_waiters();
        }
    }

    /// Wakes every receiver waiting on `queue`.
    pub fn wake(&self, queue: &str) {
        let map = self.0.lock().expect("waiters lock");
        if let Some(n) = map.get(queue) {
            n.notify_waiters();
        }
    }
}

/// Runs `attempt` until it returns messages or the wait it reports has passed.
pub(crate) async fn long_poll<F, Fut>(
    waiters: &Waiters,
    clock: &dyn Clock,
    queue: &str,
    mut attempt: F,
) -> Result<Vec<Message>>
where
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = Result<Attempt>>,
{
    let notify = waiters.get(queue);
    let start = Instant::now();
    loop {
        // Registered before looking, so a send landing between the look and the wait still wakes us.
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = clock.now_ms();
        let a = attempt(now).await?;
        let deadline = start + a.wait;
        let t = Instant::now();
        if !a.messages.is_empty() || t >= deadline {
            return Ok(a.messages);
        }
        let mut wake_at = deadline;
        if let Some(due) = a.next_due {
            wake_at = wake_at.min(t + Duration::from_millis((due - now).max(1) as u64));
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(wake_at) => {}
        }
    }
}
