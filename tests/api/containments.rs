//! Containment playbooks against the sandbox: the exact Okta writes of a containment and of its
//! release, failures, dry runs, scopes, and the durable release timer.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;
use ssf_transmitter::clock::ManualClock;

use crate::helpers::{Sandboxed, assert_problem, config_for, tempdir};

async fn soc(s: &Sandboxed) -> String {
    s.app
        .client_with(
            "soar",
            &[Scope::EnforceWrite, Scope::EnforceRead, Scope::SignalsWrite],
        )
        .await
}

async fn okta_user(s: &Sandboxed, login: &str) -> Value {
    s.okta(Method::GET, &format!("/api/v1/users/{login}"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json")
}

async fn group_id(s: &Sandboxed, name: &str) -> String {
    let groups: Value = s
        .okta(Method::GET, "/api/v1/groups")
        .query(&[("q", name)])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    groups
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["profile"]["name"] == name)
        .and_then(|g| g["id"].as_str())
        .expect("group")
        .to_owned()
}

async fn members(s: &Sandboxed, gid: &str) -> Vec<String> {
    let users: Value = s
        .okta(Method::GET, &format!("/api/v1/groups/{gid}/users"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    users
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|u| u["id"].as_str().map(str::to_owned))
        .collect()
}

/// The Management API writes the sandbox received since the log was cleared, as
/// `METHOD path?query`.
fn writes(s: &Sandboxed) -> Vec<String> {
    s.sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| {
            let q: Vec<String> = r.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if q.is_empty() {
                format!("{} {}", r.method, r.path)
            } else {
                format!("{} {}?{}", r.method, r.path, q.join("&"))
            }
        })
        .collect()
}

#[tokio::test]
async fn a_playbook_runs_in_order_and_its_release_undoes_exactly_that() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let jane = okta_user(&s, "jane.doe@example.com").await;
    let uid = jane["id"].as_str().expect("id").to_owned();
    let restricted = group_id(&s, "Restricted Users").await;
    assert!(!members(&s, &restricted).await.contains(&uid));
    s.sandbox.clear_requests();

    let (status, c) = s
        .app
        .post_json(
            "/v1/containments",
            &token,
            &json!({
                "user": "jane.doe@example.com",
                "steps": [
                    {"action": "clear_sessions"},
                    {"action": "suspend"},
                    {"action": "add_to_group", "group": "Restricted Users"},
                    {"action": "set_profile", "attributes": {"uebaHealth": 10}},
                    {"action": "signal", "level": "high"}
                ],
                "reason": "EDR: credential theft on laptop-42"
            }),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("ctn_") && id.len() == 36, "{id}");
    assert_eq!(c["status"], "active", "{c}");
    assert_eq!(
        c["user"],
        json!({"id": uid, "login": "jane.doe@example.com"})
    );
    let statuses: Vec<&str> = c["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, ["done"; 5], "{c}");
    assert!(c.get("release_at").is_none());
    assert_eq!(
        writes(&s),
        [
            format!("DELETE /api/v1/users/{uid}/sessions?oauthTokens=true"),
            format!("POST /api/v1/users/{uid}/lifecycle/suspend"),
            format!("PUT /api/v1/groups/{restricted}/users/{uid}"),
            format!("POST /api/v1/users/{uid}"),
        ]
    );
    let profile_write = s
        .sandbox
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path == format!("/api/v1/users/{uid}"))
        .expect("profile write");
    assert_eq!(
        profile_write.body,
        Some(json!({"profile": {"uebaHealth": 10}}))
    );
    assert_eq!(okta_user(&s, &uid).await["status"], "SUSPENDED");
    assert!(members(&s, &restricted).await.contains(&uid));
    // The signal went through the outbox as a user-risk-change for jane.
    let jti = c["steps"][4]["jti"].as_str().expect("jti").to_owned();
    let (st, sig) = s
        .app
        .get_json(&format!("/v1/signals/{jti}"), crate::helpers::ADMIN_TOKEN)
        .await;
    assert_eq!(st, 200, "{sig}");

    // Read back, list by user and status.
    let (st, got) = s
        .app
        .get_json(&format!("/v1/containments/{id}"), &token)
        .await;
    assert_eq!(st, 200);
    assert_eq!(got["id"], id);
    assert_eq!(got["undo"].as_array().map(Vec::len), Some(4), "{got}");
    let (st, list) = s
        .app
        .get_json(
            "/v1/containments?user=jane.doe@example.com&status=active",
            &token,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let (_, none) = s
        .app
        .get_json("/v1/containments?status=released", &token)
        .await;
    assert_eq!(none, json!([]));

    // The release: exactly the reverse, nothing more.
    s.sandbox.clear_requests();
    let (st, r) = s
        .app
        .post_json(
            &format!("/v1/containments/{id}/release"),
            &token,
            &json!({}),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["status"], "released", "{r}");
    assert_eq!(r["release"]["trigger"], "manual");
    assert_eq!(
        writes(&s),
        [
            format!("POST /api/v1/users/{uid}"),
            format!("DELETE /api/v1/groups/{restricted}/users/{uid}"),
            format!("POST /api/v1/users/{uid}/lifecycle/unsuspend"),
        ]
    );
    let restore = s
        .sandbox
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path == format!("/api/v1/users/{uid}"))
        .expect("restore");
    assert_eq!(restore.body, Some(json!({"profile": {"uebaHealth": null}})));
    let after = okta_user(&s, &uid).await;
    assert_eq!(after["status"], "ACTIVE");
    assert!(!members(&s, &restricted).await.contains(&uid));
    // The low signal is queued behind the high one.
    let undo_signal = r["undo"]
        .as_array()
        .expect("undo")
        .iter()
        .find(|u| u["action"] == "signal")
        .expect("signal undo")
        .clone();
    assert_eq!(undo_signal["state"], "done", "{r}");

    // Released once: a second release is refused and sends nothing.
    s.sandbox.clear_requests();
    let resp = s
        .app
        .call(
            Method::POST,
            &format!("/v1/containments/{id}/release"),
            &token,
            None,
        )
        .await;
    let p = assert_problem(resp, 409).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("released"),
        "{p}"
    );
    assert!(writes(&s).is_empty());

    // Audit: the containment and its release.
    let (_, audit) = s
        .app
        .get_json(
            "/v1/audit?action=containment.release",
            crate::helpers::ADMIN_TOKEN,
        )
        .await;
    assert_eq!(audit.as_array().map(Vec::len), Some(1), "{audit}");
    assert_eq!(audit[0]["detail"]["containment"], id);
}

