//! Security Event Tokens (RFC 8417): event types, subject identifiers (RFC 9493) and the claims
//! set, in two dialects.
//!
//! Okta's (this module's [`claims`]) follows `SecurityEventTokenRequestJwtEvents` in Okta's
//! management API spec: one event per SET, keyed by its URI under `events`; the subject is
//! `{"user": {…}, "device": {…}}` inside the event with no `format` member at that level;
//! reasons are `{"en": …}`; `event_timestamp` is a UNIX time. The standard one (SSF 1.0, CAEP
//! 1.0, RISC 1.0) for every other receiver is in [`standard`].

pub mod standard;
mod subject;

pub use subject::{Subject, SubjectId};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The `typ` header of every SET.
pub const SET_TYP: &str = "secevent+jwt";

/// The event types signals can carry: the six Okta's receiver accepts ([`EventType::OKTA`]) and
/// the CAEP and RISC events only standard streams take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EventType {
    /// Okta user-risk-change.
    UserRisk,
    /// Okta device-risk-change.
    DeviceRisk,
    /// Okta ip-change.
    IpChange,
    /// CAEP session-revoked.
    SessionRevoked,
    /// CAEP device-compliance-change.
    DeviceCompliance,
    /// RISC identifier-changed.
    IdentifierChanged,
    /// CAEP credential-change (standard streams only).
    CredentialChange,
    /// CAEP assurance-level-change (standard streams only).
    AssuranceLevelChange,
    /// CAEP token-claims-change (standard streams only).
    TokenClaimsChange,
    /// RISC account-disabled (standard streams only).
    AccountDisabled,
    /// RISC account-enabled (standard streams only).
    AccountEnabled,
    /// RISC credential-compromise (standard streams only).
    CredentialCompromise,
}

const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";

impl EventType {
    /// Every type.
    pub const ALL: [EventType; 12] = [
        EventType::UserRisk,
        EventType::DeviceRisk,
        EventType::IpChange,
        EventType::SessionRevoked,
        EventType::DeviceCompliance,
        EventType::IdentifierChanged,
        EventType::CredentialChange,
        EventType::AssuranceLevelChange,
        EventType::TokenClaimsChange,
        EventType::AccountDisabled,
        EventType::AccountEnabled,
        EventType::CredentialCompromise,
    ];

    /// The types Okta's receiver accepts.
    pub const OKTA: [EventType; 6] = [
        EventType::UserRisk,
        EventType::DeviceRisk,
        EventType::IpChange,
        EventType::SessionRevoked,
        EventType::DeviceCompliance,
        EventType::IdentifierChanged,
    ];

    /// The event URI in Okta's dialect (the key under `events`); `None` for the types Okta's
    /// receiver does not accept.
    pub fn okta_uri(self) -> Option<&'static str> {
        Some(match self {
            EventType::UserRisk => {
                "https://schemas.okta.com/secevent/okta/event-type/user-risk-change"
            }
            EventType::DeviceRisk => {
                "https://schemas.okta.com/secevent/okta/event-type/device-risk-change"
            }
            EventType::IpChange => "https://schemas.okta.com/secevent/okta/event-type/ip-change",
            EventType::SessionRevoked => {
                "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
            }
            EventType::DeviceCompliance => {
                "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change"
            }
            EventType::IdentifierChanged => {
                "https://schemas.openid.net/secevent/risc/event-type/identifier-changed"
            }
            _ => return None,
        })
    }

    /// The event URI for a standard stream (CAEP 1.0, RISC 1.0): both risk types become CAEP
    /// `risk-level-change`; `None` for `ip-change`, which has no standard event.
    pub fn standard_uri(self) -> Option<&'static str> {
        Some(match self {
            EventType::UserRisk | EventType::DeviceRisk => {
                "https://schemas.openid.net/secevent/caep/event-type/risk-level-change"
            }
            EventType::IpChange => return None,
            EventType::SessionRevoked => {
                "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
            }
            EventType::DeviceCompliance => {
                "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change"
            }
            EventType::IdentifierChanged => {
                "https://schemas.openid.net/secevent/risc/event-type/identifier-changed"
            }
            EventType::CredentialChange => {
                "https://schemas.openid.net/secevent/caep/event-type/credential-change"
            }
            EventType::AssuranceLevelChange => {
                "https://schemas.openid.net/secevent/caep/event-type/assurance-level-change"
            }
            EventType::TokenClaimsChange => {
                "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
            }
            EventType::AccountDisabled => {
                "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
            }
            EventType::AccountEnabled => {
                "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
            }
            EventType::CredentialCompromise => {
                "https://schemas.openid.net/secevent/risc/event-type/credential-compromise"
            }
        })
    }

    /// Whether the standard form is a CAEP event (which carries CAEP's common members:
    /// `initiating_entity`, `reason_admin`, `reason_user`).
    pub fn is_caep(self) -> bool {
        self.standard_uri().is_some_and(|u| u.starts_with(CAEP))
    }

    /// Whether the standard form is a RISC event.
    pub fn is_risc(self) -> bool {
        self.standard_uri().is_some_and(|u| u.starts_with(RISC))
    }

    /// The type of an Okta-dialect URI.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::OKTA.into_iter().find(|t| t.okta_uri() == Some(uri))
    }

    /// The short name used in routes and the API (`user-risk`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserRisk => "user-risk",
            EventType::DeviceRisk => "device-risk",
            EventType::IpChange => "ip-change",
            EventType::SessionRevoked => "session-revoked",
            EventType::DeviceCompliance => "device-compliance",
            EventType::IdentifierChanged => "identifier-changed",
            EventType::CredentialChange => "credential-change",
            EventType::AssuranceLevelChange => "assurance-level-change",
            EventType::TokenClaimsChange => "token-claims-change",
            EventType::AccountDisabled => "account-disabled",
            EventType::AccountEnabled => "account-enabled",
            EventType::CredentialCompromise => "credential-compromise",
        }
    }

    /// Parses the short name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether Okta's spec says "either `reason_admin` or `reason_user` is required" (its types
    /// but identifier-changed).
    pub fn wants_reason(self) -> bool {
        self.okta_uri().is_some() && self != EventType::IdentifierChanged
    }
}

