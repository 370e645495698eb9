//! Bulk jobs: the same steps as a containment, for up to 10,000 users, run in the background by a
//! few workers that share the Okta client (and so its rate-limit budget).
//!
//! Every user is a stored item (`pending` → `running` → `done`/`failed`). After a stop, items
//! that were `running` run again: Okta's "already in that state" answer (400 `E0000001`) counts
//! as done, so each user is acted on once in effect. A cancel is seen by every worker at once:
//! their in-flight work is dropped and no further Okta call is made for the job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Notify, watch};
use utoipa::ToSchema;

use super::containment::{
    AlreadyIs, ClientRef, ContainmentError, Containments, LEASE_MS, Step, StepOutcome, StepStatus,
    valid_id,
};
use crate::auth::Caller;
use crate::clock::Clock;
use crate::ids::Ids;
use crate::store::{JobRow, Store};

/// At most this many users in one job.
pub const MAX_USERS: usize = 10_000;

/// What a job records beside its items.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobRecord {
    steps: Vec<Step>,
    reason: Option<String>,
    requested_by: ClientRef,
}

/// The answer to a submitted job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobAccepted {
    /// Job id (`job_` + 32 hex digits).
    pub id: String,
    /// `running`.
    pub status: String,
    /// Number of users.
    pub total: i64,
}

/// One user's outcome in a job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobResult {
    /// The identifier as given.
    pub user: String,
    /// `pending`, `running`, `done`, `failed`, or `cancelled` (never run: the job was
    /// cancelled).
    pub status: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// E.g. "already in that state": Okta said the user already was (counted as done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The Okta user id, once resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Each step's outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepOutcome>,
}

/// A job and its progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// `running`, `done` or `cancelled`.
    pub status: String,
    /// Number of users.
    pub total: i64,
    /// Users done.
    pub done: i64,
    /// Users failed.
    pub failed: i64,
    /// The steps.
    pub steps: Vec<Step>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who submitted it.
    pub requested_by: ClientRef,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Each user's outcome, in the order given (empty with `results=false`).
    pub results: Vec<JobResult>,
}

