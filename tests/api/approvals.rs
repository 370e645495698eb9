//! Human approval: pending containments, the webhook, the link's page (over plain HTTP here; in
//! a real browser in `browser.rs`), the API decisions, and everything that must run nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;
use ssf_transmitter::clock::ManualClock;

use crate::helpers::{ADMIN_TOKEN, Sandboxed, assert_problem, config_for, tempdir};

/// Captures what the approval webhook receives.
pub struct Webhook {
    pub url: String,
    pub received: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    pub async fn start() -> Webhook {
        let received: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
                let sink = sink.clone();
                async move {
                    sink.lock().expect("lock").push(v);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Webhook {
            url: format!("http://{addr}/hook"),
            received,
        }
    }

    /// The first announcement, waiting for it.
    pub async fn first(&self) -> Value {
        for _ in 0..100 {
            if let Some(v) = self.received.lock().expect("lock").first().cloned() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the webhook got nothing");
    }
}

pub async fn with_approvals(
    dir: &std::path::Path,
    hook: &Webhook,
    tweak: impl FnOnce(&mut ssf_transmitter::config::ApprovalConfig),
    clock: Arc<dyn ssf_transmitter::clock::Clock>,
) -> Sandboxed {
    let mut config = config_for(dir);
    config.approval.webhook_url = Some(hook.url.clone().into());
    tweak(&mut config.approval);
    Sandboxed::start_clocked(config, |_, _| {}, clock).await
}

fn writes(s: &Sandboxed) -> Vec<String> {
    s.sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn set_cookie_value(resp: &reqwest::Response) -> String {
    let c = resp.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    c.split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("cookie value")
}

fn csrf_field(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[at..].split('"').next().expect("value").to_owned()
}

#[tokio::test]
async fn an_ambiguous_user_waits_for_a_person_who_picks_on_the_link_once() {
    let dir = tempdir();
    let hook = Webhook::start().await;
    let s = with_approvals(
        dir.path(),
        &hook,
        |a| a.on_ambiguous = true,
        Arc::new(ssf_transmitter::clock::SystemClock),
    )
    .await;
    let edr = s
        .app
        .client_with("edr", &[Scope::EnforceWrite, Scope::EnforceRead])
        .await;
    s.sandbox.clear_requests();
    let (st, c) = s
        .app
        .post_json(
            "/v1/containments",
            &edr,
            &json!({"user": "alex.kim", "steps": [{"action": "suspend"}, {"action": "clear_sessions"}], "reason": "EDR: AD_DOMAIN\\akim on laptop-9"}),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    assert_eq!(c["status"], "pending_approval");
    assert_eq!(c["user"], json!({"id": null, "login": null}));
    assert!(
        c["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["status"] == "pending")
    );
    let approval_id = c["approval_id"].as_str().expect("approval_id").to_owned();
    assert!(writes(&s).is_empty(), "nothing runs before the decision");

    // The webhook: Slack-compatible text, the id and the link.
    let note = hook.first().await;
    assert_eq!(note["approval_id"], approval_id);
    let url = note["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with(&format!("{}/approvals/{approval_id}?t=", s.app.issuer)),
        "{url}"
    );
    assert!(
        note["text"].as_str().expect("text").contains("edr"),
        "{note}"
    );

    // The API lists it (admin), with both candidates and their groups; enforce scopes do not.
    let (st, pending) = s
        .app
        .get_json("/v1/approvals?status=pending", ADMIN_TOKEN)
        .await;
    assert_eq!(st, 200);
    assert_eq!(pending[0]["id"], approval_id);
    let candidates = pending[0]["candidates"]
        .as_array()
        .expect("candidates")
        .clone();
    assert_eq!(candidates.len(), 2);
    let (st, _) = s.app.get_json("/v1/approvals", &edr).await;
    assert_eq!(st, 403);

    // The page: escaped, self-contained, with a CSRF cookie.
    let http = crate::helpers::http_client();
    let resp = http.get(&url).send().await.expect("page");
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert!(
        h["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("default-src 'none'")
    );
    let cookie = set_cookie_value(&resp);
    let set_cookie = h["set-cookie"].to_str().expect("cookie");
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let html = resp.text().await.expect("html");
    for c in &candidates {
        assert!(html.contains(c["login"].as_str().expect("login")), "{html}");
    }
    assert!(html.contains("AD_DOMAIN\\akim on laptop-9"));
    assert!(html.contains("<td>Everyone</td>"), "groups shown: {html}");
    for external in ["src=", "<link", "url(", "@import", "<base", "<script"] {
        assert!(!html.contains(external), "{external} in the page");
    }
    let csrf = csrf_field(&html);
    assert_eq!(csrf, cookie);
    let token = url.split("?t=").nth(1).expect("token").to_owned();
    let chosen = candidates[1]["id"].as_str().expect("id").to_owned();
    let post_url = format!("{}/approvals/{approval_id}", s.app.issuer);
    let form = |t: &str, csrf: &str| {
        vec![
            ("t".to_owned(), t.to_owned()),
            ("csrf".to_owned(), csrf.to_owned()),
            ("decision".to_owned(), "approve".to_owned()),
            ("candidate".to_owned(), chosen.clone()),
        ]
    };
    // A cross-site post: no cookie (SameSite) → nothing runs.
    let r = http
        .post(&post_url)
        .header("origin", "https://evil.example")
        .form(&form(&token, &csrf))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    let r = http
        .post(&post_url)
        .form(&form(&token, &csrf))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403, "no CSRF cookie");
    let r = http
        .post(&post_url)
        .header("cookie", format!("ssf_approval_csrf={cookie}"))
        .form(&form("wrong-token", &csrf))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 404, "not the link's token");
    assert!(writes(&s).is_empty());

    // The person approves for the second candidate.
    let r = http
        .post(&post_url)
        .header("cookie", format!("ssf_approval_csrf={cookie}"))
        .header("origin", crate::helpers::origin(&s.app.issuer))
        .form(&form(&token, &csrf))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let done = r.text().await.expect("html");
    assert!(
        done.contains(candidates[1]["login"].as_str().expect("login")),
        "{done}"
    );
    assert_eq!(
        writes(&s),
        [
            format!("POST /api/v1/users/{chosen}/lifecycle/suspend"),
            format!("DELETE /api/v1/users/{chosen}/sessions"),
        ]
    );
    let cid = c["id"].as_str().expect("id");
    let (_, after) = s
        .app
        .get_json(&format!("/v1/containments/{cid}"), &edr)
        .await;
    assert_eq!(after["status"], "active", "{after}");
    assert_eq!(after["user"]["id"], chosen);
    assert_eq!(after["approval_id"], approval_id);

    // Used: the link answers 410, re-posting runs nothing.
    s.sandbox.clear_requests();
    let r = http.get(&url).send().await.expect("page");
    assert_eq!(r.status(), 410);
    let r = http
        .post(&post_url)
        .header("cookie", format!("ssf_approval_csrf={cookie}"))
        .form(&form(&token, &csrf))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 410);
    assert!(writes(&s).is_empty());
    let (_, decided) = s
        .app
        .get_json("/v1/approvals?status=approved", ADMIN_TOKEN)
        .await;
    assert_eq!(decided[0]["decision"]["by"], "approval link");
    assert_eq!(decided[0]["decision"]["candidate"], chosen);
    for action in ["approval.request", "approval.approve"] {
        let (_, rows) = s
            .app
            .get_json(&format!("/v1/audit?action={action}"), ADMIN_TOKEN)
            .await;
        assert_eq!(rows.as_array().map(Vec::len), Some(1), "{action}: {rows}");
    }
}

#[tokio::test]
async fn listed_actions_and_protected_groups_wait_and_a_rejection_runs_nothing() {
    let dir = tempdir();
    let hook = Webhook::start().await;
    let s = with_approvals(
        dir.path(),
        &hook,
        |a| {
            a.actions = vec!["deactivate".into()];
            a.protected_groups = vec!["Engineering".into()];
        },
        Arc::new(ssf_transmitter::clock::SystemClock),
    )
    .await;
    let edr = s
        .app
        .client_with("edr", &[Scope::EnforceWrite, Scope::EnforceRead])
        .await;
    s.sandbox.clear_requests();
    let (st, c) = s
        .app
        .post_json("/v1/containments", &edr, &json!({"user": "jane.doe@example.com", "steps": [{"action": "suspend"}, {"action": "deactivate"}]}))
        .await;
    assert_eq!(st, 201, "{c}");
    assert_eq!(c["status"], "pending_approval");
    assert_eq!(c["user"]["login"], "jane.doe@example.com");
    let aid = c["approval_id"].as_str().expect("approval").to_owned();
    let (_, a) = s
        .app
        .get_json("/v1/approvals?status=pending", ADMIN_TOKEN)
        .await;
    assert!(
        a[0]["why"].as_str().expect("why").contains("deactivate"),
        "{a}"
    );
    // Reject through the API: nothing ran, the containment reads rejected.
    let (st, r) = s
        .app
        .post_json(
            &format!("/v1/approvals/{aid}/reject"),
            ADMIN_TOKEN,
            &json!({}),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["containment"]["status"], "rejected");
    assert_eq!(r["approval"]["status"], "rejected");
    let (st, _) = s
        .app
        .post_json(
            &format!("/v1/approvals/{aid}/reject"),
            ADMIN_TOKEN,
            &json!({}),
        )
        .await;
    assert_eq!(st, 409);
    let (st, _) = s
        .app
        .post_json(
            &format!("/v1/approvals/{aid}/approve"),
            ADMIN_TOKEN,
            &json!({"candidate": c["user"]["id"]}),
        )
        .await;
    assert_eq!(st, 409);
    assert!(writes(&s).is_empty(), "{:?}", writes(&s));

    // A member of a protected group waits for any step; the API approves it, once.
    let engineer = "john.smith@example.com";
    let (st, c) = s
        .app
        .post_json(
            "/v1/containments",
            &edr,
            &json!({"user": engineer, "steps": [{"action": "clear_sessions"}]}),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    assert_eq!(c["status"], "pending_approval", "{c}");
    let aid = c["approval_id"].as_str().expect("approval").to_owned();
    let uid = c["user"]["id"].as_str().expect("uid").to_owned();
    let resp = s
        .app
        .call(
            Method::POST,
            &format!("/v1/approvals/{aid}/approve"),
            ADMIN_TOKEN,
            Some(&json!({"candidate": "00u99999999999999999"})),
        )
        .await;
    assert_problem(resp, 422).await;
    let (st, r) = s
        .app
        .post_json(
            &format!("/v1/approvals/{aid}/approve"),
            ADMIN_TOKEN,
            &json!({"candidate": uid}),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["containment"]["status"], "active");
    assert_eq!(r["containment"]["id"], c["id"]);
    assert_eq!(writes(&s), [format!("DELETE /api/v1/users/{uid}/sessions")]);
    // Not listed, not protected: runs at once.
    let (_, c) = s
        .app
        .post_json(
            "/v1/containments",
            &edr,
            &json!({"user": "alex.kim@example.com", "steps": [{"action": "clear_sessions"}]}),
        )
        .await;
    assert_eq!(c["status"], "active", "{c}");
    // Ids that steer nowhere.
    for id in ["../x", "apr_%2F", "apr_123", "%3Fa"] {
        let (st, _) = s
            .app
            .post_json(
                &format!("/v1/approvals/{id}/reject"),
                ADMIN_TOKEN,
                &json!({}),
            )
            .await;
        assert_eq!(st, 404, "{id}");
        let r = crate::helpers::http_client()
            .get(format!("{}/approvals/{id}?t=x", s.app.base))
            .send()
            .await
            .expect("page");
        assert_eq!(r.status(), 404, "{id}");
    }
}

#[tokio::test]
async fn an_expired_link_answers_410_and_runs_nothing() {
    let dir = tempdir();
    let hook = Webhook::start().await;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let s = with_approvals(
        dir.path(),
        &hook,
        |a| {
            a.on_ambiguous = true;
            a.link_ttl = 600;
        },
        clock.clone(),
    )
    .await;
    let edr = s.app.client_with("edr", &[Scope::EnforceWrite]).await;
    let (st, c) = s
        .app
        .post_json(
            "/v1/containments",
            &edr,
            &json!({"user": "alex.kim", "steps": [{"action": "suspend"}]}),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(c["status"], "pending_approval");
    let url = hook.first().await["url"].as_str().expect("url").to_owned();
    let http = crate::helpers::http_client();
    let page = http.get(&url).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let cookie = set_cookie_value(&page);
    let html = page.text().await.expect("html");
    let csrf = csrf_field(&html);
    clock.advance(chrono::Duration::seconds(601));
    s.sandbox.clear_requests();
    assert_eq!(http.get(&url).send().await.expect("page").status(), 410);
    let token = url.split("?t=").nth(1).expect("token");
    let aid = c["approval_id"].as_str().expect("aid");
    let r = http
        .post(format!("{}/approvals/{aid}", s.app.issuer))
        .header("cookie", format!("ssf_approval_csrf={cookie}"))
        .form(&[("t", token), ("csrf", &csrf), ("decision", "reject")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 410);
    assert!(writes(&s).is_empty());
}

#[tokio::test]
async fn a_bulk_job_never_bypasses_an_approval() {
    let dir = tempdir();
    let hook = Webhook::start().await;
    let s = with_approvals(
        dir.path(),
        &hook,
        |a| {
            a.actions = vec!["deactivate".into()];
            a.protected_groups = vec!["Engineering".into()];
        },
        Arc::new(ssf_transmitter::clock::SystemClock),
    )
    .await;
    let tip = s
        .app
        .client_with("tip", &[Scope::EnforceWrite, Scope::EnforceRead])
        .await;
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/jobs",
            &tip,
            Some(&json!({"steps": [{"action": "deactivate"}], "users": ["alex.kim@example.com"]})),
        )
        .await;
    let p = assert_problem(resp, 403).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("needs approval"),
        "{p}"
    );
    s.sandbox.clear_requests();
    let (st, accepted) = s
        .app
        .post_json("/v1/jobs", &tip, &json!({"steps": [{"action": "suspend"}], "users": ["jane.doe@example.com", "alex.kim@example.com"]}))
        .await;
    assert_eq!(st, 202, "{accepted}");
    let id = accepted["id"].as_str().expect("id");
    let mut job = Value::Null;
    for _ in 0..100 {
        let (_, j) = s.app.get_json(&format!("/v1/jobs/{id}"), &tip).await;
        if j["status"] == "done" {
            job = j;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(job["done"], 1, "{job}");
    assert_eq!(job["failed"], 1, "{job}");
    assert!(
        job["results"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Engineering"),
        "{job}"
    );
    assert_eq!(
        writes(&s).len(),
        1,
        "only alex.kim (not protected) was suspended: {:?}",
        writes(&s)
    );
}
