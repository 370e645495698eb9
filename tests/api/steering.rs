//! Input never steers: every route with a path parameter, driven with separators, dot
//! segments, encoded separators, NUL, quotes, CR/LF and oversize values in each parameter.
//! From the sandbox's request log: nothing but the intended look-ups (or nothing at all) reached
//! Okta, and the answer is a clean 4xx.
//!
//! Requests are written by hand on a TCP socket: an HTTP client library would resolve
//! `%2E%2E` or `..` before sending, and the point is what the server does with them.

use serde_json::Value;
use ssf_transmitter::sandbox::RecordedRequest;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{ADMIN_TOKEN, Sandboxed, tempdir};

/// What goes into a path parameter, as written on the wire.
const PAYLOADS: &[&str] = &[
    "..%2F..%2F..%2Fgroups%2F00g00000000000000003",
    "..%2F..%2F",
    "%2E%2E",
    "%2e%2e%2Fgroups",
    "..",
    "x%3Fq%3D1",
    "x%23frag",
    "x%00y",
    "%2F",
    "x%252Fy",
    "x%22y%27z",
    "x%0D%0AInjected:%201",
    "00u00000000000000001%2F..%2F..%2Fgroups",
    "00u00000000000000001%3F",
    "ra1000000000000000001%2F..",
];

/// Sends one request as written; returns the status and body.
async fn raw(base: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Connection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

/// A value each parameter takes when another one carries the payload.
fn valid(param: &str) -> &'static str {
    match param {
        "user" => "jane.doe",
        "group" => "00g00000000000000003",
        "role" => "HELP_DESK_ADMIN",
        "name" => "nobody-here",
        "kid" => "no-such-key",
        "jti" => "0190f1d8-0000-7000-8000-000000000000",
        other => panic!("add a valid value for the path parameter {{{other}}}"),
    }
}

/// A body the route accepts, so the request reaches the part that uses the path.
fn body_for(method: &str, template: &str) -> Option<&'static str> {
    match (method, template) {
        ("PATCH", t) if t.ends_with("/profile") => Some(r#"{"uebaHealth": 10}"#),
        ("POST", t) if t.ends_with("/password") => Some(r#"{"password": "Correct-Horse-9"}"#),
        _ => None,
    }
}

/// Only look-ups may reach Okta for input that names nothing: searches, and GETs of objects by
/// a well-formed id.
fn is_intended_lookup(r: &RecordedRequest) -> bool {
    let segments: Vec<&str> = r.path.split('/').collect();
    let id = |s: &str, prefix: &str| {
        s.len() == 20 && s.starts_with(prefix) && s.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    r.method == "GET"
        && match segments.as_slice() {
            ["", "api", "v1", "users" | "groups"] => true,
            ["", "api", "v1", "users", u] => id(u, "00u"),
            ["", "api", "v1", "users", u, "roles"] => id(u, "00u"),
            ["", "api", "v1", "groups", g] => id(g, "00g"),
            _ => false,
        }
}

#[tokio::test]
async fn no_path_parameter_can_steer_an_okta_request() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let doc: Value =
        serde_json::from_str(include_str!("../../openapi/openapi.json")).expect("openapi.json");
    let mut tried = 0;
    let mut failures = Vec::new();
    for (template, ops) in doc["paths"].as_object().expect("paths") {
        let params: Vec<&str> = template
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        if params.is_empty() {
            continue;
        }
        for method in ops.as_object().expect("ops").keys() {
            let method = method.to_uppercase();
            for target in &params {
                let oversize = "a".repeat(5000);
                for payload in PAYLOADS.iter().copied().chain([oversize.as_str()]) {
                    let mut path = template.clone();
                    for p in &params {
                        let v = if p == target { payload } else { valid(p) };
                        path = path.replace(&format!("{{{p}}}"), v);
                    }
                    s.sandbox.clear_requests();
                    let (status, body) =
                        raw(&s.app.base, &method, &path, body_for(&method, template)).await;
                    tried += 1;
                    let at = format!("{method} {path}");
                    if !(400..500).contains(&status) {
                        failures.push(format!("{at}: answered {status}: {body}"));
                    }
                    if body.contains("panicked") || body.contains("Some(") {
                        failures.push(format!("{at}: internals in the answer: {body}"));
                    }
                    for r in s.sandbox.requests() {
                        if !is_intended_lookup(&r) {
                            failures.push(format!(
                                "{at}: reached Okta as {} {} {:?}",
                                r.method, r.path, r.query
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(tried > 300, "only {tried} requests tried");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn an_unmatched_role_is_a_404_and_nothing_is_removed() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    // The reported exploit: a role id that is a path.
    s.sandbox.clear_requests();
    let (status, body) = raw(
        &s.app.base,
        "DELETE",
        "/v1/users/jane.doe/roles/..%2F..%2F..%2Fgroups%2Fxyz",
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let p: Value = serde_json::from_str(&body).expect("problem");
    assert_eq!(
        p["type"].as_str().map(|t| t.ends_with(":not-found")),
        Some(true),
        "{p}"
    );
    assert!(
        s.sandbox.requests().is_empty(),
        "{:?}",
        s.sandbox.requests()
    );

    // A well-formed assignment id or role type the user does not hold: looked up, not removed.
    for role in ["ra1zzzzzzzzzzzzzzzzz", "SUPER_ADMIN"] {
        s.sandbox.clear_requests();
        let (status, body) = raw(
            &s.app.base,
            "DELETE",
            &format!("/v1/users/jane.doe/roles/{role}"),
            None,
        )
        .await;
        assert_eq!(status, 404, "{role}: {body}");
        assert!(body.contains("role assignments"), "{body}");
        let sent = s.sandbox.requests();
        assert!(sent.iter().all(|r| r.method == "GET"), "{role}: {sent:?}");
        assert!(
            sent.iter()
                .any(|r| r.path == "/api/v1/users/00u00000000000000001/roles"),
            "{role}: {sent:?}"
        );
    }
    // The audit log has the refusals.
    let (_, audit) = s
        .app
        .get_json("/v1/audit?action=user.unassign-role", ADMIN_TOKEN)
        .await;
    let rows = audit["items"]
        .as_array()
        .or(audit.as_array())
        .cloned()
        .unwrap_or_default();
    assert!(rows.len() >= 3, "{audit}");
}
