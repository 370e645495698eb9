//! Fault injection for the receive endpoint (tests and demos): fail the next N pushes with a status,
//! rate-limit the next N with a reset time, add latency, keep a stale JWKS for N seconds; and for
//! the Management API: fail or rate-limit the next N calls, or enforce a real per-second rate
//! limit (`api_rate_limit_per_sec`, see `rate_limit`).

use axum::Json;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{OktaError, Ssws, St};

/// Faults applied to `POST /security/api/v1/security-events`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Answer the next N pushes with `fail_status`.
    pub fail_next: u32,
    /// Status for `fail_next` (default 503).
    pub fail_status: Option<u16>,
    /// Answer the next N pushes with 429.
    pub rate_limit_next: u32,
    /// `X-Rate-Limit-Reset` is now + this many seconds (default 1).
    pub rate_limit_reset_secs: Option<u64>,
    /// Delay every push by this many milliseconds.
    pub latency_ms: u64,
    /// For this many seconds from now, keep every JWKS already cached without refreshing it, as
    /// Okta may after `keys activate`: SETs signed by a key it has not seen get 400
    /// `invalid_key`. 0 (or clearing the faults) lifts it.
    pub jwks_stale_secs: u64,
    /// Management API (`/api/v1/…`): answer the next N matching calls with `api_fail_status`.
    pub api_fail_next: u32,
    /// Status for `api_fail_next` (default 503).
    pub api_fail_status: Option<u16>,
    /// Management API: answer the next N matching calls with 429 `E0000047`.
    pub api_rate_limit_next: u32,
    /// `X-Rate-Limit-Reset` of those 429s is now + this many seconds (default 1).
    pub api_rate_limit_reset_secs: Option<u64>,
    /// OAuth token endpoint (`/oauth2/v1/token`): answer the next N requests with 429.
    pub oauth_rate_limit_next: u32,
    /// `X-Rate-Limit-Reset` of those 429s is now + this many seconds (default 1).
    pub oauth_rate_limit_reset_secs: Option<u64>,
    /// The `expires_in` of access tokens issued from now on (default 3600).
    pub oauth_token_expires_in_secs: Option<u64>,
    /// Management API: delay every matching call by this many milliseconds (a slow org).
    pub api_latency_ms: u64,
    /// Only Management API calls whose path contains this are affected (default: all).
    pub api_path_contains: Option<String>,
    /// Management API: at most this many calls per one-second window (epoch seconds of the
    /// sandbox's clock), answered with `X-Rate-Limit-*` of that window; a call beyond it gets 429
    /// `E0000047` (see `rate_limit`). Not consumed; `None` (the default) sends Okta's default
    /// headers.
    pub api_rate_limit_per_sec: Option<u32>,
}

/// What to do with one push.
pub(super) enum Injected {
    None,
    Fail(StatusCode),
    RateLimit(u64),
}

impl Faults {
    /// The fault for one Management API call to `path`.
    pub(super) fn take_api(&mut self, path: &str) -> Injected {
        if self
            .api_path_contains
            .as_deref()
            .is_some_and(|p| !path.contains(p))
        {
            return Injected::None;
        }
        if self.api_rate_limit_next > 0 {
            self.api_rate_limit_next -= 1;
            return Injected::RateLimit(self.api_rate_limit_reset_secs.unwrap_or(1));
        }
        if self.api_fail_next > 0 {
            self.api_fail_next -= 1;
            let status = self
                .api_fail_status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return Injected::Fail(status);
        }
        Injected::None
    }

    pub(super) fn take(&mut self) -> Injected {
        if self.rate_limit_next > 0 {
            self.rate_limit_next -= 1;
            return Injected::RateLimit(self.rate_limit_reset_secs.unwrap_or(1));
        }
        if self.fail_next > 0 {
            self.fail_next -= 1;
            let status = self
                .fail_status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return Injected::Fail(status);
        }
        Injected::None
    }
}

pub(super) async fn get(_auth: Ssws, state: St) -> Json<Faults> {
    Json(state.faults.lock().map(|f| f.clone()).unwrap_or_default())
}

pub(super) async fn put(
    _auth: Ssws,
    state: St,
    body: Result<Json<Faults>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Faults>, OktaError> {
    let Json(faults) = body.map_err(|e| OktaError::malformed(&e.body_text()))?;
    if faults.api_rate_limit_per_sec == Some(0) {
        return Err(OktaError::validation(vec![
            "api_rate_limit_per_sec: must be at least 1".into(),
        ]));
    }
    state.set_faults(faults.clone());
    Ok(Json(faults))
}

pub(super) async fn clear(_auth: Ssws, state: St) -> StatusCode {
    state.set_faults(Faults::default());
    StatusCode::NO_CONTENT
}

/// 429 `E0000047` with Okta's rate-limit headers, reset `secs` from now.
pub(super) fn rate_limited(state: &super::SandboxState, secs: u64) -> axum::response::Response {
    let reset = state
        .clock
        .now()
        .timestamp()
        .saturating_add(i64::try_from(secs).unwrap_or(1));
    rate_limited_until(reset)
}

/// 429 `E0000047`, `X-Rate-Limit-Remaining: 0` and `X-Rate-Limit-Reset: reset` (epoch seconds).
pub(super) fn rate_limited_until(reset: i64) -> axum::response::Response {
    use axum::http::HeaderValue;
    use axum::response::IntoResponse as _;
    let mut resp = OktaError {
        status: StatusCode::TOO_MANY_REQUESTS,
        code: "E0000047",
        summary: "API call exceeded rate limit due to too many requests.".into(),
        causes: Vec::new(),
    }
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&reset.to_string()) {
        resp.headers_mut().insert("x-rate-limit-reset", v);
    }
    resp.headers_mut()
        .insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
    resp
}

/// Applies Management API faults (`api_*`) before the route runs.
pub(super) async fn management(
    state: St,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let path = req.uri().path().to_owned();
    if !path.starts_with("/api/v1/") {
        return next.run(req).await;
    }
    let (injected, latency) = state
        .faults
        .lock()
        .map(|mut f| {
            let applies = f
                .api_path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p));
            let latency = if applies { f.api_latency_ms } else { 0 };
            (f.take_api(&path), latency)
        })
        .unwrap_or((Injected::None, 0));
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    match injected {
        Injected::None => next.run(req).await,
        Injected::RateLimit(secs) => rate_limited(&state, secs),
        Injected::Fail(status) => OktaError {
            status,
            code: "E0000009",
            summary: "Internal Server Error".into(),
            causes: Vec::new(),
        }
        .into_response(),
    }
}
