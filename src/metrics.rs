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

    /// Sets the number of published keys per state.
    pub fn issuer_keys(&self, state: &'static str, count: usize) {
        self.recorder
            .register_gauge(
                &Key::from_parts("ssf_issuer_keys", vec![Label::new("state", state)]),
                &metadata(),
            )
            .set(count as f64);
    }

    /// Counts a key manifest reload.
    pub fn key_reload(&self) {
        self.recorder
            .register_counter(&Key::from_name("ssf_key_reloads_total"), &metadata())
            .increment(1);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }
}
