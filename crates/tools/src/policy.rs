//! A tool's policy (its IAM role): how long it may run, which hosts it may reach, which
//! private networks (if any) it may reach, its file-system scope, the secrets it receives and
//! how much output it may return.
//!
//! Network rules are enforced where the connection is made: the HTTP client a tool gets
//! resolves names through [`GuardedResolver`], which drops every address the policy forbids
//! before the connector sees it (so the connection goes to an address that was checked; there
//! is no second lookup to race), and follows a redirect only after the new URL passes the same
//! checks. Literal IP addresses in URLs never reach a resolver, so they are checked before the
//! request and on each redirect.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::{Host, Url};

use crate::error::{Error, Result};

/// A tool's policy. Every field has a safe default: 30 s, no network, no private networks,
/// 1 MiB of output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// How long one call may take, in milliseconds.
    pub timeout_ms: u64,
    /// Hosts the tool may reach: `example.com`, `*.example.com` (any subdomain), or `*` (any
    /// host). Empty: no network access.
    pub allow_hosts: Vec<String>,
    /// Private, loopback and other non-public networks the tool may reach anyway, as CIDRs
    /// (`127.0.0.0/8`, `::1/128`) or `*` for all. Empty: none, whatever `allow_hosts` says.
    pub allow_private_networks: Vec<String>,
    /// Largest output accepted, in bytes (of the JSON a tool returns, or of what a process or
    /// HTTP endpoint sends back).
    pub max_output_bytes: usize,
    /// Working directory of a process tool.
    pub working_dir: Option<PathBuf>,
    /// Paths a process tool may use besides its working directory (passed to it as
    /// `AGENTRY_ALLOWED_PATHS`, separated by `:`).
    pub allowed_paths: Vec<PathBuf>,
    /// Environment of a process tool (the rest of the environment is cleared).
    pub env: BTreeMap<String, String>,
    /// Secrets handed to the tool, by name.
    pub secrets: Vec<SecretRef>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            timeout_ms: 30_000,
            allow_hosts: Vec::new(),
            allow_private_networks: Vec::new(),
            max_output_bytes: 1 << 20,
            working_dir: None,
            allowed_paths: Vec::new(),
            env: BTreeMap::new(),
            secrets: Vec::new(),
        }
    }
}

impl Policy {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Allows the given hosts (builder style).
    pub fn allow_hosts<I: IntoIterator<Item = S>, S: Into<String>>(mut self, hosts: I) -> Self {
        self.allow_hosts.extend(hosts.into_iter().map(Into::into));
        self
    }

    /// Allows the given private networks (builder style).
    pub fn allow_private<I: IntoIterator<Item = S>, S: Into<String>>(mut self, nets: I) -> Self {
        self.allow_private_networks
            .extend(nets.into_iter().map(Into::into));
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = timeout.as_millis() as u64;
        self
    }

    /// Runs a process tool in `dir` (builder style).
    pub fn with_working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    pub fn with_max_output(mut self, bytes: usize) -> Self {
        self.max_output_bytes = bytes;
        self
    }
}

/// A secret the tool receives: the secret `name` (looked up in the registry's secrets), put in
/// the environment variable `env` of a process tool, or the header `header` of an HTTP tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub name: String,
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub header: Option<String>,
}

/// A network range in CIDR notation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "\"{s}\" is not a network (a CIDR such as 10.0.0.0/8)"
            ))
        };
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim_matches(['[', ']']).parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Why an address is not public, or `None` for a public address. IPv6 forms that carry an IPv4
/// address (mapped, compatible, NAT64, 6to4) are judged by the address they carry.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() => "unspecified",
        (0, _, _) => "the \"this network\" range 0.0.0.0/8",
        (127, _, _) => "loopback",
        (10, _, _) => "private (10.0.0.0/8)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (100, 64..=127, _) => "shared address space (100.64.0.0/10, CGNAT)",
        (169, 254, _) => "link-local (169.254.0.0/16, where cloud metadata lives)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved or broadcast",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated)
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return non_public_v4(embedded(s[6], s[7]));
    }
    // NAT64: 64:ff9b::/96 (well-known) and 64:ff9b:1::/48 (local use) carry the IPv4 address
    // in the last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b {
        if s[2] == 1 {
            return Some("local-use NAT64 (64:ff9b:1::/48)");
        }
        return non_public_v4(embedded(s[6], s[7]));
    }
    // 6to4: 2002:a.b.c.d::/48
    if s[0] == 0x2002 {
        return non_public_v4(embedded(s[1], s[2]));
    }
    Some(match s[0] {
        x if x & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        x if x & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        x if x & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        x if x & 0xff00 == 0xff00 => "multicast",
        0x2001 if s[1] == 0x0db8 => "documentation (2001:db8::/32)",
        0x2001 if s[1] == 0 => "Teredo (2001::/32)",
        0x0100 if s[1..4] == [0, 0, 0] => "discard-only (100::/64)",
        _ => return None,
    })
}

/// The network rules of one tool, shared by its resolver, its redirect policy and the checks
/// before each request.
#[derive(Debug)]
pub struct NetGuard {
    tool: String,
    hosts: Vec<String>,
    private: Vec<Cidr>,
    all_private: bool,
}

impl NetGuard {
    pub fn new(tool: &str, policy: &Policy) -> Result<Self> {
        let mut private = Vec::new();
        let mut all_private = false;
        for n in &policy.allow_private_networks {
            if n == "*" {
                all_private = true;
            } else {
                private.push(Cidr::parse(n)?);
            }
        }
        Ok(Self {
            tool: tool.to_owned(),
            hosts: policy
                .allow_hosts
                .iter()
                .map(|h| h.trim().trim_matches(['[', ']']).to_ascii_lowercase())
                .collect(),
            private,
            all_private,
        })
    }

