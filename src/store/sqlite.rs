//! SQLite implementation: one file in WAL mode, `synchronous=FULL` so an acknowledged write
//! survives a crash or power loss.

mod oauth;
mod state_cache;
mod streams;
mod work;

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection as _, Row as _, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::{
    ApiClient, Attempt, AuditEntry, DeliveryStatus, IdempotencyRecord, NewAudit, NewClient,
    NewOutbox, OutboxFilter, OutboxRow, StateUpdate, StoreError, SubjectState, rows,
    scopes_to_text,
};

/// A reply from the group-commit writer: whether the write changed anything.
type Reply = oneshot::Sender<Result<bool, StoreError>>;

const OUTBOX_COLUMNS: &str = "seq, jti, stream_id, subject_key, subject, event_type, set_jwt, client, status, \
    attempts, created_at, queued_at, next_attempt_at, updated_at, delivered_at, last_http_status, last_err, \
    last_description, last_error, verify_failing_since";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/sqlite");

#[derive(Clone, Debug)]
pub(super) struct SqliteStore {
    pool: SqlitePool,
    writer: mpsc::Sender<(Write, Reply)>,
    /// The stream generation as this process (the only writer of the file) raised it: read on
    /// every intake, so kept in memory.
    stream_generation: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// The subjects' states as the group writer committed them (see [`state_cache`]).
    states: std::sync::Arc<state_cache::StateCache>,
}

/// A write that goes through the group-commit writer.
#[derive(Debug)]
enum Write {
    Accept {
        rows: Vec<NewOutbox>,
        states: Vec<StateUpdate>,
        idempotency: Option<IdempotencyRecord>,
    },
    Attempt {
        jti: String,
        /// Applies only while the row is claimed by this owner (`None`: unchecked, store tests).
        owner: Option<String>,
        attempt: Attempt,
        now_ms: i64,
    },
    /// Readiness: rewrites the probe row, proving the writer runs and the database commits.
    Probe { now_ms: i64 },
    /// The store is closing: the writer commits what came before, closes its connection and
    /// stops (every later write is refused).
    Close,
    /// Claims due SETs of a stream (or, `probe`, its oldest head whatever its schedule); the
    /// rows go to `out` once the group committed.
    Claim {
        stream_id: String,
        owner: String,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
        probe: bool,
        out: oneshot::Sender<Vec<OutboxRow>>,
    },
}

/// Most writes committed in one transaction.
const GROUP_MAX: usize = 512;

/// Group commit: one task owns the hot writes. It takes every write that is waiting, runs them
/// in one transaction and answers each caller after the commit, so N concurrent acceptances or
/// delivery outcomes cost one fsync instead of N. A caller's answer still means "on disk".
async fn group_writer(
    mut conn: WriterConn,
    states: std::sync::Arc<state_cache::StateCache>,
    mut rx: mpsc::Receiver<(Write, Reply)>,
) {
    let mut batch = Vec::with_capacity(GROUP_MAX);
    let mut closing = false;
    while !closing && rx.recv_many(&mut batch, GROUP_MAX).await > 0 {
        if let Some(at) = batch.iter().position(|(w, _)| matches!(w, Write::Close)) {
            // What came after the close is answered "stopped" when the channel drops.
            batch.truncate(at + 1);
            closing = true;
        }
        let (mut writes, replies): (Vec<Write>, Vec<_>) = batch.drain(..).unzip();
        match commit_group(&mut conn, &writes).await {
            Ok((outcomes, mut claimed, changes)) => {
                // Before any answer: the next intake of these subjects reads this.
                states.apply(changes);
                // Claimed rows go out only now, after the commit.
                for w in &mut writes {
                    if let Write::Claim { out, .. } = w {
                        let (dummy, _) = oneshot::channel();
                        let out = std::mem::replace(out, dummy);
                        let _ = out.send(claimed.pop_front().unwrap_or_default());
                    }
                }
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                states.clear();
                conn.drop_own().await;
                let text = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Setup(format!("database error: {text}"))));
                }
            }
        }
    }
    conn.drop_own().await;
}

/// The group writer's connection: its own, so a group costs no pool check-out and check-in
/// (each a statement on the connection's thread); the pool's only one for an in-memory
/// database, which exists once per connection.
enum WriterConn {
    Own {
        conn: Option<SqliteConnection>,
        options: Box<SqliteConnectOptions>,
    },
    Pool(SqlitePool),
}

impl WriterConn {
    async fn begin(&mut self) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, sqlx::Error> {
        match self {
            Self::Own { conn, options } => {
                if conn.is_none() {
                    *conn = Some(SqliteConnection::connect_with(&**options).await?);
                }
                match conn {
                    Some(c) => c.begin().await,
                    None => Err(sqlx::Error::PoolClosed),
                }
            }
            Self::Pool(pool) => pool.begin().await,
        }
    }

    /// Closes its own connection: after a failed group (one in an unknown state is opened anew
    /// for the next group) and when the writer stops.
    async fn drop_own(&mut self) {
        if let Self::Own { conn, .. } = self
            && let Some(c) = conn.take()
        {
            let _ = c.close().await;
        }
    }
}

/// The answers of a group's writes, the rows each of its claims took, in order,
/// and the subject states it changed, in order.
type GroupResult = (
    Vec<Result<bool, StoreError>>,
    std::collections::VecDeque<Vec<OutboxRow>>,
    Vec<state_cache::StateChange>,
);

