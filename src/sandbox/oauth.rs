//! OAuth 2.0 for Okta, as the org authorization server serves it to API service apps: registered
//! service apps (`private_key_jwt` client authentication, granted Okta scopes, DPoP-bound tokens
//! by default), the token endpoint `POST /oauth2/v1/token` (client credentials grant, RFC 9449
//! DPoP with server nonces), and access-token checks on Management API calls (`Authorization:
//! Bearer …` or `Authorization: DPoP …` with a `DPoP` proof, scope per route).
//!
//! Independence: client assertions and DPoP proofs are verified with josekit (OpenSSL), never
//! with the transmitter's own JWT code (jsonwebtoken / aws-lc-rs).
//!
//! Sandbox controls: `POST|GET /__sandbox/oauth/clients` registers and lists service apps,
//! `POST /__sandbox/oauth/expire-tokens` expires every access token issued so far.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use aws_lc_rs::digest;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use axum::Json;
use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use josekit::jwk::Jwk;
use josekit::jws::JwsVerifier;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::logs::{self, LogEvent};
use super::{OktaError, SandboxState, Ssws, St};

/// The Okta scopes granted to the default service app: every scope the sandbox's routes need.
pub const DEFAULT_SCOPES: &[&str] = &[
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
];

/// `client_assertion_type` for `private_key_jwt`.
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Signing algorithms Okta accepts for client assertions and DPoP proofs.
const SIGNING_ALGS: &[&str] = &["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"];
/// JWK members that only private (or symmetric) keys have.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/// Access tokens of the org authorization server live one hour, fixed.
const TOKEN_LIFETIME_SECS: i64 = 3600;
/// A client assertion may expire at most this far ahead.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;
/// Tolerance for the client's clock on the "too far ahead" check of an assertion's `exp`.
const CLOCK_SKEW_SECS: i64 = 60;
/// A DPoP proof's `iat` must be within this many seconds of now.
const DPOP_IAT_WINDOW_SECS: i64 = 300;
/// Okta renews its DPoP nonce every 24 hours and keeps accepting an old one for 3 days.
const NONCE_RENEW_HOURS: i64 = 24;
const NONCE_VALID_HOURS: i64 = 72;

/// A JWK Set of public keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Jwks {
    /// Public JWKs, each with a `kid`.
    pub keys: Vec<Map<String, Value>>,
}

/// A registered OAuth 2.0 service app (public material only).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceApp {
    /// `0oa…`.
    pub client_id: String,
    /// Public keys for `private_key_jwt` client assertions.
    pub jwks: Jwks,
    /// Okta scopes granted to the app.
    pub scopes: Vec<String>,
    /// "Require DPoP header in token requests" (Okta's default for API service apps).
    pub dpop_bound: bool,
}

/// The sandbox's default service app, with its private key, for clients of the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOAuthApp {
    /// `0oa…`.
    pub client_id: String,
    /// `kid` of the key (its RFC 7638 thumbprint).
    pub key_id: String,
    /// EC P-256 private key, PKCS#8 PEM; sign client assertions with ES256.
    pub private_key_pem: SecretString,
    /// Granted Okta scopes.
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
struct IssuedToken {
    client_id: String,
    scopes: Vec<String>,
    expires_at: DateTime<Utc>,
    /// RFC 7638 thumbprint of the DPoP key the token is bound to (`cnf.jkt`).
    jkt: Option<String>,
}

/// OAuth state of the sandbox org.
#[derive(Debug, Default)]
pub(super) struct OAuthState {
    apps: RwLock<Vec<ServiceApp>>,
    /// By SHA-256 of the access token.
    tokens: Mutex<HashMap<Vec<u8>, IssuedToken>>,
    /// Client assertion `jti`s seen, with when they may be forgotten (unix seconds).
    assertion_jtis: Mutex<HashMap<String, i64>>,
    /// DPoP proof `jti`s seen, with when they may be forgotten (unix seconds).
    dpop_jtis: Mutex<HashMap<String, i64>>,
    /// DPoP nonces, newest last, with when each was issued.
    nonces: Mutex<Vec<(String, DateTime<Utc>)>>,
}

impl OAuthState {
    /// Registered apps.
    pub(super) fn apps(&self) -> Vec<ServiceApp> {
        self.apps.read().map(|a| a.clone()).unwrap_or_default()
    }

    fn app(&self, client_id: &str) -> Option<ServiceApp> {
        self.apps
            .read()
            .ok()
            .and_then(|a| a.iter().find(|a| a.client_id == client_id).cloned())
    }

    /// Adds `app`; false when its `client_id` is taken.
    pub(super) fn add_app(&self, app: ServiceApp) -> bool {
        let Ok(mut apps) = self.apps.write() else {
            return false;
        };
        if apps.iter().any(|a| a.client_id == app.client_id) {
            return false;
        }
        apps.push(app);
        true
    }

    /// Expires every access token issued so far.
    pub(super) fn expire_tokens(&self, now: DateTime<Utc>) {
        if let Ok(mut tokens) = self.tokens.lock() {
            for t in tokens.values_mut() {
                t.expires_at = t.expires_at.min(now);
            }
        }
    }

    fn token(&self, access_token: &str) -> Option<IssuedToken> {
        self.tokens
            .lock()
            .ok()
            .and_then(|t| t.get(&sha256(access_token.as_bytes())).cloned())
    }

