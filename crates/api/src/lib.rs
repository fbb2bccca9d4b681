//! The HTTP gateway: where users and programs reach agentry. Every request but the probes and
//! the OpenAPI document is authenticated (Bearer JWT, or SigV4 on the AWS protocol endpoint),
//! rate-limited per tenant, and served from the engine's handle on the tenant's account.
//!
//! Layout:
//! - `lib.rs`: [`AppState`], the router, [`run`], and the in-memory runs (`/v1/run`,
//!   `/v1/validate`, `/v1/test-state`)
//! - `config`: the gateway's section of `agentry.toml`
//! - `auth`: Bearer tokens (development key, JWKS) and SigV4
//! - `gate`: the middleware that authenticates, rate-limits and bounds request bodies
//! - `tenant`: tenants, principals and their accounts
//! - `limits`: the per-tenant token bucket
//! - `error`: the JSON API's errors and its body extractor
//! - `v1`: the JSON API over the engine (state machines, executions, task tokens, live events)
//!   and over the sessions service (agents, profiles, sessions, knowledge)
//! - `openapi`: the OpenAPI 3.1 document, generated from the routes
//! - `aws`: the Step Functions API in AWS's JSON 1.0 protocol (`X-Amz-Target`)
//! - `time`: RFC 3339 and SigV4 dates

pub mod auth;
mod aws;
pub mod config;
pub mod error;
mod gate;
pub mod limits;
mod openapi;
pub mod tenant;
mod time;
pub mod v1;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agentry_asl::exec::drive::{Runtime, run_to_end};
use agentry_asl::validate::MachineType;
use agentry_asl::{
    Event, ExecutionInfo, FixedHost, Host, StateMachine, TaskRequest, ValidationError,
};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub use auth::{Auth, DevKey};
pub use config::{AuthConfig, GatewayConfig, LimitsConfig};
use error::{ApiError, JsonBody};
pub use tenant::Principal;

/// The longest a synchronous run may take, as for AWS's synchronous Express executions.
pub const SYNC_RUN_LIMIT: Duration = Duration::from_secs(300);

/// What the handlers share: the durable engine (when the gateway runs one), who may call, and
/// the limits.
#[derive(Clone)]
pub struct AppState {
    pub engine: Option<agentry_engine::Engine>,
    /// Agents, profiles and sessions (the `/v1/agents`, `/v1/sessions` routes), when served.
    pub sessions: Option<agentry_sessions::Sessions>,
    /// Model output as it streams, by execution ARN (for the session event streams).
    pub deltas: Option<Deltas>,
    /// The tool registry and the engine's tool resources (the `/v1/tools`, `/v1/approvals`
    /// routes), when served.
    pub tools: Option<Tools>,
    pub gateway: Arc<Gateway>,
}

/// The tools a gateway serves: the registry, and the engine resources that call its tools
/// and hold calls waiting for approval.
#[derive(Clone)]
pub struct Tools {
    pub registry: Arc<agentry_tools::Registry>,
    pub tasks: Arc<agentry_tools::engine::ToolTasks>,
}

/// Pieces of model output as they stream on this node: `(execution ARN, {"text": ...})`.
pub type Deltas = tokio::sync::broadcast::Sender<(String, Value)>;

/// The gateway's own parts, built once from its config.
pub struct Gateway {
    pub auth: Auth,
    pub limits: LimitsConfig,
    pub rate: limits::RateLimiter,
}

impl AppState {
    pub fn new(engine: Option<agentry_engine::Engine>, auth: Auth, limits: LimitsConfig) -> Self {
        let rate = limits::RateLimiter::new(limits.requests_per_second, limits.burst);
        Self {
            engine,
            sessions: None,
            deltas: None,
            tools: None,
            gateway: Arc::new(Gateway { auth, limits, rate }),
        }
    }

    /// Serves agents and sessions from `sessions`.
    pub fn with_sessions(mut self, sessions: agentry_sessions::Sessions) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// Sends the model output that `deltas` carries to the session event streams.
    pub fn with_deltas(mut self, deltas: Deltas) -> Self {
        self.deltas = Some(deltas);
        self
    }

    /// Serves the tools of `registry` and the approvals of the calls `tasks` holds; every
    /// caller's account is bound to its tenant, so its executions call its tools.
    pub fn with_tools(
        mut self,
        registry: Arc<agentry_tools::Registry>,
        tasks: Arc<agentry_tools::engine::ToolTasks>,
    ) -> Self {
        self.tools = Some(Tools { registry, tasks });
        self
    }

