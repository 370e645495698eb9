//! Whether a stream's receiver is reachable, from what its pushes see.
//!
//! A receiver is **down** once [`DOWN_AFTER`] pushes in a row, to at least two subjects, failed
//! the way an outage fails — no connection, a timeout, a 5xx. Then no SET waits out a back-off of
//! its own: the worker stops claiming by schedule and sends one SET at a time as a probe, first
//! after the initial back-off, then at doubling intervals up to `probe_max_secs`. The first push
//! that gets an answer of the receiver's own (2xx, or a 4xx about that SET) brings it back **up**,
//! and the worker makes every waiting SET due at once. A 5xx while other pushes succeed is one
//! SET's trouble and keeps that SET's back-off.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use utoipa::ToSchema;

/// Outage-like failures in a row (across at least two subjects) that mark a receiver down.
pub const DOWN_AFTER: u32 = 3;

/// What one push said about the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// It answered for itself: 2xx, or a 4xx (a refusal, a rate limit).
    Answered,
    /// No connection, a timeout or a 5xx.
    Unreachable,
}

/// A change of a receiver's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It went down.
    Down,
    /// It is back.
    Up,
}

/// A receiver's state, as the API and the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReceiverStatus {
    /// `okta` or a standard stream's id.
    pub stream: String,
    /// `up` or `down`.
    #[schema(example = "up")]
    pub state: String,
    /// When it went down (RFC 3339), while down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_since: Option<String>,
    /// When the next probe goes out (RFC 3339), while down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_probe_at: Option<String>,
    /// Outage-like failures in a row.
    pub consecutive_failures: u32,
}

/// The state machine of one receiver (times in ms, passed in).
#[derive(Debug, Clone)]
pub struct Reach {
    consecutive: u32,
    subjects: HashSet<String>,
    down: Option<Down>,
    initial_ms: i64,
    max_ms: i64,
}

#[derive(Debug, Clone, Copy)]
struct Down {
    since_ms: i64,
    interval_ms: i64,
    next_probe_ms: i64,
    probing: bool,
}

impl Reach {
    /// Up, probing from `initial_ms` up to `max_ms` once down.
    pub fn new(initial_ms: u64, max_ms: u64) -> Self {
        let max_ms = i64::try_from(max_ms).unwrap_or(i64::MAX).max(1);
        Self {
            consecutive: 0,
            subjects: HashSet::new(),
            down: None,
            initial_ms: i64::try_from(initial_ms)
                .unwrap_or(i64::MAX)
                .clamp(1, max_ms),
            max_ms,
        }
    }

    /// Whether the receiver is down.
    pub fn is_down(&self) -> bool {
        self.down.is_some()
    }

    /// While down: `Some(wait_ms)` until the next probe may go (0: now); `None` when up or a
    /// probe is out.
    pub fn probe_in(&self, now_ms: i64) -> Option<i64> {
        self.down
            .filter(|d| !d.probing)
            .map(|d| d.next_probe_ms.saturating_sub(now_ms).max(0))
    }

    /// A probe went out.
    pub fn probe_sent(&mut self) {
        if let Some(d) = &mut self.down {
            d.probing = true;
        }
    }

    /// No SET was there to probe with: try again at the next interval.
    pub fn probe_skipped(&mut self, now_ms: i64) {
        if let Some(d) = &mut self.down {
            d.probing = false;
            d.next_probe_ms = now_ms.saturating_add(d.interval_ms);
        }
    }

