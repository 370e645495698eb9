//! Builds the application from a [`Config`]: binds the listener, opens the store and keys, and
//! serves until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::clock::Clock;
use std::path::PathBuf;

use crate::config::{Config, DatabaseLocation, OktaConfig, issuer_string};
use crate::delivery::{self, Worker};
use crate::http::{AppState, router};
use crate::ids::{Ids, RandomIds};
use crate::keys::{KeyDir, KeyManager};
use crate::metrics::Metrics;
use crate::okta::{OktaClient, SecurityEventsProvider, well_known_url};
#[cfg(feature = "sandbox")]
use crate::sandbox::Sandbox;
use crate::signals::Intake;
use crate::store::{Store, WriterLock};
use tokio::sync::{Notify, oneshot};

/// Pause between two pruning batches: other writers get the database in between.
const PRUNE_PAUSE: Duration = Duration::from_millis(100);

/// A built, bound application, ready to run.
pub struct Application {
    store: Store,
    listener: TcpListener,
    public: Option<TcpListener>,
    tls: Option<Tls>,
    state: AppState,
    config: Config,
    worker: Option<Worker>,
    stream_workers: crate::delivery::streams::StreamWorkers,
    delivery_gate: Option<oneshot::Receiver<()>>,
    writer_lock: WriterLock,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.listener.local_addr().ok())
            .field("issuer", &self.state.issuer)
            .finish_non_exhaustive()
    }
}

/// Native TLS of the listeners: the certificate (reloaded when its files change) and which
/// listeners use it.
#[derive(Clone)]
struct Tls {
    rustls: axum_server::tls_rustls::RustlsConfig,
    settings: crate::config::TlsConfig,
}

impl Tls {
    async fn load(settings: &crate::config::TlsConfig) -> anyhow::Result<Self> {
        let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(
            &settings.cert_file,
            &settings.key_file,
        )
        .await
        .with_context(|| {
            format!(
                "tls: cannot load the certificate {} and key {} (PEM; the key PKCS#8, PKCS#1 or SEC1)",
                settings.cert_file.display(),
                settings.key_file.display()
            )
        })?;
        Ok(Self {
            rustls,
            settings: settings.clone(),
        })
    }

    fn modified(&self) -> Option<(std::time::SystemTime, std::time::SystemTime)> {
        let m = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((m(&self.settings.cert_file)?, m(&self.settings.key_file)?))
    }

    /// Re-reads the files whenever their modification time changes; a broken pair is logged and
    /// the previous certificate kept.
    async fn watch(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut seen = self.modified();
        let mut tick = tokio::time::interval(Duration::from_secs(self.settings.reload_secs.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let now = self.modified();
            if now.is_none() || now == seen {
                continue;
            }
            match self
                .rustls
                .reload_from_pem_file(&self.settings.cert_file, &self.settings.key_file)
                .await
            {
                Ok(()) => {
                    seen = now;
                    tracing::info!(cert = %self.settings.cert_file.display(), "TLS certificate reloaded");
                }
                Err(e) => tracing::error!(
                    error = %e,
                    cert = %self.settings.cert_file.display(),
                    "the TLS certificate or key changed but cannot be loaded; keeping the previous one"
                ),
            }
        }
    }
}

/// Serves `app` on `listener` (over TLS when given) until `stop` turns true, then lets
/// in-flight requests finish.
async fn serve_on(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        }
        Some(config) => {
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tokio::spawn(async move {
                let _ = stop.wait_for(|s| *s).await;
                h.graceful_shutdown(None);
            });
            axum_server::tls_rustls::from_tcp_rustls(listener.into_std()?, config)?
                .handle(handle)
                .serve(app.into_make_service())
                .await
        }
    }
}

/// Opens the store and applies migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let location = config.database().map_err(anyhow::Error::new)?;
    let store = Store::connect(&location)
        .await
        .with_context(|| format!("cannot open the store at {}", config.database_url))?;
    store
        .migrate()
        .await
        .context("cannot apply database migrations")?;
    Ok(store)
}

