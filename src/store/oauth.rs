//! Stored OAuth 2.0 state (see migrations 0020 and 0021): API clients' registered public keys,
//! issued access tokens (as digests) and the `jti`s of accepted client assertions.

use super::ApiClient;

/// An access token to store.
#[derive(Debug, Clone)]
pub struct NewAccessToken<'a> {
    /// SHA-256 digest of the token.
    pub token_hash: &'a [u8],
    /// The API client it was issued to.
    pub client_id: &'a str,
    /// Granted scope names (a subset of the client's).
    pub scopes: &'a [&'a str],
    /// Issued, ms since the epoch.
    pub issued_at_ms: i64,
    /// Expires, ms since the epoch.
    pub expires_at_ms: i64,
}

/// An unexpired access token of an active client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRow {
    /// The client it was issued to.
    pub client: ApiClient,
    /// The scope names it was granted.
    pub scopes: Vec<String>,
}

/// An active client with its registered public keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKeysRow {
    /// The client.
    pub client: ApiClient,
    /// Its JWKS (JSON text), when one is registered.
    pub jwks: Option<String>,
}
