//! The queue operations as SQL, run on the writer thread inside its transaction. Time comes
//! in as `now` (milliseconds) from the queue's clock.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::writer::sql_error;
use crate::poll::Attempt;
use crate::{
    DEDUPLICATION_WINDOW, Error, Message, QueueAttributes, QueueInfo, QueueStats, ReceiveOptions,
    Result, SendMessage, Sent, is_fifo, millis_of, validate,
};

/// A queue row: its id and settings.
pub(crate) struct Row {
    id: i64,
    info: QueueInfo,
}

thread_local! {
    /// Queues read on this (the writer) thread, by name, so a send or receive does not
    /// parse its queue's settings every time. Emptied when another connection commits (the
    /// database's `data_version` moves), when a queue is deleted and when a job or a
    /// transaction is rolled back.
    static QUEUES: RefCell<HashMap<String, Rc<Row>>> = RefCell::default();
    static DATA_VERSION: Cell<i64> = const { Cell::new(-1) };
}

pub(crate) fn forget_queues() {
    QUEUES.with(|q| q.borrow_mut().clear());
}

/// Called at the start of every transaction: another process may have changed the queues.
pub(crate) fn check_data_version(conn: &Connection) {
    let version = conn
        .prepare_cached("PRAGMA data_version")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        .unwrap_or(-2);
    if DATA_VERSION.with(|v| v.replace(version)) != version {
        forget_queues();
    }
}

fn lookup(conn: &Connection, name: &str) -> Result<Option<Rc<Row>>> {
    if let Some(row) = QUEUES.with(|q| q.borrow().get(name).cloned()) {
        return Ok(Some(row));
    }
    let mut stmt = conn
        .prepare_cached("SELECT id, attributes, created_at FROM queues WHERE name = ?1")
        .map_err(sql_error)?;
    let row = stmt
        .query_row([name], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .optional()
        .map_err(sql_error)?;
    let Some((id, attrs, created_at)) = row else {
        return Ok(None);
    };
    let attributes = serde_json::from_str(&attrs).map_err(|e| {
        Error::Backend(format!(
            "queue \"{name}\": stored attributes are unreadable: {e}"
        ))
    })?;
    let row = Rc::new(Row {
        id,
        info: QueueInfo {
            name: name.to_owned(),
            fifo: is_fifo(name),
            attributes,
            created_at,
        },
    });
    QUEUES.with(|q| q.borrow_mut().insert(name.to_owned(), row.clone()));
    Ok(Some(row))
}

fn queue(conn: &Connection, name: &str) -> Result<Rc<Row>> {
    lookup(conn, name)?.ok_or_else(|| Error::QueueDoesNotExist(name.to_owned()))
}

pub(crate) fn create_queue(
    conn: &Connection,
    name: &str,
    attrs: &QueueAttributes,
    now: i64,
) -> Result<QueueInfo> {
    validate::queue_name(name)?;
    validate::attributes(name, attrs)?;
    if let Some(existing) = lookup(conn, name)? {
        if &existing.info.attributes != attrs {
            return Err(Error::QueueAlreadyExists(name.to_owned()));
        }
        return Ok(existing.info.clone());
    }
    if let Some(p) = &attrs.redrive_policy
        && lookup(conn, p.dead_letter_queue())?.is_none()
    {
        return Err(Error::invalid(
            "RedrivePolicy.deadLetterTargetArn",
            format!(
                "dead-letter queue \"{}\" does not exist",
                p.dead_letter_queue()
            ),
        ));
    }
    let json = serde_json::to_string(attrs).expect("attributes serialize");
    conn.execute(
        "INSERT INTO queues (name, attributes, created_at) VALUES (?1, ?2, ?3)",
        params![name, json, now],
    )
    .map_err(sql_error)?;
    Ok(QueueInfo {
        name: name.to_owned(),
        fifo: is_fifo(name),
        attributes: attrs.clone(),
        created_at: now,
    })
}

pub(crate) fn get_queue(conn: &Connection, name: &str) -> Result<QueueInfo> {
    Ok(queue(conn, name)?.info.clone())
}

pub(crate) fn list_queues(conn: &Connection, prefix: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT name FROM queues ORDER BY name")
        .map_err(sql_error)?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sql_error)?;
    let mut out = Vec::new();
    for n in names {
        let n = n.map_err(sql_error)?;
        if n.starts_with(prefix) {
            out.push(n);
        }
    }
    Ok(out)
}

pub(crate) fn delete_queue(conn: &Connection, name: &str) -> Result<()> {
    let q = queue(conn, name)?;
    conn.execute("DELETE FROM messages WHERE queue_id = ?1", [q.id])
        .map_err(sql_error)?;
    conn.execute("DELETE FROM deduplication WHERE queue_id = ?1", [q.id])
        .map_err(sql_error)?;
    conn.execute("DELETE FROM queues WHERE id = ?1", [q.id])
        .map_err(sql_error)?;
    forget_queues();
    Ok(())
}

