//! An Okta-compatible org for local use and tests: the Security Events Providers API, the Shared
//! Signals receiver (`POST /security/api/v1/security-events`) and an Okta-style System Log.
//!
//! It verifies SETs independently of the transmitter's own code: it fetches the provider's JWKS
//! over HTTP and verifies with josekit (OpenSSL), while the transmitter signs with jsonwebtoken
//! (aws-lc-rs). State lives in memory.
//!
//! Management API calls authenticate with the SSWS API token or, like a real org, with OAuth 2.0
//! access tokens of a service app (`POST /oauth2/v1/token`, `private_key_jwt`, DPoP); see
//! [`oauth`](self::oauth) — a default DPoP-bound service app is created at [`Sandbox::bind`].
//!
//! Sandbox-only controls live under `/__sandbox/` (fault injection, received SETs, OAuth service
//! apps, the Management API request log) and take only the SSWS token.
//!
//! Every Management API request (`/api/v1/…`) is recorded — method, path, query and JSON body,
//! passwords redacted — see [`SandboxState::requests`] and `GET /__sandbox/requests`.

mod directory;
mod faults;
mod groups;
mod idps;
mod logs;
mod oauth;
mod okta_error;
mod providers;
mod rate_limit;
mod receiver;
mod requests;
mod roles;
mod seed;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::net::TcpListener;

pub use faults::Faults;
pub use oauth::{AuthRejection, DEFAULT_SCOPES, Jwks, SandboxOAuthApp, ServiceApp};
pub use okta_error::OktaError;
pub use providers::Provider;
pub use rate_limit::RateLimitStats;
pub use receiver::ReceivedSet;
pub use requests::{MAX_RECORDED, RecordedRequest};

use crate::clock::Clock;

/// Shared sandbox state.
pub struct SandboxState {
    org_url: String,
    token_digest: [u8; 32],
    providers: RwLock<Vec<Provider>>,
    users: RwLock<Vec<directory::User>>,
    groups: RwLock<Vec<groups::Group>>,
    roles: RwLock<Vec<roles::Assignment>>,
    idps: RwLock<Vec<idps::Idp>>,
    logs: Mutex<Vec<logs::LogEvent>>,
    seen_jtis: Mutex<std::collections::HashSet<String>>,
    received: Mutex<Vec<ReceivedSet>>,
    jwks_cache: Mutex<std::collections::HashMap<String, receiver::CachedJwks>>,
    /// Until then, cached JWKS are not refreshed (fault `jwks_stale_secs`).
    jwks_frozen_until: Mutex<Option<std::time::Instant>>,
    faults: Mutex<Faults>,
    /// The Management API rate limit's window and counters (fault `api_rate_limit_per_sec`).
    api_limiter: Mutex<rate_limit::Limiter>,
    requests: Mutex<VecDeque<RecordedRequest>>,
    oauth: oauth::OAuthState,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SandboxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxState")
            .field("org_url", &self.org_url)
            .finish_non_exhaustive()
    }
}

/// A bound, not yet serving, sandbox.
pub struct Sandbox {
    listener: TcpListener,
    state: Arc<SandboxState>,
    api_token: SecretString,
    oauth_app: SandboxOAuthApp,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("org_url", &self.state.org_url)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Binds `listen`, generates the SSWS API token and registers the default OAuth service app
    /// (EC P-256 key, every sandbox scope, DPoP-bound).
    pub async fn bind(listen: SocketAddr, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        Self::bind_with_token(listen, clock, None).await
    }

