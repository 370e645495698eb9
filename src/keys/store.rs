//! The keys directory: manifest, PEM files, the lock, and every state change.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{
    JWKS_MAX_AGE_SECS, KeyInfo, KeyMaterial, KeyMaterialError, KeyRing, KeyState, LoadedKey,
    Manifest,
};

const MANIFEST: &str = "keys.json";
const LOCK: &str = ".lock";

/// A key operation that failed, with a message for the operator.
#[derive(Debug, thiserror::Error)]
pub enum KeyDirError {
    /// File system trouble.
    #[error("keys dir {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What happened.
        source: std::io::Error,
    },
    /// The manifest or a key file is inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// Key material refused.
    #[error(transparent)]
    Material(#[from] KeyMaterialError),
    /// No such key.
    #[error("no key with kid '{0}'; see `ssf-transmitter keys list`")]
    NotFound(String),
    /// The change is not allowed in the key's current state (or not yet).
    #[error("{0}")]
    Conflict(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyDirError + '_ {
    move |source| KeyDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A keys directory.
#[derive(Debug, Clone)]
pub struct KeyDir {
    path: PathBuf,
}

/// Holds the directory's exclusive lock until dropped.
struct DirLock {
    _file: File,
}

impl KeyDir {
    /// Opens (creating when missing) a keys directory; the directory is made 0700 and its key
    /// files and manifest 0600, also when they exist with looser modes (each change is logged).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, KeyDirError> {
        let path = path.into();
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                crate::files::tighten(&path, 0o700).map_err(io_err(&path))?;
                for entry in fs::read_dir(&path).map_err(io_err(&path))? {
                    let p = entry.map_err(io_err(&path))?.path();
                    if p.is_file() {
                        crate::files::tighten(&p, 0o600).map_err(io_err(&p))?;
                    }
                }
            }
            Ok(_) => {
                return Err(KeyDirError::Invalid(format!(
                    "keys dir {} is not a directory",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(&path).map_err(io_err(&path))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o700))
                    .map_err(io_err(&path))?;
            }
            Err(e) => return Err(io_err(&path)(e)),
        }
        Ok(Self { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> Result<DirLock, KeyDirError> {
        let p = self.path.join(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&p)
            .map_err(io_err(&p))?;
        file.lock().map_err(io_err(&p))?;
        Ok(DirLock { _file: file })
    }

    fn read_manifest(&self) -> Result<Manifest, KeyDirError> {
        let p = self.path.join(MANIFEST);
        match fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                KeyDirError::Invalid(format!("{} is not a valid key manifest: {e}", p.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest {
                version: 1,
                keys: Vec::new(),
            }),
            Err(e) => Err(io_err(&p)(e)),
        }
    }

    /// The manifest bytes, for change detection.
    pub fn manifest_fingerprint(&self) -> Result<Vec<u8>, KeyDirError> {
        let p = self.path.join(MANIFEST);
        match fs::read(&p) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_err(&p)(e)),
        }
    }

    fn write_atomic(&self, name: &str, contents: &[u8], mode: u32) -> Result<(), KeyDirError> {
        let final_path = self.path.join(name);
        let tmp = self.path.join(format!(".{name}.tmp"));
        {
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(mode)
                .open(&tmp)
                .map_err(io_err(&tmp))?;
            // The mode given at create time is masked by the umask; set it explicitly.
            f.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(io_err(&tmp))?;
            f.write_all(contents).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &final_path).map_err(io_err(&final_path))?;
        if let Ok(dir) = File::open(&self.path) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    fn write_manifest(&self, manifest: &Manifest) -> Result<(), KeyDirError> {
        let mut bytes = serde_json::to_vec_pretty(manifest)
            .map_err(|e| KeyDirError::Invalid(format!("cannot render manifest: {e}")))?;
        bytes.push(b'\n');
        self.write_atomic(MANIFEST, &bytes, 0o600)
    }

    fn key_file(&self, kid: &str) -> PathBuf {
        self.path.join(format!("{kid}.pem"))
    }

    fn read_material(&self, kid: &str) -> Result<KeyMaterial, KeyDirError> {
        let p = self.key_file(kid);
        let text = zeroize::Zeroizing::new(fs::read(&p).map_err(io_err(&p))?);
        let material = KeyMaterial::from_pem(&text)
            .map_err(|e| KeyDirError::Invalid(format!("{}: {e}", p.display())))?;
        if material.kid() != kid {
            return Err(KeyDirError::Invalid(format!(
                "{} holds a key whose thumbprint is {}, not the kid {kid} the manifest names; \
                 restore the right file or remove the entry",
                p.display(),
                material.kid()
            )));
        }
        Ok(material)
    }

    /// Generates the first key, already active, when the directory holds none. Safe to call from
    /// several processes at once: exactly one key results.
    pub fn ensure_initialized(&self, now: DateTime<Utc>) -> Result<Option<KeyInfo>, KeyDirError> {
        let _lock = self.lock()?;
        let mut manifest = self.read_manifest()?;
        if !manifest.keys.is_empty() {
            return Ok(None);
        }
        let material = KeyMaterial::generate(2048)?;
        let info = KeyInfo {
            kid: material.kid().to_owned(),
            alg: super::ALG.to_owned(),
            bits: material.bits(),
            state: KeyState::Active,
            created_at: now,
            activated_at: Some(now),
            retired_at: None,
        };
        self.write_atomic(
            &format!("{}.pem", info.kid),
            material.pkcs8_pem().as_bytes(),
            0o600,
        )?;
        manifest.version = 1;
        manifest.keys.push(info.clone());
        self.write_manifest(&manifest)?;
        tracing::info!(kid = %info.kid, "generated the first issuer key (RSA-2048, active)");
        Ok(Some(info))
    }

    /// Loads every published key and checks the manifest's invariants.
    pub fn load(&self) -> Result<KeyRing, KeyDirError> {
        let fingerprint = self.manifest_fingerprint()?;
        let manifest: Manifest = if fingerprint.is_empty() {
            Manifest::default()
        } else {
            serde_json::from_slice(&fingerprint).map_err(|e| {
                KeyDirError::Invalid(format!(
                    "{} is not a valid key manifest: {e}",
                    self.path.join(MANIFEST).display()
                ))
            })?
        };
        let mut loaded = Vec::new();
        for info in manifest.keys.into_iter().filter(|k| k.state.is_published()) {
            if info.alg != super::ALG {
                return Err(KeyDirError::Invalid(format!(
                    "key {} has alg {:?}; only RS256 is supported",
                    info.kid, info.alg
                )));
            }
            let material = self.read_material(&info.kid)?;
            loaded.push(LoadedKey { info, material });
        }
        KeyRing::new(loaded, fingerprint)
    }

    /// Every key in the manifest, oldest first.
    pub fn list(&self) -> Result<Vec<KeyInfo>, KeyDirError> {
        Ok(self.read_manifest()?.keys)
    }

    /// Adds a freshly generated key in state `next` (published, not signing).
    pub fn generate(&self, bits: u32, now: DateTime<Utc>) -> Result<KeyInfo, KeyDirError> {
        let material = KeyMaterial::generate(bits)?;
        self.add_next(&material, now)
    }

    /// Imports a PEM private key (RSA ≥ 2048) in state `next`.
    pub fn import(&self, pem_text: &[u8], now: DateTime<Utc>) -> Result<KeyInfo, KeyDirError> {
        let material = KeyMaterial::from_pem(pem_text)?;
        self.add_next(&material, now)
    }

    fn add_next(&self, material: &KeyMaterial, now: DateTime<Utc>) -> Result<KeyInfo, KeyDirError> {
        let _lock = self.lock()?;
        let mut manifest = self.read_manifest()?;
        if manifest.keys.iter().any(|k| k.kid == material.kid()) {
            return Err(KeyDirError::Conflict(format!(
                "key {} is already in the keys dir",
                material.kid()
            )));
        }
        let info = KeyInfo {
            kid: material.kid().to_owned(),
            alg: super::ALG.to_owned(),
            bits: material.bits(),
            state: KeyState::Next,
            created_at: now,
            activated_at: None,
            retired_at: None,
        };
        self.write_atomic(
            &format!("{}.pem", info.kid),
            material.pkcs8_pem().as_bytes(),
            0o600,
        )?;
        manifest.version = 1;
        manifest.keys.push(info.clone());
        self.write_manifest(&manifest)?;
        Ok(info)
    }

    /// Makes a `next` (or `retiring`) key the signing key; the previous active key becomes
    /// `retiring`. Refused while the key has been published for less than the JWKS cache max-age,
    /// unless `force`.
    pub fn activate(
        &self,
        kid: &str,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<KeyInfo, KeyDirError> {
        let _lock = self.lock()?;
        let mut manifest = self.read_manifest()?;
        let idx = manifest
            .keys
            .iter()
            .position(|k| k.kid == kid)
            .ok_or_else(|| KeyDirError::NotFound(kid.to_owned()))?;
        let target = manifest
            .keys
            .get(idx)
            .cloned()
            .ok_or_else(|| KeyDirError::NotFound(kid.to_owned()))?;
        match target.state {
            KeyState::Active => {
                return Err(KeyDirError::Conflict(format!(
                    "key {kid} is already active"
                )));
            }
            KeyState::Retired => {
                return Err(KeyDirError::Conflict(format!(
                    "key {kid} is retired and unpublished; verifiers no longer know it. Generate or import a new key instead"
                )));
            }
            KeyState::Next | KeyState::Retiring => {}
        }
        let published_for = now.signed_duration_since(target.created_at).num_seconds();
        if target.state == KeyState::Next && published_for < JWKS_MAX_AGE_SECS && !force {
            return Err(KeyDirError::Conflict(format!(
                "key {kid} has been published for {published_for} s, less than the JWKS cache \
                 lifetime ({JWKS_MAX_AGE_SECS} s): verifiers with a cached JWKS would not know it yet. \
                 Wait {} s, or force it (`keys activate --force`, or `force=true` on the API)",
                JWKS_MAX_AGE_SECS - published_for
            )));
        }
        // Prove the file is there and matches before switching.
        self.read_material(kid)?;
        for k in &mut manifest.keys {
            if k.state == KeyState::Active {
                k.state = KeyState::Retiring;
                k.retired_at = Some(now);
            }
        }
        let updated = {
            let k = manifest
                .keys
                .get_mut(idx)
                .ok_or_else(|| KeyDirError::NotFound(kid.to_owned()))?;
            k.state = KeyState::Active;
            k.activated_at = Some(now);
            k.retired_at = None;
            k.clone()
        };
        self.write_manifest(&manifest)?;
        Ok(updated)
    }

    /// Retires a key: unpublished from the JWKS (its file is kept). The active key cannot be
    /// retired; activate another one first.
    pub fn retire(&self, kid: &str, now: DateTime<Utc>) -> Result<KeyInfo, KeyDirError> {
        let _lock = self.lock()?;
        let mut manifest = self.read_manifest()?;
        let k = manifest
            .keys
            .iter_mut()
            .find(|k| k.kid == kid)
            .ok_or_else(|| KeyDirError::NotFound(kid.to_owned()))?;
        match k.state {
            KeyState::Active => {
                return Err(KeyDirError::Conflict(format!(
                    "key {kid} is the active signing key; activate another key first (it moves this one to retiring)"
                )));
            }
            KeyState::Retired => {
                return Err(KeyDirError::Conflict(format!(
                    "key {kid} is already retired"
                )));
            }
            KeyState::Next | KeyState::Retiring => {}
        }
        k.state = KeyState::Retired;
        k.retired_at = Some(now);
        let updated = k.clone();
        self.write_manifest(&manifest)?;
        Ok(updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("ts")
            .with_timezone(&Utc)
    }

    #[test]
    fn first_start_generates_one_active_key_with_0600() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = KeyDir::open(tmp.path().join("keys")).expect("open");
        let first = dir
            .ensure_initialized(t0())
            .expect("init")
            .expect("generated");
        assert!(dir.ensure_initialized(t0()).expect("again").is_none());
        let ring = dir.load().expect("load");
        assert_eq!(ring.active_kid(), first.kid);
        let mode = fs::metadata(dir.key_file(&first.kid))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = fs::read_to_string(dir.key_file(&first.kid)).expect("pem");
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn concurrent_initialisation_yields_exactly_one_key() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("keys");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let dir = KeyDir::open(&path).expect("open");
                    dir.ensure_initialized(t0()).expect("init")
                })
            })
            .collect();
        let generated = handles
            .into_iter()
            .filter_map(|h| h.join().expect("join"))
            .count();
        assert_eq!(generated, 1);
        let dir = KeyDir::open(&path).expect("open");
        assert_eq!(dir.list().expect("list").len(), 1);
    }

    #[test]
    fn rotation_rules() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = KeyDir::open(tmp.path()).expect("open");
        let first = dir.ensure_initialized(t0()).expect("init").expect("gen");
        let next = dir.generate(2048, t0()).expect("gen");
        assert_eq!(next.state, KeyState::Next);
        // Too soon without force.
        let err = dir
            .activate(&next.kid, false, t0() + Duration::seconds(10))
            .expect_err("soon");
        assert!(matches!(err, KeyDirError::Conflict(_)), "{err}");
        // After the cache lifetime it is allowed.
        let active = dir
            .activate(
                &next.kid,
                false,
                t0() + Duration::seconds(JWKS_MAX_AGE_SECS),
            )
            .expect("activate");
        assert_eq!(active.state, KeyState::Active);
        let listed = dir.list().expect("list");
        let old = listed.iter().find(|k| k.kid == first.kid).expect("old");
        assert_eq!(old.state, KeyState::Retiring);
        // The active key cannot be retired; the retiring one can.
        assert!(matches!(
            dir.retire(&next.kid, t0()),
            Err(KeyDirError::Conflict(_))
        ));
        let retired = dir.retire(&first.kid, t0()).expect("retire");
        assert_eq!(retired.state, KeyState::Retired);
        let ring = dir.load().expect("load");
        assert_eq!(ring.keys().len(), 1);
        assert!(matches!(
            dir.activate(&first.kid, true, t0()),
            Err(KeyDirError::Conflict(_))
        ));
        assert!(matches!(
            dir.activate("nope", true, t0()),
            Err(KeyDirError::NotFound(_))
        ));
    }

    #[test]
    fn mismatched_key_file_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = KeyDir::open(tmp.path()).expect("open");
        let first = dir.ensure_initialized(t0()).expect("init").expect("gen");
        let other = KeyMaterial::generate(2048).expect("gen");
        fs::write(dir.key_file(&first.kid), other.pkcs8_pem()).expect("overwrite");
        let err = dir.load().expect_err("mismatch");
        assert!(err.to_string().contains("thumbprint"), "{err}");
    }

    #[test]
    fn duplicate_import_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = KeyDir::open(tmp.path()).expect("open");
        dir.ensure_initialized(t0()).expect("init");
        let m = KeyMaterial::generate(2048).expect("gen");
        dir.import(m.pkcs8_pem().as_bytes(), t0()).expect("import");
        assert!(matches!(
            dir.import(m.pkcs8_pem().as_bytes(), t0()),
            Err(KeyDirError::Conflict(_))
        ));
    }
}
