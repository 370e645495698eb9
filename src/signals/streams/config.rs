//! Stream configurations (SSF 1.0 §8.1.1) and their status (§8.1.2): create, read, update,
//! replace and delete, each stream bound to the API client that created it. Another client's
//! stream is answered as if it did not exist.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::endpoint::{AllowPrivate, ReceiverUrl};
use super::routing::{Route, Routes};
use crate::auth::Caller;
use crate::clock::Clock;
use crate::ids::Ids;
use crate::keys::KeyManager;
use crate::store::{NewOutbox, Store, StoreError, StreamRow};

/// The scheme, host and port of an issuer URL (`https://h:8443/a` → `https://h:8443`): the
/// stream management endpoints live there, whatever the issuer's path.
pub fn issuer_origin(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| issuer.trim_end_matches('/').to_owned())
}

/// RFC 8935 push delivery.
pub const PUSH: &str = "urn:ietf:rfc:8935";
/// RFC 8936 poll delivery.
pub const POLL: &str = "urn:ietf:rfc:8936";
/// The pre-1.0 (RISC) name of push delivery, still sent by some receivers; stored as [`PUSH`].
const LEGACY_PUSH: &str = "https://schemas.openid.net/secevent/risc/delivery-method/push";

/// The event types a standard stream can carry (CAEP 1.0, RISC 1.0).
pub const EVENTS_SUPPORTED: &[&str] = &[
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
    "https://schemas.openid.net/secevent/caep/event-type/credential-change",
    "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change",
    "https://schemas.openid.net/secevent/caep/event-type/assurance-level-change",
    "https://schemas.openid.net/secevent/caep/event-type/token-claims-change",
    "https://schemas.openid.net/secevent/caep/event-type/risk-level-change",
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
    "https://schemas.openid.net/secevent/risc/event-type/account-enabled",
    "https://schemas.openid.net/secevent/risc/event-type/credential-compromise",
    "https://schemas.openid.net/secevent/risc/event-type/identifier-changed",
];

/// Most event types a receiver may request.
pub const MAX_EVENTS_REQUESTED: usize = 64;
/// Longest event type URI accepted in `events_requested`.
pub const MAX_EVENT_URI: usize = 256;
/// Longest `description` and status `reason`.
pub const MAX_TEXT: usize = 1000;
/// Longest `authorization_header`.
pub const MAX_AUTHORIZATION_HEADER: usize = 4096;

/// What can go wrong with a stream request.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A field is invalid: (field, what is wrong).
    #[error("{0}: {1}")]
    Invalid(String, String),
    /// No such stream for this caller.
    #[error("no stream with this stream_id")]
    NotFound,
    /// The caller has as many streams as it may.
    #[error("{0}")]
    Conflict(String),
    /// A verification was asked for sooner than `min_verification_interval` after the last one;
    /// the number of seconds to wait.
    #[error("verification requested too soon; try again in {0} s")]
    TooSoon(u64),
    /// The SET could not be signed.
    #[error("cannot sign: {0}")]
    Sign(#[from] crate::keys::SignError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &str, message: impl Into<String>) -> StreamError {
    StreamError::Invalid(field.to_owned(), message.into())
}

/// A stream's status (SSF §8.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamStatus {
    /// Events are transmitted.
    Enabled,
    /// Events are held, in order, and transmitted on enable.
    Paused,
    /// Events are dropped.
    Disabled,
}

impl StreamStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Enabled => "enabled",
            StreamStatus::Paused => "paused",
            StreamStatus::Disabled => "disabled",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "enabled" => Some(StreamStatus::Enabled),
            "paused" => Some(StreamStatus::Paused),
            "disabled" => Some(StreamStatus::Disabled),
            _ => None,
        }
    }
}

/// How SETs reach the receiver, as stored (the `authorization_header` included).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Delivery {
    method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorization_header: Option<String>,
}

/// The receiver-supplied part of a stream and its status reason, stored as JSON.
#[derive(Clone, Serialize, Deserialize)]
struct Record {
    aud: String,
    #[serde(default)]
    events_requested: Vec<String>,
    delivery: Delivery,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// When the receiver last asked for a verification event, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_verification_at: Option<i64>,
    /// Which subjects the stream carries before any is added or removed (fixed at creation).
    #[serde(default)]
    default_subjects: DefaultSubjects,
    /// The pre-1.0 form: the subject also inside the event.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    subject_in_event: bool,
}

/// Which subjects a new stream carries (SSF §7 `default_subjects`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DefaultSubjects {
    /// Every subject, except those removed.
    #[default]
    All,
    /// Only the subjects added.
    None,
}

/// A stream, loaded.
#[derive(Clone)]
pub struct Stream {
    id: String,
    client_id: String,
    status: StreamStatus,
    created_at: i64,
    record: Record,
}

/// The authorization header is a credential: never shown, also not in `Debug`.
impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("status", &self.status)
            .field("method", &self.record.delivery.method)
            .field("endpoint_url", &self.record.delivery.endpoint_url)
            .finish_non_exhaustive()
    }
}

