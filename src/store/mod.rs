//! Persistence behind one interface: SQLite (WAL, the embedded default) or PostgreSQL, two
//! [`Backend`] variants with the same methods, so callers never see SQL or a transaction.

mod oauth;
mod outbox;
mod postgres;
mod rows;
mod sqlite;
mod streams;
mod work;

pub use oauth::{AccessTokenRow, ClientKeysRow, NewAccessToken};
pub use outbox::{
    Attempt, DeliveryStatus, IdempotencyRecord, NewOutbox, OutboxFilter, OutboxRow, Pruned,
    StateUpdate, SubjectState,
};
pub use streams::StreamRow;
pub use work::{ApprovalRow, ContainmentFilter, ContainmentRow, JobItem, JobProgress, JobRow};

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::DatabaseLocation;

/// A store failure. `Conflict` is something the caller caused; everything else is internal.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The store location is unusable.
    #[error("{0}")]
    Setup(String),
    /// Another process writes to this store.
    #[error("{0}")]
    Locked(String),
}

/// Proof that this process is the only writer of its store: an exclusive advisory lock
/// (`flock`) on `<database>.lock` beside a SQLite file, held until this value is dropped (or the
/// process ends, however it ends). Two `serve` processes on one SQLite file would both push the
/// same SETs and overwrite each other's outcomes; the second one refuses to start instead.
/// PostgreSQL needs no such lock (its lock holds nothing): several replicas may share a server.
#[derive(Debug)]
pub struct WriterLock {
    _file: Option<std::fs::File>,
    path: Option<PathBuf>,
}

impl WriterLock {
    /// The lock file, when there is one (an in-memory database needs none).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Takes the writer lock of `location`, or says which database another process holds.
    pub fn acquire(location: &DatabaseLocation) -> Result<Self, StoreError> {
        match location {
            DatabaseLocation::Sqlite { path: Some(db), .. } => Self::lock_file(db),
            DatabaseLocation::Sqlite { path: None, .. } | DatabaseLocation::Postgres { .. } => {
                Ok(Self {
                    _file: None,
                    path: None,
                })
            }
        }
    }

