//! The group writer: one OS thread owns the hot writes and its own SQLite connection (rusqlite, on
//! the same `libsqlite3` as sqlx's pool). It takes every write that is waiting, runs them in one
//! transaction and answers each caller after the commit, so N concurrent acceptances or delivery
//! outcomes cost one fsync instead of N. A caller's answer still means "on disk".
//!
//! Through sqlx every statement was a message to the connection's own thread and back (BEGIN,
//! each statement, COMMIT: two context switches each); here a group costs one wake-up of this
//! thread, whatever its statements.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::state_cache::{self, StateCache};
use super::{OUTBOX_COLUMNS, rows};
use crate::store::{
    Attempt, IdempotencyRecord, NewOutbox, OutboxRow, StateUpdate, StoreError, SubjectState,
};

/// A reply from the group writer: whether the write changed anything.
pub(super) type Reply = oneshot::Sender<Result<bool, StoreError>>;

/// A write that goes through the group writer.
#[derive(Debug)]
pub(super) enum Write {
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
pub(super) const GROUP_MAX: usize = 512;

/// Under load, the shortest time between two commits (see [`run`]).
const GROUP_INTERVAL: Duration = Duration::from_millis(2);

/// Rows per `json_each` statement. A group can gather thousands (16 batches of 100 signals), and
/// its JSON text is copied by SQLite and parsed again: in chunks, a large group's writes hold
/// about a megabyte at once instead of several, for a statement per 256 rows.
pub(super) const FLUSH_CHUNK: usize = 256;

/// Inserts an idempotency record unless its key is taken (also the pool's statement).
pub(super) const INSERT_IDEMPOTENCY: &str = "INSERT INTO idempotency (client, key, request_hash, status, body, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (client, key) DO NOTHING";

/// Marks SETs delivered from a JSON array of `[jti, http status, owner or null, time]`. The
/// unary `+` keeps the planner off the status index (it chose to scan every pending SET per
/// outcome); each outcome looks its SET up by `jti` instead.
pub(super) const DELIVERED_FROM_JSON: &str = "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, \
     delivered_at = j.value ->> 3, updated_at = j.value ->> 3, last_http_status = j.value ->> 1, \
     verify_failing_since = NULL, claimed_by = NULL, claimed_until = NULL \
     FROM json_each(?1) AS j \
     WHERE outbox.jti = j.value ->> 0 AND +outbox.status IN ('queued', 'retrying') \
     AND (j.value ->> 2 IS NULL OR outbox.claimed_by = j.value ->> 2) RETURNING outbox.jti";

/// Where the writer's connection opens: the file, or the pool's shared in-memory database.
pub(super) enum Target {
    File(PathBuf),
    /// A `file:` URI naming a shared-cache in-memory database (it lives while one connection
    /// to it is open: the pool keeps one).
    Memory(String),
}

impl Target {
    fn open(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match self {
            Self::File(path) => Connection::open_with_flags(path, flags)?,
            Self::Memory(uri) => Connection::open_with_flags(
                uri,
                flags | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_SHARED_CACHE,
            )?,
        };
        // As the pool's connections: WAL (a property of the file, set by the pool first),
        // `synchronous=FULL` so a commit survives power loss, foreign keys, a busy timeout.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }
}

/// Starts the writer thread. It stops after a [`Write::Close`] or when every sender is gone.
pub(super) fn spawn(
    target: Target,
    states: Arc<StateCache>,
    rx: mpsc::Receiver<(Write, Reply)>,
) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || run(&target, &states, rx))
        .map(|_| ())
        .map_err(|e| StoreError::Setup(format!("cannot start the SQLite writer thread: {e}")))
}

