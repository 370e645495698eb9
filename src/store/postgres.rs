//! PostgreSQL implementation. Every unit of work is one transaction on a pooled connection (no
//! group-commit writer: the server takes concurrent writers). Migrations take sqlx's advisory
//! lock, so replicas starting together migrate one after the other.

mod oauth;
mod streams;
mod work;

use std::str::FromStr as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row as _};

use super::{
    ApiClient, Attempt, AuditEntry, DeliveryStatus, IdempotencyRecord, NewAudit, NewClient,
    NewOutbox, OutboxFilter, OutboxRow, StateUpdate, StoreError, SubjectState, rows,
    scopes_to_text,
};

const OUTBOX_COLUMNS: &str = "seq, jti, stream_id, subject_key, subject, event_type, set_jwt, client, status, \
    attempts, created_at, queued_at, next_attempt_at, updated_at, delivered_at, last_http_status, last_err, \
    last_description, last_error, verify_failing_since";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/postgres");

#[derive(Clone)]
pub(super) struct PgStore {
    pool: PgPool,
}

/// The pool's options hold the password: show nothing of them.
impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("size", &self.pool.size())
            .field("closed", &self.pool.is_closed())
            .finish_non_exhaustive()
    }
}

/// Outcome updates only move a SET forward: each applies only while the SET is `queued` or
/// `retrying`, and with an `owner` only while that owner holds the row's claim (see the SQLite
/// store's `attempt_query`; the same rules, PostgreSQL's placeholders).
fn attempt_query<'q>(
    jti: &'q str,
    owner: Option<&'q str>,
    attempt: &'q Attempt,
    now_ms: i64,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    match attempt {
        Attempt::Delivered { http_status } => sqlx::query(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = $2, updated_at = $2, \
             last_http_status = $3, verify_failing_since = NULL, claimed_by = NULL, claimed_until = NULL \
             WHERE jti = $1 AND status IN ('queued', 'retrying') AND ($4::text IS NULL OR claimed_by = $4)",
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
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, updated_at = $2, last_http_status = $3, \
             last_err = $4, last_description = $5, last_error = $6, claimed_by = NULL, claimed_until = NULL \
             WHERE jti = $1 AND status IN ('queued', 'retrying') AND ($7::text IS NULL OR claimed_by = $7)",
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
            "UPDATE outbox SET status = 'retrying', attempts = attempts + 1, updated_at = $2, last_http_status = $3, \
             last_err = $6, last_description = $7, last_error = $4, next_attempt_at = $5, \
             verify_failing_since = CASE WHEN $8 THEN COALESCE(verify_failing_since, $2) ELSE verify_failing_since END, \
             claimed_by = NULL, claimed_until = NULL \
             WHERE jti = $1 AND status IN ('queued', 'retrying') AND ($9::text IS NULL OR claimed_by = $9)",
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
            "UPDATE outbox SET status = 'dead', attempts = attempts + 1, updated_at = $2, last_http_status = $3, \
             last_error = $4, claimed_by = NULL, claimed_until = NULL \
             WHERE jti = $1 AND status IN ('queued', 'retrying') AND ($5::text IS NULL OR claimed_by = $5)",
        )
        .bind(jti)
        .bind(now_ms)
        .bind(http_status.map(i64::from))
        .bind(error.as_str())
        .bind(owner),
    }
}

