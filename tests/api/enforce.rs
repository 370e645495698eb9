//! Enforcement over the Okta Management API, against the sandbox's directory.

use reqwest::Method;
use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;

use crate::helpers::{Sandboxed, TestApp, assert_problem, config_for, tempdir};

async fn soc(s: &Sandboxed) -> String {
    s.app
        .client_with("soar", &[Scope::EnforceWrite, Scope::EnforceRead])
        .await
}

/// A help-desk / incident-response client: role assignment and credentials (`enforce:admin`)
/// and look-ups, but no containment.
async fn helpdesk(s: &Sandboxed) -> String {
    s.app
        .client_with("helpdesk", &[Scope::EnforceAdmin, Scope::EnforceRead])
        .await
}

/// A client holding containment and credentials both.
async fn ir(s: &Sandboxed) -> String {
    s.app
        .client_with(
            "ir",
            &[Scope::EnforceWrite, Scope::EnforceAdmin, Scope::EnforceRead],
        )
        .await
}

async fn okta_status(s: &Sandboxed, login: &str) -> String {
    let v: Value = s
        .okta(Method::GET, &format!("/api/v1/users/{login}"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    v["status"].as_str().expect("status").to_owned()
}

#[tokio::test]
async fn suspend_and_unsuspend_with_okta_state_machine_errors() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let (status, body) = s
        .app
        .post_json(
            "/v1/users/jane.doe@example.com/suspend",
            &token,
            &json!({"reason": "EDR: credential theft"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["status"], "SUSPENDED");
    assert_eq!(body["user"]["login"], "jane.doe@example.com");
    let id = body["user"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        body["okta_requests"],
        json!([{"method": "POST", "path": format!("/api/v1/users/{id}/lifecycle/suspend")}])
    );
    assert_eq!(body["reason"], "EDR: credential theft");
    assert_eq!(okta_status(&s, "jane.doe@example.com").await, "SUSPENDED");

    // Suspending a suspended user: Okta's E0000001, passed through as a 409.
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/users/jane.doe@example.com/suspend",
            &token,
            None,
        )
        .await;
    let p = assert_problem(resp, 409).await;
    assert_eq!(p["okta"]["errorCode"], "E0000001", "{p}");
    assert_eq!(p["okta"]["status"], 400);

    // Unsuspend by the login short name; by Okta id works too.
    let (status, body) = s.app.post("/v1/users/jane.doe/unsuspend", &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["status"], "ACTIVE");
    let (status, body) = s
        .app
        .post(&format!("/v1/users/{id}/suspend?dry_run=true"), &token)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dry_run"], true);
    assert_eq!(
        okta_status(&s, &id).await,
        "ACTIVE",
        "a dry run sends nothing"
    );
}

#[tokio::test]
async fn identities_resolve_to_exactly_one_user_or_nothing_is_done() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/users/nobody@example.com/suspend",
            &token,
            None,
        )
        .await;
    let p = assert_problem(resp, 404).await;
    assert!(
        p["detail"]
            .as_str()
            .expect("d")
            .contains("nobody@example.com"),
        "{p}"
    );
    let resp = s
        .app
        .call(Method::POST, "/v1/users/alex.kim/suspend", &token, None)
        .await;
    let p = assert_problem(resp, 409).await;
    let candidates = p["candidates"].as_array().expect("candidates");
    assert_eq!(candidates.len(), 2, "{p}");
    for c in candidates {
        assert!(
            c["id"].is_string()
                && c["login"].is_string()
                && c["display_name"].is_string()
                && c["status"] == "ACTIVE"
        );
    }
    assert_eq!(okta_status(&s, "alex.kim@example.com").await, "ACTIVE");
    assert_eq!(okta_status(&s, "alex.kim@corp.example.com").await, "ACTIVE");
    let (status, body) = s
        .app
        .get_json("/v1/users/alex.kim@corp.example.com", &token)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["okta"]["profile"]["login"],
        "alex.kim@corp.example.com"
    );
}

#[tokio::test]
async fn other_lifecycle_actions_and_their_okta_errors() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let admin = helpdesk(&s).await;
    let (status, body) = s
        .app
        .post(
            "/v1/users/staged.user@example.com/activate?send_email=false",
            &admin,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["result"]["activationUrl"]
            .as_str()
            .is_some_and(|u| u.contains("/tokens/")),
        "{body}"
    );
    assert_eq!(
        body["okta_requests"][0]["query"],
        json!([["sendEmail", "false"]])
    );
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/users/jane.doe@example.com/activate",
            &token,
            None,
        )
        .await;
    assert_eq!(
        assert_problem(resp, 409).await["okta"]["errorCode"],
        "E0000016"
    );
    let (status, body) = s
        .app
        .post("/v1/users/locked.out@example.com/unlock", &token)
        .await;
    assert_eq!(
        (status, body["user"]["status"].as_str()),
        (200, Some("ACTIVE")),
        "{body}"
    );
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/users/john.smith@example.com/unlock",
            &token,
            None,
        )
        .await;
    assert_eq!(
        assert_problem(resp, 409).await["okta"]["errorCode"],
        "E0000032"
    );
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/users/jane.doe@example.com/reactivate",
            &admin,
            None,
        )
        .await;
    assert_eq!(
        assert_problem(resp, 409).await["okta"]["errorCode"],
        "E0000038"
    );
    let (status, body) = s
        .app
        .post("/v1/users/john.smith@example.com/deactivate", &token)
        .await;
    assert_eq!(
        (status, body["user"]["status"].as_str()),
        (200, Some("DEPROVISIONED")),
        "{body}"
    );
    // A body that is not the reason object is refused before anything is sent.
    let resp = s
        .app
        .http
        .post(s.app.url("/v1/users/jane.doe@example.com/suspend"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"why": "x"}"#)
        .send()
        .await
        .expect("send");
    assert_problem(resp, 422).await;
    assert_eq!(okta_status(&s, "jane.doe@example.com").await, "ACTIVE");
}

