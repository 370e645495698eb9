//! The sandbox's OAuth 2.0 for Okta: service apps, `POST /oauth2/v1/token` (client credentials,
//! `private_key_jwt`, DPoP with nonces) and Bearer/DPoP access tokens on the Management API.
//!
//! Client assertions and DPoP proofs are built here with jsonwebtoken / aws-lc-rs (the product's
//! stack) while the sandbox verifies them with josekit, so the two stacks are checked against each
//! other.

use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use reqwest::header::HeaderMap;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use ssf_transmitter::clock::{Clock as _, ManualClock};
use ssf_transmitter::sandbox::{Sandbox, SandboxOAuthApp, SandboxState};
use tokio::sync::oneshot;

use crate::helpers::{http_client, tempdir};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const USER: &str = "00u00000000000000001";

/// A running sandbox on a manual clock.
struct Org {
    url: String,
    api_token: String,
    app: SandboxOAuthApp,
    state: Arc<SandboxState>,
    clock: Arc<ManualClock>,
    http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

/// A signing key (EC P-256 or RSA) for assertions or DPoP proofs.
struct Key {
    alg: Algorithm,
    enc: EncodingKey,
    jwk: jsonwebtoken::jwk::Jwk,
    /// For hand-made EC JWTs.
    pkcs8: Vec<u8>,
}

impl Key {
    fn ec() -> Key {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("ec key");
        let pkcs8 = pair.to_pkcs8v1().expect("pkcs8").as_ref().to_vec();
        let enc = EncodingKey::from_ec_der(&pkcs8);
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&enc, Algorithm::ES256).expect("jwk");
        Key {
            alg: Algorithm::ES256,
            enc,
            jwk,
            pkcs8,
        }
    }

    fn ec_from_pem(pem: &str) -> Key {
        let block = pem::parse(pem).expect("pem");
        let enc = EncodingKey::from_ec_pem(pem.as_bytes()).expect("ec pem");
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&enc, Algorithm::ES256).expect("jwk");
        Key {
            alg: Algorithm::ES256,
            enc,
            jwk,
            pkcs8: block.contents().to_vec(),
        }
    }

    fn rsa() -> Key {
        use aws_lc_rs::encoding::AsDer as _;
        let pair =
            aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa key");
        let der: aws_lc_rs::encoding::Pkcs8V1Der = pair.as_der().expect("der");
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
        let enc = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("rsa pem");
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&enc, Algorithm::RS256).expect("jwk");
        Key {
            alg: Algorithm::RS256,
            enc,
            jwk,
            pkcs8: Vec::new(),
        }
    }

    fn public_jwk(&self) -> Value {
        serde_json::to_value(&self.jwk).expect("jwk json")
    }

    fn thumbprint(&self) -> String {
        self.jwk
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .expect("thumbprint")
    }

    fn sign(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.enc).expect("sign")
    }

    /// An ES256 JWT with an arbitrary header, signed with aws-lc-rs directly.
    fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.pkcs8).expect("pkcs8");
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

fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        token.as_bytes(),
    ))
}

fn jti() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A token-endpoint or resource answer.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    fn oauth_error(&self, status: u16, error: &str, description: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.body,
            json!({"error": error, "error_description": description}),
        );
        assert_eq!(self.header("cache-control"), Some("no-store"));
    }

    #[track_caller]
    fn okta_error(&self, status: u16, code: &str, summary: &str, challenge: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["errorCode"], code, "{}", self.body);
        assert_eq!(self.body["errorSummary"], summary, "{}", self.body);
        assert_eq!(self.body["errorLink"], code, "{}", self.body);
        assert_eq!(self.body["errorCauses"], json!([]), "{}", self.body);
        assert!(
            self.body["errorId"]
                .as_str()
                .is_some_and(|id| id.starts_with("oae"))
        );
        assert_eq!(self.header("www-authenticate"), challenge);
    }

    #[track_caller]
    fn invalid_token(&self, challenge: &str) {
        self.okta_error(401, "E0000011", "Invalid token provided", Some(challenge));
    }
}

