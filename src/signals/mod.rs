//! Signal intake: validated drafts → per-subject state (fill `previous_level`, suppress unchanged
//! levels) → signed SETs → one store transaction (outbox rows + new state + idempotency record).

pub mod request;
pub mod streams;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Mutex, Notify};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::clock::Clock;
use crate::config::{OktaTarget, SignalsConfig};
use crate::ids::Ids;
use crate::keys::KeyManager;
use crate::metrics::Metrics;
use crate::set::{self, ComplianceStatus, Event, EventBody, RiskLevel, StandardRiskLevel};
pub use crate::store::{DeliveryStatus, OutboxFilter, OutboxRow};
use crate::store::{IdempotencyRecord, NewOutbox, StateUpdate, Store, StoreError, SubjectState};
use streams::routing::Routes;

pub use request::{Draft, DraftBody};

/// The stream id of the Okta receiver.
pub const OKTA_STREAM: &str = "okta";

/// Drafts signed inline; bigger groups are signed on the blocking pool in parallel.
const PARALLEL_SIGN_MIN: usize = 8;

/// What happened to one accepted signal.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// Signed, stored, waiting for delivery.
    Queued {
        /// The first SET's `jti` (Okta's, when Okta takes it).
        jti: String,
        /// Event type.
        event_type: set::EventType,
        /// Every SET the signal became: one per receiver that takes it.
        sets: Vec<QueuedSet>,
    },
    /// Same level (or status) as last time: nothing sent.
    Unchanged {
        /// Event type.
        event_type: set::EventType,
        /// The unchanged level or status.
        value: String,
        /// The SET that carried the level this one matched, when known.
        matched_jti: Option<String>,
        /// That SET's delivery status now (`None` when it is no longer stored).
        matched_status: Option<DeliveryStatus>,
    },
    /// No receiver takes this event about this subject: Okta does not take its type, and no
    /// standard stream delivers it (or they all left the subject out). Nothing sent.
    Unrouted {
        /// Event type.
        event_type: set::EventType,
    },
}

/// One SET a signal became.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QueuedSet {
    /// The receiver: `okta` or a standard stream's `stream_id`.
    pub stream: String,
    /// The SET's `jti`.
    pub jti: String,
}

/// Why intake as a whole failed (per-item validation errors are not this).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// No `[okta]` receiver configured and no standard stream.
    #[error(
        "no receiver is configured: set [okta] org_url (SSF_OKTA__ORG_URL) or create a standard stream (POST /ssf/streams) to send signals"
    )]
    NoReceiver,
    /// A standard stream was chosen for an event without a standard form (a bug).
    #[error("{0} has no standard form")]
    NoStandardForm(&'static str),
    /// Per-subject state requires a value the caller did not give and no state knows.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(#[from] crate::keys::SignError),
    /// The idempotency key was stored by a concurrent request.
    #[error("idempotency key raced")]
    IdempotencyRace,
}

/// An idempotency key with the hash of the request it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The key.
    pub key: String,
    /// SHA-256 of method, path and body.
    pub request_hash: Vec<u8>,
}

