//! Types of the signal outbox, per-subject state and idempotency records.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Delivery status of one SET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Accepted, waiting for its first attempt (or in flight).
    Queued,
    /// An attempt failed in a way worth retrying; waiting for the next one.
    Retrying,
    /// The receiver accepted it (202).
    Delivered,
    /// The receiver refused it (400): not retried; `last_err`/`last_description` say why.
    Failed,
    /// Not delivered within the max age: given up.
    Dead,
}

impl DeliveryStatus {
    /// `(status name, count)` for every status, 0 where `counts` has none.
    pub fn zero_filled(counts: &[(DeliveryStatus, i64)]) -> Vec<(&'static str, i64)> {
        DeliveryStatus::ALL
            .iter()
            .map(|status| {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == status)
                    .map_or(0, |(_, n)| *n);
                (status.as_str(), n)
            })
            .collect()
    }

    /// Every status.
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Queued,
        DeliveryStatus::Retrying,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::Dead,
    ];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Dead => "dead",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A signed SET to store.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    /// Its `jti`.
    pub jti: String,
    /// Receiver.
    pub stream_id: String,
    /// Per-subject FIFO key.
    pub subject_key: String,
    /// Subject JSON.
    pub subject: String,
    /// Event short name.
    pub event_type: String,
    /// Compact JWS.
    pub set_jwt: String,
    /// Sending API client.
    pub client: String,
    /// `kid` of the signing key.
    pub kid: String,
    /// Acceptance time, ms.
    pub now_ms: i64,
}

/// The new last value of a subject.
#[derive(Debug, Clone)]
pub struct StateUpdate {
    /// Receiver.
    pub stream_id: String,
    /// `user-risk`, `device-risk`, `device-compliance`.
    pub kind: String,
    /// State key.
    pub subject_key: String,
    /// New value.
    pub value: String,
    /// The SET that carried it.
    pub jti: Option<String>,
    /// When, ms.
    pub now_ms: i64,
}

/// A stored response for an Idempotency-Key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// API client.
    pub client: String,
    /// The key.
    pub key: String,
    /// SHA-256 of method, path and body.
    pub request_hash: Vec<u8>,
    /// HTTP status of the first response.
    pub status: u16,
    /// Body of the first response.
    pub body: String,
    /// When, ms.
    pub created_at: i64,
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Acceptance order.
    pub seq: i64,
    /// `jti`.
    pub jti: String,
    /// Receiver.
    pub stream_id: String,
    /// FIFO key.
    pub subject_key: String,
    /// Subject JSON.
    pub subject: String,
    /// Event short name.
    pub event_type: String,
    /// Compact JWS.
    pub set_jwt: String,
    /// Sending client.
    pub client: String,
    /// Status.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i64,
    /// Accepted, ms.
    pub created_at: i64,
    /// Queued (or re-queued), ms.
    pub queued_at: i64,
    /// Next attempt not before, ms.
    pub next_attempt_at: i64,
    /// Last change, ms.
    pub updated_at: i64,
    /// Delivered, ms.
    pub delivered_at: Option<i64>,
    /// Last HTTP status from the receiver.
    pub last_http_status: Option<i64>,
    /// The receiver's `err`.
    pub last_err: Option<String>,
    /// The receiver's `description`.
    pub last_description: Option<String>,
    /// Our description of the last failure.
    pub last_error: Option<String>,
    /// Since when the receiver has refused this SET's signature or issuer (ms), while such
    /// refusals are being retried.
    pub verify_failing_since: Option<i64>,
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Accepted by the receiver.
    Delivered {
        /// HTTP status.
        http_status: u16,
    },
    /// Refused for good.
    Failed {
        /// HTTP status.
        http_status: u16,
        /// `err`.
        err: Option<String>,
        /// `description`.
        description: Option<String>,
        /// Our words.
        error: String,
    },
    /// Try again at `next_attempt_at`.
    Retry {
        /// HTTP status, when there was a response.
        http_status: Option<u16>,
        /// The receiver's `err`, when it gave one.
        err: Option<String>,
        /// The receiver's `description`, when it gave one.
        description: Option<String>,
        /// Our words.
        error: String,
        /// When, ms.
        next_attempt_at: i64,
        /// The receiver refused the signature or issuer (a key rotation or provider activation
        /// it has not caught up with): starts the `verify_retry_secs` window if none is running.
        verify_failure: bool,
    },
    /// Given up.
    Dead {
        /// HTTP status, when there was a response.
        http_status: Option<u16>,
        /// Our words.
        error: String,
    },
}

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Delivered SETs removed.
    pub delivered: u64,
    /// Failed SETs removed.
    pub failed: u64,
    /// Dead SETs removed.
    pub dead: u64,
}

/// The last value of a subject and the SET that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectState {
    /// The value (risk level, compliance status).
    pub value: String,
    /// The SET that carried it, when one did.
    pub jti: Option<String>,
}

/// Filter for listing SETs.
#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    /// Only this status.
    pub status: Option<DeliveryStatus>,
    /// Only this subject key.
    pub subject_key: Option<String>,
    /// Only rows with `seq` below this (newest first paging).
    pub before_seq: Option<i64>,
    /// At most this many.
    pub limit: u32,
}
