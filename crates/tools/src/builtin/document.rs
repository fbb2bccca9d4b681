//! `create_document`: Markdown rendered as HTML (pulldown-cmark) and PDF ([`super::pdf`]),
//! stored as objects under a directory (default `data/objects`).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::registry::{InvokerSpec, ToolSpec};
use crate::{Builtin, Policy, ToolContext};

pub struct CreateDocument {
    dir: PathBuf,
}

impl Default for CreateDocument {
    fn default() -> Self {
        Self::new("data/objects")
    }
}

impl CreateDocument {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

/// Markdown (with tables) as a complete HTML document.
pub fn markdown_to_html(markdown: &str, title: &str) -> String {
    let parser = pulldown_cmark::Parser::new_ext(
        markdown,
        pulldown_cmark::Options::ENABLE_TABLES | pulldown_cmark::Options::ENABLE_STRIKETHROUGH,
    );
    let mut body = String::new();
    pulldown_cmark::html::push_html(&mut body, parser);
    let mut t = String::new();
    pulldown_cmark_escape::escape_html(&mut t, title).expect("writing to a string");
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head>\n<body>\n{body}</body></html>\n"
    )
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-');
    let out: String = out.chars().take(60).collect();
    if out.is_empty() {
        "document".into()
    } else {
        out
    }
}

/// FNV-1a, for content-addressed names (the same document gets the same key).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

async fn write_object(dir: &Path, key: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(key);
    if let Some(p) = path.parent() {
        tokio::fs::create_dir_all(p).await?;
    }
    let tmp = path.with_extension("partial");
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, &path).await?;
    Ok(path)
}

#[async_trait]
impl Builtin for CreateDocument {
    fn spec(&self) -> ToolSpec {
        ToolSpec::new("create_document", InvokerSpec::Builtin { name: "create_document".into() })
            .description("Render Markdown as HTML and/or PDF and store it; returns the stored objects' keys, paths and sizes")
            .input_schema(json!({
                "type": "object",
                "required": ["markdown"],
                "properties": {
                    "markdown": {"type": "string"},
                    "title": {"type": "string"},
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,80}$"},
                    "formats": {"type": "array", "items": {"enum": ["html", "pdf", "md"]}, "minItems": 1}
                },
                "additionalProperties": false
            }))
            .policy(Policy::default())
    }

    async fn call(&self, input: Value, cx: &ToolContext<'_>) -> Result<Value> {
        let markdown = input["markdown"].as_str().unwrap_or_default();
        let title = input["title"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| {
                markdown
                    .lines()
                    .find(|l| l.starts_with('#'))
                    .map(|l| l.trim_start_matches('#').trim().to_owned())
                    .unwrap_or_else(|| "Document".into())
            });
        let formats: Vec<String> = match input.get("formats").and_then(Value::as_array) {
            Some(a) => a
                .iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect(),
            None => vec!["html".into(), "pdf".into()],
        };
        let stem = match input["name"].as_str() {
            Some(n) => n.to_owned(),
            None => format!("{}-{:08x}", slug(&title), fnv(markdown.as_bytes()) as u32),
        };
        let mut docs = Vec::new();
        for f in formats {
            let bytes = match f.as_str() {
                "html" => markdown_to_html(markdown, &title).into_bytes(),
                "pdf" => super::pdf::markdown_to_pdf(markdown, &title),
                _ => markdown.as_bytes().to_vec(),
            };
            let key = format!("documents/{}/{stem}.{f}", cx.tenant);
            let path = write_object(&self.dir, &key, &bytes).await.map_err(|e| {
                Error::failed(
                    cx.tool,
                    format!("storing {key} under {}: {e}", self.dir.display()),
                )
            })?;
            docs.push(json!({
                "format": f,
                "key": key,
                "path": path.display().to_string(),
                "bytes": bytes.len(),
            }));
        }
        Ok(json!({"title": title, "documents": docs}))
    }
}
