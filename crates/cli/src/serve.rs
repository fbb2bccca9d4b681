//! `agentry serve`: the gateway on a socket, stopped cleanly by Ctrl-C or SIGTERM; and
//! `agentry token`, which signs development tokens for it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;

/// Whether development tokens are on: as configured, else unless a JWKS issuer is.
fn dev_tokens(config: &Config) -> bool {
    config.auth.dev_tokens.unwrap_or(config.auth.jwks.is_none())
}

pub fn token(
    config: &Config,
    data: Option<PathBuf>,
    tenant: &str,
    user: &str,
    ttl: Duration,
) -> anyhow::Result<ExitCode> {
    println!("{}", issue_token(config, data, tenant, user, ttl)?);
    Ok(ExitCode::SUCCESS)
}

/// A development token signed with the data directory's key.
pub fn issue_token(
    config: &Config,
    data: Option<PathBuf>,
    tenant: &str,
    user: &str,
    ttl: Duration,
) -> anyhow::Result<String> {
    if !dev_tokens(config) {
        anyhow::bail!(
            "development tokens are off in this config (auth.dev_tokens); use your identity provider's tokens"
        );
    }
    let data = config.data_dir(data);
    let key = agentry_api::DevKey::load_or_create(&data).with_context(|| {
        format!(
            "cannot read or create the signing key in {}",
            data.display()
        )
    })?;
    key.issue(tenant, user, ttl).map_err(|e| anyhow::anyhow!(e))
}

pub fn serve(
    config: Config,
    addr: Option<String>,
    data: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let addr = config.addr(addr);
    let data = config.data_dir(data);
    let data = data.as_path();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        std::fs::create_dir_all(data)
            .with_context(|| format!("cannot create the data directory {}", data.display()))?;
        let deltas: agentry_api::Deltas = tokio::sync::broadcast::channel(1024).0;
        let (engine, sessions, tools) = open_engine(&config, data, deltas.clone()).await?;
        let node = engine.run();
        let watch = sessions.watch(engine.clone(), Duration::from_millis(500));
        let dev = if dev_tokens(&config) {
            Some(agentry_api::DevKey::load_or_create(data).with_context(|| {
                format!(
                    "cannot read or create the signing key in {}",
                    data.display()
                )
            })?)
        } else {
            None
        };
        let auth = agentry_api::Auth::new(&config.auth, dev).map_err(|e| anyhow::anyhow!(e))?;
        // Executions of configured accounts call their tenant's tools from the start (others'
        // accounts are bound at their tenant's first request, and remembered).
        for (tenant, account) in &config.auth.accounts {
            tools
                .bind_account(account, tenant)
                .await
                .context("cannot record the tenants' accounts")?;
        }
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        eprintln!(
            "agentry: listening on http://{local} (data in {})",
            data.display()
        );
        if config.store.is_some() || config.queue.is_some() {
            eprintln!(
                "agentry: store {}, queues {}",
                redact(&config.store_url(None, data)),
                redact(&config.queue_url(None, data))
            );
        }
        if dev_tokens(&config) {
            eprintln!(
                "agentry: development tokens on: `agentry token --tenant NAME --user NAME --data {}` prints one",
                data.display()
            );
        }
        let state = agentry_api::AppState::new(Some(engine), auth, config.limits.clone())
            .with_sessions(sessions)
            .with_deltas(deltas)
            .with_tools(tools.registry().clone(), tools);
        agentry_api::run(listener, state, shutdown_signal())
            .await
            .context("server failed")?;
        watch.abort();
        node.stop().await;
        eprintln!("agentry: stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// The durable engine on the embedded defaults (SQLite store and queue under `data`), with
/// SQS, the models and the tools as its Task resources; and the sessions service on the same
/// store, filing finished turns into the knowledge index.
async fn open_engine(
    config: &Config,
    data: &Path,
    deltas: agentry_api::Deltas,
) -> anyhow::Result<(
    agentry_engine::Engine,
    agentry_sessions::Sessions,
    std::sync::Arc<agentry_tools::engine::ToolTasks>,
)> {
    let store_url = config.store_url(None, data);
    let queue_url = config.queue_url(None, data);
    let store = agentry_storage::open(&store_url)
        .await
        .with_context(|| format!("cannot open the store at {store_url}"))?;
    let queue = agentry_queue::open(&queue_url)
        .await
        .with_context(|| format!("cannot open the queue at {queue_url}"))?;
    let engine_config = config.engine.clone();
    let mut resources = agentry_engine::ResourceTable::new();
    crate::wiring::create_queues(&*queue, &config.queues).await?;
    agentry_engine::integrations::register_sqs(
        &mut resources,
        queue.clone(),
        [
            engine_config.work_queue.clone(),
            engine_config.task_queue.clone(),
        ],
    );
    let kb = crate::wiring::knowledge(data)?;
    let cache_url = config.cache.as_deref().unwrap_or("memory://");
    let cache = agentry_cache::open(cache_url)
        .await
        .with_context(|| format!("cannot open the cache at {cache_url}"))?;
    let published = crate::wiring::PublishedDeltas::start(cache.clone(), deltas).await?;
    let sessions = agentry_sessions::Sessions::open(store.clone())
        .await
        .context("cannot open the sessions tables")?
        .with_knowledge(std::sync::Arc::new(crate::wiring::FtsKnowledge(kb.clone())))
        .with_cache(cache);
    // The models and tools, behind guards holding session turns to their agent's tools and
    // budgets.
    let llm = std::sync::Arc::new(
        crate::wiring::llm(config.llm.as_ref())
            .await?
            .with_delta_sink(std::sync::Arc::new(published)),
    );
    let mut guarded = agentry_engine::ResourceTable::new();
    agentry_llm::register(&mut guarded, llm.clone());
    // Results by idempotency key, approval requests and the tools tenants registered live on
    // the store, so they outlive a restart.
    let memory = agentry_tools::memory::ItemMemory::new(store.clone())
        .await
        .context("cannot open the tools' table")?;
    let registry = crate::wiring::tools(config, data, &kb, std::sync::Arc::new(memory))?;
    let restored = registry
        .restore()
        .await
        .context("cannot read the registered tools")?;
    if restored > 0 {
        eprintln!("agentry: {restored} registered tools restored");
    }
    let tools = agentry_tools::engine::register(&mut guarded, std::sync::Arc::new(registry));
    crate::wiring::guard_agents(&mut resources, guarded, sessions.clone(), llm);
    let engine = agentry_engine::Engine::open(store, queue, resources, engine_config)
        .await
        .context("cannot start the engine")?;
    tools.connect(std::sync::Arc::new(engine.clone()));
    Ok((engine, sessions, tools))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// A URL as it may be printed: without the password it may carry.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
