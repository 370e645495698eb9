//! Standard SSF stream management (SSF 1.0 §8.1), with the OpenID conformance suite's
//! transmitter assertions ported: metadata, the control happy path, the negative tests (400 /
//! 401 / 403 / 404), ownership, receiver URL refusals and hostile `stream_id` values.

use reqwest::Method;
use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;

use crate::helpers::{TestApp, assert_problem, tempdir};

const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";

async fn receiver_app() -> (tempfile::TempDir, TestApp, String, String) {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let rw = app
        .client_with("receiver", &[Scope::StreamsRead, Scope::StreamsWrite])
        .await;
    let ro = app.client_with("reader", &[Scope::StreamsRead]).await;
    (dir, app, rw, ro)
}

fn push_body() -> Value {
    json!({
        "delivery": {
            "method": "urn:ietf:rfc:8935",
            "endpoint_url": "http://127.0.0.1:9/push",
            "authorization_header": "Bearer push_token_0123456789",
        },
        "events_requested": [SESSION_REVOKED, CREDENTIAL_CHANGE, "urn:example:not-an-event"],
        "description": "conformance receiver",
    })
}

async fn create(app: &TestApp, token: &str) -> Value {
    let resp = app
        .call(Method::POST, "/ssf/streams", token, Some(&push_body()))
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    resp.json().await.expect("json")
}

#[tokio::test]
async fn metadata_names_the_stream_endpoints_on_the_issuers_origin() {
    let (_dir, app, _, _) = receiver_app().await;
    let meta: Value = app
        .get("/.well-known/ssf-configuration")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(meta["issuer"], app.issuer.as_str());
    let origin = crate::helpers::origin(&app.issuer);
    assert_eq!(
        meta["configuration_endpoint"],
        format!("{origin}/ssf/streams")
    );
    assert_eq!(meta["status_endpoint"], format!("{origin}/ssf/status"));
    assert_eq!(meta["spec_version"], "1_0");
    assert!(
        meta["delivery_methods_supported"]
            .as_array()
            .is_some_and(|m| m.iter().any(|x| x == "urn:ietf:rfc:8935")
                && m.iter().any(|x| x == "urn:ietf:rfc:8936")),
        "{meta}"
    );
    crate::helpers::assert_no_empty_arrays(&meta, "$");
}