impl PgStore {
    pub(super) async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Some(Duration::from_secs(600)))
            .max_lifetime(Some(Duration::from_secs(3600)))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// The database server's clock, ms since the epoch.
    pub(super) async fn database_time_ms(&self) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT AS now_ms")
                .fetch_one(&self.pool)
                .await?;
        Ok(row.try_get("now_ms")?)
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    pub(super) async fn create_client(&self, new: NewClient<'_>) -> Result<ApiClient, StoreError> {
        let result = sqlx::query(
            "INSERT INTO api_clients (id, name, token_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)",
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
        if !storable(name) {
            return Ok(None);
        }
        let row = sqlx::query(
            "UPDATE api_clients SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL \
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
             WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::client).transpose()
    }

    pub(super) async fn append_audit(&self, e: NewAudit<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, actor_id, action, target, outcome, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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

    pub(super) async fn accept_signals(
        &self,
        rows: &[NewOutbox],
        states: &[StateUpdate],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let intake = PgIntake {
            tx: self.pool.begin().await?,
        };
        intake.commit(rows, states, idempotency).await
    }

    /// Opens an intake's transaction holding the advisory lock of every subject key, so
    /// intakes of one subject on any replica run one after the other: the state read, the
    /// decision and the write are one unit, and a subject's outbox rows are numbered (`seq`) in
    /// the order their transactions commit. The locks go with the transaction (commit, rollback
    /// or a dropped connection).
    pub(super) async fn begin_intake(&self, keys: &[String]) -> Result<PgIntake, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !keys.is_empty() {
            // One order for every replica (by the lock's number), so two intakes never wait on
            // each other in a cycle.
            sqlx::query(
                "SELECT pg_advisory_xact_lock(h) FROM \
                 (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k ORDER BY h) s",
            )
            .bind(keys)
            .execute(&mut *tx)
            .await?;
        }
        Ok(PgIntake { tx })
    }

    pub(super) async fn subject_state(
        &self,
        stream_id: &str,
        kind: &str,
        subject_key: &str,
    ) -> Result<Option<SubjectState>, StoreError> {
        read_subject_state(&self.pool, stream_id, kind, subject_key).await
    }

    pub(super) async fn idempotency(
        &self,
        client: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        if !storable(client) || !storable(key) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT client, key, request_hash, status, body, created_at FROM idempotency \
             WHERE client = $1 AND key = $2",
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
        let r = sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Claims up to `limit` due heads for `owner` until `now_ms + lease_ms`, in one statement:
    /// pending, due, not under a live lease, and no older pending SET of their subject. Rows
    /// another replica is claiming right now are skipped (`SKIP LOCKED`); one it has just
    /// claimed is re-checked on its committed version and left alone.
    /// Pauses a stream's claims until `until_ms` (never shortens a longer pause).
    pub(super) async fn pause_stream(
        &self,
        stream_id: &str,
        until_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO stream_pause (stream_id, paused_until) VALUES ($1, $2) \
             ON CONFLICT (stream_id) DO UPDATE SET paused_until = GREATEST(stream_pause.paused_until, excluded.paused_until)",
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
        let sql = format!(
            "WITH picked AS ( \
                 SELECT o.seq FROM outbox o \
                 WHERE o.stream_id = $1 AND o.status IN ('queued', 'retrying') AND o.next_attempt_at <= $2 \
                 AND (o.claimed_until IS NULL OR o.claimed_until < $2) \
                 AND NOT EXISTS (SELECT 1 FROM stream_pause sp WHERE sp.stream_id = $1 AND sp.paused_until > $2) \
                 AND NOT EXISTS (SELECT 1 FROM streams st WHERE st.stream_id = $1 AND st.status <> 'enabled') \
                 AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.stream_id = o.stream_id \
                     AND p.subject_key = o.subject_key AND p.status IN ('queued', 'retrying') AND p.seq < o.seq) \
                 ORDER BY o.seq LIMIT $5 \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE outbox SET claimed_by = $3, claimed_until = $4 \
             WHERE seq IN (SELECT seq FROM picked) \
             RETURNING {OUTBOX_COLUMNS}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(stream_id)
            .bind(now_ms)
            .bind(owner)
            .bind(now_ms.saturating_add(lease_ms))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut rows = rows
            .iter()
            .map(rows::outbox)
            .collect::<Result<Vec<_>, _>>()?;
        rows.sort_by_key(|r| r.seq);
        Ok(rows)
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
        let sql = format!(
            "WITH picked AS ( \
                 SELECT o.seq FROM outbox o \
                 WHERE o.stream_id = $1 AND o.status IN ('queued', 'retrying') \
                 AND (o.claimed_until IS NULL OR o.claimed_until < $2) \
                 AND NOT EXISTS (SELECT 1 FROM stream_pause sp WHERE sp.stream_id = $1 AND sp.paused_until > $2) \
                 AND NOT EXISTS (SELECT 1 FROM streams st WHERE st.stream_id = $1 AND st.status <> 'enabled') \
                 AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.stream_id = o.stream_id \
                     AND p.subject_key = o.subject_key AND p.status IN ('queued', 'retrying') AND p.seq < o.seq) \
                 ORDER BY o.seq LIMIT 1 \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE outbox SET claimed_by = $3, claimed_until = $4 \
             WHERE seq IN (SELECT seq FROM picked) \
             RETURNING {OUTBOX_COLUMNS}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(stream_id)
            .bind(now_ms)
            .bind(owner)
            .bind(now_ms.saturating_add(lease_ms))
            .fetch_all(&self.pool)
            .await?;
        let mut rows = rows
            .iter()
            .map(rows::outbox)
            .collect::<Result<Vec<_>, _>>()?;
        rows.sort_by_key(|r| r.seq);
        Ok(rows)
    }

    /// Every pending SET of `stream_id` scheduled later than `now_ms` becomes due now.
    pub(super) async fn make_due(&self, stream_id: &str, now_ms: i64) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE outbox SET next_attempt_at = $2 \
             WHERE stream_id = $1 AND status IN ('queued', 'retrying') AND next_attempt_at > $2",
        )
        .bind(stream_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Clears `owner`'s claims on pending SETs (a stopping worker hands back what it did not
    /// push). Other replicas may be alive on this database: with `None`, nothing is cleared;
    /// a dead replica's claims end with their lease.
    pub(super) async fn release_claims(&self, owner: Option<&str>) -> Result<u64, StoreError> {
        let Some(owner) = owner else {
            return Ok(0);
        };
        let r = sqlx::query(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL \
             WHERE status IN ('queued', 'retrying') AND claimed_by = $1",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// When the next subject head may be claimed: its due time, or its lease's end if later.
    pub(super) async fn next_due_at(&self, stream_id: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(GREATEST(o.next_attempt_at, COALESCE(o.claimed_until + 1, 0))) AS due FROM outbox o \
             WHERE o.stream_id = $1 AND o.status IN ('queued', 'retrying') \
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
        let mut tx = self.pool.begin().await?;
        let applied = attempt_query(jti, owner, attempt, now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if applied && matches!(attempt, Attempt::Failed { .. } | Attempt::Dead { .. }) {
            // Okta never got this value: forget it as the subject's last state, so the next
            // signal is not suppressed as unchanged nor claims it as previous.
            sqlx::query("DELETE FROM subject_state WHERE jti = $1")
                .bind(jti)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    pub(super) async fn probe_write(&self, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO store_probe (id, at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        )
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// There is no writer task on PostgreSQL: writes run on the pool while it is open.
    pub(super) fn writer_running(&self) -> bool {
        !self.pool.is_closed()
    }

    pub(super) async fn delivery_status(
        &self,
        jti: &str,
    ) -> Result<Option<DeliveryStatus>, StoreError> {
        read_delivery_status(&self.pool, jti).await
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
            "DELETE FROM outbox WHERE seq IN (SELECT o.seq FROM outbox o \
             WHERE o.status = $1 AND o.status IN ('delivered', 'failed', 'dead') AND o.updated_at < $2 \
             AND NOT EXISTS (SELECT 1 FROM outbox f WHERE f.stream_id = o.stream_id \
                 AND f.subject_key = o.subject_key AND f.seq < o.seq AND f.status IN ('failed', 'dead')) \
             LIMIT $3)",
        )
        .bind(status.as_str())
        .bind(before_ms)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    pub(super) async fn outbox_get(&self, jti: &str) -> Result<Option<OutboxRow>, StoreError> {
        if !storable(jti) {
            return Ok(None);
        }
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE jti = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::outbox).transpose()
    }

    pub(super) async fn outbox_list(&self, f: &OutboxFilter) -> Result<Vec<OutboxRow>, StoreError> {
        if !f.subject_key.as_deref().is_none_or(storable) {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1::text IS NULL OR status = $1) \
             AND ($2::text IS NULL OR subject_key = $2) AND ($3::bigint IS NULL OR seq < $3) \
             ORDER BY seq DESC LIMIT $4"
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
        if !storable(jti) {
            return Ok(None);
        }
        let updated = sqlx::query(
            "UPDATE outbox SET status = 'queued', attempts = 0, queued_at = $2, next_attempt_at = $2, updated_at = $2, \
             verify_failing_since = NULL \
             WHERE jti = $1 AND status IN ('failed', 'dead') \
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
        if !storable(kid) {
            return Ok(0);
        }
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM outbox WHERE kid = $1 AND status IN ('queued', 'retrying')",
        )
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
        let filters = [&f.target_contains, &f.action, &f.actor, &f.actor_id];
        if !filters
            .into_iter()
            .all(|v| v.as_deref().is_none_or(storable))
        {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT id, at, actor, actor_id, action, target, outcome, detail FROM audit_log \
             WHERE ($1::text IS NULL OR strpos(lower(target), lower($1)) > 0) \
             AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR actor = $3) \
             AND ($4::timestamptz IS NULL OR at >= $4) AND ($6::text IS NULL OR actor_id = $6) \
             ORDER BY id DESC LIMIT $5",
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

/// PostgreSQL text cannot hold NUL (SQLite's can), so no stored value contains one: a look-up by
/// such a value (a path parameter `x%00y`) finds nothing, as on SQLite, instead of a server error.
pub(super) fn storable(s: &str) -> bool {
    !s.contains('\0')
}

/// A subject's last value, on the pool or inside an intake's transaction.
async fn read_subject_state<'e>(
    db: impl sqlx::PgExecutor<'e>,
    stream_id: &str,
    kind: &str,
    subject_key: &str,
) -> Result<Option<SubjectState>, StoreError> {
    if ![stream_id, kind, subject_key].into_iter().all(storable) {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT value, jti FROM subject_state WHERE stream_id = $1 AND kind = $2 AND subject_key = $3",
    )
    .bind(stream_id)
    .bind(kind)
    .bind(subject_key)
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(SubjectState {
            value: r.try_get("value")?,
            jti: r.try_get("jti")?,
        })
    })
    .transpose()
}

/// A SET's delivery status, on the pool or inside an intake's transaction.
async fn read_delivery_status<'e>(
    db: impl sqlx::PgExecutor<'e>,
    jti: &str,
) -> Result<Option<DeliveryStatus>, StoreError> {
    if !storable(jti) {
        return Ok(None);
    }
    let row = sqlx::query("SELECT status FROM outbox WHERE jti = $1")
        .bind(jti)
        .fetch_optional(db)
        .await?;
    row.map(|r| {
        let s: String = r.try_get("status")?;
        DeliveryStatus::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("status {s:?}")))
    })
    .transpose()
}

/// An intake in progress: one transaction holding its subjects' advisory locks.
pub(super) struct PgIntake {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
}

impl PgIntake {
    pub(super) async fn subject_state(
        &mut self,
        stream_id: &str,
        kind: &str,
        subject_key: &str,
    ) -> Result<Option<SubjectState>, StoreError> {
        read_subject_state(&mut *self.tx, stream_id, kind, subject_key).await
    }

    pub(super) async fn delivery_status(
        &mut self,
        jti: &str,
    ) -> Result<Option<DeliveryStatus>, StoreError> {
        read_delivery_status(&mut *self.tx, jti).await
    }

    /// Writes the SETs, the subjects' state and the idempotency record, and commits.
    pub(super) async fn commit(
        mut self,
        rows: &[NewOutbox],
        states: &[StateUpdate],
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        let tx = &mut self.tx;
        if let Some(i) = idempotency {
            let inserted = insert_idempotency(i).execute(&mut **tx).await?;
            if inserted.rows_affected() == 0 {
                self.tx.rollback().await?;
                return Err(StoreError::Conflict("idempotency key already used".into()));
            }
        }
        for r in rows {
            sqlx::query(
                "INSERT INTO outbox (jti, stream_id, subject_key, subject, event_type, set_jwt, client, kid, \
                 status, attempts, created_at, queued_at, next_attempt_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', 0, $9, $9, $9, $9)",
            )
            .bind(&r.jti)
            .bind(&r.stream_id)
            .bind(&r.subject_key)
            .bind(&r.subject)
            .bind(&r.event_type)
            .bind(&r.set_jwt)
            .bind(&r.client)
            .bind(&r.kid)
            .bind(r.now_ms)
            .execute(&mut **tx)
            .await?;
        }
        // Concurrent transactions lock subject rows in one order (no deadlock); the sort is
        // stable, so of two updates of one subject the later still wins.
        let mut ordered: Vec<&StateUpdate> = states.iter().collect();
        ordered.sort_by(|a, b| {
            (&a.stream_id, &a.kind, &a.subject_key).cmp(&(&b.stream_id, &b.kind, &b.subject_key))
        });
        for st in ordered {
            sqlx::query(
                "INSERT INTO subject_state (stream_id, kind, subject_key, value, jti, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (stream_id, kind, subject_key) DO UPDATE SET \
                 value = excluded.value, jti = excluded.jti, updated_at = excluded.updated_at",
            )
            .bind(&st.stream_id)
            .bind(&st.kind)
            .bind(&st.subject_key)
            .bind(&st.value)
            .bind(&st.jti)
            .bind(st.now_ms)
            .execute(&mut **tx)
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

/// Stores an idempotent response unless the key is taken (then nothing is written). A
/// concurrent insert of the same key waits for the first one's transaction, then does nothing.
fn insert_idempotency(
    i: &IdempotencyRecord,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(
        "INSERT INTO idempotency (client, key, request_hash, status, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (client, key) DO NOTHING",
    )
    .bind(&i.client)
    .bind(&i.key)
    .bind(&i.request_hash)
    .bind(i64::from(i.status))
    .bind(&i.body)
    .bind(i.created_at)
}

/// Run with `SSF_TEST_BACKEND=postgres` (server: `SSF_TEST_DATABASE_URL`); skipped otherwise.
#[cfg(test)]
mod tests {
    use sqlx::Connection as _;

    use super::*;

    /// A fresh database on the test server, dropped by [`TestDb::drop_db`].
    struct TestDb {
        server: String,
        name: String,
        url: String,
    }

    impl TestDb {
        async fn create() -> Option<Self> {
            if !std::env::var("SSF_TEST_BACKEND").is_ok_and(|b| b == "postgres") {
                return None;
            }
            let server = std::env::var("SSF_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let hex = uuid::Uuid::new_v4().simple().to_string();
            let name = format!("ssf_test_{now}_{}", &hex[..16]);
            let mut conn = sqlx::PgConnection::connect(&server).await.expect("server");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut conn)
                .await
                .expect("create");
            let mut url = url::Url::parse(&server).expect("url");
            url.set_path(&format!("/{name}"));
            Some(Self {
                server,
                name,
                url: url.to_string(),
            })
        }

        async fn store(&self) -> PgStore {
            let s = PgStore::connect(&self.url).await.expect("connect");
            s.migrate().await.expect("migrate");
            s
        }

        async fn drop_db(self) {
            let mut conn = sqlx::PgConnection::connect(&self.server)
                .await
                .expect("server");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await
            .expect("drop");
        }
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
    async fn replicas_starting_together_migrate_one_after_the_other() {
        let Some(db) = TestDb::create().await else {
            return;
        };
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let url = db.url.clone();
            tasks.push(tokio::spawn(async move {
                let s = PgStore::connect(&url).await?;
                s.migrate().await?;
                s.close().await;
                Ok::<_, StoreError>(())
            }));
        }
        for t in tasks {
            t.await.expect("join").expect("every replica migrates");
        }
        db.drop_db().await;
    }

    #[tokio::test]
    async fn accept_is_one_unit_and_idempotency_exclusive() {
        let Some(db) = TestDb::create().await else {
            return;
        };
        let s = db.store().await;
        let idem = |k: &str| IdempotencyRecord {
            client: "c".into(),
            key: k.into(),
            request_hash: vec![1],
            status: 202,
            body: "{}".into(),
            created_at: 1,
        };
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
        assert_eq!(
            s.status_counts().await.expect("counts"),
            vec![(DeliveryStatus::Queued, 49)]
        );
        let due = s.claim_due("okta", "w", 10, 1_000, 100).await.expect("due");
        assert_eq!(due.len(), 5);
        // No stored text holds NUL: a look-up by one finds nothing, as on SQLite.
        assert!(s.outbox_get("j1\0").await.expect("nul").is_none());
        assert!(s.requeue("j1\0", 5).await.expect("nul").is_none());
        // A failed SET forgets its subject's state.
        let state = StateUpdate {
            stream_id: "okta".into(),
            kind: "user-risk".into(),
            subject_key: "u".into(),
            value: "high".into(),
            jti: Some("x".into()),
            now_ms: 1,
        };
        s.accept_signals(&[row("x", "u")], &[state], None)
            .await
            .expect("accept");
        assert!(
            s.subject_state("okta", "user-risk", "u")
                .await
                .expect("q")
                .is_some()
        );
        let failed = Attempt::Failed {
            http_status: 400,
            err: None,
            description: None,
            error: "x".into(),
        };
        assert!(
            s.record_attempt("x", None, &failed, 2)
                .await
                .expect("record")
        );
        assert!(
            !s.record_attempt("x", None, &Attempt::Delivered { http_status: 202 }, 3)
                .await
                .expect("record")
        );
        assert_eq!(
            s.subject_state("okta", "user-risk", "u").await.expect("q"),
            None
        );
        s.close().await;
        db.drop_db().await;
    }

    #[tokio::test]
    async fn audit_is_append_only_and_clients_unique_while_active() {
        let Some(db) = TestDb::create().await else {
            return;
        };
        let s = db.store().await;
        let now = Utc::now();
        let new = NewClient {
            id: "a",
            name: "ueba",
            token_hash: &[1; 32],
            scopes: &["signals:read"],
            created_at: now,
        };
        s.create_client(new.clone()).await.expect("create");
        let dup = NewClient {
            id: "b",
            token_hash: &[2; 32],
            ..new.clone()
        };
        assert!(matches!(
            s.create_client(dup).await,
            Err(StoreError::Conflict(_))
        ));
        s.append_audit(NewAudit {
            at: now,
            actor: "cli",
            actor_id: "cli",
            action: "key.generate",
            target: Some("Kid-1"),
            outcome: "ok",
            detail: None,
        })
        .await
        .expect("append");
        for sql in [
            "DELETE FROM audit_log",
            "UPDATE audit_log SET actor = 'x'",
            "TRUNCATE audit_log",
        ] {
            assert!(sqlx::query(sql).execute(&s.pool).await.is_err(), "{sql}");
        }
        let found = s
            .audit(&crate::store::AuditFilter {
                target_contains: Some("kid".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .expect("audit");
        assert_eq!(found.len(), 1);
        s.close().await;
        db.drop_db().await;
    }
    #[tokio::test]
    async fn a_stream_that_is_not_enabled_yields_no_claims() {
        let Some(db) = TestDb::create().await else {
            return;
        };
        let s = PgStore::connect(&db.url).await.expect("connect");
        s.migrate().await.expect("migrate");
        crate::store::shared_tests::a_stream_that_is_not_enabled_yields_no_claims(
            crate::store::Store::from_postgres(s.clone()),
        )
        .await;
        s.close().await;
        db.drop_db().await;
    }

    #[tokio::test]
    async fn concurrent_owners_never_share_a_claim_and_keep_subject_order() {
        let Some(db) = TestDb::create().await else {
            return;
        };
        let s = db.store().await;
        // 200 SETs over 20 subjects, accepted in seq order.
        let rows: Vec<NewOutbox> = (0..200)
            .map(|i| row(&format!("j{i:03}"), &format!("s{}", i % 20)))
            .collect();
        s.accept_signals(&rows, &[], None).await.expect("accept");
        // 6 owners claim and finish concurrently until nothing is left; each claim is logged
        // with the owner's view of time, so overlaps would show.
        let log = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::<(String, String)>::new()));
        let mut tasks = Vec::new();
        for w in 0..6 {
            let (s, log) = (s.clone(), log.clone());
            tasks.push(tokio::spawn(async move {
                let owner = format!("w{w}");
                let mut idle = 0;
                while idle < 20 {
                    let got = s
                        .claim_due("okta", &owner, 10, 60_000, 4)
                        .await
                        .expect("claim");
                    if got.is_empty() {
                        idle += 1;
                        tokio::task::yield_now().await;
                        continue;
                    }
                    idle = 0;
                    for r in got {
                        log.lock().await.push((r.jti.clone(), owner.clone()));
                        let done = Attempt::Delivered { http_status: 202 };
                        assert!(
                            s.record_attempt(&r.jti, Some(&owner), &done, 11)
                                .await
                                .expect("record"),
                            "the owner's outcome applies"
                        );
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("join");
        }
        let log = log.lock().await;
        let mut seen = std::collections::HashSet::new();
        for (jti, _) in log.iter() {
            assert!(seen.insert(jti.clone()), "{jti} claimed twice");
        }
        assert_eq!(seen.len(), 200, "every SET claimed once");
        // Per subject, claims in acceptance order.
        for subject in 0..20 {
            let order: Vec<&str> = log
                .iter()
                .filter(|(j, _)| j[1..].parse::<usize>().is_ok_and(|i| i % 20 == subject))
                .map(|(j, _)| j.as_str())
                .collect();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(order, sorted, "subject s{subject}");
        }
        let owners: std::collections::HashSet<&str> = log.iter().map(|(_, o)| o.as_str()).collect();
        assert!(owners.len() > 1, "the owners really competed: {owners:?}");
        s.close().await;
        db.drop_db().await;
    }

    #[tokio::test]
    async fn an_expired_claim_moves_and_the_old_owner_writes_nothing() {
        let Some(db) = TestDb::create().await else {
            return;
        };
        let s = db.store().await;
        s.accept_signals(&[row("a1", "a"), row("a2", "a")], &[], None)
            .await
            .expect("accept");
        let got = s.claim_due("okta", "x", 10, 1_000, 10).await.expect("x");
        assert_eq!(got.len(), 1, "only the subject's head");
        assert!(
            s.claim_due("okta", "y", 500, 1_000, 10)
                .await
                .expect("y")
                .is_empty()
        );
        assert_eq!(s.next_due_at("okta").await.expect("next"), Some(1011));
        let got = s.claim_due("okta", "y", 1_011, 1_000, 10).await.expect("y");
        assert_eq!(got.first().map(|r| r.jti.as_str()), Some("a1"));
        let delivered = Attempt::Delivered { http_status: 202 };
        assert!(
            !s.record_attempt("a1", Some("x"), &delivered, 1_100)
                .await
                .expect("x")
        );
        assert!(
            s.record_attempt("a1", Some("y"), &delivered, 1_100)
                .await
                .expect("y")
        );
        let got = s.claim_due("okta", "x", 1_200, 1_000, 10).await.expect("x");
        assert_eq!(got.first().map(|r| r.jti.as_str()), Some("a2"));
        // PostgreSQL never clears claims it cannot know are dead; an owner's own, it does.
        assert_eq!(s.release_claims(None).await.expect("rel"), 0);
        assert_eq!(s.release_claims(Some("x")).await.expect("rel"), 1);
        s.close().await;
        db.drop_db().await;
    }
}
