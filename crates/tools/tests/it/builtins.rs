//! The built-in tools, each against servers the test starts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use agentry_tools::builtin::{
    CreateDocument, DataAnalysis, EmailConfig, KnowledgeAdd, KnowledgeBase, KnowledgeSearch,
    SearchConfig, SendEmail, WebFetch, WebSearch,
};
use agentry_tools::{Builtin, Call, Outcome, Registry, SecretRef};
use axum::Json;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::{local_only, serve};

fn local(tool: &dyn Builtin) -> agentry_tools::ToolSpec {
    let spec = tool.spec();
    let policy = agentry_tools::Policy {
        timeout_ms: spec.policy.timeout_ms,
        max_output_bytes: spec.policy.max_output_bytes,
        ..local_only()
    };
    spec.policy(policy)
}

const PAGE: &str = r#"<!DOCTYPE html><html><head><title> Competitor   pricing </title>
<script>var secret = "do not read";</script><style>.x { color: red }</style></head>
<body><nav><a href="/home">Home</a></nav>
<h1>Competitor prices</h1>
<p>The Widget costs <b>$10</b> at Acme,
   while Globex asks more.</p>
<a href="other.html#section">Other page</a> <a href="https://example.org/x">External</a>
<a href="mailto:sales@acme.test">Mail</a> <a href="javascript:void(0)">Nothing</a>
<table><thead><tr><th>Product</th><th>Price</th></tr></thead>
<tbody><tr><td>Widget</td><td>10</td></tr><tr><td>Gadget <i>Pro</i></td><td>25</td></tr></tbody></table>
<script>alert("hidden")</script></body></html>"#;

