//! `/api/v1/security-events-providers`: Okta's Security Events Providers API (SSF receiver
//! configuration), with the bodies and status codes of Okta's spec. A provider is `ACTIVE` on
//! create.

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::{OktaError, SandboxState, Ssws, St};

/// Settings as Okta returns them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProviderSettings {
    /// Issuer the SETs must carry.
    pub issuer: String,
    /// Where the keys are.
    pub jwks_url: String,
    /// The SSF well-known document, when registered that way.
    pub well_known_url: Option<String>,
}

/// A registered provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// `sse…` id.
    pub id: String,
    /// Name.
    pub name: String,
    /// App type.
    pub kind: String,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// Settings.
    pub settings: ProviderSettings,
}

impl Provider {
    fn to_json(&self, org_url: &str) -> Value {
        let base = format!("{org_url}/api/v1/security-events-providers/{}", self.id);
        let lifecycle = if self.status == "ACTIVE" {
            "deactivate"
        } else {
            "activate"
        };
        json!({
            "id": self.id,
            "name": self.name,
            "type": self.kind,
            "status": self.status,
            "settings": self.settings,
            "_links": {
                "self": {"href": base, "hints": {"allow": ["GET", "PUT", "DELETE"]}},
                lifecycle: {"href": format!("{base}/lifecycle/{lifecycle}"), "hints": {"allow": ["POST"]}},
            }
        })
    }
}

fn new_id() -> String {
    // Okta ids: 20 characters, here "sse" + 17 base62-ish characters.
    let raw = uuid::Uuid::new_v4().simple().to_string();
    format!("sse{}", &raw[..17])
}

fn text(
    obj: &serde_json::Map<String, Value>,
    key: &str,
    max: usize,
    causes: &mut Vec<String>,
) -> Option<String> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => {
            Some(s.clone())
        }
        Some(Value::String(s)) if s.chars().count() > max => {
            causes.push(format!("{key}: The field cannot exceed {max} characters"));
            None
        }
        _ => {
            causes.push(format!("{key}: The field cannot be left blank"));
            None
        }
    }
}

fn url_ok(u: &str) -> bool {
    url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// Validates a request body; resolves a well-known URL by fetching it (as Okta does).
async fn parse_request(
    state: &SandboxState,
    body: &Bytes,
) -> Result<(String, String, ProviderSettings), OktaError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| OktaError::malformed(&e.to_string()))?;
    let obj = value
        .as_object()
        .ok_or_else(|| OktaError::malformed("expected a JSON object"))?;
    let mut causes = Vec::new();
    let name = text(obj, "name", 100, &mut causes);
    let kind = text(obj, "type", 255, &mut causes);
    let settings = obj.get("settings").and_then(Value::as_object);
    let Some(settings) = settings else {
        causes.push("settings: The field cannot be left blank".into());
        return Err(OktaError::validation(causes));
    };
    let resolved = if settings.contains_key("well_known_url") {
        let wk = text(settings, "well_known_url", 1000, &mut causes);
        if settings.contains_key("issuer") || settings.contains_key("jwks_url") {
            causes.push("settings: Provide either well_known_url, or issuer and jwks_url".into());
        }
        match wk {
            Some(u) if !url_ok(&u) => {
                causes.push("settings.well_known_url: The field must be a valid URL".into());
                None
            }
            Some(u) if causes.is_empty() => match fetch_well_known(state, &u).await {
                Ok((issuer, jwks_url)) => Some(ProviderSettings {
                    issuer,
                    jwks_url,
                    well_known_url: Some(u),
                }),
                Err(e) => {
                    causes.push(format!("settings.well_known_url: {e}"));
                    None
                }
            },
            _ => None,
        }
    } else {
        let issuer = text(settings, "issuer", 700, &mut causes);
        let jwks_url = text(settings, "jwks_url", 1000, &mut causes);
        if jwks_url.as_deref().is_some_and(|u| !url_ok(u)) {
            causes.push("settings.jwks_url: The field must be a valid URL".into());
        }
        match (issuer, jwks_url) {
            (Some(issuer), Some(jwks_url)) => Some(ProviderSettings {
                issuer,
                jwks_url,
                well_known_url: None,
            }),
            _ => None,
        }
    };
    match (name, kind, resolved) {
        (Some(n), Some(k), Some(s)) if causes.is_empty() => Ok((n, k, s)),
        _ => Err(OktaError::validation(causes)),
    }
}

