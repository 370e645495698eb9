//! The transmitter against the built-in Okta sandbox, and the sandbox's own contract.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;

use crate::helpers::{ADMIN_TOKEN, Sandboxed, tempdir};

fn jane() -> Value {
    json!({"format": "email", "email": "jane@example.com"})
}

async fn wait_received(s: &Sandboxed, n: usize) -> Vec<ssf_transmitter::sandbox::ReceivedSet> {
    // Up to 30 s: a SET behind two 503s and a 429 waits out jittered back-offs (several seconds),
    // and a CI machine running the whole suite in parallel once needed more than 10.
    for _ in 0..1200 {
        let r = s.sandbox.received();
        if r.len() >= n {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "the sandbox received only {} of {n} SETs",
        s.sandbox.received().len()
    );
}

async fn push(s: &Sandboxed, token: &str) -> (u16, Value) {
    let r = s
        .app
        .http
        .post(format!("{}/security/api/v1/security-events", s.org_url))
        .header("content-type", "application/secevent+jwt")
        .body(token.to_owned())
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_event_type_is_accepted_by_the_sandbox_and_logged() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = s
        .app
        .client_with("edr", &[Scope::SignalsWrite, Scope::SignalsRead])
        .await;
    let device = json!({"user": jane(), "device": {"format": "opaque", "id": "laptop-42"}});
    let bodies = json!({"signals": [
        {"type": "user-risk", "subject": jane(), "severity": "critical"},
        {"type": "device-risk", "subject": device, "current_level": "medium"},
        {"type": "ip-change", "subject": jane(), "current_ip_address": "10.0.0.2", "previous_ip_address": "10.0.0.1"},
        {"type": "session-revoked", "subject": jane(), "last_known_user_agent": "curl/8"},
        {"type": "device-compliance", "subject": device, "current_status": "compliant", "previous_status": "not-compliant"},
        {"type": "identifier-changed", "subject": jane(), "new-value": "+14155550100"},
    ]});
    let (status, body) = s.app.post_json("/v1/signals/batch", &token, &bodies).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["queued"], 6, "{body}");
    let received = wait_received(&s, 6).await;
    let uris: Vec<String> = received
        .iter()
        .flat_map(|r| {
            r.claims["events"]
                .as_object()
                .expect("events")
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(uris.len(), 6);
    for jti in body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["jti"].as_str().expect("jti"))
    {
        let mut view = Value::Null;
        for _ in 0..100 {
            let (_, v) = s.app.get_json(&format!("/v1/signals/{jti}"), &token).await;
            view = v;
            if view["status"] == "delivered" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(view["status"], "delivered", "{view}");
    }
    let logs: Value = s
        .okta(
            Method::GET,
            "/api/v1/logs?filter=eventType%20eq%20%22security.events.provider.receive_event%22",
        )
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let logs = logs.as_array().expect("array");
    assert_eq!(logs.len(), 6);
    assert_eq!(
        logs[0]["eventType"],
        "security.events.provider.receive_event"
    );
    assert_eq!(logs[0]["actor"]["type"], "SecurityEventProvider");
    assert_eq!(logs[0]["target"][0]["alternateId"], "jane@example.com");
    assert!(
        logs[0]["debugContext"]["debugData"]["partnerRiskReportData"]
            .as_str()
            .expect("data")
            .contains(&s.app.issuer)
    );
}

#[tokio::test]
async fn the_sandbox_rejects_what_okta_rejects() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let ring = s.app.state.keys.ring();
    let now = chrono::Utc::now().timestamp();
    let event = json!({
        "subject": {"user": jane()},
        "event_timestamp": now,
        "current_level": "high",
        "previous_level": "low",
        "reason_admin": {"en": "test"},
    });
    let claims = |aud: &str, jti: &str, event: &Value| {
        json!({
            "iss": s.app.issuer,
            "aud": aud,
            "jti": jti,
            "iat": now,
            "events": {"https://schemas.okta.com/secevent/okta/event-type/user-risk-change": event},
        })
    };
    let aud = format!("{}/", s.org_url);
    let good = ring
        .sign("secevent+jwt", &claims(&aud, "j-good", &event))
        .expect("sign");
    assert_eq!(push(&s, &good).await.0, 202);
    // The same jti again: accepted and ignored, as Okta does.
    assert_eq!(push(&s, &good).await.0, 202);
    assert_eq!(s.sandbox.received().len(), 1);
    // Without the trailing slash the audience is still the org.
    let no_slash = ring
        .sign("secevent+jwt", &claims(&s.org_url, "j-noslash", &event))
        .expect("sign");
    assert_eq!(push(&s, &no_slash).await.0, 202);

    // Tampered signature.
    let mut tampered = good.clone();
    let last = tampered.pop().expect("char");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (status, body) = push(&s, &tampered).await;
    assert_eq!(
        (status, body["err"].as_str()),
        (400, Some("authentication_failed")),
        "{body}"
    );
    // Tampered claims with the original signature.
    let parts: Vec<&str> = good.split('.').collect();
    use base64::Engine as _;
    let forged_claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(claims(&aud, "j-forged", &event).to_string());
    let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
    assert_eq!(push(&s, &forged).await.1["err"], "authentication_failed");

    // Wrong audience.
    let wrong_aud = ring
        .sign(
            "secevent+jwt",
            &claims("https://other.okta.com/", "j-aud", &event),
        )
        .expect("sign");
    let (status, body) = push(&s, &wrong_aud).await;
    assert_eq!(
        (status, body["err"].as_str()),
        (400, Some("invalid_audience")),
        "{body}"
    );

    // Unknown kid: a key the transmitter never published.
    let other = tempdir();
    let other_dir = ssf_transmitter::keys::KeyDir::open(other.path()).expect("dir");
    other_dir
        .ensure_initialized(chrono::Utc::now())
        .expect("init");
    let foreign = other_dir
        .load()
        .expect("load")
        .sign("secevent+jwt", &claims(&aud, "j-kid", &event))
        .expect("sign");
    let (status, body) = push(&s, &foreign).await;
    assert_eq!(
        (status, body["err"].as_str()),
        (400, Some("invalid_key")),
        "{body}"
    );

    // Unknown issuer.
    let mut c = claims(&aud, "j-iss", &event);
    c["iss"] = json!("https://somebody-else.example.com");
    let (_, body) = push(&s, &ring.sign("secevent+jwt", &c).expect("sign")).await;
    assert_eq!(body["err"], "invalid_issuer");

    // Wrong typ.
    let (_, body) = push(
        &s,
        &ring
            .sign("JWT", &claims(&aud, "j-typ", &event))
            .expect("sign"),
    )
    .await;
    assert_eq!(body["err"], "invalid_request");

    // Bad enum and a missing required field, named in Okta's camelCase style.
    let mut bad = event.clone();
    bad["current_level"] = json!("severe");
    let (_, body) = push(
        &s,
        &ring
            .sign("secevent+jwt", &claims(&aud, "j-enum", &bad))
            .expect("sign"),
    )
    .await;
    assert_eq!(body["err"], "invalid_request");
    assert!(
        body["description"].as_str().expect("d").contains(
            "'events.mediationUserRiskChangeEvent.currentLevel': Not one of the allowed values"
        ),
        "{body}"
    );
    let mut missing = event.clone();
    missing
        .as_object_mut()
        .expect("obj")
        .remove("previous_level");
    let (_, body) = push(
        &s,
        &ring
            .sign("secevent+jwt", &claims(&aud, "j-missing", &missing))
            .expect("sign"),
    )
    .await;
    assert!(
        body["description"]
            .as_str()
            .expect("d")
            .contains("previousLevel': The field cannot be left blank"),
        "{body}"
    );

    // Unknown event type, missing jti, wrong media type.
    let mut c = claims(&aud, "j-uri", &event);
    c["events"] =
        json!({"https://schemas.openid.net/secevent/caep/event-type/credential-change": event});
    assert_eq!(
        push(&s, &ring.sign("secevent+jwt", &c).expect("sign"))
            .await
            .1["err"],
        "invalid_request"
    );
    let mut c = claims(&aud, "x", &event);
    c.as_object_mut().expect("obj").remove("jti");
    let (_, body) = push(&s, &ring.sign("secevent+jwt", &c).expect("sign")).await;
    assert!(
        body["description"].as_str().expect("d").contains("'jti'"),
        "{body}"
    );
    let r = s
        .app
        .http
        .post(format!("{}/security/api/v1/security-events", s.org_url))
        .header("content-type", "application/json")
        .body(good.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);

    // Nothing rejected reached the System Log.
    let logs: Value = s
        .okta(Method::GET, "/api/v1/logs")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(logs.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn providers_api_follows_okta_spec() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    // No token / wrong token: 401 E0000011.
    let r = s
        .app
        .http
        .get(format!("{}/api/v1/security-events-providers", s.org_url))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.expect("json")["errorCode"],
        "E0000011"
    );
    // Okta's SDKs send "SSWS<token>" with no space; both work.
    let r = s
        .app
        .http
        .get(format!("{}/api/v1/security-events-providers", s.org_url))
        .header("authorization", format!("SSWS{}", s.api_token))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.expect("json");
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(1),
        "the transmitter registered itself"
    );
    let ours = &list[0];
    assert_eq!(ours["settings"]["issuer"], s.app.issuer.as_str());
    assert_eq!(
        ours["settings"]["jwks_url"],
        format!("{}/.well-known/jwks.json", s.app.issuer)
    );
    assert!(ours["id"].as_str().expect("id").starts_with("sse"));

    // Create with issuer + jwks_url: 200 (not 201), ACTIVE.
    let r = s
        .okta(Method::POST, "/api/v1/security-events-providers")
        .json(&json!({"name": "Other", "type": "okta", "settings": {"issuer": "https://x.example", "jwks_url": "https://x.example/jwks"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let created: Value = r.json().await.expect("json");
    assert_eq!(created["status"], "ACTIVE");
    assert!(created["settings"]["well_known_url"].is_null());
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(
        created["_links"]["deactivate"]["href"]
            .as_str()
            .expect("href")
            .ends_with("/lifecycle/deactivate")
    );

    // Invalid body: 400 E0000001 with causes.
    let r = s
        .okta(Method::POST, "/api/v1/security-events-providers")
        .json(&json!({"name": "", "type": "okta", "settings": {"issuer": "x"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["errorCode"], "E0000001");
    assert!(
        e["errorCauses"].as_array().is_some_and(|c| c.len() >= 2),
        "{e}"
    );

    // Deactivate / activate / get / replace / delete.
    let r = s
        .okta(
            Method::POST,
            &format!("/api/v1/security-events-providers/{id}/lifecycle/deactivate"),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "INACTIVE");
    let r = s
        .okta(
            Method::POST,
            &format!("/api/v1/security-events-providers/{id}/lifecycle/activate"),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "ACTIVE");
    let r = s
        .okta(Method::PUT, &format!("/api/v1/security-events-providers/{id}"))
        .json(&json!({"name": "Renamed", "type": "okta", "settings": {"issuer": "https://y.example", "jwks_url": "https://y.example/jwks"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.json::<Value>().await.expect("json")["name"], "Renamed");
    let r = s
        .okta(
            Method::DELETE,
            &format!("/api/v1/security-events-providers/{id}"),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    let r = s
        .okta(
            Method::GET,
            &format!("/api/v1/security-events-providers/{id}"),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.expect("json")["errorCode"],
        "E0000007"
    );
}

#[tokio::test]
async fn a_deactivated_provider_gets_its_sets_refused_and_faults_are_retried() {
    let dir = tempdir();
    // Refusals of the issuer are retried this long before the SET fails.
    let s = Sandboxed::start_with(dir.path(), |c, _| c.delivery.verify_retry_secs = 1).await;
    let token = s
        .app
        .client_with("ueba", &[Scope::SignalsWrite, Scope::SignalsRead])
        .await;
    // Fault injection: two 503s, then a 429 with a 1 s reset; the SET still arrives once.
    let r = s
        .okta(Method::PUT, "/__sandbox/faults")
        .json(&json!({"fail_next": 2, "rate_limit_next": 1, "rate_limit_reset_secs": 1}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let (_, resp) = s
        .app
        .post_json(
            "/v1/signals/user-risk",
            &token,
            &json!({"subject": jane(), "current_level": "high"}),
        )
        .await;
    let jti = resp["jti"].as_str().expect("jti").to_owned();
    let received = wait_received(&s, 1).await;
    assert_eq!(received[0].jti, jti);
    let mut view = Value::Null;
    for _ in 0..100 {
        view = s
            .app
            .get_json(&format!("/v1/signals/{jti}"), &token)
            .await
            .1;
        if view["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(view["status"], "delivered");
    assert_eq!(view["attempts"], 4, "503, 503, 429, 202");

    // Deactivate the provider: the next SET fails with Okta's reason, kept on the SET.
    let id = s.sandbox.providers()[0].id.clone();
    s.okta(
        Method::POST,
        &format!("/api/v1/security-events-providers/{id}/lifecycle/deactivate"),
    )
    .send()
    .await
    .expect("send");
    let (_, resp) = s
        .app
        .post_json(
            "/v1/signals/user-risk",
            &token,
            &json!({"subject": jane(), "current_level": "low"}),
        )
        .await;
    let jti = resp["jti"].as_str().expect("jti").to_owned();
    for _ in 0..500 {
        view = s
            .app
            .get_json(&format!("/v1/signals/{jti}"), &token)
            .await
            .1;
        if view["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(view["last_error"]["err"], "invalid_issuer");
    assert!(
        view["attempts"].as_i64().is_some_and(|a| a >= 2),
        "retried within verify_retry_secs before failing: {view}"
    );
}

#[tokio::test]
async fn key_rotation_keeps_the_sandbox_verifying() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = s.app.client_with("ueba", &[Scope::SignalsWrite]).await;
    let send = |level: &'static str| {
        let s = &s;
        let token = token.clone();
        async move {
            let (status, _) = s
                .app
                .post_json(
                    "/v1/signals/user-risk",
                    &token,
                    &json!({"subject": jane(), "current_level": level}),
                )
                .await;
            assert_eq!(status, 202);
        }
    };
    send("low").await;
    wait_received(&s, 1).await;
    let (_, next) = s.app.post("/v1/admin/keys", ADMIN_TOKEN).await;
    let kid = next["kid"].as_str().expect("kid").to_owned();
    // Like Okta, the sandbox caches the JWKS: give it a moment to be allowed to refetch.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = s
        .app
        .post(
            &format!("/v1/admin/keys/{kid}/activate?force=true"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(status, 200);
    send("high").await;
    let received = wait_received(&s, 2).await;
    let header = jsonwebtoken::decode_header(&received[1].token).expect("header");
    assert_eq!(
        header.kid.as_deref(),
        Some(kid.as_str()),
        "signed with the new key and accepted"
    );
}

#[tokio::test]
async fn the_directory_can_be_seeded_from_a_json_file_and_oauth_chosen() {
    use serde_json::json;
    let dir = crate::helpers::tempdir();
    let seed = dir.path().join("seed.json");
    std::fs::write(
        &seed,
        json!({
            "users": [
                {"profile": {"login": "ana@acme.test", "firstName": "Ana", "lastName": "Lee",
                             "samAccountName": "alee"}, "password": "Initial-Passw0rd"},
                {"id": "00uSEEDED00000000002", "status": "SUSPENDED",
                 "profile": {"login": "bo@acme.test"}}
            ],
            "groups": [{"name": "Quarantine", "members": ["ana@acme.test", "00uSEEDED00000000002"]}],
            "roles": [{"user": "bo@acme.test", "type": "READ_ONLY_ADMIN"}],
            "idps": [{"name": "Acme Entra", "type": "MICROSOFT"}]
        })
        .to_string(),
    )
    .expect("seed");
    let mut config = crate::helpers::config_for(dir.path());
    config.sandbox.seed_file = Some(seed);
    config.sandbox.oauth = true;
    let s = crate::helpers::Sandboxed::start_from(config, |_, _| {}).await;
    let token = s
        .app
        .client_with(
            "soar",
            &[
                ssf_transmitter::auth::Scope::EnforceRead,
                ssf_transmitter::auth::Scope::EnforceWrite,
            ],
        )
        .await;
    let (status, st) = s.app.get_json("/v1/okta/status", &token).await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["auth_mode"], "oauth", "{st}");

    let (status, users) = s.app.get_json("/v1/users?limit=10", &token).await;
    assert_eq!(status, 200, "{users}");
    let logins: Vec<&str> = users
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["profile"]["login"].as_str())
        .collect();
    assert_eq!(
        logins,
        ["ana@acme.test", "bo@acme.test"],
        "the demo users are gone"
    );
    let (_, ana) = s.app.get_json("/v1/users/ana", &token).await;
    assert_eq!(ana["okta"]["profile"]["email"], "ana@acme.test");
    let (_, groups) = s
        .app
        .get_json("/v1/users/bo@acme.test/groups", &token)
        .await;
    assert_eq!(groups["groups"][0]["profile"]["name"], "Quarantine");
    let (_, roles) = s.app.get_json("/v1/users/bo@acme.test/roles", &token).await;
    assert_eq!(roles["roles"][0]["type"], "READ_ONLY_ADMIN");
    let (_, idps) = s.app.get_json("/v1/identity-providers", &token).await;
    assert_eq!(idps[0]["name"], "Acme Entra");
    let (status, body) = s.app.post("/v1/users/bo@acme.test/unsuspend", &token).await;
    assert_eq!(status, 200, "{body}");
    let resp = s
        .app
        .http
        .post(format!("{}/api/v1/authn", s.org_url))
        .json(&json!({"username": "ana@acme.test", "password": "Initial-Passw0rd"}))
        .send()
        .await
        .expect("authn");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_bad_seed_file_is_refused_naming_the_entry() {
    use serde_json::json;
    let dir = crate::helpers::tempdir();
    let sandbox = ssf_transmitter::sandbox::Sandbox::bind(
        "127.0.0.1:0".parse().expect("addr"),
        std::sync::Arc::new(ssf_transmitter::clock::SystemClock),
    )
    .await
    .expect("bind");
    for (seed, expected) in [
        (
            json!({"users": [{"profile": {"email": "x@y"}}]}),
            "users[0]: profile.login is required",
        ),
        (
            json!({"users": [{"profile": {"login": "a@b"}, "status": "HAPPY"}]}),
            "users[0]: status \"HAPPY\"",
        ),
        (
            json!({"groups": [{"name": "G", "members": ["ghost@b"]}]}),
            "groups[0]: member \"ghost@b\" is not a seeded user",
        ),
        (
            json!({"users": [{"profile": {"login": "a@b"}}], "roles": [{"user": "a@b", "type": "KING"}]}),
            "roles[0]: type \"KING\"",
        ),
        (json!({"people": []}), "not a valid sandbox seed file"),
    ] {
        let path = dir.path().join("seed.json");
        std::fs::write(&path, seed.to_string()).expect("write");
        let err = sandbox.seed_from_file(&path).expect_err("refused");
        let msg = format!("{err:#}");
        assert!(msg.contains(expected), "{msg}");
    }
}

#[tokio::test]
async fn the_management_api_request_log_records_what_was_sent_with_passwords_redacted() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    assert!(
        s.sandbox
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path == "/api/v1/security-events-providers"),
        "start-up registration is recorded"
    );
    s.sandbox.clear_requests();
    assert!(s.sandbox.requests().is_empty());

    let resp = s
        .okta(
            Method::POST,
            "/api/v1/users/jane.doe@example.com?strict=true",
        )
        .json(&json!({"credentials": {"password": {"value": "Sandbox-Log-42"}}}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let resp = s
        .okta(Method::GET, "/api/v1/users")
        .query(&[("search", "profile.login sw \"jane\""), ("limit", "5")])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    // Refused calls (unknown path, bad token) are recorded too; sandbox controls are not.
    let resp = s
        .okta(Method::GET, "/api/v1/nothing-here")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 404);
    let resp = s
        .app
        .http
        .get(format!("{}/api/v1/groups", s.org_url))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);

    let log = s.sandbox.requests();
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].path, "/api/v1/users/jane.doe@example.com");
    assert_eq!(log[0].query, vec![("strict".to_owned(), "true".to_owned())]);
    assert_eq!(
        log[0].body,
        Some(json!({"credentials": {"password": {"value": "[redacted]"}}}))
    );
    assert_eq!(
        log[1].query,
        vec![
            ("search".to_owned(), "profile.login sw \"jane\"".to_owned()),
            ("limit".to_owned(), "5".to_owned())
        ]
    );
    assert_eq!(log[1].body, None);
    assert_eq!(log[2].path, "/api/v1/nothing-here");
    assert_eq!(
        (log[3].method.as_str(), log[3].path.as_str()),
        ("GET", "/api/v1/groups")
    );

    // Over HTTP: SSWS only; DELETE empties it.
    let resp = s
        .okta(Method::GET, "/__sandbox/requests")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body.as_array().map(Vec::len), Some(4), "{body}");
    assert_eq!(
        body[0]["body"]["credentials"]["password"]["value"],
        "[redacted]"
    );
    assert_eq!(
        body[1]["query"][0],
        json!(["search", "profile.login sw \"jane\""])
    );
    assert!(!body.to_string().contains("Sandbox-Log-42"));
    let resp = s
        .app
        .http
        .get(format!("{}/__sandbox/requests", s.org_url))
        .bearer_auth(&s.api_token)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
    let resp = s
        .okta(Method::DELETE, "/__sandbox/requests")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 204);
    assert!(s.sandbox.requests().is_empty());
}

#[tokio::test]
async fn group_members_are_listed_in_link_pages_as_okta_serves_them() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    // Everyone holds all 11 demo users; pages of 4, following only the last Link header (what
    // Okta's Python SDK keeps), so rel="next" must come after rel="self".
    let mut url = format!(
        "{}/api/v1/groups/00g00000000000000001/users?limit=4",
        s.org_url
    );
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let resp = s
            .app
            .http
            .get(&url)
            .header("authorization", format!("SSWS{}", s.api_token))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
        let links: Vec<String> = resp
            .headers()
            .get_all("link")
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect();
        assert!(links[0].ends_with("rel=\"self\""), "{links:?}");
        let page: Vec<Value> = resp.json().await.expect("json");
        assert!(page.len() <= 4);
        for u in &page {
            assert!(u["profile"]["login"].is_string(), "{u}");
            assert!(u["_links"]["self"]["href"].is_string(), "{u}");
            ids.push(u["id"].as_str().expect("id").to_owned());
        }
        pages += 1;
        match links.last().filter(|l| l.ends_with("rel=\"next\"")) {
            Some(next) => {
                url = next
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .expect("url")
                    .to_owned();
                assert!(url.contains("after="), "{url}");
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (1..=11).map(|i| format!("00u{i:017}")).collect();
    assert_eq!(ids, expected);

    // Restricted Users has no members; an unknown group is Okta's 404.
    let resp = s
        .okta(Method::GET, "/api/v1/groups/00g00000000000000003/users")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.expect("json"), json!([]));
    let resp = s
        .okta(Method::GET, "/api/v1/groups/00g0000000000000zzzz/users")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 404);
    let e: Value = resp.json().await.expect("json");
    assert_eq!(e["errorCode"], "E0000007");
}

/// Okta accepts a SET for a user it does not have and ignores it; the sandbox accepts it too,
/// but its System Log says no user matched, so a trial shows the problem.
#[tokio::test]
async fn the_system_log_says_when_no_user_matches_a_set() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = s.app.client_with("ueba", &[Scope::SignalsWrite]).await;
    for email in ["nobody@example.com", "jane.doe@example.com"] {
        let (status, _) = s
            .app
            .post_json(
                "/v1/signals/user-risk",
                &token,
                &json!({"subject": {"format": "email", "email": email}, "current_level": "high"}),
            )
            .await;
        assert_eq!(status, 202);
    }
    wait_received(&s, 2).await;
    let logs: Value = s
        .okta(Method::GET, "/api/v1/logs")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let entry = |email: &str| {
        logs.as_array()
            .and_then(|a| a.iter().find(|e| e["target"][0]["displayName"] == email))
            .cloned()
            .unwrap_or_else(|| panic!("no log entry for {email}: {logs}"))
    };
    let nobody = entry("nobody@example.com");
    assert_eq!(nobody["outcome"]["result"], "SKIPPED", "{nobody}");
    assert!(
        nobody["outcome"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("No user") && r.contains("nobody@example.com")),
        "{nobody}"
    );
    assert_eq!(nobody["severity"], "WARN");
    let jane = entry("jane.doe@example.com");
    assert_eq!(jane["outcome"]["result"], "SUCCESS", "{jane}");
    assert!(
        jane["target"][0]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("00u")),
        "{jane}"
    );
}