#[tokio::test]
async fn a_group_the_user_was_already_in_is_neither_added_nor_removed() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let engineering = group_id(&s, "Engineering").await;
    let member = members(&s, &engineering).await[0].clone();
    s.sandbox.clear_requests();
    let (status, c) = s
        .app
        .post_json(
            "/v1/containments",
            &token,
            &json!({"user": member, "steps": [{"action": "suspend"}, {"action": "add_to_group", "group": engineering}]}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["status"], "active");
    assert!(
        c["steps"][1]["note"]
            .as_str()
            .unwrap_or_default()
            .contains("already a member")
    );
    assert_eq!(
        writes(&s),
        [format!("POST /api/v1/users/{member}/lifecycle/suspend")]
    );
    s.sandbox.clear_requests();
    let id = c["id"].as_str().expect("id");
    let (st, r) = s
        .app
        .post_json(
            &format!("/v1/containments/{id}/release"),
            &token,
            &json!({}),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["status"], "released");
    assert_eq!(
        writes(&s),
        [format!("POST /api/v1/users/{member}/lifecycle/unsuspend")]
    );
    assert!(members(&s, &engineering).await.contains(&member));
}

#[tokio::test]
async fn the_first_failed_step_skips_the_rest_unless_continue_on_error() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let steps = json!([{"action": "suspend"}, {"action": "clear_sessions"}]);
    s.sandbox.clear_requests();
    let (status, c) = s
        .app
        .post_json(
            "/v1/containments",
            &token,
            &json!({"user": "suspended.user@example.com", "steps": steps}),
        )
        .await;
    // Okta's "already in that state" is a failed step in a single containment.
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["status"], "failed");
    assert_eq!(c["steps"][0]["status"], "failed");
    assert!(
        c["steps"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("E0000001"),
        "{c}"
    );
    assert_eq!(c["steps"][1]["status"], "skipped");
    assert_eq!(writes(&s).len(), 1, "{:?}", writes(&s));

    let (status, c) = s
        .app
        .post_json(
            "/v1/containments",
            &token,
            &json!({"user": "suspended.user@example.com", "steps": steps, "continue_on_error": true}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["status"], "failed");
    assert_eq!(c["steps"][1]["status"], "done");
    // Nothing was changed that a release would undo.
    assert!(c.get("undo").is_none(), "{c}");
}

#[tokio::test]
async fn a_dry_run_by_okta_ids_sends_nothing_at_all_and_lists_the_plan() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let uid = okta_user(&s, "john.smith@example.com").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let gid = group_id(&s, "Restricted Users").await;
    s.sandbox.clear_requests();
    let (status, c) = s
        .app
        .post_json(
            "/v1/containments",
            &token,
            &json!({"user": uid, "dry_run": true, "release_after": 600, "steps": [
                {"action": "clear_sessions"}, {"action": "suspend"},
                {"action": "add_to_group", "group": gid}, {"action": "expire_password"},
                {"action": "reset_password"}, {"action": "set_profile", "attributes": {"uebaHealth": 5}}
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["status"], "planned");
    assert_eq!(c["user"], json!({"id": uid, "login": null}));
    assert!(
        s.sandbox.requests().is_empty(),
        "{:?}",
        s.sandbox.requests()
    );
    let planned: Vec<Vec<&str>> = c["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|st| {
            assert_eq!(st["status"], "planned");
            st["okta_requests"]
                .as_array()
                .expect("requests")
                .iter()
                .map(|r| r.as_str().expect("str"))
                .collect()
        })
        .collect();
    assert_eq!(
        planned,
        vec![
            vec![format!("DELETE /api/v1/users/{uid}/sessions").as_str()],
            vec![format!("POST /api/v1/users/{uid}/lifecycle/suspend").as_str()],
            vec![
                format!("GET /api/v1/users/{uid}/groups").as_str(),
                format!("PUT /api/v1/groups/{gid}/users/{uid}").as_str()
            ],
            vec![format!("POST /api/v1/users/{uid}/lifecycle/expire_password").as_str()],
            vec![format!("POST /api/v1/users/{uid}/lifecycle/reset_password").as_str()],
            vec![format!("POST /api/v1/users/{uid}").as_str()],
        ]
    );
    // A planned containment is never released.
    let id = c["id"].as_str().expect("id");
    let resp = s
        .app
        .call(
            Method::POST,
            &format!("/v1/containments/{id}/release"),
            &token,
            None,
        )
        .await;
    assert_problem(resp, 409).await;
    assert_eq!(okta_user(&s, &uid).await["status"], "ACTIVE");
}

#[tokio::test]
async fn scopes_allow_lists_and_bad_input_are_refused_before_anything_runs() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let reader = s.app.client_with("reader", &[Scope::EnforceRead]).await;
    let writer = s.app.client_with("writer", &[Scope::EnforceWrite]).await;
    let body = json!({"user": "jane.doe@example.com", "steps": [{"action": "suspend"}]});
    s.sandbox.clear_requests();
    let resp = s
        .app
        .call(Method::POST, "/v1/containments", &reader, Some(&body))
        .await;
    assert_problem(resp, 403).await;
    // A signal step needs signals:write too.
    let with_signal = json!({"user": "jane.doe@example.com", "steps": [{"action": "suspend"}, {"action": "signal", "level": "high"}]});
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/containments",
            &writer,
            Some(&with_signal),
        )
        .await;
    let p = assert_problem(resp, 403).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("signals:write"),
        "{p}"
    );
    // Identity attributes are outside the default allow-list.
    let login_change = json!({"user": "jane.doe@example.com", "steps": [{"action": "suspend"}, {"action": "set_profile", "attributes": {"login": "evil@example.com"}}]});
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/containments",
            &writer,
            Some(&login_change),
        )
        .await;
    let p = assert_problem(resp, 403).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("profile_attributes"),
        "{p}"
    );
    for (bad, field) in [
        (
            json!({"user": "jane.doe@example.com", "steps": []}),
            "steps",
        ),
        (
            json!({"user": "jane.doe@example.com", "steps": [{"action": "assign_role"}]}),
            "steps",
        ),
        (
            json!({"user": "jane.doe@example.com", "steps": [{"action": "suspend", "extra": 1}]}),
            "steps",
        ),
        (
            json!({"user": "", "steps": [{"action": "suspend"}]}),
            "user",
        ),
        (
            json!({"user": "a\r\nb", "steps": [{"action": "suspend"}]}),
            "user",
        ),
        (
            json!({"user": "x".repeat(600), "steps": [{"action": "suspend"}]}),
            "user",
        ),
        (
            json!({"user": "jane.doe@example.com", "steps": [{"action": "suspend"}], "release_after": 0}),
            "release_after",
        ),
        (
            json!({"user": "jane.doe@example.com", "steps": [{"action": "add_to_group", "group": ""}]}),
            "steps",
        ),
        (
            json!({"user": "jane.doe@example.com", "steps": [{"action": "suspend"}], "reason": "r".repeat(1001)}),
            "reason",
        ),
        (
            json!({"user": "jane.doe@example.com", "steps": [{"action": "suspend"}], "surprise": true}),
            "surprise",
        ),
    ] {
        let resp = s
            .app
            .call(Method::POST, "/v1/containments", &writer, Some(&bad))
            .await;
        let p = assert_problem(resp, 422).await;
        assert!(p.to_string().contains(field), "{bad} → {p}");
    }
    // Unknown and ambiguous users: nothing runs, nothing is stored.
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/containments",
            &writer,
            Some(&json!({"user": "nobody@example.com", "steps": [{"action": "suspend"}]})),
        )
        .await;
    assert_problem(resp, 404).await;
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/containments",
            &writer,
            Some(&json!({"user": "alex.kim", "steps": [{"action": "suspend"}]})),
        )
        .await;
    let p = assert_problem(resp, 409).await;
    assert_eq!(p["candidates"].as_array().map(Vec::len), Some(2), "{p}");
    assert!(writes(&s).is_empty(), "{:?}", writes(&s));
    let (_, list) = s
        .app
        .get_json("/v1/containments", crate::helpers::ADMIN_TOKEN)
        .await;
    assert_eq!(list, json!([]));
    // Ids that steer nowhere.
    for id in [
        "../x",
        "ctn_%2F..",
        "ctn_0123",
        "ctn_0123456789abcdef0123456789ABCDEF",
        "%3Fa=b",
    ] {
        let (st, _) = s
            .app
            .get_json(
                &format!("/v1/containments/{id}"),
                crate::helpers::ADMIN_TOKEN,
            )
            .await;
        assert_eq!(st, 404, "{id}");
    }
}

