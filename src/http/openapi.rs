//! The OpenAPI 3.1 document: base info, the bearer security scheme, and reusable error responses.
//! Paths are collected from the handlers by `utoipa_axum::routes!`.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

use super::Problem;

/// Name of the bearer security scheme in the document.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ssf-transmitter",
        description = "Shared Signals (SSF) transmitter for Okta: signed Security Event Tokens for risk changes, \
                       push delivery, issuer keys and discovery, and direct enforcement over the Okta Management API.\n\n\
                       Every error body is `application/problem+json` (RFC 9457). Non-public routes need \
                       `Authorization: Bearer <token>` holding the scope listed on the route.",
        license(name = "Apache-2.0"),
    ),
    modifiers(&SecurityAddon),
    components(schemas(Problem)),
    tags(
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "discovery", description = "Public keys and SSF transmitter metadata"),
        (name = "signals", description = "Risk signals to Okta as Security Event Tokens, and their delivery"),
        (name = "enforcement", description = "Direct actions and look-ups over the Okta Management API, and the audit log"),
        (name = "admin", description = "Issuer keys and API clients (scope `admin`)"),
    )
)]
struct ApiDoc;

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::from(Http::new(HttpAuthScheme::Bearer))
                    .description(Some(
                        "An API client token (`ssft_…`) from `ssf-transmitter clients add` or \
                         POST /v1/admin/clients, or the bootstrap SSF_ADMIN_TOKEN.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document before paths are added.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Errors every authenticated route can answer.
#[derive(IntoResponses)]
pub enum AuthErrors {
    /// Missing or invalid bearer token (`WWW-Authenticate: Bearer`).
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The token lacks the scope the route (with these options) needs (`insufficient-scope`,
    /// `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`), or a configured bound
    /// (`[enforcement] assignable_roles`, `profile_attributes`) refuses the change
    /// (`not-permitted`, the setting named; nothing was sent).
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// Unexpected server failure (details are in the logs, never in the body).
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
}

/// Errors of routes that take a JSON body.
#[derive(IntoResponses)]
pub enum BodyErrors {
    /// Malformed JSON, wrong types or unknown fields.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// The body is larger than the configured limit.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// Well-formed, but a field breaks a rule; `errors` names each field.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// Errors of routes that call Okta.
#[derive(IntoResponses)]
pub enum OktaErrors {
    /// Okta's rate limit is exhausted after waiting up to 30 s (`Retry-After` says when to retry).
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(Problem),
    /// Okta is unreachable, failed, or refused this service's credentials (cause named, no secrets).
    #[response(status = 502, content_type = "application/problem+json")]
    BadGateway(Problem),
    /// No Okta credentials are configured (`[okta] api_token`).
    #[response(status = 503, content_type = "application/problem+json")]
    NotConfigured(Problem),
}
