//! `send_email`: a message sent over SMTP (lettre). The SMTP server's name is resolved and
//! checked by the tool's network guard and the connection goes to the checked address (TLS
//! still verifies the server's name). Recipients outside the configured domains make the call
//! wait for approval.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::approval::Approval;
use crate::error::{Error, Result};
use crate::policy::SecretRef;
use crate::registry::{InvokerSpec, ToolSpec};
use crate::{Builtin, Policy, ToolContext};

/// How `send_email` reaches its SMTP server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// `starttls` (default), `tls` (implicit TLS, usually port 465) or `none` (a local relay).
    #[serde(default = "default_tls")]
    pub tls: String,
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    /// Name of the secret holding the SMTP password.
    #[serde(default)]
    pub password_secret: Option<String>,
    /// Recipients outside these domains need a human's approval (empty: no rule).
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Private networks the SMTP server may be on (CIDRs, as in [`Policy`]).
    #[serde(default)]
    pub allow_private_networks: Vec<String>,
}

fn default_port() -> u16 {
    587
}
fn default_tls() -> String {
    "starttls".into()
}

pub struct SendEmail {
    config: EmailConfig,
}

impl SendEmail {
    pub fn new(config: EmailConfig) -> Result<Self> {
        if !matches!(config.tls.as_str(), "starttls" | "tls" | "none") {
            return Err(Error::Config(format!(
                "send_email: tls must be \"starttls\", \"tls\" or \"none\", not \"{}\"",
                config.tls
            )));
        }
        config
            .from
            .parse::<Mailbox>()
            .map_err(|e| Error::Config(format!("send_email: from \"{}\": {e}", config.from)))?;
        Ok(Self { config })
    }
}

fn addresses(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[async_trait]
impl Builtin for SendEmail {
    fn spec(&self) -> ToolSpec {
        let c = &self.config;
        let mut policy = Policy::default()
            .allow_hosts([c.host.clone()])
            .allow_private(c.allow_private_networks.clone())
            .with_timeout(Duration::from_secs(30));
        if let Some(s) = &c.password_secret {
            policy.secrets.push(SecretRef {
                name: s.clone(),
                env: None,
                header: None,
            });
        }
        let recipients = json!({"anyOf": [
            {"type": "string", "minLength": 3},
            {"type": "array", "items": {"type": "string", "minLength": 3}, "minItems": 1}
        ]});
        ToolSpec::new(
            "send_email",
            InvokerSpec::Builtin {
                name: "send_email".into(),
            },
        )
        .description("Send an email (plain text, optionally with an HTML alternative)")
        .input_schema(json!({
            "type": "object",
            "required": ["to", "subject", "body"],
            "properties": {
                "to": recipients,
                "cc": recipients,
                "subject": {"type": "string"},
                "body": {"type": "string"},
                "html": {"type": "string"}
            },
            "additionalProperties": false
        }))
        .policy(policy)
        .approval(if c.allowed_domains.is_empty() {
            Approval::Never
        } else {
            Approval::RecipientsOutside {
                pointer: "/to".into(),
                domains: c.allowed_domains.clone(),
            }
        })
    }

    async fn call(&self, input: Value, cx: &ToolContext<'_>) -> Result<Value> {
        let c = &self.config;
        let parse = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| cx.failed(format!("invalid address \"{a}\": {e}")))
        };
        let to = addresses(&input["to"]);
        let cc = addresses(&input["cc"]);
        let mut b = Message::builder()
            .from(parse(&c.from)?)
            .subject(input["subject"].as_str().unwrap_or_default());
        for a in &to {
            b = b.to(parse(a)?);
        }
        for a in &cc {
            b = b.cc(parse(a)?);
        }
        if !cx.idempotency_key.is_empty() {
            let domain = c
                .from
                .rsplit_once('@')
                .map(|(_, d)| d.trim_end_matches('>'))
                .unwrap_or("agentry");
            let id: String = cx
                .idempotency_key
                .chars()
                .map(|ch| {
                    if ch.is_ascii_alphanumeric() || ch == '.' || ch == '-' {
                        ch
                    } else {
                        '.'
                    }
                })
                .collect();
            b = b.message_id(Some(format!("<{id}@{domain}>")));
        }
        let text = input["body"].as_str().unwrap_or_default().to_owned();
        let msg = match input["html"].as_str() {
            Some(h) => b.multipart(MultiPart::alternative_plain_html(text, h.to_owned())),
            None => b.header(ContentType::TEXT_PLAIN).body(text),
        }
        .map_err(|e| cx.failed(format!("building the message: {e}")))?;

        // Connect to an address the guard checked, not to a name resolved again later.
        let addrs = cx.http.guard().resolve(&c.host, c.port).await?;
        let ip = addrs[0].ip().to_string();
        let tls_params = || {
            TlsParameters::new(c.host.clone())
                .map_err(|e| cx.failed(format!("TLS for {}: {e}", c.host)))
        };
        let tls = match c.tls.as_str() {
            "none" => Tls::None,
            "tls" => Tls::Wrapper(tls_params()?),
            _ => Tls::Required(tls_params()?),
        };
        let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(ip)
            .port(c.port)
            .tls(tls)
            .hello_name(ClientId::Domain("agentry.local".into()))
            .timeout(Some(cx.policy.timeout()));
        if let (Some(u), Some(s)) = (&c.username, &c.password_secret) {
            let pw = cx
                .secrets
                .get(s)
                .ok_or_else(|| cx.failed(format!("secret \"{s}\" is not provided")))?;
            t = t.credentials(Credentials::new(u.clone(), pw.clone()));
        }
        let resp = t
            .build()
            .send(msg)
            .await
            .map_err(|e| cx.failed(format!("SMTP {}:{}: {e}", c.host, c.port)))?;
        Ok(json!({
            "accepted": to.iter().chain(&cc).collect::<Vec<_>>(),
            "response": format!("{} {}", resp.code(), resp.message().collect::<Vec<_>>().join(" ")),
        }))
    }
}
