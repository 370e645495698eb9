//! Walks every route the service serves — the list is taken from the code that builds the routers
//! (`ssf_transmitter::http::served_routes`), so a route added outside the OpenAPI document is
//! walked too — on an app whose issuer has a path, and proves that each non-public one answers
//! 401 without a token or with an unknown one, and 403 with a valid token lacking its scope (the
//! scope read from the document). A route without a security declaration, or an undocumented
//! one, that is not on the lists below fails `only_known_routes_are_public`.

use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;
use ssf_transmitter::http::{Route, public_served_routes, served_routes};

use crate::helpers::{
    TestApp, assert_problem, concrete_path, config_with_issuer_path, listed_path, tempdir,
};

/// Answer 200 without a token. `<issuer-path>` stands for the issuer's path.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/ssf-configuration"),
    ("GET", "/.well-known/ssf-configuration<issuer-path>"),
    ("GET", "/.well-known/oauth-authorization-server"),
    (
        "GET",
        "/.well-known/oauth-authorization-server<issuer-path>",
    ),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/"),
    ("GET", "/docs/{*rest}"),
];

/// The approval page: no bearer token; the link's single-use token (and, to post, the page's
/// CSRF cookie and field) is the credential. Without them: 404 / 403, nothing shown or run.
const LINK_AUTHORIZED: &[(&str, &str, u16)] = &[
    ("GET", "/approvals/{id}", 404),
    ("POST", "/approvals/{id}", 403),
    ("GET", "<issuer-path>/approvals/{id}", 404),
    ("POST", "<issuer-path>/approvals/{id}", 403),
];

/// The OAuth token endpoint: no bearer token; the client authenticates with its id and secret
/// (Basic or in the form) or a signed assertion (`oauth.rs` walks each). The walk's JSON body is
/// not a form: 400 `invalid_request`, nothing issued.
const CLIENT_AUTHENTICATED: &[(&str, &str, u16)] = &[("POST", "/oauth2/token", 400)];

struct Operation {
    route: Route,
    /// Whether the document has the operation.
    documented: bool,
    /// The document's bearer scopes; `None` when it declares no security (or lacks the route).
    scopes: Option<Vec<String>>,
}

impl Operation {
    fn what(&self) -> String {
        format!("{} {}", self.route.method, self.route.path)
    }
}

/// Every route of `routes`, with its scopes from the document.
fn operations(routes: Vec<Route>, doc: &Value) -> Vec<Operation> {
    routes
        .into_iter()
        .map(|route| {
            let op = &doc["paths"][&route.path][route.method.as_str().to_lowercase()];
            let scopes = op.get("security").and_then(Value::as_array).map(|reqs| {
                reqs.iter()
                    .filter_map(|r| r.get("bearer"))
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            });
            Operation {
                documented: op.is_object(),
                route,
                scopes,
            }
        })
        .collect()
}

/// The lists for `app`'s issuer: (method, path, status without a token).
fn without_token(app: &TestApp) -> Vec<(String, String, u16)> {
    let issuer_path = ssf_transmitter::http::well_known::issuer_path(&app.issuer);
    PUBLIC
        .iter()
        .map(|(m, p)| (*m, *p, 200))
        .chain(LINK_AUTHORIZED.iter().copied())
        .chain(CLIENT_AUTHENTICATED.iter().copied())
        .filter_map(|(m, p, status)| Some((m.to_owned(), listed_path(p, &issuer_path)?, status)))
        .collect()
}

async fn call(app: &TestApp, base: &str, op: &Operation, token: Option<&str>) -> reqwest::Response {
    let method = op.route.method.clone();
    let mut req = app.http.request(
        method.clone(),
        format!("{base}{}", concrete_path(&op.route.path)),
    );
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
        req = req.json(&json!({}));
    }
    req.send().await.expect("send")
}

async fn spawn(dir: &std::path::Path) -> (TestApp, Value) {
    let app = TestApp::spawn_with(config_with_issuer_path(dir)).await;
    let doc: Value = app.get("/openapi.json").await.json().await.expect("doc");
    (app, doc)
}

#[tokio::test]
async fn only_known_routes_are_public() {
    let dir = tempdir();
    let (app, doc) = spawn(dir.path()).await;
    let lists = without_token(&app);
    let listed = |op: &Operation| {
        lists
            .iter()
            .find(|(m, p, _)| *m == op.route.method.as_str() && *p == op.route.path)
            .map(|(_, _, status)| *status)
    };
    let ops = operations(served_routes(&app.issuer), &doc);
    assert!(ops.len() >= 20, "the app serves the routes ({})", ops.len());
    for op in &ops {
        let what = op.what();
        match (&op.scopes, listed(op)) {
            (None, Some(status)) => {
                let resp = call(&app, &app.base, op, None).await;
                assert_eq!(resp.status(), status, "{what} without a token");
            }
            (Some(_), Some(_)) => panic!("{what} is public but declares security"),
            (None, None) if op.documented => {
                panic!("{what} has no security and is not on the public lists")
            }
            (None, None) => {
                panic!("{what} is served, not in the OpenAPI document and not on the public lists")
            }
            (Some(scopes), None) => {
                assert!(!scopes.is_empty(), "{what}: names its scope");
                for s in scopes {
                    s.parse::<Scope>().expect("a known scope");
                }
            }
        }
    }
    // No stale entry: everything listed is served.
    for (method, path, _) in &lists {
        assert!(
            ops.iter()
                .any(|o| o.route.method.as_str() == method && o.route.path == *path),
            "{method} {path} is listed but not served"
        );
    }
    // The public listener serves only routes of the lists, each as on the API listener.
    let public = app.public_base.clone().expect("public listener");
    let public_ops = operations(public_served_routes(&app.issuer), &doc);
    assert!(public_ops.len() >= 5, "{}", public_ops.len());
    for op in &public_ops {
        let what = op.what();
        let status = listed(op).unwrap_or_else(|| panic!("{what} on the public listener"));
        assert!(op.scopes.is_none(), "{what} declares security");
        let resp = call(&app, &public, op, None).await;
        assert_eq!(resp.status(), status, "{what} on the public listener");
    }
}

#[tokio::test]
async fn every_protected_route_needs_a_token_and_its_scope() {
    let dir = tempdir();
    let (app, doc) = spawn(dir.path()).await;
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
    for op in operations(served_routes(&app.issuer), &doc) {
        let Some(scopes) = &op.scopes else { continue };
        let what = op.what();

        let resp = call(&app, &app.base, &op, None).await;
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .map(|v| v.to_str().expect("ascii")),
            Some("Bearer"),
            "{what}"
        );
        assert_problem(resp, 401).await;

        let resp = call(&app, &app.base, &op, Some("ssft_not-a-real-token")).await;
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
        let resp = call(&app, &app.base, &op, Some(&token)).await;
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
