//! OAuth 2.0 state on SQLite.

use super::SqliteStore;
use crate::store::oauth::{AccessTokenRow, ClientKeysRow, NewAccessToken};
use crate::store::{ApiClient, StoreError, rows, scopes_from_text, scopes_to_text};
use sqlx::Row as _;

impl SqliteStore {
    pub(in crate::store) async fn set_client_jwks(
        &self,
        name: &str,
        jwks: Option<&str>,
    ) -> Result<Option<ApiClient>, StoreError> {
        let row = sqlx::query(
            "UPDATE api_clients SET jwks = ?1 WHERE name = ?2 AND revoked_at IS NULL \
             RETURNING id, name, scopes, created_at, revoked_at",
        )
        .bind(jwks)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::client).transpose()
    }

    pub(in crate::store) async fn client_keys(
        &self,
        id: &str,
    ) -> Result<Option<ClientKeysRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, scopes, created_at, revoked_at, jwks FROM api_clients \
             WHERE id = ?1 AND revoked_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ClientKeysRow {
                client: rows::client(&r)?,
                jwks: r.try_get("jwks")?,
            })
        })
        .transpose()
    }

    pub(in crate::store) async fn insert_access_token(
        &self,
        t: &NewAccessToken<'_>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_access_tokens (token_hash, client_id, scopes, issued_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(t.token_hash)
        .bind(t.client_id)
        .bind(scopes_to_text(t.scopes))
        .bind(t.issued_at_ms)
        .bind(t.expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn access_token(
        &self,
        hash: &[u8],
        now_ms: i64,
    ) -> Result<Option<AccessTokenRow>, StoreError> {
        let row = sqlx::query(
            "SELECT c.id, c.name, c.scopes, c.created_at, c.revoked_at, t.scopes AS granted \
             FROM oauth_access_tokens t JOIN api_clients c ON c.id = t.client_id \
             WHERE t.token_hash = ?1 AND t.expires_at > ?2 AND c.revoked_at IS NULL",
        )
        .bind(hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let granted: String = r.try_get("granted")?;
            Ok(AccessTokenRow {
                client: rows::client(&r)?,
                scopes: scopes_from_text(&granted),
            })
        })
        .transpose()
    }

    pub(in crate::store) async fn use_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        // A row that has expired (not yet pruned) no longer blocks its jti.
        let r = sqlx::query(
            "INSERT INTO oauth_assertion_jtis (client_id, jti, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE oauth_assertion_jtis.expires_at <= ?4",
        )
        .bind(client_id)
        .bind(jti)
        .bind(expires_at_ms)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub(in crate::store) async fn prune_oauth(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let tokens = sqlx::query(
            "DELETE FROM oauth_access_tokens WHERE token_hash IN \
             (SELECT token_hash FROM oauth_access_tokens WHERE expires_at <= ?1 LIMIT +?2)",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        let jtis = sqlx::query(
            "DELETE FROM oauth_assertion_jtis WHERE (client_id, jti) IN \
             (SELECT client_id, jti FROM oauth_assertion_jtis WHERE expires_at <= ?1 LIMIT +?2)",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(tokens.rows_affected() + jtis.rows_affected())
    }
}