async fn commit_group(conn: &mut WriterConn, writes: &[Write]) -> Result<GroupResult, sqlx::Error> {
    let mut claimed = std::collections::VecDeque::new();
    let mut changes = Vec::new();
    let mut tx = conn.begin().await?;
    let mut outcomes: Vec<Result<bool, StoreError>> = Vec::with_capacity(writes.len());
    // Every statement is a round trip to the connection's thread, so the common writes are
    // gathered and written a chunk per statement: new SETs, subject states, and `delivered`
    // outcomes. They commute with each other (a delivered outcome updates an older, committed
    // row; the new rows are not claimable before this commit), so they are flushed together
    // before any other write, which keeps its place in the order.
    let mut gathered = Gathered::default();
    for w in writes {
        match w {
            Write::Accept {
                rows: new_rows,
                states: new_states,
                idempotency,
            } => {
                if let Some(i) = idempotency {
                    let inserted = insert_idempotency(i).execute(&mut *tx).await?;
                    if inserted.rows_affected() == 0 {
                        outcomes.push(Err(StoreError::Conflict(
                            "idempotency key already used".into(),
                        )));
                        continue;
                    }
                }
                gathered.rows.extend(new_rows);
                gathered.states.extend(new_states);
                changes.extend(new_states.iter().map(|st| state_cache::StateChange {
                    key: state_cache::key(&st.stream_id, &st.kind, &st.subject_key),
                    state: Some(SubjectState {
                        value: st.value.clone(),
                        jti: st.jti.clone(),
                    }),
                }));
                outcomes.push(Ok(true));
            }
            Write::Attempt {
                jti,
                owner,
                attempt: Attempt::Delivered { http_status },
                now_ms,
            } => {
                gathered.delivered.push((
                    outcomes.len(),
                    jti,
                    owner.as_deref(),
                    *http_status,
                    *now_ms,
                ));
                outcomes.push(Ok(false));
            }
            Write::Attempt {
                jti,
                owner,
                attempt,
                now_ms,
            } => {
                gathered.flush(&mut tx, &mut outcomes).await?;
                let applied = attempt_query(jti, owner.as_deref(), attempt, *now_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    > 0;
                if applied && matches!(attempt, Attempt::Failed { .. } | Attempt::Dead { .. }) {
                    // Okta never got this value: forget it as the subject's last state, so the
                    // next signal is not suppressed as unchanged nor claims it as previous.
                    let forgotten: Vec<(String, String, String)> = sqlx::query_as(
                        "DELETE FROM subject_state WHERE jti = ? \
                         RETURNING stream_id, kind, subject_key",
                    )
                    .bind(jti)
                    .fetch_all(&mut *tx)
                    .await?;
                    changes.extend(forgotten.iter().map(|(stream, kind, key)| {
                        state_cache::StateChange {
                            key: state_cache::key(stream, kind, key),
                            state: None,
                        }
                    }));
                }
                outcomes.push(Ok(applied));
            }
            Write::Claim {
                stream_id,
                owner,
                now_ms,
                lease_ms,
                limit,
                probe,
                ..
            } => {
                // After the gathered writes: a claim sees the SETs accepted in its own group.
                gathered.flush(&mut tx, &mut outcomes).await?;
                let schedule = if *probe {
                    ""
                } else {
                    "AND o.next_attempt_at <= ?2"
                };
                // `LIMIT +?5`, not `LIMIT ?5`: SQLite plans with a bare parameter's value as the
                // limit, which expires the prepared statement each time it is bound, so every
                // claim was parsed and planned again (8 % of the writer thread under load).
                let sql = format!(
                    "UPDATE outbox SET claimed_by = ?3, claimed_until = ?4 WHERE seq IN ( \
                         SELECT o.seq FROM outbox o INDEXED BY outbox_pending_claim \
                         WHERE o.stream_id = ?1 AND o.status IN ('queued', 'retrying') {schedule} \
                         AND (o.claimed_until IS NULL OR o.claimed_until < ?2) \
                         AND NOT EXISTS (SELECT 1 FROM stream_pause sp WHERE sp.stream_id = ?1 AND sp.paused_until > ?2) \
                         AND NOT EXISTS (SELECT 1 FROM streams st WHERE st.stream_id = ?1 AND st.status <> 'enabled') \
                         AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.stream_id = o.stream_id \
                             AND p.subject_key = o.subject_key AND p.status IN ('queued', 'retrying') AND p.seq < o.seq) \
                         ORDER BY o.seq LIMIT +?5) \
                     RETURNING {OUTBOX_COLUMNS}"
                );
                let found = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(stream_id)
                    .bind(*now_ms)
                    .bind(owner)
                    .bind(now_ms.saturating_add(*lease_ms))
                    .bind(i64::from(*limit))
                    .fetch_all(&mut *tx)
                    .await?;
                let found = found
                    .iter()
                    .map(rows::outbox)
                    .collect::<Result<Vec<_>, _>>();
                match found {
                    Ok(f) => {
                        claimed.push_back(f);
                        outcomes.push(Ok(true));
                    }
                    Err(e) => {
                        claimed.push_back(Vec::new());
                        outcomes.push(Err(e));
                    }
                }
            }
            Write::Close => outcomes.push(Ok(true)),
            Write::Probe { now_ms } => {
                gathered.flush(&mut tx, &mut outcomes).await?;
                sqlx::query(
                    "INSERT INTO store_probe (id, at) VALUES (1, ?) \
                     ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                )
                .bind(*now_ms)
                .execute(&mut *tx)
                .await?;
                outcomes.push(Ok(true));
            }
        }
    }
    gathered.flush(&mut tx, &mut outcomes).await?;
    tx.commit().await?;
    Ok((outcomes, claimed, changes))
}

/// Rows per `json_each` statement. A group can gather thousands (16 batches of 100 signals), and
/// its JSON text is copied by SQLite and parsed again: in chunks, a large group's writes hold
/// about a megabyte at once instead of several, for a statement per 256 rows.
const FLUSH_CHUNK: usize = 256;

/// A `delivered` outcome waiting in a group: (index of its answer, jti, owner, HTTP status,
/// time).
type Delivered<'a> = (usize, &'a str, Option<&'a str>, u16, i64);

/// The common writes of a group, gathered until the next write that must see them.
#[derive(Default)]
struct Gathered<'a> {
    rows: Vec<&'a NewOutbox>,
    states: Vec<&'a StateUpdate>,
    delivered: Vec<Delivered<'a>>,
}

impl Gathered<'_> {
    /// Writes the gathered new SETs, subject states (in order: a later state of a subject wins) and
    /// delivered outcomes, one statement each whatever their number; marks each delivered outcome
    /// that applied.
    ///
    /// Each statement reads its rows from one JSON array parameter (`json_each`), so its text never
    /// changes: it is prepared once and stays in the connection's statement cache (a multi-row
    /// `VALUES` list has a text per row count, and most groups prepared a new one).
    async fn flush(
        &mut self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        outcomes: &mut [Result<bool, StoreError>],
    ) -> Result<(), sqlx::Error> {
        let Self {
            rows,
            states,
            delivered,
        } = self;
        for chunk in rows.chunks(FLUSH_CHUNK) {
            let json = to_json_array(chunk.iter().map(|r| {
                (
                    &r.jti,
                    &r.stream_id,
                    &r.subject_key,
                    &r.subject,
                    &r.event_type,
                    &r.set_jwt,
                    &r.client,
                    &r.kid,
                    r.now_ms,
                )
            }))?;
            sqlx::query(
            "INSERT INTO outbox (jti, stream_id, subject_key, subject, event_type, set_jwt, client, kid, \
             status, attempts, created_at, queued_at, next_attempt_at, updated_at) \
             SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, \
             j.value ->> 5, j.value ->> 6, j.value ->> 7, 'queued', 0, j.value ->> 8, j.value ->> 8, \
             j.value ->> 8, j.value ->> 8 FROM json_each(?1) AS j ORDER BY j.key",
        )
        .bind(json)
        .execute(&mut **tx)
        .await?;
        }
        rows.clear();
        // In order, chunk after chunk: a later state of a subject still wins.
        for chunk in states.chunks(FLUSH_CHUNK) {
            let json = to_json_array(chunk.iter().map(|st| {
                (
                    &st.stream_id,
                    &st.kind,
                    &st.subject_key,
                    &st.value,
                    &st.jti,
                    st.now_ms,
                )
            }))?;
            sqlx::query(
                "INSERT INTO subject_state (stream_id, kind, subject_key, value, jti, updated_at) \
             SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, \
             j.value ->> 5 FROM json_each(?1) AS j WHERE true ORDER BY j.key \
             ON CONFLICT (stream_id, kind, subject_key) DO UPDATE SET \
             value = excluded.value, jti = excluded.jti, updated_at = excluded.updated_at",
            )
            .bind(json)
            .execute(&mut **tx)
            .await?;
        }
        states.clear();
        for chunk in delivered.chunks(FLUSH_CHUNK) {
            let json = to_json_array(
                chunk
                    .iter()
                    .map(|(_, jti, owner, status, now_ms)| (jti, status, owner, now_ms)),
            )?;
            let applied: std::collections::HashSet<String> =
                sqlx::query_scalar(DELIVERED_FROM_JSON)
                    .bind(json)
                    .fetch_all(&mut **tx)
                    .await?
                    .into_iter()
                    .collect();
            for (i, jti, ..) in chunk {
                if applied.contains(*jti)
                    && let Some(o) = outcomes.get_mut(*i)
                {
                    *o = Ok(true);
                }
            }
        }
        delivered.clear();
        Ok(())
    }
}

