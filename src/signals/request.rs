//! What callers send: one body per event type, validated into a [`Draft`] with errors that name
//! the field and the rule.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::config::SignalsConfig;
use crate::set::{
    ComplianceStatus, EventBody, EventType, InitiatingEntity, Reason, RiskLevel, Subject, SubjectId,
};
use crate::validation::FieldError;

/// A SIEM severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// informational
    Informational,
    /// low
    Low,
    /// medium
    Medium,
    /// high
    High,
    /// critical
    Critical,
}

/// A reason: plain text (sent as `{"en": text}`) or a language map that includes `en`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ReasonInput {
    /// English text.
    Text(String),
    /// `{"en": "…", "de": "…"}`.
    Localized(BTreeMap<String, String>),
}

/// RFC 3339 text or UNIX seconds.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TimestampInput {
    /// UNIX seconds.
    Unix(i64),
    /// RFC 3339, e.g. `2026-11-25T10:00:00Z`.
    Text(String),
}

/// `POST /v1/signals/user-risk` and `/device-risk`: give exactly one of `current_level`, `score`
/// or `severity`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": {"user": {"format": "email", "email": "jane.doe@example.com"}, "device": {"format": "opaque", "id": "device-7f3a"}}, "current_level": "high", "reason_admin": "Impossible travel"}))]
pub struct RiskSignal {
    /// An RFC 9493 identifier (taken as the user) or `{"user": {…}, "device": {…}}`.
    #[schema(value_type = Object, example = json!({"format": "email", "email": "jane@example.com"}))]
    pub subject: Value,
    /// The new level.
    pub current_level: Option<RiskLevel>,
    /// A 0–100 score, mapped by the configured thresholds.
    #[schema(minimum = 0, maximum = 100)]
    pub score: Option<f64>,
    /// A SIEM severity, mapped by the configured table.
    pub severity: Option<Severity>,
    /// The level before; default: the last level accepted for this subject (`none` if unknown).
    pub previous_level: Option<RiskLevel>,
    /// Reason for administrators.
    pub reason_admin: Option<ReasonInput>,
    /// Reason for the user.
    pub reason_user: Option<ReasonInput>,
    /// Who initiated the change.
    pub initiating_entity: Option<InitiatingEntity>,
    /// When it happened; default now.
    pub event_timestamp: Option<TimestampInput>,
    /// Send even when the level equals the last one.
    #[serde(default)]
    pub force: bool,
}

/// `POST /v1/signals/ip-change`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": {"format": "email", "email": "jane.doe@example.com"}, "current_ip_address": "203.0.113.7", "previous_ip_address": "198.51.100.20"}))]
pub struct IpChangeSignal {
    /// The user.
    #[schema(value_type = Object)]
    pub subject: Value,
    /// The new IP address.
    #[schema(schema_with = ip_schema)]
    pub current_ip_address: String,
    /// The previous IP address.
    #[schema(schema_with = ip_schema)]
    pub previous_ip_address: String,
    /// Reason for administrators.
    pub reason_admin: Option<ReasonInput>,
    /// Reason for the user.
    pub reason_user: Option<ReasonInput>,
    /// Who initiated it.
    pub initiating_entity: Option<InitiatingEntity>,
    /// When; default now.
    pub event_timestamp: Option<TimestampInput>,
}

/// `POST /v1/signals/session-revoked`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": {"format": "email", "email": "jane.doe@example.com"}, "current_ip": "203.0.113.7", "reason_admin": "Session hijack suspected"}))]
pub struct SessionRevokedSignal {
    /// The user.
    #[schema(value_type = Object)]
    pub subject: Value,
    /// Current IP of the session.
    #[schema(schema_with = ip_schema)]
    pub current_ip: Option<String>,
    /// Current user agent (1–1024 characters, not all white space).
    #[schema(min_length = 1, max_length = 1024, pattern = "\\S")]
    pub current_user_agent: Option<String>,
    /// Last known IP.
    #[schema(schema_with = ip_schema)]
    pub last_known_ip: Option<String>,
    /// Last known user agent (1–1024 characters, not all white space).
    #[schema(min_length = 1, max_length = 1024, pattern = "\\S")]
    pub last_known_user_agent: Option<String>,
    /// Reason for administrators.
    pub reason_admin: Option<ReasonInput>,
    /// Reason for the user.
    pub reason_user: Option<ReasonInput>,
    /// Who initiated it.
    pub initiating_entity: Option<InitiatingEntity>,
    /// When; default now.
    pub event_timestamp: Option<TimestampInput>,
}

