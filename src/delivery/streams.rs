//! Push delivery to standard streams: one delivery worker per enabled push stream, each claiming
//! only its stream's SETs from the shared outbox (so order per subject, retries, back-off, dead
//! letter and replica claims work as for Okta). The supervisor follows the streams: a new or
//! re-enabled stream gets a worker, a paused, disabled or deleted one loses it (a paused
//! stream's SETs wait in order), and a changed endpoint or authorization header restarts it.
//! Connections go through the SSRF guard: a receiver host that resolves to a forbidden address
//! is refused at connect time too.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret as _;
use tokio::sync::watch;

use super::{PushTarget, Worker, http_client_builder};
use crate::clock::Clock;
use crate::config::DeliveryConfig;
use crate::ids::Ids;
use crate::metrics::Metrics;
use crate::signals::streams::config::Streams;
use crate::signals::streams::endpoint::{AllowPrivate, guard};
use crate::store::Store;

/// How long after a stream stops taking events its queue is swept again: longer than an intake
/// (which chose its streams before the change) takes to commit.
const SETTLE: Duration = Duration::from_secs(5);

/// What the supervisor needs to start workers.
#[derive(Clone)]
pub struct StreamWorkers {
    streams: Streams,
    store: Store,
    http: reqwest::Client,
    config: DeliveryConfig,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn Ids>,
    metrics: Metrics,
    receivers: super::reach::Receivers,
}

impl std::fmt::Debug for StreamWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWorkers").finish_non_exhaustive()
    }
}

struct Running {
    endpoint: String,
    authorization: Option<String>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl StreamWorkers {
    /// Workers for `streams`' push streams, with the delivery settings and a guarded HTTP
    /// client (no redirects, no proxy, forbidden addresses refused when resolving).
    pub fn new(
        streams: Streams,
        store: Store,
        config: DeliveryConfig,
        allow: &AllowPrivate,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn Ids>,
        metrics: Metrics,
    ) -> reqwest::Result<Self> {
        let http = guard(http_client_builder(&config), allow).build()?;
        Ok(Self {
            streams,
            store,
            http,
            config,
            clock,
            ids,
            metrics,
            receivers: super::reach::Receivers::default(),
        })
    }

    /// Shows each stream receiver's state in `receivers`.
    #[must_use]
    pub fn reporting_to(mut self, receivers: super::reach::Receivers) -> Self {
        self.receivers = receivers;
        self
    }

    /// Follows the streams until `stop` turns true (on a change here at once, and every
    /// `poll` for changes other replicas made); then stops every worker, letting in-flight
    /// pushes finish for up to `grace`.
    pub async fn run(self, mut stop: watch::Receiver<bool>, poll: Duration, grace: Duration) {
        let changed = self.streams.changed();
        let mut running: HashMap<String, Running> = HashMap::new();
        let mut taking: Option<HashSet<String>> = None;
        let mut gone: Vec<(String, Instant)> = Vec::new();
        loop {
            if *stop.borrow() {
                break;
            }
            match self.streams.push_targets().await {
                Ok(targets) => self.reconcile(&mut running, targets, grace),
                Err(e) => tracing::warn!(error = %e, "cannot read the streams; retrying"),
            }
            self.sweep(&mut taking, &mut gone).await;
            tokio::select! {
                () = changed.notified() => {}
                () = tokio::time::sleep(poll) => {}
                r = stop.changed() => if r.is_err() { break },
            }
        }
        let tasks: Vec<_> = running
            .into_values()
            .map(|r| {
                let _ = r.stop.send(true);
                r.task
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }

    /// An intake that chose its streams just before one was disabled or deleted may commit a
    /// SET for it after the stream dropped what it held. Streams that stopped taking events
    /// (here or on another replica) are remembered and, once such intakes are over
    /// ([`SETTLE`] later), dropped from again, so a disabled stream holds nothing and a
    /// deleted one leaves nothing waiting.
    async fn sweep(&self, taking: &mut Option<HashSet<String>>, gone: &mut Vec<(String, Instant)>) {
        match self.streams.routes().await {
            Ok(routes) => {
                let now: HashSet<String> = routes.ids().map(str::to_owned).collect();
                if let Some(before) = taking.as_ref() {
                    gone.extend(
                        before
                            .difference(&now)
                            .map(|id| (id.clone(), Instant::now())),
                    );
                }
                *taking = Some(now);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the streams; retrying"),
        }
        let mut keep = Vec::new();
        for (id, since) in gone.drain(..) {
            let live = taking.as_ref().is_some_and(|t| t.contains(&id));
            if live || since.elapsed() < SETTLE {
                if !live {
                    keep.push((id, since));
                }
                continue;
            }
            match self.store.drop_pending(&id).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    stream = %id,
                    dropped = n,
                    "dropped SETs queued as the stream was disabled or deleted"
                ),
                Err(e) => {
                    tracing::warn!(stream = %id, error = %e, "cannot drop a stream's SETs; retrying");
                    keep.push((id, since));
                }
            }
        }
        *gone = keep;
    }

    fn reconcile(
        &self,
        running: &mut HashMap<String, Running>,
        targets: Vec<PushTarget>,
        grace: Duration,
    ) {
        let wanted: HashMap<&str, &PushTarget> =
            targets.iter().map(|t| (t.stream_id.as_str(), t)).collect();
        running.retain(|id, r| {
            let same = wanted.get(id.as_str()).is_some_and(|t| {
                t.endpoint == r.endpoint
                    && t.authorization.as_ref().map(|a| a.expose_secret())
                        == r.authorization.as_deref()
            });
            if !same {
                tracing::info!(stream = %id, "stream delivery worker stopping");
                let _ = r.stop.send(true);
            }
            same
        });
        for t in targets {
            if running.contains_key(&t.stream_id) {
                continue;
            }
            let (stop_tx, stop_rx) = watch::channel(false);
            let worker = Worker::new(
                self.store.clone(),
                self.http.clone(),
                t.clone(),
                self.config.clone(),
                self.clock.clone(),
                self.ids.clone(),
                self.streams.waker(&t.stream_id),
                self.metrics.clone(),
            )
            .reporting_to(self.receivers.clone());
            let task = tokio::spawn(worker.run(stop_rx, grace));
            running.insert(
                t.stream_id.clone(),
                Running {
                    endpoint: t.endpoint.clone(),
                    authorization: t
                        .authorization
                        .as_ref()
                        .map(|a| a.expose_secret().to_owned()),
                    stop: stop_tx,
                    task,
                },
            );
        }
    }
}
