//! The models behind agents' reasoning (the seed's Bedrock role). One request/response model in
//! the shape of Bedrock's Converse API ([`types`]), served by providers behind one trait
//! ([`Provider`]): OpenAI-compatible servers (OpenAI, vLLM, Ollama, llama.cpp), Anthropic's
//! Messages API, Bedrock's Converse (feature `bedrock`) and recorded exchanges for tests and the
//! offline demo. The [`Llm`] facade routes a request (a route name such as `complex` or `fast`,
//! or a model id) to a provider, fits the conversation to the model's context window, checks
//! budgets, answers repeated requests from the cache, and records usage in the ledger.
//! [`states::register`] puts it behind Step Functions' Bedrock task resources.
//!
//! ```no_run
//! # async fn demo() -> agentry_llm::Result<()> {
//! use agentry_llm::{CallLabels, ConverseRequest, Llm, LlmConfig};
//!
//! let config: LlmConfig = serde_json::from_value(serde_json::json!({
//!     "providers": {"demo": {"kind": "recorded", "path": "recordings/demo.jsonl"}},
//!     "routes": {"complex": {"provider": "demo", "model": "demo-model"}},
//! })).unwrap();
//! let llm = Llm::from_config(config).await?;
//! let reply = llm
//!     .converse(ConverseRequest::user("complex", "Hello"), &CallLabels::default().tenant("acme"))
//!     .await?;
//! println!("{} ({:?})", reply.text(), reply.stop_reason);
//! # Ok(()) }
//! ```
//!
//! Layout:
//! - `types`: Converse's request, response and stream events
//! - `provider`: the [`Provider`] trait; assembling responses from streams and back
//! - `openai`, `anthropic`, `bedrock` (feature `bedrock`), `recorded`: the providers
//! - `http`, `sse`: what the HTTP providers share (error mapping, server-sent events)
//! - `config`: the `[llm]` config section (providers, routes, models, context, cache, budgets)
//! - `context`: token estimates and cutting conversations that overflow
//! - `ledger`: usage per call, totals per execution, session, user and tenant; budget events
//! - `cache`: the response cache on [`agentry_cache::Cache`]
//! - `facade`: [`Llm`]
//! - `states`: the Task resources `arn:aws:states:::aws-sdk:bedrockruntime:converse` and
//!   `arn:aws:states:::bedrock:invokeModel` for the engine's resource table
//!
//! # Errors
//!
//! Every failure is an [`Error`] whose [`Error::name`] a state machine's `Retry` / `Catch`
//! matches:
//!
//! | name | when | retry? |
//! |---|---|---|
//! | `Llm.Throttled` | HTTP 429, Bedrock `ThrottlingException`, Anthropic `overloaded_error` / `rate_limit_error` | yes, with backoff |
//! | `Llm.ServiceUnavailable` | 5xx, connection failures, timeouts, a stream that broke off | yes, with backoff |
//! | `Llm.ContextWindowExceeded` | the conversation cannot be made to fit, or the provider says the prompt is too long | no |
//! | `Llm.AuthFailed` | HTTP 401/403, Bedrock `AccessDeniedException` / `UnrecognizedClientException` | no |
//! | `Llm.InvalidRequest` | malformed request (HTTP 400/422, Bedrock `ValidationException`) | no |
//! | `Llm.ModelNotFound` | no route or provider knows the model, HTTP 404, Bedrock `ResourceNotFoundException` | no |
//! | `Llm.BudgetExceeded` | a hard budget refused the call before it was made | no |
//! | `Llm.NoRecording` | the recorded provider has no matching exchange | no |
//! | `Llm.ProtocolError` | the provider answered something unintelligible | no |
//! | `Llm.ConfigInvalid` | the configuration is wrong | no |
//!
//! # Ledger
//!
//! [`MemoryLedger`] keeps totals in this process only; [`Ledger`] is the contract a durable
//! ledger over the store implements ([`Llm::with_ledger`]).

pub mod anthropic;
#[cfg(feature = "bedrock")]
pub mod bedrock;
pub mod cache;
pub mod config;
pub mod context;
pub mod error;
mod facade;
mod hash;
pub mod http;
pub mod ledger;
pub mod openai;
pub mod provider;
pub mod recorded;
pub mod sse;
pub mod states;
pub mod types;

pub use config::{
    BudgetConfig, CacheConfig, ContextConfig, LlmConfig, ModelConfig, OverflowStrategy,
    ProviderConfig, RouteConfig, ScopeKind,
};
pub use error::{Error, Result};
pub use facade::{DeltaSink, Llm, Resolved};
pub use ledger::{BudgetNotice, CallLabels, Ledger, LedgerEntry, LlmEvent, MemoryLedger, Totals};
pub use provider::{Provider, collect_stream};
pub use recorded::{RecordedProvider, RecordingProvider};
pub use states::register;
pub use types::*;