    fn store_token(&self, access_token: &str, token: IssuedToken, now: DateTime<Utc>) {
        if let Ok(mut tokens) = self.tokens.lock() {
            // Forget tokens a day after they expired.
            tokens.retain(|_, t| t.expires_at + Duration::days(1) > now);
            tokens.insert(sha256(access_token.as_bytes()), token);
        }
    }

    /// The current nonce, renewed when older than a day.
    fn current_nonce(&self, now: DateTime<Utc>) -> String {
        let Ok(mut nonces) = self.nonces.lock() else {
            return random_token();
        };
        nonces.retain(|(_, at)| *at + Duration::hours(NONCE_VALID_HOURS) > now);
        match nonces.last() {
            Some((n, at)) if *at + Duration::hours(NONCE_RENEW_HOURS) > now => n.clone(),
            _ => {
                let n = random_token();
                nonces.push((n.clone(), now));
                n
            }
        }
    }

    fn nonce_valid(&self, nonce: &str, now: DateTime<Utc>) -> bool {
        self.nonces.lock().is_ok_and(|n| {
            n.iter()
                .any(|(v, at)| v == nonce && *at + Duration::hours(NONCE_VALID_HOURS) > now)
        })
    }

    fn client_key_thumbprints(&self) -> Vec<String> {
        self.apps()
            .iter()
            .flat_map(|a| a.jwks.keys.iter())
            .filter_map(|k| thumbprint(k).ok())
            .collect()
    }
}

/// Records `jti` until `forget_after`; false when it was seen before.
fn consume_jti(seen: &Mutex<HashMap<String, i64>>, jti: &str, now: i64, forget_after: i64) -> bool {
    let Ok(mut seen) = seen.lock() else {
        return false;
    };
    seen.retain(|_, until| *until > now);
    if seen.contains_key(jti) {
        return false;
    }
    seen.insert(jti.to_owned(), forget_after);
    true
}

fn jti_seen(seen: &Mutex<HashMap<String, i64>>, jti: &str, now: i64) -> bool {
    seen.lock()
        .is_ok_and(|s| s.get(jti).is_some_and(|until| *until > now))
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

/// 32 random bytes, base64url: access tokens and nonces.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An Okta-style app id: `0oa` and 17 alphanumerics.
fn new_client_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    let tail: String = bytes
        .iter()
        .take(17)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    format!("0oa{tail}")
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url) of an EC, RSA or OKP public key.
pub(super) fn thumbprint(jwk: &Map<String, Value>) -> Result<String, String> {
    let member = |name: &str| -> Result<String, String> {
        let v = jwk
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the JWK has no string '{name}' member"))?;
        serde_json::to_string(v).map_err(|e| e.to_string())
    };
    let kty = jwk
        .get("kty")
        .and_then(Value::as_str)
        .ok_or("the JWK has no string 'kty' member")?;
    // Members in lexicographic order, no whitespace.
    let canonical = match kty {
        "EC" => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            member("crv")?,
            member("x")?,
            member("y")?
        ),
        "RSA" => format!(
            r#"{{"e":{},"kty":"RSA","n":{}}}"#,
            member("e")?,
            member("n")?
        ),
        "OKP" => format!(
            r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
            member("crv")?,
            member("x")?
        ),
        other => return Err(format!("unsupported JWK key type '{other}'")),
    };
    Ok(URL_SAFE_NO_PAD.encode(sha256(canonical.as_bytes())))
}

/// The Okta scope a Management API call needs, from its method and path (`None`: no scope).
pub(super) fn required_scope(method: &Method, path: &str) -> Option<&'static str> {
    let read = method == Method::GET || method == Method::HEAD;
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    let pick = |r: &'static str, m: &'static str| Some(if read { r } else { m });
    if under("/api/v1/users") {
        let mut segments = path.trim_start_matches("/api/v1/users").split('/');
        // "", "{id}", "roles", …
        let is_roles = segments.nth(2) == Some("roles");
        if is_roles {
            return pick("okta.roles.read", "okta.roles.manage");
        }
        return pick("okta.users.read", "okta.users.manage");
    }
    if under("/api/v1/groups") {
        return pick("okta.groups.read", "okta.groups.manage");
    }
    if under("/api/v1/idps") {
        return pick("okta.idps.read", "okta.idps.manage");
    }
    if under("/api/v1/security-events-providers") {
        return pick(
            "okta.securityEventsProviders.read",
            "okta.securityEventsProviders.manage",
        );
    }
    if under("/api/v1/logs") {
        return Some("okta.logs.read");
    }
    None
}

/// Whether `granted` satisfies `required` (a `.manage` scope also grants `.read`).
pub(super) fn scope_satisfied(granted: &[String], required: &str) -> bool {
    granted.iter().any(|g| {
        g == required
            || required
                .strip_suffix(".read")
                .is_some_and(|base| g.strip_suffix(".manage") == Some(base))
    })
}

