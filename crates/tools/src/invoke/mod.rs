//! Invokers: what runs a tool once the registry has checked the call. Built-in tools run in
//! the process; process tools follow Lambda's handler convention (the event as JSON on stdin,
//! the result as JSON on stdout, `{"errorType", "errorMessage"}` for a failure the function
//! reports itself); HTTP tools receive the event as a JSON POST; Lambda tools are invoked
//! through the AWS SDK (feature `lambda`).

pub mod http;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod process;

use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::registry::{InvokerSpec, ToolSpec};
use crate::{Builtin, ToolContext};

pub(crate) enum Invoker {
    Builtin(Arc<dyn Builtin>),
    Process(process::ProcessInvoker),
    Http(http::HttpInvoker),
    #[cfg(feature = "lambda")]
    Lambda(lambda::LambdaInvoker),
}

impl Invoker {
    pub fn new(spec: &ToolSpec, builtin: Option<Arc<dyn Builtin>>) -> Result<Self> {
        Ok(match &spec.invoker {
            InvokerSpec::Builtin { .. } => {
                Invoker::Builtin(builtin.expect("the registry resolves built-ins"))
            }
            InvokerSpec::Process { command, args } => {
                Invoker::Process(process::ProcessInvoker::new(&spec.name, command, args)?)
            }
            InvokerSpec::Http { url, headers } => {
                Invoker::Http(http::HttpInvoker::new(&spec.name, url, headers)?)
            }
            #[cfg(feature = "lambda")]
            InvokerSpec::Lambda {
                function,
                region,
                endpoint_url,
            } => Invoker::Lambda(lambda::LambdaInvoker::new(
                function,
                region.clone(),
                endpoint_url.clone(),
            )),
            #[cfg(not(feature = "lambda"))]
            InvokerSpec::Lambda { .. } => {
                return Err(Error::Config(format!(
                    "tool \"{}\": Lambda tools are not supported in this build (feature \"lambda\")",
                    spec.name
                )));
            }
        })
    }
}

pub(crate) async fn run(invoker: &Invoker, input: &Value, cx: &ToolContext<'_>) -> Result<Value> {
    match invoker {
        Invoker::Builtin(b) => b.call(input.clone(), cx).await,
        Invoker::Process(p) => p.run(input, cx).await,
        Invoker::Http(h) => h.run(input, cx).await,
        #[cfg(feature = "lambda")]
        Invoker::Lambda(l) => l.run(input, cx).await,
    }
}

/// A function's own error report (`{"errorType": ..., "errorMessage": ...}`), if `v` is one.
pub(crate) fn function_error(tool: &str, v: &Value) -> Option<Error> {
    let o = v.as_object()?;
    let message = o.get("errorMessage")?;
    let error_type = o
        .get("errorType")
        .and_then(Value::as_str)
        .unwrap_or("Tools.Failed");
    Some(Error::Function {
        tool: tool.to_owned(),
        error_type: error_type.to_owned(),
        message: match message {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    })
}

/// At most `n` characters of `s`, marked when cut.
pub(crate) fn snippet(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
