//! SSF streams on SQLite.

use super::SqliteStore;
use crate::store::streams::StreamRow;
use sqlx::Row as _;

use crate::store::{StoreError, rows};

const STREAM_COLUMNS: &str = "stream_id, client_id, status, created_at, updated_at, record";

impl SqliteStore {
    pub(in crate::store) async fn insert_stream(&self, s: &StreamRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO streams (stream_id, client_id, status, created_at, updated_at, record) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(&s.stream_id)
        .bind(&s.client_id)
        .bind(&s.status)
        .bind(s.created_at)
        .bind(s.updated_at)
        .bind(&s.record)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn stream(&self, id: &str) -> Result<Option<StreamRow>, StoreError> {
        let sql = format!("SELECT {STREAM_COLUMNS} FROM streams WHERE stream_id = ?1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| rows::stream(&r))
            .transpose()
    }

    pub(in crate::store) async fn streams_of(
        &self,
        client_id: &str,
    ) -> Result<Vec<StreamRow>, StoreError> {
        let sql = format!(
            "SELECT {STREAM_COLUMNS} FROM streams WHERE client_id = ?1 ORDER BY created_at, stream_id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rows::stream)
            .collect()
    }

    pub(in crate::store) async fn all_streams(&self) -> Result<Vec<StreamRow>, StoreError> {
        let sql = format!("SELECT {STREAM_COLUMNS} FROM streams ORDER BY created_at, stream_id");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rows::stream)
            .collect()
    }

    pub(in crate::store) async fn save_stream(&self, s: &StreamRow) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE streams SET status = ?1, updated_at = ?2, record = ?3 \
             WHERE stream_id = ?4 AND client_id = ?5",
        )
        .bind(&s.status)
        .bind(s.updated_at)
        .bind(&s.record)
        .bind(&s.stream_id)
        .bind(&s.client_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    pub(in crate::store) async fn delete_stream(
        &self,
        id: &str,
        client_id: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM streams WHERE stream_id = ?1 AND client_id = ?2")
            .bind(id)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub(in crate::store) async fn drop_pending(&self, stream_id: &str) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "DELETE FROM outbox WHERE stream_id = ?1 AND status IN ('queued', 'retrying')",
        )
        .bind(stream_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    pub(in crate::store) async fn put_stream_subject(
        &self,
        stream_id: &str,
        subject_key: &str,
        subject: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO stream_subjects (stream_id, subject_key, subject, state, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (stream_id, subject_key) DO UPDATE SET \
             subject = excluded.subject, state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(stream_id)
        .bind(subject_key)
        .bind(subject)
        .bind(state)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn stream_subjects(
        &self,
        stream_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject, state FROM stream_subjects WHERE stream_id = ?1 ORDER BY subject_key",
        )
        .bind(stream_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("subject")?, r.try_get("state")?)))
            .collect()
    }

    pub(in crate::store) async fn drop_stream_subjects(
        &self,
        stream_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM stream_subjects WHERE stream_id = ?1")
            .bind(stream_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(in crate::store) async fn ack_polled(
        &self,
        stream_id: &str,
        jti: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let created: Option<i64> = sqlx::query_scalar(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?3, \
             updated_at = ?3, claimed_by = NULL, claimed_until = NULL \
             WHERE stream_id = ?1 AND jti = ?2 AND status IN ('queued', 'retrying') RETURNING created_at",
        )
        .bind(stream_id)
        .bind(jti)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(created)
    }

    pub(in crate::store) async fn fail_polled(
        &self,
        stream_id: &str,
        jti: &str,
        err: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, updated_at = ?3, \
             last_err = ?4, last_error = ?5, claimed_by = NULL, claimed_until = NULL \
             WHERE stream_id = ?1 AND jti = ?2 AND status IN ('queued', 'retrying')",
        )
        .bind(stream_id)
        .bind(jti)
        .bind(now_ms)
        .bind(err)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }
}

impl SqliteStore {
    /// One process writes a SQLite file, so the generation it raised is the generation.
    #[allow(clippy::unused_async)]
    pub(in crate::store) async fn stream_generation(&self) -> Result<i64, StoreError> {
        Ok(self
            .stream_generation
            .load(std::sync::atomic::Ordering::Acquire))
    }

    pub(in crate::store) async fn bump_stream_generation(&self) -> Result<(), StoreError> {
        sqlx::query("UPDATE stream_generation SET generation = generation + 1 WHERE id = 1")
            .execute(&self.pool)
            .await?;
        self.stream_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }
}
