//! Tests of the tool registry, its policies, its invokers and its built-in tools, all against
//! servers and processes the tests start themselves.

mod builtins;
mod engine;
#[cfg(feature = "lambda")]
mod lambda;
mod policy;
mod registry;
mod support;
