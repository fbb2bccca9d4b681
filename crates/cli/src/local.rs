//! Commands that work on a definition file with the embedded engine: `validate`, `run` and
//! `test-state`. `run` runs Task states on the models (`[llm]`, or the offline recorded model)
//! and the tools, as `serve` does, without a server. Exit codes: 0 success, 1 the definition is invalid or the execution did not
//! succeed, 2 bad usage or unreadable input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentry_asl::exec::drive::{Runtime, run_to_end_with_text};
use agentry_asl::exec::parse_input;
use agentry_asl::history::HistoryEvent;
use agentry_asl::validate::MachineType;
use agentry_asl::{Event, ExecutionInfo, Host, StateMachine, TaskRequest, ValidationError};
use anyhow::{Context, bail};
use serde_json::{Value, json};

fn read_definition(file: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    if text.len() > 1024 * 1024 {
        bail!(
            "{}: definition is {} bytes, over the limit of 1 MiB",
            file.display(),
            text.len()
        );
    }
    Ok(text)
}

/// JSON text, or `@path` for a file's contents.
fn read_json_arg(name: &str, arg: &str) -> anyhow::Result<String> {
    match arg.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("{name}: cannot read {path}"))
        }
        None => Ok(arg.to_string()),
    }
}

fn machine_type(s: &str) -> anyhow::Result<MachineType> {
    match MachineType::parse(&s.to_ascii_uppercase()) {
        Some(t) => Ok(t),
        None => bail!("--type: expected STANDARD or EXPRESS, got \"{s}\""),
    }
}

/// Parses, validates and builds a definition as CreateStateMachine does.
fn load(text: &str, ty: MachineType) -> Result<StateMachine, ValidationError> {
    agentry_asl::create_text(text, ty)
}

