//! The product's Okta client as an OAuth service app (private_key_jwt + DPoP), end to end against
//! the sandbox's authorization server, which verifies with josekit.

use reqwest::Method;
use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;
use ssf_transmitter::config::{Config, OktaOAuthConfig};
use ssf_transmitter::sandbox::{Jwks, Sandbox, ServiceApp};

use crate::helpers::{Sandboxed, assert_problem, tempdir};

fn use_oauth(c: &mut Config, sandbox: &Sandbox, scopes: Option<Vec<String>>) {
    let app = sandbox.oauth_app();
    let okta = c.okta.as_mut().expect("okta");
    okta.api_token = None;
    okta.oauth = Some(OktaOAuthConfig {
        client_id: app.client_id,
        private_key: Some(app.private_key_pem),
        private_key_file: None,
        key_id: Some(app.key_id),
        scopes: scopes.unwrap_or(app.scopes),
        dpop: true,
    });
}

/// Token grants in the sandbox's System Log, by outcome.
async fn grants(s: &Sandboxed) -> (usize, usize) {
    let logs: Value = s
        .okta(Method::GET, "/api/v1/logs?limit=1000")
        .send()
        .await
        .expect("logs")
        .json()
        .await
        .expect("json");
    let of = |outcome: &str| {
        logs.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["eventType"] == "app.oauth2.as.token.grant.access_token")
            .filter(|e| e["outcome"]["result"] == outcome)
            .count()
    };
    (of("SUCCESS"), of("FAILURE"))
}

#[tokio::test]
async fn dpop_bound_service_app_works_end_to_end_and_refreshes_expired_tokens() {
    let dir = tempdir();
    // Registration with the sandbox (okta register) already goes through OAuth here.
    let s = Sandboxed::start_with(dir.path(), |c, sb| use_oauth(c, sb, None)).await;
    let token = s
        .app
        .client_with("soar", &[Scope::EnforceWrite, Scope::EnforceRead])
        .await;
    // Registration's own client fetched one token (after one nonce round trip).
    assert_eq!(grants(&s).await, (1, 1));

    let (status, st) = s.app.get_json("/v1/okta/status", &token).await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["auth_mode"], "oauth");
    assert_eq!(st["oauth"]["dpop"], true);
    let granted: Vec<&str> = st["oauth"]["granted_scopes"]
        .as_array()
        .expect("granted")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(granted.contains(&"okta.users.manage"), "{st}");
    assert!(st["oauth"]["token_expires_in_secs"].as_u64() > Some(3000));

    let (status, body) = s.app.post("/v1/users/jane.doe/suspend", &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["status"], "SUSPENDED");
    let (status, _) = s.app.get_json("/v1/users/jane.doe/groups", &token).await;
    assert_eq!(status, 200);
    // The service's client: one token for all of that (cached), after one use_dpop_nonce round
    // trip.
    assert_eq!(grants(&s).await, (2, 2));

    // Okta expires the token: the next call is refused once, a new token is fetched, the call
    // goes through.
    s.sandbox.expire_oauth_tokens();
    let (status, body) = s.app.post("/v1/users/jane.doe/unsuspend", &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["status"], "ACTIVE");
    assert_eq!(
        grants(&s).await,
        (3, 2),
        "one refresh, with the nonce already known"
    );
}

#[tokio::test]
async fn rs256_bearer_app_and_credential_failures_are_reported_without_secrets() {
    let dir = tempdir();
    let rsa = ssf_transmitter::keys::KeyMaterial::generate(2048).expect("rsa");
    let rsa_pem = rsa.pkcs8_pem().to_owned();
    let mut jwk = rsa.public_jwk();
    jwk["kid"] = json!("rsa-1");
    let keys = jwk.as_object().cloned().expect("jwk object");
    let pem_for_app = rsa_pem.clone();
    let s = Sandboxed::start_with(dir.path(), move |c, sb| {
        assert!(sb.state().add_oauth_client(ServiceApp {
            client_id: "0oabearerapp00000001".into(),
            jwks: Jwks { keys: vec![keys] },
            scopes: vec![
                "okta.users.read".into(),
                "okta.securityEventsProviders.manage".into(),
                "okta.securityEventsProviders.read".into()
            ],
            dpop_bound: false,
        }));
        let okta = c.okta.as_mut().expect("okta");
        okta.api_token = None;
        okta.oauth = Some(OktaOAuthConfig {
            client_id: "0oabearerapp00000001".into(),
            private_key: Some(pem_for_app.into()),
            private_key_file: None,
            key_id: Some("rsa-1".into()),
            scopes: vec![
                "okta.users.read".into(),
                "okta.securityEventsProviders.manage".into(),
                "okta.securityEventsProviders.read".into(),
            ],
            dpop: false,
        });
    })
    .await;
    let token = s
        .app
        .client_with("soar", &[Scope::EnforceWrite, Scope::EnforceRead])
        .await;
    let (status, st) = s.app.get_json("/v1/okta/status", &token).await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["oauth"]["dpop"], false);
    let (status, body) = s.app.get_json("/v1/users/jane.doe", &token).await;
    assert_eq!(status, 200, "{body}");

    // The app lacks okta.users.manage: Okta's 403 insufficient_scope → 502 saying what to grant.
    let resp = s
        .app
        .call(Method::POST, "/v1/users/jane.doe/suspend", &token, None)
        .await;
    let p = assert_problem(resp, 502).await;
    assert!(
        p["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("okta-insufficient-scope")),
        "{p}"
    );
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("E0000006"),
        "{p}"
    );

    // Nothing secret in any answer or the audit log.
    let (_, rows) = s.app.get_json("/v1/audit", &token).await;
    let seen = format!("{p}{rows}{st}");
    let key_body: String = rsa_pem.lines().nth(1).unwrap_or_default().to_owned();
    assert!(!seen.contains(&key_body));
}