/// Marks SETs delivered from a JSON array of `[jti, http status, owner or null, time]`. The
/// unary `+` keeps the planner off the status index (it chose to scan every pending SET per
/// outcome); each outcome looks its SET up by `jti` instead.
const DELIVERED_FROM_JSON: &str = "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, \
     delivered_at = j.value ->> 3, updated_at = j.value ->> 3, last_http_status = j.value ->> 1, \
     verify_failing_since = NULL, claimed_by = NULL, claimed_until = NULL \
     FROM json_each(?1) AS j \
     WHERE outbox.jti = j.value ->> 0 AND +outbox.status IN ('queued', 'retrying') \
     AND (j.value ->> 2 IS NULL OR outbox.claimed_by = j.value ->> 2) RETURNING outbox.jti";

/// Clears `?1`'s claims, or every claim with `NULL`. Only pending SETs hold claims (each outcome
/// clears its SET's), so this reads them through a pending index: no index on `claimed_by` is
/// written with every claim and outcome for this rare statement.
const RELEASE_CLAIMS: &str = "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL \
     WHERE status IN ('queued', 'retrying') AND claimed_by IS NOT NULL \
     AND (?1 IS NULL OR claimed_by = ?1)";

/// How many pending SETs `?1` signed: read through a pending index, like [`RELEASE_CLAIMS`].
const PENDING_WITH_KID: &str =
    "SELECT COUNT(*) AS n FROM outbox WHERE kid = ?1 AND status IN ('queued', 'retrying')";

/// Rows as one JSON array of arrays, the parameter of a `json_each` statement.
fn to_json_array<T: serde::Serialize>(
    rows: impl Iterator<Item = T>,
) -> Result<String, sqlx::Error> {
    serde_json::to_string(&rows.collect::<Vec<T>>()).map_err(|e| sqlx::Error::Encode(e.into()))
}

/// Outcome updates only move a SET forward: each applies only while the SET is `queued` or
/// `retrying`. A late or duplicate outcome (another writer, a push recorded twice) never turns
/// `delivered`, `failed` or `dead` back into `retrying`, nor one final status into another.
/// Re-queueing a finished SET is [`SqliteStore::requeue`]'s job alone.
///
/// With an `owner`, the outcome applies only while that owner still holds the row's claim (a
/// worker whose lease ended and whose row another worker took writes nothing); it clears the
/// claim.
fn attempt_query<'q>(
    jti: &'q str,
    owner: Option<&'q str>,
    attempt: &'q Attempt,
    now_ms: i64,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    match attempt {
        Attempt::Delivered { http_status } => sqlx::query(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?2, updated_at = ?2, \
             last_http_status = ?3, verify_failing_since = NULL, claimed_by = NULL, claimed_until = NULL \
             WHERE jti = ?1 AND status IN ('queued', 'retrying') AND (?4 IS NULL OR claimed_by = ?4)",
        )
        .bind(jti)
        .bind(now_ms)
        .bind(i64::from(*http_status))
        .bind(owner),
        Attempt::Failed {
            http_status,
            err,
            description,
            error,
        } => sqlx::query(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, updated_at = ?2, last_http_status = ?3, \
             last_err = ?4, last_description = ?5, last_error = ?6, claimed_by = NULL, claimed_until = NULL \
             WHERE jti = ?1 AND status IN ('queued', 'retrying') AND (?7 IS NULL OR claimed_by = ?7)",
        )
        .bind(jti)
        .bind(now_ms)
        .bind(i64::from(*http_status))
        .bind(err.as_deref())
        .bind(description.as_deref())
        .bind(error.as_str())
        .bind(owner),
        Attempt::Retry {
            http_status,
            err,
            description,
            error,
            next_attempt_at,
            verify_failure,
        } => sqlx::query(
            "UPDATE outbox SET status = 'retrying', attempts = attempts + 1, updated_at = ?2, last_http_status = ?3, \
             last_err = ?6, last_description = ?7, last_error = ?4, next_attempt_at = ?5, \
             verify_failing_since = CASE WHEN ?8 THEN COALESCE(verify_failing_since, ?2) ELSE verify_failing_since END, \
             claimed_by = NULL, claimed_until = NULL \
             WHERE jti = ?1 AND status IN ('queued', 'retrying') AND (?9 IS NULL OR claimed_by = ?9)",
        )
        .bind(jti)
        .bind(now_ms)
        .bind(http_status.map(i64::from))
        .bind(error.as_str())
        .bind(*next_attempt_at)
        .bind(err.as_deref())
        .bind(description.as_deref())
        .bind(*verify_failure)
        .bind(owner),
        Attempt::Dead { http_status, error } => sqlx::query(
            "UPDATE outbox SET status = 'dead', attempts = attempts + 1, updated_at = ?2, last_http_status = ?3, \
             last_error = ?4, claimed_by = NULL, claimed_until = NULL \
             WHERE jti = ?1 AND status IN ('queued', 'retrying') AND (?5 IS NULL OR claimed_by = ?5)",
        )
        .bind(jti)
        .bind(now_ms)
        .bind(http_status.map(i64::from))
        .bind(error.as_str())
        .bind(owner),
    }
}

