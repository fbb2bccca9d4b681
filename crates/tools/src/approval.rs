//! Human approval: a tool, or a rule on its arguments, can hold a call until a person approves
//! it. The registry answers such a call with [`crate::Outcome::NeedsApproval`]; in a state
//! machine the call waits on its task token (see [`crate::engine`]), and the request (tool,
//! arguments, token) is recorded so it can be listed and answered.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::memory::APPROVALS;
use crate::registry::Registry;

/// When a call needs approval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "when", rename_all = "snake_case", deny_unknown_fields)]
pub enum Approval {
    #[default]
    Never,
    Always,
    /// When an email address at `pointer` in the input (a string or an array of strings) is
    /// outside `domains`.
    RecipientsOutside {
        pointer: String,
        domains: Vec<String>,
    },
}

impl Approval {
    /// Why this input needs approval, or `None` if it does not.
    pub fn reason(&self, input: &Value) -> Option<String> {
        match self {
            Approval::Never => None,
            Approval::Always => Some("the tool always requires approval".into()),
            Approval::RecipientsOutside { pointer, domains } => {
                let addrs: Vec<&str> = match input.pointer(pointer) {
                    Some(Value::String(s)) => vec![s.as_str()],
                    Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                };
                let outside: Vec<&str> = addrs
                    .into_iter()
                    .filter(|a| {
                        let domain = a
                            .rsplit_once('@')
                            .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
                            .unwrap_or_default();
                        !domains.iter().any(|d| d.eq_ignore_ascii_case(&domain))
                    })
                    .collect();
                (!outside.is_empty()).then(|| {
                    format!(
                        "{} outside the allowed domains ({})",
                        outside.join(", "),
                        domains.join(", ")
                    )
                })
            }
        }
    }
}

/// A call held for approval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub tool: String,
    pub tenant: String,
    pub input: Value,
    pub reason: String,
    pub idempotency_key: Option<String>,
}

/// An approval request waiting on a task token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingApproval {
    pub token: String,
    pub request: ApprovalRequest,
    /// How the result is returned once approved: `lambda:invoke`'s envelope or the bare
    /// payload of a function ARN.
    #[serde(default)]
    pub envelope: bool,
    pub requested_at_ms: u64,
    /// The ARN of the execution whose task waits (empty when recorded before executions were
    /// kept).
    #[serde(default)]
    pub execution: String,
}

impl PendingApproval {
    /// The account of the waiting execution (`arn:aws:states:REGION:ACCOUNT:execution:...`).
    pub fn account(&self) -> Option<&str> {
        crate::engine::arn_account(&self.execution)
    }
}

impl Registry {
    /// Records an approval request waiting on `token`.
    pub async fn record_approval(&self, pending: &PendingApproval) -> Result<()> {
        self.memory()
            .put(
                APPROVALS,
                &pending.token,
                serde_json::to_value(pending).expect("approval serializes"),
            )
            .await
    }

    /// The approval requests waiting, oldest first; only the tenant's when one is given.
    pub async fn pending_approvals(&self, tenant: Option<&str>) -> Result<Vec<PendingApproval>> {
        let mut out: Vec<PendingApproval> = self
            .memory()
            .list(APPROVALS)
            .await?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_value(v).ok())
            .filter(|p: &PendingApproval| tenant.is_none_or(|t| p.request.tenant == t))
            .collect();
        out.sort_by_key(|p| p.requested_at_ms);
        Ok(out)
    }

    /// The approval request waiting on `token`, if any.
    pub async fn pending_approval(&self, token: &str) -> Result<Option<PendingApproval>> {
        Ok(self
            .memory()
            .get(APPROVALS, token)
            .await?
            .and_then(|v| serde_json::from_value(v).ok()))
    }

    pub(crate) async fn forget_approval(&self, token: &str) -> Result<()> {
        self.memory().delete(APPROVALS, token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recipients_outside_the_allowed_domains_need_approval() {
        let rule = Approval::RecipientsOutside {
            pointer: "/to".into(),
            domains: vec!["example.com".into()],
        };
        assert_eq!(
            rule.reason(&json!({"to": ["a@example.com", "b@EXAMPLE.com"]})),
            None
        );
        let why = rule
            .reason(&json!({"to": ["a@example.com", "x@evil.test"]}))
            .unwrap();
        assert!(
            why.contains("x@evil.test") && !why.contains("a@example.com"),
            "{why}"
        );
        assert!(rule.reason(&json!({"to": "x@other.org"})).is_some());
        assert_eq!(Approval::Never.reason(&json!({})), None);
    }
}