/// `POST /v1/signals/device-compliance`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": {"user": {"format": "email", "email": "jane.doe@example.com"}, "device": {"format": "opaque", "id": "device-7f3a"}}, "current_status": "not-compliant", "previous_status": "compliant"}))]
pub struct DeviceComplianceSignal {
    /// Needs a `device` (and should carry the `user`).
    #[schema(value_type = Object)]
    pub subject: Value,
    /// Now.
    pub current_status: ComplianceStatus,
    /// Before; default: the last status accepted for this device.
    pub previous_status: Option<ComplianceStatus>,
    /// Reason for administrators.
    pub reason_admin: Option<ReasonInput>,
    /// Reason for the user.
    pub reason_user: Option<ReasonInput>,
    /// Who initiated it.
    pub initiating_entity: Option<InitiatingEntity>,
    /// When; default now.
    pub event_timestamp: Option<TimestampInput>,
    /// Send even when the status equals the last one.
    #[serde(default)]
    pub force: bool,
}

/// `POST /v1/signals/identifier-changed`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": {"format": "email", "email": "jane.doe@example.com"}, "new-value": "jane.smith@example.com"}))]
pub struct IdentifierChangedSignal {
    /// The user, by the old identifier.
    #[schema(value_type = Object)]
    pub subject: Value,
    /// The new identifier: an email address or an E.164 phone number (`+` and up to 15 digits).
    #[serde(rename = "new-value", alias = "new_value")]
    #[schema(schema_with = new_value_schema)]
    pub new_value: Option<String>,
    /// When; default now.
    pub event_timestamp: Option<TimestampInput>,
}

/// A credential type (CAEP 1.0 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialType {
    /// password
    Password,
    /// pin
    Pin,
    /// x509
    X509,
    /// fido2-platform
    Fido2Platform,
    /// fido2-roaming
    Fido2Roaming,
    /// fido-u2f
    FidoU2f,
    /// verifiable-credential
    VerifiableCredential,
    /// phone-voice
    PhoneVoice,
    /// phone-sms
    PhoneSms,
    /// app
    App,
}

/// What happened to a credential (CAEP 1.0 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeType {
    /// create
    Create,
    /// revoke
    Revoke,
    /// update
    Update,
    /// delete
    Delete,
}

/// An assurance level namespace (CAEP 1.0 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum AssuranceNamespace {
    /// RFC 8176 authentication method references.
    #[serde(rename = "RFC8176")]
    Rfc8176,
    /// RFC 6711 levels of assurance.
    #[serde(rename = "RFC6711")]
    Rfc6711,
    /// ISO/IEC 29115.
    #[serde(rename = "ISO-IEC-29115")]
    IsoIec29115,
    /// NIST SP 800-63 identity assurance level.
    #[serde(rename = "NIST-IAL")]
    NistIal,
    /// NIST SP 800-63 authenticator assurance level.
    #[serde(rename = "NIST-AAL")]
    NistAal,
    /// NIST SP 800-63 federation assurance level.
    #[serde(rename = "NIST-FAL")]
    NistFal,
}

/// Which way an assurance level moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeDirection {
    /// increase
    Increase,
    /// decrease
    Decrease,
}

/// Why an account was disabled (RISC 1.0 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DisableReason {
    /// hijacking
    Hijacking,
    /// bulk-account
    BulkAccount,
}

/// `POST /v1/signals/credential-change` (CAEP; standard streams only).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": {"format": "email", "email": "jane.doe@example.com"}, "credential_type": "fido2-roaming", "change_type": "create", "friendly_name": "YubiKey", "reason_admin": "User enrolled a security key"}))]
pub struct CredentialChangeSignal {
    /// The user.
    #[schema(value_type = Object)]
    pub subject: Value,
    /// The credential's type.
    pub credential_type: CredentialType,
    /// What happened to it.
    pub change_type: ChangeType,
    /// A name the user knows it by (1–1024 characters).
    #[schema(min_length = 1, max_length = 1024, pattern = "\\S")]
    pub friendly_name: Option<String>,
    /// An X.509 credential's issuer (1–1024 characters).
    #[schema(min_length = 1, max_length = 1024, pattern = "\\S")]
    pub x509_issuer: Option<String>,
    /// An X.509 credential's serial number (1–1024 characters).
    #[schema(min_length = 1, max_length = 1024, pattern = "\\S")]
    pub x509_serial: Option<String>,
    /// A FIDO2 authenticator's AAGUID (1–1024 characters).
    #[schema(min_length = 1, max_length = 1024, pattern = "\\S")]
    pub fido2_aaguid: Option<String>,
    /// Reason for administrators.
    pub reason_admin: Option<ReasonInput>,
    /// Reason for the user.
    pub reason_user: Option<ReasonInput>,
    /// Who initiated it.
    pub initiating_entity: Option<InitiatingEntity>,
    /// When; default now.
    pub event_timestamp: Option<TimestampInput>,
}

