//! `/v1/admin/okta/provider`: this transmitter's registration as a Security Events Provider in
//! the Okta org (scope `admin`) — the API twin of `ssf-transmitter okta register`.

use axum::body::Bytes;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AdminScope, Auth};
use super::openapi::{AuthErrors, OktaErrors};
use super::{ApiError, ApiJson, AppState, Problem};
use crate::okta::SecurityEventsProvider;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(provider_status, register_provider))
}

/// This transmitter's registration in Okta.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderRegistration {
    /// Whether Okta has a provider with our issuer or well-known URL.
    pub registered: bool,
    /// Okta's provider object (id, name, status, settings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<SecurityEventsProvider>,
    /// Our issuer (`iss` of every SET).
    pub issuer: String,
    /// Our SSF metadata URL, which Okta reads when registered by well-known URL.
    pub well_known_url: String,
    /// Our JWKS URL.
    pub jwks_url: String,
}

/// How to register.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// Provider name shown in Okta (default `ssf-transmitter`): 1–100 characters, not all
    /// white space.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: Option<String>,
    /// `well_known_url` (default: Okta reads our SSF metadata) or `jwks_url` (issuer + JWKS URL).
    pub by: Option<RegisterBy>,
}

/// Which settings Okta gets.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RegisterBy {
    /// `settings.well_known_url`.
    #[default]
    WellKnownUrl,
    /// `settings.issuer` + `settings.jwks_url`.
    JwksUrl,
}

fn registration(
    state: &AppState,
    provider: Option<SecurityEventsProvider>,
) -> ProviderRegistration {
    ProviderRegistration {
        registered: provider.is_some(),
        provider,
        issuer: state.issuer.to_string(),
        well_known_url: crate::okta::well_known_url(&state.issuer),
        jwks_url: format!("{}/.well-known/jwks.json", state.issuer),
    }
}

/// Show this transmitter's Security Events Provider in Okta (found by our issuer or well-known
/// URL).
#[utoipa::path(get, path = "/v1/admin/okta/provider", tag = "admin",
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Registered (with Okta's provider) or not", body = ProviderRegistration),
        OktaErrors, AuthErrors))]
pub async fn provider_status(
    _auth: Auth<AdminScope>,
    State(state): State<AppState>,
) -> Result<ApiJson<ProviderRegistration>, ApiError> {
    let provider = state.enforcer.provider(&state.issuer).await?;
    Ok(ApiJson(registration(&state, provider)))
}

/// Register this transmitter with Okta: create (or update) its Security Events Provider and
/// activate it, so Okta accepts our SETs. Idempotent.
#[utoipa::path(put, path = "/v1/admin/okta/provider", tag = "admin",
    request_body(content = Option<RegisterBody>, description = "Optional: name, and which settings Okta gets"),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Registered and active", body = ProviderRegistration),
        (status = 409, description = "Okta refused the provider (its errorCode/errorSummary attached)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        OktaErrors, AuthErrors))]
pub async fn register_provider(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<ApiJson<ProviderRegistration>, ApiError> {
    let b: RegisterBody = super::parse_optional_json(&body)?;
    let name = b.name.unwrap_or_else(|| "ssf-transmitter".into());
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(ApiError::field("name", "must be 1 to 100 characters"));
    }
    let provider = state
        .enforcer
        .register_provider(
            &auth.caller,
            &state.issuer,
            &name,
            b.by.unwrap_or_default() == RegisterBy::JwksUrl,
        )
        .await?;
    Ok(ApiJson(registration(&state, Some(provider))))
}
