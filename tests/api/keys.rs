use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, TestApp, assert_problem, tempdir, verify_with_jwks};

fn sign(app: &TestApp, n: u32) -> String {
    app.state
        .keys
        .ring()
        .sign("secevent+jwt", &json!({"iss": app.issuer, "n": n}))
        .expect("sign")
}

#[tokio::test]
async fn keys_survive_a_restart() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let kid = app.state.keys.ring().active_kid().to_owned();
    let jwks = app
        .get("/.well-known/jwks.json")
        .await
        .bytes()
        .await
        .expect("body");
    let token = sign(&app, 1);
    app.stop().await;

    let app = TestApp::spawn(dir.path()).await;
    assert_eq!(app.state.keys.ring().active_kid(), kid);
    let again = app
        .get("/.well-known/jwks.json")
        .await
        .bytes()
        .await
        .expect("body");
    assert_eq!(jwks, again, "same JWKS after restart");
    verify_with_jwks(&token, &app.jwks().await).expect("old token verifies");
    let pem = std::fs::metadata(dir.path().join("keys").join(format!("{kid}.pem"))).expect("pem");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(pem.permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn full_rotation_never_breaks_a_verifier() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let k1 = app.state.keys.ring().active_kid().to_owned();
    let t1 = sign(&app, 1);
    verify_with_jwks(&t1, &app.jwks().await).expect("t1");

    // generate: K2 is published (state next) but K1 still signs.
    let (status, k2) = app.post("/v1/admin/keys?bits=2048", ADMIN_TOKEN).await;
    assert_eq!(status, 201, "{k2}");
    assert_eq!(k2["state"], "next");
    for private in ["d", "p", "q", "dp", "dq", "qi", "pem"] {
        assert!(k2.get(private).is_none());
    }
    let k2 = k2["kid"].as_str().expect("kid").to_owned();
    let jwks = app.jwks().await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(kids, [k1.as_str(), k2.as_str()], "active first, then next");
    let t2 = sign(&app, 2);
    assert_eq!(
        jsonwebtoken::decode_header(&t2)
            .expect("hdr")
            .kid
            .as_deref(),
        Some(k1.as_str())
    );

    // activate too early without force: refused, nothing changes.
    let (status, body) = app
        .post(&format!("/v1/admin/keys/{k2}/activate"), ADMIN_TOKEN)
        .await;
    assert_eq!(status, 409, "{body}");
    let detail = body["detail"].as_str().expect("detail");
    assert!(
        detail.contains("less than the JWKS cache lifetime (300 s)")
            && detail
                .ends_with("or force it (`keys activate --force`, or `force=true` on the API)"),
        "{detail}"
    );
    assert_eq!(app.state.keys.ring().active_kid(), k1);

    // activate with force: K2 signs, K1 is retiring and still published.
    let (status, body) = app
        .post(
            &format!("/v1/admin/keys/{k2}/activate?force=true"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "active");
    let t3 = sign(&app, 3);
    let h3 = jsonwebtoken::decode_header(&t3).expect("hdr");
    assert_eq!(h3.kid.as_deref(), Some(k2.as_str()));
    assert_eq!(h3.typ.as_deref(), Some("secevent+jwt"));
    let jwks = app.jwks().await;
    for t in [&t1, &t2, &t3] {
        verify_with_jwks(t, &jwks).expect("every token verifies during rotation");
    }
    let (_, list) = app.get_json("/v1/admin/keys", ADMIN_TOKEN).await;
    let state_of = |kid: &str| {
        list["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["kid"] == kid)
            .map(|k| k["state"].clone())
    };
    assert_eq!(state_of(&k1), Some(json!("retiring")));
    assert_eq!(state_of(&k2), Some(json!("active")));

    // the active key cannot be retired.
    let (status, _) = app
        .post(&format!("/v1/admin/keys/{k2}/retire"), ADMIN_TOKEN)
        .await;
    assert_eq!(status, 409);

    // retire K1: unpublished; its tokens stop verifying, K2's keep verifying.
    let (status, body) = app
        .post(&format!("/v1/admin/keys/{k1}/retire"), ADMIN_TOKEN)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "retired");
    let jwks = app.jwks().await;
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 1);
    assert!(verify_with_jwks(&t1, &jwks).is_err());
    assert!(verify_with_jwks(&t2, &jwks).is_err());
    verify_with_jwks(&t3, &jwks).expect("t3");

    // unknown kid → 404 problem.
    let resp = app
        .http
        .post(app.url("/v1/admin/keys/nope/activate?force=true"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("send");
    assert_problem(resp, 404).await;

    // every change is in the audit log.
    let audit = app.store.recent_audit(20).await.expect("audit");
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.action.as_str(), a.outcome.as_str()))
        .collect();
    assert!(actions.contains(&("key.generate", "ok")));
    assert!(actions.contains(&("key.activate", "error")));
    assert!(actions.contains(&("key.activate", "ok")));
    assert!(actions.contains(&("key.retire", "ok")));
    assert!(audit.iter().all(|a| a.actor == "admin-token"));
}

