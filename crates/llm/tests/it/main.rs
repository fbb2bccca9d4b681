//! Each provider against a local server speaking its protocol, and the facade's routing,
//! context strategies, budgets, cache, recordings and Step Functions resources.

mod anthropic;
#[cfg(feature = "bedrock")]
mod bedrock;
mod facade;
mod openai;
mod recorded;
mod states;
mod support;