#[tokio::test]
async fn an_idempotency_key_replay_returns_the_same_containment_and_acts_once() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let body = json!({"user": "john.smith@example.com", "steps": [{"action": "suspend"}]});
    s.sandbox.clear_requests();
    let send = || {
        s.app
            .http
            .post(s.app.url("/v1/containments"))
            .bearer_auth(&token)
            .header("idempotency-key", "playbook-run-7")
            .json(&body)
            .send()
    };
    let first = send().await.expect("send");
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("json");
    let again = send().await.expect("send");
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(writes(&s).len(), 1);
}

#[tokio::test]
async fn the_timer_releases_at_its_time_never_before_and_once() {
    let dir = tempdir();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let s = Sandboxed::start_clocked(config_for(dir.path()), |_, _| {}, clock.clone()).await;
    let token = soc(&s).await;
    let (status, c) = s
        .app
        .post_json(
            "/v1/containments",
            &token,
            &json!({"user": "john.smith@example.com", "steps": [{"action": "suspend"}], "release_after": 3600}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().expect("id").to_owned();
    let release_at =
        chrono::DateTime::parse_from_rfc3339(c["release_at"].as_str().expect("release_at"))
            .expect("rfc3339");
    let created =
        chrono::DateTime::parse_from_rfc3339(c["created_at"].as_str().expect("created_at"))
            .expect("rfc3339");
    assert_eq!((release_at - created).num_seconds(), 3600);
    let uid = c["user"]["id"].as_str().expect("uid").to_owned();
    s.sandbox.clear_requests();
    // One second early: nothing.
    clock.advance(chrono::Duration::seconds(3599));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, now) = s
        .app
        .get_json(&format!("/v1/containments/{id}"), &token)
        .await;
    assert_eq!(now["status"], "active");
    assert!(writes(&s).is_empty());
    // Due: released within a second, by the timer, once.
    clock.advance(chrono::Duration::seconds(1));
    let mut released = Value::Null;
    for _ in 0..40 {
        let (_, v) = s
            .app
            .get_json(&format!("/v1/containments/{id}"), &token)
            .await;
        if v["status"] == "released" {
            released = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(released["status"], "released", "{released}");
    assert_eq!(released["release"]["trigger"], "timer");
    assert_eq!(released["release"]["by"]["name"], "soar");
    clock.advance(chrono::Duration::seconds(600));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        writes(&s),
        [format!("POST /api/v1/users/{uid}/lifecycle/unsuspend")]
    );
}
