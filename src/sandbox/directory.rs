//! The sandbox's directory: users with Okta's status state machine, user look-up by id, login or
//! login short name, list/search with `Link` pagination, and the lifecycle operations, with
//! Okta's paths, status codes and error codes.

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{OktaError, SandboxState, Ssws, St};

/// One user.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// `00u…`.
    pub id: String,
    /// `ACTIVE`, `SUSPENDED`, …
    pub status: String,
    /// Profile attributes (`login`, `email`, `firstName`, `lastName`, …).
    pub profile: Map<String, Value>,
    /// Created (RFC 3339).
    pub created: String,
    /// Last status change.
    pub status_changed: Option<String>,
    /// Last update.
    pub last_updated: String,
    /// SHA-256 of the password, when one is set.
    pub password_digest: Option<[u8; 32]>,
    /// When the password was last set.
    pub password_changed: Option<String>,
}

impl User {
    fn login(&self) -> &str {
        self.profile
            .get("login")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub(super) fn to_json(&self, org_url: &str) -> Value {
        json!({
            "id": self.id,
            "status": self.status,
            "created": self.created,
            "activated": if self.status == "STAGED" { Value::Null } else { json!(self.created) },
            "statusChanged": self.status_changed,
            "lastLogin": Value::Null,
            "lastUpdated": self.last_updated,
            "passwordChanged": self.password_changed,
            "type": {"id": "oty1sandbox0000000000"},
            "profile": self.profile,
            "credentials": if self.password_digest.is_some() {
                json!({"password": {}, "provider": {"type": "OKTA", "name": "OKTA"}})
            } else {
                json!({"provider": {"type": "OKTA", "name": "OKTA"}})
            },
            "_links": {"self": {"href": format!("{org_url}/api/v1/users/{}", self.id)}},
        })
    }
}

/// The seeded demo users (login, first, last, status).
const SEED: &[(&str, &str, &str, &str)] = &[
    ("jane.doe@example.com", "Jane", "Doe", "ACTIVE"),
    ("john.smith@example.com", "John", "Smith", "ACTIVE"),
    ("alex.kim@example.com", "Alex", "Kim", "ACTIVE"),
    ("alex.kim@corp.example.com", "Alex", "Kim", "ACTIVE"),
    ("locked.out@example.com", "Lou", "Locked", "LOCKED_OUT"),
    ("suspended.user@example.com", "Sue", "Spended", "SUSPENDED"),
    ("staged.user@example.com", "Stacy", "Staged", "STAGED"),
    (
        "provisioned.user@example.com",
        "Paul",
        "Provisioned",
        "PROVISIONED",
    ),
    ("recovery.user@example.com", "Rick", "Recovery", "RECOVERY"),
    (
        "expired.user@example.com",
        "Ed",
        "Expired",
        "PASSWORD_EXPIRED",
    ),
    (
        "former.employee@example.com",
        "Fran",
        "Former",
        "DEPROVISIONED",
    ),
];

/// The demo directory.
pub fn seed_users(now: &str) -> Vec<User> {
    SEED.iter()
        .enumerate()
        .map(|(i, (login, first, last, status))| {
            let mut profile = Map::new();
            profile.insert("login".into(), json!(login));
            profile.insert("email".into(), json!(login));
            profile.insert("firstName".into(), json!(first));
            profile.insert("lastName".into(), json!(last));
            profile.insert("displayName".into(), json!(format!("{first} {last}")));
            let sam = login.split('@').next().unwrap_or_default().replace('.', "");
            profile.insert("samAccountName".into(), json!(sam));
            User {
                id: format!("00u{:017}", i + 1),
                status: (*status).to_owned(),
                profile,
                created: now.to_owned(),
                status_changed: Some(now.to_owned()),
                last_updated: now.to_owned(),
                password_digest: None,
                password_changed: None,
            }
        })
        .collect()
}

fn not_found_user(id: &str) -> OktaError {
    OktaError::not_found(&format!("{id} (User)"))
}

/// Finds a user by id, login, or unambiguous login short name (as Okta's `{id}` allows).
fn find_index(users: &[User], key: &str) -> Option<usize> {
    if let Some(i) = users.iter().position(|u| u.id == key) {
        return Some(i);
    }
    if let Some(i) = users
        .iter()
        .position(|u| u.login().eq_ignore_ascii_case(key))
    {
        return Some(i);
    }
    let short: Vec<usize> = users
        .iter()
        .enumerate()
        .filter(|(_, u)| {
            u.login()
                .split('@')
                .next()
                .is_some_and(|s| s.eq_ignore_ascii_case(key))
        })
        .map(|(i, _)| i)
        .collect();
    match short.as_slice() {
        [only] => Some(*only),
        _ => None,
    }
}

pub(super) async fn get_user(
    _auth: Ssws,
    state: St,
    Path(id): Path<String>,
) -> Result<Json<Value>, OktaError> {
    let users = state.users.read().map_err(|_| not_found_user(&id))?;
    let i = find_index(&users, &id).ok_or_else(|| not_found_user(&id))?;
    let user = users.get(i).ok_or_else(|| not_found_user(&id))?;
    Ok(Json(user.to_json(&state.org_url)))
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    q: Option<String>,
    filter: Option<String>,
    search: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

/// One `attr op "value"` term of a filter or search expression.
struct Term {
    attr: String,
    op: String,
    value: String,
}

/// Parses `a eq "x" and b sw "y"` / `… or …` (no parentheses, one kind of connective).
fn parse_expr(expr: &str, allowed_ops: &[&str]) -> Result<(Vec<Term>, bool), OktaError> {
    let invalid = || OktaError {
        status: StatusCode::BAD_REQUEST,
        code: "E0000031",
        summary: "Invalid search criteria.".into(),
        causes: vec![format!("Unsupported expression: {expr}")],
    };
    let is_or = expr.contains(" or ");
    let parts: Vec<&str> = if is_or {
        expr.split(" or ").collect()
    } else {
        expr.split(" and ").collect()
    };
    let mut terms = Vec::new();
    for p in parts {
        let p = p.trim();
        let mut it = p.splitn(3, ' ');
        let (Some(attr), Some(op), Some(value)) = (it.next(), it.next(), it.next()) else {
            return Err(invalid());
        };
        if !allowed_ops.contains(&op) {
            return Err(invalid());
        }
        let value = value
            .trim()
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(invalid)?;
        terms.push(Term {
            attr: attr.to_owned(),
            op: op.to_owned(),
            value: value.to_owned(),
        });
    }
    Ok((terms, is_or))
}

fn attr_of<'a>(u: &'a User, attr: &str) -> Option<&'a str> {
    match attr {
        "id" => Some(&u.id),
        "status" => Some(&u.status),
        a => a
            .strip_prefix("profile.")
            .and_then(|p| u.profile.get(p))
            .and_then(Value::as_str),
    }
}