/// `POST /v1/signals/assurance-level-change` (CAEP; standard streams only).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": {"format": "email", "email": "jane.doe@example.com"}, "namespace": "NIST-AAL", "current_level": "nist-aal1", "previous_level": "nist-aal2", "change_direction": "decrease"}))]
pub struct AssuranceLevelChangeSignal {
    /// The user.
    #[schema(value_type = Object)]
    pub subject: Value,
    /// The namespace the levels are from.
    pub namespace: AssuranceNamespace,
    /// The level now (1–1024 characters).
    #[schema(min_length = 1, max_length = 1024, pattern = "\\S")]
    pub current_level: String,
    /// The level before (1–1024 characters).
    #[schema(min_length = 1, max_length = 1024, pattern = "\\S")]
    pub previous_level: Option<String>,
    /// Which way it moved.
    pub change_direction: Option<ChangeDirection>,
    /// Reason for administrators.
    pub reason_admin: Option<ReasonInput>,
    /// Reason for the user.
    pub reason_user: Option<ReasonInput>,
    /// Who initiated it.
    pub initiating_entity: Option<InitiatingEntity>,
    /// When; default now.
    pub event_timestamp: Option<TimestampInput>,
}

/// Most claims one token-claims-change carries.
pub const MAX_CLAIMS: usize = 64;
/// Longest the claims of one token-claims-change may be, as JSON.
pub const MAX_CLAIMS_BYTES: usize = 8192;

/// `POST /v1/signals/token-claims-change` (CAEP; standard streams only).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": {"format": "email", "email": "jane.doe@example.com"}, "claims": {"role": "ro-admin"}, "reason_admin": "Role downgraded"}))]
pub struct TokenClaimsChangeSignal {
    /// The user.
    #[schema(value_type = Object)]
    pub subject: Value,
    /// The claims that changed and their new values (1–64 members, at most 8 KiB as JSON).
    #[schema(value_type = Object)]
    pub claims: serde_json::Map<String, Value>,
    /// Reason for administrators.
    pub reason_admin: Option<ReasonInput>,
    /// Reason for the user.
    pub reason_user: Option<ReasonInput>,
    /// Who initiated it.
    pub initiating_entity: Option<InitiatingEntity>,
    /// When; default now.
    pub event_timestamp: Option<TimestampInput>,
}

/// `POST /v1/signals/account-disabled` (RISC; standard streams only).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": {"format": "email", "email": "jane.doe@example.com"}, "reason": "hijacking"}))]
pub struct AccountDisabledSignal {
    /// The user.
    #[schema(value_type = Object)]
    pub subject: Value,
    /// Why.
    pub reason: Option<DisableReason>,
    /// When; default now.
    pub event_timestamp: Option<TimestampInput>,
}

/// `POST /v1/signals/account-enabled` (RISC; standard streams only).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": {"format": "email", "email": "jane.doe@example.com"}}))]
pub struct AccountEnabledSignal {
    /// The user.
    #[schema(value_type = Object)]
    pub subject: Value,
    /// When; default now.
    pub event_timestamp: Option<TimestampInput>,
}

/// `POST /v1/signals/credential-compromise` (RISC; standard streams only).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": {"format": "email", "email": "jane.doe@example.com"}, "credential_type": "password", "reason_admin": "Password found in a breach corpus"}))]
pub struct CredentialCompromiseSignal {
    /// The user.
    #[schema(value_type = Object)]
    pub subject: Value,
    /// The compromised credential's type.
    pub credential_type: CredentialType,
    /// Reason for administrators.
    pub reason_admin: Option<ReasonInput>,
    /// Reason for the user.
    pub reason_user: Option<ReasonInput>,
    /// When; default now.
    pub event_timestamp: Option<TimestampInput>,
}

/// An IPv4 or IPv6 address (as `ip` checks it).
fn ip_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let format = |f| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(f)))
    };
    utoipa::openapi::schema::Schema::AnyOf(
        AnyOfBuilder::new()
            .item(format(KnownFormat::Ipv4))
            .item(format(KnownFormat::Ipv6))
            .build(),
    )
}

