//! Containment playbooks: several enforcement steps on one user, run in order, each recorded with
//! its outcome and with what undoes it; an exact undo ("release") by hand or by a durable timer.
//!
//! A containment is stored before its first Okta call and after every step, so a crash leaves a
//! true record. A release marks each undo step `sending` before its Okta call and `done` after;
//! a release resumed after a crash re-reads the user before repeating a call whose effect it
//! cannot see (the unsuspend), so each undo call takes effect once.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use utoipa::ToSchema;

use super::{EnforceError, Enforcer, answered_id};
use crate::auth::Caller;
use crate::clock::Clock;
use crate::ids::Ids;
use crate::okta::{IdKind, OktaApiError, OktaCall, OktaId, OktaPath};
use crate::set::{EventType, RiskLevel};
use crate::signals::Intake;
use crate::store::{ContainmentFilter, ContainmentRow, Store, StoreError};

/// At most this many steps in one playbook.
pub const MAX_STEPS: usize = 20;
/// `release_after` at most one year.
pub const MAX_RELEASE_AFTER_SECS: u64 = 366 * 24 * 3600;
/// A reason is at most this many characters.
pub const MAX_REASON_CHARS: usize = 1000;
/// How long a timer waits before trying a failed release again.
pub const RELEASE_RETRY_SECS: i64 = 60;
/// A lease on running work (a containment's steps, a release, a job's user) lasts this long and
/// is renewed every third of it while the work runs; one that ran out belongs to a process
/// that died, and another replica takes the work over.
pub const LEASE_MS: i64 = 30_000;

/// One step of a playbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// End every session and revoke OAuth tokens (`DELETE /api/v1/users/{id}/sessions?oauthTokens=true`).
    ClearSessions {},
    /// ACTIVE → SUSPENDED; released by an unsuspend.
    Suspend {},
    /// → DEPROVISIONED (`sendEmail=false`). Not reversed by a release.
    Deactivate {},
    /// Reset every enrolled factor. Not reversed by a release.
    ResetFactors {},
    /// Add to a group (Okta id or exact name); released by removing the user again, unless the
    /// user was a member before.
    AddToGroup {
        /// Okta group id or exact group name.
        group: String,
    },
    /// Expire the password (the user sets a new one at the next sign-in).
    ExpirePassword {},
    /// Start a password reset, e-mailed to the user by Okta (nothing is handed back).
    ResetPassword {},
    /// Set profile attributes; released by restoring each one's previous value.
    SetProfile {
        /// Attribute → new value (the same allow-list as `POST /v1/users/{user}/profile`).
        #[schema(value_type = Object)]
        attributes: Map<String, Value>,
    },
    /// A user-risk-change signal through the outbox; released by a `low` signal when this one
    /// raised the level.
    Signal {
        /// The level to send.
        level: RiskLevel,
    },
}

impl Step {
    /// The wire name (`suspend`, `add_to_group`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Step::ClearSessions {} => "clear_sessions",
            Step::Suspend {} => "suspend",
            Step::Deactivate {} => "deactivate",
            Step::ResetFactors {} => "reset_factors",
            Step::AddToGroup { .. } => "add_to_group",
            Step::ExpirePassword {} => "expire_password",
            Step::ResetPassword {} => "reset_password",
            Step::SetProfile { .. } => "set_profile",
            Step::Signal { .. } => "signal",
        }
    }

    /// Whether this step needs the caller to hold `signals:write` too.
    pub fn needs_signals_scope(&self) -> bool {
        matches!(self, Step::Signal { .. })
    }
}

/// What a caller asks for.
#[derive(Debug, Clone)]
pub struct ContainmentRequest {
    /// Okta id, login, email, short name or `DOMAIN\sam`.
    pub user: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Why (recorded).
    pub reason: Option<String>,
    /// Release automatically this many seconds after the containment.
    pub release_after: Option<u64>,
    /// Plan only.
    pub dry_run: bool,
    /// Run the remaining steps after a failed one.
    pub continue_on_error: bool,
}

/// A containment's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContainmentStatus {
    /// Steps are running (or were, when the service stopped: see the steps).
    Running,
    /// Every step done; in force until released.
    Active,
    /// A step failed; what was done stays in force until released.
    Failed,
    /// Waiting for a person to approve.
    PendingApproval,
    /// A person rejected it; nothing ran.
    Rejected,
    /// A release is running.
    Releasing,
    /// Undone.
    Released,
    /// A dry run: nothing was sent.
    Planned,
}

impl ContainmentStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainmentStatus::Running => "running",
            ContainmentStatus::Active => "active",
            ContainmentStatus::Failed => "failed",
            ContainmentStatus::PendingApproval => "pending_approval",
            ContainmentStatus::Rejected => "rejected",
            ContainmentStatus::Releasing => "releasing",
            ContainmentStatus::Released => "released",
            ContainmentStatus::Planned => "planned",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Running,
            Self::Active,
            Self::Failed,
            Self::PendingApproval,
            Self::Rejected,
            Self::Releasing,
            Self::Released,
            Self::Planned,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// A step's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Done (or, in a bulk job, already in that state).
    Done,
    /// Okta refused or failed; see `error`.
    Failed,
    /// Not run: an earlier step failed.
    Skipped,
    /// Dry run: the requests that would be sent are listed.
    Planned,
    /// Not run yet (waiting for approval), or running.
    Pending,
}

/// The user a containment acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContainedUser {
    /// Okta user id (unknown while an ambiguous identity waits for approval).
    pub id: Option<String>,
    /// Login (unknown in a dry run given an Okta id: nothing was read).
    pub login: Option<String>,
}