impl Stream {
    fn from_row(row: StreamRow) -> Result<Self, StreamError> {
        let status = StreamStatus::parse(&row.status)
            .ok_or_else(|| StoreError::Corrupt(format!("stream status {:?}", row.status)))?;
        let record: Record = serde_json::from_str(&row.record)
            .map_err(|e| StoreError::Corrupt(format!("stream record: {e}")))?;
        Ok(Self {
            id: row.stream_id,
            client_id: row.client_id,
            status,
            created_at: row.created_at,
            record,
        })
    }

    fn to_row(&self, updated_at: i64) -> Result<StreamRow, StreamError> {
        let record = serde_json::to_string(&self.record)
            .map_err(|e| StoreError::Corrupt(format!("stream record: {e}")))?;
        Ok(StreamRow {
            stream_id: self.id.clone(),
            client_id: self.client_id.clone(),
            status: self.status.as_str().to_owned(),
            created_at: self.created_at,
            updated_at,
            record,
        })
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The status.
    pub fn status(&self) -> StreamStatus {
        self.status
    }

    /// The event types delivered: those requested that this transmitter supports, in the order
    /// of [`EVENTS_SUPPORTED`].
    pub fn events_delivered(&self) -> Vec<String> {
        EVENTS_SUPPORTED
            .iter()
            .filter(|e| self.record.events_requested.iter().any(|r| r == *e))
            .map(|e| (*e).to_owned())
            .collect()
    }
}

/// A stream's configuration as the receiver sees it (SSF §8.1.1). The `authorization_header`
/// is never shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamConfig {
    /// Transmitter-chosen id (32 lowercase hex digits).
    pub stream_id: String,
    /// The issuer: the `iss` of every SET of the stream.
    pub iss: String,
    /// The `aud` of every SET of the stream: this receiver's API client id, as a URN.
    pub aud: String,
    /// Event types this transmitter can send on a standard stream.
    pub events_supported: Vec<String>,
    /// Event types the receiver asked for (unknown ones are kept here and ignored).
    pub events_requested: Vec<String>,
    /// Requested ∩ supported: what the stream carries.
    pub events_delivered: Vec<String>,
    /// How SETs are delivered.
    pub delivery: DeliveryView,
    /// Seconds a receiver must wait between two verification requests.
    pub min_verification_interval: u64,
    /// The receiver's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// This transmitter's extension: SETs also carry the subject inside the event, the pre-1.0
    /// (SSE) form some receivers still read. `sub_id` is always there.
    pub subject_in_event: bool,
}

/// The delivery method as shown (no `authorization_header`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryView {
    /// `urn:ietf:rfc:8935` (push) or `urn:ietf:rfc:8936` (poll).
    pub method: String,
    /// Push: the receiver's endpoint. Poll: this transmitter's endpoint for the stream.
    pub endpoint_url: String,
}

/// A stream's status (SSF §8.1.2).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusView {
    /// The stream.
    pub stream_id: String,
    /// `enabled`, `paused` or `disabled`.
    pub status: StreamStatus,
    /// Why, as the receiver gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Deserializes a field that may be present with `null` (`Some(None)`), present with a value
/// (`Some(Some(v))`) or absent (`None`, with `#[serde(default)]`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The delivery object a receiver sends.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct DeliveryRequest {
    /// `urn:ietf:rfc:8935` (push; the pre-1.0 RISC push URI is taken as it) or
    /// `urn:ietf:rfc:8936` (poll: the transmitter chooses `endpoint_url`).
    pub method: String,
    /// Push: the receiver's endpoint. `https://`, or `http://` to a loopback host; a host that
    /// is or resolves to a private, link-local or cloud-metadata address is refused (also when
    /// connecting).
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub endpoint_url: Option<String>,
    /// Sent verbatim as the `Authorization` header of every push; never shown again.
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub authorization_header: Option<String>,
}

impl DeliveryRequest {
    /// Poll delivery, the default when a receiver gives none.
    pub fn poll_default() -> Self {
        Self {
            method: POLL.to_owned(),
            endpoint_url: None,
            authorization_header: None,
        }
    }
}

/// A stream configuration as a receiver sends it: on create, only `events_requested`,
/// `delivery` and `description` count; on update and replace `stream_id` is required, and a
/// transmitter-supplied property sent back must equal its current value.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct StreamRequest {
    /// The stream (update and replace).
    #[serde(default)]
    pub stream_id: Option<String>,
    /// Event type URIs wanted (at most 64, each at most 256 characters).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>, max_items = 64)]
    pub events_requested: Option<Option<Vec<String>>>,
    /// How to deliver.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DeliveryRequest>)]
    pub delivery: Option<Option<DeliveryRequest>>,
    /// Free text (at most 1000 characters).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub description: Option<Option<String>>,
    /// This transmitter's extension (default false): SETs also carry the subject inside the
    /// event, the pre-1.0 (SSE) form some receivers still read.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>)]
    pub subject_in_event: Option<Option<bool>>,
    /// Transmitter-supplied: must equal the current value when sent.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub iss: Option<Value>,
    /// Transmitter-supplied: must equal the current value when sent.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub aud: Option<Value>,
    /// Transmitter-supplied: must equal the current value when sent.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub events_supported: Option<Value>,
    /// Transmitter-supplied: must equal the current value when sent.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub events_delivered: Option<Value>,
    /// Transmitter-supplied: must equal the current value when sent.
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub min_verification_interval: Option<Value>,
}