#[tokio::test]
async fn every_call_is_audited_without_secrets() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    s.app
        .post_json(
            "/v1/users/jane.doe/suspend?dry_run=true",
            &token,
            &json!({"reason": "triage"}),
        )
        .await;
    s.app.post("/v1/users/jane.doe/suspend", &token).await;
    s.app.post("/v1/users/jane.doe/suspend", &token).await; // fails: already suspended
    s.app.post("/v1/users/nobody/suspend", &token).await; // fails: unknown
    let (status, rows) = s
        .app
        .get_json("/v1/audit?action=user.suspend", &token)
        .await;
    assert_eq!(status, 200, "{rows}");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| r["client"] == "soar"));
    let outcomes: Vec<&str> = rows.iter().filter_map(|r| r["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["error", "error", "ok", "ok"], "newest first");
    assert_eq!(rows[1]["detail"]["okta_error_code"], "E0000001");
    assert_eq!(rows[1]["detail"]["okta_status"], 400);
    assert_eq!(rows[3]["detail"]["dry_run"], true);
    assert_eq!(rows[3]["detail"]["reason"], "triage");
    assert!(
        rows[2]["target"]
            .as_str()
            .expect("target")
            .contains("jane.doe@example.com")
    );
    let (_, by_user) = s
        .app
        .get_json("/v1/audit?user=jane.doe@example.com", &token)
        .await;
    assert_eq!(by_user.as_array().map(Vec::len), Some(3));
    let everything = serde_json::to_string(&rows).expect("json");
    assert!(
        !everything.contains(&s.api_token),
        "the Okta API token never reaches the audit log"
    );
    // An admin-only client may read the audit log too.
    let admin = s.app.client_with("auditor", &[Scope::Admin]).await;
    let (status, _) = s.app.get_json("/v1/audit?limit=1", &admin).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn without_okta_credentials_enforcement_refuses_clearly() {
    let dir = tempdir();
    let app = TestApp::spawn_with(config_for(dir.path())).await;
    let token = app.client_with("soar", &[Scope::EnforceWrite]).await;
    let resp = app
        .call(Method::POST, "/v1/users/jane.doe/suspend", &token, None)
        .await;
    let p = assert_problem(resp, 503).await;
    assert!(
        p["detail"]
            .as_str()
            .expect("d")
            .contains("SSF_OKTA__API_TOKEN"),
        "{p}"
    );
}

#[tokio::test]
async fn sessions_and_credentials_send_okta_exact_calls() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let admin = helpdesk(&s).await;
    let jane_id = s.app.get_json("/v1/users/jane.doe", &token).await.1["user"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Clear sessions: OAuth tokens revoked by default.
    let resp = s
        .app
        .call(Method::DELETE, "/v1/users/jane.doe/sessions", &token, None)
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body["okta_requests"],
        json!([{"method": "DELETE", "path": format!("/api/v1/users/{jane_id}/sessions"), "query": [["oauthTokens", "true"]]}])
    );
    let resp = s
        .app
        .http
        .delete(s.app.url(
            "/v1/users/jane.doe/sessions?oauth_tokens=false&forget_devices=false&dry_run=true",
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body["okta_requests"][0]["query"],
        json!([["oauthTokens", "false"], ["forgetDevices", "false"]])
    );

    // Expire password with a temporary one: returned once, never audited.
    let (status, body) = s
        .app
        .post(
            "/v1/users/jane.doe/expire-password?temp_password=true&revoke_sessions=true",
            &admin,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["okta_requests"][0]["path"],
        format!("/api/v1/users/{jane_id}/lifecycle/expire_password_with_temp_password")
    );
    assert_eq!(
        body["okta_requests"][0]["query"],
        json!([["revokeSessions", "true"]])
    );
    let temp = body["result"]["tempPassword"]
        .as_str()
        .expect("temp password")
        .to_owned();
    assert_eq!(body["user"]["status"], "PASSWORD_EXPIRED");
    // Without a temporary password, revoke_sessions becomes a second call.
    let (_, body) = s
        .app
        .post(
            "/v1/users/john.smith/expire-password?revoke_sessions=true&dry_run=true",
            &token,
        )
        .await;
    let calls = body["okta_requests"].as_array().expect("calls");
    assert_eq!(calls.len(), 2);
    assert!(
        calls[0]["path"]
            .as_str()
            .expect("p")
            .ends_with("/lifecycle/expire_password")
    );
    assert_eq!(calls[1]["method"], "DELETE");

    // Reset password without email: the URL comes back; user in RECOVERY.
    let (status, body) = s
        .app
        .post(
            "/v1/users/john.smith/reset-password?send_email=false",
            &admin,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["result"]["resetPasswordUrl"].is_string(), "{body}");
    assert_eq!(
        body["okta_requests"][0]["query"],
        json!([["sendEmail", "false"], ["revokeSessions", "false"]])
    );
    assert_eq!(body["user"]["status"], "RECOVERY");
    let (status, body) = s
        .app
        .post("/v1/users/alex.kim@example.com/reset-factors", &token)
        .await;
    assert_eq!(status, 200, "{body}");

    // Password operations on a deprovisioned user: Okta refuses.
    let resp = s
        .app
        .http
        .post(
            s.app
                .url("/v1/users/former.employee@example.com/reset-password"),
        )
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(
        assert_problem(resp, 409).await["okta"]["errorCode"],
        "E0000038"
    );

    let (_, rows) = s.app.get_json("/v1/audit?limit=100", &token).await;
    let text = rows.to_string();
    assert!(
        !text.contains(&temp),
        "the temporary password is not in the audit log"
    );
    assert!(!text.contains("resetPasswordUrl"));
    assert!(text.contains("user.expire-password") && text.contains("user.clear-sessions"));
}

#[tokio::test]
async fn group_membership_for_quarantine() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let (status, g) = s
        .app
        .get_json("/v1/groups/Restricted%20Users", &token)
        .await;
    assert_eq!(status, 200, "{g}");
    let gid = g["id"].as_str().expect("id").to_owned();
    let resp = s
        .app
        .call(
            Method::PUT,
            "/v1/groups/Restricted%20Users/members/jane.doe",
            &token,
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    let uid = body["user"]["id"].as_str().expect("uid").to_owned();
    assert_eq!(
        body["okta_requests"],
        json!([{"method": "PUT", "path": format!("/api/v1/groups/{gid}/users/{uid}")}])
    );
    let (_, groups) = s.app.get_json("/v1/users/jane.doe/groups", &token).await;
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["profile"]["name"].as_str())
        .collect();
    assert!(names.contains(&"Restricted Users"), "{names:?}");
    let resp = s
        .app
        .call(
            Method::DELETE,
            &format!("/v1/groups/{gid}/members/jane.doe"),
            &token,
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let (_, groups) = s.app.get_json("/v1/users/jane.doe/groups", &token).await;
    assert!(!groups.to_string().contains("Restricted Users"));
    // Unknown group: 404; a group mastered elsewhere: Okta refuses (403 E0000006 → 409).
    let resp = s
        .app
        .call(
            Method::PUT,
            "/v1/groups/Nope/members/jane.doe",
            &token,
            None,
        )
        .await;
    assert_problem(resp, 404).await;
    let resp = s
        .app
        .http
        .put(
            s.app
                .url("/v1/groups/AD%20Domain%20Users/members/john.smith"),
        )
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(
        assert_problem(resp, 409).await["okta"]["errorCode"],
        "E0000006"
    );
    let (_, rows) = s
        .app
        .get_json("/v1/audit?action=user.group-add", &token)
        .await;
    assert_eq!(rows.as_array().map(Vec::len), Some(3), "{rows}");
}

#[tokio::test]
async fn okta_status_pings_and_names_credential_failures() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let (status, body) = s.app.get_json("/v1/okta/status", &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth_mode"], "api_token");
    assert_eq!(body["org_url"], s.org_url.as_str());

    // A wrong API token: 502 naming Okta's E0000011, never the token.
    let other = tempdir();
    let mut config = crate::helpers::config_for(other.path());
    let mut okta = ssf_transmitter::config::OktaConfig::for_org(&s.org_url);
    okta.api_token = Some("00-not-the-right-token".to_owned().into());
    config.okta = Some(okta);
    let app = TestApp::spawn_with(config).await;
    let t = app.client_with("soar", &[Scope::EnforceRead]).await;
    let resp = app.call(Method::GET, "/v1/okta/status", &t, None).await;
    let p = assert_problem(resp, 502).await;
    assert_eq!(p["okta"]["errorCode"], "E0000011");
    assert!(!p.to_string().contains("00-not-the-right-token"));
}

#[tokio::test]
async fn okta_register_cli_creates_or_reuses_the_provider() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let before = s.sandbox.providers();
    assert_eq!(before.len(), 1);
    let work = tempdir();
    let mut cmd = crate::cli::bin(work.path());
    cmd.env("SSF_OKTA__ORG_URL", &s.org_url)
        .env("SSF_OKTA__API_TOKEN", &s.api_token)
        .env("SSF_ISSUER", &s.app.issuer)
        .args(["okta", "register"]);
    // Off the test's runtime thread: the sandbox and the app must keep serving meanwhile.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&before[0].id) && text.contains("ACTIVE"),
        "{text}"
    );
    assert_eq!(
        s.sandbox.providers().len(),
        1,
        "the existing provider was updated, not duplicated"
    );

    // `okta status` shows it; for another issuer it says "not registered" and exits 3.
    for (issuer, code, expect) in [
        (s.app.issuer.clone(), 0, before[0].id.clone()),
        (
            "https://other.example.com".to_owned(),
            3,
            "not registered".to_owned(),
        ),
    ] {
        let mut cmd = crate::cli::bin(work.path());
        cmd.env("SSF_OKTA__ORG_URL", &s.org_url)
            .env("SSF_OKTA__API_TOKEN", &s.api_token)
            .env("SSF_ISSUER", &issuer)
            .args(["okta", "status"]);
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("join")
            .expect("run");
        assert_eq!(out.status.code(), Some(code));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&expect), "{text}");
    }
}

