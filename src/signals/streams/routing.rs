//! Which standard streams a signal goes to: those not disabled whose `events_delivered` has the
//! event's standard type and whose subjects (SSF §8.1.3) take its subject.
//!
//! Intake asks for every signal, so the answer comes from memory: a copy of every stream and
//! its subject list, indexed by subject member, tagged with the store's stream generation and
//! reloaded when that has moved (a change here or on another replica).

use std::collections::HashMap;

use crate::set::Subject;

use super::config::DefaultSubjects;

/// One stream as routing sees it.
#[derive(Debug, Clone)]
pub struct Route {
    /// The stream.
    pub stream_id: String,
    /// The `aud` of its SETs.
    pub aud: String,
    /// SETs carry the subject inside the event too (pre-1.0 form).
    pub subject_in_event: bool,
    events: Vec<String>,
    default_subjects: DefaultSubjects,
    /// Subjects listed on the stream, by each of their members' keys (`user=…`, `device=…`):
    /// (subject, added?).
    listed: HashMap<String, Vec<(Subject, bool)>>,
}

fn member_keys(subject: &Subject) -> impl Iterator<Item = String> + '_ {
    let user = subject
        .user
        .as_ref()
        .map(|u| format!("user={}", u.canonical()));
    let device = subject
        .device
        .as_ref()
        .map(|d| format!("device={}", d.canonical()));
    user.into_iter().chain(device)
}

/// SSF §8.1.3.1: every member both have is the same identifier, and they share one at least
/// (the spec's wildcard rule, without its vacuous match of subjects that share nothing).
pub fn subjects_match(a: &Subject, b: &Subject) -> bool {
    let pairs = [(&a.user, &b.user), (&a.device, &b.device)];
    let shared = pairs
        .iter()
        .filter(|(x, y)| x.is_some() && y.is_some())
        .count();
    shared > 0
        && pairs.iter().all(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => x.canonical() == y.canonical(),
            _ => true,
        })
}

impl Route {
    /// A stream with its event types delivered and its listed subjects: (subject, added?).
    pub(super) fn new(
        stream_id: String,
        aud: String,
        subject_in_event: bool,
        events: Vec<String>,
        default_subjects: DefaultSubjects,
        subjects: Vec<(Subject, bool)>,
    ) -> Self {
        let mut listed: HashMap<String, Vec<(Subject, bool)>> = HashMap::new();
        for (subject, added) in subjects {
            for key in member_keys(&subject) {
                listed
                    .entry(key)
                    .or_default()
                    .push((subject.clone(), added));
            }
        }
        Self {
            stream_id,
            aud,
            subject_in_event,
            events,
            default_subjects,
            listed,
        }
    }

    /// Whether the stream delivers events of (standard) type `uri`.
    pub fn wants(&self, uri: &str) -> bool {
        self.events.iter().any(|e| e == uri)
    }

    /// Whether the stream carries events about `subject`: with `default_subjects` ALL unless a
    /// removed subject matches it, with NONE only when an added one does (and none removed).
    pub fn delivers_to(&self, subject: &Subject) -> bool {
        let mut added = false;
        let mut removed = false;
        for key in member_keys(subject) {
            for (listed, is_added) in self.listed.get(&key).into_iter().flatten() {
                if subjects_match(listed, subject) {
                    if *is_added {
                        added = true;
                    } else {
                        removed = true;
                    }
                }
            }
        }
        match self.default_subjects {
            DefaultSubjects::All => !removed,
            DefaultSubjects::None => added && !removed,
        }
    }
}

/// Every stream not disabled, as of one stream generation.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub(super) generation: i64,
    pub(super) streams: Vec<Route>,
}

impl Routes {
    /// Whether there is no standard stream at all to deliver to.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// The streams an event of standard type `uri` about `subject` goes to, oldest first.
    pub fn for_event(&self, uri: &str, subject: &Subject) -> Vec<&Route> {
        self.streams
            .iter()
            .filter(|r| r.wants(uri) && r.delivers_to(subject))
            .collect()
    }

    /// The ids of the streams that take events.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.streams.iter().map(|r| r.stream_id.as_str())
    }

    /// Stream `id`, when it takes events.
    pub fn get(&self, id: &str) -> Option<&Route> {
        self.streams.iter().find(|r| r.stream_id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::set::SubjectId;

    fn subject(user: Option<&str>, device: Option<&str>) -> Subject {
        Subject {
            user: user.map(|u| SubjectId::Email(u.into())),
            device: device.map(|d| SubjectId::Opaque(d.into())),
        }
    }

    fn route(default: DefaultSubjects, subjects: Vec<(Subject, bool)>) -> Route {
        Route::new(
            "s".into(),
            "a".into(),
            false,
            vec!["e".into()],
            default,
            subjects,
        )
    }

    #[test]
    fn all_takes_every_subject_but_the_removed() {
        let r = route(
            DefaultSubjects::All,
            vec![(subject(Some("Bob@x.com"), None), false)],
        );
        assert!(r.delivers_to(&subject(Some("jane@x.com"), None)));
        assert!(!r.delivers_to(&subject(Some("bob@x.com"), None)));
        assert!(!r.delivers_to(&subject(Some("bob@x.com"), Some("d1"))));
        assert!(
            r.delivers_to(&subject(None, Some("d1"))),
            "shares no member"
        );
    }

    #[test]
    fn none_takes_only_the_added() {
        let r = route(
            DefaultSubjects::None,
            vec![
                (subject(Some("jane@x.com"), Some("d1")), true),
                (subject(None, Some("d2")), true),
                (subject(None, Some("d3")), false),
            ],
        );
        assert!(r.delivers_to(&subject(Some("jane@x.com"), None)));
        assert!(r.delivers_to(&subject(Some("jane@x.com"), Some("d1"))));
        assert!(
            !r.delivers_to(&subject(Some("jane@x.com"), Some("d9"))),
            "a shared member differs"
        );
        assert!(r.delivers_to(&subject(Some("bob@x.com"), Some("d2"))));
        assert!(!r.delivers_to(&subject(Some("bob@x.com"), None)));
        assert!(!r.delivers_to(&subject(None, Some("d3"))));
    }

    #[test]
    fn events_filter() {
        let r = route(DefaultSubjects::All, vec![]);
        let routes = Routes {
            generation: 1,
            streams: vec![r],
        };
        let s = subject(Some("jane@x.com"), None);
        assert_eq!(routes.for_event("e", &s).len(), 1);
        assert_eq!(routes.for_event("other", &s).len(), 0);
    }
}
