//! Authentication: development tokens, an OIDC issuer's JWKS (served by a local HTTP server
//! as Cognito serves one), and SigV4 on the AWS endpoint.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentry_api::config::{AccessKeyConfig, AuthConfig, JwksConfig};
use agentry_api::{AppState, Auth, DevKey, LimitsConfig, router};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{app, call, token, token_of};

#[tokio::test]
async fn every_route_but_probes_needs_a_valid_token() {
    let app = app();
    for open in ["/healthz", "/readyz", "/openapi.json"] {
        let (s, _) = call(&app, "GET", open, None, None).await;
        assert_eq!(s, StatusCode::OK, "{open}");
    }
    let body = Some(
        json!({"definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}})
            .to_string(),
    );
    let (s, v) = call(&app, "POST", "/v1/validate", None, body.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "Unauthorized");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("Authorization header is missing"),
        "{v}"
    );
    let (s, v) = call(&app, "POST", "/v1/validate", Some("garbage"), body.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["message"], "token is not a JWT");
    let foreign = DevKey::from_secret(b"someone else's key")
        .issue("default", "mallory", Duration::from_secs(60))
        .unwrap();
    let (s, v) = call(&app, "POST", "/v1/validate", Some(&foreign), body.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["message"], "token signature is invalid");
    let (s, _) = call(&app, "POST", "/v1/validate", Some(&token()), body.clone()).await;
    assert_eq!(s, StatusCode::OK);
    // A plain 401 carries the challenge header.
    let resp = app
        .clone()
        .oneshot(
            Request::get("/v1/state-machines")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn expired_development_tokens_are_refused() {
    #[derive(serde::Serialize)]
    struct Claims {
        iss: &'static str,
        aud: &'static str,
        sub: &'static str,
        tenant: &'static str,
        exp: i64,
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Signed with the right key, so only the expiry is wrong. The key is the tests' secret.
    let t = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &Claims {
            iss: "agentry-dev",
            aud: "agentry",
            sub: "u",
            tenant: "default",
            exp: now - 3600,
        },
        &jsonwebtoken::EncodingKey::from_secret(b"the gateway tests' signing key"),
    )
    .unwrap();
    let (s, v) = call(&app(), "GET", "/v1/state-machines", Some(&t), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["message"], "token has expired");
}

/// A JWKS endpoint as an OIDC provider serves it, counting fetches.
#[derive(Clone, Default)]
struct Issuer {
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<Mutex<usize>>,
}

struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
}

impl SigningKey {
    fn new(kid: &str) -> Self {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        Self {
            kid: kid.into(),
            pkcs8: doc.as_ref().to_vec(),
        }
    }

    fn jwk(&self) -> Value {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.pkcs8).unwrap();
        let point = pair.public_key().as_ref();
        assert_eq!(point[0], 4);
        json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
               "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])})
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8),
        )
        .unwrap()
    }
}