#[tokio::test]
async fn admin_roles_are_listed_assigned_and_removed_by_type() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let admin = helpdesk(&s).await;
    let (_, roles) = s.app.get_json("/v1/users/john.smith/roles", &token).await;
    assert_eq!(roles["roles"][0]["type"], "HELP_DESK_ADMIN", "{roles}");
    let (status, body) = s
        .app
        .post("/v1/users/jane.doe/roles?type=READ_ONLY_ADMIN", &admin)
        .await;
    assert_eq!(status, 200, "{body}");
    let uid = body["user"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        body["okta_requests"],
        json!([{"method": "POST", "path": format!("/api/v1/users/{uid}/roles"), "body": {"type": "READ_ONLY_ADMIN"}}])
    );
    assert_eq!(body["result"]["type"], "READ_ONLY_ADMIN");
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/users/jane.doe/roles?type=READ_ONLY_ADMIN",
            &admin,
            None,
        )
        .await;
    assert_eq!(
        assert_problem(resp, 409).await["okta"]["errorCode"],
        "E0000090"
    );
    let resp = s
        .app
        .call(Method::POST, "/v1/users/jane.doe/roles", &admin, None)
        .await;
    assert_problem(resp, 400).await;
    // Not a standard role (custom roles are not offered): 422 naming the field, nothing sent.
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/users/jane.doe/roles?type=CUSTOM",
            &admin,
            None,
        )
        .await;
    assert_eq!(
        assert_problem(resp, 422).await["errors"][0]["field"],
        "type"
    );
    // Removing by role type resolves the assignment id.
    let ra = body["result"]["id"].as_str().expect("ra").to_owned();
    let resp = s
        .app
        .call(
            Method::DELETE,
            "/v1/users/jane.doe/roles/READ_ONLY_ADMIN",
            &token,
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body["okta_requests"][0]["path"],
        format!("/api/v1/users/{uid}/roles/{ra}")
    );
    let (_, roles) = s.app.get_json("/v1/users/jane.doe/roles", &token).await;
    assert_eq!(roles["roles"], json!([]));
    let resp = s
        .app
        .call(
            Method::DELETE,
            "/v1/users/jane.doe/roles/SUPER_ADMIN",
            &token,
            None,
        )
        .await;
    assert_problem(resp, 404).await;
}

