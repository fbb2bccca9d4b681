//! `agentry demo pricing-research` against a real `agentry serve` on a fresh data directory,
//! offline: the built-in recorded model, the fixture pages, one of which times out.

use serde_json::Value;

use super::{Server, agentry};

fn demo_token(data: &std::path::Path) -> String {
    let o = agentry(&[
        "token",
        "--tenant",
        "default",
        "--user",
        "demo",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn get(server: &Server, token: &str, path: &str) -> Value {
    let auth = format!("Bearer {token}");
    let (status, body) = server.raw("GET", path, &[("Authorization", &auth)], "");
    assert!(status.contains("200"), "{path}: {status} {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

#[test]
fn the_pricing_research_example_runs_end_to_end() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let url = format!("http://{}", server.addr);
    let o = agentry(&[
        "demo",
        "pricing-research",
        "--url",
        &url,
        "--data",
        data.path().to_str().unwrap(),
        "--fetch-timeout",
        "2",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Progress came live from the session's stream.
    for line in [
        "→ Plan",
        "→ Collect",
        "tool data_analysis",
        "tool create_document",
        "✗ timed out",
        "turn 1 SUCCEEDED",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
    // The analysis streamed from the model (the offline model sends its text in one piece).
    assert!(
        out.contains("   model: The three competitors that answered"),
        "{out}"
    );
    // The report holds the fixture pages' figures, computed, and names the missing source.
    for row in [
        "| Fabrikam Metrics | Solo | entry | $19 |",
        "| Contoso Insights | Pro | mid | $99 |",
        "| Northwind Analytics | Enterprise | top | $249 |",
        "| entry | 3 | $19 | $25 | $29 |",
        "| mid | 3 | $79 | $89 | $99 |",
        "| top | 3 | $199 | $249 | $299 |",
        "- Tailspin BI (https://tailspin.example/pricing): States.Timeout; the request went to the dead-letter queue",
    ] {
        assert!(out.contains(row), "no {row:?} in:\n{out}");
    }
    assert!(!out.contains("| Tailspin BI |"), "{out}");

    // The turn is stored with its tools and artifacts, and the documents exist.
    let token = demo_token(data.path());
    let list = get(&server, &token, "/v1/sessions");
    let id = list["sessions"][0]["id"].as_str().unwrap().to_string();
    let s = get(&server, &token, &format!("/v1/sessions/{id}"));
    assert_eq!(s["status"], "SUCCEEDED", "{s}");
    let tools: Vec<&str> = s["tools_used"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for t in [
        "activity:pricing-research-fetch",
        "data_analysis",
        "create_document",
    ] {
        assert!(tools.contains(&t), "{tools:?}");
    }
    assert!(
        tools.iter().any(|t| t.contains("sqs:sendMessage")),
        "{tools:?}"
    );
    let artifacts = s["artifacts"].as_array().unwrap();
    let formats: Vec<&str> = artifacts
        .iter()
        .map(|a| a["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["html", "pdf", "md"]);
    for a in artifacts {
        let path = std::path::Path::new(a["path"].as_str().unwrap());
        assert!(path.starts_with(data.path().join("objects")), "{path:?}");
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(bytes.len() as u64, a["bytes"].as_u64().unwrap());
    }
    let html = std::fs::read_to_string(artifacts[0]["path"].as_str().unwrap()).unwrap();
    assert!(
        html.contains("<td>$249</td>") && html.contains("Tailspin BI"),
        "{html}"
    );
    assert!(
        std::fs::read(artifacts[1]["path"].as_str().unwrap())
            .unwrap()
            .starts_with(b"%PDF")
    );

    // The timed-out source waits in the dead-letter queue; the notification was sent.
    let queued = |name: &str| -> Vec<Value> {
        let url = format!("sqlite://{}", data.path().join("queue.db").display());
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let q = agentry_queue::open(&url).await.unwrap();
            q.receive(name, agentry_queue::ReceiveOptions::max(10))
                .await
                .unwrap()
                .into_iter()
                .map(|m| serde_json::from_str(&m.body).unwrap())
                .collect()
        })
    };
    let dead = queued("dead-letters");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["source"]["name"], "Tailspin BI");
    assert_eq!(dead[0]["error"], "States.Timeout");
    let sent = queued("notifications");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["session"], id.as_str());
    assert_eq!(
        sent[0]["documents"].as_array().unwrap().len(),
        3,
        "{sent:?}"
    );

    // A later question finds what the turn found.
    let hits = get(
        &server,
        &token,
        "/v1/knowledge?q=Fabrikam%20pricing&agent=pricing-research&since=1h",
    );
    let hits = hits["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["session"], id.as_str());
    assert!(
        hits[0]["text"].as_str().unwrap().contains("Fabrikam"),
        "{hits:?}"
    );
    // Another user finds none of it.
    let o = agentry(&[
        "token",
        "--tenant",
        "default",
        "--user",
        "eve",
        "--data",
        data.path().to_str().unwrap(),
    ]);
    let eve = String::from_utf8(o.stdout).unwrap().trim().to_string();
    assert_eq!(
        get(&server, &eve, "/v1/knowledge?q=Fabrikam")["hits"],
        serde_json::json!([])
    );
    server.kill();
}