#[tokio::test]
async fn a_receiver_creates_reads_updates_replaces_and_deletes_its_stream() {
    let (_dir, app, rw, ro) = receiver_app().await;
    let meta: Value = app
        .get("/.well-known/ssf-configuration")
        .await
        .json()
        .await
        .expect("json");
    let created = create(&app, &rw).await;
    let id = created["stream_id"].as_str().expect("stream_id").to_owned();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(created["iss"], meta["issuer"]);
    assert!(
        created["aud"].as_str().is_some_and(|a| !a.is_empty()),
        "{created}"
    );
    assert_eq!(created["delivery"]["method"], "urn:ietf:rfc:8935");
    assert_eq!(
        created["delivery"]["endpoint_url"],
        "http://127.0.0.1:9/push"
    );
    assert_eq!(
        created["events_delivered"],
        json!([SESSION_REVOKED, CREDENTIAL_CHANGE]),
        "requested ∩ supported, unknown types ignored"
    );
    assert!(
        created["events_supported"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x == SESSION_REVOKED)),
        "{created}"
    );
    assert_eq!(created["description"], "conformance receiver");
    assert!(created["min_verification_interval"].is_u64(), "{created}");
    let text = created.to_string();
    assert!(
        !text.contains("push_token") && !text.contains("authorization_header"),
        "the authorization header is never shown: {text}"
    );

    // Read: one, and all (a JSON array), also with the read-only token.
    let (st, one) = app
        .get_json(&format!("/ssf/streams?stream_id={id}"), &ro)
        .await;
    assert_eq!(
        st, 404,
        "another client's stream does not exist for it: {one}"
    );
    let (st, one) = app
        .get_json(&format!("/ssf/streams?stream_id={id}"), &rw)
        .await;
    assert_eq!((st, &one), (200, &created));
    let (st, all) = app.get_json("/ssf/streams", &rw).await;
    assert_eq!((st, all), (200, json!([created.clone()])));
    let (st, none) = app.get_json("/ssf/streams", &ro).await;
    assert_eq!((st, none), (200, json!([])));

    // Update: only what is sent changes; transmitter-supplied members may come back unchanged.
    let resp = app
        .call(
            Method::PATCH,
            "/ssf/streams",
            &rw,
            Some(&json!({"stream_id": id, "description": "renamed", "iss": created["iss"], "aud": created["aud"]})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let patched: Value = resp.json().await.expect("json");
    assert_eq!(patched["description"], "renamed");
    assert_eq!(patched["delivery"], created["delivery"]);
    assert_eq!(patched["events_delivered"], created["events_delivered"]);

    // Replace: what is left out is removed.
    let resp = app
        .call(
            Method::PUT,
            "/ssf/streams",
            &rw,
            Some(&json!({"stream_id": id, "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "http://localhost:9/other"}, "events_requested": [CREDENTIAL_CHANGE]})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let replaced: Value = resp.json().await.expect("json");
    assert!(replaced.get("description").is_none(), "{replaced}");
    assert_eq!(replaced["events_delivered"], json!([CREDENTIAL_CHANGE]));
    assert_eq!(
        replaced["delivery"]["endpoint_url"],
        "http://localhost:9/other"
    );

    // Status: a new stream is enabled; each status is accepted and echoed; the reason is kept.
    let (st, status) = app
        .get_json(&format!("/ssf/status?stream_id={id}"), &ro)
        .await;
    assert_eq!(st, 404, "{status}");
    let (st, status) = app
        .get_json(&format!("/ssf/status?stream_id={id}"), &rw)
        .await;
    assert_eq!(
        (st, status),
        (200, json!({"stream_id": id, "status": "enabled"}))
    );
    for s in ["paused", "disabled", "enabled"] {
        let (st, echoed) = app
            .post_json(
                "/ssf/status",
                &rw,
                &json!({"stream_id": id, "status": s, "reason": format!("now {s}")}),
            )
            .await;
        assert_eq!(st, 200, "{echoed}");
        assert_eq!(
            echoed,
            json!({"stream_id": id, "status": s, "reason": format!("now {s}")})
        );
        let (_, read) = app
            .get_json(&format!("/ssf/status?stream_id={id}"), &rw)
            .await;
        assert_eq!(read, echoed);
    }

    // Delete: 204, then 404 everywhere.
    let resp = app
        .call(
            Method::DELETE,
            &format!("/ssf/streams?stream_id={id}"),
            &ro,
            None,
        )
        .await;
    assert_problem(resp, 403).await;
    let resp = app
        .call(
            Method::DELETE,
            &format!("/ssf/streams?stream_id={id}"),
            &rw,
            None,
        )
        .await;
    assert_eq!(resp.status(), 204);
    assert!(resp.text().await.expect("body").is_empty());
    for (method, path) in [
        (Method::GET, format!("/ssf/streams?stream_id={id}")),
        (Method::DELETE, format!("/ssf/streams?stream_id={id}")),
        (Method::GET, format!("/ssf/status?stream_id={id}")),
    ] {
        let resp = app.call(method.clone(), &path, &rw, None).await;
        assert_problem(resp, 404).await;
    }
    let (_, all) = app.get_json("/ssf/streams", &rw).await;
    assert_eq!(all, json!([]));
}

#[tokio::test]
async fn bad_requests_tokens_and_unknown_streams_get_the_protocols_errors() {
    let (_dir, app, rw, ro) = receiver_app().await;
    let created = create(&app, &rw).await;
    let id = created["stream_id"].as_str().expect("id").to_owned();
    let unknown = "0123456789abcdef0123456789abcdef";

    // Broken JSON → 400.
    let resp = app
        .http
        .post(app.url("/ssf/streams"))
        .bearer_auth(&rw)
        .header("content-type", "application/json")
        .body("{\"delivery\": ")
        .send()
        .await
        .expect("send");
    assert_problem(resp, 400).await;
    // A member of the wrong type → 400 (not 422: SSF answers 400), naming it.
    let resp = app
        .call(
            Method::POST,
            "/ssf/streams",
            &rw,
            Some(&json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": 7}})),
        )
        .await;
    let p = assert_problem(resp, 400).await;
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("delivery.endpoint_url")),
        "{p}"
    );

    // No token, a bad token → 401 with WWW-Authenticate; a token only in the query → 401.
    for token in [None, Some("ssft_not-a-token")] {
        let mut req = app.http.post(app.url("/ssf/streams")).json(&push_body());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("send");
        let www = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(www.starts_with("Bearer"), "{www}");
        assert_problem(resp, 401).await;
    }
    let resp = app
        .http
        .get(app.url(&format!("/ssf/streams?stream_id={id}&access_token={rw}")))
        .send()
        .await
        .expect("send");
    assert!(
        resp.status() == 400 || resp.status() == 401,
        "a token in the query string is refused: {}",
        resp.status()
    );
    // A read-only token cannot create, change or delete: 403 naming insufficient_scope.
    for (method, path, body) in [
        (Method::POST, "/ssf/streams".to_owned(), Some(push_body())),
        (
            Method::PATCH,
            "/ssf/streams".to_owned(),
            Some(json!({"stream_id": id})),
        ),
        (Method::PUT, "/ssf/streams".to_owned(), Some(push_body())),
        (Method::DELETE, format!("/ssf/streams?stream_id={id}"), None),
        (
            Method::POST,
            "/ssf/status".to_owned(),
            Some(json!({"stream_id": id, "status": "paused"})),
        ),
    ] {
        let resp = app.call(method.clone(), &path, &ro, body.as_ref()).await;
        let www = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(www.contains("insufficient_scope"), "{method} {path}: {www}");
        assert_problem(resp, 403).await;
    }

    // Unknown stream → 404 on read, update, replace, delete, status.
    for (method, path, body) in [
        (
            Method::GET,
            format!("/ssf/streams?stream_id={unknown}"),
            None,
        ),
        (
            Method::PATCH,
            "/ssf/streams".to_owned(),
            Some(json!({"stream_id": unknown, "description": "x"})),
        ),
        (
            Method::PUT,
            "/ssf/streams".to_owned(),
            Some(json!({"stream_id": unknown, "delivery": push_body()["delivery"]})),
        ),
        (
            Method::DELETE,
            format!("/ssf/streams?stream_id={unknown}"),
            None,
        ),
        (
            Method::GET,
            format!("/ssf/status?stream_id={unknown}"),
            None,
        ),
        (
            Method::POST,
            "/ssf/status".to_owned(),
            Some(json!({"stream_id": unknown, "status": "paused"})),
        ),
    ] {
        let resp = app.call(method.clone(), &path, &rw, body.as_ref()).await;
        assert_eq!(resp.status(), 404, "{method} {path}");
    }

    // Body errors on update and replace → 400, the stream unchanged.
    for (method, body, field) in [
        (Method::PATCH, json!({"description": "no id"}), "stream_id"),
        (
            Method::PATCH,
            json!({"stream_id": id, "iss": "https://evil.example"}),
            "iss",
        ),
        (
            Method::PATCH,
            json!({"stream_id": id, "aud": "urn:other"}),
            "aud",
        ),
        (
            Method::PATCH,
            json!({"stream_id": id, "events_delivered": []}),
            "events_delivered",
        ),
        (
            Method::PATCH,
            json!({"stream_id": id, "delivery": null}),
            "delivery",
        ),
        (
            Method::PUT,
            json!({"stream_id": id, "delivery": {"method": "urn:ietf:rfc:8936", "endpoint_url": "https://elsewhere.example/poll"}}),
            "delivery.endpoint_url",
        ),
        (
            Method::PUT,
            json!({"stream_id": id, "delivery": {"method": "urn:example:carrier-pigeon"}}),
            "delivery.method",
        ),
    ] {
        let resp = app
            .call(method.clone(), "/ssf/streams", &rw, Some(&body))
            .await;
        let p = assert_problem(resp, 400).await;
        assert!(
            p["detail"].as_str().is_some_and(|d| d.starts_with(field)),
            "{method} {body}: {p}"
        );
    }
    let (_, now) = app
        .get_json(&format!("/ssf/streams?stream_id={id}"), &rw)
        .await;
    assert_eq!(now, created, "refused changes changed nothing");
    // A status that is not one of the three → 400.
    let (st, p) = app
        .post_json(
            "/ssf/status",
            &rw,
            &json!({"stream_id": id, "status": "asleep"}),
        )
        .await;
    assert_eq!(st, 400, "{p}");
}

#[tokio::test]
async fn receiver_urls_that_point_inside_are_refused() {
    let (_dir, app, rw, _) = receiver_app().await;
    let long = format!("https://example.com/{}", "a".repeat(3000));
    for (url, why) in [
        ("http://example.com/push", "http only to loopback"),
        ("https://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("https://10.0.0.7/push", "private"),
        ("https://192.168.1.1/push", "private"),
        ("https://100.64.0.1/push", "CGNAT"),
        ("https://[fe80::1]/push", "link-local"),
        ("https://[fd00::1]/push", "unique local"),
        ("https://[::ffff:10.0.0.1]/push", "mapped private"),
        ("https://user:pw@example.com/push", "credentials in the URL"),
        ("https://example.com/push#frag", "fragment"),
        ("ftp://example.com/push", "scheme"),
        ("https://exa mple.com/push", "space"),
        ("https://example.com/a\r\nX-Evil: 1", "CR/LF"),
        (long.as_str(), "oversize"),
        ("/relative", "relative"),
    ] {
        let resp = app
            .call(
                Method::POST,
                "/ssf/streams",
                &rw,
                Some(&json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url}})),
            )
            .await;
        let p = assert_problem(resp, 400).await;
        assert!(
            p["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("delivery.endpoint_url")),
            "{why}: {p}"
        );
    }
    for (body, field) in [
        (
            json!({"delivery": {"method": "urn:example:carrier-pigeon"}}),
            "delivery.method",
        ),
        (
            json!({"delivery": {"method": "urn:ietf:rfc:8936", "endpoint_url": "https://elsewhere.example/poll"}}),
            "delivery.endpoint_url",
        ),
        (
            json!({"delivery": {"method": "urn:ietf:rfc:8936", "authorization_header": "Bearer x"}}),
            "delivery.authorization_header",
        ),
        (
            json!({"delivery": {"method": "urn:ietf:rfc:8935"}}),
            "delivery.endpoint_url",
        ),
        (
            json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "https://example.com/p", "authorization_header": "Bearer a\r\nX-Evil: 1"}}),
            "delivery.authorization_header",
        ),
        (
            json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "https://example.com/p"}, "description": "d".repeat(1001)}),
            "description",
        ),
    ] {
        let resp = app
            .call(Method::POST, "/ssf/streams", &rw, Some(&body))
            .await;
        let p = assert_problem(resp, 400).await;
        assert!(
            p["detail"].as_str().is_some_and(|d| d.starts_with(field)),
            "{body}: {p}"
        );
    }
    let (_, all) = app.get_json("/ssf/streams", &rw).await;
    assert_eq!(all, json!([]), "nothing refused was stored");
}

