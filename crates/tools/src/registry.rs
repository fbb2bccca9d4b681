//! The registry: tools by name (global or owned by a tenant), each call validated against the
//! tool's schemas, run under its policy, measured, remembered by idempotency key, and held
//! for approval when its rule says so.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::approval::{Approval, ApprovalRequest};
use crate::error::{Error, Result, redact};
use crate::invoke::{self, Invoker};
use crate::memory::{Memory, MemoryStore};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::policy::{NetGuard, Policy};
use crate::{Builtin, ToolContext};

/// How a tool is described in configuration (TOML or JSON) and to a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_version")]
    pub version: String,
    /// The tenant owning the tool; `None` for a tool every tenant sees.
    #[serde(default)]
    pub tenant: Option<String>,
    /// JSON Schema of the input (any object when absent).
    #[serde(default = "any_object")]
    pub input_schema: Value,
    /// JSON Schema of the output (unchecked when absent).
    #[serde(default)]
    pub output_schema: Option<Value>,
    pub invoker: InvokerSpec,
    #[serde(default)]
    pub policy: Policy,
    #[serde(default)]
    pub approval: Approval,
}

fn default_version() -> String {
    "1".into()
}

fn any_object() -> Value {
    json!({"type": "object"})
}

impl ToolSpec {
    pub fn new(name: impl Into<String>, invoker: InvokerSpec) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            version: default_version(),
            tenant: None,
            input_schema: any_object(),
            output_schema: None,
            invoker,
            policy: Policy::default(),
            approval: Approval::default(),
        }
    }

    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }

    pub fn input_schema(mut self, schema: Value) -> Self {
        self.input_schema = schema;
        self
    }

    pub fn output_schema(mut self, schema: Value) -> Self {
        self.output_schema = Some(schema);
        self
    }

    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    pub fn approval(mut self, approval: Approval) -> Self {
        self.approval = approval;
        self
    }

    pub fn version(mut self, v: impl Into<String>) -> Self {
        self.version = v.into();
        self
    }
}

/// What runs a tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum InvokerSpec {
    /// A built-in tool added to the registry with [`Registry::add_builtin`].
    Builtin { name: String },
    /// A local process: the event as JSON on stdin, the result as JSON on stdout.
    Process {
        command: PathBuf,
        #[serde(default)]
        args: Vec<String>,
    },
    /// An HTTP endpoint: the event POSTed as JSON, the response body is the result.
    Http {
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
    /// An AWS Lambda function (feature `lambda`).
    Lambda {
        function: String,
        #[serde(default)]
        region: Option<String>,
        #[serde(default)]
        endpoint_url: Option<String>,
    },
}

/// Tools as configured: `[[tools]]` tables plus the secrets they may name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsConfig {
    pub tools: Vec<ToolSpec>,
    /// Secret values by name (normally filled from the environment, not written in a file).
    pub secrets: BTreeMap<String, String>,
}

/// One call of a tool.
#[derive(Clone, Debug)]
pub struct Call {
    pub tool: String,
    pub tenant: String,
    pub input: Value,
    /// The same key for a retry of the same call: its remembered result is returned instead
    /// of running the tool again.
    pub idempotency_key: Option<String>,
    /// Whether a human approved this call (skips the tool's approval rule).
    pub approved: bool,
}

impl Call {
    pub fn new(tool: impl Into<String>, input: Value) -> Self {
        Self {
            tool: tool.into(),
            tenant: crate::DEFAULT_TENANT.into(),
            input,
            idempotency_key: None,
            approved: false,
        }
    }

    pub fn tenant(mut self, t: impl Into<String>) -> Self {
        self.tenant = t.into();
        self
    }

    pub fn key(mut self, k: impl Into<String>) -> Self {
        self.idempotency_key = Some(k.into());
        self
    }

    pub fn approved(mut self) -> Self {
        self.approved = true;
        self
    }
}

/// How a call ended, when it did not fail.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Done(Value),
    /// The tool did not run: a human must approve the call first.
    NeedsApproval(ApprovalRequest),
}

pub(crate) struct Entry {
    pub spec: ToolSpec,
    input: jsonschema::Validator,
    output: Option<jsonschema::Validator>,
    pub invoker: Invoker,
    pub http: crate::HttpAccess,
    /// Secret values by secret name.
    pub secrets: BTreeMap<String, String>,
    /// Every secret value, for redaction.
    pub secret_values: Vec<String>,
}