pub(crate) fn purge(conn: &Connection, name: &str) -> Result<()> {
    let q = queue(conn, name)?;
    conn.execute("DELETE FROM messages WHERE queue_id = ?1", [q.id])
        .map_err(sql_error)?;
    Ok(())
}

fn sequence_number(seq: i64) -> String {
    format!("{seq:020}")
}

pub(crate) fn send_batch(
    conn: &Connection,
    name: &str,
    messages: &[SendMessage],
    now: i64,
) -> Result<Vec<Result<Sent>>> {
    validate::send_batch(messages)?;
    let q = queue(conn, name)?;
    let attrs = &q.info.attributes;
    if q.info.fifo {
        conn.prepare_cached("DELETE FROM deduplication WHERE queue_id = ?1 AND expires_at <= ?2")
            .and_then(|mut s| s.execute(params![q.id, now]))
            .map_err(sql_error)?;
    }
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let checked = match validate::message(name, attrs, m) {
            Ok(c) => c,
            Err(e) => {
                out.push(Err(e));
                continue;
            }
        };
        if let Some(dedup) = &checked.deduplication_id {
            let earlier = conn
                .prepare_cached("SELECT message_id, seq FROM deduplication WHERE queue_id = ?1 AND dedup_id = ?2")
                .and_then(|mut s| {
                    s.query_row(params![q.id, dedup], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).optional()
                })
                .map_err(sql_error)?;
            if let Some((message_id, seq)) = earlier {
                out.push(Ok(Sent {
                    message_id,
                    sequence_number: Some(sequence_number(seq)),
                }));
                continue;
            }
        }
        let message_id = uuid::Uuid::new_v4().to_string();
        let attributes = (!m.attributes.is_empty())
            .then(|| serde_json::to_string(&m.attributes).expect("attributes serialize"));
        let priority = attrs.priority.then_some(m.priority);
        let seq: i64 = conn
            .prepare_cached(
                "INSERT INTO messages (queue_id, message_id, body, attributes, group_id, dedup_id, priority,
                    sent_at, visible_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING seq",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        q.id,
                        message_id,
                        m.body,
                        attributes,
                        m.group_id,
                        checked.deduplication_id,
                        priority,
                        now,
                        now + millis_of(checked.delay),
                        now + millis_of(attrs.retention),
                    ],
                    |r| r.get(0),
                )
            })
            .map_err(sql_error)?;
        if let Some(dedup) = &checked.deduplication_id {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO deduplication (queue_id, dedup_id, message_id, seq, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![q.id, dedup, message_id, seq, now + millis_of(DEDUPLICATION_WINDOW)]))
            .map_err(sql_error)?;
        }
        out.push(Ok(Sent {
            message_id,
            sequence_number: q.info.fifo.then(|| sequence_number(seq)),
        }));
    }
    Ok(out)
}

/// A candidate for delivery.
struct Candidate {
    seq: i64,
    receive_count: u32,
    expires_at: i64,
}

fn candidates(conn: &Connection, q: &Row, now: i64, limit: usize) -> Result<Vec<Candidate>> {
    let sql = if q.info.fifo {
        // A group's message is deliverable only when no earlier message of the group is
        // invisible (in flight or delayed): that keeps each group in order.
        "SELECT m.seq, m.receive_count, m.expires_at FROM messages m
         WHERE m.queue_id = ?1 AND m.visible_at <= ?2 AND NOT EXISTS (
             SELECT 1 FROM messages e
             WHERE e.queue_id = ?1 AND e.group_id = m.group_id AND e.seq < m.seq AND e.visible_at > ?2)
         ORDER BY m.seq LIMIT ?3"
    } else if q.info.attributes.priority {
        "SELECT seq, receive_count, expires_at FROM messages
         WHERE queue_id = ?1 AND priority IS NOT NULL AND visible_at <= ?2
         ORDER BY priority DESC, seq LIMIT ?3"
    } else {
        "SELECT seq, receive_count, expires_at FROM messages
         WHERE queue_id = ?1 AND visible_at <= ?2 ORDER BY visible_at, seq LIMIT ?3"
    };
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(params![q.id, now, limit as i64], |r| {
            Ok(Candidate {
                seq: r.get(0)?,
                receive_count: r.get(1)?,
                expires_at: r.get(2)?,
            })
        })
        .map_err(sql_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql_error)
}

/// The columns [`row_to_message`] reads, in its order.
const MESSAGE_COLUMNS: &str = "seq, message_id, body, attributes, group_id, dedup_id, priority, sent_at, receive_count, first_received_at";