#[tokio::test]
async fn hostile_stream_ids_name_no_stream() {
    let (_dir, app, rw, _) = receiver_app().await;
    create(&app, &rw).await;
    let long = "a".repeat(5000);
    for id in [
        "../",
        "..%2F..%2Fadmin",
        "%2F",
        "x%3Fy",
        "'%20OR%20'1'='1",
        "%22",
        "a%0D%0AX-Evil:%201",
        long.as_str(),
        "0123456789ABCDEF0123456789ABCDEF",
    ] {
        for path in ["/ssf/streams", "/ssf/status"] {
            let resp = app
                .call(Method::GET, &format!("{path}?stream_id={id}"), &rw, None)
                .await;
            let status = resp.status().as_u16();
            assert!(status == 404 || status == 400, "{path} {id}: {status}");
        }
        let resp = app
            .call(
                Method::DELETE,
                &format!("/ssf/streams?stream_id={id}"),
                &rw,
                None,
            )
            .await;
        let status = resp.status().as_u16();
        assert!(status == 404 || status == 400, "DELETE {id}: {status}");
    }
    let (_, all) = app.get_json("/ssf/streams", &rw).await;
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
}

#[tokio::test]
async fn a_client_has_at_most_max_per_client_streams() {
    let dir = tempdir();
    let mut config = crate::helpers::config_for(dir.path());
    config.streams.max_per_client = 2;
    let app = TestApp::spawn_with(config).await;
    let rw = app
        .client_with("receiver", &[Scope::StreamsRead, Scope::StreamsWrite])
        .await;
    let other = app
        .client_with("other", &[Scope::StreamsRead, Scope::StreamsWrite])
        .await;
    create(&app, &rw).await;
    create(&app, &rw).await;
    let resp = app
        .call(Method::POST, "/ssf/streams", &rw, Some(&push_body()))
        .await;
    let p = assert_problem(resp, 409).await;
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("max_per_client")),
        "{p}"
    );
    create(&app, &other).await;
}