/// (owning tenant, or `None` for a global tool; name)
type ToolKey = (Option<String>, String);

/// The tools, their metrics and their remembered results.
pub struct Registry {
    tools: RwLock<HashMap<ToolKey, Arc<Entry>>>,
    builtins: RwLock<HashMap<String, Arc<dyn Builtin>>>,
    secrets: RwLock<BTreeMap<String, String>>,
    metrics: Metrics,
    memory: Arc<dyn Memory>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// A registry remembering results and approvals in memory.
    pub fn new() -> Self {
        Self::with_memory(Arc::new(MemoryStore::default()))
    }

    /// A registry remembering results and approvals in `memory` (see
    /// [`crate::memory::ItemMemory`] for one that survives restarts).
    pub fn with_memory(memory: Arc<dyn Memory>) -> Self {
        Self {
            tools: RwLock::default(),
            builtins: RwLock::default(),
            secrets: RwLock::default(),
            metrics: Metrics::default(),
            memory,
        }
    }

    pub(crate) fn memory(&self) -> &Arc<dyn Memory> {
        &self.memory
    }

    /// Adds secret values tools may name in their policies.
    pub fn add_secrets<I: IntoIterator<Item = (K, V)>, K: Into<String>, V: Into<String>>(
        &self,
        secrets: I,
    ) {
        let mut s = self.secrets.write().unwrap();
        for (k, v) in secrets {
            s.insert(k.into(), v.into());
        }
    }

    /// Adds a built-in tool's implementation and registers it as a global tool under its own
    /// spec.
    pub fn add_builtin(&self, tool: Arc<dyn Builtin>) -> Result<()> {
        let spec = tool.spec();
        self.builtins
            .write()
            .unwrap()
            .insert(spec.name.clone(), tool);
        self.register(spec)
    }

    /// Adds a built-in implementation without registering a tool: configuration refers to it
    /// with `invoker = { type = "builtin", name = "..." }`.
    pub fn add_builtin_impl(&self, tool: Arc<dyn Builtin>) {
        let name = tool.spec().name;
        self.builtins.write().unwrap().insert(name, tool);
    }

    /// Registers every tool of a configuration (its secrets first).
    pub fn load(&self, config: &ToolsConfig) -> Result<()> {
        self.add_secrets(config.secrets.clone());
        for t in &config.tools {
            self.register(t.clone())?;
        }
        Ok(())
    }

