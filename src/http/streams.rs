//! The SSF 1.0 stream management API (§8.1) for standard receivers: `/ssf/streams` (the
//! configuration endpoint) and `/ssf/status`. Reading needs `streams:read`, everything else
//! `streams:write`; a caller sees only the streams it created. Request errors are 400 (the
//! protocol's status), unknown streams 404, answers `Cache-Control: no-store`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Auth, StreamsRead, StreamsWrite};
use super::openapi::AuthErrors;
use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Problem, RawJson};
use crate::signals::streams::config::{
    PollRequest, PollResponse, StatusRequest, StatusView, StreamConfig, StreamError, StreamRequest,
    Streams, SubjectRequest, VerifyRequest,
};
use crate::validation::FieldError;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, read, update, replace, delete))
        .routes(routes!(read_status, update_status))
        .routes(routes!(verify))
        .routes(routes!(add_subject))
        .routes(routes!(remove_subject))
        .routes(routes!(poll))
}

impl From<StreamError> for ApiError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Invalid(field, message) => {
                ApiError::InvalidRequest(vec![FieldError { field, message }])
            }
            StreamError::NotFound => ApiError::NotFound("no stream with this stream_id".into()),
            StreamError::Conflict(m) => ApiError::Conflict(m),
            StreamError::TooSoon(secs) => ApiError::Upstream(Box::new(super::error::Upstream {
                status: StatusCode::TOO_MANY_REQUESTS,
                slug: "too-many-requests",
                detail: format!(
                    "a verification was requested less than min_verification_interval ago; \
                     try again in {secs} s"
                ),
                okta: None,
                candidates: None,
                retry_after: Some(secs),
            })),
            StreamError::Store(e) => ApiError::internal(e),
            StreamError::Sign(e) => ApiError::internal(e),
        }
    }
}

/// A JSON body parsed for the SSF routes: not JSON, a member of the wrong type, a missing one
/// → 400 naming the member (SSF answers 400 for every bad body).
fn ssf_body<T: serde::de::DeserializeOwned>(raw: RawJson) -> Result<T, ApiError> {
    crate::validation::deserialize_all(raw.value, "").map_err(ApiError::InvalidRequest)
}

/// The `stream_id` query parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamIdQuery {
    /// The stream (32 lowercase hex digits); any other value names no stream (404).
    #[param(max_length = 64)]
    pub stream_id: Option<String>,
}

/// The `stream_id` query parameter, required.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequiredStreamId {
    /// The stream (32 lowercase hex digits); any other value names no stream (404).
    #[param(max_length = 64)]
    pub stream_id: String,
}

/// One stream, or all of the caller's.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum StreamOrStreams {
    /// With `stream_id`: that stream.
    One(Box<StreamConfig>),
    /// Without: every stream of the caller (`[]` when none).
    All(Vec<StreamConfig>),
}