#[tokio::test]
async fn an_operator_can_allow_a_private_network_for_receivers() {
    let dir = tempdir();
    let mut config = crate::helpers::config_for(dir.path());
    config.streams.allow_private_receivers = vec!["10.20.0.0/16".into()];
    let app = TestApp::spawn_with(config).await;
    let rw = app
        .client_with("receiver", &[Scope::StreamsRead, Scope::StreamsWrite])
        .await;
    let body =
        |url: &str| json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url}});
    let resp = app
        .call(
            Method::POST,
            "/ssf/streams",
            &rw,
            Some(&body("https://10.20.3.4/ssf")),
        )
        .await;
    assert_eq!(resp.status(), 201, "inside the allowed network");
    for url in ["https://10.21.0.1/ssf", "https://169.254.169.254/"] {
        let resp = app
            .call(Method::POST, "/ssf/streams", &rw, Some(&body(url)))
            .await;
        assert_problem(resp, 400).await;
    }
}

const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
const STREAM_UPDATED: &str = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";

/// Each pushed SET's one event: (type, payload).
fn events(got: &[crate::receiver::Received]) -> Vec<(&'static str, Value)> {
    got.iter()
        .map(|r| {
            let (_, claims) = crate::helpers::decode(&r.body);
            let events = claims["events"].as_object().cloned().unwrap_or_default();
            assert_eq!(events.len(), 1, "one event per SET: {claims}");
            let (uri, payload) = events.into_iter().next().expect("event");
            let kind = match uri.as_str() {
                VERIFICATION => VERIFICATION,
                STREAM_UPDATED => STREAM_UPDATED,
                other => panic!("unexpected event {other}"),
            };
            (kind, payload)
        })
        .collect()
}

