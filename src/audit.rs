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
    let (outcome, detail) = match outcome {
        Ok(()) => ("ok", None),
        Err(d) => ("error", Some(d)),
    };
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
