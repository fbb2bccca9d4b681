//! The usage ledger: every call's tokens and cost, added up per execution, session, user and
//! tenant (the labels a call carries), and the events budgets raise.
//!
//! [`Ledger`] is the contract; [`MemoryLedger`] keeps totals in this process only (they are
//! lost on restart and not shared between nodes). A durable ledger over the store implements
//! the same trait.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::config::ScopeKind;
use crate::types::TokenUsage;

/// Who a call is made for; every label given gets the call's usage added to its totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CallLabels {
    pub execution: Option<String>,
    pub session: Option<String>,
    pub user: Option<String>,
    pub tenant: Option<String>,
}

impl CallLabels {
    /// The label of `scope`, if the call has one.
    pub fn get(&self, scope: ScopeKind) -> Option<&str> {
        match scope {
            ScopeKind::Execution => self.execution.as_deref(),
            ScopeKind::Session => self.session.as_deref(),
            ScopeKind::User => self.user.as_deref(),
            ScopeKind::Tenant => self.tenant.as_deref(),
        }
    }

    pub fn execution(mut self, v: impl Into<String>) -> Self {
        self.execution = Some(v.into());
        self
    }

    pub fn session(mut self, v: impl Into<String>) -> Self {
        self.session = Some(v.into());
        self
    }

    pub fn user(mut self, v: impl Into<String>) -> Self {
        self.user = Some(v.into());
        self
    }

    pub fn tenant(mut self, v: impl Into<String>) -> Self {
        self.tenant = Some(v.into());
        self
    }
}

/// One call as the ledger records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// The route the request named, if it named one.
    pub route: Option<String>,
    pub provider: String,
    pub model: String,
    pub labels: CallLabels,
    /// Tokens used; for a cache hit, the tokens the hit saved.
    pub usage: TokenUsage,
    /// Price of `usage` in US dollars (saved, for a cache hit).
    pub cost_usd: f64,
    /// Whether the answer came from the response cache (no provider call was made).
    pub cache_hit: bool,
}

/// Usage added up over calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Calls made to a provider.
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    /// Calls answered from the cache, and what they would have used.
    pub cache_hits: u64,
    pub saved_input_tokens: u64,
    pub saved_output_tokens: u64,
    pub saved_cost_usd: f64,
}

impl Totals {
    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    fn add(&mut self, e: &LedgerEntry) {
        if e.cache_hit {
            self.cache_hits += 1;
            self.saved_input_tokens += e.usage.input_tokens;
            self.saved_output_tokens += e.usage.output_tokens;
            self.saved_cost_usd += e.cost_usd;
        } else {
            self.calls += 1;
            self.input_tokens += e.usage.input_tokens;
            self.output_tokens += e.usage.output_tokens;
            self.cost_usd += e.cost_usd;
        }
    }
}

/// Where usage is kept.
///
/// Contract: `record` adds the entry to the totals of every scope its labels name and to the
/// overall totals, atomically per scope; `totals` reads a scope's totals (zero for a scope
/// never seen). Budgets are checked against `totals`, so a ledger shared by several nodes
/// makes budgets hold across them.
#[async_trait]
pub trait Ledger: Send + Sync {
    async fn record(&self, entry: &LedgerEntry) -> Result<()>;

    async fn totals(&self, scope: ScopeKind, id: &str) -> Result<Totals>;

    /// Everything recorded by this ledger.
    async fn overall(&self) -> Result<Totals>;
}

/// Totals in memory.
#[derive(Default)]
pub struct MemoryLedger {
    scopes: Mutex<HashMap<(ScopeKind, String), Totals>>,
    overall: Mutex<Totals>,
}

impl MemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Ledger for MemoryLedger {
    async fn record(&self, entry: &LedgerEntry) -> Result<()> {
        let mut scopes = self.scopes.lock().unwrap();
        for kind in [
            ScopeKind::Execution,
            ScopeKind::Session,
            ScopeKind::User,
            ScopeKind::Tenant,
        ] {
            if let Some(id) = entry.labels.get(kind) {
                scopes.entry((kind, id.to_string())).or_default().add(entry);
            }
        }
        self.overall.lock().unwrap().add(entry);
        Ok(())
    }

    async fn totals(&self, scope: ScopeKind, id: &str) -> Result<Totals> {
        Ok(self
            .scopes
            .lock()
            .unwrap()
            .get(&(scope, id.to_string()))
            .copied()
            .unwrap_or_default())
    }

    async fn overall(&self) -> Result<Totals> {
        Ok(*self.overall.lock().unwrap())
    }
}

/// What the facade announces on [`crate::Llm::subscribe`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum LlmEvent {
    /// A call finished (or was answered from the cache).
    Call(LedgerEntry),
    /// A soft budget was crossed by the call just recorded.
    BudgetWarning(BudgetNotice),
    /// A hard budget refused a call.
    BudgetRefused(BudgetNotice),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetNotice {
    pub scope: ScopeKind,
    pub id: String,
    /// `tokens` or `cost_usd`.
    pub measure: String,
    pub spent: f64,
    pub limit: f64,
}
