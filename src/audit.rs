//! Appends to the audit log. A failed append is logged loudly; the action it describes has already
//! happened and is not undone.

use chrono::{DateTime, Utc};

use crate::store::{NewAudit, Store};

/// Records one action and its outcome.
pub async fn record(
    store: &Store,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    target: Option<&str>,
    outcome: Result<(), &str>,
) {
    let (ok, detail) = match outcome {
        Ok(()) => (true, None),
        Err(d) => (false, Some(d)),
    };
    record_detail(store, at, actor, action, target, ok, detail).await;
}

/// Records one action with a detail whatever its outcome (e.g. dry run, reason, Okta status).
pub async fn record_detail(
    store: &Store,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    target: Option<&str>,
    ok: bool,
    detail: Option<&str>,
) {
    let outcome = if ok { "ok" } else { "error" };
    let entry = NewAudit {
        at,
        actor,
        action,
        target,
        outcome,
        detail,
    };
    if let Err(e) = store.append_audit(entry).await {
        tracing::error!(error = %e, actor, action, target, "could not write the audit log");
    }
}