#[tokio::test]
async fn generate_rejects_unsupported_sizes() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let resp = app
        .http
        .post(app.url("/v1/admin/keys?bits=1024"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("send");
    let body = assert_problem(resp, 422).await;
    assert_eq!(body["errors"][0]["field"], "bits");
    let resp = app
        .http
        .post(app.url("/v1/admin/keys?bits=lots"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("send");
    assert_problem(resp, 400).await;
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test]
async fn import_accepts_strong_rsa_and_refuses_weak_or_foreign_keys() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let import = |pem: Vec<u8>| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/v1/admin/keys/import"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"pem": String::from_utf8(pem).expect("utf8")}))
                .send()
                .await
                .expect("send")
        }
    };
    // RSA-1024: too weak.
    let weak = openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
    ]);
    let body = assert_problem(import(weak).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "pem");
    assert!(
        body["detail"].as_str().expect("d").contains("too weak"),
        "{body}"
    );
    // EC: not RSA.
    let ec = openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
    ]);
    let body = assert_problem(import(ec).await, 422).await;
    assert!(
        body["detail"].as_str().expect("d").contains("RSA"),
        "{body}"
    );
    // garbage.
    assert_problem(import(b"not a pem".to_vec()).await, 422).await;
    // RSA-3072 as PKCS#1 ("RSA PRIVATE KEY"): accepted, stored as PKCS#8, published as next.
    let pkcs8 = openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:3072",
    ]);
    let path = dir.path().join("import.pem");
    std::fs::write(&path, &pkcs8).expect("write");
    let pkcs1 = openssl(&["rsa", "-in", path.to_str().expect("utf8"), "-traditional"]);
    assert!(String::from_utf8_lossy(&pkcs1).contains("BEGIN RSA PRIVATE KEY"));
    let resp = import(pkcs1).await;
    assert_eq!(resp.status(), 201);
    let info: Value = resp.json().await.expect("json");
    assert_eq!(info["bits"], 3072);
    assert_eq!(info["state"], "next");
    let kid = info["kid"].as_str().expect("kid");
    let stored = std::fs::read_to_string(dir.path().join("keys").join(format!("{kid}.pem")))
        .expect("stored");
    assert!(stored.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(
        app.jwks().await["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k["kid"] == kid)
    );
    // the same key again: conflict.
    assert_problem(import(pkcs8).await, 409).await;
}

#[tokio::test]
async fn a_running_server_sees_key_changes_made_by_the_cli() {
    let dir = tempdir();
    // SQLite on every backend: the CLI below is pointed at the same SQLite file.
    let app = TestApp::spawn_with(crate::helpers::sqlite_config_for(dir.path())).await;
    let out = Command::new(env!("CARGO_BIN_EXE_ssf-transmitter"))
        .args(["keys", "generate", "--bits", "2048"])
        .env_clear()
        .env("SSF_KEYS_DIR", dir.path().join("keys"))
        .env(
            "SSF_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("data/test.db").display()),
        )
        .current_dir(dir.path())
        .output()
        .expect("run cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = 0;
    for _ in 0..50 {
        seen = app.jwks().await["keys"].as_array().map_or(0, Vec::len);
        if seen == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen, 2,
        "the CLI's new key is published by the running server"
    );
    // The CLI's action is audited as `cli`.
    let audit = app.store.recent_audit(5).await.expect("audit");
    assert!(
        audit
            .iter()
            .any(|a| a.actor == "cli" && a.action == "key.generate" && a.outcome == "ok")
    );
}

/// Replicas share one keys directory: started at the same moment on an empty one they end up
/// with exactly one key and serve the identical JWKS; a key activated by one (here: the CLI's
/// library call, as `keys activate` does) is picked up by all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn replicas_on_one_keys_dir_agree_on_one_key_and_follow_an_activation() {
    let dir = tempdir();
    let config = |i: usize| {
        let mut c = crate::helpers::config_for(dir.path());
        // Each replica its own SQLite file (one writer per file); the keys directory is shared.
        c.database_url = format!(
            "sqlite://{}",
            dir.path().join(format!("data/r{i}.db")).display()
        )
        .into();
        c
    };
    let (a, b, c) = tokio::join!(
        tokio::spawn(TestApp::spawn_with(config(0))),
        tokio::spawn(TestApp::spawn_with(config(1))),
        tokio::spawn(TestApp::spawn_with(config(2))),
    );
    let replicas = [a.expect("a"), b.expect("b"), c.expect("c")];
    let keys = ssf_transmitter::keys::KeyDir::open(dir.path().join("keys")).expect("keys dir");
    assert_eq!(
        keys.list().expect("list").len(),
        1,
        "exactly one key generated"
    );
    let mut served = Vec::new();
    for r in &replicas {
        served.push(
            r.get("/.well-known/jwks.json")
                .await
                .bytes()
                .await
                .expect("jwks"),
        );
    }
    assert!(
        served.iter().all(|j| *j == served[0]),
        "identical JWKS on every replica"
    );

    let next = keys.generate(2048, chrono::Utc::now()).expect("generate");
    keys.activate(&next.kid, true, chrono::Utc::now())
        .expect("activate");
    for r in &replicas {
        let mut active = String::new();
        for _ in 0..50 {
            active = r.state.keys.ring().active_kid().to_owned();
            if active == next.kid {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(
            active, next.kid,
            "every replica signs with the activated key"
        );
    }
    let token = sign(&replicas[1], 7);
    for r in &replicas {
        verify_with_jwks(&token, &r.jwks().await).expect("any replica's JWKS verifies it");
    }
}
