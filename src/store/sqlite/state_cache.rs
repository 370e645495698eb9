//! The subjects' last states as SQLite last committed them, kept in memory.
//!
//! On SQLite one process writes the file (the writer lock), and every write of `subject_state`
//! goes through its group writer. So the writer can keep what it committed: after each group's
//! commit, in the group's order, it records every new state and every state it forgot (a failed
//! or dead SET's), and the intake reads the state from here instead of asking the database
//! (a pool connection and a statement on the connection's thread per signal).
//!
//! Only the writer fills the cache, and only after a commit: a read never caches what it read,
//! so a read racing a forget cannot bring a forgotten state back. At start, when every
//! committed state fits, all are loaded and a miss means "no state"; otherwise (or once one was
//! evicted, or the cache cleared) what the cache does not hold is read from the database.
//! Bounded: the least recently used entries go first.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use hashlink::LruCache;

use crate::store::SubjectState;

/// Entries kept by default: ~200 bytes each, so about 13 MiB when full.
pub(super) const DEFAULT_CAPACITY: usize = 65_536;

/// `Some(None)` from [`StateCache::get`]: the subject is known to have no state.
pub(super) struct StateCache {
    entries: Mutex<LruCache<String, Option<SubjectState>>>,
    /// Every committed state is in `entries`: all of them were loaded at start, and nothing was
    /// evicted or cleared since. A subject missing then has no state, and no read asks the
    /// database (most often a subject's first signal).
    complete: AtomicBool,
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
            complete: AtomicBool::new(false),
        }
    }

    /// Whether every committed state fits: loads them all then, at start.
    pub(super) fn fits(&self, rows: u64) -> bool {
        self.entries
            .lock()
            .is_ok_and(|e| u64::try_from(e.capacity()).is_ok_and(|c| rows <= c))
    }

    /// Loads every committed state (read after the migrations, before the service serves) and
    /// from then on answers a miss as "no state". Only into an empty cache: a state the writer
    /// applied meanwhile may be newer than what was read, and then the cache stays partial.
    pub(super) fn load_all(&self, states: Vec<(String, SubjectState)>) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if !entries.is_empty() || states.len() > entries.capacity() {
            return;
        }
        for (k, st) in states {
            entries.insert(k, Some(st));
        }
        self.complete.store(true, Ordering::Release);
    }

    /// `None`: not cached (read the database). `Some(state)`: what was last committed.
    pub(super) fn get(
        &self,
        stream_id: &str,
        kind: &str,
        subject_key: &str,
    ) -> Option<Option<SubjectState>> {
        let k = key(stream_id, kind, subject_key);
        let mut entries = self.entries.lock().ok()?;
        match entries.get(&k) {
            Some(state) => Some(state.clone()),
            None if self.complete.load(Ordering::Acquire) => Some(None),
            None => None,
        }
    }

    /// Applies a committed group's changes, in the order it made them.
    pub(super) fn apply(&self, changes: Vec<StateChange>) {
        if changes.is_empty() {
            return;
        }
        match self.entries.lock() {
            Ok(mut entries) => {
                for c in changes {
                    if entries.len() >= entries.capacity() && !entries.contains_key(&c.key) {
                        // The least recently used state goes: a miss may be a state again.
                        self.complete.store(false, Ordering::Release);
                    }
                    entries.insert(c.key, c.state);
                }
            }
            // A writer panicked mid-update: trust nothing cached.
            Err(poisoned) => {
                self.complete.store(false, Ordering::Release);
                let mut entries = poisoned.into_inner();
                entries.clear();
                self.entries.clear_poison();
            }
        }
    }

    /// Forgets everything (a group failed to commit: the database is the only truth).
    pub(super) fn clear(&self) {
        self.complete.store(false, Ordering::Release);
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

    fn loaded(v: &str, jti: &str) -> SubjectState {
        SubjectState {
            value: v.into(),
            jti: Some(jti.into()),
        }
    }

    fn st(v: &str, jti: &str) -> Option<SubjectState> {
        Some(loaded(v, jti))
    }

    #[test]
    fn a_complete_cache_answers_a_miss_as_no_state_until_it_evicts_or_clears() {
        let c = StateCache::new(2);
        assert!(c.fits(2) && !c.fits(3));
        c.load_all(vec![(key("okta", "user-risk", "a"), loaded("high", "j1"))]);
        assert_eq!(c.get("okta", "user-risk", "a"), Some(st("high", "j1")));
        assert_eq!(c.get("okta", "user-risk", "new"), Some(None));
        // Full at two: a third evicts one, and a miss is a question for the database again.
        c.apply(vec![StateChange {
            key: key("okta", "user-risk", "b"),
            state: st("low", "j2"),
        }]);
        assert_eq!(c.get("okta", "user-risk", "new"), Some(None));
        c.apply(vec![StateChange {
            key: key("okta", "user-risk", "c"),
            state: st("low", "j3"),
        }]);
        assert_eq!(c.get("okta", "user-risk", "new"), None);

        let c = StateCache::new(4);
        c.load_all(Vec::new());
        assert_eq!(c.get("okta", "user-risk", "x"), Some(None));
        c.clear();
        assert_eq!(c.get("okta", "user-risk", "x"), None);

        // Loaded only into an empty cache: what the writer applied first may be newer.
        let c = StateCache::new(4);
        c.apply(vec![StateChange {
            key: key("okta", "user-risk", "a"),
            state: st("low", "j9"),
        }]);
        c.load_all(vec![(key("okta", "user-risk", "a"), loaded("high", "j1"))]);
        assert_eq!(c.get("okta", "user-risk", "a"), Some(st("low", "j9")));
        assert_eq!(c.get("okta", "user-risk", "x"), None);
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
