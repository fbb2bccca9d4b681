//! Local servers and scripts for the tests.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use agentry_tools::{InvokerSpec, Policy, ToolSpec};

/// Serves `router` on 127.0.0.1 on a free port until the test's runtime ends.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Writes an executable `/bin/sh` script.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A process tool running `command` with a policy reaching no network.
pub fn process_tool(name: &str, command: &Path) -> ToolSpec {
    ToolSpec::new(
        name,
        InvokerSpec::Process {
            command: command.to_path_buf(),
            args: vec![],
        },
    )
    .policy(Policy::default())
}

/// The policy of a tool that may reach servers this test started on 127.0.0.1, and nothing
/// else private.
pub fn local_only() -> Policy {
    Policy::default()
        .allow_hosts(["127.0.0.1"])
        .allow_private(["127.0.0.1/32"])
}
