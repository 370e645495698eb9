//! Human approval: a containment that needs a person (a step listed in `[approval] actions`, a
//! member of a protected group, or — with `on_ambiguous` — an identity that matches several
//! users) waits as a whole; nothing runs before the decision. A person decides on a link
//! (`{issuer}/approvals/{id}?t=<token>`, announced to the webhook) or through the API. Approving
//! runs the containment once, for the chosen user, under its own id; rejecting runs nothing.
//!
//! The link's token is 256 random bits, stored only as its SHA-256 digest; it works until the
//! approval is decided or `link_ttl` passes, whichever comes first.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::containment::{
    ClientRef, Containment, ContainmentError, ContainmentStatus, Containments, Step, StepOutcome,
    StepStatus,
};
use super::{EnforceError, UserSummary, answered_id};
use crate::auth::Caller;
use crate::okta::{IdKind, OktaCall, OktaId, OktaPath};
use crate::store::ApprovalRow;

/// At most this many candidates are offered.
pub const MAX_CANDIDATES: usize = 10;

/// `[approval]`, checked at start.
#[derive(Debug, Clone, Default)]
pub struct ApprovalSettings {
    /// Steps that need approval.
    pub actions: Vec<String>,
    /// Group names or ids whose members need approval.
    pub protected_groups: Vec<String>,
    /// Ambiguous identities wait for a person instead of a 409.
    pub on_ambiguous: bool,
    /// Where new approvals are announced.
    pub webhook: Option<url::Url>,
    /// How long a link works.
    pub link_ttl: Duration,
    /// The issuer URL (links start with it).
    pub issuer: String,
    /// The HTTP client for the webhook.
    pub http: Option<reqwest::Client>,
}

/// A user a person may pick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Candidate {
    /// Okta user id.
    pub id: String,
    /// Login.
    pub login: String,
    /// Display name.
    pub name: String,
    /// Okta status.
    pub status: String,
    /// Group names.
    pub groups: Vec<String>,
}

/// Who decided, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    /// `approved` or `rejected`.
    pub outcome: String,
    /// An API client, or `approval link`.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The chosen user (approved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
}

/// An approval, as stored and answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Approval {
    /// Id (`apr_` + 32 hex digits).
    pub id: String,
    /// `pending`, `approved`, `rejected`.
    pub status: String,
    /// Why a person must decide.
    pub why: String,
    /// The containment waiting.
    pub containment_id: String,
    /// The identifier as given.
    pub requested_user: String,
    /// The steps that run when approved.
    pub steps: Vec<Step>,
    /// The requester's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who asked.
    pub requested_by: ClientRef,
    /// Who may be picked (one user when the identity was clear).
    pub candidates: Vec<Candidate>,
    /// When it was asked.
    pub created_at: DateTime<Utc>,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
    /// The decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// Who decides.
#[derive(Debug, Clone)]
pub enum Decider {
    /// An API client with `admin`.
    Client(Caller),
    /// Whoever holds the link (its token was checked).
    Link,
}

impl Decider {
    fn name(&self) -> String {
        match self {
            Decider::Client(c) => c.name.clone(),
            Decider::Link => "approval link".into(),
        }
    }
}

/// What the link's holder may do.
#[derive(Debug)]
pub enum LinkState {
    /// Pending and in time.
    Open(Box<Approval>),
    /// Decided, or expired.
    Gone(Box<Approval>),
    /// No such approval, or not its token.
    Unknown,
}

fn parse(row: &ApprovalRow) -> Result<Approval, ContainmentError> {
    serde_json::from_str(&row.record).map_err(|e| {
        ContainmentError::Store(crate::store::StoreError::Corrupt(format!(
            "approval {}: {e}",
            row.id
        )))
    })
}

