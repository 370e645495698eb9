//! One typed configuration: a TOML file overlaid by `SSF_*` environment variables.
//!
//! Precedence (lowest first): built-in defaults, the TOML file (`--config FILE`, else
//! `ssf-transmitter.toml` in the working directory when present), then environment variables
//! `SSF_<KEY>` with `__` for nesting (`SSF_OKTA__ORG_URL` → `okta.org_url`). Secrets may be given
//! as `<key>_file` (`SSF_ADMIN_TOKEN_FILE`) naming a file that holds the value.
//!
//! Unknown keys are rejected. Every error names the key, its environment variable and what to do.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// The configuration file looked for in the working directory when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "ssf-transmitter.toml";

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The whole service configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP API listens on. `SSF_LISTEN`.
    pub listen: SocketAddr,
    /// Address of an optional second listener serving only what receivers must reach —
    /// `/.well-known/*` and `/healthz` — so the API need not be exposed. `SSF_PUBLIC_LISTEN`.
    pub public_listen: Option<SocketAddr>,
    /// Native TLS on the listeners (`[tls]`); absent: plain HTTP (e.g. behind a reverse proxy).
    pub tls: Option<TlsConfig>,
    /// Public base URL of this transmitter; the `iss` of every SET. `SSF_ISSUER`.
    /// Default: `http://{bound address}` (only allowed when listening on loopback).
    pub issuer: Option<String>,
    /// Store location: `sqlite://path` (created when missing) or `postgres://user:password@host/db`
    /// (TLS through `sslmode`). `SSF_DATABASE_URL`. Printed only with its password redacted.
    pub database_url: DatabaseUrl,
    /// Directory of issuer signing keys (`{kid}.pem` + `keys.json`). `SSF_KEYS_DIR`.
    pub keys_dir: PathBuf,
    /// Bootstrap bearer token holding every scope. `SSF_ADMIN_TOKEN`.
    pub admin_token: Option<SecretString>,
    /// File holding the bootstrap admin token. `SSF_ADMIN_TOKEN_FILE`.
    pub admin_token_file: Option<PathBuf>,
    /// `text` or `json`. `SSF_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// Log filter in `tracing` env-filter syntax (`RUST_LOG` wins when set). `SSF_LOG_FILTER`.
    pub log_filter: String,
    /// Largest accepted request body in bytes. `SSF_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// Seconds between checks of `keys.json` for changes made by the CLI. `SSF_KEYS_RELOAD_SECS`.
    pub keys_reload_secs: u64,
    /// Seconds a graceful shutdown waits for in-flight requests. `SSF_SHUTDOWN_GRACE_SECS`.
    pub shutdown_grace_secs: u64,
    /// The Okta org that receives signals (`[okta]`). Absent: intake refuses signals.
    pub okta: Option<OktaConfig>,
    /// Push delivery tuning (`[delivery]`).
    pub delivery: DeliveryConfig,
    /// Signal intake behaviour (`[signals]`).
    pub signals: SignalsConfig,
    /// The local Okta sandbox (`[sandbox]`).
    pub sandbox: SandboxConfig,
    /// Direct enforcement (`[enforcement]`): password policy and identity mapping.
    pub enforcement: EnforcementConfig,
    /// `[approval]`: containments a person decides on first.
    pub approval: ApprovalConfig,
    /// `[streams]`: standard SSF streams for any receiver.
    pub streams: StreamsConfig,
    /// `[oauth]`: the OAuth 2.0 token endpoint (client credentials) for API clients.
    pub oauth: OAuthConfig,
}

/// `[oauth]`: the token endpoint where API clients obtain short-lived access tokens (OAuth 2.0
/// client credentials, RFC 6749 §4.4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    /// Lifetime of an issued access token, seconds (60–3600; default 900).
    pub access_token_ttl_secs: u64,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 900,
        }
    }
}

impl OAuthConfig {
    fn validate(&self) -> Vec<ConfigError> {
        if (60..=3600).contains(&self.access_token_ttl_secs) {
            Vec::new()
        } else {
            vec![ConfigError::new(
                "oauth.access_token_ttl_secs",
                "must be 60 to 3600 seconds (access tokens are short-lived; receivers fetch a new one)",
            )]
        }
    }
}

/// `[streams]`: standard SSF streams (SSF 1.0 stream management) for receivers other than the
/// configured Okta org.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamsConfig {
    /// Most streams one API client may own (1–1000; default 10).
    pub max_per_client: usize,
    /// Seconds a receiver must wait between two verification requests of a stream (1–86400;
    /// default 15).
    pub min_verification_interval_secs: u64,
    /// Which subjects a new stream carries: `ALL` (every subject but those a receiver removes;
    /// the default) or `NONE` (only those it adds). Published as `default_subjects`.
    pub default_subjects: crate::signals::streams::config::DefaultSubjects,
    /// Seconds after which a polled SET that was not acknowledged is offered again (5–86400;
    /// default 60).
    pub poll_ack_timeout_secs: u64,
    /// Longest wait of a long poll, seconds (1–30; default 30).
    pub poll_max_wait_secs: u64,
    /// Private networks (CIDR, e.g. `10.20.0.0/16`) a receiver's push endpoint may be on. By
    /// default private, link-local, CGNAT and cloud-metadata addresses are refused, so a
    /// receiver cannot point the service at the internal network.
    pub allow_private_receivers: Vec<String>,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        Self {
            max_per_client: 10,
            min_verification_interval_secs: 15,
            default_subjects: crate::signals::streams::config::DefaultSubjects::All,
            poll_ack_timeout_secs: 60,
            poll_max_wait_secs: 30,
            allow_private_receivers: Vec::new(),
        }
    }
}

impl StreamsConfig {
    /// The allow-list, parsed.
    pub fn allow_private(
        &self,
    ) -> Result<crate::signals::streams::endpoint::AllowPrivate, ConfigError> {
        crate::signals::streams::endpoint::AllowPrivate::parse(&self.allow_private_receivers)
            .map_err(|e| {
                ConfigError::new(
                    "streams.allow_private_receivers",
                    format!("{e}; write networks as CIDR, e.g. 10.20.0.0/16 or fd12:3456::/48"),
                )
            })
    }

    fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if !(1..=1000).contains(&self.max_per_client) {
            errors.push(ConfigError::new(
                "streams.max_per_client",
                "must be 1 to 1000",
            ));
        }
        if !(1..=86_400).contains(&self.min_verification_interval_secs) {
            errors.push(ConfigError::new(
                "streams.min_verification_interval_secs",
                "must be 1 to 86400 seconds",
            ));
        }
        if !(5..=86_400).contains(&self.poll_ack_timeout_secs) {
            errors.push(ConfigError::new(
                "streams.poll_ack_timeout_secs",
                "must be 5 to 86400 seconds",
            ));
        }
        if !(1..=30).contains(&self.poll_max_wait_secs) {
            errors.push(ConfigError::new(
                "streams.poll_max_wait_secs",
                "must be 1 to 30 seconds",
            ));
        }
        if let Err(e) = self.allow_private() {
            errors.push(e);
        }
        errors
    }
}

/// `[approval]`: which containments wait for a person, and how the person is told.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalConfig {
    /// Steps that need approval (e.g. `["deactivate", "reset_factors"]`): a containment with one
    /// waits as a whole; no step runs before the decision.
    pub actions: Vec<String>,
    /// Okta group names or ids whose members need approval for any containment.
    pub protected_groups: Vec<String>,
    /// An ambiguous user becomes a pending approval listing the candidates instead of a 409.
    pub on_ambiguous: bool,
    /// Where a new approval is announced: a POST with JSON carrying a Slack-compatible `text`,
    /// the `approval_id` and the link `url`. `https://` (or `http://` on loopback). Secret: the
    /// link in it decides the approval. `SSF_APPROVAL__WEBHOOK_URL` or `webhook_url_file`.
    pub webhook_url: Option<SecretString>,
    /// A file holding `webhook_url`.
    pub webhook_url_file: Option<PathBuf>,
    /// How long an approval link works, in seconds (60 s to 7 days; default 24 h).
    pub link_ttl: u64,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self {
            actions: Vec::new(),
            protected_groups: Vec::new(),
            on_ambiguous: false,
            webhook_url: None,
            webhook_url_file: None,
            link_ttl: 86_400,
        }
    }
}

