//! The network policy: every non-public destination refused, before DNS (literal addresses),
//! after DNS (names resolving to private addresses) and on every redirect, with a clear
//! `Tools.Forbidden`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use agentry_tools::builtin::WebFetch;
use agentry_tools::{Builtin, Call, Policy, Registry, ToolSpec};
use axum::response::{Html, Redirect};
use axum::routing::get;
use serde_json::json;

use crate::support::serve;

/// The `web_fetch` tool under another name and policy.
fn fetcher(name: &str, policy: Policy) -> ToolSpec {
    let mut s = WebFetch.spec().policy(policy);
    s.name = name.into();
    s
}

async fn registry() -> Registry {
    let r = Registry::new();
    r.add_builtin(Arc::new(WebFetch)).unwrap();
    r
}

async fn forbidden(r: &Registry, tool: &str, url: &str) -> String {
    let e = r
        .invoke(Call::new(tool, json!({"url": url})))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Tools.Forbidden", "{url}: {e}");
    e.to_string()
}

#[tokio::test]
async fn non_public_destinations_are_refused() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let addr = serve(axum::Router::new().route(
        "/",
        get(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { Html("<title>secret</title>") }
        }),
    ))
    .await;
    let port = addr.port();
    // The default web_fetch policy: any public host, no private network.
    let r = registry().await;
    for (url, why) in [
        (format!("http://127.0.0.1:{port}/"), "loopback"),
        (format!("http://[::1]:{port}/"), "loopback"),
        (format!("http://[::ffff:127.0.0.1]:{port}/"), "loopback"),
        (format!("http://[::ffff:7f00:1]:{port}/"), "loopback"),
        (format!("http://[64:ff9b::127.0.0.1]:{port}/"), "loopback"),
        ("http://[fd00::1]/".into(), "unique local"),
        ("http://[fe80::1]/".into(), "link-local"),
        ("http://10.0.0.1/".into(), "private"),
        ("http://172.16.5.4/".into(), "private"),
        ("http://192.168.1.1/".into(), "private"),
        ("http://100.64.0.1/".into(), "CGNAT"),
        (
            "http://169.254.169.254/latest/meta-data/".into(),
            "metadata",
        ),
        ("http://0.0.0.0/".into(), "unspecified"),
        ("http://2130706433/".into(), "loopback"),
        ("http://0x7f.1/".into(), "loopback"),
        ("http://224.0.0.1/".into(), "multicast"),
    ] {
        let m = forbidden(&r, "web_fetch", &url).await;
        assert!(m.contains(why), "{url}: {m}");
    }
    // A name resolving to a private address is refused after resolution.
    let m = forbidden(&r, "web_fetch", &format!("http://localhost:{port}/")).await;
    assert!(
        m.contains("localhost resolves to a forbidden address"),
        "{m}"
    );
    // Not HTTP at all.
    let e = r
        .invoke(Call::new("web_fetch", json!({"url": "file:///etc/passwd"})))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Tools.SchemaValidation");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a refused request reached the server"
    );

    // The same server is reachable once the tool may reach exactly that address...
    r.register(fetcher(
        "local",
        Policy::default()
            .allow_hosts(["*"])
            .allow_private(["127.0.0.1/32"]),
    ))
    .unwrap();
    let ok = r
        .invoke(Call::new(
            "local",
            json!({"url": format!("http://127.0.0.1:{port}/")}),
        ))
        .await
        .unwrap();
    assert_eq!(ok["title"], json!("secret"));
    // ...and `localhost` then connects to its allowed IPv4 address, its ::1 being filtered out.
    r.invoke(Call::new(
        "local",
        json!({"url": format!("http://localhost:{port}/")}),
    ))
    .await
    .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // Other private addresses stay refused.
    let m = forbidden(&r, "local", &format!("http://127.0.0.2:{port}/")).await;
    assert!(m.contains("127.0.0.2"), "{m}");
    forbidden(&r, "local", &format!("http://[::1]:{port}/")).await;
    // A tool with no network access at all.
    r.register(fetcher("offline", Policy::default())).unwrap();
    let m = forbidden(&r, "offline", "http://example.com/").await;
    assert!(m.contains("allows no network access"), "{m}");
    r.register(fetcher(
        "narrow",
        Policy::default().allow_hosts(["docs.example.com"]),
    ))
    .unwrap();
    let m = forbidden(&r, "narrow", "http://example.com/").await;
    assert!(m.contains("not on the tool's allow-list"), "{m}");
}

#[tokio::test]
async fn every_redirect_is_checked_again() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let target = serve(axum::Router::new().route(
        "/inside",
        get(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { Html("<title>inside</title>") }
        }),
    ))
    .await;
    let tp = target.port();
    let app = axum::Router::new()
        .route("/to-metadata", get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }))
        .route("/to-v6-loopback", get(move || async move { Redirect::temporary(&format!("http://[::1]:{tp}/inside")) }))
        .route("/to-mapped", get(move || async move { Redirect::temporary(&format!("http://[::ffff:127.0.0.1]:{tp}/inside")) }))
        .route("/to-localhost-name", get(move || async move { Redirect::temporary(&format!("http://localhost:{tp}/inside")) }))
        .route("/to-file", get(|| async { Redirect::temporary("file:///etc/passwd") }))
        .route("/ok", get(move || async move { Redirect::temporary(&format!("http://127.0.0.1:{tp}/inside")) }))
        .route("/loop", get(|| async { Redirect::temporary("/loop") }));
    let addr = serve(app).await;
    let r = registry().await;
    // Private access for exactly 127.0.0.1: any host on the allow-list, so only the address
    // rules can refuse.
    r.register(fetcher(
        "open",
        Policy::default()
            .allow_hosts(["*"])
            .allow_private(["127.0.0.1/32"]),
    ))
    .unwrap();
    // Only 127.0.0.1 by name as well.
    r.register(fetcher(
        "pinned",
        Policy::default()
            .allow_hosts(["127.0.0.1"])
            .allow_private(["127.0.0.1/32"]),
    ))
    .unwrap();
    let url = |p: &str| format!("http://{addr}{p}");
    let m = forbidden(&r, "open", &url("/to-metadata")).await;
    assert!(
        m.contains("169.254.169.254") && m.contains("link-local"),
        "{m}"
    );
    let m = forbidden(&r, "open", &url("/to-v6-loopback")).await;
    assert!(m.contains("::1"), "{m}");
    let m = forbidden(&r, "pinned", &url("/to-metadata")).await;
    assert!(m.contains("not on the tool's allow-list"), "{m}");
    let m = forbidden(&r, "pinned", &url("/to-localhost-name")).await;
    assert!(
        m.contains("localhost is not on the tool's allow-list"),
        "{m}"
    );
    let m = forbidden(&r, "pinned", &url("/to-mapped")).await;
    assert!(m.contains("allow-list"), "{m}");
    let m = forbidden(&r, "open", &url("/to-file")).await;
    assert!(m.contains("scheme \"file\""), "{m}");
    let m = forbidden(&r, "open", &url("/loop")).await;
    assert!(m.contains("more than 10 redirects"), "{m}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a refused redirect reached its target"
    );
    let ok = r
        .invoke(Call::new("pinned", json!({"url": url("/ok")})))
        .await
        .unwrap();
    assert_eq!(ok["title"], json!("inside"));
    assert_eq!(ok["url"], json!(format!("http://127.0.0.1:{tp}/inside")));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
