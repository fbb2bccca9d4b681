//! The storage crate's one integration-test binary: the conformance suite against every
//! backend, the resolver, bad-input handling and the crash test.

mod crash;
#[cfg(feature = "postgres")]
mod postgres;
mod resolver;
mod sqlite;