fn matches(u: &User, terms: &[Term], is_or: bool) -> bool {
    let one = |t: &Term| {
        attr_of(u, &t.attr).is_some_and(|v| match t.op.as_str() {
            "eq" => v.eq_ignore_ascii_case(&t.value),
            "sw" => v.to_lowercase().starts_with(&t.value.to_lowercase()),
            "co" => v.to_lowercase().contains(&t.value.to_lowercase()),
            _ => false,
        })
    };
    if is_or {
        terms.iter().any(one)
    } else {
        terms.iter().all(one)
    }
}

pub(super) async fn list_users(
    _auth: Ssws,
    state: St,
    Query(q): Query<ListQuery>,
) -> Result<Response, OktaError> {
    if q.search.is_some() && q.filter.is_some() {
        return Err(OktaError {
            status: StatusCode::BAD_REQUEST,
            code: "E0000033",
            summary: "Bad request. Can't specify a search query and filter in the same request."
                .into(),
            causes: Vec::new(),
        });
    }
    let users = state.users.read().map(|u| u.clone()).unwrap_or_default();
    let mut selected: Vec<&User> = match (&q.q, &q.filter, &q.search) {
        (Some(text), _, _) => {
            let t = text.to_lowercase();
            users
                .iter()
                .filter(|u| u.status != "DEPROVISIONED")
                .filter(|u| {
                    ["firstName", "lastName", "email"].iter().any(|k| {
                        u.profile
                            .get(*k)
                            .and_then(Value::as_str)
                            .is_some_and(|v| v.to_lowercase().starts_with(&t))
                    })
                })
                .collect()
        }
        (None, Some(f), _) => {
            let (terms, is_or) = parse_expr(f, &["eq"])?;
            users.iter().filter(|u| matches(u, &terms, is_or)).collect()
        }
        (None, None, Some(s)) => {
            let (terms, is_or) = parse_expr(s, &["eq", "sw", "co"])?;
            users.iter().filter(|u| matches(u, &terms, is_or)).collect()
        }
        (None, None, None) => users
            .iter()
            .filter(|u| u.status != "DEPROVISIONED")
            .collect(),
    };
    let default_limit = if q.q.is_some() { 10 } else { 200 };
    let limit = q.limit.unwrap_or(default_limit).clamp(1, 200);
    if let Some(after) = &q.after {
        let pos = selected
            .iter()
            .position(|u| &u.id == after)
            .map_or(selected.len(), |p| p + 1);
        selected = selected.split_off(pos.min(selected.len()));
    }
    let more = selected.len() > limit;
    selected.truncate(limit);
    let body: Vec<Value> = selected.iter().map(|u| u.to_json(&state.org_url)).collect();
    let mut resp = Json(Value::Array(body)).into_response();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [("q", &q.q), ("filter", &q.filter), ("search", &q.search)] {
        if let Some(v) = v {
            query.append_pair(k, v);
        }
    }
    query.append_pair("limit", &limit.to_string());
    let base = format!("{}/api/v1/users?{}", state.org_url, query.finish());
    // Okta sends rel="self" first, then rel="next" (some SDKs keep only the last Link header).
    let self_link = match &q.after {
        Some(a) => format!("<{base}&after={a}>; rel=\"self\""),
        None => format!("<{base}>; rel=\"self\""),
    };
    push_link(resp.headers_mut(), &self_link);
    if more && let Some(last) = selected.last() {
        push_link(
            resp.headers_mut(),
            &format!("<{base}&after={}>; rel=\"next\"", last.id),
        );
    }
    Ok(resp)
}

