//! `knowledge_search` and `knowledge_add`: full-text search over the knowledge base (the
//! seed's KnowledgeBase table), an SQLite FTS5 index ranked by BM25, filtered by tenant, user,
//! agent and time.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::registry::{InvokerSpec, ToolSpec};
use crate::{Builtin, Policy, ToolContext};

/// A document of the knowledge base.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeDoc {
    pub tenant: String,
    pub user: Option<String>,
    pub agent: Option<String>,
    pub title: String,
    pub body: String,
    pub source: Option<String>,
    /// Epoch milliseconds; now when absent.
    pub created_ms: Option<i64>,
}

/// A search of the knowledge base.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeQuery {
    pub tenant: String,
    pub query: String,
    pub user: Option<String>,
    pub agent: Option<String>,
    /// Only documents created at or after (epoch ms).
    pub after_ms: Option<i64>,
    /// Only documents created before (epoch ms).
    pub before_ms: Option<i64>,
    pub limit: u32,
    /// Every term must match (otherwise any term, ranked by BM25).
    pub all_terms: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeHit {
    pub id: i64,
    pub title: String,
    pub snippet: String,
    pub source: Option<String>,
    pub user: Option<String>,
    pub agent: Option<String>,
    pub created_ms: i64,
    /// BM25 score (higher is better).
    pub score: f64,
}

/// The knowledge base's index. SQLite calls run on the blocking pool.
#[derive(Clone)]
pub struct KnowledgeBase {
    conn: Arc<Mutex<Connection>>,
}

fn db(e: rusqlite::Error) -> Error {
    Error::Unavailable(format!("knowledge base: {e}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl KnowledgeBase {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        if let Some(p) = path.as_ref().parent() {
            std::fs::create_dir_all(p).map_err(|e| Error::Unavailable(e.to_string()))?;
        }
        Self::init(Connection::open(path).map_err(db)?)
    }

    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory().map_err(db)?)
    }

    fn init(conn: Connection) -> Result<Self> {
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS kb_docs(
                 id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, user TEXT, agent TEXT,
                 title TEXT NOT NULL, body TEXT NOT NULL, source TEXT, created_ms INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS kb_docs_tenant ON kb_docs(tenant, created_ms);
             CREATE VIRTUAL TABLE IF NOT EXISTS kb_fts USING fts5(
                 title, body, content='kb_docs', content_rowid='id', tokenize='porter unicode61');",
        )
        .map_err(db)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap()))
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?
            .map_err(db)
    }

    /// Adds a document; returns its id.
    pub async fn add(&self, doc: KnowledgeDoc) -> Result<i64> {
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO kb_docs(tenant, user, agent, title, body, source, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    doc.tenant,
                    doc.user,
                    doc.agent,
                    doc.title,
                    doc.body,
                    doc.source,
                    doc.created_ms.unwrap_or_else(now_ms)
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO kb_fts(rowid, title, body) VALUES (?1, ?2, ?3)",
                params![id, doc.title, doc.body],
            )?;
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    /// The best matches, best first. The query's words are matched as terms (FTS5 syntax in
    /// the query is not interpreted), stemmed.
    pub async fn search(&self, q: KnowledgeQuery) -> Result<Vec<KnowledgeHit>> {
        let terms: Vec<String> = q
            .query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
            .map(|t| format!("\"{t}\""))
            .collect();
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let fts = terms.join(if q.all_terms { " AND " } else { " OR " });
        let limit = if q.limit == 0 { 10 } else { q.limit.min(100) };
        self.with(move |c| {
            let mut st = c.prepare_cached(
                "SELECT d.id, d.title, snippet(kb_fts, 1, '[', ']', '…', 16), d.source, d.user,
                        d.agent, d.created_ms, bm25(kb_fts)
                 FROM kb_fts JOIN kb_docs d ON d.id = kb_fts.rowid
                 WHERE kb_fts MATCH ?1 AND d.tenant = ?2
                   AND (?3 IS NULL OR d.user = ?3) AND (?4 IS NULL OR d.agent = ?4)
                   AND (?5 IS NULL OR d.created_ms >= ?5) AND (?6 IS NULL OR d.created_ms < ?6)
                 ORDER BY bm25(kb_fts) LIMIT ?7",
            )?;
            let rows = st.query_map(
                params![
                    fts,
                    q.tenant,
                    q.user,
                    q.agent,
                    q.after_ms,
                    q.before_ms,
                    limit
                ],
                |r| {
                    Ok(KnowledgeHit {
                        id: r.get(0)?,
                        title: r.get(1)?,
                        snippet: r.get(2)?,
                        source: r.get(3)?,
                        user: r.get(4)?,
                        agent: r.get(5)?,
                        created_ms: r.get(6)?,
                        score: -r.get::<_, f64>(7)?,
                    })
                },
            )?;
            rows.collect()
        })
        .await
    }
}

