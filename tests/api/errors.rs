use serde_json::json;

use crate::helpers::{
    ADMIN_TOKEN, TestApp, assert_problem, config_for, config_with_receiver, tempdir,
};

#[tokio::test]
async fn unknown_routes_and_methods_are_problem_json() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    assert_problem(app.get("/nope").await, 404).await;
    let resp = app
        .http
        .delete(app.url("/healthz"))
        .send()
        .await
        .expect("send");
    assert!(resp.headers().get("allow").is_some());
    assert_problem(resp, 405).await;
}

#[tokio::test]
async fn malformed_bodies_are_rejected_with_problem_json() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let post = |body: &'static str, ct: &'static str| {
        app.http
            .post(app.url("/v1/admin/clients"))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let body = assert_problem(
        post("{not json", "application/json").await.expect("send"),
        400,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .expect("d")
            .contains("malformed JSON"),
        "{body}"
    );
    // Well-formed JSON with a wrong type, an unknown or a missing field: 422 naming the field.
    let body = assert_problem(
        post(r#"{"name": 5, "scopes": []}"#, "application/json")
            .await
            .expect("send"),
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "name", "{body}");
    let body = assert_problem(
        post(
            r#"{"name": "a", "scopes": ["admin"], "extra": 1}"#,
            "application/json",
        )
        .await
        .expect("send"),
        422,
    )
    .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("m")
            .contains("extra"),
        "{body}"
    );
    let body = assert_problem(
        post(r#"{"name": "a"}"#, "application/json")
            .await
            .expect("send"),
        422,
    )
    .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("m")
            .contains("scopes"),
        "{body}"
    );
    // Trailing garbage after the JSON value is malformed.
    assert_problem(
        post(r#"{"name":"a","scopes":["admin"]} x"#, "application/json")
            .await
            .expect("send"),
        400,
    )
    .await;
    assert_problem(
        post(r#"{"name":"a","scopes":["admin"]}"#, "text/plain")
            .await
            .expect("send"),
        415,
    )
    .await;
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let dir = tempdir();
    let config = ssf_transmitter::Config {
        max_body_bytes: 4096,
        ..config_for(dir.path())
    };
    let app = TestApp::spawn_with(config).await;
    let big = "x".repeat(10_000);
    let resp = app
        .http
        .post(app.url("/v1/admin/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": big, "scopes": ["admin"]}))
        .send()
        .await
        .expect("send");
    let body = assert_problem(resp, 413).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("4096 bytes")),
        "the 413 states the limit: {body}"
    );
    // Also where the body is read by the idempotency layer or as optional JSON.
    let resp = app
        .http
        .post(app.url("/v1/users/jane/suspend"))
        .bearer_auth(ADMIN_TOKEN)
        .header("idempotency-key", "k-413")
        .json(&json!({"reason": big}))
        .send()
        .await
        .expect("send");
    let body = assert_problem(resp, 413).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("4096 bytes")),
        "{body}"
    );
    assert!(app.store.list_clients().await.expect("list").is_empty());
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let resp = app.get("/healthz").await;
    let id = resp.headers()["x-request-id"].to_str().expect("ascii");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let resp = app.get("/nope").await;
    assert!(resp.headers().get("x-request-id").is_some(), "errors too");
    let resp = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "caller-chosen-42")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.headers()["x-request-id"], "caller-chosen-42");
}

#[tokio::test]
async fn a_callers_request_id_is_kept_only_when_short_and_printable() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let echoed = |id: &'static [u8]| {
        let app = &app;
        async move {
            let resp = app
                .http
                .get(app.url("/healthz"))
                .header(
                    "x-request-id",
                    reqwest::header::HeaderValue::from_bytes(id).expect("header value"),
                )
                .send()
                .await
                .expect("send");
            resp.headers()["x-request-id"]
                .to_str()
                .expect("ascii")
                .to_owned()
        }
    };
    let max = "a".repeat(128);
    let max: &'static [u8] = Box::leak(max.into_bytes().into_boxed_slice());
    assert_eq!(
        echoed(max).await.len(),
        128,
        "128 visible characters are kept"
    );
    assert_eq!(echoed(b"req:42/a~b").await, "req:42/a~b");
    let too_long: &'static [u8] = Box::leak("a".repeat(129).into_bytes().into_boxed_slice());
    for bad in [
        too_long,
        b"has space".as_slice(),
        b"tab\there".as_slice(),
        b"caf\xc3\xa9".as_slice(),
    ] {
        let got = echoed(bad).await;
        assert_ne!(got.as_bytes(), bad);
        assert!(
            uuid::Uuid::parse_str(&got).is_ok(),
            "{:?} is replaced by a generated id, got {got}",
            String::from_utf8_lossy(bad)
        );
    }
    // Two ids: neither is taken.
    let resp = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "one")
        .header("x-request-id", "two")
        .send()
        .await
        .expect("send");
    let got = resp.headers()["x-request-id"].to_str().expect("ascii");
    assert!(uuid::Uuid::parse_str(got).is_ok(), "{got}");
}