#[tokio::test]
async fn a_key_okta_does_not_know_is_a_502_naming_invalid_client() {
    let dir = tempdir();
    let other = ssf_transmitter::keys::KeyMaterial::generate(2048).expect("rsa");
    let pem = other.pkcs8_pem().to_owned();
    let s = Sandboxed::start(dir.path()).await;
    // A second app instance of the product, configured with the sandbox's client id but a key
    // the sandbox never saw.
    let mut config = crate::helpers::config_for(&dir.path().join("second"));
    let mut okta = ssf_transmitter::config::OktaConfig::for_org(&s.org_url);
    okta.oauth = Some(OktaOAuthConfig {
        client_id: s.sandbox.oauth_clients()[0].client_id.clone(),
        private_key: Some(pem.clone().into()),
        private_key_file: None,
        key_id: None,
        scopes: vec!["okta.users.read".into()],
        dpop: true,
    });
    config.okta = Some(okta);
    let app = crate::helpers::TestApp::spawn_with(config).await;
    let token = app.client_with("soar", &[Scope::EnforceRead]).await;
    let resp = app.call(Method::GET, "/v1/okta/status", &token, None).await;
    let p = assert_problem(resp, 502).await;
    assert_eq!(
        p["type"].as_str().map(|t| t.ends_with("okta-auth-failed")),
        Some(true),
        "{p}"
    );
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid_client"),
        "{p}"
    );
    assert!(
        !p.to_string()
            .contains(pem.lines().nth(1).unwrap_or_default())
    );
}

/// Okta's token endpoint answering 429: our answer is 429 with `Retry-After`, nothing cached; an
/// access token claiming a lifetime beyond a day is trusted for a day at most.
#[tokio::test]
async fn token_endpoint_rate_limits_and_the_token_lifetime_cap() {
    let dir = crate::helpers::tempdir();
    let mut config = crate::helpers::config_for(dir.path());
    config.sandbox.oauth = true;
    let s = crate::helpers::Sandboxed::start_from(config, |_, _| {}).await;
    let token = s
        .app
        .client_with("reader", &[ssf_transmitter::auth::Scope::EnforceRead])
        .await;
    s.sandbox.set_faults(ssf_transmitter::sandbox::Faults {
        oauth_rate_limit_next: 100,
        oauth_rate_limit_reset_secs: Some(7),
        ..Default::default()
    });
    // The app holds a token from its registration; make it fetch a new one.
    s.okta(reqwest::Method::POST, "/__sandbox/oauth/expire-tokens")
        .send()
        .await
        .expect("expire");
    let resp = s
        .app
        .http
        .get(s.app.url("/v1/users/jane.doe"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 429);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=7).contains(&retry_after), "{retry_after}");
    let p: serde_json::Value = resp.json().await.expect("problem");
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("rate limit"),
        "{p}"
    );
    // Okta is back and issues a token "for ten days": it is kept a day at most.
    s.sandbox.set_faults(ssf_transmitter::sandbox::Faults {
        oauth_token_expires_in_secs: Some(10 * 86_400),
        ..Default::default()
    });
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut status = serde_json::Value::Null;
    for _ in 0..20 {
        let (st, body) = s.app.get_json("/v1/okta/status", &token).await;
        if st == 200 {
            status = body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let left = status["oauth"]["token_expires_in_secs"]
        .as_u64()
        .expect("lifetime");
    assert!(left <= 86_400 && left > 80_000, "{status}");
}