pub fn validate(file: &Path, ty: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    let text = read_definition(file)?;
    let result = load(&text, machine_type(ty)?);
    match (&result, json_out) {
        (Ok(_), true) => println!("{}", json!({"valid": true})),
        (Ok(_), false) => println!("valid"),
        (Err(e), true) => println!(
            "{}",
            json!({"valid": false, "error": e.code, "cause": e.message})
        ),
        (Err(e), false) => println!("{}: {}", e.code, e.message),
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The CLI's runtime: the wall clock (Wait states really wait), with progress on stderr; Task
/// states run on the models and tools when they are given.
struct Local {
    clock: agentry_api::WallClock,
    history: bool,
    tasks: Option<(tokio::runtime::Runtime, agentry_engine::ResourceTable)>,
}

impl Local {
    fn new(history: bool) -> Self {
        Self {
            clock: agentry_api::WallClock::new(),
            history,
            tasks: None,
        }
    }
}

impl Host for Local {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
    fn random(&mut self) -> f64 {
        self.clock.random()
    }
    fn uuid(&mut self) -> String {
        self.clock.uuid()
    }
}

impl Runtime for Local {
    fn sleep_until(&mut self, at_ms: i64) {
        let wait = at_ms - self.now_ms();
        if wait > 0 {
            eprintln!(
                "agentry: waiting {:.1}s (until {})",
                wait as f64 / 1000.0,
                agentry_asl::time::format_rfc3339_ms(at_ms)
            );
        }
        self.clock.sleep_until(at_ms);
    }

    fn invoke(&mut self, req: &TaskRequest) -> Event {
        let Some((rt, table)) = &self.tasks else {
            return self.clock.invoke(req);
        };
        if req.task_token.is_some() {
            return Event::TaskFailed {
                task: req.task,
                error: Some("States.TaskFailed".into()),
                cause: Some(format!(
                    "state \"{}\": `agentry run` cannot wait for a task token ({}); run the machine on `agentry serve`",
                    req.state, req.resource
                )),
            };
        }
        if !self.history {
            eprintln!("agentry:   task {}", req.resource);
        }
        match rt.block_on(table.invoke(req.clone())) {
            Ok(output) => Event::TaskSucceeded {
                task: req.task,
                output,
            },
            Err(e) => Event::TaskFailed {
                task: req.task,
                error: Some(e.error),
                cause: Some(e.cause),
            },
        }
    }

    fn on_event(&mut self, event: &HistoryEvent) {
        if self.history {
            let _ = writeln!(std::io::stderr(), "{}", event.to_aws_json());
        } else if event.kind.ends_with("StateEntered") {
            let name = event
                .details
                .as_ref()
                .and_then(|d| d.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            eprintln!(
                "agentry: {} \"{name}\"",
                event
                    .kind
                    .trim_end_matches("Entered")
                    .replace("State", " state")
            );
        }
    }
}

pub fn run(
    file: &Path,
    input: &str,
    json_out: bool,
    history: bool,
    config: &crate::config::Config,
    data: &Path,
) -> anyhow::Result<ExitCode> {
    let text = read_definition(file)?;
    let def = match load(&text, MachineType::Standard) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("agentry: {}: {}: {}", file.display(), e.code, e.message);
            return Ok(ExitCode::from(1));
        }
    };
    let input_text = read_json_arg("--input", input)?;
    let input = match parse_input(&input_text) {
        Ok(v) => v,
        Err(e) => bail!("--input: {}", e.message),
    };
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("machine");
    let mut rt = Local::new(history);
    if def_has_tasks(&text) {
        let tokio_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let table = tokio_rt.block_on(crate::wiring::local_resources(config, data))?;
        rt.tasks = Some((tokio_rt, table));
    }
    let exec_name = rt.uuid();
    let info = ExecutionInfo::local(name, &exec_name, rt.now_ms());
    let ex = run_to_end_with_text(&def, info, input, Some(&input_text), &mut rt);
    let status = ex.status.as_str();
    if json_out {
        println!(
            "{}",
            json!({"status": status, "output": ex.output, "error": ex.error, "cause": ex.cause})
        );
    } else {
        match &ex.output {
            Some(out) => println!("{}", serde_json::to_string_pretty(out)?),
            None => println!(
                "{status}: {}{}",
                ex.error.as_deref().unwrap_or("(no error)"),
                ex.cause
                    .as_deref()
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default()
            ),
        }
    }
    Ok(if ex.status == agentry_asl::Status::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Whether a definition has Task states (only then are the models and tools set up).
fn def_has_tasks(text: &str) -> bool {
    text.contains("\"Task\"")
}

pub struct TestStateArgs {
    pub file: PathBuf,
    pub state: Option<String>,
    pub input: String,
    pub mock: Option<String>,
    pub variables: Option<String>,
    pub context: Option<String>,
    pub inspection_level: String,
    pub json: bool,
}

pub fn test_state(a: TestStateArgs) -> anyhow::Result<ExitCode> {
    let text = read_definition(&a.file)?;
    let definition: Value = match agentry_asl::definition::parse_text(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("agentry: {}: {}", a.file.display(), e.message);
            return Ok(ExitCode::from(1));
        }
    };
    let mock = match &a.mock {
        Some(m) => Some(
            serde_json::from_str::<Value>(&read_json_arg("--mock", m)?)
                .context("--mock: not JSON")?,
        ),
        None => None,
    };
    let level = a.inspection_level.to_ascii_uppercase();
    if !matches!(level.as_str(), "INFO" | "DEBUG" | "TRACE") {
        bail!(
            "--inspection-level: expected INFO, DEBUG or TRACE, got \"{}\"",
            a.inspection_level
        );
    }
    let req = agentry_asl::test_state::Request {
        definition,
        state_name: a.state,
        input: Some(read_json_arg("--input", &a.input)?),
        inspection_level: Some(level),
        mock,
        variables: a
            .variables
            .as_deref()
            .map(|v| read_json_arg("--variables", v))
            .transpose()?,
        context: a
            .context
            .as_deref()
            .map(|c| read_json_arg("--context", c))
            .transpose()?,
        reveal_secrets: false,
        state_configuration: None,
        info: None,
    };
    let mut host = Local::new(false);
    match agentry_asl::test_state::run(&req, &mut host) {
        Ok(resp) => {
            if a.json {
                let mut v = serde_json::to_value(&resp)?;
                // `output` as the JSON value itself, for scripts.
                if let Some(out) = resp.output.as_deref() {
                    v["output"] = serde_json::from_str(out).unwrap_or(Value::String(out.into()));
                }
                println!("{v}");
            } else {
                println!("{}", resp.status);
                if let Some(o) = &resp.output {
                    println!("output: {o}");
                }
                if let Some(n) = &resp.next_state {
                    println!("next state: {n}");
                }
                if let Some(e) = &resp.error {
                    println!("error: {e}");
                }
                if let Some(c) = &resp.cause {
                    println!("cause: {c}");
                }
            }
            Ok(
                if matches!(resp.status.as_str(), "SUCCEEDED" | "CAUGHT_ERROR") {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                },
            )
        }
        Err(e) => {
            if a.json {
                println!("{}", json!({"error": e.code, "cause": e.message}));
            } else {
                eprintln!("agentry: {}: {}", e.code, e.message);
            }
            Ok(ExitCode::from(1))
        }
    }
}