/// A status change a receiver asks for.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct StatusRequest {
    /// The stream.
    pub stream_id: String,
    /// `enabled`, `paused` or `disabled`.
    pub status: String,
    /// Why (at most 1000 characters); kept and shown with the status.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

/// The SSF verification event type.
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";

/// SETs a poll returns when `maxEvents` is not given.
pub const DEFAULT_POLL_EVENTS: usize = 16;
/// The most SETs one poll returns (and acknowledgements it takes).
pub const MAX_POLL_EVENTS: usize = 256;
/// The claim owner of SETs handed to a poller (their claim is the acknowledgement timeout).
const POLL_OWNER: &str = "poll";

/// An RFC 8936 poll request.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollRequest {
    /// Most SETs to return (default 16, at most 256); 0 returns none (acknowledge only).
    #[serde(default)]
    #[schema(maximum = 256)]
    pub max_events: Option<usize>,
    /// Answer at once even when there is nothing (default false: wait up to
    /// `[streams] poll_max_wait_secs` for a SET).
    #[serde(default)]
    pub return_immediately: Option<bool>,
    /// `jti`s of SETs received: they are not offered again.
    #[serde(default)]
    #[schema(max_items = 256)]
    pub ack: Vec<String>,
    /// SETs the receiver could not process: `jti` → `{err, description}`; recorded as failed.
    #[serde(default)]
    pub set_errs: std::collections::BTreeMap<String, SetError>,
}

/// A receiver's error about one SET (RFC 8936 §2.4).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SetError {
    /// The error code (e.g. `invalid_key`).
    #[schema(max_length = 256)]
    pub err: String,
    /// Human-readable text.
    #[serde(default)]
    pub description: Option<String>,
}

/// An RFC 8936 poll response.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    /// `jti` → compact SET; `{}` when there is none.
    #[schema(value_type = Object)]
    pub sets: serde_json::Map<String, Value>,
    /// More SETs are waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub more_available: Option<bool>,
}

/// The SSF stream-updated event type.
pub const STREAM_UPDATED: &str =
    "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";

/// A receiver's request for a verification event.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct VerifyRequest {
    /// The stream.
    pub stream_id: String,
    /// Echoed in the verification event (at most 1000 characters).
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub state: Option<String>,
}

/// A subject a receiver adds to or removes from its stream (SSF §8.1.3).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SubjectRequest {
    /// The stream.
    pub stream_id: String,
    /// An RFC 9493 identifier (e.g. `{"format": "email", "email": "…"}`, `iss_sub`, `opaque`,
    /// `phone_number`, `account`, `uri`, `did`), or a complex subject with `user` and/or
    /// `device`.
    #[schema(value_type = Object)]
    pub subject: Value,
    /// Whether the receiver verified the subject (add only; default true). Kept for the record.
    #[serde(default)]
    pub verified: Option<bool>,
}

/// Stream settings from the configuration.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Seconds between two verification requests of a stream.
    pub min_verification_interval: u64,
    /// Most streams one API client may own.
    pub max_per_client: usize,
    /// Private networks receivers may be on (an operator's explicit choice).
    pub allow_private: AllowPrivate,
    /// Which subjects a new stream carries.
    pub default_subjects: DefaultSubjects,
    /// Seconds after which a polled SET that was not acknowledged is offered again.
    pub poll_ack_timeout_secs: u64,
    /// Longest wait of a long poll, seconds.
    pub poll_max_wait_secs: u64,
}

/// Stream management.
#[derive(Clone)]
pub struct Streams {
    store: Store,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn Ids>,
    keys: KeyManager,
    issuer: Arc<str>,
    settings: Arc<StreamSettings>,
    /// Per stream: wakes its delivery worker when a SET is queued for it.
    wakers: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
    /// Wakes the stream workers' supervisor when a stream is created, changed or deleted.
    changed: Arc<Notify>,
    /// The streams as routing last loaded them.
    routes: Arc<Mutex<Option<Arc<Routes>>>>,
    metrics: crate::metrics::Metrics,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams").finish_non_exhaustive()
    }
}

