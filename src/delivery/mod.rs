//! The delivery worker: pushes queued SETs to the receiver (RFC 8935), one in flight per subject,
//! many subjects at once, and records each outcome.
//!
//! - 2xx → `delivered`.
//! - 400 `invalid_key`, `authentication_failed`, `invalid_issuer` → retried with back-off for
//!   `verify_retry_secs` from the first such answer, then `failed`: Okta answers these while it
//!   still holds an old JWKS after a key rotation, or before the provider is active, and a newer
//!   SET for the subject would make the lost one impossible to resend.
//! - Other 400s (and 413/415/422) → `failed` with the receiver's `err`/`description`; not retried.
//! - 429 → retried at `X-Rate-Limit-Reset` / `Retry-After`; the whole stream pauses until then,
//!   on every replica sharing the store (and across a restart).
//! - 5xx, other 4xx, timeouts, connection errors → retried with exponential back-off and jitter.
//! - Anything not delivered within `max_age_secs` of being queued → `dead`.
//!
//! A row stays `queued`/`retrying` until its outcome is written, so a crash or kill at any moment
//! only means the SET is sent again, with the same `jti`, after restart.
//!
//! Several replicas may share one PostgreSQL database: the worker claims the SETs it pushes
//! ([`Store::claim_due`]) under a per-process owner id for [`claim_lease`], pushes only what it
//! claimed, and its outcome is written only while it still holds the claim. A subject's next SET
//! is claimable only once the one before it is finished, so per-subject order holds across
//! replicas; a killed replica's claims are taken over when their lease ends. When an outcome cannot be
//! written, the worker backs off (see [`store_backoff`]) instead of re-pushing in a tight loop, and
//! [`DeliveryHealth`] makes `/readyz` say so.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use chrono::DateTime;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::config::{DeliveryConfig, OktaTarget};
use crate::ids::Ids;
use crate::metrics::Metrics;
use crate::signals::OKTA_STREAM;
use crate::store::{Attempt, DeliveryStatus, OutboxRow, Pruned, Store, StoreError};
use secrecy::{ExposeSecret as _, SecretString};

pub mod reach;
pub mod streams;

use reach::{Change, Reach, Receivers, Seen};

/// The receiver's `err` values that mean "I cannot verify this (yet)": a JWKS it has not
/// refreshed since a key rotation, or a provider that is not active yet. Retried for a while.
pub const VERIFY_ERRS: [&str; 3] = ["invalid_key", "authentication_failed", "invalid_issuer"];

/// Whether the delivery worker runs and can record outcomes (for `/readyz`).
#[derive(Debug, Default)]
pub struct DeliveryHealth {
    running: AtomicBool,
    outcome_writes_failing: AtomicBool,
}

impl DeliveryHealth {
    /// The worker loop runs.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// The last outcome the worker tried to record could not be written.
    pub fn outcome_writes_failing(&self) -> bool {
        self.outcome_writes_failing.load(Ordering::Relaxed)
    }

    /// Marks the worker as running (set when its task is spawned, so readiness does not
    /// flicker before the task is first polled).
    pub fn mark_running(&self) {
        self.running.store(true, Ordering::Relaxed);
    }
}

/// Clears `running` when the worker loop ends, however it ends (a panic included).
struct RunningGuard(Arc<DeliveryHealth>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Relaxed);
    }
}

/// Delay before pushing again after `failures` outcome writes in a row failed: 250 ms doubling to
/// 30 s. The unrecorded SET is still pending, so it is sent again — just not in a tight loop.
pub fn store_backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    Duration::from_millis(250u64.saturating_mul(1u64 << exp).min(30_000))
}

