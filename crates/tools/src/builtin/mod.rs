//! The built-in tools. Each is a [`crate::Builtin`] with a default spec (name, schemas,
//! policy) that [`crate::Registry::add_builtin`] registers as it is.

mod data;
mod document;
mod email;
mod knowledge;
pub mod pdf;
mod web;

pub use data::{DataAnalysis, Table, analyse, describe, percentile};
pub use document::{CreateDocument, markdown_to_html};
pub use email::{EmailConfig, SendEmail};
pub use knowledge::{
    KnowledgeAdd, KnowledgeBase, KnowledgeDoc, KnowledgeHit, KnowledgeQuery, KnowledgeSearch,
};
pub use web::{
    ApiBackend, Link, Page, SearchBackend, SearchConfig, SearchHit, WebFetch, WebSearch, parse_page,
};