    /// Registers (or replaces) a tool. Fails naming what is wrong: an invalid schema, an
    /// unknown built-in, a secret nobody provided, a bad network in the policy.
    pub fn register(&self, spec: ToolSpec) -> Result<()> {
        let name = spec.name.clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(Error::Config(format!(
                "tool name \"{name}\" must be letters, digits, '_', '-' or '.'"
            )));
        }
        let compile = |which: &str, s: &Value| {
            jsonschema::validator_for(s).map_err(|e| {
                Error::Config(format!("tool \"{name}\": {which} schema is invalid: {e}"))
            })
        };
        let input = compile("input", &spec.input_schema)?;
        let output = spec
            .output_schema
            .as_ref()
            .map(|s| compile("output", s))
            .transpose()?;
        let known = self.secrets.read().unwrap();
        let mut secrets = BTreeMap::new();
        for r in &spec.policy.secrets {
            let v = known.get(&r.name).ok_or_else(|| {
                Error::Config(format!(
                    "tool \"{name}\": secret \"{}\" is not provided",
                    r.name
                ))
            })?;
            secrets.insert(r.name.clone(), v.clone());
        }
        drop(known);
        let guard = Arc::new(NetGuard::new(&name, &spec.policy)?);
        let http = crate::HttpAccess::new(&name, guard, &spec.policy)?;
        let builtin = match &spec.invoker {
            InvokerSpec::Builtin { name: b } => Some(
                self.builtins
                    .read()
                    .unwrap()
                    .get(b)
                    .cloned()
                    .ok_or_else(|| {
                        Error::Config(format!("tool \"{name}\": no built-in tool named \"{b}\""))
                    })?,
            ),
            _ => None,
        };
        let invoker = Invoker::new(&spec, builtin)?;
        let entry = Entry {
            secret_values: secrets.values().cloned().collect(),
            secrets,
            spec,
            input,
            output,
            invoker,
            http,
        };
        self.tools
            .write()
            .unwrap()
            .insert((entry.spec.tenant.clone(), name), Arc::new(entry));
        Ok(())
    }

    /// Registers a tool as [`Registry::register`] does and remembers it in the registry's
    /// memory, so [`Registry::restore`] registers it again after a restart.
    pub async fn register_saved(&self, spec: ToolSpec) -> Result<()> {
        self.register(spec.clone())?;
        let key = saved_key(spec.tenant.as_deref(), &spec.name);
        let value = serde_json::to_value(&spec).expect("a tool spec serializes");
        self.memory.put(crate::memory::TOOLS, &key, value).await
    }

    /// Removes a tool and forgets it if it was saved; returns whether it existed.
    pub async fn unregister_saved(&self, tenant: Option<&str>, name: &str) -> Result<bool> {
        let existed = self.unregister(tenant, name);
        self.memory
            .delete(crate::memory::TOOLS, &saved_key(tenant, name))
            .await?;
        Ok(existed)
    }

    /// Registers again every tool saved with [`Registry::register_saved`]; returns how many.
    /// A saved tool that no longer registers (a secret gone, say) is skipped with a warning.
    pub async fn restore(&self) -> Result<usize> {
        let mut n = 0;
        for (key, value) in self.memory.list(crate::memory::TOOLS).await? {
            let spec: ToolSpec = match serde_json::from_value(value) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(tool = %key, error = %e, "a saved tool does not parse");
                    continue;
                }
            };
            match self.register(spec) {
                Ok(()) => n += 1,
                Err(e) => tracing::warn!(tool = %key, error = %e, "a saved tool does not register"),
            }
        }
        Ok(n)
    }

    /// Removes a tool; returns whether it existed.
    pub fn unregister(&self, tenant: Option<&str>, name: &str) -> bool {
        self.tools
            .write()
            .unwrap()
            .remove(&(tenant.map(str::to_owned), name.to_owned()))
            .is_some()
    }

    /// The tool registered under exactly this owner (`None`: the global one) and name.
    pub fn get(&self, tenant: Option<&str>, name: &str) -> Option<ToolSpec> {
        self.tools
            .read()
            .unwrap()
            .get(&(tenant.map(str::to_owned), name.to_owned()))
            .map(|e| e.spec.clone())
    }

    /// The tools a tenant sees (its own and the global ones; its own shadow a global one of the
    /// same name), by name.
    pub fn list(&self, tenant: &str) -> Vec<ToolSpec> {
        let tools = self.tools.read().unwrap();
        let mut out: BTreeMap<&str, &ToolSpec> = BTreeMap::new();
        for ((owner, name), e) in tools.iter() {
            match owner {
                None => {
                    out.entry(name).or_insert(&e.spec);
                }
                Some(t) if t == tenant => {
                    out.insert(name, &e.spec);
                }
                Some(_) => {}
            }
        }
        out.into_values().cloned().collect()
    }

    pub(crate) fn find(&self, tenant: &str, name: &str) -> Result<Arc<Entry>> {
        let tools = self.tools.read().unwrap();
        tools
            .get(&(Some(tenant.to_owned()), name.to_owned()))
            .or_else(|| tools.get(&(None, name.to_owned())))
            .cloned()
            .ok_or_else(|| Error::NotFound(name.to_owned()))
    }

    /// The spec of the tool a tenant would call by that name.
    pub fn spec(&self, tenant: &str, name: &str) -> Result<ToolSpec> {
        self.find(tenant, name).map(|e| e.spec.clone())
    }

    /// Calls a tool: checks the input, returns a remembered result for a known idempotency
    /// key, holds the call for approval if the tool's rule says so, runs the tool within its
    /// timeout, checks the output's size and schema, and remembers the result.
    pub async fn call(&self, call: Call) -> Result<Outcome> {
        let started = Instant::now();
        let entry = self.find(&call.tenant, &call.tool)?;
        let result = self.call_entry(&entry, &call).await;
        if !matches!(result, Ok(Outcome::NeedsApproval(_))) {
            self.metrics
                .record(&call.tool, &call.tenant, started.elapsed(), result.is_ok());
        }
        result.map_err(|e| e.redacted(&entry.secret_values))
    }

    /// Calls a tool that must not need approval: [`Outcome::NeedsApproval`] becomes
    /// [`Error::ApprovalRequired`].
    pub async fn invoke(&self, call: Call) -> Result<Value> {
        match self.call(call).await? {
            Outcome::Done(v) => Ok(v),
            Outcome::NeedsApproval(r) => Err(Error::ApprovalRequired {
                tool: r.tool,
                reason: r.reason,
            }),
        }
    }

    async fn call_entry(&self, entry: &Entry, call: &Call) -> Result<Outcome> {
        let name = entry.spec.name.as_str();
        check(&entry.input, &call.input, name, "input")?;
        let memo_key = call
            .idempotency_key
            .as_ref()
            .map(|k| format!("{}/{}/{}", call.tenant, name, k));
        if let Some(k) = &memo_key
            && let Some(v) = self.memory.get(crate::memory::RESULTS, k).await?
        {
            return Ok(Outcome::Done(v));
        }
        if !call.approved
            && let Some(reason) = entry.spec.approval.reason(&call.input)
        {
            return Ok(Outcome::NeedsApproval(ApprovalRequest {
                tool: name.to_owned(),
                tenant: call.tenant.clone(),
                input: call.input.clone(),
                reason,
                idempotency_key: call.idempotency_key.clone(),
            }));
        }
        let cx = ToolContext {
            tool: name,
            tenant: &call.tenant,
            idempotency_key: call.idempotency_key.as_deref().unwrap_or(""),
            policy: &entry.spec.policy,
            http: &entry.http,
            secrets: &entry.secrets,
        };
        let timeout = entry.spec.policy.timeout();
        let output = match tokio::time::timeout(
            timeout,
            invoke::run(&entry.invoker, &call.input, &cx),
        )
        .await
        {
            Ok(r) => r?,
            Err(_) => {
                return Err(Error::Timeout {
                    tool: name.to_owned(),
                    millis: timeout.as_millis() as u64,
                });
            }
        };
        let size = serde_json::to_vec(&output).map(|v| v.len()).unwrap_or(0);
        if size > entry.spec.policy.max_output_bytes {
            return Err(Error::OutputTooLarge {
                tool: name.to_owned(),
                limit: entry.spec.policy.max_output_bytes,
            });
        }
        let output = redact_value(output, &entry.secret_values);
        if let Some(v) = &entry.output {
            check(v, &output, name, "output")?;
        }
        if let Some(k) = &memo_key {
            self.memory
                .put(crate::memory::RESULTS, k, output.clone())
                .await?;
        }
        Ok(Outcome::Done(output))
    }

    /// Calls, errors and latency per tool and tenant.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }
}