    /// Takes a push's outcome (about `subject`; `probe` when it was the probe).
    pub fn observe(
        &mut self,
        seen: Seen,
        subject: &str,
        probe: bool,
        now_ms: i64,
    ) -> Option<Change> {
        match seen {
            Seen::Answered => {
                self.consecutive = 0;
                self.subjects.clear();
                self.down.take().map(|_| Change::Up)
            }
            Seen::Unreachable => {
                self.consecutive = self.consecutive.saturating_add(1);
                if self.subjects.len() < 2 {
                    self.subjects.insert(subject.to_owned());
                }
                match &mut self.down {
                    Some(d) => {
                        if probe {
                            d.probing = false;
                            d.interval_ms = d.interval_ms.saturating_mul(2).min(self.max_ms);
                            d.next_probe_ms = now_ms.saturating_add(d.interval_ms);
                        }
                        None
                    }
                    None if self.consecutive >= DOWN_AFTER && self.subjects.len() >= 2 => {
                        self.down = Some(Down {
                            since_ms: now_ms,
                            interval_ms: self.initial_ms,
                            next_probe_ms: now_ms.saturating_add(self.initial_ms),
                            probing: false,
                        });
                        Some(Change::Down)
                    }
                    None => None,
                }
            }
        }
    }

    /// The state as shown.
    pub fn status(&self, stream: &str) -> ReceiverStatus {
        let at = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        };
        ReceiverStatus {
            stream: stream.to_owned(),
            state: if self.down.is_some() { "down" } else { "up" }.to_owned(),
            down_since: self.down.and_then(|d| at(d.since_ms)),
            next_probe_at: self.down.and_then(|d| at(d.next_probe_ms)),
            consecutive_failures: self.consecutive,
        }
    }

    /// When it went down (ms), while down.
    pub fn down_since_ms(&self) -> Option<i64> {
        self.down.map(|d| d.since_ms)
    }
}

/// Every running worker's receiver state, for the API.
#[derive(Debug, Clone, Default)]
pub struct Receivers(Arc<Mutex<BTreeMap<String, ReceiverStatus>>>);

impl Receivers {
    /// Records `status` for its stream.
    pub fn set(&self, status: ReceiverStatus) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(status.stream.clone(), status);
    }

    /// Forgets a stream whose worker stopped.
    pub fn remove(&self, stream: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(stream);
    }

    /// Every receiver with a running worker, by stream.
    pub fn all(&self) -> Vec<ReceiverStatus> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_after_three_outage_failures_across_two_subjects() {
        let mut r = Reach::new(100, 1000);
        assert_eq!(r.observe(Seen::Unreachable, "a", false, 0), None);
        assert_eq!(r.observe(Seen::Unreachable, "a", false, 1), None);
        assert_eq!(
            r.observe(Seen::Unreachable, "a", false, 2),
            None,
            "one subject: its own back-off"
        );
        assert_eq!(
            r.observe(Seen::Unreachable, "b", false, 3),
            Some(Change::Down)
        );
        assert!(r.is_down());
        assert_eq!(r.probe_in(3), Some(100));
        assert_eq!(r.probe_in(200), Some(0));
    }

    #[test]
    fn a_success_between_failures_keeps_it_up() {
        let mut r = Reach::new(100, 1000);
        r.observe(Seen::Unreachable, "a", false, 0);
        r.observe(Seen::Unreachable, "b", false, 1);
        r.observe(Seen::Answered, "c", false, 2);
        assert_eq!(r.observe(Seen::Unreachable, "d", false, 3), None);
        assert!(!r.is_down());
    }

    #[test]
    fn probes_back_off_to_the_cap_and_an_answer_brings_it_up() {
        let mut r = Reach::new(100, 350);
        for (i, s) in ["a", "b", "c"].iter().enumerate() {
            r.observe(Seen::Unreachable, s, false, i as i64);
        }
        let mut now = 2;
        let mut waits = Vec::new();
        for _ in 0..4 {
            now += r.probe_in(now).expect("down");
            r.probe_sent();
            assert_eq!(r.probe_in(now), None, "one probe at a time");
            r.observe(Seen::Unreachable, "a", true, now);
            waits.push(r.probe_in(now).expect("still down"));
        }
        assert_eq!(waits, vec![200, 350, 350, 350]);
        // A failure of a push that was not the probe does not move the schedule.
        r.observe(Seen::Unreachable, "x", false, now);
        assert_eq!(r.probe_in(now), Some(350));
        assert_eq!(
            r.observe(Seen::Answered, "a", true, now + 1),
            Some(Change::Up)
        );
        assert!(!r.is_down());
        assert_eq!(r.status("okta").state, "up");
    }
}
