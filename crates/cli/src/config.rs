//! `agentry.toml`: the one config file. Defaults, then the file (`--config FILE`, or
//! `agentry.toml` in the working directory when it exists), then `AGENTRY_*` environment
//! variables, then flags; each component gets its own section.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// Where agentry listens and keeps its data when nothing says otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA: &str = "data";

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub addr: Option<String>,
    /// Where the embedded store, queue and development signing key live.
    pub data: Option<PathBuf>,
    /// The store, by URL: `sqlite://PATH` (default: `agentry.db` in the data directory) or
    /// `postgres://...` (cargo feature `postgres`). Nodes on one store share its executions.
    pub store: Option<String>,
    /// The queues, by URL: `sqlite://PATH` (default: `queue.db` in the data directory) or
    /// `redis://HOST:PORT` (cargo feature `redis`).
    pub queue: Option<String>,
    /// The engine's settings (`[engine]`): tasks run at once per node, timeouts, queue names.
    pub engine: agentry_engine::EngineConfig,
    pub auth: agentry_api::AuthConfig,
    pub limits: agentry_api::LimitsConfig,
    /// The models (`[llm]`); without it, the built-in offline model of the example.
    pub llm: Option<agentry_llm::LlmConfig>,
    /// Tools beside the built-in ones (`[[tools]]`).
    pub tools: Vec<agentry_tools::ToolSpec>,
    /// The search backend of `web_search` (`[search]`).
    pub search: Option<agentry_tools::builtin::SearchConfig>,
    /// The SMTP server of `send_email` (`[email]`); the tool is off without it.
    pub email: Option<agentry_tools::builtin::EmailConfig>,
    /// Queues state machines send to with `sqs:sendMessage`, created at start.
    #[serde(default = "default_queues")]
    pub queues: Vec<String>,
    /// The cache role, where running sessions keep their working context: `memory://`
    /// (default) or `redis://HOST:PORT`.
    pub cache: Option<String>,
}

/// The queues every server has: where agents send notifications, and where work that failed
/// goes for special handling.
pub fn default_queues() -> Vec<String> {
    vec!["notifications".into(), "dead-letters".into()]
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: None,
            data: None,
            store: None,
            queue: None,
            engine: Default::default(),
            auth: Default::default(),
            limits: Default::default(),
            llm: None,
            tools: Vec::new(),
            search: None,
            email: None,
            queues: default_queues(),
            cache: None,
        }
    }
}

impl Config {
    /// Reads `path`, or `./agentry.toml` when no path is given and it exists.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let path = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("agentry.toml")).filter(|p| p.exists()),
        };
        let mut config = match path {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read the config file {}", path.display()))?;
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
        };
        config.apply_env()?;
        Ok(config)
    }

    /// Limits the environment may set without a file.
    fn apply_env(&mut self) -> anyhow::Result<()> {
        if let Ok(v) = std::env::var("AGENTRY_MAX_BODY_BYTES") {
            self.limits.max_body_bytes = v
                .parse()
                .with_context(|| format!("AGENTRY_MAX_BODY_BYTES: \"{v}\" is not a number"))?;
        }
        if let Ok(v) = std::env::var("AGENTRY_REQUESTS_PER_SECOND") {
            self.limits.requests_per_second = v
                .parse()
                .with_context(|| format!("AGENTRY_REQUESTS_PER_SECOND: \"{v}\" is not a number"))?;
        }
        Ok(())
    }

    /// The data directory: flag or `AGENTRY_DATA`, else the file's, else `data`.
    pub fn data_dir(&self, flag: Option<PathBuf>) -> PathBuf {
        flag.or_else(|| self.data.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA))
    }

    /// The store's URL: flag or `AGENTRY_STORE`, else the file's, else SQLite in `data`.
    pub fn store_url(&self, flag: Option<String>, data: &Path) -> String {
        flag.or_else(|| self.store.clone())
            .unwrap_or_else(|| format!("sqlite://{}", data.join("agentry.db").display()))
    }

    /// The queues' URL: flag or `AGENTRY_QUEUE`, else the file's, else SQLite in `data`.
    pub fn queue_url(&self, flag: Option<String>, data: &Path) -> String {
        flag.or_else(|| self.queue.clone())
            .unwrap_or_else(|| format!("sqlite://{}", data.join("queue.db").display()))
    }

    pub fn addr(&self, flag: Option<String>) -> String {
        flag.or_else(|| self.addr.clone())
            .unwrap_or_else(|| DEFAULT_ADDR.to_string())
    }
}

/// A duration such as `90s`, `15m`, `24h` or `7d`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("\"{s}\": expected a number and a unit (s, m, h, d), e.g. 24h"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("\"{s}\": unit must be s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's `agentry.toml` example is a config this build reads.
    #[test]
    fn the_readme_config_example_parses() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("```toml\naddr = ")
            .expect("the README shows an agentry.toml");
        let block = &readme[start + "```toml\n".len()..];
        let block = &block[..block.find("```").expect("the block ends")];
        let c: Config = toml::from_str(block).unwrap_or_else(|e| panic!("README example: {e}"));
        assert_eq!(c.engine.max_running_tasks, 64);
        assert_eq!(c.addr.as_deref(), Some("0.0.0.0:8080"));
    }

    #[test]
    fn durations_and_config_sections() {
        assert_eq!(parse_duration("24h").unwrap().as_secs(), 86400);
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert!(parse_duration("1w").is_err());
        let c: Config = toml::from_str(
            r#"
            addr = "0.0.0.0:9000"
            [auth]
            dev_tokens = false
            [auth.jwks]
            url = "https://example.com/jwks.json"
            issuer = "https://example.com"
            audiences = ["client"]
            [[auth.access_keys]]
            id = "AKID"
            secret = "s"
            tenant = "acme"
            [limits]
            requests_per_second = 5.0
            "#,
        )
        .unwrap();
        assert_eq!(c.addr.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(c.auth.jwks.as_ref().unwrap().tenant_claim, "tenant");
        assert_eq!(c.auth.access_keys[0].tenant, "acme");
        assert_eq!(c.limits.max_body_bytes, 1 << 20);
        assert_eq!(c.queues, ["notifications", "dead-letters"]);
        assert!(c.llm.is_none());
        let c: Config = toml::from_str(
            r#"
            queues = ["jobs"]
            [llm.providers.local]
            kind = "openai"
            base_url = "http://localhost:11434/v1"
            [llm.routes]
            complex = { provider = "local", model = "llama3.1:70b" }
            [[tools]]
            name = "lookup"
            invoker = { type = "http", url = "http://tools.internal/lookup" }
            "#,
        )
        .unwrap();
        assert_eq!(c.queues, ["jobs"]);
        assert_eq!(c.llm.unwrap().routes["complex"].model, "llama3.1:70b");
        assert_eq!(c.tools[0].name, "lookup");
        let e = toml::from_str::<Config>("[limits]\nmax_body = 3\n").unwrap_err();
        assert!(e.to_string().contains("max_body"), "{e}");
    }
}
