//! `Idempotency-Key` on enforcement while the first request still runs, answers that must not be
//! stored, and the 24 h window.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use ssf_transmitter::auth::Scope;
use ssf_transmitter::clock::ManualClock;
use ssf_transmitter::sandbox::Faults;

use crate::helpers::{ADMIN_TOKEN, Sandboxed, config_for, tempdir};

fn suspends(s: &Sandboxed) -> usize {
    s.sandbox
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/lifecycle/suspend"))
        .count()
}

#[tokio::test]
async fn a_key_in_use_by_a_running_request_answers_409_and_okta_is_called_once() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = s.app.client_with("soar", &[Scope::EnforceWrite]).await;
    s.sandbox.set_faults(Faults {
        api_latency_ms: 1000,
        api_path_contains: Some("/lifecycle/suspend".into()),
        ..Default::default()
    });
    s.sandbox.clear_requests();
    let send = || {
        s.app
            .http
            .post(s.app.url("/v1/users/jane.doe@example.com/suspend"))
            .bearer_auth(&token)
            .header("idempotency-key", "playbook-42-step-3")
            .send()
    };
    let first = send();
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send().await
    };
    let (first, second) = tokio::join!(first, second);
    let (first, second) = (first.expect("first"), second.expect("second"));
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 409);
    let p: serde_json::Value = second.json().await.expect("problem");
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("in progress"),
        "{p}"
    );
    assert_eq!(suspends(&s), 1, "one Okta call");
    let (_, audit) = s
        .app
        .get_json("/v1/audit?action=user.suspend", ADMIN_TOKEN)
        .await;
    assert_eq!(
        audit.as_array().map(Vec::len),
        Some(1),
        "one audit row: {audit}"
    );
    // Once it has answered, the key replays.
    let again = send().await.expect("again");
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(suspends(&s), 1);
}

#[tokio::test]
async fn answers_okta_may_change_its_mind_on_are_not_stored() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = s.app.client_with("soar", &[Scope::EnforceWrite]).await;
    let send = |key: &'static str| {
        s.app
            .http
            .post(s.app.url("/v1/users/john.smith@example.com/suspend"))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .send()
    };
    // A 5xx from Okta → our 502, not stored: the same key acts once Okta is back.
    s.sandbox.set_faults(Faults {
        api_fail_next: 1,
        api_fail_status: Some(503),
        api_path_contains: Some("/lifecycle/suspend".into()),
        ..Default::default()
    });
    let r = send("five-xx").await.expect("send");
    assert_eq!(r.status(), 502);
    let r = send("five-xx").await.expect("send");
    assert_eq!(r.status(), 200, "acted now");
    assert!(r.headers().get("idempotent-replayed").is_none());
    // Okta keeps answering 429 → our 429 with Retry-After, not stored either.
    s.sandbox.set_faults(Faults {
        api_rate_limit_next: 100,
        api_rate_limit_reset_secs: Some(1),
        api_path_contains: Some("/lifecycle/unsuspend".into()),
        ..Default::default()
    });
    let unsuspend = || {
        s.app
            .http
            .post(s.app.url("/v1/users/john.smith@example.com/unsuspend"))
            .bearer_auth(&token)
            .header("idempotency-key", "four-two-nine")
            .send()
    };
    let r = unsuspend().await.expect("send");
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    s.sandbox.set_faults(Faults::default());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = unsuspend().await.expect("send");
    assert_eq!(r.status(), 200, "acted now");
    assert!(r.headers().get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn records_older_than_a_day_are_pruned() {
    let dir = tempdir();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let mut config = config_for(dir.path());
    config.delivery.prune_interval_secs = 1;
    let s = Sandboxed::start_clocked(config, |_, _| {}, clock.clone()).await;
    let token = s.app.client_with("soar", &[Scope::EnforceWrite]).await;
    let call = |user: &'static str| {
        s.app
            .http
            .request(
                Method::POST,
                s.app.url(&format!("/v1/users/{user}/suspend")),
            )
            .bearer_auth(&token)
            .header("idempotency-key", "reused-tomorrow")
            .send()
    };
    assert_eq!(
        call("jane.doe@example.com").await.expect("send").status(),
        200
    );
    // Within the window the key belongs to that request.
    assert_eq!(
        call("john.smith@example.com").await.expect("send").status(),
        422
    );
    clock.advance(chrono::Duration::hours(24) + chrono::Duration::seconds(1));
    let mut status = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A dry run: the key is free again once pruned, and nothing is sent.
        let r = s
            .app
            .http
            .post(
                s.app
                    .url("/v1/users/john.smith@example.com/suspend?dry_run=true"),
            )
            .bearer_auth(&token)
            .header("idempotency-key", "reused-tomorrow")
            .json(&json!({}))
            .send()
            .await
            .expect("send");
        status = r.status().as_u16();
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200, "the key was pruned after 24 h");
}
