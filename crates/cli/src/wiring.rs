//! What `agentry serve` plugs into the engine's resource table and the gateway: SQS, the
//! models, the tools, and the sessions service with its knowledge base.
//!
//! - `sqs:sendMessage` onto the configured queues (created at start).
//! - The LLM resources (Converse, InvokeModel) from `[llm]`; without one, a built-in offline
//!   model that plays back the recorded exchanges of the pricing research and agent loop
//!   examples, so the offline demos need no configuration.
//! - The tools' `lambda:invoke` resources: the built-in tools (documents under
//!   `DATA/objects`, the knowledge index in `DATA/knowledge.db`) plus `[[tools]]`.
//! - [`FtsKnowledge`]: the tools' full-text index as the sessions' knowledge base, so that
//!   finished turns are searchable.
//! - [`PublishedDeltas`]: model output as it streams, carried between nodes on the cache's
//!   publish/subscribe, so a client follows a session on any node.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use agentry_sessions::{Knowledge, KnowledgeFilter, KnowledgeHit};
use agentry_tools::builtin::{
    CreateDocument, DataAnalysis, KnowledgeAdd, KnowledgeBase, KnowledgeDoc, KnowledgeQuery,
    KnowledgeSearch, SendEmail, WebFetch, WebSearch,
};
use anyhow::Context;
use async_trait::async_trait;

use crate::config::Config;

/// The offline model's recorded exchanges: the pricing research example's and the agent
/// loop example's.
const OFFLINE_RECORDINGS: [&str; 2] = [
    include_str!("../../../examples/pricing-research/recordings.json"),
    include_str!("../../../examples/agent-loop/recordings.json"),
];

/// The provider name and model id of the offline model.
pub const OFFLINE_PROVIDER: &str = "offline";
pub const OFFLINE_MODEL: &str = "offline-demo";

/// The models: `[llm]` as configured, else the offline model on the `complex` and `fast`
/// routes.
pub async fn llm(config: Option<&agentry_llm::LlmConfig>) -> anyhow::Result<agentry_llm::Llm> {
    if let Some(c) = config {
        return agentry_llm::Llm::from_config(c.clone())
            .await
            .context("[llm]");
    }
    let mut exchanges: Vec<agentry_llm::recorded::Exchange> = Vec::new();
    for text in OFFLINE_RECORDINGS {
        exchanges.extend(
            serde_json::from_str::<Vec<agentry_llm::recorded::Exchange>>(text)
                .context("the offline model's recordings")?,
        );
    }
    let provider = agentry_llm::RecordedProvider::from_exchanges(exchanges, "the offline model")
        .context("the offline model's recordings")?;
    let route = |_: &str| agentry_llm::config::RouteConfig {
        provider: OFFLINE_PROVIDER.into(),
        model: OFFLINE_MODEL.into(),
    };
    let mut c = agentry_llm::LlmConfig {
        default_route: Some("complex".into()),
        default_provider: Some(OFFLINE_PROVIDER.into()),
        ..Default::default()
    };
    c.routes = BTreeMap::from([
        ("complex".to_string(), route("complex")),
        ("fast".to_string(), route("fast")),
    ]);
    let providers = std::collections::HashMap::from([(
        OFFLINE_PROVIDER.to_string(),
        Arc::new(provider) as Arc<dyn agentry_llm::Provider>,
    )]);
    agentry_llm::Llm::new(c, providers).context("the offline model")
}

/// The cache channel model output travels on between nodes.
pub const DELTAS_CHANNEL: &str = "agentry:deltas";

/// Model output as it streams, published on the cache's channel [`DELTAS_CHANNEL`]; every
/// node delivers what arrives there to its own session streams. With a shared cache
/// (`redis://`), a client following a session on one node sees the tokens of a model called
/// on another; with `memory://`, the node hears itself.
pub struct PublishedDeltas(tokio::sync::mpsc::UnboundedSender<Vec<u8>>);

