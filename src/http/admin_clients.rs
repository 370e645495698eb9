//! `/v1/admin/clients`: API clients and their bearer tokens (scope `admin`).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AdminScope, Auth};
use super::openapi::{AuthErrors, BodyErrors};
use super::{ApiError, ApiJson, ApiPath, AppState, FieldError, Problem};
use crate::auth::{ClientError, Scope};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_clients, add_client))
        .routes(routes!(revoke_client))
}

/// An API client (never its token).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    /// Stable id.
    pub id: String,
    /// Unique name among active clients.
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<Scope>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Revoked, when revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<crate::auth::Client> for ClientView {
    fn from(c: crate::auth::Client) -> Self {
        Self {
            id: c.id,
            name: c.name,
            scopes: c.scopes,
            created_at: c.created_at,
            revoked_at: c.revoked_at,
        }
    }
}

/// All clients.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    /// Active and revoked clients, by name.
    pub clients: Vec<ClientView>,
}

/// A client to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientRequest {
    /// 1–64 characters of letters, digits, `.`, `_`, `-`.
    #[schema(
        example = "ueba-prod",
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9._-]{1,64}$"
    )]
    pub name: String,
    /// Scopes to grant (at least one).
    #[schema(value_type = Vec<Scope>, min_items = 1)]
    pub scopes: Vec<String>,
}

/// A created client with its token, shown only in this response.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedClient {
    /// The client.
    #[serde(flatten)]
    pub client: ClientView,
    /// The bearer token. Store it now: it is never shown again.
    pub token: String,
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Invalid(m) => ApiError::field("name", m),
            ClientError::Conflict(m) => ApiError::Conflict(m),
            ClientError::Store(s) => ApiError::internal(s),
        }
    }
}

/// List API clients.
#[utoipa::path(get, path = "/v1/admin/clients", tag = "admin",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "Clients", body = ClientList), AuthErrors))]
pub async fn list_clients(
    _auth: Auth<AdminScope>,
    State(state): State<AppState>,
) -> Result<ApiJson<ClientList>, ApiError> {
    let clients = state
        .auth
        .list_clients()
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiJson(ClientList {
        clients: clients.into_iter().map(ClientView::from).collect(),
    }))
}

/// Create an API client.
///
/// Answers 201 with the bearer token, which is shown only in this response (only its SHA-256
/// digest is stored).
#[utoipa::path(post, path = "/v1/admin/clients", tag = "admin",
    request_body = NewClientRequest,
    security(("bearer" = ["admin"])),
    responses(
        (status = 201, description = "Created; the token is in the body", body = CreatedClient),
        (status = 409, description = "An active client has this name", body = Problem, content_type = "application/problem+json"),
        BodyErrors, AuthErrors))]
pub async fn add_client(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewClientRequest>,
) -> Result<(StatusCode, ApiJson<CreatedClient>), ApiError> {
    let mut errors = Vec::new();
    let mut scopes = Vec::new();
    for (i, s) in body.scopes.iter().enumerate() {
        match s.parse::<Scope>() {
            Ok(scope) => scopes.push(scope),
            Err(e) => errors.push(FieldError {
                field: format!("scopes[{i}]"),
                message: e.to_string(),
            }),
        }
    }
    if body.scopes.is_empty() {
        errors.push(FieldError {
            field: "scopes".into(),
            message: "at least one scope is required".into(),
        });
    }
    if let Err(ClientError::Invalid(m)) = crate::auth::validate_client_name(&body.name) {
        errors.push(FieldError {
            field: "name".into(),
            message: m,
        });
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let now = state.clock.now();
    let result = state.auth.create_client(&body.name, &scopes, now).await;
    let outcome = result.as_ref().err().map(ToString::to_string);
    state
        .audit
        .record(
            now,
            (&auth.caller).into(),
            "client.add",
            Some(&body.name),
            outcome.as_deref().map_or(Ok(()), Err),
        )
        .await;
    let (client, token) = result?;
    use secrecy::ExposeSecret as _;
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedClient {
            client: client.into(),
            token: token.expose_secret().to_owned(),
        }),
    ))
}

/// Revoke an API client.
///
/// Its token stops working at once. The name may then be reused.
#[utoipa::path(delete, path = "/v1/admin/clients/{name}", tag = "admin",
    params(("name" = String, Path, description = "Client name")),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Revoked", body = ClientView),
        (status = 404, description = "No active client has this name", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn revoke_client(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<ApiJson<ClientView>, ApiError> {
    let now = state.clock.now();
    let revoked = state
        .auth
        .revoke_client(&name, now)
        .await
        .map_err(ApiError::internal)?;
    let outcome = if revoked.is_some() {
        Ok(())
    } else {
        Err("no active client with this name")
    };
    state
        .audit
        .record(
            now,
            (&auth.caller).into(),
            "client.revoke",
            Some(&name),
            outcome,
        )
        .await;
    match revoked {
        Some(c) => Ok(ApiJson(c.into())),
        None => Err(ApiError::NotFound(format!(
            "no active API client named '{name}'"
        ))),
    }
}