/// Step names `[approval] actions` may list.
pub const APPROVABLE_STEPS: &[&str] = &[
    "clear_sessions",
    "suspend",
    "deactivate",
    "reset_factors",
    "add_to_group",
    "expire_password",
    "reset_password",
    "set_profile",
    "signal",
];

impl ApprovalConfig {
    /// The webhook URL, from `webhook_url` or `webhook_url_file`.
    pub fn webhook(&self) -> Result<Option<url::Url>, ConfigError> {
        let raw = match (&self.webhook_url, &self.webhook_url_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "approval.webhook_url_file",
                    "both webhook_url and webhook_url_file are set; keep only one",
                ));
            }
            (Some(u), None) => u.expose_secret().trim().to_owned(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| {
                    ConfigError::new(
                        "approval.webhook_url_file",
                        format!("cannot read {}: {e}", f.display()),
                    )
                })?
                .trim()
                .to_owned(),
            (None, None) => return Ok(None),
        };
        let url = url::Url::parse(&raw).map_err(|_| {
            ConfigError::new(
                "approval.webhook_url",
                "is not a URL; give the https:// address of the chat or ticketing webhook",
            )
        })?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        match url.scheme() {
            "https" => Ok(Some(url)),
            "http" if loopback => Ok(Some(url)),
            _ => Err(ConfigError::new(
                "approval.webhook_url",
                "must be https:// (http:// only on a loopback host): the link it carries decides approvals",
            )),
        }
    }

    fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for a in &self.actions {
            if !APPROVABLE_STEPS.contains(&a.as_str()) {
                errors.push(ConfigError::new(
                    "approval.actions",
                    format!(
                        "'{a}' is not a containment step: {}",
                        APPROVABLE_STEPS.join(", ")
                    ),
                ));
            }
        }
        for g in &self.protected_groups {
            if g.trim().is_empty() || g.chars().count() > 255 || g.chars().any(char::is_control) {
                errors.push(ConfigError::new(
                    "approval.protected_groups",
                    "each entry must be an Okta group id or name of 1 to 255 characters",
                ));
            }
        }
        if !(60..=7 * 86_400).contains(&self.link_ttl) {
            errors.push(ConfigError::new(
                "approval.link_ttl",
                "must be 60 to 604800 seconds (1 minute to 7 days)",
            ));
        }
        if let Err(e) = self.webhook() {
            errors.push(e);
        }
        errors
    }
}

/// `[tls]`: a certificate and key (PEM) for native TLS (rustls), picked up again when the files
/// change.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM (leaf first). `SSF_TLS__CERT_FILE`.
    pub cert_file: PathBuf,
    /// Private key, PEM (PKCS#8, PKCS#1 or SEC1). `SSF_TLS__KEY_FILE`.
    pub key_file: PathBuf,
    /// TLS on the API listener (`listen`). Default true. `SSF_TLS__API`.
    #[serde(default = "default_true")]
    pub api: bool,
    /// TLS on the public listener (`public_listen`). Default true. `SSF_TLS__PUBLIC`.
    #[serde(default = "default_true")]
    pub public: bool,
    /// Seconds between checks of the files for a renewed certificate. Default 10.
    /// `SSF_TLS__RELOAD_SECS`.
    #[serde(default = "default_tls_reload_secs")]
    pub reload_secs: u64,
}

fn default_tls_reload_secs() -> u64 {
    10
}

impl TlsConfig {
    fn validate(&self, has_public: bool) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for (key, path) in [
            ("tls.cert_file", &self.cert_file),
            ("tls.key_file", &self.key_file),
        ] {
            match std::fs::read(path) {
                Ok(b) if String::from_utf8_lossy(&b).contains("-----BEGIN ") => {}
                Ok(_) => errors.push(ConfigError::new(
                    key,
                    format!("{} holds no PEM block", path.display()),
                )),
                Err(e) => errors.push(ConfigError::new(
                    key,
                    format!("cannot read {}: {e}", path.display()),
                )),
            }
        }
        if !(self.api || (self.public && has_public)) {
            errors.push(ConfigError::new(
                "tls",
                "no listener terminates TLS: set api = true, or public = true with public_listen",
            ));
        }
        if self.reload_secs == 0 {
            errors.push(ConfigError::new("tls.reload_secs", "must be at least 1"));
        }
        errors
    }

    /// Whether the API listener (`public = false`) or the public one (`true`) speaks TLS.
    pub fn on(&self, public: bool) -> bool {
        if public { self.public } else { self.api }
    }
}

/// `[okta]`: the org whose Shared Signals receiver gets our SETs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OktaConfig {
    /// Org URL, e.g. `https://acme.okta.com` (https; http only for loopback). `SSF_OKTA__ORG_URL`.
    pub org_url: String,
    /// `aud` of every SET; default: the org URL (with a trailing slash unless
    /// `audience_trailing_slash = false`). `SSF_OKTA__AUDIENCE`.
    pub audience: Option<String>,
    /// Whether the default audience ends with `/` (the form in Okta's API spec). Default true.
    #[serde(default = "default_true")]
    pub audience_trailing_slash: bool,
    /// `seconds` (Okta's spec) or `milliseconds` for `event_timestamp`. Default seconds.
    #[serde(default)]
    pub event_timestamp_unit: crate::set::TimestampUnit,
    /// Okta API token (`Authorization: SSWS …`) for the Management API. `SSF_OKTA__API_TOKEN`.
    #[serde(default)]
    pub api_token: Option<SecretString>,
    /// File holding the API token. `SSF_OKTA__API_TOKEN_FILE`.
    #[serde(default)]
    pub api_token_file: Option<PathBuf>,
    /// OAuth 2.0 service app (`[okta.oauth]`), used instead of the API token when set.
    #[serde(default)]
    pub oauth: Option<OktaOAuthConfig>,
}

/// `[okta.oauth]`: an Okta API service app using client credentials with a `private_key_jwt`
/// client assertion, and DPoP-bound access tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OktaOAuthConfig {
    /// The service app's client id (`0oa…`). `SSF_OKTA__OAUTH__CLIENT_ID`.
    pub client_id: String,
    /// PEM private key (PKCS#8 RSA or EC P-256; RSA PKCS#1 also accepted) registered with the
    /// app. `SSF_OKTA__OAUTH__PRIVATE_KEY`.
    #[serde(default)]
    pub private_key: Option<SecretString>,
    /// File holding the PEM private key. `SSF_OKTA__OAUTH__PRIVATE_KEY_FILE`.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// `kid` of the key as registered in Okta (sent in the assertion header).
    #[serde(default)]
    pub key_id: Option<String>,
    /// Scopes to request (granted to the app in Okta), e.g. `okta.users.manage`.
    #[serde(default = "default_oauth_scopes")]
    pub scopes: Vec<String>,
    /// Prove possession with DPoP (Okta's default for API service apps). Default true.
    #[serde(default = "default_true")]
    pub dpop: bool,
}

fn default_oauth_scopes() -> Vec<String> {
    [
        "okta.users.read",
        "okta.users.manage",
        "okta.groups.read",
        "okta.groups.manage",
        "okta.roles.read",
        "okta.roles.manage",
        "okta.idps.read",
        "okta.securityEventsProviders.read",
        "okta.securityEventsProviders.manage",
    ]
    .map(str::to_owned)
    .to_vec()
}

impl OktaOAuthConfig {
    /// The private key PEM, read from `private_key_file` when that is set.
    pub fn private_key(&self) -> Result<SecretString, ConfigError> {
        match (&self.private_key, &self.private_key_file) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                "okta.oauth.private_key_file",
                "both private_key and private_key_file are set; keep one",
            )),
            (Some(k), None) => Ok(k.clone()),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(SecretString::from)
                .map_err(|e| {
                    ConfigError::new(
                        "okta.oauth.private_key_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                }),
            (None, None) => Err(ConfigError::new(
                "okta.oauth.private_key",
                "the service app's private key is missing: set private_key_file (SSF_OKTA__OAUTH__PRIVATE_KEY_FILE) or private_key",
            )),
        }
    }
}