    /// Like [`Sandbox::bind`], keeping `api_token` when given (a restart that found the token of
    /// the previous run in `sandbox.json`, so scripts and SDKs pointed at it keep working).
    pub async fn bind_with_token(
        listen: SocketAddr,
        clock: Arc<dyn Clock>,
        api_token: Option<SecretString>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen).await.with_context(|| {
            format!("cannot listen on {listen} for the Okta sandbox (SSF_SANDBOX__LISTEN)")
        })?;
        let addr = listener.local_addr()?;
        let api_token = api_token.unwrap_or_else(|| {
            let fresh = crate::auth::generate_token();
            // Okta API tokens look different; any opaque string works for SSWS.
            SecretString::from(format!(
                "00{}",
                fresh
                    .expose_secret()
                    .trim_start_matches(crate::auth::TOKEN_PREFIX)
            ))
        });
        let http = reqwest::Client::builder()
            .user_agent("okta-sandbox")
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the sandbox HTTP client")?;
        let state = Arc::new(SandboxState {
            org_url: format!("http://{addr}"),
            token_digest: crate::auth::token_digest(api_token.expose_secret()),
            providers: RwLock::new(Vec::new()),
            groups: RwLock::new(groups::seed_groups()),
            roles: RwLock::new(roles::seed_roles(
                &clock
                    .now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            )),
            users: RwLock::new(directory::seed_users(
                &clock
                    .now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            )),
            idps: RwLock::new(idps::seed_idps()),
            logs: Mutex::new(Vec::new()),
            seen_jtis: Mutex::new(Default::default()),
            received: Mutex::new(Vec::new()),
            jwks_cache: Mutex::new(Default::default()),
            jwks_frozen_until: Mutex::new(None),
            faults: Mutex::new(Faults::default()),
            api_limiter: Mutex::new(rate_limit::Limiter::default()),
            requests: Mutex::new(VecDeque::new()),
            oauth: oauth::OAuthState::default(),
            http,
            clock,
        });
        let (app, oauth_app) = oauth::default_app()?;
        state.oauth.add_app(app);
        Ok(Self {
            listener,
            state,
            api_token,
            oauth_app,
        })
    }

    /// Replaces the demo directory (users, groups, roles, identity providers) with the one in a
    /// JSON seed file; an error names the entry and what is wrong.
    pub fn seed_from_file(&self, path: &Path) -> anyhow::Result<()> {
        let now = self
            .state
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let directory = seed::load(path, &now)?;
        self.state.replace_directory(directory);
        Ok(())
    }

    /// The org URL, e.g. `http://127.0.0.1:8081`.
    pub fn org_url(&self) -> &str {
        &self.state.org_url
    }

    /// The SSWS API token.
    pub fn api_token(&self) -> &SecretString {
        &self.api_token
    }

    /// The default OAuth 2.0 service app, with its private key (sign client assertions with ES256
    /// and `kid` = `key_id`; its tokens are DPoP-bound).
    pub fn oauth_app(&self) -> SandboxOAuthApp {
        self.oauth_app.clone()
    }

    /// Shared state (tests inspect received SETs and the log through it).
    pub fn state(&self) -> Arc<SandboxState> {
        self.state.clone()
    }

    /// The API token in a credentials file written by [`Sandbox::write_credentials`], if the file
    /// exists and holds one. A file that cannot be read or parsed is an error (it names the file),
    /// not a silent new token.
    pub fn read_api_token(path: &Path) -> anyhow::Result<Option<SecretString>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        };
        let doc: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not the sandbox's credentials JSON; delete it to start with a new API token",
                path.display()
            )
        })?;
        Ok(doc
            .get("api_token")
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| SecretString::from(t.to_owned())))
    }

    /// Writes `{"org_url", "api_token", "oauth": {"client_id", "key_id", "private_key", "scopes"}}`
    /// to `path` with mode 0600.
    pub fn write_credentials(&self, path: &Path) -> anyhow::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let body = serde_json::json!({
            "org_url": self.state.org_url,
            "api_token": self.api_token.expose_secret(),
            "oauth": {
                "client_id": self.oauth_app.client_id,
                "key_id": self.oauth_app.key_id,
                "private_key": self.oauth_app.private_key_pem.expose_secret(),
                "scopes": self.oauth_app.scopes,
            },
        });
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(serde_json::to_string_pretty(&body)?.as_bytes())?;
        f.write_all(b"\n")?;
        Ok(())
    }

    /// Serves until `shutdown` completes.
    pub async fn run<F>(self, shutdown: F) -> anyhow::Result<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let app = router(self.state.clone());
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("sandbox server error")
    }
}

