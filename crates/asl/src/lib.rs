//! Amazon States Language, as AWS Step Functions runs it: parse and validate a definition,
//! and advance an execution one event at a time, returning the effects the runtime must carry
//! out. Pure: no I/O, no clock and no randomness of its own (see [`env::Host`]).
//!
//! Layout:
//! - `env`: the scope expressions read and the caller-supplied clock, ids and randomness
//! - `error`: validation errors and runtime failures, predefined error names
//! - `validate`: AWS's CreateStateMachine rules and messages
//! - `jsonpath`: paths, payload templates, `ResultPath`
//! - `intrinsics`: the `States.*` functions
//! - `jsonata`: `{% %}` expressions and AWS's JSONata functions

pub mod env;
pub mod error;
pub mod intrinsics;
pub mod jsonata;
pub mod jsonpath;
pub mod validate;

pub use env::{FixedHost, Host, Scope};
pub use error::{Failure, ValidationError};
