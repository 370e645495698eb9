//! One error type for every handler, rendered as RFC 9457 `application/problem+json`. Internal
//! causes are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Scope;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of our problem `type` URIs.
const TYPE_PREFIX: &str = "urn:ssf-transmitter:problem:";

pub use crate::validation::FieldError;

/// An upstream (Okta) outcome to report.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Our status.
    pub status: StatusCode,
    /// Problem type slug.
    pub slug: &'static str,
    /// What happened.
    pub detail: String,
    /// Okta's error.
    pub okta: Option<OktaErrorView>,
    /// Ambiguous matches.
    pub candidates: Option<serde_json::Value>,
    /// `Retry-After` seconds.
    pub retry_after: Option<u64>,
}

/// RFC 9457 problem details.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`urn:ssf-transmitter:problem:…`).
    #[serde(rename = "type")]
    #[schema(example = "urn:ssf-transmitter:problem:invalid-request")]
    pub kind: String,
    /// Short summary of the type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The fields at fault, when the input was invalid.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<FieldError>,
    /// Okta's error, when Okta refused the request (`errorCode`, `errorSummary`, `errorCauses`, `errorId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub okta: Option<OktaErrorView>,
    /// The users an ambiguous identity matched (nothing was done).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub candidates: Option<serde_json::Value>,
}

/// Okta's error, passed through.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OktaErrorView {
    /// HTTP status Okta answered.
    pub status: u16,
    /// e.g. `E0000001`.
    pub error_code: String,
    /// Okta's summary.
    pub error_summary: String,
    /// Okta's causes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_causes: Vec<String>,
    /// Okta's request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
}