/// `[enforcement]`: direct enforcement settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnforcementConfig {
    /// Generated passwords (`[enforcement.password]`).
    pub password: PasswordPolicy,
    /// How `DOMAIN\sam` and UPNs map to Okta users (`[enforcement.identity]`).
    pub identity: IdentityRules,
    /// The standard admin roles `POST /v1/users/{user}/roles` may assign. Unset: every standard
    /// role except `SUPER_ADMIN` and `ORG_ADMIN`, which are assignable only when listed here.
    pub assignable_roles: Option<Vec<String>>,
    /// The profile attributes `PATCH /v1/users/{user}/profile` may change. Unset: any attribute
    /// except Okta's identity attributes (`login`, `email`, `secondEmail`, `mobilePhone`,
    /// `primaryPhone`); a list is the allow-list.
    pub profile_attributes: Option<Vec<String>>,
    /// Users of a bulk job acted on at once (1–32, default 4). They share one Okta rate-limit
    /// budget, so more workers only help when Okta answers slowly.
    pub job_workers: Option<usize>,
}

/// Roles that are assignable only when `[enforcement] assignable_roles` lists them.
pub const ROLES_ONLY_WHEN_LISTED: &[&str] = &["SUPER_ADMIN", "ORG_ADMIN"];

/// Okta's identity attributes: writable only when `[enforcement] profile_attributes` lists them
/// (changing them can hand the account to someone else).
pub const IDENTITY_ATTRIBUTES: &[&str] = &[
    "login",
    "email",
    "secondEmail",
    "mobilePhone",
    "primaryPhone",
];

impl EnforcementConfig {
    /// Whether a role type may be assigned.
    pub fn role_assignable(&self, role_type: &str) -> bool {
        match &self.assignable_roles {
            Some(listed) => listed.iter().any(|r| r == role_type),
            None => !ROLES_ONLY_WHEN_LISTED.contains(&role_type),
        }
    }

    /// Whether a profile attribute may be written.
    pub fn profile_attribute_allowed(&self, name: &str) -> bool {
        match &self.profile_attributes {
            Some(listed) => listed.iter().any(|a| a == name),
            None => !IDENTITY_ATTRIBUTES.contains(&name),
        }
    }

    fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for r in self.assignable_roles.iter().flatten() {
            if !crate::okta::STANDARD_ROLE_TYPES.contains(&r.as_str()) {
                errors.push(ConfigError::new(
                    "enforcement.assignable_roles",
                    format!(
                        "'{r}' is not one of Okta's standard admin roles: {}",
                        crate::okta::STANDARD_ROLE_TYPES.join(", ")
                    ),
                ));
            }
        }
        for a in self.profile_attributes.iter().flatten() {
            if a.is_empty()
                || a.len() > 100
                || !a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                errors.push(ConfigError::new(
                    "enforcement.profile_attributes",
                    format!(
                        "'{a}' is not an Okta profile attribute name (1 to 100 letters, digits, _)"
                    ),
                ));
            }
        }
        let p = &self.password;
        if !(8..=256).contains(&p.length) {
            errors.push(ConfigError::new(
                "enforcement.password.length",
                "must be between 8 and 256",
            ));
        }
        if p.min_lowercase
            .saturating_add(p.min_uppercase)
            .saturating_add(p.min_digits)
            .saturating_add(p.min_symbols)
            > p.length
        {
            errors.push(ConfigError::new(
                "enforcement.password.length",
                "is shorter than min_lowercase + min_uppercase + min_digits + min_symbols",
            ));
        }
        if p.symbols.chars().any(|c| !c.is_ascii_punctuation()) {
            errors.push(ConfigError::new(
                "enforcement.password.symbols",
                "may hold only ASCII punctuation (no letters, digits or spaces)",
            ));
        }
        if p.min_symbols > 0 && p.symbols.is_empty() {
            errors.push(ConfigError::new(
                "enforcement.password.symbols",
                "is empty while min_symbols > 0",
            ));
        }
        let id = &self.identity;
        if let Some(a) = &id.sam_attribute
            && (a.is_empty() || !a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            errors.push(ConfigError::new(
                "enforcement.identity.sam_attribute",
                "must be an Okta profile attribute name (letters, digits, _), e.g. samAccountName",
            ));
        }
        if id.sam_attribute.is_some() && id.sam_domains.is_empty() {
            errors.push(ConfigError::new(
                "enforcement.identity.sam_domains",
                "list the NetBIOS domains whose accounts sam_attribute matches, e.g. [\"CORP\"] (or [\"*\"] for any)",
            ));
        }
        for (key, map) in [
            ("enforcement.identity.netbios_domains", &id.netbios_domains),
            ("enforcement.identity.upn_suffixes", &id.upn_suffixes),
        ] {
            for (from, to) in map {
                if from.trim().is_empty() || to.trim().is_empty() || to.contains(['@', '\\', ' ']) {
                    errors.push(ConfigError::new(
                        key,
                        format!("{from:?} = {to:?}: both sides must be non-empty and the target a bare domain such as example.com"),
                    ));
                }
            }
        }
        errors
    }
}

/// `[enforcement.password]`: the complexity of generated passwords.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordPolicy {
    /// Length of a generated password (8–256). Default 20.
    pub length: usize,
    /// At least this many lowercase letters. Default 1.
    pub min_lowercase: usize,
    /// At least this many uppercase letters. Default 1.
    pub min_uppercase: usize,
    /// At least this many digits. Default 1.
    pub min_digits: usize,
    /// At least this many symbols. Default 1.
    pub min_symbols: usize,
    /// The symbols a password may contain.
    pub symbols: String,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            length: 20,
            min_lowercase: 1,
            min_uppercase: 1,
            min_digits: 1,
            min_symbols: 1,
            symbols: "!#$%&()*+,-.:;<=>?@[]^_{}~".into(),
        }
    }
}

/// `[enforcement.identity]`: rules that map Windows-style identities to Okta users.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityRules {
    /// NetBIOS domain → login domain: with `CORP = "example.com"`, `CORP\jdoe` is
    /// `jdoe@example.com`. Case-insensitive.
    pub netbios_domains: std::collections::BTreeMap<String, String>,
    /// UPN suffix → login domain: with `"corp.local" = "example.com"`, `jdoe@corp.local` is
    /// `jdoe@example.com`. Case-insensitive.
    pub upn_suffixes: std::collections::BTreeMap<String, String>,
    /// Profile attribute holding the sAMAccountName (e.g. `samAccountName`): `DOMAIN\sam` whose
    /// domain has no `netbios_domains` rule is matched against it when the domain is in
    /// `sam_domains`.
    pub sam_attribute: Option<String>,
    /// NetBIOS domains whose accounts `sam_attribute` may match (`["*"]` for any). Required with
    /// `sam_attribute`: in a multi-domain forest `OTHER\jsmith` must not hit CORP's jsmith.
    pub sam_domains: Vec<String>,
}

impl OktaConfig {
    /// A config for an org URL with every other setting at its default.
    pub fn for_org(org_url: &str) -> Self {
        Self {
            org_url: org_url.to_owned(),
            audience: None,
            audience_trailing_slash: true,
            event_timestamp_unit: crate::set::TimestampUnit::Seconds,
            api_token: None,
            api_token_file: None,
            oauth: None,
        }
    }

    /// The API token, read from `api_token_file` when that is set.
    pub fn api_token(&self) -> Result<Option<SecretString>, ConfigError> {
        if self.api_token.is_some() && self.api_token_file.is_some() {
            return Err(ConfigError::new(
                "okta.api_token_file",
                "both api_token and api_token_file are set; keep one",
            ));
        }
        match &self.api_token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new(
                        "okta.api_token_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let t = text.trim_end_matches(['\r', '\n']).to_owned();
                if t.is_empty() {
                    return Err(ConfigError::new(
                        "okta.api_token_file",
                        format!("{} is empty", path.display()),
                    ));
                }
                Ok(Some(SecretString::from(t)))
            }
            None => Ok(self.api_token.clone()),
        }
    }
}