/// An email address or an E.164 phone number (as `IdentifierChangedSignal::validate` checks).
fn new_value_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    utoipa::openapi::schema::Schema::AnyOf(
        AnyOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^\\+[0-9]{1,15}$")),
            )
            .build(),
    )
}

/// The level or status a draft carries before state is consulted.
#[derive(Debug, Clone, PartialEq)]
pub enum DraftBody {
    /// A risk change; `previous` may be filled from state.
    Risk {
        /// New level.
        current: RiskLevel,
        /// Given previous level.
        previous: Option<RiskLevel>,
    },
    /// A compliance change; `previous` may be filled from state.
    Compliance {
        /// New status.
        current: ComplianceStatus,
        /// Given previous status.
        previous: Option<ComplianceStatus>,
    },
    /// Anything stateless.
    Fixed(EventBody),
}

/// A validated signal, before per-subject state is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// Type.
    pub event_type: EventType,
    /// Subject.
    pub subject: Subject,
    /// UNIX seconds.
    pub event_timestamp: i64,
    /// Initiator.
    pub initiating_entity: Option<InitiatingEntity>,
    /// Admin reason.
    pub reason_admin: Option<Reason>,
    /// User reason.
    pub reason_user: Option<Reason>,
    /// Body.
    pub body: DraftBody,
    /// Send even if unchanged.
    pub force: bool,
}

impl Draft {
    /// Per-subject FIFO key: the device for device events, else the user (falling back to
    /// whichever the subject has), so events about one device (or one user) stay in order.
    pub fn order_key(&self) -> String {
        let device_first = matches!(
            self.event_type,
            EventType::DeviceRisk | EventType::DeviceCompliance
        );
        let user = self
            .subject
            .user
            .as_ref()
            .map(|u| format!("user={}", u.canonical()));
        let device = self
            .subject
            .device
            .as_ref()
            .map(|d| format!("device={}", d.canonical()));
        let key = if device_first {
            device.or(user)
        } else {
            user.or(device)
        };
        key.unwrap_or_default()
    }

    /// `(kind, key)` of the per-subject state this signal reads and updates, if any.
    pub fn state_slot(&self) -> Option<(&'static str, String)> {
        match (&self.body, self.event_type) {
            (DraftBody::Risk { .. }, EventType::UserRisk) => self
                .subject
                .user
                .as_ref()
                .map(|u| ("user-risk", u.canonical())),
            (DraftBody::Risk { .. }, _) => self
                .subject
                .device
                .as_ref()
                .map(|d| ("device-risk", d.canonical())),
            (DraftBody::Compliance { .. }, _) => self
                .subject
                .device
                .as_ref()
                .map(|d| ("device-compliance", d.canonical())),
            (DraftBody::Fixed(_), _) => None,
        }
    }
}

fn fe(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Deserializes a JSON value into `T`, naming every failing field (prefixed with `prefix`).
pub fn from_value<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, Vec<FieldError>> {
    crate::validation::deserialize_all(value, prefix)
}

/// Context for validation.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// Intake settings.
    pub config: &'a SignalsConfig,
    /// Now.
    pub now: DateTime<Utc>,
    /// Field-name prefix (`signals[3]` in a batch).
    pub prefix: &'a str,
}

impl Ctx<'_> {
    fn f(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }
}

struct Common {
    subject: Subject,
    event_timestamp: i64,
    reason_admin: Option<Reason>,
    reason_user: Option<Reason>,
}

fn common(
    ctx: &Ctx<'_>,
    event_type: EventType,
    subject: &Value,
    reason_admin: Option<&ReasonInput>,
    reason_user: Option<&ReasonInput>,
    ts: Option<&TimestampInput>,
    errors: &mut Vec<FieldError>,
) -> Option<Common> {
    let subject = match Subject::parse(subject, &ctx.f("subject")) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if let Some(s) = &subject {
        let needs_device = matches!(
            event_type,
            EventType::DeviceRisk | EventType::DeviceCompliance
        );
        if needs_device && s.device.is_none() {
            errors.push(fe(
                ctx.f("subject.device"),
                format!(
                    "{} needs a device: send {{\"user\": {{…}}, \"device\": {{…}}}}",
                    event_type.as_str()
                ),
            ));
        }
        if !needs_device && s.user.is_none() {
            errors.push(fe(
                ctx.f("subject.user"),
                format!("{} needs a user", event_type.as_str()),
            ));
        }
    }
    let reason_admin = reason(ctx, "reason_admin", reason_admin, errors);
    let reason_user = reason(ctx, "reason_user", reason_user, errors);
    let event_timestamp = timestamp(ctx, ts, errors);
    Some(Common {
        subject: subject?,
        event_timestamp: event_timestamp?,
        reason_admin,
        reason_user,
    })
}