/// Bulk jobs: submit, read, cancel, and the workers.
#[derive(Clone)]
pub struct Jobs {
    ctn: Containments,
    store: Store,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn Ids>,
    cancels: Arc<Mutex<HashMap<String, watch::Sender<bool>>>>,
    wake: Arc<Notify>,
    concurrency: usize,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Jobs {
    /// Over the containment service (its steps), with `concurrency` workers.
    pub fn new(
        ctn: Containments,
        store: Store,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn Ids>,
        concurrency: usize,
    ) -> Self {
        Self {
            ctn,
            store,
            clock,
            ids,
            cancels: Arc::default(),
            wake: Arc::new(Notify::new()),
            concurrency: concurrency.max(1),
        }
    }

    /// Validates and stores a job; the workers pick it up at once.
    pub async fn submit(
        &self,
        caller: &Caller,
        steps: Vec<Step>,
        users: Vec<String>,
        reason: Option<String>,
    ) -> Result<JobAccepted, ContainmentError> {
        self.ctn.validate(&steps, reason.as_deref(), None)?;
        let needs_approval: Vec<&str> = steps
            .iter()
            .map(Step::name)
            .filter(|n| self.ctn.approval.actions.iter().any(|a| a == n))
            .collect();
        if !needs_approval.is_empty() {
            return Err(super::EnforceError::NotPermitted(format!(
                "{} needs approval ([approval] actions), which a bulk job cannot wait for: submit containments instead",
                needs_approval.join(", ")
            ))
            .into());
        }
        if users.is_empty() || users.len() > MAX_USERS {
            return Err(ContainmentError::Invalid(
                "users",
                format!("must list 1 to {MAX_USERS} users"),
            ));
        }
        let mut clean = Vec::with_capacity(users.len());
        for (i, u) in users.iter().enumerate() {
            match Containments::validate_user(u) {
                Ok(u) => clean.push(u.to_owned()),
                Err(_) => {
                    return Err(ContainmentError::Invalid(
                        "users",
                        format!(
                            "users[{i}] must be 1 to 512 characters without control characters"
                        ),
                    ));
                }
            }
        }
        let now = self.clock.now();
        let record = JobRecord {
            steps,
            reason,
            requested_by: caller.into(),
        };
        let row = JobRow {
            id: format!("job_{}", self.ids.jti()),
            client_id: caller.id.clone(),
            status: "running".into(),
            total: i64::try_from(clean.len()).unwrap_or(i64::MAX),
            created_at: now.timestamp_millis(),
            updated_at: now.timestamp_millis(),
            record: serde_json::to_string(&record)
                .map_err(|e| ContainmentError::Conflict(format!("cannot store the job: {e}")))?,
        };
        self.store.insert_job(&row, &clean).await?;
        super::audit::record_detail(
            &self.store,
            now,
            caller.into(),
            "job.create",
            Some(&row.id),
            true,
            Some(
                &json!({"users": row.total, "steps": record.steps.iter().map(Step::name).collect::<Vec<_>>(), "reason": record.reason})
                    .to_string(),
            ),
        )
        .await;
        self.wake.notify_one();
        Ok(JobAccepted {
            id: row.id,
            status: row.status,
            total: row.total,
        })
    }

    /// A job with every user's outcome.
    pub async fn get(&self, id: &str, with_results: bool) -> Result<Job, ContainmentError> {
        if !valid_id("job_", id) {
            return Err(ContainmentError::NotFound);
        }
        let row = self
            .store
            .job(id)
            .await?
            .ok_or(ContainmentError::NotFound)?;
        let record: JobRecord = serde_json::from_str(&row.record).map_err(|e| {
            ContainmentError::Store(crate::store::StoreError::Corrupt(format!("job {id}: {e}")))
        })?;
        let progress = self.store.job_progress(id).await?;
        let items = if with_results {
            self.store
                .job_items(id, &["pending", "running", "done", "failed"], u32::MAX)
                .await?
        } else {
            Vec::new()
        };
        let cancelled = row.status == "cancelled";
        let results = items
            .into_iter()
            .map(|item| {
                let mut r = item
                    .detail
                    .as_deref()
                    .and_then(|d| serde_json::from_str::<JobResult>(d).ok())
                    .unwrap_or(JobResult {
                        user: item.user_input.clone(),
                        status: String::new(),
                        error: None,
                        note: None,
                        user_id: None,
                        steps: Vec::new(),
                    });
                r.user = item.user_input;
                r.status = if cancelled && (item.status == "pending" || item.status == "running") {
                    "cancelled".into()
                } else {
                    item.status
                };
                r
            })
            .collect();
        Ok(Job {
            id: row.id,
            status: row.status,
            total: row.total,
            done: progress.done,
            failed: progress.failed,
            steps: record.steps,
            reason: record.reason,
            requested_by: record.requested_by,
            created_at: DateTime::from_timestamp_millis(row.created_at).unwrap_or_default(),
            results,
        })
    }

    /// Stops a running job: once this returns, no further Okta call is made for it. A job that
    /// already ended is answered as it is.
    pub async fn cancel(&self, caller: &Caller, id: &str) -> Result<Job, ContainmentError> {
        if !valid_id("job_", id) {
            return Err(ContainmentError::NotFound);
        }
        // Tell the workers first: they drop their in-flight work before the answer goes out.
        // The flag is set even when no worker holds the job yet, so one that starts it now sees
        // it before its first call.
        self.cancel_flag(id);
        let now = self.clock.now();
        let changed = self
            .store
            .set_job_status(id, "running", "cancelled", now.timestamp_millis())
            .await?;
        if !changed {
            // Not running (done, or cancelled before): nothing to stop.
            if let Ok(mut c) = self.cancels.lock() {
                c.remove(id);
            }
        }
        if changed {
            super::audit::record_detail(
                &self.store,
                now,
                caller.into(),
                "job.cancel",
                Some(id),
                true,
                None,
            )
            .await;
        }
        self.get(id, true).await
    }

    fn cancel_flag(&self, id: &str) {
        let mut map = self
            .cancels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = map
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(false).0);
        tx.send_replace(true);
    }

