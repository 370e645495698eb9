//! `POST /oauth2/token`: OAuth 2.0 client credentials (RFC 6749 §4.4) for API clients. The
//! handler reads the form and the `Authorization: Basic` header; [`crate::auth`] decides.
//! Answers are `no-store`; errors are RFC 6749 §5.2 JSON (`error`, `error_description`), not
//! problem+json, because OAuth clients read them so.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use secrecy::ExposeSecret as _;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ProtocolError;
use super::{ApiError, AppState, Problem};
use crate::auth::{TokenError, TokenParams};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(token))
}

/// The realm of `WWW-Authenticate: Basic` (fixed: nothing a caller sends goes into a header).
const REALM: &str = r#"Basic realm="ssf-transmitter""#;

/// Largest token request body; more is refused as `invalid_request`.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// Largest `Authorization` header value read as Basic credentials.
const MAX_BASIC_BYTES: usize = 1024;

/// A token request (`application/x-www-form-urlencoded`). Authenticate the client with exactly
/// one of: HTTP Basic (`client_secret_basic`: client id and its token, each form-urlencoded),
/// `client_id` + `client_secret` (`client_secret_post`), or `client_assertion_type` +
/// `client_assertion` (`private_key_jwt`). A parameter may appear once; one sent empty counts as
/// absent (RFC 6749 §3.1); unknown parameters are ignored.
#[derive(Debug, Default, ToSchema)]
pub struct TokenForm {
    /// `client_credentials`.
    #[schema(example = "client_credentials", required = true, nullable = false)]
    pub grant_type: Option<String>,
    /// Space-separated scopes, each held by the client; default: all of the client's.
    #[schema(
        example = "streams:read streams:write",
        max_length = 1024,
        nullable = false
    )]
    pub scope: Option<String>,
    /// The API client's id (`client_secret_post`; optional with the others, and then must match).
    #[schema(max_length = 128, nullable = false)]
    pub client_id: Option<String>,
    /// The API client's token (`client_secret_post`).
    #[schema(max_length = 256, nullable = false, format = Password)]
    pub client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` (`private_key_jwt`).
    #[schema(
        example = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        nullable = false
    )]
    pub client_assertion_type: Option<String>,
    /// A JWT signed (RS256 / ES256) with a key registered for the client: `iss` and `sub` the
    /// client id, `aud` the token endpoint URL or the issuer, `exp` at most 300 s ahead, a `jti`
    /// never used before.
    #[schema(max_length = 8192, nullable = false)]
    pub client_assertion: Option<String>,
}

impl TokenForm {
    /// Reads a form body: every parameter at most once, values UTF-8.
    fn parse(body: &[u8]) -> Result<Self, TokenError> {
        let bad = |d: &'static str| TokenError::InvalidRequest(d.into());
        if body.len() > MAX_FORM_BYTES {
            return Err(bad("the request body is larger than 16 KiB"));
        }
        if !body.is_ascii() {
            return Err(bad(
                "the body must be application/x-www-form-urlencoded (percent-encoded ASCII)",
            ));
        }
        let mut form = Self::default();
        for (name, value) in url::form_urlencoded::parse(body) {
            let slot = match name.as_ref() {
                "grant_type" => &mut form.grant_type,
                "scope" => &mut form.scope,
                "client_id" => &mut form.client_id,
                "client_secret" => &mut form.client_secret,
                "client_assertion_type" => &mut form.client_assertion_type,
                "client_assertion" => &mut form.client_assertion,
                _ => continue,
            };
            if slot.is_some() {
                return Err(bad("a parameter is repeated (RFC 6749 section 3.2)"));
            }
            if value.contains('\u{fffd}') {
                return Err(bad("a parameter is not percent-encoded UTF-8"));
            }
            // Sent without a value: as if not sent (RFC 6749 §3.1).
            if !value.is_empty() {
                *slot = Some(value.into_owned());
            }
        }
        Ok(form)
    }
}

/// An access token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// An opaque bearer token (`ssft_…`) for `Authorization: Bearer`.
    pub access_token: String,
    /// `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until it expires (`[oauth] access_token_ttl_secs`, at most 3600).
    #[schema(example = 900, minimum = 60, maximum = 3600)]
    pub expires_in: u64,
    /// The granted scopes, space-separated.
    #[schema(example = "streams:read streams:write")]
    pub scope: String,
}

