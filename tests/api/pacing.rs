//! Pacing against Okta's rate limit: the sandbox's real limiter (`api_rate_limit_per_sec`).

use std::sync::Arc;

use reqwest::Method;
use reqwest::header::HeaderMap;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use ssf_transmitter::clock::ManualClock;
use ssf_transmitter::sandbox::{RateLimitStats, Sandbox};
use tokio::sync::oneshot;

use crate::helpers::http_client;

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header in {h:?}"))
}

fn rate_headers(h: &HeaderMap) -> (&str, &str, &str) {
    (
        header(h, "x-rate-limit-limit"),
        header(h, "x-rate-limit-remaining"),
        header(h, "x-rate-limit-reset"),
    )
}

#[tokio::test]
async fn the_sandbox_limits_management_calls_per_second_window_and_counts_its_429s() {
    // A clock that stands still, so every call below falls in the window we say.
    let start = chrono::DateTime::from_timestamp(1_700_000_000, 250_000_000).expect("time");
    let clock = Arc::new(ManualClock::new(start));
    let sandbox = Sandbox::bind("127.0.0.1:0".parse().expect("addr"), clock.clone())
        .await
        .expect("bind sandbox");
    let org = sandbox.org_url().to_owned();
    let token = format!("SSWS {}", sandbox.api_token().expose_secret());
    let state = sandbox.state();
    let (_stop, rx) = oneshot::channel::<()>();
    tokio::spawn(sandbox.run(async move {
        let _ = rx.await;
    }));
    let http = http_client();
    let call = |method: Method, path: &str| {
        http.request(method, format!("{org}{path}"))
            .header("authorization", &token)
    };

    // No limit set: Okta's default headers, and a Date on the sandbox's clock.
    let resp = call(Method::GET, "/api/v1/users/jane.doe@example.com")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        rate_headers(resp.headers()),
        ("600", "599", "1700000060"),
        "defaults"
    );
    assert_eq!(
        header(resp.headers(), "date"),
        "Tue, 14 Nov 2023 22:13:20 GMT"
    );
    let jane: Value = resp.json().await.expect("json");
    let jane_id = jane["id"].as_str().expect("id").to_owned();

    // 0 is not a limit.
    let resp = call(Method::PUT, "/__sandbox/faults")
        .json(&json!({"api_rate_limit_per_sec": 0}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    let resp = call(Method::PUT, "/__sandbox/faults")
        .json(&json!({"api_rate_limit_per_sec": 2}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);

    // Two calls fit in the window that ends at 1700000001.
    for remaining in ["1", "0"] {
        let resp = call(Method::GET, "/api/v1/users?limit=1")
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
        assert_eq!(rate_headers(resp.headers()), ("2", remaining, "1700000001"));
    }
    // The third is Okta's 429, with the window's headers, and does nothing.
    let resp = call(
        Method::POST,
        &format!("/api/v1/users/{jane_id}/lifecycle/suspend"),
    )
    .send()
    .await
    .expect("send");
    assert_eq!(resp.status(), 429);
    assert_eq!(rate_headers(resp.headers()), ("2", "0", "1700000001"));
    assert_eq!(
        header(resp.headers(), "date"),
        "Tue, 14 Nov 2023 22:13:20 GMT"
    );
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["errorCode"], "E0000047", "{body}");

    // Neither the controls, nor the SET receiver, nor the token endpoint are limited.
    for _ in 0..3 {
        let resp = call(Method::GET, "/__sandbox/faults")
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
    }
    let resp = http
        .post(format!("{org}/security/api/v1/security-events"))
        .header("content-type", "application/secevent+jwt")
        .body("not.a.jwt")
        .send()
        .await
        .expect("send");
    assert_ne!(resp.status(), 429);
    let resp = http
        .post(format!("{org}/oauth2/v1/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("send");
    assert_ne!(resp.status(), 429);

    let expected = RateLimitStats {
        limit: Some(2),
        admitted: 2,
        rejected: 1,
    };
    assert_eq!(state.rate_limit_stats(), expected);
    let stats: Value = call(Method::GET, "/__sandbox/rate-limit")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(stats, json!({"limit": 2, "admitted": 2, "rejected": 1}));

    // The next second is a new window; the refused suspend had not happened.
    clock.advance(chrono::Duration::seconds(1));
    let resp = call(Method::GET, &format!("/api/v1/users/{jane_id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(rate_headers(resp.headers()), ("2", "1", "1700000002"));
    let now: Value = resp.json().await.expect("json");
    assert_eq!(now["status"], "ACTIVE");

    // Clearing the faults lifts the limit and restarts the counts.
    let resp = call(Method::DELETE, "/__sandbox/faults")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 204);
    assert_eq!(state.rate_limit_stats(), RateLimitStats::default());
    let resp = call(Method::GET, "/api/v1/users?limit=1")
        .send()
        .await
        .expect("send");
    assert_eq!(header(resp.headers(), "x-rate-limit-limit"), "600");
}