/// Opens the keys directory, generating the first key when it holds none.
pub async fn open_keys(config: &Config, clock: &Arc<dyn Clock>) -> anyhow::Result<KeyManager> {
    let path = config.keys_dir.clone();
    let now = clock.now();
    tokio::task::spawn_blocking(move || {
        let dir = KeyDir::open(&path)?;
        KeyManager::open(dir, now)
    })
    .await
    .context("key loading task failed")?
    .with_context(|| format!("cannot load issuer keys from {}", config.keys_dir.display()))
}

impl Application {
    /// Binds the listener, derives the issuer when not configured, opens the store (migrating it)
    /// and the keys.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        Self::build_with(config, clock, Arc::new(RandomIds)).await
    }

    /// Like [`Application::build`] with an explicit source of ids and randomness (tests).
    pub async fn build_with(
        config: Config,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn Ids>,
    ) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::new)?;
        // Before anything else touches the database: a second `serve` on it refuses to start.
        let writer_lock = WriterLock::acquire(&config.database().map_err(anyhow::Error::new)?)?;
        Self::build_locked(config, clock, ids, writer_lock).await
    }

    /// Like [`Application::build_with`], with the store's writer lock already held (`serve
    /// --sandbox` takes it before it writes anything beside the database).
    async fn build_locked(
        config: Config,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn Ids>,
        writer_lock: WriterLock,
    ) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::new)?;
        let tls = match &config.tls {
            Some(t) => Some(Tls::load(t).await?),
            None => None,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (SSF_LISTEN)", config.listen))?;
        let public = match config.public_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (SSF_PUBLIC_LISTEN)"))?,
            ),
            None => None,
        };
        // Receivers reach the public listener when there is one.
        let (bound, on_public) = match &public {
            Some(p) => (p.local_addr().context("no local address")?, true),
            None => (listener.local_addr().context("no local address")?, false),
        };
        let scheme = if tls.as_ref().is_some_and(|t| t.settings.on(on_public)) {
            "https"
        } else {
            "http"
        };
        let issuer = match config.issuer_url().map_err(anyhow::Error::new)? {
            Some(url) => issuer_string(&url),
            None => format!("{scheme}://{bound}"),
        };
        let store = open_store(&config).await?;
        if let Some(skew) = clock_skew_ms(&store, clock.as_ref())
            .await
            .context("cannot read the database's clock")?
        {
            check_clock_skew(skew)?;
        }
        let keys = open_keys(&config, &clock).await?;
        let admin_token = config.admin_token().map_err(anyhow::Error::new)?;
        let metrics = Metrics::new();
        metrics.publish_keys(&keys);
        let target = config
            .okta
            .as_ref()
            .map(OktaConfig::target)
            .transpose()
            .map_err(anyhow::Error::new)?;
        let issuer: Arc<str> = Arc::from(issuer.as_str());
        let notify = Arc::new(Notify::new());
        let ids_for_work = ids.clone();
        let streams = crate::signals::streams::config::Streams::new(
            store.clone(),
            clock.clone(),
            ids_for_work.clone(),
            keys.clone(),
            issuer.clone(),
            crate::signals::streams::config::StreamSettings {
                min_verification_interval: config.streams.min_verification_interval_secs,
                max_per_client: config.streams.max_per_client,
                allow_private: config.streams.allow_private().map_err(anyhow::Error::new)?,
                default_subjects: config.streams.default_subjects,
                poll_ack_timeout_secs: config.streams.poll_ack_timeout_secs,
                poll_max_wait_secs: config.streams.poll_max_wait_secs,
            },
            metrics.clone(),
        );
        let intake = Intake::new(
            store.clone(),
            keys.clone(),
            ids.clone(),
            clock.clone(),
            config.signals.clone(),
            target.clone(),
            issuer.clone(),
            notify.clone(),
            metrics.clone(),
        )
        .with_streams(streams.clone());
        let receivers = delivery::reach::Receivers::default();
        let worker = match target {
            Some(target) => {
                let http = delivery::http_client(&config.delivery)
                    .context("cannot build the HTTP client")?;
                Some(
                    Worker::new(
                        store.clone(),
                        http,
                        delivery::PushTarget::okta(&target),
                        config.delivery.clone(),
                        clock.clone(),
                        ids,
                        notify.clone(),
                        metrics.clone(),
                    )
                    .reporting_to(receivers.clone()),
                )
            }
            None => {
                tracing::warn!(
                    "no [okta] receiver configured: signals go to standard streams only, and intake answers 503 while there is none"
                );
                None
            }
        };
        let okta_client = match config.okta.as_ref() {
            Some(o) => okta_client(o, clock.clone())?,
            None => None,
        };
        // Bulk jobs wait out a spent rate-limit window (Okta's are per minute) instead of
        // failing the user; they share the interactive client's budget.
        let background_okta = okta_client
            .as_ref()
            .map(|c| c.with_rate_limit_wait(Duration::from_secs(150)));
        let enforcer = crate::enforcement::Enforcer::new(
            okta_client,
            store.clone(),
            clock.clone(),
            config.enforcement.clone(),
        );
        let approval = approval_settings(&config, &issuer)?;
        let containments = crate::enforcement::containment::Containments::new(
            enforcer.clone(),
            intake.clone(),
            store.clone(),
            clock.clone(),
            ids_for_work.clone(),
            approval.clone(),
        );
        let stream_workers = crate::delivery::streams::StreamWorkers::new(
            streams.clone(),
            store.clone(),
            config.delivery.clone(),
            &config.streams.allow_private().map_err(anyhow::Error::new)?,
            clock.clone(),
            ids_for_work.clone(),
            metrics.clone(),
        )
        .context("cannot build the HTTP client for standard streams")?
        .reporting_to(receivers.clone());
        let jobs = crate::enforcement::jobs::Jobs::new(
            crate::enforcement::containment::Containments::new(
                crate::enforcement::Enforcer::new(
                    background_okta,
                    store.clone(),
                    clock.clone(),
                    config.enforcement.clone(),
                ),
                intake.clone(),
                store.clone(),
                clock.clone(),
                ids_for_work.clone(),
                approval,
            ),
            store.clone(),
            clock.clone(),
            ids_for_work,
            config.enforcement.job_workers.unwrap_or(4).clamp(1, 32),
        );
        let auth = Authenticator::new(
            store.clone(),
            admin_token.as_ref(),
            crate::auth::OAuthSettings {
                access_token_ttl_secs: config.oauth.access_token_ttl_secs,
                // A client assertion is for the token endpoint, or for the issuer.
                audiences: vec![
                    crate::http::well_known::token_endpoint(&issuer),
                    issuer.to_string(),
                ],
            },
        );
        let state = AppState::new(crate::http::Services {
            delivery: worker.as_ref().map(Worker::health),
            receivers,
            enforcer,
            containments,
            jobs,
            streams,
            issuer,
            auth,
            audit: crate::enforcement::audit::Audit::new(store.clone()),
            idempotency: crate::enforcement::idempotency::Idempotency::new(store.clone()),
            keys,
            metrics,
            clock,
            intake,
            notify,
        });
        Ok(Self {
            store,
            listener,
            public,
            tls,
            state,
            config,
            worker,
            stream_workers,
            delivery_gate: None,
            writer_lock,
        })
    }

    /// Starts the delivery worker only once `gate` resolves (or its sender is dropped), while
    /// the API serves from the start. `serve --sandbox` uses it so that nothing is pushed before
    /// the transmitter is registered — the registration needs the API up, to fetch the
    /// well-known document. Meanwhile `/readyz` answers 503.
    pub fn hold_delivery_until(&mut self, gate: oneshot::Receiver<()>) {
        self.delivery_gate = Some(gate);
    }

    /// The bound address (a real port when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The public listener's address, when `public_listen` is set.
    pub fn public_addr(&self) -> Option<SocketAddr> {
        self.public.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The issuer in effect.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The store (tests look into it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The shared state (tests use it to reach the keys and services).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then drains in-flight requests (bounded by
    /// `shutdown_grace_secs`) and closes the store.
    pub async fn run_until_stopped<F>(self, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Self {
            store,
            listener,
            public,
            tls,
            state,
            config,
            worker,
            stream_workers,
            delivery_gate,
            writer_lock,
        } = self;
        let app = router(state.clone(), config.max_body_bytes);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stop_tx = Arc::new(stop_tx);
        let tls_for = |on_public: bool| {
            tls.as_ref()
                .filter(|t| t.settings.on(on_public))
                .map(|t| t.rustls.clone())
        };
        let tls_watch = tls.clone().map(|t| tokio::spawn(t.watch(stop_rx.clone())));
        let reloader = tokio::spawn(watch_keys(
            state.clone(),
            Duration::from_secs(config.keys_reload_secs),
            stop_rx.clone(),
        ));
        let grace = Duration::from_secs(config.shutdown_grace_secs);
        let delivery = worker.map(|w| {
            let mut stop = stop_rx.clone();
            match delivery_gate {
                None => {
                    w.health().mark_running();
                    tokio::spawn(w.run(stop, grace))
                }
                Some(gate) => tokio::spawn(async move {
                    tokio::select! {
                        _ = gate => {}
                        _ = stop.wait_for(|stopped| *stopped) => return,
                    }
                    w.run(stop, grace).await;
                }),
            }
        });
        // Work a stopped process left behind is taken over before anything new can start.
        state.containments.recover().await;
        let timer = tokio::spawn(
            state
                .containments
                .clone()
                .run_timer(stop_rx.clone(), Duration::from_millis(250)),
        );
        let job_workers = tokio::spawn(state.jobs.clone().run(stop_rx.clone()));
        let stream_delivery = tokio::spawn(stream_workers.run(
            stop_rx.clone(),
            Duration::from_millis(config.delivery.poll_interval_ms.max(100)),
            grace,
        ));
        let clock_watch = tokio::spawn(watch_clock(
            store.clone(),
            state.clock.clone(),
            state.metrics.clone(),
            stop_rx.clone(),
        ));
        let maintenance = tokio::spawn(maintain(
            state.clone(),
            store.clone(),
            config.delivery.clone(),
            stop_rx.clone(),
        ));
        let public_addr = public.as_ref().and_then(|p| p.local_addr().ok());
        tracing::info!(
            addr = %listener.local_addr()?,
            public_addr = %public_addr.map_or_else(|| "-".to_owned(), |a| a.to_string()),
            tls_api = tls_for(false).is_some(),
            tls_public = public_addr.is_some() && tls_for(true).is_some(),
            issuer = %state.issuer,
            active_kid = %state.keys.ring().active_kid(),
            "serving"
        );
        let mut grace_rx = stop_rx.clone();
        let stopper = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown requested; draining in-flight requests");
            let _ = stopper.send(true);
        });
        let api_server = serve_on(listener, app, tls_for(false), stop_rx.clone());
        let public_server = async {
            match public {
                Some(p) => {
                    serve_on(
                        p,
                        crate::http::public_router(state.clone()),
                        tls_for(true),
                        stop_rx.clone(),
                    )
                    .await
                }
                None => Ok(()),
            }
        };
        let servers = async {
            tokio::try_join!(
                async { api_server.await.context("API listener failed") },
                async { public_server.await.context("public listener failed") },
            )
            .map(|_| ())
        };
        let served = tokio::select! {
            r = servers => r,
            () = async move {
                let _ = grace_rx.wait_for(|stopped| *stopped).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("graceful shutdown timed out; closing remaining connections");
                Ok(())
            }
        };
        // A listener that failed ends the service too: the worker and housekeeping stop.
        let _ = stop_tx.send(true);
        if let Some(t) = tls_watch {
            t.abort();
        }
        reloader.abort();
        maintenance.abort();
        clock_watch.abort();
        let _ = timer.await;
        let _ = job_workers.await;
        if let Err(e) = stream_delivery.await {
            tracing::error!(error = %e, "stream delivery failed");
        }
        if let Some(d) = delivery {
            // The worker saw the stop signal; it finishes in-flight pushes within the grace period.
            if let Err(e) = d.await {
                tracing::error!(error = %e, "delivery worker failed");
            }
        }
        store.close().await;
        // Only now may another process write to the store.
        drop(writer_lock);
        tracing::info!("stopped");
        served
    }
}