/// The `error` of a refused token request (400).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenRequestErrorCode {
    /// A parameter missing, repeated, too long or not UTF-8; not a form; two client
    /// authentication methods.
    InvalidRequest,
    /// Valid credentials that may not obtain tokens (the bootstrap admin token).
    UnauthorizedClient,
    /// A grant type other than `client_credentials`.
    UnsupportedGrantType,
    /// A scope that is unknown, malformed or not held by the client.
    InvalidScope,
}

/// A refused token request (RFC 6749 §5.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenRequestError {
    /// The error code.
    pub error: TokenRequestErrorCode,
    /// What is wrong, in the service's words (never a value the request carried).
    pub error_description: String,
}

/// The `error` of a failed client authentication (401).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthErrorCode {
    /// Unknown or revoked client, wrong secret, an assertion that does not verify or is expired,
    /// replayed, for another audience or too long-lived; or no client authentication.
    InvalidClient,
}

/// A failed client authentication (RFC 6749 §5.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientAuthError {
    /// `invalid_client`.
    pub error: ClientAuthErrorCode,
    /// What is wrong, in the service's words (never a value the request carried).
    pub error_description: String,
}

/// Obtain an access token (OAuth 2.0 client credentials).
///
/// RFC 6749 §4.4 for API clients. The client authenticates with `client_secret_basic` (HTTP
/// Basic: client id and the client's token), `client_secret_post` (the same in the form) or
/// `private_key_jwt` (RFC 7523: a JWT signed with a key registered at
/// `PUT /v1/admin/clients/{name}/jwks`). The token holds the requested scopes (all of the
/// client's by default), expires after `[oauth] access_token_ttl_secs`, and stops working at once
/// when the client is revoked. Every answer carries `Cache-Control: no-store` and
/// `Pragma: no-cache`.
#[utoipa::path(post, path = "/oauth2/token", tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The access token", body = TokenResponse,
            headers(("Cache-Control" = String, description = "no-store"),
                    ("Pragma" = String, description = "no-cache"))),
        (status = 400, description = "Refused: `invalid_request` (not a form, a parameter missing, \
            repeated or too long, two client authentication methods), `unsupported_grant_type`, \
            `invalid_scope`, `unauthorized_client`", body = TokenRequestError,
            headers(("Cache-Control" = String, description = "no-store"),
                    ("Pragma" = String, description = "no-cache"))),
        (status = 401, description = "`invalid_client`: client authentication failed or was \
            missing", body = ClientAuthError,
            headers(("WWW-Authenticate" = String, description = "Basic realm=\"ssf-transmitter\""),
                    ("Cache-Control" = String, description = "no-store"),
                    ("Pragma" = String, description = "no-cache"))),
        (status = 500, description = "Unexpected server failure (details are in the logs, never \
            in the body)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return no_store(ApiError::PayloadTooLarge.into_response());
        }
        Err(_) => {
            return refused(
                &state,
                TokenError::InvalidRequest("the request body could not be read".into()),
            );
        }
    };
    if !is_form(&headers) {
        return refused(
            &state,
            TokenError::InvalidRequest(
                "send the parameters as application/x-www-form-urlencoded".into(),
            ),
        );
    }
    let form = match TokenForm::parse(&body) {
        Ok(f) => f,
        Err(e) => return refused(&state, e),
    };
    let basic = basic_credentials(&headers);
    let params = TokenParams {
        grant_type: form.grant_type.as_deref(),
        scope: form.scope.as_deref(),
        client_id: form.client_id.as_deref(),
        client_secret: form.client_secret.as_deref(),
        client_assertion_type: form.client_assertion_type.as_deref(),
        client_assertion: form.client_assertion.as_deref(),
        basic: basic.as_ref().map(|b| {
            b.as_ref()
                .map(|(id, s)| (id.as_str(), s.as_str()))
                .map_err(|_| ())
        }),
    };
    match state.auth.issue_token(&params, state.clock.now()).await {
        Ok(issued) => {
            tracing::Span::current().record("caller", issued.client.name.as_str());
            let scope = issued
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            tracing::info!(client = %issued.client.name, scope = %scope, expires_in = issued.expires_in, "access token issued");
            let body = TokenResponse {
                access_token: issued.access_token.expose_secret().to_owned(),
                token_type: "Bearer".into(),
                expires_in: issued.expires_in,
                scope,
            };
            no_store(axum::Json(body).into_response())
        }
        Err(e) => refused(&state, e),
    }
}

