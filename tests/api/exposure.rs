//! Exposure and deployment: no caching of API answers, a sandbox that is never exposed by
//! accident, audit rows that name the client's id, reserved names, and file modes.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;

use reqwest::Method;
use serde_json::json;
use ssf_transmitter::auth::Scope;
use ssf_transmitter::clock::SystemClock;
use ssf_transmitter::config::OktaConfig;

use crate::cli::bin;
use crate::helpers::{ADMIN_TOKEN, Sandboxed, TestApp, config_for, tempdir};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
}

#[tokio::test]
async fn every_v1_answer_is_no_store_and_public_ones_keep_their_caching() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    for (method, path, token) in [
        (Method::GET, "/v1/admin/keys", Some(ADMIN_TOKEN)),
        (Method::GET, "/v1/users/jane.doe", Some(ADMIN_TOKEN)),
        (Method::POST, "/v1/users/nobody/suspend", Some(ADMIN_TOKEN)),
        (Method::GET, "/v1/admin/keys", None),
        (Method::GET, "/v1/no-such-route", Some(ADMIN_TOKEN)),
    ] {
        let mut req = s.app.http.request(method.clone(), s.app.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("send");
        assert_eq!(
            resp.headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{method} {path} ({})",
            resp.status()
        );
    }
    let resp = s.app.get("/.well-known/jwks.json").await;
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("public, max-age=300")
    );
}

#[tokio::test]
async fn audit_rows_name_the_clients_id_and_service_names_are_reserved() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let (status, created) = s
        .app
        .post_json(
            "/v1/admin/clients",
            ADMIN_TOKEN,
            &json!({"name": "soar", "scopes": ["enforce:write"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let token = created["token"].as_str().expect("token").to_owned();
    let (status, _) = s.app.post("/v1/users/jane.doe/suspend", &token).await;
    assert_eq!(status, 200);
    let (_, rows) = s
        .app
        .get_json("/v1/audit?action=user.suspend", ADMIN_TOKEN)
        .await;
    assert_eq!(rows[0]["client"], "soar", "{rows}");
    assert_eq!(rows[0]["client_id"], id.as_str(), "{rows}");
    let (_, rows) = s
        .app
        .get_json("/v1/audit?action=client.add", ADMIN_TOKEN)
        .await;
    assert_eq!(rows[0]["client"], "admin-token", "{rows}");
    assert_eq!(rows[0]["client_id"], "admin-token", "{rows}");

    for name in ["admin-token", "cli", "CLI"] {
        let (status, body) = s
            .app
            .post_json(
                "/v1/admin/clients",
                ADMIN_TOKEN,
                &json!({"name": name, "scopes": ["signals:read"]}),
            )
            .await;
        assert_eq!(status, 422, "{name}: {body}");
        assert_eq!(body["errors"][0]["field"], "name");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("reserved")),
            "{body}"
        );
    }
    let _ = s.app.client_with("other", &[Scope::SignalsRead]).await;
}

#[test]
fn the_cli_cannot_take_a_reserved_name() {
    let dir = tempdir();
    let out = bin(dir.path())
        .args(["clients", "add", "cli", "--scope", "signals:read"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reserved"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn keys_dir_and_database_are_owner_only_even_when_they_existed_looser() {
    let dir = tempdir();
    let config = config_for(dir.path());
    std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
    let db = dir.path().join("data/test.db");
    std::fs::write(&db, b"").expect("empty database file");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).expect("mkdir");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let app = TestApp::spawn_with(config.clone()).await;
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&keys), 0o700);
    let manifest = keys.join("keys.json");
    assert_eq!(mode(&manifest), 0o600);
    app.stop().await;

    // Loosened between runs: fixed again at the next start.
    std::fs::set_permissions(&manifest, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let app = TestApp::spawn_with(config).await;
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&keys), 0o700);
    assert_eq!(mode(&manifest), 0o600);
    app.stop().await;
}

#[tokio::test]
async fn the_sandbox_is_never_exposed_by_accident() {
    let dir = tempdir();
    let mut config = config_for(dir.path());
    config.sandbox.listen = "0.0.0.0:0".parse().expect("addr");
    let e = config.validate().expect_err("refused").to_string();
    assert!(e.contains("sandbox.listen"), "{e}");
    assert!(e.contains("allow_non_loopback"), "{e}");
    config.sandbox.allow_non_loopback = true;
    config.validate().expect("allowed when asked for");

    // serve --sandbox with a real org configured refuses, naming both.
    let mut config = config_for(dir.path());
    config.sandbox.listen = "127.0.0.1:0".parse().expect("addr");
    config.okta = Some(OktaConfig::for_org("https://acme.okta.com"));
    let e = ssf_transmitter::app::serve_with_sandbox(config, Arc::new(SystemClock), async {})
        .await
        .expect_err("refused");
    let e = format!("{e:#}");
    assert!(e.contains("okta.org_url") && e.contains("--sandbox"), "{e}");
    assert!(e.contains("https://acme.okta.com"), "{e}");

    // From the command line, both are configuration errors: exit 2.
    for (env, args, key) in [
        (
            ("SSF_SANDBOX__LISTEN", "0.0.0.0:0"),
            vec!["serve", "--sandbox"],
            "sandbox.listen",
        ),
        (
            ("SSF_SANDBOX__LISTEN", "0.0.0.0:0"),
            vec!["sandbox"],
            "sandbox.listen",
        ),
        (
            ("SSF_OKTA__ORG_URL", "https://acme.okta.com"),
            vec!["serve", "--sandbox"],
            "okta.org_url",
        ),
    ] {
        let out = bin(dir.path())
            .env(env.0, env.1)
            .env(
                "SSF_SANDBOX__LISTEN",
                if env.0 == "SSF_SANDBOX__LISTEN" {
                    env.1
                } else {
                    "127.0.0.1:0"
                },
            )
            .args(&args)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(key), "{args:?}: {err}");
    }
}

#[test]
fn okta_commands_without_an_org_are_configuration_errors() {
    let dir = tempdir();
    for cmd in ["status", "register"] {
        let out = bin(dir.path())
            .env("SSF_ISSUER", "http://127.0.0.1:8080")
            .args(["okta", cmd])
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "okta {cmd}: {err}");
        assert!(
            err.contains("okta.org_url") && err.contains("serve --sandbox"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn okta_status_finds_the_sandbox_of_a_running_serve_sandbox() {
    let dir = tempdir();
    let (server, addr) = crate::cli::Server::start_sandboxed(dir.path(), &[]);
    let issuer = format!("http://{addr}");
    let path = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        bin(&path)
            .env("SSF_ISSUER", &issuer)
            .args(["okta", "status"])
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("is ACTIVE"), "{text}");
    server.stop();
}