fn row_to_message(r: &rusqlite::Row<'_>, token: u64) -> rusqlite::Result<Message> {
    let seq: i64 = r.get(0)?;
    let attributes: Option<String> = r.get(3)?;
    let group_id: Option<String> = r.get(4)?;
    Ok(Message {
        message_id: r.get(1)?,
        receipt_handle: format!("{seq}-{token:016x}"),
        body: r.get(2)?,
        attributes: attributes
            .and_then(|a| serde_json::from_str(&a).ok())
            .unwrap_or_default(),
        receive_count: r.get(8)?,
        sent_at: r.get(7)?,
        first_received_at: r.get(9)?,
        sequence_number: group_id.is_some().then(|| sequence_number(seq)),
        group_id,
        deduplication_id: r.get(5)?,
        priority: r.get::<_, Option<u8>>(6)?.unwrap_or(0),
    })
}

pub(crate) fn receive(
    conn: &Connection,
    name: &str,
    options: &ReceiveOptions,
    now: i64,
) -> Result<Attempt> {
    let q = queue(conn, name)?;
    let (max, visibility, wait) = validate::receive(options, &q.info.attributes)?;
    let redrive = q.info.attributes.redrive_policy.as_ref();
    let dead_letter = match redrive {
        Some(p) => lookup(conn, p.dead_letter_queue())?,
        None => None,
    };
    let mut messages = Vec::new();
    // Each pass either delivers, expires or dead-letters every candidate it sees, so the
    // loop ends; the bound only guards against a queue full of expired messages.
    for _ in 0..64 {
        if messages.len() >= max {
            break;
        }
        let found = candidates(conn, &q, now, max - messages.len())?;
        if found.is_empty() {
            break;
        }
        for c in found {
            if c.expires_at <= now {
                conn.prepare_cached("DELETE FROM messages WHERE seq = ?1")
                    .and_then(|mut s| s.execute([c.seq]))
                    .map_err(sql_error)?;
                continue;
            }
            if let (Some(p), Some(dlq)) = (redrive, &dead_letter)
                && c.receive_count >= p.max_receive_count
            {
                move_to(conn, c.seq, dlq, Some(name), now)?;
                continue;
            }
            let token = uuid::Uuid::new_v4().as_u64_pair().0;
            let m = conn
                .prepare_cached(&format!(
                    "UPDATE messages SET visible_at = ?2, receive_count = receive_count + 1,
                        first_received_at = coalesce(first_received_at, ?3), receipt_token = ?4
                     WHERE seq = ?1 RETURNING {MESSAGE_COLUMNS}"
                ))
                .and_then(|mut s| {
                    s.query_row(
                        params![c.seq, now + millis_of(visibility), now, token as i64],
                        |r| row_to_message(r, token),
                    )
                })
                .map_err(sql_error)?;
            messages.push(m);
        }
    }
    let next_due = if messages.is_empty() {
        conn.prepare_cached(
            "SELECT min(visible_at) FROM messages WHERE queue_id = ?1 AND visible_at > ?2",
        )
        .and_then(|mut s| s.query_row(params![q.id, now], |r| r.get::<_, Option<i64>>(0)))
        .map_err(sql_error)?
    } else {
        None
    };
    Ok(Attempt {
        messages,
        wait,
        next_due,
    })
}

/// Moves a message to another queue, visible now. `source` is recorded when dead-lettering,
/// so a redrive knows where the message came from; a redrive clears it and the receive count.
fn move_to(conn: &Connection, seq: i64, to: &Row, source: Option<&str>, now: i64) -> Result<()> {
    let priority_queue = to.info.attributes.priority;
    let sql = if source.is_some() {
        "UPDATE messages SET queue_id = ?2, visible_at = ?3, receipt_token = NULL, source_queue = ?4,
            expires_at = sent_at + ?5, priority = CASE WHEN ?6 THEN coalesce(priority, 0) END
         WHERE seq = ?1"
    } else {
        "UPDATE messages SET queue_id = ?2, visible_at = ?3, receipt_token = NULL, source_queue = ?4,
            expires_at = sent_at + ?5, priority = CASE WHEN ?6 THEN coalesce(priority, 0) END,
            receive_count = 0, first_received_at = NULL
         WHERE seq = ?1"
    };
    conn.prepare_cached(sql)
        .and_then(|mut s| {
            s.execute(params![
                seq,
                to.id,
                now,
                source,
                millis_of(to.info.attributes.retention),
                priority_queue
            ])
        })
        .map_err(sql_error)?;
    Ok(())
}

/// A receipt handle's message and receive token.
fn parse_handle(handle: &str) -> Result<(i64, i64)> {
    let invalid = || Error::ReceiptHandleIsInvalid(handle.to_owned());
    let (seq, token) = handle.split_once('-').ok_or_else(invalid)?;
    let seq = seq.parse::<i64>().map_err(|_| invalid())?;
    let token = u64::from_str_radix(token, 16).map_err(|_| invalid())?;
    Ok((seq, token as i64))
}