/// Deletes finished SETs older than their retention: delivered after `retain_days`, failed and
/// dead after `retain_failed_days`. Works in batches of `prune_batch` rows with `pause` between
/// them, so intake and outcome writes never wait behind one long delete. Stops early when `stop`
/// turns true.
pub async fn prune(
    store: &Store,
    config: &DeliveryConfig,
    now_ms: i64,
    pause: Duration,
    stop: &watch::Receiver<bool>,
) -> Result<Pruned, StoreError> {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let days = |d: u64| i64::try_from(d).unwrap_or(i64::MAX).saturating_mul(DAY_MS);
    let mut pruned = Pruned::default();
    for (status, retain) in [
        (DeliveryStatus::Delivered, config.retain_days),
        (DeliveryStatus::Failed, config.retain_failed_days),
        (DeliveryStatus::Dead, config.retain_failed_days),
    ] {
        let cutoff = now_ms.saturating_sub(days(retain));
        loop {
            if *stop.borrow() {
                return Ok(pruned);
            }
            let n = store
                .prune_batch(status, cutoff, config.prune_batch)
                .await?;
            match status {
                DeliveryStatus::Delivered => pruned.delivered += n,
                DeliveryStatus::Failed => pruned.failed += n,
                _ => pruned.dead += n,
            }
            if n < u64::from(config.prune_batch) {
                break;
            }
            tokio::time::sleep(pause).await;
        }
    }
    Ok(pruned)
}

/// How long a worker's claim on a SET lasts: the whole push (`request_timeout_ms`, which the
/// configuration keeps at most [`crate::config::MAX_REQUEST_TIMEOUT_MS`]) plus a margin to write
/// its outcome, and never more than 30 s, so a killed replica's SETs are soon taken over.
pub fn claim_lease(config: &DeliveryConfig) -> Duration {
    Duration::from_millis(
        config
            .request_timeout_ms
            .saturating_add(CLAIM_MARGIN_MS)
            .min(MAX_CLAIM_LEASE_MS),
    )
}

/// Time left, after a push's own timeout, to write its outcome before the claim ends.
pub const CLAIM_MARGIN_MS: u64 = 5_000;

/// The longest claim: a dead replica's SETs wait at most this long.
pub const MAX_CLAIM_LEASE_MS: u64 = 30_000;

/// The media type of a pushed SET.
pub const SECEVENT_JWT: &str = "application/secevent+jwt";

/// Builds the HTTP client used for pushes: pooled keep-alive connections, TLS verification always
/// on, no redirects (a SET is never re-posted somewhere else).
pub fn http_client(config: &DeliveryConfig) -> reqwest::Result<reqwest::Client> {
    http_client_builder(config).build()
}

/// The builder behind [`http_client`], for a client with more settings (a standard stream's
/// guarded resolver).
pub fn http_client_builder(config: &DeliveryConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("ssf-transmitter/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(config.concurrency.max(1))
        .tcp_keepalive(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
}

/// Delay before retry number `attempts` (1 = after the first failure): exponential from
/// `backoff_initial_ms`, capped at `backoff_max_secs`, with "equal jitter" (half fixed, half random)
/// so retries from many subjects spread out. `unit` is a random number in `[0, 1)`.
pub fn backoff(config: &DeliveryConfig, attempts: i64, unit: f64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let max_ms = config.backoff_max_secs.saturating_mul(1000);
    let base = config
        .backoff_initial_ms
        .saturating_mul(1u64 << exp)
        .min(max_ms);
    let half = base / 2;
    let jitter = (half as f64 * unit.clamp(0.0, 1.0)) as u64;
    Duration::from_millis(half + jitter)
}

/// When a 429 says to come back, as UNIX ms: `X-Rate-Limit-Reset` (UNIX seconds, Okta) or
/// `Retry-After` (seconds or an HTTP date).
pub fn rate_limit_reset(headers: &HeaderMap, now_ms: i64) -> Option<i64> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(reset) = text("x-rate-limit-reset").and_then(|v| v.parse::<i64>().ok()) {
        return Some(reset.saturating_mul(1000).max(now_ms));
    }
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())?
        .trim();
    if let Ok(secs) = retry_after.parse::<i64>() {
        return Some(now_ms.saturating_add(secs.max(0).saturating_mul(1000)));
    }
    DateTime::parse_from_rfc2822(retry_after)
        .ok()
        .map(|d| d.timestamp_millis().max(now_ms))
}

