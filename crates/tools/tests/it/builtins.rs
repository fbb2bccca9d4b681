//! The built-in tools against local servers.
