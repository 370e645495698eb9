//! The route walk: every route the service serves (method and path, both listeners, the issuer-path
//! routes included) is in the OpenAPI document or on a reasoned list, and each is answered by its
//! route on a running app. The list is taken from the code that builds the routers
//! (`src/http/routes.rs`), and no route can be added anywhere else (`routes_are_added_in_one_place_only`).
//! `auth_walk` takes its operations from the same list.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;
use ssf_transmitter::http::{Route, api_router, public_served_routes, served_routes};

use crate::helpers::{
    ISSUER_WITH_PATH, TestApp, concrete_path, config_with_issuer_path, listed_path, tempdir,
};

/// Served but not in the OpenAPI document, on purpose, and why. `<issuer-path>` stands for the
/// issuer's path (these are served only when it has one).
const UNDOCUMENTED: &[(&str, &str, &str)] = &[
    ("GET", "/openapi.json", "the document itself"),
    ("GET", "/docs", "Swagger UI (redirects to /docs/)"),
    ("GET", "/docs/", "Swagger UI"),
    ("GET", "/docs/{*rest}", "Swagger UI's files"),
    (
        "GET",
        "/.well-known/ssf-configuration<issuer-path>",
        "the documented metadata at its SSF §7.2 location, which depends on the configured issuer",
    ),
    (
        "GET",
        "/.well-known/oauth-authorization-server<issuer-path>",
        "the documented OAuth metadata at its RFC 8414 §3.1 location, which depends on the configured issuer",
    ),
    (
        "GET",
        "<issuer-path>/approvals/{id}",
        "the documented approval page under the issuer's path, where its links point",
    ),
    (
        "POST",
        "<issuer-path>/approvals/{id}",
        "the documented approval page's form under the issuer's path",
    ),
];

/// Where routes may be added: everything a router serves goes through its recording table.
const ROUTE_TABLE: &str = "src/http/routes.rs";

/// What adds routes (or answers requests) on an axum or utoipa router.
const ADDS_ROUTES: &[&str] = &[
    ".route(",
    ".route_service(",
    ".nest(",
    ".nest_service(",
    ".merge(",
    ".fallback(",
    ".fallback_service(",
    "split_for_parts",
    "SwaggerUi",
];

/// Lines that match [`ADDS_ROUTES`] without touching a router.
const NOT_A_ROUTER: &[&str] = &[
    // Configuration sources layered by figment.
    "figment.merge(",
];

fn issuer_path(issuer: &str) -> String {
    ssf_transmitter::http::well_known::issuer_path(issuer)
}

fn label(r: &Route) -> String {
    format!("{} {}", r.method, r.path)
}

/// (method, path) of every operation of the document.
fn documented() -> HashSet<(String, String)> {
    let doc: Value = serde_json::to_value(api_router().into_openapi()).expect("json");
    let mut ops = HashSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

#[test]
fn routes_are_added_in_one_place_only() {
    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    files.sort();
    let mut outside = Vec::new();
    let mut in_table = 0;
    for file in &files {
        let rel = file
            .strip_prefix(root)
            .expect("under the crate")
            .to_string_lossy()
            .replace('\\', "/");
        // The Okta sandbox is a server of its own, on its own listener.
        if rel.starts_with("src/sandbox/") {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") || NOT_A_ROUTER.iter().any(|x| code.contains(x)) {
                continue;
            }
            if ADDS_ROUTES.iter().any(|x| code.contains(x)) {
                if rel == ROUTE_TABLE {
                    in_table += 1;
                } else {
                    outside.push(format!("{rel}:{}: {code}", n + 1));
                }
            }
        }
    }
    assert!(
        outside.is_empty(),
        "routes are added only in {ROUTE_TABLE} (through its Table, which records what is served; \
         documented ones with `routes!`):\n{}",
        outside.join("\n")
    );
    assert!(in_table >= 5, "the scan sees the route table ({in_table})");
}

/// Every route either listener serves, with and without an issuer path, is in the document or on
/// the reasoned `UNDOCUMENTED` list; every entry of that list is served.
#[test]
fn every_served_route_is_documented_or_listed() {
    let documented = documented();
    assert!(documented.len() >= 20, "{}", documented.len());
    for issuer in ["http://127.0.0.1:8080", ISSUER_WITH_PATH] {
        let path = issuer_path(issuer);
        let listed: HashSet<(String, String)> = UNDOCUMENTED
            .iter()
            .filter_map(|(m, p, _)| Some(((*m).to_owned(), listed_path(p, &path)?)))
            .collect();
        let api = served_routes(issuer);
        let public = public_served_routes(issuer);
        for (listener, routes) in [("API", &api), ("public", &public)] {
            let mut seen = HashSet::new();
            for r in routes {
                assert!(seen.insert(r), "{listener} {}: added twice", label(r));
                let key = (r.method.to_string(), r.path.clone());
                assert!(
                    documented.contains(&key) || listed.contains(&key),
                    "{listener} listener, issuer {issuer}: {} is served but neither in the OpenAPI \
                     document nor on UNDOCUMENTED",
                    label(r)
                );
            }
        }
        let served: HashSet<(String, String)> = api
            .iter()
            .map(|r| (r.method.to_string(), r.path.clone()))
            .collect();
        for key in listed.iter().chain(&documented) {
            assert!(
                served.contains(key),
                "issuer {issuer}: {} {} is listed or documented but not served",
                key.0,
                key.1
            );
        }
    }
}

/// How many answers each (route template, method) has had, from the metrics.
async fn answers(app: &TestApp) -> HashMap<(String, String), u64> {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    let mut counts = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("http_requests_total{route=\"") else {
            continue;
        };
        let (route, rest) = rest.split_once("\",method=\"").expect("method label");
        let (method, rest) = rest.split_once('"').expect("method value");
        let n: u64 = rest
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("count");
        *counts
            .entry((route.to_owned(), method.to_owned()))
            .or_default() += n;
    }
    counts
}

/// Requests every route; none may be answered by the router's fallbacks (404 "no such route",
/// 405), and each must be answered by the route itself: the metrics label every answer with the
/// template that matched it.
async fn probe(app: &TestApp, base: &str, routes: &[Route]) {
    let before = answers(app).await;
    for r in routes {
        let url = format!("{base}{}", concrete_path(&r.path));
        let mut req = app.http.request(r.method.clone(), url);
        if r.method != reqwest::Method::GET {
            req = req.json(&serde_json::json!({}));
        }
        let resp = req.send().await.expect("send");
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_ne!(status, 405, "{base} {}: {body}", label(r));
        assert!(
            !(status == 404 && body["detail"] == "no such route"),
            "{base} {}: answered by the fallback",
            label(r)
        );
    }
    let after = answers(app).await;
    for r in routes {
        let key = (r.path.clone(), r.method.to_string());
        assert!(
            after.get(&key) > before.get(&key),
            "{base} {}: not answered by this route ({after:?})",
            label(r)
        );
    }
}

#[tokio::test]
async fn every_served_route_is_answered_by_its_route() {
    let dir = tempdir();
    let app = TestApp::spawn_with(config_with_issuer_path(dir.path())).await;
    assert_eq!(app.issuer, ISSUER_WITH_PATH);
    let public = app.public_base.clone().expect("public listener");
    let api = served_routes(&app.issuer);
    for path in [
        "/.well-known/ssf-configuration/tenant1",
        "/tenant1/approvals/{id}",
    ] {
        assert!(
            api.iter().any(|r| r.path == path),
            "{path} is served: {api:?}"
        );
    }
    probe(&app, &public, &public_served_routes(&app.issuer)).await;
    probe(&app, &app.base, &api).await;
}