/// A group a step acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupRef {
    /// Okta group id.
    pub id: String,
    /// Name, when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepOutcome {
    /// The step's action.
    pub action: String,
    /// Outcome.
    pub status: StepStatus,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Something worth knowing (e.g. "already a member: a release leaves the membership").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The Okta requests sent (or, planned, that would be sent), as `METHOD path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub okta_requests: Vec<String>,
    /// The group (add_to_group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupRef>,
    /// The signal's `jti` (signal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl StepOutcome {
    pub(crate) fn pending(action: &str) -> Self {
        Self::new(action, StepStatus::Pending)
    }

    pub(crate) fn skipped(action: &str) -> Self {
        Self::new(action, StepStatus::Skipped)
    }

    fn new(action: &str, status: StepStatus) -> Self {
        Self {
            action: action.to_owned(),
            status,
            error: None,
            note: None,
            okta_requests: Vec::new(),
            group: None,
            jti: None,
        }
    }
}

/// What a release does for one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum UndoAction {
    /// SUSPENDED → ACTIVE.
    Unsuspend,
    /// Remove the user from the group the containment added it to.
    RemoveFromGroup {
        /// Okta group id.
        group_id: String,
    },
    /// Put each attribute back to its value before the containment (`null`: it had none).
    RestoreProfile {
        /// Attribute → previous value.
        #[schema(value_type = Object)]
        previous: Map<String, Value>,
    },
    /// A `low` user-risk signal.
    Signal {
        /// The level sent.
        level: RiskLevel,
    },
}

impl UndoAction {
    fn name(&self) -> &'static str {
        match self {
            UndoAction::Unsuspend => "unsuspend",
            UndoAction::RemoveFromGroup { .. } => "remove_from_group",
            UndoAction::RestoreProfile { .. } => "restore_profile",
            UndoAction::Signal { .. } => "signal",
        }
    }
}

/// Where one undo step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UndoState {
    /// Not sent.
    Pending,
    /// Sent (or about to be): its effect is checked before it is sent again.
    Sending,
    /// Done.
    Done,
    /// Okta refused or failed; tried again by the next release.
    Failed,
}

/// One undo step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UndoStep {
    /// What to undo.
    #[serde(flatten)]
    pub undo: UndoAction,
    /// Where it stands.
    pub state: UndoState,
    /// The last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Something worth knowing (e.g. "was no longer suspended").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The Okta requests sent, as `METHOD path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub okta_requests: Vec<String>,
}

/// An API client, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClientRef {
    /// Stable id.
    pub id: String,
    /// Name.
    pub name: String,
}

impl From<&Caller> for ClientRef {
    fn from(c: &Caller) -> Self {
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
        }
    }
}

/// How a release went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReleaseInfo {
    /// `manual` or `timer`.
    pub trigger: String,
    /// Who released it (the timer releases in the name of the client that asked for the
    /// containment).
    pub by: ClientRef,
    /// When the (last) release started.
    pub started_at: DateTime<Utc>,
    /// When it finished, if every undo step is done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub released_at: Option<DateTime<Utc>>,
    /// Why the last release did not finish (the containment stays in force; the timer tries
    /// again after a minute, a caller may post the release again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A containment, as stored and as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Containment {
    /// Id (`ctn_` + 32 hex digits).
    pub id: String,
    /// State.
    pub status: ContainmentStatus,
    /// The user.
    pub user: ContainedUser,
    /// The identifier as given.
    pub requested_user: String,
    /// Each step's outcome, in order.
    pub steps: Vec<StepOutcome>,
    /// When the timer releases it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_at: Option<DateTime<Utc>>,
    /// What a release undoes, in the order it runs (the reverse of the steps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undo: Vec<UndoStep>,
    /// The last release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseInfo>,
    /// Why (as given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether later steps ran after a failed one.
    pub continue_on_error: bool,
    /// A dry run.
    pub dry_run: bool,
    /// Who asked for it.
    pub requested_by: ClientRef,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The steps as asked (kept so an approval can run them later).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requested_steps: Vec<Step>,
    /// `release_after` as asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_after: Option<u64>,
    /// The approval it waits for (or waited for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
}

/// Why a containment request was refused, or a release could not start.
#[derive(Debug, thiserror::Error)]
pub enum ContainmentError {
    /// Invalid request (field, message).
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    /// Resolution or configuration refused it (nothing ran).
    #[error(transparent)]
    Enforce(#[from] EnforceError),
    /// No such containment.
    #[error("no containment with this id")]
    NotFound,
    /// Not in a state that allows it.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The resolved user while steps run.
pub struct Target {
    pub(crate) id: OktaId,
    login: Option<String>,
    email: Option<String>,
    profile: Map<String, Value>,
    status: String,
}

impl Target {
    fn display_name(&self) -> String {
        match self.profile.get("displayName").and_then(Value::as_str) {
            Some(d) => d.to_owned(),
            None => format!(
                "{} {}",
                self.profile
                    .get("firstName")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                self.profile
                    .get("lastName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            )
            .trim()
            .to_owned(),
        }
    }
}

/// How an Okta "already in that state" answer (400 `E0000001`) counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AlreadyIs {
    /// A failed step (single containment).
    Failed,
    /// Done (bulk jobs: each user acted on once in effect).
    Done,
}

fn already_in_state(e: &EnforceError) -> bool {
    matches!(
        e,
        EnforceError::Okta(OktaApiError::Api { status: 400, error_code, .. }) if error_code == "E0000001"
    )
}

fn shown(call: &OktaCall) -> String {
    format!("{} {}", call.method, call.path)
}

/// Containments: create, read, list, release, and the release timer.
#[derive(Clone)]
pub struct Containments {
    pub(super) enforcer: Enforcer,
    intake: Intake,
    pub(super) store: Store,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) ids: Arc<dyn Ids>,
    wake: Arc<Notify>,
    pub(super) approval: Arc<super::approval::ApprovalSettings>,
    /// This process, as the holder of leases.
    pub(super) owner: Arc<str>,
}

/// Renews a containment's lease while its work runs; stops when dropped.
pub(super) struct LeaseGuard(tokio::task::JoinHandle<()>);

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for Containments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Containments").finish_non_exhaustive()
    }
}

