//! OAuth 2.0 client credentials at `POST /oauth2/token` (RFC 6749 §4.4): `client_secret_basic`,
//! `client_secret_post` and `private_key_jwt` (RFC 7523), scope narrowing, the RFC 6749 §5.2
//! errors, expiry on the service's clock, revocation, replayed assertions, the metadata
//! documents, and hostile values in every parameter.

use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;
use ssf_transmitter::clock::{Clock as _, ManualClock};

use crate::helpers::{ADMIN_TOKEN, TestApp, assert_problem, config_for, tempdir};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An API client: its id (the OAuth client id) and its token (the client secret).
struct ApiClient {
    id: String,
    name: String,
    secret: String,
}

async fn client(app: &TestApp, name: &str, scopes: &[Scope]) -> ApiClient {
    let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let (status, body) = app
        .post_json(
            "/v1/admin/clients",
            ADMIN_TOKEN,
            &json!({"name": name, "scopes": scopes}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    ApiClient {
        id: body["id"].as_str().expect("id").to_owned(),
        name: name.to_owned(),
        secret: body["token"].as_str().expect("token").to_owned(),
    }
}

fn receiver_scopes() -> [Scope; 2] {
    [Scope::StreamsRead, Scope::StreamsWrite]
}

/// One answer of the token endpoint.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    /// Asserts an RFC 6749 §5.2 error with `status` and `error`; returns the description.
    fn error(&self, status: u16, error: &str) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"], error, "{}", self.body);
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/json")
        );
        self.assert_no_store();
        let description = self.body["error_description"]
            .as_str()
            .expect("error_description")
            .to_owned();
        // RFC 6749 §5.2: %x20-21 / %x23-5B / %x5D-7E.
        assert!(
            description
                .bytes()
                .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
            "{description}"
        );
        if status == 401 {
            assert_eq!(
                self.header("www-authenticate").as_deref(),
                Some(r#"Basic realm="ssf-transmitter""#)
            );
        } else {
            assert!(self.header("www-authenticate").is_none());
        }
        description
    }

    fn token(&self) -> String {
        assert_eq!(self.status, 200, "{}", self.body);
        self.assert_no_store();
        assert_eq!(self.body["token_type"], "Bearer");
        let t = self.body["access_token"].as_str().expect("access_token");
        assert!(t.starts_with("ssft_"), "the service's token prefix");
        t.to_owned()
    }

    fn assert_no_store(&self) {
        assert_eq!(self.header("cache-control").as_deref(), Some("no-store"));
        assert_eq!(self.header("pragma").as_deref(), Some("no-cache"));
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

/// A token request with `form` and, when given, HTTP Basic credentials.
async fn token_request(
    app: &TestApp,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> Answer {
    let mut req = app.http.post(app.url("/oauth2/token")).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    answer(req.send().await.expect("send")).await
}

async fn basic_token(app: &TestApp, c: &ApiClient, scope: Option<&str>) -> Answer {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    token_request(app, Some((&c.id, &c.secret)), &form).await
}

fn stream_body() -> Value {
    json!({"events_requested": ["https://schemas.openid.net/secevent/caep/event-type/session-revoked"]})
}

#[tokio::test]
async fn client_secret_basic_and_post_issue_tokens_that_work_on_streams() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let rx = client(&app, "receiver", &receiver_scopes()).await;

    let a = basic_token(&app, &rx, None).await;
    let token = a.token();
    assert_ne!(token, rx.secret);
    assert_eq!(a.body["expires_in"], 900, "the default lifetime");
    assert_eq!(
        a.body["scope"], "streams:read streams:write",
        "all of its scopes"
    );
    let resp = app
        .call(Method::POST, "/ssf/streams", &token, Some(&stream_body()))
        .await;
    assert_eq!(resp.status(), 201);
    let stream: Value = resp.json().await.expect("json");
    // The access token acts as its client: it sees the stream the client's own token created.
    let (status, list) = app.get_json("/ssf/streams", &rx.secret).await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["stream_id"], stream["stream_id"], "{list}");

    // client_secret_post.
    let a = token_request(
        &app,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &rx.id),
            ("client_secret", &rx.secret),
        ],
    )
    .await;
    let token = a.token();
    let (status, _) = app.get_json("/ssf/streams", &token).await;
    assert_eq!(status, 200);

    // The token never appears anywhere but in its answer: not in the audit log.
    let (status, audit) = app.get_json("/v1/audit", ADMIN_TOKEN).await;
    assert_eq!(status, 200);
    assert!(!audit.to_string().contains(&token));
    assert!(!audit.to_string().contains(&rx.secret));
}