    /// The tools, or 503 when this server serves none.
    pub fn tools(&self) -> Result<&Tools, ApiError> {
        self.tools.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ToolsUnavailable",
                "this server serves no tools",
            )
        })
    }

    /// The sessions service, or 503 when this server runs none.
    pub fn sessions(&self) -> Result<&agentry_sessions::Sessions, ApiError> {
        self.sessions.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SessionsUnavailable",
                "this server runs no sessions service",
            )
        })
    }

    /// The engine's handle on the principal's account: everything created, listed or looked
    /// up through it belongs to that account, and other accounts' ids do not exist for it.
    pub fn engine_for(&self, principal: &Principal) -> Result<agentry_engine::Engine, ApiError> {
        let engine = self.engine.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "EngineUnavailable",
                "this server runs no durable engine",
            )
        })?;
        Ok(engine.for_account(&principal.account)?)
    }
}

/// The gateway's routes and OpenAPI document.
pub fn router(state: AppState) -> Router {
    let (v1, doc) = v1::routes().split_for_parts();
    let doc = Arc::new(openapi::finish(doc));
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/readyz",
            get(|| async { Json(json!({"status": "ready"})) }),
        )
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .route("/", axum::routing::post(aws::dispatch))
        .merge(v1)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "NotFound", "no such route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::gate,
        ))
        .with_state(state)
}

/// The OpenAPI document of the JSON API.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(v1::routes().split_for_parts().1)
}

/// Serves until `shutdown` completes; requests in flight finish first.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    ApiError::new(status, code, message).into_response()
}

/// A definition given as a JSON object or as JSON text (as AWS's API takes it).
fn definition_value(v: &Value) -> Result<Value, ValidationError> {
    match v {
        Value::String(text) => agentry_asl::definition::parse_text(text),
        other => Ok(other.clone()),
    }
}

fn machine_type(t: Option<&str>) -> Result<MachineType, Response> {
    let t = t.unwrap_or("STANDARD");
    MachineType::parse(t).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            format!("field \"type\": expected STANDARD or EXPRESS, got \"{t}\""),
        )
    })
}

fn load(definition: &Value, ty: MachineType) -> Result<StateMachine, ValidationError> {
    match definition {
        Value::String(text) => agentry_asl::create_text(text, ty),
        other => agentry_asl::create(other, ty),
    }
}

/// A definition to check.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidateRequest {
    /// The definition, as a JSON object or as JSON text.
    #[schema(value_type = Object)]
    definition: Value,
    /// `STANDARD` (default) or `EXPRESS`.
    #[serde(rename = "type")]
    machine_type: Option<String>,
}

/// Checks a definition as ValidateStateMachineDefinition does.
#[utoipa::path(post, path = "/v1/validate", tag = "definitions", request_body = ValidateRequest,
    responses((status = 200, description = "`{\"valid\": true}` or `{\"valid\": false, \"error\", \"cause\"}`"),
        (status = 400, body = error::ErrorBody)))]
pub(crate) async fn validate(JsonBody(req): JsonBody<ValidateRequest>) -> Response {
    let ty = match machine_type(req.machine_type.as_deref()) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match load(&req.definition, ty) {
        Ok(_) => Json(json!({"valid": true})).into_response(),
        Err(e) => {
            Json(json!({"valid": false, "error": e.code, "cause": e.message})).into_response()
        }
    }
}

/// One state to run as AWS's TestState does.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct TestStateRequest {
    /// One state's definition, or a whole machine with `stateName`.
    #[schema(value_type = Object)]
    definition: Value,
    state_name: Option<String>,
    #[schema(value_type = Option<Object>)]
    input: Option<Value>,
    inspection_level: Option<String>,
    #[schema(value_type = Option<Object>)]
    mock: Option<Value>,
    #[schema(value_type = Option<Object>)]
    variables: Option<Value>,
    #[schema(value_type = Option<Object>)]
    context: Option<Value>,
    #[schema(value_type = Option<Object>)]
    state_configuration: Option<Value>,
}

