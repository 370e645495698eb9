//! Delivery hardening: verification refusals retried for a bounded window, `unchanged` naming the
//! SET it matched, one writer per database, readiness that reflects the worker and the store,
//! back-off when outcomes cannot be written, and pruning of finished SETs.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use ssf_transmitter::Application;
use ssf_transmitter::auth::Scope;
use ssf_transmitter::clock::{ManualClock, SystemClock};
use ssf_transmitter::config::Config;

use crate::helpers::{ADMIN_TOKEN, Sandboxed, TestApp, config_with_receiver, tempdir};
use crate::receiver::{FakeReceiver, Reply};

fn user(email: &str) -> Value {
    json!({"format": "email", "email": email})
}

async fn wait_status(app: &TestApp, token: &str, jti: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (status, body) = app.get_json(&format!("/v1/signals/{jti}"), token).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] == want {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("SET {jti} never reached {want}: {last}");
}

async fn send(app: &TestApp, token: &str, subject: &Value, level: &str) -> (u16, Value) {
    app.post_json(
        "/v1/signals/user-risk",
        token,
        &json!({"subject": subject, "current_level": level}),
    )
    .await
}

async fn queued(app: &TestApp, token: &str, subject: &Value, level: &str) -> String {
    let (status, body) = send(app, token, subject, level).await;
    assert_eq!(status, 202, "{body}");
    body["jti"].as_str().expect("jti").to_owned()
}

#[tokio::test]
async fn verification_refusals_are_retried_and_other_400s_are_not() {
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    let app = TestApp::spawn_with(config_with_receiver(dir.path(), &receiver.org_url)).await;
    let token = app
        .client_with("ueba", &[Scope::SignalsWrite, Scope::SignalsRead])
        .await;
    receiver.script([
        Reply::BadRequest {
            err: "invalid_key",
            description: "No key with kid 'k2' in the provider's JWKS",
        },
        Reply::BadRequest {
            err: "authentication_failed",
            description: "Could not verify message signature",
        },
        Reply::BadRequest {
            err: "invalid_issuer",
            description: "The security events provider for this issuer is not active",
        },
    ]);
    let first = queued(&app, &token, &user("a@example.com"), "high").await;
    let view = wait_status(&app, &token, &first, "delivered").await;
    assert_eq!(view["attempts"], 4, "three refusals, then 202: {view}");
    assert_eq!(receiver.delivered().len(), 1);

    // Any other 400 stays permanent: one attempt, failed.
    receiver.script([Reply::BadRequest {
        err: "invalid_audience",
        description: "Invalid audience",
    }]);
    let other = queued(&app, &token, &user("b@example.com"), "high").await;
    let view = wait_status(&app, &token, &other, "failed").await;
    assert_eq!(view["attempts"], 1, "{view}");
    assert_eq!(view["last_error"]["err"], "invalid_audience");
}

