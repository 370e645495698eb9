//! `POST /security/api/v1/security-events`: verifies a SET like Okta does, independently of the
//! transmitter's code (JWKS fetched over HTTP, signature checked with josekit/OpenSSL), and
//! answers 202 or 400 `{err, description}` with Okta's `err` values and camelCase field names.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::faults::Injected;
use super::{SandboxState, Ssws, St};

/// A SET the sandbox accepted.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedSet {
    /// `jti`.
    pub jti: String,
    /// `iss`.
    pub iss: String,
    /// The provider it matched.
    pub provider_id: String,
    /// The compact token as received.
    pub token: String,
    /// The verified claims.
    pub claims: Value,
    /// When (RFC 3339).
    pub received_at: String,
}

pub(super) struct CachedJwks {
    keys: josekit::jwk::JwkSet,
    fetched: Instant,
}

/// Refetch a JWKS on an unknown `kid` at most this often.
const REFETCH_AFTER: Duration = Duration::from_secs(1);
/// A cached JWKS is used at most this long, so retired keys stop verifying.
const CACHE_FOR: Duration = Duration::from_secs(60);

struct Reject {
    err: &'static str,
    description: String,
}

fn reject(err: &'static str, description: impl Into<String>) -> Reject {
    Reject {
        err,
        description: description.into(),
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"err": self.err, "description": self.description})),
        )
            .into_response()
    }
}

const EVENTS: &[(&str, &str)] = &[
    (
        "https://schemas.okta.com/secevent/okta/event-type/user-risk-change",
        "mediationUserRiskChangeEvent",
    ),
    (
        "https://schemas.okta.com/secevent/okta/event-type/device-risk-change",
        "mediationDeviceRiskChangeEvent",
    ),
    (
        "https://schemas.okta.com/secevent/okta/event-type/ip-change",
        "mediationIpChangeEvent",
    ),
    (
        "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change",
        "mediationDeviceComplianceChangeEvent",
    ),
    (
        "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
        "mediationSessionRevokedEvent",
    ),
    (
        "https://schemas.openid.net/secevent/risc/event-type/identifier-changed",
        "mediationIdentifierChangedEvent",
    ),
];

fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' || c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn claim_error(path: &str, rule: &str) -> Reject {
    reject(
        "invalid_request",
        format!("Failed claim validation in security event token. '{path}': {rule}"),
    )
}

