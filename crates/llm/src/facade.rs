//! [`Llm`]: routing, context management, budgets, the response cache and the ledger around the
//! providers, in that order for every call.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::cache::ResponseCache;
use crate::config::{LlmConfig, ModelConfig, OverflowStrategy, ProviderConfig, ScopeKind};
use crate::context;
use crate::ledger::{BudgetNotice, CallLabels, Ledger, LedgerEntry, LlmEvent, MemoryLedger};
use crate::provider::{Provider, StreamAccumulator, events_from_response, stream_of};
use crate::types::*;
use crate::{Error, Result};

/// Receives a streaming call's events as they arrive, for calls labelled with an execution: the
/// hook through which model output reaches an execution's event stream (the engine does not
/// carry such a stream yet; whoever serves one installs a sink with [`Llm::with_delta_sink`]).
pub trait DeltaSink: Send + Sync {
    fn on_event(&self, execution_arn: &str, event: &StreamEvent);
}

/// Where a request's `modelId` led.
#[derive(Clone)]
pub struct Resolved {
    /// The route named, if the request named one.
    pub route: Option<String>,
    pub provider_name: String,
    pub provider: Arc<dyn Provider>,
    /// The provider's model id.
    pub model: String,
}

struct Inner {
    config: LlmConfig,
    providers: HashMap<String, Arc<dyn Provider>>,
    ledger: Arc<dyn Ledger>,
    cache: Option<ResponseCache>,
    events: broadcast::Sender<LlmEvent>,
    sink: RwLock<Option<Arc<dyn DeltaSink>>>,
}

/// The models, as the rest of agentry sees them. Cheap to clone.
#[derive(Clone)]
pub struct Llm {
    inner: Arc<Inner>,
}

/// Tokens set aside for a summary when the `summarize` strategy plans its cut.
const SUMMARY_TOKENS: u64 = 512;

impl Llm {
    /// Builds the providers the config names, an in-memory ledger and (if enabled) the response
    /// cache on the configured backend.
    pub async fn from_config(config: LlmConfig) -> Result<Self> {
        let mut providers: HashMap<String, Arc<dyn Provider>> = HashMap::new();
        for (name, p) in &config.providers {
            providers.insert(name.clone(), build_provider(name, p).await?);
        }
        let cache = if config.cache.enabled {
            Some(
                agentry_cache::open(&config.cache.url)
                    .await
                    .map_err(|e| Error::Config(format!("cache: {e}")))?,
            )
        } else {
            None
        };
        let llm = Self::new(config, providers)?;
        Ok(match cache {
            Some(c) => llm.with_cache(c),
            None => llm,
        })
    }

    /// Uses the given providers (by the names routes refer to), an in-memory ledger and no
    /// cache.
    pub fn new(config: LlmConfig, providers: HashMap<String, Arc<dyn Provider>>) -> Result<Self> {
        for (route, r) in &config.routes {
            if !providers.contains_key(&r.provider) {
                return Err(Error::Config(format!(
                    "route \"{route}\" names unknown provider \"{}\"",
                    r.provider
                )));
            }
        }
        for (model, m) in &config.models {
            if let Some(p) = &m.provider
                && !providers.contains_key(p)
            {
                return Err(Error::Config(format!(
                    "model \"{model}\" names unknown provider \"{p}\""
                )));
            }
        }
        if let Some(p) = &config.default_provider
            && !providers.contains_key(p)
        {
            return Err(Error::Config(format!(
                "default_provider names unknown provider \"{p}\""
            )));
        }
        Ok(Llm {
            inner: Arc::new(Inner {
                config,
                providers,
                ledger: Arc::new(MemoryLedger::new()),
                cache: None,
                events: broadcast::channel(1024).0,
                sink: RwLock::new(None),
            }),
        })
    }

