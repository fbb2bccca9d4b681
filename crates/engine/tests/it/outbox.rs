//! A step whose work could not be handed out (the queue refused it) is handed out later by
//! the outbox sweeper: committed work is never lost between the commit and the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agentry_engine::Engine;
use agentry_queue::{
    Message, Queue, QueueAttributes, QueueInfo, QueueStats, ReceiveOptions, SendMessage, Sent,
};
use async_trait::async_trait;
use serde_json::json;

use crate::support::*;

/// A queue whose sends fail while `down` is set.
#[derive(Debug)]
struct Flaky {
    inner: Arc<dyn Queue>,
    down: Arc<AtomicBool>,
}

#[async_trait]
impl Queue for Flaky {
    async fn create_queue(
        &self,
        name: &str,
        a: &QueueAttributes,
    ) -> agentry_queue::Result<QueueInfo> {
        self.inner.create_queue(name, a).await
    }
    async fn get_queue(&self, name: &str) -> agentry_queue::Result<QueueInfo> {
        self.inner.get_queue(name).await
    }
    async fn list_queues(&self, prefix: &str) -> agentry_queue::Result<Vec<String>> {
        self.inner.list_queues(prefix).await
    }
    async fn delete_queue(&self, name: &str) -> agentry_queue::Result<()> {
        self.inner.delete_queue(name).await
    }
    async fn send_batch(
        &self,
        queue: &str,
        m: Vec<SendMessage>,
    ) -> agentry_queue::Result<Vec<agentry_queue::Result<Sent>>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(agentry_queue::Error::Unavailable("test: queue down".into()));
        }
        self.inner.send_batch(queue, m).await
    }
    async fn receive(&self, queue: &str, o: ReceiveOptions) -> agentry_queue::Result<Vec<Message>> {
        self.inner.receive(queue, o).await
    }
    async fn delete_batch(
        &self,
        queue: &str,
        h: Vec<String>,
    ) -> agentry_queue::Result<Vec<agentry_queue::Result<()>>> {
        self.inner.delete_batch(queue, h).await
    }
    async fn change_visibility(
        &self,
        queue: &str,
        h: &str,
        t: Duration,
    ) -> agentry_queue::Result<()> {
        self.inner.change_visibility(queue, h, t).await
    }
    async fn purge(&self, queue: &str) -> agentry_queue::Result<()> {
        self.inner.purge(queue).await
    }
    async fn redrive(&self, dlq: &str, dest: Option<&str>) -> agentry_queue::Result<u64> {
        self.inner.redrive(dlq, dest).await
    }
    async fn stats(&self, queue: &str) -> agentry_queue::Result<QueueStats> {
        self.inner.stats(queue).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_the_queue_refused_is_handed_out_by_the_sweeper() {
    let dir = tempfile::tempdir().unwrap();
    let (store, queue) = urls(dir.path());
    let calls = Calls::default();
    let down = Arc::new(AtomicBool::new(false));
    let queue = Arc::new(Flaky {
        inner: agentry_queue::open(&queue).await.unwrap(),
        down: down.clone(),
    });
    let engine = Engine::open(
        agentry_storage::open(&store).await.unwrap(),
        queue,
        resources("a", &calls),
        config(),
    )
    .await
    .unwrap();
    let m = engine
        .create_state_machine(
            "outbox",
            &json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": ECHO, "End": true}}}).to_string(),
        )
        .await
        .unwrap();
    down.store(true, Ordering::SeqCst);
    // The start commits (the task is scheduled in the history) but its invocation is not sent.
    let s = engine
        .start_execution(&m, None, r#"{"kept": 1}"#)
        .await
        .unwrap();
    let events = engine.history(&s.execution_arn).await.unwrap();
    assert_eq!(types(&events).last().unwrap(), "TaskStarted");
    down.store(false, Ordering::SeqCst);
    let _node = engine.run();
    let d = finish(&engine, &s.execution_arn).await;
    assert_eq!(d.output_json(), Some(json!({"kept": 1})));
    assert_eq!(calls.keys().len(), 1);
}