/// Why a SET was not put back in the queue.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// It is not failed or dead, or a newer SET for its subject exists.
    #[error("{0}")]
    NotRetryable(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// The intake service.
#[derive(Clone)]
pub struct Intake {
    store: Store,
    keys: KeyManager,
    ids: Arc<dyn Ids>,
    clock: Arc<dyn Clock>,
    config: Arc<SignalsConfig>,
    target: Option<Arc<OktaTarget>>,
    streams: Option<streams::config::Streams>,
    issuer: Arc<str>,
    locks: SubjectLocks,
    notify: Arc<Notify>,
    metrics: Metrics,
    /// When the last readiness probe committed: one probe at a time, and callers that waited
    /// for it reuse its success, so a flood of `/readyz` cannot crowd intake out of the writer.
    last_probe: Arc<tokio::sync::Mutex<Option<tokio::time::Instant>>>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A per-item result of [`Intake::submit`].
pub type ItemResult = Result<Outcome, Vec<crate::validation::FieldError>>;

impl Intake {
    /// Builds the service.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        keys: KeyManager,
        ids: Arc<dyn Ids>,
        clock: Arc<dyn Clock>,
        config: SignalsConfig,
        target: Option<OktaTarget>,
        issuer: Arc<str>,
        notify: Arc<Notify>,
        metrics: Metrics,
    ) -> Self {
        Self {
            store,
            keys,
            ids,
            clock,
            config: Arc::new(config),
            target: target.map(Arc::new),
            streams: None,
            issuer,
            locks: SubjectLocks::default(),
            notify,
            metrics,
            last_probe: Arc::default(),
        }
    }

    /// Delivers to the standard streams of `streams` too.
    #[must_use]
    pub fn with_streams(mut self, streams: streams::config::Streams) -> Self {
        self.streams = Some(streams);
        self
    }

    /// Intake settings.
    pub fn config(&self) -> &SignalsConfig {
        &self.config
    }

    /// The receiver, when configured.
    pub fn target(&self) -> Option<&OktaTarget> {
        self.target.as_deref()
    }

    /// Refuses early when there is nowhere to send signals: no Okta and no standard stream.
    pub async fn require_receiver(&self) -> Result<(), IntakeError> {
        if self.target.is_some() || !self.routes().await?.is_empty() {
            Ok(())
        } else {
            Err(IntakeError::NoReceiver)
        }
    }

    /// One SET and its delivery state.
    pub async fn get(&self, jti: &str) -> Result<Option<OutboxRow>, StoreError> {
        self.store.outbox_get(jti).await
    }

    /// SETs matching `filter`, newest first.
    pub async fn list(&self, filter: &OutboxFilter) -> Result<Vec<OutboxRow>, StoreError> {
        self.store.outbox_list(filter).await
    }

    /// Puts a `failed` or `dead` SET back in the queue (its age counts from now); `None` when
    /// there is no such SET or it is not finished unsuccessfully.
    pub async fn retry(&self, jti: &str, now_ms: i64) -> Result<Option<OutboxRow>, RetryError> {
        let row = self.store.requeue(jti, now_ms).await.map_err(|e| match e {
            StoreError::Conflict(m) => RetryError::NotRetryable(m),
            other => RetryError::Store(other),
        })?;
        if row.is_some() {
            self.notify.notify_one();
        }
        Ok(row)
    }

    /// How many SETs signed by `kid` still wait for delivery.
    pub async fn waiting_on_key(&self, kid: &str) -> Result<i64, StoreError> {
        self.store.pending_with_kid(kid).await
    }

    /// SETs per delivery status, every status (0 where none).
    pub async fn status_counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
        Ok(DeliveryStatus::zero_filled(
            &self.store.status_counts().await?,
        ))
    }

    /// Whether the store's writer (which commits intake and outcomes) is running.
    pub fn store_writer_running(&self) -> bool {
        self.store.writer_running()
    }

    /// Commits a probe write through the same writer intake uses — one at a time; a caller
    /// that waited for another's probe takes its success (it committed after this call began).
    pub async fn probe_store(&self, now_ms: i64) -> Result<(), StoreError> {
        let asked = tokio::time::Instant::now();
        let mut last = self.last_probe.lock().await;
        if last.is_some_and(|t| t >= asked) {
            return Ok(());
        }
        self.store.probe_write(now_ms).await?;
        *last = Some(tokio::time::Instant::now());
        Ok(())
    }

    /// Applies state, signs and stores every valid draft in one transaction, in order. Each
    /// draft fans out to every receiver that takes it: Okta (its types, users by email) in
    /// Okta's dialect, and every standard stream whose `events_delivered` and subjects take it,
    /// in the standard dialect; each receiver has its own subject state. Invalid drafts (`Err`)
    /// pass through as their errors. `render` turns the results into the response (status,
    /// body) kept for the idempotency key, written in the same transaction.
    pub async fn submit<R>(
        &self,
        client: &Caller,
        drafts: Vec<Result<Draft, Vec<crate::validation::FieldError>>>,
        idempotency: Option<IdempotencyKey>,
        render: R,
    ) -> Result<Vec<ItemResult>, IntakeError>
    where
        R: FnOnce(&[ItemResult]) -> (u16, String),
    {
        let routes = self.routes().await?;
        if self.target.is_none() && routes.is_empty() {
            return Err(IntakeError::NoReceiver);
        }
        // Hold the lock of every subject involved (its FIFO key and its state key), so state
        // reads, decisions and the write happen in acceptance order per subject. Keys are exact
        // (no striping), so unrelated subjects never wait for each other.
        let mut keys: Vec<String> = Vec::new();
        for d in drafts.iter().filter_map(|d| d.as_ref().ok()) {
            keys.push(d.order_key());
            if let Some((kind, key)) = d.state_slot() {
                keys.push(format!("state:{kind}:{key}"));
            }
        }
        let _guards = self.locks.lock_all(keys.clone()).await;
        // Across replicas (PostgreSQL), the same subjects' locks in the database, held by the
        // transaction that reads their state and commits the SETs.
        let mut intake = self.store.begin_intake(&keys).await?;

        let now = self.clock.now();
        let now_ms = now.timestamp_millis();
        let ring = self.keys.ring();
        let mut overlay: HashMap<(String, String, String), SubjectState> = HashMap::new();
        let mut rows: Vec<NewOutbox> = Vec::new();
        let mut to_sign = Vec::new();
        let mut states = Vec::new();
        let mut results = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let draft = match draft {
                Ok(d) => d,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            let targets = match self.targets(&draft, &routes) {
                Ok(t) if t.is_empty() => {
                    results.push(Ok(Outcome::Unrouted {
                        event_type: draft.event_type,
                    }));
                    continue;
                }
                Ok(t) => t,
                Err(e) => {
                    results.push(Err(vec![e]));
                    continue;
                }
            };
            let slot = draft.state_slot();
            // Every receiver's decision first: one that cannot take the draft fails it for all.
            let mut decisions = Vec::with_capacity(targets.len());
            let mut invalid = None;
            for target in &targets {
                let last = match &slot {
                    Some((kind, key)) => {
                        let k = (target.stream_id.to_owned(), (*kind).to_owned(), key.clone());
                        match overlay.get(&k) {
                            Some(v) => Some(v.clone()),
                            None => intake.subject_state(target.stream_id, kind, key).await?,
                        }
                    }
                    None => None,
                };
                // A standard stream new to a device learns its previous status from Okta's.
                let known = match (&slot, &last, target.dialect) {
                    (Some((kind, key)), None, Dialect::Standard { .. })
                        if matches!(draft.body, DraftBody::Compliance { .. }) =>
                    {
                        let k = (OKTA_STREAM.to_owned(), (*kind).to_owned(), key.clone());
                        match overlay.get(&k) {
                            Some(v) => Some(v.value.clone()),
                            None => intake
                                .subject_state(OKTA_STREAM, kind, key)
                                .await?
                                .map(|s| s.value),
                        }
                    }
                    _ => last.as_ref().map(|l| l.value.clone()),
                };
                let decision = self.decide(
                    &draft,
                    last.as_ref().map(|l| l.value.as_str()),
                    known.as_deref(),
                    target.dialect,
                );
                if let Decision::Invalid(e) = decision {
                    invalid = Some(e);
                    break;
                }
                decisions.push((target, decision, last));
            }
            if let Some(e) = invalid {
                results.push(Err(vec![e]));
                continue;
            }
            // Okta wants a reason (either one) on its types but identifier-changed; the CAEP
            // interoperability profile wants `reason_admin` on CAEP events. Missing, it says
            // which client reported what.
            let default_reason = || {
                let text = self
                    .config
                    .default_reason
                    .replace("{event}", draft.event_type.as_str())
                    .replace("{client}", &client.name);
                Some(set::Reason::from([("en".to_owned(), text)]))
            };
            let reason_admin_for = |dialect: Dialect| match (&draft.reason_admin, dialect) {
                (Some(r), _) => Some(r.clone()),
                (None, Dialect::Okta(_))
                    if draft.event_type.wants_reason() && draft.reason_user.is_none() =>
                {
                    default_reason()
                }
                (None, Dialect::Standard { .. }) if draft.event_type.is_caep() => default_reason(),
                (None, _) => None,
            };
            let txn = decisions
                .iter()
                .any(|(t, d, _)| {
                    matches!(d, Decision::Send(..)) && matches!(t.dialect, Dialect::Standard { .. })
                })
                .then(|| self.ids.jti());
            let mut queued = Vec::new();
            let mut unchanged = None;
            for (target, decision, last) in decisions {
                let (body, value) = match decision {
                    Decision::Send(body, value) => (body, value),
                    Decision::Unchanged(value) => {
                        if unchanged.is_none() {
                            unchanged = Some((value, last.and_then(|l| l.jti)));
                        }
                        continue;
                    }
                    Decision::Invalid(_) => continue,
                };
                let event = Event {
                    event_type: draft.event_type,
                    subject: draft.subject.clone(),
                    event_timestamp: draft.event_timestamp,
                    initiating_entity: draft.initiating_entity,
                    reason_admin: reason_admin_for(target.dialect),
                    reason_user: draft.reason_user.clone(),
                    body,
                };
                let jti = self.ids.set_jti();
                let claims = match target.dialect {
                    Dialect::Okta(unit) => set::claims(
                        &self.issuer,
                        target.aud,
                        &jti,
                        now.timestamp(),
                        &event,
                        unit,
                    ),
                    Dialect::Standard { subject_in_event } => set::standard::claims(
                        &self.issuer,
                        target.aud,
                        &jti,
                        now.timestamp(),
                        txn.as_deref().unwrap_or_default(),
                        &event,
                        subject_in_event,
                    )
                    .ok_or(IntakeError::NoStandardForm(draft.event_type.as_str()))?,
                };
                // Kept as their JSON text until signed: a claims tree costs several times its
                // text in memory, and a batch holds every one of its SETs' claims at once.
                to_sign.push(
                    serde_json::value::to_raw_value(&claims)
                        .map_err(crate::keys::SignError::from)?,
                );
                drop(claims);
                rows.push(NewOutbox {
                    jti: jti.clone(),
                    stream_id: target.stream_id.to_owned(),
                    subject_key: draft.order_key(),
                    subject: draft.subject.to_json().to_string(),
                    event_type: draft.event_type.as_str().to_owned(),
                    set_jwt: String::new(),
                    client: client.name.clone(),
                    kid: ring.active_kid().to_owned(),
                    now_ms,
                });
                if let (Some((kind, key)), Some(value)) = (&slot, value) {
                    overlay.insert(
                        (target.stream_id.to_owned(), (*kind).to_owned(), key.clone()),
                        SubjectState {
                            value: value.clone(),
                            jti: Some(jti.clone()),
                        },
                    );
                    states.push(StateUpdate {
                        stream_id: target.stream_id.to_owned(),
                        kind: (*kind).to_owned(),
                        subject_key: key.clone(),
                        value,
                        jti: Some(jti.clone()),
                        now_ms,
                    });
                }
                queued.push(QueuedSet {
                    stream: target.stream_id.to_owned(),
                    jti,
                });
            }
            if let Some(first) = queued.first() {
                self.metrics.signal_accepted(draft.event_type.as_str());
                results.push(Ok(Outcome::Queued {
                    jti: first.jti.clone(),
                    event_type: draft.event_type,
                    sets: queued,
                }));
                continue;
            }
            let Some((value, matched_jti)) = unchanged else {
                results.push(Ok(Outcome::Unrouted {
                    event_type: draft.event_type,
                }));
                continue;
            };
            self.metrics.signal_unchanged(draft.event_type.as_str());
            // The level stands for what that SET carried: show how it fared, so a caller sees
            // when it failed (and the level never reached the receiver).
            let matched_status = match &matched_jti {
                // Accepted earlier in this same request: queued with it.
                Some(j) if rows.iter().any(|r| &r.jti == j) => Some(DeliveryStatus::Queued),
                Some(j) => intake.delivery_status(j).await?,
                None => None,
            };
            results.push(Ok(Outcome::Unchanged {
                event_type: draft.event_type,
                value,
                matched_jti,
                matched_status,
            }));
        }
        for (row, token) in rows.iter_mut().zip(sign_all(&ring, to_sign).await?) {
            row.set_jwt = token;
        }
        let record = idempotency.map(|k| {
            let (status, body) = render(&results);
            IdempotencyRecord {
                client: client.id.clone(),
                key: k.key,
                request_hash: k.request_hash,
                status,
                body,
                created_at: now_ms,
            }
        });
        // The rows go to the store whole; what comes after the commit needs only their streams.
        let queued: Vec<String> = rows.iter().map(|r| r.stream_id.clone()).collect();
        let keyed = record.is_some();
        if !rows.is_empty() || !states.is_empty() || keyed {
            match intake.commit(rows, states, record).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) if keyed => {
                    return Err(IntakeError::IdempotencyRace);
                }
                Err(e) => return Err(e.into()),
            }
        }
        drop(_guards);
        let mut woken = std::collections::HashSet::new();
        for stream in &queued {
            self.metrics.set_queued(stream);
            if woken.insert(stream.as_str()) {
                match (&self.streams, stream.as_str()) {
                    (_, OKTA_STREAM) | (None, _) => self.notify.notify_one(),
                    (Some(streams), id) => streams.waker(id).notify_one(),
                }
            }
        }
        Ok(results)
    }

    /// The standard streams as of now (none when streams are not set up).
    async fn routes(&self) -> Result<Arc<Routes>, IntakeError> {
        match &self.streams {
            Some(s) => s.routes().await.map_err(|e| match e {
                streams::config::StreamError::Store(e) => IntakeError::Store(e),
                other => IntakeError::Store(StoreError::Corrupt(other.to_string())),
            }),
            None => Ok(Arc::default()),
        }
    }

    /// Every receiver `draft` goes to: Okta first (when configured, for its event types and
    /// users known by email), then each standard stream that takes it, oldest first. A draft
    /// only Okta would take but whose user it cannot match is refused.
    fn targets<'a>(
        &'a self,
        draft: &Draft,
        routes: &'a Routes,
    ) -> Result<Vec<Target<'a>>, crate::validation::FieldError> {
        let mut out = Vec::new();
        let mut okta_refused = false;
        if let Some(okta) = self.target.as_deref()
            && draft.event_type.okta_uri().is_some()
        {
            if draft
                .subject
                .user
                .as_ref()
                .is_none_or(|u| matches!(u, set::SubjectId::Email(_)))
            {
                out.push(Target {
                    stream_id: OKTA_STREAM,
                    aud: &okta.audience,
                    dialect: Dialect::Okta(okta.timestamp_unit),
                });
            } else {
                okta_refused = true;
            }
        }
        if let Some(uri) = draft.event_type.standard_uri() {
            for r in routes.for_event(uri, &draft.subject) {
                out.push(Target {
                    stream_id: &r.stream_id,
                    aud: &r.aud,
                    dialect: Dialect::Standard {
                        subject_in_event: r.subject_in_event,
                    },
                });
            }
        }
        if okta_refused && out.is_empty() {
            return Err(crate::validation::FieldError {
                field: "subject.user".into(),
                message: "Okta matches users by email: use {\"format\": \"email\", \"email\": …}"
                    .into(),
            });
        }
        Ok(out)
    }

    /// What to send `draft` to one receiver, given the value that receiver last got (`last`)
    /// and the last value known for the subject (`known`: `last`, or another receiver's).
    fn decide(
        &self,
        draft: &Draft,
        last: Option<&str>,
        known: Option<&str>,
        dialect: Dialect,
    ) -> Decision {
        let unchanged =
            |value: &str| self.config.suppress_unchanged && !draft.force && last == Some(value);
        match (&draft.body, dialect) {
            (DraftBody::Risk { current, previous }, Dialect::Okta(_)) => {
                let value = current.as_str().to_owned();
                if unchanged(&value) {
                    return Decision::Unchanged(value);
                }
                let previous = match previous {
                    Some(p) => *p,
                    None if self.config.fill_previous_level => {
                        last.and_then(RiskLevel::parse).unwrap_or(RiskLevel::None)
                    }
                    None => {
                        return Decision::Invalid(crate::validation::FieldError {
                            field: "previous_level".into(),
                            message: "is required (filling it from state is turned off)".into(),
                        });
                    }
                };
                Decision::Send(
                    EventBody::RiskChange {
                        current_level: *current,
                        previous_level: previous,
                    },
                    Some(value),
                )
            }
            (DraftBody::Risk { current, previous }, Dialect::Standard { .. }) => {
                // CAEP has LOW, MEDIUM and HIGH: `secure` and `none` are no risk, LOW.
                let current =
                    StandardRiskLevel::from_okta(*current).unwrap_or(StandardRiskLevel::Low);
                let value = current.as_str().to_owned();
                if unchanged(&value) {
                    return Decision::Unchanged(value);
                }
                // Omitted, CAEP's receiver takes the previous level as unknown.
                let previous = match previous {
                    Some(p) => StandardRiskLevel::from_okta(*p),
                    None if self.config.fill_previous_level => {
                        last.and_then(StandardRiskLevel::parse)
                    }
                    None => None,
                };
                // CAEP's RECOMMENDED reason: the caller's English administrators' reason.
                let risk_reason = draft
                    .reason_admin
                    .as_ref()
                    .and_then(|r| r.get("en"))
                    .cloned();
                Decision::Send(
                    EventBody::StandardRisk {
                        current_level: current,
                        previous_level: previous,
                        risk_reason,
                    },
                    Some(value),
                )
            }
            (DraftBody::Compliance { current, previous }, _) => {
                let name = |s: &ComplianceStatus| match s {
                    ComplianceStatus::Compliant => "compliant",
                    ComplianceStatus::NotCompliant => "not-compliant",
                };
                let value = name(current).to_owned();
                if unchanged(&value) {
                    return Decision::Unchanged(value);
                }
                let previous = match (previous, known) {
                    (Some(p), _) => *p,
                    (None, Some("compliant")) if self.config.fill_previous_level => {
                        ComplianceStatus::Compliant
                    }
                    (None, Some("not-compliant")) if self.config.fill_previous_level => {
                        ComplianceStatus::NotCompliant
                    }
                    _ => {
                        return Decision::Invalid(crate::validation::FieldError {
                            field: "previous_status".into(),
                            message: "is required: no earlier status is known for this device"
                                .into(),
                        });
                    }
                };
                Decision::Send(
                    EventBody::DeviceCompliance {
                        current_status: *current,
                        previous_status: previous,
                    },
                    Some(value),
                )
            }
            (DraftBody::Fixed(body), _) => Decision::Send(body.clone(), None),
        }
    }
}