pub(crate) fn delete_batch(
    conn: &Connection,
    name: &str,
    handles: &[String],
) -> Result<Vec<Result<()>>> {
    validate::delete_batch(handles)?;
    let q = queue(conn, name)?;
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        let (seq, token) = match parse_handle(h) {
            Ok(p) => p,
            Err(e) => {
                out.push(Err(e));
                continue;
            }
        };
        // A stale handle (the message was received again since) deletes nothing, as in SQS.
        conn.prepare_cached(
            "DELETE FROM messages WHERE seq = ?1 AND queue_id = ?2 AND receipt_token = ?3",
        )
        .and_then(|mut s| s.execute(params![seq, q.id, token]))
        .map_err(sql_error)?;
        out.push(Ok(()));
    }
    Ok(out)
}

pub(crate) fn change_visibility(
    conn: &Connection,
    name: &str,
    handle: &str,
    timeout: Duration,
    now: i64,
) -> Result<()> {
    validate::visibility(timeout)?;
    let q = queue(conn, name)?;
    let (seq, token) = parse_handle(handle)?;
    let changed = conn
        .prepare_cached(
            "UPDATE messages SET visible_at = ?4
             WHERE seq = ?1 AND queue_id = ?2 AND receipt_token = ?3 AND visible_at > ?5",
        )
        .and_then(|mut s| s.execute(params![seq, q.id, token, now + millis_of(timeout), now]))
        .map_err(sql_error)?;
    if changed == 0 {
        let current = conn
            .prepare_cached(
                "SELECT 1 FROM messages WHERE seq = ?1 AND queue_id = ?2 AND receipt_token = ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![seq, q.id, token], |_| Ok(()))
                    .optional()
            })
            .map_err(sql_error)?;
        return Err(match current {
            Some(()) => Error::MessageNotInflight(handle.to_owned()),
            None => Error::ReceiptHandleIsInvalid(handle.to_owned()),
        });
    }
    Ok(())
}

/// Moves visible messages out of a dead-letter queue; answers how many moved and to which queues.
pub(crate) fn redrive(
    conn: &Connection,
    dlq: &str,
    destination: Option<&str>,
    now: i64,
) -> Result<(u64, Vec<String>)> {
    let from = queue(conn, dlq)?;
    let to_fixed = destination.map(|d| queue(conn, d)).transpose()?;
    if let Some(to) = &to_fixed
        && to.info.fifo != from.info.fifo
    {
        return Err(Error::Redrive(format!(
            "queue \"{}\" is not of the same type as \"{dlq}\"",
            to.info.name
        )));
    }
    let rows: Vec<(i64, Option<String>)> = {
        let mut stmt = conn
            .prepare_cached("SELECT seq, source_queue FROM messages WHERE queue_id = ?1 AND visible_at <= ?2 ORDER BY seq")
            .map_err(sql_error)?;
        let rows = stmt
            .query_map(params![from.id, now], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql_error)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_error)?
    };
    let mut moved = 0;
    let mut targets: Vec<String> = Vec::new();
    let mut sources: HashMap<String, Option<Rc<Row>>> = Default::default();
    for (seq, source) in rows {
        let to = match (&to_fixed, source) {
            (Some(to), _) => to,
            (None, Some(s)) => {
                if !sources.contains_key(&s) {
                    sources.insert(s.clone(), lookup(conn, &s)?);
                }
                match &sources[&s] {
                    Some(row) => row,
                    None => continue,
                }
            }
            (None, None) => continue,
        };
        move_to(conn, seq, to, None, now)?;
        moved += 1;
        if !targets.contains(&to.info.name) {
            targets.push(to.info.name.clone());
        }
    }
    Ok((moved, targets))
}

pub(crate) fn stats(conn: &Connection, name: &str, now: i64) -> Result<QueueStats> {
    let q = queue(conn, name)?;
    conn.prepare_cached(
        "SELECT
            count(*) FILTER (WHERE visible_at <= ?2),
            count(*) FILTER (WHERE visible_at > ?2 AND receive_count > 0),
            count(*) FILTER (WHERE visible_at > ?2 AND receive_count = 0)
         FROM messages WHERE queue_id = ?1 AND expires_at > ?2",
    )
    .and_then(|mut s| {
        s.query_row(params![q.id, now], |r| {
            Ok(QueueStats {
                visible: r.get::<_, i64>(0)? as u64,
                in_flight: r.get::<_, i64>(1)? as u64,
                delayed: r.get::<_, i64>(2)? as u64,
            })
        })
    })
    .map_err(sql_error)
}