impl Containments {
    /// Why `steps` on `target` need a person, if they do.
    pub(super) async fn needs_approval(
        &self,
        target: &super::containment::Target,
        steps: &[Step],
    ) -> Result<Option<String>, ContainmentError> {
        let listed: Vec<&str> = steps
            .iter()
            .map(Step::name)
            .filter(|n| self.approval.actions.iter().any(|a| a == n))
            .collect();
        if !listed.is_empty() {
            return Ok(Some(format!(
                "{} needs approval ([approval] actions)",
                listed.join(", ")
            )));
        }
        if self.approval.protected_groups.is_empty() {
            return Ok(None);
        }
        let groups = self.user_groups(&target.id).await?;
        let hit: Vec<String> = groups
            .iter()
            .filter(|g| {
                self.approval.protected_groups.iter().any(|p| {
                    g["id"].as_str() == Some(p.as_str())
                        || g["profile"]["name"].as_str() == Some(p.as_str())
                })
            })
            .filter_map(|g| g["profile"]["name"].as_str().map(str::to_owned))
            .collect();
        Ok((!hit.is_empty()).then(|| {
            format!(
                "the user is a member of {} ([approval] protected_groups)",
                hit.join(", ")
            )
        }))
    }

    async fn user_groups(&self, uid: &OktaId) -> Result<Vec<Value>, EnforceError> {
        Ok(self
            .enforcer
            .client()?
            .get_all(
                &OktaCall::new("GET", OktaPath::user(uid).lit("groups")),
                1000,
            )
            .await?)
    }

    /// Stores `c` as waiting for a person who picks one of `candidates`, announces it, and
    /// answers the containment.
    pub(super) async fn hold(
        &self,
        caller: &Caller,
        mut c: Containment,
        candidates: Vec<UserSummary>,
        why: String,
    ) -> Result<Containment, ContainmentError> {
        let now = self.clock.now();
        let mut offered = Vec::new();
        for u in candidates.into_iter().take(MAX_CANDIDATES) {
            let groups = match answered_id(IdKind::User, &u.id) {
                Ok(id) => self.user_groups(&id).await.unwrap_or_default(),
                Err(_) => continue,
            };
            offered.push(Candidate {
                id: u.id,
                login: u.login,
                name: u.display_name,
                status: u.status,
                groups: groups
                    .iter()
                    .filter_map(|g| g["profile"]["name"].as_str().map(str::to_owned))
                    .collect(),
            });
        }
        let id = format!("apr_{}", self.ids.jti());
        let token = format!("{}{}", self.ids.jti(), self.ids.jti());
        let expires_at = now
            + chrono::Duration::from_std(self.approval.link_ttl)
                .unwrap_or(chrono::Duration::hours(24));
        c.status = ContainmentStatus::PendingApproval;
        c.approval_id = Some(id.clone());
        c.steps = c
            .requested_steps
            .iter()
            .map(|s| StepOutcome::pending(s.name()))
            .collect();
        let approval = Approval {
            id: id.clone(),
            status: "pending".into(),
            why,
            containment_id: c.id.clone(),
            requested_user: c.requested_user.clone(),
            steps: c.requested_steps.clone(),
            reason: c.reason.clone(),
            requested_by: c.requested_by.clone(),
            candidates: offered,
            created_at: now,
            expires_at,
            decision: None,
        };
        self.store
            .insert_containment(&super::containment::row(&c, now)?)
            .await?;
        self.store
            .insert_approval(&ApprovalRow {
                id: id.clone(),
                containment_id: c.id.clone(),
                status: "pending".into(),
                token_digest: crate::auth::token_digest(&token).to_vec(),
                expires_at: expires_at.timestamp_millis(),
                created_at: now.timestamp_millis(),
                decided_at: None,
                record: serde_json::to_string(&approval).map_err(|e| {
                    ContainmentError::Conflict(format!("cannot store the approval: {e}"))
                })?,
            })
            .await?;
        super::audit::record_detail(
            &self.store,
            now,
            caller.into(),
            "approval.request",
            Some(&c.requested_user),
            true,
            Some(
                &json!({"approval": id, "containment": c.id, "why": approval.why,
                        "candidates": approval.candidates.iter().map(|c| &c.id).collect::<Vec<_>>(),
                        "steps": approval.steps.iter().map(Step::name).collect::<Vec<_>>(), "reason": c.reason})
                .to_string(),
            ),
        )
        .await;
        self.announce(&approval, &token);
        Ok(c)
    }

