//! OAuth 2.0 client credentials (RFC 6749 §4.4): an API client trades its credentials for a
//! short-lived access token holding all or some of its scopes.
//!
//! Client authentication (RFC 6749 §2.3, RFC 7523 §2.2):
//! - `client_secret_basic` / `client_secret_post`: the client's id and its bearer token as the
//!   secret, verified exactly as a bearer token is (its SHA-256 digest looked up, the id compared
//!   in constant time), so a failed try costs what a failed bearer token costs.
//! - `private_key_jwt`: a JWT signed (RS256 / ES256) with a key registered for the client
//!   ([`super::client_keys`]); `iss` = `sub` = client id, `aud` the token endpoint or the issuer,
//!   `exp` at most [`MAX_ASSERTION_LIFETIME_SECS`] ahead, and a `jti` that is stored until the
//!   assertion expires, so no assertion is accepted twice.
//!
//! Access tokens are opaque (`ssft_…`, like every token the service issues), stored as digests
//! with their client, scopes and expiry. Each use checks the expiry against the service's clock
//! and that the client is still active, so revoking a client ends its access tokens at once.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

use super::{
    Authenticator, BOOTSTRAP_CALLER, Client, Scope, client_keys, digests_equal, generate_token,
    token_digest,
};
use crate::store::{NewAccessToken, StoreError};

/// The token endpoint's path, on the issuer's origin.
pub const TOKEN_PATH: &str = "/oauth2/token";

/// The only grant type.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// `client_assertion_type` of a `private_key_jwt` assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The client authentication methods, as RFC 8414 names them.
pub const AUTH_METHODS: [&str; 3] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];

/// How far ahead a client assertion's `exp` may be.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 300;

/// Clock skew allowed between a client and the service, for `exp` already past and `nbf` /
/// `iat` still ahead.
pub const CLOCK_SKEW_SECS: i64 = 30;

/// Expired access tokens and assertion `jti`s deleted per issued token (each table).
const PRUNE_BATCH: u32 = 100;

/// Longest accepted values (longer ones are refused before anything is looked up).
const MAX_CLIENT_ID: usize = 128;
const MAX_SECRET: usize = 256;
const MAX_ASSERTION: usize = 8192;
const MAX_SCOPE: usize = 1024;
const MAX_JTI: usize = 256;

/// Settings of the token endpoint.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// Lifetime of an access token, seconds (`[oauth] access_token_ttl_secs`).
    pub access_token_ttl_secs: u64,
    /// What a client assertion's `aud` may name: the token endpoint's URL and the issuer.
    pub audiences: Vec<String>,
}

/// The parameters of a token request, as received: the form's parameters and the client id and
/// secret of an `Authorization: Basic` header.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokenParams<'a> {
    /// `grant_type`.
    pub grant_type: Option<&'a str>,
    /// `scope`: space-separated scope names.
    pub scope: Option<&'a str>,
    /// `client_id` of the form.
    pub client_id: Option<&'a str>,
    /// `client_secret` of the form (`client_secret_post`).
    pub client_secret: Option<&'a str>,
    /// `client_assertion_type`.
    pub client_assertion_type: Option<&'a str>,
    /// `client_assertion` (`private_key_jwt`).
    pub client_assertion: Option<&'a str>,
    /// `client_secret_basic`: the decoded id and secret, or `Err` when the header is not
    /// well-formed Basic credentials.
    pub basic: Option<Result<(&'a str, &'a str), ()>>,
}

/// An access token just issued.
pub struct IssuedToken {
    /// The token; only its digest is stored.
    pub access_token: SecretString,
    /// Its lifetime, seconds.
    pub expires_in: u64,
    /// Its scopes.
    pub scopes: Vec<Scope>,
    /// The client it was issued to.
    pub client: Client,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .field("client", &self.client.name)
            .finish_non_exhaustive()
    }
}

