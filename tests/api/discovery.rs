use serde_json::Value;

use crate::helpers::{TestApp, config_for, tempdir};

const PRIVATE_MEMBERS: [&str; 6] = ["d", "p", "q", "dp", "dq", "qi"];

#[tokio::test]
async fn jwks_publishes_public_rs256_keys_only_with_cache_headers() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let resp = app.get("/.well-known/jwks.json").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
    let jwks: Value = resp.json().await.expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    let mut members: Vec<&str> = k
        .as_object()
        .expect("obj")
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(k["kty"], "RSA");
    assert_eq!(k["alg"], "RS256");
    assert_eq!(k["use"], "sig");
    for m in PRIVATE_MEMBERS {
        assert!(k.get(m).is_none());
    }
    assert_eq!(k["kid"], app.state.keys.ring().active_kid());
}

#[tokio::test]
async fn ssf_configuration_matches_the_issuer() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    assert_eq!(app.issuer, app.base, "default issuer is the bound address");
    let resp = app.get("/.well-known/ssf-configuration").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let meta: Value = resp.json().await.expect("json");
    assert_eq!(meta["spec_version"], "1_0");
    assert_eq!(meta["issuer"], app.issuer.as_str());
    assert_eq!(
        meta["jwks_uri"],
        format!("{}/.well-known/jwks.json", app.issuer)
    );
    assert_eq!(
        meta["delivery_methods_supported"],
        serde_json::json!(["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"])
    );
    for (k, v) in meta.as_object().expect("obj") {
        if let Some(a) = v.as_array() {
            assert!(!a.is_empty(), "{k} is an empty array");
        }
    }
    // The advertised jwks_uri serves the keys.
    let jwks = app
        .http
        .get(meta["jwks_uri"].as_str().expect("uri"))
        .send()
        .await
        .expect("send");
    assert_eq!(jwks.status(), 200);
}

#[tokio::test]
async fn issuer_with_a_path_serves_metadata_at_the_path_aware_location() {
    let dir = tempdir();
    let config = ssf_transmitter::Config {
        issuer: Some("https://ssf.example.com/tenant-a/".into()),
        ..config_for(dir.path())
    };
    let app = TestApp::spawn_with(config).await;
    assert_eq!(
        app.issuer, "https://ssf.example.com/tenant-a",
        "trailing slash dropped"
    );
    let meta: Value = app
        .get("/.well-known/ssf-configuration/tenant-a")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(meta["issuer"], "https://ssf.example.com/tenant-a");
    assert_eq!(
        meta["jwks_uri"],
        "https://ssf.example.com/tenant-a/.well-known/jwks.json"
    );
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let h: Value = app.get("/healthz").await.json().await.expect("json");
    assert_eq!(h["status"], "ok");
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200);
    let r: Value = r.json().await.expect("json");
    assert_eq!(r["status"], "ready");
    assert_eq!(r["active_kid"], app.state.keys.ring().active_kid());
    let m = app.get("/metrics").await;
    assert_eq!(m.status(), 200);
    assert!(
        m.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = m.text().await.expect("text");
    assert!(
        text.contains(r#"http_requests_total{route="/readyz",method="GET",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"ssf_issuer_keys{state="active"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn readiness_fails_when_the_store_is_gone() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    app.store.close().await;
    let resp = app.get("/readyz").await;
    let body = crate::helpers::assert_problem(resp, 503).await;
    assert!(body["detail"].as_str().expect("detail").contains("store"));
}