const MAX_REASON: usize = 2000;
const MAX_TEXT: usize = 1024;

fn reason(
    ctx: &Ctx<'_>,
    name: &str,
    r: Option<&ReasonInput>,
    errors: &mut Vec<FieldError>,
) -> Option<Reason> {
    let map = match r? {
        ReasonInput::Text(t) => BTreeMap::from([("en".to_owned(), t.clone())]),
        ReasonInput::Localized(m) => m.clone(),
    };
    if !map.contains_key("en") {
        errors.push(fe(
            ctx.f(&format!("{name}.en")),
            "is required: Okta reads the English reason",
        ));
        return None;
    }
    for (lang, text) in &map {
        let valid_tag = !lang.is_empty()
            && lang.len() <= 35
            && lang
                .split('-')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()));
        if !valid_tag {
            errors.push(fe(
                ctx.f(&format!("{name}.{lang}")),
                "is not a language tag (e.g. en, de, pt-BR)",
            ));
        } else if text.trim().is_empty() {
            errors.push(fe(ctx.f(&format!("{name}.{lang}")), "must not be empty"));
        } else if text.chars().count() > MAX_REASON {
            errors.push(fe(
                ctx.f(&format!("{name}.{lang}")),
                format!("must be at most {MAX_REASON} characters"),
            ));
        }
    }
    Some(map)
}

fn timestamp(
    ctx: &Ctx<'_>,
    ts: Option<&TimestampInput>,
    errors: &mut Vec<FieldError>,
) -> Option<i64> {
    let field = ctx.f("event_timestamp");
    let secs = match ts {
        None => return Some(ctx.now.timestamp()),
        Some(TimestampInput::Unix(s)) => *s,
        Some(TimestampInput::Text(t)) => match DateTime::parse_from_rfc3339(t) {
            Ok(d) => d.timestamp(),
            Err(e) => {
                errors.push(fe(
                    field,
                    format!("must be RFC 3339 (e.g. 2026-11-25T10:00:00Z) or UNIX seconds: {e}"),
                ));
                return None;
            }
        },
    };
    if secs < 946_684_800 {
        errors.push(fe(
            field,
            "is before 2000-01-01; send UNIX seconds, not milliseconds or zero",
        ));
        return None;
    }
    if secs > ctx.now.timestamp() + 300 {
        errors.push(fe(field, "is more than 5 minutes in the future"));
        return None;
    }
    Some(secs)
}

fn ip(
    ctx: &Ctx<'_>,
    name: &str,
    v: Option<&String>,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let v = v?;
    match v.parse::<IpAddr>() {
        Ok(addr) => Some(addr.to_string()),
        Err(_) => {
            errors.push(fe(ctx.f(name), "is not an IPv4 or IPv6 address"));
            None
        }
    }
}

fn text(
    ctx: &Ctx<'_>,
    name: &str,
    v: Option<&String>,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let v = v?;
    if v.trim().is_empty() || v.chars().count() > MAX_TEXT {
        errors.push(fe(
            ctx.f(name),
            format!("must be 1 to {MAX_TEXT} characters"),
        ));
        return None;
    }
    Some(v.clone())
}

fn done(draft: Option<Draft>, errors: Vec<FieldError>) -> Result<Draft, Vec<FieldError>> {
    match draft {
        Some(d) if errors.is_empty() => Ok(d),
        _ => Err(errors),
    }
}

/// Maps a score to a level with the configured thresholds.
pub fn level_for_score(config: &SignalsConfig, score: f64) -> RiskLevel {
    if score >= config.score_high {
        RiskLevel::High
    } else if score >= config.score_medium {
        RiskLevel::Medium
    } else {
        RiskLevel::Low
    }
}

/// Maps a severity with the configured table.
pub fn level_for_severity(config: &SignalsConfig, s: Severity) -> RiskLevel {
    let m = &config.severity;
    match s {
        Severity::Informational => m.informational,
        Severity::Low => m.low,
        Severity::Medium => m.medium,
        Severity::High => m.high,
        Severity::Critical => m.critical,
    }
}

