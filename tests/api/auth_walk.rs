//! Walks every operation of the served OpenAPI document (the router and the document are built
//! from the same `routes!` lists) and proves that each non-public one answers 401 without a token
//! or with an unknown one, and 403 with a valid token lacking its scope. A new route that forgets
//! its security declaration fails `only_known_routes_are_public`.

use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;

use crate::helpers::{TestApp, assert_problem, tempdir};

const PUBLIC: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/.well-known/ssf-configuration"),
];

/// The approval page: no bearer token; the link's single-use token (and, to post, the page's
/// CSRF cookie and field) is the credential. Without them: 404 / 403, nothing shown or run.
const LINK_AUTHORIZED: &[(&str, &str, u16)] = &[
    ("get", "/approvals/{id}", 404),
    ("post", "/approvals/{id}", 403),
];

struct Operation {
    method: String,
    path: String,
    scopes: Option<Vec<String>>,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let scopes = op.get("security").and_then(Value::as_array).map(|reqs| {
                reqs.iter()
                    .filter_map(|r| r.get("bearer"))
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            });
            ops.push(Operation {
                method: method.clone(),
                path: path.clone(),
                scopes,
            });
        }
    }
    ops
}

fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("x1");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

async fn call(app: &TestApp, op: &Operation, token: Option<&str>) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(op.method.to_uppercase().as_bytes()).expect("method");
    let mut req = app.http.request(method, app.url(&concrete(&op.path)));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if op.method != "get" && op.method != "delete" {
        req = req.json(&json!({}));
    }
    req.send().await.expect("send")
}

#[tokio::test]
async fn only_known_routes_are_public() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let doc: Value = app.get("/openapi.json").await.json().await.expect("doc");
    let ops = operations(&doc);
    assert!(
        ops.len() >= 20,
        "the document lists the routes ({})",
        ops.len()
    );
    for op in &ops {
        if let Some((_, _, status)) = LINK_AUTHORIZED
            .iter()
            .find(|(m, p, _)| *m == op.method && *p == op.path)
        {
            assert!(
                op.scopes.is_none(),
                "{} {} declares security",
                op.method,
                op.path
            );
            let resp = call(&app, op, None).await;
            assert_eq!(
                resp.status(),
                *status,
                "{} {} without its link",
                op.method,
                op.path
            );
            continue;
        }
        let public = PUBLIC.contains(&(op.method.as_str(), op.path.as_str()));
        match &op.scopes {
            None => assert!(
                public,
                "{} {} has no security and is not on the public list",
                op.method, op.path
            ),
            Some(scopes) => {
                assert!(
                    !public,
                    "{} {} is public but declares security",
                    op.method, op.path
                );
                assert!(
                    !scopes.is_empty(),
                    "{} {}: names its scope",
                    op.method,
                    op.path
                );
                for s in scopes {
                    s.parse::<Scope>().expect("a known scope");
                }
            }
        }
    }
    for (method, path) in PUBLIC {
        let op = ops
            .iter()
            .find(|o| o.method == *method && o.path == *path)
            .expect("public op documented");
        let resp = call(&app, op, None).await;
        assert_eq!(resp.status(), 200, "{method} {path}");
    }
}

#[tokio::test]
async fn every_protected_route_needs_a_token_and_its_scope() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let doc: Value = app.get("/openapi.json").await.json().await.expect("doc");
    // One client per scope, holding every scope but that one.
    let mut lacking = std::collections::HashMap::new();
    for scope in Scope::ALL {
        let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| *s != scope).collect();
        let name = format!("lacks-{}", scope.as_str().replace(':', "-"));
        lacking.insert(
            scope.as_str().to_owned(),
            app.client_with(&name, &others).await,
        );
    }
    let mut checked = 0;
    for op in operations(&doc) {
        let Some(scopes) = &op.scopes else { continue };
        let what = format!("{} {}", op.method, op.path);

        let resp = call(&app, &op, None).await;
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .map(|v| v.to_str().expect("ascii")),
            Some("Bearer"),
            "{what}"
        );
        assert_problem(resp, 401).await;

        let resp = call(&app, &op, Some("ssft_not-a-real-token")).await;
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .map(|v| v.to_str().expect("ascii")),
            Some(r#"Bearer error="invalid_token""#),
            "{what}"
        );
        assert_problem(resp, 401).await;

        // A token holding every scope except the route's (all of them, when it accepts several).
        let key = scopes.join(" ");
        let token = match lacking.get(&key) {
            Some(t) => t.clone(),
            None => {
                let others: Vec<Scope> = Scope::ALL
                    .into_iter()
                    .filter(|s| !scopes.iter().any(|x| x == s.as_str()))
                    .collect();
                let name = format!("lacks-{}", scopes.join("-").replace(':', "-"));
                let t = app.client_with(&name, &others).await;
                lacking.insert(key, t.clone());
                t
            }
        };
        let resp = call(&app, &op, Some(&token)).await;
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .map(|v| v.to_str().expect("ascii").to_owned()),
            Some(format!(
                r#"Bearer error="insufficient_scope", scope="{}""#,
                scopes[0]
            )),
            "{what}"
        );
        let body = assert_problem(resp, 403).await;
        assert_eq!(
            body["type"], "urn:ssf-transmitter:problem:insufficient-scope",
            "{what}"
        );
        checked += 1;
    }
    assert!(checked >= 20, "checked {checked} protected operations");
}

#[tokio::test]
async fn tokens_are_only_taken_from_the_authorization_header() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let resp = app
        .get(&format!(
            "/v1/admin/keys?access_token={}",
            crate::helpers::ADMIN_TOKEN
        ))
        .await;
    assert_problem(resp, 401).await;
    // Basic auth is not a bearer token.
    let resp = app
        .http
        .get(app.url("/v1/admin/keys"))
        .basic_auth("admin", Some(crate::helpers::ADMIN_TOKEN))
        .send()
        .await
        .expect("send");
    assert_problem(resp, 401).await;
    // The scheme name is case-insensitive.
    let resp = app
        .http
        .get(app.url("/v1/admin/keys"))
        .header(
            "authorization",
            format!("bearer {}", crate::helpers::ADMIN_TOKEN),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
}
