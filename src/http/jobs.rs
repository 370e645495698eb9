//! `/v1/jobs`: the steps of a containment for up to 10,000 users, run in the background at the
//! pace of Okta's rate limits (scope `enforce:write`; reading needs `enforce:read`).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Auth, EnforceRead, EnforceWrite};
use super::openapi::AuthErrors;
use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Problem};
use crate::auth::Scope;
use crate::enforcement::containment::Step;
use crate::enforcement::jobs::{Job, JobAccepted};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit))
        .routes(routes!(get_one))
        .routes(routes!(cancel))
}

/// A bulk job.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"steps": [{"action": "suspend"}, {"action": "clear_sessions"}], "users": ["jane.doe@example.com", "00u00000000000000001"], "reason": "TIP: accounts in a credential dump"}))]
pub struct JobBody {
    /// The steps, run in order for each user (the same steps as a containment; 1–20).
    #[schema(min_items = 1, max_items = 20)]
    pub steps: Vec<Step>,
    /// Okta ids, logins, emails, short names or `DOMAIN\sam` (1–10,000; each 1–512 characters).
    #[schema(min_items = 1, max_items = 10000)]
    pub users: Vec<String>,
    /// Why; recorded (at most 1000 characters).
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

/// Run steps for many users.
///
/// Answers at once with the job id; workers act on the users in the background, paced by Okta's
/// `X-Rate-Limit-*` headers (one budget for the org). A user whose Okta answer is "already in
/// that state" (400 `E0000001`) counts as done. The job survives restarts: after a stop it
/// finishes under the same id. `Idempotency-Key` is honoured.
#[utoipa::path(post, path = "/v1/jobs", tag = "containment",
    request_body = JobBody,
    security(("bearer" = ["enforce:write"])),
    responses(
        (status = 202, description = "Accepted; follow it at /v1/jobs/{id}", body = JobAccepted,
            headers(("Location" = String, description = "/v1/jobs/{id}"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `enforce:write` (or `signals:write` for a signal step), or a step is outside the configured allow-lists", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body (the field is named)", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn submit(
    auth: Auth<EnforceWrite>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<JobBody>,
) -> Result<Response, ApiError> {
    if body.steps.iter().any(Step::needs_signals_scope) {
        auth.require(Scope::SignalsWrite)?;
    }
    let accepted = state
        .jobs
        .submit(&auth.caller, body.steps, body.users, body.reason)
        .await?;
    let mut resp = (StatusCode::ACCEPTED, ApiJson(&accepted)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/jobs/{}", accepted.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// What a job read returns.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobParams {
    /// Include each user's outcome (default true; false for a cheap progress poll).
    pub results: Option<bool>,
}

/// A job: status, counts, and each user's outcome in the order given.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "containment",
    params(("id" = String, Path, description = "Job id", pattern = "^job_[0-9a-f]{32}$"), JobParams),
    security(("bearer" = ["enforce:read"])),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn get_one(
    _auth: Auth<EnforceRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<JobParams>,
) -> Result<ApiJson<Job>, ApiError> {
    Ok(ApiJson(
        state.jobs.get(&id, q.results.unwrap_or(true)).await?,
    ))
}

/// Cancel a job.
///
/// Once this answers, no further Okta call is made for the job; users not yet acted on read
/// `cancelled`. A job that already ended is answered as it is.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "containment",
    params(("id" = String, Path, description = "Job id", pattern = "^job_[0-9a-f]{32}$")),
    security(("bearer" = ["enforce:write"])),
    responses(
        (status = 200, description = "Cancelled (or already ended)", body = Job),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn cancel(
    auth: Auth<EnforceWrite>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<Job>, ApiError> {
    Ok(ApiJson(state.jobs.cancel(&auth.caller, &id).await?))
}
