//! OAuth 2.0 for Okta's Management API as a service app: client credentials with a
//! `private_key_jwt` client assertion (RS256 or ES256), DPoP proofs (RFC 9449) with the
//! `use_dpop_nonce` retry, and access tokens cached until shortly before they expire.
//!
//! The DPoP key is an ephemeral P-256 key made at start, separate from the assertion key as Okta
//! requires; tokens bound to it die with the process, which is what we want.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};

use super::OktaApiError;
use crate::clock::Clock;

/// Refresh a token this long before Okta says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// Lifetime of a client assertion (Okta allows up to one hour).
const ASSERTION_TTL_SECS: i64 = 300;

/// The service app's signing key, as configured.
pub enum AssertionKey {
    /// RSA (RS256).
    Rsa(jsonwebtoken::EncodingKey),
    /// EC P-256 (ES256).
    Ec(jsonwebtoken::EncodingKey),
}

impl std::fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AssertionKey::Rsa(_) => "AssertionKey::Rsa(..)",
            AssertionKey::Ec(_) => "AssertionKey::Ec(..)",
        })
    }
}

impl AssertionKey {
    /// Reads a PEM private key: PKCS#8 RSA or EC P-256, or PKCS#1 RSA. The message of an error
    /// says what to fix and never holds key material.
    pub fn from_pem(pem_text: &str) -> Result<Self, String> {
        let block = pem::parse(pem_text.trim()).map_err(|e| {
            format!(
                "is not a PEM private key ({}); give the key file Okta's app was given the public half of",
                crate::keys::pem_problem(&e)
            )
        })?;
        let bad = |what: &str| format!("{what}; use an RSA (2048+ bits) or EC P-256 key");
        match block.tag() {
            "RSA PRIVATE KEY" => {
                RsaKeyPair::from_der(block.contents())
                    .map_err(|_| bad("the PKCS#1 RSA key cannot be read"))?;
                Ok(AssertionKey::Rsa(jsonwebtoken::EncodingKey::from_rsa_der(
                    block.contents(),
                )))
            }
            "PRIVATE KEY" => {
                if RsaKeyPair::from_pkcs8(block.contents()).is_ok() {
                    return jsonwebtoken::EncodingKey::from_rsa_pem(pem_text.trim().as_bytes())
                        .map(AssertionKey::Rsa)
                        .map_err(|_| bad("the RSA key cannot be read"));
                }
                if EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, block.contents())
                    .is_ok()
                {
                    return Ok(AssertionKey::Ec(jsonwebtoken::EncodingKey::from_ec_der(
                        block.contents(),
                    )));
                }
                Err(bad("the PKCS#8 key is neither RSA nor EC P-256"))
            }
            "EC PRIVATE KEY" => Err(
                "is a SEC1 EC key; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`"
                    .into(),
            ),
            other => Err(bad(&format!("PEM block '{other}' is not a private key"))),
        }
    }

    fn alg(&self) -> jsonwebtoken::Algorithm {
        match self {
            AssertionKey::Rsa(_) => jsonwebtoken::Algorithm::RS256,
            AssertionKey::Ec(_) => jsonwebtoken::Algorithm::ES256,
        }
    }

    fn encoding_key(&self) -> &jsonwebtoken::EncodingKey {
        match self {
            AssertionKey::Rsa(k) | AssertionKey::Ec(k) => k,
        }
    }
}

/// The configured service app.
#[derive(Debug)]
pub struct OAuthSettings {
    /// Client id.
    pub client_id: String,
    /// Assertion key.
    pub key: AssertionKey,
    /// `kid` in the assertion header.
    pub key_id: Option<String>,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// Use DPoP.
    pub dpop: bool,
}

/// A DPoP key: ephemeral P-256, signs proofs as ES256.
struct DpopKey {
    pair: EcdsaKeyPair,
    jwk: Value,
}

impl DpopKey {
    fn generate() -> Result<Self, String> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| "cannot generate the DPoP key".to_owned())?;
        let point = pair.public_key().as_ref();
        // Uncompressed point: 0x04 || X (32) || Y (32).
        let (x, y) = match (point.get(1..33), point.get(33..65)) {
            (Some(x), Some(y)) if point.len() == 65 => (B64.encode(x), B64.encode(y)),
            _ => return Err("unexpected P-256 public key encoding".into()),
        };
        Ok(Self {
            pair,
            jwk: json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
        })
    }

    fn proof(&self, claims: &Value) -> Result<String, String> {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let signing_input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| "cannot sign a DPoP proof".to_owned())?;
        Ok(format!("{signing_input}.{}", B64.encode(sig.as_ref())))
    }
}

/// A cached access token.
struct Token {
    /// Counts fetched tokens, so a 401 drops only the token it was answered for.
    generation: u64,
    value: SecretString,
    dpop: bool,
    expires_at: tokio::time::Instant,
    scopes: Vec<String>,
}

