//! Containments and bulk jobs on SQLite.

use sqlx::Row as _;

use super::SqliteStore;
use crate::store::work::{
    ApprovalRow, ContainmentFilter, ContainmentRow, JobItem, JobProgress, JobRow,
};
use crate::store::{StoreError, rows};

const CONTAINMENT_COLUMNS: &str =
    "id, client_id, status, user_id, user_login, release_at, created_at, updated_at, record";

impl SqliteStore {
    pub(in crate::store) async fn insert_containment(
        &self,
        c: &ContainmentRow,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO containments (id, client_id, status, user_id, user_login, release_at, created_at, updated_at, record, \
             claimed_by, claimed_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.id)
        .bind(&c.client_id)
        .bind(&c.status)
        .bind(&c.user_id)
        .bind(&c.user_login)
        .bind(c.release_at)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(&c.record)
        .bind(c.lease.as_ref().map(|(owner, _)| owner.as_str()))
        .bind(c.lease.as_ref().map(|(_, until)| *until))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn save_containment(
        &self,
        c: &ContainmentRow,
        expected_status: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE containments SET status = ?, user_id = ?, user_login = ?, release_at = ?, updated_at = ?, record = ? \
             WHERE id = ? AND status = ?",
        )
        .bind(&c.status)
        .bind(&c.user_id)
        .bind(&c.user_login)
        .bind(c.release_at)
        .bind(c.updated_at)
        .bind(&c.record)
        .bind(&c.id)
        .bind(expected_status)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(in crate::store) async fn containment(
        &self,
        id: &str,
    ) -> Result<Option<ContainmentRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTAINMENT_COLUMNS} FROM containments WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::containment).transpose()
    }

    pub(in crate::store) async fn containments(
        &self,
        f: &ContainmentFilter,
    ) -> Result<Vec<ContainmentRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTAINMENT_COLUMNS} FROM containments \
             WHERE (?1 IS NULL OR user_id = ?1 OR lower(user_login) = lower(?1)) AND (?2 IS NULL OR status = ?2) \
             ORDER BY created_at DESC, id DESC LIMIT ?3"
        )))
        .bind(f.user.as_deref())
        .bind(f.status.as_deref())
        .bind(i64::from(f.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::containment).collect()
    }

    pub(in crate::store) async fn containments_due(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<ContainmentRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTAINMENT_COLUMNS} FROM containments \
             WHERE release_at IS NOT NULL AND release_at <= ? AND status IN ('active', 'failed') \
             ORDER BY release_at LIMIT ?"
        )))
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::containment).collect()
    }

    pub(in crate::store) async fn containments_with_status(
        &self,
        status: &str,
    ) -> Result<Vec<ContainmentRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTAINMENT_COLUMNS} FROM containments WHERE status = ? ORDER BY created_at"
        )))
        .bind(status)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::containment).collect()
    }

    pub(in crate::store) async fn insert_job(
        &self,
        j: &JobRow,
        users: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO jobs (id, client_id, status, total, created_at, updated_at, record) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&j.id)
        .bind(&j.client_id)
        .bind(&j.status)
        .bind(j.total)
        .bind(j.created_at)
        .bind(j.updated_at)
        .bind(&j.record)
        .execute(&mut *tx)
        .await?;
        for (i, u) in users.iter().enumerate() {
            sqlx::query(
                "INSERT INTO job_items (job_id, idx, user_input, status, updated_at) VALUES (?, ?, ?, 'pending', ?)",
            )
            .bind(&j.id)
            .bind(i64::try_from(i).unwrap_or(i64::MAX))
            .bind(u)
            .bind(j.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(in crate::store) async fn job(&self, id: &str) -> Result<Option<JobRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, client_id, status, total, created_at, updated_at, record FROM jobs WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::job).transpose()
    }

    pub(in crate::store) async fn jobs_with_status(
        &self,
        status: &str,
    ) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, client_id, status, total, created_at, updated_at, record FROM jobs WHERE status = ? ORDER BY created_at",
        )
        .bind(status)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::job).collect()
    }

    pub(in crate::store) async fn set_job_status(
        &self,
        id: &str,
        from: &str,
        to: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE jobs SET status = ?, updated_at = ? WHERE id = ? AND status = ?")
                .bind(to)
                .bind(now_ms)
                .bind(id)
                .bind(from)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(in crate::store) async fn job_items(
        &self,
        id: &str,
        statuses: &[&str],
        limit: u32,
    ) -> Result<Vec<JobItem>, StoreError> {
        let list = serde_json::to_string(statuses).unwrap_or_else(|_| "[]".into());
        let rows = sqlx::query(
            "SELECT idx, user_input, status, detail FROM job_items \
             WHERE job_id = ? AND status IN (SELECT value FROM json_each(?)) ORDER BY idx LIMIT ?",
        )
        .bind(id)
        .bind(list)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::job_item).collect()
    }

    pub(in crate::store) async fn job_progress(&self, id: &str) -> Result<JobProgress, StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(status = 'done'), 0) AS done, COALESCE(SUM(status = 'failed'), 0) AS failed, \
             COALESCE(SUM(status IN ('pending', 'running')), 0) AS open FROM job_items WHERE job_id = ?",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(JobProgress {
            done: row.try_get("done")?,
            failed: row.try_get("failed")?,
            open: row.try_get("open")?,
        })
    }

    pub(in crate::store) async fn lease_containment(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE containments SET claimed_by = ?1, claimed_until = ?3 WHERE id = ?4 AND (claimed_by = ?1 OR claimed_until IS NULL OR claimed_until < ?2)",
        )
        .bind(owner)
        .bind(now_ms)
        .bind(until_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(in crate::store) async fn drop_containment_lease(
        &self,
        id: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE containments SET claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?")
            .bind(id)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(in crate::store) async fn unleased_containments(
        &self,
        status: &str,
        now_ms: i64,
    ) -> Result<Vec<ContainmentRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTAINMENT_COLUMNS} FROM containments WHERE status = ?1 AND (claimed_until IS NULL OR claimed_until < ?2) ORDER BY created_at"
        )))
        .bind(status)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::containment).collect()
    }

    pub(in crate::store) async fn claim_job_items(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        limit: u32,
    ) -> Result<Vec<JobItem>, StoreError> {
        let rows = sqlx::query(
            "UPDATE job_items SET status = 'running', claimed_by = ?2, claimed_until = ?4, updated_at = ?3 WHERE job_id = ?1 AND idx IN (SELECT idx FROM job_items WHERE job_id = ?1 AND (status = 'pending' OR (status = 'running' AND (claimed_until IS NULL OR claimed_until < ?3))) ORDER BY idx LIMIT +?5) RETURNING idx, user_input, status, detail",
        )
        .bind(id)
        .bind(owner)
        .bind(now_ms)
        .bind(until_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut items = rows
            .iter()
            .map(rows::job_item)
            .collect::<Result<Vec<_>, StoreError>>()?;
        items.sort_by_key(|i| i.idx);
        Ok(items)
    }

    pub(in crate::store) async fn renew_job_item(
        &self,
        id: &str,
        idx: i64,
        owner: &str,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE job_items SET claimed_until = ? WHERE job_id = ? AND idx = ? AND claimed_by = ?")
            .bind(until_ms)
            .bind(id)
            .bind(idx)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    #[allow(clippy::too_many_arguments)]
    pub(in crate::store) async fn finish_job_item(
        &self,
        id: &str,
        idx: i64,
        owner: &str,
        status: &str,
        detail: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE job_items SET status = ?, detail = ?, updated_at = ?, claimed_by = NULL, claimed_until = NULL WHERE job_id = ? AND idx = ? AND claimed_by = ?",
        )
        .bind(status)
        .bind(detail)
        .bind(now_ms)
        .bind(id)
        .bind(idx)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(in crate::store) async fn free_job_items(&self, id: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE job_items SET status = 'pending', claimed_by = NULL, claimed_until = NULL WHERE job_id = ? AND status = 'running'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub(in crate::store) async fn insert_approval(
        &self,
        a: &ApprovalRow,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO approvals (id, containment_id, status, token_digest, expires_at, created_at, decided_at, record) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.id)
        .bind(&a.containment_id)
        .bind(&a.status)
        .bind(&a.token_digest)
        .bind(a.expires_at)
        .bind(a.created_at)
        .bind(a.decided_at)
        .bind(&a.record)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn approval(
        &self,
        id: &str,
    ) -> Result<Option<ApprovalRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, containment_id, status, token_digest, expires_at, created_at, decided_at, record \
             FROM approvals WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::approval).transpose()
    }

    pub(in crate::store) async fn approvals(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ApprovalRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, containment_id, status, token_digest, expires_at, created_at, decided_at, record \
             FROM approvals WHERE (?1 IS NULL OR status = ?1) ORDER BY created_at DESC, id DESC LIMIT ?2",
        )
        .bind(status)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::approval).collect()
    }

    pub(in crate::store) async fn decide_approval(
        &self,
        id: &str,
        status: &str,
        record: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE approvals SET status = ?, record = ?, decided_at = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(status)
        .bind(record)
        .bind(now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