    fn lock_file(db: &Path) -> Result<Self, StoreError> {
        use std::io::{Read as _, Seek as _, Write as _};
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Setup(format!(
                    "cannot create the database directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| {
                StoreError::Setup(format!("cannot open the lock file {}: {e}", path.display()))
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.chars().all(|c| c.is_ascii_digit()) && !holder.is_empty() {
                    format!("another process (pid {holder})")
                } else {
                    "another process".to_owned()
                };
                return Err(StoreError::Locked(format!(
                    "the database {} is in use: {who} holds its writer lock {}. Only one \
                     `serve` may run on a SQLite database (two would push the same SETs twice); \
                     stop the other one, or give this one its own database_url",
                    db.display(),
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::Setup(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        // Name the holder for whoever is refused next. Best effort: the lock is what counts.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(std::process::id().to_string().as_bytes()));
        Ok(Self {
            _file: Some(file),
            path: Some(path),
        })
    }
}

/// An API client as stored (never with its token). Scopes are kept as the names they were
/// granted under; `auth` gives them meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiClient {
    /// Stable id (UUID).
    pub id: String,
    /// Unique name among active clients.
    pub name: String,
    /// Granted scope names.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Revocation time, when revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A client to create.
#[derive(Debug, Clone)]
pub struct NewClient<'a> {
    /// Id (UUID).
    pub id: &'a str,
    /// Name.
    pub name: &'a str,
    /// SHA-256 digest of the bearer token.
    pub token_hash: &'a [u8],
    /// Scope names.
    pub scopes: &'a [&'a str],
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// One audit row to append.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    /// When.
    pub at: DateTime<Utc>,
    /// Who: the API client's name (`admin-token`, `cli` for the service's own).
    pub actor: &'a str,
    /// The API client's stable id (`admin-token`, `cli` for the service's own).
    pub actor_id: &'a str,
    /// What (`key.activate`, `client.add`, …).
    pub action: &'a str,
    /// On what.
    pub target: Option<&'a str>,
    /// `ok` or `error`.
    pub outcome: &'a str,
    /// Free text (never a secret).
    pub detail: Option<&'a str>,
}

/// Filters of the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Target contains this.
    pub target_contains: Option<String>,
    /// Exact action.
    pub action: Option<String>,
    /// Exact actor (name).
    pub actor: Option<String>,
    /// Exact actor id.
    pub actor_id: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// At most.
    pub limit: u32,
}

/// An audit row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (name).
    pub actor: String,
    /// Who (stable client id; `None` on rows written before ids were recorded).
    pub actor_id: Option<String>,
    /// What.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// `ok` or `error`.
    pub outcome: String,
    /// Free text.
    pub detail: Option<String>,
}

/// An intake in progress (see [`Store::begin_intake`]); dropping it without `commit` writes
/// nothing.
pub struct Intake(IntakeInner);

enum IntakeInner {
    Sqlite(sqlite::SqliteStore),
    Postgres(Box<postgres::PgIntake>),
}

impl Intake {
    /// The last value of a subject and the SET that carried it, as this intake sees it.
    pub async fn subject_state(
        &mut self,
        stream_id: &str,
        kind: &str,
        subject_key: &str,
    ) -> Result<Option<SubjectState>, StoreError> {
        match &mut self.0 {
            IntakeInner::Sqlite(s) => s.subject_state(stream_id, kind, subject_key).await,
            IntakeInner::Postgres(t) => t.subject_state(stream_id, kind, subject_key).await,
        }
    }

    /// A SET's delivery status, as this intake sees it.
    pub async fn delivery_status(
        &mut self,
        jti: &str,
    ) -> Result<Option<DeliveryStatus>, StoreError> {
        match &mut self.0 {
            IntakeInner::Sqlite(s) => s.delivery_status(jti).await,
            IntakeInner::Postgres(t) => t.delivery_status(jti).await,
        }
    }

    /// Stores the SETs, the subjects' new state and the idempotency record in one transaction.
    /// A key already used answers `Conflict` and stores nothing.
    pub async fn commit(
        self,
        rows: Vec<NewOutbox>,
        states: Vec<StateUpdate>,
        idempotency: Option<IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        match self.0 {
            IntakeInner::Sqlite(s) => s.accept_owned(rows, states, idempotency).await,
            IntakeInner::Postgres(t) => t.commit(&rows, &states, idempotency.as_ref()).await,
        }
    }
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// The store handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match &$self.backend {
            Backend::Sqlite($s) => $e,
            Backend::Postgres($s) => $e,
        }
    };
}

impl Store {
    /// Stores a new stream.
    pub async fn insert_stream(&self, s: &StreamRow) -> Result<(), StoreError> {
        dispatch!(self, b => b.insert_stream(s).await)?;
        self.bump_stream_generation().await
    }

    /// A stream by id, whoever owns it.
    pub async fn stream(&self, id: &str) -> Result<Option<StreamRow>, StoreError> {
        dispatch!(self, b => b.stream(id).await)
    }

    /// The streams `client_id` owns, oldest first.
    pub async fn streams_of(&self, client_id: &str) -> Result<Vec<StreamRow>, StoreError> {
        dispatch!(self, b => b.streams_of(client_id).await)
    }

    /// Every stream, oldest first.
    pub async fn all_streams(&self) -> Result<Vec<StreamRow>, StoreError> {
        dispatch!(self, b => b.all_streams().await)
    }

    /// Writes a stream's status and record back; false when its owner has no such stream.
    pub async fn save_stream(&self, s: &StreamRow) -> Result<bool, StoreError> {
        let saved = dispatch!(self, b => b.save_stream(s).await)?;
        self.bump_stream_generation().await?;
        Ok(saved)
    }

    /// Drops a stream's undelivered SETs (deleted or disabled: it transmits nothing and holds
    /// nothing); returns how many.
    pub async fn drop_pending(&self, stream_id: &str) -> Result<u64, StoreError> {
        dispatch!(self, b => b.drop_pending(stream_id).await)
    }

