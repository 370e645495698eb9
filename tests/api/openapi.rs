use serde_json::Value;

use crate::helpers::{TestApp, tempdir};

fn generated() -> String {
    let doc = ssf_transmitter::http::api_router().into_openapi();
    let mut json = doc.to_pretty_json().expect("render");
    json.push('\n');
    json
}

/// Fails when `openapi/openapi.json` is not what the code generates. Regenerate with
/// `UPDATE_OPENAPI=1 cargo test --test api openapi`.
#[test]
fn committed_openapi_document_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    let fresh = generated();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &fresh).expect("write openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "openapi/openapi.json is stale; run `UPDATE_OPENAPI=1 cargo test --test api openapi` and commit it"
    );
}

#[tokio::test]
async fn served_document_is_openapi_3_1_and_matches() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let served: Value = app.get("/openapi.json").await.json().await.expect("json");
    assert_eq!(served["openapi"], "3.1.0");
    let fresh: Value = serde_json::from_str(&generated()).expect("json");
    assert_eq!(served, fresh);
    // Every operation has a summary (from its doc comment) and declares its responses.
    for (path, item) in served["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path} summary"
            );
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} responses"
            );
            if op.get("security").is_some() {
                for code in ["401", "403"] {
                    assert!(
                        op["responses"].get(code).is_some(),
                        "{method} {path} documents {code}"
                    );
                }
            }
        }
    }
    assert!(served["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn swagger_ui_is_served_offline() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let resp = app.get("/docs/").await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("https://"), "no CDN assets: {html}");
    let js = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(js.status(), 200);
}