impl SqliteStore {
    pub(super) async fn connect(url: &str, path: Option<&Path>) -> Result<Self, StoreError> {
        if let Some(parent) = path.and_then(Path::parent)
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Setup(format!(
                    "cannot create the database directory {}: {e}",
                    parent.display()
                ))
            })?;
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = path.is_none();
        let pool = SqlitePoolOptions::new()
            // A local file does not go stale like a server connection: checking each one out
            // with a ping would cost a round trip to its thread.
            .test_before_acquire(in_memory)
            // An in-memory database exists once per connection: keep exactly one.
            .max_connections(if in_memory { 1 } else { 4 })
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(3600))
            })
            .connect_with(options.clone())
            .await?;
        if let Some(db) = path {
            // The database holds token digests, signed SETs and the audit trail: owner only,
            // also when the files exist with looser modes (each change is logged).
            let mut wal = db.as_os_str().to_owned();
            wal.push("-wal");
            let mut shm = db.as_os_str().to_owned();
            shm.push("-shm");
            for p in [db.to_path_buf(), wal.into(), shm.into()] {
                crate::files::tighten(&p, 0o600).map_err(|e| {
                    StoreError::Setup(format!(
                        "cannot set the mode of {} to 0600: {e}",
                        p.display()
                    ))
                })?;
            }
        }
        let conn = if in_memory {
            WriterConn::Pool(pool.clone())
        } else {
            WriterConn::Own {
                conn: None,
                options: Box::new(options),
            }
        };
        let states =
            std::sync::Arc::new(state_cache::StateCache::new(state_cache::DEFAULT_CAPACITY));
        let (writer, rx) = mpsc::channel(4 * GROUP_MAX);
        tokio::spawn(group_writer(conn, states.clone(), rx));
        Ok(Self {
            pool,
            writer,
            stream_generation: std::sync::Arc::default(),
            states,
        })
    }

    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        // Every subject's state in memory when they fit (see `state_cache`).
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subject_state")
            .fetch_one(&self.pool)
            .await?;
        if self.states.fits(u64::try_from(count).unwrap_or(u64::MAX)) {
            let all: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
                "SELECT stream_id, kind, subject_key, value, jti FROM subject_state",
            )
            .fetch_all(&self.pool)
            .await?;
            self.states.load_all(
                all.into_iter()
                    .map(|(stream, kind, key, value, jti)| {
                        (
                            state_cache::key(&stream, &kind, &key),
                            SubjectState { value, jti },
                        )
                    })
                    .collect(),
            );
        }
        Ok(())
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub(super) async fn close(&self) {
        // Already stopped when the send fails.
        let _ = self.write(Write::Close).await;
        self.pool.close().await;
    }

    pub(super) async fn create_client(&self, new: NewClient<'_>) -> Result<ApiClient, StoreError> {
        let result = sqlx::query(
            "INSERT INTO api_clients (id, name, token_hash, scopes, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(new.id)
        .bind(new.name)
        .bind(new.token_hash)
        .bind(scopes_to_text(new.scopes))
        .bind(new.created_at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(ApiClient {
                id: new.id.to_owned(),
                name: new.name.to_owned(),
                scopes: new.scopes.iter().map(|s| (*s).to_owned()).collect(),
                created_at: new.created_at,
                revoked_at: None,
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("an active API client named '{}' already exists", new.name),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn list_clients(&self) -> Result<Vec<ApiClient>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, scopes, created_at, revoked_at FROM api_clients ORDER BY name, created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::client).collect()
    }

    pub(super) async fn revoke_client(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<ApiClient>, StoreError> {
        let row = sqlx::query(
            "UPDATE api_clients SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL \
             RETURNING id, name, scopes, created_at, revoked_at",
        )
        .bind(at)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::client).transpose()
    }

    pub(super) async fn client_by_token_hash(
        &self,
        hash: &[u8],
    ) -> Result<Option<ApiClient>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, scopes, created_at, revoked_at FROM api_clients \
             WHERE token_hash = ? AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::client).transpose()
    }

    pub(super) async fn append_audit(&self, e: NewAudit<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, actor_id, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(e.at)
        .bind(e.actor)
        .bind(e.actor_id)
        .bind(e.action)
        .bind(e.target)
        .bind(e.outcome)
        .bind(e.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn write(&self, w: Write) -> Result<bool, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send((w, tx))
            .await
            .map_err(|_| StoreError::Setup("the database writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Setup("the database writer has stopped".into()))?
    }

    pub(super) async fn accept_signals(
        &self,
        rows: &[NewOutbox],
        states: &[StateUpdate],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        self.accept_owned(rows.to_vec(), states.to_vec(), idempotency.cloned())
            .await
    }

    /// [`Self::accept_signals`] for an intake that hands its rows over: no copy of every signed
    /// SET on the way to the writer (in batched intake, megabytes at the peak).
    pub(super) async fn accept_owned(
        &self,
        rows: Vec<NewOutbox>,
        states: Vec<StateUpdate>,
        idempotency: Option<IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        self.write(Write::Accept {
            rows,
            states,
            idempotency,
        })
        .await
        .map(|_| ())
    }

    pub(super) async fn subject_state(
        &self,
        stream_id: &str,
        kind: &str,
        subject_key: &str,
    ) -> Result<Option<SubjectState>, StoreError> {
        if let Some(known) = self.states.get(stream_id, kind, subject_key) {
            return Ok(known);
        }
        let row = sqlx::query(
            "SELECT value, jti FROM subject_state WHERE stream_id = ? AND kind = ? AND subject_key = ?",
        )
        .bind(stream_id)
        .bind(kind)
        .bind(subject_key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SubjectState {
                value: r.try_get("value")?,
                jti: r.try_get("jti")?,
            })
        })
        .transpose()
    }

    pub(super) async fn idempotency(
        &self,
        client: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT client, key, request_hash, status, body, created_at FROM idempotency WHERE client = ? AND key = ?",
        )
        .bind(client)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let status: i64 = r.try_get("status")?;
            Ok(IdempotencyRecord {
                client: r.try_get("client")?,
                key: r.try_get("key")?,
                request_hash: r.try_get("request_hash")?,
                status: u16::try_from(status).map_err(|_| StoreError::Corrupt("status".into()))?,
                body: r.try_get("body")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    pub(super) async fn put_idempotency(&self, i: &IdempotencyRecord) -> Result<bool, StoreError> {
        let r = insert_idempotency(i).execute(&self.pool).await?;
        Ok(r.rows_affected() == 1)
    }

    pub(super) async fn prune_idempotency(&self, before_ms: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM idempotency WHERE created_at < ?")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Claims up to `limit` due heads for `owner` until `now_ms + lease_ms`, in one statement:
    /// pending, due, not under a live lease, and no older pending SET of their subject. This
    /// process is the database's only writer (the writer lock); the statement is atomic anyway.
    /// Pauses a stream's claims until `until_ms` (never shortens a longer pause).
    pub(super) async fn pause_stream(
        &self,
        stream_id: &str,
        until_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO stream_pause (stream_id, paused_until) VALUES (?1, ?2) \
             ON CONFLICT (stream_id) DO UPDATE SET paused_until = MAX(stream_pause.paused_until, excluded.paused_until)",
        )
        .bind(stream_id)
        .bind(until_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn claim_due(
        &self,
        stream_id: &str,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.claim(stream_id, owner, now_ms, lease_ms, limit, false)
            .await
    }

    /// The oldest pending head of `stream_id`, whatever its schedule (a probe of a receiver
    /// that is down); claimed like [`Self::claim_due`]'s.
    pub(super) async fn claim_probe(
        &self,
        stream_id: &str,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.claim(stream_id, owner, now_ms, lease_ms, 1, true)
            .await
    }

    /// A claim is a write: it goes through the group writer like every hot write, so it never
    /// waits on SQLite's busy handler (whose sleeps of 1, 2, 5, 10, 15… ms, while the writer
    /// held the lock through its fsync, were most of a SET's wait between intake and push).
    async fn claim(
        &self,
        stream_id: &str,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
        probe: bool,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let (out, rows) = oneshot::channel();
        self.write(Write::Claim {
            stream_id: stream_id.to_owned(),
            owner: owner.to_owned(),
            now_ms,
            lease_ms,
            limit,
            probe,
            out,
        })
        .await?;
        let mut rows = rows
            .await
            .map_err(|_| StoreError::Setup("the database writer has stopped".into()))?;
        rows.sort_by_key(|r| r.seq);
        Ok(rows)
    }

    /// Every pending SET of `stream_id` scheduled later than `now_ms` becomes due now.
    pub(super) async fn make_due(&self, stream_id: &str, now_ms: i64) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE outbox SET next_attempt_at = ?2 \
             WHERE stream_id = ?1 AND status IN ('queued', 'retrying') AND next_attempt_at > ?2",
        )
        .bind(stream_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Clears claims on pending SETs: `owner`'s, or with `None` every one (at start: this
    /// process holds the writer lock, so any claim is a dead process's).
    pub(super) async fn release_claims(&self, owner: Option<&str>) -> Result<u64, StoreError> {
        let r = sqlx::query(RELEASE_CLAIMS)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// When the next subject head may be claimed: its due time, or its lease's end if later.
    pub(super) async fn next_due_at(&self, stream_id: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(MAX(o.next_attempt_at, COALESCE(o.claimed_until + 1, 0))) AS due FROM outbox o \
             WHERE o.stream_id = ? AND o.status IN ('queued', 'retrying') \
             AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.stream_id = o.stream_id \
                 AND p.subject_key = o.subject_key AND p.status IN ('queued', 'retrying') AND p.seq < o.seq)",
        )
        .bind(stream_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("due")?)
    }

    pub(super) async fn record_attempt(
        &self,
        jti: &str,
        owner: Option<&str>,
        attempt: &Attempt,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write(Write::Attempt {
            jti: jti.to_owned(),
            owner: owner.map(str::to_owned),
            attempt: attempt.clone(),
            now_ms,
        })
        .await
    }

    pub(super) async fn probe_write(&self, now_ms: i64) -> Result<(), StoreError> {
        self.write(Write::Probe { now_ms }).await.map(|_| ())
    }

    pub(super) fn writer_running(&self) -> bool {
        !self.writer.is_closed()
    }

    pub(super) async fn delivery_status(
        &self,
        jti: &str,
    ) -> Result<Option<DeliveryStatus>, StoreError> {
        let row = sqlx::query("SELECT status FROM outbox WHERE jti = ?")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let s: String = r.try_get("status")?;
            DeliveryStatus::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("status {s:?}")))
        })
        .transpose()
    }

    pub(super) async fn prune_batch(
        &self,
        status: DeliveryStatus,
        before_ms: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let r = sqlx::query(
            // A SET newer than a kept failed or dead one of its subject stays as long as that
            // one does: it is what refuses a manual retry that would put stale state last.
            "DELETE FROM outbox WHERE seq IN (SELECT o.seq FROM outbox o INDEXED BY outbox_finished_age \
             WHERE o.status = ?1 AND o.status IN ('delivered', 'failed', 'dead') AND o.updated_at < ?2 \
             AND NOT EXISTS (SELECT 1 FROM outbox f WHERE f.stream_id = o.stream_id \
                 AND f.subject_key = o.subject_key AND f.seq < o.seq AND f.status IN ('failed', 'dead')) \
             LIMIT +?3)",
        )
        .bind(status.as_str())
        .bind(before_ms)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn outbox_get(&self, jti: &str) -> Result<Option<OutboxRow>, StoreError> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE jti = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::outbox).transpose()
    }

    pub(super) async fn outbox_list(&self, f: &OutboxFilter) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR subject_key = ?2) \
             AND (?3 IS NULL OR seq < ?3) ORDER BY seq DESC LIMIT ?4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(f.status.map(DeliveryStatus::as_str))
            .bind(f.subject_key.as_deref())
            .bind(f.before_seq)
            .bind(i64::from(f.limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::outbox).collect()
    }

    pub(super) async fn requeue(
        &self,
        jti: &str,
        now_ms: i64,
    ) -> Result<Option<OutboxRow>, StoreError> {
        let updated = sqlx::query(
            "UPDATE outbox SET status = 'queued', attempts = 0, queued_at = ?2, next_attempt_at = ?2, updated_at = ?2, \
             verify_failing_since = NULL \
             WHERE jti = ?1 AND status IN ('failed', 'dead') \
             AND NOT EXISTS (SELECT 1 FROM outbox n WHERE n.stream_id = outbox.stream_id \
                 AND n.subject_key = outbox.subject_key AND n.seq > outbox.seq)",
        )
        .bind(jti)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        let row = self.outbox_get(jti).await?;
        match (&row, updated.rows_affected()) {
            (Some(r), 0) if matches!(r.status, DeliveryStatus::Failed | DeliveryStatus::Dead) => {
                Err(StoreError::Conflict(format!(
                    "a newer SET for this subject exists; re-sending {jti} would put stale state last. \
                     Send the subject's current state as a new signal instead"
                )))
            }
            (Some(r), 0) => Err(StoreError::Conflict(format!(
                "SET {jti} is {}; only failed or dead SETs can be retried",
                r.status.as_str()
            ))),
            _ => Ok(row),
        }
    }

    pub(super) async fn pending_with_kid(&self, kid: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(PENDING_WITH_KID)
            .bind(kid)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    pub(super) async fn status_counts(&self) -> Result<Vec<(DeliveryStatus, i64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let s: String = r.try_get("status")?;
                let n: i64 = r.try_get("n")?;
                let s = DeliveryStatus::parse(&s)
                    .ok_or_else(|| StoreError::Corrupt(format!("status {s:?}")))?;
                Ok((s, n))
            })
            .collect()
    }

    pub(super) async fn audit(
        &self,
        f: &super::AuditFilter,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, actor_id, action, target, outcome, detail FROM audit_log \
             WHERE (?1 IS NULL OR instr(lower(target), lower(?1)) > 0) AND (?2 IS NULL OR action = ?2) \
             AND (?3 IS NULL OR actor = ?3) AND (?4 IS NULL OR at >= ?4) AND (?6 IS NULL OR actor_id = ?6) \
             ORDER BY id DESC LIMIT ?5",
        )
        .bind(f.target_contains.as_deref())
        .bind(f.action.as_deref())
        .bind(f.actor.as_deref())
        .bind(f.since)
        .bind(i64::from(f.limit))
        .bind(f.actor_id.as_deref())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    actor_id: r.try_get("actor_id")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    pub(super) async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit(&super::AuditFilter {
            limit,
            ..Default::default()
        })
        .await
    }
}

