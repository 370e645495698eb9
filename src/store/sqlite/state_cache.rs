//! The subjects' last states as SQLite last committed them, kept in memory.
//!
//! On SQLite one process writes the file (the writer lock), and every write of `subject_state`
//! goes through its group writer. So the writer can keep what it committed: after each group's
//! commit, in the group's order, it records every new state and every state it forgot (a failed
//! or dead SET's), and the intake reads the state from here instead of asking the database
//! (a pool connection and a statement on the connection's thread per signal).
//!
//! Only the writer fills the cache, and only after a commit: a read never caches what it read,
//! so a read racing a forget cannot bring a forgotten state back. What the cache does not hold
//! (a subject not written since start, or evicted) is read from the database. Bounded: the
//! least recently used entries go first.

use std::sync::Mutex;

use hashlink::LruCache;

use crate::store::SubjectState;

/// Entries kept by default: ~200 bytes each, so about 13 MiB when full.
pub(super) const DEFAULT_CAPACITY: usize = 65_536;

/// `Some(None)` from [`StateCache::get`]: the subject is known to have no state.
pub(super) struct StateCache {
    entries: Mutex<LruCache<String, Option<SubjectState>>>,
}

/// One change a committed group made, to apply in order.
#[derive(Debug)]
pub(super) struct StateChange {
    pub(super) key: String,
    pub(super) state: Option<SubjectState>,
}

pub(super) fn key(stream_id: &str, kind: &str, subject_key: &str) -> String {
    // Unit separators: none of the parts can hold one (stream ids are UUIDs or `okta`, kinds
    // are fixed, subject keys are validated identifiers), so the key is unambiguous.
    format!("{stream_id}\u{1f}{kind}\u{1f}{subject_key}")
}

impl StateCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(capacity.max(1))),
        }
    }

    /// `None`: not cached (read the database). `Some(state)`: what was last committed.
    pub(super) fn get(
        &self,
        stream_id: &str,
        kind: &str,
        subject_key: &str,
    ) -> Option<Option<SubjectState>> {
        let k = key(stream_id, kind, subject_key);
        self.entries.lock().ok()?.get(&k).cloned()
    }

    /// Applies a committed group's changes, in the order it made them.
    pub(super) fn apply(&self, changes: Vec<StateChange>) {
        if changes.is_empty() {
            return;
        }
        match self.entries.lock() {
            Ok(mut entries) => {
                for c in changes {
                    entries.insert(c.key, c.state);
                }
            }
            // A writer panicked mid-update: trust nothing cached.
            Err(poisoned) => {
                let mut entries = poisoned.into_inner();
                entries.clear();
                self.entries.clear_poison();
            }
        }
    }

    /// Forgets everything (a group failed to commit: the database is the only truth).
    pub(super) fn clear(&self) {
        match self.entries.lock() {
            Ok(mut e) => e.clear(),
            Err(poisoned) => {
                poisoned.into_inner().clear();
                self.entries.clear_poison();
            }
        }
    }
}

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.entries.lock().map(|e| e.len()).unwrap_or_default();
        f.debug_struct("StateCache").field("entries", &len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(v: &str, jti: &str) -> Option<SubjectState> {
        Some(SubjectState {
            value: v.into(),
            jti: Some(jti.into()),
        })
    }

    #[test]
    fn keeps_the_last_committed_state_and_known_absence_and_evicts_the_oldest() {
        let c = StateCache::new(2);
        assert!(c.get("okta", "user-risk", "a").is_none());
        c.apply(vec![
            StateChange {
                key: key("okta", "user-risk", "a"),
                state: st("high", "j1"),
            },
            StateChange {
                key: key("okta", "user-risk", "a"),
                state: st("low", "j2"),
            },
        ]);
        assert_eq!(c.get("okta", "user-risk", "a"), Some(st("low", "j2")));
        // Forgotten: known to have no state, without a database read.
        c.apply(vec![StateChange {
            key: key("okta", "user-risk", "a"),
            state: None,
        }]);
        assert_eq!(c.get("okta", "user-risk", "a"), Some(None));
        // Parts cannot run into each other.
        assert!(c.get("okta", "user-risk\u{1f}a", "").is_none());
        c.apply(vec![
            StateChange {
                key: key("s", "user-risk", "b"),
                state: st("high", "j3"),
            },
            StateChange {
                key: key("s", "user-risk", "c"),
                state: st("high", "j4"),
            },
        ]);
        assert!(c.get("okta", "user-risk", "a").is_none(), "evicted");
        assert_eq!(c.get("s", "user-risk", "c"), Some(st("high", "j4")));
        c.clear();
        assert!(c.get("s", "user-risk", "c").is_none());
    }
}