fn run(target: &Target, states: &StateCache, mut rx: mpsc::Receiver<(Write, Reply)>) {
    let mut conn: Option<Connection> = None;
    let mut batch = Vec::with_capacity(GROUP_MAX);
    let mut closing = false;
    // When the last group committed and how many writes it had.
    let mut last = (std::time::Instant::now(), 0);
    while !closing && rx.blocking_recv_many(&mut batch, GROUP_MAX) > 0 {
        // Under load (the last group had company), wait for more writes until a group interval
        // passed since the last commit: every commit writes its dirty pages to the WAL again and
        // fsyncs it, so a group of 40 writes costs little more than one of 4. An idle service
        // commits a lone write at once.
        if last.1 > 1 {
            let since = last.0.elapsed();
            if since < GROUP_INTERVAL {
                std::thread::sleep(GROUP_INTERVAL - since);
            }
            while batch.len() < GROUP_MAX
                && let Ok(w) = rx.try_recv()
            {
                batch.push(w);
            }
        }
        last.1 = batch.len();
        if let Some(at) = batch.iter().position(|(w, _)| matches!(w, Write::Close)) {
            // What came after the close is answered "stopped" when the channel drops.
            batch.truncate(at + 1);
            closing = true;
        }
        let (mut writes, replies): (Vec<Write>, Vec<_>) = batch.drain(..).unzip();
        let result = match &mut conn {
            Some(c) => commit_group(c, &writes),
            None => match target.open() {
                Ok(c) => commit_group(conn.insert(c), &writes),
                Err(e) => Err(e),
            },
        };
        last.0 = std::time::Instant::now();
        match result {
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
                // A connection in an unknown state is opened anew for the next group.
                conn = None;
                let text = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Setup(format!("database error: {text}"))));
                }
            }
        }
    }
}

/// The answers of a group's writes, the rows each of its claims took, in order,
/// and the subject states it changed, in order.
type GroupResult = (
    Vec<Result<bool, StoreError>>,
    VecDeque<Vec<OutboxRow>>,
    Vec<state_cache::StateChange>,
);

