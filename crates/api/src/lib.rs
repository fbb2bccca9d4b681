//! The HTTP gateway: where users and programs reach agentry. For now it serves the States
//! Language engine directly: validate a definition, run one state as TestState does, and run a
//! definition to its end in memory as a synchronous Express execution does.
//!
//! Layout:
//! - `lib.rs`: the router, its JSON handlers and [`run`]
//! - `aws`: the Step Functions API in AWS's JSON 1.0 protocol (`X-Amz-Target`)

mod aws;

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agentry_asl::exec::drive::{Runtime, run_to_end};
use agentry_asl::validate::MachineType;
use agentry_asl::{
    Event, ExecutionInfo, FixedHost, Host, StateMachine, TaskRequest, ValidationError,
};
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The longest a synchronous run may take, as for AWS's synchronous Express executions.
pub const SYNC_RUN_LIMIT: Duration = Duration::from_secs(300);

/// What the handlers share: the durable engine, when the gateway runs one.
#[derive(Clone, Default)]
pub struct AppState {
    pub engine: Option<agentry_engine::Engine>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/readyz",
            get(|| async { Json(json!({"status": "ready"})) }),
        )
        .route("/v1/validate", post(validate))
        .route("/v1/test-state", post(test_state))
        .route("/v1/run", post(run_sync))
        .route("/", post(aws::dispatch))
        .with_state(state)
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

/// An error response in AWS's shape: `{"error": code, "cause": message}`.
fn error(status: StatusCode, code: &str, cause: impl Into<String>) -> Response {
    (status, Json(json!({"error": code, "cause": cause.into()}))).into_response()
}

/// Reads a JSON request body whatever its content type says (curl's `-d` sends a form type).
fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            format!("request body: {e}"),
        )
    })
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
            "ValidationException",
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateRequest {
    definition: Value,
    #[serde(rename = "type")]
    machine_type: Option<String>,
}

async fn validate(bytes: Bytes) -> Response {
    let req: ValidateRequest = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TestStateRequest {
    definition: Value,
    state_name: Option<String>,
    input: Option<Value>,
    inspection_level: Option<String>,
    mock: Option<Value>,
    variables: Option<Value>,
    context: Option<Value>,
    state_configuration: Option<Value>,
}

/// JSON given as a value or as text: the text form is what AWS's API carries.
fn as_text(v: Option<Value>) -> Option<String> {
    v.map(|v| match v {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

async fn test_state(bytes: Bytes) -> Response {
    let req: TestStateRequest = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    definition: Value,
    input: Option<Value>,
    name: Option<String>,
}

/// Runs a definition to its end in memory and answers with its result, as StartSyncExecution.
async fn run_sync(bytes: Bytes) -> Response {
    let req: RunRequest = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
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
                    "ValidationException",
                    "execution input is over the limit of 262144 bytes",
                );
            }
            v
        }
    };
    let machine = req.name.unwrap_or_else(|| "run".into());
    match run_express(def, &machine, input, None).await {
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
    machine: &str,
    input: Value,
    name: Option<String>,
) -> Result<agentry_asl::Execution, String> {
    let limit = SYNC_RUN_LIMIT.as_secs();
    def.timeout_seconds = Some(def.timeout_seconds.map_or(limit, |t| t.min(limit)));
    let machine = machine.to_string();
    tokio::task::spawn_blocking(move || {
        let mut rt = WallClock::new();
        let exec_name = name.unwrap_or_else(|| rt.uuid());
        let mut info = ExecutionInfo::local(&machine, &exec_name, rt.now_ms());
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