async fn issuer_server(issuer: Issuer) -> String {
    let app = axum::Router::new().route(
        "/pool/.well-known/jwks.json",
        axum::routing::get(move || {
            let issuer = issuer.clone();
            async move {
                *issuer.fetches.lock().unwrap() += 1;
                let keys = issuer.keys.lock().unwrap().clone();
                axum::Json(json!({"keys": keys}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/pool/.well-known/jwks.json")
}

/// An RS256 key as Cognito signs with: a fixed 2048-bit test key (PKCS#1 DER, base64).
fn cognito_rsa_key() -> (Vec<u8>, Value) {
    let text: String = include_str!("rsa-test-key.b64")
        .split_whitespace()
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    let pair = aws_lc_rs::rsa::KeyPair::from_der(&der).unwrap();
    let public = pair.public_key();
    let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
    let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
    let jwk = json!({"alg": "RS256", "e": e, "kid": "rsa-1", "kty": "RSA", "n": n, "use": "sig"});
    (der, jwk)
}

#[tokio::test]
async fn rs256_tokens_from_a_cognito_shaped_key_set() {
    let issuer = Issuer::default();
    let (der, jwk) = cognito_rsa_key();
    issuer.keys.lock().unwrap().push(jwk);
    let url = issuer_server(issuer.clone()).await;
    let iss = "https://cognito-idp.local/pool";
    let config = AuthConfig {
        jwks: Some(JwksConfig {
            url,
            issuer: iss.into(),
            audiences: vec!["web-client".into()],
            tenant_claim: "custom:tenant".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let app = router(AppState::new(
        None,
        Auth::new(&config, None).unwrap(),
        LimitsConfig::default(),
    ));
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let sign = |claims: &Value, header: &jsonwebtoken::Header| {
        jsonwebtoken::encode(
            header,
            claims,
            &jsonwebtoken::EncodingKey::from_rsa_der(&der),
        )
        .unwrap()
    };
    // An ID token: `aud` carries the client.
    let mut claims = cognito_claims(iss, "id", "acme");
    claims.as_object_mut().unwrap().remove("client_id");
    claims["aud"] = json!("web-client");
    let t = sign(&claims, &header);
    let (s, v) = call(&app, "GET", "/v1/state-machines", Some(&t), None).await;
    // Authenticated: the engine-less server answers 503, not 401.
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    // The same key named with another algorithm is refused.
    let mut wrong = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS384);
    wrong.kid = Some("rsa-1".into());
    let t = sign(&claims, &wrong);
    let (s, v) = call(&app, "GET", "/v1/state-machines", Some(&t), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("does not match key"),
        "{v}"
    );
}

fn cognito_claims(iss: &str, token_use: &str, tenant: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({"iss": iss, "sub": "user-123", "client_id": "web-client", "token_use": token_use,
           "custom:tenant": tenant, "exp": now + 600, "iat": now})
}

#[tokio::test]
async fn jwks_tokens_are_checked_and_keys_refreshed_on_rotation() {
    let issuer = Issuer::default();
    let k1 = SigningKey::new("k1");
    issuer.keys.lock().unwrap().push(k1.jwk());
    let url = issuer_server(issuer.clone()).await;
    let iss = "https://cognito-idp.local/pool";
    let config = AuthConfig {
        jwks: Some(JwksConfig {
            url,
            issuer: iss.into(),
            audiences: vec!["web-client".into()],
            token_use: vec!["access".into()],
            tenant_claim: "custom:tenant".into(),
            min_refresh_seconds: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    let auth = Auth::new(&config, None).unwrap();
    let app = router(AppState::new(None, auth, LimitsConfig::default()));
    let get = |t: String| {
        let app = app.clone();
        async move {
            call(
                &app,
                "POST",
                "/v1/validate",
                Some(&t),
                Some(
                    r#"{"definition": {"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}}"#
                        .into(),
                ),
            )
            .await
        }
    };
    let (s, v) = get(k1.sign(&cognito_claims(iss, "access", "acme"))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(*issuer.fetches.lock().unwrap(), 1);
    // Cached: no second fetch.
    let (s, _) = get(k1.sign(&cognito_claims(iss, "access", "acme"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(*issuer.fetches.lock().unwrap(), 1);

    // Wrong issuer, token_use, audience, missing tenant.
    let (s, v) = get(k1.sign(&cognito_claims("https://elsewhere", "access", "acme"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["message"], "token issuer (iss) is not accepted");
    let (_, v) = get(k1.sign(&cognito_claims(iss, "id", "acme"))).await;
    assert!(v["message"].as_str().unwrap().contains("token_use"), "{v}");
    let mut c = cognito_claims(iss, "access", "acme");
    c["client_id"] = json!("other-client");
    let (_, v) = get(k1.sign(&c)).await;
    assert_eq!(
        v["message"],
        "token audience (aud or client_id) is not accepted"
    );
    let mut c = cognito_claims(iss, "access", "acme");
    c.as_object_mut().unwrap().remove("custom:tenant");
    let (_, v) = get(k1.sign(&c)).await;
    assert_eq!(v["message"], "token has no \"custom:tenant\" claim");
    let mut c = cognito_claims(iss, "access", "acme");
    c["exp"] = json!(1000);
    let (_, v) = get(k1.sign(&c)).await;
    assert_eq!(v["message"], "token has expired");
    // Signed by a key with the right kid but the wrong private key.
    let impostor = SigningKey {
        kid: "k1".into(),
        pkcs8: SigningKey::new("x").pkcs8,
    };
    let (_, v) = get(impostor.sign(&cognito_claims(iss, "access", "acme"))).await;
    assert_eq!(v["message"], "token signature is invalid");
    assert_eq!(*issuer.fetches.lock().unwrap(), 1);

    // The issuer rotates to k2: a token naming it fetches the set again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let k2 = SigningKey::new("k2");
    issuer.keys.lock().unwrap().push(k2.jwk());
    let (s, v) = get(k2.sign(&cognito_claims(iss, "access", "globex"))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(*issuer.fetches.lock().unwrap(), 2);
    // Unknown key ids fetch at most once per min_refresh_seconds.
    for i in 0..5 {
        let bogus = SigningKey::new(&format!("made-up-{i}"));
        let (s, v) = get(bogus.sign(&cognito_claims(iss, "access", "acme"))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("not in the issuer's key set"),
            "{v}"
        );
    }
    assert!(
        *issuer.fetches.lock().unwrap() <= 3,
        "{}",
        issuer.fetches.lock().unwrap()
    );
    // Development tokens are off once a JWKS issuer is configured.
    let (_, v) = get(token()).await;
    assert_eq!(
        v["message"],
        "development tokens are not accepted (auth.dev_tokens is off)"
    );
}

fn signed_aws_request(
    access_key: &str,
    secret: &str,
    action: &str,
    body: &str,
    tamper: bool,
) -> Request<Body> {
    use agentry_api::auth::sigv4;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let amz_date = {
        // 20261125T180233Z
        let d = now.div_euclid(86400);
        let s = now.rem_euclid(86400);
        let z = d + 719468;
        let era = z.div_euclid(146097);
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
        format!(
            "{y:04}{m:02}{day:02}T{:02}{:02}{:02}Z",
            s / 3600,
            s % 3600 / 60,
            s % 60
        )
    };
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("host", "localhost:8080".parse().unwrap());
    headers.insert("x-amz-date", amz_date.parse().unwrap());
    headers.insert(
        "x-amz-target",
        format!("AWSStepFunctions.{action}").parse().unwrap(),
    );
    headers.insert(
        "content-type",
        "application/x-amz-json-1.0".parse().unwrap(),
    );
    let auth = sigv4::Authorization {
        access_key: access_key.into(),
        date: amz_date[..8].into(),
        region: "us-east-1".into(),
        service: "states".into(),
        signed_headers: ["content-type", "host", "x-amz-date", "x-amz-target"]
            .map(String::from)
            .to_vec(),
        signature: String::new(),
    };
    let signed = sigv4::Signed {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    let sig = sigv4::signature(&signed, &auth, &amz_date, secret).unwrap();
    let mut req = Request::post("/");
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let sent = if tamper {
        body.replace("A", "B")
    } else {
        body.to_string()
    };
    req.header(
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={access_key}/{}/us-east-1/states/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={sig}",
            &amz_date[..8]
        ),
    )
    .body(Body::from(sent))
    .unwrap()
}

#[tokio::test]
async fn sigv4_requests_are_verified_and_mapped_to_the_key_tenant() {
    let config = AuthConfig {
        access_keys: vec![AccessKeyConfig {
            id: "AKIDACME".into(),
            secret: "acme-secret".into(),
            tenant: "acme".into(),
        }],
        ..Default::default()
    };
    let auth = Auth::new(&config, Some(super::key())).unwrap();
    let app = router(AppState::new(None, auth, LimitsConfig::default()));
    let body = json!({"definition": "{\"StartAt\": \"A\", \"States\": {\"A\": {\"Type\": \"Pass\", \"End\": true}}}"}).to_string();
    let send = |req: Request<Body>| {
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let s = resp.status();
            let b = resp.into_body().collect().await.unwrap().to_bytes();
            (
                s,
                serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null),
            )
        }
    };
    let (s, v) = send(signed_aws_request(
        "AKIDACME",
        "acme-secret",
        "ValidateStateMachineDefinition",
        &body,
        false,
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["result"], "OK");
    let (s, v) = send(signed_aws_request(
        "AKIDACME",
        "wrong",
        "ValidateStateMachineDefinition",
        &body,
        false,
    ))
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["__type"], "InvalidSignatureException");
    let (s, v) = send(signed_aws_request(
        "AKIDACME",
        "acme-secret",
        "ValidateStateMachineDefinition",
        &body,
        true,
    ))
    .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a changed body breaks the signature"
    );
    assert_eq!(v["__type"], "InvalidSignatureException");
    let (s, v) = send(signed_aws_request(
        "AKIDNOBODY",
        "x",
        "ValidateStateMachineDefinition",
        &body,
        false,
    ))
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["__type"], "UnrecognizedClientException");
    // Configured keys replace the development pair.
    let (_, v) = send(signed_aws_request(
        agentry_api::auth::DEV_ACCESS_KEY_ID,
        agentry_api::auth::DEV_SECRET_ACCESS_KEY,
        "ValidateStateMachineDefinition",
        &body,
        false,
    ))
    .await;
    assert_eq!(v["__type"], "UnrecognizedClientException");
    // Unsigned: AWS's missing-token error.
    let req = Request::post("/")
        .header("x-amz-target", "AWSStepFunctions.ListStateMachines")
        .body(Body::from("{}"))
        .unwrap();
    let (s, v) = send(req).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["__type"], "MissingAuthenticationTokenException");

    // With no keys configured, the development pair signs for the default tenant.
    let app = router(super::state_with(None, LimitsConfig::default()));
    let resp = app
        .oneshot(signed_aws_request(
            agentry_api::auth::DEV_ACCESS_KEY_ID,
            agentry_api::auth::DEV_SECRET_ACCESS_KEY,
            "ValidateStateMachineDefinition",
            &body,
            false,
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let _ = token_of;
}
