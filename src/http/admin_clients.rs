//! `/v1/admin/clients`: API clients, their bearer tokens and the public keys they sign
//! `private_key_jwt` assertions with (scope `admin`).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AdminScope, Auth};
use super::openapi::{AuthErrors, BodyErrors};
use super::{ApiError, ApiJson, ApiPath, AppState, FieldError, Problem, RawJson};
use crate::auth::{ClientError, ClientJwk, Scope};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_clients, add_client))
        .routes(routes!(revoke_client))
        .routes(routes!(set_client_jwks))
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

/// A JWKS to register: the client's public keys.
#[derive(Debug, ToSchema)]
pub struct JwksBody {
    /// Public JWKs (at most 10; none removes every key): `{"kty": "RSA", "n", "e"}` of 2048 to
    /// 8192 bits or `{"kty": "EC", "crv": "P-256", "x", "y"}`, each with an optional `kid`,
    /// `use` (`sig`), `alg` (`RS256` / `ES256`). Other public members are dropped; private ones
    /// (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`) refuse the whole set.
    #[schema(value_type = Vec<Object>, max_items = 10)]
    pub keys: Vec<serde_json::Value>,
}

/// A client's registered public keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientKeysView {
    /// The client's id: `iss` and `sub` of its assertions.
    pub id: String,
    /// The client's name.
    pub name: String,
    /// The keys as stored (normalised: only what a verifier needs).
    pub keys: Vec<ClientJwk>,
}

/// Register a client's public keys (`private_key_jwt`).
///
/// Replaces the keys the active client called `name` signs its token-endpoint assertions with
/// (RFC 7523); an empty `keys` removes them. RSA keys of fewer than 2048 bits, curves other than
/// P-256, other key types, malformed members and any private member are refused with 400 (each
/// member at fault named in `errors`); nothing is changed then.
#[utoipa::path(put, path = "/v1/admin/clients/{name}/jwks", tag = "admin",
    params(("name" = String, Path, description = "Client name")),
    request_body = JwksBody,
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Registered", body = ClientKeysView),
        (status = 404, description = "No active client has this name", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`", body = Problem, content_type = "application/problem+json"),
        AuthErrors))]
pub async fn set_client_jwks(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    body: RawJson,
) -> Result<ApiJson<ClientKeysView>, ApiError> {
    let keys = crate::auth::parse_jwks(&body.value).map_err(ApiError::InvalidRequest)?;
    let now = state.clock.now();
    let set = state
        .auth
        .set_client_keys(&name, &keys)
        .await
        .map_err(ApiError::internal)?;
    let outcome = if set.is_some() {
        Ok(())
    } else {
        Err("no active client with this name")
    };
    state
        .audit
        .record(
            now,
            (&auth.caller).into(),
            "client.jwks",
            Some(&name),
            outcome,
        )
        .await;
    match set {
        Some(c) => Ok(ApiJson(ClientKeysView {
            id: c.id,
            name: c.name,
            keys,
        })),
        None => Err(ApiError::NotFound(format!(
            "no active API client named '{name}'"
        ))),
    }
}