#[tokio::test]
async fn web_fetch_returns_text_title_absolute_links_and_tables() {
    let addr = serve(
        axum::Router::new()
            .route("/dir/page.html", get(|| async { Html(PAGE) }))
            .route("/plain", get(|| async { "just text" }))
            .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "no") }))
            .route("/huge", get(|| async { Html("<p>x</p>".repeat(200_000)) })),
    )
    .await;
    let r = Registry::new();
    let mut spec = local(&WebFetch);
    spec.policy.max_output_bytes = 1 << 20;
    r.add_builtin_impl(Arc::new(WebFetch));
    r.register(spec).unwrap();
    let out = r
        .invoke(Call::new(
            "web_fetch",
            json!({"url": format!("http://{addr}/dir/page.html")}),
        ))
        .await
        .unwrap();
    assert_eq!(out["status"], json!(200));
    assert_eq!(out["title"], json!("Competitor pricing"));
    let text = out["text"].as_str().unwrap();
    assert!(
        text.contains("Competitor prices\nThe Widget costs $10 at Acme, while Globex asks more."),
        "{text}"
    );
    assert!(
        !text.contains("do not read") && !text.contains("hidden") && !text.contains("color"),
        "{text}"
    );
    let links: Vec<&str> = out["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        links,
        [
            format!("http://{addr}/home"),
            format!("http://{addr}/dir/other.html"),
            "https://example.org/x".to_string()
        ]
    );
    assert_eq!(out["links"][1]["text"], json!("Other page"));
    assert_eq!(
        out["tables"],
        json!([[["Product", "Price"], ["Widget", "10"], ["Gadget Pro", "25"]]])
    );
    let plain = r
        .invoke(Call::new(
            "web_fetch",
            json!({"url": format!("http://{addr}/plain")}),
        ))
        .await
        .unwrap();
    assert_eq!(plain["text"], json!("just text"));
    let e = r
        .invoke(Call::new(
            "web_fetch",
            json!({"url": format!("http://{addr}/missing")}),
        ))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 404"), "{e}");
    let e = r
        .invoke(Call::new(
            "web_fetch",
            json!({"url": format!("http://{addr}/huge")}),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Tools.OutputTooLarge");
}

#[tokio::test]
async fn web_search_through_searxng_and_a_configured_api() {
    // SearXNG's JSON API: `format=json` must be enabled on the instance, else 403.
    let searxng = serve(axum::Router::new().route(
        "/search",
        get(|Query(q): Query<HashMap<String, String>>| async move {
            if q.get("format").map(String::as_str) != Some("json") {
                return (StatusCode::FORBIDDEN, "").into_response();
            }
            let query = q.get("q").cloned().unwrap_or_default();
            Json(json!({
                "query": query, "number_of_results": 0,
                "results": [
                    {"url": "https://acme.test/pricing", "title": "Acme pricing", "content": format!("about {query}"), "engine": "duckduckgo", "score": 1.5},
                    {"url": "https://globex.test/", "title": "Globex", "content": "plans", "engine": "bing", "score": 0.7}
                ],
                "answers": [], "corrections": [], "infoboxes": [], "suggestions": [], "unresponsive_engines": []
            }))
            .into_response()
        }),
    ))
    .await;
    let api = serve(axum::Router::new().route(
        "/v1/find",
        get(|headers: HeaderMap, Query(q): Query<HashMap<String, String>>| async move {
            if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some("k-42") {
                return (StatusCode::UNAUTHORIZED, "bad key").into_response();
            }
            let n: usize = q["count"].parse().unwrap();
            let items: Vec<Value> = (0..5)
                .map(|i| json!({"name": format!("{} #{i}", q["term"]), "href": format!("https://r.test/{i}"), "desc": "d"}))
                .take(n)
                .collect();
            Json(json!({"data": {"items": items}})).into_response()
        }),
    ))
    .await;

    let r = Registry::new();
    let sx = WebSearch::from_config(Some(&SearchConfig::Searxng {
        url: format!("http://{searxng}/"),
    }));
    r.add_builtin_impl(Arc::new(sx));
    r.register(local(&WebSearch::new(None))).unwrap();
    let out = r
        .invoke(Call::new(
            "web_search",
            json!({"query": "widget price & tiers", "limit": 5}),
        ))
        .await
        .unwrap();
    assert_eq!(
        out["results"][0],
        json!({"title": "Acme pricing", "url": "https://acme.test/pricing", "snippet": "about widget price & tiers"})
    );
    assert_eq!(out["results"].as_array().unwrap().len(), 2);

    let r = Registry::new();
    r.add_secrets([("search-api", "k-42")]);
    let backend = SearchConfig::HttpApi {
        url: format!("http://{api}/v1/find?term={{query}}&count={{limit}}"),
        results: "/data/items".into(),
        title: "/name".into(),
        link: "/href".into(),
        snippet: "/desc".into(),
    };
    r.add_builtin_impl(Arc::new(WebSearch::from_config(Some(&backend))));
    let mut spec = local(&WebSearch::new(None));
    spec.policy.secrets.push(SecretRef {
        name: "search-api".into(),
        env: None,
        header: Some("x-api-key".into()),
    });
    r.register(spec).unwrap();
    let out = r
        .invoke(Call::new("web_search", json!({"query": "a b", "limit": 3})))
        .await
        .unwrap();
    let titles: Vec<&str> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["a b #0", "a b #1", "a b #2"]);

    let r = Registry::new();
    r.add_builtin(Arc::new(WebSearch::new(None))).unwrap();
    let e = r
        .invoke(Call::new("web_search", json!({"query": "x"})))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("no search backend configured"),
        "{e}"
    );
}