impl PublishedDeltas {
    /// Subscribes to the channel (delivering to `local`) and starts the publisher; both run
    /// as long as the runtime.
    pub async fn start(
        cache: Arc<dyn agentry_cache::Cache>,
        local: agentry_api::Deltas,
    ) -> anyhow::Result<Self> {
        let mut subscription = cache
            .subscribe(DELTAS_CHANNEL)
            .await
            .context("cannot subscribe to the model output channel")?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        // One publisher: deltas go out in the order the model produced them.
        tokio::spawn(async move {
            while let Some(payload) = rx.recv().await {
                if let Err(e) = cache.publish(DELTAS_CHANNEL, &payload).await {
                    eprintln!("agentry: publishing model output failed: {e}");
                }
            }
        });
        tokio::spawn(async move {
            while let Some(m) = subscription.recv().await {
                if let Ok((arn, delta)) =
                    serde_json::from_slice::<(String, serde_json::Value)>(&m.payload)
                {
                    // No receiver (nobody follows a session here) is not an error.
                    let _ = local.send((arn, delta));
                }
            }
        });
        Ok(PublishedDeltas(tx))
    }
}

impl agentry_llm::DeltaSink for PublishedDeltas {
    fn on_event(&self, execution_arn: &str, event: &agentry_llm::StreamEvent) {
        if let agentry_llm::StreamEvent::ContentBlockDelta(d) = event
            && let agentry_llm::BlockDelta::Text(text) = &d.delta
            && let Ok(payload) =
                serde_json::to_vec(&(execution_arn, serde_json::json!({"text": text})))
        {
            let _ = self.0.send(payload);
        }
    }
}

/// The built-in tools and the configured ones.
pub fn tools(
    config: &Config,
    data: &Path,
    kb: &KnowledgeBase,
    memory: Arc<dyn agentry_tools::memory::Memory>,
) -> anyhow::Result<agentry_tools::Registry> {
    let registry = agentry_tools::Registry::with_memory(memory);
    let add = |t: Arc<dyn agentry_tools::Builtin>| registry.add_builtin(t);
    add(Arc::new(WebFetch))?;
    add(Arc::new(WebSearch::from_config(config.search.as_ref())))?;
    add(Arc::new(DataAnalysis))?;
    add(Arc::new(CreateDocument::new(data.join("objects"))))?;
    add(Arc::new(KnowledgeSearch(kb.clone())))?;
    add(Arc::new(KnowledgeAdd(kb.clone())))?;
    if let Some(email) = &config.email {
        add(Arc::new(SendEmail::new(email.clone()).context("[email]")?))?;
    }
    registry.add_secrets(
        std::env::vars()
            .filter_map(|(k, v)| Some((k.strip_prefix("AGENTRY_SECRET_")?.to_string(), v))),
    );
    registry
        .load(&agentry_tools::ToolsConfig {
            tools: config.tools.clone(),
            secrets: Default::default(),
        })
        .context("[[tools]]")?;
    Ok(registry)
}

/// The tools' full-text index (SQLite FTS5, BM25) as the sessions' knowledge base: a finished
/// turn is a document of its tenant, user and agent, titled after its session.
pub struct FtsKnowledge(pub KnowledgeBase);

fn hit(h: agentry_tools::builtin::KnowledgeHit) -> KnowledgeHit {
    KnowledgeHit {
        text: h.snippet,
        agent: h.agent,
        session: h.source,
        at_ms: h.created_ms,
        score: h.score,
    }
}

fn unavailable(e: agentry_tools::Error) -> agentry_sessions::Error {
    agentry_sessions::Error::Corrupt(format!("knowledge base: {e}"))
}

#[async_trait]
impl Knowledge for FtsKnowledge {
    async fn search(
        &self,
        tenant: &str,
        user: &str,
        query: &str,
        limit: usize,
    ) -> agentry_sessions::Result<Vec<KnowledgeHit>> {
        self.search_filtered(tenant, user, query, &KnowledgeFilter::default(), limit)
            .await
    }

    async fn search_filtered(
        &self,
        tenant: &str,
        user: &str,
        query: &str,
        filter: &KnowledgeFilter,
        limit: usize,
    ) -> agentry_sessions::Result<Vec<KnowledgeHit>> {
        let hits = self
            .0
            .search(KnowledgeQuery {
                tenant: tenant.into(),
                query: query.into(),
                user: Some(user.into()),
                agent: filter.agent.clone(),
                after_ms: filter.since_ms,
                before_ms: None,
                limit: limit.min(100) as u32,
                all_terms: false,
            })
            .await
            .map_err(unavailable)?;
        Ok(hits.into_iter().map(hit).collect())
    }

