//! Service integrations the engine serves from its own backends: Step Functions' optimized
//! `arn:aws:states:::sqs:sendMessage` (and `.waitForTaskToken`) onto the queue role.
//!
//! The request and answer are AWS's: `QueueUrl` (a queue URL whose last path segment is the
//! queue's name, or the bare name), `MessageBody` (text, or JSON that is sent as its text),
//! `DelaySeconds`, `MessageAttributes` (`{"name": {"DataType", "StringValue" |
//! "BinaryValue"}}`), `MessageGroupId`, `MessageDeduplicationId`; the answer carries
//! `MD5OfMessageBody`, `MessageId` (and `SequenceNumber` on FIFO queues). Failures are named as
//! Step Functions names a service's exceptions (`SQS.QueueDoesNotExistException`, ...), so
//! Retry and Catch match them.
//!
//! Like any task, a send is at least once: a task re-delivered after a crash may send its
//! message again, as SQS's own at-least-once delivery may.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use agentry_asl::TaskRequest;
use agentry_queue::{AttributeValue, Queue, QueueExt, SendMessage};
use base64::Engine as _;
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};

use crate::resources::{ResourceTable, TaskError, TaskResult};

pub const SQS_SEND_MESSAGE: &str = "arn:aws:states:::sqs:sendMessage";

/// Registers `sqs:sendMessage` on `table`, sending to `queue`. Queues named in `reserved` (the
/// engine's own work and task queues) cannot be written by a state machine.
pub fn register_sqs(
    table: &mut ResourceTable,
    queue: Arc<dyn Queue>,
    reserved: impl IntoIterator<Item = String>,
) {
    let reserved: Arc<HashSet<String>> = Arc::new(reserved.into_iter().collect());
    table.register(SQS_SEND_MESSAGE, move |req: TaskRequest| {
        let (queue, reserved) = (queue.clone(), reserved.clone());
        async move { send_message(&*queue, &reserved, &req.input).await }
    });
}

fn invalid(message: impl Into<String>) -> TaskError {
    TaskError::new("SQS.InvalidParameterValueException", message)
}

/// The queue a `QueueUrl` names: the last path segment of a URL, or a bare name.
pub fn queue_name(url: &str) -> Result<&str, TaskError> {
    let name = url.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if name.is_empty() {
        return Err(invalid(format!("QueueUrl {url:?} names no queue")));
    }
    Ok(name)
}

fn attributes(v: Option<&Value>) -> Result<BTreeMap<String, AttributeValue>, TaskError> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return Ok(out) };
    let Some(map) = v.as_object() else {
        return Err(invalid("MessageAttributes must be an object"));
    };
    for (name, a) in map {
        let field = |k: &str| a.get(k).and_then(Value::as_str);
        let kind = field("DataType").ok_or_else(|| {
            invalid(format!(
                "MessageAttributes.{name}.DataType is required (String, Number or Binary)"
            ))
        })?;
        let value = match kind.split('.').next().unwrap_or("") {
            "String" | "Number" => {
                let text = field("StringValue").ok_or_else(|| {
                    invalid(format!(
                        "MessageAttributes.{name}.StringValue is required for DataType {kind}"
                    ))
                })?;
                if kind.starts_with("Number") {
                    AttributeValue::Number(text.to_string())
                } else {
                    AttributeValue::String(text.to_string())
                }
            }
            "Binary" => {
                let text = field("BinaryValue").ok_or_else(|| {
                    invalid(format!(
                        "MessageAttributes.{name}.BinaryValue is required for DataType Binary"
                    ))
                })?;
                AttributeValue::Binary(
                    base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .map_err(|e| {
                            invalid(format!(
                                "MessageAttributes.{name}.BinaryValue is not base64: {e}"
                            ))
                        })?,
                )
            }
            _ => {
                return Err(invalid(format!(
                    "MessageAttributes.{name}.DataType {kind:?} is not String, Number or Binary"
                )));
            }
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

fn error_of(e: agentry_queue::Error) -> TaskError {
    use agentry_queue::Error as E;
    let name = match &e {
        E::QueueDoesNotExist(_) => "SQS.QueueDoesNotExistException",
        E::MessageTooLarge { .. } | E::InvalidParameter { .. } => {
            "SQS.InvalidParameterValueException"
        }
        E::Unavailable(_) => "SQS.ServiceUnavailableException",
        _ => "SQS.AmazonSQSException",
    };
    TaskError::new(name, e.to_string())
}

/// One `sqs:sendMessage` call.
pub async fn send_message(
    queue: &dyn Queue,
    reserved: &HashSet<String>,
    input: &Value,
) -> TaskResult {
    let empty = Map::new();
    let p = input.as_object().unwrap_or(&empty);
    let url = p
        .get("QueueUrl")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("QueueUrl is required (a queue URL or name)"))?;
    let name = queue_name(url)?;
    if reserved.contains(name) {
        // As if it did not exist: the engine's own queues are not for state machines to write.
        return Err(TaskError::new(
            "SQS.QueueDoesNotExistException",
            format!("queue \"{name}\" does not exist"),
        ));
    }
    let body = match p.get("MessageBody") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => return Err(invalid("MessageBody is required")),
        Some(v) => v.to_string(),
    };
    let delay = match p.get("DelaySeconds") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(s) if s <= 900 => Some(Duration::from_secs(s)),
            _ => {
                return Err(invalid(format!(
                    "DelaySeconds {v} must be a whole number from 0 to 900"
                )));
            }
        },
    };
    let text = |k: &str| -> Result<Option<String>, TaskError> {
        match p.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(invalid(format!("{k} must be a string, not {v}"))),
        }
    };
    let message = SendMessage {
        delay,
        attributes: attributes(p.get("MessageAttributes"))?,
        group_id: text("MessageGroupId")?,
        deduplication_id: text("MessageDeduplicationId")?,
        ..SendMessage::new(body.clone())
    };
    let sent = queue.send(name, message).await.map_err(error_of)?;
    let md5 = Md5::digest(body.as_bytes());
    let mut out = json!({
        "MD5OfMessageBody": md5.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "MessageId": sent.message_id,
    });
    if let Some(seq) = sent.sequence_number {
        out["SequenceNumber"] = json!(seq);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_and_names_name_the_queue() {
        assert_eq!(
            queue_name("https://sqs.us-east-1.amazonaws.com/123456789012/jobs").unwrap(),
            "jobs"
        );
        assert_eq!(queue_name("jobs.fifo").unwrap(), "jobs.fifo");
        assert_eq!(queue_name("http://localhost/q/").unwrap(), "q");
        assert!(queue_name("").is_err());
    }

    #[test]
    fn message_attributes_are_checked_and_named() {
        let a = attributes(Some(&json!({
            "kind": {"DataType": "String", "StringValue": "web"},
            "n": {"DataType": "Number", "StringValue": "3"},
            "b": {"DataType": "Binary", "BinaryValue": "aGk="},
        })))
        .unwrap();
        assert_eq!(a["kind"], AttributeValue::String("web".into()));
        assert_eq!(a["n"], AttributeValue::Number("3".into()));
        assert_eq!(a["b"], AttributeValue::Binary(b"hi".to_vec()));
        let e = attributes(Some(&json!({"x": {"DataType": "String"}}))).unwrap_err();
        assert!(
            e.cause.contains("MessageAttributes.x.StringValue"),
            "{}",
            e.cause
        );
        let e = attributes(Some(
            &json!({"x": {"DataType": "Date", "StringValue": "1"}}),
        ))
        .unwrap_err();
        assert!(e.cause.contains("Date"), "{}", e.cause);
    }
}
