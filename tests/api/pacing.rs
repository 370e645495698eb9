//! Pacing against Okta's rate limit: the sandbox's real limiter (`api_rate_limit_per_sec`), and
//! the app's one shared Okta client keeping a concurrent bulk job under it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Method;
use reqwest::header::HeaderMap;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;
use ssf_transmitter::clock::ManualClock;
use ssf_transmitter::sandbox::{RateLimitStats, Sandbox};
use tokio::sync::oneshot;

use crate::helpers::{Sandboxed, config_for, http_client, tempdir};

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

/// Users in the bulk job.
const USERS: usize = 300;
/// Concurrent tasks sending through the app's one Okta client.
const TASKS: usize = 8;
/// The sandbox's limit, calls per second.
const LIMIT: u32 = 60;

#[tokio::test]
async fn a_300_user_bulk_job_from_8_tasks_stays_under_a_60_per_second_limit() {
    let dir = tempdir();
    let seed = dir.path().join("seed.json");
    let users: Vec<Value> = (0..USERS)
        .map(|i| json!({"profile": {"login": format!("user{i:03}@bulk.test")}}))
        .collect();
    std::fs::write(&seed, json!({"users": users}).to_string()).expect("seed");
    let mut config = config_for(dir.path());
    config.sandbox.seed_file = Some(seed);
    let s = Sandboxed::start_from(config, |_, _| {}).await;
    let token = s
        .app
        .client_with("bulk", &[Scope::EnforceWrite, Scope::EnforceRead])
        .await;
    // The seed's generated ids: 00u + the position, 17 digits.
    let ids: Arc<Vec<String>> = Arc::new((1..=USERS).map(|i| format!("00u{i:017}")).collect());
    // Before the limit: the client learns the sandbox's default window (600 a minute), as after
    // some interactive use; the 60-a-second windows must take over from it.
    let (status, body) = s
        .app
        .get_json(&format!("/v1/users/{}", ids[0]), &token)
        .await;
    assert_eq!(status, 200, "{body}");

    s.sandbox.set_faults(ssf_transmitter::sandbox::Faults {
        api_rate_limit_per_sec: Some(LIMIT),
        ..Default::default()
    });

    // Each suspend is three Okta calls through the app's client: look the user up, suspend,
    // read the result.
    let started = std::time::Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (next, ids, token) = (next.clone(), ids.clone(), token.clone());
        let (http, base) = (s.app.http.clone(), s.app.base.clone());
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else {
                    return failures;
                };
                let resp = http
                    .post(format!("{base}/v1/users/{id}/suspend"))
                    .bearer_auth(&token)
                    .json(&json!({"reason": "bulk containment"}))
                    .send()
                    .await
                    .expect("send");
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                if status != 200 || body["user"]["status"] != "SUSPENDED" {
                    failures.push(format!("{id}: {status} {body}"));
                }
            }
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await.expect("task"));
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = s.sandbox.rate_limit_stats();
    let calls = stats.admitted + stats.rejected;
    println!(
        "bulk job: {USERS} users from {TASKS} tasks at {LIMIT}/s: {calls} Okta calls, {} answered 429 ({:.1} %), {secs:.1} s ({:.1} calls/s admitted)",
        stats.rejected,
        stats.rejected_share() * 100.0,
        stats.admitted as f64 / secs,
    );
    assert!(
        failures.is_empty(),
        "{} of {USERS} failed, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    assert!(
        stats.admitted >= 3 * USERS as u64,
        "every user was looked up, suspended and read back: {stats:?}"
    );
    assert!(
        stats.rejected_share() <= 0.10,
        "at most 10 % of the calls may be answered 429: {stats:?}"
    );
    // Paced ahead of the limit, not only paused after 429s (that alone would see a few 429s in
    // most windows): alone on the org, the client should meet almost none.
    assert!(
        stats.rejected < TASKS as u64,
        "fewer 429s than one per task over the whole job: {stats:?}"
    );
}