#[tokio::test]
async fn docs_are_served_with_a_csp_nosniff_and_no_external_validator() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    for path in ["/docs/", "/docs/swagger-initializer.js", "/openapi.json"] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let csp = h["content-security-policy"].to_str().expect("ascii");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
    }
    let init = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .expect("js");
    assert!(
        init.contains(r#""validatorUrl": "none""#),
        "the online validator is off: {init}"
    );
    // The API itself is not given the docs' headers.
    let resp = app.get("/healthz").await;
    assert!(resp.headers().get("content-security-policy").is_none());
}

/// Error bodies and messages carry no Rust debug text: no `Some(…)`, no enum variant names of
/// our dependencies (aws-lc's `WrongAlgorithm`, pem's `malformedframing`), no Rust type names.
#[tokio::test]
async fn error_bodies_carry_no_rust_debug_text() {
    let dir = tempdir();
    // A receiver that is never reached: every signal here is refused before it is queued.
    let app = TestApp::spawn_with(config_with_receiver(dir.path(), "http://127.0.0.1:9")).await;
    let ec_pem = {
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .output()
            .expect("openssl");
        String::from_utf8(out.stdout).expect("pem")
    };
    let bodies = [
        ("/v1/admin/keys/import", json!({"pem": ec_pem})),
        (
            "/v1/admin/keys/import",
            json!({"pem": "-----BEGIN PRIVATE KEY-----\nAAAA"}),
        ),
        ("/v1/admin/keys/import", json!({"pem": 5})),
        ("/v1/admin/clients", json!([1, 2])),
        ("/v1/admin/clients", json!({"name": {}, "scopes": "admin"})),
        (
            "/v1/signals/user-risk",
            json!({"subject": {}, "score": "high", "reason_admin": 7, "event_timestamp": []}),
        ),
    ];
    let debug_words = [
        "Some(",
        "None",
        "WrongAlgorithm",
        "InvalidEncoding",
        "malformedframing",
        "MalformedFraming",
        "ReasonInput",
        "TimestampInput",
        "RiskSignal",
        "NewClientRequest",
        "ImportKey",
        "untagged enum",
        "expected struct",
        "u32",
        "usize",
        "f64",
    ];
    for (path, body) in bodies {
        let resp = app
            .call(reqwest::Method::POST, path, ADMIN_TOKEN, Some(&body))
            .await;
        let status = resp.status().as_u16();
        assert_eq!(status, 422, "{path}");
        let text = resp.text().await.expect("body");
        for word in debug_words {
            assert!(!text.contains(word), "{path} {body}: {word} in {text}");
        }
        // Human text, not CamelCase identifiers.
        let problem: serde_json::Value = serde_json::from_str(&text).expect("json");
        let mut messages = vec![problem["detail"].as_str().unwrap_or_default().to_owned()];
        for e in problem["errors"].as_array().into_iter().flatten() {
            messages.push(e["message"].as_str().unwrap_or_default().to_owned());
        }
        for m in messages {
            let camel = m.split(|c: char| !c.is_ascii_alphanumeric()).find(|w| {
                w.len() > 3
                    && w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && w.chars().skip(1).any(|c| c.is_ascii_uppercase())
                    && w.chars().any(|c| c.is_ascii_lowercase())
            });
            assert!(camel.is_none(), "{path}: {camel:?} in {m:?}");
        }
    }
}

/// serde stops at the first error; the answer names every member at fault.
#[tokio::test]
async fn a_422_names_every_wrong_typed_field() {
    let dir = tempdir();
    let app = TestApp::spawn_with(config_with_receiver(dir.path(), "http://127.0.0.1:9")).await;
    let cases = [
        (
            "/v1/signals/user-risk",
            json!({"subject": {"format": "email", "email": "jane@example.com"}, "score": "high", "force": "yes"}),
            vec!["force", "score"],
        ),
        (
            "/v1/signals/ip-change",
            json!({"subject": {"format": "email", "email": "jane@example.com"}, "current_ip_address": 1, "previous_ip_address": [], "bogus": true}),
            vec!["bogus", "current_ip_address", "previous_ip_address"],
        ),
        (
            "/v1/users/jane/password",
            json!({"length": "long", "append_random": -1, "reason": 5}),
            vec!["append_random", "length", "reason"],
        ),
        (
            "/v1/users/jane/suspend",
            json!({"reason": 5, "why": "x"}),
            vec!["reason", "why"],
        ),
        (
            "/v1/signals/batch",
            json!({"signals": [{"type": "user-risk", "subject": {"format": "email", "email": "jane@example.com"}, "score": "x", "current_level": 3}]}),
            vec![],
        ),
    ];
    for (path, body, want) in cases {
        let resp = app
            .call(reqwest::Method::POST, path, ADMIN_TOKEN, Some(&body))
            .await;
        if want.is_empty() {
            // A batch answers per item: the item's errors name both members.
            assert_eq!(resp.status(), 200, "{path}");
            let b: serde_json::Value = resp.json().await.expect("json");
            let mut fields: Vec<&str> = b["results"][0]["errors"]
                .as_array()
                .expect("errors")
                .iter()
                .filter_map(|e| e["field"].as_str())
                .collect();
            fields.sort_unstable();
            assert_eq!(
                fields,
                ["signals[0].current_level", "signals[0].score"],
                "{b}"
            );
            continue;
        }
        let problem = assert_problem(resp, 422).await;
        let mut fields: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, want, "{path}: {problem}");
    }
}
