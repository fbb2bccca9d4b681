//! What expressions see while a state runs, and what the caller supplies: time, ids and
//! random numbers. `asl` has no clock and no randomness of its own.

use serde_json::{Map, Value};

/// The values a path, intrinsic function or JSONata expression can read.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// `$` in JSONPath (the state's effective input at that point); `$states.input` in JSONata.
    pub input: &'a Value,
    /// `$$` in JSONPath; `$states.context` in JSONata.
    pub context: &'a Value,
    /// Variables visible to the state (`$name`), outer scopes already merged in.
    pub vars: &'a Map<String, Value>,
}

/// Time, ids and randomness, supplied by whoever runs the execution.
pub trait Host {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// A uniformly distributed number in [0, 1).
    fn random(&mut self) -> f64;
    /// A version 4 UUID in its canonical lowercase text form.
    fn uuid(&mut self) -> String;
}

/// A deterministic [`Host`] for tests and replays: fixed clock, xorshift randomness.
#[derive(Clone, Debug)]
pub struct FixedHost {
    pub now_ms: i64,
    pub state: u64,
}

impl FixedHost {
    pub fn new(now_ms: i64, seed: u64) -> Self {
        Self {
            now_ms,
            state: seed.max(1),
        }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*: small, fast and good enough for ids that only need to differ.
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Host for FixedHost {
    fn now_ms(&self) -> i64 {
        self.now_ms
    }

    fn random(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn uuid(&mut self) -> String {
        uuid_from_bits(self.next_u64(), self.next_u64())
    }
}

/// Formats 128 random bits as a version 4, variant 1 UUID.
pub fn uuid_from_bits(hi: u64, lo: u64) -> String {
    let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_differ() {
        let mut h = FixedHost::new(0, 7);
        let a = h.uuid();
        let b = h.uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn random_is_in_unit_interval() {
        let mut h = FixedHost::new(0, 42);
        for _ in 0..1000 {
            let r = h.random();
            assert!((0.0..1.0).contains(&r));
        }
    }
}
