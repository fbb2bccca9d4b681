//! Tools in state machines.