#[tokio::test]
async fn scopes_are_narrowed_and_a_narrowed_token_gets_insufficient_scope() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let rx = client(&app, "receiver", &receiver_scopes()).await;
    let a = basic_token(&app, &rx, Some("streams:read")).await;
    let read_only = a.token();
    assert_eq!(a.body["scope"], "streams:read");
    let (status, _) = app.get_json("/ssf/streams", &read_only).await;
    assert_eq!(status, 200);
    let resp = app
        .call(
            Method::POST,
            "/ssf/streams",
            &read_only,
            Some(&stream_body()),
        )
        .await;
    assert_eq!(
        resp.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(r#"Bearer error="insufficient_scope", scope="streams:write""#)
    );
    assert_problem(resp, 403).await;

    let a = basic_token(&app, &rx, Some("streams:write streams:read streams:write")).await;
    a.token();
    assert_eq!(a.body["scope"], "streams:read streams:write");
    // An empty scope counts as absent (RFC 6749 §3.1): all of the client's.
    let a = basic_token(&app, &rx, Some("")).await;
    a.token();
    assert_eq!(a.body["scope"], "streams:read streams:write");

    // More than the client holds, unknown or malformed: invalid_scope, nothing issued.
    for scope in [
        "admin",
        "streams:read admin",
        "streams:everything",
        "streams:read  streams:write",
        " streams:read",
    ] {
        let d = basic_token(&app, &rx, Some(scope))
            .await
            .error(400, "invalid_scope");
        assert!(!d.contains("everything"), "{d}");
    }
}