#[tokio::test]
async fn profile_attributes_use_okta_partial_update() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let resp = s
        .app
        .call(
            Method::PATCH,
            "/v1/users/jane.doe/profile?reason=UEBA%20score",
            &token,
            Some(&json!({"uebaHealth": 75})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    let uid = body["user"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        body["okta_requests"],
        json!([{"method": "POST", "path": format!("/api/v1/users/{uid}"), "body": {"profile": {"uebaHealth": 75}}}])
    );
    let (_, user) = s.app.get_json("/v1/users/jane.doe", &token).await;
    assert_eq!(user["okta"]["profile"]["uebaHealth"], 75);
    assert_eq!(
        user["okta"]["profile"]["firstName"], "Jane",
        "other attributes kept"
    );
    for bad in [json!({}), json!({"nested": {"a": 1}})] {
        let resp = s
            .app
            .call(
                Method::PATCH,
                "/v1/users/jane.doe/profile",
                &token,
                Some(&bad),
            )
            .await;
        assert_problem(resp, 422).await;
    }
}

#[tokio::test]
async fn lists_pass_okta_queries_and_the_client_follows_link_pages() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let (status, users) = s
        .app
        .get_json("/v1/users?filter=status%20eq%20%22SUSPENDED%22", &token)
        .await;
    assert_eq!(status, 200, "{users}");
    let logins: Vec<&str> = users
        .as_array()
        .expect("arr")
        .iter()
        .filter_map(|u| u["profile"]["login"].as_str())
        .collect();
    assert_eq!(logins, ["suspended.user@example.com"]);
    let (_, groups) = s.app.get_json("/v1/groups?q=Restr", &token).await;
    assert_eq!(groups[0]["profile"]["name"], "Restricted Users");
    let resp = s
        .app
        .call(Method::GET, "/v1/users?search=a&filter=b", &token, None)
        .await;
    assert_eq!(
        assert_problem(resp, 409).await["okta"]["errorCode"],
        "E0000033"
    );

    // Two users per page: the client follows rel="next" to the end.
    let client =
        ssf_transmitter::okta::OktaClient::with_api_token(&s.org_url, s.api_token.clone().into())
            .expect("client");
    let all = client
        .get_all(
            &ssf_transmitter::okta::OktaCall::new("GET", ssf_transmitter::okta::OktaPath::users())
                .query("limit", "2"),
            100,
        )
        .await
        .expect("pages");
    assert_eq!(all.len(), 10, "every user but the deprovisioned one");
    let capped = client
        .get_all(
            &ssf_transmitter::okta::OktaCall::new("GET", ssf_transmitter::okta::OktaPath::users())
                .query("limit", "2"),
            5,
        )
        .await
        .expect("pages");
    assert_eq!(capped.len(), 5);
}