/// A stream id is 32 lowercase hex digits; anything else names no stream (and never reaches a
/// query).
pub fn valid_stream_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Streams {
    /// Stream management over `store`, issuing as `issuer`.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn Ids>,
        keys: KeyManager,
        issuer: Arc<str>,
        settings: StreamSettings,
        metrics: crate::metrics::Metrics,
    ) -> Self {
        Self {
            store,
            clock,
            ids,
            keys,
            issuer,
            settings: Arc::new(settings),
            wakers: Arc::default(),
            changed: Arc::new(Notify::new()),
            routes: Arc::default(),
            metrics,
        }
    }

    /// Which subjects new streams carry.
    pub fn default_subjects(&self) -> DefaultSubjects {
        self.settings.default_subjects
    }

    /// The notifier that wakes stream `id`'s delivery worker.
    pub fn waker(&self, id: &str) -> Arc<Notify> {
        let mut w = self
            .wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        w.entry(id.to_owned()).or_default().clone()
    }

    /// Notified whenever a stream is created, changed or deleted (here; other replicas see it
    /// on their next poll).
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// The push target of every enabled push stream: what delivery workers run for. A paused
    /// stream has none (its SETs wait, in order), nor has a disabled one.
    pub async fn push_targets(&self) -> Result<Vec<crate::delivery::PushTarget>, StreamError> {
        let mut out = Vec::new();
        for row in self.store.all_streams().await? {
            let stream = Stream::from_row(row)?;
            if stream.status != StreamStatus::Enabled || stream.record.delivery.method != PUSH {
                continue;
            }
            if let Some(endpoint) = stream.record.delivery.endpoint_url.clone() {
                out.push(crate::delivery::PushTarget {
                    stream_id: stream.id.clone(),
                    endpoint,
                    authorization: stream
                        .record
                        .delivery
                        .authorization_header
                        .clone()
                        .map(secrecy::SecretString::from),
                });
            }
        }
        Ok(out)
    }

    /// A verification event for `caller`'s stream (SSF §8.1.4.2): queued for delivery, the
    /// receiver's `state` echoed. At most one per `min_verification_interval`; a disabled
    /// stream drops it (it transmits nothing), a paused one holds it.
    pub async fn verify(&self, caller: &Caller, req: VerifyRequest) -> Result<(), StreamError> {
        let mut stream = self.get(caller, &req.stream_id).await?;
        if let Some(state) = &req.state
            && (state.chars().count() > MAX_TEXT || state.chars().any(char::is_control))
        {
            return Err(invalid(
                "state",
                format!("at most {MAX_TEXT} characters, no control characters"),
            ));
        }
        let now = self.clock.now();
        let now_ms = now.timestamp_millis();
        let interval_ms = i64::try_from(self.settings.min_verification_interval)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        if let Some(last) = stream.record.last_verification_at
            && now_ms < last.saturating_add(interval_ms)
        {
            let wait_ms = last.saturating_add(interval_ms) - now_ms;
            return Err(StreamError::TooSoon(
                u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1),
            ));
        }
        stream.record.last_verification_at = Some(now_ms);
        if stream.status == StreamStatus::Disabled {
            return self.save(&stream).await;
        }
        let mut event = serde_json::Map::new();
        if let Some(state) = req.state {
            event.insert("state".into(), Value::String(state));
        }
        let row = self.stream_event(&stream, VERIFICATION, "verification", event, &caller.name)?;
        self.store.accept_signals(&[row], &[], None).await?;
        self.save(&stream).await?;
        self.waker(&stream.id).notify_one();
        Ok(())
    }

    /// Adds a subject to `caller`'s stream (SSF §8.1.3.2): with `default_subjects` NONE it is
    /// delivered from now on; with ALL a removed subject is delivered again.
    pub async fn add_subject(
        &self,
        caller: &Caller,
        req: SubjectRequest,
    ) -> Result<(), StreamError> {
        self.put_subject(caller, req, "added").await
    }

    /// Removes a subject from `caller`'s stream (SSF §8.1.3.3): no signal accepted after this
    /// answers is delivered for it.
    pub async fn remove_subject(
        &self,
        caller: &Caller,
        req: SubjectRequest,
    ) -> Result<(), StreamError> {
        self.put_subject(caller, req, "removed").await
    }

    async fn put_subject(
        &self,
        caller: &Caller,
        req: SubjectRequest,
        state: &str,
    ) -> Result<(), StreamError> {
        let stream = self.get(caller, &req.stream_id).await?;
        let subject = crate::set::Subject::parse(&req.subject, "subject")
            .map_err(|e| invalid(&e.field, e.message))?;
        self.store
            .put_stream_subject(
                &stream.id,
                &subject.key(),
                &subject.to_json().to_string(),
                state,
                self.clock.now().timestamp_millis(),
            )
            .await?;
        Ok(())
    }

    /// Whether stream `id` carries events about `subject` (see [`super::routing::Route`]);
    /// false for a stream that is disabled or does not exist.
    pub async fn delivers_to(
        &self,
        id: &str,
        subject: &crate::set::Subject,
    ) -> Result<bool, StreamError> {
        Ok(self
            .routes()
            .await?
            .get(id)
            .is_some_and(|r| r.delivers_to(subject)))
    }

    /// Every stream that takes events (enabled or paused), with its subjects: from memory while
    /// the store's stream generation has not moved, else loaded again. The generation is read
    /// before the streams, so a copy is never tagged newer than what it holds.
    pub async fn routes(&self) -> Result<Arc<Routes>, StreamError> {
        let generation = self.store.stream_generation().await?;
        if let Some(r) = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|r| r.generation == generation)
        {
            return Ok(r.clone());
        }
        let mut streams = Vec::new();
        for row in self.store.all_streams().await? {
            let stream = Stream::from_row(row)?;
            if stream.status == StreamStatus::Disabled {
                continue;
            }
            let mut subjects = Vec::new();
            for (json, state) in self.store.stream_subjects(&stream.id).await? {
                let value: Value = serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("stream subject: {e}")))?;
                let listed = crate::set::Subject::parse(&value, "subject")
                    .map_err(|e| StoreError::Corrupt(format!("stream subject: {}", e.message)))?;
                subjects.push((listed, state == "added"));
            }
            let events = stream.events_delivered();
            streams.push(Route::new(
                stream.id,
                stream.record.aud,
                stream.record.subject_in_event,
                events,
                stream.record.default_subjects,
                subjects,
            ));
        }
        let routes = Arc::new(Routes {
            generation,
            streams,
        });
        *self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(routes.clone());
        Ok(routes)
    }

    /// A SET about the stream itself (verification, stream-updated): `sub_id` is the stream,
    /// `aud` the stream's, one event; queued in the stream's own FIFO, so it never waits behind
    /// a subject's backlog and two of them keep their order.
    fn stream_event(
        &self,
        stream: &Stream,
        event_type: &str,
        short_name: &str,
        event: serde_json::Map<String, Value>,
        client: &str,
    ) -> Result<NewOutbox, StreamError> {
        let now = self.clock.now();
        let jti = self.ids.set_jti();
        let sub_id = serde_json::json!({"format": "opaque", "id": stream.id});
        let claims = serde_json::json!({
            "iss": self.issuer.as_ref(),
            "aud": stream.record.aud,
            "iat": now.timestamp(),
            "jti": jti,
            "sub_id": sub_id,
            "events": {event_type: Value::Object(event)},
        });
        let ring = self.keys.ring();
        let set_jwt = ring.sign(crate::set::SET_TYP, &claims)?;
        Ok(NewOutbox {
            jti,
            stream_id: stream.id.clone(),
            subject_key: format!("stream:{}", stream.id),
            subject: sub_id.to_string(),
            event_type: short_name.into(),
            set_jwt,
            client: client.to_owned(),
            kid: ring.active_kid().to_owned(),
            now_ms: now.timestamp_millis(),
        })
    }

    /// The receiver's view of `stream`.
    pub fn view(&self, stream: &Stream) -> StreamConfig {
        StreamConfig {
            stream_id: stream.id.clone(),
            iss: self.issuer.to_string(),
            aud: stream.record.aud.clone(),
            events_supported: EVENTS_SUPPORTED.iter().map(|e| (*e).to_owned()).collect(),
            events_requested: stream.record.events_requested.clone(),
            events_delivered: stream.events_delivered(),
            delivery: DeliveryView {
                method: stream.record.delivery.method.clone(),
                endpoint_url: match &stream.record.delivery.endpoint_url {
                    Some(u) => u.clone(),
                    None => self.poll_url(&stream.id),
                },
            },
            min_verification_interval: self.settings.min_verification_interval,
            description: stream.record.description.clone(),
            subject_in_event: stream.record.subject_in_event,
        }
    }

    /// The status view of `stream`.
    pub fn status_view(stream: &Stream) -> StatusView {
        StatusView {
            stream_id: stream.id.clone(),
            status: stream.status,
            reason: stream.record.reason.clone(),
        }
    }

    /// The `aud` of a client's streams.
    fn audience(client_id: &str) -> String {
        format!("urn:ssf-transmitter:client:{client_id}")
    }

    /// Creates a stream for `caller` (enabled).
    pub async fn create(&self, caller: &Caller, req: StreamRequest) -> Result<Stream, StreamError> {
        let events_requested = events_requested(req.events_requested.flatten())?;
        // SSF §8.1.1.1: without `delivery` the stream is polled.
        let delivery = self.delivery(
            req.delivery
                .flatten()
                .unwrap_or_else(DeliveryRequest::poll_default),
            None,
        )?;
        let description = description(req.description.flatten())?;
        if self.store.streams_of(&caller.id).await?.len() >= self.settings.max_per_client {
            return Err(StreamError::Conflict(format!(
                "this client already has {} streams, the most it may have ([streams] \
                 max_per_client); delete one first",
                self.settings.max_per_client
            )));
        }
        let now = self.clock.now().timestamp_millis();
        let stream = Stream {
            id: self.ids.jti(),
            client_id: caller.id.clone(),
            status: StreamStatus::Enabled,
            created_at: now,
            record: Record {
                aud: Self::audience(&caller.id),
                events_requested,
                delivery,
                description,
                reason: None,
                last_verification_at: None,
                default_subjects: self.settings.default_subjects,
                subject_in_event: req.subject_in_event.flatten().unwrap_or(false),
            },
        };
        self.store.insert_stream(&stream.to_row(now)?).await?;
        self.changed.notify_one();
        Ok(stream)
    }

    /// `caller`'s stream `id`.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Stream, StreamError> {
        if !valid_stream_id(id) {
            return Err(StreamError::NotFound);
        }
        match self.store.stream(id).await? {
            Some(row) if row.client_id == caller.id => Stream::from_row(row),
            _ => Err(StreamError::NotFound),
        }
    }

    /// `caller`'s streams, oldest first.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Stream>, StreamError> {
        self.store
            .streams_of(&caller.id)
            .await?
            .into_iter()
            .map(Stream::from_row)
            .collect()
    }

    /// Updates the receiver-supplied properties present in `req` (SSF §8.1.1.3, PATCH).
    pub async fn update(&self, caller: &Caller, req: StreamRequest) -> Result<Stream, StreamError> {
        let mut stream = self.target(caller, &req).await?;
        self.check_transmitter_supplied(&stream, &req)?;
        if let Some(e) = req.events_requested {
            stream.record.events_requested = events_requested(e)?;
        }
        if let Some(d) = req.delivery {
            let d = d.ok_or_else(|| invalid("delivery", "cannot be removed"))?;
            stream.record.delivery = self.delivery(d, Some(&stream.id))?;
        }
        if let Some(d) = req.description {
            stream.record.description = description(d)?;
        }
        if let Some(s) = req.subject_in_event {
            stream.record.subject_in_event = s.unwrap_or(false);
        }
        self.save(&stream).await?;
        Ok(stream)
    }

    /// Replaces every receiver-supplied property (SSF §8.1.1.4, PUT): one left out is removed.
    pub async fn replace(
        &self,
        caller: &Caller,
        req: StreamRequest,
    ) -> Result<Stream, StreamError> {
        let mut stream = self.target(caller, &req).await?;
        self.check_transmitter_supplied(&stream, &req)?;
        // Left out, delivery falls back to the default: poll (SSF §8.1.1.1).
        let delivery = req
            .delivery
            .flatten()
            .unwrap_or_else(DeliveryRequest::poll_default);
        stream.record.events_requested = events_requested(req.events_requested.flatten())?;
        stream.record.delivery = self.delivery(delivery, Some(&stream.id))?;
        stream.record.description = description(req.description.flatten())?;
        stream.record.subject_in_event = req.subject_in_event.flatten().unwrap_or(false);
        self.save(&stream).await?;
        Ok(stream)
    }

    /// Deletes `caller`'s stream `id`.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<(), StreamError> {
        if !valid_stream_id(id) || !self.store.delete_stream(id, &caller.id).await? {
            return Err(StreamError::NotFound);
        }
        self.changed.notify_one();
        self.store.drop_pending(id).await?;
        self.store.drop_stream_subjects(id).await?;
        Ok(())
    }

    /// Sets `caller`'s stream's status (SSF §8.1.2.2).
    pub async fn set_status(
        &self,
        caller: &Caller,
        req: StatusRequest,
    ) -> Result<Stream, StreamError> {
        let mut stream = self.get(caller, &req.stream_id).await?;
        let status = StreamStatus::parse(&req.status)
            .ok_or_else(|| invalid("status", "must be enabled, paused or disabled"))?;
        stream.record.reason = match req.reason {
            Some(r) => Some(text("reason", r)?),
            None => None,
        };
        let was = stream.status;
        stream.status = status;
        self.save(&stream).await?;
        if status == StreamStatus::Disabled {
            // Disabled transmits nothing and holds nothing: what was waiting goes too.
            self.store.drop_pending(&stream.id).await?;
        } else if status != was {
            // SSF §8.1.5: the receiver learns of the change (a paused stream holds the event
            // and delivers it, in order, before the one that re-enables it).
            let mut event = serde_json::Map::new();
            event.insert("status".into(), Value::String(status.as_str().to_owned()));
            if let Some(r) = &stream.record.reason {
                event.insert("reason".into(), Value::String(r.clone()));
            }
            let row = self.stream_event(
                &stream,
                STREAM_UPDATED,
                "stream-updated",
                event,
                &caller.name,
            )?;
            self.store.accept_signals(&[row], &[], None).await?;
            self.waker(&stream.id).notify_one();
        }
        Ok(stream)
    }

    async fn target(&self, caller: &Caller, req: &StreamRequest) -> Result<Stream, StreamError> {
        let id = req
            .stream_id
            .as_deref()
            .ok_or_else(|| invalid("stream_id", "is required"))?;
        self.get(caller, id).await
    }

    async fn save(&self, stream: &Stream) -> Result<(), StreamError> {
        let now = self.clock.now().timestamp_millis();
        if self.store.save_stream(&stream.to_row(now)?).await? {
            self.changed.notify_one();
            Ok(())
        } else {
            // Deleted meanwhile.
            Err(StreamError::NotFound)
        }
    }

    /// SSF §8.1.1.3: a transmitter-supplied property in an update must keep its value.
    fn check_transmitter_supplied(
        &self,
        stream: &Stream,
        req: &StreamRequest,
    ) -> Result<(), StreamError> {
        let view = serde_json::to_value(self.view(stream))
            .map_err(|e| StoreError::Corrupt(format!("stream view: {e}")))?;
        let sent = [
            ("iss", &req.iss),
            ("aud", &req.aud),
            ("events_supported", &req.events_supported),
            ("events_delivered", &req.events_delivered),
            ("min_verification_interval", &req.min_verification_interval),
        ];
        for (field, value) in sent {
            if let Some(v) = value
                && Some(v) != view.get(field)
            {
                return Err(invalid(
                    field,
                    "is set by the transmitter and cannot be changed; leave it out or send its \
                     current value",
                ));
            }
        }
        Ok(())
    }

    /// Validates a receiver's delivery object. Poll's `endpoint_url` is the transmitter's; a
    /// receiver may send it back (`stream_id` known) but not choose it.
    fn delivery(
        &self,
        d: DeliveryRequest,
        stream_id: Option<&str>,
    ) -> Result<Delivery, StreamError> {
        match d.method.as_str() {
            PUSH | LEGACY_PUSH => {}
            POLL => {
                if let Some(url) = d.endpoint_url {
                    let ours = stream_id.map(|id| self.poll_url(id));
                    if ours.as_deref() != Some(url.as_str()) {
                        return Err(invalid(
                            "delivery.endpoint_url",
                            "is chosen by the transmitter for poll delivery; leave it out",
                        ));
                    }
                }
                if d.authorization_header.is_some() {
                    return Err(invalid(
                        "delivery.authorization_header",
                        "is for push delivery; a poll request carries the receiver's own token",
                    ));
                }
                return Ok(Delivery {
                    method: POLL.to_owned(),
                    endpoint_url: None,
                    authorization_header: None,
                });
            }
            _ => {
                return Err(invalid(
                    "delivery.method",
                    "must be urn:ietf:rfc:8935 (push) or urn:ietf:rfc:8936 (poll)",
                ));
            }
        }
        let url = d
            .endpoint_url
            .ok_or_else(|| invalid("delivery.endpoint_url", "is required for push delivery"))?;
        let url = ReceiverUrl::parse_with(&url, &self.settings.allow_private)
            .map_err(|e| invalid("delivery.endpoint_url", e.to_string()))?;
        let authorization_header = match d.authorization_header {
            Some(h) => Some(authorization_header(h)?),
            None => None,
        };
        Ok(Delivery {
            method: PUSH.to_owned(),
            endpoint_url: Some(url.as_str().to_owned()),
            authorization_header,
        })
    }

    /// A poll stream's endpoint, on the issuer's origin.
    pub fn poll_url(&self, stream_id: &str) -> String {
        format!("{}/ssf/poll/{stream_id}", issuer_origin(&self.issuer))
    }

    /// Poll delivery (RFC 8936) for `caller`'s stream `id`: acknowledges `ack`, records
    /// `setErrs` as failed, then returns up to `maxEvents` SETs (the oldest of each subject),
    /// waiting up to the long-poll limit for one unless `returnImmediately`. A SET returned and
    /// not acknowledged is offered again after `[streams] poll_ack_timeout_secs`. A paused or
    /// disabled stream returns none.
    pub async fn poll(
        &self,
        caller: &Caller,
        id: &str,
        req: PollRequest,
    ) -> Result<PollResponse, StreamError> {
        let stream = self.get(caller, id).await?;
        if stream.record.delivery.method != POLL {
            return Err(invalid(
                "stream_id",
                "this stream is delivered by push, not poll",
            ));
        }
        let now_ms = self.clock.now().timestamp_millis();
        // Checked before anything is written: a bad request changes nothing.
        if req.ack.len() > MAX_POLL_EVENTS {
            return Err(invalid("ack", format!("at most {MAX_POLL_EVENTS} jtis")));
        }
        if req.set_errs.len() > MAX_POLL_EVENTS {
            return Err(invalid(
                "setErrs",
                format!("at most {MAX_POLL_EVENTS} entries"),
            ));
        }
        for e in req.set_errs.values() {
            if e.err.is_empty()
                || e.err.len() > MAX_EVENT_URI
                || !e.err.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(invalid(
                    "setErrs.err",
                    format!(
                        "must be an error code of 1 to {MAX_EVENT_URI} visible ASCII characters"
                    ),
                ));
            }
        }
        for jti in &req.ack {
            if let Some(created) = self.store.ack_polled(&stream.id, jti, now_ms).await? {
                self.metrics
                    .set_delivered(&stream.id, now_ms.saturating_sub(created) as f64 / 1000.0);
            }
        }
        for (jti, e) in &req.set_errs {
            let text = format!(
                "the receiver reported {}{}",
                e.err,
                e.description
                    .as_deref()
                    .map(|d| format!(": {}", d.chars().take(MAX_TEXT).collect::<String>()))
                    .unwrap_or_default()
            );
            if self
                .store
                .fail_polled(&stream.id, jti, &e.err, &text, now_ms)
                .await?
            {
                self.metrics.set_failed(&stream.id);
            }
        }
        let max = req
            .max_events
            .unwrap_or(DEFAULT_POLL_EVENTS)
            .min(MAX_POLL_EVENTS);
        if max == 0 || stream.status != StreamStatus::Enabled {
            return Ok(PollResponse::default());
        }
        let limit = u32::try_from(max).unwrap_or(u32::MAX);
        let lease_ms = i64::try_from(self.settings.poll_ack_timeout_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        let deadline = tokio::time::Instant::now()
            + std::time::Duration::from_secs(self.settings.poll_max_wait_secs);
        let waker = self.waker(&stream.id);
        loop {
            // Registered before looking, so a SET queued meanwhile wakes this poll.
            let notified = waker.notified();
            let now_ms = self.clock.now().timestamp_millis();
            let rows = self
                .store
                .claim_due(&stream.id, POLL_OWNER, now_ms, lease_ms, limit)
                .await?;
            if !rows.is_empty() || req.return_immediately.unwrap_or(false) {
                // More: another subject's head is due now (those just handed out are not).
                let more = rows.len() >= max
                    && self
                        .store
                        .next_due_at(&stream.id)
                        .await?
                        .is_some_and(|due| due <= now_ms);
                let mut sets = serde_json::Map::new();
                for r in rows {
                    sets.insert(r.jti, Value::String(r.set_jwt));
                }
                return Ok(PollResponse {
                    sets,
                    more_available: more.then_some(true),
                });
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(PollResponse::default());
            }
        }
    }
}

