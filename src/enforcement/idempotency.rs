//! `Idempotency-Key`: one mechanism for signal intake and enforcement alike. A key is scoped to
//! the API client; its first answer is stored with a hash of the request, a repeat of the same
//! request is answered from it, and the same key with another request is refused.
//!
//! Signal intake stores its record in the same transaction as the SET (see the store's
//! "accept a signal" unit of work); enforcement stores it once the action has answered.

pub use crate::store::IdempotencyRecord;
use crate::store::{Store, StoreError};

/// What a stored key says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// No answer stored for this key: go ahead.
    Fresh,
    /// The same request was answered before: send this answer again.
    Replay {
        /// Its HTTP status.
        status: u16,
        /// Its body.
        body: String,
    },
    /// The key was used with a different request.
    Mismatch,
}

/// Looks keys up and stores first answers.
#[derive(Debug, Clone)]
pub struct Idempotency {
    store: Store,
}

impl Idempotency {
    /// Over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// What the stored answer for `(client, key)`, if any, means for a request hashing to
    /// `request_hash`.
    pub async fn check(
        &self,
        client: &str,
        key: &str,
        request_hash: &[u8],
    ) -> Result<Check, StoreError> {
        Ok(match self.store.idempotency(client, key).await? {
            None => Check::Fresh,
            Some(rec) if rec.request_hash == request_hash => Check::Replay {
                status: rec.status,
                body: rec.body,
            },
            Some(_) => Check::Mismatch,
        })
    }

    /// Stores a first answer; `false` when the key was already taken (it keeps its first
    /// answer).
    pub async fn put(&self, record: &IdempotencyRecord) -> Result<bool, StoreError> {
        self.store.put_idempotency(record).await
    }
}
