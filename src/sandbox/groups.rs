//! Sandbox groups: look-up, list (`q`, `search`), membership, a group's users (`Link` pages, as
//! Okta serves them), and a user's groups.

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{OktaError, SandboxState, Ssws, St};

/// A group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `00g…`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `OKTA_GROUP`, `APP_GROUP`, `BUILT_IN`.
    pub kind: String,
    /// Member user ids.
    pub members: Vec<String>,
}

impl Group {
    fn to_json(&self, org_url: &str) -> Value {
        json!({
            "id": self.id,
            "type": self.kind,
            "profile": {"name": self.name, "description": self.description},
            "objectClass": ["okta:user_group"],
            "_links": {"self": {"href": format!("{org_url}/api/v1/groups/{}", self.id)}},
        })
    }
}

/// The demo groups; every seeded user is in Everyone, the two active engineers in Engineering.
pub fn seed_groups() -> Vec<Group> {
    let g = |i: u32, name: &str, desc: &str, kind: &str, members: &[u32]| Group {
        id: format!("00g{i:017}"),
        name: name.into(),
        description: desc.into(),
        kind: kind.into(),
        members: members.iter().map(|m| format!("00u{m:017}")).collect(),
    };
    vec![
        g(
            1,
            "Everyone",
            "All users in the org",
            "BUILT_IN",
            &(1..=11).collect::<Vec<_>>(),
        ),
        g(2, "Engineering", "Engineers", "OKTA_GROUP", &[1, 2]),
        g(
            3,
            "Restricted Users",
            "Quarantine: least privilege for risky users",
            "OKTA_GROUP",
            &[],
        ),
        g(
            4,
            "AD Domain Users",
            "Mastered by Active Directory",
            "APP_GROUP",
            &[1],
        ),
    ]
}

fn not_found(id: &str) -> OktaError {
    OktaError::not_found(&format!("{id} (UserGroup)"))
}

pub(super) async fn get_group(
    _auth: Ssws,
    state: St,
    Path(id): Path<String>,
) -> Result<Json<Value>, OktaError> {
    let groups = state.groups.read().map_err(|_| not_found(&id))?;
    let g = groups
        .iter()
        .find(|g| g.id == id)
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(g.to_json(&state.org_url)))
}

#[derive(Debug, Deserialize)]
pub(super) struct GroupQuery {
    q: Option<String>,
    search: Option<String>,
    limit: Option<usize>,
}

pub(super) async fn list_groups(
    _auth: Ssws,
    state: St,
    Query(q): Query<GroupQuery>,
) -> Json<Value> {
    let groups = state.groups.read().map(|g| g.clone()).unwrap_or_default();
    let limit = q.limit.unwrap_or(200).clamp(1, 10_000);
    let items: Vec<Value> = groups
        .iter()
        .filter(|g| {
            q.q.as_deref()
                .is_none_or(|t| g.name.to_lowercase().starts_with(&t.to_lowercase()))
        })
        .filter(|g| match q.search.as_deref() {
            // The sandbox understands `profile.name eq "…"` (what the product sends).
            Some(s) => s
                .strip_prefix("profile.name eq \"")
                .and_then(|r| r.strip_suffix('"'))
                .is_some_and(|n| g.name == n),
            None => true,
        })
        .take(limit)
        .map(|g| g.to_json(&state.org_url))
        .collect();
    Json(Value::Array(items))
}

fn user_exists(state: &SandboxState, id: &str) -> bool {
    state
        .users
        .read()
        .is_ok_and(|u| u.iter().any(|u| u.id == id))
}

async fn membership(
    state: &SandboxState,
    gid: &str,
    uid: &str,
    add: bool,
) -> Result<StatusCode, OktaError> {
    if !user_exists(state, uid) {
        return Err(OktaError::not_found(&format!("{uid} (User)")));
    }
    let mut groups = state.groups.write().map_err(|_| not_found(gid))?;
    let g = groups
        .iter_mut()
        .find(|g| g.id == gid)
        .ok_or_else(|| not_found(gid))?;
    if g.kind != "OKTA_GROUP" {
        return Err(OktaError {
            status: StatusCode::FORBIDDEN,
            code: "E0000006",
            summary: "You do not have permission to perform the requested action".into(),
            causes: vec![format!(
                "membership of {} groups is managed by their source",
                g.kind
            )],
        });
    }
    if add {
        if !g.members.iter().any(|m| m == uid) {
            g.members.push(uid.to_owned());
        }
    } else {
        g.members.retain(|m| m != uid);
    }
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn add_member(
    _auth: Ssws,
    state: St,
    Path((gid, uid)): Path<(String, String)>,
) -> Result<StatusCode, OktaError> {
    membership(&state, &gid, &uid, true).await
}

pub(super) async fn remove_member(
    _auth: Ssws,
    state: St,
    Path((gid, uid)): Path<(String, String)>,
) -> Result<StatusCode, OktaError> {
    membership(&state, &gid, &uid, false).await
}

pub(super) async fn user_groups(
    _auth: Ssws,
    state: St,
    Path(uid): Path<String>,
) -> Result<Json<Value>, OktaError> {
    if !user_exists(&state, &uid) {
        return Err(OktaError::not_found(&format!("{uid} (User)")));
    }
    let groups = state.groups.read().map(|g| g.clone()).unwrap_or_default();
    Ok(Json(Value::Array(
        groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == &uid))
            .map(|g| g.to_json(&state.org_url))
            .collect(),
    )))
}

#[derive(Debug, Deserialize)]
pub(super) struct MemberQuery {
    after: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/groups/{groupId}/users`: the members, ordered by user id, in pages of `limit`
/// (Okta's default 1000) with `Link: rel="self"` then `rel="next"` (`after` = the last id).
pub(super) async fn list_group_users(
    _auth: Ssws,
    state: St,
    Path(gid): Path<String>,
    Query(q): Query<MemberQuery>,
) -> Result<Response, OktaError> {
    let mut members = {
        let groups = state.groups.read().map_err(|_| not_found(&gid))?;
        groups
            .iter()
            .find(|g| g.id == gid)
            .ok_or_else(|| not_found(&gid))?
            .members
            .clone()
    };
    members.sort();
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    if let Some(after) = &q.after {
        members.retain(|m| m.as_str() > after.as_str());
    }
    let more = members.len() > limit;
    members.truncate(limit);
    let body: Vec<Value> = {
        let users = state.users.read().map_err(|_| not_found(&gid))?;
        members
            .iter()
            .filter_map(|m| users.iter().find(|u| &u.id == m))
            .map(|u| u.to_json(&state.org_url))
            .collect()
    };
    let mut resp = Json(Value::Array(body)).into_response();
    let base = format!("{}/api/v1/groups/{gid}/users?limit={limit}", state.org_url);
    let self_link = match &q.after {
        Some(a) => {
            let a: String = url::form_urlencoded::byte_serialize(a.as_bytes()).collect();
            format!("<{base}&after={a}>; rel=\"self\"")
        }
        None => format!("<{base}>; rel=\"self\""),
    };
    super::directory::push_link(resp.headers_mut(), &self_link);
    if more && let Some(last) = members.last() {
        super::directory::push_link(
            resp.headers_mut(),
            &format!("<{base}&after={last}>; rel=\"next\""),
        );
    }
    Ok(resp)
}