/// Generates the default service app: an EC P-256 key, `kid` = its thumbprint, every sandbox
/// scope, DPoP-bound.
pub(super) fn default_app() -> anyhow::Result<(ServiceApp, SandboxOAuthApp)> {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|_| anyhow::anyhow!("cannot generate the sandbox service app key"))?;
    let der = pair
        .to_pkcs8v1()
        .map_err(|_| anyhow::anyhow!("cannot export the sandbox service app key"))?;
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
    let point = pair.public_key().as_ref();
    anyhow::ensure!(
        point.len() == 65 && point[0] == 4,
        "unexpected P-256 public key encoding"
    );
    let mut jwk = Map::new();
    jwk.insert("kty".into(), "EC".into());
    jwk.insert("crv".into(), "P-256".into());
    jwk.insert("x".into(), URL_SAFE_NO_PAD.encode(&point[1..33]).into());
    jwk.insert("y".into(), URL_SAFE_NO_PAD.encode(&point[33..65]).into());
    let kid = thumbprint(&jwk).map_err(anyhow::Error::msg)?;
    jwk.insert("kid".into(), kid.clone().into());
    jwk.insert("use".into(), "sig".into());
    let scopes: Vec<String> = DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    let client_id = new_client_id();
    let app = ServiceApp {
        client_id: client_id.clone(),
        jwks: Jwks { keys: vec![jwk] },
        scopes: scopes.clone(),
        dpop_bound: true,
    };
    let secret = SandboxOAuthApp {
        client_id,
        key_id: kid,
        private_key_pem: SecretString::from(pem),
        scopes,
    };
    Ok((app, secret))
}

// ----------------------------------------------------------------------------------------------
// JWT plumbing (josekit)

/// A compact JWS split into its decoded header and (unverified) claims.
struct Compact<'a> {
    token: &'a str,
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

fn split_compact(token: &str) -> Option<Compact<'_>> {
    let mut parts = token.split('.');
    let (h, p, _s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let decode = |part: &str| -> Option<Map<String, Value>> {
        let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            Value::Object(m) => Some(m),
            _ => None,
        }
    };
    Some(Compact {
        token,
        header: decode(h)?,
        claims: decode(p)?,
    })
}

fn verifier_for(alg: &str, jwk: &Map<String, Value>) -> Result<Box<dyn JwsVerifier>, String> {
    // josekit insists on a `kid` header matching the JWK's; the sandbox matches kids itself.
    let mut jwk = jwk.clone();
    jwk.remove("kid");
    let jwk = Jwk::from_map(jwk).map_err(|e| format!("unusable JWK: {e}"))?;
    fn boxed<V: JwsVerifier + 'static>(
        r: Result<V, josekit::JoseError>,
    ) -> Result<Box<dyn JwsVerifier>, josekit::JoseError> {
        r.map(|v| Box::new(v) as Box<dyn JwsVerifier>)
    }
    match alg {
        "RS256" => boxed(josekit::jws::RS256.verifier_from_jwk(&jwk)),
        "RS384" => boxed(josekit::jws::RS384.verifier_from_jwk(&jwk)),
        "RS512" => boxed(josekit::jws::RS512.verifier_from_jwk(&jwk)),
        "ES256" => boxed(josekit::jws::ES256.verifier_from_jwk(&jwk)),
        "ES384" => boxed(josekit::jws::ES384.verifier_from_jwk(&jwk)),
        "ES512" => boxed(josekit::jws::ES512.verifier_from_jwk(&jwk)),
        other => return Err(format!("unsupported algorithm '{other}'")),
    }
    .map_err(|e| format!("the key does not fit {alg}: {e}"))
}

/// Verifies the signature; returns the verified claims.
fn verify_signature(
    compact: &Compact<'_>,
    alg: &str,
    jwk: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    let verifier = verifier_for(alg, jwk)?;
    let (payload, _) = josekit::jws::deserialize_compact(compact.token, verifier.as_ref())
        .map_err(|_| "signature".to_owned())?;
    match serde_json::from_slice(&payload) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err("claims".to_owned()),
    }
}

fn default_verifier_alg(jwk: &Map<String, Value>) -> Option<&'static str> {
    match (
        jwk.get("kty").and_then(Value::as_str),
        jwk.get("crv").and_then(Value::as_str),
    ) {
        (Some("RSA"), _) => Some("RS256"),
        (Some("EC"), Some("P-256")) => Some("ES256"),
        (Some("EC"), Some("P-384")) => Some("ES384"),
        (Some("EC"), Some("P-521")) => Some("ES512"),
        _ => None,
    }
}

fn has_private_members(jwk: &Map<String, Value>) -> bool {
    PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m))
}

/// Compares two URLs as RFC 9449 asks: scheme, host, port and path; query and fragment ignored.
fn same_htu(claimed: &str, expected: &str) -> bool {
    match (url::Url::parse(claimed), url::Url::parse(expected)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str().map(str::to_ascii_lowercase)
                    == b.host_str().map(str::to_ascii_lowercase)
                && a.port_or_known_default() == b.port_or_known_default()
                && a.path() == b.path()
        }
        _ => false,
    }
}

/// A DPoP proof that passed every check but `jti` reuse and nonce.
struct Proof {
    jkt: String,
    jti: String,
    nonce: Option<String>,
}