#[tokio::test]
async fn a_verification_refusal_fails_after_the_window_and_unchanged_shows_it() {
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    let mut config = config_with_receiver(dir.path(), &receiver.org_url);
    config.delivery.verify_retry_secs = 1;
    let app = TestApp::spawn_with(config).await;
    let token = app
        .client_with("ueba", &[Scope::SignalsWrite, Scope::SignalsRead])
        .await;
    receiver.script((0..10_000).map(|_| Reply::BadRequest {
        err: "invalid_issuer",
        description: "No security events provider is configured with issuer 'x'",
    }));
    let jane = user("jane@example.com");
    let jti = queued(&app, &token, &jane, "high").await;
    let retrying = wait_status(&app, &token, &jti, "retrying").await;
    assert_eq!(
        retrying["last_error"]["err"], "invalid_issuer",
        "{retrying}"
    );

    // The same level again is not sent; the answer names the SET that carries it, and how it fares.
    let (status, body) = send(&app, &token, &jane, "high").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "unchanged");
    assert_eq!(body["matched_jti"], jti.as_str());
    assert_eq!(body["matched_status"], "retrying");

    let failed = wait_status(&app, &token, &jti, "failed").await;
    let attempts = failed["attempts"].as_i64().expect("attempts");
    assert!(attempts >= 2, "retried before failing: {failed}");
    assert_eq!(failed["last_error"]["err"], "invalid_issuer");
    assert!(
        failed["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("verify_retry_secs")),
        "{failed}"
    );
    // Okta never got that level: it is not suppressed any more.
    let (status, body) = send(&app, &token, &jane, "high").await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn unchanged_names_the_matched_set_within_a_batch_and_after_delivery() {
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    let app = TestApp::spawn_with(config_with_receiver(dir.path(), &receiver.org_url)).await;
    let token = app
        .client_with("ueba", &[Scope::SignalsWrite, Scope::SignalsRead])
        .await;
    let jane = user("jane@example.com");
    let (status, batch) = app
        .post_json(
            "/v1/signals/batch",
            &token,
            &json!({"signals": [
                {"type": "user-risk", "subject": jane, "current_level": "medium"},
                {"type": "user-risk", "subject": jane, "current_level": "medium"},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    let first = batch["results"][0]["jti"].as_str().expect("jti").to_owned();
    assert_eq!(batch["results"][1]["status"], "unchanged");
    assert_eq!(batch["results"][1]["matched_jti"], first.as_str());
    assert_eq!(batch["results"][1]["matched_status"], "queued");
    wait_status(&app, &token, &first, "delivered").await;
    let (status, body) = send(&app, &token, &jane, "medium").await;
    assert_eq!(status, 200);
    assert_eq!(body["matched_jti"], first.as_str());
    assert_eq!(body["matched_status"], "delivered");
}

/// Okta after `keys activate`: it keeps the JWKS it has for a while and answers `invalid_key` for
/// the new `kid`. Every SET still arrives once, in order per subject.
#[tokio::test]
async fn a_key_rotation_behind_a_stale_jwks_loses_nothing_and_keeps_order() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = s
        .app
        .client_with("ueba", &[Scope::SignalsWrite, Scope::SignalsRead])
        .await;
    // The sandbox caches the current JWKS with a first SET.
    let warm = queued(&s.app, &token, &user("warm@example.com"), "low").await;
    wait_status(&s.app, &token, &warm, "delivered").await;
    let r = s
        .okta(Method::PUT, "/__sandbox/faults")
        .json(&json!({"jwks_stale_secs": 2}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let (_, next) = s.app.post("/v1/admin/keys", ADMIN_TOKEN).await;
    let kid = next["kid"].as_str().expect("kid").to_owned();
    let (status, _) = s
        .app
        .post(
            &format!("/v1/admin/keys/{kid}/activate?force=true"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(status, 200);

    let mut sent: Vec<(String, Vec<String>)> = Vec::new();
    for i in 0..4 {
        let subject = user(&format!("user{i}@example.com"));
        let mut jtis = Vec::new();
        for level in ["low", "high", "medium"] {
            jtis.push(queued(&s.app, &token, &subject, level).await);
        }
        sent.push((format!("user{i}@example.com"), jtis));
    }
    let mut refused_first = false;
    for (_, jtis) in &sent {
        for jti in jtis {
            // No other fault is injected: a second attempt means `invalid_key` came first.
            let view = wait_status(&s.app, &token, jti, "delivered").await;
            if view["attempts"].as_i64().is_some_and(|a| a > 1) {
                refused_first = true;
            }
        }
    }
    assert!(
        refused_first,
        "the stale JWKS refused at least one SET before it was delivered"
    );
    let received = s.sandbox.received();
    for (email, jtis) in &sent {
        let got: Vec<&str> = received
            .iter()
            .filter(|r| {
                r.claims["events"]
                    .as_object()
                    .and_then(|e| e.values().next())
                    .and_then(|e| e.pointer("/subject/user/email"))
                    .and_then(Value::as_str)
                    == Some(email.as_str())
            })
            .map(|r| r.jti.as_str())
            .collect();
        let want: Vec<&str> = jtis.iter().map(String::as_str).collect();
        assert_eq!(got, want, "{email}: each SET once, in acceptance order");
    }
}

/// A provider that is not active (yet, or again) gets `invalid_issuer`; SETs wait for it.
#[tokio::test]
async fn sets_wait_for_a_deactivated_provider_and_arrive_in_order_once_it_is_active() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = s
        .app
        .client_with("ueba", &[Scope::SignalsWrite, Scope::SignalsRead])
        .await;
    let id = s.sandbox.providers()[0].id.clone();
    let r = s
        .okta(
            Method::POST,
            &format!("/api/v1/security-events-providers/{id}/lifecycle/deactivate"),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let mut sent = Vec::new();
    for i in 0..3 {
        let subject = user(&format!("p{i}@example.com"));
        for level in ["high", "low"] {
            sent.push(queued(&s.app, &token, &subject, level).await);
        }
    }
    let view = wait_status(&s.app, &token, &sent[0], "retrying").await;
    assert_eq!(view["last_error"]["err"], "invalid_issuer", "{view}");
    let r = s
        .okta(
            Method::POST,
            &format!("/api/v1/security-events-providers/{id}/lifecycle/activate"),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    for jti in &sent {
        wait_status(&s.app, &token, jti, "delivered").await;
    }
    let got: Vec<String> = s.sandbox.received().into_iter().map(|r| r.jti).collect();
    assert_eq!(got.len(), sent.len(), "each SET once: {got:?}");
    for pair in sent.chunks(2) {
        let pos = |j: &String| got.iter().position(|g| g == j).expect("received");
        assert!(pos(&pair[0]) < pos(&pair[1]), "order per subject");
    }
}

#[tokio::test]
async fn a_second_app_on_the_same_database_refuses_to_start() {
    let dir = tempdir();
    // SQLite only, on every backend: the writer lock is SQLite's (PostgreSQL allows replicas).
    let config = crate::helpers::sqlite_config_for(dir.path());
    let first = TestApp::spawn_with(config.clone()).await;
    let err = Application::build(config.clone(), Arc::new(SystemClock))
        .await
        .expect_err("a second writer is refused");
    let text = format!("{err:#}");
    assert!(text.contains("data/test.db"), "names the database: {text}");
    assert!(
        text.contains("another process") && text.contains("Only one `serve`"),
        "says why: {text}"
    );
    first.stop().await;
    // Released on stop: the next one starts.
    let again = TestApp::spawn_with(config).await;
    assert_eq!(again.get("/readyz").await.status(), 200);
    again.stop().await;
}

/// The test's own connection to the app's database file, to break it on purpose.
async fn raw_db(dir: &std::path::Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("data/test.db"))
        .busy_timeout(Duration::from_secs(5));
    sqlx::SqlitePool::connect_with(options)
        .await
        .expect("open the database")
}

#[tokio::test]
async fn an_outcome_that_cannot_be_written_backs_off_and_readiness_says_so() {
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    // SQLite only, on every backend: the failure is injected through the SQLite file.
    let config = Config {
        database_url: crate::helpers::sqlite_config_for(dir.path()).database_url,
        ..config_with_receiver(dir.path(), &receiver.org_url)
    };
    let app = TestApp::spawn_with(config).await;
    let token = app
        .client_with("ueba", &[Scope::SignalsWrite, Scope::SignalsRead])
        .await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    let db = raw_db(dir.path()).await;
    sqlx::query(
        "CREATE TRIGGER break_outcomes BEFORE UPDATE OF status ON outbox \
         BEGIN SELECT RAISE(ABORT, 'injected: cannot write outcomes'); END",
    )
    .execute(&db)
    .await
    .expect("trigger");
    let jti = queued(&app, &token, &user("jane@example.com"), "high").await;
    // The SET is pushed again and again (its outcome is never on disk) — but not in a tight loop.
    let pushes = receiver.wait_delivered(3, 30).await;
    assert!(pushes.len() >= 3);
    let at: Vec<i64> = receiver.received().iter().map(|r| r.at_ms).collect();
    assert!(
        at[1] - at[0] >= 250 && at[2] - at[1] >= 500,
        "back-off of at least 250 ms, then 500 ms: {at:?}"
    );
    let body = crate::helpers::assert_problem(app.get("/readyz").await, 503).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cannot record delivery outcomes")),
        "{body}"
    );
    sqlx::query("DROP TRIGGER break_outcomes")
        .execute(&db)
        .await
        .expect("drop");
    wait_status(&app, &token, &jti, "delivered").await;
    let mut ready = 0;
    for _ in 0..200 {
        ready = app.get("/readyz").await.status().as_u16();
        if ready == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(ready, 200, "ready again once outcomes are written");
}

#[tokio::test]
async fn readiness_fails_while_the_store_cannot_commit() {
    let dir = tempdir();
    // SQLite only, on every backend: the failure is injected through the SQLite file.
    let app = TestApp::spawn_with(crate::helpers::sqlite_config_for(dir.path())).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    let db = raw_db(dir.path()).await;
    for event in ["INSERT", "UPDATE"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TRIGGER no_probe_{event} BEFORE {event} ON store_probe \
             BEGIN SELECT RAISE(ABORT, 'injected: disk full'); END"
        )))
        .execute(&db)
        .await
        .expect("trigger");
    }
    let body = crate::helpers::assert_problem(app.get("/readyz").await, 503).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cannot commit")),
        "{body}"
    );
    for event in ["INSERT", "UPDATE"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP TRIGGER no_probe_{event}"
        )))
        .execute(&db)
        .await
        .expect("drop");
    }
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn delivery_held_back_until_released_and_not_ready_meanwhile() {
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    let mut app = Application::build(
        config_with_receiver(dir.path(), &receiver.org_url),
        Arc::new(SystemClock),
    )
    .await
    .expect("build");
    let (release, gate) = tokio::sync::oneshot::channel();
    app.hold_delivery_until(gate);
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let http = crate::helpers::http_client();
    let resp = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("send");
    let body = crate::helpers::assert_problem(resp, 503).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("delivery worker is not running")),
        "{body}"
    );
    let resp = http
        .post(format!("{base}/v1/signals/user-risk"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"subject": user("jane@example.com"), "current_level": "high"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 202, "intake works while delivery waits");
    assert!(receiver.received().is_empty(), "nothing pushed yet");
    release.send(()).expect("release");
    receiver.wait_delivered(1, 30).await;
    let resp = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let _ = stop.send(());
    task.await.expect("join").expect("clean stop");
}

#[tokio::test]
async fn finished_sets_are_pruned_after_their_retention_and_counted() {
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let mut config = config_with_receiver(dir.path(), &receiver.org_url);
    config.delivery.retain_days = 30;
    config.delivery.retain_failed_days = 60;
    config.delivery.prune_interval_secs = 1;
    config.delivery.prune_batch = 2;
    let app = Application::build(config, clock.clone())
        .await
        .expect("build");
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let http = crate::helpers::http_client();
    let post = |subject: Value| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let r = http
                .post(format!("{base}/v1/signals/user-risk"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"subject": subject, "current_level": "high"}))
                .send()
                .await
                .expect("send");
            assert_eq!(r.status(), 202);
            let body: Value = r.json().await.expect("json");
            body["jti"].as_str().expect("jti").to_owned()
        }
    };
    let status = |jti: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let r = http
                .get(format!("{base}/v1/signals/{jti}"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .expect("send");
            if r.status() == 404 {
                return "gone".to_owned();
            }
            let body: Value = r.json().await.expect("json");
            body["status"].as_str().unwrap_or_default().to_owned()
        }
    };
    let wait = |jti: String, want: &'static str| {
        let status = &status;
        async move {
            for _ in 0..400 {
                if status(jti.clone()).await == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("{jti} never became {want}");
        }
    };
    let mut delivered = Vec::new();
    for i in 0..5 {
        let jti = post(user(&format!("d{i}@example.com"))).await;
        wait(jti.clone(), "delivered").await;
        delivered.push(jti);
    }
    receiver.script([Reply::BadRequest {
        err: "invalid_request",
        description: "bad",
    }]);
    let failed = post(user("f@example.com")).await;
    wait(failed.clone(), "failed").await;
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"ssf_outbox_sets{status="delivered"} 5"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ssf_outbox_sets{status="failed"} 1"#),
        "{metrics}"
    );

    // 31 days on: the delivered SETs go (in batches of 2), the failed one stays until day 60.
    clock.advance(chrono::Duration::days(31));
    for jti in &delivered {
        wait(jti.clone(), "gone").await;
    }
    assert_eq!(status(failed.clone()).await, "failed");
    clock.advance(chrono::Duration::days(30));
    wait(failed.clone(), "gone").await;
    // The counters move when the pruning pass ends, a moment after its last delete.
    let mut metrics = String::new();
    for _ in 0..400 {
        metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("text");
        if metrics.contains(r#"ssf_outbox_pruned_total{status="failed"} 1"#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        metrics.contains(r#"ssf_outbox_pruned_total{status="delivered"} 5"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ssf_outbox_pruned_total{status="failed"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ssf_outbox_sets{status="delivered"} 0"#),
        "{metrics}"
    );
    let _ = stop.send(());
    task.await.expect("join").expect("clean stop");
}