impl RiskSignal {
    /// Validates into a draft of `event_type` (user-risk or device-risk).
    pub fn validate(&self, ctx: &Ctx<'_>, event_type: EventType) -> Result<Draft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let c = common(
            ctx,
            event_type,
            &self.subject,
            self.reason_admin.as_ref(),
            self.reason_user.as_ref(),
            self.event_timestamp.as_ref(),
            &mut errors,
        );
        let given = [
            self.current_level.is_some(),
            self.score.is_some(),
            self.severity.is_some(),
        ]
        .into_iter()
        .filter(|x| *x)
        .count();
        let current = if given != 1 {
            errors.push(fe(
                ctx.f("current_level"),
                "give exactly one of current_level, score or severity",
            ));
            None
        } else if let Some(l) = self.current_level {
            Some(l)
        } else if let Some(s) = self.score {
            if s.is_finite() && (0.0..=100.0).contains(&s) {
                Some(level_for_score(ctx.config, s))
            } else {
                errors.push(fe(ctx.f("score"), "must be a number from 0 to 100"));
                None
            }
        } else {
            self.severity.map(|s| level_for_severity(ctx.config, s))
        };
        let draft = match (c, current) {
            (Some(c), Some(current)) => Some(Draft {
                event_type,
                subject: c.subject,
                event_timestamp: c.event_timestamp,
                initiating_entity: self.initiating_entity,
                reason_admin: c.reason_admin,
                reason_user: c.reason_user,
                body: DraftBody::Risk {
                    current,
                    previous: self.previous_level,
                },
                force: self.force,
            }),
            _ => None,
        };
        done(draft, errors)
    }
}

impl IpChangeSignal {
    /// Validates.
    pub fn validate(&self, ctx: &Ctx<'_>) -> Result<Draft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let et = EventType::IpChange;
        let c = common(
            ctx,
            et,
            &self.subject,
            self.reason_admin.as_ref(),
            self.reason_user.as_ref(),
            self.event_timestamp.as_ref(),
            &mut errors,
        );
        let cur = ip(
            ctx,
            "current_ip_address",
            Some(&self.current_ip_address),
            &mut errors,
        );
        let prev = ip(
            ctx,
            "previous_ip_address",
            Some(&self.previous_ip_address),
            &mut errors,
        );
        let draft = match (c, cur, prev) {
            (Some(c), Some(cur), Some(prev)) => Some(Draft {
                event_type: et,
                subject: c.subject,
                event_timestamp: c.event_timestamp,
                initiating_entity: self.initiating_entity,
                reason_admin: c.reason_admin,
                reason_user: c.reason_user,
                body: DraftBody::Fixed(EventBody::IpChange {
                    current_ip_address: cur,
                    previous_ip_address: prev,
                }),
                force: false,
            }),
            _ => None,
        };
        done(draft, errors)
    }
}

impl SessionRevokedSignal {
    /// Validates.
    pub fn validate(&self, ctx: &Ctx<'_>) -> Result<Draft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let et = EventType::SessionRevoked;
        let c = common(
            ctx,
            et,
            &self.subject,
            self.reason_admin.as_ref(),
            self.reason_user.as_ref(),
            self.event_timestamp.as_ref(),
            &mut errors,
        );
        let body = EventBody::SessionRevoked {
            current_ip: ip(ctx, "current_ip", self.current_ip.as_ref(), &mut errors),
            current_user_agent: text(
                ctx,
                "current_user_agent",
                self.current_user_agent.as_ref(),
                &mut errors,
            ),
            last_known_ip: ip(
                ctx,
                "last_known_ip",
                self.last_known_ip.as_ref(),
                &mut errors,
            ),
            last_known_user_agent: text(
                ctx,
                "last_known_user_agent",
                self.last_known_user_agent.as_ref(),
                &mut errors,
            ),
        };
        let draft = c.map(|c| Draft {
            event_type: et,
            subject: c.subject,
            event_timestamp: c.event_timestamp,
            initiating_entity: self.initiating_entity,
            reason_admin: c.reason_admin,
            reason_user: c.reason_user,
            body: DraftBody::Fixed(body),
            force: false,
        });
        done(draft, errors)
    }
}

impl DeviceComplianceSignal {
    /// Validates.
    pub fn validate(&self, ctx: &Ctx<'_>) -> Result<Draft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let et = EventType::DeviceCompliance;
        let c = common(
            ctx,
            et,
            &self.subject,
            self.reason_admin.as_ref(),
            self.reason_user.as_ref(),
            self.event_timestamp.as_ref(),
            &mut errors,
        );
        let draft = c.map(|c| Draft {
            event_type: et,
            subject: c.subject,
            event_timestamp: c.event_timestamp,
            initiating_entity: self.initiating_entity,
            reason_admin: c.reason_admin,
            reason_user: c.reason_user,
            body: DraftBody::Compliance {
                current: self.current_status,
                previous: self.previous_status,
            },
            force: self.force,
        });
        done(draft, errors)
    }
}