    /// Records a subject added to (`added`) or removed from (`removed`) a stream.
    pub async fn put_stream_subject(
        &self,
        stream_id: &str,
        subject_key: &str,
        subject: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, b => b.put_stream_subject(stream_id, subject_key, subject, state, now_ms).await)?;
        self.bump_stream_generation().await
    }

    /// A stream's added and removed subjects: (subject JSON, state).
    pub async fn stream_subjects(
        &self,
        stream_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        dispatch!(self, b => b.stream_subjects(stream_id).await)
    }

    /// A poller acknowledged a SET of its stream: delivered; its acceptance time (ms). `None`
    /// when the stream has no such pending SET (another stream's `jti` is never touched).
    pub async fn ack_polled(
        &self,
        stream_id: &str,
        jti: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        dispatch!(self, b => b.ack_polled(stream_id, jti, now_ms).await)
    }

    /// A poller reported an error for a SET of its stream: failed, with its `err` and our words.
    pub async fn fail_polled(
        &self,
        stream_id: &str,
        jti: &str,
        err: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, b => b.fail_polled(stream_id, jti, err, error, now_ms).await)
    }

    /// Forgets a (deleted) stream's subjects.
    pub async fn drop_stream_subjects(&self, stream_id: &str) -> Result<(), StoreError> {
        dispatch!(self, b => b.drop_stream_subjects(stream_id).await)?;
        self.bump_stream_generation().await
    }

    /// Deletes `client_id`'s stream; false when it has no such stream.
    pub async fn delete_stream(&self, id: &str, client_id: &str) -> Result<bool, StoreError> {
        let deleted = dispatch!(self, b => b.delete_stream(id, client_id).await)?;
        self.bump_stream_generation().await?;
        Ok(deleted)
    }

    /// The streams' generation: raised after every change to a stream or its subjects (here or
    /// on another replica), so a copy of the streams tagged with it is current while it stays.
    pub async fn stream_generation(&self) -> Result<i64, StoreError> {
        dispatch!(self, b => b.stream_generation().await)
    }

    /// Raises the streams' generation. Called after the change is written: a reader that sees
    /// the new generation also sees the change.
    async fn bump_stream_generation(&self) -> Result<(), StoreError> {
        dispatch!(self, b => b.bump_stream_generation().await)
    }

    /// Connects (creating a SQLite file and its directory when missing; a PostgreSQL database
    /// must exist). Does not migrate.
    pub async fn connect(location: &DatabaseLocation) -> Result<Self, StoreError> {
        let backend = match location {
            DatabaseLocation::Sqlite { url, path } => {
                Backend::Sqlite(sqlite::SqliteStore::connect(url, path.as_deref()).await?)
            }
            DatabaseLocation::Postgres { url } => {
                Backend::Postgres(postgres::PgStore::connect(url).await?)
            }
        };
        Ok(Self { backend })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.migrate().await)
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.ping().await)
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        dispatch!(self, s => s.close().await)
    }

    /// Creates an API client. `Conflict` when an active client has the name.
    pub async fn create_client(&self, new: NewClient<'_>) -> Result<ApiClient, StoreError> {
        dispatch!(self, s => s.create_client(new).await)
    }

    /// Every client, active and revoked, by name.
    pub async fn list_clients(&self) -> Result<Vec<ApiClient>, StoreError> {
        dispatch!(self, s => s.list_clients().await)
    }

    /// Revokes the active client with this name; `None` when there is none.
    pub async fn revoke_client(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<ApiClient>, StoreError> {
        dispatch!(self, s => s.revoke_client(name, at).await)
    }

    /// The active client holding a token with this digest.
    pub async fn client_by_token_hash(&self, hash: &[u8]) -> Result<Option<ApiClient>, StoreError> {
        dispatch!(self, s => s.client_by_token_hash(hash).await)
    }

    /// Sets (or with `None` clears) the public keys of the active client called `name`; `None`
    /// when there is no such client.
    pub async fn set_client_jwks(
        &self,
        name: &str,
        jwks: Option<&str>,
    ) -> Result<Option<ApiClient>, StoreError> {
        dispatch!(self, s => s.set_client_jwks(name, jwks).await)
    }

    /// The active client with this id, with its registered public keys.
    pub async fn client_keys(&self, id: &str) -> Result<Option<ClientKeysRow>, StoreError> {
        dispatch!(self, s => s.client_keys(id).await)
    }

    /// Stores an issued access token (its digest).
    pub async fn insert_access_token(&self, t: &NewAccessToken<'_>) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_access_token(t).await)
    }

    /// The access token with this digest, when it has not expired at `now_ms` and its client is
    /// active.
    pub async fn access_token(
        &self,
        hash: &[u8],
        now_ms: i64,
    ) -> Result<Option<AccessTokenRow>, StoreError> {
        dispatch!(self, s => s.access_token(hash, now_ms).await)
    }

    /// Records the `jti` of a client assertion, kept until `expires_at_ms`; false when the client
    /// used it before and that record has not expired at `now_ms` (a replay).
    pub async fn use_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.use_assertion_jti(client_id, jti, expires_at_ms, now_ms).await)
    }

    /// Deletes up to `limit` expired access tokens and up to `limit` expired assertion `jti`s;
    /// returns how many rows went.
    pub async fn prune_oauth(&self, now_ms: i64, limit: u32) -> Result<u64, StoreError> {
        dispatch!(self, s => s.prune_oauth(now_ms, limit).await)
    }

    /// Appends an audit row.
    pub async fn append_audit(&self, entry: NewAudit<'_>) -> Result<(), StoreError> {
        dispatch!(self, s => s.append_audit(entry).await)
    }

    /// Stores accepted SETs, the subjects' new state and the idempotency record in one
    /// transaction. `Conflict` when the idempotency key was stored meanwhile (nothing is written).
    pub async fn accept_signals(
        &self,
        rows: &[NewOutbox],
        states: &[StateUpdate],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.accept_signals(rows, states, idempotency).await)
    }

    /// Starts one intake: a unit of work in which the state of the subjects named by `keys`
    /// is read, decided on and written with the new SETs. On PostgreSQL it is a transaction
    /// holding each key's advisory lock, so intakes of one subject on different replicas run one
    /// after the other; SQLite has one writing process, whose own per-subject locks suffice.
    pub async fn begin_intake(&self, keys: &[String]) -> Result<Intake, StoreError> {
        Ok(Intake(match &self.backend {
            Backend::Sqlite(s) => IntakeInner::Sqlite(s.clone()),
            Backend::Postgres(s) => IntakeInner::Postgres(Box::new(s.begin_intake(keys).await?)),
        }))
    }

    /// The last value of a subject and the SET that carried it.
    pub async fn subject_state(
        &self,
        stream_id: &str,
        kind: &str,
        subject_key: &str,
    ) -> Result<Option<SubjectState>, StoreError> {
        dispatch!(self, s => s.subject_state(stream_id, kind, subject_key).await)
    }

    /// A stored idempotent response.
    pub async fn idempotency(
        &self,
        client: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        dispatch!(self, s => s.idempotency(client, key).await)
    }

    /// Stores a response for an idempotency key; false when the key was stored meanwhile.
    pub async fn put_idempotency(&self, record: &IdempotencyRecord) -> Result<bool, StoreError> {
        dispatch!(self, s => s.put_idempotency(record).await)
    }

    /// Deletes idempotency records created before `before_ms`; returns how many.
    pub async fn prune_idempotency(&self, before_ms: i64) -> Result<u64, StoreError> {
        dispatch!(self, s => s.prune_idempotency(before_ms).await)
    }

    /// The database server's clock (ms since the epoch) where several processes share the store
    /// and compare times written by each other (leases); `None` for SQLite, whose one process
    /// only compares its own times.
    pub async fn shared_clock_ms(&self) -> Result<Option<i64>, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres(s) => s.database_time_ms().await.map(Some),
        }
    }

    /// Pauses a stream (a receiver's 429) until `until_ms` for every process on this store: no
    /// SET of it is claimed before then. A shorter pause never replaces a longer one.
    pub async fn pause_stream(&self, stream_id: &str, until_ms: i64) -> Result<(), StoreError> {
        dispatch!(self, s => s.pause_stream(stream_id, until_ms).await)
    }

    /// Claims due SETs for `owner` (a per-process id) until `now_ms + lease_ms`, and returns them
    /// oldest first: up to `limit` heads (the oldest pending SET of their subject) that are due and
    /// not under another live claim. Atomic on both backends, so two workers — on one database, in
    /// several processes — never get the same SET, and a subject has at most one SET claimed.
    /// A claim whose lease ended (its owner died) is taken over. A standard stream that is not
    /// `enabled` yields nothing: its pause holds from the moment it is committed, not from when
    /// the supervisor stops the stream's worker.
    pub async fn claim_due(
        &self,
        stream_id: &str,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        dispatch!(self, s => s.claim_due(stream_id, owner, now_ms, lease_ms, limit).await)
    }

    /// Claims the oldest pending head of `stream_id` whatever its schedule: the one SET that
    /// probes a receiver that is down. Per-subject order and other workers' claims hold as in
    /// [`Self::claim_due`]; empty when nothing is pending (or all of it is claimed).
    pub async fn claim_probe(
        &self,
        stream_id: &str,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        dispatch!(self, s => s.claim_probe(stream_id, owner, now_ms, lease_ms).await)
    }

    /// Makes every pending SET of `stream_id` due now (its receiver is back): the backlog
    /// drains at once, in order per subject. Returns how many were rescheduled.
    pub async fn make_due(&self, stream_id: &str, now_ms: i64) -> Result<u64, StoreError> {
        dispatch!(self, s => s.make_due(stream_id, now_ms).await)
    }

    /// Hands back `owner`'s claims on pending SETs (a stopping worker), so they are pushed at once
    /// by the next worker instead of after their lease.
    pub async fn release_claims(&self, owner: &str) -> Result<u64, StoreError> {
        dispatch!(self, s => s.release_claims(Some(owner)).await)
    }

    /// At a worker's start: clears claims no live process can hold. SQLite: every claim (this
    /// process holds the writer lock, so they are a dead process's). PostgreSQL: none (live
    /// replicas may hold them; a dead one's end with their lease).
    pub async fn release_orphan_claims(&self) -> Result<u64, StoreError> {
        dispatch!(self, s => s.release_claims(None).await)
    }

    /// When the next SET may be claimed: the earliest `next_attempt_at` among subject heads (the
    /// oldest pending SET of each subject), or for a claimed head the end of its lease if later.
    pub async fn next_due_at(&self, stream_id: &str) -> Result<Option<i64>, StoreError> {
        dispatch!(self, s => s.next_due_at(stream_id).await)
    }

    /// Records the outcome of one attempt by the worker `owner` and clears its claim. Outcomes only
    /// move a SET forward, and only its claim's owner writes one: `false` when the SET was no
    /// longer pending (already delivered, failed or dead) or no longer claimed by `owner` (its
    /// lease ended and another worker took it), and nothing was changed.
    pub async fn record_attempt(
        &self,
        jti: &str,
        owner: &str,
        attempt: &Attempt,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.record_attempt(jti, Some(owner), attempt, now_ms).await)
    }

    /// Commits a tiny write through the same writer as intake and outcomes (readiness).
    pub async fn probe_write(&self, now_ms: i64) -> Result<(), StoreError> {
        dispatch!(self, s => s.probe_write(now_ms).await)
    }

    /// Whether the store's writer task still runs.
    pub fn writer_running(&self) -> bool {
        dispatch!(self, s => s.writer_running())
    }

    /// The status of one SET, `None` when there is no such SET (never was, or pruned).
    pub async fn delivery_status(&self, jti: &str) -> Result<Option<DeliveryStatus>, StoreError> {
        dispatch!(self, s => s.delivery_status(jti).await)
    }

    /// Deletes up to `limit` SETs in `status` (delivered, failed or dead) last changed before
    /// `before_ms`; returns how many. Pending SETs are never touched.
    pub async fn prune_batch(
        &self,
        status: DeliveryStatus,
        before_ms: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        dispatch!(self, s => s.prune_batch(status, before_ms, limit).await)
    }

    /// One SET.
    pub async fn outbox_get(&self, jti: &str) -> Result<Option<OutboxRow>, StoreError> {
        dispatch!(self, s => s.outbox_get(jti).await)
    }

    /// SETs, newest first.
    pub async fn outbox_list(&self, filter: &OutboxFilter) -> Result<Vec<OutboxRow>, StoreError> {
        dispatch!(self, s => s.outbox_list(filter).await)
    }

    /// Puts a `failed` or `dead` SET back in the queue; `None` when there is no such SET, `Conflict`
    /// when it is in another status.
    pub async fn requeue(&self, jti: &str, now_ms: i64) -> Result<Option<OutboxRow>, StoreError> {
        dispatch!(self, s => s.requeue(jti, now_ms).await)
    }

    /// How many SETs signed by `kid` still wait for delivery.
    pub async fn pending_with_kid(&self, kid: &str) -> Result<i64, StoreError> {
        dispatch!(self, s => s.pending_with_kid(kid).await)
    }

    /// How many SETs are in each status.
    pub async fn status_counts(&self) -> Result<Vec<(DeliveryStatus, i64)>, StoreError> {
        dispatch!(self, s => s.status_counts().await)
    }

    /// Audit rows matching the filter, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        dispatch!(self, s => s.audit(filter).await)
    }

    /// The newest audit rows, newest first.
    pub async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        dispatch!(self, s => s.recent_audit(limit).await)
    }

    /// Stores a new containment.
    pub async fn insert_containment(&self, c: &ContainmentRow) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_containment(c).await)
    }

    /// Replaces a containment's columns and record, when its status is still
    /// `expected_status` (`false` otherwise: someone else moved it).
    pub async fn save_containment(
        &self,
        c: &ContainmentRow,
        expected_status: &str,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.save_containment(c, expected_status).await)
    }

    /// One containment.
    pub async fn containment(&self, id: &str) -> Result<Option<ContainmentRow>, StoreError> {
        dispatch!(self, s => s.containment(id).await)
    }

    /// Containments matching `filter`, newest first.
    pub async fn containments(
        &self,
        filter: &ContainmentFilter,
    ) -> Result<Vec<ContainmentRow>, StoreError> {
        dispatch!(self, s => s.containments(filter).await)
    }

    /// Active (or failed) containments whose release time has come, earliest first.
    pub async fn containments_due(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<ContainmentRow>, StoreError> {
        dispatch!(self, s => s.containments_due(now_ms, limit).await)
    }

    /// Every containment in `status`, oldest first (resuming work after a restart).
    pub async fn containments_with_status(
        &self,
        status: &str,
    ) -> Result<Vec<ContainmentRow>, StoreError> {
        dispatch!(self, s => s.containments_with_status(status).await)
    }

    /// Stores a job and one pending item per user, in one transaction.
    pub async fn insert_job(&self, job: &JobRow, users: &[String]) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_job(job, users).await)
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<Option<JobRow>, StoreError> {
        dispatch!(self, s => s.job(id).await)
    }

    /// Every job in `status`, oldest first.
    pub async fn jobs_with_status(&self, status: &str) -> Result<Vec<JobRow>, StoreError> {
        dispatch!(self, s => s.jobs_with_status(status).await)
    }

    /// Moves a job from `from` to `to`; `false` when it was not in `from`.
    pub async fn set_job_status(
        &self,
        id: &str,
        from: &str,
        to: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.set_job_status(id, from, to, now_ms).await)
    }

    /// A job's items in one of `statuses`, in list order.
    pub async fn job_items(
        &self,
        id: &str,
        statuses: &[&str],
        limit: u32,
    ) -> Result<Vec<JobItem>, StoreError> {
        dispatch!(self, s => s.job_items(id, statuses, limit).await)
    }

    /// Counts of a job's items by outcome.
    pub async fn job_progress(&self, id: &str) -> Result<JobProgress, StoreError> {
        dispatch!(self, s => s.job_progress(id).await)
    }

    /// Whether this store has exactly one writing process (SQLite, under its writer lock): then
    /// every lease found at start belongs to a process that is gone.
    pub fn single_writer(&self) -> bool {
        matches!(self.backend, Backend::Sqlite(_))
    }

    /// Takes (or renews) the lease on a containment for `owner` until `until_ms`; `false` when
    /// another process holds a lease that has not run out.
    pub async fn lease_containment(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.lease_containment(id, owner, now_ms, until_ms).await)
    }

    /// Gives a containment's lease back.
    pub async fn drop_containment_lease(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.drop_containment_lease(id, owner).await)
    }

    /// Containments in `status` whose lease ran out (or that have none), oldest first.
    pub async fn unleased_containments(
        &self,
        status: &str,
        now_ms: i64,
    ) -> Result<Vec<ContainmentRow>, StoreError> {
        dispatch!(self, s => s.unleased_containments(status, now_ms).await)
    }

    /// Claims up to `limit` items of a job for `owner` until `until_ms`: pending ones, and
    /// running ones whose lease ran out (their process died). Each comes back `running`.
    pub async fn claim_job_items(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        limit: u32,
    ) -> Result<Vec<JobItem>, StoreError> {
        dispatch!(self, s => s.claim_job_items(id, owner, now_ms, until_ms, limit).await)
    }

    /// Extends `owner`'s lease on an item; `false` when the item is no longer `owner`'s.
    pub async fn renew_job_item(
        &self,
        id: &str,
        idx: i64,
        owner: &str,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.renew_job_item(id, idx, owner, until_ms).await)
    }

    /// Records an item's outcome if `owner` still holds it (and frees it).
    pub async fn finish_job_item(
        &self,
        id: &str,
        idx: i64,
        owner: &str,
        status: &str,
        detail: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.finish_job_item(id, idx, owner, status, detail, now_ms).await)
    }

    /// Puts a job's running items back to pending (single writer at start only).
    pub async fn free_job_items(&self, id: &str) -> Result<u64, StoreError> {
        dispatch!(self, s => s.free_job_items(id).await)
    }

    /// Stores a new approval.
    pub async fn insert_approval(&self, a: &ApprovalRow) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_approval(a).await)
    }

    /// One approval.
    pub async fn approval(&self, id: &str) -> Result<Option<ApprovalRow>, StoreError> {
        dispatch!(self, s => s.approval(id).await)
    }

    /// Approvals (of one status), newest first.
    pub async fn approvals(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ApprovalRow>, StoreError> {
        dispatch!(self, s => s.approvals(status, limit).await)
    }

    /// Decides a pending approval; `false` when it was no longer pending (decided once).
    pub async fn decide_approval(
        &self,
        id: &str,
        status: &str,
        record: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.decide_approval(id, status, record, now_ms).await)
    }
}

