//! An Okta-style System Log (`GET /api/v1/logs`) holding `security.events.provider.receive_event`
//! entries for accepted SETs and `app.oauth2.as.token.grant.access_token` entries for token
//! requests.
//!
//! Like Okta, the receiver accepts (202) a SET whose user is not in the org and does nothing
//! with it. Okta says nothing; the sandbox's log entry says so (`outcome.result` `SKIPPED`, with
//! the reason), so a trial with a made-up user shows the problem instead of a `SUCCESS`.

use axum::Json;
use axum::extract::Query;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::receiver::ReceivedSet;
use super::{OktaError, SandboxState, Ssws, St};

/// One log event (the subset of Okta's LogEvent the sandbox fills).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LogEvent {
    uuid: String,
    published: String,
    event_type: String,
    version: String,
    severity: String,
    display_message: String,
    actor: Value,
    outcome: Value,
    target: Vec<Value>,
    debug_context: Value,
}

impl LogEvent {
    /// An event with no targets and empty debug data.
    pub(super) fn new(
        published: String,
        event_type: &str,
        severity: &str,
        display_message: &str,
        actor: Value,
        outcome: Value,
    ) -> Self {
        Self {
            uuid: uuid::Uuid::new_v4().to_string(),
            published,
            event_type: event_type.to_owned(),
            version: "0".into(),
            severity: severity.to_owned(),
            display_message: display_message.to_owned(),
            actor,
            outcome,
            target: Vec::new(),
            debug_context: json!({"debugData": {}}),
        }
    }

    /// Replaces the targets.
    pub(super) fn with_target(mut self, target: Vec<Value>) -> Self {
        self.target = target;
        self
    }

    /// Replaces `debugContext.debugData`.
    pub(super) fn with_debug_data(mut self, data: Value) -> Self {
        self.debug_context = json!({ "debugData": data });
        self
    }
}

/// Appends `entry`, keeping at most the newest 10,000 events.
pub(super) fn append(state: &SandboxState, entry: LogEvent) {
    if let Ok(mut logs) = state.logs.lock() {
        if logs.len() >= 10_000 {
            logs.remove(0);
        }
        logs.push(entry);
    }
}

/// The directory user a SET's subject user names: by email (`email`, `account` `acct:`), by id or
/// login (`opaque`). `None` for formats the sandbox cannot match.
fn matching_user(state: &SandboxState, subject_user: &Value) -> Option<(String, String)> {
    let format = subject_user.get("format").and_then(Value::as_str)?;
    let wanted = match format {
        "email" => subject_user.get("email").and_then(Value::as_str)?,
        "account" => subject_user
            .get("uri")
            .and_then(Value::as_str)?
            .strip_prefix("acct:")?,
        "opaque" => subject_user.get("id").and_then(Value::as_str)?,
        _ => return None,
    };
    let users = state.users.read().ok()?;
    users
        .iter()
        .find(|u| {
            u.id == wanted
                || ["login", "email"].iter().any(|k| {
                    u.profile
                        .get(*k)
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.eq_ignore_ascii_case(wanted))
                })
        })
        .map(|u| {
            let login = u
                .profile
                .get("login")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (u.id.clone(), login)
        })
}

pub(super) fn record(state: &SandboxState, set: &ReceivedSet) {
    let provider = state
        .providers()
        .into_iter()
        .find(|p| p.id == set.provider_id);
    let events = set.claims.get("events").cloned().unwrap_or(Value::Null);
    let users: Vec<&Value> = events
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|e| e.pointer("/subject/user"))
        .collect();
    let mut unmatched = Vec::new();
    let mut matched = Vec::new();
    let target: Vec<Value> = users
        .iter()
        .map(|user| {
            let shown = user
                .get("email")
                .or_else(|| user.get("uri"))
                .or_else(|| user.get("id"))
                .or_else(|| user.get("sub"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            match matching_user(state, user) {
                Some((id, login)) => {
                    matched.push(id.clone());
                    json!({"id": id, "type": "User", "alternateId": login, "displayName": shown})
                }
                None => {
                    unmatched.push(shown.clone());
                    json!({"type": "User", "alternateId": shown, "displayName": shown})
                }
            }
        })
        .collect();
    let (severity, outcome) = if unmatched.is_empty() {
        ("INFO", json!({"result": "SUCCESS"}))
    } else {
        (
            "WARN",
            json!({
                "result": "SKIPPED",
                "reason": format!(
                    "No user in this org matches the subject ({}): the SET was accepted and ignored, as Okta does",
                    unmatched.join(", ")
                ),
            }),
        )
    };
    let entry = LogEvent::new(
        set.received_at.clone(),
        "security.events.provider.receive_event",
        severity,
        "Security Events Provider Reported Risk",
        json!({
            "id": set.provider_id,
            "type": "SecurityEventProvider",
            "alternateId": set.iss,
            "displayName": provider.map(|p| p.name).unwrap_or_default(),
        }),
        outcome,
    )
    .with_target(target)
    .with_debug_data(json!({
        "partnerRiskReportData": json!({"issuer": set.iss, "jti": set.jti, "events": events}).to_string(),
        "matchedUsers": matched,
    }));
    append(state, entry);
}

#[derive(Debug, Deserialize)]
pub(super) struct LogQuery {
    since: Option<String>,
    limit: Option<usize>,
    filter: Option<String>,
}

/// `GET /api/v1/logs?since=&limit=&filter=eventType eq "…"`, oldest first like Okta's default.
pub(super) async fn list(
    _auth: Ssws,
    state: St,
    Query(q): Query<LogQuery>,
) -> Result<Json<Vec<LogEvent>>, OktaError> {
    let since = q
        .since
        .as_deref()
        .map(chrono::DateTime::parse_from_rfc3339)
        .transpose()
        .map_err(|_| OktaError::validation(vec!["since: Invalid date format".into()]))?;
    let event_type = match q.filter.as_deref() {
        None => None,
        Some(f) => {
            let t = f
                .strip_prefix("eventType eq \"")
                .and_then(|r| r.strip_suffix('"'))
                .ok_or_else(|| {
                    OktaError::validation(vec![
                        "filter: only eventType eq \"…\" is supported by the sandbox".into(),
                    ])
                })?;
            Some(t.to_owned())
        }
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let logs = state.logs.lock().map(|l| l.clone()).unwrap_or_default();
    let out = logs
        .into_iter()
        .filter(|e| {
            since.is_none_or(|s| {
                chrono::DateTime::parse_from_rfc3339(&e.published).is_ok_and(|p| p >= s)
            })
        })
        .filter(|e| event_type.as_deref().is_none_or(|t| e.event_type == t))
        .take(limit)
        .collect();
    Ok(Json(out))
}
