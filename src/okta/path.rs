//! Okta request paths that input cannot steer.
//!
//! A path below the org URL is built only from segments: literal ones written in this code, and
//! value ones that are typed Okta ids ([`OktaId`]), validated against Okta's id form and then
//! percent-encoded. Nothing a caller sends can become `/`, `?`, `#` or a dot segment, so it can
//! neither reach another operation nor change the DPoP proof's `htu`.

use std::fmt;

/// What kind of Okta object an id names; each has Okta's own three- or two-letter prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// A user: `00u…`.
    User,
    /// A group: `00g…`.
    Group,
    /// An admin role assignment: `ra…` (standard roles) or `irb…` (custom role bindings).
    RoleAssignment,
    /// A Security Events Provider: `sse…`.
    SecurityEventsProvider,
}

impl IdKind {
    /// Okta's prefixes for this kind of id.
    pub fn prefixes(self) -> &'static [&'static str] {
        match self {
            IdKind::User => &["00u"],
            IdKind::Group => &["00g"],
            IdKind::RoleAssignment => &["ra", "irb"],
            IdKind::SecurityEventsProvider => &["sse"],
        }
    }

    /// What the id names, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            IdKind::User => "user",
            IdKind::Group => "group",
            IdKind::RoleAssignment => "role assignment",
            IdKind::SecurityEventsProvider => "Security Events Provider",
        }
    }
}

/// Okta ids are 20 ASCII letters and digits.
pub const OKTA_ID_LEN: usize = 20;

/// A value that is not an Okta id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not an Okta {} id: expected {OKTA_ID_LEN} letters and digits starting with '{}'",
    kind.noun(),
    kind.prefixes().join("' or '")
)]
pub struct InvalidOktaId {
    /// The kind that was expected.
    pub kind: IdKind,
}

/// An Okta id of a known kind: exactly 20 ASCII letters and digits with the kind's prefix.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OktaId {
    kind: IdKind,
    value: String,
}

impl OktaId {
    /// Validates `s` as an id of `kind` (surrounding whitespace is not accepted).
    pub fn parse(kind: IdKind, s: &str) -> Result<Self, InvalidOktaId> {
        if Self::is_valid(kind, s) {
            Ok(Self {
                kind,
                value: s.to_owned(),
            })
        } else {
            Err(InvalidOktaId { kind })
        }
    }

    /// Whether `s` is an id of `kind`.
    pub fn is_valid(kind: IdKind, s: &str) -> bool {
        s.len() == OKTA_ID_LEN
            && kind.prefixes().iter().any(|p| s.starts_with(p))
            && s.bytes().all(|b| b.is_ascii_alphanumeric())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// What it names.
    pub fn kind(&self) -> IdKind {
        self.kind
    }
}

impl fmt::Debug for OktaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OktaId({})", self.value)
    }
}

impl fmt::Display for OktaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// A path below the org URL (`/api/v1/…`), built segment by segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaPath(String);

