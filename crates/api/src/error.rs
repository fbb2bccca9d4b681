//! The JSON API's errors, `{"error": CODE, "message": TEXT}` with a fitting status, and the
//! request body extractor that names the field a bad body got wrong.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::AppState;

/// The body of every JSON API error.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: `ValidationError`, `NotFound`, `StateMachineDoesNotExist`...
    pub error: String,
    /// What was wrong, for a person.
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let mut resp = (
            self.status,
            Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response();
        if unauthorized {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"agentry\""),
            );
        }
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

impl From<agentry_engine::Error> for ApiError {
    fn from(e: agentry_engine::Error) -> Self {
        use agentry_engine::Error as E;
        let status = match &e {
            E::StateMachineDoesNotExist(_)
            | E::ExecutionDoesNotExist(_)
            | E::InvalidToken(_)
            | E::ActivityDoesNotExist(_)
            | E::ResourceNotFound(_) => StatusCode::NOT_FOUND,
            E::StateMachineAlreadyExists(_)
            | E::ExecutionAlreadyExists(_)
            | E::StateMachineDeleting(_)
            | E::Conflict(_)
            | E::ExecutionNotRedrivable(_)
            | E::TaskTimedOut(_) => StatusCode::CONFLICT,
            E::Store(_) | E::Queue(_) | E::Corrupt(_) | E::Contended(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        let code = match &e {
            E::InvalidToken(_) => "TaskTokenDoesNotExist",
            E::InvalidPaginationToken(_) => "InvalidNextToken",
            other => other.aws_name(),
        };
        let message = match &e {
            E::InvalidDefinition { message, .. } | E::InvalidExecutionInput { message, .. } => {
                message.clone()
            }
            other => other.to_string(),
        };
        ApiError::new(status, code, message)
    }
}

impl From<agentry_tools::Error> for ApiError {
    fn from(e: agentry_tools::Error) -> Self {
        use agentry_tools::Error as E;
        let (status, code) = match &e {
            E::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            E::Config(_) | E::SchemaValidation { .. } => {
                (StatusCode::BAD_REQUEST, "ValidationError")
            }
            E::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
            _ => (StatusCode::BAD_GATEWAY, e.name()),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<agentry_sessions::Error> for ApiError {
    fn from(e: agentry_sessions::Error) -> Self {
        use agentry_sessions::Error as E;
        match e {
            E::NotFound(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{what} not found"),
            ),
            E::Invalid { .. } => ApiError::bad_request(e.to_string()),
            E::Busy(_) => ApiError::new(StatusCode::CONFLICT, "SessionBusy", e.to_string()),
            E::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "Conflict", e.to_string()),
            E::Engine(e) => e.into(),
            E::Store(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                e.to_string(),
            ),
            E::Corrupt(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Corrupt", e.to_string())
            }
        }
    }
}

/// Reads a body of at most `limit` bytes; a larger one is 413.
pub async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| too_large_or(e, limit))
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PayloadTooLarge",
        format!("request body is over the limit of {limit} bytes"),
    )
}

fn too_large_or(e: axum::Error, limit: usize) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return too_large(limit);
        }
        source = s.source();
    }
    ApiError::bad_request(format!("cannot read the request body: {e}"))
}

/// Parses JSON naming the field at fault: `field "input.items[2]": invalid type...`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{')
        && serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
    {
        return Err(ApiError::bad_request(
            "request body: expected a JSON object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let text = inner.to_string();
        let text = match text.find(" at line ") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("request body is not valid JSON: {inner}")
        } else if let Some(name) = text
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            if path == "." {
                format!("field \"{name}\" is required")
            } else {
                format!("field \"{path}.{name}\" is required")
            }
        } else if path == "." {
            format!("request body: {text}")
        } else {
            format!("field \"{path}\": {text}")
        };
        ApiError::bad_request(message)
    })
}

/// A JSON body (whatever its content type says: curl's `-d` sends a form type), limited in
/// size; an empty body reads as `{}`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state.gateway.limits.max_body_bytes).await?;
        parse_json(&bytes).map(JsonBody)
    }
}
