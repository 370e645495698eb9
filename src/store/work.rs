//! Rows of durable enforcement work: containments (with their release timer) and bulk jobs with
//! one item per user. The domain keeps its record as one JSON document; the store keeps the
//! columns it selects and orders on beside it.

/// One containment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainmentRow {
    /// Id (`ctn_…`).
    pub id: String,
    /// The API client that asked for it.
    pub client_id: String,
    /// `running`, `active`, `failed`, `pending_approval`, `rejected`, `releasing`, `released`,
    /// `planned`.
    pub status: String,
    /// Okta user id, once resolved.
    pub user_id: Option<String>,
    /// Okta login, once resolved.
    pub user_login: Option<String>,
    /// When the timer releases it (ms since the epoch).
    pub release_at: Option<i64>,
    /// Created (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// The domain record (JSON).
    pub record: String,
    /// On insert only: the lease the inserting process takes (owner, until ms). Reads leave it
    /// `None`; leases are read and changed through their own methods.
    pub lease: Option<(String, i64)>,
}

/// Which containments to list.
#[derive(Debug, Clone, Default)]
pub struct ContainmentFilter {
    /// Okta user id or login (exact, case-insensitive for logins).
    pub user: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// One bulk job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// Id (`job_…`).
    pub id: String,
    /// The API client that submitted it.
    pub client_id: String,
    /// `running`, `done`, `cancelled`.
    pub status: String,
    /// Number of users.
    pub total: i64,
    /// Created (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// The domain record (JSON: steps, reason, the caller).
    pub record: String,
}

/// One user of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobItem {
    /// Position in the job's list.
    pub idx: i64,
    /// The identifier as given.
    pub user_input: String,
    /// `pending`, `running`, `done`, `failed`.
    pub status: String,
    /// The outcome (JSON), once finished; for a `running` item, what was sent so far.
    pub detail: Option<String>,
}

/// How far a job is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobProgress {
    /// Items done.
    pub done: i64,
    /// Items failed.
    pub failed: i64,
    /// Items not finished (pending or running).
    pub open: i64,
}

/// One approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    /// Id (`apr_…`).
    pub id: String,
    /// The containment waiting for it.
    pub containment_id: String,
    /// `pending`, `approved`, `rejected`.
    pub status: String,
    /// SHA-256 of the link's token.
    pub token_digest: Vec<u8>,
    /// When the link stops working (ms).
    pub expires_at: i64,
    /// Created (ms).
    pub created_at: i64,
    /// Decided (ms).
    pub decided_at: Option<i64>,
    /// The domain record (JSON).
    pub record: String,
}
