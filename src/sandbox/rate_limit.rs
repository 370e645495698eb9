//! A real rate limit on the Management API (`/api/v1/…`), set at run time with the fault
//! `api_rate_limit_per_sec` (`PUT /__sandbox/faults`).
//!
//! Like Okta's per-window counters, calls are counted in fixed one-second windows aligned to the
//! epoch seconds of the sandbox's clock. While a limit is set, every Management API answer carries
//! `X-Rate-Limit-Limit: N`, `X-Rate-Limit-Remaining` (what is left in this window) and
//! `X-Rate-Limit-Reset` (the epoch second the window ends); a call beyond N in its window is
//! answered 429 `E0000047` without reaching the route (nothing changes). The sandbox counts what
//! it admitted and what it refused since the faults were last set (`PUT` or `DELETE`): `GET /__sandbox/rate-limit`
//! (`{"limit", "admitted", "rejected"}`) and [`SandboxState::rate_limit_stats`].

use axum::Json;
use axum::http::HeaderValue;
use serde::Serialize;

use super::{SandboxState, Ssws, St};

/// The limiter's counters since the faults were last set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RateLimitStats {
    /// Calls per one-second window (`null`: no limit, Okta's default headers are sent).
    pub limit: Option<u32>,
    /// Management API calls admitted while the limit was set.
    pub admitted: u64,
    /// Management API calls answered 429 by the limiter.
    pub rejected: u64,
}

impl RateLimitStats {
    /// `rejected / (admitted + rejected)`, 0 when nothing was counted.
    pub fn rejected_share(&self) -> f64 {
        let total = self.admitted + self.rejected;
        if total == 0 {
            0.0
        } else {
            // Counts stay far below 2^52: exact as f64.
            self.rejected as f64 / total as f64
        }
    }
}

/// The current window and the counters.
#[derive(Debug, Default)]
pub(super) struct Limiter {
    /// Epoch second the counted window started.
    window: i64,
    /// Calls admitted in that window.
    used: u32,
    admitted: u64,
    rejected: u64,
}

/// What the limiter says about one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Admitted: `remaining` left in the window ending at epoch second `reset`.
    Admit { remaining: u32, reset: i64 },
    /// Over the limit until epoch second `reset`.
    Reject { reset: i64 },
}

impl Limiter {
    /// Counts one call at `now_ms` (ms since the epoch, sandbox clock) against `limit` per second.
    pub(super) fn check(&mut self, limit: u32, now_ms: i64) -> Verdict {
        let second = now_ms.div_euclid(1000);
        if second != self.window {
            self.window = second;
            self.used = 0;
        }
        let reset = second + 1;
        if self.used < limit {
            self.used += 1;
            self.admitted += 1;
            Verdict::Admit {
                remaining: limit - self.used,
                reset,
            }
        } else {
            self.rejected += 1;
            Verdict::Reject { reset }
        }
    }

    pub(super) fn stats(&self, limit: Option<u32>) -> RateLimitStats {
        RateLimitStats {
            limit,
            admitted: self.admitted,
            rejected: self.rejected,
        }
    }
}

impl SandboxState {
    /// The Management API rate limit (`api_rate_limit_per_sec`) and what it admitted and refused
    /// since the faults were last set.
    pub fn rate_limit_stats(&self) -> RateLimitStats {
        let limit = self
            .faults
            .lock()
            .ok()
            .and_then(|f| f.api_rate_limit_per_sec);
        self.api_limiter
            .lock()
            .map(|l| l.stats(limit))
            .unwrap_or_default()
    }

    /// Forgets the window and the counters (the faults were set again).
    pub(super) fn reset_rate_limiter(&self) {
        if let Ok(mut l) = self.api_limiter.lock() {
            *l = Limiter::default();
        }
    }
}

/// `GET /__sandbox/rate-limit`.
pub(super) async fn get(_auth: Ssws, state: St) -> Json<RateLimitStats> {
    Json(state.rate_limit_stats())
}

fn header(v: impl ToString) -> Option<HeaderValue> {
    HeaderValue::from_str(&v.to_string()).ok()
}

/// Applies `api_rate_limit_per_sec` to Management API calls before any fault or route runs.
pub(super) async fn limit(
    state: St,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !req.uri().path().starts_with("/api/v1/") {
        return next.run(req).await;
    }
    let Some(limit) = state
        .faults
        .lock()
        .ok()
        .and_then(|f| f.api_rate_limit_per_sec)
    else {
        return next.run(req).await;
    };
    let now_ms = state.clock.now().timestamp_millis();
    let verdict = state
        .api_limiter
        .lock()
        .map(|mut l| l.check(limit, now_ms))
        // A poisoned lock: admit, as if no limit were set.
        .unwrap_or(Verdict::Admit {
            remaining: limit,
            reset: now_ms.div_euclid(1000) + 1,
        });
    let (mut resp, remaining, reset) = match verdict {
        Verdict::Reject { reset } => (super::faults::rate_limited_until(reset), 0, reset),
        Verdict::Admit { remaining, reset } => (next.run(req).await, remaining, reset),
    };
    // An injected fault's own 429 headers win (it is what the fault asked for).
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-rate-limit-limit", header(limit)),
        ("x-rate-limit-remaining", header(remaining)),
        ("x-rate-limit-reset", header(reset)),
    ] {
        if let Some(v) = value {
            h.entry(name).or_insert(v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::{Limiter, Verdict};

    #[test]
    fn windows_are_whole_epoch_seconds() {
        let mut l = Limiter::default();
        let t = 1_700_000_000_000;
        assert_eq!(
            l.check(2, t + 10),
            Verdict::Admit {
                remaining: 1,
                reset: 1_700_000_001
            }
        );
        assert_eq!(
            l.check(2, t + 500),
            Verdict::Admit {
                remaining: 0,
                reset: 1_700_000_001
            }
        );
        assert_eq!(
            l.check(2, t + 999),
            Verdict::Reject {
                reset: 1_700_000_001
            }
        );
        // The next second is a new window.
        assert_eq!(
            l.check(2, t + 1000),
            Verdict::Admit {
                remaining: 1,
                reset: 1_700_000_002
            }
        );
        let s = l.stats(Some(2));
        assert_eq!((s.admitted, s.rejected), (3, 1));
        assert!((s.rejected_share() - 0.25).abs() < 1e-9);
    }
}
