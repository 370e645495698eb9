//! `/v1/admin/keys`: list, generate, import, activate and retire issuer keys (scope `admin`).
//! Private material is never returned.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AdminScope, Auth};
use super::openapi::{AuthErrors, BodyErrors};
use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Problem};
use crate::keys::{KeyDirError, KeyInfo};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, generate_key))
        .routes(routes!(import_key))
        .routes(routes!(activate_key))
        .routes(routes!(retire_key))
}

/// All keys, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Every key with its state.
    pub keys: Vec<KeyInfo>,
    /// The signing key.
    pub active_kid: String,
}

/// Options of key generation.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GenerateParams {
    /// Modulus size: 2048 (default), 3072 or 4096.
    #[param(minimum = 2048, maximum = 4096, multiple_of = 1024)]
    pub bits: Option<u32>,
}

/// A key to import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKey {
    /// PEM text of an unencrypted RSA private key (PKCS#8 `PRIVATE KEY` or PKCS#1
    /// `RSA PRIVATE KEY`), at least 2048 bits.
    #[schema(min_length = 1)]
    pub pem: String,
}

/// Options of activation.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActivateParams {
    /// Activate even though the key has been published for less than the JWKS cache lifetime.
    pub force: Option<bool>,
}

/// Options of retirement.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RetireParams {
    /// Retire even though SETs it signed are still queued (they will fail verification).
    pub force: Option<bool>,
}

impl From<KeyDirError> for ApiError {
    fn from(e: KeyDirError) -> Self {
        match e {
            KeyDirError::NotFound(kid) => ApiError::NotFound(format!("no key with kid '{kid}'")),
            KeyDirError::Conflict(m) => ApiError::Conflict(m),
            KeyDirError::Material(m) => ApiError::field("pem", m.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// Runs a key-directory change off the async threads, reloads the ring, audits the outcome.
async fn change<F>(
    state: &AppState,
    actor: crate::enforcement::audit::Actor<'_>,
    action: &str,
    target: Option<String>,
    op: F,
) -> Result<KeyInfo, ApiError>
where
    F: FnOnce(&crate::keys::KeyDir, chrono::DateTime<chrono::Utc>) -> Result<KeyInfo, KeyDirError>
        + Send
        + 'static,
{
    let keys = state.keys.clone();
    let now = state.clock.now();
    let result = tokio::task::spawn_blocking(move || {
        let info = op(keys.dir(), now)?;
        keys.reload()?;
        Ok::<_, KeyDirError>(info)
    })
    .await
    .map_err(ApiError::internal)?;
    let target = result.as_ref().ok().map(|i| i.kid.clone()).or(target);
    let err_text = result.as_ref().err().map(ToString::to_string);
    state
        .audit
        .record(
            now,
            actor,
            action,
            target.as_deref(),
            err_text.as_deref().map_or(Ok(()), Err),
        )
        .await;
    state.metrics.publish_keys(&state.keys);
    Ok(result?)
}

/// List issuer keys.
///
/// Every key in the keys directory with its state and timestamps; never private material.
#[utoipa::path(get, path = "/v1/admin/keys", tag = "admin",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "Keys", body = KeyList), AuthErrors))]
pub async fn list_keys(
    _auth: Auth<AdminScope>,
    State(state): State<AppState>,
) -> Result<ApiJson<KeyList>, ApiError> {
    let keys = state.keys.clone();
    let list = tokio::task::spawn_blocking(move || keys.dir().list())
        .await
        .map_err(ApiError::internal)??;
    Ok(ApiJson(KeyList {
        keys: list,
        active_kid: state.keys.ring().active_kid().to_owned(),
    }))
}

/// Generate a key.
///
/// Adds a new RSA key in state `next`: published in the JWKS at once, signing only after
/// activation.
#[utoipa::path(post, path = "/v1/admin/keys", tag = "admin",
    params(GenerateParams),
    security(("bearer" = ["admin"])),
    responses(
        (status = 201, description = "Generated", body = KeyInfo),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unsupported size", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn generate_key(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<GenerateParams>,
) -> Result<(StatusCode, ApiJson<KeyInfo>), ApiError> {
    let bits = params.bits.unwrap_or(2048);
    if !matches!(bits, 2048 | 3072 | 4096) {
        return Err(ApiError::field("bits", "must be 2048, 3072 or 4096"));
    }
    let info = change(
        &state,
        (&auth.caller).into(),
        "key.generate",
        None,
        move |dir, now| dir.generate(bits, now),
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(info)))
}

/// Import a key.
///
/// Adds an existing RSA private key (≥ 2048 bits) in state `next`. Weak, malformed, encrypted
/// and non-RSA keys are refused.
#[utoipa::path(post, path = "/v1/admin/keys/import", tag = "admin",
    request_body = ImportKey,
    security(("bearer" = ["admin"])),
    responses(
        (status = 201, description = "Imported", body = KeyInfo),
        (status = 409, description = "Already present", body = Problem, content_type = "application/problem+json"),
        BodyErrors, AuthErrors))]
pub async fn import_key(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ImportKey>,
) -> Result<(StatusCode, ApiJson<KeyInfo>), ApiError> {
    let pem = zeroize::Zeroizing::new(body.pem.into_bytes());
    let info = change(
        &state,
        (&auth.caller).into(),
        "key.import",
        None,
        move |dir, now| dir.import(&pem, now),
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(info)))
}

/// Activate a key.
///
/// Makes the key the signing key; the previous one becomes `retiring` and stays published. A
/// `next` key published for less than the JWKS cache lifetime (300 s) is refused unless `force`.
#[utoipa::path(post, path = "/v1/admin/keys/{kid}/activate", tag = "admin",
    params(("kid" = String, Path, description = "Key id"), ActivateParams),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Activated", body = KeyInfo),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in the key's state, or published too recently", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn activate_key(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiPath(kid): ApiPath<String>,
    ApiQuery(params): ApiQuery<ActivateParams>,
) -> Result<ApiJson<KeyInfo>, ApiError> {
    let force = params.force.unwrap_or(false);
    let target = kid.clone();
    let info = change(
        &state,
        (&auth.caller).into(),
        "key.activate",
        Some(target),
        move |dir, now| dir.activate(&kid, force, now),
    )
    .await?;
    Ok(ApiJson(info))
}

/// Retire a key.
///
/// Unpublishes a `next` or `retiring` key (its file is kept). The active key cannot be retired,
/// nor (unless `force`) a key that signed SETs still waiting for delivery: once unpublished,
/// Okta could no longer verify them.
#[utoipa::path(post, path = "/v1/admin/keys/{kid}/retire", tag = "admin",
    params(("kid" = String, Path, description = "Key id"), RetireParams),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Retired", body = KeyInfo),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Active, already retired, or SETs it signed are still queued", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn retire_key(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiPath(kid): ApiPath<String>,
    ApiQuery(params): ApiQuery<RetireParams>,
) -> Result<ApiJson<KeyInfo>, ApiError> {
    if !params.force.unwrap_or(false) {
        let pending = state
            .intake
            .waiting_on_key(&kid)
            .await
            .map_err(ApiError::internal)?;
        if pending > 0 {
            return Err(ApiError::Conflict(crate::keys::pending_message(
                &kid, pending,
            )));
        }
    }
    let target = kid.clone();
    let info = change(
        &state,
        (&auth.caller).into(),
        "key.retire",
        Some(target),
        move |dir, now| dir.retire(&kid, now),
    )
    .await?;
    Ok(ApiJson(info))
}