    async fn add(&self, tenant: &str, user: &str, h: KnowledgeHit) -> agentry_sessions::Result<()> {
        let title = match (&h.agent, &h.session) {
            (Some(a), Some(s)) => format!("{a}: session {s}"),
            (None, Some(s)) => format!("session {s}"),
            _ => "turn".to_string(),
        };
        self.0
            .add(KnowledgeDoc {
                tenant: tenant.into(),
                user: Some(user.into()),
                agent: h.agent,
                title,
                body: h.text,
                source: h.session,
                created_ms: Some(h.at_ms),
            })
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// Opens the knowledge index under the data directory.
pub fn knowledge(data: &Path) -> anyhow::Result<KnowledgeBase> {
    let path = data.join("knowledge.db");
    KnowledgeBase::open(&path)
        .with_context(|| format!("cannot open the knowledge index {}", path.display()))
}

/// Creates the queues state machines send to (existing ones are kept).
pub async fn create_queues(
    queue: &dyn agentry_queue::Queue,
    names: &[String],
) -> anyhow::Result<()> {
    for name in names {
        match queue
            .create_queue(name, &agentry_queue::QueueAttributes::default())
            .await
        {
            Ok(_) | Err(agentry_queue::Error::QueueAlreadyExists(_)) => {}
            Err(e) => return Err(anyhow::anyhow!("cannot create the queue {name}: {e}")),
        }
    }
    Ok(())
}

/// The Task resources `agentry run` offers without a server: the models and the tools (no
/// queues: `sqs:sendMessage` needs `serve`).
pub async fn local_resources(
    config: &Config,
    data: &Path,
) -> anyhow::Result<agentry_engine::ResourceTable> {
    let mut table = agentry_engine::ResourceTable::new();
    agentry_llm::register(&mut table, Arc::new(llm(config.llm.as_ref()).await?));
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let kb = knowledge(data)?;
    // One run: results and approvals are kept in memory.
    let memory = Arc::new(agentry_tools::memory::MemoryStore::default());
    agentry_tools::engine::register(&mut table, Arc::new(tools(config, data, &kb, memory)?));
    Ok(table)
}

/// What an agent's configuration allows its turns, enforced where its Task resources run:
/// `tools` (when not empty) lists the only tools its turns may call, and `budgets` holds
/// `max_tokens_per_turn` and `max_model_calls_per_turn`, hard limits on the model calls of one
/// turn. `inner` serves the tool and model resources; the guards in front of them look up the
/// agent of the calling execution (a session turn's; other executions pass unguarded).
pub fn guard_agents(
    outer: &mut agentry_engine::ResourceTable,
    inner: agentry_engine::ResourceTable,
    sessions: agentry_sessions::Sessions,
    llm: Arc<agentry_llm::Llm>,
) {
    use agentry_engine::TaskError;
    let inner = Arc::new(inner);
    for resource in [
        agentry_tools::engine::LAMBDA_INVOKE,
        agentry_tools::engine::LAMBDA_FUNCTIONS,
    ] {
        let (inner, sessions) = (inner.clone(), sessions.clone());
        outer.register(resource, move |req: agentry_asl::TaskRequest| {
            let (inner, sessions) = (inner.clone(), sessions.clone());
            async move {
                let arn = agentry_llm::states::execution_arn(&req.idempotency_key);
                if let Some(agent) = agent_of(&sessions, arn).await? {
                    let allowed = &agent.config.tools;
                    let tool = tool_name(&req);
                    if !allowed.is_empty() && !allowed.contains(&tool) {
                        return Err(TaskError::new(
                            "Tools.NotAllowed",
                            format!(
                                "agent {} (version {}) may call {allowed:?}; \"{tool}\" is not among them",
                                agent.name, agent.version
                            ),
                        ));
                    }
                }
                inner.invoke(req).await
            }
        });
    }
    for resource in [
        agentry_llm::states::CONVERSE,
        agentry_llm::states::INVOKE_MODEL,
    ] {
        let (inner, sessions, llm) = (inner.clone(), sessions.clone(), llm.clone());
        outer.register(resource, move |req: agentry_asl::TaskRequest| {
            let (inner, sessions, llm) = (inner.clone(), sessions.clone(), llm.clone());
            async move {
                let arn = agentry_llm::states::execution_arn(&req.idempotency_key);
                if let Some(agent) = agent_of(&sessions, arn).await? {
                    let limit = |k: &str| agent.config.budgets.get(k).and_then(|v| v.as_u64());
                    let used = llm
                        .ledger()
                        .totals(agentry_llm::ScopeKind::Execution, arn)
                        .await
                        .unwrap_or_default();
                    let tokens = used.input_tokens + used.output_tokens;
                    let over = match (
                        limit("max_tokens_per_turn"),
                        limit("max_model_calls_per_turn"),
                    ) {
                        (Some(max), _) if tokens >= max => {
                            Some(format!("{tokens} tokens used of max_tokens_per_turn {max}"))
                        }
                        (_, Some(max)) if used.calls >= max => Some(format!(
                            "{} model calls made of max_model_calls_per_turn {max}",
                            used.calls
                        )),
                        _ => None,
                    };
                    if let Some(why) = over {
                        return Err(TaskError::new(
                            "Llm.BudgetExceeded",
                            format!(
                                "agent {} (version {}): {why}; the call was not made",
                                agent.name, agent.version
                            ),
                        ));
                    }
                }
                inner.invoke(req).await
            }
        });
    }
}

/// The agent whose turn an execution runs; a store that cannot say fails the call (the guard
/// does not let calls through unchecked), with an error Retry can match.
async fn agent_of(
    sessions: &agentry_sessions::Sessions,
    execution_arn: &str,
) -> Result<Option<agentry_sessions::Agent>, agentry_engine::TaskError> {
    sessions
        .agent_of_execution(execution_arn)
        .await
        .map_err(|e| {
            agentry_engine::TaskError::new(
                "States.TaskFailed",
                format!("cannot check what the calling agent may use: {e}"),
            )
        })
}

/// The tool a `lambda:invoke` task or a Lambda function ARN names.
fn tool_name(req: &agentry_asl::TaskRequest) -> String {
    let function = if req.resource.starts_with("arn:aws:lambda:") {
        req.resource.as_str()
    } else {
        req.input
            .get("FunctionName")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    };
    agentry_sessions::tool_of_function(function).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentry_llm::DeltaSink;

    fn text_delta(text: &str) -> agentry_llm::StreamEvent {
        serde_json::from_value(serde_json::json!(
            {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": text}}}
        ))
        .expect("a text delta")
    }

    /// Two nodes on one Redis cache: model output streamed on one reaches the session
    /// streams of the other, in order. Skipped without a Redis server (a failure under
    /// `CI=true`) or without the `redis` feature.
    #[tokio::test]
    async fn model_output_reaches_the_other_nodes_through_the_cache() {
        if !cfg!(feature = "redis") {
            eprintln!("skipped: built without feature redis");
            return;
        }
        let Some(redis) = std::env::var("AGENTRY_TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but AGENTRY_TEST_REDIS_URL is not set"
            );
            eprintln!("skipped: AGENTRY_TEST_REDIS_URL not set");
            return;
        };
        // A channel prefix of its own, so runs never hear each other.
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let sep = if redis.contains('?') { '&' } else { '?' };
        let url = format!("{redis}{sep}prefix=deltas-{run:x}:");
        let (a_local, b_local): (agentry_api::Deltas, agentry_api::Deltas) = (
            tokio::sync::broadcast::channel(64).0,
            tokio::sync::broadcast::channel(64).0,
        );
        let mut on_b = b_local.subscribe();
        let a = PublishedDeltas::start(agentry_cache::open(&url).await.unwrap(), a_local)
            .await
            .unwrap();
        let _b = PublishedDeltas::start(agentry_cache::open(&url).await.unwrap(), b_local)
            .await
            .unwrap();
        let arn = format!("arn:aws:states:us-east-1:000000000000:execution:m:{run}");
        for word in ["Hello", ", ", "world"] {
            a.on_event(&arn, &text_delta(word));
        }
        let mut got = String::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while got != "Hello, world" {
            let (from, delta) = tokio::time::timeout_at(deadline, on_b.recv())
                .await
                .expect("the deltas arrive on the other node")
                .unwrap();
            if from == arn {
                got.push_str(delta["text"].as_str().unwrap());
            }
        }
    }
}