/// Stores an idempotent response unless the key is taken (then nothing is written).
fn insert_idempotency(
    i: &IdempotencyRecord,
) -> sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    sqlx::query(
        "INSERT INTO idempotency (client, key, request_hash, status, body, created_at) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (client, key) DO NOTHING",
    )
    .bind(&i.client)
    .bind(&i.key)
    .bind(&i.request_hash)
    .bind(i64::from(i.status))
    .bind(&i.body)
    .bind(i.created_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DeliveryStatus;

    async fn mem() -> SqliteStore {
        let s = SqliteStore::connect("sqlite::memory:", None)
            .await
            .expect("connect");
        s.migrate().await.expect("migrate");
        s
    }

    #[tokio::test]
    async fn clients_round_trip_and_names_are_unique_while_active() {
        let s = mem().await;
        let now = Utc::now();
        let new = NewClient {
            id: "a",
            name: "ueba",
            token_hash: &[1; 32],
            scopes: &["signals:read", "signals:write"],
            created_at: now,
        };
        s.create_client(new.clone()).await.expect("create");
        let dup = NewClient {
            id: "b",
            token_hash: &[2; 32],
            ..new.clone()
        };
        assert!(matches!(
            s.create_client(dup.clone()).await,
            Err(StoreError::Conflict(_))
        ));
        let found = s
            .client_by_token_hash(&[1; 32])
            .await
            .expect("q")
            .expect("found");
        assert_eq!(found.scopes, vec!["signals:read", "signals:write"]);
        s.revoke_client("ueba", now)
            .await
            .expect("revoke")
            .expect("was active");
        assert!(s.client_by_token_hash(&[1; 32]).await.expect("q").is_none());
        s.create_client(dup)
            .await
            .expect("name reusable after revoke");
        assert_eq!(s.list_clients().await.expect("list").len(), 2);
    }

    fn row(jti: &str, subject: &str) -> NewOutbox {
        NewOutbox {
            jti: jti.into(),
            stream_id: "okta".into(),
            subject_key: subject.into(),
            subject: "{}".into(),
            event_type: "user-risk".into(),
            set_jwt: "a.b.c".into(),
            client: "c".into(),
            kid: "k".into(),
            now_ms: 1,
        }
    }

    #[tokio::test]
    async fn group_commit_keeps_each_write_atomic_and_idempotency_exclusive() {
        let s = mem().await;
        let idem = |k: &str| IdempotencyRecord {
            client: "c".into(),
            key: k.into(),
            request_hash: vec![1],
            status: 202,
            body: "{}".into(),
            created_at: 1,
        };
        // Many concurrent acceptances; two share an idempotency key: exactly one wins.
        let mut tasks = Vec::new();
        for i in 0..50 {
            let s = s.clone();
            let key = if i < 2 {
                "same".to_owned()
            } else {
                format!("k{i}")
            };
            tasks.push(tokio::spawn(async move {
                let r = row(&format!("j{i}"), &format!("s{}", i % 5));
                s.accept_signals(std::slice::from_ref(&r), &[], Some(&idem(&key)))
                    .await
            }));
        }
        let mut conflicts = 0;
        for t in tasks {
            match t.await.expect("join") {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => conflicts += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(conflicts, 1);
        let counts = s.status_counts().await.expect("counts");
        assert_eq!(counts, vec![(DeliveryStatus::Queued, 49)]);
        // Heads per subject, oldest first; an attempt moves the head on.
        let due = s.claim_due("okta", "w", 10, 1_000, 100).await.expect("due");
        assert_eq!(due.len(), 5);
        let head = due.first().expect("head").clone();
        s.record_attempt(&head.jti, None, &Attempt::Delivered { http_status: 202 }, 2)
            .await
            .expect("record");
        s.release_claims(None).await.expect("release");
        let due = s.claim_due("okta", "w", 10, 1_000, 100).await.expect("due");
        assert_eq!(due.len(), 5);
        assert!(due.iter().all(|r| r.jti != head.jti));
        let retry = due.first().expect("head").clone();
        s.record_attempt(
            &retry.jti,
            None,
            &Attempt::Retry {
                http_status: Some(503),
                err: None,
                description: None,
                error: "x".into(),
                next_attempt_at: 100,
                verify_failure: false,
            },
            3,
        )
        .await
        .expect("record");
        s.release_claims(None).await.expect("release");
        let due = s.claim_due("okta", "w", 10, 1_000, 100).await.expect("due");
        assert!(
            due.iter().all(|r| r.subject_key != retry.subject_key),
            "a retrying head blocks its subject"
        );
        s.release_claims(None).await.expect("release");
        assert_eq!(s.next_due_at("okta").await.expect("next"), Some(1));
    }

    #[tokio::test]
    async fn a_stream_that_is_not_enabled_yields_no_claims() {
        crate::store::shared_tests::a_stream_that_is_not_enabled_yields_no_claims(
            crate::store::Store::from_sqlite(mem().await),
        )
        .await;
    }

    #[tokio::test]
    async fn claims_keep_subject_order_exclude_each_other_and_expire() {
        let s = mem().await;
        s.accept_signals(&[row("a1", "a"), row("a2", "a"), row("b1", "b")], &[], None)
            .await
            .expect("accept");
        // Two owners at once: never the same row; a subject's second row never while its first
        // is pending.
        let (x, y) = tokio::join!(
            s.claim_due("okta", "x", 10, 1_000, 10),
            s.claim_due("okta", "y", 10, 1_000, 10)
        );
        let mut got: Vec<String> = x
            .expect("x")
            .into_iter()
            .chain(y.expect("y"))
            .map(|r| r.jti)
            .collect();
        got.sort();
        assert_eq!(got, ["a1", "b1"]);
        assert!(
            s.claim_due("okta", "z", 500, 1_000, 10)
                .await
                .expect("z")
                .is_empty()
        );
        assert_eq!(s.next_due_at("okta").await.expect("next"), Some(1011));
        // a1's owner dies: after its lease another owner takes a1, not a2.
        let took = s.claim_due("okta", "z", 1_011, 1_000, 10).await.expect("z");
        let took: Vec<&str> = took.iter().map(|r| r.jti.as_str()).collect();
        assert_eq!(took, ["a1", "b1"]);
        // The old owners' late outcomes are not applied; the new owner's is.
        let delivered = Attempt::Delivered { http_status: 202 };
        for old in ["x", "y"] {
            assert!(
                !s.record_attempt("a1", Some(old), &delivered, 1_100)
                    .await
                    .expect("r")
            );
        }
        assert!(
            s.record_attempt("a1", Some("z"), &delivered, 1_100)
                .await
                .expect("r")
        );
        assert!(
            !s.record_attempt("a1", Some("z"), &delivered, 1_101)
                .await
                .expect("twice")
        );
        // a1 done: a2 is the head now.
        let next = s.claim_due("okta", "x", 1_200, 1_000, 10).await.expect("x");
        assert_eq!(
            next.iter().map(|r| r.jti.as_str()).collect::<Vec<_>>(),
            ["a2"]
        );
        // Releasing: an owner's own claims only; `None` (SQLite's start) all of them.
        assert_eq!(s.release_claims(Some("nobody")).await.expect("rel"), 0);
        assert_eq!(s.release_claims(Some("x")).await.expect("rel"), 1);
        assert_eq!(s.release_claims(None).await.expect("rel"), 1);
        assert_eq!(
            s.claim_due("okta", "y", 1_200, 1_000, 10)
                .await
                .expect("y")
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn outcomes_only_move_a_set_forward() {
        let s = mem().await;
        s.accept_signals(&[row("a", "s1"), row("b", "s2")], &[], None)
            .await
            .expect("accept");
        let retry = |verify_failure| Attempt::Retry {
            http_status: Some(400),
            err: Some("invalid_key".into()),
            description: Some("No key".into()),
            error: "x".into(),
            next_attempt_at: 50,
            verify_failure,
        };
        // A verify refusal starts the window once; later ones and other retries keep its start.
        assert!(
            s.record_attempt("a", None, &retry(true), 10)
                .await
                .expect("r")
        );
        assert!(
            s.record_attempt("a", None, &retry(true), 20)
                .await
                .expect("r")
        );
        let a = s.outbox_get("a").await.expect("get").expect("a");
        assert_eq!(a.verify_failing_since, Some(10));
        assert_eq!(a.last_err.as_deref(), Some("invalid_key"));
        assert!(
            s.record_attempt("a", None, &retry(false), 25)
                .await
                .expect("r")
        );
        let a = s.outbox_get("a").await.expect("get").expect("a");
        assert_eq!(a.verify_failing_since, Some(10));
        assert!(
            s.record_attempt("a", None, &Attempt::Delivered { http_status: 202 }, 30)
                .await
                .expect("r")
        );
        // A late retry (another writer, a duplicate) neither applies nor counts.
        assert!(
            !s.record_attempt("a", None, &retry(false), 40)
                .await
                .expect("r")
        );
        let a = s.outbox_get("a").await.expect("get").expect("a");
        assert_eq!(a.status, DeliveryStatus::Delivered);
        assert_eq!(a.attempts, 4);
        assert_eq!(a.verify_failing_since, None);
        let dead = Attempt::Dead {
            http_status: None,
            error: "old".into(),
        };
        assert!(!s.record_attempt("a", None, &dead, 41).await.expect("r"));
        // One final status never turns into another.
        assert!(s.record_attempt("b", None, &dead, 42).await.expect("r"));
        let failed = Attempt::Failed {
            http_status: 400,
            err: None,
            description: None,
            error: "x".into(),
        };
        assert!(!s.record_attempt("b", None, &failed, 43).await.expect("r"));
        assert!(
            !s.record_attempt("b", None, &Attempt::Delivered { http_status: 202 }, 44)
                .await
                .expect("r")
        );
        let b = s.outbox_get("b").await.expect("get").expect("b");
        assert_eq!(b.status, DeliveryStatus::Dead);
        // A manual retry is the one way back.
        s.requeue("b", 45).await.expect("requeue").expect("b");
        assert!(
            s.record_attempt("b", None, &Attempt::Delivered { http_status: 202 }, 46)
                .await
                .expect("r")
        );
    }

    #[tokio::test]
    async fn a_group_larger_than_a_chunk_keeps_every_row_every_outcome_and_the_last_state() {
        let s = mem().await;
        let n = FLUSH_CHUNK * 2 + 3;
        let jti = |i: usize| format!("j{i:04}");
        let rows: Vec<NewOutbox> = (0..n).map(|i| row(&jti(i), "u")).collect();
        let states: Vec<StateUpdate> = (0..n)
            .map(|i| StateUpdate {
                stream_id: "okta".into(),
                kind: "user-risk".into(),
                subject_key: "u".into(),
                value: format!("v{i}"),
                jti: Some(jti(i)),
                now_ms: 1,
            })
            .collect();
        s.accept_signals(&rows, &states, None)
            .await
            .expect("accept");
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&s.pool)
            .await
            .expect("count");
        assert_eq!(count, i64::try_from(n).expect("n"));
        let stored: (String, Option<String>) =
            sqlx::query_as("SELECT value, jti FROM subject_state WHERE subject_key = 'u'")
                .fetch_one(&s.pool)
                .await
                .expect("state");
        assert_eq!(stored, (format!("v{}", n - 1), Some(jti(n - 1))));

        // Every outcome at once, so they share groups that span chunks; each is answered for
        // its own SET.
        let delivered = Attempt::Delivered { http_status: 202 };
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            let (s, delivered, j) = (s.clone(), delivered.clone(), jti(i));
            set.spawn(async move { s.record_attempt(&j, None, &delivered, 2).await });
        }
        // One more for a SET that does not exist: answered "not applied".
        let (s2, d2) = (s.clone(), delivered.clone());
        let missing = tokio::spawn(async move { s2.record_attempt("nope", None, &d2, 2).await });
        while let Some(answer) = set.join_next().await {
            assert!(answer.expect("join").expect("record"));
        }
        assert!(!missing.await.expect("join").expect("record"));
        let delivered_count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'delivered'")
                .fetch_one(&s.pool)
                .await
                .expect("count");
        assert_eq!(delivered_count, i64::try_from(n).expect("n"));
    }

    #[tokio::test]
    async fn states_committed_before_a_restart_are_loaded_and_new_subjects_read_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("s.db");
        let url = format!("sqlite://{}", db.display());
        let state = StateUpdate {
            stream_id: "okta".into(),
            kind: "user-risk".into(),
            subject_key: "u".into(),
            value: "high".into(),
            jti: Some("a".into()),
            now_ms: 1,
        };
        {
            let s = SqliteStore::connect(&url, Some(&db))
                .await
                .expect("connect");
            s.migrate().await.expect("migrate");
            s.accept_signals(&[row("a", "u")], &[state], None)
                .await
                .expect("accept");
            s.close().await;
        }
        let s = SqliteStore::connect(&url, Some(&db)).await.expect("reopen");
        s.migrate().await.expect("migrate");
        // From memory: the pool is closed, so a database read would fail.
        s.pool.close().await;
        assert_eq!(
            s.subject_state("okta", "user-risk", "u")
                .await
                .expect("cached"),
            Some(SubjectState {
                value: "high".into(),
                jti: Some("a".into())
            })
        );
        assert_eq!(
            s.subject_state("okta", "user-risk", "never-seen")
                .await
                .expect("known absent"),
            None
        );
    }

    #[tokio::test]
    async fn a_failed_set_forgets_its_subject_state_by_jti() {
        let s = mem().await;
        let state = |jti: &str| StateUpdate {
            stream_id: "okta".into(),
            kind: "user-risk".into(),
            subject_key: "u".into(),
            value: "high".into(),
            jti: Some(jti.into()),
            now_ms: 1,
        };
        s.accept_signals(&[row("a", "u")], &[state("a")], None)
            .await
            .expect("accept");
        let st = s.subject_state("okta", "user-risk", "u").await.expect("q");
        assert_eq!(
            st,
            Some(SubjectState {
                value: "high".into(),
                jti: Some("a".into())
            })
        );
        let detail: Vec<(i64, i64, i64, String)> =
            sqlx::query_as("EXPLAIN QUERY PLAN DELETE FROM subject_state WHERE jti = 'a'")
                .fetch_all(&s.pool)
                .await
                .expect("plan");
        assert!(
            detail.iter().any(|r| r.3.contains("subject_state_jti")),
            "the writer's look-up by jti uses the index: {detail:?}"
        );
        let failed = Attempt::Failed {
            http_status: 400,
            err: None,
            description: None,
            error: "x".into(),
        };
        s.record_attempt("a", None, &failed, 2)
            .await
            .expect("record");
        assert_eq!(
            s.subject_state("okta", "user-risk", "u").await.expect("q"),
            None
        );
    }

    #[tokio::test]
    async fn delivered_outcomes_find_their_sets_by_jti_not_by_scanning_the_pending_ones() {
        let s = mem().await;
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {DELIVERED_FROM_JSON}"
        )))
        .bind("[]")
        .fetch_all(&s.pool)
        .await
        .expect("plan");
        let steps: Vec<&str> = plan.iter().map(|r| r.3.as_str()).collect();
        assert!(
            steps.first().is_some_and(|d| d.starts_with("SCAN j"))
                && steps
                    .iter()
                    .any(|d| d.contains("outbox USING INDEX sqlite_autoindex_outbox")),
            "outcomes outside, the outbox by its jti index inside: {steps:?}"
        );
    }

    #[tokio::test]
    async fn claim_release_and_key_counts_read_only_the_pending_sets() {
        let s = mem().await;
        for sql in [RELEASE_CLAIMS, PENDING_WITH_KID] {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                    .bind("w")
                    .fetch_all(&s.pool)
                    .await
                    .expect("plan");
            // A pending (partial) index, or the status index searched by status: never a scan
            // of every SET.
            assert!(
                plan.iter().all(|r| !r.3.starts_with("SCAN outbox"))
                    && plan.iter().any(|r| {
                        r.3.starts_with("SEARCH outbox USING INDEX outbox_pending_")
                            || r.3.contains("USING INDEX outbox_status_seq (status=?)")
                    }),
                "{sql}: {plan:?}"
            );
        }
        // And they still find what they count or release.
        let mut r = row("k1", "u");
        r.kid = "kid-1".into();
        s.accept_signals(&[r, row("k2", "v")], &[], None)
            .await
            .expect("accept");
        assert_eq!(s.pending_with_kid("kid-1").await.expect("count"), 1);
        assert_eq!(
            s.claim_due("okta", "w", 10, 1_000, 10)
                .await
                .expect("due")
                .len(),
            2
        );
        assert_eq!(s.release_claims(Some("w")).await.expect("release"), 2);
        assert_eq!(
            s.claim_due("okta", "x", 10, 1_000, 10)
                .await
                .expect("due")
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn pruning_deletes_finished_sets_in_batches_and_never_pending_ones() {
        let s = mem().await;
        let rows: Vec<NewOutbox> = (0..7)
            .map(|i| row(&format!("j{i}"), &format!("s{i}")))
            .collect();
        s.accept_signals(&rows, &[], None).await.expect("accept");
        for (jti, at) in [("j0", 100), ("j1", 100), ("j2", 100), ("j3", 900)] {
            s.record_attempt(jti, None, &Attempt::Delivered { http_status: 202 }, at)
                .await
                .expect("record");
        }
        let failed = Attempt::Failed {
            http_status: 400,
            err: None,
            description: None,
            error: "x".into(),
        };
        s.record_attempt("j4", None, &failed, 100)
            .await
            .expect("record");
        // j5, j6 stay queued, however old.
        assert_eq!(
            s.prune_batch(DeliveryStatus::Delivered, 500, 2)
                .await
                .expect("prune"),
            2,
            "one batch is at most `limit` rows"
        );
        assert_eq!(
            s.prune_batch(DeliveryStatus::Delivered, 500, 2)
                .await
                .expect("prune"),
            1
        );
        assert_eq!(
            s.prune_batch(DeliveryStatus::Delivered, 500, 2)
                .await
                .expect("prune"),
            0
        );
        assert!(
            s.outbox_get("j3").await.expect("get").is_some(),
            "too young"
        );
        assert_eq!(
            s.prune_batch(DeliveryStatus::Queued, i64::MAX, 100)
                .await
                .expect("prune"),
            0,
            "pending SETs are never pruned"
        );
        assert_eq!(
            s.prune_batch(DeliveryStatus::Failed, 500, 100)
                .await
                .expect("prune"),
            1
        );
        let mut counts = s.status_counts().await.expect("counts");
        counts.sort_by_key(|(st, _)| st.as_str());
        assert_eq!(
            counts,
            vec![(DeliveryStatus::Delivered, 1), (DeliveryStatus::Queued, 2)]
        );
    }

    #[tokio::test]
    async fn a_set_newer_than_a_kept_failed_one_outlives_its_retention_so_retry_stays_refused() {
        let s = mem().await;
        let rows = vec![row("old", "u"), row("new", "u")];
        s.accept_signals(&rows, &[], None).await.expect("accept");
        let failed = Attempt::Failed {
            http_status: 400,
            err: None,
            description: None,
            error: "x".into(),
        };
        s.record_attempt("old", None, &failed, 100)
            .await
            .expect("record");
        s.record_attempt("new", None, &Attempt::Delivered { http_status: 202 }, 100)
            .await
            .expect("record");
        // The delivered one is past retention, but the failed one before it is still kept.
        assert_eq!(
            s.prune_batch(DeliveryStatus::Delivered, 500, 100)
                .await
                .expect("prune"),
            0
        );
        assert!(matches!(
            s.requeue("old", 1000).await,
            Err(StoreError::Conflict(_))
        ));
        // Once the failed one goes, so may the newer one.
        assert_eq!(
            s.prune_batch(DeliveryStatus::Failed, 500, 100)
                .await
                .expect("prune"),
            1
        );
        assert_eq!(
            s.prune_batch(DeliveryStatus::Delivered, 500, 100)
                .await
                .expect("prune"),
            1
        );
    }

    #[tokio::test]
    async fn the_probe_commits_through_the_writer() {
        let s = mem().await;
        assert!(s.writer_running());
        s.probe_write(5).await.expect("probe");
        s.probe_write(6).await.expect("probe again");
        let at: i64 = sqlx::query_scalar("SELECT at FROM store_probe WHERE id = 1")
            .fetch_one(&s.pool)
            .await
            .expect("row");
        assert_eq!(at, 6);
        sqlx::query(
            "CREATE TRIGGER no_probe BEFORE UPDATE ON store_probe BEGIN SELECT RAISE(ABORT, 'disk full'); END",
        )
        .execute(&s.pool)
        .await
        .expect("trigger");
        assert!(s.probe_write(7).await.is_err());
    }

    #[tokio::test]
    async fn audit_is_append_only() {
        let s = mem().await;
        s.append_audit(NewAudit {
            at: Utc::now(),
            actor: "cli",
            actor_id: "cli",
            action: "key.generate",
            target: Some("kid"),
            outcome: "ok",
            detail: None,
        })
        .await
        .expect("append");
        assert!(
            sqlx::query("DELETE FROM audit_log")
                .execute(&s.pool)
                .await
                .is_err()
        );
        assert!(
            sqlx::query("UPDATE audit_log SET actor = 'x'")
                .execute(&s.pool)
                .await
                .is_err()
        );
        assert_eq!(s.recent_audit(10).await.expect("recent").len(), 1);
    }
}