/// Why no token was issued: an RFC 6749 §5.2 error. The descriptions are the service's own words,
/// never a value the caller sent (only known scope names are quoted).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Malformed request: a parameter missing, repeated or too long, or two authentication methods.
    #[error("invalid_request: {0}")]
    InvalidRequest(Cow<'static, str>),
    /// Client authentication failed (unknown client, wrong secret, bad assertion, revoked client,
    /// none given).
    #[error("invalid_client: {0}")]
    InvalidClient(Cow<'static, str>),
    /// The credentials are valid but may not obtain tokens (the bootstrap admin token).
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(Cow<'static, str>),
    /// A grant type other than `client_credentials`.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// A scope that is unknown, not held by the client, or malformed.
    #[error("invalid_scope: {0}")]
    InvalidScope(Cow<'static, str>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TokenError {
    /// The RFC 6749 `error` code; `None` for a store failure (a server error).
    pub fn code(&self) -> Option<&'static str> {
        Some(match self {
            TokenError::InvalidRequest(_) => "invalid_request",
            TokenError::InvalidClient(_) => "invalid_client",
            TokenError::UnauthorizedClient(_) => "unauthorized_client",
            TokenError::UnsupportedGrantType => "unsupported_grant_type",
            TokenError::InvalidScope(_) => "invalid_scope",
            TokenError::Store(_) => return None,
        })
    }

    /// The `error_description`.
    pub fn description(&self) -> Cow<'static, str> {
        match self {
            TokenError::InvalidRequest(d)
            | TokenError::InvalidClient(d)
            | TokenError::UnauthorizedClient(d)
            | TokenError::InvalidScope(d) => d.clone(),
            TokenError::UnsupportedGrantType => {
                Cow::Borrowed("the only grant type is client_credentials")
            }
            TokenError::Store(_) => Cow::Borrowed("the server failed"),
        }
    }
}

fn invalid_client(d: &'static str) -> TokenError {
    TokenError::InvalidClient(Cow::Borrowed(d))
}

fn invalid_request(d: &'static str) -> TokenError {
    TokenError::InvalidRequest(Cow::Borrowed(d))
}

fn invalid_scope(d: impl Into<Cow<'static, str>>) -> TokenError {
    TokenError::InvalidScope(d.into())
}

/// How the client authenticated, once the parameters are sorted out.
enum Credentials<'a> {
    Secret {
        client_id: &'a str,
        secret: &'a str,
    },
    Assertion {
        client_id: Option<&'a str>,
        assertion: &'a str,
    },
}

