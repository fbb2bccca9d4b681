//! The queue crate's one integration-test binary: the conformance suite against every
//! backend, SQLite's durability checks and the kill -9 crash test.

mod crash;
mod redis;
mod sqlite;