/// What `okta/status` reports about OAuth.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct OAuthStatus {
    /// The service app.
    pub client_id: String,
    /// Whether tokens are DPoP-bound.
    pub dpop: bool,
    /// Scopes requested.
    pub requested_scopes: Vec<String>,
    /// Scopes Okta granted in the current token.
    pub granted_scopes: Vec<String>,
    /// Seconds until the cached token is refreshed.
    pub token_expires_in_secs: u64,
}

/// One service-app session: token cache, DPoP key and nonces.
pub struct OAuthSession {
    settings: OAuthSettings,
    token_url: String,
    dpop_key: Option<DpopKey>,
    token: tokio::sync::Mutex<Option<Token>>,
    generations: std::sync::atomic::AtomicU64,
    /// Last nonce from the authorization server and from the resource server.
    as_nonce: Mutex<Option<String>>,
    rs_nonce: Mutex<Option<String>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OAuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSession")
            .field("client_id", &self.settings.client_id)
            .field("dpop", &self.settings.dpop)
            .finish_non_exhaustive()
    }
}

/// Headers for one resource call.
pub(super) struct Authorization {
    pub authorization: String,
    pub dpop: Option<String>,
    /// The token's generation (for [`OAuthSession::invalidate`]).
    pub generation: u64,
}

fn oauth_error(error: &str, description: &str) -> OktaApiError {
    OktaApiError::OAuth {
        error: error.to_owned(),
        description: description.to_owned(),
    }
}

/// `htu`: the URL without query and fragment (RFC 9449 §4.2).
fn htu(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => url.split(['?', '#']).next().unwrap_or(url).to_owned(),
    }
}

