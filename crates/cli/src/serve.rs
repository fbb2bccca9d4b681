//! `agentry serve`: the gateway on a socket, stopped cleanly by Ctrl-C or SIGTERM.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

pub fn serve(addr: &str, data: &Path) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        std::fs::create_dir_all(data)
            .with_context(|| format!("cannot create the data directory {}", data.display()))?;
        let engine = open_engine(data).await?;
        let node = engine.run();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        eprintln!(
            "agentry: listening on http://{local} (data in {})",
            data.display()
        );
        let state = agentry_api::AppState {
            engine: Some(engine),
        };
        agentry_api::run(listener, state, shutdown_signal())
            .await
            .context("server failed")?;
        node.stop().await;
        eprintln!("agentry: stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// The durable engine on the embedded defaults: SQLite store and queue under `data`.
async fn open_engine(data: &Path) -> anyhow::Result<agentry_engine::Engine> {
    let store_url = format!("sqlite://{}", data.join("agentry.db").display());
    let queue_url = format!("sqlite://{}", data.join("queue.db").display());
    let store = agentry_storage::open(&store_url)
        .await
        .with_context(|| format!("cannot open the store at {store_url}"))?;
    let queue = agentry_queue::open(&queue_url)
        .await
        .with_context(|| format!("cannot open the queue at {queue_url}"))?;
    let config = agentry_engine::EngineConfig::default();
    let mut resources = agentry_engine::ResourceTable::new();
    agentry_engine::integrations::register_sqs(
        &mut resources,
        queue.clone(),
        [config.work_queue.clone(), config.task_queue.clone()],
    );
    agentry_engine::Engine::open(store, queue, resources, config)
        .await
        .context("cannot start the engine")
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