/// A risk level (Okta's enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    /// low
    Low,
    /// medium
    Medium,
    /// high
    High,
    /// secure
    Secure,
    /// none
    None,
}

impl RiskLevel {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
            RiskLevel::Secure => "secure",
            RiskLevel::None => "none",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Low,
            Self::Medium,
            Self::High,
            Self::Secure,
            Self::None,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

/// Who initiated the event (Okta's enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InitiatingEntity {
    /// admin
    Admin,
    /// user
    User,
    /// policy
    Policy,
    /// system
    System,
}

/// Device compliance status (CAEP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ComplianceStatus {
    /// compliant
    Compliant,
    /// not-compliant
    NotCompliant,
}

/// A localized reason: `{"en": "…", …}`; `en` is required by Okta.
pub type Reason = std::collections::BTreeMap<String, String>;

/// `event_timestamp` unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampUnit {
    /// UNIX seconds (Okta's spec examples).
    #[default]
    Seconds,
    /// UNIX milliseconds (some Okta guide examples).
    Milliseconds,
}

/// The type-specific members of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventBody {
    /// user-risk-change / device-risk-change.
    RiskChange {
        /// Current level.
        current_level: RiskLevel,
        /// Previous level.
        previous_level: RiskLevel,
    },
    /// ip-change.
    IpChange {
        /// New address.
        current_ip_address: String,
        /// Old address.
        previous_ip_address: String,
    },
    /// session-revoked.
    SessionRevoked {
        /// Current IP of the session.
        current_ip: Option<String>,
        /// Current user agent.
        current_user_agent: Option<String>,
        /// Last known IP.
        last_known_ip: Option<String>,
        /// Last known user agent.
        last_known_user_agent: Option<String>,
    },
    /// device-compliance-change.
    DeviceCompliance {
        /// Now.
        current_status: ComplianceStatus,
        /// Before.
        previous_status: ComplianceStatus,
    },
    /// identifier-changed.
    IdentifierChanged {
        /// The new identifier value.
        new_value: Option<String>,
    },
    /// CAEP risk-level-change, for a standard stream (the risk types' standard form).
    StandardRisk {
        /// Now.
        current_level: StandardRiskLevel,
        /// Before, when known (CAEP: omitted means unknown).
        previous_level: Option<StandardRiskLevel>,
        /// Why, in the caller's words (CAEP's RECOMMENDED `risk_reason`).
        risk_reason: Option<String>,
    },
    /// CAEP credential-change (members validated at intake).
    CredentialChange {
        /// `password`, `pin`, `x509`, `fido2-platform`, …
        credential_type: String,
        /// `create`, `revoke`, `update` or `delete`.
        change_type: String,
        /// A name the user knows the credential by.
        friendly_name: Option<String>,
        /// An X.509 credential's issuer.
        x509_issuer: Option<String>,
        /// An X.509 credential's serial number.
        x509_serial: Option<String>,
        /// A FIDO2 authenticator's AAGUID.
        fido2_aaguid: Option<String>,
    },
    /// CAEP assurance-level-change.
    AssuranceLevelChange {
        /// `RFC8176`, `RFC6711`, `ISO-IEC-29115`, `NIST-IAL`, `NIST-AAL` or `NIST-FAL`.
        namespace: String,
        /// Now.
        current_level: String,
        /// Before.
        previous_level: Option<String>,
        /// `increase` or `decrease`.
        change_direction: Option<String>,
    },
    /// CAEP token-claims-change: the changed claims and their new values.
    TokenClaimsChange {
        /// Claim → new value.
        claims: Map<String, Value>,
    },
    /// RISC account-disabled.
    AccountDisabled {
        /// `hijacking` or `bulk-account`.
        reason: Option<String>,
    },
    /// RISC account-enabled.
    AccountEnabled,
    /// RISC credential-compromise.
    CredentialCompromise {
        /// The compromised credential's type (CAEP's values).
        credential_type: String,
    },
}