fn commit_group(conn: &mut Connection, writes: &[Write]) -> rusqlite::Result<GroupResult> {
    let mut claimed = VecDeque::new();
    let mut changes = Vec::new();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes: Vec<Result<bool, StoreError>> = Vec::with_capacity(writes.len());
    // The common writes are gathered and written a chunk per statement: new SETs, subject
    // states, and `delivered` outcomes. They commute with each other (a delivered outcome
    // updates an older, committed row; the new rows are not claimable before this commit), so
    // they are flushed together before any other write, which keeps its place in the order.
    let mut gathered = Gathered::default();
    for w in writes {
        match w {
            Write::Accept {
                rows: new_rows,
                states: new_states,
                idempotency,
            } => {
                if let Some(i) = idempotency {
                    let inserted = tx.prepare_cached(INSERT_IDEMPOTENCY)?.execute(params![
                        i.client,
                        i.key,
                        i.request_hash,
                        i64::from(i.status),
                        i.body,
                        i.created_at
                    ])?;
                    if inserted == 0 {
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
                gathered.flush(&tx, &mut outcomes)?;
                let applied = record_attempt(&tx, jti, owner.as_deref(), attempt, *now_ms)? > 0;
                if applied && matches!(attempt, Attempt::Failed { .. } | Attempt::Dead { .. }) {
                    // Okta never got this value: forget it as the subject's last state, so the
                    // next signal is not suppressed as unchanged nor claims it as previous.
                    let mut forget = tx.prepare_cached(
                        "DELETE FROM subject_state WHERE jti = ?1 \
                         RETURNING stream_id, kind, subject_key",
                    )?;
                    let forgotten = forget.query_map(params![jti], |r| {
                        Ok(state_cache::key(
                            &r.get::<_, String>(0)?,
                            &r.get::<_, String>(1)?,
                            &r.get::<_, String>(2)?,
                        ))
                    })?;
                    for key in forgotten {
                        changes.push(state_cache::StateChange {
                            key: key?,
                            state: None,
                        });
                    }
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
                gathered.flush(&tx, &mut outcomes)?;
                let sql: &str = if *probe { &CLAIM_PROBE } else { &CLAIM_DUE };
                let mut claim = tx.prepare_cached(sql)?;
                let mut found = claim.query(params![
                    stream_id,
                    now_ms,
                    owner,
                    now_ms.saturating_add(*lease_ms),
                    i64::from(*limit)
                ])?;
                let mut rows_found = Vec::new();
                let mut bad = None;
                while let Some(r) = found.next()? {
                    match rows::outbox(r) {
                        Ok(row) => rows_found.push(row),
                        Err(e) => bad = Some(e),
                    }
                }
                match bad {
                    None => {
                        claimed.push_back(rows_found);
                        outcomes.push(Ok(true));
                    }
                    Some(e) => {
                        claimed.push_back(Vec::new());
                        outcomes.push(Err(e));
                    }
                }
            }
            Write::Close => outcomes.push(Ok(true)),
            Write::Probe { now_ms } => {
                gathered.flush(&tx, &mut outcomes)?;
                tx.prepare_cached(
                    "INSERT INTO store_probe (id, at) VALUES (1, ?1) \
                     ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                )?
                .execute(params![now_ms])?;
                outcomes.push(Ok(true));
            }
        }
    }
    gathered.flush(&tx, &mut outcomes)?;
    tx.commit()?;
    Ok((outcomes, claimed, changes))
}

/// The claim of due SETs: each subject's oldest pending SET only (`NOT EXISTS` an older one), in
/// acceptance order, skipping a paused stream and SETs another worker holds.
static CLAIM_DUE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| claim_sql("AND o.next_attempt_at <= ?2"));
/// The probe's claim: the same, whatever the schedule.
static CLAIM_PROBE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| claim_sql(""));

fn claim_sql(schedule: &str) -> String {
    format!(
        "UPDATE outbox SET claimed_by = ?3, claimed_until = ?4 WHERE seq IN ( \
             SELECT o.seq FROM outbox o INDEXED BY outbox_pending_claim \
             WHERE o.stream_id = ?1 AND o.status IN ('queued', 'retrying') {schedule} \
             AND (o.claimed_until IS NULL OR o.claimed_until < ?2) \
             AND NOT EXISTS (SELECT 1 FROM stream_pause sp WHERE sp.stream_id = ?1 AND sp.paused_until > ?2) \
             AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.stream_id = o.stream_id \
                 AND p.subject_key = o.subject_key AND p.status IN ('queued', 'retrying') AND p.seq < o.seq) \
             ORDER BY o.seq LIMIT ?5) \
         RETURNING {OUTBOX_COLUMNS}"
    )
}

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
    /// Writes the gathered new SETs, subject states (in order: a later state of a subject wins)
    /// and delivered outcomes, a statement per [`FLUSH_CHUNK`] rows; marks each delivered
    /// outcome that applied.
    ///
    /// Each statement reads its rows from one JSON array parameter (`json_each`), so its text
    /// never changes: it is prepared once and stays in the connection's statement cache.
    fn flush(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        outcomes: &mut [Result<bool, StoreError>],
    ) -> rusqlite::Result<()> {
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
            tx.prepare_cached(
                "INSERT INTO outbox (jti, stream_id, subject_key, subject, event_type, set_jwt, client, kid, \
                 status, attempts, created_at, queued_at, next_attempt_at, updated_at) \
                 SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, \
                 j.value ->> 5, j.value ->> 6, j.value ->> 7, 'queued', 0, j.value ->> 8, j.value ->> 8, \
                 j.value ->> 8, j.value ->> 8 FROM json_each(?1) AS j ORDER BY j.key",
            )?
            .execute(params![json])?;
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
            tx.prepare_cached(
                "INSERT INTO subject_state (stream_id, kind, subject_key, value, jti, updated_at) \
                 SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, \
                 j.value ->> 5 FROM json_each(?1) AS j WHERE true ORDER BY j.key \
                 ON CONFLICT (stream_id, kind, subject_key) DO UPDATE SET \
                 value = excluded.value, jti = excluded.jti, updated_at = excluded.updated_at",
            )?
            .execute(params![json])?;
        }
        states.clear();
        for chunk in delivered.chunks(FLUSH_CHUNK) {
            let json = to_json_array(
                chunk
                    .iter()
                    .map(|(_, jti, owner, status, now_ms)| (jti, status, owner, now_ms)),
            )?;
            let mut update = tx.prepare_cached(DELIVERED_FROM_JSON)?;
            let applied = update
                .query_map(params![json], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<HashSet<String>>>()?;
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

/// Rows as one JSON array of arrays, the parameter of a `json_each` statement.
fn to_json_array<T: serde::Serialize>(rows: impl Iterator<Item = T>) -> rusqlite::Result<String> {
    serde_json::to_string(&rows.collect::<Vec<T>>())
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
}

/// Outcome updates only move a SET forward: each applies only while the SET is `queued` or
/// `retrying`. A late or duplicate outcome (another writer, a push recorded twice) never turns
/// `delivered`, `failed` or `dead` back into `retrying`, nor one final status into another.
/// Re-queueing a finished SET is [`super::SqliteStore::requeue`]'s job alone.
///
/// With an `owner`, the outcome applies only while that owner still holds the row's claim (a
/// worker whose lease ended and whose row another worker took writes nothing); it clears the
/// claim. Answers the rows changed (0 or 1).
fn record_attempt(
    tx: &rusqlite::Transaction<'_>,
    jti: &str,
    owner: Option<&str>,
    attempt: &Attempt,
    now_ms: i64,
) -> rusqlite::Result<usize> {
    match attempt {
        Attempt::Delivered { http_status } => tx
            .prepare_cached(
                "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?2, updated_at = ?2, \
                 last_http_status = ?3, verify_failing_since = NULL, claimed_by = NULL, claimed_until = NULL \
                 WHERE jti = ?1 AND status IN ('queued', 'retrying') AND (?4 IS NULL OR claimed_by = ?4)",
            )?
            .execute(params![jti, now_ms, i64::from(*http_status), owner]),
        Attempt::Failed {
            http_status,
            err,
            description,
            error,
        } => tx
            .prepare_cached(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, updated_at = ?2, last_http_status = ?3, \
                 last_err = ?4, last_description = ?5, last_error = ?6, claimed_by = NULL, claimed_until = NULL \
                 WHERE jti = ?1 AND status IN ('queued', 'retrying') AND (?7 IS NULL OR claimed_by = ?7)",
            )?
            .execute(params![
                jti,
                now_ms,
                i64::from(*http_status),
                err,
                description,
                error,
                owner
            ]),
        Attempt::Retry {
            http_status,
            err,
            description,
            error,
            next_attempt_at,
            verify_failure,
        } => tx
            .prepare_cached(
                "UPDATE outbox SET status = 'retrying', attempts = attempts + 1, updated_at = ?2, last_http_status = ?3, \
                 last_err = ?6, last_description = ?7, last_error = ?4, next_attempt_at = ?5, \
                 verify_failing_since = CASE WHEN ?8 THEN COALESCE(verify_failing_since, ?2) ELSE verify_failing_since END, \
                 claimed_by = NULL, claimed_until = NULL \
                 WHERE jti = ?1 AND status IN ('queued', 'retrying') AND (?9 IS NULL OR claimed_by = ?9)",
            )?
            .execute(params![
                jti,
                now_ms,
                http_status.map(i64::from),
                error,
                next_attempt_at,
                err,
                description,
                verify_failure,
                owner
            ]),
        Attempt::Dead { http_status, error } => tx
            .prepare_cached(
                "UPDATE outbox SET status = 'dead', attempts = attempts + 1, updated_at = ?2, last_http_status = ?3, \
                 last_error = ?4, claimed_by = NULL, claimed_until = NULL \
                 WHERE jti = ?1 AND status IN ('queued', 'retrying') AND (?5 IS NULL OR claimed_by = ?5)",
            )?
            .execute(params![
                jti,
                now_ms,
                http_status.map(i64::from),
                error,
                owner
            ]),
    }
}
