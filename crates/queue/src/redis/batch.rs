//! Coalescing of concurrent sends, receives and deletes. Callers hand their entries to one task per
//! operation; while a script call is on the wire the next callers' entries queue up, and the
//! task sends them all, grouped by queue, in one script call each: the server runs one
//! script (and the client one round trip) for many callers, as SQLite's group commit does
//! for fsyncs.

use std::collections::HashMap;

use redis::Script;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result};

/// Most entries one coalesced call carries.
const MAX_ENTRIES: usize = 256;

/// One caller's part of a script call.
pub(super) struct Job {
    pub queue: String,
    /// Leading arguments that must be equal for jobs to share a call (the send script's
    /// queue creation time; nothing for delete).
    pub key: Vec<String>,
    /// Number of entries and their arguments, `width` each.
    pub entries: usize,
    pub args: Vec<String>,
    pub now: i64,
    /// The raw answer: the status, the call's `header` values, then up to `entries` items of
    /// `answer_width` values (or only the status when it is not "OK").
    pub reply: oneshot::Sender<Result<Vec<String>>>,
}

pub(super) struct Coalescer {
    jobs: mpsc::UnboundedSender<Job>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Coalescer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Coalescer {
    /// `count_arg`: whether the script takes the entry count after the key arguments. The
    /// script answers a status, `header` values for every caller, then items of
    /// `answer_width` values, handed to the callers in turn, each up to its entry count.
    pub fn start(
        conn: ConnectionManager,
        prefix: String,
        script: Script,
        count_arg: bool,
        header: usize,
        answer_width: usize,
    ) -> Self {
        let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
        let task = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                let mut entries = jobs[0].entries;
                while entries < MAX_ENTRIES {
                    match rx.try_recv() {
                        Ok(j) => {
                            entries += j.entries;
                            jobs.push(j);
                        }
                        Err(_) => break,
                    }
                }
                let mut groups: HashMap<(String, Vec<String>), Vec<Job>> = HashMap::new();
                for j in jobs {
                    groups
                        .entry((j.queue.clone(), j.key.clone()))
                        .or_default()
                        .push(j);
                }
                let calls = groups.into_iter().map(|((queue, key), jobs)| {
                    let (conn, prefix, script) = (conn.clone(), &prefix, &script);
                    async move {
                        call(
                            conn,
                            prefix,
                            script,
                            count_arg,
                            (header, answer_width),
                            &queue,
                            key,
                            jobs,
                        )
                        .await
                    }
                });
                futures_util::future::join_all(calls).await;
            }
        });
        Self { jobs, task }
    }

    pub async fn submit(&self, job: Job) -> Result<Vec<String>> {
        let (reply, answer) = oneshot::channel();
        let job = Job { reply, ..job };
        self.jobs
            .send(job)
            .map_err(|_| Error::Unavailable("redis batching task has stopped".into()))?;
        answer
            .await
            .map_err(|_| Error::Unavailable("redis batching task has stopped".into()))?
    }
}

#[allow(clippy::too_many_arguments)]
async fn call(
    mut conn: ConnectionManager,
    prefix: &str,
    script: &Script,
    count_arg: bool,
    (header, answer_width): (usize, usize),
    queue: &str,
    key: Vec<String>,
    jobs: Vec<Job>,
) {
    let mut invocation = script.prepare_invoke();
    // The latest caller's time: none of the callers has been answered yet.
    let now = jobs.iter().map(|j| j.now).max().unwrap_or_default();
    invocation.arg(prefix).arg(queue).arg(now);
    for k in &key {
        invocation.arg(k);
    }
    if count_arg {
        invocation.arg(jobs.iter().map(|j| j.entries).sum::<usize>());
    }
    for j in &jobs {
        for a in &j.args {
            invocation.arg(a);
        }
    }
    let out: Result<Vec<String>> = invocation
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::Unavailable(format!("redis: {e}")));
    match out {
        Err(e) => {
            for j in jobs {
                let _ = j.reply.send(Err(e.clone()));
            }
        }
        Ok(out) if out.first().map(String::as_str) != Some("OK") || answer_width == 0 => {
            for j in jobs {
                let _ = j.reply.send(Ok(out[..out.len().min(1)].to_vec()));
            }
        }
        Ok(out) => {
            let head = &out[..(1 + header).min(out.len())];
            let mut rest = out[head.len()..].iter();
            for j in jobs {
                let mut answer = head.to_vec();
                answer.extend(rest.by_ref().take(j.entries * answer_width).cloned());
                let _ = j.reply.send(Ok(answer));
            }
        }
    }
}