/// Waits until `receiver` holds `n` requests.
async fn wait_received(
    receiver: &crate::receiver::FakeReceiver,
    n: usize,
) -> Vec<crate::receiver::Received> {
    for _ in 0..400 {
        let got = receiver.received();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!(
        "the receiver got {} of {n} requests",
        receiver.received().len()
    );
}

fn push_to(receiver: &crate::receiver::FakeReceiver, auth: Option<&str>) -> Value {
    let mut delivery = json!({
        "method": "urn:ietf:rfc:8935",
        "endpoint_url": format!("{}/security/api/v1/security-events", receiver.org_url),
    });
    if let Some(a) = auth {
        delivery["authorization_header"] = json!(a);
    }
    json!({"delivery": delivery, "events_requested": [SESSION_REVOKED]})
}

/// The conformance suite's verification checks on the pushed SET: RS256 and `typ`
/// `secevent+jwt`, one event, no `sub`, no `exp`, `iss` the stream's, `iat` not in the future,
/// `aud` the stream's, `sub_id` opaque with the stream id, `state` echoed; the configured
/// `Authorization` header verbatim, or none.
#[tokio::test]
async fn verification_is_pushed_with_the_receivers_authorization_header_and_throttled() {
    let (_dir, app, rw, _) = receiver_app().await;
    let receiver = crate::receiver::FakeReceiver::start().await;
    let meta: Value = app
        .get("/.well-known/ssf-configuration")
        .await
        .json()
        .await
        .expect("json");
    let origin = crate::helpers::origin(&app.issuer);
    assert_eq!(
        meta["verification_endpoint"],
        format!("{origin}/ssf/verify")
    );
    let (st, stream) = app
        .post_json(
            "/ssf/streams",
            &rw,
            &push_to(&receiver, Some("Bearer push_token_7f3a")),
        )
        .await;
    assert_eq!(st, 201, "{stream}");
    let id = stream["stream_id"].as_str().expect("id").to_owned();

    let resp = app
        .call(
            Method::POST,
            "/ssf/verify",
            &rw,
            Some(&json!({"stream_id": id, "state": "state-1f2e"})),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let got = wait_received(&receiver, 1).await;
    let r = &got[0];
    assert_eq!(r.authorization.as_deref(), Some("Bearer push_token_7f3a"));
    assert_eq!(r.content_type, "application/secevent+jwt");
    let (header, claims) = crate::helpers::decode(&r.body);
    assert_eq!(header["typ"], "secevent+jwt");
    assert_eq!(header["alg"], "RS256");
    crate::helpers::verify_with_jwks(&r.body, &app.jwks().await)
        .expect("signed by a published key");
    assert_eq!(claims["iss"], stream["iss"]);
    assert_eq!(claims["aud"], stream["aud"]);
    assert!(
        claims.get("sub").is_none() && claims.get("exp").is_none(),
        "{claims}"
    );
    assert!(
        claims["iat"]
            .as_i64()
            .is_some_and(|iat| iat <= chrono::Utc::now().timestamp()),
        "{claims}"
    );
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert_eq!(claims["sub_id"], json!({"format": "opaque", "id": id}));
    let events = claims["events"].as_object().expect("events");
    assert_eq!(events.len(), 1, "exactly one event");
    assert_eq!(events[VERIFICATION], json!({"state": "state-1f2e"}));

    // Within min_verification_interval: 429 with Retry-After, nothing sent.
    let resp = app
        .call(
            Method::POST,
            "/ssf/verify",
            &rw,
            Some(&json!({"stream_id": id})),
        )
        .await;
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(
        retry_after.is_some_and(|s| (1..=15).contains(&s)),
        "{retry_after:?}"
    );
    assert_problem(resp, 429).await;

    // A stream without authorization_header: pushes carry no Authorization header at all.
    let bare = crate::receiver::FakeReceiver::start().await;
    let (_, stream) = app
        .post_json("/ssf/streams", &rw, &push_to(&bare, None))
        .await;
    let bare_id = stream["stream_id"].as_str().expect("id").to_owned();
    let resp = app
        .call(
            Method::POST,
            "/ssf/verify",
            &rw,
            Some(&json!({"stream_id": bare_id})),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let got = wait_received(&bare, 1).await;
    assert_eq!(got[0].authorization, None);
    let (_, claims) = crate::helpers::decode(&got[0].body);
    assert_eq!(
        claims["events"][VERIFICATION],
        json!({}),
        "no state asked for, none sent"
    );
    // Unknown stream, another client's, bad body.
    let resp = app
        .call(
            Method::POST,
            "/ssf/verify",
            &rw,
            Some(&json!({"stream_id": "0123456789abcdef0123456789abcdef"})),
        )
        .await;
    assert_problem(resp, 404).await;
    let resp = app
        .call(
            Method::POST,
            "/ssf/verify",
            &rw,
            Some(&json!({"state": "x"})),
        )
        .await;
    assert_problem(resp, 400).await;
}

#[tokio::test]
async fn a_paused_stream_holds_its_events_until_enabled_and_a_disabled_one_drops_them() {
    let dir = tempdir();
    let mut config = crate::helpers::config_for(dir.path());
    config.streams.min_verification_interval_secs = 1;
    let app = TestApp::spawn_with(config).await;
    let rw = app
        .client_with("receiver", &[Scope::StreamsRead, Scope::StreamsWrite])
        .await;
    let receiver = crate::receiver::FakeReceiver::start().await;
    let (_, stream) = app
        .post_json("/ssf/streams", &rw, &push_to(&receiver, None))
        .await;
    let id = stream["stream_id"].as_str().expect("id").to_owned();
    let status = |s: &str| json!({"stream_id": id, "status": s});

    let (st, _) = app.post_json("/ssf/status", &rw, &status("paused")).await;
    assert_eq!(st, 200);
    let resp = app
        .call(
            Method::POST,
            "/ssf/verify",
            &rw,
            Some(&json!({"stream_id": id, "state": "held"})),
        )
        .await;
    assert_eq!(resp.status(), 204);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // The pause holds from its commit, whatever the stream's worker is doing: its own
    // stream-updated (paused) waits too.
    assert_eq!(
        events(&receiver.received()),
        vec![],
        "nothing is pushed while paused"
    );
    let (st, _) = app.post_json("/ssf/status", &rw, &status("enabled")).await;
    assert_eq!(st, 200);
    // The held stream-updated (paused) and verification, then the one for enabled, in order.
    let got = wait_received(&receiver, 3).await;
    assert_eq!(
        events(&got),
        vec![
            (STREAM_UPDATED, json!({"status": "paused"})),
            (VERIFICATION, json!({"state": "held"})),
            (STREAM_UPDATED, json!({"status": "enabled"})),
        ],
        "held, then delivered on enable"
    );

    // Held while paused, then disabled: dropped, never delivered.
    let (st, _) = app.post_json("/ssf/status", &rw, &status("paused")).await;
    assert_eq!(st, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let resp = app
        .call(
            Method::POST,
            "/ssf/verify",
            &rw,
            Some(&json!({"stream_id": id, "state": "held-then-disabled"})),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let (st, _) = app.post_json("/ssf/status", &rw, &status("disabled")).await;
    assert_eq!(st, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let resp = app
        .call(
            Method::POST,
            "/ssf/verify",
            &rw,
            Some(&json!({"stream_id": id, "state": "dropped"})),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let (st, _) = app.post_json("/ssf/status", &rw, &status("enabled")).await;
    assert_eq!(st, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let resp = app
        .call(
            Method::POST,
            "/ssf/verify",
            &rw,
            Some(&json!({"stream_id": id, "state": "after"})),
        )
        .await;
    assert_eq!(resp.status(), 204);
    // Wait for the last verification.
    let mut got = Vec::new();
    for _ in 0..400 {
        got = receiver.received();
        if events(&got).contains(&(VERIFICATION, json!({"state": "after"}))) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    // The second stream-updated (paused) was held and then dropped with the disable.
    assert_eq!(
        events(&got),
        vec![
            (STREAM_UPDATED, json!({"status": "paused"})),
            (VERIFICATION, json!({"state": "held"})),
            (STREAM_UPDATED, json!({"status": "enabled"})),
            (STREAM_UPDATED, json!({"status": "enabled"})),
            (VERIFICATION, json!({"state": "after"})),
        ],
        "what the stream held when disabled, and what came while disabled, was dropped"
    );
    for r in &got {
        let (_, claims) = crate::helpers::decode(&r.body);
        assert_eq!(claims["sub_id"], json!({"format": "opaque", "id": id}));
    }

    // Deleting a stream drops what it still holds.
    let queued = |counts: Vec<(ssf_transmitter::store::DeliveryStatus, i64)>| {
        counts
            .into_iter()
            .filter(|(s, _)| *s == ssf_transmitter::store::DeliveryStatus::Queued)
            .map(|(_, n)| n)
            .sum::<i64>()
    };
    let (st, _) = app.post_json("/ssf/status", &rw, &status("paused")).await;
    assert_eq!(st, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let resp = app
        .call(
            Method::POST,
            "/ssf/verify",
            &rw,
            Some(&json!({"stream_id": id, "state": "orphan"})),
        )
        .await;
    assert_eq!(resp.status(), 204);
    // Held: the stream-updated (paused) and the verification.
    let held = queued(app.store.status_counts().await.expect("counts"));
    assert_eq!(held, 2, "{held} held");
    let resp = app
        .call(
            Method::DELETE,
            &format!("/ssf/streams?stream_id={id}"),
            &rw,
            None,
        )
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        queued(app.store.status_counts().await.expect("counts")),
        0,
        "dropped with the stream"
    );
}

fn email_subject(email: &str) -> ssf_transmitter::set::Subject {
    ssf_transmitter::set::Subject::parse(&json!({"format": "email", "email": email}), "s")
        .expect("subject")
}

/// SSF §8.1.3: add → 200, remove → 204; with `ALL` a removed subject is excluded (and back when
/// added again), with `NONE` only added subjects are carried; subjects match case-insensitively
/// on email and by shared members of a complex subject.
#[tokio::test]
async fn subjects_are_added_and_removed_per_stream() {
    for default in ["ALL", "NONE"] {
        let dir = tempdir();
        let mut config = crate::helpers::config_for(dir.path());
        config.streams.default_subjects = serde_json::from_value(json!(default)).expect("mode");
        let app = TestApp::spawn_with(config).await;
        let rw = app
            .client_with("receiver", &[Scope::StreamsRead, Scope::StreamsWrite])
            .await;
        let meta: Value = app
            .get("/.well-known/ssf-configuration")
            .await
            .json()
            .await
            .expect("json");
        let origin = crate::helpers::origin(&app.issuer);
        assert_eq!(meta["default_subjects"], default);
        assert_eq!(
            meta["add_subject_endpoint"],
            format!("{origin}/ssf/subjects:add")
        );
        assert_eq!(
            meta["remove_subject_endpoint"],
            format!("{origin}/ssf/subjects:remove")
        );
        let stream = create(&app, &rw).await;
        let id = stream["stream_id"].as_str().expect("id").to_owned();
        let streams = &app.state.streams;
        let (jane, bob) = (
            email_subject("jane@example.com"),
            email_subject("bob@example.com"),
        );
        let all = default == "ALL";
        assert_eq!(streams.delivers_to(&id, &jane).await.expect("q"), all);

        let resp = app
            .call(
                Method::POST,
                "/ssf/subjects:add",
                &rw,
                Some(&json!({"stream_id": id, "subject": {"format": "email", "email": "Jane@Example.com"}, "verified": true})),
            )
            .await;
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.expect("body").is_empty());
        assert!(
            streams.delivers_to(&id, &jane).await.expect("q"),
            "{default}: added"
        );
        assert_eq!(
            streams.delivers_to(&id, &bob).await.expect("q"),
            all,
            "{default}: bob untouched"
        );
        // A complex subject with that user matches too.
        let jane_on_laptop = ssf_transmitter::set::Subject::parse(
            &json!({"format": "complex", "user": {"format": "email", "email": "jane@example.com"}, "device": {"format": "opaque", "id": "laptop-42"}}),
            "s",
        )
        .expect("subject");
        assert!(streams.delivers_to(&id, &jane_on_laptop).await.expect("q"));

        let resp = app
            .call(
                Method::POST,
                "/ssf/subjects:remove",
                &rw,
                Some(&json!({"stream_id": id, "subject": {"format": "email", "email": "jane@example.com"}})),
            )
            .await;
        assert_eq!(resp.status(), 204);
        assert!(
            !streams.delivers_to(&id, &jane).await.expect("q"),
            "{default}: removed"
        );
        assert!(!streams.delivers_to(&id, &jane_on_laptop).await.expect("q"));
        assert_eq!(streams.delivers_to(&id, &bob).await.expect("q"), all);

        // Bad subjects and unknown streams.
        for (body, status) in [
            (
                json!({"stream_id": id, "subject": {"format": "email"}}),
                400,
            ),
            (json!({"stream_id": id, "subject": "jane@example.com"}), 400),
            (json!({"stream_id": id}), 400),
            (
                json!({"stream_id": "0123456789abcdef0123456789abcdef", "subject": {"format": "email", "email": "a@b.c"}}),
                404,
            ),
        ] {
            for path in ["/ssf/subjects:add", "/ssf/subjects:remove"] {
                let resp = app.call(Method::POST, path, &rw, Some(&body)).await;
                assert_problem(resp, status).await;
            }
        }
        // Deleting the stream forgets its subjects.
        let resp = app
            .call(
                Method::DELETE,
                &format!("/ssf/streams?stream_id={id}"),
                &rw,
                None,
            )
            .await;
        assert_eq!(resp.status(), 204);
        assert!(
            !streams.delivers_to(&id, &bob).await.expect("q"),
            "no stream, nothing delivered"
        );
    }
}

async fn poll(app: &TestApp, token: &str, id: &str, body: Value) -> (u16, Value) {
    app.post_json(&format!("/ssf/poll/{id}"), token, &body)
        .await
}

/// RFC 8936: a stream created without `delivery` is polled at the transmitter's endpoint;
/// `sets` is always present; `ack` removes SETs for good, an unacknowledged SET comes back after
/// the acknowledgement timeout, `maxEvents: 0` only acknowledges, `setErrs` records a failure,
/// a long poll returns as soon as a SET is queued, and a paused stream returns none.
#[tokio::test]
async fn a_poll_stream_hands_out_sets_until_they_are_acknowledged() {
    let dir = tempdir();
    let mut config = crate::helpers::config_for(dir.path());
    config.streams.min_verification_interval_secs = 1;
    config.streams.poll_ack_timeout_secs = 5;
    config.streams.poll_max_wait_secs = 10;
    let app = TestApp::spawn_with(config).await;
    let rw = app
        .client_with("receiver", &[Scope::StreamsRead, Scope::StreamsWrite])
        .await;
    let other = app
        .client_with("other", &[Scope::StreamsRead, Scope::StreamsWrite])
        .await;
    let (st, stream) = app
        .post_json(
            "/ssf/streams",
            &rw,
            &json!({"events_requested": [SESSION_REVOKED]}),
        )
        .await;
    assert_eq!(st, 201, "{stream}");
    let id = stream["stream_id"].as_str().expect("id").to_owned();
    let origin = crate::helpers::origin(&app.issuer);
    assert_eq!(stream["delivery"]["method"], "urn:ietf:rfc:8936");
    assert_eq!(
        stream["delivery"]["endpoint_url"],
        format!("{origin}/ssf/poll/{id}")
    );
    // The transmitter's URL may be sent back unchanged.
    let resp = app
        .call(
            Method::PATCH,
            "/ssf/streams",
            &rw,
            Some(&json!({"stream_id": id, "delivery": stream["delivery"]})),
        )
        .await;
    assert_eq!(resp.status(), 200);

    // Nothing yet: `sets` is present and empty.
    let (st, empty) = poll(&app, &rw, &id, json!({"returnImmediately": true})).await;
    assert_eq!((st, empty), (200, json!({"sets": {}})));
    // Another client cannot poll it; a push stream cannot be polled.
    let (st, _) = poll(&app, &other, &id, json!({"returnImmediately": true})).await;
    assert_eq!(st, 404);

    // A long poll returns as soon as a SET is queued.
    let started = std::time::Instant::now();
    let waiting = {
        let (app_url, token, id) = (app.url(&format!("/ssf/poll/{id}")), rw.clone(), id.clone());
        let http = app.http.clone();
        tokio::spawn(async move {
            let _ = &id;
            http.post(app_url)
                .bearer_auth(token)
                .json(&json!({"maxEvents": 10}))
                .send()
                .await
                .expect("poll")
                .json::<Value>()
                .await
                .expect("json")
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let resp = app
        .call(
            Method::POST,
            "/ssf/verify",
            &rw,
            Some(&json!({"stream_id": id, "state": "s1"})),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let got = waiting.await.expect("join");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "woken, not timed out"
    );
    let sets = got["sets"].as_object().cloned().expect("sets");
    assert_eq!(sets.len(), 1, "{got}");
    let (jti, set) = sets.into_iter().next().expect("one");
    let (header, claims) = crate::helpers::decode(set.as_str().expect("compact"));
    assert_eq!(header["typ"], "secevent+jwt");
    assert_eq!(claims["jti"], jti.as_str());
    assert_eq!(claims["events"][VERIFICATION]["state"], "s1");

    // Not acknowledged: not offered again before the timeout, offered again after it.
    let (_, again) = poll(&app, &rw, &id, json!({"returnImmediately": true})).await;
    assert_eq!(
        again,
        json!({"sets": {}}),
        "handed out, waiting for its ack"
    );
    tokio::time::sleep(std::time::Duration::from_millis(5200)).await;
    let (_, again) = poll(&app, &rw, &id, json!({"returnImmediately": true})).await;
    assert!(
        again["sets"].get(&jti).is_some(),
        "unacknowledged, offered again: {again}"
    );

    // Acknowledge only (maxEvents 0): gone for good.
    let (st, acked) = poll(&app, &rw, &id, json!({"maxEvents": 0, "ack": [jti]})).await;
    assert_eq!((st, acked), (200, json!({"sets": {}})));
    tokio::time::sleep(std::time::Duration::from_millis(5200)).await;
    let (_, after) = poll(&app, &rw, &id, json!({"returnImmediately": true})).await;
    assert_eq!(
        after,
        json!({"sets": {}}),
        "an acknowledged SET never comes back"
    );
    let (_, view) = app
        .get_json(&format!("/v1/signals/{jti}"), crate::helpers::ADMIN_TOKEN)
        .await;
    assert_eq!(view["status"], "delivered", "{view}");

    // setErrs: recorded as failed, with the receiver's err.
    let resp = app
        .call(
            Method::POST,
            "/ssf/verify",
            &rw,
            Some(&json!({"stream_id": id, "state": "s2"})),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let (_, got) = poll(&app, &rw, &id, json!({"returnImmediately": true})).await;
    let jti2 = got["sets"]
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .expect("a SET");
    let (st, _) = poll(
        &app,
        &rw,
        &id,
        json!({"maxEvents": 0, "setErrs": {jti2.clone(): {"err": "invalid_state", "description": "state mismatch"}}}),
    )
    .await;
    assert_eq!(st, 200);
    let (_, view) = app
        .get_json(&format!("/v1/signals/{jti2}"), crate::helpers::ADMIN_TOKEN)
        .await;
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(view["last_error"]["err"], "invalid_state", "{view}");

    // Paused: nothing is handed out; enabled again, the held SETs come.
    let (st, _) = app
        .post_json(
            "/ssf/status",
            &rw,
            &json!({"stream_id": id, "status": "paused"}),
        )
        .await;
    assert_eq!(st, 200);
    let (_, none) = poll(&app, &rw, &id, json!({"returnImmediately": true})).await;
    assert_eq!(none, json!({"sets": {}}));
    let (st, _) = app
        .post_json(
            "/ssf/status",
            &rw,
            &json!({"stream_id": id, "status": "enabled"}),
        )
        .await;
    assert_eq!(st, 200);
    let (_, held) = poll(
        &app,
        &rw,
        &id,
        json!({"returnImmediately": true, "maxEvents": 1}),
    )
    .await;
    // The stream's own events keep their order: the next is handed out once the one before it
    // is acknowledged.
    let first = events_in(&held);
    assert_eq!(first.len(), 1, "{held}");
    assert_eq!(first[0].1, json!({"status": "paused"}));
    let (_, next) = poll(
        &app,
        &rw,
        &id,
        json!({"returnImmediately": true, "ack": [first[0].0.clone()]}),
    )
    .await;
    let second = events_in(&next);
    assert_eq!(second.len(), 1, "{next}");
    assert_eq!(second[0].1, json!({"status": "enabled"}));

    // Two subjects' SETs waiting, one asked for: `moreAvailable`.
    let (_, _) = poll(
        &app,
        &rw,
        &id,
        json!({"maxEvents": 0, "ack": [second[0].0.clone()]}),
    )
    .await;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let rows: Vec<ssf_transmitter::store::NewOutbox> = ["a", "b"]
        .iter()
        .map(|s| ssf_transmitter::store::NewOutbox {
            jti: format!("{s}{}", &id[1..]),
            stream_id: id.clone(),
            subject_key: format!("user=email:{s}@example.com"),
            subject: json!({"format": "email", "email": format!("{s}@example.com")}).to_string(),
            event_type: "session-revoked".into(),
            set_jwt: format!("token-{s}"),
            client: "test".into(),
            kid: "k".into(),
            now_ms,
        })
        .collect();
    app.store
        .accept_signals(&rows, &[], None)
        .await
        .expect("queue");
    let (_, one) = poll(
        &app,
        &rw,
        &id,
        json!({"returnImmediately": true, "maxEvents": 1}),
    )
    .await;
    assert_eq!(one["sets"].as_object().map(|m| m.len()), Some(1), "{one}");
    assert_eq!(one["moreAvailable"], true, "{one}");
    let (_, rest) = poll(&app, &rw, &id, json!({"returnImmediately": true})).await;
    assert_eq!(rest["sets"].as_object().map(|m| m.len()), Some(1), "{rest}");
    assert!(rest.get("moreAvailable").is_none(), "{rest}");

    // Bad bodies and ids.
    let (st, _) = poll(&app, &rw, &id, json!({"maxEvents": "ten"})).await;
    assert_eq!(st, 400);
    let too_many: Vec<String> = (0..257).map(|i| format!("j{i}")).collect();
    for body in [
        json!({"ack": too_many}),
        json!({"setErrs": {"j1": {"err": "bad\r\ncode"}}}),
        json!({"setErrs": {"j1": {"err": ""}}}),
        json!({"setErrs": {"j1": {"err": "x".repeat(300)}}}),
    ] {
        let (st, p) = poll(&app, &rw, &id, body.clone()).await;
        assert_eq!(st, 400, "{body}: {p}");
    }
    for bad in ["..%2F", "0123456789abcdef0123456789abcdef", "x%0D%0Ay"] {
        let (st, _) = poll(&app, &rw, bad, json!({"returnImmediately": true})).await;
        assert_eq!(st, 404, "{bad}");
    }
}

/// The (jti, event payload) pairs of a poll response.
fn events_in(resp: &Value) -> Vec<(String, Value)> {
    resp["sets"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(jti, set)| {
                    let (_, claims) = crate::helpers::decode(set.as_str().unwrap_or_default());
                    let payload = claims["events"]
                        .as_object()
                        .and_then(|e| e.values().next().cloned())
                        .unwrap_or_default();
                    (jti.clone(), payload)
                })
                .collect()
        })
        .unwrap_or_default()
}