/// A receiver that keeps answering 503: the SET is retried until `max_age_secs`, then `dead`
/// with its last error, counted in `ssf_sets_dead_total`; the subject's later SETs still go out.
#[tokio::test]
async fn a_set_never_accepted_within_its_max_age_is_dead_and_the_subject_moves_on() {
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    receiver.set_fail_rate(1.0);
    let mut config = config_with_receiver(dir.path(), &receiver.org_url);
    config.delivery.max_age_secs = 2;
    config.delivery.verify_retry_secs = 1;
    let app = TestApp::spawn_with(config).await;
    let subject = user("dead.letter@example.com");
    let first = queued(&app, ADMIN_TOKEN, &subject, "high").await;
    let dead = wait_status(&app, ADMIN_TOKEN, &first, "dead").await;
    assert!(
        dead["attempts"].as_i64().unwrap_or(0) >= 2,
        "retried first: {dead}"
    );
    // Its last error keeps what the receiver last answered.
    assert_eq!(dead["last_error"]["http_status"], 503, "{dead}");
    let message = dead["last_error"]["message"].as_str().expect("message");
    // Given up at a claim past the max age, or because the next retry would be past it.
    assert!(
        message.starts_with("not delivered within 2 s") || message.ends_with("past the max age"),
        "{message}"
    );
    assert!(message.contains("503"), "{message}");
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    let line = metrics
        .lines()
        .find(|l| l.starts_with("ssf_sets_dead_total"))
        .unwrap_or_else(|| panic!("dead counter in {metrics}"));
    assert!(line.ends_with(" 1"), "{line}");
    // The receiver is back: the subject's next SET is delivered (not held behind the dead one).
    receiver.set_fail_rate(0.0);
    let before = receiver.delivered().len();
    let second = queued(&app, ADMIN_TOKEN, &subject, "high").await;
    wait_status(&app, ADMIN_TOKEN, &second, "delivered").await;
    assert_eq!(receiver.delivered().len(), before + 1);
    // The dead SET never reached Okta, so it is not the subject's last level: the next one says
    // the level changed from none.
    let (_, claims) = crate::helpers::decode(&receiver.delivered()[before]);
    let event = claims["events"]
        .as_object()
        .and_then(|e| e.values().next())
        .expect("event")
        .clone();
    assert_eq!(event["previous_level"], "none", "{event}");
    let (_, page) = app.get_json("/v1/signals?status=dead", ADMIN_TOKEN).await;
    let listed: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|s| s["jti"].as_str())
        .collect();
    assert_eq!(listed, [first.as_str()], "{page}");
}

