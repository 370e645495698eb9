//! Fault injection for the receive endpoint (tests and demos): fail the next N pushes with a status,
//! rate-limit the next N with a reset time, add latency.

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
}

/// What to do with one push.
pub(super) enum Injected {
    None,
    Fail(StatusCode),
    RateLimit(u64),
}

impl Faults {
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
    state.set_faults(faults.clone());
    Ok(Json(faults))
}

pub(super) async fn clear(_auth: Ssws, state: St) -> StatusCode {
    state.set_faults(Faults::default());
    StatusCode::NO_CONTENT
}