/// Verifies a DPoP proof (RFC 9449 §4.3) for `htm` `htu`, and `ath` when `access_token` is given.
/// The error is a description for the client.
fn verify_proof(
    state: &SandboxState,
    proof: &str,
    htm: &str,
    htu: &str,
    access_token: Option<&str>,
) -> Result<Proof, String> {
    let compact = split_compact(proof).ok_or_else(|| {
        "The DPoP proof JWT is malformed: not a compact JWS with JSON header and claims.".to_owned()
    })?;
    let h = &compact.header;
    if h.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err("The DPoP proof JWT header 'typ' must be 'dpop+jwt'.".into());
    }
    let alg = h.get("alg").and_then(Value::as_str).unwrap_or_default();
    if !SIGNING_ALGS.contains(&alg) {
        return Err(format!(
            "The DPoP proof JWT is signed with an unsupported algorithm '{alg}'; use one of {}.",
            SIGNING_ALGS.join(", ")
        ));
    }
    let Some(jwk) = h.get("jwk").and_then(Value::as_object) else {
        return Err("The DPoP proof JWT header has no 'jwk' (public key).".into());
    };
    if has_private_members(jwk) {
        return Err("The DPoP proof JWT header 'jwk' must be a public key; it contains private key members.".into());
    }
    let jkt =
        thumbprint(jwk).map_err(|e| format!("The DPoP proof JWT header 'jwk' is invalid: {e}."))?;
    let claims = verify_signature(&compact, alg, jwk).map_err(|e| match e.as_str() {
        "signature" => "The DPoP proof JWT signature is invalid.".to_owned(),
        "claims" => "The DPoP proof JWT claims are not a JSON object.".to_owned(),
        other => format!("The DPoP proof JWT header 'jwk' is invalid: {other}."),
    })?;
    if claims.get("htm").and_then(Value::as_str) != Some(htm) {
        return Err(format!(
            "The DPoP proof 'htm' claim must be the request method '{htm}'."
        ));
    }
    let claimed_htu = claims
        .get("htu")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !same_htu(claimed_htu, htu) {
        return Err(format!(
            "The DPoP proof 'htu' claim must be the request URL '{htu}'."
        ));
    }
    let now = state.clock.now().timestamp();
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else {
        return Err("The DPoP proof has no numeric 'iat' claim.".into());
    };
    if (iat - now).abs() > DPOP_IAT_WINDOW_SECS {
        return Err(format!(
            "The DPoP proof 'iat' claim is not within {DPOP_IAT_WINDOW_SECS} seconds of the server time."
        ));
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty())
        .ok_or("The DPoP proof has no 'jti' claim.")?;
    if jti_seen(&state.oauth.dpop_jtis, jti, now) {
        return Err("The DPoP proof 'jti' was already used.".into());
    }
    if let Some(token) = access_token {
        let expected = URL_SAFE_NO_PAD.encode(sha256(token.as_bytes()));
        if claims.get("ath").and_then(Value::as_str) != Some(expected.as_str()) {
            return Err("The DPoP proof 'ath' claim must be the base64url SHA-256 hash of the access token.".into());
        }
    }
    Ok(Proof {
        jkt,
        jti: jti.to_owned(),
        nonce: claims
            .get("nonce")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn consume_proof_jti(state: &SandboxState, proof: &Proof) -> bool {
    let now = state.clock.now().timestamp();
    consume_jti(
        &state.oauth.dpop_jtis,
        &proof.jti,
        now,
        now + 2 * DPOP_IAT_WINDOW_SECS + 60,
    )
}

// ----------------------------------------------------------------------------------------------
// Token endpoint

/// An OAuth error answer of the token endpoint.
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    dpop_nonce: Option<String>,
}

fn oauth_error(
    status: StatusCode,
    error: &'static str,
    description: impl Into<String>,
) -> OAuthError {
    OAuthError {
        status,
        error,
        description: description.into(),
        dpop_nonce: None,
    }
}

fn invalid_client(description: impl Into<String>) -> OAuthError {
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description)
}

fn invalid_proof(description: impl Into<String>) -> OAuthError {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", description)
}

fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response();
        no_store(&mut resp);
        if let Some(n) = self.dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            resp.headers_mut().insert("dpop-nonce", n);
        }
        resp
    }
}

/// Form parameters from the body, then the query string (Okta's Python SDK sends them there).
fn params(uri: &Uri, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("The `{k}` parameter was provided more than once."),
            ));
        }
    }
    if let Some(q) = uri.query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
    }
    Ok(out)
}

/// What a successful token request yields.
struct Grant {
    client_id: String,
    scopes: Vec<String>,
    jkt: Option<String>,
}

/// `POST /oauth2/v1/token`: the client credentials grant with `private_key_jwt`, and DPoP for
/// DPoP-bound apps.
pub(super) async fn token(state: St, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let (limited, lifetime) = state
        .faults
        .lock()
        .map(|mut f| {
            let limited = (f.oauth_rate_limit_next > 0).then(|| {
                f.oauth_rate_limit_next -= 1;
                f.oauth_rate_limit_reset_secs.unwrap_or(1)
            });
            let lifetime = f
                .oauth_token_expires_in_secs
                .and_then(|s| i64::try_from(s).ok())
                .unwrap_or(TOKEN_LIFETIME_SECS);
            (limited, lifetime)
        })
        .unwrap_or((None, TOKEN_LIFETIME_SECS));
    if let Some(secs) = limited {
        return super::faults::rate_limited(&state, secs);
    }
    let mut client = None;
    let result = grant(&state, &headers, &uri, &body, &mut client);
    let now = state.clock.now();
    let published = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let actor_id = client.clone().unwrap_or_else(|| "unknown".to_owned());
    let actor = json!({
        "id": actor_id,
        "type": "PublicClientApp",
        "alternateId": actor_id,
        "displayName": actor_id,
    });
    match result {
        Ok(g) => {
            let access_token = random_token();
            let token_type = if g.jkt.is_some() { "DPoP" } else { "Bearer" };
            let scope = g.scopes.join(" ");
            state.oauth.store_token(
                &access_token,
                IssuedToken {
                    client_id: g.client_id.clone(),
                    scopes: g.scopes.clone(),
                    expires_at: now + Duration::seconds(lifetime),
                    jkt: g.jkt.clone(),
                },
                now,
            );
            logs::append(
                &state,
                LogEvent::new(
                    published,
                    "app.oauth2.as.token.grant.access_token",
                    "INFO",
                    "OAuth2 access token is granted",
                    actor,
                    json!({"result": "SUCCESS"}),
                )
                .with_debug_data(json!({
                    "grantType": "client_credentials",
                    "grantedScopes": scope,
                    "tokenType": token_type,
                    "dpopJkt": g.jkt,
                })),
            );
            let mut resp = Json(json!({
                "token_type": token_type,
                "expires_in": lifetime,
                "access_token": access_token,
                "scope": scope,
            }))
            .into_response();
            no_store(&mut resp);
            resp
        }
        Err(e) => {
            logs::append(
                &state,
                LogEvent::new(
                    published,
                    "app.oauth2.as.token.grant.access_token",
                    "WARN",
                    "OAuth2 access token request failed",
                    actor,
                    json!({"result": "FAILURE", "reason": e.error}),
                )
                .with_debug_data(json!({
                    "grantType": "client_credentials",
                    "error": e.error,
                    "errorDescription": e.description,
                })),
            );
            e.into_response()
        }
    }
}