    /// The link: `{issuer}/approvals/{id}?t=<token>`.
    fn link(&self, id: &str, token: &str) -> String {
        format!("{}/approvals/{id}?t={token}", self.approval.issuer)
    }

    fn announce(&self, a: &Approval, token: &str) {
        let (Some(url), Some(http)) = (self.approval.webhook.clone(), self.approval.http.clone())
        else {
            tracing::info!(approval = %a.id, "approval pending; no [approval] webhook_url is set: decide through /v1/approvals");
            return;
        };
        let link = self.link(&a.id, token);
        let who = match a.candidates.as_slice() {
            [one] => format!("{} ({})", one.login, one.name),
            many => format!("{} (one of {} candidates)", a.requested_user, many.len()),
        };
        let steps: Vec<&str> = a.steps.iter().map(Step::name).collect();
        let body = json!({
            "text": format!(
                "Containment of {who} requested by {}: {}. {}. Reason: {}. Decide: {link}",
                a.requested_by.name,
                steps.join(", "),
                a.why,
                a.reason.as_deref().unwrap_or("none given"),
            ),
            "approval_id": a.id,
            "url": link,
            "containment_id": a.containment_id,
            "requested_by": a.requested_by.name,
            "expires_at": a.expires_at,
        });
        let id = a.id.clone();
        tokio::spawn(async move {
            for attempt in 1..=3u32 {
                match http.post(url.clone()).json(&body).send().await {
                    Ok(r) if r.status().is_success() => {
                        tracing::info!(approval = %id, "approval announced to the webhook");
                        return;
                    }
                    Ok(r) => {
                        tracing::warn!(approval = %id, status = r.status().as_u16(), attempt, "the approval webhook refused");
                    }
                    Err(e) => {
                        tracing::warn!(approval = %id, error = %e.without_url(), attempt, "cannot reach the approval webhook");
                    }
                }
                tokio::time::sleep(Duration::from_secs(u64::from(attempt) * 2)).await;
            }
            tracing::error!(approval = %id, "the approval was not announced; decide through /v1/approvals");
        });
    }

    /// One approval.
    pub async fn approval(&self, id: &str) -> Result<Approval, ContainmentError> {
        if !super::containment::valid_id("apr_", id) {
            return Err(ContainmentError::NotFound);
        }
        let row = self
            .store
            .approval(id)
            .await?
            .ok_or(ContainmentError::NotFound)?;
        parse(&row)
    }