impl IdentifierChangedSignal {
    /// Validates.
    pub fn validate(&self, ctx: &Ctx<'_>) -> Result<Draft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let et = EventType::IdentifierChanged;
        let c = common(
            ctx,
            et,
            &self.subject,
            None,
            None,
            self.event_timestamp.as_ref(),
            &mut errors,
        );
        // RISC: the subject is the old identifier, an email address or a phone number.
        if let Some(c) = &c
            && !matches!(
                c.subject.user,
                Some(SubjectId::Email(_) | SubjectId::PhoneNumber(_))
            )
        {
            errors.push(fe(
                ctx.f("subject.user"),
                "identifier-changed is about an email or phone_number identifier (the old one)",
            ));
        }
        let new_value = match &self.new_value {
            None => None,
            Some(v) => {
                let is_email = email_address::EmailAddress::is_valid(v);
                let is_phone = v.strip_prefix('+').is_some_and(|d| {
                    !d.is_empty() && d.len() <= 15 && d.chars().all(|c| c.is_ascii_digit())
                });
                if is_email || is_phone {
                    Some(v.clone())
                } else {
                    errors.push(fe(
                        ctx.f("new-value"),
                        "must be an email address or an E.164 phone number",
                    ));
                    None
                }
            }
        };
        let draft = c.map(|c| Draft {
            event_type: et,
            subject: c.subject,
            event_timestamp: c.event_timestamp,
            initiating_entity: None,
            reason_admin: None,
            reason_user: None,
            body: DraftBody::Fixed(EventBody::IdentifierChanged { new_value }),
            force: false,
        });
        done(draft, errors)
    }
}

/// The wire name of a serde enum value.
fn wire<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A draft of a stateless event from its common members and body.
fn fixed(
    et: EventType,
    c: Common,
    initiating_entity: Option<InitiatingEntity>,
    body: EventBody,
) -> Draft {
    Draft {
        event_type: et,
        subject: c.subject,
        event_timestamp: c.event_timestamp,
        initiating_entity,
        reason_admin: c.reason_admin,
        reason_user: c.reason_user,
        body: DraftBody::Fixed(body),
        force: false,
    }
}

impl CredentialChangeSignal {
    /// Validates.
    pub fn validate(&self, ctx: &Ctx<'_>) -> Result<Draft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let et = EventType::CredentialChange;
        let c = common(
            ctx,
            et,
            &self.subject,
            self.reason_admin.as_ref(),
            self.reason_user.as_ref(),
            self.event_timestamp.as_ref(),
            &mut errors,
        );
        let body = EventBody::CredentialChange {
            credential_type: wire(&self.credential_type),
            change_type: wire(&self.change_type),
            friendly_name: text(
                ctx,
                "friendly_name",
                self.friendly_name.as_ref(),
                &mut errors,
            ),
            x509_issuer: text(ctx, "x509_issuer", self.x509_issuer.as_ref(), &mut errors),
            x509_serial: text(ctx, "x509_serial", self.x509_serial.as_ref(), &mut errors),
            fido2_aaguid: text(ctx, "fido2_aaguid", self.fido2_aaguid.as_ref(), &mut errors),
        };
        done(
            c.map(|c| fixed(et, c, self.initiating_entity, body)),
            errors,
        )
    }
}

impl AssuranceLevelChangeSignal {
    /// Validates.
    pub fn validate(&self, ctx: &Ctx<'_>) -> Result<Draft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let et = EventType::AssuranceLevelChange;
        let c = common(
            ctx,
            et,
            &self.subject,
            self.reason_admin.as_ref(),
            self.reason_user.as_ref(),
            self.event_timestamp.as_ref(),
            &mut errors,
        );
        let current = text(ctx, "current_level", Some(&self.current_level), &mut errors);
        let previous = text(
            ctx,
            "previous_level",
            self.previous_level.as_ref(),
            &mut errors,
        );
        let draft = match (c, current) {
            (Some(c), Some(current_level)) => Some(fixed(
                et,
                c,
                self.initiating_entity,
                EventBody::AssuranceLevelChange {
                    namespace: wire(&self.namespace),
                    current_level,
                    previous_level: previous,
                    change_direction: self.change_direction.as_ref().map(wire),
                },
            )),
            _ => None,
        };
        done(draft, errors)
    }
}