/// One receiver of a draft.
struct Target<'a> {
    stream_id: &'a str,
    aud: &'a str,
    dialect: Dialect,
}

/// How a receiver reads SETs.
#[derive(Debug, Clone, Copy)]
enum Dialect {
    /// Okta's, with its `event_timestamp` unit.
    Okta(set::TimestampUnit),
    /// SSF 1.0 with CAEP and RISC; optionally the subject inside the event too.
    Standard { subject_in_event: bool },
}

/// Signing chunks running at once on the blocking pool: one per core. More only adds threads
/// (each with its own allocator arena: concurrent batches once took 30 threads and 40 MiB of
/// arenas) and context switches, not signatures.
static SIGNERS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
});

/// Signs claims with the ring's active key: inline for a few, on the blocking pool in parallel
/// chunks (one per core, at most one per core at once in the process) for many, so a large
/// batch uses every core.
async fn sign_all(
    ring: &Arc<crate::keys::KeyRing>,
    claims: Vec<Box<serde_json::value::RawValue>>,
) -> Result<Vec<String>, IntakeError> {
    if claims.len() < PARALLEL_SIGN_MIN {
        return claims
            .iter()
            .map(|c| ring.sign(set::SET_TYP, c).map_err(IntakeError::from))
            .collect();
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = claims.len().div_ceil(cores);
    let mut tasks = Vec::new();
    let mut claims = claims;
    while !claims.is_empty() {
        let rest = claims.split_off(chunk.min(claims.len()));
        let part = std::mem::replace(&mut claims, rest);
        let ring = ring.clone();
        let permit = SIGNERS.acquire().await.map_err(|_| {
            IntakeError::Store(StoreError::Setup("the signing pool is closed".into()))
        })?;
        tasks.push(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            part.iter()
                .map(|c| ring.sign(set::SET_TYP, c))
                .collect::<Result<Vec<_>, _>>()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        let signed = t.await.map_err(|e| {
            IntakeError::Store(StoreError::Setup(format!("signing task failed: {e}")))
        })??;
        out.extend(signed);
    }
    Ok(out)
}

/// Per-subject async locks, created on demand and dropped when nobody holds or waits for them.
#[derive(Clone, Default)]
struct SubjectLocks {
    map: Arc<std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>>,
}

/// Guards of [`SubjectLocks::lock_all`]; releases and cleans up on drop.
struct SubjectGuards {
    locks: SubjectLocks,
    held: Vec<(String, tokio::sync::OwnedMutexGuard<()>)>,
}

impl SubjectLocks {
    /// Locks every key (sorted and deduplicated, so two callers never deadlock).
    async fn lock_all(&self, mut keys: Vec<String>) -> SubjectGuards {
        keys.sort_unstable();
        keys.dedup();
        let arcs: Vec<(String, Arc<Mutex<()>>)> = match self.map.lock() {
            Ok(mut map) => keys
                .into_iter()
                .map(|k| {
                    let m = map.entry(k.clone()).or_default().clone();
                    (k, m)
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let mut held = Vec::with_capacity(arcs.len());
        for (k, m) in arcs {
            held.push((k, m.lock_owned().await));
        }
        SubjectGuards {
            locks: self.clone(),
            held,
        }
    }
}

impl Drop for SubjectGuards {
    fn drop(&mut self) {
        let keys: Vec<String> = self.held.drain(..).map(|(k, _guard)| k).collect();
        if let Ok(mut map) = self.locks.map.lock() {
            for k in keys {
                // Only the map holds it now: nobody waits for this subject.
                if map.get(&k).is_some_and(|m| Arc::strong_count(m) == 1) {
                    map.remove(&k);
                }
            }
        }
    }
}

enum Decision {
    Send(EventBody, Option<String>),
    Unchanged(String),
    Invalid(crate::validation::FieldError),
}

/// Decodes the claims of a compact JWS without verifying it (for showing what was sent).
pub fn decode_claims(token: &str) -> Option<Value> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
