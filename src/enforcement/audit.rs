//! Appends to the audit log. A failed append is logged loudly; the action it describes has already
//! happened and is not undone.

use chrono::{DateTime, Utc};

use crate::auth::Caller;
pub use crate::store::{AuditEntry, AuditFilter};
use crate::store::{NewAudit, Store, StoreError};

/// The audit log: append and query.
#[derive(Debug, Clone)]
pub struct Audit {
    store: Store,
}

impl Audit {
    /// Over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Records one action and its outcome (see [`record`]).
    pub async fn record(
        &self,
        at: DateTime<Utc>,
        actor: Actor<'_>,
        action: &str,
        target: Option<&str>,
        outcome: Result<(), &str>,
    ) {
        record(&self.store, at, actor, action, target, outcome).await;
    }

    /// Rows matching `filter`, newest first.
    pub async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        self.store.audit(filter).await
    }
}

/// Who an audit row names: the API client's stable id and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor<'a> {
    /// Stable id (`admin-token` for the bootstrap token, `cli` for the command line).
    pub id: &'a str,
    /// Name.
    pub name: &'a str,
}

impl Actor<'static> {
    /// The command line (`ssf-transmitter clients …`, `keys …`).
    pub const CLI: Actor<'static> = Actor {
        id: crate::auth::CLI_ACTOR,
        name: crate::auth::CLI_ACTOR,
    };
}

impl<'a> From<&'a Caller> for Actor<'a> {
    fn from(c: &'a Caller) -> Self {
        Actor {
            id: &c.id,
            name: &c.name,
        }
    }
}

/// Records one action and its outcome.
pub async fn record(
    store: &Store,
    at: DateTime<Utc>,
    actor: Actor<'_>,
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
    actor: Actor<'_>,
    action: &str,
    target: Option<&str>,
    ok: bool,
    detail: Option<&str>,
) {
    let outcome = if ok { "ok" } else { "error" };
    let entry = NewAudit {
        at,
        actor: actor.name,
        actor_id: actor.id,
        action,
        target,
        outcome,
        detail,
    };
    if let Err(e) = store.append_audit(entry).await {
        tracing::error!(error = %e, actor = actor.name, actor_id = actor.id, action, target, "could not write the audit log");
    }
}
