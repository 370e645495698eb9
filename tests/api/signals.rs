use std::time::Duration;

use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;

use crate::helpers::{
    TestApp, assert_problem, config_for, config_with_receiver, decode, tempdir, verify_with_jwks,
};
use crate::receiver::{FakeReceiver, Reply, now_ms};

const USER_RISK: &str = "https://schemas.okta.com/secevent/okta/event-type/user-risk-change";

async fn setup() -> (tempfile::TempDir, FakeReceiver, TestApp, String) {
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    let app = TestApp::spawn_with(config_with_receiver(dir.path(), &receiver.org_url)).await;
    let token = app
        .client_with("ueba", &[Scope::SignalsWrite, Scope::SignalsRead])
        .await;
    (dir, receiver, app, token)
}

fn jane() -> Value {
    json!({"format": "email", "email": "jane@example.com"})
}

async fn wait_status(app: &TestApp, token: &str, jti: &str, want: &str) -> Value {
    for _ in 0..200 {
        let (status, body) = app.get_json(&format!("/v1/signals/{jti}"), token).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] == want {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("SET {jti} never reached {want}");
}

#[tokio::test]
async fn every_event_type_is_signed_pushed_and_delivered() {
    let (_dir, receiver, app, token) = setup().await;
    let device = json!({"user": jane(), "device": {"format": "opaque", "id": "laptop-42"}});
    let cases = [
        (
            "user-risk",
            json!({"subject": jane(), "current_level": "high", "reason_admin": "UEBA: impossible travel"}),
        ),
        ("device-risk", json!({"subject": device, "score": 55})),
        (
            "ip-change",
            json!({"subject": jane(), "current_ip_address": "10.0.0.2", "previous_ip_address": "2001:db8::1"}),
        ),
        (
            "session-revoked",
            json!({"subject": jane(), "current_ip": "10.0.0.2", "initiating_entity": "admin"}),
        ),
        (
            "device-compliance",
            json!({"subject": device, "current_status": "not-compliant", "previous_status": "compliant"}),
        ),
        (
            "identifier-changed",
            json!({"subject": jane(), "new-value": "jane.smith@example.com"}),
        ),
    ];
    let mut jtis = Vec::new();
    for (kind, body) in &cases {
        let (status, resp) = app
            .post_json(&format!("/v1/signals/{kind}"), &token, body)
            .await;
        assert_eq!(status, 202, "{kind}: {resp}");
        assert_eq!(resp["status"], "queued");
        assert_eq!(resp["event_type"], *kind);
        jtis.push(resp["jti"].as_str().expect("jti").to_owned());
    }
    let delivered = receiver.wait_delivered(cases.len(), 10).await;
    let jwks = app.jwks().await;
    for r in receiver.received() {
        assert_eq!(r.content_type, "application/secevent+jwt");
        assert_eq!(r.accept, "application/json");
    }
    // Only per-subject order is promised: match each SET to its request by `jti`, then check
    // that the SETs of one subject arrived in the order they were posted.
    let by_jti = |jti: &str| -> &String {
        delivered
            .iter()
            .find(|t| decode(t).1["jti"] == jti)
            .unwrap_or_else(|| panic!("{jti} was delivered"))
    };
    let mut last_posted: std::collections::HashMap<String, usize> = Default::default();
    for token_text in &delivered {
        let (_, claims) = decode(token_text);
        let (_, event) = claims["events"]
            .as_object()
            .expect("events")
            .iter()
            .next()
            .expect("event");
        let subject = event["subject"].to_string();
        let posted = jtis
            .iter()
            .position(|j| claims["jti"] == j.as_str())
            .expect("a posted jti");
        if let Some(before) = last_posted.insert(subject.clone(), posted) {
            assert!(
                before < posted,
                "{subject}: SET {posted} arrived after {before}"
            );
        }
    }
    for ((kind, _), jti) in cases.iter().zip(&jtis) {
        let token_text = by_jti(jti);
        let (header, claims) = decode(token_text);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "secevent+jwt");
        assert_eq!(header["kid"], app.state.keys.ring().active_kid());
        verify_with_jwks(token_text, &jwks).expect("signature verifies with the published JWKS");
        assert_eq!(claims["iss"], app.issuer.as_str());
        assert_eq!(claims["aud"], format!("{}/", receiver.org_url));
        assert_eq!(claims["jti"], jti.as_str());
        assert!(
            claims["iat"]
                .as_i64()
                .is_some_and(|t| (t - now_ms() / 1000).abs() < 60)
        );
        let events = claims["events"].as_object().expect("events");
        assert_eq!(events.len(), 1, "{kind}: exactly one event");
        let (uri, event) = events.iter().next().expect("event");
        assert!(
            uri.contains(match *kind {
                "user-risk" => "user-risk-change",
                "device-risk" => "device-risk-change",
                "device-compliance" => "device-compliance-change",
                other => other,
            }),
            "{kind} → {uri}"
        );
        assert_eq!(event["subject"]["user"], jane(), "{kind}");
        assert!(event["subject"].get("format").is_none());
        assert!(
            event["event_timestamp"]
                .as_i64()
                .is_some_and(|t| t < 10_000_000_000),
            "seconds"
        );
        if *kind != "identifier-changed" {
            assert!(
                event["reason_admin"]["en"].is_string(),
                "{kind}: a reason is always sent"
            );
        }
    }
    let (_, first) = decode(by_jti(&jtis[0]));
    let e = &first["events"][USER_RISK];
    assert_eq!(e["current_level"], "high");
    assert_eq!(e["previous_level"], "none");
    assert_eq!(e["reason_admin"], json!({"en": "UEBA: impossible travel"}));
    let (_, second) = decode(by_jti(&jtis[1]));
    let dr =
        &second["events"]["https://schemas.okta.com/secevent/okta/event-type/device-risk-change"];
    assert_eq!(dr["current_level"], "medium", "score 55 maps to medium");
    assert!(
        dr["reason_admin"]["en"]
            .as_str()
            .expect("default reason")
            .contains("ueba")
    );

    let status = wait_status(&app, &token, &jtis[0], "delivered").await;
    assert_eq!(status["attempts"], 1);
    assert!(status["delivered_at"].is_string());
    assert_eq!(status["claims"]["jti"], jtis[0].as_str());
    assert!(status.get("last_error").is_none());

    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(
        metrics.contains(r#"ssf_sets_delivered_total{stream="okta"} 6"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ssf_signals_accepted_total{event_type="user-risk"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn previous_level_comes_from_state_and_unchanged_levels_are_suppressed() {
    let (_dir, receiver, app, token) = setup().await;
    let send = |body: Value| {
        let app = &app;
        let token = token.clone();
        async move { app.post_json("/v1/signals/user-risk", &token, &body).await }
    };
    let (s, _) = send(json!({"subject": jane(), "current_level": "medium"})).await;
    assert_eq!(s, 202);
    let (s, r) = send(
        json!({"subject": {"format": "email", "email": "JANE@example.com"}, "severity": "medium"}),
    )
    .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("unchanged")), "{r}");
    assert_eq!(r["value"], "medium");
    let (s, _) = send(json!({"subject": jane(), "current_level": "medium", "force": true})).await;
    assert_eq!(s, 202, "force sends an unchanged level");
    let (s, _) = send(json!({"subject": jane(), "severity": "critical"})).await;
    assert_eq!(s, 202);
    let (s, _) =
        send(json!({"subject": jane(), "current_level": "low", "previous_level": "secure"})).await;
    assert_eq!(s, 202, "an explicit previous_level is kept");
    let delivered = receiver.wait_delivered(4, 10).await;
    let pairs: Vec<(String, String)> = delivered
        .iter()
        .map(|t| {
            let e = decode(t).1["events"][USER_RISK].clone();
            (
                e["previous_level"].as_str().expect("prev").to_owned(),
                e["current_level"].as_str().expect("cur").to_owned(),
            )
        })
        .collect();
    let expect = [
        ("none", "medium"),
        ("medium", "medium"),
        ("medium", "high"),
        ("secure", "low"),
    ];
    let expect: Vec<(String, String)> = expect
        .iter()
        .map(|(a, b)| ((*a).into(), (*b).into()))
        .collect();
    assert_eq!(pairs, expect);
    // A different user has its own state.
    let (s, _) = send(json!({"subject": {"format": "email", "email": "bob@example.com"}, "current_level": "medium"})).await;
    assert_eq!(s, 202);
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_jti() {
    let (_dir, receiver, app, token) = setup().await;
    receiver.script([Reply::Status(503), Reply::Status(500)]);
    let (_, resp) = app
        .post_json(
            "/v1/signals/user-risk",
            &token,
            &json!({"subject": jane(), "current_level": "high"}),
        )
        .await;
    let jti = resp["jti"].as_str().expect("jti").to_owned();
    let status = wait_status(&app, &token, &jti, "delivered").await;
    assert_eq!(status["attempts"], 3);
    let received = receiver.received();
    assert_eq!(
        received.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [503, 500, 202]
    );
    let jtis: Vec<Value> = received
        .iter()
        .map(|r| decode(&r.body).1["jti"].clone())
        .collect();
    assert!(
        jtis.iter().all(|j| j == jti.as_str()),
        "same jti on every attempt"
    );
    assert!(
        received.windows(2).all(|w| w[0].body == w[1].body),
        "the very same SET is re-sent"
    );
    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(
        metrics.contains(r#"ssf_set_retries_total{stream="okta",reason="server_error"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn rate_limits_are_waited_out_until_the_reset_and_pause_the_whole_stream() {
    let (_dir, receiver, app, token) = setup().await;
    let reset = now_ms() / 1000 + 2;
    receiver.script([
        Reply::RateLimited {
            reset_epoch_secs: reset,
        },
        Reply::RetryAfter { secs: 3 },
    ]);
    let (_, resp) = app
        .post_json(
            "/v1/signals/user-risk",
            &token,
            &json!({"subject": jane(), "current_level": "high"}),
        )
        .await;
    let jti = resp["jti"].as_str().expect("jti").to_owned();
    let retrying = wait_status(&app, &token, &jti, "retrying").await;
    assert_eq!(retrying["last_error"]["http_status"], 429);
    // The second answer (Retry-After: 3) pauses the stream: another subject's SET waits too.
    for _ in 0..200 {
        if receiver.received().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, other) = app
        .post_json(
            "/v1/signals/user-risk",
            &token,
            &json!({"subject": {"format": "email", "email": "john@example.com"}, "current_level": "low"}),
        )
        .await;
    let other_jti = other["jti"].as_str().expect("jti").to_owned();
    wait_status(&app, &token, &jti, "delivered").await;
    wait_status(&app, &token, &other_jti, "delivered").await;
    let received = receiver.received();
    assert_eq!(received.len(), 4, "two 429s, then both SETs");
    assert!(
        received[1].at_ms >= reset * 1000,
        "second attempt waited for X-Rate-Limit-Reset"
    );
    let resumed = received[1].at_ms + 3000;
    assert!(
        received[2].at_ms >= resumed,
        "third attempt waited for Retry-After: 3 ({} ms)",
        received[2].at_ms - received[1].at_ms
    );
    assert!(
        received[3].at_ms >= resumed,
        "the other subject's SET waited for the stream's pause too ({} ms)",
        received[3].at_ms - received[1].at_ms
    );
}

#[tokio::test]
async fn a_rate_limit_wait_is_capped_by_rate_limit_max_wait_secs() {
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    let mut config = config_with_receiver(dir.path(), &receiver.org_url);
    config.delivery.rate_limit_max_wait_secs = 2;
    let app = TestApp::spawn_with(config).await;
    receiver.script([Reply::RetryAfter { secs: 60 }]);
    let (_, resp) = app
        .post_json(
            "/v1/signals/user-risk",
            crate::helpers::ADMIN_TOKEN,
            &json!({"subject": jane(), "current_level": "high"}),
        )
        .await;
    let jti = resp["jti"].as_str().expect("jti").to_owned();
    let mut delivered = false;
    for _ in 0..300 {
        let (_, v) = app
            .get_json(&format!("/v1/signals/{jti}"), crate::helpers::ADMIN_TOKEN)
            .await;
        if v["status"] == "delivered" {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        delivered,
        "delivered after the 2 s cap, not after Retry-After: 60"
    );
    let received = receiver.received();
    let waited = received[1].at_ms - received[0].at_ms;
    assert!((2000..5000).contains(&waited), "waited {waited} ms");
}

#[tokio::test]
async fn a_400_fails_for_good_with_the_reason_kept_and_can_be_retried_by_hand() {
    let (_dir, receiver, app, token) = setup().await;
    receiver.script([Reply::BadRequest {
        err: "invalid_audience",
        description: "Invalid audience 'aud'",
    }]);
    let (_, resp) = app
        .post_json(
            "/v1/signals/user-risk",
            &token,
            &json!({"subject": jane(), "current_level": "high"}),
        )
        .await;
    let jti = resp["jti"].as_str().expect("jti").to_owned();
    let failed = wait_status(&app, &token, &jti, "failed").await;
    assert_eq!(failed["last_error"]["http_status"], 400);
    assert_eq!(failed["last_error"]["err"], "invalid_audience");
    assert_eq!(
        failed["last_error"]["description"],
        "Invalid audience 'aud'"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "a 400 is not retried");

    // The listing filters by status and subject.
    let (_, page) = app
        .get_json("/v1/signals?status=failed&subject=jane@example.com", &token)
        .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    let (_, page) = app.get_json("/v1/signals?status=delivered", &token).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(0));

    // A manual retry re-queues it with the same jti; a second retry of a queued SET is a conflict.
    let (s, r) = app.post(&format!("/v1/signals/{jti}/retry"), &token).await;
    assert_eq!(s, 202, "{r}");
    wait_status(&app, &token, &jti, "delivered").await;
    let (s, _) = app.post(&format!("/v1/signals/{jti}/retry"), &token).await;
    assert_eq!(s, 409);
    let (s, _) = app.post("/v1/signals/nope/retry", &token).await;
    assert_eq!(s, 404);

    // A failed SET does not count as the subject's last state: the same level is sent again.
    receiver.script([Reply::BadRequest {
        err: "invalid_request",
        description: "nope",
    }]);
    let bob = json!({"format": "email", "email": "bob@example.com"});
    let (_, first) = app
        .post_json(
            "/v1/signals/user-risk",
            &token,
            &json!({"subject": bob, "current_level": "high"}),
        )
        .await;
    let first = first["jti"].as_str().expect("jti").to_owned();
    wait_status(&app, &token, &first, "failed").await;
    let (s, again) = app
        .post_json(
            "/v1/signals/user-risk",
            &token,
            &json!({"subject": bob, "current_level": "high"}),
        )
        .await;
    assert_eq!(
        (s, again["status"].as_str()),
        (202, Some("queued")),
        "{again}"
    );
    let again = again["jti"].as_str().expect("jti").to_owned();
    wait_status(&app, &token, &again, "delivered").await;
    let last = receiver.delivered().pop().expect("delivered");
    assert_eq!(
        decode(&last).1["events"][USER_RISK]["previous_level"],
        "none"
    );
    // Re-sending the old failed SET now would put stale state last: refused.
    let (s, body) = app
        .post(&format!("/v1/signals/{first}/retry"), &token)
        .await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("newer SET"),
        "{body}"
    );
}

#[tokio::test]
async fn a_key_that_signed_queued_sets_is_not_retired_without_force() {
    let (_dir, receiver, app, token) = setup().await;
    receiver.set_fail_rate(1.0);
    let (_, resp) = app
        .post_json(
            "/v1/signals/user-risk",
            &token,
            &json!({"subject": jane(), "current_level": "high"}),
        )
        .await;
    let jti = resp["jti"].as_str().expect("jti").to_owned();
    wait_status(&app, &token, &jti, "retrying").await;
    let old = app.state.keys.ring().active_kid().to_owned();
    let (_, next) = app
        .post("/v1/admin/keys", crate::helpers::ADMIN_TOKEN)
        .await;
    let new = next["kid"].as_str().expect("kid").to_owned();
    let (s, _) = app
        .post(
            &format!("/v1/admin/keys/{new}/activate?force=true"),
            crate::helpers::ADMIN_TOKEN,
        )
        .await;
    assert_eq!(s, 200);
    let (s, body) = app
        .post(
            &format!("/v1/admin/keys/{old}/retire"),
            crate::helpers::ADMIN_TOKEN,
        )
        .await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("waiting for delivery"),
        "{body}"
    );
    // Once the SET is delivered, the key can go.
    receiver.set_fail_rate(0.0);
    wait_status(&app, &token, &jti, "delivered").await;
    let (s, body) = app
        .post(
            &format!("/v1/admin/keys/{old}/retire"),
            crate::helpers::ADMIN_TOKEN,
        )
        .await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test]
async fn per_subject_order_holds_under_concurrency_and_random_failures() {
    let (_dir, receiver, app, token) = setup().await;
    receiver.set_fail_rate(0.3);
    const SUBJECTS: usize = 12;
    const PER_SUBJECT: usize = 8;
    let mut tasks = Vec::new();
    for s in 0..SUBJECTS {
        let http = app.http.clone();
        let url = app.url("/v1/signals/ip-change");
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..PER_SUBJECT {
                let body = json!({
                    "subject": {"format": "email", "email": format!("user{s}@example.com")},
                    "current_ip_address": format!("10.0.{s}.{n}"),
                    "previous_ip_address": "10.255.255.255",
                });
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("send");
                assert_eq!(r.status(), 202);
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let delivered = receiver.wait_delivered(SUBJECTS * PER_SUBJECT, 60).await;
    let mut per_subject: Vec<Vec<usize>> = vec![Vec::new(); SUBJECTS];
    for t in &delivered {
        let e =
            decode(t).1["events"]["https://schemas.okta.com/secevent/okta/event-type/ip-change"]
                .clone();
        let ip = e["current_ip_address"].as_str().expect("ip").to_owned();
        let parts: Vec<usize> = ip.split('.').map(|p| p.parse().expect("num")).collect();
        per_subject[parts[2]].push(parts[3]);
    }
    for (s, seq) in per_subject.iter().enumerate() {
        assert_eq!(
            seq,
            &(0..PER_SUBJECT).collect::<Vec<_>>(),
            "subject {s} delivered in order, each once"
        );
    }
    assert!(
        receiver.received().iter().any(|r| r.answered == 503),
        "failures were injected"
    );
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_response() {
    let (_dir, receiver, app, token) = setup().await;
    let body = json!({"subject": jane(), "current_level": "high"});
    let post = |key: &'static str, body: Value| {
        let app = &app;
        let token = token.clone();
        async move {
            app.http
                .post(app.url("/v1/signals/user-risk"))
                .bearer_auth(&token)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .expect("send")
        }
    };
    let first = post("k-1", body.clone()).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.expect("json");
    let again = post("k-1", body.clone()).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.expect("json");
    assert_eq!(first, again);
    let other = post("k-1", json!({"subject": jane(), "current_level": "low"})).await;
    let problem = assert_problem(other, 422).await;
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    receiver.wait_delivered(1, 10).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "one SET for the repeated request"
    );
}

#[tokio::test]
async fn batches_accept_good_items_and_report_bad_ones() {
    let (_dir, receiver, app, token) = setup().await;
    let (status, body) = app
        .post_json(
            "/v1/signals/batch",
            &token,
            &json!({"signals": [
                {"type": "user-risk", "subject": jane(), "current_level": "medium"},
                {"type": "user-risk", "subject": jane(), "current_level": "high"},
                {"type": "user-risk", "subject": {"format": "email", "email": "nope"}, "current_level": "high"},
                {"type": "teleport", "subject": jane()},
                {"type": "ip-change", "subject": jane(), "current_ip_address": "999.1.1.1", "previous_ip_address": "10.0.0.1"},
                {"type": "user-risk", "subject": jane(), "current_level": "high"},
                {"type": "session-revoked", "subject": jane()},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["queued"].as_u64(),
            body["unchanged"].as_u64(),
            body["rejected"].as_u64()
        ),
        (Some(3), Some(1), Some(3)),
        "{body}"
    );
    let r = &body["results"];
    assert_eq!(r[0]["status"], "queued");
    assert_eq!(r[2]["errors"][0]["field"], "signals[2].subject.email");
    assert_eq!(r[3]["errors"][0]["field"], "signals[3].type");
    assert_eq!(r[4]["errors"][0]["field"], "signals[4].current_ip_address");
    assert_eq!(r[5]["status"], "unchanged", "state chains inside a batch");
    let delivered = receiver.wait_delivered(3, 10).await;
    let (_, second) = decode(&delivered[1]);
    assert_eq!(second["events"][USER_RISK]["previous_level"], "medium");

    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"type": "session-revoked", "subject": jane()}))
        .collect();
    let resp = app
        .http
        .post(app.url("/v1/signals/batch"))
        .bearer_auth(&token)
        .json(&json!({"signals": too_many}))
        .send()
        .await
        .expect("send");
    let p = assert_problem(resp, 422).await;
    assert_eq!(p["errors"][0]["field"], "signals");
}

#[tokio::test]
async fn bad_input_is_rejected_and_nothing_is_queued() {
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    let mut config = config_with_receiver(dir.path(), &receiver.org_url);
    config.max_body_bytes = 8 * 1024;
    let app = TestApp::spawn_with(config).await;
    let token = app
        .client_with("siem", &[Scope::SignalsWrite, Scope::SignalsRead])
        .await;
    let raw = |path: &'static str, body: String| {
        let app = &app;
        let token = token.clone();
        async move {
            app.http
                .post(app.url(path))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("send")
        }
    };
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/v1/signals/user-risk", "{\"subject\": ".into(), 400, ""),
        ("/v1/signals/user-risk", json!({"subject": jane(), "current_level": 3}).to_string(), 422, "current_level"),
        ("/v1/signals/user-risk", json!({"subject": jane(), "current_level": "severe"}).to_string(), 422, "current_level"),
        ("/v1/signals/user-risk", json!({"subject": jane(), "current_level": "high", "colour": "red"}).to_string(), 422, "colour"),
        ("/v1/signals/user-risk", json!({"subject": {"format": "email", "email": "jane@"}, "current_level": "high"}).to_string(), 422, "subject.email"),
        ("/v1/signals/user-risk", json!({"subject": jane()}).to_string(), 422, "current_level"),
        ("/v1/signals/user-risk", json!({"subject": jane(), "current_level": "high", "score": 90}).to_string(), 422, "current_level"),
        ("/v1/signals/user-risk", json!({"subject": jane(), "score": 101}).to_string(), 422, "score"),
        ("/v1/signals/user-risk", json!({"subject": jane(), "severity": "apocalyptic"}).to_string(), 422, "severity"),
        ("/v1/signals/user-risk", json!({"subject": jane(), "current_level": "high", "initiating_entity": "robot"}).to_string(), 422, "initiating_entity"),
        ("/v1/signals/user-risk", json!({"subject": jane(), "current_level": "high", "event_timestamp": "yesterday"}).to_string(), 422, "event_timestamp"),
        ("/v1/signals/user-risk", json!({"subject": jane(), "current_level": "high", "event_timestamp": 1764000000000_i64}).to_string(), 422, "event_timestamp"),
        ("/v1/signals/user-risk", json!({"subject": jane(), "current_level": "high", "reason_admin": {"de": "nur deutsch"}}).to_string(), 422, "reason_admin.en"),
        ("/v1/signals/user-risk", json!({"subject": {"format": "opaque", "id": "u1"}, "current_level": "high"}).to_string(), 422, "subject.user"),
        ("/v1/signals/device-risk", json!({"subject": jane(), "current_level": "high"}).to_string(), 422, "subject.device"),
        ("/v1/signals/ip-change", json!({"subject": jane(), "current_ip_address": "1.2.3", "previous_ip_address": "1.2.3.4"}).to_string(), 422, "current_ip_address"),
        ("/v1/signals/device-compliance", json!({"subject": {"user": jane(), "device": {"format": "opaque", "id": "d"}}, "current_status": "broken"}).to_string(), 422, "current_status"),
        ("/v1/signals/device-compliance", json!({"subject": {"user": jane(), "device": {"format": "opaque", "id": "d"}}, "current_status": "compliant"}).to_string(), 422, "previous_status"),
        ("/v1/signals/identifier-changed", json!({"subject": jane(), "new-value": "not an id"}).to_string(), 422, "new-value"),
        ("/v1/signals/user-risk", json!({"subject": jane(), "current_level": "high", "reason_admin": "x".repeat(9000)}).to_string(), 413, ""),
        ("/v1/signals/batch", json!({"signals": []}).to_string(), 422, "signals"),
        ("/v1/signals/batch", json!({"signals": {}}).to_string(), 422, "signals"),
    ];
    for (path, body, status, field) in cases {
        let resp = raw(path, body.clone()).await;
        let problem = assert_problem(resp, status).await;
        if !field.is_empty() {
            assert_eq!(
                problem["errors"][0]["field"], field,
                "{path} {body}: {problem}"
            );
        }
    }
    let resp = app
        .http
        .post(app.url("/v1/signals/user-risk"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(json!({"subject": jane(), "current_level": "high"}).to_string())
        .send()
        .await
        .expect("send");
    assert_problem(resp, 415).await;
    let (_, page) = app.get_json("/v1/signals", &token).await;
    assert_eq!(page["items"], json!([]), "nothing was queued");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn without_a_receiver_intake_refuses_clearly() {
    let dir = tempdir();
    let app = TestApp::spawn_with(config_for(dir.path())).await;
    let token = app
        .client_with("ueba", &[Scope::SignalsWrite, Scope::SignalsRead])
        .await;
    let resp = app
        .http
        .post(app.url("/v1/signals/user-risk"))
        .bearer_auth(&token)
        .json(&json!({"subject": jane(), "current_level": "high"}))
        .send()
        .await
        .expect("send");
    let p = assert_problem(resp, 503).await;
    assert!(
        p["detail"]
            .as_str()
            .expect("d")
            .contains("SSF_OKTA__ORG_URL"),
        "{p}"
    );
    let (_, page) = app.get_json("/v1/signals", &token).await;
    assert_eq!(page["items"], json!([]));
}

/// How each kind of answer is classed: 413/415/422 fail for good; other 4xx, 5xx, timeouts,
/// refused connections and redirects are retried; a redirect is never followed.
#[tokio::test]
async fn delivery_error_classes() {
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    let mut config = config_with_receiver(dir.path(), &receiver.org_url);
    config.delivery.request_timeout_ms = 300;
    let app = TestApp::spawn_with(config).await;
    let token = crate::helpers::ADMIN_TOKEN;
    let post = |email: String| {
        let app = &app;
        async move {
            let (st, body) = app
                .post_json(
                    "/v1/signals/user-risk",
                    token,
                    &json!({"subject": {"format": "email", "email": email}, "current_level": "high"}),
                )
                .await;
            assert_eq!(st, 202, "{body}");
            body["jti"].as_str().expect("jti").to_owned()
        }
    };
    for code in [413u16, 415, 422] {
        receiver.script([Reply::Status(code)]);
        let jti = post(format!("refused{code}@example.com")).await;
        let v = wait_status(&app, token, &jti, "failed").await;
        assert_eq!(v["last_error"]["http_status"], code, "{v}");
        assert_eq!(v["attempts"], 1, "not retried: {v}");
    }
    for (reply, what) in [
        (Reply::Status(404), "other 4xx"),
        (Reply::Status(409), "other 4xx"),
        (Reply::Redirect, "redirect"),
    ] {
        receiver.script([reply]);
        let jti = post(format!("retried{}@example.com", receiver.received().len())).await;
        let v = wait_status(&app, token, &jti, "delivered").await;
        assert_eq!(
            v["attempts"], 2,
            "{what}: retried once, then delivered: {v}"
        );
    }
    assert_eq!(receiver.redirected(), 0, "a redirect is never followed");
    // A receiver slower than request_timeout_ms: retried as a timeout.
    receiver.set_latency(Duration::from_millis(800));
    let jti = post("slow@example.com".into()).await;
    let v = wait_status(&app, token, &jti, "retrying").await;
    assert!(
        v["last_error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out"),
        "{v}"
    );
    receiver.set_latency(Duration::ZERO);
    wait_status(&app, token, &jti, "delivered").await;
}

/// Nothing listens at the receiver's address: the SET is retried, saying why.
#[tokio::test]
async fn a_refused_connection_is_retried() {
    let dir = tempdir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let app = TestApp::spawn_with(config_with_receiver(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
    ))
    .await;
    let (st, body) = app
        .post_json(
            "/v1/signals/user-risk",
            crate::helpers::ADMIN_TOKEN,
            &json!({"subject": jane(), "current_level": "high"}),
        )
        .await;
    assert_eq!(st, 202);
    let jti = body["jti"].as_str().expect("jti");
    let v = wait_status(&app, crate::helpers::ADMIN_TOKEN, jti, "retrying").await;
    let message = v["last_error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("cannot reach the receiver"), "{v}");
    assert!(v["last_error"]["http_status"].is_null(), "{v}");
}