/// `application/x-www-form-urlencoded`, parameters (a charset) ignored.
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Not well-formed Basic credentials.
#[derive(Debug)]
struct MalformedBasic;

/// The client id and secret of `Authorization: Basic` (RFC 6749 §2.3.1: each form-urlencoded,
/// then joined by `:` and base64-encoded); `None` without an `Authorization` header or with
/// another scheme.
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), MalformedBasic>> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    let (scheme, rest) = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .unwrap_or(("", ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    if values.next().is_some() || value.len() > MAX_BASIC_BYTES {
        return Some(Err(MalformedBasic));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Some(Err(MalformedBasic));
    };
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    match (unescape(id), unescape(secret)) {
        (Some(id), Some(secret)) => Some(Ok((id, secret))),
        _ => Some(Err(MalformedBasic)),
    }
}

/// The RFC 6749 §5.2 answer to a refused request; a store failure is a 500 problem.
fn refused(state: &AppState, e: TokenError) -> Response {
    let Some(code) = e.code() else {
        return no_store(ApiError::internal(e).into_response());
    };
    let client_auth = matches!(e, TokenError::InvalidClient(_));
    if client_auth {
        state.metrics.auth_failure("invalid_client");
    }
    let description = e.description().into_owned();
    tracing::info!(error = code, description = %description, "token request refused");
    let mut resp = if client_auth {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            axum::Json(ClientAuthError {
                error: ClientAuthErrorCode::InvalidClient,
                error_description: description,
            }),
        )
            .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
        r
    } else {
        let error = match e {
            TokenError::UnauthorizedClient(_) => TokenRequestErrorCode::UnauthorizedClient,
            TokenError::UnsupportedGrantType => TokenRequestErrorCode::UnsupportedGrantType,
            TokenError::InvalidScope(_) => TokenRequestErrorCode::InvalidScope,
            _ => TokenRequestErrorCode::InvalidRequest,
        };
        (
            StatusCode::BAD_REQUEST,
            axum::Json(TokenRequestError {
                error,
                error_description: description,
            }),
        )
            .into_response()
    };
    resp.extensions_mut().insert(ProtocolError);
    no_store(resp)
}

/// RFC 6749 §5.1: token answers are never cached.
fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(value: &str) -> Option<Result<(String, String), MalformedBasic>> {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        basic_credentials(&h)
    }

    #[test]
    fn basic_credentials_are_form_urlencoded_then_base64() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(matches!(
            basic(&format!("Basic {}", b64("my%20id:s%3Ac+r"))),
            Some(Ok((id, s))) if id == "my id" && s == "s:c r"
        ));
        assert!(matches!(
            basic(&format!("basic {}", b64("a:b"))),
            Some(Ok((id, s))) if id == "a" && s == "b"
        ));
        assert!(
            basic("Bearer abc").is_none(),
            "another scheme is not client auth"
        );
        assert!(matches!(basic("Basic !!!"), Some(Err(_))));
        assert!(matches!(
            basic(&format!("Basic {}", b64("no-colon"))),
            Some(Err(_))
        ));
        assert!(matches!(
            basic(&format!("Basic {}", b64("a:%ff"))),
            Some(Err(_))
        ));
        assert!(matches!(
            basic(&format!("Basic {}", "A".repeat(2000))),
            Some(Err(_))
        ));
    }

    #[test]
    fn forms_refuse_repeats_and_treat_empty_as_absent() {
        let f = TokenForm::parse(b"grant_type=client_credentials&scope=&x=1&x=2").expect("form");
        assert_eq!(f.grant_type.as_deref(), Some("client_credentials"));
        assert_eq!(f.scope, None);
        assert!(TokenForm::parse(b"scope=a&scope=b").is_err());
        assert!(TokenForm::parse("scope=\u{e9}".as_bytes()).is_err());
        assert!(TokenForm::parse(b"scope=%ff").is_err());
        assert!(TokenForm::parse(&vec![b'a'; MAX_FORM_BYTES + 1]).is_err());
    }
}