/// An error a handler returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request (syntax, wrong types).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Well-formed but invalid fields.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// Invalid fields where the protocol wants 400, not 422 (the SSF stream management API).
    #[error("invalid request")]
    InvalidRequest(Vec<FieldError>),
    /// No token, or a token we do not know.
    #[error("unauthorized")]
    Unauthorized {
        /// A token was sent but is invalid (adds `error="invalid_token"`).
        token_sent: bool,
    },
    /// The token lacks the scope.
    #[error("insufficient scope: needs {0}")]
    Forbidden(Scope),
    /// The configuration does not allow this (e.g. `[enforcement] assignable_roles`); the
    /// message names the setting. Nothing was sent.
    #[error("not permitted: {0}")]
    NotPermitted(String),
    /// Nothing there.
    #[error("not found: {0}")]
    NotFound(String),
    /// Conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Method not allowed on this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Body over the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// Wrong content type.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// A dependency is not ready.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// An upstream (Okta) outcome: any status, Okta's error or candidates attached.
    #[error("{}", .0.detail)]
    Upstream(Box<Upstream>),
    /// Something broke on our side; the cause is logged, not sent.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ApiError {
    /// Wraps an internal cause.
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    /// A validation error on one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::NotPermitted(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Upstream(u) => u.status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidRequest(_) => "invalid-request",
            ApiError::Validation(_) => "validation-failed",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::Forbidden(_) => "insufficient-scope",
            ApiError::NotPermitted(_) => "not-permitted",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::PayloadTooLarge => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Upstream(u) => u.slug,
            ApiError::Internal(_) => "internal",
        }
    }

    fn problem(&self) -> Problem {
        let status = self.status();
        let (detail, errors) = match self {
            ApiError::BadRequest(d)
            | ApiError::NotPermitted(d)
            | ApiError::NotFound(d)
            | ApiError::Conflict(d)
            | ApiError::UnsupportedMediaType(d)
            | ApiError::Unavailable(d) => (Some(d.clone()), Vec::new()),
            ApiError::Validation(errs) | ApiError::InvalidRequest(errs) => (
                Some(
                    errs.iter()
                        .map(|e| format!("{}: {}", e.field, e.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                errs.clone(),
            ),
            ApiError::Unauthorized { token_sent: false } => (
                Some("a bearer token is required: send `Authorization: Bearer <token>`".into()),
                Vec::new(),
            ),
            ApiError::Unauthorized { token_sent: true } => (
                Some("the bearer token is invalid or revoked".into()),
                Vec::new(),
            ),
            ApiError::Forbidden(scope) => (
                Some(format!("this operation needs the scope `{scope}`")),
                Vec::new(),
            ),
            ApiError::MethodNotAllowed => (
                Some("this method is not allowed on this path".into()),
                Vec::new(),
            ),
            ApiError::PayloadTooLarge => (
                Some("the request body is larger than the configured limit".into()),
                Vec::new(),
            ),
            ApiError::Upstream(u) => (Some(u.detail.clone()), Vec::new()),
            ApiError::Internal(_) => (
                Some("an internal error occurred; the request id in the X-Request-Id header locates it in the logs".into()),
                Vec::new(),
            ),
        };
        let (okta, candidates) = match self {
            ApiError::Upstream(u) => (u.okta.clone(), u.candidates.clone()),
            _ => (None, None),
        };
        Problem {
            kind: format!("{TYPE_PREFIX}{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors,
            okta,
            candidates,
        }
    }
}

/// The problem body of an error (for embedding, e.g. in idempotent replays).
pub fn problem_body(e: &ApiError) -> Problem {
    e.problem()
}

/// JSON text with every non-ASCII character as a `\uXXXX` escape. A problem often quotes what
/// the caller sent; in pure ASCII it reads the same whatever charset a client guesses for a
/// media type without one (`application/problem+json` has no charset parameter).
fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            // Outside JSON strings there is only ASCII, so every such character is in a string.
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// Renders a problem body with the right content type.
pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_string(problem)
        .map(|j| ascii_json(&j))
        .unwrap_or_else(|_| "{}".to_owned());
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = %format!("{e:#}"), "internal error");
        }
        let status = self.status();
        let mut resp = problem_response(status, &self.problem());
        match &self {
            ApiError::Unauthorized { token_sent } => {
                let v = if *token_sent {
                    HeaderValue::from_static(r#"Bearer error="invalid_token""#)
                } else {
                    HeaderValue::from_static("Bearer")
                };
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            ApiError::Upstream(u) if u.retry_after.is_some() => {
                let secs = u.retry_after.unwrap_or(1);
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            ApiError::Forbidden(scope) => {
                if let Ok(v) = HeaderValue::from_str(&format!(
                    r#"Bearer error="insufficient_scope", scope="{scope}""#
                )) {
                    resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            _ => {}
        }
        resp
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as J;
        match r {
            J::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".into(),
            ),
            J::JsonSyntaxError(e) => {
                ApiError::BadRequest(format!("malformed JSON: {}", e.body_text()))
            }
            J::JsonDataError(e) => ApiError::BadRequest(format!("invalid body: {}", e.body_text())),
            J::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        ApiError::BadRequest(crate::validation::humanize(&r.body_text()))
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::BadRequest(crate::validation::humanize(&r.body_text()))
    }
}

/// The problem of a body over the limit, which it states.
fn too_large(max_body_bytes: usize) -> Problem {
    let status = StatusCode::PAYLOAD_TOO_LARGE;
    Problem {
        kind: format!("{TYPE_PREFIX}payload-too-large"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: Some(format!(
            "the request body is larger than the limit of {max_body_bytes} bytes (max_body_bytes)"
        )),
        errors: Vec::new(),
        okta: None,
        candidates: None,
    }
}

/// Marks an error answer whose body is its protocol's own, not problem+json: an OAuth 2.0 token
/// error (RFC 6749 §5.2), which clients read as `{"error", "error_description"}`.
/// [`ensure_problem_json`] leaves such an answer as it is.
#[derive(Debug, Clone, Copy)]
pub struct ProtocolError;

/// Turns any error response produced outside our handlers (unknown route, method not allowed,
/// panics, body limits) into problem+json, so every error body has the same shape. A 413 (from
/// any layer) states the configured limit.
pub async fn ensure_problem_json(
    axum::extract::State(max_body_bytes): axum::extract::State<usize>,
    resp: Response,
) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        let (parts, _) = resp.into_parts();
        let mut out = problem_response(status, &too_large(max_body_bytes));
        for (name, value) in &parts.headers {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                out.headers_mut().append(name.clone(), value.clone());
            }
        }
        return out;
    }
    if resp.extensions().get::<ProtocolError>().is_some() {
        return resp;
    }
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON) || v.starts_with("text/html"));
    // An HTML error is the approval page's own answer to a person in a browser.
    if is_problem {
        return resp;
    }
    let (parts, _) = resp.into_parts();
    let (slug, detail) = match status {
        StatusCode::NOT_FOUND => ("not-found", "no such resource or route"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            "this method is not allowed on this path",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload-too-large",
            "the request body is larger than the configured limit",
        ),
        s if s.is_server_error() => ("internal", "an internal error occurred"),
        _ => ("invalid-request", "the request could not be processed"),
    };
    let problem = Problem {
        kind: format!("{TYPE_PREFIX}{slug}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: Some(detail.to_owned()),
        errors: Vec::new(),
        okta: None,
        candidates: None,
    };
    let mut out = problem_response(status, &problem);
    // Keep headers such as Allow, Retry-After and the request id.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn problem_json_is_ascii_and_round_trips() {
        let text = "Zoë \u{88}\"\\ 😀";
        let json = super::ascii_json(&serde_json::to_string(text).expect("json"));
        assert!(json.is_ascii(), "{json}");
        let back: String = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(back, text);
    }
}
