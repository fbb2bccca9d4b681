//! The `agentry` binary: configuration, wiring and commands.
//!
//! Layout:
//! - `main.rs`: command-line parsing and dispatch
//! - `config.rs`: `agentry.toml`, environment and flags
//! - `local.rs`: `validate`, `run` and `test-state` on the embedded engine
//! - `serve.rs`: `serve`, the HTTP gateway

mod config;
mod demo;
mod local;
mod serve;
mod wiring;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "agentry",
    version,
    about = "Run agentic AI workflows as Amazon States Language state machines"
)]
struct Cli {
    /// The config file (default: ./agentry.toml when it exists).
    #[arg(long, global = true, env = "AGENTRY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start agentry: the HTTP API on 127.0.0.1:8080, durable executions under ./data.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, env = "AGENTRY_ADDR")]
        addr: Option<String>,
        /// Where the embedded store and queue keep their files [default: data].
        #[arg(long, env = "AGENTRY_DATA")]
        data: Option<PathBuf>,
        /// The store's URL: `postgres://...` shares executions with other nodes
        /// [default: sqlite://DATA/agentry.db].
        #[arg(long, env = "AGENTRY_STORE")]
        store: Option<String>,
        /// The queues' URL: `redis://HOST:PORT` shares work with other nodes
        /// [default: sqlite://DATA/queue.db].
        #[arg(long, env = "AGENTRY_QUEUE")]
        queue: Option<String>,
    },
    /// Print a development token (signed with the data directory's key) for the HTTP API.
    Token {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: String,
        /// The data directory whose signing key signs [default: data].
        #[arg(long, env = "AGENTRY_DATA")]
        data: Option<PathBuf>,
        /// How long the token is valid: 90s, 15m, 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = config::parse_duration)]
        ttl: std::time::Duration,
    },
    /// Check a state machine definition as AWS Step Functions would.
    Validate {
        /// The definition (JSON).
        file: PathBuf,
        /// STANDARD or EXPRESS: some rules differ.
        #[arg(long = "type", default_value = "STANDARD")]
        machine_type: String,
        /// Print `{"valid", "error", "cause"}`.
        #[arg(long)]
        json: bool,
    },
    /// Run a state machine with the embedded engine and print its result.
    Run {
        file: PathBuf,
        /// The execution input: JSON text, or @FILE.
        #[arg(long, default_value = "{}")]
        input: String,
        /// Print `{"status", "output", "error", "cause"}`.
        #[arg(long)]
        json: bool,
        /// Print each history event as it is recorded.
        #[arg(long)]
        history: bool,
        /// Where the tools keep documents and the knowledge index [default: data].
        #[arg(long, env = "AGENTRY_DATA")]
        data: Option<PathBuf>,
    },
    /// Run one state as the TestState API does.
    TestState {
        /// One state's definition, or a whole machine with --state.
        file: PathBuf,
        #[arg(long)]
        state: Option<String>,
        /// JSON text, or @FILE.
        #[arg(long, default_value = "{}")]
        input: String,
        /// `{"result": "<json>"}` or `{"errorOutput": {"error": ..., "cause": ...}}`.
        #[arg(long)]
        mock: Option<String>,
        /// Variables as a JSON object.
        #[arg(long)]
        variables: Option<String>,
        /// A context object as JSON.
        #[arg(long)]
        context: Option<String>,
        #[arg(long, default_value = "INFO")]
        inspection_level: String,
        /// Print the response as JSON (the default is a short summary).
        #[arg(long)]
        json: bool,
    },
    /// Run an example agent end to end against a running `agentry serve`.
    Demo {
        /// The example: pricing-research.
        example: String,
        /// The server [default: http:// and the config's address].
        #[arg(long, env = "AGENTRY_URL")]
        url: Option<String>,
        /// A Bearer token [default: a development token signed with the data directory's key].
        #[arg(long, env = "AGENTRY_TOKEN")]
        token: Option<String>,
        /// The server's data directory, for the development token [default: data].
        #[arg(long, env = "AGENTRY_DATA")]
        data: Option<PathBuf>,
        #[arg(long, default_value = "default")]
        tenant: String,
        #[arg(long, default_value = "demo")]
        user: String,
        /// What to ask the agent.
        #[arg(
            long,
            default_value = "Research competitive pricing for our new product and create a summary report"
        )]
        message: String,
        /// How long a page fetch may take before its source goes to the dead-letter queue.
        #[arg(long, default_value = "3")]
        fetch_timeout: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            addr,
            data,
            store,
            queue,
        } => config::Config::load(cli.config.as_deref()).and_then(|mut c| {
            c.store = store.or(c.store);
            c.queue = queue.or(c.queue);
            serve::serve(c, addr, data)
        }),
        Command::Token {
            tenant,
            user,
            data,
            ttl,
        } => config::Config::load(cli.config.as_deref())
            .and_then(|c| serve::token(&c, data, &tenant, &user, ttl)),
        Command::Demo {
            example,
            url,
            token,
            data,
            tenant,
            user,
            message,
            fetch_timeout,
        } => config::Config::load(cli.config.as_deref()).and_then(|c| {
            if example != demo::NAME {
                anyhow::bail!(
                    "unknown example {example:?}: the examples are {}",
                    demo::NAME
                );
            }
            let token = match token {
                Some(t) => t,
                None => serve::issue_token(
                    &c,
                    data,
                    &tenant,
                    &user,
                    std::time::Duration::from_secs(3600),
                )?,
            };
            demo::run(demo::DemoArgs {
                url: url.unwrap_or_else(|| format!("http://{}", c.addr(None))),
                token,
                message,
                fetch_timeout,
            })
        }),
        Command::Validate {
            file,
            machine_type,
            json,
        } => local::validate(&file, &machine_type, json),
        Command::Run {
            file,
            input,
            json,
            history,
            data,
        } => config::Config::load(cli.config.as_deref()).and_then(|c| {
            let data = c.data_dir(data);
            local::run(&file, &input, json, history, &c, &data)
        }),
        Command::TestState {
            file,
            state,
            input,
            mock,
            variables,
            context,
            inspection_level,
            json,
        } => local::test_state(local::TestStateArgs {
            file,
            state,
            input,
            mock,
            variables,
            context,
            inspection_level,
            json,
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("agentry: {e:#}");
            ExitCode::from(2)
        }
    }
}