fn grant(
    state: &SandboxState,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
    client: &mut Option<String>,
) -> Result<Grant, OAuthError> {
    let p = params(uri, body)?;
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if get("grant_type") != Some("client_credentials") {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The grant type in the request isn't supported.",
        ));
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() >= 6 && v[..6].eq_ignore_ascii_case("basic "));
    let secret = basic || get("client_secret").is_some();
    let assertion = match (get("client_assertion"), get("client_assertion_type")) {
        (Some(_), _) if secret => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Can't supply multiple client credentials. Use one of the following: credentials in the Authorization header, credentials in the post body, or a `client_assertion` in the post body.",
            ));
        }
        (_, Some(t)) if t != ASSERTION_TYPE => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The `client_assertion_type` is invalid.",
            ));
        }
        (Some(_), None) => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The `client_assertion_type` is invalid.",
            ));
        }
        (None, _) if secret => {
            return Err(invalid_client(
                "The client secret supplied for a confidential client is invalid.",
            ));
        }
        (None, _) => return Err(invalid_client("No client credentials found")),
        (Some(a), Some(_)) => a,
    };
    let requested: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for s in get("scope").unwrap_or_default().split_whitespace() {
            if !v.iter().any(|x| x == s) {
                v.push(s.to_owned());
            }
        }
        v
    };
    if requested.is_empty() {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "No scopes were requested.",
        ));
    }
    let token_url = format!("{}/oauth2/v1/token", state.org_url);
    let (app, assertion_jti, assertion_exp) =
        verify_assertion(state, assertion, get("client_id"), &token_url, client)?;
    let not_granted: Vec<&str> = requested
        .iter()
        .filter(|s| !app.scopes.contains(s))
        .map(String::as_str)
        .collect();
    if !not_granted.is_empty() {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            format!(
                "The following scopes are not allowed: {}",
                not_granted.join(", ")
            ),
        ));
    }
    let proofs: Vec<&HeaderValue> = headers.get_all("dpop").iter().collect();
    let mut jkt = None;
    let mut proof_to_consume = None;
    // An app that does not require DPoP still gets a bound token when it sends a proof
    // (RFC 9449 §5).
    if app.dpop_bound || !proofs.is_empty() {
        let proof = match proofs.as_slice() {
            [] => return Err(invalid_proof("The DPoP proof JWT header is missing.")),
            [one] => one
                .to_str()
                .map_err(|_| invalid_proof("The DPoP proof JWT header is not ASCII."))?,
            _ => return Err(invalid_proof("Only one DPoP proof JWT header may be sent.")),
        };
        let proof = verify_proof(state, proof, "POST", &token_url, None).map_err(invalid_proof)?;
        if state.oauth.client_key_thumbprints().contains(&proof.jkt) {
            return Err(invalid_proof(
                "The DPoP proof must be signed with a key other than the client's authentication key.",
            ));
        }
        let now = state.clock.now();
        if !proof
            .nonce
            .as_deref()
            .is_some_and(|n| state.oauth.nonce_valid(n, now))
        {
            let mut e = oauth_error(
                StatusCode::BAD_REQUEST,
                "use_dpop_nonce",
                "Authorization server requires nonce in DPoP proof.",
            );
            e.dpop_nonce = Some(state.oauth.current_nonce(now));
            return Err(e);
        }
        jkt = Some(proof.jkt.clone());
        proof_to_consume = Some(proof);
    }
    // Replay protection: both jtis are spent only by a request that gets a token, so a client may
    // resend the same assertion after `use_dpop_nonce` (as Okta's own SDKs do).
    let now = state.clock.now().timestamp();
    if let Some(jti) = &assertion_jti
        && !consume_jti(
            &state.oauth.assertion_jtis,
            jti,
            now,
            assertion_exp + CLOCK_SKEW_SECS,
        )
    {
        return Err(invalid_client(
            "The client_assertion token has already been used: its 'jti' was seen before.",
        ));
    }
    if let Some(proof) = &proof_to_consume
        && !consume_proof_jti(state, proof)
    {
        return Err(invalid_proof("The DPoP proof 'jti' was already used."));
    }
    Ok(Grant {
        client_id: app.client_id,
        scopes: requested,
        jkt,
    })
}