#[tokio::test]
async fn failed_client_authentication_is_401_with_a_basic_challenge() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let rx = client(&app, "receiver", &receiver_scopes()).await;
    let other = client(&app, "other", &[Scope::SignalsWrite]).await;
    let grant = [("grant_type", "client_credentials")];

    let wrong = format!("{}x", rx.secret);
    for (id, secret) in [
        (rx.id.as_str(), wrong.as_str()),
        // Another client's secret does not authenticate this client.
        (rx.id.as_str(), other.secret.as_str()),
        ("00000000-0000-4000-8000-000000000000", rx.secret.as_str()),
        (rx.name.as_str(), rx.secret.as_str()),
        (rx.id.as_str(), ""),
    ] {
        let d = token_request(&app, Some((id, secret)), &grant)
            .await
            .error(401, "invalid_client");
        assert!(!d.contains(secret) || secret.is_empty(), "{d}");
    }
    let a = token_request(
        &app,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &rx.id),
            ("client_secret", &wrong),
        ],
    )
    .await;
    a.error(401, "invalid_client");
    // No client authentication at all.
    token_request(&app, None, &grant)
        .await
        .error(401, "invalid_client");
    // A bearer token is not client authentication.
    let a = answer(
        app.http
            .post(app.url("/oauth2/token"))
            .bearer_auth(&rx.secret)
            .form(&grant)
            .send()
            .await
            .expect("send"),
    )
    .await;
    a.error(401, "invalid_client");
    // The bootstrap admin token is no OAuth client.
    token_request(&app, Some(("admin-token", ADMIN_TOKEN)), &grant)
        .await
        .error(400, "unauthorized_client");
    // Failures are counted like failed bearer tokens.
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains(r#"ssf_auth_failures_total{reason="invalid_client"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_revoked_client_gets_invalid_client_and_its_tokens_stop_at_once() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let rx = client(&app, "receiver", &receiver_scopes()).await;
    let token = basic_token(&app, &rx, None).await.token();
    let (status, _) = app.get_json("/ssf/streams", &token).await;
    assert_eq!(status, 200);
    let resp = app
        .call(
            Method::DELETE,
            "/v1/admin/clients/receiver",
            ADMIN_TOKEN,
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = app.call(Method::GET, "/ssf/streams", &token, None).await;
    assert_eq!(
        resp.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_problem(resp, 401).await;
    basic_token(&app, &rx, None)
        .await
        .error(401, "invalid_client");
    // A new client of the same name is another client: the old id's tokens stay dead.
    let again = client(&app, "receiver", &receiver_scopes()).await;
    assert_ne!(again.id, rx.id);
    let resp = app.call(Method::GET, "/ssf/streams", &token, None).await;
    assert_problem(resp, 401).await;
}

#[tokio::test]
async fn unsupported_grants_and_malformed_requests_are_refused() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let rx = client(&app, "receiver", &receiver_scopes()).await;
    let basic = Some((rx.id.as_str(), rx.secret.as_str()));
    for grant in [
        "password",
        "authorization_code",
        "refresh_token",
        "client_credentials ",
    ] {
        token_request(&app, basic, &[("grant_type", grant)])
            .await
            .error(400, "unsupported_grant_type");
    }
    token_request(&app, basic, &[("scope", "streams:read")])
        .await
        .error(400, "invalid_request");
    // Not a form.
    let a = answer(
        app.http
            .post(app.url("/oauth2/token"))
            .basic_auth(&rx.id, Some(&rx.secret))
            .json(&json!({"grant_type": "client_credentials"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    a.error(400, "invalid_request");
    // A parameter twice.
    let a = answer(
        app.http
            .post(app.url("/oauth2/token"))
            .basic_auth(&rx.id, Some(&rx.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=streams:read&scope=streams:write")
            .send()
            .await
            .expect("send"),
    )
    .await;
    a.error(400, "invalid_request");
    // Two client authentication methods.
    token_request(
        &app,
        basic,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &rx.id),
            ("client_secret", &rx.secret),
        ],
    )
    .await
    .error(400, "invalid_request");
    // Only POST.
    let resp = app.get("/oauth2/token").await;
    assert_problem(resp, 405).await;
}

#[tokio::test]
async fn access_tokens_expire_on_the_service_clock_and_expired_rows_go() {
    let dir = tempdir();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let mut config = config_for(dir.path());
    config.oauth.access_token_ttl_secs = 60;
    let app = TestApp::spawn_with_clock(config, clock.clone()).await;
    let rx = client(&app, "receiver", &receiver_scopes()).await;
    let a = basic_token(&app, &rx, None).await;
    let token = a.token();
    assert_eq!(a.body["expires_in"], 60);
    clock.advance(chrono::Duration::seconds(59));
    let (status, _) = app.get_json("/ssf/streams", &token).await;
    assert_eq!(status, 200, "valid until its expiry");
    clock.advance(chrono::Duration::seconds(1));
    let resp = app.call(Method::GET, "/ssf/streams", &token, None).await;
    assert_problem(resp, 401).await;

    let digest = ssf_transmitter::auth::token_digest(&token);
    assert!(
        app.store
            .access_token(&digest, 0)
            .await
            .expect("store")
            .is_some(),
        "kept until the next token is issued"
    );
    basic_token(&app, &rx, None).await.token();
    assert!(
        app.store
            .access_token(&digest, 0)
            .await
            .expect("store")
            .is_none(),
        "an expired token is deleted when another is issued"
    );
}

/// A key a client signs its assertions with.
struct SigningKey {
    alg: Algorithm,
    enc: EncodingKey,
    jwk: Value,
    /// The EC key's PKCS#8, to sign by hand with aws-lc-rs.
    pkcs8: Option<Vec<u8>>,
}

impl SigningKey {
    fn rsa(kid: &str) -> SigningKey {
        use aws_lc_rs::encoding::AsDer as _;
        let pair =
            aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa key");
        let der: aws_lc_rs::encoding::Pkcs8V1Der = pair.as_der().expect("der");
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
        let enc = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("rsa pem");
        let mut jwk = serde_json::to_value(
            jsonwebtoken::jwk::Jwk::from_encoding_key(&enc, Algorithm::RS256).expect("jwk"),
        )
        .expect("json");
        jwk["kid"] = json!(kid);
        SigningKey {
            alg: Algorithm::RS256,
            enc,
            jwk,
            pkcs8: None,
        }
    }

    fn ec(kid: &str) -> SigningKey {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("ec key");
        let pkcs8 = pair.to_pkcs8v1().expect("pkcs8").as_ref().to_vec();
        let enc = EncodingKey::from_ec_der(&pkcs8);
        let mut jwk = serde_json::to_value(
            jsonwebtoken::jwk::Jwk::from_encoding_key(&enc, Algorithm::ES256).expect("jwk"),
        )
        .expect("json");
        jwk["kid"] = json!(kid);
        SigningKey {
            alg: Algorithm::ES256,
            enc,
            jwk,
            pkcs8: Some(pkcs8),
        }
    }

    /// A signed assertion. EC ones are made by hand with aws-lc-rs (not jsonwebtoken, which
    /// verifies them), so two implementations of JWS must agree.
    fn sign(&self, claims: &Value) -> String {
        let kid = self.jwk["kid"].as_str().expect("kid");
        match &self.pkcs8 {
            None => {
                let mut header = Header::new(self.alg);
                header.kid = Some(kid.to_owned());
                jsonwebtoken::encode(&header, claims, &self.enc).expect("sign")
            }
            Some(pkcs8) => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .expect("pkcs8");
                let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
                let input = format!(
                    "{}.{}",
                    URL_SAFE_NO_PAD.encode(header.to_string()),
                    URL_SAFE_NO_PAD.encode(claims.to_string())
                );
                let sig = pair
                    .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
                    .expect("sign");
                format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
            }
        }
    }
}

fn claims(app: &TestApp, client_id: &str, now: i64) -> Value {
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": format!("{}/oauth2/token", crate::helpers::origin(&app.issuer)),
        "iat": now,
        "exp": now + 120,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

async fn jwt_token(app: &TestApp, assertion: &str, extra: &[(&str, &str)]) -> Answer {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    token_request(app, None, &form).await
}

async fn register_keys(app: &TestApp, name: &str, jwks: &Value) -> (u16, Value) {
    let resp = app
        .call(
            Method::PUT,
            &format!("/v1/admin/clients/{name}/jwks"),
            ADMIN_TOKEN,
            Some(jwks),
        )
        .await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn private_key_jwt_with_rs256_and_es256_and_its_refusals() {
    let dir = tempdir();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = TestApp::spawn_with_clock(config_for(dir.path()), clock.clone()).await;
    let rx = client(&app, "receiver", &receiver_scopes()).await;
    let rsa = SigningKey::rsa("rsa-1");
    let ec = SigningKey::ec("ec-1");
    let (status, body) = register_keys(
        &app,
        "receiver",
        &json!({"keys": [rsa.jwk.clone(), ec.jwk.clone()]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], rx.id.as_str());
    assert_eq!(body["keys"][0]["alg"], "RS256");
    assert_eq!(body["keys"][1]["alg"], "ES256");
    assert_eq!(body["keys"][1]["kid"], "ec-1");
    let now = clock.now().timestamp();

    for key in [&rsa, &ec] {
        let c = claims(&app, &rx.id, now);
        let assertion = key.sign(&c);
        let a = jwt_token(&app, &assertion, &[]).await;
        let token = a.token();
        let (status, _) = app.get_json("/ssf/streams", &token).await;
        assert_eq!(status, 200);
        // The same assertion again: its jti was seen.
        let d = jwt_token(&app, &assertion, &[])
            .await
            .error(401, "invalid_client");
        assert!(d.contains("jti"), "{d}");
    }
    // aud may be the issuer, or an array holding the token endpoint; client_id may be sent.
    let mut c = claims(&app, &rx.id, now);
    c["aud"] = json!(app.issuer);
    jwt_token(&app, &rsa.sign(&c), &[("scope", "streams:read")])
        .await
        .token();
    let mut c = claims(&app, &rx.id, now);
    c["aud"] = json!(["https://elsewhere.example", c["aud"].clone()]);
    jwt_token(&app, &ec.sign(&c), &[("client_id", &rx.id)])
        .await
        .token();

    // Refusals, each with a fresh jti.
    let refused = |edit: &dyn Fn(&mut Value)| {
        let mut c = claims(&app, &rx.id, now);
        edit(&mut c);
        c
    };
    let cases: Vec<(&str, Value)> = vec![
        (
            "wrong aud",
            refused(&|c| c["aud"] = json!("https://other.example/oauth2/token")),
        ),
        (
            "aud missing",
            refused(&|c| {
                c.as_object_mut().expect("obj").remove("aud");
            }),
        ),
        ("exp too far", refused(&|c| c["exp"] = json!(now + 3600))),
        ("exp 301 s ahead", refused(&|c| c["exp"] = json!(now + 301))),
        ("expired", refused(&|c| c["exp"] = json!(now - 31))),
        (
            "exp missing",
            refused(&|c| {
                c.as_object_mut().expect("obj").remove("exp");
            }),
        ),
        ("exp not a number", refused(&|c| c["exp"] = json!("soon"))),
        (
            "jti missing",
            refused(&|c| {
                c.as_object_mut().expect("obj").remove("jti");
            }),
        ),
        (
            "jti with a control character",
            refused(&|c| c["jti"] = json!("a\nb")),
        ),
        (
            "jti too long",
            refused(&|c| c["jti"] = json!("j".repeat(257))),
        ),
        ("sub differs", refused(&|c| c["sub"] = json!("someone"))),
        ("nbf ahead", refused(&|c| c["nbf"] = json!(now + 120))),
        ("iat ahead", refused(&|c| c["iat"] = json!(now + 120))),
    ];
    for (what, c) in &cases {
        jwt_token(&app, &rsa.sign(c), &[])
            .await
            .error(401, "invalid_client");
        let _ = what;
    }
    // exp exactly 300 s ahead is accepted.
    let mut c = claims(&app, &rx.id, now);
    c["exp"] = json!(now + 300);
    jwt_token(&app, &rsa.sign(&c), &[]).await.token();

    // A key not registered for the client; a kid naming the other key; another client's id.
    let stranger = SigningKey::rsa("rsa-1");
    jwt_token(&app, &stranger.sign(&claims(&app, &rx.id, now)), &[])
        .await
        .error(401, "invalid_client");
    let mut wrong_kid = SigningKey::ec("ec-1");
    wrong_kid.jwk["kid"] = json!("rsa-1");
    jwt_token(&app, &wrong_kid.sign(&claims(&app, &rx.id, now)), &[])
        .await
        .error(401, "invalid_client");
    let other = client(&app, "other", &receiver_scopes()).await;
    jwt_token(&app, &rsa.sign(&claims(&app, &other.id, now)), &[])
        .await
        .error(401, "invalid_client");
    // client_id differing from iss; an unknown assertion type; an unsigned token.
    jwt_token(
        &app,
        &rsa.sign(&claims(&app, &rx.id, now)),
        &[("client_id", &other.id)],
    )
    .await
    .error(401, "invalid_client");
    token_request(
        &app,
        None,
        &[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", &rsa.sign(&claims(&app, &rx.id, now))),
        ],
    )
    .await
    .error(401, "invalid_client");
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(&app, &rx.id, now).to_string());
    jwt_token(&app, &format!("{header}.{payload}."), &[])
        .await
        .error(401, "invalid_client");
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&app, &rx.id, now),
        &EncodingKey::from_secret(rx.secret.as_bytes()),
    )
    .expect("hs256");
    jwt_token(&app, &hs, &[]).await.error(401, "invalid_client");

    // A jti is remembered in the store: a replay after a restart is refused too.
    let assertion = ec.sign(&claims(&app, &rx.id, now));
    jwt_token(&app, &assertion, &[]).await.token();
    app.stop().await;
    let app = TestApp::spawn_with_clock(config_for(dir.path()), clock.clone()).await;
    jwt_token(&app, &assertion, &[])
        .await
        .error(401, "invalid_client");

    // Removing the keys ends private_key_jwt for the client.
    let (status, body) = register_keys(&app, "receiver", &json!({"keys": []})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["keys"], json!([]));
    jwt_token(&app, &ec.sign(&claims(&app, &rx.id, now)), &[])
        .await
        .error(401, "invalid_client");
    // Registering keys is audited.
    let (_, audit) = app
        .get_json("/v1/audit?action=client.jwks", ADMIN_TOKEN)
        .await;
    assert_eq!(audit.as_array().map(Vec::len), Some(2), "{audit}");
}

#[tokio::test]
async fn a_jti_may_be_used_again_once_its_assertion_has_expired() {
    let dir = tempdir();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = TestApp::spawn_with_clock(config_for(dir.path()), clock.clone()).await;
    let rx = client(&app, "receiver", &receiver_scopes()).await;
    let ec = SigningKey::ec("k");
    let (status, _) = register_keys(&app, "receiver", &json!({"keys": [ec.jwk.clone()]})).await;
    assert_eq!(status, 200);
    let now = clock.now().timestamp();
    let c = claims(&app, &rx.id, now);
    jwt_token(&app, &ec.sign(&c), &[]).await.token();
    // Past the first assertion's exp (and the skew), the jti is forgotten; a new assertion with
    // it and a new exp is not a replay of the old one.
    clock.advance(chrono::Duration::seconds(120 + 31));
    let later = clock.now().timestamp();
    let mut again = claims(&app, &rx.id, later);
    again["jti"] = c["jti"].clone();
    jwt_token(&app, &ec.sign(&again), &[]).await.token();
    jwt_token(&app, &ec.sign(&again), &[])
        .await
        .error(401, "invalid_client");
}

#[tokio::test]
async fn registered_keys_are_public_strong_and_checked() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    client(&app, "receiver", &receiver_scopes()).await;
    let reader = client(&app, "reader", &[Scope::StreamsRead]).await;
    let rsa = SigningKey::rsa("k1");

    let mut private = rsa.jwk.clone();
    private["d"] = json!("AQAB");
    let resp = app
        .call(
            Method::PUT,
            "/v1/admin/clients/receiver/jwks",
            ADMIN_TOKEN,
            Some(&json!({"keys": [private]})),
        )
        .await;
    let body = assert_problem(resp, 400).await;
    assert_eq!(body["errors"][0]["field"], "keys[0].d", "{body}");
    assert!(!body.to_string().contains("AQAB\""), "{body}");

    let weak = {
        let n = vec![0xffu8; 128];
        json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB"})
    };
    let secret = json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode("shared secret")});
    let mut p384 = SigningKey::ec("x").jwk;
    p384["crv"] = json!("P-384");
    for (bad, field) in [
        (json!({"keys": [weak]}), "keys[0].n"),
        (json!({"keys": [secret]}), "keys[0].k"),
        (json!({"keys": [p384]}), "keys[0].crv"),
        (json!({"keys": "none"}), "keys"),
        (json!([rsa.jwk.clone()]), "body"),
        (
            json!({"keys": [{"kty": "RSA\r\nX-Injected: 1"}]}),
            "keys[0].kty",
        ),
    ] {
        let (status, body) = register_keys(&app, "receiver", &bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
        assert!(!body.to_string().contains("X-Injected"), "{body}");
    }
    let (status, body) = register_keys(&app, "nobody", &json!({"keys": [rsa.jwk.clone()]})).await;
    assert_eq!(status, 404, "{body}");
    let resp = app
        .call(
            Method::PUT,
            "/v1/admin/clients/receiver/jwks",
            &reader.secret,
            Some(&json!({"keys": [rsa.jwk.clone()]})),
        )
        .await;
    assert_problem(resp, 403).await;
    // An access token never has admin, even from a client that has it.
    let admin = client(&app, "ops", &[Scope::Admin, Scope::StreamsRead]).await;
    let token = basic_token(&app, &admin, Some("streams:read"))
        .await
        .token();
    let resp = app
        .call(
            Method::PUT,
            "/v1/admin/clients/receiver/jwks",
            &token,
            Some(&json!({"keys": [rsa.jwk.clone()]})),
        )
        .await;
    assert_problem(resp, 403).await;
}

#[tokio::test]
async fn metadata_names_oauth_and_the_token_endpoint() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let ssf: Value = app
        .get("/.well-known/ssf-configuration")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        ssf["authorization_schemes"],
        json!([{"spec_urn": "urn:ietf:rfc:6749"}])
    );
    let resp = app.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let meta: Value = resp.json().await.expect("json");
    crate::helpers::assert_no_empty_arrays(&meta, "");
    assert_eq!(meta["issuer"], app.issuer.as_str());
    assert_eq!(
        meta["token_endpoint"],
        format!("{}/oauth2/token", app.issuer)
    );
    assert_eq!(meta["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(
        meta["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert_eq!(
        meta["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "ES256"])
    );
    let scopes: Vec<&str> = meta["scopes_supported"]
        .as_array()
        .expect("scopes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for s in Scope::ALL {
        assert!(scopes.contains(&s.as_str()), "{s}");
    }
    // The advertised endpoint is the one that answers.
    let rx = client(&app, "receiver", &receiver_scopes()).await;
    let resp = app
        .http
        .post(meta["token_endpoint"].as_str().expect("url"))
        .basic_auth(&rx.id, Some(&rx.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("send");
    answer(resp).await.token();
}

#[tokio::test]
async fn an_issuer_with_a_path_puts_the_token_endpoint_on_its_origin() {
    let dir = tempdir();
    let app = TestApp::spawn_with(crate::helpers::config_with_issuer_path(dir.path())).await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/tenant1",
    ] {
        let meta: Value = app.get(path).await.json().await.expect("json");
        assert_eq!(meta["issuer"], crate::helpers::ISSUER_WITH_PATH, "{path}");
        assert_eq!(
            meta["token_endpoint"], "https://ssf.example.com/oauth2/token",
            "{path}"
        );
    }
    // Discovery is on the public listener too; the token endpoint is not.
    let public = app.public_base.clone().expect("public listener");
    let resp = app
        .http
        .get(format!(
            "{public}/.well-known/oauth-authorization-server/tenant1"
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let resp = app
        .http
        .post(format!("{public}/oauth2/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("send");
    assert_problem(resp, 404).await;
    // With that issuer, an assertion for the issuer or the token endpoint on its origin works.
    let rx = client(&app, "receiver", &receiver_scopes()).await;
    let ec = SigningKey::ec("k");
    register_keys(&app, "receiver", &json!({"keys": [ec.jwk.clone()]})).await;
    let now = chrono::Utc::now().timestamp();
    for aud in [
        "https://ssf.example.com/tenant1",
        "https://ssf.example.com/oauth2/token",
    ] {
        let mut c = claims(&app, &rx.id, now);
        c["aud"] = json!(aud);
        jwt_token(&app, &ec.sign(&c), &[]).await.token();
    }
}

#[tokio::test]
async fn hostile_values_never_steer_the_answer() {
    let dir = tempdir();
    let app = TestApp::spawn(dir.path()).await;
    let rx = client(&app, "receiver", &receiver_scopes()).await;
    let long = "a".repeat(20_000);
    let hostile = [
        "x\r\nSet-Cookie: a=b",
        "\"quoted\\\"",
        "../../../etc/passwd",
        "%00",
        "\u{0}",
        "é",
        long.as_str(),
    ];
    for value in hostile {
        let cases: Vec<Vec<(&str, &str)>> = vec![
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", value),
                ("client_secret", &rx.secret),
            ],
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &rx.id),
                ("client_secret", value),
            ],
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &rx.id),
                ("client_secret", &rx.secret),
                ("scope", value),
            ],
            vec![
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", value),
            ],
            vec![
                ("grant_type", value),
                ("client_id", &rx.id),
                ("client_secret", &rx.secret),
            ],
        ];
        for form in cases {
            let a = token_request(&app, None, &form).await;
            assert!(
                [400, 401].contains(&a.status),
                "{value:?} {form:?}: {} {}",
                a.status,
                a.body
            );
            let error = a.body["error"].as_str().expect("error").to_owned();
            let d = a.error(a.status, &error);
            let shown = value.chars().take(40).collect::<String>();
            assert!(
                shown.len() < 3 || !d.contains(&shown),
                "{value:?} is quoted back: {d}"
            );
            for (name, v) in &a.headers {
                let v = v.to_str().unwrap_or_default();
                assert!(
                    !v.contains("Set-Cookie") && !v.contains("passwd"),
                    "{name}: {v}"
                );
            }
            assert!(a.headers.get("set-cookie").is_none());
        }
        // In Basic credentials (form-urlencoded inside, as RFC 6749 §2.3.1 says).
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        for (id, secret) in [
            (encoded.as_str(), rx.secret.as_str()),
            (rx.id.as_str(), encoded.as_str()),
        ] {
            let a = token_request(
                &app,
                Some((id, secret)),
                &[("grant_type", "client_credentials")],
            )
            .await;
            a.error(401, "invalid_client");
        }
    }
    // Basic credentials that are not base64, or have no colon.
    for raw in [
        "Basic %%%",
        "Basic",
        &format!("Basic {}", STANDARD.encode("no-colon")),
    ] {
        let a = answer(
            app.http
                .post(app.url("/oauth2/token"))
                .header("authorization", raw)
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .expect("send"),
        )
        .await;
        a.error(401, "invalid_client");
    }
    // Nothing was issued, and the service still answers.
    let (status, _) = app.get_json("/healthz", "").await;
    assert_eq!(status, 200);
    basic_token(&app, &rx, None).await.token();
}

/// Client secrets, access tokens and assertions stay out of the logs, even at `trace`, whether a
/// request succeeds or fails.
#[tokio::test]
async fn trace_logs_hold_no_client_secret_access_token_or_assertion() {
    let dir = tempdir();
    let admin = "bootstrap-admin-token-abcdefghijklmnop";
    let (server, addr) = crate::cli::Server::start(dir.path(), &[("SSF_ADMIN_TOKEN", admin)]);
    let base = format!("http://{addr}");
    let http = crate::helpers::http_client();
    let created: Value = http
        .post(format!("{base}/v1/admin/clients"))
        .bearer_auth(admin)
        .json(&json!({"name": "receiver", "scopes": ["streams:read", "streams:write"]}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    let secret = created["token"].as_str().expect("token").to_owned();
    let ec = SigningKey::ec("k");
    let resp = http
        .put(format!("{base}/v1/admin/clients/receiver/jwks"))
        .bearer_auth(admin)
        .json(&json!({"keys": [ec.jwk.clone()]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let token = |form: Vec<(&'static str, String)>, basic: Option<(String, String)>| {
        let mut req = http.post(format!("{base}/oauth2/token")).form(&form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        async move { answer(req.send().await.expect("send")).await }
    };
    let grant = || vec![("grant_type", "client_credentials".to_owned())];
    let basic = token(grant(), Some((id.clone(), secret.clone())))
        .await
        .token();
    let mut form = grant();
    form.push(("client_id", id.clone()));
    form.push(("client_secret", secret.clone()));
    let post = token(form, None).await.token();
    let now = chrono::Utc::now().timestamp();
    let assertion = ec.sign(&json!({
        "iss": id, "sub": id, "aud": format!("{base}/oauth2/token"),
        "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string(),
    }));
    let mut form = grant();
    form.push(("client_assertion_type", JWT_BEARER.to_owned()));
    form.push(("client_assertion", assertion.clone()));
    let jwt = token(form.clone(), None).await.token();
    // Failures: a replay, a wrong secret.
    token(form, None).await.error(401, "invalid_client");
    let wrong = format!("{secret}-wrong");
    token(grant(), Some((id.clone(), wrong.clone())))
        .await
        .error(401, "invalid_client");
    for t in [&basic, &post, &jwt] {
        let resp = http
            .get(format!("{base}/ssf/streams"))
            .bearer_auth(t)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
    }
    let log = server.stop();
    let all = log.join("\n");
    assert!(all.contains("access token issued"), "issuance is logged");
    assert!(all.contains("token request refused"), "refusals are logged");
    for (what, s) in [
        ("client secret", secret.as_str()),
        ("wrong secret", wrong.as_str()),
        ("access token (basic)", basic.as_str()),
        ("access token (post)", post.as_str()),
        ("access token (jwt)", jwt.as_str()),
        ("assertion", assertion.as_str()),
        ("admin token", admin),
    ] {
        assert!(!all.contains(s), "the {what} is in the logs");
    }
    let basic_credentials = STANDARD.encode(format!("{id}:{secret}"));
    assert!(
        !all.contains(&basic_credentials),
        "the Basic credentials are in the logs"
    );
    for needle in ["client_secret=", "client_assertion=", "eyJ"] {
        let hit = log.iter().find(|l| l.contains(needle));
        assert!(hit.is_none(), "{needle:?} in the logs: {hit:?}");
    }
}