/// The key a saved tool is remembered under: `TENANT/NAME`, or `/NAME` for a global one.
fn saved_key(tenant: Option<&str>, name: &str) -> String {
    format!("{}/{name}", tenant.unwrap_or(""))
}

/// Whether `schema` is a JSON Schema the registry accepts for a tool's input or output; the
/// error says what is wrong with it.
pub fn check_schema(schema: &Value) -> std::result::Result<(), String> {
    jsonschema::validator_for(schema)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn check(v: &jsonschema::Validator, doc: &Value, tool: &str, which: &'static str) -> Result<()> {
    if let Some(e) = v.iter_errors(doc).next() {
        let mut pointer = e.instance_path().to_string();
        if let jsonschema::error::ValidationErrorKind::Required { property } = e.kind() {
            pointer.push('/');
            pointer.push_str(property.as_str().unwrap_or_default());
        }
        return Err(Error::SchemaValidation {
            tool: tool.to_owned(),
            which,
            pointer,
            message: e.to_string(),
        });
    }
    Ok(())
}

/// Replaces secret values in every string of a JSON value.
fn redact_value(v: Value, secrets: &[String]) -> Value {
    if secrets.is_empty() {
        return v;
    }
    match v {
        Value::String(s) => Value::String(redact(&s, secrets)),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| redact_value(x, secrets)).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, x)| (redact(&k, secrets), redact_value(x, secrets)))
                .collect(),
        ),
        other => other,
    }
}
