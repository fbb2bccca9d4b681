//! Who is calling: Bearer JWTs (signed with the development key in the data directory, or by
//! an OIDC/Cognito issuer whose keys come from its JWKS URL) and, on the AWS protocol
//! endpoint, SigV4 signatures by configured access keys. Each maps to a [`Principal`]:
//! tenant, user and the tenant's account.
//!
//! - `sigv4`: AWS Signature Version 4 verification
//! - `jwks`: the issuer's key set, cached and refreshed on unknown key ids

pub mod jwks;
pub mod sigv4;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;
use crate::tenant::{Accounts, DEFAULT_TENANT, Principal, check_tenant};

/// The access key id that, with no access keys configured and development tokens on, signs
/// for the default tenant (as `test`/`test` does for local AWS emulators).
pub const DEV_ACCESS_KEY_ID: &str = "AKIAAGENTRYDEVELOPER";
/// The secret of [`DEV_ACCESS_KEY_ID`].
pub const DEV_SECRET_ACCESS_KEY: &str = "agentry/development/only/secret/key00000";

/// The issuer and audience of development tokens.
pub const DEV_ISSUER: &str = "agentry-dev";
pub const DEV_AUDIENCE: &str = "agentry";

/// Why a caller was refused: the message says what was wrong with what it sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub message: String,
}