async fn authn(s: &Sandboxed, login: &str, password: &str) -> (u16, Value) {
    let resp = s
        .app
        .http
        .post(format!("{}/api/v1/authn", s.org_url))
        .json(&json!({"username": login, "password": password}))
        .send()
        .await
        .expect("authn");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn passwords_are_set_or_generated_and_never_recorded() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = helpdesk(&s).await;

    // A dry run shows the exact call with the value redacted, and sets nothing.
    let (status, body) = s
        .app
        .post_json(
            "/v1/users/john.smith/password?dry_run=true",
            &token,
            &json!({"password": "Given-Secret-42x", "reason": "IR-7"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["user"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        body["okta_requests"],
        json!([{"method": "POST", "path": format!("/api/v1/users/{id}"),
                "body": {"credentials": {"password": {"value": "[redacted]"}}}}])
    );
    assert!(body.get("result").is_none(), "{body}");
    assert_eq!(
        authn(&s, "john.smith@example.com", "Given-Secret-42x")
            .await
            .0,
        401
    );

    // A given password is set (Okta's admin set-password) and not echoed.
    let (status, body) = s
        .app
        .post_json(
            "/v1/users/john.smith/password",
            &token,
            &json!({"password": "Given-Secret-42x"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], json!({"password_set": true}));
    assert!(!body.to_string().contains("Given-Secret-42x"));
    let (status, session) = authn(&s, "john.smith@example.com", "Given-Secret-42x").await;
    assert_eq!((status, session["status"].as_str()), (200, Some("SUCCESS")));

    // Generated, with the configured policy (default: 20 characters, every class), returned once.
    let (status, body) = s
        .app
        .post_json(
            "/v1/users/john.smith/password?revoke_sessions=true",
            &token,
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let generated = body["result"]["password"]
        .as_str()
        .expect("password")
        .to_owned();
    assert_eq!(generated.chars().count(), 20);
    assert!(generated.chars().any(|c| c.is_ascii_lowercase()));
    assert!(generated.chars().any(|c| c.is_ascii_uppercase()));
    assert!(generated.chars().any(|c| c.is_ascii_digit()));
    assert!(generated.chars().any(|c| c.is_ascii_punctuation()));
    assert_eq!(
        body["okta_requests"][1],
        json!({"method": "DELETE", "path": format!("/api/v1/users/{id}/sessions"),
               "query": [["oauthTokens", "true"]]})
    );
    assert_eq!(authn(&s, "john.smith@example.com", &generated).await.0, 200);
    assert_eq!(
        authn(&s, "john.smith@example.com", "Given-Secret-42x")
            .await
            .0,
        401,
        "the old password no longer works"
    );

    // The caller's password plus random characters.
    let (status, body) = s
        .app
        .post_json(
            "/v1/users/john.smith/password",
            &token,
            &json!({"password": "Base-Pass-7", "append_random": 6}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let appended = body["result"]["password"]
        .as_str()
        .expect("password")
        .to_owned();
    assert!(appended.starts_with("Base-Pass-7") && appended.chars().count() == 17);
    assert_eq!(authn(&s, "john.smith@example.com", &appended).await.0, 200);

    // Okta's password policy refuses a weak password: 409 with E0000001.
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/users/john.smith/password",
            &token,
            Some(&json!({"password": "weakpass"})),
        )
        .await;
    let p = assert_problem(resp, 409).await;
    assert_eq!(p["okta"]["errorCode"], "E0000001", "{p}");
    assert!(!p.to_string().contains("weakpass"), "{p}");

    // Bad input names the field.
    for (body, field) in [
        (json!({"length": 4}), "length"),
        (json!({"append_random": 3}), "append_random"),
        (json!({"password": ""}), "password"),
        (json!({"password": "Abc-12345", "length": 12}), "length"),
    ] {
        let resp = s
            .app
            .call(
                Method::POST,
                "/v1/users/john.smith/password",
                &token,
                Some(&body),
            )
            .await;
        let p = assert_problem(resp, 422).await;
        assert_eq!(p["errors"][0]["field"], field, "{p}");
    }

    // No password, generated or given, reaches the audit log.
    let (_, rows) = s
        .app
        .get_json("/v1/audit?action=user.set-password", &token)
        .await;
    assert_eq!(rows.as_array().map(Vec::len), Some(5), "{rows}");
    let everything = rows.to_string();
    for secret in [
        "Given-Secret-42x",
        generated.as_str(),
        appended.as_str(),
        "weakpass",
    ] {
        assert!(!everything.contains(secret), "{secret} in the audit log");
    }
}

#[tokio::test]
async fn identity_providers_are_listed_with_okta_filters() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let (status, all) = s.app.get_json("/v1/identity-providers", &token).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all.as_array().map(Vec::len), Some(5), "{all}");
    assert!(all[0]["id"].as_str().is_some_and(|i| i.starts_with("0oa")));
    assert_eq!(all[0]["protocol"]["type"], "SAML2");

    let (_, saml) = s
        .app
        .get_json("/v1/identity-providers?type=SAML2", &token)
        .await;
    let names: Vec<&str> = saml
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, ["Corp ADFS", "Legacy SAML (retired)"]);

    let (_, q) = s.app.get_json("/v1/identity-providers?q=goo", &token).await;
    assert_eq!(q[0]["name"], "Google Workspace");
    assert_eq!(q.as_array().map(Vec::len), Some(1));

    let (_, two) = s
        .app
        .get_json("/v1/identity-providers?limit=2", &token)
        .await;
    assert_eq!(two.as_array().map(Vec::len), Some(2));

    let resp = s
        .app
        .call(
            Method::GET,
            "/v1/identity-providers?type=SAML",
            &token,
            None,
        )
        .await;
    let p = assert_problem(resp, 422).await;
    assert_eq!(p["errors"][0]["field"], "type");

    // A look-up client without enforce:read is refused.
    let signals = s.app.client_with("ueba", &[Scope::SignalsWrite]).await;
    let (status, _) = s.app.get_json("/v1/identity-providers", &signals).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn windows_identities_map_by_configured_rules() {
    let dir = tempdir();
    let s = Sandboxed::start_with(dir.path(), |c, _| {
        let id = &mut c.enforcement.identity;
        id.netbios_domains
            .insert("CORP".into(), "example.com".into());
        id.upn_suffixes
            .insert("corp.local".into(), "example.com".into());
        id.sam_attribute = Some("samAccountName".into());
        id.sam_domains = vec!["emea".into()];
    })
    .await;
    let token = soc(&s).await;
    let login_of = |v: &Value| v["user"]["login"].as_str().unwrap_or_default().to_owned();

    // CORP\jane.doe → jane.doe@example.com (NetBIOS rule; the domain is case-insensitive).
    let (status, body) = s
        .app
        .post("/v1/users/corp%5Cjane.doe/suspend?dry_run=true", &token)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(login_of(&body), "jane.doe@example.com");

    // A UPN with a mapped suffix.
    let (status, body) = s
        .app
        .get_json("/v1/users/john.smith@CORP.LOCAL", &token)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["login"], "john.smith@example.com");

    // An unmapped domain falls back to the sAMAccountName attribute.
    let (status, body) = s
        .app
        .post("/v1/users/EMEA%5Cjohnsmith/suspend?dry_run=true", &token)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(login_of(&body), "john.smith@example.com");

    // A domain neither mapped nor in sam_domains is not guessed at.
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/users/OTHERDOM%5Cjohnsmith/suspend",
            &token,
            None,
        )
        .await;
    let p = assert_problem(resp, 404).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("sam_domains"),
        "{p}"
    );

    // Two users share the sAMAccountName alexkim: 409 with both candidates, nothing done.
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/users/EMEA%5Calexkim/suspend",
            &token,
            None,
        )
        .await;
    let p = assert_problem(resp, 409).await;
    assert_eq!(p["candidates"].as_array().map(Vec::len), Some(2), "{p}");
    assert_eq!(okta_status(&s, "alex.kim@example.com").await, "ACTIVE");

    // Nobody: 404 naming what was searched.
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/users/CORP%5Cnobody/suspend",
            &token,
            None,
        )
        .await;
    let p = assert_problem(resp, 404).await;
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("nobody@example.com") && detail.contains("netbios_domains"),
        "{detail}"
    );
}