impl<'a> TokenParams<'a> {
    /// The one client authentication method the request uses.
    fn credentials(&self) -> Result<Credentials<'a>, TokenError> {
        let post = self.client_secret.is_some();
        let jwt = self.client_assertion.is_some() || self.client_assertion_type.is_some();
        let basic = self.basic.is_some();
        if usize::from(post) + usize::from(jwt) + usize::from(basic) > 1 {
            return Err(invalid_request(
                "use exactly one client authentication method (RFC 6749 section 2.3)",
            ));
        }
        if let Some(basic) = self.basic {
            let (client_id, secret) = basic.map_err(|()| {
                invalid_client("the Authorization header does not hold Basic client credentials")
            })?;
            if self.client_id.is_some_and(|id| id != client_id) {
                return Err(invalid_client(
                    "client_id differs from the client authenticated by the Authorization header",
                ));
            }
            return Ok(Credentials::Secret { client_id, secret });
        }
        if let Some(secret) = self.client_secret {
            let client_id = self.client_id.ok_or_else(|| {
                invalid_request("client_secret_post needs client_id with client_secret")
            })?;
            return Ok(Credentials::Secret { client_id, secret });
        }
        if jwt {
            match self.client_assertion_type {
                None => {
                    return Err(invalid_request(
                        "client_assertion_type is required with client_assertion",
                    ));
                }
                Some(JWT_BEARER) => {}
                Some(_) => {
                    return Err(invalid_client(
                        "unsupported client_assertion_type; use urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ));
                }
            }
            let assertion = self.client_assertion.ok_or_else(|| {
                invalid_request("client_assertion is required with client_assertion_type")
            })?;
            return Ok(Credentials::Assertion {
                client_id: self.client_id,
                assertion,
            });
        }
        Err(invalid_client(
            "client authentication is required: client_secret_basic, client_secret_post or private_key_jwt",
        ))
    }
}

impl Authenticator {
    /// Runs a token request (RFC 6749 §4.4.2): checks the grant type, authenticates the client,
    /// grants the requested scopes (all of the client's when none are named) and stores a new
    /// access token valid for `[oauth] access_token_ttl_secs` from `now`.
    pub async fn issue_token(
        &self,
        params: &TokenParams<'_>,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, TokenError> {
        match params.grant_type {
            None => return Err(invalid_request("grant_type is required")),
            Some(CLIENT_CREDENTIALS) => {}
            Some(_) => return Err(TokenError::UnsupportedGrantType),
        }
        let client = match params.credentials()? {
            Credentials::Secret { client_id, secret } => {
                self.client_by_secret(client_id, secret).await?
            }
            Credentials::Assertion {
                client_id,
                assertion,
            } => self.client_by_assertion(client_id, assertion, now).await?,
        };
        let scopes = grant(&client.scopes, params.scope)?;
        let now_ms = now.timestamp_millis();
        // Keeps the tables small: a few expired rows go with every token issued.
        self.store.prune_oauth(now_ms, PRUNE_BATCH).await?;
        let ttl = self.oauth.access_token_ttl_secs;
        let token = generate_token();
        let digest = token_digest(token.expose_secret());
        let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        let ttl_ms = i64::try_from(ttl.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.store
            .insert_access_token(&NewAccessToken {
                token_hash: &digest,
                client_id: &client.id,
                scopes: &names,
                issued_at_ms: now_ms,
                expires_at_ms: now_ms.saturating_add(ttl_ms),
            })
            .await?;
        Ok(IssuedToken {
            access_token: token,
            expires_in: ttl,
            scopes,
            client,
        })
    }

    /// `client_secret_basic` / `client_secret_post`: the secret is the client's bearer token,
    /// looked up by digest as [`Authenticator::authenticate`] does; the client id must be the
    /// id of the client it belongs to.
    async fn client_by_secret(&self, client_id: &str, secret: &str) -> Result<Client, TokenError> {
        const FAILED: &str = "client authentication failed";
        if client_id.is_empty()
            || client_id.len() > MAX_CLIENT_ID
            || secret.is_empty()
            || secret.len() > MAX_SECRET
        {
            return Err(invalid_client(FAILED));
        }
        let digest = token_digest(secret);
        if let Some(admin) = &self.admin_digest
            && digests_equal(admin, &digest)
        {
            return Err(if client_id == BOOTSTRAP_CALLER {
                TokenError::UnauthorizedClient(Cow::Borrowed(
                    "the bootstrap admin token cannot obtain access tokens; create an API client",
                ))
            } else {
                invalid_client(FAILED)
            });
        }
        match self.store.client_by_token_hash(&digest).await? {
            Some(c) if digests_equal(c.id.as_bytes(), client_id.as_bytes()) => {
                Ok(Client::from_stored(c)?)
            }
            _ => Err(invalid_client(FAILED)),
        }
    }

    /// `private_key_jwt` (RFC 7523 §2.2, §3): verifies the assertion with the client's registered
    /// keys, checks its claims against `now`, and records its `jti`.
    async fn client_by_assertion(
        &self,
        form_client_id: Option<&str>,
        assertion: &str,
        now: DateTime<Utc>,
    ) -> Result<Client, TokenError> {
        if assertion.len() > MAX_ASSERTION {
            return Err(invalid_client(
                "the client assertion is longer than 8192 characters",
            ));
        }
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|_| invalid_client("the client assertion is not a signed JWT"))?;
        let alg = header.alg;
        if !matches!(
            alg,
            jsonwebtoken::Algorithm::RS256 | jsonwebtoken::Algorithm::ES256
        ) {
            return Err(invalid_client(
                "the client assertion must be signed with RS256 or ES256",
            ));
        }
        // Unverified: only to find whose keys to verify it with.
        let unverified: Value = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
            .map_err(|_| invalid_client("the client assertion's claims are not a JSON object"))?;
        let client_id = unverified
            .get("iss")
            .and_then(Value::as_str)
            .filter(|iss| is_client_id(iss))
            .ok_or_else(|| invalid_client("the client assertion's iss is not a client id"))?;
        if form_client_id.is_some_and(|id| id != client_id) {
            return Err(invalid_client(
                "client_id differs from the client assertion's iss",
            ));
        }
        let Some(row) = self.store.client_keys(client_id).await? else {
            return Err(invalid_client("client authentication failed"));
        };
        let keys = match row.jwks.as_deref() {
            None => Vec::new(),
            Some(text) => client_keys::from_stored(text).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "API client '{}' holds unreadable keys",
                    row.client.name
                ))
            })?,
        };
        if keys.is_empty() {
            return Err(invalid_client(
                "the client has no keys registered for private_key_jwt",
            ));
        }
        let mut validation = jsonwebtoken::Validation::new(alg);
        // Times are checked below against the service's clock; the audience too.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let claims = keys
            .iter()
            .filter(|k| k.algorithm() == alg)
            .filter(|k| header.kid.is_none() || k.kid == header.kid)
            .filter_map(|k| k.decoding_key())
            .find_map(|key| jsonwebtoken::decode::<Value>(assertion, &key, &validation).ok())
            .map(|d| d.claims)
            .ok_or_else(|| {
                invalid_client(
                    "the client assertion's signature does not verify with the client's registered keys",
                )
            })?;
        let (jti, keep_until) = self.check_assertion_claims(&claims, client_id, now)?;
        let client = Client::from_stored(row.client)?;
        if !self
            .store
            .use_assertion_jti(
                &client.id,
                jti,
                keep_until.saturating_mul(1000),
                now.timestamp_millis(),
            )
            .await?
        {
            return Err(invalid_client(
                "the client assertion was used before (its jti was seen)",
            ));
        }
        Ok(client)
    }

    /// The assertion's `jti` and until when (seconds) it must be remembered, when its claims
    /// hold: `iss` and `sub` the client, `aud` ours, `exp` not past and not too far ahead,
    /// `nbf` and `iat` not ahead.
    fn check_assertion_claims<'c>(
        &self,
        claims: &'c Value,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(&'c str, i64), TokenError> {
        let now = now.timestamp();
        if claims.get("iss").and_then(Value::as_str) != Some(client_id)
            || claims.get("sub").and_then(Value::as_str) != Some(client_id)
        {
            return Err(invalid_client(
                "the client assertion's iss and sub must both be the client id",
            ));
        }
        let ours = |v: &Value| {
            v.as_str()
                .is_some_and(|a| self.oauth.audiences.iter().any(|x| x == a))
        };
        let aud_ok = match claims.get("aud") {
            Some(Value::Array(list)) => list.iter().any(ours),
            Some(v) => ours(v),
            None => false,
        };
        if !aud_ok {
            return Err(invalid_client(
                "the client assertion's aud must be the token endpoint URL or the issuer",
            ));
        }
        let exp = numeric_date(claims.get("exp"))
            .ok_or_else(|| invalid_client("the client assertion needs exp (a NumericDate)"))?;
        if exp.saturating_add(CLOCK_SKEW_SECS) <= now {
            return Err(invalid_client("the client assertion has expired"));
        }
        if exp > now.saturating_add(MAX_ASSERTION_LIFETIME_SECS) {
            return Err(invalid_client(
                "the client assertion's exp is more than 300 seconds ahead",
            ));
        }
        for (claim, what) in [
            ("nbf", "the client assertion is not valid yet (nbf)"),
            ("iat", "the client assertion was issued in the future (iat)"),
        ] {
            match claims.get(claim) {
                None => {}
                Some(v) => match numeric_date(Some(v)) {
                    Some(t) if t <= now.saturating_add(CLOCK_SKEW_SECS) => {}
                    Some(_) => return Err(invalid_client(what)),
                    None => {
                        return Err(invalid_client(
                            "the client assertion's nbf and iat must be NumericDates",
                        ));
                    }
                },
            }
        }
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|j| (1..=MAX_JTI).contains(&j.len()) && j.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                invalid_client(
                    "the client assertion needs a jti of 1 to 256 visible ASCII characters",
                )
            })?;
        Ok((jti, exp.saturating_add(CLOCK_SKEW_SECS)))
    }
}

