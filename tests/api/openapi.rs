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

/// Where a request can be malformed, the 400 is documented; where a body is read, the 413 too;
/// `Idempotency-Key` carries the rule the code enforces.
#[test]
fn malformed_requests_and_oversized_bodies_are_documented() {
    let doc: Value = serde_json::from_str(&generated()).expect("json");
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let key = params.iter().find(|p| p["name"] == "Idempotency-Key");
            if let Some(k) = key {
                assert_eq!(k["schema"]["pattern"], "^[!-~]{1,255}$", "{method} {path}");
            }
            let has_body = op.get("requestBody").is_some();
            let malformable = has_body
                || key.is_some()
                || params
                    .iter()
                    .any(|p| p["in"] == "query" || p["in"] == "path");
            let responses = &op["responses"];
            assert_eq!(
                responses.get("400").is_some(),
                malformable,
                "{method} {path} documents 400 exactly when a request can be malformed"
            );
            assert_eq!(
                responses.get("413").is_some(),
                has_body,
                "{method} {path} 413"
            );
            if malformable {
                checked += 1;
            }
        }
    }
    assert!(checked > 30, "{checked}");
    // Every enforcement change takes an Idempotency-Key, and every intake route too.
    for (path, method) in [
        ("/v1/users/{user}/suspend", "post"),
        ("/v1/groups/{group}/members/{user}", "delete"),
        ("/v1/signals/user-risk", "post"),
    ] {
        assert!(
            doc["paths"][path][method]["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key")),
            "{method} {path}"
        );
    }
    let detail = &doc["components"]["schemas"]["AuditRow"]["properties"]["detail"];
    assert_eq!(
        detail["type"],
        serde_json::json!(["object", "null"]),
        "{detail}"
    );
}

/// An audit detail is always an object: one recorded as text is under `message`.
#[tokio::test]
async fn audit_details_are_objects() {
    use crate::helpers::ADMIN_TOKEN;
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let resp = app
        .call(
            reqwest::Method::DELETE,
            "/v1/admin/clients/nobody",
            ADMIN_TOKEN,
            None,
        )
        .await;
    assert_eq!(resp.status(), 404);
    let (status, rows) = app
        .get_json("/v1/audit?action=client.revoke", ADMIN_TOKEN)
        .await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(
        rows[0]["detail"],
        serde_json::json!({"message": "no active client with this name"}),
        "{rows}"
    );
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

/// Parameters are where the code reads them (query options were once documented as required
/// path parameters), and request schemas carry the rules the handlers enforce.
#[test]
fn parameters_and_request_schemas_match_the_code() {
    let doc: Value = serde_json::from_str(&generated()).expect("json");
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().expect("name");
                if p["in"] == "path" {
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: {name}"
                    );
                    assert_eq!(p["required"], true, "{method} {path}: {name}");
                }
            }
        }
    }
    let param = |path: &str, method: &str, name: &str| {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{method} {path} {name}"))
    };
    let role = param("/v1/users/{user}/roles", "post", "type");
    assert_eq!(role["in"], "query");
    assert_eq!(role["required"], true);
    let roles: Vec<&str> = role["schema"]["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(roles, ssf_transmitter::enforcement::STANDARD_ROLE_TYPES);
    let limit = param("/v1/signals", "get", "limit");
    assert_eq!(
        (
            limit["schema"]["minimum"].as_u64(),
            limit["schema"]["maximum"].as_u64()
        ),
        (Some(1), Some(500))
    );
    let bits = param("/v1/admin/keys", "post", "bits");
    assert_eq!(bits["schema"]["multipleOf"].as_u64(), Some(1024));
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["NewClientRequest"]["properties"]["name"]["pattern"],
        "^[A-Za-z0-9._-]{1,64}$"
    );
    assert_eq!(
        schemas["SetPasswordBody"]["properties"]["length"]["minimum"].as_u64(),
        Some(8)
    );
    assert_eq!(
        schemas["RiskSignal"]["properties"]["score"]["maximum"].as_u64(),
        Some(100)
    );
}

/// Every `$ref` in the document names a component that exists (a tool reading the document, e.g.
/// schemathesis, fails on a dangling one).
#[test]
fn every_reference_resolves() {
    fn walk(v: &serde_json::Value, doc: &serde_json::Value, bad: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(r) = o.get("$ref").and_then(|r| r.as_str()) {
                    let pointer = r.trim_start_matches('#');
                    if doc.pointer(pointer).is_none() {
                        bad.push(r.to_owned());
                    }
                }
                o.values().for_each(|x| walk(x, doc, bad));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, doc, bad)),
            _ => {}
        }
    }
    let doc: serde_json::Value = serde_json::from_str(&generated()).expect("json");
    let mut bad = Vec::new();
    walk(&doc, &doc, &mut bad);
    assert!(bad.is_empty(), "dangling references: {bad:?}");
}
