//! The cache's integration tests: the conformance suite against every backend, plus what
//! only one backend can show (the memory bound, parallel threads).

mod memory;
#[cfg(feature = "redis")]
mod redis;
