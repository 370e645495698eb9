//! Graceful shutdown: what is in flight when the stop comes (SIGTERM in the binary; the same
//! signal here) finishes within the grace period — an enforcement request and a push.

use std::time::Duration;

use serde_json::json;
use ssf_transmitter::auth::Scope;
use ssf_transmitter::sandbox::Faults;

use crate::helpers::{ADMIN_TOKEN, Sandboxed, TestApp, config_with_receiver, tempdir};
use crate::receiver::FakeReceiver;

#[tokio::test]
async fn a_request_in_flight_at_the_stop_finishes() {
    let dir = tempdir();
    let mut s = Sandboxed::start(dir.path()).await;
    let token = s.app.client_with("soar", &[Scope::EnforceWrite]).await;
    s.sandbox.set_faults(Faults {
        api_latency_ms: 1000,
        api_path_contains: Some("/lifecycle/suspend".into()),
        ..Default::default()
    });
    // Stop while the call waits on the slow org.
    s.sandbox.clear_requests();
    let url = s.app.url("/v1/users/john.smith@example.com/suspend");
    let http = s.app.http.clone();
    let token2 = token.clone();
    let in_flight = tokio::spawn(async move { http.post(url).bearer_auth(token2).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.app.request_stop();
    let resp = in_flight
        .await
        .expect("join")
        .expect("answered, not cut off");
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["user"]["status"], "SUSPENDED", "{body}");
    // No new work is taken after the stop.
    let refused = s
        .app
        .http
        .post(s.app.url("/v1/users/alex.kim@example.com/suspend"))
        .bearer_auth(&token)
        .send()
        .await;
    assert!(refused.is_err() || refused.is_ok_and(|r| r.status() != 200));
}

#[tokio::test]
async fn a_push_in_flight_at_the_stop_is_finished_and_recorded() {
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    receiver.set_latency(Duration::from_millis(1000));
    let mut app = TestApp::spawn_with(config_with_receiver(dir.path(), &receiver.org_url)).await;
    let (st, body) = app
        .post_json(
            "/v1/signals/user-risk",
            ADMIN_TOKEN,
            &json!({"subject": {"format": "email", "email": "inflight@example.com"}, "current_level": "high"}),
        )
        .await;
    assert_eq!(st, 202);
    let jti = body["jti"].as_str().expect("jti").to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.request_stop();
    app.stop().await;
    assert_eq!(receiver.delivered().len(), 1, "the push finished");
    // Its outcome was written before the process let go of the store: not sent again.
    let app = TestApp::spawn_with(config_with_receiver(dir.path(), &receiver.org_url)).await;
    let (_, v) = app
        .get_json(&format!("/v1/signals/{jti}"), ADMIN_TOKEN)
        .await;
    assert_eq!(v["status"], "delivered", "{v}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "not pushed twice");
}
