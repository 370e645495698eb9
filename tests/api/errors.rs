use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, TestApp, assert_problem, config_for, tempdir};

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
    assert_problem(resp, 413).await;
    assert!(
        app.state
            .store
            .list_clients()
            .await
            .expect("list")
            .is_empty()
    );
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
