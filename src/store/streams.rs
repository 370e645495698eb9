//! Stored SSF streams (see migration 0011).

/// One stream as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRow {
    /// Transmitter-chosen id.
    pub stream_id: String,
    /// The API client that owns it.
    pub client_id: String,
    /// `enabled`, `paused` or `disabled`.
    pub status: String,
    /// Created, ms.
    pub created_at: i64,
    /// Last changed, ms.
    pub updated_at: i64,
    /// Everything else, JSON (the streams module owns its shape).
    pub record: String,
}
