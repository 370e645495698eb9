//! SQLite implementation: one file in WAL mode, `synchronous=FULL` so an acknowledged write
//! survives a crash or power loss.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, SqlitePool};

use super::{
    ApiClient, AuditEntry, NewAudit, NewClient, StoreError, scopes_from_text, scopes_to_text,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/sqlite");

#[derive(Clone, Debug)]
pub(super) struct SqliteStore {
    pool: SqlitePool,
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
            // An in-memory database exists once per connection: keep exactly one.
            .max_connections(if in_memory { 1 } else { 8 })
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
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
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
                scopes: new.scopes.to_vec(),
                created_at: new.created_at,
                revoked_at: None,
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("an active API client named {:?} already exists", new.name),
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
        rows.iter().map(client_from_row).collect()
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
        row.as_ref().map(client_from_row).transpose()
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
        row.as_ref().map(client_from_row).transpose()
    }

    pub(super) async fn append_audit(&self, e: NewAudit<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(e.at)
        .bind(e.actor)
        .bind(e.action)
        .bind(e.target)
        .bind(e.outcome)
        .bind(e.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, outcome, detail FROM audit_log ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}

fn client_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<ApiClient, StoreError> {
    let scopes: String = r.try_get("scopes")?;
    Ok(ApiClient {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        scopes: scopes_from_text(&scopes)?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scope;

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
            scopes: &[Scope::SignalsWrite, Scope::SignalsRead],
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
        assert_eq!(found.scopes, vec![Scope::SignalsWrite, Scope::SignalsRead]);
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

    #[tokio::test]
    async fn audit_is_append_only() {
        let s = mem().await;
        s.append_audit(NewAudit {
            at: Utc::now(),
            actor: "cli",
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
