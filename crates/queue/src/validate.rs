//! SQS's limits and naming rules, checked before any backend is touched so every backend
//! refuses the same input with the same error.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::{
    Error, MAX_BATCH, MAX_DELAY, MAX_MESSAGE_SIZE, MAX_VISIBILITY_TIMEOUT, MAX_WAIT_TIME,
    QueueAttributes, ReceiveOptions, Result, SendMessage, is_fifo,
};

/// SQS's rule: 1 to 80 characters of letters, digits, hyphens and underscores; a FIFO
/// queue's name ends in `.fifo` (counted in the 80).
pub fn queue_name(name: &str) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidQueueName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > 80 {
        return Err(invalid("it is longer than 80 characters"));
    }
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    if stem.is_empty() {
        return Err(invalid("it has nothing before \".fifo\""));
    }
    if let Some(c) = stem
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(invalid(&format!(
            "character {c:?} is not allowed (letters, digits, '-', '_' and a \".fifo\" suffix are)"
        )));
    }
    Ok(())
}

fn range(field: &str, value: Duration, min: Duration, max: Duration) -> Result<()> {
    if value < min || value > max {
        return Err(Error::invalid(
            field,
            format!(
                "{} ms is outside {} ms to {} ms",
                value.as_millis(),
                min.as_millis(),
                max.as_millis()
            ),
        ));
    }
    Ok(())
}

/// Checks a queue's attributes against its name (FIFO or standard).
pub fn attributes(name: &str, a: &QueueAttributes) -> Result<()> {
    range(
        "VisibilityTimeout",
        a.visibility_timeout,
        Duration::ZERO,
        MAX_VISIBILITY_TIMEOUT,
    )?;
    range("DelaySeconds", a.delay, Duration::ZERO, MAX_DELAY)?;
    range(
        "MessageRetentionPeriod",
        a.retention,
        Duration::from_secs(60),
        Duration::from_secs(14 * 24 * 3600),
    )?;
    range(
        "ReceiveMessageWaitTimeSeconds",
        a.receive_wait_time,
        Duration::ZERO,
        MAX_WAIT_TIME,
    )?;
    if !(1024..=MAX_MESSAGE_SIZE).contains(&a.max_message_size) {
        return Err(Error::invalid(
            "MaximumMessageSize",
            format!(
                "{} bytes is outside 1024 to {MAX_MESSAGE_SIZE}",
                a.max_message_size
            ),
        ));
    }
    let fifo = is_fifo(name);
    if a.content_based_deduplication && !fifo {
        return Err(Error::invalid(
            "ContentBasedDeduplication",
            "only FIFO queues deduplicate",
        ));
    }
    if a.priority && fifo {
        return Err(Error::invalid(
            "Priority",
            "FIFO queues keep group order and cannot be priority queues",
        ));
    }
    if let Some(p) = &a.redrive_policy {
        if !(1..=1000).contains(&p.max_receive_count) {
            return Err(Error::invalid(
                "RedrivePolicy.maxReceiveCount",
                "must be 1 to 1000",
            ));
        }
        let dlq = p.dead_letter_queue();
        queue_name(dlq)
            .map_err(|e| Error::invalid("RedrivePolicy.deadLetterTargetArn", e.to_string()))?;
        if is_fifo(dlq) != fifo {
            return Err(Error::invalid(
                "RedrivePolicy.deadLetterTargetArn",
                format!(
                    "dead-letter queue \"{dlq}\" must be of the same type (FIFO or standard) as \"{name}\""
                ),
            ));
        }
        if dlq == name {
            return Err(Error::invalid(
                "RedrivePolicy.deadLetterTargetArn",
                "a queue cannot be its own dead-letter queue",
            ));
        }
    }
    Ok(())
}

/// Checks a batch's shape: 1 to 10 entries, at most 256 KiB together.
pub fn send_batch(messages: &[SendMessage]) -> Result<()> {
    if messages.is_empty() {
        return Err(Error::EmptyBatch);
    }
    if messages.len() > MAX_BATCH {
        return Err(Error::BatchTooLarge {
            size: messages.len(),
            limit: MAX_BATCH,
        });
    }
    let total: usize = messages.iter().map(SendMessage::size).sum();
    if messages.len() > 1 && total > MAX_MESSAGE_SIZE {
        return Err(Error::BatchRequestTooLong {
            size: total,
            limit: MAX_MESSAGE_SIZE,
        });
    }
    Ok(())
}

pub fn delete_batch(handles: &[String]) -> Result<()> {
    if handles.is_empty() {
        return Err(Error::EmptyBatch);
    }
    if handles.len() > MAX_BATCH {
        return Err(Error::BatchTooLarge {
            size: handles.len(),
            limit: MAX_BATCH,
        });
    }
    Ok(())
}

/// What a message becomes once checked: its delay and, on FIFO queues, its deduplication id.
pub struct Checked {
    pub delay: Duration,
    pub deduplication_id: Option<String>,
}