/// Create a stream (SSF §8.1.1.1).
///
/// The receiver supplies `delivery` (push: `endpoint_url`, and optionally an
/// `authorization_header` sent verbatim on every push and never shown again),
/// `events_requested` and `description`; the transmitter chooses `stream_id`, `aud` and
/// `events_delivered` (requested ∩ supported; unknown types are ignored). A new stream is
/// `enabled`. Transmitter-supplied members in the body are ignored.
#[utoipa::path(post, path = "/ssf/streams", tag = "streams",
    request_body = StreamRequest,
    security(("bearer" = ["streams:write"])),
    responses(
        (status = 201, description = "Created", body = StreamConfig),
        (status = 400, description = "Not JSON, or an invalid member (named): method, endpoint URL (https, or http to loopback; private, link-local and metadata addresses refused), authorization header, events, description", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller has `[streams] max_per_client` streams already", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn create(
    auth: Auth<StreamsWrite>,
    State(state): State<AppState>,
    raw: RawJson,
) -> Result<(StatusCode, ApiJson<StreamConfig>), ApiError> {
    let req: StreamRequest = ssf_body(raw)?;
    let stream = state.streams.create(&auth.caller, req).await?;
    Ok((StatusCode::CREATED, ApiJson(state.streams.view(&stream))))
}

/// Read a stream, or all of the caller's (SSF §8.1.1.2).
///
/// With `stream_id`: that stream (404 when the caller has none with this id). Without: a JSON
/// array of the caller's streams, `[]` when there are none.
#[utoipa::path(get, path = "/ssf/streams", tag = "streams",
    params(StreamIdQuery),
    security(("bearer" = ["streams:read"])),
    responses(
        (status = 200, description = "The stream, or the caller's streams", body = StreamOrStreams),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stream for this caller", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn read(
    auth: Auth<StreamsRead>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<StreamIdQuery>,
) -> Result<ApiJson<StreamOrStreams>, ApiError> {
    Ok(ApiJson(match q.stream_id {
        Some(id) => StreamOrStreams::One(Box::new(
            state
                .streams
                .view(&state.streams.get(&auth.caller, &id).await?),
        )),
        None => StreamOrStreams::All(
            state
                .streams
                .list(&auth.caller)
                .await?
                .iter()
                .map(|s| state.streams.view(s))
                .collect(),
        ),
    }))
}

/// Update a stream (SSF §8.1.1.3).
///
/// Only the receiver-supplied members sent change (`description: null` removes the
/// description). `stream_id` is required; `iss`, `aud`, `events_supported`, `events_delivered`
/// and `min_verification_interval` may be sent back but not changed (400).
#[utoipa::path(patch, path = "/ssf/streams", tag = "streams",
    request_body = StreamRequest,
    security(("bearer" = ["streams:write"])),
    responses(
        (status = 200, description = "The whole updated configuration", body = StreamConfig),
        (status = 400, description = "Not JSON, no `stream_id`, a transmitter-supplied member changed, or an invalid member (named)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stream for this caller", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn update(
    auth: Auth<StreamsWrite>,
    State(state): State<AppState>,
    raw: RawJson,
) -> Result<ApiJson<StreamConfig>, ApiError> {
    let req: StreamRequest = ssf_body(raw)?;
    let stream = state.streams.update(&auth.caller, req).await?;
    Ok(ApiJson(state.streams.view(&stream)))
}

/// Replace a stream's configuration (SSF §8.1.1.4).
///
/// Every receiver-supplied member is taken from the body; one left out is removed (an
/// `authorization_header` left out is no longer sent). `delivery` is required.
#[utoipa::path(put, path = "/ssf/streams", tag = "streams",
    request_body = StreamRequest,
    security(("bearer" = ["streams:write"])),
    responses(
        (status = 200, description = "The replaced configuration", body = StreamConfig),
        (status = 400, description = "Not JSON, no `stream_id` or `delivery`, a transmitter-supplied member changed, or an invalid member (named)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stream for this caller", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn replace(
    auth: Auth<StreamsWrite>,
    State(state): State<AppState>,
    raw: RawJson,
) -> Result<ApiJson<StreamConfig>, ApiError> {
    let req: StreamRequest = ssf_body(raw)?;
    let stream = state.streams.replace(&auth.caller, req).await?;
    Ok(ApiJson(state.streams.view(&stream)))
}

/// Delete a stream (SSF §8.1.1.5).
///
/// Its undelivered events are dropped with it.
#[utoipa::path(delete, path = "/ssf/streams", tag = "streams",
    params(RequiredStreamId),
    security(("bearer" = ["streams:write"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "No `stream_id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stream for this caller", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn delete(
    auth: Auth<StreamsWrite>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RequiredStreamId>,
) -> Result<StatusCode, ApiError> {
    state.streams.delete(&auth.caller, &q.stream_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Read a stream's status (SSF §8.1.2.1).
#[utoipa::path(get, path = "/ssf/status", tag = "streams",
    params(RequiredStreamId),
    security(("bearer" = ["streams:read"])),
    responses(
        (status = 200, description = "The status", body = StatusView),
        (status = 400, description = "No `stream_id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stream for this caller", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn read_status(
    auth: Auth<StreamsRead>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RequiredStreamId>,
) -> Result<ApiJson<StatusView>, ApiError> {
    let stream = state.streams.get(&auth.caller, &q.stream_id).await?;
    Ok(ApiJson(Streams::status_view(&stream)))
}

/// Change a stream's status (SSF §8.1.2.2).
///
/// `enabled` transmits; `paused` holds events and transmits them, in order, on enable;
/// `disabled` drops them (and what was held). The `reason` is kept and shown with the status.
/// A change queues an SSF `stream-updated` event (`status`, `reason`) for the stream; the one
/// announcing a pause is delivered before the pause takes hold or, at the latest, before the
/// one that re-enables the stream; a disabled stream gets none.
#[utoipa::path(post, path = "/ssf/status", tag = "streams",
    request_body = StatusRequest,
    security(("bearer" = ["streams:write"])),
    responses(
        (status = 200, description = "The new status, echoed", body = StatusView),
        (status = 400, description = "Not JSON, or an invalid member (named)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stream for this caller", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn update_status(
    auth: Auth<StreamsWrite>,
    State(state): State<AppState>,
    raw: RawJson,
) -> Result<ApiJson<StatusView>, ApiError> {
    let req: StatusRequest = ssf_body(raw)?;
    let stream = state.streams.set_status(&auth.caller, req).await?;
    Ok(ApiJson(Streams::status_view(&stream)))
}

/// Ask for a verification event (SSF §8.1.4.2).
///
/// Answers 204 once the event is queued; it reaches the receiver like any SET of the stream
/// (`sub_id` `{"format": "opaque", "id": <stream_id>}`, the `state` echoed). A paused stream
/// holds it until enabled; a disabled one drops it. A second request within
/// `min_verification_interval` seconds is a 429 with `Retry-After`.
#[utoipa::path(post, path = "/ssf/verify", tag = "streams",
    request_body = VerifyRequest,
    security(("bearer" = ["streams:write"])),
    responses(
        (status = 204, description = "Queued"),
        (status = 400, description = "Not JSON, or an invalid member (named)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stream for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Within `min_verification_interval` of the last request (`Retry-After` says when)", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        AuthErrors))]
pub async fn verify(
    auth: Auth<StreamsWrite>,
    State(state): State<AppState>,
    raw: RawJson,
) -> Result<StatusCode, ApiError> {
    let req: VerifyRequest = ssf_body(raw)?;
    state.streams.verify(&auth.caller, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a subject to a stream (SSF §8.1.3.2).
///
/// With `default_subjects` `NONE` only added subjects are delivered; with `ALL` adding a removed
/// subject delivers it again. `verified` is kept for the record.
#[utoipa::path(post, path = "/ssf/subjects:add", tag = "streams",
    request_body = SubjectRequest,
    security(("bearer" = ["streams:write"])),
    responses(
        (status = 200, description = "Added"),
        (status = 400, description = "Not JSON, or an invalid subject (the member named)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stream for this caller", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn add_subject(
    auth: Auth<StreamsWrite>,
    State(state): State<AppState>,
    raw: RawJson,
) -> Result<StatusCode, ApiError> {
    let req: SubjectRequest = ssf_body(raw)?;
    state.streams.add_subject(&auth.caller, req).await?;
    Ok(StatusCode::OK)
}

/// Remove a subject from a stream (SSF §8.1.3.3).
///
/// No signal accepted after the 204 is delivered for it on this stream.
#[utoipa::path(post, path = "/ssf/subjects:remove", tag = "streams",
    request_body = SubjectRequest,
    security(("bearer" = ["streams:write"])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Not JSON, or an invalid subject (the member named)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stream for this caller", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn remove_subject(
    auth: Auth<StreamsWrite>,
    State(state): State<AppState>,
    raw: RawJson,
) -> Result<StatusCode, ApiError> {
    let req: SubjectRequest = ssf_body(raw)?;
    state.streams.remove_subject(&auth.caller, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Poll for SETs (RFC 8936), for a stream created with poll delivery.
///
/// Acknowledges the `ack` jtis (never offered again) and records `setErrs` as failed, then
/// returns up to `maxEvents` SETs (default 16, at most 256; 0 = acknowledge only), the oldest
/// of each subject first. Without `returnImmediately` it waits up to
/// `[streams] poll_max_wait_secs` (≤ 30 s) for one. A SET returned and not acknowledged is
/// offered again after `[streams] poll_ack_timeout_secs`. `sets` is always present (`{}` when
/// empty); a paused or disabled stream returns none.
#[utoipa::path(post, path = "/ssf/poll/{stream_id}", tag = "streams",
    params(("stream_id" = String, Path, description = "The stream (32 lowercase hex digits); any other value names no stream")),
    request_body = PollRequest,
    security(("bearer" = ["streams:read"])),
    responses(
        (status = 200, description = "SETs, possibly none", body = PollResponse),
        (status = 400, description = "Not JSON, an invalid member (named), or a push stream", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stream for this caller", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn poll(
    auth: Auth<StreamsRead>,
    State(state): State<AppState>,
    ApiPath(stream_id): ApiPath<String>,
    raw: RawJson,
) -> Result<ApiJson<PollResponse>, ApiError> {
    let req: PollRequest = ssf_body(raw)?;
    Ok(ApiJson(
        state.streams.poll(&auth.caller, &stream_id, req).await?,
    ))
}