/// `[sandbox]`: the local Okta-compatible org (`serve --sandbox`, `sandbox`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Where the sandbox org listens. `SSF_SANDBOX__LISTEN`.
    pub listen: SocketAddr,
    /// A JSON file with the directory to serve instead of the demo one. `SSF_SANDBOX__SEED_FILE`.
    pub seed_file: Option<PathBuf>,
    /// `serve --sandbox` talks to the sandbox's Management API as its OAuth service app
    /// (private_key_jwt + DPoP) instead of with its API token. `SSF_SANDBOX__OAUTH`.
    pub oauth: bool,
    /// Let `listen` be a non-loopback address. The sandbox hands out its API token to anyone who
    /// can read `sandbox.json` and accepts any client: never expose it by accident.
    /// `SSF_SANDBOX__ALLOW_NON_LOOPBACK`.
    pub allow_non_loopback: bool,
}

impl SandboxConfig {
    /// Checks the sandbox is not exposed by accident.
    pub fn validate(&self) -> Vec<ConfigError> {
        if self.listen.ip().is_loopback() || self.allow_non_loopback {
            return Vec::new();
        }
        vec![ConfigError::new(
            "sandbox.listen",
            format!(
                "{} is not a loopback address; the sandbox is a test org with a well-known token and                  must not be reachable from other hosts. Use 127.0.0.1, or set                  [sandbox] allow_non_loopback = true (SSF_SANDBOX__ALLOW_NON_LOOPBACK) if you mean it",
                self.listen
            ),
        )]
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            seed_file: None,
            oauth: false,
            allow_non_loopback: false,
        }
    }
}

fn default_true() -> bool {
    true
}

/// The longest `[delivery] request_timeout_ms`: a push plus 5 s to record its outcome fits in the
/// 30 s claim a worker holds on the SET (see `delivery::claim_lease`).
pub const MAX_REQUEST_TIMEOUT_MS: u64 = 25_000;

/// `[delivery]`: how SETs are pushed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// SETs in flight at once (across subjects; one per subject). `SSF_DELIVERY__CONCURRENCY`.
    pub concurrency: usize,
    /// TCP/TLS connect timeout, milliseconds.
    pub connect_timeout_ms: u64,
    /// Whole-request timeout, milliseconds. At most 25000 (see [`MAX_REQUEST_TIMEOUT_MS`]).
    pub request_timeout_ms: u64,
    /// A SET still undelivered this long after it was queued is `dead`. Seconds.
    pub max_age_secs: u64,
    /// First retry delay after a 5xx/timeout, milliseconds (doubles each attempt, with jitter).
    pub backoff_initial_ms: u64,
    /// Largest retry delay, seconds.
    pub backoff_max_secs: u64,
    /// Longest wait honoured from a 429's `X-Rate-Limit-Reset`/`Retry-After`, seconds.
    pub rate_limit_max_wait_secs: u64,
    /// How often the worker looks for due retries when idle, milliseconds.
    pub poll_interval_ms: u64,
    /// A 400 whose `err` is `invalid_key`, `authentication_failed` or `invalid_issuer` — what Okta
    /// answers while it still holds an old JWKS after a key rotation, or before the provider is
    /// active — is retried with back-off for this long (seconds, from the first such answer)
    /// before the SET is `failed`. 0 fails at once. At most `max_age_secs`. Default 900.
    pub verify_retry_secs: u64,
    /// Delivered SETs are deleted this many days after delivery. Default 30.
    pub retain_days: u64,
    /// Failed and dead SETs are deleted this many days after they failed (at least
    /// `retain_days`: they are the ones someone may need to look at). Default 90.
    pub retain_failed_days: u64,
    /// How often old SETs are pruned, seconds. Default 3600.
    pub prune_interval_secs: u64,
    /// Rows deleted per pruning statement; batches are separated by a pause so intake and
    /// delivery outcomes never wait long for the database. Default 500.
    pub prune_batch: u32,
    /// While a receiver is down (pushes to several subjects failed in a row with connection
    /// errors, timeouts or 5xx), one SET probes it, first after `backoff_initial_ms`, then at
    /// doubling intervals of at most this many seconds; when a probe gets through, every waiting
    /// SET is due at once. Default 10.
    pub probe_max_secs: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 15_000,
            max_age_secs: 24 * 3600,
            backoff_initial_ms: 1_000,
            backoff_max_secs: 300,
            rate_limit_max_wait_secs: 3_600,
            poll_interval_ms: 1_000,
            verify_retry_secs: 900,
            retain_days: 30,
            retain_failed_days: 90,
            prune_interval_secs: 3_600,
            prune_batch: 500,
            probe_max_secs: 10,
        }
    }
}

/// `[signals]`: intake behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalsConfig {
    /// Fill `previous_level` from the last level accepted for the subject when omitted.
    pub fill_previous_level: bool,
    /// Answer `unchanged` (and send nothing) when the level equals the last one, unless `force`.
    pub suppress_unchanged: bool,
    /// Scores at or above this map to `medium` (0–100).
    pub score_medium: f64,
    /// Scores at or above this map to `high` (0–100).
    pub score_high: f64,
    /// SIEM severity → level.
    pub severity: SeverityMap,
    /// `reason_admin` when a caller gives no reason; `{event}` and `{client}` are replaced.
    pub default_reason: String,
    /// Most signals in one batch request.
    pub batch_max: usize,
}

impl Default for SignalsConfig {
    fn default() -> Self {
        Self {
            fill_previous_level: true,
            suppress_unchanged: true,
            score_medium: 40.0,
            score_high: 70.0,
            severity: SeverityMap::default(),
            default_reason: "{event} reported by {client} via ssf-transmitter".into(),
            batch_max: 1000,
        }
    }
}

/// SIEM severity to Okta risk level.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeverityMap {
    /// `informational` → (default `low`).
    pub informational: crate::set::RiskLevel,
    /// `low` → (default `low`).
    pub low: crate::set::RiskLevel,
    /// `medium` → (default `medium`).
    pub medium: crate::set::RiskLevel,
    /// `high` → (default `high`).
    pub high: crate::set::RiskLevel,
    /// `critical` → (default `high`).
    pub critical: crate::set::RiskLevel,
}

impl Default for SeverityMap {
    fn default() -> Self {
        use crate::set::RiskLevel;
        Self {
            informational: RiskLevel::Low,
            low: RiskLevel::Low,
            medium: RiskLevel::Medium,
            high: RiskLevel::High,
            critical: RiskLevel::High,
        }
    }
}

/// The receiver derived from `[okta]`: where to push and what `aud` to claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaTarget {
    /// Org URL, no trailing slash.
    pub org_url: String,
    /// Push endpoint: `{org_url}/security/api/v1/security-events`.
    pub endpoint: String,
    /// `aud` claim.
    pub audience: String,
    /// `event_timestamp` unit.
    pub timestamp_unit: crate::set::TimestampUnit,
}

impl OktaConfig {
    /// Validates and derives the push target.
    pub fn target(&self) -> Result<OktaTarget, ConfigError> {
        let url = parse_org_url(&self.org_url)?;
        let org_url = url.as_str().trim_end_matches('/').to_owned();
        let audience = match &self.audience {
            Some(a) if a.trim().is_empty() => {
                return Err(ConfigError::new(
                    "okta.audience",
                    "must not be empty; remove it to use the org URL",
                ));
            }
            Some(a) => a.trim().to_owned(),
            None if self.audience_trailing_slash => format!("{org_url}/"),
            None => org_url.clone(),
        };
        Ok(OktaTarget {
            endpoint: format!("{org_url}/security/api/v1/security-events"),
            org_url,
            audience,
            timestamp_unit: self.event_timestamp_unit,
        })
    }
}

