//! Process tools: a local program run per call in the tool's file-system scope, with a cleared
//! environment plus the variables and secrets its policy declares.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::{function_error, snippet};
use crate::ToolContext;
use crate::error::{Error, Result};

/// How much of stderr is kept for an error's cause.
const STDERR_LIMIT: usize = 16 * 1024;

pub(crate) struct ProcessInvoker {
    tool: String,
    command: PathBuf,
    args: Vec<String>,
}

impl ProcessInvoker {
    pub fn new(tool: &str, command: &Path, args: &[String]) -> Result<Self> {
        let command = if command.components().count() > 1 || command.is_absolute() {
            command.to_path_buf()
        } else {
            // The child's environment is cleared, so find the program on ours now.
            std::env::var_os("PATH")
                .and_then(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(command))
                        .find(|c| c.is_file())
                })
                .ok_or_else(|| {
                    Error::Config(format!(
                        "tool \"{tool}\": program \"{}\" is not on PATH",
                        command.display()
                    ))
                })?
        };
        Ok(Self {
            tool: tool.to_owned(),
            command,
            args: args.to_vec(),
        })
    }

    pub async fn run(&self, event: &Value, cx: &ToolContext<'_>) -> Result<Value> {
        let policy = cx.policy;
        let scratch;
        let workdir = match &policy.working_dir {
            Some(d) => d.clone(),
            None => {
                scratch = Scratch::new()?;
                scratch.0.clone()
            }
        };
        let mut cmd = Command::new(&self.command);
        cmd.args(&self.args)
            .current_dir(&workdir)
            .env_clear()
            .envs(&policy.env)
            .env("AGENTRY_TOOL", cx.tool)
            .env("AWS_LAMBDA_FUNCTION_NAME", cx.tool)
            .env("AGENTRY_TENANT", cx.tenant)
            .env("AGENTRY_IDEMPOTENCY_KEY", cx.idempotency_key)
            .env("AGENTRY_WORKDIR", &workdir)
            .env(
                "AGENTRY_ALLOWED_PATHS",
                std::env::join_paths(std::iter::once(&workdir).chain(&policy.allowed_paths))
                    .unwrap_or_default(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so everything it started ends with it.
            .process_group(0)
            .kill_on_drop(true);
        for s in &policy.secrets {
            if let (Some(var), Some(v)) = (&s.env, cx.secrets.get(&s.name)) {
                cmd.env(var, v);
            }
        }
        let mut child = cmd.spawn().map_err(|e| {
            Error::failed(
                &self.tool,
                format!("cannot start {}: {e}", self.command.display()),
            )
        })?;
        let group = Group(child.id());
        let mut stdin = child.stdin.take().expect("piped");
        let body = serde_json::to_vec(event).expect("json serializes");
        let writer = tokio::spawn(async move {
            // A program that exits without reading its input is not an error of ours.
            let _ = stdin.write_all(&body).await;
            let _ = stdin.shutdown().await;
        });
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let limit = policy.max_output_bytes;
        let (out, err) = tokio::join!(
            read_limited(stdout, limit),
            read_limited(stderr, STDERR_LIMIT)
        );
        let out = out.map_err(|e| Error::failed(&self.tool, format!("reading stdout: {e}")))?;
        if out.len() > limit {
            let _ = child.start_kill();
            return Err(Error::OutputTooLarge {
                tool: self.tool.clone(),
                limit,
            });
        }
        let err = err.unwrap_or_default();
        let status = child
            .wait()
            .await
            .map_err(|e| Error::failed(&self.tool, format!("waiting for the process: {e}")))?;
        // The call is over: whatever the tool left running ends with it.
        drop(group);
        let _ = writer.await;
        let text = String::from_utf8_lossy(&out);
        let stderr = String::from_utf8_lossy(&err);
        let parsed: Option<Value> = serde_json::from_str(text.trim()).ok();
        if let Some(e) = parsed.as_ref().and_then(|v| function_error(&self.tool, v)) {
            return Err(e);
        }
        if !status.success() {
            let how = match status.code() {
                Some(c) => format!("exited with status {c}"),
                None => "was killed by a signal".to_owned(),
            };
            let stderr = stderr.trim();
            return Err(Error::failed(
                &self.tool,
                if stderr.is_empty() {
                    format!("process {how}")
                } else {
                    format!("process {how}: {}", snippet(stderr, 2000))
                },
            ));
        }
        match parsed {
            Some(v) => Ok(v),
            None if text.trim().is_empty() => Err(Error::failed(
                &self.tool,
                "process printed nothing on stdout (expected a JSON result)",
            )),
            None => Err(Error::failed(
                &self.tool,
                format!(
                    "process printed output that is not JSON: {:?}",
                    snippet(text.trim(), 200)
                ),
            )),
        }
    }
}

/// Reads up to `limit + 1` bytes (one more than allowed shows the limit was passed), then
/// stops reading.
async fn read_limited(mut r: impl AsyncRead + Unpin, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() > limit {
            out.truncate(limit + 1);
            return Ok(out);
        }
    }
}

/// A tool's process group, killed when the call ends, times out or is abandoned (dropping the
/// child alone would only kill its first process).
struct Group(Option<u32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: killpg only sends a signal; a group that is gone makes it fail harmlessly.
            unsafe {
                libc::killpg(pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

/// A fresh working directory for one call, removed afterwards.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "agentry-tool-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Unavailable(format!("creating {}: {e}", dir.display())))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