/// Where a worker pushes: one stream's receiver.
#[derive(Clone)]
pub struct PushTarget {
    /// The stream whose SETs are pushed (`okta`, or a standard stream's id).
    pub stream_id: String,
    /// The receiver's push endpoint.
    pub endpoint: String,
    /// Sent verbatim as the `Authorization` header of every push, when the receiver gave one.
    pub authorization: Option<SecretString>,
}

/// The header value is a credential: never shown.
impl std::fmt::Debug for PushTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushTarget")
            .field("stream_id", &self.stream_id)
            .field("endpoint", &self.endpoint)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl PushTarget {
    /// The configured Okta org's receiver (the `okta` stream; no authorization header: Okta
    /// authenticates the SET by its signature).
    pub fn okta(target: &OktaTarget) -> Self {
        Self {
            stream_id: OKTA_STREAM.to_owned(),
            endpoint: target.endpoint.clone(),
            authorization: None,
        }
    }
}

/// Everything the worker needs.
#[derive(Clone)]
pub struct Worker {
    store: Store,
    http: reqwest::Client,
    target: Arc<PushTarget>,
    config: Arc<DeliveryConfig>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn Ids>,
    notify: Arc<Notify>,
    metrics: Metrics,
    paused_until: Arc<AtomicI64>,
    health: Arc<DeliveryHealth>,
    /// This process's id on its claims (random, new at each start).
    owner: Arc<str>,
    /// Whether the receiver is reachable (see [`reach`]).
    reach: Arc<std::sync::Mutex<Reach>>,
    /// Where the receiver's state is shown.
    receivers: Receivers,
}