/// A containment id: `ctn_` + 32 lowercase hex digits. Anything else names no containment.
pub fn valid_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl Containments {
    /// Over the enforcer (Okta), the intake (signal steps) and the store.
    pub fn new(
        enforcer: Enforcer,
        intake: Intake,
        store: Store,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn Ids>,
        approval: super::approval::ApprovalSettings,
    ) -> Self {
        Self {
            enforcer,
            intake,
            store,
            clock,
            wake: Arc::new(Notify::new()),
            approval: Arc::new(approval),
            owner: Arc::from(format!("p{}", ids.jti()).as_str()),
            ids,
        }
    }

    /// Checks a playbook before anything runs: size, reason, the configured allow-lists.
    pub fn validate(
        &self,
        steps: &[Step],
        reason: Option<&str>,
        release_after: Option<u64>,
    ) -> Result<(), ContainmentError> {
        if steps.is_empty() {
            return Err(ContainmentError::Invalid(
                "steps",
                "must list at least one step".into(),
            ));
        }
        if steps.len() > MAX_STEPS {
            return Err(ContainmentError::Invalid(
                "steps",
                format!("at most {MAX_STEPS} steps"),
            ));
        }
        if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
            return Err(ContainmentError::Invalid(
                "reason",
                format!("must be at most {MAX_REASON_CHARS} characters"),
            ));
        }
        if let Some(after) = release_after
            && !(1..=MAX_RELEASE_AFTER_SECS).contains(&after)
        {
            return Err(ContainmentError::Invalid(
                "release_after",
                format!("must be 1 to {MAX_RELEASE_AFTER_SECS} seconds"),
            ));
        }
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::AddToGroup { group } => {
                    let g = group.trim();
                    if g.is_empty() || g.chars().count() > 255 || g.chars().any(char::is_control) {
                        return Err(ContainmentError::Invalid(
                            "steps",
                            format!(
                                "steps[{i}].group must be an Okta group id or a group name of 1 to 255 characters without control characters"
                            ),
                        ));
                    }
                }
                Step::SetProfile { attributes } => {
                    if attributes.is_empty() {
                        return Err(ContainmentError::Invalid(
                            "steps",
                            format!("steps[{i}].attributes must set at least one attribute"),
                        ));
                    }
                    let refused: Vec<&str> = attributes
                        .keys()
                        .map(String::as_str)
                        .filter(|a| !self.enforcer.config.profile_attribute_allowed(a))
                        .collect();
                    if !refused.is_empty() {
                        return Err(EnforceError::NotPermitted(format!(
                            "steps[{i}]: not attributes this service may change ([enforcement] profile_attributes): {}",
                            refused.join(", ")
                        ))
                        .into());
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Runs a playbook (or plans it, for a dry run) and stores its record.
    pub async fn create(
        &self,
        caller: &Caller,
        req: ContainmentRequest,
    ) -> Result<Containment, ContainmentError> {
        self.validate(&req.steps, req.reason.as_deref(), req.release_after)?;
        let now = self.clock.now();
        let mut c = Containment {
            id: format!("ctn_{}", self.ids.jti()),
            status: if req.dry_run {
                ContainmentStatus::Planned
            } else {
                ContainmentStatus::Running
            },
            user: ContainedUser::default(),
            requested_user: req.user.trim().to_owned(),
            steps: Vec::new(),
            release_at: None,
            undo: Vec::new(),
            release: None,
            reason: req.reason.clone(),
            continue_on_error: req.continue_on_error,
            dry_run: req.dry_run,
            requested_by: caller.into(),
            created_at: now,
            requested_steps: req.steps.clone(),
            release_after: req.release_after,
            approval_id: None,
        };
        // Resolve first: an unknown or ambiguous user stores nothing and runs nothing (unless
        // [approval] on_ambiguous lets a person pick).
        let target = match self.target(&req.user, req.dry_run).await {
            Ok(t) => t,
            Err(EnforceError::Ambiguous { candidates, .. })
                if self.approval.on_ambiguous && !req.dry_run =>
            {
                let why = format!(
                    "'{}' matches {} users: pick one",
                    c.requested_user,
                    candidates.len()
                );
                return self.hold(caller, c, candidates, why).await;
            }
            Err(e) => {
                self.audit_refusal(caller, &c, &e).await;
                return Err(e.into());
            }
        };
        c.user = ContainedUser {
            id: Some(target.id.as_str().to_owned()),
            login: target.login.clone(),
        };
        if !req.dry_run
            && let Some(why) = self.needs_approval(&target, &req.steps).await?
        {
            let summary = super::UserSummary {
                id: target.id.as_str().to_owned(),
                login: target.login.clone().unwrap_or_default(),
                display_name: target.display_name(),
                status: target.status.clone(),
            };
            return self.hold(caller, c, vec![summary], why).await;
        }
        if req.dry_run {
            for step in &req.steps {
                c.steps.push(self.plan(&target, step).await);
            }
            self.store
                .insert_containment(&row(&c, self.clock.now())?)
                .await?;
            self.audit(caller, "containment.plan", &c, true).await;
            return Ok(c);
        }
        c.steps = req
            .steps
            .iter()
            .map(|s| StepOutcome::new(s.name(), StepStatus::Pending))
            .collect();
        let mut stored = row(&c, self.clock.now())?;
        stored.lease = Some((self.owner.to_string(), self.lease_until()));
        self.store.insert_containment(&stored).await?;
        let lease = self.keep_lease(&c.id);
        let ran = self
            .run_steps(caller, &mut c, target, AlreadyIs::Failed)
            .await;
        drop(lease);
        self.let_go(&c.id).await;
        ran?;
        self.audit(
            caller,
            "containment.create",
            &c,
            c.status == ContainmentStatus::Active,
        )
        .await;
        Ok(c)
    }

    fn lease_until(&self) -> i64 {
        self.clock.now().timestamp_millis() + LEASE_MS
    }

    /// Takes the lease on `id` for this process (or renews it); `false` when another live
    /// process holds it.
    pub(super) async fn take_lease(&self, id: &str) -> Result<bool, StoreError> {
        let now = self.clock.now().timestamp_millis();
        self.store
            .lease_containment(id, &self.owner, now, now + LEASE_MS)
            .await
    }

    /// Renews this process's lease on `id` until the guard is dropped.
    pub(super) fn keep_lease(&self, id: &str) -> LeaseGuard {
        let (this, id) = (self.clone(), id.to_owned());
        LeaseGuard(tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(
                    u64::try_from(LEASE_MS / 3).unwrap_or(10_000),
                ))
                .await;
                if let Err(e) = this.take_lease(&id).await {
                    tracing::warn!(containment = %id, error = %e, "cannot renew a lease");
                }
            }
        }))
    }

    /// Gives the lease on `id` back (the work is done).
    pub(super) async fn let_go(&self, id: &str) {
        if let Err(e) = self.store.drop_containment_lease(id, &self.owner).await {
            tracing::warn!(containment = %id, error = %e, "cannot give a lease back");
        }
    }

    /// Checks a user identifier: 1 to 512 characters, no control characters.
    pub fn validate_user(input: &str) -> Result<&str, ContainmentError> {
        let user = input.trim();
        if user.is_empty() || user.chars().count() > 512 || user.chars().any(char::is_control) {
            return Err(ContainmentError::Invalid(
                "user",
                "must be 1 to 512 characters without control characters".into(),
            ));
        }
        Ok(user)
    }

    /// Runs the stored steps of `c` (status `running`) on `target` and stores the outcome.
    pub(crate) async fn run_steps(
        &self,
        caller: &Caller,
        c: &mut Containment,
        mut target: Target,
        already: AlreadyIs,
    ) -> Result<(), ContainmentError> {
        let steps = c.requested_steps.clone();
        // The timer counts from when the steps ran (after an approval, not from the request).
        let started = self.clock.now();
        let mut failed = false;
        let mut status_before = ContainmentStatus::Running;
        let mut undo = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            if failed && !c.continue_on_error {
                c.steps[i] = StepOutcome::new(step.name(), StepStatus::Skipped);
                continue;
            }
            let (outcome, u) = self
                .run_step(caller, &mut target, step, c.reason.as_deref(), already)
                .await;
            failed |= outcome.status == StepStatus::Failed;
            if let Some(u) = u {
                undo.push(u);
            }
            c.steps[i] = outcome;
            // The undo list is kept in reverse order: last change undone first.
            c.undo = undo
                .iter()
                .rev()
                .map(|u: &UndoAction| UndoStep {
                    undo: u.clone(),
                    state: UndoState::Pending,
                    error: None,
                    note: None,
                    okta_requests: Vec::new(),
                })
                .collect();
            self.save(c, status_before).await?;
            status_before = c.status;
        }
        c.status = if failed {
            ContainmentStatus::Failed
        } else {
            ContainmentStatus::Active
        };
        c.release_at = c
            .release_after
            .map(|s| started + chrono::Duration::seconds(i64::try_from(s).unwrap_or(0)));
        self.save(c, status_before).await?;
        if c.release_at.is_some() {
            self.wake.notify_one();
        }
        Ok(())
    }

    pub(super) async fn save(
        &self,
        c: &Containment,
        expected: ContainmentStatus,
    ) -> Result<(), ContainmentError> {
        if self
            .store
            .save_containment(&row(c, self.clock.now())?, expected.as_str())
            .await?
        {
            Ok(())
        } else {
            Err(ContainmentError::Conflict(format!(
                "containment {} changed meanwhile",
                c.id
            )))
        }
    }

    pub(crate) async fn target(&self, input: &str, dry_run: bool) -> Result<Target, EnforceError> {
        let input = input.trim();
        if dry_run && let Ok(id) = OktaId::parse(IdKind::User, input) {
            // Nothing is read in a dry run given an Okta id.
            return Ok(Target {
                id,
                login: None,
                email: None,
                profile: Map::new(),
                status: String::new(),
            });
        }
        let (user, full) = self.enforcer.resolve(input).await?;
        Ok(Target {
            id: answered_id(IdKind::User, &user.id)?,
            login: Some(user.login),
            email: full["profile"]["email"].as_str().map(str::to_owned),
            profile: full["profile"].as_object().cloned().unwrap_or_default(),
            status: user.status,
        })
    }

    fn calls(uid: &OktaId, step: &Step, gid: Option<&OktaId>) -> Vec<OktaCall> {
        let user = || OktaPath::user(uid);
        let lifecycle = |op: &'static str| OktaCall::new("POST", user().lit("lifecycle").lit(op));
        match step {
            Step::ClearSessions {} => {
                vec![OktaCall::new("DELETE", user().lit("sessions")).query("oauthTokens", "true")]
            }
            Step::Suspend {} => vec![lifecycle("suspend")],
            Step::Deactivate {} => vec![lifecycle("deactivate").query("sendEmail", "false")],
            Step::ResetFactors {} => vec![lifecycle("reset_factors")],
            Step::ExpirePassword {} => vec![lifecycle("expire_password")],
            Step::ResetPassword {} => vec![
                lifecycle("reset_password")
                    .query("sendEmail", "true")
                    .query("revokeSessions", "false"),
            ],
            Step::AddToGroup { .. } => gid
                .map(|g| OktaCall::new("PUT", OktaPath::group(g).lit("users").id(uid)))
                .into_iter()
                .collect(),
            Step::SetProfile { attributes } => {
                let mut call = OktaCall::new("POST", user());
                call.body = Some(json!({"profile": attributes}));
                vec![call]
            }
            Step::Signal { .. } => Vec::new(),
        }
    }

    async fn group(&self, input: &str, dry_run: bool) -> Result<GroupRef, EnforceError> {
        if dry_run && let Ok(id) = OktaId::parse(IdKind::Group, input.trim()) {
            return Ok(GroupRef {
                id: id.as_str().to_owned(),
                name: None,
            });
        }
        let g = self.enforcer.resolve_group(input).await?;
        let id = answered_id(IdKind::Group, g["id"].as_str().unwrap_or_default())?;
        Ok(GroupRef {
            id: id.as_str().to_owned(),
            name: g["profile"]["name"].as_str().map(str::to_owned),
        })
    }

    async fn plan(&self, target: &Target, step: &Step) -> StepOutcome {
        let mut out = StepOutcome::new(step.name(), StepStatus::Planned);
        let gid = match step {
            Step::AddToGroup { group } => match self.group(group, true).await {
                Ok(g) => {
                    let id = OktaId::parse(IdKind::Group, &g.id).ok();
                    out.okta_requests.push(format!(
                        "GET {}",
                        String::from(OktaPath::user(&target.id).lit("groups"))
                    ));
                    out.group = Some(g);
                    id
                }
                Err(e) => {
                    out.status = StepStatus::Failed;
                    out.error = Some(e.to_string());
                    return out;
                }
            },
            Step::Signal { level } => {
                out.note = Some(format!(
                    "a user-risk-change signal ({}) through the outbox",
                    level.as_str()
                ));
                None
            }
            _ => None,
        };
        out.okta_requests.extend(
            Self::calls(&target.id, step, gid.as_ref())
                .iter()
                .map(shown),
        );
        out
    }

    async fn send(&self, call: &OktaCall, out: &mut StepOutcome) -> Result<Value, EnforceError> {
        let okta = self.enforcer.client()?;
        out.okta_requests.push(shown(call));
        Ok(okta.send(call).await?.body)
    }

    pub(crate) async fn run_step(
        &self,
        caller: &Caller,
        target: &mut Target,
        step: &Step,
        reason: Option<&str>,
        already: AlreadyIs,
    ) -> (StepOutcome, Option<UndoAction>) {
        let mut out = StepOutcome::new(step.name(), StepStatus::Done);
        let result: Result<Option<UndoAction>, EnforceError> = async {
            match step {
                Step::AddToGroup { group } => {
                    let g = self.group(group, false).await?;
                    let gid = answered_id(IdKind::Group, &g.id)?;
                    out.group = Some(g);
                    let okta = self.enforcer.client()?;
                    let groups_call = OktaCall::new("GET", OktaPath::user(&target.id).lit("groups"));
                    out.okta_requests.push(shown(&groups_call));
                    let member = okta
                        .get_all(&groups_call, 10_000)
                        .await?
                        .iter()
                        .any(|v| v["id"].as_str() == Some(gid.as_str()));
                    if member {
                        out.note = Some(
                            "already a member before the containment: nothing was sent, and a release leaves the membership"
                                .into(),
                        );
                        return Ok(None);
                    }
                    for call in Self::calls(&target.id, step, Some(&gid)) {
                        self.send(&call, &mut out).await?;
                    }
                    Ok(Some(UndoAction::RemoveFromGroup {
                        group_id: gid.as_str().to_owned(),
                    }))
                }
                Step::SetProfile { attributes } => {
                    let previous: Map<String, Value> = attributes
                        .keys()
                        .map(|k| (k.clone(), target.profile.get(k).cloned().unwrap_or(Value::Null)))
                        .collect();
                    for call in Self::calls(&target.id, step, None) {
                        self.send(&call, &mut out).await?;
                    }
                    for (k, v) in attributes {
                        target.profile.insert(k.clone(), v.clone());
                    }
                    Ok(Some(UndoAction::RestoreProfile { previous }))
                }
                Step::Signal { level } => {
                    let raised = self
                        .signal(caller, target, *level, reason, &mut out)
                        .await?;
                    Ok(raised.then_some(UndoAction::Signal {
                        level: RiskLevel::Low,
                    }))
                }
                _ => {
                    for call in Self::calls(&target.id, step, None) {
                        self.send(&call, &mut out).await?;
                    }
                    Ok(matches!(step, Step::Suspend {}).then_some(UndoAction::Unsuspend))
                }
            }
        }
        .await;
        let undo = match result {
            Ok(u) => u,
            Err(e) if already == AlreadyIs::Done && already_in_state(&e) => {
                out.note = Some(format!("already in that state ({e})"));
                None
            }
            Err(e) => {
                out.status = StepStatus::Failed;
                out.error = Some(e.to_string());
                None
            }
        };
        (out, undo)
    }

    /// Sends a user-risk-change signal for `target`; `true` when it was queued (the level
    /// changed), `false` when the last level was already this one.
    async fn signal(
        &self,
        caller: &Caller,
        target: &Target,
        level: RiskLevel,
        reason: Option<&str>,
        out: &mut StepOutcome,
    ) -> Result<bool, EnforceError> {
        let email = target
            .email
            .clone()
            .or_else(|| target.login.clone())
            .ok_or_else(|| EnforceError::NotPermitted("the user's email is unknown".into()))?;
        let mut body = json!({
            "subject": {"user": {"format": "email", "email": email}},
            "current_level": level.as_str(),
        });
        if let Some(r) = reason {
            body["reason_admin"] = json!(r);
        }
        let ctx = crate::signals::request::Ctx {
            config: self.intake.config(),
            now: self.clock.now(),
            prefix: "",
        };
        let draft = crate::signals::request::parse(EventType::UserRisk, body, &ctx);
        let results = self
            .intake
            .submit(caller, vec![draft], None, |_| (0, String::new()))
            .await
            .map_err(|e| EnforceError::Okta(OktaApiError::Transport(format!("signal: {e}"))))?;
        match results.into_iter().next() {
            Some(Ok(crate::signals::Outcome::Queued { jti, .. })) => {
                out.jti = Some(jti);
                Ok(true)
            }
            Some(Ok(crate::signals::Outcome::Unrouted { .. })) => {
                out.note = Some("no receiver takes this user's risk: nothing sent".into());
                Ok(false)
            }
            Some(Ok(crate::signals::Outcome::Unchanged { .. })) => {
                out.note = Some(format!(
                    "the user's risk level was already {}: nothing sent",
                    level.as_str()
                ));
                Ok(false)
            }
            Some(Err(errors)) => Err(EnforceError::NotPermitted(
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
            None => Ok(false),
        }
    }

    /// One containment.
    pub async fn get(&self, id: &str) -> Result<Containment, ContainmentError> {
        if !valid_id("ctn_", id) {
            return Err(ContainmentError::NotFound);
        }
        let row = self
            .store
            .containment(id)
            .await?
            .ok_or(ContainmentError::NotFound)?;
        parse(&row)
    }

    /// Containments, newest first.
    pub async fn list(
        &self,
        user: Option<String>,
        status: Option<ContainmentStatus>,
        limit: u32,
    ) -> Result<Vec<Containment>, ContainmentError> {
        let rows = self
            .store
            .containments(&ContainmentFilter {
                user,
                status: status.map(|s| s.as_str().to_owned()),
                limit,
            })
            .await?;
        rows.iter().map(parse).collect()
    }

    /// Undoes exactly what the containment did. `trigger` is `manual` or `timer`.
    pub async fn release(
        &self,
        by: ClientRef,
        id: &str,
        trigger: &str,
    ) -> Result<Containment, ContainmentError> {
        let mut c = self.get(id).await?;
        let before = c.status;
        match before {
            ContainmentStatus::Active | ContainmentStatus::Failed => {}
            ContainmentStatus::Releasing if trigger == "resume" => {}
            other => {
                return Err(ContainmentError::Conflict(format!(
                    "containment {id} is {}: only an active or failed containment can be released",
                    other.as_str()
                )));
            }
        }
        // Of two releases at once (a caller and a timer, on any replica), one runs: the lease
        // first, then the status.
        if !self.take_lease(id).await? {
            return Err(ContainmentError::Conflict(format!(
                "containment {id} is being worked on by another replica"
            )));
        }
        let lease = self.keep_lease(id);
        let result = self.release_leased(by, &mut c, before, trigger).await;
        drop(lease);
        self.let_go(id).await;
        result.map(|()| c)
    }

    async fn release_leased(
        &self,
        by: ClientRef,
        c: &mut Containment,
        before: ContainmentStatus,
        trigger: &str,
    ) -> Result<(), ContainmentError> {
        let id = c.id.clone();
        let now = self.clock.now();
        c.status = ContainmentStatus::Releasing;
        c.release = Some(ReleaseInfo {
            trigger: if trigger == "resume" {
                c.release
                    .as_ref()
                    .map_or_else(|| "timer".to_owned(), |r| r.trigger.clone())
            } else {
                trigger.to_owned()
            },
            by: by.clone(),
            started_at: now,
            released_at: None,
            error: None,
        });
        // Claim it: of two releases at once (a caller and the timer), one runs.
        if !self
            .store
            .save_containment(&row(c, self.clock.now())?, before.as_str())
            .await?
        {
            let now_is = self.get(&id).await?;
            return Err(ContainmentError::Conflict(format!(
                "containment {id} is {} (changed meanwhile)",
                now_is.status.as_str()
            )));
        }
        let caller = Caller {
            id: by.id.clone(),
            name: by.name.clone(),
            scopes: Vec::new(),
        };
        let uid = c
            .user
            .id
            .as_deref()
            .map(|u| answered_id(IdKind::User, u))
            .transpose();
        let mut error = None;
        match uid {
            Ok(Some(uid)) => {
                for i in 0..c.undo.len() {
                    if c.undo[i].state == UndoState::Done {
                        continue;
                    }
                    let resumed = c.undo[i].state == UndoState::Sending;
                    c.undo[i].state = UndoState::Sending;
                    self.save(c, ContainmentStatus::Releasing).await?;
                    let action = c.undo[i].undo.clone();
                    match self
                        .undo_one(&caller, c, &uid, &action, resumed, &mut c.undo[i].clone())
                        .await
                    {
                        Ok(step) => c.undo[i] = step,
                        Err((step, e)) => {
                            c.undo[i] = step;
                            error = Some(format!("{}: {e}", action.name()));
                        }
                    }
                    self.save(c, ContainmentStatus::Releasing).await?;
                    if error.is_some() {
                        break;
                    }
                }
            }
            Ok(None) => {}
            Err(e) => error = Some(e.to_string()),
        }
        let end = self.clock.now();
        let previous = if before == ContainmentStatus::Releasing {
            if c.steps.iter().any(|s| s.status == StepStatus::Failed) {
                ContainmentStatus::Failed
            } else {
                ContainmentStatus::Active
            }
        } else {
            before
        };
        match &error {
            None => {
                c.status = ContainmentStatus::Released;
                if let Some(r) = c.release.as_mut() {
                    r.released_at = Some(end);
                }
            }
            Some(e) => {
                // Still in force: the timer tries again in a minute; a caller may post again.
                c.status = previous;
                if let Some(r) = c.release.as_mut() {
                    r.error = Some(e.clone());
                }
                if c.release_at.is_some() {
                    c.release_at = Some(end + chrono::Duration::seconds(RELEASE_RETRY_SECS));
                }
            }
        }
        self.save(c, ContainmentStatus::Releasing).await?;
        self.audit(&caller, "containment.release", c, error.is_none())
            .await;
        Ok(())
    }

    async fn undo_one(
        &self,
        caller: &Caller,
        c: &Containment,
        uid: &OktaId,
        action: &UndoAction,
        resumed: bool,
        step: &mut UndoStep,
    ) -> Result<UndoStep, (UndoStep, EnforceError)> {
        let mut step = step.clone();
        let mut sink = StepOutcome::new(action.name(), StepStatus::Pending);
        let result: Result<(), EnforceError> = async {
            match action {
                UndoAction::Unsuspend => {
                    if resumed {
                        // The service stopped after this call may have been sent: look before
                        // sending it again, so it takes effect once.
                        let okta = self.enforcer.client()?;
                        let user = okta
                            .send(&OktaCall::new("GET", OktaPath::user(uid)))
                            .await?;
                        sink.okta_requests
                            .push(format!("GET {}", String::from(OktaPath::user(uid))));
                        if user.body["status"].as_str() != Some("SUSPENDED") {
                            step.note = Some("no longer suspended: nothing sent".into());
                            return Ok(());
                        }
                    }
                    let call = OktaCall::new(
                        "POST",
                        OktaPath::user(uid).lit("lifecycle").lit("unsuspend"),
                    );
                    match self.send(&call, &mut sink).await {
                        Ok(_) => Ok(()),
                        Err(e) if already_in_state(&e) => {
                            step.note = Some(format!("no longer suspended ({e})"));
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                UndoAction::RemoveFromGroup { group_id } => {
                    let gid = answered_id(IdKind::Group, group_id)?;
                    let call = OktaCall::new("DELETE", OktaPath::group(&gid).lit("users").id(uid));
                    self.send(&call, &mut sink).await.map(|_| ())
                }
                UndoAction::RestoreProfile { previous } => {
                    let mut call = OktaCall::new("POST", OktaPath::user(uid));
                    call.body = Some(json!({"profile": previous}));
                    self.send(&call, &mut sink).await.map(|_| ())
                }
                UndoAction::Signal { level } => {
                    let target = Target {
                        id: uid.clone(),
                        login: c.user.login.clone(),
                        email: None,
                        profile: Map::new(),
                        status: String::new(),
                    };
                    let target = match self.enforcer.resolve(uid.as_str()).await {
                        Ok((_, full)) => Target {
                            email: full["profile"]["email"].as_str().map(str::to_owned),
                            ..target
                        },
                        Err(_) => target,
                    };
                    self.signal(
                        caller,
                        &target,
                        *level,
                        Some("containment released"),
                        &mut sink,
                    )
                    .await
                    .map(|_| ())
                }
            }
        }
        .await;
        step.okta_requests.extend(sink.okta_requests);
        match result {
            Ok(()) => {
                step.state = UndoState::Done;
                step.error = None;
                Ok(step)
            }
            Err(e) => {
                step.state = UndoState::Failed;
                step.error = Some(e.to_string());
                Err((step, e))
            }
        }
    }

    /// The release timer: releases every due containment, and after a restart finishes the
    /// releases and marks the containments a stop interrupted. Runs until `stop` turns true.
    pub async fn run_timer(
        self,
        mut stop: tokio::sync::watch::Receiver<bool>,
        tick: std::time::Duration,
    ) {
        let alone = self.store.single_writer();
        let mut last_take_over = tokio::time::Instant::now();
        loop {
            // With replicas, a dead one's work is taken over once its lease runs out.
            if !alone && last_take_over.elapsed() >= std::time::Duration::from_secs(5) {
                self.take_over(false).await;
                last_take_over = tokio::time::Instant::now();
            }
            let now_ms = self.clock.now().timestamp_millis();
            match self.store.containments_due(now_ms, 32).await {
                Ok(due) => {
                    for row in due {
                        let by = parse(&row).map(|c| c.requested_by).unwrap_or(ClientRef {
                            id: row.client_id.clone(),
                            name: row.client_id.clone(),
                        });
                        match self.release(by, &row.id, "timer").await {
                            Ok(c) => {
                                tracing::info!(id = %c.id, status = c.status.as_str(), "containment released by its timer")
                            }
                            Err(e) => {
                                tracing::warn!(id = %row.id, error = %e, "timed release did not run")
                            }
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read due containments"),
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(tick) => {}
            }
        }
    }

    /// At start, before the API serves: takes over the work a stopped process left (see
    /// [`Containments::run_timer`] for replicas that die later). Before serving, so a
    /// containment this process has just started is never mistaken for an interrupted one.
    pub async fn recover(&self) {
        self.take_over(self.store.single_writer()).await;
    }

    /// Takes over work whose process is gone: releases that were running (resumed) and
    /// containments whose steps were running (marked failed, the unfinished step
    /// "interrupted"). At start on a single-writer store every such row is another (dead)
    /// process's, lease or not; with several replicas only rows whose lease ran out are.
    async fn take_over(&self, at_start_alone: bool) {
        let now_ms = self.clock.now().timestamp_millis();
        for status in ["releasing", "running"] {
            let rows = if at_start_alone {
                self.store.containments_with_status(status).await
            } else {
                self.store.unleased_containments(status, now_ms).await
            };
            let rows = match rows {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, status, "cannot read interrupted containments");
                    continue;
                }
            };
            for row in rows {
                // A lease that has not run out can only be a dead process's when we are alone.
                let seen_now = if at_start_alone { i64::MAX } else { now_ms };
                match self
                    .store
                    .lease_containment(&row.id, &self.owner, seen_now, now_ms + LEASE_MS)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::error!(id = %row.id, error = %e, "cannot take over a containment");
                        continue;
                    }
                }
                if status == "releasing" {
                    let by = parse(&row).map(|c| c.requested_by).unwrap_or(ClientRef {
                        id: row.client_id.clone(),
                        name: row.client_id.clone(),
                    });
                    match self.release(by, &row.id, "resume").await {
                        Ok(c) => {
                            tracing::warn!(id = %c.id, status = c.status.as_str(), "resumed an interrupted release")
                        }
                        Err(e) => {
                            tracing::error!(id = %row.id, error = %e, "cannot resume a release")
                        }
                    }
                    continue;
                }
                let Ok(mut c) = parse(&row) else { continue };
                for s in &mut c.steps {
                    if s.status == StepStatus::Pending {
                        s.status = StepStatus::Failed;
                        s.error = Some(
                            "interrupted: the service stopped while the containment ran; this step may or may not have reached Okta".into(),
                        );
                    }
                }
                c.status = ContainmentStatus::Failed;
                if let Err(e) = self.save(&c, ContainmentStatus::Running).await {
                    tracing::error!(id = %c.id, error = %e, "cannot mark an interrupted containment");
                } else {
                    tracing::warn!(id = %c.id, "a containment was interrupted by a stop; marked failed");
                }
                self.let_go(&c.id).await;
            }
        }
    }

    pub(super) async fn audit(&self, caller: &Caller, action: &str, c: &Containment, ok: bool) {
        let steps: Vec<Value> = c
            .steps
            .iter()
            .map(|s| json!({"action": s.action, "status": s.status, "error": s.error}))
            .collect();
        let undo: Vec<Value> = c
            .undo
            .iter()
            .map(|u| json!({"action": u.undo.name(), "state": u.state, "error": u.error}))
            .collect();
        let detail = json!({
            "containment": c.id,
            "status": c.status.as_str(),
            "reason": c.reason,
            "steps": steps,
            "undo": undo,
            "release_at": c.release_at,
        })
        .to_string();
        let target = match (&c.user.id, &c.user.login) {
            (Some(id), Some(login)) => format!("{id} ({login})"),
            (Some(id), None) => id.clone(),
            _ => c.requested_user.clone(),
        };
        super::audit::record_detail(
            &self.store,
            self.clock.now(),
            caller.into(),
            action,
            Some(&target),
            ok,
            Some(&detail),
        )
        .await;
        tracing::info!(caller = %caller.name, action, containment = %c.id, status = c.status.as_str(), ok, "containment");
    }

    async fn audit_refusal(&self, caller: &Caller, c: &Containment, e: &EnforceError) {
        let detail =
            json!({"dry_run": c.dry_run, "reason": c.reason, "error": e.to_string()}).to_string();
        super::audit::record_detail(
            &self.store,
            self.clock.now(),
            caller.into(),
            "containment.create",
            Some(&c.requested_user),
            false,
            Some(&detail),
        )
        .await;
    }
}

/// The stored row of a containment.
pub(crate) fn row(c: &Containment, now: DateTime<Utc>) -> Result<ContainmentRow, StoreError> {
    Ok(ContainmentRow {
        id: c.id.clone(),
        client_id: c.requested_by.id.clone(),
        status: c.status.as_str().to_owned(),
        user_id: c.user.id.clone(),
        user_login: c.user.login.clone(),
        release_at: c.release_at.map(|t| t.timestamp_millis()),
        created_at: c.created_at.timestamp_millis(),
        updated_at: now.timestamp_millis(),
        record: serde_json::to_string(c)
            .map_err(|e| StoreError::Corrupt(format!("containment {}: {e}", c.id)))?,
        lease: None,
    })
}

pub(crate) fn parse(row: &ContainmentRow) -> Result<Containment, ContainmentError> {
    serde_json::from_str(&row.record).map_err(|e| {
        ContainmentError::Store(StoreError::Corrupt(format!("containment {}: {e}", row.id)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_strictly() {
        let ok: Step =
            serde_json::from_value(json!({"action": "add_to_group", "group": "G"})).expect("step");
        assert_eq!(ok, Step::AddToGroup { group: "G".into() });
        for bad in [
            json!({"action": "suspend", "extra": 1}),
            json!({"action": "add_to_group", "group": "G", "extra": 1}),
            json!({"action": "assign_role"}),
            json!({"action": "signal", "level": "extreme"}),
            json!({"group": "G"}),
        ] {
            assert!(
                serde_json::from_value::<Step>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn ids_are_prefix_and_32_lowercase_hex() {
        assert!(valid_id("ctn_", "ctn_0123456789abcdef0123456789abcdef"));
        for bad in [
            "ctn_0123456789ABCDEF0123456789abcdef",
            "ctn_0123",
            "job_0123456789abcdef0123456789abcdef",
            "ctn_../../0123456789abcdef0123456789",
        ] {
            assert!(!valid_id("ctn_", bad), "{bad}");
        }
    }
}
