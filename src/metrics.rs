//! Prometheus metrics owned by one application instance (no global recorder), so several apps can
//! live in one process (tests) and each renders only its own numbers.

use std::sync::Arc;

use metrics::{Key, Label, Metadata, Recorder as _};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

const TARGET: &str = "ssf_transmitter";

/// Buckets for request durations, in seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The app's metrics registry.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn metadata() -> Metadata<'static> {
    Metadata::new(TARGET, metrics::Level::INFO, Some(module_path!()))
}

impl Metrics {
    /// A fresh registry with the service's metric descriptions.
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
            DURATION_BUCKETS,
        ) {
            Ok(b) => b,
            // Only fails for an empty bucket list, which ours is not.
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        recorder.describe_counter(
            "http_requests_total".into(),
            None,
            "HTTP requests answered, by route template, method and status".into(),
        );
        recorder.describe_histogram(
            "http_request_duration_seconds".into(),
            Some(metrics::Unit::Seconds),
            "HTTP request latency, by route template and method".into(),
        );
        recorder.describe_counter(
            "ssf_auth_failures_total".into(),
            None,
            "Rejected API calls, by reason (missing_token, invalid_token, insufficient_scope)"
                .into(),
        );
        recorder.describe_gauge(
            "ssf_issuer_keys".into(),
            None,
            "Issuer keys by state (published: next, active, retiring)".into(),
        );
        recorder.describe_counter(
            "ssf_key_reloads_total".into(),
            None,
            "Times the key manifest was reloaded after a change".into(),
        );
        for (name, help) in [
            (
                "ssf_signals_accepted_total",
                "Signals accepted and queued as SETs, by event type",
            ),
            (
                "ssf_signals_unchanged_total",
                "Signals not sent because the level or status was unchanged",
            ),
            ("ssf_sets_delivered_total", "SETs the receiver accepted"),
            (
                "ssf_sets_failed_total",
                "SETs the receiver refused (400), not retried",
            ),
            ("ssf_sets_dead_total", "SETs given up after the max age"),
            (
                "ssf_outbox_pruned_total",
                "Finished SETs deleted after their retention, by status",
            ),
            (
                "ssf_set_retries_total",
                "Delivery attempts that will be retried, by reason",
            ),
        ] {
            recorder.describe_counter(name.into(), None, help.into());
        }
        recorder.describe_gauge(
            "ssf_outbox_sets".into(),
            None,
            "SETs in the outbox by status (queue depth = queued + retrying)".into(),
        );
        recorder.describe_histogram(
            "ssf_delivery_latency_seconds".into(),
            Some(metrics::Unit::Seconds),
            "Time from acceptance to delivery".into(),
        );
        recorder.describe_histogram(
            "ssf_push_request_duration_seconds".into(),
            Some(metrics::Unit::Seconds),
            "Duration of one push request to the receiver".into(),
        );
        Self {
            recorder: Arc::new(recorder),
        }
    }

    /// Counts one HTTP response.
    pub fn http_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let labels = vec![
            Label::new("route", route.to_owned()),
            Label::new("method", method.to_owned()),
        ];
        let mut with_status = labels.clone();
        with_status.push(Label::new("status", status.to_string()));
        self.recorder
            .register_counter(
                &Key::from_parts("http_requests_total", with_status),
                &metadata(),
            )
            .increment(1);
        self.recorder
            .register_histogram(
                &Key::from_parts("http_request_duration_seconds", labels),
                &metadata(),
            )
            .record(seconds);
    }

    /// Counts one rejected call.
    pub fn auth_failure(&self, reason: &'static str) {
        self.recorder
            .register_counter(
                &Key::from_parts(
                    "ssf_auth_failures_total",
                    vec![Label::new("reason", reason)],
                ),
                &metadata(),
            )
            .increment(1);
    }

    /// Publishes the number of keys per published state (`ssf_issuer_keys{state}`).
    pub fn publish_keys(&self, keys: &crate::keys::KeyManager) {
        use crate::keys::KeyState;
        let ring = keys.ring();
        for state in [KeyState::Next, KeyState::Active, KeyState::Retiring] {
            let n = ring.keys().iter().filter(|k| k.info.state == state).count();
            self.issuer_keys(state.as_str(), n);
        }
    }

    /// Sets the number of published keys per state.
    pub fn issuer_keys(&self, state: &'static str, count: usize) {
        self.recorder
            .register_gauge(
                &Key::from_parts("ssf_issuer_keys", vec![Label::new("state", state)]),
                &metadata(),
            )
            .set(count as f64);
    }

    /// How far this process's clock is from the shared database's (positive: ahead).
    pub fn clock_skew(&self, seconds: f64) {
        self.recorder
            .register_gauge(&Key::from_name("ssf_clock_skew_seconds"), &metadata())
            .set(seconds);
    }

    /// Counts a key manifest reload.
    pub fn key_reload(&self) {
        self.recorder
            .register_counter(&Key::from_name("ssf_key_reloads_total"), &metadata())
            .increment(1);
    }

    fn count(&self, name: &'static str, labels: Vec<Label>) {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &metadata())
            .increment(1);
    }

    /// A signal was accepted and queued.
    pub fn signal_accepted(&self, event_type: &str) {
        self.count(
            "ssf_signals_accepted_total",
            vec![Label::new("event_type", event_type.to_owned())],
        );
    }

    /// A signal was suppressed as unchanged.
    pub fn signal_unchanged(&self, event_type: &str) {
        self.count(
            "ssf_signals_unchanged_total",
            vec![Label::new("event_type", event_type.to_owned())],
        );
    }

    /// A SET was queued for `stream` (`okta` or a standard stream's id).
    pub fn set_queued(&self, stream: &str) {
        self.count(
            "ssf_sets_queued_total",
            vec![Label::new("stream", stream.to_owned())],
        );
    }

    /// A SET of `stream` was delivered (202, or acknowledged by a poller); `seconds` from
    /// acceptance to delivery.
    pub fn set_delivered(&self, stream: &str, seconds: f64) {
        let labels = vec![Label::new("stream", stream.to_owned())];
        self.count("ssf_sets_delivered_total", labels.clone());
        self.recorder
            .register_histogram(
                &Key::from_parts("ssf_delivery_latency_seconds", labels),
                &metadata(),
            )
            .record(seconds);
    }

    /// A SET of `stream` was refused by its receiver.
    pub fn set_failed(&self, stream: &str) {
        self.count(
            "ssf_sets_failed_total",
            vec![Label::new("stream", stream.to_owned())],
        );
    }

    /// A SET of `stream` was given up.
    pub fn set_dead(&self, stream: &str) {
        self.count(
            "ssf_sets_dead_total",
            vec![Label::new("stream", stream.to_owned())],
        );
    }

    /// An attempt will be retried; `reason` is `rate_limited`, `server_error`, `timeout`, `network` or `client_error`.
    pub fn set_retry(&self, stream: &str, reason: &'static str) {
        self.count(
            "ssf_set_retries_total",
            vec![
                Label::new("stream", stream.to_owned()),
                Label::new("reason", reason),
            ],
        );
    }

    /// One push attempt to `stream` took `seconds`.
    pub fn push_attempt(&self, stream: &str, seconds: f64) {
        self.recorder
            .register_histogram(
                &Key::from_parts(
                    "ssf_push_request_duration_seconds",
                    vec![Label::new("stream", stream.to_owned())],
                ),
                &metadata(),
            )
            .record(seconds);
    }

    /// A receiver's state: `ssf_receiver_up{stream}` (1 or 0) and, while down,
    /// `ssf_receiver_down_since_seconds{stream}` (UNIX time; 0 while up).
    pub fn receiver_state(&self, stream: &str, down_since_ms: Option<i64>) {
        let labels = vec![Label::new("stream", stream.to_owned())];
        self.recorder
            .register_gauge(
                &Key::from_parts("ssf_receiver_up", labels.clone()),
                &metadata(),
            )
            .set(if down_since_ms.is_some() { 0.0 } else { 1.0 });
        self.recorder
            .register_gauge(
                &Key::from_parts("ssf_receiver_down_since_seconds", labels),
                &metadata(),
            )
            .set(down_since_ms.map_or(0.0, |ms| ms as f64 / 1000.0));
    }

    /// SETs per status (`ssf_outbox_sets{status}`), for every status given.
    pub fn outbox_counts(&self, counts: &[(&'static str, i64)]) {
        for (status, n) in counts {
            self.outbox(status, *n);
        }
    }

    /// Counts SETs deleted by pruning, per status (`ssf_outbox_pruned_total{status}`).
    pub fn outbox_pruned(&self, pruned: &[(&'static str, u64)]) {
        for &(status, n) in pruned {
            self.recorder
                .register_counter(
                    &Key::from_parts(
                        "ssf_outbox_pruned_total",
                        vec![Label::new("status", status)],
                    ),
                    &metadata(),
                )
                .increment(n);
        }
    }

    /// SETs per status.
    pub fn outbox(&self, status: &'static str, count: i64) {
        self.recorder
            .register_gauge(
                &Key::from_parts("ssf_outbox_sets", vec![Label::new("status", status)]),
                &metadata(),
            )
            .set(count as f64);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }
}
