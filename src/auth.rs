//! Callers of the HTTP API: scopes, bearer tokens (stored as SHA-256 digests), API clients, and
//! the short-lived access tokens clients obtain with OAuth 2.0 client credentials
//! ([`Authenticator::issue_token`]).

mod client_keys;
mod oauth;

pub use client_keys::{ASSERTION_ALGS, ClientJwk, parse_jwks};
pub use oauth::{
    AUTH_METHODS, CLIENT_CREDENTIALS, IssuedToken, OAuthSettings, TOKEN_PATH, TokenError,
    TokenParams,
};

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::{ApiClient, NewClient, Store, StoreError};

/// An API client (never with its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Stable id (UUID).
    pub id: String,
    /// Unique name among active clients.
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<Scope>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Revocation time, when revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Client {
    /// Gives the stored scope names their meaning; a name this build does not know means the
    /// store was written by something else.
    fn from_stored(c: ApiClient) -> Result<Self, StoreError> {
        let scopes = c
            .scopes
            .iter()
            .map(|s| {
                s.parse::<Scope>().map_err(|_| {
                    StoreError::Corrupt(format!(
                        "API client '{}' holds an unknown scope '{s}'",
                        c.name
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            id: c.id,
            name: c.name,
            scopes,
            created_at: c.created_at,
            revoked_at: c.revoked_at,
        })
    }
}

/// Every API client, revoked ones included.
pub async fn list_clients(store: &Store) -> Result<Vec<Client>, StoreError> {
    store
        .list_clients()
        .await?
        .into_iter()
        .map(Client::from_stored)
        .collect()
}

/// Revokes the active client called `name`; `None` when there is none. Its token stops working
/// at once.
pub async fn revoke_client(
    store: &Store,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<Client>, StoreError> {
    store
        .revoke_client(name, now)
        .await?
        .map(Client::from_stored)
        .transpose()
}

/// Prefix of every token this service issues (helps secret scanners recognise leaked tokens).
pub const TOKEN_PREFIX: &str = "ssft_";

/// A permission an API client holds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum Scope {
    /// Submit risk signals.
    #[serde(rename = "signals:write")]
    SignalsWrite,
    /// Read signal delivery status.
    #[serde(rename = "signals:read")]
    SignalsRead,
    /// Containment and its undo against Okta: lifecycle, unlock, sessions, expire/reset password
    /// when Okta e-mails the user, reset factors, group membership, role removal, profile writes.
    #[serde(rename = "enforce:write")]
    EnforceWrite,
    /// What can take over an account or hands a credential back: admin role assignment, setting
    /// a password, temporary passwords, reset and activation links returned to the caller.
    #[serde(rename = "enforce:admin")]
    EnforceAdmin,
    /// Look up users, groups and the audit log.
    #[serde(rename = "enforce:read")]
    EnforceRead,
    /// Manage keys, API clients and the Okta provider registration.
    #[serde(rename = "admin")]
    Admin,
    /// A receiver reads its standard SSF streams and their status.
    #[serde(rename = "streams:read")]
    StreamsRead,
    /// A receiver creates, changes and deletes its standard SSF streams (status, subjects,
    /// verification included).
    #[serde(rename = "streams:write")]
    StreamsWrite,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 8] = [
        Scope::SignalsWrite,
        Scope::SignalsRead,
        Scope::EnforceWrite,
        Scope::EnforceRead,
        Scope::EnforceAdmin,
        Scope::Admin,
        Scope::StreamsRead,
        Scope::StreamsWrite,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::SignalsWrite => "signals:write",
            Scope::SignalsRead => "signals:read",
            Scope::EnforceWrite => "enforce:write",
            Scope::EnforceRead => "enforce:read",
            Scope::EnforceAdmin => "enforce:admin",
            Scope::Admin => "admin",
            Scope::StreamsRead => "streams:read",
            Scope::StreamsWrite => "streams:write",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown scope name.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown scope '{0}'; valid scopes: signals:write, signals:read, enforce:write, enforce:read, enforce:admin, admin, streams:read, streams:write"
)]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

/// A new random bearer token: `ssft_` + 32 random bytes, base64url.
pub fn generate_token() -> SecretString {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    // The system CSPRNG; failure here means the OS cannot give randomness at all.
    if aws_lc_rs::rand::fill(bytes.as_mut()).is_err() {
        panic!("the system random number generator failed");
    }
    SecretString::from(format!(
        "{TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(bytes.as_ref())
    ))
}

/// Compares two digests in constant time.
pub fn digests_equal(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// SHA-256 of a token: what the store keeps and looks up by.
pub fn token_digest(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Stable client id (`admin-token` for the bootstrap token); names can be reused after a
    /// revocation, ids cannot.
    pub id: String,
    /// Client name (`admin-token` for the bootstrap token).
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<Scope>,
}

impl Caller {
    /// Whether the caller holds `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// The name audit rows and logs use for the bootstrap admin token.
pub const BOOTSTRAP_CALLER: &str = "admin-token";

/// The name audit rows use for the command line.
pub const CLI_ACTOR: &str = "cli";

/// Names the service uses for itself in audit rows; no API client may take them.
pub const RESERVED_CLIENT_NAMES: &[&str] = &[BOOTSTRAP_CALLER, CLI_ACTOR];

/// Resolves bearer tokens to callers, and issues OAuth access tokens.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    admin_digest: Option<[u8; 32]>,
    oauth: oauth::OAuthSettings,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("bootstrap_token", &self.admin_digest.is_some())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// With an optional bootstrap admin token (holds every scope) and the token endpoint's
    /// settings.
    pub fn new(
        store: Store,
        admin_token: Option<&SecretString>,
        oauth: oauth::OAuthSettings,
    ) -> Self {
        Self {
            store,
            admin_digest: admin_token.map(|t| token_digest(t.expose_secret())),
            oauth,
        }
    }

    /// Creates an API client (see [`create_client`]).
    pub async fn create_client(
        &self,
        name: &str,
        scopes: &[Scope],
        now: DateTime<Utc>,
    ) -> Result<(Client, SecretString), ClientError> {
        create_client(&self.store, name, scopes, now).await
    }

    /// Every API client, revoked ones included.
    pub async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        list_clients(&self.store).await
    }

    /// Revokes the active client called `name` (see [`revoke_client`]).
    pub async fn revoke_client(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Client>, StoreError> {
        revoke_client(&self.store, name, now).await
    }

    /// Registers the public keys the active client called `name` signs `private_key_jwt`
    /// assertions with, replacing any it had (none: it can no longer use `private_key_jwt`);
    /// `None` when there is no such client.
    pub async fn set_client_keys(
        &self,
        name: &str,
        keys: &[client_keys::ClientJwk],
    ) -> Result<Option<Client>, StoreError> {
        self.store
            .set_client_jwks(name, client_keys::to_stored(keys).as_deref())
            .await?
            .map(Client::from_stored)
            .transpose()
    }

    /// The caller for a presented token at `now`, or `None` when the token is unknown, revoked or
    /// (an access token) expired. An access token's caller is its client, holding the scopes the
    /// token was granted (never more than the client holds).
    pub async fn authenticate(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Caller>, StoreError> {
        let digest = token_digest(token);
        if let Some(admin) = &self.admin_digest
            && digests_equal(admin, &digest)
        {
            return Ok(Some(Caller {
                id: BOOTSTRAP_CALLER.to_owned(),
                name: BOOTSTRAP_CALLER.to_owned(),
                scopes: Scope::ALL.to_vec(),
            }));
        }
        if let Some(c) = self.store.client_by_token_hash(&digest).await? {
            let c = Client::from_stored(c)?;
            return Ok(Some(Caller {
                id: c.id,
                name: c.name,
                scopes: c.scopes,
            }));
        }
        let Some(row) = self
            .store
            .access_token(&digest, now.timestamp_millis())
            .await?
        else {
            return Ok(None);
        };
        let client = Client::from_stored(row.client)?;
        let scopes = client
            .scopes
            .iter()
            .copied()
            .filter(|s| row.scopes.iter().any(|g| g == s.as_str()))
            .collect();
        Ok(Some(Caller {
            id: client.id,
            name: client.name,
            scopes,
        }))
    }
}

/// Why a client could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Bad name or scopes.
    #[error("{0}")]
    Invalid(String),
    /// Name taken.
    #[error("{0}")]
    Conflict(String),
    /// Store failure.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ClientError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ClientError::Conflict(m),
            other => ClientError::Store(other),
        }
    }
}

/// Checks a client name: 1–64 characters of `A-Z a-z 0-9 . _ -`.
pub fn validate_client_name(name: &str) -> Result<(), ClientError> {
    if name.is_empty() || name.len() > 64 {
        return Err(ClientError::Invalid(
            "name must be 1 to 64 characters".into(),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(ClientError::Invalid(
            "name may only hold letters, digits, '.', '_' and '-'".into(),
        ));
    }
    if RESERVED_CLIENT_NAMES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
    {
        return Err(ClientError::Invalid(format!(
            "name '{name}' is reserved: audit rows use it for the service itself"
        )));
    }
    Ok(())
}

/// Creates an API client; returns it with its token, which is shown only this once.
pub async fn create_client(
    store: &Store,
    name: &str,
    scopes: &[Scope],
    now: DateTime<Utc>,
) -> Result<(Client, SecretString), ClientError> {
    validate_client_name(name)?;
    if scopes.is_empty() {
        return Err(ClientError::Invalid(
            "at least one scope is required".into(),
        ));
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    let token = generate_token();
    let digest = token_digest(token.expose_secret());
    let id = uuid::Uuid::new_v4().to_string();
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let client = store
        .create_client(NewClient {
            id: &id,
            name,
            token_hash: &digest,
            scopes: &names,
            created_at: now,
        })
        .await?;
    Ok((Client::from_stored(client)?, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hashed() {
        let a = generate_token();
        let b = generate_token();
        assert!(a.expose_secret().starts_with(TOKEN_PREFIX));
        assert_eq!(a.expose_secret().len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_ne!(
            token_digest(a.expose_secret()),
            token_digest(b.expose_secret())
        );
        assert!(
            !format!("{a:?}").contains(a.expose_secret()),
            "Debug must redact"
        );
    }

    #[test]
    fn scopes_parse_and_print() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().expect("parse"), s);
        }
        assert!("root".parse::<Scope>().is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_client_name("siem-prod_1.a").is_ok());
        assert!(validate_client_name("").is_err());
        assert!(validate_client_name("has space").is_err());
        assert!(validate_client_name(&"x".repeat(65)).is_err());
        for reserved in ["admin-token", "cli", "CLI", "Admin-Token"] {
            assert!(validate_client_name(reserved).is_err(), "{reserved}");
        }
    }
}