/// `GET /v1/signals` pages newest first with `cursor`, and every SET is on exactly one page.
#[tokio::test]
async fn signals_page_newest_first_through_the_cursor() {
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    let app = TestApp::spawn_with(config_with_receiver(dir.path(), &receiver.org_url)).await;
    let mut posted = Vec::new();
    for i in 0..7 {
        posted.push(
            queued(
                &app,
                ADMIN_TOKEN,
                &user(&format!("page{i}@example.com")),
                "high",
            )
            .await,
        );
    }
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/signals?limit=3&cursor={c}"),
            None => "/v1/signals?limit=3".to_owned(),
        };
        let (st, page) = app.get_json(&path, ADMIN_TOKEN).await;
        assert_eq!(st, 200, "{page}");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 3);
        seen.extend(
            items
                .iter()
                .map(|i| i["jti"].as_str().expect("jti").to_owned()),
        );
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10, "the cursor ends");
    }
    posted.reverse();
    assert_eq!(seen, posted, "newest first, each once");
    assert_eq!(pages, 3);
    for bad in ["abc", "-1", "1234567890123456789", "1%2F2"] {
        let (st, _) = app
            .get_json(&format!("/v1/signals?cursor={bad}"), ADMIN_TOKEN)
            .await;
        assert!(st == 400 || st == 422, "{bad}: {st}");
    }
}