/// Verifies a `private_key_jwt` client assertion; returns the app, the assertion's `jti` and `exp`.
fn verify_assertion(
    state: &SandboxState,
    assertion: &str,
    client_id_param: Option<&str>,
    token_url: &str,
    client: &mut Option<String>,
) -> Result<(ServiceApp, Option<String>, i64), OAuthError> {
    let compact = split_compact(assertion)
        .ok_or_else(|| invalid_client("The client_assertion token is malformed: not a compact JWS with JSON header and claims."))?;
    let alg = compact
        .header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !SIGNING_ALGS.contains(&alg) {
        return Err(invalid_client(format!(
            "The client_assertion token is signed with an unsupported algorithm '{alg}'; use one of {}.",
            SIGNING_ALGS.join(", ")
        )));
    }
    let iss = compact
        .claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_client("The client_assertion token has no 'iss' claim."))?;
    let app = state.oauth.app(iss).ok_or_else(|| {
        invalid_client(format!(
            "The client_assertion token's issuer '{iss}' is not the client_id of a registered app."
        ))
    })?;
    *client = Some(app.client_id.clone());
    if let Some(id) = client_id_param
        && id != app.client_id
    {
        return Err(invalid_client(
            "The `client_id` parameter does not match the client_assertion token's issuer.",
        ));
    }
    let kid = compact.header.get("kid").and_then(Value::as_str);
    let candidates: Vec<&Map<String, Value>> = app
        .jwks
        .keys
        .iter()
        .filter(|k| kid.is_none_or(|kid| k.get("kid").and_then(Value::as_str) == Some(kid)))
        .collect();
    if candidates.is_empty() {
        return Err(invalid_client(format!(
            "The client_assertion token's 'kid' '{}' is not a key of the client.",
            kid.unwrap_or_default()
        )));
    }
    let claims = candidates
        .iter()
        .find_map(|k| verify_signature(&compact, alg, k).ok())
        .ok_or_else(|| invalid_client("The client_assertion signature is invalid."))?;
    if claims.get("sub").and_then(Value::as_str) != Some(app.client_id.as_str()) {
        return Err(invalid_client(
            "The client_assertion token's 'sub' claim must be the client_id (equal to 'iss').",
        ));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == token_url,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(token_url)),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid_client(format!(
            "The audience claim for client_assertion must be the endpoint invoked for the request: '{token_url}'."
        )));
    }
    let now = state.clock.now().timestamp();
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid_client("The client_assertion token has no numeric 'exp' claim."))?;
    if exp <= now {
        return Err(invalid_client("The client_assertion token is expired."));
    }
    if exp > now + MAX_ASSERTION_LIFETIME_SECS + CLOCK_SKEW_SECS {
        return Err(invalid_client(
            "The client_assertion token has an expiration too far into the future: at most one hour.",
        ));
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
        && nbf > now + CLOCK_SKEW_SECS
    {
        return Err(invalid_client(
            "The client_assertion token is not valid yet ('nbf').",
        ));
    }
    let jti = match claims.get("jti") {
        None => None,
        Some(Value::String(j)) if !j.is_empty() => Some(j.clone()),
        Some(_) => {
            return Err(invalid_client(
                "The client_assertion token's 'jti' claim must be a non-empty string.",
            ));
        }
    };
    if let Some(j) = &jti
        && jti_seen(&state.oauth.assertion_jtis, j, now)
    {
        return Err(invalid_client(
            "The client_assertion token has already been used: its 'jti' was seen before.",
        ));
    }
    Ok((app, jti, exp))
}

// ----------------------------------------------------------------------------------------------
// Resource server

/// Why a Management API call was refused: an Okta error body plus a `WWW-Authenticate` challenge.
#[derive(Debug)]
pub struct AuthRejection {
    error: OktaError,
    challenge: Option<String>,
}

impl From<OktaError> for AuthRejection {
    fn from(error: OktaError) -> Self {
        Self {
            error,
            challenge: None,
        }
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let mut resp = self.error.into_response();
        if let Some(v) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    DPoP,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::DPoP => "DPoP",
        }
    }
}

fn challenge(scheme: Scheme, error: &str, description: &str) -> String {
    let description = description.replace(['"', '\\'], "'");
    format!(
        r#"{} error="{error}", error_description="{description}""#,
        scheme.name()
    )
}

fn invalid_token(scheme: Scheme, description: &str) -> AuthRejection {
    AuthRejection {
        error: OktaError::invalid_token(),
        challenge: Some(challenge(scheme, "invalid_token", description)),
    }
}

/// Checks `Authorization: Bearer|DPoP <token>` (and the `DPoP` proof) on a Management API call,
/// and the scope the route needs. `None`: not an OAuth authorization header.
pub(super) fn authorize(
    state: &SandboxState,
    parts: &Parts,
    authorization: &str,
) -> Option<Result<(), AuthRejection>> {
    let (scheme, token) = authorization.split_once(' ')?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::DPoP
    } else {
        return None;
    };
    Some(authorize_token(state, parts, scheme, token.trim()))
}