#[tokio::test]
async fn windows_identities_without_rules_are_not_guessed() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/users/CORP%5Cjane.doe/suspend",
            &token,
            None,
        )
        .await;
    let p = assert_problem(resp, 404).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no rule maps the domain CORP"),
        "{p}"
    );
    assert_eq!(okta_status(&s, "jane.doe@example.com").await, "ACTIVE");
}

#[tokio::test]
async fn idempotency_key_makes_a_retried_action_happen_once() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = ir(&s).await;
    let send = |key: &'static str, path: &'static str, body: Value| {
        let s = &s;
        let token = token.clone();
        async move {
            s.app
                .http
                .post(s.app.url(path))
                .bearer_auth(&token)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .expect("send")
        }
    };
    let first = send("k-1", "/v1/users/jane.doe/suspend", json!({"reason": "r"})).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("json");

    // The retry gets the first answer, not Okta's "already suspended".
    let again = send("k-1", "/v1/users/jane.doe/suspend", json!({"reason": "r"})).await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(again.json::<Value>().await.expect("json"), first);
    let (_, rows) = s
        .app
        .get_json("/v1/audit?action=user.suspend", &token)
        .await;
    assert_eq!(
        rows.as_array().map(Vec::len),
        Some(1),
        "one action, one audit row"
    );

    // The same key for another request: 422.
    let other = send(
        "k-1",
        "/v1/users/jane.doe/unsuspend",
        json!({"reason": "r"}),
    )
    .await;
    let p = assert_problem(other, 422).await;
    assert_eq!(p["errors"][0]["field"], "Idempotency-Key");

    // Keys are per API client: another client's k-1 is its own.
    let other_client = s.app.client_with("edr", &[Scope::EnforceWrite]).await;
    let resp = s
        .app
        .http
        .post(s.app.url("/v1/users/jane.doe/unsuspend"))
        .bearer_auth(&other_client)
        .header("idempotency-key", "k-1")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);

    // A one-time secret is returned to the first response only.
    let temp = send(
        "k-2",
        "/v1/users/john.smith/expire-password?temp_password=true",
        json!({}),
    )
    .await;
    assert_eq!(temp.status(), 200);
    let temp: Value = temp.json().await.expect("json");
    let password = temp["result"]["tempPassword"]
        .as_str()
        .expect("temp")
        .to_owned();
    let replay: Value = send(
        "k-2",
        "/v1/users/john.smith/expire-password?temp_password=true",
        json!({}),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(replay["result"]["tempPassword"], "[returned once]");
    assert!(!replay.to_string().contains(&password));

    // An unauthenticated request with a key is a plain 401; a bad key is a 400.
    let resp = s
        .app
        .http
        .post(s.app.url("/v1/users/jane.doe/suspend"))
        .header("idempotency-key", "k-1")
        .send()
        .await
        .expect("send");
    assert_problem(resp, 401).await;
    let resp = s
        .app
        .http
        .post(s.app.url("/v1/users/jane.doe/suspend"))
        .bearer_auth(&token)
        .header("idempotency-key", "")
        .send()
        .await
        .expect("send");
    assert_problem(resp, 400).await;
}

