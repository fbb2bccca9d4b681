//! `web_fetch` (a page as readable text, title, absolute links and tables) and `web_search`
//! (a [`SearchBackend`]: SearXNG's JSON API or any HTTP search API described by a URL template
//! and JSON pointers).

use std::sync::Arc;

use async_trait::async_trait;
use ego_tree::NodeRef;
use scraper::{ElementRef, Html, Node, Selector};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::registry::{InvokerSpec, ToolSpec};
use crate::{Builtin, HttpAccess, Policy, ToolContext};

/// Fetches a page through the tool's policy-checked client.
pub struct WebFetch;

/// A page reduced to what a model reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Page {
    pub title: Option<String>,
    pub text: String,
    pub links: Vec<Link>,
    /// Tables as rows of cell texts.
    pub tables: Vec<Vec<Vec<String>>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Link {
    pub url: String,
    pub text: String,
}

const SKIP: &[&str] = &[
    "script", "style", "noscript", "template", "head", "svg", "iframe", "object", "canvas",
];
const BLOCK: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "nav",
    "aside",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "tr",
    "table",
    "br",
    "hr",
    "pre",
    "blockquote",
    "figure",
    "figcaption",
    "form",
    "address",
    "details",
    "summary",
];

fn sel(s: &str) -> Selector {
    Selector::parse(s).expect("static selector")
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn collect_text(node: NodeRef<'_, Node>, out: &mut String) {
    match node.value() {
        Node::Text(t) => {
            // Source line breaks inside a paragraph are spaces; blocks make the lines.
            let mut last_space = out.ends_with(' ');
            for c in t.chars() {
                if c.is_whitespace() {
                    if !last_space {
                        out.push(' ');
                    }
                    last_space = true;
                } else {
                    out.push(c);
                    last_space = false;
                }
            }
        }
        Node::Element(e) => {
            let name = e.name();
            if SKIP.contains(&name) {
                return;
            }
            let block = BLOCK.contains(&name);
            if block {
                out.push('\n');
            }
            if matches!(name, "td" | "th") {
                out.push_str(" \t ");
            }
            for c in node.children() {
                collect_text(c, out);
            }
            if block {
                out.push('\n');
            }
        }
        _ => {
            for c in node.children() {
                collect_text(c, out);
            }
        }
    }
}

/// Parses HTML (html5ever, as browsers do) into title, readable text, absolute links and
/// tables. Relative links resolve against `base` (or the document's `<base href>`).
pub fn parse_page(html: &str, base: Option<&url::Url>) -> Page {
    let doc = Html::parse_document(html);
    let title = doc
        .select(&sel("title"))
        .next()
        .map(|t| squash(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty());
    let base = doc
        .select(&sel("base[href]"))
        .next()
        .and_then(|b| b.value().attr("href"))
        .and_then(|h| match base {
            Some(b) => b.join(h).ok(),
            None => url::Url::parse(h).ok(),
        })
        .or_else(|| base.cloned());
    let mut raw = String::new();
    let root = doc
        .select(&sel("body"))
        .next()
        .map(|b| *b)
        .unwrap_or_else(|| doc.tree.root());
    collect_text(root, &mut raw);
    let text = raw
        .lines()
        .map(squash)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let mut links = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for a in doc.select(&sel("a[href]")) {
        let href = a.value().attr("href").unwrap_or_default().trim();
        let abs = match &base {
            Some(b) => b.join(href).ok(),
            None => url::Url::parse(href).ok(),
        };
        let Some(mut abs) = abs else { continue };
        if !matches!(abs.scheme(), "http" | "https") {
            continue;
        }
        abs.set_fragment(None);
        if seen.insert(abs.to_string()) {
            links.push(Link {
                url: abs.to_string(),
                text: squash(&a.text().collect::<String>()),
            });
        }
    }
    let row_sel = sel("tr");
    let cell_sel = sel("th, td");
    let tables = doc
        .select(&sel("table"))
        .map(|t| {
            t.select(&row_sel)
                // Rows of nested tables belong to those tables.
                .filter(|r| nearest_table(*r).is_some_and(|n| n.id() == t.id()))
                .map(|r| {
                    r.select(&cell_sel)
                        .filter(|c| c.parent().is_some_and(|p| p.id() == r.id()))
                        .map(|c| squash(&c.text().collect::<String>()))
                        .collect::<Vec<_>>()
                })
                .filter(|r| !r.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    Page {
        title,
        text,
        links,
        tables,
    }
}

fn nearest_table(e: ElementRef<'_>) -> Option<ElementRef<'_>> {
    e.ancestors()
        .filter_map(ElementRef::wrap)
        .find(|a| a.value().name() == "table")
}

#[async_trait]
impl Builtin for WebFetch {
    fn spec(&self) -> ToolSpec {
        ToolSpec::new("web_fetch", InvokerSpec::Builtin { name: "web_fetch".into() })
            .description("Fetch a web page and return its title, readable text, links (absolute URLs) and tables")
            .input_schema(json!({
                "type": "object",
                "required": ["url"],
                "properties": {"url": {"type": "string", "pattern": "^https?://"}},
                "additionalProperties": false
            }))
            .policy(
                Policy::default()
                    .allow_hosts(["*"])
                    .with_max_output(4 << 20)
                    .with_timeout(std::time::Duration::from_secs(20)),
            )
    }

    async fn call(&self, input: Value, cx: &ToolContext<'_>) -> Result<Value> {
        let url = input["url"].as_str().unwrap_or_default();
        let resp = cx.http.get(url).await?;
        if !(200..300).contains(&resp.status) {
            return Err(cx.failed(format!("{url} answered HTTP {}", resp.status)));
        }
        let body = String::from_utf8_lossy(&resp.body);
        let ct = resp
            .content_type
            .clone()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let page = if ct.is_empty() || ct.contains("html") || ct.contains("xml") {
            parse_page(&body, Some(&resp.url))
        } else {
            Page {
                text: body.into_owned(),
                ..Page::default()
            }
        };
        let mut out = serde_json::to_value(page).expect("page serializes");
        out["url"] = json!(resp.url.as_str());
        out["status"] = json!(resp.status);
        Ok(out)
    }
}

/// One search hit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub title: String,
    pub url: String,
    pub snippet: String,
}

/// Where `web_search` searches.
#[async_trait]
pub trait SearchBackend: Send + Sync {
    async fn search(
        &self,
        query: &str,
        limit: usize,
        http: &HttpAccess,
        cx: &ToolContext<'_>,
    ) -> Result<Vec<SearchHit>>;
}

/// A search backend as configured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SearchConfig {
    /// A SearXNG instance (`GET {url}/search?q=...&format=json`).
    Searxng { url: String },
    /// Any JSON search API: `url` with `{query}` and `{limit}` placeholders, `results` the
    /// JSON pointer to the array of hits, and pointers within a hit to its fields.
    HttpApi {
        url: String,
        results: String,
        #[serde(default = "ptr_title")]
        title: String,
        #[serde(default = "ptr_url")]
        link: String,
        #[serde(default = "ptr_snippet")]
        snippet: String,
    },
}

fn ptr_title() -> String {
    "/title".into()
}
fn ptr_url() -> String {
    "/url".into()
}
fn ptr_snippet() -> String {
    "/snippet".into()
}

impl SearchConfig {
    pub fn backend(&self) -> Arc<dyn SearchBackend> {
        match self.clone() {
            SearchConfig::Searxng { url } => Arc::new(ApiBackend {
                url: format!(
                    "{}/search?q={{query}}&format=json",
                    url.trim_end_matches('/')
                ),
                results: "/results".into(),
                title: "/title".into(),
                link: "/url".into(),
                snippet: "/content".into(),
            }),
            SearchConfig::HttpApi {
                url,
                results,
                title,
                link,
                snippet,
            } => Arc::new(ApiBackend {
                url,
                results,
                title,
                link,
                snippet,
            }),
        }
    }
}

/// A JSON search API described by a URL template and JSON pointers.
pub struct ApiBackend {
    url: String,
    results: String,
    title: String,
    link: String,
    snippet: String,
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[async_trait]
impl SearchBackend for ApiBackend {
    async fn search(
        &self,
        query: &str,
        limit: usize,
        http: &HttpAccess,
        cx: &ToolContext<'_>,
    ) -> Result<Vec<SearchHit>> {
        let url = self
            .url
            .replace("{query}", &encode(query))
            .replace("{limit}", &limit.to_string());
        let headers: Vec<(String, String)> = cx
            .policy
            .secrets
            .iter()
            .filter_map(|s| Some((s.header.clone()?, cx.secrets.get(&s.name)?.clone())))
            .collect();
        let resp = http.get_with(&url, &headers).await?;
        if !(200..300).contains(&resp.status) {
            return Err(cx.failed(format!(
                "search backend answered HTTP {}: {}",
                resp.status,
                crate::invoke::snippet(&String::from_utf8_lossy(&resp.body), 300)
            )));
        }
        let doc: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| cx.failed(format!("search backend answered with invalid JSON: {e}")))?;
        let hits = doc
            .pointer(&self.results)
            .and_then(Value::as_array)
            .ok_or_else(|| {
                cx.failed(format!(
                    "search backend's answer has no array at \"{}\"",
                    self.results
                ))
            })?;
        let field = |h: &Value, p: &str| {
            h.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(hits
            .iter()
            .map(|h| SearchHit {
                title: field(h, &self.title),
                url: field(h, &self.link),
                snippet: field(h, &self.snippet),
            })
            .filter(|h| !h.url.is_empty())
            .take(limit)
            .collect())
    }
}

/// Searches the web through a configured backend.
pub struct WebSearch {
    backend: Option<Arc<dyn SearchBackend>>,
}

impl WebSearch {
    pub fn new(backend: Option<Arc<dyn SearchBackend>>) -> Self {
        Self { backend }
    }

    pub fn from_config(config: Option<&SearchConfig>) -> Self {
        Self::new(config.map(SearchConfig::backend))
    }
}

#[async_trait]
impl Builtin for WebSearch {
    fn spec(&self) -> ToolSpec {
        ToolSpec::new(
            "web_search",
            InvokerSpec::Builtin {
                name: "web_search".into(),
            },
        )
        .description("Search the web; returns hits with title, URL and snippet")
        .input_schema(json!({
            "type": "object",
            "required": ["query"],
            "properties": {
                "query": {"type": "string", "minLength": 1},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50}
            },
            "additionalProperties": false
        }))
        .policy(Policy::default().allow_hosts(["*"]))
    }

    async fn call(&self, input: Value, cx: &ToolContext<'_>) -> Result<Value> {
        let backend = self.backend.as_ref().ok_or_else(|| {
            Error::Config(
                "web_search has no search backend configured (a SearXNG URL or an HTTP search API)"
                    .into(),
            )
        })?;
        let query = input["query"].as_str().unwrap_or_default();
        let limit = input["limit"].as_u64().unwrap_or(10) as usize;
        let hits = backend.search(query, limit, cx.http, cx).await?;
        Ok(json!({"query": query, "results": hits}))
    }
}