/// What one push task reports to the loop.
#[derive(Debug, Clone)]
struct Pushed {
    /// Its outcome was written.
    recorded: bool,
    /// What the push said about the receiver (`None`: not sent, dead by age).
    seen: Option<Seen>,
    /// The SET's subject key.
    subject: String,
    /// It was the probe of a receiver that is down.
    probe: bool,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("endpoint", &self.target.endpoint)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Builds a worker for the receiver.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        http: reqwest::Client,
        target: PushTarget,
        config: DeliveryConfig,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn Ids>,
        notify: Arc<Notify>,
        metrics: Metrics,
    ) -> Self {
        Self {
            store,
            http,
            target: Arc::new(target),
            clock,
            ids,
            notify,
            metrics,
            paused_until: Arc::new(AtomicI64::new(0)),
            health: Arc::new(DeliveryHealth::default()),
            owner: Arc::from(format!("worker-{}", uuid::Uuid::new_v4().simple())),
            reach: Arc::new(std::sync::Mutex::new(Reach::new(
                config.backoff_initial_ms,
                config.probe_max_secs.saturating_mul(1000),
            ))),
            receivers: Receivers::default(),
            config: Arc::new(config),
        }
    }

    /// Shows the receiver's state in `receivers` (the signals API, metrics).
    #[must_use]
    pub fn reporting_to(mut self, receivers: Receivers) -> Self {
        self.receivers = receivers;
        self
    }

    fn reach(&self) -> std::sync::MutexGuard<'_, Reach> {
        self.reach
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes the receiver's state (API and metrics).
    fn show_reach(&self) {
        let (status, down_since) = {
            let r = self.reach();
            (r.status(&self.target.stream_id), r.down_since_ms())
        };
        self.metrics
            .receiver_state(&self.target.stream_id, down_since);
        self.receivers.set(status);
    }

    /// Takes a finished push's word on the receiver: on going down, logs it; on coming back,
    /// makes the whole backlog due at once.
    async fn observe(&self, pushed: &Pushed) {
        let Some(seen) = pushed.seen else {
            return;
        };
        let now_ms = self.clock.now().timestamp_millis();
        let change = self
            .reach()
            .observe(seen, &pushed.subject, pushed.probe, now_ms);
        match change {
            Some(Change::Down) => {
                tracing::warn!(
                    stream = %self.target.stream_id,
                    probe_max_secs = self.config.probe_max_secs,
                    "receiver is down: pushes to several subjects failed in a row; probing it with one SET"
                );
            }
            Some(Change::Up) => {
                let due = self
                    .store
                    .make_due(&self.target.stream_id, now_ms)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "cannot reschedule the backlog; it drains on its own back-off");
                        0
                    });
                tracing::info!(
                    stream = %self.target.stream_id,
                    rescheduled = due,
                    "receiver is back: every waiting SET is due now"
                );
            }
            None => {}
        }
        self.show_reach();
    }

    /// The worker's health, shared with `/readyz`.
    pub fn health(&self) -> Arc<DeliveryHealth> {
        self.health.clone()
    }

    /// Runs until `stop` turns true; then lets in-flight pushes finish for up to `grace`, and
    /// abandons the rest (they stay queued and are sent again after restart).
    pub async fn run(self, mut stop: watch::Receiver<bool>, grace: Duration) {
        let concurrency = self.config.concurrency.max(1);
        let lease_ms = i64::try_from(claim_lease(&self.config).as_millis()).unwrap_or(i64::MAX);
        // Claims a dead process left (SQLite: this process is the only writer, so all of them;
        // PostgreSQL: none, live replicas may hold them — a dead one's end with their lease).
        match self.store.release_orphan_claims().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "released claims left by a previous run"),
            Err(e) => tracing::warn!(error = %e, "cannot release claims left by a previous run"),
        }
        // Owned by this loop alone: an extra guard beside the store's claims. A finished push
        // leaves the set only when the loop collects it, after its outcome is in the store.
        let mut in_flight: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut tasks: JoinSet<Pushed> = JoinSet::new();
        let mut writes = WriteBackoff::default();
        let poll = Duration::from_millis(self.config.poll_interval_ms);
        let mut last_gauges = Instant::now() - Duration::from_secs(60);
        let mut gauges: Option<tokio::task::JoinHandle<()>> = None;
        // Whether to read the outbox this round: on new work, on the timer, or when enough
        // pushes finished. Not after every single push: each read costs a query.
        let mut look = true;
        tracing::info!(
            stream = %self.target.stream_id,
            endpoint = %self.target.endpoint,
            "delivery worker started"
        );
        self.health.mark_running();
        let _running = RunningGuard(self.health.clone());
        self.show_reach();
        loop {
            if *stop.borrow() {
                break;
            }
            while let Some(done) = tasks.try_join_next_with_id() {
                if let Some(p) = writes.collect(&done, &mut in_flight, &self.health) {
                    self.observe(&p).await;
                    look = true;
                }
            }
            if last_gauges.elapsed() >= Duration::from_secs(5) {
                // Counting the outbox takes as long as the outbox is big: off the loop, so
                // claiming never waits for it (it did: a p99 spike every 5 s under load).
                if gauges
                    .as_ref()
                    .is_none_or(tokio::task::JoinHandle::is_finished)
                {
                    let worker = self.clone();
                    gauges = Some(tokio::spawn(async move { worker.publish_gauges().await }));
                }
                last_gauges = Instant::now();
            }
            let now_ms = self.clock.now().timestamp_millis();
            let paused = self.paused_until.load(Ordering::Relaxed);
            let mut wait = poll;
            let held = writes.held();
            if let Some(held) = held {
                wait = wait.min(held);
            } else if paused > now_ms {
                wait = wait.min(Duration::from_millis(
                    u64::try_from(paused - now_ms).unwrap_or(0),
                ));
            } else if self.reach().is_down() {
                // One SET probes the receiver; the rest wait for it, not for their back-off.
                let probe_in = self.reach().probe_in(now_ms);
                match probe_in {
                    Some(0) if in_flight.len() < concurrency => {
                        match self
                            .store
                            .claim_probe(&self.target.stream_id, &self.owner, now_ms, lease_ms)
                            .await
                        {
                            Ok(rows) => {
                                let busy: HashSet<&String> = in_flight.values().collect();
                                match rows.into_iter().find(|r| !busy.contains(&r.jti)) {
                                    Some(row) => {
                                        self.reach().probe_sent();
                                        let jti = row.jti.clone();
                                        let worker = self.clone();
                                        let handle = tasks
                                            .spawn(async move { worker.attempt(row, true).await });
                                        in_flight.insert(handle.id(), jti);
                                    }
                                    None => self.reach().probe_skipped(now_ms),
                                }
                                self.show_reach();
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "cannot read the outbox; retrying")
                            }
                        }
                    }
                    Some(w) => {
                        wait = wait.min(Duration::from_millis(u64::try_from(w).unwrap_or(0)));
                    }
                    None => {}
                }
            } else if look && in_flight.len() < concurrency {
                look = false;
                // Claim only what free slots can push now: a claimed SET waits for its lease.
                let limit = u32::try_from(concurrency - in_flight.len()).unwrap_or(u32::MAX);
                match self
                    .store
                    .claim_due(&self.target.stream_id, &self.owner, now_ms, lease_ms, limit)
                    .await
                {
                    Ok(rows) => {
                        let busy: HashSet<&String> = in_flight.values().collect();
                        let fresh: Vec<OutboxRow> = rows
                            .into_iter()
                            .filter(|r| !busy.contains(&r.jti))
                            .collect();
                        for row in fresh {
                            if in_flight.len() >= concurrency {
                                break;
                            }
                            let jti = row.jti.clone();
                            let worker = self.clone();
                            let handle =
                                tasks.spawn(async move { worker.attempt(row, false).await });
                            in_flight.insert(handle.id(), jti);
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot read the outbox; retrying"),
                }
            }
            tokio::select! {
                () = self.notify.notified() => look = true,
                () = tokio::time::sleep(wait) => look = true,
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let mut pushed = Vec::new();
                    pushed.extend(writes.collect(&done, &mut in_flight, &self.health));
                    while let Some(more) = tasks.try_join_next_with_id() {
                        pushed.extend(writes.collect(&more, &mut in_flight, &self.health));
                    }
                    let was_down = self.reach().is_down();
                    for p in &pushed {
                        self.observe(p).await;
                    }
                    look = look || in_flight.len() * 2 <= concurrency || was_down;
                }
                changed = stop.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        let pending = tasks.len();
        if pending > 0 {
            tracing::info!(
                pending,
                "delivery worker stopping; letting in-flight pushes finish"
            );
            let drained =
                tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
                    .await;
            if drained.is_err() {
                tracing::warn!(
                    abandoned = tasks.len(),
                    "in-flight pushes did not finish in time; they stay queued and are resent after restart"
                );
                tasks.abort_all();
            }
        }
        // Hand back what this process claimed and did not finish, so the next worker (another
        // replica, or this one restarted) pushes it without waiting for the lease.
        match self.store.release_claims(&self.owner).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "released unfinished claims"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot release claims; they end with their lease");
            }
        }
        self.receivers.remove(&self.target.stream_id);
        tracing::info!("delivery worker stopped");
    }

    async fn publish_gauges(&self) {
        match self.store.status_counts().await {
            Ok(counts) => self
                .metrics
                .outbox_counts(&crate::store::DeliveryStatus::zero_filled(&counts)),
            Err(e) => tracing::warn!(error = %e, "cannot count the outbox"),
        }
    }

    /// Pushes one SET (`probe`: the probe of a receiver that is down) and records the outcome.
    async fn attempt(&self, row: OutboxRow, probe: bool) -> Pushed {
        let subject = row.subject_key.clone();
        let (recorded, seen) = self.push(row).await;
        Pushed {
            recorded,
            seen,
            subject,
            probe,
        }
    }

    /// Pushes one SET and records the outcome: whether it was written, and what the push said
    /// about the receiver.
    async fn push(&self, row: OutboxRow) -> (bool, Option<Seen>) {
        let max_age_ms =
            i64::try_from(self.config.max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let deadline = row.queued_at.saturating_add(max_age_ms);
        let now_ms = self.clock.now().timestamp_millis();
        if now_ms > deadline {
            // Keep what the receiver last said: it is why the SET never got through.
            let gave_up = format!(
                "not delivered within {} s of being queued",
                self.config.max_age_secs
            );
            let outcome = Attempt::Dead {
                http_status: row.last_http_status.and_then(|s| u16::try_from(s).ok()),
                error: match &row.last_error {
                    Some(last) => format!("{gave_up}; the last attempt: {last}"),
                    None => gave_up,
                },
            };
            self.metrics.set_dead(&self.target.stream_id);
            tracing::error!(jti = %row.jti, "SET is dead: not delivered within its max age");
            return (self.record(&row, &outcome, now_ms).await, None);
        }
        let started = Instant::now();
        let mut request = self
            .http
            .post(&self.target.endpoint)
            .header(CONTENT_TYPE, SECEVENT_JWT)
            .header(ACCEPT, "application/json");
        // Checked when the receiver set it (visible ASCII), so it is a valid header value;
        // marked sensitive so no HTTP layer ever prints it.
        if let Some(Ok(mut auth)) = self
            .target
            .authorization
            .as_ref()
            .map(|a| reqwest::header::HeaderValue::from_str(a.expose_secret()))
        {
            auth.set_sensitive(true);
            request = request.header(AUTHORIZATION, auth);
        }
        let response = request.body(row.set_jwt.clone()).send().await;
        let seen = match &response {
            Ok(r) if r.status().is_server_error() => Seen::Unreachable,
            Ok(_) => Seen::Answered,
            Err(_) => Seen::Unreachable,
        };
        self.metrics
            .push_attempt(&self.target.stream_id, started.elapsed().as_secs_f64());
        let now_ms = self.clock.now().timestamp_millis();
        let attempts = row.attempts + 1;
        let retry_at = |reason: &'static str| {
            self.metrics.set_retry(&self.target.stream_id, reason);
            now_ms.saturating_add(
                i64::try_from(backoff(&self.config, attempts, self.ids.unit()).as_millis())
                    .unwrap_or(i64::MAX),
            )
        };
        let outcome = match response {
            Ok(resp) => {
                let status = resp.status();
                let code = status.as_u16();
                if status.is_success() {
                    Attempt::Delivered { http_status: code }
                } else if matches!(code, 400 | 413 | 415 | 422) {
                    let (err, description) = read_error(resp).await;
                    let refused = format!(
                        "the receiver refused the SET ({code}{})",
                        err.as_deref().map(|e| format!(" {e}")).unwrap_or_default()
                    );
                    let verify =
                        code == 400 && err.as_deref().is_some_and(|e| VERIFY_ERRS.contains(&e));
                    let window_ms =
                        i64::try_from(self.config.verify_retry_secs.saturating_mul(1000))
                            .unwrap_or(i64::MAX);
                    let window_end = row
                        .verify_failing_since
                        .unwrap_or(now_ms)
                        .saturating_add(window_ms);
                    if verify && now_ms < window_end {
                        // The last attempt falls at the window's end, however long the back-off.
                        Attempt::Retry {
                            http_status: Some(code),
                            error: format!(
                                "{refused}; retrying while the receiver may not have caught up with a key or provider change"
                            ),
                            err,
                            description,
                            next_attempt_at: retry_at("verification").min(window_end),
                            verify_failure: true,
                        }
                    } else {
                        Attempt::Failed {
                            http_status: code,
                            error: if verify && window_ms > 0 {
                                format!(
                                    "{refused}; still refused {} s after the first such answer (verify_retry_secs)",
                                    self.config.verify_retry_secs
                                )
                            } else {
                                refused
                            },
                            err,
                            description,
                        }
                    }
                } else if code == 429 {
                    let cap = now_ms.saturating_add(
                        i64::try_from(self.config.rate_limit_max_wait_secs.saturating_mul(1000))
                            .unwrap_or(i64::MAX),
                    );
                    // At least a second: a reset in the past (clock skew, or the current
                    // second) must not turn into a tight loop.
                    let floor = now_ms.saturating_add(1000);
                    let at = match rate_limit_reset(resp.headers(), now_ms) {
                        Some(t) => {
                            self.metrics
                                .set_retry(&self.target.stream_id, "rate_limited");
                            t.max(floor).min(cap.max(floor))
                        }
                        None => retry_at("rate_limited").max(floor),
                    };
                    self.paused_until.fetch_max(at, Ordering::Relaxed);
                    // And for every replica on the store: the receiver limits the org, not us.
                    if let Err(e) = self.store.pause_stream(&self.target.stream_id, at).await {
                        tracing::warn!(error = %e, "cannot share the receiver's pause with other replicas");
                    }
                    Attempt::Retry {
                        http_status: Some(code),
                        err: None,
                        description: None,
                        error: "rate limited by the receiver (429)".into(),
                        next_attempt_at: at,
                        verify_failure: false,
                    }
                } else if status.is_server_error() {
                    Attempt::Retry {
                        http_status: Some(code),
                        err: None,
                        description: None,
                        error: format!("the receiver answered {code}"),
                        next_attempt_at: retry_at("server_error"),
                        verify_failure: false,
                    }
                } else {
                    Attempt::Retry {
                        http_status: Some(code),
                        err: None,
                        description: None,
                        error: format!("unexpected answer {code} from the receiver"),
                        next_attempt_at: retry_at("client_error"),
                        verify_failure: false,
                    }
                }
            }
            Err(e) if e.is_timeout() => Attempt::Retry {
                http_status: None,
                err: None,
                description: None,
                error: "the push timed out".into(),
                next_attempt_at: retry_at("timeout"),
                verify_failure: false,
            },
            Err(e) => Attempt::Retry {
                http_status: None,
                err: None,
                description: None,
                error: format!("cannot reach the receiver: {}", error_chain(&e)),
                next_attempt_at: retry_at("network"),
                verify_failure: false,
            },
        };
        let outcome = match outcome {
            Attempt::Retry {
                http_status,
                error,
                next_attempt_at,
                ..
            } if next_attempt_at > deadline => Attempt::Dead {
                http_status,
                error: format!("{error}; gave up: the next attempt would be past the max age"),
            },
            other => other,
        };
        match &outcome {
            Attempt::Delivered { .. } => {
                self.metrics.set_delivered(
                    &self.target.stream_id,
                    (now_ms.saturating_sub(row.created_at)) as f64 / 1000.0,
                );
            }
            Attempt::Failed {
                err, description, ..
            } => {
                self.metrics.set_failed(&self.target.stream_id);
                tracing::warn!(jti = %row.jti, err = err.as_deref().unwrap_or("-"), description = description.as_deref().unwrap_or("-"), "receiver refused a SET");
            }
            Attempt::Dead { error, .. } => {
                self.metrics.set_dead(&self.target.stream_id);
                tracing::error!(jti = %row.jti, error = %error, "SET is dead");
            }
            Attempt::Retry { error, .. } => {
                tracing::info!(jti = %row.jti, attempts, error = %error, "SET will be retried");
            }
        }
        (self.record(&row, &outcome, now_ms).await, Some(seen))
    }

    /// Writes an outcome; false when it could not be written.
    async fn record(&self, row: &OutboxRow, outcome: &Attempt, now_ms: i64) -> bool {
        match self
            .store
            .record_attempt(&row.jti, &self.owner, outcome, now_ms)
            .await
        {
            Ok(true) => true,
            Ok(false) => {
                // Outcomes only move forward, and only under this worker's claim: the SET was
                // finished meanwhile, or the claim ended and another worker took the SET.
                tracing::warn!(jti = %row.jti, "outcome not recorded: the SET is no longer pending or no longer claimed by this worker");
                true
            }
            Err(e) => {
                // The row stays pending: it is sent again (same jti), which receivers ignore.
                tracing::error!(jti = %row.jti, error = %e, "cannot record a delivery outcome");
                false
            }
        }
    }
}