    /// Approvals (of one status), newest first.
    pub async fn approvals(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Approval>, ContainmentError> {
        self.store
            .approvals(status, limit)
            .await?
            .iter()
            .map(parse)
            .collect()
    }

    /// What a link's token opens.
    pub async fn open_link(&self, id: &str, token: &str) -> Result<LinkState, ContainmentError> {
        if !super::containment::valid_id("apr_", id) || token.is_empty() || token.len() > 128 {
            return Ok(LinkState::Unknown);
        }
        let Some(row) = self.store.approval(id).await? else {
            return Ok(LinkState::Unknown);
        };
        let digest = crate::auth::token_digest(token);
        if !crate::auth::digests_equal(&digest, &row.token_digest) {
            return Ok(LinkState::Unknown);
        }
        let a = parse(&row)?;
        if row.status != "pending" || self.clock.now().timestamp_millis() >= row.expires_at {
            return Ok(LinkState::Gone(Box::new(a)));
        }
        Ok(LinkState::Open(Box::new(a)))
    }

    /// Decides: approve (running the containment once, for `candidate`) or reject (nothing
    /// runs). A decided approval is never decided again.
    pub async fn decide(
        &self,
        id: &str,
        decider: Decider,
        approve: Option<&str>,
    ) -> Result<(Approval, Containment), ContainmentError> {
        let mut a = self.approval(id).await?;
        if a.status != "pending" {
            return Err(ContainmentError::Conflict(format!(
                "approval {id} is already {}",
                a.status
            )));
        }
        let chosen = match approve {
            Some(candidate) => Some(
                a.candidates
                    .iter()
                    .find(|c| c.id == candidate)
                    .cloned()
                    .ok_or_else(|| {
                        ContainmentError::Invalid(
                            "candidate",
                            format!(
                                "must be the Okta id of one of the candidates: {}",
                                a.candidates
                                    .iter()
                                    .map(|c| c.id.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    })?,
            ),
            None => None,
        };
        let now = self.clock.now();
        a.status = if chosen.is_some() {
            "approved"
        } else {
            "rejected"
        }
        .into();
        a.decision = Some(Decision {
            outcome: a.status.clone(),
            by: decider.name(),
            at: now,
            candidate: chosen.as_ref().map(|c| c.id.clone()),
        });
        let record = serde_json::to_string(&a)
            .map_err(|e| ContainmentError::Conflict(format!("cannot store the decision: {e}")))?;
        // Claim the decision: of two at once (the link and the API), one wins.
        if !self
            .store
            .decide_approval(id, &a.status, &record, now.timestamp_millis())
            .await?
        {
            return Err(ContainmentError::Conflict(format!(
                "approval {id} was decided meanwhile"
            )));
        }
        let actor_caller = match &decider {
            Decider::Client(c) => c.clone(),
            Decider::Link => Caller {
                id: "approval-link".into(),
                name: "approval link".into(),
                scopes: Vec::new(),
            },
        };
        super::audit::record_detail(
            &self.store,
            now,
            (&actor_caller).into(),
            &format!("approval.{}", if chosen.is_some() { "approve" } else { "reject" }),
            Some(&a.containment_id),
            true,
            Some(
                &json!({"approval": id, "containment": a.containment_id, "candidate": a.decision.as_ref().and_then(|d| d.candidate.clone()), "by": decider.name()})
                    .to_string(),
            ),
        )
        .await;
        let row = self
            .store
            .containment(&a.containment_id)
            .await?
            .ok_or(ContainmentError::NotFound)?;
        let mut c = super::containment::parse(&row)?;
        let requester = Caller {
            id: c.requested_by.id.clone(),
            name: c.requested_by.name.clone(),
            scopes: Vec::new(),
        };
        match chosen {
            None => {
                c.status = ContainmentStatus::Rejected;
                for s in &mut c.steps {
                    s.status = StepStatus::Skipped;
                }
                self.save(&c, ContainmentStatus::PendingApproval).await?;
                self.audit(&requester, "containment.reject", &c, true).await;
            }
            Some(candidate) => {
                c.user = super::containment::ContainedUser {
                    id: Some(candidate.id.clone()),
                    login: Some(candidate.login.clone()),
                };
                // Held by this process while its steps run (another replica takes it over,
                // marked interrupted, only if this one dies).
                self.take_lease(&c.id).await?;
                let lease = self.keep_lease(&c.id);
                c.status = ContainmentStatus::Running;
                self.save(&c, ContainmentStatus::PendingApproval).await?;
                match self.target(&candidate.id, false).await {
                    Ok(target) => {
                        self.run_steps(
                            &requester,
                            &mut c,
                            target,
                            super::containment::AlreadyIs::Failed,
                        )
                        .await?;
                    }
                    Err(e) => {
                        for s in &mut c.steps {
                            s.status = StepStatus::Skipped;
                        }
                        if let Some(first) = c.steps.first_mut() {
                            first.status = StepStatus::Failed;
                            first.error = Some(e.to_string());
                        }
                        c.status = ContainmentStatus::Failed;
                        self.save(&c, ContainmentStatus::Running).await?;
                    }
                }
                drop(lease);
                self.let_go(&c.id).await;
                self.audit(
                    &requester,
                    "containment.create",
                    &c,
                    c.status == ContainmentStatus::Active,
                )
                .await;
            }
        }
        Ok((a, c))
    }
}
