//! `agentry demo pricing-research`: the seed's example end to end against a running
//! `agentry serve`, as a client does it over the HTTP API.
//!
//! It creates the fetch activity, the state machine (`examples/pricing-research`), the agent
//! and a session; runs the activity workers that collect the competitors' pricing pages;
//! sends the request; prints the turn's progress from the session's event stream; and prints
//! the report and where its documents are.
//!
//! The competitors' pages are the example's fixtures: their URLs are on `.example` hosts
//! (reserved names that never resolve), which the workers read from a fixture server this
//! command runs on 127.0.0.1. One page (`tailspin`) is served too slowly on purpose: its fetch
//! times out in the state machine, the request goes to the dead-letter queue and the report
//! names the missing source.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

const DEFINITION: &str = include_str!("../../../examples/pricing-research/state-machine.asl.json");
const PLAN_PROMPT: &str = include_str!("../../../examples/pricing-research/prompts/plan.md");
const ANALYSIS_PROMPT: &str =
    include_str!("../../../examples/pricing-research/prompts/analysis.md");
const FIXTURES: [(&str, &str); 4] = [
    (
        "northwind",
        include_str!("../../../examples/pricing-research/fixtures/northwind.html"),
    ),
    (
        "contoso",
        include_str!("../../../examples/pricing-research/fixtures/contoso.html"),
    ),
    (
        "fabrikam",
        include_str!("../../../examples/pricing-research/fixtures/fabrikam.html"),
    ),
    (
        "tailspin",
        include_str!("../../../examples/pricing-research/fixtures/tailspin.html"),
    ),
];
/// The fixture page served too slowly to be fetched in time.
const SLOW_PAGE: &str = "tailspin";

pub const NAME: &str = "pricing-research";
const ACTIVITY: &str = "pricing-research-fetch";
const WORKERS: usize = 4;

pub struct DemoArgs {
    pub url: String,
    pub token: String,
    pub message: String,
    pub fetch_timeout: u64,
}

/// An authenticated client of the server.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.with_context(|| {
            format!(
                "{method} {path}: is `agentry serve` running at {}?",
                self.url
            )
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// A call that must succeed.
    async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.json(method.clone(), path, body).await?;
        if !(200..300).contains(&status) {
            bail!("{method} {path}: {status} {v}");
        }
        Ok(v)
    }

    /// A Step Functions API call on the AWS JSON protocol endpoint.
    async fn aws(&self, action: &str, body: Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(format!("{}/", self.url))
            .bearer_auth(&self.token)
            .header("x-amz-target", format!("AWSStepFunctions.{action}"))
            .header("content-type", "application/x-amz-json-1.0")
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("{action}: is `agentry serve` running at {}?", self.url))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{action}: {status} {v}");
        }
        Ok(v)
    }
}

