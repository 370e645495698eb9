//! Least privilege for enforcement: `enforce:write` contains and undoes, `enforce:admin` assigns
//! roles, sets passwords and receives credentials; configured allow-lists bound both. A refusal
//! sends nothing to Okta.

use reqwest::Method;
use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;

use crate::helpers::{ADMIN_TOKEN, Sandboxed, assert_problem, tempdir};

/// Calls that take over an account or hand a credential back.
const ADMIN_CALLS: &[(&str, &str)] = &[
    ("POST", "/v1/users/jane.doe/roles?type=READ_ONLY_ADMIN"),
    ("POST", "/v1/users/john.smith/password"),
    (
        "POST",
        "/v1/users/alex.kim@example.com/expire-password?temp_password=true",
    ),
    ("POST", "/v1/users/jane.doe/reset-password?send_email=false"),
    ("POST", "/v1/users/staged.user/activate?send_email=false"),
    (
        "POST",
        "/v1/users/provisioned.user/reactivate?send_email=false",
    ),
    // Okta's default for reactivate is not to e-mail: the link comes back.
    ("POST", "/v1/users/recovery.user/reactivate"),
];

/// Containment and its undo.
const WRITE_CALLS: &[(&str, &str)] = &[
    ("POST", "/v1/users/jane.doe/suspend"),
    ("POST", "/v1/users/jane.doe/unsuspend"),
    ("DELETE", "/v1/users/jane.doe/sessions"),
    ("POST", "/v1/users/jane.doe/expire-password"),
    ("POST", "/v1/users/john.smith/reset-password"),
    ("POST", "/v1/users/alex.kim@example.com/reset-factors"),
    ("POST", "/v1/users/locked.out/unlock"),
    ("PUT", "/v1/groups/00g00000000000000003/members/jane.doe"),
    ("DELETE", "/v1/groups/00g00000000000000003/members/jane.doe"),
    ("DELETE", "/v1/users/john.smith/roles/HELP_DESK_ADMIN"),
    ("POST", "/v1/users/former.employee/activate"),
];

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).expect("method")
}

#[tokio::test]
async fn containment_cannot_take_over_an_account() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let write = s
        .app
        .client_with("soar", &[Scope::EnforceWrite, Scope::EnforceRead])
        .await;
    let admin = s.app.client_with("helpdesk", &[Scope::EnforceAdmin]).await;

    // enforce:write alone: 403 naming enforce:admin, nothing sent — dry runs included.
    for (m, path) in ADMIN_CALLS {
        for p in [
            path.to_string(),
            format!(
                "{path}{}dry_run=true",
                if path.contains('?') { '&' } else { '?' }
            ),
        ] {
            s.sandbox.clear_requests();
            let resp = s.app.call(method(m), &p, &write, Some(&json!({}))).await;
            assert_eq!(
                resp.headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some(r#"Bearer error="insufficient_scope", scope="enforce:admin""#),
                "{m} {p}"
            );
            let body = assert_problem(resp, 403).await;
            assert_eq!(
                body["type"],
                "urn:ssf-transmitter:problem:insufficient-scope"
            );
            assert!(s.sandbox.requests().is_empty(), "{m} {p} reached Okta");
        }
    }
    // enforce:admin alone: containment is not its business.
    for (m, path) in WRITE_CALLS {
        let resp = s.app.call(method(m), path, &admin, None).await;
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some(r#"Bearer error="insufficient_scope", scope="enforce:write""#),
            "{m} {path}"
        );
        assert_problem(resp, 403).await;
    }
    // enforce:write alone does all of containment and its undo.
    for (m, path) in WRITE_CALLS {
        let resp = s.app.call(method(m), path, &write, None).await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "{m} {path}: {body}");
    }
    // enforce:admin alone is enough for the credential calls.
    for (m, path) in ADMIN_CALLS {
        let resp = s.app.call(method(m), path, &admin, Some(&json!({}))).await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "{m} {path}: {body}");
        assert!(hands_back(&body), "{m} {path}: {body}");
    }
    // enforce:admin alone may retry safely with an Idempotency-Key, like enforce:write.
    let send = |key: &'static str| {
        s.app
            .http
            .post(
                s.app
                    .url("/v1/users/john.smith/reset-password?send_email=false"),
            )
            .bearer_auth(&admin)
            .header("idempotency-key", key)
            .send()
    };
    let first = send("hd-1").await.expect("send");
    assert_eq!(first.status(), 200);
    let again = send("hd-1").await.expect("send");
    assert_eq!(again.status(), 200);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    // The bootstrap admin token holds every scope.
    let (status, body) = s
        .app
        .post(
            "/v1/users/john.smith/reset-password?send_email=false",
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The credential calls answer with something in `result` (a role assignment, a password, a
/// link) — the reason they need the stronger scope.
fn hands_back(body: &Value) -> bool {
    body["result"].is_object()
}

#[tokio::test]
async fn roles_beyond_the_allow_list_are_refused_before_anything_is_sent() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let admin = s
        .app
        .client_with("helpdesk", &[Scope::EnforceAdmin, Scope::EnforceRead])
        .await;
    for role in ["SUPER_ADMIN", "ORG_ADMIN"] {
        s.sandbox.clear_requests();
        let (status, body) = s
            .app
            .post(&format!("/v1/users/jane.doe/roles?type={role}"), &admin)
            .await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["type"], "urn:ssf-transmitter:problem:not-permitted");
        assert_eq!(
            body["detail"],
            format!("{role} is assignable only when [enforcement] assignable_roles lists it")
        );
        assert!(
            s.sandbox.requests().is_empty(),
            "{role}: {:?}",
            s.sandbox.requests()
        );
    }
    let (_, audit) = s
        .app
        .get_json("/v1/audit?action=user.assign-role", ADMIN_TOKEN)
        .await;
    let rows = audit.as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{audit}");
    assert!(
        rows.iter()
            .all(|r| r["outcome"] == "error" && r["client"] == "helpdesk")
    );

    // A listed role becomes assignable; the list is then the whole allow-list.
    let dir = tempdir();
    let s = Sandboxed::start_with(dir.path(), |c, _| {
        c.enforcement.assignable_roles = Some(vec!["SUPER_ADMIN".into()]);
    })
    .await;
    let (status, body) = s
        .app
        .post("/v1/users/jane.doe/roles?type=SUPER_ADMIN", ADMIN_TOKEN)
        .await;
    assert_eq!(status, 200, "{body}");
    s.sandbox.clear_requests();
    let (status, body) = s
        .app
        .post("/v1/users/jane.doe/roles?type=READ_ONLY_ADMIN", ADMIN_TOKEN)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["detail"],
        "READ_ONLY_ADMIN is not in [enforcement] assignable_roles, the roles this service may assign"
    );
    assert!(s.sandbox.requests().is_empty());
}