fn events_requested(e: Option<Vec<String>>) -> Result<Vec<String>, StreamError> {
    let e = e.unwrap_or_default();
    if e.len() > MAX_EVENTS_REQUESTED {
        return Err(invalid(
            "events_requested",
            format!("at most {MAX_EVENTS_REQUESTED} event types"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(e.len());
    for uri in e {
        if uri.is_empty() || uri.len() > MAX_EVENT_URI || uri.chars().any(char::is_control) {
            return Err(invalid(
                "events_requested",
                format!("each event type is a URI of 1 to {MAX_EVENT_URI} characters"),
            ));
        }
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

fn description(d: Option<String>) -> Result<Option<String>, StreamError> {
    d.map(|d| text("description", d)).transpose()
}

fn text(field: &str, s: String) -> Result<String, StreamError> {
    if s.chars().count() > MAX_TEXT {
        return Err(invalid(field, format!("at most {MAX_TEXT} characters")));
    }
    Ok(s)
}

/// The header is sent as given, so it must be a valid header value: visible ASCII and spaces.
fn authorization_header(h: String) -> Result<String, StreamError> {
    if h.is_empty()
        || h.len() > MAX_AUTHORIZATION_HEADER
        || !h.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
    {
        return Err(invalid(
            "delivery.authorization_header",
            format!(
                "must be 1 to {MAX_AUTHORIZATION_HEADER} visible ASCII characters or spaces (it \
                 is sent verbatim as the Authorization header)"
            ),
        ));
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_hex_of_32() {
        assert!(valid_stream_id("0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "0123456789ABCDEF0123456789ABCDEF",
            "../0123456789abcdef0123456789abc",
            "0123456789abcdef0123456789abcde%2F",
            "0123456789abcdef0123456789abcdef0",
        ] {
            assert!(!valid_stream_id(bad), "{bad}");
        }
    }

    #[test]
    fn authorization_headers_are_header_values() {
        assert!(authorization_header("Bearer abc.DEF-123_~+/=".into()).is_ok());
        for bad in ["", "Bearer a\r\nX-Evil: 1", "Bearer \u{e9}", "a\tb"] {
            assert!(authorization_header(bad.into()).is_err(), "{bad:?}");
        }
        assert!(authorization_header("x".repeat(MAX_AUTHORIZATION_HEADER + 1)).is_err());
    }

    #[test]
    fn requested_events_are_bounded_and_deduplicated() {
        let e = events_requested(Some(vec![
            EVENTS_SUPPORTED[0].into(),
            EVENTS_SUPPORTED[0].into(),
            "urn:example:unknown".into(),
        ]))
        .expect("valid");
        assert_eq!(e.len(), 2);
        assert!(events_requested(Some(vec!["x".repeat(MAX_EVENT_URI + 1)])).is_err());
        assert!(events_requested(Some(vec![String::new()])).is_err());
        assert!(events_requested(Some(vec!["a".into(); MAX_EVENTS_REQUESTED + 1])).is_err());
    }
}
