//! One signal, every receiver that wants it: Okta in Okta's dialect and each standard stream in
//! the standard one (SSF 1.0 SETs with CAEP and RISC events), each stream's event and subject
//! filters applied, each receiver's subject state its own.

use reqwest::Method;
use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;

use crate::helpers::{TestApp, assert_problem, decode, tempdir, verify_with_jwks};
use crate::receiver::{FakeReceiver, Received};

const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";
const OKTA_USER_RISK: &str = "https://schemas.okta.com/secevent/okta/event-type/user-risk-change";

fn caep(t: &str) -> String {
    format!("{CAEP}{t}")
}

fn risc(t: &str) -> String {
    format!("{RISC}{t}")
}

fn jane() -> Value {
    json!({"format": "email", "email": "jane@example.com"})
}

/// Waits until `receiver` holds `n` requests, then a little longer to see none more come.
async fn received(receiver: &FakeReceiver, n: usize) -> Vec<Received> {
    for _ in 0..400 {
        if receiver.received().len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let got = receiver.received();
    assert_eq!(got.len(), n, "requests the receiver got");
    got
}

/// The one event of a SET: (type URI, payload), with its claims.
fn event_of(set: &str) -> (String, Value, Value) {
    let (_, claims) = decode(set);
    let events = claims["events"].as_object().cloned().unwrap_or_default();
    assert_eq!(events.len(), 1, "one event per SET: {claims}");
    let (uri, payload) = events.into_iter().next().expect("event");
    (uri, payload, claims)
}

/// The SET checks the OpenID conformance suite makes, for a standard stream's SET.
fn assert_standard_set(app: &TestApp, jwks: &Value, set: &str, aud: &str) -> Value {
    let (header, claims) = decode(set);
    assert_eq!(header["typ"], "secevent+jwt");
    assert_eq!(header["alg"], "RS256");
    verify_with_jwks(set, jwks).expect("signed by a published key");
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["aud"], aud);
    assert!(claims.get("sub").is_none(), "no sub: {claims}");
    assert!(claims.get("exp").is_none(), "no exp: {claims}");
    let now = chrono::Utc::now().timestamp();
    assert!(claims["iat"].as_i64().is_some_and(|iat| iat <= now + 1));
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(claims["txn"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(claims["sub_id"]["format"].is_string(), "{claims}");
    claims
}

async fn post_signal(app: &TestApp, token: &str, kind: &str, body: Value) -> (u16, Value) {
    app.post_json(&format!("/v1/signals/{kind}"), token, &body)
        .await
}

fn streams_of(resp: &Value) -> Vec<String> {
    resp["sets"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|x| x["stream"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn one_signal_reaches_okta_and_a_standard_stream_each_in_its_dialect() {
    let dir = tempdir();
    let okta = FakeReceiver::start().await;
    let standard = FakeReceiver::start().await;
    let app = TestApp::spawn_with(crate::helpers::config_with_receiver(
        dir.path(),
        &okta.org_url,
    ))
    .await;
    let token = app
        .client_with(
            "ueba",
            &[Scope::SignalsWrite, Scope::StreamsRead, Scope::StreamsWrite],
        )
        .await;
    let jwks = app.jwks().await;
    let (st, stream) = app
        .post_json(
            "/ssf/streams",
            &token,
            &json!({
                "delivery": {"method": "urn:ietf:rfc:8935",
                             "endpoint_url": format!("{}/security/api/v1/security-events", standard.org_url)},
                "events_requested": [caep("risk-level-change"), caep("session-revoked"),
                                     caep("credential-change"), risc("account-enabled")],
            }),
        )
        .await;
    assert_eq!(st, 201, "{stream}");
    let id = stream["stream_id"].as_str().expect("id").to_owned();
    let aud = stream["aud"].as_str().expect("aud").to_owned();

    // A user-risk signal becomes Okta's user-risk-change and CAEP's risk-level-change.
    let (st, body) = post_signal(
        &app,
        &token,
        "user-risk",
        json!({"subject": jane(), "current_level": "high", "reason_admin": "Impossible travel"}),
    )
    .await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(streams_of(&body), vec!["okta".to_owned(), id.clone()]);
    assert_eq!(body["jti"], body["sets"][0]["jti"], "the first is Okta's");
    let okta_got = received(&okta, 1).await;
    let std_got = received(&standard, 1).await;
    let (uri, payload, _) = event_of(&okta_got[0].body);
    assert_eq!(uri, OKTA_USER_RISK);
    assert_eq!(payload["current_level"], "high");
    assert_eq!(payload["previous_level"], "none");
    assert_eq!(payload["subject"]["user"]["email"], "jane@example.com");
    let claims = assert_standard_set(&app, &jwks, &std_got[0].body, &aud);
    assert_eq!(claims["jti"], body["sets"][1]["jti"]);
    assert_eq!(claims["sub_id"], jane(), "the subject in sub_id");
    let (uri, payload, _) = event_of(&std_got[0].body);
    assert_eq!(uri, caep("risk-level-change"));
    assert_eq!(payload["principal"], "USER");
    assert_eq!(payload["current_level"], "HIGH");
    assert!(payload.get("previous_level").is_none(), "unknown: omitted");
    assert_eq!(payload["risk_reason"], "Impossible travel");
    assert_eq!(payload["reason_admin"]["en"], "Impossible travel");
    assert!(payload.get("subject").is_none(), "1.0 form: {payload}");
    assert_eq!(std_got[0].content_type, "application/secevent+jwt");
    assert_eq!(std_got[0].accept, "application/json");

    // Each receiver's previous level is the one it got.
    let (st, body) = post_signal(
        &app,
        &token,
        "user-risk",
        json!({"subject": jane(), "current_level": "secure"}),
    )
    .await;
    assert_eq!(st, 202, "{body}");
    let (_, o, _) = event_of(&received(&okta, 2).await[1].body);
    let (_, s, _) = event_of(&received(&standard, 2).await[1].body);
    assert_eq!(
        (o["current_level"].clone(), o["previous_level"].clone()),
        (json!("secure"), json!("high"))
    );
    assert_eq!(
        (s["current_level"].clone(), s["previous_level"].clone()),
        (json!("LOW"), json!("HIGH")),
        "secure is LOW in CAEP"
    );
    // secure → low is a change for Okta, not for the stream (LOW → LOW).
    let (st, body) = post_signal(
        &app,
        &token,
        "user-risk",
        json!({"subject": jane(), "current_level": "low"}),
    )
    .await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(streams_of(&body), vec!["okta".to_owned()]);
    received(&okta, 3).await;
    received(&standard, 2).await;
    // Unchanged for both: nothing sent.
    let (st, body) = post_signal(
        &app,
        &token,
        "user-risk",
        json!({"subject": jane(), "current_level": "low"}),
    )
    .await;
    assert_eq!((st, body["status"].as_str()), (200, Some("unchanged")));

    // Only standard streams take credential-change; only Okta takes ip-change.
    let (st, body) = post_signal(
        &app,
        &token,
        "credential-change",
        json!({"subject": jane(), "credential_type": "fido2-roaming", "change_type": "create",
               "friendly_name": "YubiKey"}),
    )
    .await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(streams_of(&body), vec![id.clone()]);
    let got = received(&standard, 3).await;
    assert_standard_set(&app, &jwks, &got[2].body, &aud);
    let (uri, payload, _) = event_of(&got[2].body);
    assert_eq!(uri, caep("credential-change"));
    assert_eq!(payload["credential_type"], "fido2-roaming");
    assert_eq!(payload["change_type"], "create");
    assert_eq!(payload["friendly_name"], "YubiKey");
    assert!(
        payload["reason_admin"]["en"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "CAEP interop: a non-empty reason_admin, filled in: {payload}"
    );
    let (st, body) = post_signal(
        &app,
        &token,
        "ip-change",
        json!({"subject": jane(), "current_ip_address": "203.0.113.7",
               "previous_ip_address": "198.51.100.20"}),
    )
    .await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(streams_of(&body), vec!["okta".to_owned()]);
    received(&okta, 4).await;

    // Not requested by the stream, not Okta's: nobody takes it.
    let (st, body) = post_signal(
        &app,
        &token,
        "account-disabled",
        json!({"subject": jane(), "reason": "hijacking"}),
    )
    .await;
    assert_eq!((st, body["status"].as_str()), (200, Some("unrouted")));

    // A user Okta cannot match (not by email) still reaches the stream; alone it is refused.
    let bob = json!({"format": "iss_sub", "iss": "https://idp.example.com", "sub": "bob"});
    let (st, body) = post_signal(
        &app,
        &token,
        "session-revoked",
        json!({"subject": bob, "reason_admin": "Token theft"}),
    )
    .await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(streams_of(&body), vec![id.clone()]);
    let got = received(&standard, 4).await;
    let claims = assert_standard_set(&app, &jwks, &got[3].body, &aud);
    assert_eq!(claims["sub_id"], bob);
    let resp = app
        .call(
            Method::POST,
            "/v1/signals/ip-change",
            &token,
            Some(&json!({"subject": bob, "current_ip_address": "203.0.113.7",
                          "previous_ip_address": "198.51.100.20"})),
        )
        .await;
    let problem = assert_problem(resp, 422).await;
    assert!(problem.to_string().contains("email"), "{problem}");

    // A removed subject: the next signal about jane goes to Okta only.
    let resp = app
        .call(
            Method::POST,
            "/ssf/subjects:remove",
            &token,
            Some(&json!({"stream_id": id, "subject": jane()})),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let (st, body) = post_signal(
        &app,
        &token,
        "session-revoked",
        json!({"subject": jane(), "reason_admin": "Analyst"}),
    )
    .await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(streams_of(&body), vec!["okta".to_owned()]);
    // …and account-enabled about jane is now nobody's.
    let (st, body) = post_signal(&app, &token, "account-enabled", json!({"subject": jane()})).await;
    assert_eq!((st, body["status"].as_str()), (200, Some("unrouted")));
    received(&okta, 5).await;
    received(&standard, 4).await;

    // Metrics per receiver.
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for (name, n) in [
        ("ssf_sets_queued_total{stream=\"okta\"}", 5),
        ("ssf_sets_delivered_total{stream=\"okta\"}", 5),
        (&format!("ssf_sets_queued_total{{stream=\"{id}\"}}"), 4),
        (&format!("ssf_sets_delivered_total{{stream=\"{id}\"}}"), 4),
    ] {
        assert!(
            metrics.lines().any(|l| l == format!("{name} {n}")),
            "{name} {n} in {metrics}"
        );
    }
}

#[tokio::test]
async fn without_okta_signals_go_to_standard_streams_and_with_none_intake_answers_503() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let token = app
        .client_with(
            "siem",
            &[Scope::SignalsWrite, Scope::StreamsRead, Scope::StreamsWrite],
        )
        .await;
    let jwks = app.jwks().await;
    let signal = json!({"subject": {"user": jane(), "device": {"format": "opaque", "id": "laptop-7"}},
                        "current_status": "not-compliant", "previous_status": "compliant"});
    let resp = app
        .call(
            Method::POST,
            "/v1/signals/device-compliance",
            &token,
            Some(&signal),
        )
        .await;
    assert_problem(resp, 503).await;

    // A polled stream.
    let (st, stream) = app
        .post_json(
            "/ssf/streams",
            &token,
            &json!({"events_requested": [caep("device-compliance-change"), caep("risk-level-change"),
                                         risc("credential-compromise")]}),
        )
        .await;
    assert_eq!(st, 201, "{stream}");
    let id = stream["stream_id"].as_str().expect("id").to_owned();
    let aud = stream["aud"].as_str().expect("aud").to_owned();
    assert_eq!(stream["subject_in_event"], false);
    let (st, body) = post_signal(&app, &token, "device-compliance", signal.clone()).await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(streams_of(&body), vec![id.clone()]);

    let poll = |body: Value| {
        let (app, token, id) = (&app, &token, &id);
        async move {
            app.post_json(&format!("/ssf/poll/{id}"), token, &body)
                .await
        }
    };
    let (st, got) = poll(json!({"maxEvents": 10, "returnImmediately": true})).await;
    assert_eq!(st, 200, "{got}");
    let sets = got["sets"].as_object().cloned().unwrap_or_default();
    assert_eq!(sets.len(), 1, "{got}");
    let (jti, set) = sets.into_iter().next().expect("one");
    let set = set.as_str().expect("compact").to_owned();
    let claims = assert_standard_set(&app, &jwks, &set, &aud);
    assert_eq!(claims["jti"], jti.as_str());
    assert_eq!(claims["sub_id"]["format"], "complex");
    assert_eq!(claims["sub_id"]["device"]["id"], "laptop-7");
    let (uri, payload, _) = event_of(&set);
    assert_eq!(uri, caep("device-compliance-change"));
    assert_eq!(payload["current_status"], "not-compliant");
    assert_eq!(payload["previous_status"], "compliant");
    let (st, _) = poll(json!({"maxEvents": 0, "ack": [jti]})).await;
    assert_eq!(st, 200);

    // The pre-1.0 form, switched on per stream: the subject inside the event too.
    let resp = app
        .call(
            Method::PATCH,
            "/ssf/streams",
            &token,
            Some(&json!({"stream_id": id, "subject_in_event": true})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let patched: Value = resp.json().await.expect("json");
    assert_eq!(patched["subject_in_event"], true);
    let (st, body) = post_signal(
        &app,
        &token,
        "device-risk",
        json!({"subject": {"user": jane(), "device": {"format": "opaque", "id": "laptop-7"}},
               "current_level": "medium"}),
    )
    .await;
    assert_eq!(st, 202, "{body}");
    let (_, got) = poll(json!({"maxEvents": 10, "returnImmediately": true})).await;
    let set = got["sets"]
        .as_object()
        .and_then(|s| s.values().next().cloned())
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("a SET");
    let claims = assert_standard_set(&app, &jwks, &set, &aud);
    let (uri, payload, _) = event_of(&set);
    assert_eq!(uri, caep("risk-level-change"));
    assert_eq!(payload["principal"], "DEVICE");
    assert_eq!(payload["current_level"], "MEDIUM");
    assert_eq!(
        payload["subject"],
        json!({"user": jane(), "device": {"format": "opaque", "id": "laptop-7"}}),
        "pre-1.0: the subject inside the event, no format: complex"
    );
    assert_eq!(claims["sub_id"]["format"], "complex", "and still in sub_id");

    // Disabled, the stream takes nothing: no receiver at all again.
    let resp = app
        .call(
            Method::POST,
            "/ssf/status",
            &token,
            Some(&json!({"stream_id": id, "status": "disabled"})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .call(
            Method::POST,
            "/v1/signals/credential-compromise",
            &token,
            Some(&json!({"subject": jane(), "credential_type": "password"})),
        )
        .await;
    assert_problem(resp, 503).await;
}

#[tokio::test]
async fn the_standard_only_intake_routes_validate_their_members() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let token = app
        .client_with("siem", &[Scope::SignalsWrite, Scope::StreamsWrite])
        .await;
    let (st, _) = app
        .post_json(
            "/ssf/streams",
            &token,
            &json!({"events_requested": ssf_transmitter::signals::streams::config::EVENTS_SUPPORTED}),
        )
        .await;
    assert_eq!(st, 201);
    let long = "x".repeat(1025);
    let cases = [
        (
            "credential-change",
            json!({"subject": jane(), "credential_type": "carrier-pigeon", "change_type": "create"}),
            "credential_type",
        ),
        (
            "credential-change",
            json!({"subject": jane(), "credential_type": "password", "change_type": "rotate"}),
            "change_type",
        ),
        (
            "credential-change",
            json!({"subject": jane(), "credential_type": "password", "change_type": "update", "friendly_name": long}),
            "friendly_name",
        ),
        (
            "assurance-level-change",
            json!({"subject": jane(), "namespace": "NIST-XAL", "current_level": "nist-aal1"}),
            "namespace",
        ),
        (
            "assurance-level-change",
            json!({"subject": jane(), "namespace": "NIST-AAL", "current_level": " "}),
            "current_level",
        ),
        (
            "token-claims-change",
            json!({"subject": jane(), "claims": {}}),
            "claims",
        ),
        (
            "token-claims-change",
            json!({"subject": jane(), "claims": {"big": "y".repeat(9000)}}),
            "claims",
        ),
        (
            "account-disabled",
            json!({"subject": jane(), "reason": "boredom"}),
            "reason",
        ),
        (
            "identifier-changed",
            json!({"subject": {"format": "opaque", "id": "u-1"}, "new-value": "a@b.example"}),
            "subject.user",
        ),
        (
            "account-enabled",
            json!({"subject": jane(), "extra": 1}),
            "extra",
        ),
        (
            "credential-compromise",
            json!({"subject": {"format": "email", "email": "no\r\nemail"}, "credential_type": "pin"}),
            "subject",
        ),
    ];
    for (kind, body, field) in cases {
        let resp = app
            .call(
                Method::POST,
                &format!("/v1/signals/{kind}"),
                &token,
                Some(&body),
            )
            .await;
        let problem = assert_problem(resp, 422).await;
        assert!(
            problem.to_string().contains(field),
            "{kind}: {field} named in {problem}"
        );
    }
    // Each of them, valid, is queued for the stream.
    for (kind, body) in [
        (
            "credential-change",
            json!({"subject": jane(), "credential_type": "x509", "change_type": "revoke",
                   "x509_issuer": "CN=Issuing CA", "x509_serial": "0a1b"}),
        ),
        (
            "assurance-level-change",
            json!({"subject": jane(), "namespace": "NIST-AAL", "current_level": "nist-aal1",
                   "previous_level": "nist-aal2", "change_direction": "decrease"}),
        ),
        (
            "token-claims-change",
            json!({"subject": jane(), "claims": {"role": "ro-admin", "groups": ["a"]}}),
        ),
        (
            "account-disabled",
            json!({"subject": jane(), "reason": "bulk-account"}),
        ),
        ("account-enabled", json!({"subject": jane()})),
        (
            "credential-compromise",
            json!({"subject": jane(), "credential_type": "password", "reason_user": "Change your password"}),
        ),
    ] {
        let (st, resp) = post_signal(&app, &token, kind, body).await;
        assert_eq!(
            (st, resp["status"].as_str()),
            (202, Some("queued")),
            "{kind}: {resp}"
        );
    }
    // In a batch too.
    let (st, resp) = app
        .post_json(
            "/v1/signals/batch",
            &token,
            &json!({"signals": [
                {"type": "account-enabled", "subject": jane()},
                {"type": "ip-change", "subject": jane(), "current_ip_address": "203.0.113.7",
                 "previous_ip_address": "198.51.100.20"},
            ]}),
        )
        .await;
    assert_eq!(st, 200, "{resp}");
    assert_eq!(
        (resp["queued"].as_u64(), resp["unrouted"].as_u64()),
        (Some(1), Some(1)),
        "{resp}"
    );
}

/// CAEP's common optional members, typed as the conformance suite checks them.
fn assert_caep_common(payload: &Value) {
    assert!(payload["event_timestamp"].is_i64(), "{payload}");
    if let Some(e) = payload.get("initiating_entity") {
        assert!(
            ["admin", "user", "policy", "system"].contains(&e.as_str().unwrap_or_default()),
            "{payload}"
        );
    }
    for r in ["reason_admin", "reason_user"] {
        if let Some(m) = payload.get(r) {
            let m = m.as_object().expect("a language map");
            assert!(
                !m.is_empty() && m.values().all(Value::is_string),
                "{payload}"
            );
        }
    }
}

/// The conformance suite's `openid-ssf-transmitter-stream-caep-interop` module, push variant:
/// create, read, status, verification, then the operator triggers session-revoked,
/// credential-change and device-compliance-change, each checked, then delete → 204.
#[tokio::test]
async fn the_caep_interop_flow_passes_the_suites_checks() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let receiver = FakeReceiver::start().await;
    let operator = app.client_with("operator", &[Scope::SignalsWrite]).await;
    let rx = app
        .client_with("receiver", &[Scope::StreamsRead, Scope::StreamsWrite])
        .await;
    let jwks = app.jwks().await;
    let requested = [
        caep("session-revoked"),
        caep("credential-change"),
        caep("device-compliance-change"),
    ];
    let (st, stream) = app
        .post_json(
            "/ssf/streams",
            &rx,
            &json!({"delivery": {"method": "urn:ietf:rfc:8935",
                                 "endpoint_url": format!("{}/security/api/v1/security-events", receiver.org_url),
                                 "authorization_header": "Bearer rx-7"},
                    "events_requested": requested}),
        )
        .await;
    assert_eq!(st, 201, "{stream}");
    assert_eq!(stream["events_delivered"], json!(requested));
    let id = stream["stream_id"].as_str().expect("id").to_owned();
    let aud = stream["aud"].as_str().expect("aud").to_owned();
    let (st, read) = app
        .get_json(&format!("/ssf/streams?stream_id={id}"), &rx)
        .await;
    assert_eq!((st, &read["stream_id"]), (200, &json!(id)));
    let (st, status) = app
        .get_json(&format!("/ssf/status?stream_id={id}"), &rx)
        .await;
    assert_eq!((st, &status["status"]), (200, &json!("enabled")));
    let resp = app
        .call(
            Method::POST,
            "/ssf/verify",
            &rx,
            Some(&json!({"stream_id": id, "state": "interop-1"})),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let got = received(&receiver, 1).await;
    let claims = assert_standard_set_verification(&app, &jwks, &got[0].body, &aud);
    assert_eq!(claims["sub_id"], json!({"format": "opaque", "id": id}));

    let device = json!({"user": jane(), "device": {"format": "opaque", "id": "mac-42"}});
    for (kind, body) in [
        (
            "session-revoked",
            json!({"subject": jane(), "initiating_entity": "policy",
                   "reason_admin": {"en": "Landspeed policy violation", "de": "Reisegeschwindigkeit"}}),
        ),
        (
            "credential-change",
            json!({"subject": jane(), "credential_type": "password", "change_type": "update",
                   "initiating_entity": "user", "reason_user": "You changed your password"}),
        ),
        (
            "device-compliance",
            json!({"subject": device, "current_status": "not-compliant", "previous_status": "compliant",
                   "initiating_entity": "policy"}),
        ),
    ] {
        let (st, resp) = post_signal(&app, &operator, kind, body).await;
        assert_eq!(st, 202, "{kind}: {resp}");
    }
    let got = received(&receiver, 4).await;
    for (r, uri) in got[1..].iter().zip(&requested) {
        assert_eq!(r.authorization.as_deref(), Some("Bearer rx-7"));
        let claims = assert_standard_set(&app, &jwks, &r.body, &aud);
        let (got_uri, payload, _) = event_of(&r.body);
        assert_eq!(&got_uri, uri, "{claims}");
        assert_caep_common(&payload);
        // CAEP interop: session-revoked and credential-change carry a non-empty reason_admin.
        if uri != &caep("device-compliance-change") {
            assert!(
                payload["reason_admin"]["en"]
                    .as_str()
                    .is_some_and(|r| !r.is_empty()),
                "{payload}"
            );
        }
    }
    let (_, p, _) = event_of(&got[2].body);
    assert_eq!(
        (p["credential_type"].as_str(), p["change_type"].as_str()),
        (Some("password"), Some("update"))
    );
    let (_, p, c) = event_of(&got[3].body);
    assert_eq!(p["current_status"], "not-compliant");
    assert_eq!(p["previous_status"], "compliant");
    assert_eq!(c["sub_id"]["format"], "complex");
    let (_, p, _) = event_of(&got[1].body);
    assert_eq!(p["reason_admin"]["de"], "Reisegeschwindigkeit");

    let resp = app
        .call(
            Method::DELETE,
            &format!("/ssf/streams?stream_id={id}"),
            &rx,
            None,
        )
        .await;
    assert_eq!(resp.status(), 204);
    // The stream is gone: signals about jane have no receiver left.
    let resp = app
        .call(
            Method::POST,
            "/v1/signals/session-revoked",
            &operator,
            Some(&json!({"subject": jane()})),
        )
        .await;
    assert_problem(resp, 503).await;
}

/// [`assert_standard_set`] for a verification SET (no `txn`: it comes from no signal).
fn assert_standard_set_verification(app: &TestApp, jwks: &Value, set: &str, aud: &str) -> Value {
    let (header, claims) = decode(set);
    assert_eq!(header["typ"], "secevent+jwt");
    verify_with_jwks(set, jwks).expect("signed");
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["aud"], aud);
    assert!(claims.get("sub").is_none() && claims.get("exp").is_none());
    let (uri, payload, _) = event_of(set);
    assert_eq!(
        uri,
        "https://schemas.openid.net/secevent/ssf/event-type/verification"
    );
    assert_eq!(payload["state"], "interop-1");
    claims
}

/// A paused stream holds 1,000 SETs (the documented minimum) and delivers every one on enable,
/// in order per subject.
#[tokio::test]
async fn a_paused_stream_holds_a_thousand_sets_and_delivers_them_in_order() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let receiver = FakeReceiver::start().await;
    let token = app
        .client_with(
            "rx",
            &[Scope::SignalsWrite, Scope::StreamsRead, Scope::StreamsWrite],
        )
        .await;
    let (st, stream) = app
        .post_json(
            "/ssf/streams",
            &token,
            &json!({"delivery": {"method": "urn:ietf:rfc:8935",
                                 "endpoint_url": format!("{}/security/api/v1/security-events", receiver.org_url)},
                    "events_requested": [caep("session-revoked")]}),
        )
        .await;
    assert_eq!(st, 201, "{stream}");
    let id = stream["stream_id"].as_str().expect("id").to_owned();
    let status = |s: &'static str| {
        let (app, token, id) = (&app, &token, &id);
        async move {
            let resp = app
                .call(
                    Method::POST,
                    "/ssf/status",
                    token,
                    Some(&json!({"stream_id": id, "status": s})),
                )
                .await;
            assert_eq!(resp.status(), 200);
        }
    };
    status("paused").await;
    let signals: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"type": "session-revoked",
                   "subject": {"format": "email", "email": format!("user{}@example.com", i % 10)},
                   "reason_admin": format!("{i}")})
        })
        .collect();
    let (st, resp) = app
        .post_json("/v1/signals/batch", &token, &json!({"signals": signals}))
        .await;
    assert_eq!((st, resp["queued"].as_u64()), (200, Some(1000)), "{resp}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let held = receiver
        .received()
        .iter()
        .filter(|r| event_of(&r.body).0 == caep("session-revoked"))
        .count();
    assert_eq!(held, 0, "nothing goes out while paused");
    status("enabled").await;
    let mut got = Vec::new();
    for _ in 0..800 {
        got = receiver
            .received()
            .into_iter()
            .map(|r| event_of(&r.body))
            .filter(|(uri, _, _)| uri == &caep("session-revoked"))
            .collect();
        if got.len() >= 1000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(got.len(), 1000, "every held SET is delivered");
    let mut last: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for (_, payload, claims) in &got {
        let who = claims["sub_id"]["email"]
            .as_str()
            .expect("email")
            .to_owned();
        let n: i64 = payload["reason_admin"]["en"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("n");
        if let Some(prev) = last.insert(who.clone(), n) {
            assert!(n > prev, "{who}: {n} after {prev}");
        }
    }
}

/// A SET committed for a stream just after it was disabled or deleted (an intake that chose its
/// streams before the change) is swept away: a disabled stream holds nothing, a deleted one
/// leaves nothing waiting.
#[tokio::test]
async fn a_set_that_raced_a_disable_or_delete_is_dropped() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let token = app
        .client_with("rx", &[Scope::StreamsRead, Scope::StreamsWrite])
        .await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (st, stream) = app
            .post_json(
                "/ssf/streams",
                &token,
                &json!({"events_requested": [caep("session-revoked")]}),
            )
            .await;
        assert_eq!(st, 201);
        ids.push(stream["stream_id"].as_str().expect("id").to_owned());
    }
    // Let the supervisor see both streams take events.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let resp = app
        .call(
            Method::POST,
            "/ssf/status",
            &token,
            Some(&json!({"stream_id": ids[0], "status": "disabled"})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .call(
            Method::DELETE,
            &format!("/ssf/streams?stream_id={}", ids[1]),
            &token,
            None,
        )
        .await;
    assert_eq!(resp.status(), 204);
    // The late commits.
    let now_ms = chrono::Utc::now().timestamp_millis();
    let late: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| ssf_transmitter::store::NewOutbox {
            jti: format!("late{i}0000000000000000000000000000"),
            stream_id: id.clone(),
            subject_key: "user=email:jane@example.com".into(),
            subject: jane().to_string(),
            event_type: "session-revoked".into(),
            set_jwt: "x.y.z".into(),
            client: "rx".into(),
            kid: "k".into(),
            now_ms,
        })
        .collect();
    app.store
        .accept_signals(&late, &[], None)
        .await
        .expect("commit");
    for row in &late {
        assert!(app.store.outbox_get(&row.jti).await.expect("get").is_some());
    }
    let mut left = late.len();
    for _ in 0..120 {
        left = 0;
        for row in &late {
            if app.store.outbox_get(&row.jti).await.expect("get").is_some() {
                left += 1;
            }
        }
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the late SETs are swept");
}