/// Re-reads the key manifest every `every`, so CLI changes reach a running server.
async fn watch_keys(
    state: AppState,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let keys = state.keys.clone();
        match tokio::task::spawn_blocking(move || keys.reload_if_changed()).await {
            Ok(Ok(true)) => {
                state.metrics.key_reload();
                state.metrics.publish_keys(&state.keys);
                tracing::info!(active_kid = %state.keys.ring().active_kid(), "issuer keys reloaded");
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "issuer keys changed on disk but cannot be loaded; keeping the previous keys");
            }
            Err(e) => tracing::error!(error = %e, "key reload task failed"),
        }
    }
}

#[cfg(feature = "sandbox")]
/// Binds the Okta sandbox, points `[okta]` at it (keeping the other `[okta]` settings), and
/// writes its org URL and API token to `sandbox.json` beside the database file.
pub async fn attach_sandbox(config: &mut Config, clock: Arc<dyn Clock>) -> anyhow::Result<Sandbox> {
    let credentials = sandbox_credentials_path(config)?;
    // A restart keeps the API token of the previous run; the directory and log start afresh.
    let kept = Sandbox::read_api_token(&credentials)?;
    let sandbox = Sandbox::bind_with_token(config.sandbox.listen, clock, kept).await?;
    if let Some(seed) = &config.sandbox.seed_file {
        sandbox.seed_from_file(seed)?;
    }
    let mut okta = config
        .okta
        .clone()
        .unwrap_or_else(|| OktaConfig::for_org(sandbox.org_url()));
    okta.org_url = sandbox.org_url().to_owned();
    okta.audience = None;
    okta.api_token_file = None;
    if config.sandbox.oauth {
        let app = sandbox.oauth_app();
        okta.api_token = None;
        okta.oauth = Some(crate::config::OktaOAuthConfig {
            client_id: app.client_id,
            private_key: Some(app.private_key_pem),
            private_key_file: None,
            key_id: Some(app.key_id),
            scopes: app.scopes,
            dpop: true,
        });
    } else {
        okta.api_token = Some(sandbox.api_token().clone());
        okta.oauth = None;
    }
    config.okta = Some(okta);
    sandbox.write_credentials(&credentials)?;
    tracing::info!(
        org_url = %sandbox.org_url(),
        credentials = %credentials.display(),
        "Okta sandbox ready (org URL and SSWS API token written to the credentials file)"
    );
    Ok(sandbox)
}