/// Checks one message against its queue; `Err` answers for this entry only.
pub fn message(queue: &str, attrs: &QueueAttributes, m: &SendMessage) -> Result<Checked> {
    let size = m.size();
    if size > attrs.max_message_size {
        return Err(Error::MessageTooLarge {
            size,
            limit: attrs.max_message_size,
        });
    }
    if m.body.is_empty() {
        return Err(Error::invalid("MessageBody", "must not be empty"));
    }
    if let Some(c) = m.body.chars().find(|c| !allowed_char(*c)) {
        return Err(Error::invalid(
            "MessageBody",
            format!("character U+{:04X} is not allowed", c as u32),
        ));
    }
    if m.attributes.len() > 10 {
        return Err(Error::invalid(
            "MessageAttributes",
            format!("{} attributes, at most 10", m.attributes.len()),
        ));
    }
    for name in m.attributes.keys() {
        if name.is_empty()
            || name.len() > 256
            || name.starts_with("AWS.")
            || name.starts_with("Amazon.")
        {
            return Err(Error::invalid(
                "MessageAttributes",
                format!("attribute name \"{name}\" is not allowed"),
            ));
        }
    }
    let fifo = is_fifo(queue);
    let delay = match m.delay {
        Some(_) if fifo => {
            return Err(Error::invalid(
                "DelaySeconds",
                "FIFO queues take the queue's delay, not a message's",
            ));
        }
        Some(d) => {
            range("DelaySeconds", d, Duration::ZERO, MAX_DELAY)?;
            d
        }
        None => attrs.delay,
    };
    if !fifo {
        if m.group_id.is_some() {
            return Err(Error::invalid(
                "MessageGroupId",
                "only FIFO queues take a message group",
            ));
        }
        if m.deduplication_id.is_some() {
            return Err(Error::invalid(
                "MessageDeduplicationId",
                "only FIFO queues deduplicate",
            ));
        }
        return Ok(Checked {
            delay,
            deduplication_id: None,
        });
    }
    match &m.group_id {
        None => {
            return Err(Error::invalid(
                "MessageGroupId",
                "FIFO queues require a message group",
            ));
        }
        Some(g) => token("MessageGroupId", g)?,
    }
    let deduplication_id = match &m.deduplication_id {
        Some(d) => {
            token("MessageDeduplicationId", d)?;
            d.clone()
        }
        None if attrs.content_based_deduplication => hex(&Sha256::digest(m.body.as_bytes())),
        None => {
            return Err(Error::invalid(
                "MessageDeduplicationId",
                "required unless the queue has content-based deduplication",
            ));
        }
    };
    Ok(Checked {
        delay,
        deduplication_id: Some(deduplication_id),
    })
}

/// SQS's rule for group and deduplication ids: 1 to 128 printable ASCII characters.
fn token(field: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > 128 || !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(Error::invalid(
            field,
            "must be 1 to 128 printable ASCII characters",
        ));
    }
    Ok(())
}

/// The characters SQS accepts in a body (XML's).
fn allowed_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

pub fn receive(o: &ReceiveOptions, attrs: &QueueAttributes) -> Result<(usize, Duration, Duration)> {
    let max = o.max_messages.unwrap_or(1);
    if !(1..=MAX_BATCH).contains(&max) {
        return Err(Error::invalid(
            "MaxNumberOfMessages",
            format!("{max} is outside 1 to {MAX_BATCH}"),
        ));
    }
    let visibility = o.visibility_timeout.unwrap_or(attrs.visibility_timeout);
    range(
        "VisibilityTimeout",
        visibility,
        Duration::ZERO,
        MAX_VISIBILITY_TIMEOUT,
    )?;
    let wait = o.wait_time.unwrap_or(attrs.receive_wait_time);
    range("WaitTimeSeconds", wait, Duration::ZERO, MAX_WAIT_TIME)?;
    Ok((max, visibility, wait))
}

pub fn visibility(timeout: Duration) -> Result<()> {
    range(
        "VisibilityTimeout",
        timeout,
        Duration::ZERO,
        MAX_VISIBILITY_TIMEOUT,
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_follow_sqs_rules() {
        assert!(queue_name("orders").is_ok());
        assert!(queue_name("orders-1_a.fifo").is_ok());
        assert!(queue_name(&"a".repeat(80)).is_ok());
        assert!(queue_name(&"a".repeat(81)).is_err());
        assert!(queue_name("").is_err());
        assert!(queue_name(".fifo").is_err());
        assert!(queue_name("has space").is_err());
        assert!(queue_name("dot.inside").is_err());
    }

    #[test]
    fn fifo_messages_need_a_group_and_a_deduplication_id() {
        let attrs = QueueAttributes::default();
        let e = message("q.fifo", &attrs, &SendMessage::new("x"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("MessageGroupId"), "{e}");
        let e = message("q.fifo", &attrs, &SendMessage::new("x").group("g"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("MessageDeduplicationId"), "{e}");
        let cbd = QueueAttributes {
            content_based_deduplication: true,
            ..attrs
        };
        let a = message("q.fifo", &cbd, &SendMessage::new("x").group("g")).unwrap();
        let b = message("q.fifo", &cbd, &SendMessage::new("x").group("h")).unwrap();
        assert_eq!(a.deduplication_id, b.deduplication_id);
        assert_eq!(a.deduplication_id.unwrap().len(), 64);
    }
}
