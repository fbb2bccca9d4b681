//! The gateway's section of `agentry.toml`: who may call it and how much. The binary loads the
//! file; each struct has defaults and refuses unknown fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
}

/// How callers prove who they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Accept Bearer tokens signed with the development key kept in the data directory
    /// (`agentry token`). Default: on unless `jwks` is configured.
    pub dev_tokens: Option<bool>,
    /// Production tokens: an OIDC provider's (or Cognito user pool's) signing keys.
    pub jwks: Option<JwksConfig>,
    /// SigV4 access keys for the AWS protocol endpoint. Without any, the development key pair
    /// ([`DEV_ACCESS_KEY_ID`](crate::auth::DEV_ACCESS_KEY_ID)) answers for the default tenant
    /// while development tokens are on.
    pub access_keys: Vec<AccessKeyConfig>,
    /// Tenants whose AWS account id is set rather than derived from their name.
    pub accounts: BTreeMap<String, String>,
}

/// A JWKS-backed token issuer, as Cognito or any OIDC provider publishes one.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwksConfig {
    /// Where the keys are, e.g.
    /// `https://cognito-idp.REGION.amazonaws.com/POOL_ID/.well-known/jwks.json`.
    pub url: String,
    /// The `iss` every token must carry.
    pub issuer: String,
    /// Accepted audiences: a token's `aud` (ID tokens) or `client_id` (Cognito access tokens)
    /// must be one of them. Empty: not checked.
    pub audiences: Vec<String>,
    /// Accepted `token_use` values (Cognito: `access`, `id`). Empty: not checked.
    pub token_use: Vec<String>,
    /// The claim naming the tenant (Cognito: a custom attribute such as `custom:tenant`).
    pub tenant_claim: String,
    /// The claim naming the user.
    pub user_claim: String,
    /// Keys are fetched again after this long.
    pub cache_seconds: u64,
    /// An unknown `kid` fetches the keys again at most this often.
    pub min_refresh_seconds: u64,
}

impl Default for JwksConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            issuer: String::new(),
            audiences: Vec::new(),
            token_use: Vec::new(),
            tenant_claim: "tenant".into(),
            user_claim: "sub".into(),
            cache_seconds: 3600,
            min_refresh_seconds: 30,
        }
    }
}

/// One SigV4 access key and the tenant it acts for.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyConfig {
    pub id: String,
    pub secret: String,
    pub tenant: String,
}

/// What one request and one tenant may use.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body accepted (AWS's 256 KiB execution inputs fit in the default 1 MiB).
    pub max_body_bytes: usize,
    /// Each tenant's sustained request rate (token bucket refill); 0 turns the limit off.
    pub requests_per_second: f64,
    /// Requests a tenant may make at once above the sustained rate (bucket size).
    pub burst: u32,
    /// How often live event streams look for new history events.
    pub events_poll_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            requests_per_second: 1000.0,
            burst: 2000,
            events_poll_ms: 100,
        }
    }
}