async fn fetch_well_known(state: &SandboxState, url: &str) -> Result<(String, String), String> {
    let resp = state
        .http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("Unable to fetch the well-known document: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!(
            "Unable to fetch the well-known document: HTTP {}",
            resp.status().as_u16()
        ));
    }
    let is_json = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err("The well-known document must be served as application/json".into());
    }
    let doc: Value = resp
        .json()
        .await
        .map_err(|e| format!("The well-known document is not JSON: {e}"))?;
    let issuer = doc["issuer"]
        .as_str()
        .ok_or("The well-known document has no issuer")?;
    let jwks = doc["jwks_uri"]
        .as_str()
        .ok_or("The well-known document has no jwks_uri")?;
    Ok((issuer.to_owned(), jwks.to_owned()))
}

fn find(state: &SandboxState, id: &str) -> Result<Provider, OktaError> {
    state
        .providers
        .read()
        .ok()
        .and_then(|p| p.iter().find(|p| p.id == id).cloned())
        .ok_or_else(|| OktaError::not_found(&format!("{id} (SecurityEventsProvider)")))
}

pub(super) async fn list(_auth: Ssws, state: St) -> Json<Value> {
    let items: Vec<Value> = state
        .providers()
        .iter()
        .map(|p| p.to_json(&state.org_url))
        .collect();
    Json(Value::Array(items))
}

pub(super) async fn create(_auth: Ssws, state: St, body: Bytes) -> Result<Json<Value>, OktaError> {
    let (name, kind, settings) = parse_request(&state, &body).await?;
    let provider = Provider {
        id: new_id(),
        name,
        kind,
        status: "ACTIVE".into(),
        settings,
    };
    let json = provider.to_json(&state.org_url);
    if let Ok(mut p) = state.providers.write() {
        p.push(provider);
    }
    // Okta answers 200 (not 201) on create.
    Ok(Json(json))
}

pub(super) async fn get_one(
    _auth: Ssws,
    state: St,
    Path(id): Path<String>,
) -> Result<Json<Value>, OktaError> {
    Ok(Json(find(&state, &id)?.to_json(&state.org_url)))
}

pub(super) async fn replace(
    _auth: Ssws,
    state: St,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, OktaError> {
    find(&state, &id)?;
    let (name, kind, settings) = parse_request(&state, &body).await?;
    let mut guard = state
        .providers
        .write()
        .map_err(|_| OktaError::not_found(&id))?;
    let p = guard
        .iter_mut()
        .find(|p| p.id == id)
        .ok_or_else(|| OktaError::not_found(&format!("{id} (SecurityEventsProvider)")))?;
    p.name = name;
    p.kind = kind;
    p.settings = settings;
    let json = p.to_json(&state.org_url);
    drop(guard);
    if let Ok(mut cache) = state.jwks_cache.lock() {
        cache.clear();
    }
    Ok(Json(json))
}

pub(super) async fn delete(
    _auth: Ssws,
    state: St,
    Path(id): Path<String>,
) -> Result<StatusCode, OktaError> {
    find(&state, &id)?;
    if let Ok(mut p) = state.providers.write() {
        p.retain(|p| p.id != id);
    }
    Ok(StatusCode::NO_CONTENT)
}

fn set_status(state: &SandboxState, id: &str, status: &str) -> Result<Json<Value>, OktaError> {
    let mut guard = state
        .providers
        .write()
        .map_err(|_| OktaError::not_found(id))?;
    let p = guard
        .iter_mut()
        .find(|p| p.id == id)
        .ok_or_else(|| OktaError::not_found(&format!("{id} (SecurityEventsProvider)")))?;
    p.status = status.into();
    Ok(Json(p.to_json(&state.org_url)))
}

pub(super) async fn activate(
    _auth: Ssws,
    state: St,
    Path(id): Path<String>,
) -> Result<Json<Value>, OktaError> {
    set_status(&state, &id, "ACTIVE")
}

pub(super) async fn deactivate(
    _auth: Ssws,
    state: St,
    Path(id): Path<String>,
) -> Result<Json<Value>, OktaError> {
    set_status(&state, &id, "INACTIVE")
}