    fn rebuild(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|a| Inner {
            config: a.config.clone(),
            providers: a.providers.clone(),
            ledger: a.ledger.clone(),
            cache: a.cache.clone(),
            events: a.events.clone(),
            sink: RwLock::new(a.sink.read().unwrap().clone()),
        });
        f(&mut inner);
        Llm {
            inner: Arc::new(inner),
        }
    }

    /// The same facade keeping usage in `ledger`.
    pub fn with_ledger(self, ledger: Arc<dyn Ledger>) -> Self {
        self.rebuild(|i| i.ledger = ledger)
    }

    /// The same facade caching responses in `cache` for the configured TTL.
    pub fn with_cache(self, cache: Arc<dyn agentry_cache::Cache>) -> Self {
        let ttl = Duration::from_secs(self.inner.config.cache.ttl_seconds.max(1));
        self.rebuild(|i| i.cache = Some(ResponseCache::new(cache, ttl)))
    }

    /// The same facade sending streaming calls' events to `sink`.
    pub fn with_delta_sink(self, sink: Arc<dyn DeltaSink>) -> Self {
        *self.inner.sink.write().unwrap() = Some(sink);
        self
    }

    pub fn has_delta_sink(&self) -> bool {
        self.inner.sink.read().unwrap().is_some()
    }

    pub fn config(&self) -> &LlmConfig {
        &self.inner.config
    }

    pub fn ledger(&self) -> &Arc<dyn Ledger> {
        &self.inner.ledger
    }

    /// Calls finished, cache hits and budget notices, as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<LlmEvent> {
        self.inner.events.subscribe()
    }

    /// The provider and model a request's `modelId` leads to: a route name, else a model in
    /// `[models]` with a provider, else the default provider (or the only one).
    pub fn resolve(&self, model_id: &str) -> Result<Resolved> {
        let c = &self.inner.config;
        let id = if model_id.is_empty() {
            c.default_route.as_deref().ok_or_else(|| {
                Error::InvalidRequest("modelId is empty and no default_route is configured".into())
            })?
        } else {
            model_id
        };
        let (route, provider, model) = if let Some(r) = c.routes.get(id) {
            (Some(id.to_string()), r.provider.clone(), r.model.clone())
        } else if let Some(p) = c.models.get(id).and_then(|m| m.provider.clone()) {
            (None, p, id.to_string())
        } else if let Some(p) = c.default_provider.clone().or_else(|| {
            (self.inner.providers.len() == 1)
                .then(|| self.inner.providers.keys().next().cloned())?
        }) {
            (None, p, id.to_string())
        } else {
            return Err(Error::ModelNotFound {
                model: id.to_string(),
                message: format!(
                    "no route or [models] entry names it (routes: {})",
                    c.routes.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        };
        let p = self
            .inner
            .providers
            .get(&provider)
            .ok_or_else(|| Error::Config(format!("unknown provider \"{provider}\"")))?;
        Ok(Resolved {
            route,
            provider_name: provider,
            provider: p.clone(),
            model,
        })
    }

    /// The settings of a provider model id (defaults when `[models]` has no entry).
    pub fn model_config(&self, model: &str) -> ModelConfig {
        self.inner
            .config
            .models
            .get(model)
            .cloned()
            .unwrap_or_default()
    }

    /// One call: route, fit the context, check hard budgets, answer from the cache or the
    /// provider, record usage.
    pub async fn converse(
        &self,
        request: ConverseRequest,
        labels: &CallLabels,
    ) -> Result<ConverseResponse> {
        let (resolved, request, key) = self.prepare(request, labels).await?;
        if let Some(hit) = self.cached(&resolved, &key, labels).await {
            return Ok(hit);
        }
        let response = resolved.provider.converse(&request).await?;
        self.finish(&resolved, labels, &response, key.as_deref())
            .await;
        Ok(response)
    }

    /// The same as [`Llm::converse`], streaming. Usage is recorded (and the response cached)
    /// when the stream completes; events go to the delta sink too when the call is labelled
    /// with an execution.
    pub async fn converse_stream(
        &self,
        request: ConverseRequest,
        labels: &CallLabels,
    ) -> Result<EventStream> {
        let (resolved, request, key) = self.prepare(request, labels).await?;
        let sink = self.inner.sink.read().unwrap().clone();
        let execution = labels.execution.clone();
        let forward = move |e: &StreamEvent| {
            if let (Some(s), Some(x)) = (&sink, &execution) {
                s.on_event(x, e);
            }
        };
        if let Some(hit) = self.cached(&resolved, &key, labels).await {
            let events = events_from_response(&hit);
            events.iter().for_each(&forward);
            return Ok(stream_of(events));
        }
        let inner = resolved.provider.converse_stream(&request).await?;
        let acc = StreamAccumulator::new(&resolved.provider_name);
        let state = (
            inner,
            Some(acc),
            self.clone(),
            resolved,
            labels.clone(),
            key,
            forward,
        );
        Ok(Box::pin(futures_util::stream::unfold(
            state,
            |(mut inner, mut acc, llm, resolved, labels, key, forward)| async move {
                match inner.next().await {
                    Some(Ok(event)) => {
                        forward(&event);
                        if let Some(a) = acc.as_mut()
                            && a.push(&event).is_err()
                        {
                            acc = None;
                        }
                        Some((Ok(event), (inner, acc, llm, resolved, labels, key, forward)))
                    }
                    Some(Err(e)) => {
                        Some((Err(e), (inner, None, llm, resolved, labels, key, forward)))
                    }
                    None => {
                        if let Some(response) = acc.take().and_then(|a| a.finish().ok()) {
                            llm.finish(&resolved, &labels, &response, key.as_deref())
                                .await;
                        }
                        None
                    }
                }
            },
        )))
    }

    /// Routes the request, fits it to the model's window and checks hard budgets; returns the
    /// request as the provider will see it and its cache key (when caching).
    async fn prepare(
        &self,
        mut request: ConverseRequest,
        labels: &CallLabels,
    ) -> Result<(Resolved, ConverseRequest, Option<String>)> {
        let resolved = self.resolve(&request.model_id)?;
        if request.messages.is_empty() {
            return Err(Error::InvalidRequest("messages is empty".into()));
        }
        request.model_id = resolved.model.clone();
        let model = self.model_config(&resolved.model);
        let request = self.fit(request, &model, labels).await?;
        let prompt = context::estimate_prompt(&request, &model);
        self.check_budgets(labels, prompt, model.cost(prompt, 0))
            .await?;
        let key = self
            .inner
            .cache
            .as_ref()
            .map(|_| ResponseCache::key(&resolved.provider_name, &request));
        Ok((resolved, request, key))
    }

    async fn fit(
        &self,
        request: ConverseRequest,
        model: &ModelConfig,
        labels: &CallLabels,
    ) -> Result<ConverseRequest> {
        let estimate = context::estimate(&request, model);
        if estimate <= model.context_window {
            return Ok(request);
        }
        let c = &self.inner.config.context;
        match c.strategy {
            OverflowStrategy::Fail => Err(Error::ContextWindowExceeded {
                model: request.model_id.clone(),
                message: format!(
                    "about {estimate} tokens (estimated, with room for the reply) exceed the {}-token window",
                    model.context_window
                ),
            }),
            OverflowStrategy::DropOldest => {
                let cut = context::plan_cut(&request, model, c.keep_first_user, 0)?;
                let mut out = request.clone();
                out.messages = cut.apply(&request.messages, None);
                tracing::debug!(
                    model = %request.model_id,
                    dropped = cut.dropped.len(),
                    "dropped the oldest messages to fit the context window"
                );
                Ok(out)
            }
            OverflowStrategy::Summarize => {
                let cut = context::plan_cut(&request, model, c.keep_first_user, SUMMARY_TOKENS)?;
                let old = &request.messages[cut.dropped.clone()];
                let ask = ConverseRequest::user(
                    c.summary_route.clone(),
                    format!(
                        "Summarize this earlier part of a conversation in at most {} words, keeping facts, decisions, tool results and open questions:\n\n{}",
                        SUMMARY_TOKENS / 2,
                        context::transcript(old)
                    ),
                )
                .with_system("You write concise, faithful summaries of conversations.")
                .with_max_tokens(SUMMARY_TOKENS as u32);
                let summary = Box::pin(self.converse(ask, labels)).await?.text();
                let mut out = request.clone();
                out.messages = cut.apply(
                    &request.messages,
                    Some(Message::user(format!(
                        "Summary of the earlier conversation:\n{}",
                        summary.trim()
                    ))),
                );
                let after = context::estimate(&out, model);
                if after > model.context_window {
                    return Err(Error::ContextWindowExceeded {
                        model: request.model_id.clone(),
                        message: format!(
                            "about {after} tokens after summarising the oldest messages still exceed the {}-token window",
                            model.context_window
                        ),
                    });
                }
                Ok(out)
            }
        }
    }

    /// The budgets that apply to a call with these labels, with the scope's id.
    fn budgets<'a>(
        &'a self,
        labels: &'a CallLabels,
    ) -> impl Iterator<Item = (&'a crate::config::BudgetConfig, &'a str)> {
        self.inner.config.budgets.iter().filter_map(move |b| {
            let id = labels.get(b.scope)?;
            b.id.as_deref()
                .is_none_or(|want| want == id)
                .then_some((b, id))
        })
    }

    async fn check_budgets(
        &self,
        labels: &CallLabels,
        prompt: u64,
        prompt_cost: f64,
    ) -> Result<()> {
        for (b, id) in self.budgets(labels).filter(|(b, _)| b.hard) {
            let t = self.inner.ledger.totals(b.scope, id).await?;
            let refuse = |measure: &str, spent: f64, add: f64, limit: f64| {
                (spent >= limit || spent + add > limit).then(|| BudgetNotice {
                    scope: b.scope,
                    id: id.to_string(),
                    measure: measure.to_string(),
                    spent,
                    limit,
                })
            };
            let notice = b
                .max_tokens
                .and_then(|m| refuse("tokens", t.tokens() as f64, prompt as f64, m as f64))
                .or_else(|| {
                    b.max_cost_usd
                        .and_then(|m| refuse("cost_usd", t.cost_usd, prompt_cost, m))
                });
            if let Some(n) = notice {
                let _ = self.inner.events.send(LlmEvent::BudgetRefused(n.clone()));
                return Err(Error::BudgetExceeded {
                    scope: format!("{} \"{}\"", scope_name(n.scope), n.id),
                    message: format!(
                        "{} spent {} of {} (this call's prompt adds about {})",
                        n.measure,
                        n.spent,
                        n.limit,
                        if n.measure == "tokens" {
                            prompt.to_string()
                        } else {
                            format!("{prompt_cost:.6}")
                        }
                    ),
                });
            }
        }
        Ok(())
    }

    async fn cached(
        &self,
        resolved: &Resolved,
        key: &Option<String>,
        labels: &CallLabels,
    ) -> Option<ConverseResponse> {
        let (Some(cache), Some(key)) = (&self.inner.cache, key) else {
            return None;
        };
        let started = Instant::now();
        let mut hit = cache.get(key).await?;
        hit.metrics.latency_ms = started.elapsed().as_millis() as u64;
        let entry = self.entry(resolved, labels, &hit, true);
        self.record(entry).await;
        Some(hit)
    }

    fn entry(
        &self,
        resolved: &Resolved,
        labels: &CallLabels,
        response: &ConverseResponse,
        cache_hit: bool,
    ) -> LedgerEntry {
        let u = response.usage;
        LedgerEntry {
            route: resolved.route.clone(),
            provider: resolved.provider_name.clone(),
            model: resolved.model.clone(),
            labels: labels.clone(),
            usage: u,
            cost_usd: self
                .model_config(&resolved.model)
                .cost(u.input_tokens, u.output_tokens),
            cache_hit,
        }
    }

    async fn finish(
        &self,
        resolved: &Resolved,
        labels: &CallLabels,
        response: &ConverseResponse,
        key: Option<&str>,
    ) {
        if let (Some(cache), Some(key)) = (&self.inner.cache, key) {
            cache.put(key, response).await;
        }
        let entry = self.entry(resolved, labels, response, false);
        self.record(entry).await;
    }

    async fn record(&self, entry: LedgerEntry) {
        if let Err(e) = self.inner.ledger.record(&entry).await {
            tracing::warn!(error = %e, "llm ledger write failed");
        }
        if !entry.cache_hit {
            for (b, id) in self.budgets(&entry.labels).filter(|(b, _)| !b.hard) {
                let Ok(t) = self.inner.ledger.totals(b.scope, id).await else {
                    continue;
                };
                let crossed = |measure: &str, after: f64, added: f64, limit: f64| {
                    (after >= limit && after - added < limit).then(|| BudgetNotice {
                        scope: b.scope,
                        id: id.to_string(),
                        measure: measure.to_string(),
                        spent: after,
                        limit,
                    })
                };
                let notices = [
                    b.max_tokens.and_then(|m| {
                        crossed(
                            "tokens",
                            t.tokens() as f64,
                            entry.usage.total_tokens as f64,
                            m as f64,
                        )
                    }),
                    b.max_cost_usd
                        .and_then(|m| crossed("cost_usd", t.cost_usd, entry.cost_usd, m)),
                ];
                for n in notices.into_iter().flatten() {
                    let _ = self.inner.events.send(LlmEvent::BudgetWarning(n));
                }
            }
        }
        let _ = self.inner.events.send(LlmEvent::Call(entry));
    }
}

fn scope_name(s: ScopeKind) -> &'static str {
    s.as_str()
}