impl SandboxState {
    /// The org URL.
    pub fn org_url(&self) -> &str {
        &self.org_url
    }

    /// SETs accepted so far (newest last).
    pub fn received(&self) -> Vec<ReceivedSet> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Replaces the fault settings.
    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut until) = self.jwks_frozen_until.lock() {
            *until = (faults.jwks_stale_secs > 0).then(|| {
                std::time::Instant::now() + std::time::Duration::from_secs(faults.jwks_stale_secs)
            });
        }
        if let Ok(mut f) = self.faults.lock() {
            *f = faults;
        }
        self.reset_rate_limiter();
    }

    /// The current fault settings (what is left of them).
    pub fn faults(&self) -> Faults {
        self.faults.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// The registered providers.
    pub fn providers(&self) -> Vec<Provider> {
        self.providers.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// The registered OAuth 2.0 service apps (public keys only).
    pub fn oauth_clients(&self) -> Vec<ServiceApp> {
        self.oauth.apps()
    }

    /// Registers a service app; false when its `client_id` is already taken. The keys are
    /// taken as given (the HTTP control endpoint validates them).
    pub fn add_oauth_client(&self, app: ServiceApp) -> bool {
        self.oauth.add_app(app)
    }

    /// Expires every OAuth access token issued so far.
    pub fn expire_oauth_tokens(&self) {
        self.oauth.expire_tokens(self.clock.now());
    }

    /// The org authorization server's token endpoint, `{org_url}/oauth2/v1/token`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/v1/token", self.org_url)
    }

    /// The Management API requests (`/api/v1/…`) received so far, oldest first: the newest
    /// [`MAX_RECORDED`], with passwords redacted.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        if let Ok(mut r) = self.requests.lock() {
            r.clear();
        }
    }

    fn record(&self, request: RecordedRequest) {
        if let Ok(mut r) = self.requests.lock() {
            while r.len() >= MAX_RECORDED {
                r.pop_front();
            }
            r.push_back(request);
        }
    }
}

/// An authenticated Management API call: `Authorization: SSWS <API token>` (with or without the
/// space), or an OAuth 2.0 access token — `Authorization: Bearer <token>`, or `Authorization: DPoP
/// <token>` with a `DPoP` proof for DPoP-bound tokens — that holds the Okta scope the route needs.
/// `/__sandbox/` control routes take only the SSWS token.
pub struct Ssws;

impl FromRequestParts<Arc<SandboxState>> for Ssws {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<SandboxState>,
    ) -> Result<Self, Self::Rejection> {
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if let Some(t) = authorization.strip_prefix("SSWS").map(str::trim) {
            return if !t.is_empty() && crate::auth::token_digest(t) == state.token_digest {
                Ok(Ssws)
            } else {
                Err(OktaError::invalid_token().into())
            };
        }
        if !parts.uri.path().starts_with("/__sandbox/") {
            match oauth::authorize(state, parts, authorization) {
                Some(Ok(())) => return Ok(Ssws),
                Some(Err(rejection)) => return Err(rejection),
                None => {}
            }
        }
        Err(OktaError::invalid_token().into())
    }
}