/// Everything but RFC 3986 unreserved characters is percent-encoded in a value segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl OktaPath {
    /// `/api/v1`.
    pub fn api_v1() -> Self {
        Self("/api/v1".to_owned())
    }

    /// `/api/v1/users`.
    pub fn users() -> Self {
        Self::api_v1().lit("users")
    }

    /// `/api/v1/users/{id}`.
    pub fn user(id: &OktaId) -> Self {
        Self::users().id(id)
    }

    /// `/api/v1/groups`.
    pub fn groups() -> Self {
        Self::api_v1().lit("groups")
    }

    /// `/api/v1/groups/{id}`.
    pub fn group(id: &OktaId) -> Self {
        Self::groups().id(id)
    }

    /// Appends a literal segment written in this code (`users`, `lifecycle`, `suspend`, …).
    /// Only letters, digits, `-` and `_` are allowed: a literal never carries a separator.
    pub fn lit(mut self, segment: &'static str) -> Self {
        assert!(
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "an Okta path literal is a plain word"
        );
        self.0.push('/');
        self.0.push_str(segment);
        self
    }

    /// Appends a validated Okta id as one encoded segment.
    pub fn id(self, id: &OktaId) -> Self {
        self.value(id.as_str())
    }

    /// Appends a value as exactly one segment, percent-encoded: it cannot contain `/`, `?`, `#`,
    /// or a `%` sequence that decodes to one. An empty or dot-only value (which URL parsers
    /// resolve even when encoded) becomes `%00`, a segment no Okta route matches; callers only
    /// pass validated ids, so that never happens in practice.
    fn value(mut self, value: &str) -> Self {
        debug_assert!(!value.is_empty() && value != "." && value != "..");
        self.0.push('/');
        if value.is_empty() || value.bytes().all(|b| b == b'.') {
            // Unreachable with a validated id; keep the segment harmless regardless.
            self.0.push_str("%00");
        } else {
            self.0
                .extend(percent_encoding::utf8_percent_encode(value, SEGMENT));
        }
        self
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OktaPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<OktaPath> for String {
    fn from(p: OktaPath) -> Self {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_need_okta_form_and_the_kinds_prefix() {
        assert!(OktaId::parse(IdKind::User, "00u00000000000000001").is_ok());
        assert!(OktaId::parse(IdKind::Group, "00g1a2b3c4d5e6f7g8h9").is_ok());
        assert!(OktaId::parse(IdKind::RoleAssignment, "ra1b8anIk7rx7em7L0g4").is_ok());
        assert!(OktaId::parse(IdKind::RoleAssignment, "irb1q92TFAHzySt3x0g4").is_ok());
        assert!(OktaId::parse(IdKind::SecurityEventsProvider, "sse1qg25RpusjUP6m0g5").is_ok());
        for bad in [
            "",
            "00g00000000000000001",
            "00u0000000000000001",
            "00u000000000000000011",
            "00u0000000000000000/",
            "00u000000000000000.1",
            "00u00000000000000%2F",
            "../../../groups/xyzw",
            "00u0000000000000000\u{e9}",
            " 00u0000000000000001",
        ] {
            assert!(OktaId::parse(IdKind::User, bad).is_err(), "{bad:?}");
        }
        let e = OktaId::parse(IdKind::RoleAssignment, "x").expect_err("invalid");
        assert_eq!(
            e.to_string(),
            "not an Okta role assignment id: expected 20 letters and digits starting with 'ra' or 'irb'"
        );
    }

    #[test]
    fn paths_are_literals_and_ids_only() {
        let u = OktaId::parse(IdKind::User, "00u00000000000000001").expect("id");
        let p = OktaPath::user(&u).lit("lifecycle").lit("suspend");
        assert_eq!(
            p.as_str(),
            "/api/v1/users/00u00000000000000001/lifecycle/suspend"
        );
    }

    #[test]
    fn a_value_segment_never_becomes_a_separator_or_dot_segment() {
        for (raw, want) in [
            ("../../groups/x", "/api/v1/..%2F..%2Fgroups%2Fx"),
            ("a?b#c", "/api/v1/a%3Fb%23c"),
            ("%2F", "/api/v1/%252F"),
            ("a\0b", "/api/v1/a%00b"),
            ("..", "/api/v1/%00"),
            (".", "/api/v1/%00"),
        ] {
            if raw == ".." || raw == "." {
                // debug builds assert; release builds keep the segment harmless.
                continue;
            }
            assert_eq!(OktaPath::api_v1().value(raw).as_str(), want, "{raw:?}");
        }
        // Whatever a URL parser does with it, the path stays below /api/v1.
        let p = OktaPath::api_v1().value("../../groups/x");
        let url = url::Url::parse(&format!("https://acme.okta.com{p}")).expect("url");
        assert_eq!(url.path(), "/api/v1/..%2F..%2Fgroups%2Fx");
    }

    #[test]
    #[should_panic(expected = "plain word")]
    fn a_literal_with_a_separator_is_a_programming_error() {
        let _ = OktaPath::api_v1().lit("users/../groups");
    }
}
