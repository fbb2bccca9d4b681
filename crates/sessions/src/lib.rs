//! Agents, users and sessions: the seed's Users and AgentSessions tables, and how a user's
//! message becomes a run of an agent.
//!
//! - An **agent** is a named, versioned state machine plus its configuration (model routes,
//!   tools allowed, budgets, prompts, what to do with a message that arrives while a turn
//!   runs). Saving an agent whose configuration changed makes a new version; sessions record
//!   the version they talk to.
//! - A **user** has a profile (industry, preferences: any JSON) that enriches every message.
//! - A **session** is one user's conversation with one agent. Each message is a **turn**: the
//!   message, enriched with the user's profile, the session's earlier turns and knowledge-base
//!   hits, is the input of an execution of the agent's state machine on the durable engine.
//!   The turn records that execution; its status, output, the tools it used and its artifacts
//!   are read from the execution once it ends (so a process that dies mid-turn loses nothing:
//!   the execution carries on, and the turn is brought up to date on its next read).
//!
//! A running session's working context (the turn, the request, its status, how far its
//! execution has got) lives in the cache role with a TTL ([`Sessions::with_cache`],
//! [`Sessions::context`]); the durable record is the store's.
//!
//! Everything belongs to a tenant and a user: a session of another user or tenant answers
//! [`Error::NotFound`] exactly as one that does not exist.
//!
//! Layout:
//! - `model`: the stored shapes (agents, profiles, sessions, turns) and id rules
//! - `store`: tables and keys
//! - `turns`: sending a message, the turn policy, bringing turns up to date
//! - `context`: the working context of running sessions in the cache
//! - `knowledge`: the [`Knowledge`] contract's in-memory implementation

mod context;
mod knowledge;
mod model;
mod store;
mod turns;

use std::sync::Arc;

use agentry_storage::ItemStore;

pub use knowledge::MemoryKnowledge;
pub use model::{Agent, AgentConfig, Session, Turn, TurnPolicy, TurnStatus, check_id};
pub use turns::{Knowledge, KnowledgeFilter, KnowledgeHit, tool_of_function, tools_used};

/// What can go wrong, each naming what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(String),
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    #[error("session {0} is busy: a turn is running and the agent's policy rejects another")]
    Busy(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] agentry_storage::Error),
    #[error(transparent)]
    Engine(#[from] agentry_engine::Error),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

impl Error {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Agents, users and sessions on a store. Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    pub(crate) store: Arc<dyn ItemStore>,
    pub(crate) knowledge: Option<Arc<dyn Knowledge>>,
    pub(crate) cache: Option<Arc<dyn agentry_cache::Cache>>,
}

impl Sessions {
    /// Declares the tables (idempotent: every node may).
    pub async fn open(store: Arc<dyn ItemStore>) -> Result<Self> {
        for spec in store::specs() {
            store.create_table(&spec).await?;
        }
        Ok(Self {
            store,
            knowledge: None,
            cache: None,
        })
    }

    /// Keep running sessions' working context in `cache` (24 hours after its last change).
    pub fn with_cache(mut self, cache: Arc<dyn agentry_cache::Cache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Enrich messages with hits from `knowledge`, and file finished turns into it.
    pub fn with_knowledge(mut self, knowledge: Arc<dyn Knowledge>) -> Self {
        self.knowledge = Some(knowledge);
        self
    }

    /// The knowledge base finished turns are filed into, if any.
    pub fn knowledge(&self) -> Option<&Arc<dyn Knowledge>> {
        self.knowledge.as_ref()
    }
}