/// JSON given as a value or as text: the text form is what AWS's API carries.
fn as_text(v: Option<Value>) -> Option<String> {
    v.map(|v| match v {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// Runs one state as AWS's TestState API does.
#[utoipa::path(post, path = "/v1/test-state", tag = "definitions", request_body = TestStateRequest,
    responses((status = 200, description = "TestState's answer"), (status = 400, body = error::ErrorBody)))]
pub(crate) async fn test_state(JsonBody(req): JsonBody<TestStateRequest>) -> Response {
    let definition = match definition_value(&req.definition) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.code, e.message),
    };
    let request = agentry_asl::test_state::Request {
        definition,
        state_name: req.state_name,
        input: as_text(req.input),
        inspection_level: req.inspection_level,
        mock: req.mock,
        variables: as_text(req.variables),
        context: as_text(req.context),
        reveal_secrets: false,
        state_configuration: req.state_configuration,
        info: None,
    };
    let mut host = WallClock::new();
    match agentry_asl::test_state::run(&request, &mut host) {
        Ok(resp) => Json(resp).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, &e.code, e.message),
    }
}

/// A definition to run to its end in memory.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunRequest {
    #[schema(value_type = Object)]
    definition: Value,
    #[schema(value_type = Option<Object>)]
    input: Option<Value>,
    name: Option<String>,
}

/// Runs a definition to its end in memory and answers with its result, as StartSyncExecution.
#[utoipa::path(post, path = "/v1/run", tag = "definitions", request_body = RunRequest,
    responses((status = 200, description = "`{executionArn, status, output, error, cause}`"),
        (status = 400, body = error::ErrorBody)))]
pub(crate) async fn run_sync(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    JsonBody(req): JsonBody<RunRequest>,
) -> Response {
    let def = match load(&req.definition, MachineType::Express) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.code, e.message),
    };
    let input = match req.input {
        None => json!({}),
        Some(Value::String(text)) => match agentry_asl::exec::parse_input(&text) {
            Ok(v) => v,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.code, e.message),
        },
        Some(v) => {
            if v.to_string().len() > agentry_asl::exec::MAX_PAYLOAD_BYTES {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ValidationError",
                    "execution input is over the limit of 262144 bytes",
                );
            }
            v
        }
    };
    let machine = req.name.unwrap_or_else(|| "run".into());
    // ARNs in the region the engine names, when the gateway runs one.
    let region = state.engine.as_ref().map_or("local", |e| e.region());
    let scope = (region, principal.account.as_str());
    match run_express(def, scope, &machine, input, None).await {
        Ok(ex) => Json(json!({
            "executionArn": ex.info.execution_arn,
            "status": ex.status.as_str(),
            "output": ex.output,
            "error": ex.error,
            "cause": ex.cause,
        }))
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e),
    }
}

/// Runs an Express execution to its end in memory, on a blocking thread (Wait states sleep),
/// ending TIMED_OUT at [`SYNC_RUN_LIMIT`] whatever the definition allows. `name` defaults to
/// a fresh id.
pub(crate) async fn run_express(
    mut def: StateMachine,
    (region, account): (&str, &str),
    machine: &str,
    input: Value,
    name: Option<String>,
) -> Result<agentry_asl::Execution, String> {
    let limit = SYNC_RUN_LIMIT.as_secs();
    def.timeout_seconds = Some(def.timeout_seconds.map_or(limit, |t| t.min(limit)));
    let (region, account, machine) = (region.to_string(), account.to_string(), machine.to_string());
    tokio::task::spawn_blocking(move || {
        let mut rt = WallClock::new();
        let exec_name = name.unwrap_or_else(|| rt.uuid());
        let mut info = ExecutionInfo::new(&region, &account, &machine, &exec_name, rt.now_ms());
        info.express = true;
        info.execution_arn = info.execution_arn.replace(":execution:", ":express:");
        run_to_end(&def, info, input, &mut rt)
    })
    .await
    .map_err(|e| format!("execution thread failed: {e}"))
}

/// The real clock for local runs: Wait states sleep, and tasks fail naming their resource
/// until the engine's integrations are wired in.
pub struct WallClock {
    rng: FixedHost,
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

impl WallClock {
    pub fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Self {
            rng: FixedHost::new(0, nanos),
        }
    }
}

impl Host for WallClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
    fn random(&mut self) -> f64 {
        self.rng.random()
    }
    fn uuid(&mut self) -> String {
        self.rng.uuid()
    }
}

impl Runtime for WallClock {
    fn sleep_until(&mut self, at_ms: i64) {
        let wait = at_ms - self.now_ms();
        if wait > 0 {
            std::thread::sleep(Duration::from_millis(wait as u64));
        }
    }

    fn invoke(&mut self, req: &TaskRequest) -> Event {
        Event::TaskFailed {
            task: req.task,
            error: Some("States.TaskFailed".into()),
            cause: Some(format!(
                "state \"{}\": resource \"{}\" is not available in this runtime",
                req.state, req.resource
            )),
        }
    }
}