/// An Okta org URL: https (http only on loopback), no path, query or fragment.
pub fn parse_org_url(raw: &str) -> Result<Url, ConfigError> {
    let key = "okta.org_url";
    let url = Url::parse(raw.trim()).map_err(|e| {
        ConfigError::new(
            key,
            format!("{raw:?} is not an absolute URL ({e}); use e.g. https://acme.okta.com"),
        )
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        "http" => {
            return Err(ConfigError::new(
                key,
                "must be https:// (http:// is allowed only for loopback hosts)",
            ));
        }
        other => {
            return Err(ConfigError::new(
                key,
                format!("scheme {other:?} is not allowed; use https://"),
            ));
        }
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(ConfigError::new(
            key,
            "must be the org's base URL with no path (e.g. https://acme.okta.com, not …/admin or …/oauth2)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(ConfigError::new(
            key,
            "must not carry a query, fragment or credentials",
        ));
    }
    if url.host_str().is_some_and(|h| h.contains("-admin.")) {
        return Err(ConfigError::new(
            key,
            "looks like the admin console host; use the org URL without `-admin` (e.g. https://acme.okta.com)",
        ));
    }
    Ok(url)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_listen: None,
            tls: None,
            issuer: None,
            database_url: "sqlite://data/ssf-transmitter.db".into(),
            keys_dir: PathBuf::from("keys"),
            admin_token: None,
            admin_token_file: None,
            log_format: LogFormat::Text,
            log_filter: "info".to_owned(),
            max_body_bytes: 1024 * 1024,
            keys_reload_secs: 2,
            shutdown_grace_secs: 20,
            okta: None,
            delivery: DeliveryConfig::default(),
            signals: SignalsConfig::default(),
            sandbox: SandboxConfig::default(),
            enforcement: EnforcementConfig::default(),
            approval: ApprovalConfig::default(),
            streams: StreamsConfig::default(),
            oauth: OAuthConfig::default(),
        }
    }
}

/// A configuration problem, naming the key and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path (`okta.org_url`); empty for file-level problems.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl ConfigError {
    /// A problem with the setting at `key`.
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// The environment variable that sets a dotted key.
pub fn env_name(key: &str) -> String {
    format!("SSF_{}", key.replace('.', "__").to_uppercase())
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "configuration error: {}", self.message)
        } else {
            write!(
                f,
                "configuration error in `{}` ({}): {}",
                self.key,
                env_name(&self.key),
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found, one per line.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The store's URL as configured. A PostgreSQL URL can hold a password, so `Debug` and `Display`
/// show it redacted (`postgres://user:***@host/db`); [`DatabaseUrl::expose`] is for the driver only.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL with its password, for the database driver. Never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_database_url(&self.0)
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), f)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A database URL fit for logs: the password (in the authority or a `password` query parameter)
/// replaced by `***`. A URL that does not parse is not shown at all, as it may still hold one.
pub fn redact_database_url(url: &str) -> String {
    if url.starts_with("sqlite:") {
        return url.to_owned();
    }
    let Ok(mut parsed) = Url::parse(url) else {
        if url.contains('@') || url.to_ascii_lowercase().contains("password") {
            return "<unparseable database URL>".to_owned();
        }
        return url.to_owned();
    };
    if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
        return "<database URL>".to_owned();
    }
    if parsed.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" { "***".into() } else { v };
                (k.into_owned(), v.into_owned())
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Where the store lives, parsed from `database_url`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// A SQLite file (or `:memory:`).
    Sqlite {
        /// The URL handed to sqlx.
        url: String,
        /// The file, when not in memory.
        path: Option<PathBuf>,
    },
    /// A PostgreSQL server (`postgres://` or `postgresql://`; TLS through `sslmode`).
    Postgres {
        /// The URL handed to sqlx, password included: never print it.
        url: String,
    },
}

impl fmt::Debug for DatabaseLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite { url, path } => f
                .debug_struct("Sqlite")
                .field("url", url)
                .field("path", path)
                .finish(),
            Self::Postgres { url } => f
                .debug_struct("Postgres")
                .field("url", &redact_database_url(url))
                .finish(),
        }
    }
}

