use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;

use crate::helpers::{ADMIN_TOKEN, TestApp, assert_problem, tempdir};

#[tokio::test]
async fn client_lifecycle_over_the_admin_api() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let (status, created) = app
        .post_json(
            "/v1/admin/clients",
            ADMIN_TOKEN,
            &json!({"name": "soc-admin", "scopes": ["admin", "signals:read"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("ssft_"));
    assert_eq!(created["name"], "soc-admin");
    assert_eq!(created["scopes"], json!(["signals:read", "admin"]));

    // The new token works on an admin route.
    let (status, list) = app.get_json("/v1/admin/clients", &token).await;
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(!text.contains(&token), "the token is never listed");
    assert!(!text.contains("token"), "{text}");
    assert_eq!(list["clients"][0]["name"], "soc-admin");

    // Duplicate name: 409.
    let (status, body) = app
        .post_json(
            "/v1/admin/clients",
            ADMIN_TOKEN,
            &json!({"name": "soc-admin", "scopes": ["admin"]}),
        )
        .await;
    assert_eq!(status, 409, "{body}");

    // Revoke: the token stops working at once.
    let resp = app
        .http
        .delete(app.url("/v1/admin/clients/soc-admin"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let revoked: Value = resp.json().await.expect("json");
    assert!(revoked["revoked_at"].is_string());
    let resp = app
        .http
        .get(app.url("/v1/admin/clients"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_problem(resp, 401).await;
    // Revoking again: 404.
    let resp = app
        .http
        .delete(app.url("/v1/admin/clients/soc-admin"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("send");
    assert_problem(resp, 404).await;

    let audit = app.store.recent_audit(10).await.expect("audit");
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.action.as_str(), a.outcome.as_str()))
        .collect();
    assert!(actions.contains(&("client.add", "ok")));
    assert!(actions.contains(&("client.add", "error")));
    assert!(actions.contains(&("client.revoke", "ok")));
    assert!(actions.contains(&("client.revoke", "error")));
    assert!(
        audit
            .iter()
            .all(|a| !a.detail.clone().unwrap_or_default().contains("ssft_"))
    );
}

#[tokio::test]
async fn client_creation_validates_name_and_scopes() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let resp = app
        .http
        .post(app.url("/v1/admin/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "bad name", "scopes": ["admin", "root"]}))
        .send()
        .await
        .expect("send");
    let body = assert_problem(resp, 422).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["scopes[1]", "name"]);
    let resp = app
        .http
        .post(app.url("/v1/admin/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "ok", "scopes": []}))
        .send()
        .await
        .expect("send");
    let body = assert_problem(resp, 422).await;
    assert_eq!(body["errors"][0]["field"], "scopes");
    // Nothing was created.
    assert!(app.store.list_clients().await.expect("list").is_empty());
}

#[tokio::test]
async fn a_scoped_client_reaches_only_its_scope() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let reader = app.client_with("reader", &[Scope::SignalsRead]).await;
    let resp = app
        .http
        .get(app.url("/v1/admin/keys"))
        .bearer_auth(&reader)
        .send()
        .await
        .expect("send");
    assert_problem(resp, 403).await;
}
