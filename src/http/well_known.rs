//! Public discovery: the JWKS, SSF 1.0 transmitter metadata and the OAuth 2.0 authorization
//! server metadata (RFC 8414) naming the token endpoint.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, AppState};
use crate::auth::{ASSERTION_ALGS, AUTH_METHODS, CLIENT_CREDENTIALS, Scope, TOKEN_PATH};
use crate::keys::JWKS_MAX_AGE_SECS;
use crate::signals::streams::config::issuer_origin;

/// The RFC 8935 push delivery method URI.
pub const PUSH_DELIVERY: &str = "urn:ietf:rfc:8935";

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(ssf_configuration))
        .routes(routes!(oauth_authorization_server))
}

/// The OAuth 2.0 authorization framework (RFC 6749), as SSF's `authorization_schemes` names it.
pub const OAUTH2_SPEC_URN: &str = "urn:ietf:rfc:6749";

/// The token endpoint's absolute URL: on the issuer's origin, like the stream endpoints.
pub fn token_endpoint(issuer: &str) -> String {
    format!("{}{TOKEN_PATH}", issuer_origin(issuer))
}

/// The path part of an issuer URL (`https://h/a/b` → `/a/b`; none → empty).
pub fn issuer_path(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// One public signing key.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicJwk {
    /// `RSA`.
    pub kty: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// `RS256`.
    pub alg: String,
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Exponent, base64url.
    pub e: String,
}

/// A JSON Web Key Set.
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwks {
    /// Published keys (`next`, `active`, `retiring`); never private members.
    pub keys: Vec<PublicJwk>,
}

/// The public keys receivers use to verify our SETs.
///
/// Publishes the `next`, `active` and `retiring` keys. Cacheable for 300 s.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "discovery",
    responses((status = 200, description = "JWKS", body = Jwks,
        headers(("Cache-Control" = String, description = "public, max-age=300")))))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let body = state.keys.ring().jwks_json();
    let mut resp = body.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={JWKS_MAX_AGE_SECS}")) {
        headers.insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// SSF 1.0 transmitter configuration metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct SsfConfiguration {
    /// Version of the SSF specification supported.
    #[schema(example = "1_0")]
    pub spec_version: String,
    /// The issuer: exactly the `iss` of every SET.
    pub issuer: String,
    /// Where the signing keys are.
    pub jwks_uri: String,
    /// Supported delivery methods.
    pub delivery_methods_supported: Vec<String>,
    /// Where receivers create, read, update, replace and delete their streams (SSF §8.1.1).
    pub configuration_endpoint: String,
    /// Where receivers read and change a stream's status (SSF §8.1.2).
    pub status_endpoint: String,
    /// Where receivers ask for a verification event (SSF §8.1.4.2).
    pub verification_endpoint: String,
    /// Where receivers add a subject to a stream (SSF §8.1.3.2).
    pub add_subject_endpoint: String,
    /// Where receivers remove a subject from a stream (SSF §8.1.3.3).
    pub remove_subject_endpoint: String,
    /// Which subjects a new stream carries: `ALL` or `NONE`.
    #[schema(value_type = String, example = "ALL")]
    pub default_subjects: crate::signals::streams::config::DefaultSubjects,
    /// How receivers authorize: OAuth 2.0 (`urn:ietf:rfc:6749`), with access tokens from the
    /// token endpoint named at `/.well-known/oauth-authorization-server` (an API client's own
    /// bearer token works as well).
    pub authorization_schemes: Vec<AuthorizationScheme>,
}

/// One authorization scheme (SSF 1.0 §7.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizationScheme {
    /// The scheme's specification.
    #[schema(example = "urn:ietf:rfc:6749")]
    pub spec_urn: String,
}

/// SSF transmitter metadata (SSF 1.0 §7).
///
/// Also served at `/.well-known/ssf-configuration{issuer path}` when the issuer has a path.
#[utoipa::path(get, path = "/.well-known/ssf-configuration", tag = "discovery",
    responses((status = 200, description = "Transmitter metadata", body = SsfConfiguration)))]
pub async fn ssf_configuration(State(state): State<AppState>) -> ApiJson<SsfConfiguration> {
    ApiJson(SsfConfiguration {
        spec_version: "1_0".into(),
        issuer: state.issuer.to_string(),
        jwks_uri: format!("{}/.well-known/jwks.json", state.issuer),
        delivery_methods_supported: vec![
            PUSH_DELIVERY.into(),
            crate::signals::streams::config::POLL.into(),
        ],
        configuration_endpoint: format!("{}/ssf/streams", issuer_origin(&state.issuer)),
        status_endpoint: format!("{}/ssf/status", issuer_origin(&state.issuer)),
        verification_endpoint: format!("{}/ssf/verify", issuer_origin(&state.issuer)),
        add_subject_endpoint: format!("{}/ssf/subjects:add", issuer_origin(&state.issuer)),
        remove_subject_endpoint: format!("{}/ssf/subjects:remove", issuer_origin(&state.issuer)),
        default_subjects: state.streams.default_subjects(),
        authorization_schemes: vec![AuthorizationScheme {
            spec_urn: OAUTH2_SPEC_URN.into(),
        }],
    })
}

/// OAuth 2.0 authorization server metadata (RFC 8414). There is no authorization endpoint (the
/// only grant is client credentials), so `authorization_endpoint` and `response_types_supported`
/// are left out rather than sent empty.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizationServerMetadata {
    /// The issuer: the SSF issuer.
    pub issuer: String,
    /// Where clients obtain access tokens.
    pub token_endpoint: String,
    /// `client_credentials`.
    pub grant_types_supported: Vec<String>,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// What a `private_key_jwt` assertion may be signed with: `RS256`, `ES256`.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// Every scope an API client may hold, and so request.
    pub scopes_supported: Vec<Scope>,
}

/// OAuth 2.0 authorization server metadata (RFC 8414).
///
/// Names the token endpoint (client credentials). Also served at
/// `/.well-known/oauth-authorization-server{issuer path}` when the issuer has a path (RFC 8414
/// §3.1).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses((status = 200, description = "Authorization server metadata", body = AuthorizationServerMetadata)))]
pub async fn oauth_authorization_server(
    State(state): State<AppState>,
) -> ApiJson<AuthorizationServerMetadata> {
    ApiJson(AuthorizationServerMetadata {
        issuer: state.issuer.to_string(),
        token_endpoint: token_endpoint(&state.issuer),
        grant_types_supported: vec![CLIENT_CREDENTIALS.into()],
        token_endpoint_auth_methods_supported: AUTH_METHODS.iter().map(|m| (*m).into()).collect(),
        token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS
            .iter()
            .map(|a| (*a).into())
            .collect(),
        scopes_supported: Scope::ALL.to_vec(),
    })
}
