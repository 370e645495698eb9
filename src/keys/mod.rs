//! Issuer signing keys: generation, import, rotation states, the public JWKS, and signing.
//!
//! On disk (`keys_dir`): one PKCS#8 PEM file per key, `{kid}.pem`, mode 0600, and one manifest
//! `keys.json` with every key's metadata. Every change takes an exclusive lock on `.lock`, writes a
//! temporary file and renames it, so concurrent processes never see half a change and a fresh
//! directory ends with exactly one generated key.
//!
//! States: `next` → `active` → `retiring` → `retired`. The JWKS publishes `next`, `active` and
//! `retiring`; exactly one key is `active` and signs. A key is published before it signs and stays
//! published after it stops signing, until it is retired.

mod material;
mod store;

pub use material::{KeyMaterial, KeyMaterialError, pem_problem};
pub use store::{KeyDir, KeyDirError};

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `Cache-Control` max-age of the JWKS, in seconds. A `next` key must have been published this
/// long before it may be activated (unless forced), so no verifier meets an unknown `kid`.
pub const JWKS_MAX_AGE_SECS: i64 = 300;

/// Why a key with SETs still waiting for delivery is not retired.
pub fn pending_message(kid: &str, pending: i64) -> String {
    format!(
        "{pending} SET(s) signed with key {kid} are still waiting for delivery; once the key is \
         unpublished the receiver cannot verify them. Retire it after they are delivered (or dead), \
         or force it"
    )
}

/// The only signing algorithm: RS256.
pub const ALG: &str = "RS256";

/// Rotation state of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not yet signing.
    Next,
    /// Published and signing. Exactly one key is active.
    Active,
    /// Published so earlier tokens still verify; no longer signing.
    Retiring,
    /// Unpublished; its file is kept.
    Retired,
}

impl KeyState {
    /// Whether the key appears in the JWKS.
    pub fn is_published(self) -> bool {
        !matches!(self, KeyState::Retired)
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }
}

/// Metadata of one key, as kept in `keys.json` and shown by the admin API. Never private material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyInfo {
    /// RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub kid: String,
    /// Always `RS256`.
    pub alg: String,
    /// Modulus size in bits.
    pub bits: u32,
    /// Rotation state.
    pub state: KeyState,
    /// When the key was generated or imported (and first published).
    pub created_at: DateTime<Utc>,
    /// When it became the signing key.
    pub activated_at: Option<DateTime<Utc>>,
    /// When it stopped signing (`retiring`) or was unpublished (`retired`).
    pub retired_at: Option<DateTime<Utc>>,
}

/// The manifest file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version (1).
    pub version: u32,
    /// Every key ever generated or imported, oldest first.
    pub keys: Vec<KeyInfo>,
}

/// A loaded, published key.
pub struct LoadedKey {
    /// Its metadata.
    pub info: KeyInfo,
    /// Its material (public JWK and signing key).
    pub material: KeyMaterial,
}

/// An immutable snapshot of the published keys, swapped whole on every change.
pub struct KeyRing {
    keys: Vec<LoadedKey>,
    active: usize,
    jwks: bytes::Bytes,
    fingerprint: Vec<u8>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field(
                "kids",
                &self.keys.iter().map(|k| &k.info.kid).collect::<Vec<_>>(),
            )
            .field("active", &self.active_kid())
            .finish()
    }
}

impl KeyRing {
    fn new(keys: Vec<LoadedKey>, fingerprint: Vec<u8>) -> Result<Self, KeyDirError> {
        let mut actives = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k.info.state == KeyState::Active);
        let active = match (actives.next(), actives.next()) {
            (Some((i, _)), None) => i,
            (None, _) => {
                return Err(KeyDirError::Invalid(
                    "keys.json has no active key; activate one with `ssf-transmitter keys activate KID`"
                        .into(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(KeyDirError::Invalid(
                    "keys.json has more than one active key; fix the manifest so exactly one is active"
                        .into(),
                ));
            }
        };
        // Active first, then next keys, then retiring ones: a stable, useful order for readers.
        let mut published: Vec<&LoadedKey> = keys.iter().collect();
        published.sort_by_key(|k| match k.info.state {
            KeyState::Active => 0,
            KeyState::Next => 1,
            KeyState::Retiring => 2,
            KeyState::Retired => 3,
        });
        let jwks = serde_json::json!({
            "keys": published.iter().map(|k| k.material.public_jwk()).collect::<Vec<_>>()
        });
        let jwks = serde_json::to_vec(&jwks)
            .map_err(|e| KeyDirError::Invalid(format!("cannot render JWKS: {e}")))?;
        Ok(Self {
            keys,
            active,
            jwks: bytes::Bytes::from(jwks),
            fingerprint,
        })
    }

    /// The JWKS document (`{"keys": [...]}`) as served.
    pub fn jwks_json(&self) -> bytes::Bytes {
        self.jwks.clone()
    }

    /// The signing key's `kid`.
    pub fn active_kid(&self) -> &str {
        self.keys
            .get(self.active)
            .map(|k| k.info.kid.as_str())
            .unwrap_or_default()
    }

    /// The signing key.
    pub fn active(&self) -> Option<&LoadedKey> {
        self.keys.get(self.active)
    }

    /// Published keys.
    pub fn keys(&self) -> &[LoadedKey] {
        &self.keys
    }

    /// Signs a JWS compact serialisation with the active key: header `alg` RS256, the active `kid`,
    /// and the given `typ`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, SignError> {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let key = self.active().ok_or(SignError::NoActiveKey)?;
        let header = serde_json::json!({"alg": ALG, "kid": key.info.kid, "typ": typ});
        let mut out = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
        let signature = key.material.sign_rs256(out.as_bytes())?;
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(out)
    }
}

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// No key is active.
    #[error("no active signing key")]
    NoActiveKey,
    /// The claims do not serialise.
    #[error("cannot serialise the token: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The crypto library failed.
    #[error(transparent)]
    Crypto(#[from] KeyMaterialError),
}

/// The keys a running service uses: the directory plus the current [`KeyRing`], reloaded when the
/// manifest changes (the CLI may change it while the server runs).
#[derive(Clone)]
pub struct KeyManager {
    dir: Arc<KeyDir>,
    ring: Arc<RwLock<Arc<KeyRing>>>,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManager")
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl KeyManager {
    /// Opens the directory, generating the first (active) key when it holds none, and loads it.
    pub fn open(dir: KeyDir, now: DateTime<Utc>) -> Result<Self, KeyDirError> {
        dir.ensure_initialized(now)?;
        let ring = dir.load()?;
        Ok(Self {
            dir: Arc::new(dir),
            ring: Arc::new(RwLock::new(Arc::new(ring))),
        })
    }

    /// The current snapshot.
    pub fn ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The key directory.
    pub fn dir(&self) -> &KeyDir {
        &self.dir
    }

    /// Re-reads the manifest; swaps the ring when it changed. Returns whether it changed.
    pub fn reload_if_changed(&self) -> Result<bool, KeyDirError> {
        let current = self.ring();
        let fingerprint = self.dir.manifest_fingerprint()?;
        if fingerprint == current.fingerprint {
            return Ok(false);
        }
        let ring = self.dir.load()?;
        self.swap(ring);
        Ok(true)
    }

    /// Re-reads the manifest unconditionally.
    pub fn reload(&self) -> Result<(), KeyDirError> {
        let ring = self.dir.load()?;
        self.swap(ring);
        Ok(())
    }

    fn swap(&self, ring: KeyRing) {
        let ring = Arc::new(ring);
        match self.ring.write() {
            Ok(mut g) => *g = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
    }
}