fn authorize_token(
    state: &SandboxState,
    parts: &Parts,
    scheme: Scheme,
    access_token: &str,
) -> Result<(), AuthRejection> {
    let Some(token) = (!access_token.is_empty())
        .then(|| state.oauth.token(access_token))
        .flatten()
    else {
        return Err(invalid_token(scheme, "The access token is invalid."));
    };
    let token_scheme = if token.jkt.is_some() {
        Scheme::DPoP
    } else {
        Scheme::Bearer
    };
    if state.clock.now() >= token.expires_at {
        return Err(invalid_token(token_scheme, "The access token is expired."));
    }
    match (scheme, &token.jkt) {
        (Scheme::Bearer, None) => {}
        (Scheme::Bearer, Some(_)) => {
            return Err(invalid_token(
                Scheme::DPoP,
                "The access token is DPoP-bound; send it as 'Authorization: DPoP' with a DPoP proof.",
            ));
        }
        (Scheme::DPoP, None) => {
            return Err(invalid_token(
                Scheme::Bearer,
                "The access token is not DPoP-bound; send it as 'Authorization: Bearer'.",
            ));
        }
        (Scheme::DPoP, Some(jkt)) => {
            let proofs: Vec<&HeaderValue> = parts.headers.get_all("dpop").iter().collect();
            let proof = match proofs.as_slice() {
                [] => {
                    return Err(invalid_token(
                        Scheme::DPoP,
                        "The DPoP proof JWT header is missing.",
                    ));
                }
                [one] => one.to_str().map_err(|_| {
                    invalid_token(Scheme::DPoP, "The DPoP proof JWT header is not ASCII.")
                })?,
                _ => {
                    return Err(invalid_token(
                        Scheme::DPoP,
                        "Only one DPoP proof JWT header may be sent.",
                    ));
                }
            };
            let htu = format!("{}{}", state.org_url, parts.uri.path());
            let proof = verify_proof(
                state,
                proof,
                parts.method.as_str(),
                &htu,
                Some(access_token),
            )
            .map_err(|d| invalid_token(Scheme::DPoP, &d))?;
            if &proof.jkt != jkt {
                return Err(invalid_token(
                    Scheme::DPoP,
                    "The DPoP proof is signed with a key other than the one the access token is bound to.",
                ));
            }
            if !consume_proof_jti(state, &proof) {
                return Err(invalid_token(
                    Scheme::DPoP,
                    "The DPoP proof 'jti' was already used.",
                ));
            }
        }
    }
    if let Some(required) = required_scope(&parts.method, parts.uri.path())
        && !scope_satisfied(&token.scopes, required)
    {
        return Err(AuthRejection {
            error: OktaError::forbidden(),
            challenge: Some(challenge(
                token_scheme,
                "insufficient_scope",
                "The access token provided does not contain the required scopes.",
            )),
        });
    }
    tracing::debug!(client_id = %token.client_id, "sandbox: OAuth call authorized");
    Ok(())
}