#[tokio::test]
async fn data_analysis_describes_groups_and_compares() {
    let r = Registry::new();
    r.add_builtin(Arc::new(DataAnalysis)).unwrap();
    let csv = "region,product,price,cost,units\nEU,widget,10,6,100\nEU,gadget,30,20,40\nUS,widget,12,6,150\nUS,gadget,36,21,60\nUS,gizmo,,5,10\n";
    let out = r
        .invoke(Call::new(
            "data_analysis",
            json!({
                "csv": csv,
                "percentiles": [25, 90],
                "group_by": {"by": "region", "aggregates": [
                    {"op": "count"}, {"op": "sum", "column": "units"}, {"op": "mean", "column": "price"},
                    {"op": "min", "column": "price"}, {"op": "max", "column": "price"}]},
                "compare": [
                    {"by": "region", "groups": ["US", "EU"], "column": "price", "stat": "mean"},
                    {"columns": ["price", "cost"], "stat": "sum"}
                ]
            }),
        ))
        .await
        .unwrap();
    assert_eq!(out["rows"], json!(5));
    let price = &out["describe"]["price"];
    assert_eq!(price["count"], json!(4));
    assert_eq!(price["mean"], json!(22.0));
    assert_eq!(price["median"], json!(21.0));
    assert_eq!(
        (price["min"].clone(), price["max"].clone()),
        (json!(10.0), json!(36.0))
    );
    assert!(
        (price["stddev"].as_f64().unwrap() - 12.961481).abs() < 1e-5,
        "{price}"
    );
    assert_eq!(price["percentiles"]["p25"], json!(11.5));
    assert!((price["percentiles"]["p90"].as_f64().unwrap() - 34.2).abs() < 1e-9);
    assert!(
        out["describe"].get("region").is_none(),
        "text columns are not described"
    );
    assert_eq!(
        out["groups"],
        json!([
            {"region": "EU", "count": 2, "sum(units)": 140.0, "mean(price)": 20.0, "min(price)": 10.0, "max(price)": 30.0},
            {"region": "US", "count": 3, "sum(units)": 220.0, "mean(price)": 24.0, "min(price)": 12.0, "max(price)": 36.0}
        ])
    );
    let c = &out["comparisons"][0];
    assert_eq!(
        (c["value_a"].clone(), c["value_b"].clone()),
        (json!(24.0), json!(20.0))
    );
    assert_eq!(c["difference"], json!(4.0));
    assert_eq!(c["ratio"], json!(1.2));
    let c = &out["comparisons"][1];
    assert_eq!(
        (
            c["value_a"].clone(),
            c["value_b"].clone(),
            c["difference"].clone()
        ),
        (json!(88.0), json!(58.0), json!(30.0))
    );

    let records =
        json!([{"team": "a", "score": 1}, {"team": "a", "score": 3}, {"team": "b", "score": 10}]);
    let out = r
        .invoke(Call::new("data_analysis", json!({"records": records, "group_by": {"by": ["team"], "aggregates": [{"op": "sum", "column": "score"}]}})))
        .await
        .unwrap();
    assert_eq!(
        out["groups"],
        json!([{"team": "a", "sum(score)": 4.0}, {"team": "b", "sum(score)": 10.0}])
    );
    assert_eq!(out["describe"]["score"]["mean"], json!(14.0 / 3.0));
    let e = r
        .invoke(Call::new(
            "data_analysis",
            json!({"csv": csv, "describe": ["revenue"]}),
        ))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("unknown column \"revenue\"") && e.to_string().contains("price"),
        "{e}"
    );
    let e = r
        .invoke(Call::new("data_analysis", json!({"describe": ["x"]})))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Tools.SchemaValidation");
}

#[tokio::test]
async fn create_document_stores_html_and_pdf() {
    let dir = tempfile::tempdir().unwrap();
    let r = Registry::new();
    r.add_builtin(Arc::new(CreateDocument::new(dir.path())))
        .unwrap();
    let md = "# Pricing report\n\nAcme sells the *Widget* for $10 (Globex: $12).\n\n| Product | Price |\n|---|---|\n| Widget | 10 |\n\n- cheaper than Globex\n- stable since May\n";
    let out = r
        .invoke(Call::new("create_document", json!({"markdown": md})).tenant("acme"))
        .await
        .unwrap();
    assert_eq!(out["title"], json!("Pricing report"));
    let docs = out["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    for d in docs {
        let path = std::path::Path::new(d["path"].as_str().unwrap());
        assert!(path.starts_with(dir.path()));
        assert!(
            d["key"]
                .as_str()
                .unwrap()
                .starts_with("documents/acme/pricing-report-")
        );
        assert_eq!(
            std::fs::metadata(path).unwrap().len(),
            d["bytes"].as_u64().unwrap()
        );
    }
    let html = std::fs::read_to_string(docs[0]["path"].as_str().unwrap()).unwrap();
    assert!(
        html.contains("<h1>Pricing report</h1>")
            && html.contains("<em>Widget</em>")
            && html.contains("<td>10</td>"),
        "{html}"
    );
    assert!(html.contains("<title>Pricing report</title>"));
    let pdf = std::fs::read(docs[1]["path"].as_str().unwrap()).unwrap();
    assert!(pdf.starts_with(b"%PDF-1.4") && pdf.ends_with(b"%%EOF\n"));
    // With poppler's pdftotext at hand, the text must read back.
    if let Ok(o) = std::process::Command::new("pdftotext")
        .arg(docs[1]["path"].as_str().unwrap())
        .arg("-")
        .output()
    {
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("Pricing report")
                && text.contains("Acme sells the Widget for $10 (Globex: $12)."),
            "{text}"
        );
    }
    let e = r
        .invoke(Call::new(
            "create_document",
            json!({"markdown": "x", "name": "../escape"}),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        e.name(),
        "Tools.SchemaValidation",
        "a name cannot leave the directory"
    );
}

#[derive(Clone, Debug, Default)]
struct Mail {
    from: String,
    rcpt: Vec<String>,
    data: String,
}

