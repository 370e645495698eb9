//! Sandbox identity providers: `GET /api/v1/idps` (`q`, `type`, `limit`, `after`, `Link` pages)
//! and `GET /api/v1/idps/{idpId}`.

use axum::Json;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{OktaError, Ssws, St};

/// An identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Idp {
    /// `0oa…`.
    pub id: String,
    /// Name.
    pub name: String,
    /// `SAML2`, `OIDC`, `GOOGLE`, `MICROSOFT`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `ACTIVE` or `INACTIVE`.
    #[serde(default = "active")]
    pub status: String,
}

fn active() -> String {
    "ACTIVE".into()
}

impl Idp {
    fn to_json(&self, org_url: &str, now: &str) -> Value {
        let protocol = match self.kind.as_str() {
            "SAML2" => "SAML2",
            "MTLS" => "MTLS",
            "X509" => "MTLS",
            _ => "OIDC",
        };
        json!({
            "id": self.id,
            "type": self.kind,
            "issuerMode": "DYNAMIC",
            "name": self.name,
            "status": self.status,
            "created": now,
            "lastUpdated": now,
            "protocol": {"type": protocol},
            "policy": {
                "provisioning": {"action": "AUTO", "profileMaster": false},
                "subject": {"matchType": "USERNAME", "userNameTemplate": {"template": "idpuser.email"}},
                "maxClockSkew": 120000,
            },
            "_links": {"self": {"href": format!("{org_url}/api/v1/idps/{}", self.id)}},
        })
    }
}

/// The demo identity providers.
pub fn seed_idps() -> Vec<Idp> {
    [
        ("Corp ADFS", "SAML2", "ACTIVE"),
        ("Partner OIDC", "OIDC", "ACTIVE"),
        ("Google Workspace", "GOOGLE", "ACTIVE"),
        ("Microsoft Entra ID", "MICROSOFT", "ACTIVE"),
        ("Legacy SAML (retired)", "SAML2", "INACTIVE"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (name, kind, status))| Idp {
        id: format!("0oa{:017}", 900 + i),
        name: (*name).into(),
        kind: (*kind).into(),
        status: (*status).into(),
    })
    .collect()
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    q: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

/// `GET /api/v1/idps`: `q` matches the start of the name (case-insensitive), `type` the type;
/// `limit` 1–200, default 20.
pub(super) async fn list(
    _auth: Ssws,
    state: St,
    Query(q): Query<ListQuery>,
) -> Result<Response, OktaError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return Err(OktaError::validation(vec![
            "limit: must be between 1 and 200".into(),
        ]));
    }
    let idps = state.idps.read().map(|i| i.clone()).unwrap_or_default();
    let needle = q.q.as_deref().map(str::to_lowercase);
    let mut selected: Vec<&Idp> = idps
        .iter()
        .filter(|i| {
            needle
                .as_deref()
                .is_none_or(|n| i.name.to_lowercase().starts_with(n))
        })
        .filter(|i| q.kind.as_deref().is_none_or(|k| i.kind == k))
        .collect();
    if let Some(after) = &q.after {
        let pos = selected
            .iter()
            .position(|i| &i.id == after)
            .map_or(selected.len(), |p| p + 1);
        selected = selected.split_off(pos.min(selected.len()));
    }
    let more = selected.len() > limit;
    selected.truncate(limit);
    let now = state
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let body: Vec<Value> = selected
        .iter()
        .map(|i| i.to_json(&state.org_url, &now))
        .collect();
    let mut resp = Json(Value::Array(body)).into_response();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [("q", &q.q), ("type", &q.kind)] {
        if let Some(v) = v {
            query.append_pair(k, v);
        }
    }
    query.append_pair("limit", &limit.to_string());
    let base = format!("{}/api/v1/idps?{}", state.org_url, query.finish());
    super::directory::push_link(resp.headers_mut(), &format!("<{base}>; rel=\"self\""));
    if more && let Some(last) = selected.last() {
        super::directory::push_link(
            resp.headers_mut(),
            &format!("<{base}&after={}>; rel=\"next\"", last.id),
        );
    }
    Ok(resp)
}

/// `GET /api/v1/idps/{idpId}`.
pub(super) async fn get_one(
    _auth: Ssws,
    state: St,
    Path(id): Path<String>,
) -> Result<Json<Value>, OktaError> {
    let now = state
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    state
        .idps
        .read()
        .ok()
        .and_then(|i| i.iter().find(|i| i.id == id).cloned())
        .map(|i| Json(i.to_json(&state.org_url, &now)))
        .ok_or_else(|| OktaError::not_found(&format!("{id} (IdentityProvider)")))
}