impl TokenClaimsChangeSignal {
    /// Validates.
    pub fn validate(&self, ctx: &Ctx<'_>) -> Result<Draft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let et = EventType::TokenClaimsChange;
        let c = common(
            ctx,
            et,
            &self.subject,
            self.reason_admin.as_ref(),
            self.reason_user.as_ref(),
            self.event_timestamp.as_ref(),
            &mut errors,
        );
        let size = serde_json::to_string(&self.claims).map_or(usize::MAX, |s| s.len());
        if self.claims.is_empty() || self.claims.len() > MAX_CLAIMS || size > MAX_CLAIMS_BYTES {
            errors.push(fe(
                ctx.f("claims"),
                format!(
                    "must name 1 to {MAX_CLAIMS} claims and be at most {MAX_CLAIMS_BYTES} bytes as JSON"
                ),
            ));
        }
        if let Some(k) = self
            .claims
            .keys()
            .find(|k| k.is_empty() || k.len() > 256 || k.chars().any(char::is_control))
        {
            errors.push(fe(
                ctx.f("claims"),
                format!(
                    "claim name {:?} must be 1 to 256 characters without control characters",
                    k.chars().take(64).collect::<String>()
                ),
            ));
        }
        let body = EventBody::TokenClaimsChange {
            claims: self.claims.clone(),
        };
        done(
            c.map(|c| fixed(et, c, self.initiating_entity, body)),
            errors,
        )
    }
}

impl AccountDisabledSignal {
    /// Validates.
    pub fn validate(&self, ctx: &Ctx<'_>) -> Result<Draft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let et = EventType::AccountDisabled;
        let c = common(
            ctx,
            et,
            &self.subject,
            None,
            None,
            self.event_timestamp.as_ref(),
            &mut errors,
        );
        let body = EventBody::AccountDisabled {
            reason: self.reason.as_ref().map(wire),
        };
        done(c.map(|c| fixed(et, c, None, body)), errors)
    }
}

impl AccountEnabledSignal {
    /// Validates.
    pub fn validate(&self, ctx: &Ctx<'_>) -> Result<Draft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let et = EventType::AccountEnabled;
        let c = common(
            ctx,
            et,
            &self.subject,
            None,
            None,
            self.event_timestamp.as_ref(),
            &mut errors,
        );
        done(
            c.map(|c| fixed(et, c, None, EventBody::AccountEnabled)),
            errors,
        )
    }
}

impl CredentialCompromiseSignal {
    /// Validates.
    pub fn validate(&self, ctx: &Ctx<'_>) -> Result<Draft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let et = EventType::CredentialCompromise;
        let c = common(
            ctx,
            et,
            &self.subject,
            self.reason_admin.as_ref(),
            self.reason_user.as_ref(),
            self.event_timestamp.as_ref(),
            &mut errors,
        );
        let body = EventBody::CredentialCompromise {
            credential_type: wire(&self.credential_type),
        };
        done(c.map(|c| fixed(et, c, None, body)), errors)
    }
}

/// Parses and validates one signal of `event_type` from JSON.
pub fn parse(event_type: EventType, value: Value, ctx: &Ctx<'_>) -> Result<Draft, Vec<FieldError>> {
    match event_type {
        EventType::UserRisk | EventType::DeviceRisk => {
            from_value::<RiskSignal>(value, ctx.prefix)?.validate(ctx, event_type)
        }
        EventType::IpChange => from_value::<IpChangeSignal>(value, ctx.prefix)?.validate(ctx),
        EventType::SessionRevoked => {
            from_value::<SessionRevokedSignal>(value, ctx.prefix)?.validate(ctx)
        }
        EventType::DeviceCompliance => {
            from_value::<DeviceComplianceSignal>(value, ctx.prefix)?.validate(ctx)
        }
        EventType::IdentifierChanged => {
            from_value::<IdentifierChangedSignal>(value, ctx.prefix)?.validate(ctx)
        }
        EventType::CredentialChange => {
            from_value::<CredentialChangeSignal>(value, ctx.prefix)?.validate(ctx)
        }
        EventType::AssuranceLevelChange => {
            from_value::<AssuranceLevelChangeSignal>(value, ctx.prefix)?.validate(ctx)
        }
        EventType::TokenClaimsChange => {
            from_value::<TokenClaimsChangeSignal>(value, ctx.prefix)?.validate(ctx)
        }
        EventType::AccountDisabled => {
            from_value::<AccountDisabledSignal>(value, ctx.prefix)?.validate(ctx)
        }
        EventType::AccountEnabled => {
            from_value::<AccountEnabledSignal>(value, ctx.prefix)?.validate(ctx)
        }
        EventType::CredentialCompromise => {
            from_value::<CredentialCompromiseSignal>(value, ctx.prefix)?.validate(ctx)
        }
    }
}
