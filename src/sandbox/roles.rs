//! Sandbox admin role assignments for users (`/api/v1/users/{userId}/roles`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{OktaError, SandboxState, Ssws, St};

/// Standard role types Okta accepts.
pub const ROLE_TYPES: &[&str] = &[
    "ACCESS_CERTIFICATIONS_ADMIN",
    "ACCESS_REQUESTS_ADMIN",
    "API_ACCESS_MANAGEMENT_ADMIN",
    "APP_ADMIN",
    "GROUP_MEMBERSHIP_ADMIN",
    "HELP_DESK_ADMIN",
    "ORG_ADMIN",
    "READ_ONLY_ADMIN",
    "REPORT_ADMIN",
    "SUPER_ADMIN",
    "USER_ADMIN",
    "WORKFLOWS_ADMIN",
];

/// One assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// `ra…`.
    pub id: String,
    /// The user.
    pub user_id: String,
    /// Role type.
    pub kind: String,
    /// Created.
    pub created: String,
}

impl Assignment {
    fn to_json(&self, org_url: &str) -> Value {
        let label = self
            .kind
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_string() + &c.as_str().to_lowercase())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" ");
        json!({
            "id": self.id,
            "label": label,
            "type": self.kind,
            "status": "ACTIVE",
            "created": self.created,
            "lastUpdated": self.created,
            "assignmentType": "USER",
            "_links": {"assignee": {"href": format!("{org_url}/api/v1/users/{}", self.user_id)}},
        })
    }
}

/// John Smith is a help desk admin.
pub fn seed_roles(now: &str) -> Vec<Assignment> {
    vec![Assignment {
        id: "ra1000000000000000001".chars().take(20).collect(),
        user_id: format!("00u{:017}", 2),
        kind: "HELP_DESK_ADMIN".into(),
        created: now.into(),
    }]
}

fn user_exists(state: &SandboxState, id: &str) -> bool {
    state
        .users
        .read()
        .is_ok_and(|u| u.iter().any(|u| u.id == id))
}

pub(super) async fn list(
    _auth: Ssws,
    state: St,
    Path(uid): Path<String>,
) -> Result<Json<Value>, OktaError> {
    if !user_exists(&state, &uid) {
        return Err(OktaError::not_found(&format!("{uid} (User)")));
    }
    let roles = state.roles.read().map(|r| r.clone()).unwrap_or_default();
    Ok(Json(Value::Array(
        roles
            .iter()
            .filter(|r| r.user_id == uid)
            .map(|r| r.to_json(&state.org_url))
            .collect(),
    )))
}

pub(super) async fn assign(
    _auth: Ssws,
    state: St,
    Path(uid): Path<String>,
    body: Bytes,
) -> Result<Response, OktaError> {
    if !user_exists(&state, &uid) {
        return Err(OktaError::not_found(&format!("{uid} (User)")));
    }
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| OktaError::malformed(&e.to_string()))?;
    let kind = v["type"].as_str().unwrap_or_default().to_owned();
    if !ROLE_TYPES.contains(&kind.as_str()) {
        return Err(OktaError::validation(vec![format!(
            "type: '{kind}' is not a valid role type"
        )]));
    }
    let mut roles = state
        .roles
        .write()
        .map_err(|_| OktaError::not_found(&uid))?;
    if roles.iter().any(|r| r.user_id == uid && r.kind == kind) {
        return Err(OktaError {
            status: StatusCode::CONFLICT,
            code: "E0000090",
            summary: "The role specified is already assigned to the user.".into(),
            causes: Vec::new(),
        });
    }
    let a = Assignment {
        id: format!("ra{}", &uuid::Uuid::new_v4().simple().to_string()[..18]),
        user_id: uid,
        kind,
        created: state
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    let json = a.to_json(&state.org_url);
    roles.push(a);
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

pub(super) async fn unassign(
    _auth: Ssws,
    state: St,
    Path((uid, ra)): Path<(String, String)>,
) -> Result<StatusCode, OktaError> {
    let mut roles = state.roles.write().map_err(|_| OktaError::not_found(&ra))?;
    let before = roles.len();
    roles.retain(|r| !(r.user_id == uid && r.id == ra));
    if roles.len() == before {
        return Err(OktaError::not_found(&format!("{ra} (RoleAssignment)")));
    }
    Ok(StatusCode::NO_CONTENT)
}