/// Searches the knowledge base of the calling tenant.
pub struct KnowledgeSearch(pub KnowledgeBase);

/// Adds a document to the knowledge base of the calling tenant.
pub struct KnowledgeAdd(pub KnowledgeBase);

fn opt(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

#[async_trait]
impl Builtin for KnowledgeSearch {
    fn spec(&self) -> ToolSpec {
        ToolSpec::new("knowledge_search", InvokerSpec::Builtin { name: "knowledge_search".into() })
            .description("Full-text search of the knowledge base (earlier results, reports, notes), filtered by user, agent and time")
            .input_schema(json!({
                "type": "object",
                "required": ["query"],
                "properties": {
                    "query": {"type": "string", "minLength": 1},
                    "user": {"type": "string"},
                    "agent": {"type": "string"},
                    "after_ms": {"type": "integer"},
                    "before_ms": {"type": "integer"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                    "all_terms": {"type": "boolean"}
                },
                "additionalProperties": false
            }))
            .policy(Policy::default())
    }

    async fn call(&self, input: Value, cx: &ToolContext<'_>) -> Result<Value> {
        let hits = self
            .0
            .search(KnowledgeQuery {
                tenant: cx.tenant.to_owned(),
                query: opt(&input, "query").unwrap_or_default(),
                user: opt(&input, "user"),
                agent: opt(&input, "agent"),
                after_ms: input.get("after_ms").and_then(Value::as_i64),
                before_ms: input.get("before_ms").and_then(Value::as_i64),
                limit: input.get("limit").and_then(Value::as_u64).unwrap_or(10) as u32,
                all_terms: input
                    .get("all_terms")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            })
            .await?;
        Ok(json!({"results": hits}))
    }
}

#[async_trait]
impl Builtin for KnowledgeAdd {
    fn spec(&self) -> ToolSpec {
        ToolSpec::new(
            "knowledge_add",
            InvokerSpec::Builtin {
                name: "knowledge_add".into(),
            },
        )
        .description("Add a document to the knowledge base")
        .input_schema(json!({
            "type": "object",
            "required": ["title", "body"],
            "properties": {
                "title": {"type": "string"},
                "body": {"type": "string"},
                "user": {"type": "string"},
                "agent": {"type": "string"},
                "source": {"type": "string"},
                "created_ms": {"type": "integer"}
            },
            "additionalProperties": false
        }))
        .policy(Policy::default())
    }

    async fn call(&self, input: Value, cx: &ToolContext<'_>) -> Result<Value> {
        let id = self
            .0
            .add(KnowledgeDoc {
                tenant: cx.tenant.to_owned(),
                user: opt(&input, "user"),
                agent: opt(&input, "agent"),
                title: opt(&input, "title").unwrap_or_default(),
                body: opt(&input, "body").unwrap_or_default(),
                source: opt(&input, "source"),
                created_ms: input.get("created_ms").and_then(Value::as_i64),
            })
            .await?;
        Ok(json!({"id": id}))
    }
}