async fn build_provider(name: &str, p: &ProviderConfig) -> Result<Arc<dyn Provider>> {
    let key = |inline: &Option<String>, env: Option<&str>| -> Option<String> {
        inline
            .clone()
            .or_else(|| env.and_then(|e| std::env::var(e).ok()))
            .filter(|k| !k.is_empty())
    };
    Ok(match p {
        ProviderConfig::Openai {
            base_url,
            api_key,
            api_key_env,
            timeout_seconds,
        } => Arc::new(crate::openai::OpenAiProvider::new(
            base_url,
            key(api_key, api_key_env.as_deref()),
            Duration::from_secs(*timeout_seconds),
        )?),
        ProviderConfig::Anthropic {
            base_url,
            api_key,
            api_key_env,
            timeout_seconds,
        } => {
            let k = key(api_key, Some(api_key_env)).ok_or_else(|| {
                Error::Config(format!(
                    "provider \"{name}\": no API key (set api_key or the {api_key_env} environment variable)"
                ))
            })?;
            Arc::new(crate::anthropic::AnthropicProvider::new(
                base_url,
                k,
                Duration::from_secs(*timeout_seconds),
            )?)
        }
        ProviderConfig::Recorded { path } => {
            Arc::new(crate::recorded::RecordedProvider::open(path)?)
        }
        #[cfg(feature = "bedrock")]
        ProviderConfig::Bedrock {
            region,
            endpoint_url,
            profile,
        } => Arc::new(
            crate::bedrock::BedrockProvider::from_env(
                region.clone(),
                endpoint_url.clone(),
                profile.clone(),
            )
            .await,
        ),
        #[cfg(not(feature = "bedrock"))]
        ProviderConfig::Bedrock { .. } => {
            return Err(Error::Config(format!(
                "provider \"{name}\": bedrock is not supported in this build (enable the agentry-llm feature \"bedrock\")"
            )));
        }
    })
}