impl OAuthSession {
    /// A session against `{org_url}/oauth2/v1/token`.
    pub fn new(
        org_url: &str,
        settings: OAuthSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, OktaApiError> {
        let dpop_key = if settings.dpop {
            Some(DpopKey::generate().map_err(OktaApiError::Transport)?)
        } else {
            None
        };
        Ok(Self {
            token_url: format!("{}/oauth2/v1/token", org_url.trim_end_matches('/')),
            settings,
            dpop_key,
            token: tokio::sync::Mutex::new(None),
            generations: std::sync::atomic::AtomicU64::new(0),
            as_nonce: Mutex::new(None),
            rs_nonce: Mutex::new(None),
            clock,
        })
    }

    fn client_assertion(&self) -> Result<String, OktaApiError> {
        let now = self.clock.now().timestamp();
        let mut header = jsonwebtoken::Header::new(self.settings.key.alg());
        header.kid = self.settings.key_id.clone();
        let claims = json!({
            "iss": self.settings.client_id,
            "sub": self.settings.client_id,
            "aud": self.token_url,
            "iat": now,
            "exp": now + ASSERTION_TTL_SECS,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        jsonwebtoken::encode(&header, &claims, self.settings.key.encoding_key())
            .map_err(|e| oauth_error("client_assertion", &format!("cannot sign: {e}")))
    }

    fn proof(
        &self,
        method: &str,
        url: &str,
        nonce: Option<String>,
        access_token: Option<&str>,
    ) -> Result<Option<String>, OktaApiError> {
        let Some(key) = &self.dpop_key else {
            return Ok(None);
        };
        let mut claims = json!({
            "htm": method,
            "htu": htu(url),
            "iat": self.clock.now().timestamp(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        if let Some(t) = access_token {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes());
            claims["ath"] = json!(B64.encode(digest.as_ref()));
        }
        key.proof(&claims)
            .map(Some)
            .map_err(OktaApiError::Transport)
    }

    /// Drops the cached token of `generation` (Okta said it is invalid or expired); a newer one
    /// another call already fetched is kept.
    pub(super) async fn invalidate(&self, generation: u64) {
        let mut guard = self.token.lock().await;
        if guard.as_ref().is_some_and(|t| t.generation == generation) {
            *guard = None;
        }
    }

    /// Remembers a nonce the resource server asked for.
    pub(super) fn set_resource_nonce(&self, nonce: String) {
        if let Ok(mut n) = self.rs_nonce.lock() {
            *n = Some(nonce);
        }
    }

    /// The headers for one call to `method url`, fetching a token first when none is cached.
    pub(super) async fn authorize(
        &self,
        http: &reqwest::Client,
        method: &str,
        url: &str,
    ) -> Result<Authorization, OktaApiError> {
        let (value, dpop, generation) = {
            let mut guard = self.token.lock().await;
            let fresh = guard
                .as_ref()
                .is_some_and(|t| tokio::time::Instant::now() < t.expires_at);
            if !fresh {
                let mut t = self.fetch_token(http).await?;
                t.generation = self
                    .generations
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                *guard = Some(t);
            }
            let t = guard
                .as_ref()
                .ok_or_else(|| oauth_error("token", "no access token"))?;
            (t.value.clone(), t.dpop, t.generation)
        };
        if dpop {
            let nonce = self.rs_nonce.lock().ok().and_then(|n| n.clone());
            Ok(Authorization {
                authorization: format!("DPoP {}", value.expose_secret()),
                dpop: self.proof(method, url, nonce, Some(value.expose_secret()))?,
                generation,
            })
        } else {
            Ok(Authorization {
                authorization: format!("Bearer {}", value.expose_secret()),
                dpop: None,
                generation,
            })
        }
    }

    /// Client credentials grant, with one `use_dpop_nonce` retry.
    async fn fetch_token(&self, http: &reqwest::Client) -> Result<Token, OktaApiError> {
        let scope = self.settings.scopes.join(" ");
        for attempt in 0..3 {
            let nonce = self.as_nonce.lock().ok().and_then(|n| n.clone());
            let form = [
                ("grant_type", "client_credentials".to_owned()),
                ("scope", scope.clone()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ),
                ("client_assertion", self.client_assertion()?),
            ];
            let mut req = http
                .post(&self.token_url)
                .header("Accept", "application/json")
                .form(&form);
            if let Some(p) = self.proof("POST", &self.token_url, nonce, None)? {
                req = req.header("DPoP", p);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| OktaApiError::Transport(format!("token request failed: {e}")))?;
            let status = resp.status().as_u16();
            let rate_limit_wait = super::reset_wait(resp.headers()).map(|d| d.as_secs());
            let new_nonce = resp
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if status == 200 {
                let value = body["access_token"]
                    .as_str()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        oauth_error("invalid_response", "token response without access_token")
                    })?;
                let token_type = body["token_type"].as_str().unwrap_or("Bearer");
                let dpop = token_type.eq_ignore_ascii_case("DPoP");
                if dpop && self.dpop_key.is_none() {
                    return Err(oauth_error(
                        "invalid_response",
                        "Okta issued a DPoP-bound token although dpop = false",
                    ));
                }
                // Okta's tokens live an hour; never trust a lifetime beyond a day.
                let lifetime =
                    Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600).min(86_400));
                return Ok(Token {
                    generation: 0,
                    value: SecretString::from(value.to_owned()),
                    dpop,
                    expires_at: tokio::time::Instant::now()
                        + lifetime.saturating_sub(EXPIRY_MARGIN),
                    scopes: body["scope"]
                        .as_str()
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect(),
                });
            }
            let error = body["error"].as_str().unwrap_or("unknown_error");
            let description = body["error_description"]
                .as_str()
                .unwrap_or("the token endpoint answered without an OAuth error body");
            if error == "use_dpop_nonce"
                && attempt < 2
                && let Some(n) = new_nonce
            {
                if let Ok(mut g) = self.as_nonce.lock() {
                    *g = Some(n);
                }
                continue;
            }
            if status == 429 {
                return Err(OktaApiError::RateLimited {
                    retry_after_secs: rate_limit_wait.unwrap_or(60).max(1),
                });
            }
            if status >= 500 {
                return Err(OktaApiError::Transport(format!(
                    "token endpoint answered {status}"
                )));
            }
            return Err(oauth_error(error, description));
        }
        Err(oauth_error(
            "use_dpop_nonce",
            "Okta kept asking for a new DPoP nonce",
        ))
    }

    /// What the status route reports about the cached token (the status route's own call
    /// fetches one first).
    pub(super) async fn status(&self) -> OAuthStatus {
        let guard = self.token.lock().await;
        let (granted, expires_in) = guard.as_ref().map_or((Vec::new(), 0), |t| {
            (
                t.scopes.clone(),
                t.expires_at
                    .saturating_duration_since(tokio::time::Instant::now())
                    .as_secs(),
            )
        });
        OAuthStatus {
            client_id: self.settings.client_id.clone(),
            dpop: self.settings.dpop,
            requested_scopes: self.settings.scopes.clone(),
            granted_scopes: granted,
            token_expires_in_secs: expires_in,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_drops_query_and_fragment() {
        assert_eq!(
            htu("https://acme.okta.com/api/v1/users?limit=1#x"),
            "https://acme.okta.com/api/v1/users"
        );
    }

    #[test]
    fn keys_are_recognised_and_errors_hold_no_material() {
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("ec");
        let der = ec.to_pkcs8v1().expect("pkcs8");
        let pem_text = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
        assert!(matches!(
            AssertionKey::from_pem(&pem_text),
            Ok(AssertionKey::Ec(_))
        ));
        let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa");
        let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&rsa)
            .expect("der");
        let pem_text = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
        assert!(matches!(
            AssertionKey::from_pem(&pem_text),
            Ok(AssertionKey::Rsa(_))
        ));
        let err =
            AssertionKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .expect_err("garbage");
        assert!(err.contains("neither RSA nor EC"), "{err}");
        assert!(AssertionKey::from_pem("hello").is_err());
    }

    #[test]
    fn dpop_proof_is_a_verifiable_es256_jws() {
        let key = DpopKey::generate().expect("key");
        let proof = key
            .proof(&json!({"htm": "GET", "htu": "https://x/api", "iat": 1, "jti": "j"}))
            .expect("proof");
        let header = jsonwebtoken::decode_header(&proof).expect("header");
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk.clone()).expect("jwk");
        let dk = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("decoding key");
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(&proof, &dk, &v).expect("verifies");
        assert_eq!(data.claims["htm"], "GET");
    }
}