#[tokio::test]
async fn admin_api_registers_the_transmitter_with_okta() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let admin = s.app.client_with("okta-admin", &[Scope::Admin]).await;
    let (status, reg) = s.app.get_json("/v1/admin/okta/provider", &admin).await;
    assert_eq!(status, 200, "{reg}");
    assert_eq!(reg["registered"], true);
    assert_eq!(reg["provider"]["status"], "ACTIVE");
    assert_eq!(
        reg["provider"]["settings"]["well_known_url"],
        reg["well_known_url"]
    );
    let id = reg["provider"]["id"].as_str().expect("id").to_owned();

    // Someone deactivates it in Okta; PUT re-registers by issuer + JWKS URL and activates it,
    // updating the same provider.
    let resp = s
        .okta(
            Method::POST,
            &format!("/api/v1/security-events-providers/{id}/lifecycle/deactivate"),
        )
        .send()
        .await
        .expect("deactivate");
    assert_eq!(resp.status(), 200);
    let (_, reg) = s.app.get_json("/v1/admin/okta/provider", &admin).await;
    assert_eq!(reg["provider"]["status"], "INACTIVE");
    let resp = s
        .app
        .http
        .put(s.app.url("/v1/admin/okta/provider"))
        .bearer_auth(&admin)
        .json(&json!({"name": "SOC transmitter", "by": "jwks_url"}))
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), 200);
    let reg: Value = resp.json().await.expect("json");
    assert_eq!(reg["provider"]["id"], id.as_str());
    assert_eq!(reg["provider"]["status"], "ACTIVE");
    assert_eq!(reg["provider"]["name"], "SOC transmitter");
    assert_eq!(reg["provider"]["settings"]["jwks_url"], reg["jwks_url"]);
    assert_eq!(reg["provider"]["settings"]["issuer"], s.app.issuer.as_str());
    assert_eq!(s.sandbox.providers().len(), 1, "updated, not duplicated");

    let (_, rows) = s
        .app
        .get_json("/v1/audit?action=okta.provider.register", &admin)
        .await;
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");

    // Bad body → 422; an enforcement client may not do this.
    let resp = s
        .app
        .http
        .put(s.app.url("/v1/admin/okta/provider"))
        .bearer_auth(&admin)
        .json(&json!({"by": "carrier_pigeon"}))
        .send()
        .await
        .expect("put");
    assert_problem(resp, 422).await;
    let soar = soc(&s).await;
    let (status, _) = s.app.get_json("/v1/admin/okta/provider", &soar).await;
    assert_eq!(status, 403);
}