/// Serves the fixture pages on 127.0.0.1; the slow one answers after `slow`.
async fn fixture_server(slow: Duration) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::response::{Html, IntoResponse};
    let app = axum::Router::new().route(
        "/{page}",
        axum::routing::get(move |Path(page): Path<String>| async move {
            let name = page.trim_end_matches(".html");
            match FIXTURES.iter().find(|(n, _)| *n == name) {
                Some((n, html)) => {
                    if *n == SLOW_PAGE {
                        tokio::time::sleep(slow).await;
                    }
                    Html(*html).into_response()
                }
                None => (StatusCode::NOT_FOUND, "no such page").into_response(),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((base, handle))
}

/// Where a worker reads `url`: pages on `.example` hosts come from the fixture server.
fn page_url(url: &str, fixtures: &str) -> anyhow::Result<String> {
    let u = url::Url::parse(url).with_context(|| format!("source url {url:?}"))?;
    match u.host_str() {
        Some(h) if h.ends_with(".example") => {
            let label = h.split('.').next().unwrap_or_default();
            Ok(format!("{fixtures}/{label}.html"))
        }
        _ => Ok(url.to_string()),
    }
}

/// Parses a price such as `$29`, `$1,299.50` or `29 USD`.
fn price(text: &str) -> Option<f64> {
    let digits: String = text
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
        .filter(|c| *c != ',')
        .collect();
    digits.trim_end_matches('.').parse().ok()
}

/// The plans of a pricing page: the first table with a price column, each row's first cell
/// as the plan, tiers by price rank (`entry`, `mid`, `top`).
pub fn plans(competitor: &str, html: &str) -> Option<Vec<Value>> {
    let page = agentry_tools::builtin::parse_page(html, None);
    for table in &page.tables {
        let Some(header) = table.first() else {
            continue;
        };
        let Some(col) = header
            .iter()
            .position(|h| h.to_lowercase().contains("price"))
        else {
            continue;
        };
        let mut rows: Vec<(String, f64)> = table[1..]
            .iter()
            .filter_map(|r| Some((r.first()?.trim().to_string(), price(r.get(col)?)?)))
            .collect();
        if rows.is_empty() {
            continue;
        }
        rows.sort_by(|a, b| a.1.total_cmp(&b.1));
        let n = rows.len();
        return Some(
            rows.into_iter()
                .enumerate()
                .map(|(i, (plan, price))| {
                    let tier = if i == 0 {
                        "entry"
                    } else if i == n - 1 {
                        "top"
                    } else {
                        "mid"
                    };
                    json!({"competitor": competitor, "plan": plan, "tier": tier, "price": price})
                })
                .collect(),
        );
    }
    None
}

/// One activity worker: takes fetch tasks, collects the page's plans, answers the task.
async fn worker(client: Client, activity: String, fixtures: String, n: usize) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client");
    let name = format!("worker-{n}");
    loop {
        let task = match client
            .aws(
                "GetActivityTask",
                json!({"activityArn": activity, "workerName": name}),
            )
            .await
        {
            Ok(t) => t,
            Err(e) => {
                eprintln!("  [{name}] {e:#}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(token) = task["taskToken"].as_str().filter(|t| !t.is_empty()) else {
            continue;
        };
        let input: Value = task["input"]
            .as_str()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null);
        let source = &input["source"];
        let competitor = source["name"].as_str().unwrap_or("unknown").to_string();
        let url = source["url"].as_str().unwrap_or_default().to_string();
        println!("  [{name}] fetching {competitor} ({url})");
        let result: Result<Value, (String, String)> = async {
            let target =
                page_url(&url, &fixtures).map_err(|e| ("Fetch.BadUrl".into(), format!("{e:#}")))?;
            let resp = http
                .get(&target)
                .send()
                .await
                .map_err(|e| ("Fetch.Failed".to_string(), e.to_string()))?;
            if !resp.status().is_success() {
                return Err((
                    "Fetch.Failed".into(),
                    format!("{url}: HTTP {}", resp.status()),
                ));
            }
            let html = resp
                .text()
                .await
                .map_err(|e| ("Fetch.Failed".to_string(), e.to_string()))?;
            let plans = plans(&competitor, &html).ok_or_else(|| {
                (
                    "Fetch.NoPrices".to_string(),
                    format!("{url}: no table of prices"),
                )
            })?;
            Ok(json!({"name": competitor, "url": url, "status": "ok", "plans": plans}))
        }
        .await;
        let answer = match &result {
            Ok(out) => {
                println!(
                    "  [{name}] {competitor}: {} plans",
                    out["plans"].as_array().map_or(0, Vec::len)
                );
                client
                    .aws(
                        "SendTaskSuccess",
                        json!({"taskToken": token, "output": out.to_string()}),
                    )
                    .await
            }
            Err((error, cause)) => {
                client
                    .aws(
                        "SendTaskFailure",
                        json!({"taskToken": token, "error": error, "cause": cause}),
                    )
                    .await
            }
        };
        if let Err(e) = answer {
            // The task timed out meanwhile: the state machine has moved on without it.
            println!("  [{name}] {competitor}: answer not taken ({e:#})");
        }
    }
}

/// Reads Server-Sent Events from a response, calling `on` for each `(event, data)`.
async fn read_events(
    mut resp: reqwest::Response,
    mut on: impl FnMut(&str, &Value),
) -> anyhow::Result<()> {
    let mut buf = String::new();
    while let Some(chunk) = resp.chunk().await? {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut event, mut data) = (String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if !event.is_empty() {
                on(&event, &serde_json::from_str(&data).unwrap_or(Value::Null));
            }
        }
    }
    Ok(())
}

/// One line of progress for an event of the session's stream, if it is worth one.
fn progress(event: &str, data: &Value) -> Option<String> {
    let details = |k: &str| &data[k];
    Some(match event {
        "turn_started" => format!(
            "▶ turn {}: {}",
            data["turn"],
            data["message"].as_str().unwrap_or("")
        ),
        e if e.ends_with("StateEntered") => {
            format!(
                "→ {}",
                details("stateEnteredEventDetails")["name"].as_str()?
            )
        }
        "TaskScheduled" => {
            let d = details("taskScheduledEventDetails");
            let params: Value = d["parameters"]
                .as_str()
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or(Value::Null);
            match params["FunctionName"].as_str() {
                Some(f) => format!("   tool {f}"),
                None => format!(
                    "   {}:{}",
                    d["resourceType"].as_str()?,
                    d["resource"].as_str()?
                ),
            }
        }
        "ActivityScheduled" => "   activity task for the fetch workers".to_string(),
        "ActivityTimedOut" | "TaskTimedOut" => "   ✗ timed out".to_string(),
        "ActivityFailed" | "TaskFailed" => {
            let d = data
                .as_object()?
                .iter()
                .find(|(k, _)| k.ends_with("FailedEventDetails"))?
                .1;
            format!("   ✗ {}", d["error"].as_str().unwrap_or("failed"))
        }
        "ExecutionSucceeded" | "ExecutionFailed" | "ExecutionTimedOut" | "ExecutionAborted" => {
            format!("■ {event}")
        }
        "turn_ended" => format!("turn {} {}", data["n"], data["status"].as_str()?),
        "answer" => format!("answer: {}", data["text"].as_str()?),
        _ => return None,
    })
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let client = Client {
        http: reqwest::Client::new(),
        url: args.url.trim_end_matches('/').to_string(),
        token: args.token,
    };
    // Slow enough that the fetch always times out first.
    let slow = Duration::from_secs(args.fetch_timeout * 10 + 5);
    let (fixtures, server) = fixture_server(slow).await?;

    let activity = client
        .aws("CreateActivity", json!({"name": ACTIVITY}))
        .await?;
    let activity = activity["activityArn"]
        .as_str()
        .context("CreateActivity answered no activityArn")?
        .to_string();
    let definition = DEFINITION
        .replace("${FetchActivityArn}", &activity)
        .replace(
            "\"${FetchTimeoutSeconds}\"",
            &args.fetch_timeout.to_string(),
        );
    let definition: Value =
        serde_json::from_str(&definition).context("the example's state machine")?;
    let (status, v) = client
        .json(
            reqwest::Method::POST,
            "/v1/state-machines",
            Some(json!({"name": NAME, "definition": definition})),
        )
        .await?;
    match status {
        200..=299 => {}
        409 => {
            client
                .ok(
                    reqwest::Method::PUT,
                    &format!("/v1/state-machines/{NAME}"),
                    Some(json!({"definition": definition})),
                )
                .await?;
        }
        _ => bail!("creating the state machine: {status} {v}"),
    }
    let agent = client
        .ok(
            reqwest::Method::POST,
            "/v1/agents",
            Some(json!({"name": NAME, "config": {
                "state_machine": NAME,
                "description": "Researches competitors' pricing and writes a summary report",
                "routes": {"complex": "complex", "fast": "fast"},
                "tools": ["data_analysis", "create_document"],
                "prompts": {"plan": PLAN_PROMPT.trim(), "analysis": ANALYSIS_PROMPT.trim()},
                "turn_policy": "queue",
            }})),
        )
        .await?;
    let session = client
        .ok(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(json!({"agent": NAME, "title": "Competitive pricing"})),
        )
        .await?;
    let id = session["id"].as_str().context("no session id")?.to_string();
    println!(
        "agent {NAME} v{}, session {id}, fetch activity {activity}",
        agent["version"]
    );

    let workers: Vec<_> = (1..=WORKERS)
        .map(|n| {
            tokio::spawn(worker(
                client.clone(),
                activity.clone(),
                fixtures.clone(),
                n,
            ))
        })
        .collect();

    let turn = client
        .ok(
            reqwest::Method::POST,
            &format!("/v1/sessions/{id}/messages"),
            Some(json!({"message": args.message})),
        )
        .await?;
    let events = client
        .http
        .get(format!(
            "{}/v1/sessions/{id}/events?turn={}",
            client.url, turn["n"]
        ))
        .bearer_auth(&client.token)
        .send()
        .await?;
    if !events.status().is_success() {
        bail!("following the session: HTTP {}", events.status());
    }
    let mut streaming = false;
    read_events(events, |event, data| {
        if event == "llm_delta" {
            if !streaming {
                print!("   model: ");
                streaming = true;
            }
            print!(
                "{}",
                data["text"]
                    .as_str()
                    .unwrap_or_default()
                    .replace('\n', "\n          ")
            );
            let _ = std::io::Write::flush(&mut std::io::stdout());
        } else if let Some(line) = progress(event, data) {
            if std::mem::take(&mut streaming) {
                println!();
            }
            println!("{line}");
        }
    })
    .await?;
    for w in workers {
        w.abort();
    }
    server.abort();

    let s = client
        .ok(reqwest::Method::GET, &format!("/v1/sessions/{id}"), None)
        .await?;
    let last = s["turns"]
        .as_array()
        .and_then(|t| t.last())
        .cloned()
        .unwrap_or(Value::Null);
    println!();
    if last["status"] != "SUCCEEDED" {
        println!(
            "the turn ended {}: {} {}",
            last["status"], last["error"], last["cause"]
        );
        return Ok(ExitCode::FAILURE);
    }
    if let Some(report) = last["output"]["report"].as_str() {
        println!("{report}");
    }
    println!("tools used: {}", s["tools_used"]);
    println!("documents:");
    for a in s["artifacts"].as_array().into_iter().flatten() {
        println!(
            "  {} {} ({} bytes)",
            a["format"].as_str().unwrap_or(""),
            a["path"].as_str().unwrap_or(""),
            a["bytes"]
        );
    }
    println!("session: {}/v1/sessions/{id}", client.url);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_come_from_the_price_table_by_rank() {
        let p = plans("Northwind", FIXTURES[0].1).unwrap();
        let got: Vec<(String, f64, String)> = p
            .iter()
            .map(|x| {
                (
                    x["plan"].as_str().unwrap().to_string(),
                    x["price"].as_f64().unwrap(),
                    x["tier"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("Starter".into(), 29.0, "entry".into()),
                ("Team".into(), 79.0, "mid".into()),
                ("Enterprise".into(), 249.0, "top".into())
            ]
        );
        assert_eq!(price("$1,299.50/mo"), Some(1299.5));
        assert!(plans("x", "<p>no tables</p>").is_none());
    }

    #[test]
    fn example_hosts_come_from_the_fixture_server() {
        assert_eq!(
            page_url("https://contoso.example/pricing", "http://127.0.0.1:9").unwrap(),
            "http://127.0.0.1:9/contoso.html"
        );
        assert_eq!(
            page_url("https://example.com/p", "http://127.0.0.1:9").unwrap(),
            "https://example.com/p"
        );
    }
}