async fn answer(r: reqwest::RequestBuilder) -> Answer {
    let r = r.send().await.expect("send");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

impl Org {
    async fn start() -> Org {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let sandbox = Sandbox::bind("127.0.0.1:0".parse().expect("addr"), clock.clone())
            .await
            .expect("bind sandbox");
        let url = sandbox.org_url().to_owned();
        let api_token = sandbox.api_token().expose_secret().to_owned();
        let app = sandbox.oauth_app();
        let state = sandbox.state();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(sandbox.run(async move {
            let _ = rx.await;
        }));
        Org {
            url,
            api_token,
            app,
            state,
            clock,
            http: http_client(),
            _stop: tx,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn token_url(&self) -> String {
        format!("{}/oauth2/v1/token", self.url)
    }

    fn default_key(&self) -> Key {
        Key::ec_from_pem(self.app.private_key_pem.expose_secret())
    }

    /// A client assertion with overridable claims (`null` removes one).
    fn assertion_with(&self, client_id: &str, key: &Key, kid: Option<&str>, over: Value) -> String {
        let mut claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": self.token_url(),
            "iat": self.now(),
            "exp": self.now() + 300,
            "jti": jti(),
        });
        for (k, v) in over.as_object().expect("overrides") {
            if v.is_null() {
                claims.as_object_mut().expect("claims").remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        let mut header = Header::new(key.alg);
        header.kid = kid.map(str::to_owned);
        key.sign(&header, &claims)
    }

    fn assertion(&self) -> String {
        self.assertion_with(
            &self.app.client_id,
            &self.default_key(),
            Some(&self.app.key_id),
            json!({}),
        )
    }

    /// A DPoP proof with overridable claims (`null` removes one).
    fn proof_with(&self, key: &Key, htm: &str, htu: &str, over: Value) -> String {
        let mut claims = json!({"htm": htm, "htu": htu, "iat": self.now(), "jti": jti()});
        for (k, v) in over.as_object().expect("overrides") {
            if v.is_null() {
                claims.as_object_mut().expect("claims").remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        let mut header = Header::new(key.alg);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(key.jwk.clone());
        key.sign(&header, &claims)
    }

    fn token_proof(&self, key: &Key, nonce: Option<&str>) -> String {
        self.proof_with(
            key,
            "POST",
            &self.token_url(),
            nonce.map_or(json!({}), |n| json!({"nonce": n})),
        )
    }

    async fn token_request(&self, params: &[(&str, &str)], dpop: Option<&str>) -> Answer {
        let mut r = self
            .http
            .post(self.token_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(params));
        if let Some(p) = dpop {
            r = r.header("dpop", p);
        }
        answer(r).await
    }

    async fn client_credentials(&self, assertion: &str, scope: &str, dpop: Option<&str>) -> Answer {
        self.token_request(
            &[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion),
            ],
            dpop,
        )
        .await
    }

    /// The nonce dance for the default app; returns the access token.
    async fn dpop_token(&self, dpop_key: &Key, scope: &str) -> String {
        let assertion = self.assertion();
        let first = self
            .client_credentials(&assertion, scope, Some(&self.token_proof(dpop_key, None)))
            .await;
        first.oauth_error(
            400,
            "use_dpop_nonce",
            "Authorization server requires nonce in DPoP proof.",
        );
        let nonce = first.header("dpop-nonce").expect("DPoP-Nonce").to_owned();
        let ok = self
            .client_credentials(
                &assertion,
                scope,
                Some(&self.token_proof(dpop_key, Some(&nonce))),
            )
            .await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        ok.body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// A Management API call with `Authorization: DPoP` and a fresh proof.
    async fn dpop_call(&self, method: Method, path: &str, token: &str, key: &Key) -> Answer {
        let proof = self.proof_with(
            key,
            method.as_str(),
            &format!("{}{path}", self.url),
            json!({"ath": ath(token)}),
        );
        answer(
            self.http
                .request(method, format!("{}{path}", self.url))
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof),
        )
        .await
    }

    async fn ssws(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("authorization", format!("SSWS {}", self.api_token));
        if let Some(b) = body {
            r = r.json(&b);
        }
        answer(r).await
    }

    /// Registers a service app with one public key through the control endpoint.
    async fn register(&self, key: &Key, kid: &str, scopes: &[&str], dpop_bound: bool) -> String {
        let mut jwk = key.public_jwk();
        jwk["kid"] = json!(kid);
        let r = self
            .ssws(
                Method::POST,
                "/__sandbox/oauth/clients",
                Some(json!({"jwks": {"keys": [jwk]}, "scopes": scopes, "dpop_bound": dpop_bound})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["client_id"].as_str().expect("client_id").to_owned()
    }

    async fn token_events(&self) -> Vec<Value> {
        let r = self
            .ssws(
                Method::GET,
                "/api/v1/logs?filter=eventType%20eq%20%22app.oauth2.as.token.grant.access_token%22",
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body.as_array().expect("events").clone()
    }
}

#[tokio::test]
async fn dpop_nonce_dance_then_users_with_dpop() {
    let org = Org::start().await;
    assert!(org.app.client_id.starts_with("0oa") && org.app.client_id.len() == 20);
    let dpop_key = Key::ec();
    let assertion = org.assertion();
    let scope = "okta.users.read okta.groups.read";

    // No nonce yet: Okta answers use_dpop_nonce with a DPoP-Nonce header.
    let first = org
        .client_credentials(&assertion, scope, Some(&org.token_proof(&dpop_key, None)))
        .await;
    first.oauth_error(
        400,
        "use_dpop_nonce",
        "Authorization server requires nonce in DPoP proof.",
    );
    let nonce = first.header("dpop-nonce").expect("DPoP-Nonce").to_owned();
    assert!(nonce.len() >= 32, "{nonce}");

    // The same assertion again (Okta's SDKs resend it) with a proof carrying the nonce.
    let ok = org
        .client_credentials(
            &assertion,
            scope,
            Some(&org.token_proof(&dpop_key, Some(&nonce))),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.header("cache-control"), Some("no-store"));
    assert_eq!(ok.body["token_type"], "DPoP");
    assert_eq!(ok.body["expires_in"], 3600);
    assert_eq!(ok.body["scope"], scope);
    let token = ok.body["access_token"].as_str().expect("token").to_owned();
    assert!(token.len() >= 32);
    let keys: Vec<&str> = ok
        .body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{}", ok.body);

    let users = org
        .dpop_call(Method::GET, "/api/v1/users?limit=2", &token, &dpop_key)
        .await;
    assert_eq!(users.status, 200, "{}", users.body);
    assert_eq!(users.body.as_array().expect("users").len(), 2);
    assert_eq!(users.header("www-authenticate"), None);
    let groups = org
        .dpop_call(Method::GET, "/api/v1/groups", &token, &dpop_key)
        .await;
    assert_eq!(groups.status, 200, "{}", groups.body);

    // The same nonce keeps working for the next token.
    let again = org
        .client_credentials(
            &org.assertion(),
            "okta.users.read",
            Some(&org.token_proof(&dpop_key, Some(&nonce))),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);

    // The System Log has the failed (nonce) and the successful grants, actor the client.
    let events = org.token_events().await;
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(
        events[0]["outcome"],
        json!({"result": "FAILURE", "reason": "use_dpop_nonce"})
    );
    assert_eq!(events[1]["outcome"], json!({"result": "SUCCESS"}));
    for e in &events {
        assert_eq!(e["eventType"], "app.oauth2.as.token.grant.access_token");
        assert_eq!(e["actor"]["id"], org.app.client_id.as_str());
    }
}

#[tokio::test]
async fn rs256_client_without_dpop_gets_bearer_tokens_limited_to_its_scopes() {
    let org = Org::start().await;
    let key = Key::rsa();
    let mut jwk = key.public_jwk();
    jwk["kid"] = json!("rsa-1");
    let created = org
        .ssws(
            Method::POST,
            "/__sandbox/oauth/clients",
            Some(json!({
                "client_id": "0oaRsaClient000000001",
                "jwks": {"keys": [jwk]},
                "scopes": ["okta.users.read", "okta.logs.read"],
                "dpop_bound": false,
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body,
        json!({
            "client_id": "0oaRsaClient000000001",
            "jwks": {"keys": [jwk]},
            "scopes": ["okta.users.read", "okta.logs.read"],
            "dpop_bound": false,
        })
    );
    let listed = org
        .ssws(Method::GET, "/__sandbox/oauth/clients", None)
        .await;
    assert_eq!(listed.status, 200);
    let listed = listed.body.as_array().expect("apps").clone();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["client_id"], org.app.client_id.as_str());
    assert_eq!(listed[0]["dpop_bound"], true);
    assert_eq!(listed[0]["jwks"]["keys"][0]["kid"], org.app.key_id.as_str());
    assert!(listed[0]["jwks"]["keys"][0].get("d").is_none());
    assert_eq!(listed[1], created.body);
    assert_eq!(org.state.oauth_clients().len(), 2);

    let assertion = org.assertion_with("0oaRsaClient000000001", &key, Some("rsa-1"), json!({}));
    let ok = org
        .client_credentials(&assertion, "okta.users.read", None)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["token_type"], "Bearer");
    assert_eq!(ok.body["scope"], "okta.users.read");
    let token = ok.body["access_token"].as_str().expect("token");

    let bearer = |method: Method, path: &str| {
        org.http
            .request(method, format!("{}{path}", org.url))
            .header("authorization", format!("Bearer {token}"))
    };
    let users = answer(bearer(Method::GET, &format!("/api/v1/users/{USER}"))).await;
    assert_eq!(users.status, 200, "{}", users.body);
    assert_eq!(users.body["id"], USER);

    // Only okta.users.read was requested: managing users, groups and roles is forbidden.
    let insufficient = r#"Bearer error="insufficient_scope", error_description="The access token provided does not contain the required scopes.""#;
    for (method, path) in [
        (
            Method::POST,
            format!("/api/v1/users/{USER}/lifecycle/suspend"),
        ),
        (Method::GET, "/api/v1/groups".to_owned()),
        (Method::GET, format!("/api/v1/users/{USER}/roles")),
        (Method::GET, "/api/v1/logs".to_owned()),
        (Method::GET, "/api/v1/security-events-providers".to_owned()),
    ] {
        let r = answer(bearer(method.clone(), &path)).await;
        r.okta_error(
            403,
            "E0000006",
            "You do not have permission to perform the requested action",
            Some(insufficient),
        );
    }
    // The user was not suspended.
    let user = org
        .ssws(Method::GET, &format!("/api/v1/users/{USER}"), None)
        .await;
    assert_eq!(user.body["status"], "ACTIVE", "{}", user.body);

    // A bearer token sent with the DPoP scheme is refused.
    let dpop_key = Key::ec();
    let r = org
        .dpop_call(Method::GET, "/api/v1/users", token, &dpop_key)
        .await;
    r.invalid_token(r#"Bearer error="invalid_token", error_description="The access token is not DPoP-bound; send it as 'Authorization: Bearer'.""#);

    // An RS256 client may also be DPoP-bound by sending a proof (RFC 9449).
    let assertion = org.assertion_with("0oaRsaClient000000001", &key, None, json!({}));
    let first = org
        .client_credentials(
            &assertion,
            "okta.users.read",
            Some(&org.token_proof(&dpop_key, None)),
        )
        .await;
    assert_eq!(first.body["error"], "use_dpop_nonce", "{}", first.body);
}

#[tokio::test]
async fn token_requests_are_refused_like_okta() {
    let org = Org::start().await;
    let key = org.default_key();
    let id = org.app.client_id.clone();
    let kid = org.app.key_id.clone();
    let dpop_key = Key::ec();
    let assertion = org.assertion();

    let r = org
        .token_request(
            &[
                ("grant_type", "password"),
                ("scope", "okta.users.read"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ],
            None,
        )
        .await;
    r.oauth_error(
        400,
        "unsupported_grant_type",
        "The grant type in the request isn't supported.",
    );

    let r = org
        .token_request(
            &[
                ("grant_type", "client_credentials"),
                ("scope", "okta.users.read"),
            ],
            None,
        )
        .await;
    r.oauth_error(401, "invalid_client", "No client credentials found");

    let r = org
        .token_request(
            &[
                ("grant_type", "client_credentials"),
                ("scope", "okta.users.read"),
                ("client_assertion_type", "urn:example:bogus"),
                ("client_assertion", &assertion),
            ],
            None,
        )
        .await;
    r.oauth_error(
        400,
        "invalid_request",
        "The `client_assertion_type` is invalid.",
    );

    let r = org
        .token_request(
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ],
            None,
        )
        .await;
    r.oauth_error(400, "invalid_scope", "No scopes were requested.");

    let r = org
        .client_credentials(&assertion, "okta.users.read okta.apps.manage okta.x", None)
        .await;
    r.oauth_error(
        400,
        "invalid_scope",
        "The following scopes are not allowed: okta.apps.manage, okta.x",
    );

    let r = org
        .client_credentials(
            &org.assertion_with(
                &id,
                &key,
                Some(&kid),
                json!({"aud": format!("{}/oauth2/default/v1/token", org.url)}),
            ),
            "okta.users.read",
            None,
        )
        .await;
    r.oauth_error(
        401,
        "invalid_client",
        &format!(
            "The audience claim for client_assertion must be the endpoint invoked for the request: '{}'.",
            org.token_url()
        ),
    );

    let r = org
        .client_credentials(
            &org.assertion_with(&id, &key, Some(&kid), json!({"exp": org.now() - 5})),
            "okta.users.read",
            None,
        )
        .await;
    r.oauth_error(
        401,
        "invalid_client",
        "The client_assertion token is expired.",
    );

    let r = org
        .client_credentials(
            &org.assertion_with(&id, &key, Some(&kid), json!({"exp": org.now() + 7200})),
            "okta.users.read",
            None,
        )
        .await;
    r.oauth_error(
        401,
        "invalid_client",
        "The client_assertion token has an expiration too far into the future: at most one hour.",
    );

    let r = org
        .client_credentials(
            &org.assertion_with("0oaUnknownClient00001", &key, Some(&kid), json!({})),
            "okta.users.read",
            None,
        )
        .await;
    r.oauth_error(
        401,
        "invalid_client",
        "The client_assertion token's issuer '0oaUnknownClient00001' is not the client_id of a registered app.",
    );

    let r = org
        .client_credentials(
            &org.assertion_with(&id, &key, Some(&kid), json!({"sub": "someone-else"})),
            "okta.users.read",
            None,
        )
        .await;
    r.oauth_error(
        401,
        "invalid_client",
        "The client_assertion token's 'sub' claim must be the client_id (equal to 'iss').",
    );

    // Signed by a key the client did not register (with and without a kid).
    let stranger = Key::ec();
    let r = org
        .client_credentials(
            &org.assertion_with(&id, &stranger, Some(&kid), json!({})),
            "okta.users.read",
            None,
        )
        .await;
    r.oauth_error(
        401,
        "invalid_client",
        "The client_assertion signature is invalid.",
    );
    let r = org
        .client_credentials(
            &org.assertion_with(&id, &stranger, None, json!({})),
            "okta.users.read",
            None,
        )
        .await;
    r.oauth_error(
        401,
        "invalid_client",
        "The client_assertion signature is invalid.",
    );
    let r = org
        .client_credentials(
            &org.assertion_with(&id, &key, Some("other-kid"), json!({})),
            "okta.users.read",
            None,
        )
        .await;
    r.oauth_error(
        401,
        "invalid_client",
        "The client_assertion token's 'kid' 'other-kid' is not a key of the client.",
    );

    // Without kid the registered keys are tried; a used jti is refused afterwards.
    let once = org.assertion_with(&id, &key, None, json!({}));
    let first = org
        .client_credentials(
            &once,
            "okta.users.read",
            Some(&org.token_proof(&dpop_key, None)),
        )
        .await;
    let nonce = first.header("dpop-nonce").expect("nonce").to_owned();
    let ok = org
        .client_credentials(
            &once,
            "okta.users.read",
            Some(&org.token_proof(&dpop_key, Some(&nonce))),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let replay = org
        .client_credentials(
            &once,
            "okta.users.read",
            Some(&org.token_proof(&dpop_key, Some(&nonce))),
        )
        .await;
    replay.oauth_error(
        401,
        "invalid_client",
        "The client_assertion token has already been used: its 'jti' was seen before.",
    );

    // Failures are in the System Log with the error as the reason.
    let events = org.token_events().await;
    let failures: Vec<&Value> = events
        .iter()
        .filter(|e| e["outcome"]["result"] == "FAILURE")
        .collect();
    assert_eq!(failures.len(), 15, "{events:#?}");
    assert_eq!(failures[0]["outcome"]["reason"], "unsupported_grant_type");
    assert_eq!(failures[1]["outcome"]["reason"], "invalid_client");
    assert_eq!(failures[1]["actor"]["id"], "unknown");
    assert_eq!(failures[5]["outcome"]["reason"], "invalid_client");
    assert_eq!(failures[5]["actor"]["id"], id.as_str());
    assert_eq!(
        failures.last().expect("last")["outcome"]["reason"],
        "invalid_client"
    );
}

#[tokio::test]
async fn token_endpoint_checks_dpop_proofs() {
    let org = Org::start().await;
    let dpop_key = Key::ec();
    let scope = "okta.users.read";

    let missing = org.client_credentials(&org.assertion(), scope, None).await;
    missing.oauth_error(
        400,
        "invalid_dpop_proof",
        "The DPoP proof JWT header is missing.",
    );
    assert_eq!(missing.header("dpop-nonce"), None);

    let nonce = org
        .client_credentials(
            &org.assertion(),
            scope,
            Some(&org.token_proof(&dpop_key, None)),
        )
        .await
        .header("dpop-nonce")
        .expect("nonce")
        .to_owned();
    let n = json!({ "nonce": nonce });

    // A stale (unknown) nonce gets a fresh one.
    let stale = org
        .client_credentials(
            &org.assertion(),
            scope,
            Some(&org.token_proof(&dpop_key, Some("not-a-nonce-of-this-org"))),
        )
        .await;
    stale.oauth_error(
        400,
        "use_dpop_nonce",
        "Authorization server requires nonce in DPoP proof.",
    );
    assert_eq!(stale.header("dpop-nonce"), Some(nonce.as_str()));

    let token_url = org.token_url();
    let wrong_htu = org.proof_with(
        &dpop_key,
        "POST",
        &format!("{}/oauth2/v1/tokens", org.url),
        n.clone(),
    );
    let wrong_htm = org.proof_with(&dpop_key, "GET", &token_url, n.clone());
    let old = org.proof_with(
        &dpop_key,
        "POST",
        &token_url,
        json!({"nonce": nonce, "iat": org.now() - 301}),
    );
    let no_jti = org.proof_with(
        &dpop_key,
        "POST",
        &token_url,
        json!({"nonce": nonce, "jti": null}),
    );
    let mut jwt_typ = Header::new(Algorithm::ES256);
    jwt_typ.typ = Some("JWT".into());
    jwt_typ.jwk = Some(dpop_key.jwk.clone());
    let wrong_typ = dpop_key.sign(
        &jwt_typ,
        &json!({"htm": "POST", "htu": token_url, "iat": org.now(), "jti": jti(), "nonce": nonce}),
    );
    let mut no_jwk = Header::new(Algorithm::ES256);
    no_jwk.typ = Some("dpop+jwt".into());
    let no_jwk = dpop_key.sign(
        &no_jwk,
        &json!({"htm": "POST", "htu": token_url, "iat": org.now(), "jti": jti(), "nonce": nonce}),
    );
    let mut private_jwk = dpop_key.public_jwk();
    private_jwk["d"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
    let private_jwk = dpop_key.sign_raw(
        &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private_jwk}),
        &json!({"htm": "POST", "htu": token_url, "iat": org.now(), "jti": jti(), "nonce": nonce}),
    );
    // Header names someone else's key.
    let other = Key::ec();
    let mut forged = Header::new(Algorithm::ES256);
    forged.typ = Some("dpop+jwt".into());
    forged.jwk = Some(other.jwk.clone());
    let forged = dpop_key.sign(
        &forged,
        &json!({"htm": "POST", "htu": token_url, "iat": org.now(), "jti": jti(), "nonce": nonce}),
    );
    // The client's own authentication key may not be the DPoP key.
    let client_key = org.default_key();
    let same_key = org.proof_with(&client_key, "POST", &token_url, n.clone());

    let cases = [
        (
            wrong_htu,
            format!("The DPoP proof 'htu' claim must be the request URL '{token_url}'."),
        ),
        (
            wrong_htm,
            "The DPoP proof 'htm' claim must be the request method 'POST'.".to_owned(),
        ),
        (
            old,
            "The DPoP proof 'iat' claim is not within 300 seconds of the server time.".to_owned(),
        ),
        (no_jti, "The DPoP proof has no 'jti' claim.".to_owned()),
        (
            wrong_typ,
            "The DPoP proof JWT header 'typ' must be 'dpop+jwt'.".to_owned(),
        ),
        (
            no_jwk,
            "The DPoP proof JWT header has no 'jwk' (public key).".to_owned(),
        ),
        (
            private_jwk,
            "The DPoP proof JWT header 'jwk' must be a public key; it contains private key members."
                .to_owned(),
        ),
        (
            forged,
            "The DPoP proof JWT signature is invalid.".to_owned(),
        ),
        (
            same_key,
            "The DPoP proof must be signed with a key other than the client's authentication key."
                .to_owned(),
        ),
        (
            "not.a.jwt".to_owned(),
            "The DPoP proof JWT is malformed: not a compact JWS with JSON header and claims."
                .to_owned(),
        ),
    ];
    for (proof, description) in cases {
        let r = org
            .client_credentials(&org.assertion(), scope, Some(&proof))
            .await;
        r.oauth_error(400, "invalid_dpop_proof", &description);
    }

    // A proof that got a token cannot be used again.
    let good = org.token_proof(&dpop_key, Some(&nonce));
    let ok = org
        .client_credentials(&org.assertion(), scope, Some(&good))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let again = org
        .client_credentials(&org.assertion(), scope, Some(&good))
        .await;
    again.oauth_error(
        400,
        "invalid_dpop_proof",
        "The DPoP proof 'jti' was already used.",
    );

    // After three days the nonce is stale and a new one is handed out.
    org.clock.advance(chrono::Duration::hours(73));
    let later = org
        .client_credentials(
            &org.assertion(),
            scope,
            Some(&org.token_proof(&dpop_key, Some(&nonce))),
        )
        .await;
    later.oauth_error(
        400,
        "use_dpop_nonce",
        "Authorization server requires nonce in DPoP proof.",
    );
    let fresh = later.header("dpop-nonce").expect("nonce");
    assert_ne!(fresh, nonce);
}

#[tokio::test]
async fn resource_calls_check_token_proof_and_scope() {
    let org = Org::start().await;
    let dpop_key = Key::ec();
    let token = org
        .dpop_token(&dpop_key, "okta.users.read okta.roles.read")
        .await;
    let users = format!("{}/api/v1/users", org.url);
    let call = |proof: Option<String>, scheme: &str| {
        let mut r = org
            .http
            .get(&users)
            .header("authorization", format!("{scheme} {token}"));
        if let Some(p) = proof {
            r = r.header("dpop", p);
        }
        r
    };
    let challenge = |d: &str| format!(r#"DPoP error="invalid_token", error_description="{d}""#);

    // Okay, and the query is not part of htu.
    let ok = answer(call(
        Some(org.proof_with(
            &dpop_key,
            "GET",
            &format!("{users}?x=1"),
            json!({"ath": ath(&token)}),
        )),
        "DPoP",
    ))
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    let cases: Vec<(Option<String>, &str, String)> = vec![
        (
            None,
            "DPoP",
            challenge("The DPoP proof JWT header is missing."),
        ),
        (
            Some(org.proof_with(&dpop_key, "GET", &users, json!({"ath": ath(&token)}))),
            "Bearer",
            challenge(
                "The access token is DPoP-bound; send it as 'Authorization: DPoP' with a DPoP proof.",
            ),
        ),
        (
            Some(org.proof_with(
                &dpop_key,
                "GET",
                &format!("{}/api/v1/groups", org.url),
                json!({"ath": ath(&token)}),
            )),
            "DPoP",
            challenge(&format!(
                "The DPoP proof 'htu' claim must be the request URL '{users}'."
            )),
        ),
        (
            Some(org.proof_with(&dpop_key, "POST", &users, json!({"ath": ath(&token)}))),
            "DPoP",
            challenge("The DPoP proof 'htm' claim must be the request method 'GET'."),
        ),
        (
            Some(org.proof_with(
                &dpop_key,
                "GET",
                &users,
                json!({"ath": ath("another token")}),
            )),
            "DPoP",
            challenge(
                "The DPoP proof 'ath' claim must be the base64url SHA-256 hash of the access token.",
            ),
        ),
        (
            Some(org.proof_with(&dpop_key, "GET", &users, json!({}))),
            "DPoP",
            challenge(
                "The DPoP proof 'ath' claim must be the base64url SHA-256 hash of the access token.",
            ),
        ),
        (
            Some(org.proof_with(&Key::ec(), "GET", &users, json!({"ath": ath(&token)}))),
            "DPoP",
            challenge(
                "The DPoP proof is signed with a key other than the one the access token is bound to.",
            ),
        ),
    ];
    for (proof, scheme, expected) in cases {
        answer(call(proof, scheme)).await.invalid_token(&expected);
    }

    // A proof is good for one call only.
    let proof = org.proof_with(&dpop_key, "GET", &users, json!({"ath": ath(&token)}));
    assert_eq!(answer(call(Some(proof.clone()), "DPoP")).await.status, 200);
    answer(call(Some(proof), "DPoP"))
        .await
        .invalid_token(&challenge("The DPoP proof 'jti' was already used."));

    // Unknown tokens.
    let r = answer(
        org.http
            .get(&users)
            .header("authorization", "Bearer not-a-token"),
    )
    .await;
    r.invalid_token(
        r#"Bearer error="invalid_token", error_description="The access token is invalid.""#,
    );

    // Scope: roles can be read, not managed; users not managed.
    let roles = org
        .dpop_call(
            Method::GET,
            &format!("/api/v1/users/{USER}/roles"),
            &token,
            &dpop_key,
        )
        .await;
    assert_eq!(roles.status, 200, "{}", roles.body);
    let forbidden = Some(
        r#"DPoP error="insufficient_scope", error_description="The access token provided does not contain the required scopes.""#,
    );
    let r = org
        .dpop_call(
            Method::POST,
            &format!("/api/v1/users/{USER}/lifecycle/suspend"),
            &token,
            &dpop_key,
        )
        .await;
    r.okta_error(
        403,
        "E0000006",
        "You do not have permission to perform the requested action",
        forbidden,
    );
    let r = org
        .dpop_call(
            Method::DELETE,
            &format!("/api/v1/users/{USER}/sessions"),
            &token,
            &dpop_key,
        )
        .await;
    r.okta_error(
        403,
        "E0000006",
        "You do not have permission to perform the requested action",
        forbidden,
    );

    // Sandbox controls take only the SSWS token.
    let r = org
        .dpop_call(Method::GET, "/__sandbox/oauth/clients", &token, &dpop_key)
        .await;
    r.okta_error(401, "E0000011", "Invalid token provided", None);
    let r = org
        .dpop_call(
            Method::POST,
            "/__sandbox/oauth/expire-tokens",
            &token,
            &dpop_key,
        )
        .await;
    assert_eq!(r.status, 401);

    // Expired tokens: the client has to get a new one, which works.
    let expire = org
        .ssws(Method::POST, "/__sandbox/oauth/expire-tokens", None)
        .await;
    assert_eq!(expire.status, 204);
    let r = org
        .dpop_call(Method::GET, "/api/v1/users", &token, &dpop_key)
        .await;
    r.invalid_token(&challenge("The access token is expired."));
    let fresh = org.dpop_token(&dpop_key, "okta.users.read").await;
    assert_ne!(fresh, token);
    let r = org
        .dpop_call(Method::GET, "/api/v1/users", &fresh, &dpop_key)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // And tokens expire by themselves after an hour.
    org.clock.advance(chrono::Duration::seconds(3600));
    let r = org
        .dpop_call(Method::GET, "/api/v1/users", &fresh, &dpop_key)
        .await;
    r.invalid_token(&challenge("The access token is expired."));

    // SSWS keeps working, with or without the space.
    let r = answer(
        org.http
            .get(&users)
            .header("authorization", format!("SSWS{}", org.api_token)),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn registration_takes_public_keys_only_and_unique_ids() {
    let org = Org::start().await;
    let key = Key::ec();
    let mut private = key.public_jwk();
    private["d"] = json!("AAAA");
    let r = org
        .ssws(
            Method::POST,
            "/__sandbox/oauth/clients",
            Some(json!({"jwks": {"keys": [private]}, "scopes": ["okta.users.read"]})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["errorCode"], "E0000001");
    assert_eq!(
        r.body["errorCauses"][0]["errorSummary"],
        "jwks.keys[0]: private key members are not accepted; register public keys only"
    );

    // No kid: the thumbprint becomes the kid; DPoP-bound by default.
    let r = org
        .ssws(
            Method::POST,
            "/__sandbox/oauth/clients",
            Some(json!({"jwks": {"keys": [key.public_jwk()]}, "scopes": ["okta.users.read"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["jwks"]["keys"][0]["kid"], key.thumbprint().as_str());
    assert_eq!(r.body["dpop_bound"], true);
    let id = r.body["client_id"].as_str().expect("id");
    assert!(id.starts_with("0oa") && id.len() == 20, "{id}");

    let again = org
        .ssws(
            Method::POST,
            "/__sandbox/oauth/clients",
            Some(json!({"client_id": id, "jwks": {"keys": [key.public_jwk()]}, "scopes": ["okta.users.read"]})),
        )
        .await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert_eq!(
        again.body["errorCauses"][0]["errorSummary"],
        format!("client_id: '{id}' is already registered")
    );

    let r = org
        .ssws(
            Method::POST,
            "/__sandbox/oauth/clients",
            Some(json!({"jwks": {"keys": []}, "scopes": []})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["errorCauses"].as_array().map(Vec::len), Some(2));

    // The registered EC key (no kid sent by the client) gets tokens once DPoP is done.
    let dpop_key = Key::ec();
    let id = org
        .register(&Key::ec(), "k1", &["okta.groups.read"], true)
        .await;
    assert!(id.starts_with("0oa"));
    let other = org.register(&key, "k2", &["okta.groups.read"], false).await;
    let r = org
        .client_credentials(
            &org.assertion_with(&other, &key, Some("k2"), json!({})),
            "okta.groups.read",
            Some(&org.token_proof(&dpop_key, None)),
        )
        .await;
    assert_eq!(r.body["error"], "use_dpop_nonce", "{}", r.body);

    // Registration needs the SSWS token.
    let r = answer(
        org.http
            .post(format!("{}/__sandbox/oauth/clients", org.url))
            .json(&json!({})),
    )
    .await;
    r.okta_error(401, "E0000011", "Invalid token provided", None);
}

#[tokio::test]
async fn credentials_file_carries_the_default_service_app() {
    let dir = tempdir();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let sandbox = Sandbox::bind("127.0.0.1:0".parse().expect("addr"), clock)
        .await
        .expect("bind");
    let path = dir.path().join("sandbox.json");
    sandbox.write_credentials(&path).expect("write");
    let file: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    let app = sandbox.oauth_app();
    assert_eq!(file["org_url"], sandbox.org_url());
    assert_eq!(file["oauth"]["client_id"], app.client_id.as_str());
    assert_eq!(file["oauth"]["key_id"], app.key_id.as_str());
    assert_eq!(
        file["oauth"]["scopes"],
        json!([
            "okta.users.read",
            "okta.users.manage",
            "okta.groups.read",
            "okta.groups.manage",
            "okta.roles.read",
            "okta.roles.manage",
            "okta.idps.read",
            "okta.securityEventsProviders.read",
            "okta.securityEventsProviders.manage",
            "okta.logs.read",
        ])
    );
    let pem = file["oauth"]["private_key"].as_str().expect("pem");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    assert_eq!(pem, app.private_key_pem.expose_secret());
    // The kid is the RFC 7638 thumbprint of the key, as jsonwebtoken computes it.
    assert_eq!(Key::ec_from_pem(pem).thumbprint(), app.key_id);
    assert_eq!(
        sandbox.state().oauth_clients()[0].jwks.keys[0]["kid"],
        app.key_id.as_str()
    );
}
