//! Row mapping written once for both backends: the mappers read columns through [`Columns`],
//! which SQLite's and PostgreSQL's rows both implement, for the value types the store uses.

use sqlx::Row as _;

use super::outbox::{DeliveryStatus, OutboxRow};
use super::streams::StreamRow;
use super::work::{ApprovalRow, ContainmentRow, JobItem, JobRow};
use super::{ApiClient, StoreError, scopes_from_text};

/// A column value both backends decode (text, integers, bytes and their `Option`s).
pub(super) trait Value:
    for<'r> sqlx::Decode<'r, sqlx::Sqlite>
    + sqlx::Type<sqlx::Sqlite>
    + for<'r> sqlx::Decode<'r, sqlx::Postgres>
    + sqlx::Type<sqlx::Postgres>
{
}

impl<T> Value for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
{
}

/// A result row of either backend, read by column name.
pub(super) trait Columns {
    fn get<T: Value>(&self, column: &str) -> Result<T, StoreError>;
}

impl Columns for sqlx::sqlite::SqliteRow {
    fn get<T: Value>(&self, column: &str) -> Result<T, StoreError> {
        Ok(self.try_get(column)?)
    }
}

impl Columns for sqlx::postgres::PgRow {
    fn get<T: Value>(&self, column: &str) -> Result<T, StoreError> {
        Ok(self.try_get(column)?)
    }
}

pub(super) fn outbox(r: &impl Columns) -> Result<OutboxRow, StoreError> {
    let status: String = r.get("status")?;
    Ok(OutboxRow {
        seq: r.get("seq")?,
        jti: r.get("jti")?,
        stream_id: r.get("stream_id")?,
        subject_key: r.get("subject_key")?,
        subject: r.get("subject")?,
        event_type: r.get("event_type")?,
        set_jwt: r.get("set_jwt")?,
        client: r.get("client")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown delivery status {status:?}")))?,
        attempts: r.get("attempts")?,
        created_at: r.get("created_at")?,
        queued_at: r.get("queued_at")?,
        next_attempt_at: r.get("next_attempt_at")?,
        updated_at: r.get("updated_at")?,
        delivered_at: r.get("delivered_at")?,
        last_http_status: r.get("last_http_status")?,
        last_err: r.get("last_err")?,
        last_description: r.get("last_description")?,
        last_error: r.get("last_error")?,
        verify_failing_since: r.get("verify_failing_since")?,
    })
}

pub(super) fn client(r: &impl Columns) -> Result<ApiClient, StoreError> {
    let scopes: String = r.get("scopes")?;
    Ok(ApiClient {
        id: r.get("id")?,
        name: r.get("name")?,
        scopes: scopes_from_text(&scopes),
        created_at: r.get("created_at")?,
        revoked_at: r.get("revoked_at")?,
    })
}

pub(super) fn containment(r: &impl Columns) -> Result<ContainmentRow, StoreError> {
    Ok(ContainmentRow {
        id: r.get("id")?,
        client_id: r.get("client_id")?,
        status: r.get("status")?,
        user_id: r.get("user_id")?,
        user_login: r.get("user_login")?,
        release_at: r.get("release_at")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        record: r.get("record")?,
        lease: None,
    })
}

pub(super) fn job_item(r: &impl Columns) -> Result<JobItem, StoreError> {
    Ok(JobItem {
        idx: r.get("idx")?,
        user_input: r.get("user_input")?,
        status: r.get("status")?,
        detail: r.get("detail")?,
    })
}

pub(super) fn job(r: &impl Columns) -> Result<JobRow, StoreError> {
    Ok(JobRow {
        id: r.get("id")?,
        client_id: r.get("client_id")?,
        status: r.get("status")?,
        total: r.get("total")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        record: r.get("record")?,
    })
}

pub(super) fn approval(r: &impl Columns) -> Result<ApprovalRow, StoreError> {
    Ok(ApprovalRow {
        id: r.get("id")?,
        containment_id: r.get("containment_id")?,
        status: r.get("status")?,
        token_digest: r.get("token_digest")?,
        expires_at: r.get("expires_at")?,
        created_at: r.get("created_at")?,
        decided_at: r.get("decided_at")?,
        record: r.get("record")?,
    })
}

pub(super) fn stream(r: &impl Columns) -> Result<StreamRow, StoreError> {
    Ok(StreamRow {
        stream_id: r.get("stream_id")?,
        client_id: r.get("client_id")?,
        status: r.get("status")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        record: r.get("record")?,
    })
}
