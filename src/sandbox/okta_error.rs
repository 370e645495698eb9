//! Okta's error body: `errorCode`, `errorSummary`, `errorLink`, `errorId`, `errorCauses`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An Okta Management API error.
#[derive(Debug, Clone)]
pub struct OktaError {
    /// HTTP status.
    pub status: StatusCode,
    /// `E0000…`.
    pub code: &'static str,
    /// Summary.
    pub summary: String,
    /// Causes.
    pub causes: Vec<String>,
}

impl OktaError {
    /// 401 E0000011.
    pub fn invalid_token() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "E0000011",
            summary: "Invalid token provided".into(),
            causes: Vec::new(),
        }
    }

    /// 403 E0000006: the caller lacks the permission (for OAuth callers: the scope).
    pub fn forbidden() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "E0000006",
            summary: "You do not have permission to perform the requested action".into(),
            causes: Vec::new(),
        }
    }

    /// 404 E0000007.
    pub fn not_found(what: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "E0000007",
            summary: format!("Not found: Resource not found: {what}"),
            causes: Vec::new(),
        }
    }

    /// 400 E0000001 with causes.
    pub fn validation(causes: Vec<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "E0000001",
            summary: format!(
                "Api validation failed: {}",
                causes.first().map(String::as_str).unwrap_or("request")
            ),
            causes,
        }
    }

    /// 400 E0000003 (malformed body).
    pub fn malformed(detail: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "E0000003",
            summary: "The request body was not well-formed.".into(),
            causes: vec![detail.to_owned()],
        }
    }
}

impl IntoResponse for OktaError {
    fn into_response(self) -> Response {
        let error_id = format!("oae{}", &uuid::Uuid::new_v4().simple().to_string()[..19]);
        let body = json!({
            "errorCode": self.code,
            "errorSummary": self.summary,
            "errorLink": self.code,
            "errorId": error_id,
            "errorCauses": self.causes.iter().map(|c| json!({"errorSummary": c})).collect::<Vec<_>>(),
        });
        (self.status, axum::Json(body)).into_response()
    }
}
