//! The stored shapes and the rules for ids.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result};

/// Tenant, user and agent ids: 1 to 64 of `[A-Za-z0-9_.@-]`, so that they can be parts of
/// keys and execution names.
pub fn check_id(field: &str, id: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "_.@-".contains(c);
    if id.is_empty() || id.len() > 64 || !id.chars().all(ok) {
        return Err(Error::invalid(
            field,
            format!("{id:?} must be 1 to 64 letters, digits or _ . @ -"),
        ));
    }
    Ok(())
}

/// What happens to a message that arrives while a turn of the session runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnPolicy {
    /// Refused with [`Error::Busy`].
    #[default]
    Reject,
    /// Stored, and started when the running turn (and those queued before it) ended.
    Queue,
    /// The running turn's execution is stopped, and the new one starts.
    Interrupt,
}

/// An agent's configuration: which state machine runs a turn, and what it may use.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// The state machine (name or ARN, in the tenant's account) a turn runs.
    pub state_machine: String,
    pub description: Option<String>,
    /// Model routes (`complex`, `fast`, ...) to model ids.
    pub routes: serde_json::Map<String, Value>,
    /// Names of the tools the agent may call.
    pub tools: Vec<String>,
    /// Budgets (tokens, cost) the agent's calls are held to.
    pub budgets: serde_json::Map<String, Value>,
    /// Prompts by name (`system`, `plan`, ...).
    pub prompts: serde_json::Map<String, Value>,
    pub turn_policy: TurnPolicy,
    /// How many earlier turns go into a message's input (default 10).
    pub history_turns: Option<usize>,
}

/// An agent at one version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub tenant: String,
    pub name: String,
    pub version: u64,
    pub config: AgentConfig,
    pub created_ms: i64,
}

/// A conversation of a user with an agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub tenant: String,
    pub user: String,
    pub agent: String,
    pub agent_version: u64,
    pub title: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// How many turns the session has had.
    pub turns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TurnStatus {
    /// Waiting for an earlier turn (policy `queue`).
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl TurnStatus {
    pub fn is_open(self) -> bool {
        matches!(self, TurnStatus::Queued | TurnStatus::Running)
    }

    pub(crate) fn of_execution(status: &str) -> Option<Self> {
        Some(match status {
            "RUNNING" => TurnStatus::Running,
            "SUCCEEDED" => TurnStatus::Succeeded,
            "FAILED" => TurnStatus::Failed,
            "TIMED_OUT" => TurnStatus::TimedOut,
            "ABORTED" => TurnStatus::Aborted,
            _ => return None,
        })
    }
}

/// One message of a session and what the agent made of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub session: String,
    /// 1, 2, 3... in the order the messages arrived.
    pub n: u64,
    pub message: String,
    pub status: TurnStatus,
    /// The execution that runs (or ran) the turn, once started; it is named after the session
    /// and turn (`SESSION-N`), so starting it again is idempotent.
    pub execution_arn: Option<String>,
    pub received_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// Task resources and tool names the execution used, in first-use order.
    pub tools_used: Vec<String>,
    /// What the output lists under `artifacts` (documents written, ...).
    pub artifacts: Vec<Value>,
}