/// Outcome writes that failed in a row, and no pushes before `hold_until` meanwhile.
#[derive(Debug, Default)]
struct WriteBackoff {
    failures: u32,
    hold_until: Option<Instant>,
}

impl WriteBackoff {
    /// Takes a finished push off `in_flight` and notes whether its outcome was written; gives
    /// back what the push reported (`None`: the task failed).
    fn collect(
        &mut self,
        done: &Result<(tokio::task::Id, Pushed), tokio::task::JoinError>,
        in_flight: &mut HashMap<tokio::task::Id, String>,
        health: &DeliveryHealth,
    ) -> Option<Pushed> {
        let (id, pushed) = finished(done);
        in_flight.remove(&id);
        match pushed.map(|p| p.recorded) {
            Some(true) => {
                self.failures = 0;
                health
                    .outcome_writes_failing
                    .store(false, Ordering::Relaxed);
            }
            Some(false) => {
                self.failures = self.failures.saturating_add(1);
                let wait = store_backoff(self.failures);
                self.hold_until = Some(Instant::now() + wait);
                health.outcome_writes_failing.store(true, Ordering::Relaxed);
                tracing::warn!(
                    failures = self.failures,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "cannot record delivery outcomes; pausing pushes"
                );
            }
            None => {}
        }
        pushed.cloned()
    }

