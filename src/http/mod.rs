//! The HTTP API: routers (one module per resource), the error type, auth and JSON extractors, and
//! the middleware every request passes through.

pub mod admin_clients;
pub mod admin_keys;
pub mod admin_okta;
mod approvals;
pub mod auth;
mod containments;
pub mod enforce;
pub mod error;
pub mod health;
mod idempotency;
mod jobs;
mod oauth;
pub mod openapi;
pub mod routes;
pub mod signals;
mod streams;
pub mod well_known;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderName, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::keys::KeyManager;
use crate::metrics::Metrics;

pub use error::{ApiError, FieldError, Problem};
pub use routes::{Route, api_router, public_served_routes, served_routes};

/// The request id header, set on every request and echoed on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Everything a handler may need, behind one `Arc`: axum clones the state for every request
/// and every middleware, and a clone of this is one reference count, where a clone of the
/// services would be dozens (measured: ~15 % of the CPU of a signal, see BENCHMARKS.md).
#[derive(Clone, Debug)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// Shares `services` with every handler.
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
#[derive(Debug)]
pub struct Services {
    /// Public issuer URL, no trailing slash.
    pub issuer: Arc<str>,
    /// The audit log.
    pub audit: crate::enforcement::audit::Audit,
    /// Stored first answers of requests that carried an `Idempotency-Key`.
    pub idempotency: crate::enforcement::idempotency::Idempotency,
    /// Issuer keys.
    pub keys: KeyManager,
    /// Bearer token resolution.
    pub auth: Authenticator,
    /// This app's metrics.
    pub metrics: Metrics,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Signal intake.
    pub intake: crate::signals::Intake,
    /// Wakes the delivery worker.
    pub notify: Arc<tokio::sync::Notify>,
    /// Enforcement over the Okta Management API.
    pub enforcer: crate::enforcement::Enforcer,
    /// Containment playbooks and their release timer.
    pub containments: crate::enforcement::containment::Containments,
    /// Bulk jobs and their workers.
    pub jobs: crate::enforcement::jobs::Jobs,
    /// Standard SSF streams.
    pub streams: crate::signals::streams::config::Streams,
    /// The delivery worker's health, when a receiver is configured (readiness).
    pub delivery: Option<Arc<crate::delivery::DeliveryHealth>>,
    /// Every delivery worker's receiver state (up, or down and probed).
    pub receivers: crate::delivery::reach::Receivers,
}

/// JSON body extractor whose rejections are problem+json: a body that is not JSON → 400; a field
/// of the wrong type, an unknown field or a missing one → 422 naming the field.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

/// A JSON body kept both parsed (as a `Value`) and raw (for idempotency hashing).
#[derive(Debug, Clone)]
pub struct RawJson {
    /// Parsed.
    pub value: serde_json::Value,
    /// As received.
    pub bytes: axum::body::Bytes,
}

async fn json_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_media_type);
    if !is_json {
        return Err(ApiError::UnsupportedMediaType(
            "send the body as JSON with `Content-Type: application/json`".into(),
        ));
    }
    axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|r| {
            if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(format!("cannot read the body: {}", r.body_text()))
            }
        })
}

/// `application/json` or `application/*+json`, parameters ignored.
fn is_json_media_type(v: &str) -> bool {
    let essence = v
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn syntax_error(e: &serde_json::Error) -> ApiError {
    ApiError::BadRequest(format!("malformed JSON: {e}"))
}

/// An optional JSON body: empty (or blank) → `T::default()`, else parsed like [`parse_json`].
pub fn parse_optional_json<T: serde::de::DeserializeOwned + Default>(
    bytes: &[u8],
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(bytes)
    }
}

/// Parses `bytes` as `T`: not JSON → 400; otherwise every member with a wrong type, every
/// unknown member and a missing one → 422 naming each.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| syntax_error(&e))?;
    crate::validation::deserialize_all(value, "").map_err(ApiError::Validation)
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

impl<S: Send + Sync> FromRequest<S> for RawJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(req, state).await?;
        let value = serde_json::from_slice(&bytes).map_err(|e| syntax_error(&e))?;
        Ok(RawJson { value, bytes })
    }
}

/// Path extractor whose rejections are problem+json.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query extractor whose rejections are problem+json.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// The complete router: API routes, Swagger UI, issuer-path metadata route, fallbacks and
/// middleware.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let app = routes::api_routes(&state.issuer)
        .layer(middleware::from_fn_with_state(
            (state.clone(), max_body_bytes),
            idempotency::enforcement,
        ))
        .layer(middleware::from_fn(no_store_under_v1))
        .layer(DefaultBodyLimit::max(max_body_bytes));
    with_common_layers(app, state, max_body_bytes)
}

/// The public listener's router: only what receivers must reach — the JWKS, the SSF metadata
/// and liveness. Everything else, every `/v1/*` path included, is a 404 there.
pub fn public_router(state: AppState) -> Router {
    let app =
        routes::public_routes(&state.issuer).layer(DefaultBodyLimit::max(PUBLIC_MAX_BODY_BYTES));
    with_common_layers(app, state, PUBLIC_MAX_BODY_BYTES)
}

/// The public routes take no body; anything larger than this is refused.
const PUBLIC_MAX_BODY_BYTES: usize = 4096;

/// What every listener's requests pass through: panics caught and rendered as problem+json,
/// metrics, request ids, tracing, and secrets kept out of logs.
fn with_common_layers(app: Router<AppState>, state: AppState, max_body_bytes: usize) -> Router {
    app
        // Inside the problem+json mapper, so a panic's 500 is rendered like every other error.
        .layer(CatchPanicLayer::new())
        .layer(middleware::map_response_with_state(
            max_body_bytes,
            error::ensure_problem_json,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let request_id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %request_id,
                        caller = tracing::field::Empty,
                    )
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        // Outermost: a caller's request id that could garble logs is dropped (then replaced).
        .layer(middleware::map_request(drop_unusable_request_id))
        .with_state(state)
}

/// `Cache-Control: no-store` on every `/v1/*` answer (errors included): they may carry
/// one-time secrets, tokens or personal data that no cache or proxy should keep.
async fn no_store_under_v1(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let api = path.starts_with("/v1/") || path.starts_with("/ssf/");
    let mut resp = next.run(req).await;
    if api {
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
    }
    resp
}

/// The Content-Security-Policy of Swagger UI and the document: only this origin's scripts,
/// styles, images and API; no framing, no forms, no base rewriting.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

async fn docs_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(DOCS_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Whether a caller's `X-Request-Id` is kept: 1–128 visible ASCII characters (no spaces or
/// control characters), so it can go into logs and back out as a header as it is.
pub fn usable_request_id(v: &[u8]) -> bool {
    (1..=128).contains(&v.len()) && v.iter().all(u8::is_ascii_graphic)
}

async fn drop_unusable_request_id(mut req: Request) -> Request {
    let ids = req.headers().get_all(REQUEST_ID);
    let mut values = ids.iter();
    let keep = match (values.next(), values.next()) {
        (None, _) => true,
        (Some(v), None) => usable_request_id(v.as_bytes()),
        // Several: none is taken.
        (Some(_), Some(_)) => false,
    };
    if !keep {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let resp = next.run(req).await;
    state.metrics.http_request(
        &route,
        &method,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}
