//! `/v1/containments`: playbooks of enforcement steps on one user, their exact undo (by hand or
//! by a timer). Creating and releasing need `enforce:write` (and `signals:write` for a playbook
//! with a `signal` step); reading needs `enforce:read`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Auth, EnforceRead, EnforceWrite};
use super::openapi::{AuthErrors, OktaErrors};
use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Problem};
use crate::auth::Scope;
use crate::enforcement::containment::{
    Containment, ContainmentError, ContainmentRequest, ContainmentStatus, Containments,
    MAX_RELEASE_AFTER_SECS, Step,
};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one))
        .routes(routes!(release))
}

impl From<ContainmentError> for ApiError {
    fn from(e: ContainmentError) -> Self {
        match e {
            ContainmentError::Invalid(field, message) => ApiError::field(field, message),
            ContainmentError::Enforce(e) => e.into(),
            ContainmentError::NotFound => ApiError::NotFound("no containment with this id".into()),
            ContainmentError::Conflict(m) => ApiError::Conflict(m),
            ContainmentError::Store(e) => ApiError::internal(e),
        }
    }
}

/// A containment playbook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user": "jane.doe@example.com", "steps": [{"action": "clear_sessions"}, {"action": "suspend"}, {"action": "add_to_group", "group": "Restricted Users"}, {"action": "signal", "level": "high"}], "reason": "EDR: credential theft on laptop-42", "release_after": 3600}))]
pub struct ContainmentBody {
    /// Okta id, login, email, unambiguous login short name, or `DOMAIN\sam` / UPN mapped by
    /// `[enforcement.identity]`.
    #[schema(min_length = 1, max_length = 512)]
    pub user: String,
    /// The steps, run in order (1–20).
    #[schema(min_items = 1, max_items = 20)]
    pub steps: Vec<Step>,
    /// Why; recorded (at most 1000 characters).
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
    /// Release automatically this many seconds later (1 s to 366 days); the timer survives
    /// restarts.
    #[schema(minimum = 1, maximum = 31622400)]
    pub release_after: Option<u64>,
    /// Plan only: nothing is sent to Okta (nothing at all when user and groups are Okta ids);
    /// the answer lists each planned request.
    #[serde(default)]
    pub dry_run: bool,
    /// Run the remaining steps after a failed one (default: the first failure skips the rest).
    #[serde(default)]
    pub continue_on_error: bool,
}

/// Run a containment playbook on one user.
///
/// Steps run in order; the first failed step skips the rest unless `continue_on_error`. Okta's
/// "already in that state" (400 `E0000001`) is a failed step. Every outcome of the steps answers
/// 201 with the record: `status` is `active` (every step done), `failed`, or `planned` (dry
/// run). What a release would undo is listed in `undo`. `Idempotency-Key` is honoured: a replay
/// returns the same containment. A `signal` step also needs `signals:write`; `set_profile`
/// obeys `[enforcement] profile_attributes`.
#[utoipa::path(post, path = "/v1/containments", tag = "containment",
    request_body = ContainmentBody,
    security(("bearer" = ["enforce:write"])),
    responses(
        (status = 201, description = "Run (or planned); each step's outcome inside", body = Containment),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `enforce:write` (or `signals:write` for a signal step), or a step is outside the configured allow-lists; nothing ran", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user or group; nothing ran", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Several users match (candidates listed); nothing ran", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body (the field is named)", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn create(
    auth: Auth<EnforceWrite>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ContainmentBody>,
) -> Result<(StatusCode, ApiJson<Containment>), ApiError> {
    if body.steps.iter().any(Step::needs_signals_scope) {
        auth.require(Scope::SignalsWrite)?;
    }
    let user = Containments::validate_user(&body.user)?;
    if body
        .release_after
        .is_some_and(|s| !(1..=MAX_RELEASE_AFTER_SECS).contains(&s))
    {
        return Err(ApiError::field(
            "release_after",
            format!("must be 1 to {MAX_RELEASE_AFTER_SECS} seconds"),
        ));
    }
    let c = state
        .containments
        .create(
            &auth.caller,
            ContainmentRequest {
                user: user.to_owned(),
                steps: body.steps,
                reason: body.reason,
                release_after: body.release_after,
                dry_run: body.dry_run,
                continue_on_error: body.continue_on_error,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(c)))
}

/// Containment filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Okta user id or login (exact).
    #[param(max_length = 512)]
    pub user: Option<String>,
    /// Status.
    pub status: Option<ContainmentStatus>,
    /// At most this many, newest first (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Containments, newest first.
#[utoipa::path(get, path = "/v1/containments", tag = "containment",
    params(ListParams),
    security(("bearer" = ["enforce:read"])),
    responses(
        (status = 200, description = "Containments", body = Vec<Containment>),
        (status = 400, description = "Bad query (e.g. an unknown status)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad filter", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn list(
    _auth: Auth<EnforceRead>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<ApiJson<Vec<Containment>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be from 1 to 1000"));
    }
    if q.user.as_ref().is_some_and(|u| u.chars().count() > 512) {
        return Err(ApiError::field("user", "must be at most 512 characters"));
    }
    Ok(ApiJson(
        state
            .containments
            .list(q.user.map(|u| u.trim().to_owned()), q.status, limit)
            .await?,
    ))
}

/// One containment: its steps, what a release undoes, and how the last release went.
#[utoipa::path(get, path = "/v1/containments/{id}", tag = "containment",
    params(("id" = String, Path, description = "Containment id", pattern = "^ctn_[0-9a-f]{32}$")),
    security(("bearer" = ["enforce:read"])),
    responses(
        (status = 200, description = "The containment", body = Containment),
        (status = 404, description = "No such containment", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn get_one(
    _auth: Auth<EnforceRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<Containment>, ApiError> {
    Ok(ApiJson(state.containments.get(&id).await?))
}

/// Undo exactly what a containment did.
///
/// Unsuspends if it suspended, removes the user from the group it added (never from a group the
/// user was in before), restores each profile attribute it changed, sends a `low` risk signal if
/// it raised one; then `status` is `released`. When an undo step fails, the containment stays
/// in force (`release.error` says why) and posting again continues where it stopped.
#[utoipa::path(post, path = "/v1/containments/{id}/release", tag = "containment",
    params(("id" = String, Path, description = "Containment id", pattern = "^ctn_[0-9a-f]{32}$")),
    security(("bearer" = ["enforce:write"])),
    responses(
        (status = 200, description = "Released, or (release.error) not finished", body = Containment),
        (status = 404, description = "No such containment", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not active or failed (already released, pending approval, rejected, planned, or releasing now)", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn release(
    auth: Auth<EnforceWrite>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<Containment>, ApiError> {
    Ok(ApiJson(
        state
            .containments
            .release((&auth.caller).into(), &id, "manual")
            .await?,
    ))
}