/// `[approval]` as the containment service uses it.
fn approval_settings(
    config: &Config,
    issuer: &str,
) -> anyhow::Result<crate::enforcement::approval::ApprovalSettings> {
    let a = &config.approval;
    let webhook = a.webhook().map_err(anyhow::Error::new)?;
    let http = match webhook {
        Some(_) => Some(
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .context("cannot build the webhook's HTTP client")?,
        ),
        None => None,
    };
    Ok(crate::enforcement::approval::ApprovalSettings {
        actions: a.actions.clone(),
        protected_groups: a.protected_groups.clone(),
        on_ambiguous: a.on_ambiguous,
        webhook,
        link_ttl: Duration::from_secs(a.link_ttl),
        issuer: issuer.to_owned(),
        http,
    })
}

/// The Management API client of `[okta]`: the OAuth service app when `[okta.oauth]` is set, else
/// the API token; `None` without credentials.
pub fn okta_client(
    okta: &crate::config::OktaConfig,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Option<OktaClient>> {
    if let Some(o) = &okta.oauth {
        let pem = o.private_key().map_err(anyhow::Error::new)?;
        let key =
            crate::okta::oauth::AssertionKey::from_pem(secrecy::ExposeSecret::expose_secret(&pem))
                .map_err(|m| anyhow::anyhow!("okta.oauth.private_key {m}"))?;
        let settings = crate::okta::oauth::OAuthSettings {
            client_id: o.client_id.clone(),
            key,
            key_id: o.key_id.clone(),
            scopes: o.scopes.clone(),
            dpop: o.dpop,
        };
        return Ok(Some(OktaClient::with_oauth(
            &okta.org_url,
            settings,
            clock,
        )?));
    }
    Ok(match okta.api_token().map_err(anyhow::Error::new)? {
        Some(token) => Some(OktaClient::with_api_token(&okta.org_url, token)?),
        None => None,
    })
}

/// Where `serve --sandbox` writes the sandbox's org URL and API token: `sandbox.json` beside
/// the database file (on PostgreSQL, in the working directory).
pub fn sandbox_credentials_path(config: &Config) -> anyhow::Result<PathBuf> {
    Ok(match config.database().map_err(anyhow::Error::new)? {
        DatabaseLocation::Sqlite { path: Some(db), .. } => db
            .parent()
            .map_or_else(|| PathBuf::from("sandbox.json"), |d| d.join("sandbox.json")),
        DatabaseLocation::Sqlite { path: None, .. } | DatabaseLocation::Postgres { .. } => {
            PathBuf::from("sandbox.json")
        }
    })
}

/// The org and API token a running `serve --sandbox` wrote beside the database, if any.
fn running_sandbox(config: &Config) -> Option<(String, secrecy::SecretString)> {
    let path = sandbox_credentials_path(config).ok()?;
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let org = doc.get("org_url")?.as_str()?.to_owned();
    let token = doc.get("api_token")?.as_str()?.to_owned();
    Some((org, secrecy::SecretString::from(token)))
}

/// The Management API client of `[okta]` for the CLI — or, without `[okta]`, of the sandbox a
/// `serve --sandbox` beside this database runs — or a configuration error saying what to set.
fn management_client(config: &Config) -> anyhow::Result<OktaClient> {
    use crate::config::{ConfigError, ConfigErrors};
    let Some(okta) = config.okta.as_ref() else {
        if let Some((org, token)) = running_sandbox(config) {
            tracing::info!(org_url = %org, "no [okta] configured; using the sandbox of `serve --sandbox`");
            return Ok(OktaClient::with_api_token(&org, token)?);
        }
        return Err(ConfigErrors(vec![ConfigError::new(
            "okta.org_url",
            "no Okta org is configured: set [okta] org_url (SSF_OKTA__ORG_URL) and api_token \
             (SSF_OKTA__API_TOKEN) or [okta.oauth], or start `serve --sandbox` first (its \
             sandbox.json beside the database is then used)",
        )])
        .into());
    };
    okta_client(okta, Arc::new(crate::clock::SystemClock))?.ok_or_else(|| {
        ConfigErrors(vec![ConfigError::new(
            "okta.api_token",
            "no Okta Management API credentials are configured: set SSF_OKTA__API_TOKEN (or \
             api_token_file) or [okta.oauth]",
        )])
        .into()
    })
}

/// This transmitter's Security Events Provider in the org of `[okta]`, if registered.
pub async fn okta_provider(
    config: &Config,
    issuer: &str,
) -> anyhow::Result<Option<SecurityEventsProvider>> {
    let client = management_client(config)?;
    Ok(client.find_transmitter(issuer).await?)
}

/// Registers this transmitter (by its well-known URL) as an active Security Events Provider in
/// the org of `[okta]` (API token or OAuth service app).
pub async fn register_with_okta(
    config: &Config,
    issuer: &str,
) -> anyhow::Result<SecurityEventsProvider> {
    let client = management_client(config)?;
    let provider = client
        .register_transmitter("ssf-transmitter", issuer, &well_known_url(issuer))
        .await?;
    Ok(provider)
}

#[cfg(feature = "sandbox")]
/// `serve --sandbox`: the sandbox org and the service side by side, the service registered with
/// the sandbox through the Security Events Providers API, until `shutdown`.
pub async fn serve_with_sandbox<F>(
    mut config: Config,
    clock: Arc<dyn Clock>,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Some(org) = config
        .okta
        .as_ref()
        .filter(|o| !o.org_url.trim().is_empty())
    {
        return Err(
            crate::config::ConfigErrors(vec![crate::config::ConfigError::new(
                "okta.org_url",
                format!(
                    "`serve --sandbox` sends signals and enforcement to its own sandbox org, but \
                 [okta] org_url (SSF_OKTA__ORG_URL) is set to {}; unset it to use the sandbox, \
                 or run `serve` without --sandbox to use that org",
                    org.org_url
                ),
            )])
            .into(),
        );
    }
    // The lock first: a refused second instance must not rewrite the running one's sandbox.json.
    config.validate().map_err(anyhow::Error::new)?;
    let writer_lock = WriterLock::acquire(&config.database().map_err(anyhow::Error::new)?)?;
    let sandbox = attach_sandbox(&mut config, clock.clone()).await?;
    let mut app =
        Application::build_locked(config.clone(), clock, Arc::new(RandomIds), writer_lock).await?;
    // Nothing is pushed before the fresh sandbox knows this transmitter: SETs still queued from
    // the last run would otherwise meet `invalid_issuer`.
    let (registered, gate) = oneshot::channel();
    app.hold_delivery_until(gate);
    let issuer = app.issuer().to_owned();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let sandbox_task = tokio::spawn(sandbox.run(async move {
        let _ = stop_rx.changed().await;
    }));
    let registration = tokio::spawn(async move {
        // Delivery starts when this task ends, registered or not (dropping `registered` opens
        // the gate too); verification refusals are retried for `verify_retry_secs` anyway.
        let _registered = registered;
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=8 {
            match register_with_okta(&config, &issuer).await {
                Ok(p) => {
                    tracing::info!(provider_id = %p.id, status = %p.status, issuer = %issuer, "registered with the Okta sandbox");
                    return;
                }
                Err(e) if attempt < 8 => {
                    tracing::debug!(error = %format!("{e:#}"), attempt, "sandbox registration failed; retrying");
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cannot register with the Okta sandbox")
                }
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    });
    let result = app.run_until_stopped(shutdown).await;
    registration.abort();
    let _ = stop_tx.send(true);
    if let Err(e) = sandbox_task.await {
        tracing::error!(error = %e, "sandbox task failed");
    }
    result
}

/// How far replicas' clocks may be from the shared database's. Leases (outbox claims, timers,
/// job items) are written with one process's clock and judged expired by another's; a claim
/// lasts 5 s past the push timeout, so two replicas each within this bound of the database
/// (at most 4 s apart) never take over a lease still in use.
pub const MAX_CLOCK_SKEW_MS: i64 = 2_000;

/// This process's clock minus the database's, ms, taken around one query; `None` on SQLite, or
/// with a clock that does not follow the machine's time (tests' manual clocks).
async fn clock_skew_ms(
    store: &Store,
    clock: &dyn Clock,
) -> Result<Option<i64>, crate::store::StoreError> {
    if !clock.follows_machine_time() {
        return Ok(None);
    }
    let before = clock.now().timestamp_millis();
    let Some(db) = store.shared_clock_ms().await? else {
        return Ok(None);
    };
    let after = clock.now().timestamp_millis();
    Ok(Some(before + (after - before) / 2 - db))
}

/// Refuses to start a replica whose clock is too far from the database's.
fn check_clock_skew(skew_ms: i64) -> anyhow::Result<()> {
    if skew_ms.abs() > MAX_CLOCK_SKEW_MS {
        let side = if skew_ms > 0 { "ahead of" } else { "behind" };
        anyhow::bail!(
            "this machine's clock is {} ms {side} the database server's; replicas judge each \
             other's leases by time, so every replica must be within {MAX_CLOCK_SKEW_MS} ms of \
             the database: synchronise the clocks (NTP, chrony) and start again",
            skew_ms.abs()
        );
    }
    if skew_ms.abs() > MAX_CLOCK_SKEW_MS / 4 {
        tracing::warn!(
            skew_ms,
            "this machine's clock is off from the database server's"
        );
    }
    Ok(())
}

/// Every minute on a shared database: publishes the clock's skew (`ssf_clock_skew_seconds`) and
/// logs an error while it is beyond [`MAX_CLOCK_SKEW_MS`] (a clock that drifted after start).
async fn watch_clock(
    store: Store,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match clock_skew_ms(&store, clock.as_ref()).await {
            Ok(None) => return,
            Ok(Some(skew_ms)) => {
                #[allow(clippy::cast_precision_loss)]
                metrics.clock_skew(skew_ms as f64 / 1000.0);
                if skew_ms.abs() > MAX_CLOCK_SKEW_MS {
                    tracing::error!(
                        skew_ms,
                        max_ms = MAX_CLOCK_SKEW_MS,
                        "this machine's clock drifted from the database server's: leases may be taken over while in use; synchronise the clocks"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the database's clock"),
        }
    }
}

/// Housekeeping, every `prune_interval_secs` (and once at start): drops idempotency records
/// older than a day, and finished SETs past their retention (in batches, see
/// [`delivery::prune`]).
async fn maintain(
    state: AppState,
    store: Store,
    config: crate::config::DeliveryConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(config.prune_interval_secs.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now_ms = state.clock.now().timestamp_millis();
        match delivery::prune(&store, &config, now_ms, PRUNE_PAUSE, &stop).await {
            Ok(p) => {
                state.metrics.outbox_pruned(&[
                    ("delivered", p.delivered),
                    ("failed", p.failed),
                    ("dead", p.dead),
                ]);
                if p != crate::store::Pruned::default() {
                    tracing::info!(
                        delivered = p.delivered,
                        failed = p.failed,
                        dead = p.dead,
                        "pruned finished SETs past their retention"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot prune finished SETs"),
        }
        let cutoff = state.clock.now().timestamp_millis() - 24 * 3600 * 1000;
        match store.prune_idempotency(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "pruned idempotency records older than 24 h"),
            Err(e) => tracing::warn!(error = %e, "cannot prune idempotency records"),
        }
    }
}

/// Resolves when SIGTERM or SIGINT arrives. The handlers are installed when this is called,
/// not when the future is first polled, so a signal that arrives right after the service has
/// logged `serving` still stops it gracefully instead of killing it.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (terminate, interrupt) {
                (Ok(mut t), Ok(mut i)) => {
                    tokio::select! {
                        _ = t.recv() => {},
                        _ = i.recv() => {},
                    }
                }
                (t, i) => {
                    for e in [t.err(), i.err()].into_iter().flatten() {
                        tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT");
                    }
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}