impl AuthError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// The HMAC key development tokens are signed with, kept in the data directory.
#[derive(Clone)]
pub struct DevKey {
    secret: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct DevClaims {
    iss: String,
    aud: String,
    sub: String,
    tenant: String,
    #[serde(default)]
    iat: i64,
    exp: i64,
}

impl DevKey {
    /// The key file's name in the data directory.
    pub const FILE: &str = "dev-signing-key";

    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
        }
    }

    pub fn path(data: &Path) -> PathBuf {
        data.join(Self::FILE)
    }

    /// Reads the key in `data`, creating it (32 random bytes, mode 0600) on first use.
    pub fn load_or_create(data: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(data)?;
        let path = Self::path(data);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut f) => {
                let mut secret = [0u8; 32];
                aws_lc_rs::rand::fill(&mut secret)
                    .map_err(|_| std::io::Error::other("no random bytes for the signing key"))?;
                f.write_all(sigv4::hex(&secret).as_bytes())?;
                f.sync_all()?;
                Ok(Self::from_secret(&secret))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Another process may be writing it right now.
                for _ in 0..50 {
                    let text = std::fs::read_to_string(&path)?;
                    let text = text.trim();
                    if text.len() == 64 {
                        let bytes = (0..32)
                            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                            .collect::<Result<Vec<u8>, _>>()
                            .map_err(|_| {
                                std::io::Error::other(format!(
                                    "{}: not a signing key (64 hex digits)",
                                    path.display()
                                ))
                            })?;
                        return Ok(Self::from_secret(&bytes));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(std::io::Error::other(format!(
                    "{}: not a signing key (64 hex digits)",
                    path.display()
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// A token for `user` of `tenant`, valid for `ttl`.
    pub fn issue(&self, tenant: &str, user: &str, ttl: Duration) -> Result<String, String> {
        check_tenant(tenant)?;
        if user.is_empty() {
            return Err("user: must not be empty".into());
        }
        let now = crate::time::now_ms() / 1000;
        let claims = DevClaims {
            iss: DEV_ISSUER.into(),
            aud: DEV_AUDIENCE.into(),
            sub: user.into(),
            tenant: tenant.into(),
            iat: now,
            exp: now + ttl.as_secs() as i64,
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .map_err(|e| format!("cannot sign the token: {e}"))
    }

    fn verify(&self, token: &str) -> Result<(String, String), AuthError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[DEV_ISSUER]);
        v.set_audience(&[DEV_AUDIENCE]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 5;
        let data =
            jsonwebtoken::decode::<DevClaims>(token, &DecodingKey::from_secret(&self.secret), &v)
                .map_err(jwt_error)?;
        Ok((data.claims.tenant, data.claims.sub))
    }
}

/// A JWT library error as the caller should read it.
pub(crate) fn jwt_error(e: jsonwebtoken::errors::Error) -> AuthError {
    AuthError::new(match e.kind() {
        ErrorKind::ExpiredSignature => "token has expired".to_string(),
        ErrorKind::ImmatureSignature => "token is not valid yet (nbf)".to_string(),
        ErrorKind::InvalidSignature => "token signature is invalid".to_string(),
        ErrorKind::InvalidIssuer => "token issuer (iss) is not accepted".to_string(),
        ErrorKind::InvalidAudience => "token audience (aud) is not accepted".to_string(),
        ErrorKind::InvalidAlgorithm => "token algorithm is not accepted".to_string(),
        ErrorKind::MissingRequiredClaim(c) => format!("token has no \"{c}\" claim"),
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            "token is not a JWT".to_string()
        }
        ErrorKind::Json(e) => format!("token claims: {e}"),
        other => format!("token refused: {other:?}"),
    })
}

/// Every way a caller can prove who it is, built once from the config.
pub struct Auth {
    dev: Option<DevKey>,
    jwks: Option<jwks::Jwks>,
    /// access key id → (secret, tenant)
    access_keys: HashMap<String, (String, String)>,
    accounts: Accounts,
}

impl Auth {
    /// `dev` is the data directory's key; it is needed when development tokens are on.
    pub fn new(config: &AuthConfig, dev: Option<DevKey>) -> Result<Self, String> {
        let dev_tokens = config.dev_tokens.unwrap_or(config.jwks.is_none());
        let dev = if dev_tokens {
            Some(dev.ok_or("auth.dev_tokens is on but no development signing key was given")?)
        } else {
            None
        };
        let mut access_keys = HashMap::new();
        for k in &config.access_keys {
            check_tenant(&k.tenant).map_err(|e| format!("auth.access_keys {}: {e}", k.id))?;
            if k.id.is_empty() || k.secret.is_empty() {
                return Err("auth.access_keys: id and secret must not be empty".into());
            }
            access_keys.insert(k.id.clone(), (k.secret.clone(), k.tenant.clone()));
        }
        if access_keys.is_empty() && dev.is_some() {
            access_keys.insert(
                DEV_ACCESS_KEY_ID.into(),
                (DEV_SECRET_ACCESS_KEY.into(), DEFAULT_TENANT.into()),
            );
        }
        let jwks = match &config.jwks {
            Some(j) => Some(jwks::Jwks::new(j.clone())?),
            None => None,
        };
        Ok(Self {
            dev,
            jwks,
            access_keys,
            accounts: Accounts::new(config.accounts.clone())?,
        })
    }

    /// Development tokens only, with `key`: for tests and tools.
    pub fn dev(key: DevKey) -> Self {
        Self::new(&AuthConfig::default(), Some(key)).expect("the default config is valid")
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Checks a Bearer token.
    pub async fn bearer(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(jwt_error)?;
        let (tenant, user) = match (header.alg, &self.dev, &self.jwks) {
            (Algorithm::HS256, Some(dev), _) => dev.verify(token)?,
            (Algorithm::HS256, None, _) => {
                return Err(AuthError::new(
                    "development tokens are not accepted (auth.dev_tokens is off)",
                ));
            }
            (_, _, Some(jwks)) => jwks.verify(token, &header).await?,
            (_, _, None) => {
                return Err(AuthError::new(
                    "token algorithm is not accepted: no JWKS issuer is configured",
                ));
            }
        };
        check_tenant(&tenant).map_err(AuthError::new)?;
        Ok(self.accounts.principal(&tenant, &user))
    }

    /// Checks a SigV4-signed request; the access key's tenant is the principal.
    pub fn sigv4(
        &self,
        req: &sigv4::Signed<'_>,
        authorization: &str,
        now: i64,
    ) -> Result<Principal, sigv4::SigError> {
        let auth = sigv4::parse_authorization(authorization)?;
        let Some((secret, tenant)) = self.access_keys.get(&auth.access_key) else {
            return Err(sigv4::SigError {
                code: "UnrecognizedClientException",
                message: "The security token included in the request is invalid.".into(),
            });
        };
        sigv4::verify(req, &auth, secret, now)?;
        Ok(self.accounts.principal(tenant, &auth.access_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dev_tokens_round_trip_and_refuse_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(DevKey::path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = DevKey::load_or_create(dir.path()).unwrap();
        assert_eq!(key.secret, again.secret);
        let auth = Auth::dev(key.clone());
        let token = key.issue("acme", "alice", Duration::from_secs(60)).unwrap();
        let p = auth.bearer(&token).await.unwrap();
        assert_eq!((p.tenant.as_str(), p.user.as_str()), ("acme", "alice"));
        let other = Auth::dev(DevKey::from_secret(b"another key"));
        assert_eq!(
            other.bearer(&token).await.unwrap_err().message,
            "token signature is invalid"
        );
        let expired = DevClaims {
            iss: DEV_ISSUER.into(),
            aud: DEV_AUDIENCE.into(),
            sub: "alice".into(),
            tenant: "acme".into(),
            iat: 0,
            exp: 1000,
        };
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &expired,
            &EncodingKey::from_secret(&key.secret),
        )
        .unwrap();
        assert_eq!(
            auth.bearer(&expired).await.unwrap_err().message,
            "token has expired"
        );
        assert_eq!(
            auth.bearer("not.a.jwt").await.unwrap_err().message,
            "token is not a JWT"
        );
    }
}