pub(super) fn push_link(headers: &mut HeaderMap, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.append("link", v);
    }
}

/// A lifecycle operation.
#[derive(Debug, Clone, Copy)]
enum Op {
    Activate,
    Reactivate,
    Deactivate,
    Suspend,
    Unsuspend,
    Unlock,
}

fn not_allowed(code: &'static str, summary: &str) -> OktaError {
    OktaError {
        status: StatusCode::FORBIDDEN,
        code,
        summary: summary.to_owned(),
        causes: Vec::new(),
    }
}

fn invalid(summary: &str) -> OktaError {
    OktaError {
        status: StatusCode::BAD_REQUEST,
        code: "E0000001",
        summary: format!("Api validation failed: {summary}"),
        causes: vec![summary.to_owned()],
    }
}

/// Okta's user status state machine: the next status, or Okta's error.
fn transition(op: Op, status: &str) -> Result<&'static str, OktaError> {
    match (op, status) {
        (Op::Suspend, "ACTIVE") => Ok("SUSPENDED"),
        (Op::Suspend, _) => Err(invalid("Cannot suspend a user that is not active")),
        (Op::Unsuspend, "SUSPENDED") => Ok("ACTIVE"),
        (Op::Unsuspend, _) => Err(invalid("Cannot unsuspend a user that is not suspended")),
        (Op::Activate, "STAGED" | "DEPROVISIONED") => Ok("PROVISIONED"),
        (Op::Activate, "ACTIVE") => Err(not_allowed(
            "E0000016",
            "Activation failed because the user is already active",
        )),
        (Op::Activate, _) => Err(not_allowed(
            "E0000038",
            "This operation is not allowed in the user's current status.",
        )),
        (Op::Reactivate, "PROVISIONED" | "RECOVERY") => Ok("PROVISIONED"),
        (Op::Reactivate, _) => Err(not_allowed(
            "E0000038",
            "This operation is not allowed in the user's current status.",
        )),
        (Op::Deactivate, "DEPROVISIONED") => Err(not_allowed(
            "E0000038",
            "This operation is not allowed in the user's current status.",
        )),
        (Op::Deactivate, _) => Ok("DEPROVISIONED"),
        (Op::Unlock, "LOCKED_OUT") => Ok("ACTIVE"),
        (Op::Unlock, _) => Err(not_allowed(
            "E0000032",
            "Unlock is not allowed for this user.",
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LifecycleQuery {
    send_email: Option<bool>,
}

async fn lifecycle(
    state: &SandboxState,
    id: &str,
    op: Op,
    send_email: Option<bool>,
) -> Result<Response, OktaError> {
    let now = state
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut users = state.users.write().map_err(|_| not_found_user(id))?;
    let i = find_index(&users, id).ok_or_else(|| not_found_user(id))?;
    let user = users.get_mut(i).ok_or_else(|| not_found_user(id))?;
    let next = transition(op, &user.status)?;
    user.status = next.to_owned();
    user.status_changed = Some(now.clone());
    user.last_updated = now;
    let user_id = user.id.clone();
    drop(users);
    let token = || uuid::Uuid::new_v4().simple().to_string();
    let resp = match op {
        // Activation answers a token and link unless Okta emails them (sendEmail default true).
        Op::Activate if !send_email.unwrap_or(true) => {
            let t = token();
            Json(json!({"activationToken": t, "activationUrl": format!("{}/tokens/{t}/verify", state.org_url)})).into_response()
        }
        Op::Reactivate if !send_email.unwrap_or(false) => {
            let t = token();
            Json(json!({"activationToken": t, "activationUrl": format!("{}/tokens/{t}/verify", state.org_url)})).into_response()
        }
        Op::Activate | Op::Reactivate => Json(json!({})).into_response(),
        _ => StatusCode::OK.into_response(),
    };
    tracing::debug!(user = %user_id, status = %next, "sandbox lifecycle");
    Ok(resp)
}

macro_rules! lifecycle_route {
    ($name:ident, $op:expr) => {
        pub(super) async fn $name(
            _auth: Ssws,
            state: St,
            Path(id): Path<String>,
            Query(q): Query<LifecycleQuery>,
        ) -> Result<Response, OktaError> {
            lifecycle(&state, &id, $op, q.send_email).await
        }
    };
}

lifecycle_route!(activate, Op::Activate);
lifecycle_route!(reactivate, Op::Reactivate);
lifecycle_route!(deactivate, Op::Deactivate);
lifecycle_route!(suspend, Op::Suspend);
lifecycle_route!(unsuspend, Op::Unsuspend);
lifecycle_route!(unlock, Op::Unlock);

fn user_op<T>(
    state: &SandboxState,
    id: &str,
    f: impl FnOnce(&mut User) -> Result<T, OktaError>,
) -> Result<T, OktaError> {
    let now = state
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut users = state.users.write().map_err(|_| not_found_user(id))?;
    let i = find_index(&users, id).ok_or_else(|| not_found_user(id))?;
    let user = users.get_mut(i).ok_or_else(|| not_found_user(id))?;
    let out = f(user)?;
    user.last_updated = now;
    Ok(out)
}

fn set_status(user: &mut User, status: &str, now: &str) {
    user.status = status.to_owned();
    user.status_changed = Some(now.to_owned());
}

fn password_allowed(user: &User) -> Result<(), OktaError> {
    match user.status.as_str() {
        "ACTIVE" | "PASSWORD_EXPIRED" | "RECOVERY" | "LOCKED_OUT" => Ok(()),
        _ => Err(not_allowed(
            "E0000038",
            "This operation is not allowed in the user's current status.",
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SessionsQuery {
    oauth_tokens: Option<bool>,
    forget_devices: Option<bool>,
}

/// `DELETE /api/v1/users/{id}/sessions` → 204.
pub(super) async fn clear_sessions(
    _auth: Ssws,
    state: St,
    Path(id): Path<String>,
    Query(q): Query<SessionsQuery>,
) -> Result<StatusCode, OktaError> {
    user_op(&state, &id, |_| Ok(()))?;
    tracing::debug!(user = %id, oauth_tokens = q.oauth_tokens, forget_devices = q.forget_devices, "sandbox sessions cleared");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/lifecycle/expire_password` → 200 with the user (PASSWORD_EXPIRED).
pub(super) async fn expire_password(
    _auth: Ssws,
    state: St,
    Path(id): Path<String>,
) -> Result<Json<Value>, OktaError> {
    let now = state
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let org = state.org_url.clone();
    user_op(&state, &id, |u| {
        password_allowed(u)?;
        set_status(u, "PASSWORD_EXPIRED", &now);
        Ok(Json(u.to_json(&org)))
    })
}

/// `POST …/lifecycle/expire_password_with_temp_password` → 200 `{"tempPassword": …}`.
pub(super) async fn expire_password_temp(
    _auth: Ssws,
    state: St,
    Path(id): Path<String>,
) -> Result<Json<Value>, OktaError> {
    let now = state
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    user_op(&state, &id, |u| {
        password_allowed(u)?;
        set_status(u, "PASSWORD_EXPIRED", &now);
        let temp: String = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .chars()
            .take(10)
            .collect();
        Ok(Json(json!({"tempPassword": temp})))
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ResetQuery {
    send_email: Option<bool>,
}

/// `POST …/lifecycle/reset_password?sendEmail=` → 200 (`resetPasswordUrl` when not emailed).
pub(super) async fn reset_password(
    _auth: Ssws,
    state: St,
    Path(id): Path<String>,
    Query(q): Query<ResetQuery>,
) -> Result<Json<Value>, OktaError> {
    let Some(send_email) = q.send_email else {
        return Err(OktaError {
            status: StatusCode::BAD_REQUEST,
            code: "E0000028",
            summary: "The request is missing a required parameter.".into(),
            causes: vec!["sendEmail".into()],
        });
    };
    let now = state
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let org = state.org_url.clone();
    user_op(&state, &id, |u| {
        password_allowed(u)?;
        set_status(u, "RECOVERY", &now);
        if send_email {
            Ok(Json(json!({})))
        } else {
            let t = uuid::Uuid::new_v4().simple().to_string();
            Ok(Json(
                json!({"resetPasswordUrl": format!("{org}/reset_password/{t}")}),
            ))
        }
    })
}

/// `POST …/lifecycle/reset_factors` → 200, empty.
pub(super) async fn reset_factors(
    _auth: Ssws,
    state: St,
    Path(id): Path<String>,
) -> Result<StatusCode, OktaError> {
    user_op(&state, &id, |_| Ok(()))?;
    Ok(StatusCode::OK)
}

/// The sandbox's password policy, Okta's default: at least 8 characters, a lowercase letter, an
/// uppercase letter, a number, and no part of the username.
fn password_meets_policy(user: &User, password: &str) -> bool {
    let username = user.login().split('@').next().unwrap_or_default();
    password.chars().count() >= 8
        && password.chars().any(|c| c.is_ascii_lowercase())
        && password.chars().any(|c| c.is_ascii_uppercase())
        && password.chars().any(|c| c.is_ascii_digit())
        && !username
            .split(['.', '_', '-'])
            .filter(|p| p.len() >= 3)
            .any(|p| password.to_lowercase().contains(&p.to_lowercase()))
}

/// `POST /api/v1/users/{id}`: partial update; `profile` attributes are merged, and
/// `credentials.password.value` sets the password (admin set, checked against the policy).
pub(super) async fn update_user(
    _auth: Ssws,
    state: St,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, OktaError> {
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| OktaError::malformed(&e.to_string()))?;
    let profile = v.get("profile").and_then(Value::as_object).cloned();
    let password = match v.pointer("/credentials/password") {
        None => None,
        Some(p) => match p.get("value").and_then(Value::as_str) {
            Some(value) => Some(value.to_owned()),
            None => {
                return Err(OktaError::validation(vec![
                    "password: The field cannot be left blank".into(),
                ]));
            }
        },
    };
    if profile.is_none() && password.is_none() {
        return Err(OktaError::validation(vec![
            "profile: The field cannot be left blank".into(),
        ]));
    }
    if profile
        .as_ref()
        .and_then(|p| p.get("login"))
        .is_some_and(|l| !l.is_string())
    {
        return Err(OktaError::validation(vec![
            "login: must be a string".into(),
        ]));
    }
    let org = state.org_url.clone();
    let now = state
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    user_op(&state, &id, |u| {
        if let Some(pw) = &password {
            if !password_meets_policy(u, pw) {
                return Err(OktaError::validation(vec![
                    "password: Password requirements were not met. Password requirements: at least 8 characters, a lowercase letter, an uppercase letter, a number, no parts of your username.".into(),
                ]));
            }
            u.password_digest = Some(crate::auth::token_digest(pw));
            u.password_changed = Some(now.clone());
        }
        for (k, val) in profile.unwrap_or_default() {
            u.profile.insert(k, val);
        }
        Ok(Json(u.to_json(&org)))
    })
}

/// `POST /api/v1/authn` (Okta's classic primary authentication): proves a password works.
pub(super) async fn authn(state: St, body: axum::body::Bytes) -> Result<Json<Value>, OktaError> {
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| OktaError::malformed(&e.to_string()))?;
    let (Some(username), Some(password)) = (v["username"].as_str(), v["password"].as_str()) else {
        return Err(OktaError::validation(vec![
            "username and password: The field cannot be left blank".into(),
        ]));
    };
    let failed = || OktaError {
        status: StatusCode::UNAUTHORIZED,
        code: "E0000004",
        summary: "Authentication failed".into(),
        causes: Vec::new(),
    };
    let users = state.users.read().map_err(|_| failed())?;
    let user = users
        .iter()
        .find(|u| u.login().eq_ignore_ascii_case(username))
        .ok_or_else(failed)?;
    if user.password_digest != Some(crate::auth::token_digest(password)) {
        return Err(failed());
    }
    let status = match user.status.as_str() {
        "ACTIVE" => "SUCCESS",
        "PASSWORD_EXPIRED" => "PASSWORD_EXPIRED",
        "LOCKED_OUT" => "LOCKED_OUT",
        _ => return Err(failed()),
    };
    let mut out = json!({
        "status": status,
        "expiresAt": (state.clock.now() + chrono::Duration::minutes(5))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "_embedded": {"user": {"id": user.id, "profile": {
            "login": user.login(),
            "firstName": user.profile.get("firstName"),
            "lastName": user.profile.get("lastName"),
        }}},
    });
    if status == "SUCCESS" {
        out["sessionToken"] = json!(uuid::Uuid::new_v4().simple().to_string());
    }
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine_follows_okta() {
        assert_eq!(transition(Op::Suspend, "ACTIVE").ok(), Some("SUSPENDED"));
        assert_eq!(
            transition(Op::Suspend, "SUSPENDED").err().map(|e| e.code),
            Some("E0000001")
        );
        assert_eq!(transition(Op::Unsuspend, "SUSPENDED").ok(), Some("ACTIVE"));
        assert_eq!(
            transition(Op::Activate, "ACTIVE").err().map(|e| e.code),
            Some("E0000016")
        );
        assert_eq!(
            transition(Op::Reactivate, "ACTIVE").err().map(|e| e.code),
            Some("E0000038")
        );
        assert_eq!(
            transition(Op::Unlock, "ACTIVE").err().map(|e| e.code),
            Some("E0000032")
        );
        assert_eq!(transition(Op::Unlock, "LOCKED_OUT").ok(), Some("ACTIVE"));
        assert_eq!(
            transition(Op::Deactivate, "SUSPENDED").ok(),
            Some("DEPROVISIONED")
        );
    }

    #[test]
    fn short_names_must_be_unambiguous() {
        let users = seed_users("2026-01-01T00:00:00.000Z");
        assert!(find_index(&users, "jane.doe").is_some());
        assert!(find_index(&users, "JANE.DOE@example.com").is_some());
        assert!(
            find_index(&users, "alex.kim").is_none(),
            "two users share the short name"
        );
        assert!(find_index(&users, "00u00000000000000001").is_some());
    }
}
