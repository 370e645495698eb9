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
        if let Some(u) = &s.user
            && !matches!(u, SubjectId::Email(_))
        {
            errors.push(fe(
                ctx.f("subject.user"),
                "Okta matches users by email: use {\"format\": \"email\", \"email\": …}",
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
    }
}