pub(super) async fn receive(state: St, headers: HeaderMap, body: Bytes) -> Response {
    let (injected, latency) = match state.faults.lock() {
        Ok(mut f) => (f.take(), f.latency_ms),
        Err(_) => (Injected::None, 0),
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    match injected {
        Injected::None => {}
        Injected::Fail(status) => return status.into_response(),
        Injected::RateLimit(secs) => return super::faults::rate_limited(&state, secs),
    }
    match verify(&state, &headers, &body).await {
        Ok(None) => StatusCode::ACCEPTED.into_response(),
        Ok(Some(set)) => {
            super::logs::record(&state, &set);
            if let Ok(mut r) = state.received.lock() {
                if r.len() >= 10_000 {
                    r.remove(0);
                }
                r.push(set);
            }
            StatusCode::ACCEPTED.into_response()
        }
        Err(r) => r.into_response(),
    }
}

/// `Ok(None)`: a repeated `jti`, accepted and ignored.
async fn verify(
    state: &SandboxState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<ReceivedSet>, Reject> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ct.split(';').next().map(str::trim) != Some("application/secevent+jwt") {
        return Err(reject(
            "invalid_request",
            "Content-Type must be application/secevent+jwt",
        ));
    }
    let token = std::str::from_utf8(body)
        .map(str::trim)
        .map_err(|_| reject("invalid_request", "The security event token is not text"))?;
    let header = josekit::jwt::decode_header(token).map_err(|e| {
        reject(
            "invalid_request",
            format!("Malformed security event token: {e}"),
        )
    })?;
    let alg = header
        .claim("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if alg != "RS256" {
        return Err(reject(
            "invalid_request",
            format!("Unsupported signing algorithm '{alg}'; use RS256"),
        ));
    }
    if header.claim("typ").and_then(Value::as_str) != Some("secevent+jwt") {
        return Err(reject(
            "invalid_request",
            "The 'typ' header must be 'secevent+jwt'",
        ));
    }
    let kid = header
        .claim("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| reject("invalid_key", "The 'kid' header is missing"))?
        .to_owned();
    // The issuer selects the provider; the claims are trusted only after the signature check.
    let unverified = unverified_claims(token)?;
    let iss = unverified
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| claim_error("iss", "The field cannot be left blank"))?;
    let provider = state
        .providers()
        .into_iter()
        .find(|p| p.settings.issuer == iss)
        .ok_or_else(|| {
            reject(
                "invalid_issuer",
                format!("No security events provider is configured with issuer '{iss}'"),
            )
        })?;
    if provider.status != "ACTIVE" {
        return Err(reject(
            "invalid_issuer",
            "The security events provider for this issuer is not active",
        ));
    }
    let jwk = key_for(state, &provider.settings.jwks_url, &kid).await?;
    let verifier = josekit::jws::RS256.verifier_from_jwk(&jwk).map_err(|e| {
        reject(
            "invalid_key",
            format!("The key '{kid}' cannot verify RS256: {e}"),
        )
    })?;
    let (payload, _) = josekit::jws::deserialize_compact(token, &verifier).map_err(|_| {
        reject(
            "authentication_failed",
            "Could not verify message signature",
        )
    })?;
    let claims: Map<String, Value> = serde_json::from_slice(&payload).map_err(|_| {
        reject(
            "invalid_request",
            "The security event token payload is not a JSON object",
        )
    })?;

    let aud = claims
        .get("aud")
        .and_then(Value::as_str)
        .ok_or_else(|| claim_error("aud", "The field cannot be left blank"))?;
    if aud.trim_end_matches('/') != state.org_url {
        return Err(reject(
            "invalid_audience",
            format!("Invalid audience '{aud}'; expected '{}'", state.org_url),
        ));
    }
    let jti = match claims.get("jti") {
        Some(Value::String(j)) if !j.is_empty() => j.clone(),
        _ => return Err(claim_error("jti", "The field cannot be left blank")),
    };
    if !claims.get("iat").is_some_and(Value::is_i64) {
        return Err(claim_error("iat", "The field cannot be left blank"));
    }
    let events = match claims.get("events") {
        Some(Value::Object(e)) if !e.is_empty() => e,
        _ => return Err(claim_error("events", "The field cannot be left blank")),
    };
    for (uri, event) in events {
        let name = EVENTS
            .iter()
            .find(|(u, _)| u == uri)
            .map(|(_, n)| *n)
            .ok_or_else(|| claim_error("events", &format!("Unsupported event type '{uri}'")))?;
        check_event(uri, name, event)?;
    }
    let fresh = state
        .seen_jtis
        .lock()
        .map(|mut s| s.insert(jti.clone()))
        .unwrap_or(true);
    if !fresh {
        return Ok(None);
    }
    Ok(Some(ReceivedSet {
        jti,
        iss: iss.to_owned(),
        provider_id: provider.id,
        token: token.to_owned(),
        claims: Value::Object(claims),
        received_at: state
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }))
}

fn unverified_claims(token: &str) -> Result<Map<String, Value>, Reject> {
    use base64::Engine as _;
    let part = token
        .split('.')
        .nth(1)
        .ok_or_else(|| reject("invalid_request", "Malformed security event token"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| reject("invalid_request", "Malformed security event token"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| reject("invalid_request", "Malformed security event token"))
}

async fn key_for(
    state: &SandboxState,
    jwks_url: &str,
    kid: &str,
) -> Result<josekit::jwk::Jwk, Reject> {
    let cached = state.jwks_cache.lock().ok().and_then(|c| {
        c.get(jwks_url).map(|j| {
            (
                j.keys.get(kid).first().map(|k| (*k).clone()),
                j.fetched.elapsed() >= REFETCH_AFTER,
            )
        })
    });
    let expired = state
        .jwks_cache
        .lock()
        .ok()
        .and_then(|c| c.get(jwks_url).map(|j| j.fetched.elapsed() >= CACHE_FOR))
        .unwrap_or(true);
    let frozen = state
        .jwks_frozen_until
        .lock()
        .ok()
        .and_then(|f| *f)
        .is_some_and(|until| Instant::now() < until);
    if frozen && let Some((key, _)) = &cached {
        // A stale cache that is not refreshed (fault `jwks_stale_secs`).
        return key.clone().ok_or_else(|| {
            reject(
                "invalid_key",
                format!("No key with kid '{kid}' in the provider's JWKS"),
            )
        });
    }
    match cached {
        Some((Some(key), _)) if !expired => return Ok(key),
        Some((None, false)) if !expired => {
            return Err(reject(
                "invalid_key",
                format!("No key with kid '{kid}' in the provider's JWKS"),
            ));
        }
        _ => {}
    }
    let resp = state
        .http
        .get(jwks_url)
        .send()
        .await
        .map_err(|e| reject("invalid_key", format!("Unable to fetch the JWKS: {e}")))?;
    if !resp.status().is_success() {
        return Err(reject(
            "invalid_key",
            format!("Unable to fetch the JWKS: HTTP {}", resp.status().as_u16()),
        ));
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(reject(
            "invalid_key",
            "The JWKS must be served as application/json",
        ));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| reject("invalid_key", format!("Unable to read the JWKS: {e}")))?;
    let keys = josekit::jwk::JwkSet::from_bytes(&bytes)
        .map_err(|e| reject("invalid_key", format!("The JWKS is malformed: {e}")))?;
    let key = keys.get(kid).first().map(|k| (*k).clone());
    if let Ok(mut c) = state.jwks_cache.lock() {
        c.insert(
            jwks_url.to_owned(),
            CachedJwks {
                keys,
                fetched: Instant::now(),
            },
        );
    }
    key.ok_or_else(|| {
        reject(
            "invalid_key",
            format!("No key with kid '{kid}' in the provider's JWKS"),
        )
    })
}

fn check_event(uri: &str, name: &str, event: &Value) -> Result<(), Reject> {
    let path = |field: &str| format!("events.{name}.{}", camel(field));
    let obj = event
        .as_object()
        .ok_or_else(|| claim_error(&format!("events.{name}"), "The field must be an object"))?;
    let required_str = |field: &str| -> Result<&str, Reject> {
        match obj.get(field) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            _ => Err(claim_error(&path(field), "The field cannot be left blank")),
        }
    };
    let one_of = |field: &str, allowed: &[&str], required: bool| -> Result<(), Reject> {
        match obj.get(field) {
            None if !required => Ok(()),
            None => Err(claim_error(&path(field), "The field cannot be left blank")),
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
            Some(_) => Err(claim_error(&path(field), "Not one of the allowed values")),
        }
    };
    // subject: {user?, device?}, each an RFC 9493 identifier.
    let subject = obj
        .get("subject")
        .and_then(Value::as_object)
        .ok_or_else(|| claim_error(&path("subject"), "The field cannot be left blank"))?;
    if subject.is_empty() {
        return Err(claim_error(
            &path("subject"),
            "The field cannot be left blank",
        ));
    }
    for (member, id) in subject {
        if member != "user" && member != "device" {
            return Err(claim_error(
                &format!("{}.{member}", path("subject")),
                "Unknown subject member",
            ));
        }
        let format = id.get("format").and_then(Value::as_str);
        if format.is_none() {
            return Err(claim_error(
                &format!("{}.{member}.format", path("subject")),
                "The field cannot be left blank",
            ));
        }
        if member == "user"
            && format == Some("email")
            && !id
                .get("email")
                .and_then(Value::as_str)
                .is_some_and(|e| e.contains('@'))
        {
            return Err(claim_error(
                &format!("{}.user.email", path("subject")),
                "Not a valid email address",
            ));
        }
    }
    if !obj.get("event_timestamp").is_some_and(Value::is_i64) {
        return Err(claim_error(
            &path("event_timestamp"),
            "The field cannot be left blank",
        ));
    }
    let levels = ["low", "medium", "high", "secure", "none"];
    let entities = ["admin", "user", "policy", "system"];
    let is_identifier = uri.ends_with("/identifier-changed");
    if !is_identifier {
        one_of("initiating_entity", &entities, false)?;
        for r in ["reason_admin", "reason_user"] {
            if let Some(reason) = obj.get(r)
                && reason
                    .get("en")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                return Err(claim_error(
                    &format!("{}.en", path(r)),
                    "The field cannot be left blank",
                ));
            }
        }
        if obj.get("reason_admin").is_none() && obj.get("reason_user").is_none() {
            return Err(claim_error(
                &path("reason_admin"),
                "Either reasonAdmin or reasonUser is required",
            ));
        }
    }
    if uri.ends_with("/user-risk-change") || uri.ends_with("/device-risk-change") {
        one_of("current_level", &levels, true)?;
        one_of("previous_level", &levels, true)?;
    } else if uri.ends_with("/ip-change") {
        required_str("current_ip_address")?;
        required_str("previous_ip_address")?;
    } else if uri.ends_with("/device-compliance-change") {
        one_of("current_status", &["compliant", "not-compliant"], true)?;
        one_of("previous_status", &["compliant", "not-compliant"], true)?;
    }
    Ok(())
}

pub(super) async fn list_received(_auth: Ssws, state: St) -> Json<Vec<ReceivedSet>> {
    Json(state.received())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okta_style_camel_case() {
        assert_eq!(camel("previous_status"), "previousStatus");
        assert_eq!(camel("new-value"), "newValue");
        assert_eq!(camel("subject"), "subject");
    }

    #[test]
    fn event_checks_name_the_field() {
        let uri = EVENTS[0].0;
        let good = json!({
            "subject": {"user": {"format": "email", "email": "a@b.c"}},
            "event_timestamp": 1,
            "current_level": "high",
            "previous_level": "low",
            "reason_admin": {"en": "x"},
        });
        assert!(check_event(uri, "mediationUserRiskChangeEvent", &good).is_ok());
        let mut bad = good.clone();
        bad["current_level"] = json!("severe");
        let r = check_event(uri, "mediationUserRiskChangeEvent", &bad).expect_err("bad");
        assert_eq!(r.err, "invalid_request");
        assert!(r.description.contains(
            "'events.mediationUserRiskChangeEvent.currentLevel': Not one of the allowed values"
        ));
        let mut no_reason = good.clone();
        no_reason
            .as_object_mut()
            .expect("obj")
            .remove("reason_admin");
        assert!(check_event(uri, "mediationUserRiskChangeEvent", &no_reason).is_err());
    }
}