    /// How much longer pushes are held back, if at all.
    fn held(&self) -> Option<Duration> {
        self.hold_until
            .map(|t| t.saturating_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }
}

/// The task id of a finished push and what it reported (`None`: the task failed).
fn finished(
    done: &Result<(tokio::task::Id, Pushed), tokio::task::JoinError>,
) -> (tokio::task::Id, Option<&Pushed>) {
    match done {
        Ok((id, pushed)) => (*id, Some(pushed)),
        Err(e) => {
            tracing::error!(error = %e, "a push task failed; its SET stays queued");
            (e.id(), None)
        }
    }
}

async fn read_error(resp: reqwest::Response) -> (Option<String>, Option<String>) {
    let Ok(bytes) = resp.bytes().await else {
        return (None, None);
    };
    let bytes = bytes.get(..bytes.len().min(16 * 1024)).unwrap_or_default();
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(v) => (
            v.get("err").and_then(|e| e.as_str()).map(str::to_owned),
            v.get("description")
                .and_then(|e| e.as_str())
                .map(str::to_owned),
        ),
        Err(_) => (
            None,
            Some(String::from_utf8_lossy(bytes).chars().take(500).collect()),
        ),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let c = DeliveryConfig {
            backoff_initial_ms: 1000,
            backoff_max_secs: 60,
            ..DeliveryConfig::default()
        };
        assert_eq!(backoff(&c, 1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(&c, 1, 0.999_999), Duration::from_millis(999));
        assert_eq!(backoff(&c, 2, 0.0), Duration::from_millis(1000));
        assert_eq!(backoff(&c, 3, 0.5), Duration::from_millis(3000));
        assert_eq!(
            backoff(&c, 20, 0.0),
            Duration::from_millis(30_000),
            "capped at 60 s"
        );
        assert_eq!(backoff(&c, 200, 1.0), Duration::from_millis(60_000));
    }

    #[test]
    fn rate_limit_headers() {
        let now = 1_700_000_000_000;
        let mut h = HeaderMap::new();
        assert_eq!(rate_limit_reset(&h, now), None);
        h.insert("retry-after", "7".parse().expect("hv"));
        assert_eq!(rate_limit_reset(&h, now), Some(now + 7000));
        h.insert(
            "retry-after",
            "Tue, 14 Nov 2023 22:13:30 GMT".parse().expect("hv"),
        );
        assert_eq!(rate_limit_reset(&h, now), Some(1_700_000_010_000));
        h.insert("x-rate-limit-reset", "1700000060".parse().expect("hv"));
        assert_eq!(
            rate_limit_reset(&h, now),
            Some(1_700_000_060_000),
            "Okta's header wins"
        );
        h.insert("x-rate-limit-reset", "1600000000".parse().expect("hv"));
        assert_eq!(
            rate_limit_reset(&h, now),
            Some(now),
            "a reset in the past means now"
        );
    }
}