// ----------------------------------------------------------------------------------------------
// Sandbox controls

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterClient {
    client_id: Option<String>,
    jwks: RegisterJwks,
    scopes: Vec<String>,
    dpop_bound: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RegisterJwks {
    keys: Vec<Value>,
}

/// Checks and normalizes one public JWK; fills `kid` with the thumbprint when missing.
fn check_public_jwk(i: usize, key: Value) -> Result<Map<String, Value>, String> {
    let Value::Object(mut key) = key else {
        return Err(format!("jwks.keys[{i}]: must be a JWK object"));
    };
    if has_private_members(&key) {
        return Err(format!(
            "jwks.keys[{i}]: private key members are not accepted; register public keys only"
        ));
    }
    let Some(alg) = default_verifier_alg(&key) else {
        return Err(format!(
            "jwks.keys[{i}]: kty must be RSA or EC (P-256, P-384, P-521)"
        ));
    };
    let key_alg = key
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or(alg)
        .to_owned();
    verifier_for(&key_alg, &key).map_err(|e| format!("jwks.keys[{i}]: {e}"))?;
    let tp = thumbprint(&key).map_err(|e| format!("jwks.keys[{i}]: {e}"))?;
    match key.get("kid") {
        None => {
            key.insert("kid".into(), tp.into());
        }
        Some(Value::String(k)) if !k.is_empty() => {}
        Some(_) => return Err(format!("jwks.keys[{i}]: kid must be a non-empty string")),
    }
    Ok(key)
}

/// `POST /__sandbox/oauth/clients`: registers a service app (public keys only) → 201.
pub(super) async fn register_client(
    _auth: Ssws,
    state: St,
    body: Bytes,
) -> Result<(StatusCode, Json<ServiceApp>), OktaError> {
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let req: RegisterClient =
        serde_path_to_error::deserialize(de).map_err(|e| OktaError::malformed(&e.to_string()))?;
    let mut causes = Vec::new();
    let mut keys = Vec::new();
    if req.jwks.keys.is_empty() {
        causes.push("jwks.keys: at least one public key is required".to_owned());
    }
    for (i, key) in req.jwks.keys.into_iter().enumerate() {
        match check_public_jwk(i, key) {
            Ok(k) => keys.push(k),
            Err(c) => causes.push(c),
        }
    }
    let mut kids: Vec<&str> = keys
        .iter()
        .filter_map(|k| k.get("kid").and_then(Value::as_str))
        .collect();
    kids.sort_unstable();
    if kids.windows(2).any(|w| w[0] == w[1]) {
        causes.push("jwks.keys: kid values must be unique".to_owned());
    }
    if req.scopes.is_empty()
        || req
            .scopes
            .iter()
            .any(|s| s.trim().is_empty() || s.contains(' '))
    {
        causes.push("scopes: a non-empty list of scope names is required".to_owned());
    }
    let client_id = match req.client_id {
        Some(id) if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) => {
            causes.push("client_id: must be non-empty and alphanumeric".to_owned());
            id
        }
        Some(id) => id,
        None => new_client_id(),
    };
    if !causes.is_empty() {
        return Err(OktaError::validation(causes));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in req.scopes {
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    let app = ServiceApp {
        client_id: client_id.clone(),
        jwks: Jwks { keys },
        scopes,
        dpop_bound: req.dpop_bound.unwrap_or(true),
    };
    if !state.oauth.add_app(app.clone()) {
        return Err(OktaError::validation(vec![format!(
            "client_id: '{client_id}' is already registered"
        )]));
    }
    Ok((StatusCode::CREATED, Json(app)))
}

/// `GET /__sandbox/oauth/clients`.
pub(super) async fn list_clients(_auth: Ssws, state: St) -> Json<Vec<ServiceApp>> {
    Json(state.oauth.apps())
}

/// `POST /__sandbox/oauth/expire-tokens` → 204.
pub(super) async fn expire_tokens(_auth: Ssws, state: St) -> StatusCode {
    state.oauth.expire_tokens(state.clock.now());
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = map(json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }));
        assert_eq!(
            thumbprint(&jwk).expect("thumbprint"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn ec_thumbprint_matches_jsonwebtoken() {
        let (app, secret) = default_app().expect("app");
        use secrecy::ExposeSecret as _;
        let key = jsonwebtoken::EncodingKey::from_ec_pem(
            secret.private_key_pem.expose_secret().as_bytes(),
        )
        .expect("pem");
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::ES256)
            .expect("jwk");
        let theirs = jwk
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .expect("thumbprint");
        assert_eq!(secret.key_id, theirs);
        assert_eq!(app.jwks.keys[0]["kid"], theirs);
        assert!(app.client_id.starts_with("0oa"));
        assert_eq!(app.client_id.len(), 20);
        assert!(app.client_id.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(app.dpop_bound);
    }

    #[test]
    fn thumbprint_refuses_incomplete_keys() {
        assert!(thumbprint(&map(json!({"kty": "EC", "crv": "P-256", "x": "AA"}))).is_err());
        assert!(thumbprint(&map(json!({"kty": "oct", "k": "AA"}))).is_err());
        assert!(thumbprint(&map(json!({"n": "AA", "e": "AQAB"}))).is_err());
    }

    #[test]
    fn scopes_follow_method_and_path() {
        let cases = [
            (Method::GET, "/api/v1/users", Some("okta.users.read")),
            (
                Method::GET,
                "/api/v1/users/00u1/groups",
                Some("okta.users.read"),
            ),
            (
                Method::POST,
                "/api/v1/users/00u1/lifecycle/suspend",
                Some("okta.users.manage"),
            ),
            (
                Method::DELETE,
                "/api/v1/users/00u1/sessions",
                Some("okta.users.manage"),
            ),
            (
                Method::GET,
                "/api/v1/users/00u1/roles",
                Some("okta.roles.read"),
            ),
            (
                Method::POST,
                "/api/v1/users/00u1/roles",
                Some("okta.roles.manage"),
            ),
            (
                Method::DELETE,
                "/api/v1/users/00u1/roles/ra1",
                Some("okta.roles.manage"),
            ),
            (Method::GET, "/api/v1/groups/00g1", Some("okta.groups.read")),
            (
                Method::PUT,
                "/api/v1/groups/00g1/users/00u1",
                Some("okta.groups.manage"),
            ),
            (Method::GET, "/api/v1/idps", Some("okta.idps.read")),
            (Method::POST, "/api/v1/idps", Some("okta.idps.manage")),
            (
                Method::GET,
                "/api/v1/security-events-providers",
                Some("okta.securityEventsProviders.read"),
            ),
            (
                Method::POST,
                "/api/v1/security-events-providers/sse1/lifecycle/activate",
                Some("okta.securityEventsProviders.manage"),
            ),
            (Method::GET, "/api/v1/logs", Some("okta.logs.read")),
            (Method::GET, "/api/v1/usersx", None),
            (Method::GET, "/api/v1/sessions/1", None),
        ];
        for (m, p, want) in cases {
            assert_eq!(required_scope(&m, p), want, "{m} {p}");
        }
    }

    #[test]
    fn manage_satisfies_read() {
        let granted = vec![
            "okta.users.manage".to_owned(),
            "okta.groups.read".to_owned(),
        ];
        assert!(scope_satisfied(&granted, "okta.users.read"));
        assert!(scope_satisfied(&granted, "okta.users.manage"));
        assert!(scope_satisfied(&granted, "okta.groups.read"));
        assert!(!scope_satisfied(&granted, "okta.groups.manage"));
        assert!(!scope_satisfied(&granted, "okta.roles.read"));
        assert!(!scope_satisfied(
            &["okta.users.read".to_owned()],
            "okta.users.manage"
        ));
    }

    #[test]
    fn htu_ignores_query_and_fragment_only() {
        let base = "http://127.0.0.1:8081/oauth2/v1/token";
        assert!(same_htu(
            "http://127.0.0.1:8081/oauth2/v1/token?x=1#f",
            base
        ));
        assert!(same_htu("HTTP://127.0.0.1:8081/oauth2/v1/token", base));
        assert!(!same_htu("http://127.0.0.1:8082/oauth2/v1/token", base));
        assert!(!same_htu("http://127.0.0.1:8081/oauth2/v1/token/", base));
        assert!(!same_htu("not a url", base));
    }

    #[test]
    fn public_jwks_only() {
        let err = check_public_jwk(
            0,
            json!({"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}),
        )
        .expect_err("private");
        assert!(err.contains("private"), "{err}");
        let err = check_public_jwk(1, json!({"kty": "oct", "k": "c2VjcmV0"})).expect_err("oct");
        assert!(err.starts_with("jwks.keys[1]"), "{err}");
    }
}