pub(crate) fn scopes_to_text(scopes: &[&str]) -> String {
    scopes.join(" ")
}

pub(crate) fn scopes_from_text(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

#[cfg(test)]
impl Store {
    pub(in crate::store) fn from_sqlite(s: sqlite::SqliteStore) -> Self {
        Self {
            backend: Backend::Sqlite(s),
        }
    }

    pub(in crate::store) fn from_postgres(s: postgres::PgStore) -> Self {
        Self {
            backend: Backend::Postgres(s),
        }
    }
}

/// Store behaviour both backends must show, run by each backend's tests.
#[cfg(test)]
mod shared_tests {
    use super::{NewOutbox, Store, StreamRow};

    /// Paused (or disabled) is committed before the stream's worker stops: from then on a claim
    /// hands out nothing, due or probing, whatever the worker still believes.
    pub(in crate::store) async fn a_stream_that_is_not_enabled_yields_no_claims(s: Store) {
        let mut stream = StreamRow {
            stream_id: "s1".into(),
            client_id: "c".into(),
            status: "enabled".into(),
            created_at: 1,
            updated_at: 1,
            record: "{}".into(),
        };
        s.insert_stream(&stream).await.expect("insert");
        let set = NewOutbox {
            jti: "v1".into(),
            stream_id: "s1".into(),
            subject_key: "s1".into(),
            subject: "{}".into(),
            event_type: "verification".into(),
            set_jwt: "a.b.c".into(),
            client: "c".into(),
            kid: "k".into(),
            now_ms: 1,
        };
        s.accept_signals(&[set], &[], None).await.expect("accept");
        for status in ["paused", "disabled"] {
            stream.status = status.into();
            assert!(s.save_stream(&stream).await.expect("save"));
            let due = s.claim_due("s1", "w", 10, 1_000, 10).await.expect("due");
            assert!(due.is_empty(), "{status}");
            let probe = s.claim_probe("s1", "w", 10, 1_000).await.expect("probe");
            assert!(probe.is_empty(), "{status}");
        }
        stream.status = "enabled".into();
        assert!(s.save_stream(&stream).await.expect("save"));
        let due = s.claim_due("s1", "w", 10, 1_000, 10).await.expect("due");
        assert_eq!(
            due.iter().map(|r| r.jti.as_str()).collect::<Vec<_>>(),
            ["v1"]
        );
    }
}
