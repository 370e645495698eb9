//! The standard dialect, for every receiver but Okta: SSF 1.0 §4 SETs carrying CAEP 1.0 and
//! RISC 1.0 events.
//!
//! One event per SET; the subject in the top-level `sub_id` (an RFC 9493 identifier, or a
//! `complex` subject with `user` and `device`); no `sub`, no `exp`; `txn` names the signal the
//! SET came from, shared by every SET one signal fans out to. The pre-1.0 form some receivers
//! still read (Apple Business Manager, SSE-era receivers) additionally carries the subject inside
//! the event, as the old drafts did (without `format: complex`).

use serde_json::{Map, Value};

use super::{Event, EventBody, EventType, Subject, reason_json};

/// The top-level `sub_id`: the identifier itself for a simple subject, a `complex` subject
/// (SSF §3.2) when it names both a user and a device.
pub fn sub_id(subject: &Subject) -> Value {
    match (&subject.user, &subject.device) {
        (Some(u), None) => u.to_json(),
        (None, Some(d)) => d.to_json(),
        _ => {
            let mut m = Map::new();
            m.insert("format".into(), Value::from("complex"));
            if let Some(u) = &subject.user {
                m.insert("user".into(), u.to_json());
            }
            if let Some(d) = &subject.device {
                m.insert("device".into(), d.to_json());
            }
            Value::Object(m)
        }
    }
}

/// The subject inside the event, as pre-1.0 receivers read it.
fn legacy_subject(subject: &Subject) -> Value {
    match (&subject.user, &subject.device) {
        (Some(u), None) => u.to_json(),
        (None, Some(d)) => d.to_json(),
        _ => subject.to_json(),
    }
}

/// The event object of `event` in the standard dialect; `None` for a type without a standard
/// event (`ip-change`) or a body that is not the standard form of its type.
pub fn event_json(event: &Event, legacy_subject_in_event: bool) -> Option<Value> {
    event.event_type.standard_uri()?;
    // Okta's risk body is never sent to a standard stream: intake builds the CAEP one.
    if matches!(
        event.body,
        EventBody::RiskChange { .. } | EventBody::IpChange { .. }
    ) {
        return None;
    }
    let mut m = Map::new();
    if legacy_subject_in_event {
        m.insert("subject".into(), legacy_subject(&event.subject));
    }
    m.insert("event_timestamp".into(), Value::from(event.event_timestamp));
    let t = event.event_type;
    if t.is_caep()
        && let Some(e) = event.initiating_entity
    {
        m.insert(
            "initiating_entity".into(),
            serde_json::to_value(e).unwrap_or(Value::Null),
        );
    }
    // CAEP's common members; RISC defines the reasons for credential-compromise only.
    if t.is_caep() || t == EventType::CredentialCompromise {
        if let Some(r) = &event.reason_admin {
            m.insert("reason_admin".into(), reason_json(r));
        }
        if let Some(r) = &event.reason_user {
            m.insert("reason_user".into(), reason_json(r));
        }
    }
    match &event.body {
        EventBody::StandardRisk {
            current_level,
            previous_level,
            risk_reason,
        } => {
            let principal = if t == EventType::DeviceRisk {
                "DEVICE"
            } else {
                "USER"
            };
            m.insert("principal".into(), Value::from(principal));
            m.insert("current_level".into(), Value::from(current_level.as_str()));
            if let Some(p) = previous_level {
                m.insert("previous_level".into(), Value::from(p.as_str()));
            }
            if let Some(text) = risk_reason {
                m.insert("risk_reason".into(), Value::from(text.as_str()));
            }
        }
        // Okta's own members of session-revoked (IPs, user agents) are not CAEP's.
        EventBody::SessionRevoked { .. } => {}
        EventBody::DeviceCompliance { .. } | EventBody::IdentifierChanged { .. } => {
            let okta_form = event.to_json(super::TimestampUnit::Seconds);
            for key in ["current_status", "previous_status", "new-value"] {
                if let Some(v) = okta_form.get(key) {
                    m.insert(key.into(), v.clone());
                }
            }
        }
        other => put_members(other, &mut m),
    }
    Some(Value::Object(m))
}

/// The members of the events only standard streams carry.
pub(super) fn put_members(body: &EventBody, m: &mut Map<String, Value>) {
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            m.insert(k.into(), Value::from(v));
        }
    };
    match body {
        EventBody::CredentialChange {
            credential_type,
            change_type,
            friendly_name,
            x509_issuer,
            x509_serial,
            fido2_aaguid,
        } => {
            put("credential_type", Some(credential_type));
            put("change_type", Some(change_type));
            put("friendly_name", friendly_name.as_deref());
            put("x509_issuer", x509_issuer.as_deref());
            put("x509_serial", x509_serial.as_deref());
            put("fido2_aaguid", fido2_aaguid.as_deref());
        }
        EventBody::AssuranceLevelChange {
            namespace,
            current_level,
            previous_level,
            change_direction,
        } => {
            put("namespace", Some(namespace));
            put("current_level", Some(current_level));
            put("previous_level", previous_level.as_deref());
            put("change_direction", change_direction.as_deref());
        }
        EventBody::TokenClaimsChange { claims } => {
            m.insert("claims".into(), Value::Object(claims.clone()));
        }
        EventBody::AccountDisabled { reason } => put("reason", reason.as_deref()),
        EventBody::CredentialCompromise { credential_type } => {
            put("credential_type", Some(credential_type));
        }
        EventBody::StandardRisk {
            current_level,
            previous_level,
            ..
        } => {
            put("current_level", Some(current_level.as_str()));
            put("previous_level", previous_level.map(|p| p.as_str()));
        }
        EventBody::AccountEnabled
        | EventBody::RiskChange { .. }
        | EventBody::IpChange { .. }
        | EventBody::SessionRevoked { .. }
        | EventBody::DeviceCompliance { .. }
        | EventBody::IdentifierChanged { .. } => {}
    }
}

/// A standard SET's claims: `iss`, `jti`, `iat`, `aud`, `txn`, `sub_id` and `events` with
/// exactly one event; `None` when the event has no standard form.
pub fn claims(
    iss: &str,
    aud: &str,
    jti: &str,
    iat: i64,
    txn: &str,
    event: &Event,
    legacy_subject_in_event: bool,
) -> Option<Value> {
    let uri = event.event_type.standard_uri()?;
    let mut events = Map::new();
    events.insert(uri.to_owned(), event_json(event, legacy_subject_in_event)?);
    Some(serde_json::json!({
        "iss": iss,
        "jti": jti,
        "iat": iat,
        "aud": aud,
        "txn": txn,
        "sub_id": sub_id(&event.subject),
        "events": events,
    }))
}
