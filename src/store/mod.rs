//! Persistence behind one interface. SQLite now (WAL, the embedded default); PostgreSQL joins as a
//! second [`Backend`] variant with the same methods, so callers never see SQL or a transaction.

mod outbox;
mod sqlite;

pub use outbox::{
    Attempt, DeliveryStatus, IdempotencyRecord, NewOutbox, OutboxFilter, OutboxRow, StateUpdate,
};

use chrono::{DateTime, Utc};

use crate::auth::Scope;
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
}

/// An API client as stored (never with its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiClient {
    /// Stable id (UUID).
    pub id: String,
    /// Unique name among active clients.
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<Scope>,
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
    /// Scopes.
    pub scopes: &'a [Scope],
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// One audit row to append.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (API client name, `admin-token`, `cli`).
    pub actor: &'a str,
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
    /// Exact actor.
    pub actor: Option<String>,
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
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// `ok` or `error`.
    pub outcome: String,
    /// Free text.
    pub detail: Option<String>,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(sqlite::SqliteStore),
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
        }
    };
}

impl Store {
    /// Connects (creating a SQLite file and its directory when missing). Does not migrate.
    pub async fn connect(location: &DatabaseLocation) -> Result<Self, StoreError> {
        let backend = match location {
            DatabaseLocation::Sqlite { url, path } => {
                Backend::Sqlite(sqlite::SqliteStore::connect(url, path.as_deref()).await?)
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

    /// The last value of a subject.
    pub async fn subject_state(
        &self,
        stream_id: &str,
        kind: &str,
        subject_key: &str,
    ) -> Result<Option<String>, StoreError> {
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

    /// The head (oldest pending SET) of each subject's queue that is due, oldest first.
    pub async fn due(
        &self,
        stream_id: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        dispatch!(self, s => s.due(stream_id, now_ms, limit).await)
    }

    /// The earliest `next_attempt_at` among pending SETs.
    pub async fn next_due_at(&self, stream_id: &str) -> Result<Option<i64>, StoreError> {
        dispatch!(self, s => s.next_due_at(stream_id).await)
    }

    /// Records the outcome of one attempt.
    pub async fn record_attempt(
        &self,
        jti: &str,
        attempt: &Attempt,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.record_attempt(jti, attempt, now_ms).await)
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
}

pub(crate) fn scopes_to_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn scopes_from_text(text: &str) -> Result<Vec<Scope>, StoreError> {
    text.split_whitespace()
        .map(|s| {
            s.parse::<Scope>()
                .map_err(|_| StoreError::Corrupt(format!("unknown scope {s:?}")))
        })
        .collect()
}
