//! A fault-injecting fake SSF receiver (RFC 8935 push endpoint at Okta's path), for tests. It
//! records every request and answers from a script, then from its default behaviour.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

#[derive(Debug, Clone)]
pub enum Reply {
    Accept,
    Status(u16),
    RateLimited {
        reset_epoch_secs: i64,
    },
    RetryAfter {
        secs: u64,
    },
    BadRequest {
        err: &'static str,
        description: &'static str,
    },
    /// 307 to `/elsewhere` on this receiver (which counts what reaches it).
    Redirect,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub body: String,
    pub content_type: String,
    pub accept: String,
    /// The `Authorization` header, when one was sent.
    pub authorization: Option<String>,
    pub answered: u16,
    /// When the request arrived (before any latency), ms.
    pub arrived_ms: i64,
    /// When it was answered, ms.
    pub at_ms: i64,
}

struct Inner {
    script: VecDeque<Reply>,
    /// Probability of a 503 for requests not covered by the script.
    fail_rate: f64,
    latency: Duration,
    seed: u64,
    received: Vec<Received>,
    /// Requests that followed a redirect.
    redirected: usize,
}

#[derive(Clone)]
pub struct FakeReceiver {
    pub org_url: String,
    inner: Arc<Mutex<Inner>>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

impl FakeReceiver {
    pub async fn start() -> FakeReceiver {
        let inner = Arc::new(Mutex::new(Inner {
            script: VecDeque::new(),
            fail_rate: 0.0,
            latency: Duration::ZERO,
            seed: 0x9e37_79b9_7f4a_7c15,
            received: Vec::new(),
            redirected: 0,
        }));
        let app = Router::new()
            .route("/security/api/v1/security-events", post(handle))
            .route(
                "/elsewhere",
                post(|State(inner): State<Arc<Mutex<Inner>>>| async move {
                    inner.lock().expect("lock").redirected += 1;
                    StatusCode::ACCEPTED
                }),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeReceiver {
            org_url: format!("http://{addr}"),
            inner,
        }
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().expect("lock").script.extend(replies);
    }

    pub fn set_fail_rate(&self, rate: f64) {
        self.inner.lock().expect("lock").fail_rate = rate;
    }

    pub fn set_latency(&self, latency: Duration) {
        self.inner.lock().expect("lock").latency = latency;
    }

    /// How many requests followed a redirect to `/elsewhere`.
    pub fn redirected(&self) -> usize {
        self.inner.lock().expect("lock").redirected
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().expect("lock").received.clone()
    }

    /// Bodies of SETs answered 2xx, in arrival order.
    pub fn delivered(&self) -> Vec<String> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .map(|r| r.body)
            .collect()
    }

    /// Waits until `n` SETs were accepted (or panics after `secs`).
    pub async fn wait_delivered(&self, n: usize, secs: u64) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let d = self.delivered();
            if d.len() >= n {
                return d;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} SETs delivered after {secs} s",
                d.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived_ms = now_ms();
    let (reply, latency) = {
        let mut g = inner.lock().expect("lock");
        let reply = match g.script.pop_front() {
            Some(r) => r,
            None => {
                // xorshift: deterministic "random" failures.
                g.seed ^= g.seed << 13;
                g.seed ^= g.seed >> 7;
                g.seed ^= g.seed << 17;
                let unit = (g.seed >> 11) as f64 / (1u64 << 53) as f64;
                if unit < g.fail_rate {
                    Reply::Status(503)
                } else {
                    Reply::Accept
                }
            }
        };
        (reply, g.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match &reply {
        Reply::Accept => StatusCode::ACCEPTED.into_response(),
        Reply::Status(code) => StatusCode::from_u16(*code).expect("status").into_response(),
        Reply::RateLimited { reset_epoch_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-rate-limit-reset", reset_epoch_secs.to_string())],
        )
            .into_response(),
        Reply::RetryAfter { secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
        )
            .into_response(),
        Reply::Redirect => {
            (StatusCode::TEMPORARY_REDIRECT, [("location", "/elsewhere")]).into_response()
        }
        Reply::BadRequest { err, description } => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"err": err, "description": description})),
        )
            .into_response(),
    };
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    inner.lock().expect("lock").received.push(Received {
        body: String::from_utf8_lossy(&body).into_owned(),
        content_type: header("content-type"),
        accept: header("accept"),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        answered: response.status().as_u16(),
        arrived_ms,
        at_ms: now_ms(),
    });
    response
}