    fn cancel_signal(&self, id: &str) -> watch::Receiver<bool> {
        let mut map = self
            .cancels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(id.to_owned())
            .or_insert_with(|| watch::channel(false).0)
            .subscribe()
    }

    /// The workers: run every running job, oldest first, until `stop`. After a restart the
    /// users that were running when the service stopped run again.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        // Alone on the store (SQLite), items left running were a dead process's: free them at
        // once. With replicas, their leases run out and any replica claims them.
        if self.store.single_writer() {
            match self.store.jobs_with_status("running").await {
                Ok(jobs) => {
                    for job in jobs {
                        if let Err(e) = self.store.free_job_items(&job.id).await {
                            tracing::error!(job = %job.id, error = %e, "cannot free interrupted job items");
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read running jobs"),
            }
        }
        loop {
            match self.store.jobs_with_status("running").await {
                Ok(jobs) => {
                    for job in jobs {
                        if *stop.borrow() {
                            return;
                        }
                        self.run_job(job, stop.clone()).await;
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read running jobs"),
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            }
        }
    }

    async fn run_job(&self, job: JobRow, stop: watch::Receiver<bool>) {
        let record: JobRecord = match serde_json::from_str(&job.record) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(job = %job.id, error = %e, "unreadable job");
                return;
            }
        };
        let caller = Caller {
            id: record.requested_by.id.clone(),
            name: record.requested_by.name.clone(),
            scopes: Vec::new(),
        };
        let cancel = self.cancel_signal(&job.id);
        // A cancel that landed between the read of running jobs and the subscription.
        if matches!(self.store.job(&job.id).await, Ok(Some(j)) if j.status != "running") {
            self.forget(&job.id);
            return;
        }
        let record = Arc::new(record);
        let started = std::time::Instant::now();
        // A cancel answered by another replica reaches this one through the store.
        let watcher = {
            let (this, id) = (self.clone(), job.id.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    if matches!(this.store.job(&id).await, Ok(Some(j)) if j.status != "running") {
                        this.cancel_flag(&id);
                        return;
                    }
                }
            })
        };
        {
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..self.concurrency {
                let (this, record, caller, job_id) =
                    (self.clone(), record.clone(), caller.clone(), job.id.clone());
                let (mut cancel, mut stop) = (cancel.clone(), stop.clone());
                workers.spawn(async move {
                    loop {
                        if *cancel.borrow() || *stop.borrow() {
                            return;
                        }
                        // One user at a time, leased to this process: replicas share a job, and
                        // a dead one's users are claimed again once its leases run out.
                        let now_ms = this.clock.now().timestamp_millis();
                        let claimed = this
                            .store
                            .claim_job_items(&job_id, &this.ctn.owner, now_ms, now_ms + LEASE_MS, 1)
                            .await;
                        let item = match claimed {
                            Ok(mut items) if !items.is_empty() => items.remove(0),
                            Ok(_) => return,
                            Err(e) => {
                                tracing::error!(job = %job_id, error = %e, "cannot claim job items");
                                return;
                            }
                        };
                        let renew = {
                            let (this, job_id, idx) = (this.clone(), job_id.clone(), item.idx);
                            tokio::spawn(async move {
                                loop {
                                    tokio::time::sleep(std::time::Duration::from_millis(
                                        u64::try_from(LEASE_MS / 3).unwrap_or(10_000),
                                    ))
                                    .await;
                                    let now = this.clock.now().timestamp_millis();
                                    let _ = this
                                        .store
                                        .renew_job_item(&job_id, idx, &this.ctn.owner, now + LEASE_MS)
                                        .await;
                                }
                            })
                        };
                        let outcome = tokio::select! {
                            biased;
                            _ = cancel.wait_for(|c| *c) => None,
                            _ = stop.wait_for(|s| *s) => None,
                            r = this.run_user(&caller, &record, &item.user_input) => Some(r),
                        };
                        renew.abort();
                        let Some(result) = outcome else { return };
                        let detail = serde_json::to_string(&result).ok();
                        let _ = this
                            .store
                            .finish_job_item(
                                &job_id,
                                item.idx,
                                &this.ctn.owner,
                                &result.status,
                                detail.as_deref(),
                                this.clock.now().timestamp_millis(),
                            )
                            .await;
                        super::audit::record_detail(
                            &this.store,
                            this.clock.now(),
                            (&caller).into(),
                            "job.user",
                            Some(&match &result.user_id {
                                Some(id) => format!("{id} ({})", result.user),
                                None => result.user.clone(),
                            }),
                            result.status == "done",
                            Some(
                                &json!({"job": job_id, "status": result.status, "error": result.error, "note": result.note, "reason": record.reason})
                                    .to_string(),
                            ),
                        )
                        .await;
                    }
                });
            }
            while workers.join_next().await.is_some() {}
        }
        watcher.abort();
        if *cancel.borrow() {
            self.forget(&job.id);
            return;
        }
        if *stop.borrow() {
            return;
        }
        match self.store.job_progress(&job.id).await {
            Ok(p) if p.open == 0 => {
                let now = self.clock.now();
                if let Ok(true) = self
                    .store
                    .set_job_status(&job.id, "running", "done", now.timestamp_millis())
                    .await
                {
                    tracing::info!(job = %job.id, done = p.done, failed = p.failed, secs = started.elapsed().as_secs_f64(), "bulk job finished");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(job = %job.id, error = %e, "cannot read job progress"),
        }
        self.forget(&job.id);
    }

    fn forget(&self, id: &str) {
        if let Ok(mut c) = self.cancels.lock() {
            c.remove(id);
        }
    }

    async fn run_user(&self, caller: &Caller, record: &JobRecord, input: &str) -> JobResult {
        let mut result = JobResult {
            user: input.to_owned(),
            status: "done".into(),
            error: None,
            note: None,
            user_id: None,
            steps: Vec::new(),
        };
        let mut target = match self.ctn.target(input, false).await {
            Ok(t) => t,
            Err(e) => {
                result.status = "failed".into();
                result.error = Some(e.to_string());
                return result;
            }
        };
        result.user_id = Some(target.id.as_str().to_owned());
        // A member of a protected group needs a person: never acted on in bulk.
        match self.ctn.needs_approval(&target, &[]).await {
            Ok(None) => {}
            Ok(Some(why)) => {
                result.status = "failed".into();
                result.error = Some(format!(
                    "{why}: not acted on in a bulk job; submit a containment for this user"
                ));
                return result;
            }
            Err(e) => {
                result.status = "failed".into();
                result.error = Some(e.to_string());
                return result;
            }
        }
        let mut failed = false;
        for step in &record.steps {
            if failed {
                result.steps.push(StepOutcome::skipped(step.name()));
                continue;
            }
            let (out, _) = self
                .ctn
                .run_step(
                    caller,
                    &mut target,
                    step,
                    record.reason.as_deref(),
                    AlreadyIs::Done,
                )
                .await;
            if out.status == StepStatus::Failed {
                failed = true;
                result.status = "failed".into();
                result.error = out.error.as_ref().map(|e| format!("{}: {e}", step.name()));
            } else if let Some(n) = out
                .note
                .as_deref()
                .filter(|n| n.starts_with("already in that state"))
            {
                result.note = Some(format!("{}: {n}", step.name()));
            }
            result.steps.push(out);
        }
        result
    }
}
