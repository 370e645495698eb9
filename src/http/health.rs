//! Liveness, readiness and Prometheus metrics (public).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, AppState, Problem};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` while the process serves requests.
    #[schema(example = "ok")]
    pub status: String,
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    #[schema(example = "ready")]
    pub status: String,
    /// `kid` of the active signing key.
    pub active_kid: String,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> ApiJson<Health> {
    ApiJson(Health {
        status: "ok".into(),
    })
}

/// Readiness: the store's writer runs and commits, the delivery worker runs (when a receiver is
/// configured) and records outcomes, and an active signing key is loaded.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready to accept work", body = Ready),
        (status = 503, description = "The store cannot commit or its writer stopped, the delivery worker is not running or cannot record outcomes, or no active key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<ApiJson<Ready>, ApiError> {
    if !state.intake.store_writer_running() {
        tracing::warn!("readiness: the store's writer has stopped");
        return Err(ApiError::Unavailable(
            "the store's writer is not running".into(),
        ));
    }
    // A real commit through the writer intake uses: a store that answers reads but cannot
    // write (disk full, read-only file, lock held elsewhere) is not ready.
    let now_ms = state.clock.now().timestamp_millis();
    if let Err(e) = state.intake.probe_store(now_ms).await {
        tracing::warn!(error = %e, "readiness: the store cannot commit");
        return Err(ApiError::Unavailable(
            "the store cannot commit a write".into(),
        ));
    }
    if let Some(delivery) = &state.delivery {
        if !delivery.running() {
            return Err(ApiError::Unavailable(
                "the delivery worker is not running".into(),
            ));
        }
        if delivery.outcome_writes_failing() {
            return Err(ApiError::Unavailable(
                "the delivery worker cannot record delivery outcomes in the store".into(),
            ));
        }
    }
    let ring = state.keys.ring();
    if ring.active().is_none() {
        return Err(ApiError::Unavailable(
            "no active signing key is loaded".into(),
        ));
    }
    Ok(ApiJson(Ready {
        status: "ready".into(),
        active_kid: ring.active_kid().to_owned(),
    }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    // SETs by status, fresh at every scrape (the worker also refreshes them while it runs).
    match state.intake.status_counts().await {
        Ok(counts) => state.metrics.outbox_counts(&counts),
        Err(e) => tracing::warn!(error = %e, "cannot count the outbox for /metrics"),
    }
    let mut resp = state.metrics.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