impl Config {
    /// Reads the file (when any) and the process environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigErrors> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    /// Like [`Config::load`] with an explicit environment (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigErrors> {
        Self::load_sources(file, true, env)
    }

    /// Like [`Config::load_from`]; `default_file` says whether `./ssf-transmitter.toml` is read
    /// when no file is given (tests say no, so a developer's own file cannot change them).
    fn load_sources(
        file: Option<&Path>,
        default_file: bool,
        env: &[(String, String)],
    ) -> Result<Config, ConfigErrors> {
        let mut figment = Figment::new();
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigErrors(vec![ConfigError::new(
                        "",
                        format!(
                            "config file {} does not exist or is not a file; fix the --config path",
                            path.display()
                        ),
                    )]));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None if default_file => {
                let default = Path::new(DEFAULT_CONFIG_FILE);
                if default.is_file() {
                    figment = figment.merge(Toml::file_exact(default));
                }
            }
            None => {}
        }
        // figment's Env reads the process environment; feed it ours so tests stay hermetic.
        let vars: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| k.starts_with("SSF_") && k != "SSF_CONFIG")
            .cloned()
            .collect();
        let figment = figment.merge(StaticEnv { vars });
        let config: Config = figment.extract_lossy().map_err(figment_errors)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule that types alone do not express.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        if let Err(e) = self.issuer_url() {
            errors.push(e);
        }
        if let Some(t) = &self.tls {
            errors.extend(t.validate(self.public_listen.is_some()));
        }
        if let Some(p) = self.public_listen
            && self.issuer.is_none()
            && !p.ip().is_loopback()
        {
            errors.push(ConfigError::new(
                "issuer",
                format!(
                    "public_listen {p} is not loopback, so the public issuer URL cannot be derived; \
                     set SSF_ISSUER to the https:// URL receivers reach this service at"
                ),
            ));
        }
        if self.issuer.is_none() && !self.listen.ip().is_loopback() {
            errors.push(ConfigError::new(
                "issuer",
                format!(
                    "listen address {} is not loopback, so the public issuer URL cannot be derived; \
                     set SSF_ISSUER to the https:// URL receivers reach this service at",
                    self.listen
                ),
            ));
        }
        if let Err(e) = self.database() {
            errors.push(e);
        }
        errors.extend(self.sandbox.validate());
        errors.extend(self.approval.validate());
        errors.extend(self.streams.validate());
        errors.extend(self.oauth.validate());
        if let Err(e) = check_dir_usable(&self.keys_dir) {
            errors.push(ConfigError::new("keys_dir", e));
        }
        if self.admin_token.is_some() && self.admin_token_file.is_some() {
            errors.push(ConfigError::new(
                "admin_token_file",
                "both admin_token and admin_token_file are set; keep only one",
            ));
        }
        match self.admin_token() {
            Ok(Some(t)) if t.expose_secret().len() < 16 => errors.push(ConfigError::new(
                "admin_token",
                "the bootstrap admin token must be at least 16 characters; generate one with `openssl rand -base64 32`",
            )),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
        if self.max_body_bytes < 1024 {
            errors.push(ConfigError::new(
                "max_body_bytes",
                "must be at least 1024 bytes",
            ));
        }
        if let Some(okta) = &self.okta {
            if let Err(e) = okta.target() {
                errors.push(e);
            }
            if let Err(e) = okta.api_token() {
                errors.push(e);
            }
            if let Some(o) = &okta.oauth {
                if okta.api_token.is_some() || okta.api_token_file.is_some() {
                    errors.push(ConfigError::new(
                        "okta.oauth",
                        "both an API token and [okta.oauth] are set; keep one auth mode",
                    ));
                }
                if let Err(e) = o.private_key().and_then(|k| {
                    crate::okta::oauth::AssertionKey::from_pem(k.expose_secret())
                        .map(|_| ())
                        .map_err(|m| ConfigError::new("okta.oauth.private_key", m))
                }) {
                    errors.push(e);
                }
                if o.client_id.trim().is_empty() {
                    errors.push(ConfigError::new(
                        "okta.oauth.client_id",
                        "must be the service app's client id (0oa…)",
                    ));
                }
                if o.scopes.is_empty() {
                    errors.push(ConfigError::new(
                        "okta.oauth.scopes",
                        "list the Okta scopes granted to the app, e.g. [\"okta.users.manage\"]",
                    ));
                }
            }
        }
        errors.extend(self.enforcement.validate());
        let d = &self.delivery;
        for (key, value) in [
            ("delivery.concurrency", d.concurrency as u64),
            ("delivery.connect_timeout_ms", d.connect_timeout_ms),
            ("delivery.request_timeout_ms", d.request_timeout_ms),
            ("delivery.max_age_secs", d.max_age_secs),
            ("delivery.backoff_initial_ms", d.backoff_initial_ms),
            ("delivery.backoff_max_secs", d.backoff_max_secs),
            (
                "delivery.rate_limit_max_wait_secs",
                d.rate_limit_max_wait_secs,
            ),
            ("delivery.poll_interval_ms", d.poll_interval_ms),
            ("delivery.probe_max_secs", d.probe_max_secs),
            ("delivery.retain_days", d.retain_days),
            ("delivery.prune_interval_secs", d.prune_interval_secs),
        ] {
            if value == 0 {
                errors.push(ConfigError::new(key, "must be greater than 0"));
            }
        }
        if d.request_timeout_ms > MAX_REQUEST_TIMEOUT_MS {
            errors.push(ConfigError::new(
                "delivery.request_timeout_ms",
                format!(
                    "is {} ms; at most {MAX_REQUEST_TIMEOUT_MS}: a push must end, and its outcome be \
                     written, within the worker's 30 s claim on the SET, or another replica could \
                     push the same SET while it is still in flight",
                    d.request_timeout_ms
                ),
            ));
        }
        if d.verify_retry_secs > d.max_age_secs {
            errors.push(ConfigError::new(
                "delivery.verify_retry_secs",
                format!(
                    "is {} s, longer than max_age_secs ({} s): a SET would be dead before its retries end",
                    d.verify_retry_secs, d.max_age_secs
                ),
            ));
        }
        if d.retain_failed_days < d.retain_days {
            errors.push(ConfigError::new(
                "delivery.retain_failed_days",
                format!(
                    "is {} days, shorter than retain_days ({}): failed and dead SETs are kept at least as long as delivered ones",
                    d.retain_failed_days, d.retain_days
                ),
            ));
        }
        if !(1..=10_000).contains(&d.prune_batch) {
            errors.push(ConfigError::new(
                "delivery.prune_batch",
                "must be between 1 and 10000",
            ));
        }
        // Days as milliseconds must fit the store's i64 timestamps.
        for (key, days) in [
            ("delivery.retain_days", d.retain_days),
            ("delivery.retain_failed_days", d.retain_failed_days),
        ] {
            if days > 36_500 {
                errors.push(ConfigError::new(key, "must be at most 36500 days"));
            }
        }
        let s = &self.signals;
        if !(0.0..=100.0).contains(&s.score_medium)
            || !(0.0..=100.0).contains(&s.score_high)
            || s.score_medium > s.score_high
        {
            errors.push(ConfigError::new(
                "signals.score_medium",
                "score thresholds must satisfy 0 <= score_medium <= score_high <= 100",
            ));
        }
        if s.batch_max == 0 || s.batch_max > 10_000 {
            errors.push(ConfigError::new(
                "signals.batch_max",
                "must be between 1 and 10000",
            ));
        }
        if self.keys_reload_secs == 0 {
            errors.push(ConfigError::new(
                "keys_reload_secs",
                "must be at least 1 second",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The configured issuer, normalised (no trailing slash), or `None` to derive it after bind.
    pub fn issuer_url(&self) -> Result<Option<Url>, ConfigError> {
        let Some(raw) = self.issuer.as_deref() else {
            return Ok(None);
        };
        parse_issuer(raw).map(Some)
    }

    /// The bootstrap admin token, read from `admin_token_file` when that is set.
    pub fn admin_token(&self) -> Result<Option<SecretString>, ConfigError> {
        if let Some(path) = &self.admin_token_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    "admin_token_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let token = text.trim_end_matches(['\r', '\n']).to_owned();
            if token.is_empty() {
                return Err(ConfigError::new(
                    "admin_token_file",
                    format!("{} is empty", path.display()),
                ));
            }
            return Ok(Some(SecretString::from(token)));
        }
        Ok(self.admin_token.clone())
    }

    /// Where the store lives.
    pub fn database(&self) -> Result<DatabaseLocation, ConfigError> {
        let url = self.database_url.expose().trim();
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let path_part = rest.split('?').next().unwrap_or_default();
            if path_part.is_empty() {
                return Err(ConfigError::new(
                    "database_url",
                    "the SQLite URL has no file path; use e.g. sqlite://data/ssf-transmitter.db",
                ));
            }
            let path = if path_part == ":memory:" {
                None
            } else {
                Some(PathBuf::from(path_part))
            };
            return Ok(DatabaseLocation::Sqlite {
                url: url.to_owned(),
                path,
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            if let Err(e) = url.parse::<sqlx::postgres::PgConnectOptions>() {
                // sqlx's message names the bad part, never the URL (which may hold a password).
                return Err(ConfigError::new(
                    "database_url",
                    format!(
                        "the PostgreSQL URL {} is not valid: {e}; use \
                         postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=verify-full",
                        redact_database_url(url)
                    ),
                ));
            }
            return Ok(DatabaseLocation::Postgres {
                url: url.to_owned(),
            });
        }
        Err(ConfigError::new(
            "database_url",
            format!(
                "unsupported URL {:?}; use sqlite://PATH (e.g. sqlite://data/ssf-transmitter.db) \
                 or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                redact_database_url(url)
            ),
        ))
    }
}

/// Parses and checks an issuer URL: absolute http(s), https unless loopback, no query or
/// fragment, no trailing slash kept.
pub fn parse_issuer(raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        ConfigError::new(
            "issuer",
            format!("{raw:?} is not an absolute URL ({e}); use e.g. https://ssf.example.com"),
        )
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        "http" => {
            return Err(ConfigError::new(
                "issuer",
                format!("{raw:?} uses http:// on a non-loopback host; receivers require https://"),
            ));
        }
        other => {
            return Err(ConfigError::new(
                "issuer",
                format!("scheme {other:?} is not allowed; use https://"),
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new("issuer", "the URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            "issuer",
            "an issuer must not have a query or fragment",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            "issuer",
            "an issuer must not carry credentials",
        ));
    }
    Ok(url)
}

/// Renders an issuer URL the way it appears in `iss` and metadata: never a trailing slash.
pub fn issuer_string(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

/// True for `localhost`, 127.0.0.0/8 and `::1`.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn check_dir_usable(dir: &Path) -> Result<(), String> {
    // Walk up to the first existing ancestor: it must be a directory.
    let mut probe = Some(dir);
    while let Some(p) = probe {
        if p.as_os_str().is_empty() {
            break;
        }
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(format!(
                    "{} is not a directory (it is a file: {}); point SSF_KEYS_DIR at a directory",
                    dir.display(),
                    p.display()
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => probe = p.parent(),
            Err(e) => return Err(format!("cannot access {}: {e}", p.display())),
        }
    }
    Ok(())
}

fn figment_errors(err: figment::Error) -> ConfigErrors {
    ConfigErrors(
        err.into_iter()
            .map(|e| {
                let key = e.path.join(".");
                let source = e
                    .metadata
                    .as_ref()
                    .map(|m| format!(" (from {})", m.name))
                    .unwrap_or_default();
                let message = match &e.kind {
                    figment::error::Kind::UnknownField(field, _) => {
                        // figment's path usually ends with the field already.
                        let full = if e.path.last() == Some(field) {
                            key.clone()
                        } else if key.is_empty() {
                            field.clone()
                        } else {
                            format!("{key}.{field}")
                        };
                        return ConfigError::new(
                            &full,
                            format!("unknown key{source}; remove it or check its spelling against ssf-transmitter.example.toml"),
                        );
                    }
                    kind => format!("{kind}{source}"),
                };
                ConfigError::new(&key, message)
            })
            .collect(),
    )
}

/// Like figment's `Env` provider (`SSF_` prefix, `__` nesting, lower-cased keys), fed from a fixed list of variables instead of the process environment.
struct StaticEnv {
    vars: Vec<(String, String)>,
}

impl figment::Provider for StaticEnv {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("environment variable(s)")
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        use figment::value::{Dict, Map, Value};
        let mut dict = Dict::new();
        for (k, v) in &self.vars {
            let Some(rest) = k.strip_prefix("SSF_") else {
                continue;
            };
            let key = rest.to_lowercase().replace("__", ".");
            // Kept as text; `extract_lossy` turns it into a number or bool where the key wants one.
            let value = Value::from(v.clone());
            let nested = figment::util::nest(&key, value);
            if let Value::Dict(_, d) = nested {
                for (dk, dv) in d {
                    merge_value(&mut dict, dk, dv);
                }
            }
        }
        let mut map = Map::new();
        map.insert(figment::Profile::Default, dict);
        Ok(map)
    }
}

fn merge_value(into: &mut figment::value::Dict, key: String, value: figment::value::Value) {
    use figment::value::Value;
    match (into.get_mut(&key), value) {
        (Some(Value::Dict(_, existing)), Value::Dict(_, new)) => {
            for (k, v) in new {
                merge_value(existing, k, v);
            }
        }
        (_, value) => {
            into.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load_sources(None, false, &[]).expect("defaults");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url.expose(), "sqlite://data/ssf-transmitter.db");
        assert_eq!(c.keys_dir, PathBuf::from("keys"));
        assert!(c.issuer.is_none());
    }

    #[test]
    fn env_overrides_and_nesting() {
        let c = Config::load_sources(
            None,
            false,
            &env(&[
                ("SSF_LISTEN", "127.0.0.1:9999"),
                ("SSF_ISSUER", "https://ssf.example.com/"),
                ("SSF_LOG_FORMAT", "json"),
                ("SSF_MAX_BODY_BYTES", "4096"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.max_body_bytes, 4096);
        let iss = c.issuer_url().expect("ok").expect("some");
        assert_eq!(issuer_string(&iss), "https://ssf.example.com");
    }

    #[test]
    fn delivery_retention_and_verify_retry_are_checked() {
        let c = Config::load_sources(None, false, &[]).expect("defaults");
        assert_eq!(c.delivery.verify_retry_secs, 900);
        assert_eq!(c.delivery.retain_days, 30);
        assert_eq!(c.delivery.retain_failed_days, 90);
        let c = Config::load_sources(
            None,
            false,
            &env(&[
                ("SSF_DELIVERY__VERIFY_RETRY_SECS", "0"),
                ("SSF_DELIVERY__RETAIN_DAYS", "7"),
                ("SSF_DELIVERY__RETAIN_FAILED_DAYS", "7"),
            ]),
        )
        .expect("0 turns verify retries off; equal retention is fine");
        assert_eq!(c.delivery.retain_days, 7);
        for (pairs, key) in [
            (
                vec![
                    ("SSF_DELIVERY__VERIFY_RETRY_SECS", "7200"),
                    ("SSF_DELIVERY__MAX_AGE_SECS", "3600"),
                ],
                "delivery.verify_retry_secs",
            ),
            (
                vec![("SSF_DELIVERY__RETAIN_FAILED_DAYS", "10")],
                "delivery.retain_failed_days",
            ),
            (
                vec![("SSF_DELIVERY__RETAIN_DAYS", "0")],
                "delivery.retain_days",
            ),
            (
                vec![("SSF_DELIVERY__PRUNE_BATCH", "0")],
                "delivery.prune_batch",
            ),
            (
                vec![
                    ("SSF_DELIVERY__RETAIN_DAYS", "40000"),
                    ("SSF_DELIVERY__RETAIN_FAILED_DAYS", "40000"),
                ],
                "delivery.retain_days",
            ),
        ] {
            let err = Config::load_sources(None, false, &env(&pairs)).expect_err(key);
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn unknown_env_key_is_named() {
        let err =
            Config::load_sources(None, false, &env(&[("SSF_LISTNE", "x")])).expect_err("unknown");
        let text = err.to_string();
        assert!(text.contains("`listne`"), "{text}");
        assert!(text.contains("SSF_LISTNE"), "{text}");
    }

    #[test]
    fn malformed_issuer_is_named() {
        let err = Config::load_sources(None, false, &env(&[("SSF_ISSUER", "not a url")]))
            .expect_err("bad");
        assert!(err.to_string().contains("SSF_ISSUER"), "{err}");
        let err = Config::load_sources(
            None,
            false,
            &env(&[("SSF_ISSUER", "http://ssf.example.com")]),
        )
        .expect_err("http on public host");
        assert!(err.to_string().contains("https"), "{err}");
        let err = Config::load_sources(
            None,
            false,
            &env(&[("SSF_ISSUER", "https://x.example/?a=b")]),
        )
        .expect_err("query");
        assert!(err.to_string().contains("query"), "{err}");
    }

    #[test]
    fn public_listen_needs_issuer() {
        let err = Config::load_sources(None, false, &env(&[("SSF_LISTEN", "0.0.0.0:8080")]))
            .expect_err("x");
        assert!(err.to_string().contains("SSF_ISSUER"), "{err}");
        Config::load_sources(
            None,
            false,
            &env(&[
                ("SSF_LISTEN", "0.0.0.0:8080"),
                ("SSF_ISSUER", "https://ssf.example.com"),
            ]),
        )
        .expect("explicit issuer allows public listen");
    }

    #[test]
    fn oauth_and_enforcement_settings_are_checked() {
        let org = ("SSF_OKTA__ORG_URL", "https://acme.okta.com");
        let err = Config::load_sources(
            None,
            false,
            &env(&[org, ("SSF_OKTA__OAUTH__CLIENT_ID", "0oa1")]),
        )
        .expect_err("no key");
        assert!(err.to_string().contains("okta.oauth.private_key"), "{err}");
        let err = Config::load_sources(
            None,
            false,
            &env(&[
                org,
                ("SSF_OKTA__API_TOKEN", "00abc"),
                ("SSF_OKTA__OAUTH__CLIENT_ID", "0oa1"),
                ("SSF_OKTA__OAUTH__PRIVATE_KEY", "not a pem"),
            ]),
        )
        .expect_err("two modes, bad key");
        let text = err.to_string();
        assert!(text.contains("keep one auth mode"), "{text}");
        assert!(text.contains("is not a PEM private key"), "{text}");
        assert!(
            !text.contains("not a pem"),
            "the key is never echoed: {text}"
        );
        let err = Config::load_sources(
            None,
            false,
            &env(&[
                ("SSF_ENFORCEMENT__PASSWORD__LENGTH", "4"),
                ("SSF_ENFORCEMENT__IDENTITY__SAM_ATTRIBUTE", "sam account"),
                (
                    "SSF_ENFORCEMENT__IDENTITY__NETBIOS_DOMAINS__CORP",
                    "jdoe@example.com",
                ),
            ]),
        )
        .expect_err("bad enforcement");
        let text = err.to_string();
        for key in [
            "enforcement.password.length",
            "enforcement.identity.sam_attribute",
            "enforcement.identity.netbios_domains",
        ] {
            assert!(text.contains(key), "{key}: {text}");
        }
        let ok = Config::load_sources(
            None,
            false,
            &env(&[(
                "SSF_ENFORCEMENT__IDENTITY__NETBIOS_DOMAINS__CORP",
                "example.com",
            )]),
        )
        .expect("valid");
        assert_eq!(
            ok.enforcement
                .identity
                .netbios_domains
                .get("corp")
                .map(String::as_str),
            Some("example.com")
        );
    }

    #[test]
    fn bad_listen_type_is_named() {
        let err =
            Config::load_sources(None, false, &env(&[("SSF_LISTEN", "nowhere")])).expect_err("x");
        assert!(err.to_string().contains("SSF_LISTEN"), "{err}");
    }

    #[test]
    fn keys_dir_under_a_file_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").expect("write");
        let under = file.join("keys");
        let err = Config::load_sources(
            None,
            false,
            &env(&[("SSF_KEYS_DIR", under.to_str().expect("utf8"))]),
        )
        .expect_err("x");
        assert!(err.to_string().contains("SSF_KEYS_DIR"), "{err}");
    }

    #[test]
    fn admin_token_from_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("token");
        std::fs::write(&file, "0123456789abcdef0123\n").expect("write");
        let c = Config::load_sources(
            None,
            false,
            &env(&[("SSF_ADMIN_TOKEN_FILE", file.to_str().expect("utf8"))]),
        )
        .expect("ok");
        let t = c.admin_token().expect("read").expect("some");
        assert_eq!(t.expose_secret(), "0123456789abcdef0123");
    }

    #[test]
    fn toml_file_and_unknown_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:7000\"\nbogus = 1\n").expect("write");
        let err = Config::load_from(Some(&file), &[]).expect_err("unknown");
        assert!(err.to_string().contains("`bogus`"), "{err}");
        std::fs::write(&file, "listen = \"127.0.0.1:7000\"\n").expect("write");
        let c =
            Config::load_from(Some(&file), &env(&[("SSF_LISTEN", "127.0.0.1:7001")])).expect("ok");
        assert_eq!(c.listen.port(), 7001, "env wins over file");
    }

    #[test]
    fn streams_settings_are_validated_with_messages_that_say_what_to_fix() {
        let mut c = Config::default();
        c.streams.allow_private_receivers = vec!["10.0.0.0/33".into()];
        c.streams.max_per_client = 0;
        c.streams.min_verification_interval_secs = 0;
        let keys: Vec<String> = match c.validate() {
            Ok(()) => Vec::new(),
            Err(ConfigErrors(errors)) => errors.into_iter().map(|e| e.key).collect(),
        };
        for key in [
            "streams.allow_private_receivers",
            "streams.max_per_client",
            "streams.min_verification_interval_secs",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
        }
        c.streams = StreamsConfig {
            allow_private_receivers: vec!["10.20.0.0/16".into(), "fd12:3456::/48".into()],
            ..StreamsConfig::default()
        };
        assert!(c.streams.validate().is_empty());
    }

    #[test]
    fn oauth_token_lifetime_is_bounded() {
        for (ttl, ok) in [
            (59, false),
            (60, true),
            (900, true),
            (3600, true),
            (3601, false),
        ] {
            let c = Config::load_sources(
                None,
                false,
                &env(&[("SSF_OAUTH__ACCESS_TOKEN_TTL_SECS", &ttl.to_string())]),
            );
            match c {
                Ok(c) => {
                    assert!(ok, "{ttl} accepted");
                    assert_eq!(c.oauth.access_token_ttl_secs, ttl);
                }
                Err(e) => {
                    assert!(!ok, "{ttl} refused: {e}");
                    assert!(
                        e.to_string().contains("SSF_OAUTH__ACCESS_TOKEN_TTL_SECS"),
                        "{e}"
                    );
                }
            }
        }
        assert_eq!(Config::default().oauth.access_token_ttl_secs, 900);
    }

    #[test]
    fn example_file_documents_every_key_and_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ssf-transmitter.example.toml");
        let c = Config::load_from(Some(&path), &[]).expect("the example loads");
        let d = Config::default();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.database_url, d.database_url);
        assert_eq!(c.max_body_bytes, d.max_body_bytes);
        let text = std::fs::read_to_string(&path).expect("read");
        for key in [
            "listen",
            "issuer",
            "database_url",
            "keys_dir",
            "admin_token",
            "admin_token_file",
            "log_format",
            "log_filter",
            "max_body_bytes",
            "keys_reload_secs",
            "shutdown_grace_secs",
        ] {
            assert!(text.contains(&format!("{key} =")), "{key} is documented");
            assert!(
                text.contains(&env_name(key)),
                "{} is documented",
                env_name(key)
            );
        }
    }

    #[test]
    fn okta_section_from_env_and_audience_forms() {
        let c = Config::load_sources(
            None,
            false,
            &env(&[("SSF_OKTA__ORG_URL", "https://acme.okta.com/")]),
        )
        .expect("ok");
        let t = c.okta.as_ref().expect("okta").target().expect("target");
        assert_eq!(t.org_url, "https://acme.okta.com");
        assert_eq!(
            t.endpoint,
            "https://acme.okta.com/security/api/v1/security-events"
        );
        assert_eq!(t.audience, "https://acme.okta.com/");
        let c = Config::load_sources(
            None,
            false,
            &env(&[
                ("SSF_OKTA__ORG_URL", "https://acme.okta.com"),
                ("SSF_OKTA__AUDIENCE_TRAILING_SLASH", "false"),
                ("SSF_OKTA__EVENT_TIMESTAMP_UNIT", "milliseconds"),
            ]),
        )
        .expect("ok");
        let t = c.okta.as_ref().expect("okta").target().expect("target");
        assert_eq!(t.audience, "https://acme.okta.com");
        assert_eq!(t.timestamp_unit, crate::set::TimestampUnit::Milliseconds);
        for bad in [
            "http://acme.okta.com",
            "https://acme-admin.okta.com",
            "https://acme.okta.com/oauth2",
            "acme",
        ] {
            let err = Config::load_sources(None, false, &env(&[("SSF_OKTA__ORG_URL", bad)]))
                .expect_err(bad);
            assert!(
                err.to_string().contains("SSF_OKTA__ORG_URL"),
                "{bad}: {err}"
            );
        }
        Config::load_sources(
            None,
            false,
            &env(&[("SSF_OKTA__ORG_URL", "http://127.0.0.1:9000")]),
        )
        .expect("loopback http");
        let err = Config::load_sources(None, false, &env(&[("SSF_DELIVERY__CONCURRENCY", "0")]))
            .expect_err("zero");
        assert!(
            err.to_string().contains("SSF_DELIVERY__CONCURRENCY"),
            "{err}"
        );
    }

    #[test]
    fn postgres_urls_select_postgres_and_never_show_the_password() {
        for url in [
            "postgres://ssf:s3cret-pw@db.example:5432/ssf?sslmode=verify-full",
            "postgresql://ssf:s3cret-pw@db.example/ssf",
        ] {
            let c = Config::load_sources(None, false, &env(&[("SSF_DATABASE_URL", url)]))
                .expect("loads");
            assert_eq!(
                c.database().expect("location"),
                DatabaseLocation::Postgres { url: url.into() }
            );
            let shown = format!(
                "{c:?} {} {:?} {}",
                c.database_url,
                c.database().expect("location"),
                c.database_url.redacted()
            );
            assert!(!shown.contains("s3cret-pw"), "{shown}");
            assert!(shown.contains("ssf:***@db.example"), "{shown}");
        }
        let q = redact_database_url("postgres://db/ssf?user=a&password=s3cret-pw&sslmode=require");
        assert!(
            !q.contains("s3cret-pw") && q.contains("sslmode=require"),
            "{q}"
        );
        assert_eq!(
            redact_database_url("sqlite://data/x.db"),
            "sqlite://data/x.db"
        );
        let err = Config::load_sources(
            None,
            false,
            &env(&[(
                "SSF_DATABASE_URL",
                "postgres://u:s3cret-pw@h/d?sslmode=bogus",
            )]),
        )
        .expect_err("bad sslmode");
        let text = err.to_string();
        assert!(text.contains("SSF_DATABASE_URL"), "{text}");
        assert!(!text.contains("s3cret-pw"), "{text}");
        let err = Config::load_sources(
            None,
            false,
            &env(&[("SSF_DATABASE_URL", "mysql://u:s3cret-pw@h/d")]),
        )
        .expect_err("mysql");
        assert!(!err.to_string().contains("s3cret-pw"), "{err}");
    }
}
