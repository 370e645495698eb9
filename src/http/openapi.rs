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
        (name = "oauth", description = "OAuth 2.0 client credentials: short-lived access tokens for API clients (RFC 6749 §4.4, RFC 7523 private_key_jwt)"),
        (name = "streams", description = "SSF 1.0 stream management for standard receivers (scopes `streams:read`, `streams:write`); errors are 400 / 401 / 403 / 404 as SSF specifies"),
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

/// Errors of routes that take a JSON body with `Content-Type: application/json` (400 and 413 are
/// added by [`complete`]).
#[derive(IntoResponses)]
pub enum BodyErrors {
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// Well-formed JSON, but members have the wrong type, are unknown or missing, or break a
    /// rule; `errors` names every one.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// Adds what an operation answers because of what it reads, so no operation can forget it:
/// 400 wherever the body, a query or path parameter, or the `Idempotency-Key` header can be
/// malformed (the description lists which), and 413 wherever a body is read. Runs after every
/// parameter (including `Idempotency-Key`) is in the document.
pub fn complete(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{Operation, ParameterIn};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

    let problem = |description: String| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    super::error::PROBLEM_JSON,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    };
    let complete_op = |op: &mut Operation| {
        let params: Vec<(ParameterIn, String)> = op
            .parameters
            .iter()
            .flatten()
            .filter_map(|p| match p {
                RefOr::T(p) => Some((p.parameter_in.clone(), p.name.clone())),
                RefOr::Ref(_) => None,
            })
            .collect();
        let mut causes = Vec::new();
        // A form body (the token endpoint) documents its own 400.
        if op.request_body.as_ref().is_some_and(|b| match b {
            RefOr::T(b) => b.content.keys().any(|t| t.contains("json")),
            RefOr::Ref(_) => true,
        }) {
            causes.push("the body is not well-formed JSON");
        }
        if params.iter().any(|(i, _)| *i == ParameterIn::Query) {
            causes.push("a query parameter is unknown, repeated or not of its type");
        }
        if params.iter().any(|(i, _)| *i == ParameterIn::Path) {
            causes.push("a path parameter is not valid percent-encoded UTF-8");
        }
        if params
            .iter()
            .any(|(i, n)| *i == ParameterIn::Header && n.eq_ignore_ascii_case("idempotency-key"))
        {
            causes.push("`Idempotency-Key` is not 1 to 255 visible ASCII characters");
        }
        if !causes.is_empty() {
            let text = format!("Malformed request: {}", causes.join("; "));
            op.responses.responses.insert("400".into(), problem(text));
        }
        if op.request_body.is_some() {
            op.responses.responses.insert(
                "413".into(),
                problem("The body is larger than the configured limit (`max_body_bytes`, stated in `detail`)".into()),
            );
        }
    };
    for item in doc.paths.paths.values_mut() {
        for op in [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
            item.head.as_mut(),
            item.options.as_mut(),
            item.trace.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            complete_op(op);
        }
    }
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
