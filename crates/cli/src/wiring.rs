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

/// Sends the text of streamed model output to the gateway's session event streams.
pub struct BroadcastDeltas(pub agentry_api::Deltas);

impl agentry_llm::DeltaSink for BroadcastDeltas {
    fn on_event(&self, execution_arn: &str, event: &agentry_llm::StreamEvent) {
        if let agentry_llm::StreamEvent::ContentBlockDelta(d) = event
            && let agentry_llm::BlockDelta::Text(text) = &d.delta
        {
            // No receiver (nobody follows the session) is not an error.
            let _ = self
                .0
                .send((execution_arn.to_string(), serde_json::json!({"text": text})));
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