    fn forbidden(&self, reason: String) -> Error {
        Error::forbidden(&self.tool, reason)
    }

    /// Whether the tool may connect to `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<()> {
        match non_public(ip) {
            None => Ok(()),
            Some(_) if self.all_private || self.private.iter().any(|c| c.contains(ip)) => Ok(()),
            Some(why) => Err(self.forbidden(format!(
                "address {ip} is {why}, and the tool's policy does not allow that network"
            ))),
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|h| {
            h == "*"
                || *h == host
                || h.strip_prefix("*.")
                    .is_some_and(|d| host.ends_with(&format!(".{d}")))
        })
    }

    /// Resolves `host` (checked against the allow-list) to the addresses the tool may connect
    /// to, for protocols that connect by themselves: connect to these, not to the name.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        let url: Url = format!("http://{}:{port}/", bracket(host))
            .parse()
            .map_err(|_| self.forbidden(format!("\"{host}\" is not a host name")))?;
        self.check_url(&url)?;
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| self.forbidden(format!("resolving {host}: {e}")))?
            .collect();
        let mut first_refusal = None;
        let ok: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match self.check_ip(a.ip()) {
                Ok(()) => true,
                Err(e) => {
                    first_refusal.get_or_insert(e);
                    false
                }
            })
            .collect();
        match (ok.is_empty(), first_refusal) {
            (true, Some(e)) => Err(e),
            (true, None) => Err(self.forbidden(format!("{host} resolves to no address"))),
            _ => Ok(ok),
        }
    }

    /// Whether the tool may request `url`: scheme http(s), host on the allow-list, and a
    /// literal IP address allowed by the network rules (names are checked when resolved).
    pub fn check_url(&self, url: &Url) -> Result<()> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self.forbidden(format!(
                "scheme \"{}\" of {url} is not allowed (only http and https)",
                url.scheme()
            )));
        }
        let host = match url.host() {
            Some(h) => h,
            None => return Err(self.forbidden(format!("{url} has no host"))),
        };
        let (name, ip) = match host {
            Host::Domain(d) => (d.to_owned(), d.parse::<IpAddr>().ok()),
            Host::Ipv4(a) => (a.to_string(), Some(IpAddr::V4(a))),
            Host::Ipv6(a) => (a.to_string(), Some(IpAddr::V6(a))),
        };
        if !self.host_allowed(&name) {
            return Err(self.forbidden(if self.hosts.is_empty() {
                format!("the tool's policy allows no network access (requested {name})")
            } else {
                format!("host {name} is not on the tool's allow-list")
            }));
        }
        if let Some(ip) = ip {
            self.check_ip(ip)?;
        }
        Ok(())
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// A DNS resolver that hands the connector only the addresses the policy allows.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    guard: Arc<NetGuard>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match guard.check_ip(a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert(e);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let e = match refused {
                    Some(Error::Forbidden { tool, reason }) => Error::Forbidden {
                        tool,
                        reason: format!("{host} resolves to a forbidden address: {reason}"),
                    },
                    _ => guard.forbidden(format!("{host} resolves to no address")),
                };
                return Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client of one tool: names resolved through [`GuardedResolver`], each redirect (at
/// most 10) checked again, no proxy (a proxy would connect on the tool's behalf, unchecked).
pub fn client(guard: Arc<NetGuard>, timeout: Duration) -> Result<reqwest::Client> {
    let redirect_guard = guard.clone();
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver {
            guard: guard.clone(),
        }))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error(redirect_guard.forbidden("more than 10 redirects".into()));
            }
            match redirect_guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        }))
        .no_proxy()
        .timeout(timeout)
        .user_agent(concat!("agentry-tools/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Config(format!("http client: {e}")))
}

/// The policy error inside a reqwest error (from the resolver or the redirect policy), or a
/// plain failure describing it.
pub fn from_reqwest(tool: &str, e: reqwest::Error) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(err) = s.downcast_ref::<Error>() {
            return err.clone();
        }
        source = s.source();
    }
    if e.is_timeout() {
        return Error::Failed {
            tool: tool.to_owned(),
            message: format!("request timed out: {e}"),
        };
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    Error::failed(tool, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_public_addresses_are_named() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
        ] {
            assert!(non_public(ip(a)).is_some(), "{a} passed as public");
        }
        for a in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(non_public(ip(a)), None, "{a} refused");
        }
    }

    #[test]
    fn cidrs_and_allow_lists() {
        let c = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(c.contains(ip("127.9.9.9")) && !c.contains(ip("128.0.0.1")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        let g = NetGuard::new(
            "t",
            &Policy::default()
                .allow_hosts(["example.com", "*.example.org"])
                .allow_private(["127.0.0.1/32"]),
        )
        .unwrap();
        assert!(
            g.check_url(&"https://example.com/x".parse().unwrap())
                .is_ok()
        );
        assert!(
            g.check_url(&"https://a.b.example.org/".parse().unwrap())
                .is_ok()
        );
        assert!(
            g.check_url(&"https://example.org/".parse().unwrap())
                .is_err()
        );
        assert!(g.check_url(&"https://evil.com/".parse().unwrap()).is_err());
        assert!(g.check_url(&"file:///etc/passwd".parse().unwrap()).is_err());
        assert!(g.check_ip(ip("127.0.0.1")).is_ok());
        assert!(g.check_ip(ip("127.0.0.2")).is_err());
    }
}