/// CAEP's risk levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StandardRiskLevel {
    /// LOW
    Low,
    /// MEDIUM
    Medium,
    /// HIGH
    High,
}

impl StandardRiskLevel {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StandardRiskLevel::Low => "LOW",
            StandardRiskLevel::Medium => "MEDIUM",
            StandardRiskLevel::High => "HIGH",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Low, Self::Medium, Self::High]
            .into_iter()
            .find(|l| l.as_str() == s)
    }

    /// An Okta level as CAEP's: `secure` is as `low`; `none` (no assessment) has no CAEP level.
    pub fn from_okta(level: RiskLevel) -> Option<Self> {
        match level {
            RiskLevel::High => Some(Self::High),
            RiskLevel::Medium => Some(Self::Medium),
            RiskLevel::Low | RiskLevel::Secure => Some(Self::Low),
            RiskLevel::None => None,
        }
    }
}

/// One event, ready to be put in a SET.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its type.
    pub event_type: EventType,
    /// Who it is about.
    pub subject: Subject,
    /// When it happened (UNIX seconds).
    pub event_timestamp: i64,
    /// Who initiated it.
    pub initiating_entity: Option<InitiatingEntity>,
    /// Administrative reason.
    pub reason_admin: Option<Reason>,
    /// End-user reason.
    pub reason_user: Option<Reason>,
    /// Type-specific members.
    pub body: EventBody,
}

impl Event {
    /// The event object as Okta's spec describes it.
    pub fn to_json(&self, unit: TimestampUnit) -> Value {
        let mut m = Map::new();
        m.insert("subject".into(), self.subject.to_json());
        let ts = match unit {
            TimestampUnit::Seconds => self.event_timestamp,
            TimestampUnit::Milliseconds => self.event_timestamp.saturating_mul(1000),
        };
        m.insert("event_timestamp".into(), Value::from(ts));
        if self.event_type != EventType::IdentifierChanged {
            if let Some(e) = self.initiating_entity {
                m.insert(
                    "initiating_entity".into(),
                    serde_json::to_value(e).unwrap_or(Value::Null),
                );
            }
            if let Some(r) = &self.reason_admin {
                m.insert("reason_admin".into(), reason_json(r));
            }
            if let Some(r) = &self.reason_user {
                m.insert("reason_user".into(), reason_json(r));
            }
        }
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                m.insert(k.into(), Value::from(v));
            }
        };
        match &self.body {
            EventBody::RiskChange {
                current_level,
                previous_level,
            } => {
                put("current_level", Some(current_level.as_str()));
                put("previous_level", Some(previous_level.as_str()));
            }
            EventBody::IpChange {
                current_ip_address,
                previous_ip_address,
            } => {
                put("current_ip_address", Some(current_ip_address));
                put("previous_ip_address", Some(previous_ip_address));
            }
            EventBody::SessionRevoked {
                current_ip,
                current_user_agent,
                last_known_ip,
                last_known_user_agent,
            } => {
                put("current_ip", current_ip.as_deref());
                put("current_user_agent", current_user_agent.as_deref());
                put("last_known_ip", last_known_ip.as_deref());
                put("last_known_user_agent", last_known_user_agent.as_deref());
            }
            EventBody::DeviceCompliance {
                current_status,
                previous_status,
            } => {
                let s = |c: &ComplianceStatus| match c {
                    ComplianceStatus::Compliant => "compliant",
                    ComplianceStatus::NotCompliant => "not-compliant",
                };
                put("current_status", Some(s(current_status)));
                put("previous_status", Some(s(previous_status)));
            }
            EventBody::IdentifierChanged { new_value } => {
                put("new-value", new_value.as_deref());
            }
            // Only standard streams carry these (Okta's receiver takes none of them).
            other => standard::put_members(other, &mut m),
        }
        Value::Object(m)
    }
}

fn reason_json(r: &Reason) -> Value {
    Value::Object(
        r.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

/// The SET claims in Okta's dialect: `iss`, `jti`, `iat`, `aud`, and `events` with exactly one
/// event (its subject inside).
pub fn claims(
    iss: &str,
    aud: &str,
    jti: &str,
    iat: i64,
    event: &Event,
    unit: TimestampUnit,
) -> Value {
    let mut events = Map::new();
    let uri = event
        .event_type
        .okta_uri()
        .or(event.event_type.standard_uri())
        .unwrap_or_default();
    events.insert(uri.to_owned(), event.to_json(unit));
    serde_json::json!({
        "iss": iss,
        "jti": jti,
        "iat": iat,
        "aud": aud,
        "events": events,
    })
}

#[cfg(test)]
mod tests;