/// A minimal SMTP server (RFC 5321 as relays speak it): greeting, EHLO, MAIL FROM, RCPT TO,
/// DATA with dot-stuffing, RSET, NOOP, QUIT.
async fn smtp_server() -> (std::net::SocketAddr, Arc<Mutex<Vec<Mail>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let m = mails.clone();
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            let mails = m.clone();
            tokio::spawn(async move {
                let (rd, mut wr) = sock.into_split();
                let mut rd = BufReader::new(rd);
                wr.write_all(b"220 mail.test ESMTP ready\r\n")
                    .await
                    .unwrap();
                let mut cur = Mail::default();
                let mut line = String::new();
                loop {
                    line.clear();
                    if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_string();
                    let upper = cmd.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-mail.test greets you\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n"
                    } else if upper.starts_with("HELO") {
                        b"250 mail.test\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        cur = Mail {
                            from: cmd[10..].trim().to_string(),
                            ..Mail::default()
                        };
                        b"250 2.1.0 Ok\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        cur.rcpt.push(cmd[8..].trim().to_string());
                        b"250 2.1.5 Ok\r\n"
                    } else if upper == "DATA" {
                        wr.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                            .await
                            .unwrap();
                        loop {
                            line.clear();
                            rd.read_line(&mut line).await.unwrap();
                            if line == ".\r\n" {
                                break;
                            }
                            let l = line.strip_prefix('.').unwrap_or(&line);
                            cur.data.push_str(l);
                        }
                        mails.lock().unwrap().push(std::mem::take(&mut cur));
                        b"250 2.0.0 Ok: queued as 42\r\n"
                    } else if upper == "RSET" || upper == "NOOP" {
                        b"250 2.0.0 Ok\r\n"
                    } else if upper == "QUIT" {
                        wr.write_all(b"221 2.0.0 Bye\r\n").await.unwrap();
                        return;
                    } else {
                        b"502 5.5.2 Error: command not recognized\r\n"
                    };
                    wr.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (addr, mails)
}

#[tokio::test]
async fn send_email_speaks_smtp_and_holds_outside_recipients_for_approval() {
    let (addr, mails) = smtp_server().await;
    let r = Registry::new();
    let tool = SendEmail::new(EmailConfig {
        host: "127.0.0.1".into(),
        port: addr.port(),
        tls: "none".into(),
        from: "Agentry <agent@example.com>".into(),
        username: None,
        password_secret: None,
        allowed_domains: vec!["example.com".into()],
        allow_private_networks: vec!["127.0.0.1/32".into()],
    })
    .unwrap();
    r.add_builtin(Arc::new(tool)).unwrap();
    let out = r
        .invoke(
            Call::new(
                "send_email",
                json!({"to": ["ceo@example.com"], "cc": "cfo@example.com", "subject": "Weekly pricing",
                       "body": "Acme: $10\n.leading dot\nGlobex: $12"}),
            )
            .key("exec-1:Send:0"),
        )
        .await
        .unwrap();
    assert!(
        out["response"].as_str().unwrap().starts_with("250"),
        "{out}"
    );
    let got = mails.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, "<agent@example.com>");
    assert_eq!(got[0].rcpt, ["<ceo@example.com>", "<cfo@example.com>"]);
    let data = &got[0].data;
    assert!(data.contains("Subject: Weekly pricing\r\n"), "{data}");
    assert!(
        data.contains("To: ceo@example.com\r\n") && data.contains("Cc: cfo@example.com\r\n"),
        "{data}"
    );
    assert!(
        data.contains("Acme: $10\r\n.leading dot\r\nGlobex: $12"),
        "{data}"
    );
    assert!(
        data.contains("Message-ID: <exec-1.Send.0@example.com>"),
        "{data}"
    );
    // The same idempotency key again: remembered, not sent twice.
    r.invoke(Call::new("send_email", json!({"to": ["ceo@example.com"], "cc": "cfo@example.com", "subject": "Weekly pricing", "body": "Acme: $10\n.leading dot\nGlobex: $12"})).key("exec-1:Send:0"))
        .await
        .unwrap();
    assert_eq!(mails.lock().unwrap().len(), 1);

    let held = r
        .call(Call::new("send_email", json!({"to": ["ceo@example.com", "buyer@competitor.test"], "subject": "s", "body": "b"})))
        .await
        .unwrap();
    match held {
        Outcome::NeedsApproval(req) => {
            assert!(req.reason.contains("buyer@competitor.test"), "{req:?}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(mails.lock().unwrap().len(), 1, "a held message was sent");
    let approved = Call::new(
        "send_email",
        json!({"to": "buyer@competitor.test", "subject": "s", "body": "b"}),
    )
    .approved();
    r.invoke(approved).await.unwrap();
    assert_eq!(mails.lock().unwrap()[1].rcpt, ["<buyer@competitor.test>"]);

    // An SMTP server on a network the tool may not reach is refused before connecting.
    let r = Registry::new();
    let tool = SendEmail::new(EmailConfig {
        host: "localhost".into(),
        port: addr.port(),
        tls: "none".into(),
        from: "agent@example.com".into(),
        username: None,
        password_secret: None,
        allowed_domains: vec![],
        allow_private_networks: vec![],
    })
    .unwrap();
    r.add_builtin(Arc::new(tool)).unwrap();
    let e = r
        .invoke(Call::new(
            "send_email",
            json!({"to": "a@example.com", "subject": "s", "body": "b"}),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Tools.Forbidden", "{e}");
    assert_eq!(mails.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn knowledge_search_finds_ranked_documents_by_user_agent_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(dir.path().join("kb.db")).unwrap();
    let r = Registry::new();
    r.add_builtin(Arc::new(KnowledgeAdd(kb.clone()))).unwrap();
    r.add_builtin(Arc::new(KnowledgeSearch(kb.clone())))
        .unwrap();
    let docs = [
        (
            "ada",
            "researcher",
            1_000,
            "Competitor X pricing strategy",
            "Competitor X prices its widgets with aggressive discounts for annual plans.",
        ),
        (
            "ada",
            "writer",
            2_000,
            "Launch notes",
            "The launch went fine; pricing was mentioned once.",
        ),
        (
            "bob",
            "researcher",
            3_000,
            "Competitor Y",
            "Competitor Y focuses on enterprise support contracts.",
        ),
        (
            "ada",
            "researcher",
            4_000,
            "Office plants",
            "Water the ficus on Mondays.",
        ),
    ];
    for (user, agent, at, title, body) in docs {
        r.invoke(Call::new("knowledge_add", json!({"user": user, "agent": agent, "created_ms": at, "title": title, "body": body})).tenant("acme"))
            .await
            .unwrap();
    }
    let search = |q: Value| {
        let r = &r;
        async move {
            let out = r
                .invoke(Call::new("knowledge_search", q).tenant("acme"))
                .await
                .unwrap();
            out["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["title"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let hits =
        search(json!({"query": "what pricing strategy did we find for competitor X?"})).await;
    assert_eq!(hits[0], "Competitor X pricing strategy", "{hits:?}");
    assert!(!hits.contains(&"Office plants".to_string()));
    assert_eq!(
        search(json!({"query": "competitor", "user": "bob"})).await,
        ["Competitor Y"]
    );
    assert_eq!(
        search(json!({"query": "pricing", "agent": "writer"})).await,
        ["Launch notes"]
    );
    assert_eq!(
        search(json!({"query": "competitor", "after_ms": 2_000})).await,
        ["Competitor Y"]
    );
    assert_eq!(
        search(json!({"query": "competitor", "before_ms": 2_000})).await,
        ["Competitor X pricing strategy"]
    );
    // Stemming: "discount" finds "discounts"; all_terms needs every word.
    assert_eq!(
        search(json!({"query": "discount"})).await,
        ["Competitor X pricing strategy"]
    );
    assert_eq!(
        search(json!({"query": "competitor enterprise", "all_terms": true})).await,
        ["Competitor Y"]
    );
    // FTS5 syntax in a query is taken as words, not as an error.
    search(json!({"query": "\"unbalanced AND ( OR * NEAR"})).await;
    let out = r
        .invoke(Call::new("knowledge_search", json!({"query": "discounts"})).tenant("acme"))
        .await
        .unwrap();
    assert!(
        out["results"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("[discounts]"),
        "{out}"
    );
    // Another tenant sees nothing of acme's.
    let other = r
        .invoke(Call::new("knowledge_search", json!({"query": "competitor"})).tenant("globex"))
        .await
        .unwrap();
    assert_eq!(other["results"], json!([]));
    // The index survives reopening.
    drop(r);
    let kb = KnowledgeBase::open(dir.path().join("kb.db")).unwrap();
    let hits = kb
        .search(agentry_tools::builtin::KnowledgeQuery {
            tenant: "acme".into(),
            query: "ficus".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
}
