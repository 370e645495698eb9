//! The sandbox's request log: every Management API request (`/api/v1/…`) as received — method,
//! path, decoded query and JSON body, with passwords redacted — kept in memory (the newest
//! [`MAX_RECORDED`]) so tests can check what a client actually sent (e.g. against Okta's
//! OpenAPI spec). Control: `GET /__sandbox/requests`, `DELETE /__sandbox/requests` (SSWS).

use axum::Json;
use axum::body::Body;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::{OktaError, Ssws, St};

/// How many requests the log keeps (the oldest are dropped first).
pub const MAX_RECORDED: usize = 10_000;

/// The largest body the log buffers; a larger one is refused with 413, as Okta would.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// What a redacted secret is replaced with.
const REDACTED: &str = "[redacted]";

/// JSON pointers of secrets in Management API bodies, replaced by `"[redacted]"`.
const SECRETS: &[&str] = &[
    "/credentials/password/value",
    "/credentials/recovery_question/answer",
    "/oldPassword/value",
    "/newPassword/value",
    "/password",
];

/// One Management API request the sandbox received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path as received (still percent-encoded), e.g. `/api/v1/users/00u…/lifecycle/suspend`.
    pub path: String,
    /// Query parameters in order, decoded (`application/x-www-form-urlencoded`).
    pub query: Vec<(String, String)>,
    /// The JSON body, when the request had one that parses as JSON; passwords are
    /// `"[redacted]"`.
    pub body: Option<Value>,
}

fn redact(mut body: Value) -> Value {
    for pointer in SECRETS {
        if let Some(slot) = body.pointer_mut(pointer)
            && !slot.is_object()
            && !slot.is_null()
        {
            *slot = Value::String(REDACTED.to_owned());
        }
    }
    body
}

/// Records `/api/v1/…` requests, then passes them on unchanged.
pub(super) async fn record(
    state: St,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if !req.uri().path().starts_with("/api/v1/") {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return OktaError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "E0000001",
                summary: "Api validation failed: request body too large".into(),
                causes: Vec::new(),
            }
            .into_response();
        }
    };
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<Value>(&bytes).ok().map(redact)
    };
    state.record(RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query,
        body,
    });
    next.run(axum::extract::Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// `GET /__sandbox/requests`: the log, oldest first.
pub(super) async fn list(_auth: Ssws, state: St) -> Json<Vec<RecordedRequest>> {
    Json(state.requests())
}

/// `DELETE /__sandbox/requests`: empties the log.
pub(super) async fn clear(_auth: Ssws, state: St) -> StatusCode {
    state.clear_requests();
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn passwords_are_redacted_and_the_rest_kept() {
        let body = super::redact(json!({
            "profile": {"login": "a@example.com"},
            "credentials": {"password": {"value": "Secr3t-pass"}, "provider": {"type": "OKTA"}},
        }));
        assert_eq!(body["credentials"]["password"]["value"], "[redacted]");
        assert_eq!(body["credentials"]["provider"]["type"], "OKTA");
        assert_eq!(body["profile"]["login"], "a@example.com");
        // Nothing to redact: unchanged (no key is added).
        let plain = json!({"profile": {"uebaHealth": 75}});
        assert_eq!(super::redact(plain.clone()), plain);
    }
}