fn api_faults(
    f: impl FnOnce(&mut ssf_transmitter::sandbox::Faults),
) -> ssf_transmitter::sandbox::Faults {
    let mut faults = ssf_transmitter::sandbox::Faults::default();
    f(&mut faults);
    faults
}

#[tokio::test]
async fn okta_5xx_is_retried_for_reads_and_reported_for_changes() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;

    // Two 503s on a read: retried, and the caller never sees them.
    s.sandbox.set_faults(api_faults(|f| f.api_fail_next = 2));
    let (status, body) = s.app.get_json("/v1/users/jane.doe", &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        s.sandbox.faults().api_fail_next,
        0,
        "both 503s were consumed"
    );

    // A 500 on the lifecycle POST is not retried (it is not idempotent): 502 naming Okta's
    // answer, the user unchanged, the failure audited with Okta's status and code.
    s.sandbox.set_faults(api_faults(|f| {
        f.api_fail_next = 1;
        f.api_fail_status = Some(500);
        f.api_path_contains = Some("/lifecycle/suspend".into());
    }));
    let resp = s
        .app
        .call(Method::POST, "/v1/users/jane.doe/suspend", &token, None)
        .await;
    let p = assert_problem(resp, 502).await;
    assert_eq!(p["okta"]["status"], 500, "{p}");
    assert_eq!(p["okta"]["errorCode"], "E0000009");
    assert_eq!(okta_status(&s, "jane.doe@example.com").await, "ACTIVE");
    let (_, rows) = s
        .app
        .get_json("/v1/audit?action=user.suspend", &token)
        .await;
    assert_eq!(rows[0]["outcome"], "error");
    assert_eq!(rows[0]["detail"]["okta_status"], 500);
    assert_eq!(rows[0]["detail"]["okta_error_code"], "E0000009");

    // Still failing after the retries: 502, not a hang.
    s.sandbox.set_faults(api_faults(|f| f.api_fail_next = 10));
    let resp = s
        .app
        .call(Method::GET, "/v1/users/jane.doe", &token, None)
        .await;
    assert_problem(resp, 502).await;
}

#[tokio::test]
async fn okta_429_waits_for_the_reset_or_answers_429_with_retry_after() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;

    // A short reset is waited out: the action happens, late.
    s.sandbox.set_faults(api_faults(|f| {
        f.api_rate_limit_next = 1;
        f.api_rate_limit_reset_secs = Some(1);
        f.api_path_contains = Some("/lifecycle/suspend".into());
    }));
    let started = std::time::Instant::now();
    let (status, body) = s.app.post("/v1/users/jane.doe/suspend", &token).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(okta_status(&s, "jane.doe@example.com").await, "SUSPENDED");

    // A reset beyond the bounded wait (30 s): 429 now, with Retry-After, nothing done.
    s.sandbox.set_faults(api_faults(|f| {
        f.api_rate_limit_next = 1;
        f.api_rate_limit_reset_secs = Some(120);
    }));
    let resp = s
        .app
        .call(Method::POST, "/v1/users/jane.doe/unsuspend", &token, None)
        .await;
    let retry_after: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((118..=120).contains(&retry_after), "{retry_after}");
    let p = assert_problem(resp, 429).await;
    assert!(
        p["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("okta-rate-limited")),
        "{p}"
    );
    assert_eq!(okta_status(&s, "jane.doe@example.com").await, "SUSPENDED");
}

#[tokio::test]
async fn a_failed_follow_up_call_reports_what_was_done() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = helpdesk(&s).await;
    // The password is set; revoking the sessions then fails (503 after the retries).
    s.sandbox.set_faults(api_faults(|f| {
        f.api_fail_next = 10;
        f.api_path_contains = Some("/sessions".into());
    }));
    let (status, body) = s
        .app
        .post_json(
            "/v1/users/john.smith/password?revoke_sessions=true",
            &token,
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["user"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        body["okta_requests"].as_array().map(Vec::len),
        Some(1),
        "only what was done: {body}"
    );
    assert_eq!(
        body["incomplete"]["failed_request"]["path"],
        format!("/api/v1/users/{id}/sessions")
    );
    assert!(
        body["incomplete"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("503")
    );
    let generated = body["result"]["password"]
        .as_str()
        .expect("the password is not lost");
    assert_eq!(authn(&s, "john.smith@example.com", generated).await.0, 200);
    let (_, rows) = s
        .app
        .get_json("/v1/audit?action=user.set-password", &token)
        .await;
    assert_eq!(rows[0]["outcome"], "error");
    assert!(
        rows[0]["detail"]["incomplete"]["failed_request"]
            .as_str()
            .is_some_and(|r| r.starts_with("DELETE "))
    );
    assert!(!rows.to_string().contains(generated));
}
