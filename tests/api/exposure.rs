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
    let (_, by_id) = s
        .app
        .get_json(&format!("/v1/audit?client_id={id}"), ADMIN_TOKEN)
        .await;
    let by_id = by_id.as_array().expect("rows");
    assert!(!by_id.is_empty() && by_id.iter().all(|r| r["client_id"] == id.as_str()));
    let (_, none) = s
        .app
        .get_json("/v1/audit?client_id=no-such-id", ADMIN_TOKEN)
        .await;
    assert_eq!(none, serde_json::json!([]));
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
    // SQLite only, on every backend: about the database file's mode.
    let config = crate::helpers::sqlite_config_for(dir.path());
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

/// A fresh CA and a P-256 certificate it issued for 127.0.0.1, the pair written (atomically) to
/// `cert`/`key`; returns the CA's PEM, which a client trusts.
fn issue(
    dir: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
    cn: &str,
) -> Vec<u8> {
    let f = |ext: &str| dir.join(format!("{cn}.{ext}"));
    let openssl = |args: Vec<std::ffi::OsString>| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let os = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
    let mut ca = os(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
    ]);
    ca.extend(os(&["-subj", &format!("/CN={cn} CA"), "-keyout"]));
    ca.push(f("ca.key").into());
    ca.push("-out".into());
    ca.push(f("ca.crt").into());
    openssl(ca);
    let mut leaf = os(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
    ]);
    leaf.extend(os(&[
        "-subj",
        &format!("/CN={cn}"),
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-CA",
    ]));
    leaf.push(f("ca.crt").into());
    leaf.push("-CAkey".into());
    leaf.push(f("ca.key").into());
    leaf.push("-keyout".into());
    leaf.push(f("key").into());
    leaf.push("-out".into());
    leaf.push(f("crt").into());
    openssl(leaf);
    std::fs::rename(f("key"), key).expect("key");
    std::fs::rename(f("crt"), cert).expect("cert");
    std::fs::read(f("ca.crt")).expect("ca")
}

fn trusting(pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(pem).expect("pem")])
        .build()
        .expect("client")
}

#[tokio::test]
async fn the_public_listener_serves_discovery_only_over_tls_and_picks_up_a_new_certificate() {
    let dir = tempdir();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let first = issue(dir.path(), &cert, &key, "first");
    let mut config = config_for(dir.path());
    config.public_listen = Some("127.0.0.1:0".parse().expect("addr"));
    config.tls = Some(ssf_transmitter::config::TlsConfig {
        cert_file: cert.clone(),
        key_file: key.clone(),
        api: false,
        public: true,
        reload_secs: 1,
    });
    let app = ssf_transmitter::Application::build(config, Arc::new(SystemClock))
        .await
        .expect("build");
    let api = format!("http://{}", app.local_addr());
    let public = format!("https://{}", app.public_addr().expect("public listener"));
    assert_eq!(app.issuer(), public, "receivers reach the public listener");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));

    let tls = trusting(&first);
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/ssf-configuration",
        "/healthz",
    ] {
        let resp = tls
            .get(format!("{public}{path}"))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200, "{path}");
    }
    let meta: serde_json::Value = tls
        .get(format!("{public}/.well-known/ssf-configuration"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(meta["issuer"], public.as_str());
    for path in [
        "/v1/admin/keys",
        "/v1/signals",
        "/v1/users/jane.doe",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs/",
    ] {
        let resp = tls
            .get(format!("{public}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 404, "{path} must not be served publicly");
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
    }
    // Plain HTTP is refused on the TLS listener; the API listener stays plain (api = false).
    let plain = crate::helpers::http_client();
    assert!(
        plain
            .get(format!("{}/healthz", public.replace("https://", "http://")))
            .send()
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
    );
    let resp = plain
        .get(format!("{api}/v1/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);

    // A renewed certificate is picked up without a restart.
    let second = issue(dir.path(), &cert, &key, "second");
    let renewed = trusting(&second);
    let mut picked_up = false;
    for _ in 0..100 {
        if renewed
            .get(format!("{public}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            picked_up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(picked_up, "the new certificate is served");
    assert!(
        trusting(&first)
            .get(format!("{public}/healthz"))
            .send()
            .await
            .is_err(),
        "the old certificate is no longer served"
    );
    let _ = tx.send(());
    task.await.expect("join").expect("clean stop");
}

#[test]
fn tls_settings_are_checked_at_start() {
    let dir = tempdir();
    let mut config = config_for(dir.path());
    config.tls = Some(ssf_transmitter::config::TlsConfig {
        cert_file: dir.path().join("missing.crt"),
        key_file: dir.path().join("missing.key"),
        api: false,
        public: true,
        reload_secs: 10,
    });
    let e = config.validate().expect_err("invalid").to_string();
    assert!(
        e.contains("tls.cert_file") && e.contains("tls.key_file"),
        "{e}"
    );
    assert!(e.contains("no listener terminates TLS"), "{e}");
    let mut config = config_for(dir.path());
    config.public_listen = Some("0.0.0.0:8443".parse().expect("addr"));
    let e = config.validate().expect_err("invalid").to_string();
    assert!(
        e.contains("public_listen") && e.contains("SSF_ISSUER"),
        "{e}"
    );
}

#[tokio::test]
async fn a_refused_second_serve_sandbox_leaves_the_running_ones_credentials_alone() {
    let dir = tempdir();
    let (server, _) = crate::cli::Server::start_sandboxed(dir.path(), &[]);
    let credentials = dir.path().join("data/sandbox.json");
    let before = std::fs::read(&credentials).expect("sandbox.json");
    let path = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        bin(&path)
            .env("SSF_SANDBOX__LISTEN", "127.0.0.1:0")
            .args(["serve", "--sandbox"])
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    assert!(!out.status.success(), "the second instance must not run");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ssf-transmitter.db"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&credentials).expect("sandbox.json"),
        before,
        "the running sandbox's org URL and token are untouched"
    );
    server.stop();
}