#[tokio::test]
async fn identity_attributes_are_not_writable_unless_listed() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let soar = s.app.client_with("soar", &[Scope::EnforceWrite]).await;
    for attrs in [
        json!({"email": "attacker@evil.example"}),
        json!({"login": "attacker@evil.example"}),
        json!({"uebaHealth": 10, "secondEmail": "a@evil.example"}),
        json!({"mobilePhone": "+15550100"}),
        json!({"primaryPhone": "+15550100"}),
    ] {
        s.sandbox.clear_requests();
        let resp = s
            .app
            .call(
                Method::PATCH,
                "/v1/users/jane.doe/profile",
                &soar,
                Some(&attrs),
            )
            .await;
        let body = assert_problem(resp, 403).await;
        assert_eq!(body["type"], "urn:ssf-transmitter:problem:not-permitted");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("[enforcement] profile_attributes")),
            "{body}"
        );
        assert!(s.sandbox.requests().is_empty(), "{attrs}");
    }
    let resp = s
        .app
        .call(
            Method::PATCH,
            "/v1/users/jane.doe/profile",
            &soar,
            Some(&json!({"uebaHealth": 10, "title": "Quarantined"})),
        )
        .await;
    assert_eq!(resp.status(), 200);

    // A list is the allow-list: only what it names.
    let dir = tempdir();
    let s = Sandboxed::start_with(dir.path(), |c, _| {
        c.enforcement.profile_attributes = Some(vec!["uebaHealth".into(), "email".into()]);
    })
    .await;
    let resp = s
        .app
        .call(
            Method::PATCH,
            "/v1/users/jane.doe/profile",
            ADMIN_TOKEN,
            Some(&json!({"uebaHealth": 20, "email": "jane.doe@example.com"})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    s.sandbox.clear_requests();
    let resp = s
        .app
        .call(
            Method::PATCH,
            "/v1/users/jane.doe/profile",
            ADMIN_TOKEN,
            Some(&json!({"title": "x"})),
        )
        .await;
    let body = assert_problem(resp, 403).await;
    assert_eq!(
        body["detail"],
        "not in [enforcement] profile_attributes, the attributes this service may change: title"
    );
    assert!(s.sandbox.requests().is_empty());
}

#[test]
fn configured_allow_lists_are_validated() {
    let dir = tempdir();
    let mut c = crate::helpers::config_for(dir.path());
    c.enforcement.assignable_roles = Some(vec!["ROOT".into()]);
    c.enforcement.profile_attributes = Some(vec!["bad name".into()]);
    let e = c.validate().expect_err("invalid").to_string();
    assert!(e.contains("enforcement.assignable_roles"), "{e}");
    assert!(
        e.contains("'ROOT' is not one of Okta's standard admin roles"),
        "{e}"
    );
    assert!(e.contains("enforcement.profile_attributes"), "{e}");
}
