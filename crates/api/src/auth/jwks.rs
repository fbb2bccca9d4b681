//! An OIDC (or Cognito user pool) issuer's signing keys, fetched from its JWKS URL. Keys are
//! cached for `cache_seconds`; a token naming a `kid` not in the cache fetches the set again,
//! at most once per `min_refresh_seconds`, so a flood of tokens with made-up key ids cannot
//! turn into a flood of requests to the issuer.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Map, Value};

use super::{AuthError, jwt_error};
use crate::config::JwksConfig;

#[derive(Default)]
struct Cache {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched: Option<Instant>,
}

pub struct Jwks {
    config: JwksConfig,
    client: reqwest::Client,
    cache: RwLock<Cache>,
    /// When the set was last asked for; held while fetching, so one fetch runs at a time.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// The algorithm a key is for: its `alg`, or the usual one for its type.
fn algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if let Some(a) = jwk.common.key_algorithm {
        return Algorithm::try_from(a).ok();
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        _ => None,
    }
}

impl Jwks {
    pub fn new(config: JwksConfig) -> Result<Self, String> {
        if config.url.is_empty() {
            return Err("auth.jwks.url is required".into());
        }
        if config.issuer.is_empty() {
            return Err("auth.jwks.issuer is required".into());
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("auth.jwks: cannot build the HTTP client: {e}"))?;
        Ok(Self {
            config,
            client,
            cache: RwLock::new(Cache::default()),
            last_fetch: tokio::sync::Mutex::new(None),
        })
    }

    fn cached(&self, kid: &str) -> (Option<(DecodingKey, Algorithm)>, bool) {
        let c = self.cache.read().expect("jwks cache");
        let fresh = c
            .fetched
            .is_some_and(|t| t.elapsed() < Duration::from_secs(self.config.cache_seconds));
        (c.keys.get(kid).cloned(), fresh)
    }

    async fn fetch(&self) -> Result<(), String> {
        let resp = self
            .client
            .get(&self.config.url)
            .send()
            .await
            .map_err(|e| format!("cannot fetch the JWKS at {}: {e}", self.config.url))?;
        if !resp.status().is_success() {
            return Err(format!(
                "the JWKS at {} answered {}",
                self.config.url,
                resp.status()
            ));
        }
        let set: JwkSet = resp
            .json()
            .await
            .map_err(|e| format!("the JWKS at {} is not a key set: {e}", self.config.url))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), algorithm(jwk)) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (key, alg));
            }
        }
        let mut c = self.cache.write().expect("jwks cache");
        c.keys = keys;
        c.fetched = Some(Instant::now());
        Ok(())
    }

    /// The key `kid` names, fetching the set again when it is unknown or the cache is old.
    async fn key(&self, kid: &str) -> Result<(DecodingKey, Algorithm), AuthError> {
        if let (Some(k), true) = self.cached(kid) {
            return Ok(k);
        }
        let mut last = self.last_fetch.lock().await;
        // Someone else may have fetched while this waited.
        let (known, fresh) = self.cached(kid);
        if let (Some(k), true) = (&known, fresh) {
            return Ok(k.clone());
        }
        let min = Duration::from_secs(self.config.min_refresh_seconds);
        if last.is_some_and(|t| t.elapsed() < min) {
            return known.ok_or_else(|| {
                AuthError::new(format!(
                    "token key id \"{kid}\" is not in the issuer's key set"
                ))
            });
        }
        *last = Some(Instant::now());
        if let Err(e) = self.fetch().await {
            tracing::warn!("{e}");
            // A key known from before still verifies while the issuer cannot be reached.
            return known.ok_or_else(|| AuthError::new(format!("token cannot be checked: {e}")));
        }
        self.cached(kid).0.ok_or_else(|| {
            AuthError::new(format!(
                "token key id \"{kid}\" is not in the issuer's key set"
            ))
        })
    }

    /// Verifies a token from this issuer; answers `(tenant, user)`.
    pub async fn verify(
        &self,
        token: &str,
        header: &Header,
    ) -> Result<(String, String), AuthError> {
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| AuthError::new("token header has no key id (kid)"))?;
        let (key, alg) = self.key(kid).await?;
        if header.alg != alg {
            return Err(AuthError::new(format!(
                "token algorithm {:?} does not match key \"{kid}\" ({alg:?})",
                header.alg
            )));
        }
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.config.issuer]);
        v.validate_aud = false;
        v.set_required_spec_claims(&["exp", "iss"]);
        v.leeway = 60;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v)
            .map_err(jwt_error)?
            .claims;
        let c = &self.config;
        if !c.audiences.is_empty() {
            let auds: Vec<&str> = match claims.get("aud") {
                Some(Value::String(a)) => vec![a.as_str()],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let client = claims.get("client_id").and_then(Value::as_str);
            let ok = auds
                .iter()
                .chain(client.iter())
                .any(|a| c.audiences.iter().any(|x| x == a));
            if !ok {
                return Err(AuthError::new(
                    "token audience (aud or client_id) is not accepted",
                ));
            }
        }
        if !c.token_use.is_empty() {
            let used = claims.get("token_use").and_then(Value::as_str);
            if !used.is_some_and(|u| c.token_use.iter().any(|x| x == u)) {
                return Err(AuthError::new(format!(
                    "token_use {:?} is not accepted (expected one of {:?})",
                    used.unwrap_or("none"),
                    c.token_use
                )));
            }
        }
        let tenant = claims
            .get(&c.tenant_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| AuthError::new(format!("token has no \"{}\" claim", c.tenant_claim)))?;
        let user = claims
            .get(&c.user_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| AuthError::new(format!("token has no \"{}\" claim", c.user_claim)))?;
        Ok((tenant.to_string(), user.to_string()))
    }
}
