//! The `[llm]` configuration section (serde, TOML-friendly): providers, routes, models (context
//! window, prices), the context strategy, the cache and budgets.
//!
//! ```toml
//! default_route = "complex"
//!
//! [providers.local]
//! kind = "openai"                      # openai | anthropic | bedrock | recorded
//! base_url = "http://localhost:11434/v1"
//!
//! [providers.demo]
//! kind = "recorded"
//! path = "recordings/demo.jsonl"
//!
//! [routes]
//! complex = { provider = "local", model = "llama3.1:70b" }
//! fast = { provider = "local", model = "llama3.1:8b" }
//!
//! [models."llama3.1:70b"]
//! context_window = 131072
//! input_per_1m = 0.6
//! output_per_1m = 0.8
//!
//! [context]
//! strategy = "drop_oldest"             # drop_oldest | summarize | fail
//! keep_first_user = true
//!
//! [cache]
//! ttl_seconds = 3600
//!
//! [[budgets]]
//! scope = "tenant"                     # execution | session | user | tenant
//! max_cost_usd = 5.0
//! hard = true
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Providers by name.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Route names (`complex`, `fast`, any) to a provider and its model.
    pub routes: BTreeMap<String, RouteConfig>,
    /// Per-model settings, by the provider's model id.
    pub models: BTreeMap<String, ModelConfig>,
    /// The route used when a request's `modelId` is empty.
    pub default_route: Option<String>,
    /// The provider of a model id that no route and no `[models]` entry names.
    pub default_provider: Option<String>,
    pub context: ContextConfig,
    pub cache: CacheConfig,
    pub budgets: Vec<BudgetConfig>,
}

/// A model backend.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProviderConfig {
    /// An OpenAI-compatible Chat Completions server.
    Openai {
        base_url: String,
        /// An API key, or
        #[serde(default)]
        api_key: Option<String>,
        /// the environment variable holding it.
        #[serde(default)]
        api_key_env: Option<String>,
        #[serde(default = "default_timeout")]
        timeout_seconds: u64,
    },
    /// Anthropic's Messages API.
    Anthropic {
        #[serde(default = "default_anthropic_url")]
        base_url: String,
        #[serde(default)]
        api_key: Option<String>,
        #[serde(default = "default_anthropic_key_env")]
        api_key_env: String,
        #[serde(default = "default_timeout")]
        timeout_seconds: u64,
    },
    /// Amazon Bedrock (feature `bedrock`); credentials from the usual chain.
    Bedrock {
        #[serde(default)]
        region: Option<String>,
        #[serde(default)]
        endpoint_url: Option<String>,
        #[serde(default)]
        profile: Option<String>,
    },
    /// Recorded exchanges played back from a file.
    Recorded { path: String },
}

fn default_timeout() -> u64 {
    300
}

fn default_anthropic_url() -> String {
    "https://api.anthropic.com".into()
}

fn default_anthropic_key_env() -> String {
    "ANTHROPIC_API_KEY".into()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub provider: String,
    pub model: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// The provider serving this model when a request names it directly.
    pub provider: Option<String>,
    /// Tokens the model can attend to (prompt and reply together).
    pub context_window: u64,
    /// The estimator: characters per token.
    pub chars_per_token: f64,
    /// The estimator: tokens each message costs beyond its text (role, separators).
    pub message_overhead: u64,
    /// Tokens kept free for the reply when the request has no `maxTokens`.
    pub reserve_output: u64,
    /// Prices in US dollars: per million tokens, or per thousand (both add up).
    pub input_per_1m: f64,
    pub output_per_1m: f64,
    pub input_per_1k: f64,
    pub output_per_1k: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            provider: None,
            context_window: 128_000,
            chars_per_token: 4.0,
            message_overhead: 4,
            reserve_output: 1024,
            input_per_1m: 0.0,
            output_per_1m: 0.0,
            input_per_1k: 0.0,
            output_per_1k: 0.0,
        }
    }
}

impl ModelConfig {
    /// The price of `input` and `output` tokens in US dollars.
    pub fn cost(&self, input: u64, output: u64) -> f64 {
        input as f64 * (self.input_per_1m / 1e6 + self.input_per_1k / 1e3)
            + output as f64 * (self.output_per_1m / 1e6 + self.output_per_1k / 1e3)
    }
}

/// What to do when a conversation would overflow its model's context window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowStrategy {
    /// Drop the oldest turns (a tool use stays with its result).
    #[default]
    DropOldest,
    /// Replace the oldest turns with a summary written by the `fast` route.
    Summarize,
    /// Refuse with `Llm.ContextWindowExceeded`.
    Fail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextConfig {
    pub strategy: OverflowStrategy,
    /// Keep the conversation's first user message (usually the task) when dropping turns.
    pub keep_first_user: bool,
    /// The route that writes summaries.
    pub summary_route: String,
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig {
            strategy: OverflowStrategy::DropOldest,
            keep_first_user: true,
            summary_route: "fast".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    pub enabled: bool,
    /// How long an answer is reused.
    pub ttl_seconds: u64,
    /// The cache backend's URL (`memory://`, `redis://...`), when the facade opens its own.
    pub url: String,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            ttl_seconds: 3600,
            url: "memory://".into(),
        }
    }
}

/// Which label a budget (or a ledger total) is kept per.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    Execution,
    Session,
    User,
    Tenant,
}

impl ScopeKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ScopeKind::Execution => "execution",
            ScopeKind::Session => "session",
            ScopeKind::User => "user",
            ScopeKind::Tenant => "tenant",
        }
    }
}

/// A limit on the usage of each value of a scope (each tenant, each session...), or of one
/// value when `id` is given. Soft budgets emit [`crate::LlmEvent::BudgetWarning`] when crossed;
/// hard ones refuse calls once reached, before calling the provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    pub scope: ScopeKind,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
    #[serde(default)]
    pub hard: bool,
}