/// A client id as the service makes them: a UUID in its lowercase hyphenated form.
fn is_client_id(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

/// A JWT NumericDate (seconds, possibly fractional), truncated to whole seconds.
fn numeric_date(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let f = v.as_f64()?;
    // Outside i64 (or not finite) is not a date.
    (f.is_finite() && f.abs() < 9.0e15).then_some(f.trunc() as i64)
}

/// The scopes a token gets: those requested (a subset of the client's), or all of the client's.
fn grant(held: &[Scope], requested: Option<&str>) -> Result<Vec<Scope>, TokenError> {
    let Some(requested) = requested else {
        let mut all = held.to_vec();
        all.sort();
        return Ok(all);
    };
    if requested.len() > MAX_SCOPE {
        return Err(invalid_scope("scope is longer than 1024 characters"));
    }
    let mut granted = Vec::new();
    for name in requested.split(' ') {
        if name.is_empty() {
            return Err(invalid_scope(
                "scope must be scope names separated by single spaces",
            ));
        }
        let Ok(scope) = name.parse::<Scope>() else {
            let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            return Err(invalid_scope(format!(
                "an unknown scope was requested; the scopes are: {}",
                known.join(" ")
            )));
        };
        if !held.contains(&scope) {
            return Err(invalid_scope(format!(
                "this client does not hold the scope {scope}"
            )));
        }
        granted.push(scope);
    }
    granted.sort();
    granted.dedup();
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
    fn description_charset_ok(d: &str) -> bool {
        d.bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
    }

    #[test]
    fn scopes_are_narrowed_never_widened() {
        let held = [Scope::StreamsWrite, Scope::StreamsRead];
        assert_eq!(
            grant(&held, None).expect("all"),
            [Scope::StreamsRead, Scope::StreamsWrite]
        );
        assert_eq!(
            grant(&held, Some("streams:read")).expect("narrowed"),
            [Scope::StreamsRead]
        );
        assert_eq!(
            grant(&held, Some("streams:read streams:read")).expect("deduplicated"),
            [Scope::StreamsRead]
        );
        for bad in [
            "admin",
            "",
            " streams:read",
            "streams:read  streams:write",
            "streams:read\r\nX-Injected: 1",
            "../admin",
            "\"streams:read\"",
            &"streams:read ".repeat(200),
        ] {
            let e = grant(&held, Some(bad)).expect_err(bad);
            assert_eq!(e.code(), Some("invalid_scope"), "{bad:?}");
            let d = e.description();
            assert!(description_charset_ok(&d), "{d}");
            assert!(!d.contains("X-Injected") && !d.contains(".."), "{d}");
        }
    }

    #[test]
    fn one_authentication_method_per_request() {
        let both = TokenParams {
            client_secret: Some("s"),
            client_id: Some("c"),
            basic: Some(Ok(("c", "s"))),
            ..TokenParams::default()
        };
        assert!(matches!(
            both.credentials(),
            Err(TokenError::InvalidRequest(_))
        ));
        let none = TokenParams::default();
        assert!(matches!(
            none.credentials(),
            Err(TokenError::InvalidClient(_))
        ));
        let bad_basic = TokenParams {
            basic: Some(Err(())),
            ..TokenParams::default()
        };
        assert!(matches!(
            bad_basic.credentials(),
            Err(TokenError::InvalidClient(_))
        ));
        let other_type = TokenParams {
            client_assertion_type: Some("urn:x"),
            client_assertion: Some("a.b.c"),
            ..TokenParams::default()
        };
        assert!(matches!(
            other_type.credentials(),
            Err(TokenError::InvalidClient(_))
        ));
        let post_without_id = TokenParams {
            client_secret: Some("s"),
            ..TokenParams::default()
        };
        assert!(matches!(
            post_without_id.credentials(),
            Err(TokenError::InvalidRequest(_))
        ));
    }

    #[test]
    fn client_ids_and_dates() {
        let id = uuid::Uuid::new_v4().to_string();
        assert!(is_client_id(&id));
        assert!(!is_client_id(&id.to_uppercase()));
        assert!(!is_client_id(&id.replace('-', "")));
        assert!(!is_client_id("admin-token"));
        assert!(!is_client_id("../../etc/passwd"));
        assert_eq!(numeric_date(Some(&serde_json::json!(10))), Some(10));
        assert_eq!(numeric_date(Some(&serde_json::json!(10.9))), Some(10));
        assert_eq!(numeric_date(Some(&serde_json::json!("10"))), None);
        assert_eq!(numeric_date(Some(&serde_json::json!(1e300))), None);
    }

    #[test]
    fn every_description_is_in_the_rfc_6749_character_set() {
        let errors = [
            invalid_request("x"),
            TokenError::UnsupportedGrantType,
            invalid_scope("x"),
        ];
        for e in errors {
            assert!(description_charset_ok(&e.description()));
        }
    }
}
