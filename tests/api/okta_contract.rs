//! Contract test: every Okta Management API request the product sends is one Okta's own OpenAPI
//! spec defines — method + path template, query parameter names (and values, where the spec
//! has an enum or a boolean/integer type) and top-level request-body properties.
//!
//! The spec's operations are in `tests/fixtures/okta-operations.json`, generated from Okta's
//! `management-minimal.yaml` by `scripts/okta-spec-extract.py` (see its docstring to
//! regenerate). The test drives every enforcement and look-up route for real against the
//! sandbox, then checks each request the sandbox recorded.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;
use ssf_transmitter::sandbox::RecordedRequest;

use crate::helpers::{Sandboxed, tempdir};

const FIXTURE: &str = include_str!("../fixtures/okta-operations.json");

#[derive(Debug, Deserialize)]
struct Fixture {
    source: Value,
    prefixes: Vec<String>,
    paths: BTreeMap<String, BTreeMap<String, Operation>>,
}

#[derive(Debug, Deserialize)]
struct Operation {
    query: BTreeMap<String, Param>,
    body_properties: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct Param {
    #[serde(rename = "enum")]
    allowed: Option<Vec<Value>>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Okta's operations, with path templates split into segments for matching.
struct Spec {
    fixture: Fixture,
    templates: Vec<(String, Vec<String>)>,
}

fn is_param(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

impl Spec {
    fn load() -> Spec {
        let fixture: Fixture = serde_json::from_str(FIXTURE).expect("okta-operations.json");
        let templates = fixture
            .paths
            .keys()
            .map(|t| (t.clone(), t.split('/').map(str::to_owned).collect()))
            .collect();
        Spec { fixture, templates }
    }

    /// The one spec template `path` matches. `{param}` segments match any one non-empty
    /// segment; as OpenAPI says, a template with more literal segments wins (e.g.
    /// `/api/v1/groups/rules` over `/api/v1/groups/{groupId}`), and a tie is an error.
    fn template(&self, path: &str) -> Result<&str, String> {
        let segments: Vec<&str> = path.split('/').collect();
        let mut best: Vec<(&str, usize)> = Vec::new();
        for (template, parts) in &self.templates {
            if parts.len() != segments.len() {
                continue;
            }
            let fits = parts
                .iter()
                .zip(&segments)
                .all(|(t, s)| if is_param(t) { !s.is_empty() } else { t == s });
            if !fits {
                continue;
            }
            let literal = parts.iter().filter(|t| !is_param(t)).count();
            match best.first() {
                Some((_, l)) if *l > literal => {}
                Some((_, l)) if *l == literal => best.push((template, literal)),
                _ => best = vec![(template, literal)],
            }
        }
        match best.as_slice() {
            [(t, _)] => Ok(t),
            [] if !self
                .fixture
                .prefixes
                .iter()
                .any(|p| path == p || path.starts_with(&format!("{p}/"))) =>
            {
                Err(format!(
                    "{path} is outside the operations extracted from Okta's spec ({:?}); extend \
                     scripts/okta-spec-extract.py",
                    self.fixture.prefixes
                ))
            }
            [] => Err(format!("{path} matches no path in Okta's spec")),
            many => Err(format!(
                "{path} matches several paths in Okta's spec: {:?}",
                many.iter().map(|(t, _)| *t).collect::<Vec<_>>()
            )),
        }
    }

    /// Checks one request; `Ok` is the operation's `(method, template)`, `Err` lists every
    /// violation.
    fn check(&self, r: &RecordedRequest) -> Result<(String, String), Vec<String>> {
        let at = format!("{} {}", r.method, r.path);
        let template = self
            .template(&r.path)
            .map_err(|e| vec![format!("{at}: {e}")])?;
        let Some(op) = self
            .fixture
            .paths
            .get(template)
            .and_then(|ops| ops.get(&r.method))
        else {
            let methods: Vec<&String> = self.fixture.paths[template].keys().collect();
            return Err(vec![format!(
                "{at}: Okta's spec has no {} {template} (only {methods:?})",
                r.method
            )]);
        };
        let mut violations = Vec::new();
        for (name, value) in &r.query {
            let Some(param) = op.query.get(name) else {
                violations.push(format!(
                    "{at}: query parameter `{name}` is not defined for {} {template} (Okta \
                     defines {:?})",
                    r.method,
                    op.query.keys().collect::<Vec<_>>()
                ));
                continue;
            };
            if let Some(allowed) = &param.allowed {
                let ok = allowed.iter().any(|a| match a {
                    Value::String(s) => s == value,
                    other => serde_json::from_str::<Value>(value).ok().as_ref() == Some(other),
                });
                if !ok {
                    violations.push(format!(
                        "{at}: `{name}={value}` is not one of Okta's values {allowed:?}"
                    ));
                }
            }
            match param.kind.as_deref() {
                Some("boolean") if value != "true" && value != "false" => violations.push(format!(
                    "{at}: `{name}={value}` must be a boolean (`true` or `false`)"
                )),
                Some("integer") if value.parse::<i64>().is_err() => {
                    violations.push(format!("{at}: `{name}={value}` must be an integer"))
                }
                _ => {}
            }
        }
        match (&r.body, &op.body_properties) {
            (None, _) => {}
            (Some(_), None) => violations.push(format!(
                "{at}: sends a JSON body, but Okta's {} {template} takes none",
                r.method
            )),
            (Some(Value::Object(body)), Some(allowed)) => {
                for key in body.keys() {
                    if !allowed.contains(key) {
                        violations.push(format!(
                            "{at}: body property `{key}` is not in Okta's request schema \
                             {allowed:?}"
                        ));
                    }
                }
            }
            (Some(other), Some(_)) => {
                violations.push(format!("{at}: body is not a JSON object: {other}"))
            }
        }
        if violations.is_empty() {
            Ok((r.method.clone(), template.to_owned()))
        } else {
            Err(violations)
        }
    }
}

fn request(method: &str, path_and_query: &str, body: Option<Value>) -> RecordedRequest {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    RecordedRequest {
        method: method.into(),
        path: path.into(),
        query: url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        body,
    }
}

#[test]
fn the_checker_rejects_requests_okta_does_not_define() {
    let spec = Spec::load();
    assert!(
        spec.fixture.source["version"].is_string(),
        "{}",
        spec.fixture.source
    );
    let ok = |m: &str, p: &str, b: Option<Value>| spec.check(&request(m, p, b));
    let bad = |m: &str, p: &str, b: Option<Value>| -> String {
        match spec.check(&request(m, p, b)) {
            Ok(op) => panic!("{m} {p} passed as {op:?}"),
            Err(v) => v.join("\n"),
        }
    };

    // Accepted: what Okta defines.
    let id = "00u00000000000000001";
    assert_eq!(
        ok(
            "POST",
            &format!(
                "/api/v1/users/{id}/lifecycle/reset_password?sendEmail=false&revokeSessions=true"
            ),
            None
        ),
        Ok((
            "POST".into(),
            "/api/v1/users/{id}/lifecycle/reset_password".into()
        ))
    );
    assert!(ok("GET", "/api/v1/idps?type=SAML2&limit=20", None).is_ok());
    assert!(
        ok(
            "POST",
            &format!("/api/v1/users/{id}"),
            Some(json!({"profile": {"x": 1}}))
        )
        .is_ok()
    );
    // The literal template wins over `{groupId}`.
    assert_eq!(
        ok("GET", "/api/v1/groups/rules", None).map(|(_, t)| t),
        Ok("/api/v1/groups/rules".into())
    );

    // A boolean that is not one, and an undefined parameter.
    let v = bad(
        "POST",
        &format!("/api/v1/users/{id}/lifecycle/suspend?sendEmail=maybe"),
        None,
    );
    assert!(v.contains("`sendEmail` is not defined"), "{v}");
    let v = bad(
        "POST",
        &format!("/api/v1/users/{id}/lifecycle/activate?sendEmail=maybe"),
        None,
    );
    assert!(v.contains("must be a boolean"), "{v}");
    let v = bad(
        "DELETE",
        &format!("/api/v1/users/{id}/sessions?revokeAll=true"),
        None,
    );
    assert!(v.contains("`revokeAll` is not defined"), "{v}");
    // A value outside the spec's enum, and an integer that is not one.
    let v = bad("GET", "/api/v1/idps?type=CARRIER_PIGEON&limit=ten", None);
    assert!(v.contains("not one of Okta's values"), "{v}");
    assert!(v.contains("must be an integer"), "{v}");
    // Unknown path, unknown method, out-of-scope path.
    let v = bad(
        "POST",
        &format!("/api/v1/users/{id}/lifecycle/quarantine"),
        None,
    );
    assert!(v.contains("matches no path"), "{v}");
    let v = bad("PATCH", &format!("/api/v1/users/{id}"), None);
    assert!(v.contains("has no PATCH"), "{v}");
    let v = bad("GET", "/api/v1/logs", None);
    assert!(v.contains("outside the operations"), "{v}");
    // Body: an unknown top-level property, and a body where Okta takes none.
    let v = bad(
        "POST",
        &format!("/api/v1/users/{id}"),
        Some(json!({"profile": {}, "password": "x"})),
    );
    assert!(v.contains("body property `password`"), "{v}");
    let v = bad(
        "POST",
        &format!("/api/v1/users/{id}/lifecycle/suspend"),
        Some(json!({"reason": "x"})),
    );
    assert!(v.contains("takes none"), "{v}");
}

/// Calls the app and asserts 200; returns the body.
async fn call(
    s: &Sandboxed,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = s
        .app
        .http
        .request(method.clone(), s.app.url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{method} {path}: {v}");
    v
}

/// A GET with query parameters (URL-encoded by reqwest); asserts 200.
async fn get_query(s: &Sandboxed, token: &str, path: &str, query: &[(&str, &str)]) -> Value {
    let resp = s
        .app
        .http
        .get(s.app.url(path))
        .query(query)
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "GET {path} {query:?}: {v}");
    v
}

/// The provider id, from `GET /v1/admin/okta/provider`.
async fn reg_id(s: &Sandboxed, admin: &str) -> String {
    let reg = call(s, admin, Method::GET, "/v1/admin/okta/provider", None).await;
    reg["provider"]["id"]
        .as_str()
        .expect("provider id")
        .to_owned()
}

#[tokio::test]
async fn every_okta_request_the_product_sends_is_in_oktas_spec() {
    use Method as M;
    let spec = Spec::load();
    let dir = tempdir();
    // Start-up registers the provider (GET, POST, lifecycle/activate): product calls too, so
    // the log is not cleared.
    let s = Sandboxed::start(dir.path()).await;
    let soar = s
        .app
        .client_with(
            "soar",
            &[Scope::EnforceWrite, Scope::EnforceAdmin, Scope::EnforceRead],
        )
        .await;
    let admin = s.app.client_with("okta-admin", &[Scope::Admin]).await;
    let reason = Some(json!({"reason": "contract test"}));

    // Look-ups.
    call(&s, &soar, M::GET, "/v1/okta/status", None).await;
    let jane = call(&s, &soar, M::GET, "/v1/users/jane.doe@example.com", None).await;
    let jane_id = jane["user"]["id"].as_str().expect("id").to_owned();
    call(&s, &soar, M::GET, &format!("/v1/users/{jane_id}"), None).await;
    call(&s, &soar, M::GET, "/v1/users/jane.doe", None).await;
    for q in [
        [("q", "jane")],
        [("filter", "status eq \"SUSPENDED\"")],
        [("search", "profile.lastName eq \"Kim\"")],
        [("limit", "2")],
        [("after", "00u00000000000000001")],
    ] {
        let users = get_query(&s, &soar, "/v1/users", &q).await;
        assert!(
            users.as_array().is_some_and(|u| !u.is_empty()),
            "{q:?}: {users}"
        );
    }
    call(
        &s,
        &soar,
        M::GET,
        "/v1/users/john.smith@example.com/groups",
        None,
    )
    .await;
    call(&s, &soar, M::GET, "/v1/groups/00g00000000000000002", None).await;
    call(&s, &soar, M::GET, "/v1/groups/Engineering", None).await;
    get_query(&s, &soar, "/v1/groups", &[("q", "Eng")]).await;
    get_query(
        &s,
        &soar,
        "/v1/groups",
        &[("search", "type eq \"OKTA_GROUP\"")],
    )
    .await;
    get_query(&s, &soar, "/v1/identity-providers", &[("q", "Corp")]).await;
    get_query(&s, &soar, "/v1/identity-providers", &[("type", "SAML2")]).await;
    let idps = get_query(&s, &soar, "/v1/identity-providers", &[("limit", "3")]).await;
    assert_eq!(idps.as_array().map(Vec::len), Some(3), "{idps}");

    // Lifecycle, each on a user whose status allows it.
    let u = "/v1/users";
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/jane.doe@example.com/suspend"),
        reason.clone(),
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/suspended.user@example.com/unsuspend"),
        None,
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/provisioned.user@example.com/reactivate?send_email=false"),
        None,
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/recovery.user@example.com/reactivate?send_email=true"),
        None,
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/staged.user@example.com/activate?send_email=false"),
        None,
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/former.employee@example.com/activate"),
        None,
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/alex.kim@corp.example.com/deactivate"),
        reason.clone(),
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/provisioned.user@example.com/deactivate?send_email=true"),
        None,
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/locked.out@example.com/unlock"),
        None,
    )
    .await;

    // Sessions, passwords, factors, profile.
    call(
        &s,
        &soar,
        M::DELETE,
        &format!("{u}/jane.doe@example.com/sessions"),
        None,
    )
    .await;
    call(
        &s,
        &soar,
        M::DELETE,
        &format!("{u}/john.smith@example.com/sessions?oauth_tokens=false&forget_devices=true"),
        reason.clone(),
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/john.smith@example.com/password"),
        Some(json!({"password": "Correct-Horse-9", "reason": "contract test"})),
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/jane.doe@example.com/password"),
        None,
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/alex.kim@example.com/password?revoke_sessions=true"),
        Some(json!({"password": "Quarantine-7Q", "append_random": 4})),
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/alex.kim@example.com/expire-password?revoke_sessions=true"),
        None,
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!(
            "{u}/expired.user@example.com/expire-password?temp_password=true&revoke_sessions=true"
        ),
        None,
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/locked.out@example.com/reset-password"),
        None,
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!(
            "{u}/suspended.user@example.com/reset-password?send_email=false&revoke_sessions=true"
        ),
        None,
    )
    .await;
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/john.smith@example.com/reset-factors"),
        reason.clone(),
    )
    .await;
    call(
        &s,
        &soar,
        M::PATCH,
        &format!("{u}/john.smith@example.com/profile?reason=contract"),
        Some(json!({"uebaHealth": 75})),
    )
    .await;

    // Roles: list, assign, unassign by type and by assignment id.
    let roles = call(
        &s,
        &soar,
        M::GET,
        &format!("{u}/john.smith@example.com/roles"),
        None,
    )
    .await;
    let help_desk = roles["roles"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["type"] == "HELP_DESK_ADMIN"))
        .and_then(|r| r["id"].as_str())
        .expect("seeded HELP_DESK_ADMIN assignment")
        .to_owned();
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/john.smith@example.com/roles?type=READ_ONLY_ADMIN"),
        reason.clone(),
    )
    .await;
    call(
        &s,
        &soar,
        M::DELETE,
        &format!("{u}/john.smith@example.com/roles/READ_ONLY_ADMIN"),
        None,
    )
    .await;
    call(
        &s,
        &soar,
        M::DELETE,
        &format!("{u}/john.smith@example.com/roles/{help_desk}"),
        None,
    )
    .await;

    // Group membership (group by name, user by login).
    call(
        &s,
        &soar,
        M::PUT,
        "/v1/groups/Restricted%20Users/members/jane.doe@example.com",
        reason.clone(),
    )
    .await;
    call(
        &s,
        &soar,
        M::DELETE,
        "/v1/groups/Restricted%20Users/members/jane.doe@example.com",
        None,
    )
    .await;

    // The temporary-password mode without revoking sessions (revokeSessions=false).
    call(
        &s,
        &soar,
        M::POST,
        &format!("{u}/john.smith@example.com/expire-password?temp_password=true"),
        None,
    )
    .await;

    // Provider registration, both ways.
    call(&s, &admin, M::GET, "/v1/admin/okta/provider", None).await;
    call(
        &s,
        &admin,
        M::PUT,
        "/v1/admin/okta/provider",
        Some(json!({"by": "jwks_url"})),
    )
    .await;
    call(
        &s,
        &admin,
        M::PUT,
        "/v1/admin/okta/provider",
        Some(json!({"name": "SOC transmitter", "by": "well_known_url"})),
    )
    .await;
    // Someone deactivates the provider in Okta (the test, not the product: kept out of the
    // log); PUT re-registers and activates it.
    let mut recorded = s.sandbox.requests();
    s.sandbox.clear_requests();
    let id = reg_id(&s, &admin).await;
    let resp = s
        .okta(
            M::POST,
            &format!("/api/v1/security-events-providers/{id}/lifecycle/deactivate"),
        )
        .send()
        .await
        .expect("deactivate");
    assert_eq!(resp.status(), 200);
    let _ = reg_id(&s, &admin).await;
    recorded.extend(
        s.sandbox
            .requests()
            .into_iter()
            .filter(|r| !r.path.ends_with("/lifecycle/deactivate")),
    );
    s.sandbox.clear_requests();
    let reg = call(&s, &admin, M::PUT, "/v1/admin/okta/provider", None).await;
    assert_eq!(reg["provider"]["status"], "ACTIVE", "{reg}");
    recorded.extend(s.sandbox.requests());

    // Check every request the sandbox saw.
    let mut violations = Vec::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut seen_params: BTreeSet<(String, String, String)> = BTreeSet::new();
    for r in &recorded {
        match spec.check(r) {
            Ok((method, template)) => {
                for (name, _) in &r.query {
                    seen_params.insert((method.clone(), template.clone(), name.clone()));
                }
                seen.insert((method, template));
            }
            Err(v) => violations.extend(v),
        }
    }
    violations.sort();
    violations.dedup();
    assert!(
        violations.is_empty(),
        "{} of {} Okta requests are not in Okta's spec ({}):\n  {}",
        violations.len(),
        recorded.len(),
        spec.fixture.source,
        violations.join("\n  ")
    );

    // Not vacuous: every operation the product uses was exercised, with its parameters.
    let expected_ops: &[(&str, &str)] = &[
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/users/{id}"),
        ("POST", "/api/v1/users/{id}"),
        ("POST", "/api/v1/users/{id}/lifecycle/suspend"),
        ("POST", "/api/v1/users/{id}/lifecycle/unsuspend"),
        ("POST", "/api/v1/users/{id}/lifecycle/activate"),
        ("POST", "/api/v1/users/{id}/lifecycle/reactivate"),
        ("POST", "/api/v1/users/{id}/lifecycle/deactivate"),
        ("POST", "/api/v1/users/{id}/lifecycle/unlock"),
        ("POST", "/api/v1/users/{id}/lifecycle/expire_password"),
        (
            "POST",
            "/api/v1/users/{id}/lifecycle/expire_password_with_temp_password",
        ),
        ("POST", "/api/v1/users/{id}/lifecycle/reset_password"),
        ("POST", "/api/v1/users/{id}/lifecycle/reset_factors"),
        ("DELETE", "/api/v1/users/{userId}/sessions"),
        ("GET", "/api/v1/users/{id}/groups"),
        ("GET", "/api/v1/users/{userId}/roles"),
        ("POST", "/api/v1/users/{userId}/roles"),
        ("DELETE", "/api/v1/users/{userId}/roles/{roleAssignmentId}"),
        ("GET", "/api/v1/groups"),
        ("GET", "/api/v1/groups/{groupId}"),
        ("PUT", "/api/v1/groups/{groupId}/users/{userId}"),
        ("DELETE", "/api/v1/groups/{groupId}/users/{userId}"),
        ("GET", "/api/v1/idps"),
        ("GET", "/api/v1/security-events-providers"),
        ("POST", "/api/v1/security-events-providers"),
        (
            "PUT",
            "/api/v1/security-events-providers/{securityEventProviderId}",
        ),
        (
            "POST",
            "/api/v1/security-events-providers/{securityEventProviderId}/lifecycle/activate",
        ),
    ];
    let missing: Vec<_> = expected_ops
        .iter()
        .filter(|(m, t)| !seen.contains(&((*m).to_owned(), (*t).to_owned())))
        .collect();
    assert!(
        missing.is_empty(),
        "not exercised: {missing:?}; seen: {seen:#?}"
    );
    let expected_params: &[(&str, &str, &str)] = &[
        ("GET", "/api/v1/users", "q"),
        ("GET", "/api/v1/users", "filter"),
        ("GET", "/api/v1/users", "search"),
        ("GET", "/api/v1/users", "limit"),
        ("GET", "/api/v1/users", "after"),
        ("GET", "/api/v1/groups", "q"),
        ("GET", "/api/v1/groups", "search"),
        ("GET", "/api/v1/groups", "limit"),
        ("GET", "/api/v1/idps", "q"),
        ("GET", "/api/v1/idps", "type"),
        ("GET", "/api/v1/idps", "limit"),
        ("POST", "/api/v1/users/{id}/lifecycle/activate", "sendEmail"),
        (
            "POST",
            "/api/v1/users/{id}/lifecycle/reactivate",
            "sendEmail",
        ),
        (
            "POST",
            "/api/v1/users/{id}/lifecycle/deactivate",
            "sendEmail",
        ),
        (
            "POST",
            "/api/v1/users/{id}/lifecycle/reset_password",
            "sendEmail",
        ),
        (
            "POST",
            "/api/v1/users/{id}/lifecycle/reset_password",
            "revokeSessions",
        ),
        (
            "POST",
            "/api/v1/users/{id}/lifecycle/expire_password_with_temp_password",
            "revokeSessions",
        ),
        ("DELETE", "/api/v1/users/{userId}/sessions", "oauthTokens"),
        ("DELETE", "/api/v1/users/{userId}/sessions", "forgetDevices"),
    ];
    let missing: Vec<_> = expected_params
        .iter()
        .filter(|(m, t, p)| {
            !seen_params.contains(&((*m).to_owned(), (*t).to_owned(), (*p).to_owned()))
        })
        .collect();
    assert!(missing.is_empty(), "parameters not exercised: {missing:?}");
    // Bodies were checked too, and the password never reached the log.
    let bodies: Vec<&Value> = recorded.iter().filter_map(|r| r.body.as_ref()).collect();
    assert!(
        bodies
            .iter()
            .any(|b| b["credentials"]["password"]["value"] == "[redacted]"),
        "{bodies:?}"
    );
    assert!(bodies.iter().any(|b| b["profile"]["uebaHealth"] == 75));
    assert!(bodies.iter().any(|b| b["type"] == "READ_ONLY_ADMIN"));
    assert!(bodies.iter().any(|b| b["settings"]["jwks_url"].is_string()));
    let log =
        serde_json::to_string(&recorded.iter().map(|r| &r.body).collect::<Vec<_>>()).expect("json");
    assert!(!log.contains("Correct-Horse-9") && !log.contains("Quarantine-7Q"));
}

/// The product's own allow-lists agree with Okta's spec.
#[test]
fn product_idp_types_are_the_specs() {
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/okta-operations.json")).expect("fixture");
    let spec: Vec<&str> = fixture["paths"]["/api/v1/idps"]["GET"]["query"]["type"]["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(spec, ssf_transmitter::enforcement::IDP_TYPES);
}
