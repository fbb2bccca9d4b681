//! Execution history events in the shape of AWS's GetExecutionHistory: `id`,
//! `previousEventId`, `timestamp` (epoch milliseconds here; the API layer formats it), `type`
//! and one `…EventDetails` object whose name follows from the type.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub id: u64,
    #[serde(rename = "previousEventId")]
    pub previous_event_id: u64,
    /// Milliseconds since the Unix epoch, from the caller's clock.
    pub timestamp: i64,
    #[serde(rename = "type")]
    pub kind: String,
    /// The details object, under the key AWS uses for this type (see [`details_key`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl HistoryEvent {
    /// The event as AWS's API prints it, with `input`/`output` details kept as JSON values.
    pub fn to_aws_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("previousEventId".into(), json!(self.previous_event_id));
        m.insert("timestamp".into(), json!(self.timestamp));
        m.insert("type".into(), json!(self.kind));
        if let (Some(d), Some(k)) = (&self.details, details_key(&self.kind)) {
            m.insert(k.to_string(), d.clone());
        }
        Value::Object(m)
    }
}

/// The details key for an event type, e.g. `PassStateEntered` → `stateEnteredEventDetails`.
pub fn details_key(kind: &str) -> Option<String> {
    if kind.ends_with("StateEntered") {
        return Some("stateEnteredEventDetails".into());
    }
    if kind.ends_with("StateExited") {
        return Some("stateExitedEventDetails".into());
    }
    let mut c = kind.chars();
    let first = c.next()?;
    Some(format!(
        "{}{}EventDetails",
        first.to_ascii_lowercase(),
        c.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_keys_follow_aws_naming() {
        assert_eq!(
            details_key("PassStateEntered").unwrap(),
            "stateEnteredEventDetails"
        );
        assert_eq!(
            details_key("MapStateExited").unwrap(),
            "stateExitedEventDetails"
        );
        assert_eq!(
            details_key("ExecutionStarted").unwrap(),
            "executionStartedEventDetails"
        );
        assert_eq!(
            details_key("MapIterationStarted").unwrap(),
            "mapIterationStartedEventDetails"
        );
        assert_eq!(
            details_key("TaskScheduled").unwrap(),
            "taskScheduledEventDetails"
        );
    }
}