fn router(state: Arc<SandboxState>) -> Router {
    Router::new()
        .route(
            "/api/v1/security-events-providers",
            get(providers::list).post(providers::create),
        )
        .route(
            "/api/v1/security-events-providers/{id}",
            get(providers::get_one)
                .put(providers::replace)
                .delete(providers::delete),
        )
        .route(
            "/api/v1/security-events-providers/{id}/lifecycle/activate",
            post(providers::activate),
        )
        .route(
            "/api/v1/security-events-providers/{id}/lifecycle/deactivate",
            post(providers::deactivate),
        )
        .route("/api/v1/users", get(directory::list_users))
        .route(
            "/api/v1/users/{id}",
            get(directory::get_user).post(directory::update_user),
        )
        .route(
            "/api/v1/users/{id}/lifecycle/activate",
            post(directory::activate),
        )
        .route(
            "/api/v1/users/{id}/lifecycle/reactivate",
            post(directory::reactivate),
        )
        .route(
            "/api/v1/users/{id}/lifecycle/deactivate",
            post(directory::deactivate),
        )
        .route(
            "/api/v1/users/{id}/lifecycle/suspend",
            post(directory::suspend),
        )
        .route(
            "/api/v1/users/{id}/lifecycle/unsuspend",
            post(directory::unsuspend),
        )
        .route(
            "/api/v1/users/{id}/lifecycle/unlock",
            post(directory::unlock),
        )
        .route(
            "/api/v1/users/{id}/sessions",
            axum::routing::delete(directory::clear_sessions),
        )
        .route(
            "/api/v1/users/{id}/lifecycle/expire_password",
            post(directory::expire_password),
        )
        .route(
            "/api/v1/users/{id}/lifecycle/expire_password_with_temp_password",
            post(directory::expire_password_temp),
        )
        .route(
            "/api/v1/users/{id}/lifecycle/reset_password",
            post(directory::reset_password),
        )
        .route(
            "/api/v1/users/{id}/lifecycle/reset_factors",
            post(directory::reset_factors),
        )
        .route("/api/v1/users/{id}/groups", get(groups::user_groups))
        .route(
            "/api/v1/users/{id}/roles",
            get(roles::list).post(roles::assign),
        )
        .route(
            "/api/v1/users/{id}/roles/{ra}",
            axum::routing::delete(roles::unassign),
        )
        .route("/api/v1/groups", get(groups::list_groups))
        .route("/api/v1/groups/{id}", get(groups::get_group))
        .route("/api/v1/groups/{id}/users", get(groups::list_group_users))
        .route(
            "/api/v1/groups/{gid}/users/{uid}",
            axum::routing::put(groups::add_member).delete(groups::remove_member),
        )
        .route("/api/v1/authn", post(directory::authn))
        .route("/api/v1/idps", get(idps::list))
        .route("/api/v1/idps/{id}", get(idps::get_one))
        .route("/security/api/v1/security-events", post(receiver::receive))
        .route("/api/v1/logs", get(logs::list))
        .route(
            "/__sandbox/faults",
            get(faults::get).put(faults::put).delete(faults::clear),
        )
        .route("/__sandbox/rate-limit", get(rate_limit::get))
        .route("/__sandbox/received", get(receiver::list_received))
        .route(
            "/__sandbox/requests",
            get(requests::list).delete(requests::clear),
        )
        .route("/oauth2/v1/token", post(oauth::token))
        .route(
            "/__sandbox/oauth/clients",
            get(oauth::list_clients).post(oauth::register_client),
        )
        .route("/__sandbox/oauth/expire-tokens", post(oauth::expire_tokens))
        .fallback(|| async { OktaError::not_found("resource") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            faults::management,
        ))
        // Outside the faults: a call refused by the limit never meets a fault (nor the route).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit::limit,
        ))
        // Outside the faults and the limit: a request answered by either was still sent.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            requests::record,
        ))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            |State(st): St, mut r: axum::response::Response| async move {
                // Okta answers every call with rate-limit headers (the limit's, when one is
                // set) and a `Date`, which Okta's SDKs use with `X-Rate-Limit-Reset`.
                let h = r.headers_mut();
                if !h.contains_key(header::DATE) {
                    let date = st
                        .clock
                        .now()
                        .format("%a, %d %b %Y %H:%M:%S GMT")
                        .to_string();
                    if let Ok(v) = HeaderValue::from_str(&date) {
                        h.insert(header::DATE, v);
                    }
                }
                h.entry("x-rate-limit-limit")
                    .or_insert(HeaderValue::from_static("600"));
                h.entry("x-rate-limit-remaining")
                    .or_insert(HeaderValue::from_static("599"));
                if !h.contains_key("x-rate-limit-reset") {
                    let reset = (st.clock.now() + chrono::Duration::seconds(60)).timestamp();
                    if let Ok(v) = HeaderValue::from_str(&reset.to_string()) {
                        h.insert("x-rate-limit-reset", v);
                    }
                }
                r
            },
        ))
        .with_state(state)
}

/// Shared route state type.
pub(crate) type St = State<Arc<SandboxState>>;
