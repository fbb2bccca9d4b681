//! The middleware every request passes: probes and the OpenAPI document go through; anything
//! else must authenticate (Bearer JWT, or SigV4 on the AWS protocol endpoint), stay within its
//! tenant's rate, and send a body no larger than the limit. The [`Principal`] found is put in
//! the request's extensions for the handlers.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::auth::sigv4;
use crate::error::{ApiError, read_body, too_large};
use crate::tenant::Principal;

/// Paths anyone may call.
const OPEN: [&str; 3] = ["/healthz", "/readyz", "/openapi.json"];

/// Whether the request is for the AWS protocol endpoint, whose errors have AWS's shape.
fn is_aws(req: &Request) -> bool {
    req.uri().path() == "/"
}

/// An error in the shape the endpoint speaks.
fn refuse(aws: bool, e: ApiError) -> Response {
    if aws {
        crate::aws::error(e.status, &e.code, e.message)
    } else {
        e.into_response()
    }
}

pub async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if OPEN.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let aws = is_aws(&req);
    let limit = state.gateway.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return refuse(aws, too_large(limit));
    }
    let (principal, mut req) = match authenticate(&state, req, aws).await {
        Ok(x) => x,
        Err(e) => return refuse(aws, e),
    };
    if let Err(secs) = state.gateway.rate.take(&principal.tenant) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            if aws {
                "ThrottlingException"
            } else {
                "TooManyRequests"
            },
            format!(
                "tenant \"{}\" is over its rate of {} requests per second",
                principal.tenant, state.gateway.limits.requests_per_second
            ),
        );
        e.retry_after = Some(secs);
        let mut resp = refuse(aws, e);
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return resp;
    }
    if let Some(tools) = &state.tools
        && let Err(e) = tools
            .tasks
            .bind_account(&principal.account, &principal.tenant)
            .await
    {
        tracing::warn!(error = %e, tenant = %principal.tenant, "binding the tenant's account for its tool calls");
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// Event streams may carry the token as `?access_token=`: browsers' EventSource and WebSocket
/// cannot set headers.
fn query_token(req: &Request) -> Option<String> {
    let path = req.uri().path();
    if !(path.ends_with("/events") || path.ends_with("/events/ws")) {
        return None;
    }
    req.uri().query()?.split('&').find_map(|p| {
        p.strip_prefix("access_token=")
            .map(|t| t.replace("%2E", ".").replace("%2e", "."))
    })
}

async fn authenticate(
    state: &AppState,
    req: Request,
    aws: bool,
) -> Result<(Principal, Request), ApiError> {
    let auth = &state.gateway.auth;
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let unauthorized = |message: String| {
        if aws {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "UnrecognizedClientException",
                message,
            )
        } else {
            ApiError::unauthorized(message)
        }
    };
    match header {
        Some(h) if h.starts_with("AWS4-") => {
            let (parts, body) = req.into_parts();
            let limit = state.gateway.limits.max_body_bytes;
            let bytes = read_body(Request::from_parts(parts.clone(), body), limit).await?;
            let signed = sigv4::Signed {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                headers: &parts.headers,
                body: &bytes,
            };
            let now = crate::time::now_ms() / 1000;
            let principal = auth.sigv4(&signed, &h, now).map_err(|e| {
                let status = if e.code == "IncompleteSignatureException" {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::FORBIDDEN
                };
                ApiError::new(status, e.code, e.message)
            })?;
            Ok((principal, Request::from_parts(parts, Body::from(bytes))))
        }
        Some(h) => {
            let token = h
                .strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
                .ok_or_else(|| {
                    unauthorized(
                        "Authorization header: expected \"Bearer <token>\" (or a SigV4 signature on the AWS endpoint)".into(),
                    )
                })?;
            let principal = auth
                .bearer(token.trim())
                .await
                .map_err(|e| unauthorized(e.message))?;
            Ok((principal, req))
        }
        None => match query_token(&req) {
            Some(token) => {
                let principal = auth
                    .bearer(&token)
                    .await
                    .map_err(|e| unauthorized(e.message))?;
                Ok((principal, req))
            }
            None if aws => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token: sign the request with an access key (SigV4) or send a Bearer token",
            )),
            None => Err(ApiError::unauthorized(
                "Authorization header is missing: send \"Authorization: Bearer <token>\" (`agentry token --tenant T --user U` prints one)",
            )),
        },
    }
}
