//! End-to-end tests of the durable engine on the SQLite store and queue (and on PostgreSQL +
//! Redis when their URLs are given).

mod activities;
mod api;
#[path = "../../../asl/tests/it/compare.rs"]
mod compare;
mod conformance;
mod crash;
mod express;
mod flows;
mod integrations;
mod machines;
mod nested;
mod nodes;
mod outbox;
mod redrive;
mod support;
