//! The working context of a session while it runs, in the cache role (the seed keeps it in
//! Redis): the turn under way, its request, its status and how far its execution has got. It
//! expires [`CONTEXT_TTL`] after its last change; the store keeps the durable record, so
//! losing the cache loses nothing but this live view.

use std::time::Duration;

use agentry_cache::SetOptions;
use serde_json::{Value, json};

use crate::model::Turn;
use crate::store::now_ms;
use crate::{Result, Sessions};

pub const CONTEXT_TTL: Duration = Duration::from_secs(24 * 3600);

fn key(session: &str) -> String {
    format!("agentry:session:{session}:context")
}

impl Sessions {
    /// Records a turn's progress as the session's working context (best effort: a cache that
    /// fails is logged, never fails the turn).
    pub(crate) async fn note(&self, turn: &Turn, progress: Option<Value>) {
        let Some(cache) = &self.cache else { return };
        let mut context = json!({
            "turn": turn.n,
            "message": turn.message,
            "status": turn.status,
            "executionArn": turn.execution_arn,
            "updatedMs": now_ms(),
        });
        if let Some(p) = progress {
            context["progress"] = p;
        }
        if let Err(e) = cache
            .set(
                &key(&turn.session),
                context.to_string().as_bytes(),
                SetOptions::ttl(CONTEXT_TTL),
            )
            .await
        {
            tracing::warn!(error = %e, session = %turn.session, "working context not cached");
        }
    }

    /// The session's working context, while it is cached: `{turn, message, status,
    /// executionArn, updatedMs, progress: {events, lastEvent}}`. Another user's or tenant's
    /// session is not found, as one that does not exist.
    pub async fn context(&self, tenant: &str, user: &str, id: &str) -> Result<Option<Value>> {
        self.session_item(tenant, user, id).await?;
        let Some(cache) = &self.cache else {
            return Ok(None);
        };
        match cache.get(&key(id)).await {
            Ok(Some(bytes)) => Ok(serde_json::from_slice(&bytes).ok()),
            Ok(None) => Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, session = id, "working context not read");
                Ok(None)
            }
        }
    }
}
