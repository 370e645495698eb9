//! Golden files: the exact header and claims of every event type, checked against Okta's spec by
//! hand once and by these tests on every change. Regenerate (then review!) with
//! `UPDATE_GOLDEN=1 cargo test --lib set::`.

use super::*;

const ISS: &str = "https://ssf.example.com";
const AUD: &str = "https://acme.okta.com/";
const JTI: &str = "5f0c1d3e9a7b4c2d8e6f1a2b3c4d5e6f";
const IAT: i64 = 1_764_000_000;
const TS: i64 = 1_763_999_990;

fn user() -> Subject {
    Subject {
        user: Some(SubjectId::Email("jane.doe@example.com".into())),
        device: None,
    }
}

fn reason(text: &str) -> Option<Reason> {
    Some(Reason::from([("en".to_owned(), text.to_owned())]))
}

fn events() -> Vec<(&'static str, Event)> {
    vec![
        (
            "user-risk",
            Event {
                event_type: EventType::UserRisk,
                subject: user(),
                event_timestamp: TS,
                initiating_entity: Some(InitiatingEntity::Policy),
                reason_admin: reason("Impossible travel detected by UEBA"),
                reason_user: None,
                body: EventBody::RiskChange {
                    current_level: RiskLevel::High,
                    previous_level: RiskLevel::Low,
                },
            },
        ),
        (
            "device-risk",
            Event {
                event_type: EventType::DeviceRisk,
                subject: Subject {
                    user: Some(SubjectId::Email("jane.doe@example.com".into())),
                    device: Some(SubjectId::Opaque("device-identifier-001".into())),
                },
                event_timestamp: TS,
                initiating_entity: Some(InitiatingEntity::System),
                reason_admin: reason("EDR quarantined the device"),
                reason_user: reason("Your device is at risk"),
                body: EventBody::RiskChange {
                    current_level: RiskLevel::Medium,
                    previous_level: RiskLevel::None,
                },
            },
        ),
        (
            "ip-change",
            Event {
                event_type: EventType::IpChange,
                subject: user(),
                event_timestamp: TS,
                initiating_entity: None,
                reason_admin: reason("Session IP changed"),
                reason_user: None,
                body: EventBody::IpChange {
                    current_ip_address: "123.4.5.6".into(),
                    previous_ip_address: "2001:db8::1".into(),
                },
            },
        ),
        (
            "session-revoked",
            Event {
                event_type: EventType::SessionRevoked,
                subject: user(),
                event_timestamp: TS,
                initiating_entity: Some(InitiatingEntity::Admin),
                reason_admin: reason("Analyst revoked the session"),
                reason_user: None,
                body: EventBody::SessionRevoked {
                    current_ip: Some("123.4.5.6".into()),
                    current_user_agent: Some("Mozilla/5.0".into()),
                    last_known_ip: None,
                    last_known_user_agent: None,
                },
            },
        ),
        (
            "device-compliance",
            Event {
                event_type: EventType::DeviceCompliance,
                subject: Subject {
                    user: Some(SubjectId::Email("jane.doe@example.com".into())),
                    device: Some(SubjectId::Opaque("device-identifier-001".into())),
                },
                event_timestamp: TS,
                initiating_entity: Some(InitiatingEntity::Policy),
                reason_admin: reason("Disk encryption turned off"),
                reason_user: None,
                body: EventBody::DeviceCompliance {
                    current_status: ComplianceStatus::NotCompliant,
                    previous_status: ComplianceStatus::Compliant,
                },
            },
        ),
        (
            "identifier-changed",
            Event {
                event_type: EventType::IdentifierChanged,
                subject: user(),
                event_timestamp: TS,
                initiating_entity: Some(InitiatingEntity::Admin),
                reason_admin: reason("ignored: not part of identifier-changed"),
                reason_user: None,
                body: EventBody::IdentifierChanged {
                    new_value: Some("jane.smith@example.com".into()),
                },
            },
        ),
    ]
}

fn golden(name: &str, actual: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/set/golden")
        .join(format!("{name}.json"));
    let pretty = serde_json::to_string_pretty(actual).expect("render") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &pretty).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    let expected: Value = serde_json::from_str(&expected).unwrap_or(Value::Null);
    assert_eq!(&expected, actual, "golden file {} differs", path.display());
}

#[test]
fn claims_of_every_event_type_match_the_golden_files() {
    let evs = events();
    assert_eq!(
        evs.len(),
        EventType::OKTA.len(),
        "every Okta type has a golden file"
    );
    for (name, event) in evs {
        let c = claims(ISS, AUD, JTI, IAT, &event, TimestampUnit::Seconds);
        assert_eq!(
            c["events"].as_object().map(|o| o.len()),
            Some(1),
            "exactly one event"
        );
        golden(name, &c);
    }
}

#[test]
fn milliseconds_are_selectable() {
    let (_, event) = events().remove(0);
    let c = claims(ISS, AUD, JTI, IAT, &event, TimestampUnit::Milliseconds);
    assert_eq!(
        c["events"][EventType::UserRisk.okta_uri().expect("okta")]["event_timestamp"],
        TS * 1000
    );
    assert_eq!(c["iat"], IAT, "iat stays in seconds");
}

#[test]
fn signed_header_matches_okta_spec() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = crate::keys::KeyDir::open(tmp.path()).expect("dir");
    let now = chrono::Utc::now();
    dir.ensure_initialized(now).expect("init");
    let ring = dir.load().expect("load");
    let (_, event) = events().remove(0);
    let token = ring
        .sign(
            SET_TYP,
            &claims(ISS, AUD, JTI, IAT, &event, TimestampUnit::Seconds),
        )
        .expect("sign");
    let header_b64 = token.split('.').next().expect("header");
    use base64::Engine as _;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header_b64)
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(
        header,
        serde_json::json!({"alg": "RS256", "kid": ring.active_kid(), "typ": "secevent+jwt"})
    );
}

#[test]
fn subjects_parse_and_validate() {
    let simple = serde_json::json!({"format": "email", "email": "Jane@Example.com"});
    let s = Subject::parse(&simple, "subject").expect("simple");
    assert_eq!(
        s.to_json(),
        serde_json::json!({"user": {"format": "email", "email": "Jane@Example.com"}})
    );
    assert_eq!(s.key(), "user=email:jane@example.com");
    let complex = serde_json::json!({"format": "complex", "user": simple, "device": {"format": "opaque", "id": "d1"}});
    let c = Subject::parse(&complex, "subject").expect("complex");
    assert_eq!(
        c.to_json()["device"],
        serde_json::json!({"format": "opaque", "id": "d1"})
    );
    assert!(
        c.to_json().get("format").is_none(),
        "no format at the top level for Okta"
    );

    let cases = [
        (
            serde_json::json!({"format": "email", "email": "not-an-email"}),
            "subject.email",
        ),
        (
            serde_json::json!({"format": "email", "email": "a@b.com", "extra": 1}),
            "subject.extra",
        ),
        (
            serde_json::json!({"format": "smtp", "email": "a@b.com"}),
            "subject.format",
        ),
        (serde_json::json!({"email": "a@b.com"}), "subject.format"),
        (
            serde_json::json!({"user": {"format": "email", "email": "x"}}),
            "subject.user.email",
        ),
        (
            serde_json::json!({"user": {"format": "email", "email": "a@b.com"}, "session": {}}),
            "subject.session",
        ),
        (
            serde_json::json!({"format": "phone_number", "phone_number": "555 1234"}),
            "subject.phone_number",
        ),
        (serde_json::json!("jane@example.com"), "subject"),
    ];
    for (v, field) in cases {
        let err = Subject::parse(&v, "subject").expect_err("invalid");
        assert_eq!(err.field, field, "{v}: {}", err.message);
    }
}

/// Every event type with a standard form, as a standard stream gets it.
fn standard_events() -> Vec<(&'static str, Event)> {
    let okta: std::collections::HashMap<&str, Event> = events().into_iter().collect();
    let base = |event_type: EventType, body: EventBody| Event {
        event_type,
        subject: user(),
        event_timestamp: TS,
        initiating_entity: Some(InitiatingEntity::Admin),
        reason_admin: reason("Analyst action"),
        reason_user: None,
        body,
    };
    let mut device_risk = okta["device-risk"].clone();
    device_risk.body = EventBody::StandardRisk {
        current_level: StandardRiskLevel::Medium,
        previous_level: None,
        risk_reason: Some("EDR quarantined the device".into()),
    };
    let mut user_risk = okta["user-risk"].clone();
    user_risk.body = EventBody::StandardRisk {
        current_level: StandardRiskLevel::High,
        previous_level: Some(StandardRiskLevel::Low),
        risk_reason: None,
    };
    vec![
        ("user-risk", user_risk),
        ("device-risk", device_risk),
        ("session-revoked", okta["session-revoked"].clone()),
        ("device-compliance", okta["device-compliance"].clone()),
        ("identifier-changed", okta["identifier-changed"].clone()),
        (
            "credential-change",
            base(
                EventType::CredentialChange,
                EventBody::CredentialChange {
                    credential_type: "fido2-roaming".into(),
                    change_type: "create".into(),
                    friendly_name: Some("YubiKey 5".into()),
                    x509_issuer: None,
                    x509_serial: None,
                    fido2_aaguid: Some("cb69481e-8ff7-4039-93ec-0a2729a154a8".into()),
                },
            ),
        ),
        (
            "assurance-level-change",
            base(
                EventType::AssuranceLevelChange,
                EventBody::AssuranceLevelChange {
                    namespace: "NIST-AAL".into(),
                    current_level: "nist-aal1".into(),
                    previous_level: Some("nist-aal2".into()),
                    change_direction: Some("decrease".into()),
                },
            ),
        ),
        (
            "token-claims-change",
            base(
                EventType::TokenClaimsChange,
                EventBody::TokenClaimsChange {
                    claims: serde_json::json!({"role": "ro-admin"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                },
            ),
        ),
        (
            "account-disabled",
            base(
                EventType::AccountDisabled,
                EventBody::AccountDisabled {
                    reason: Some("hijacking".into()),
                },
            ),
        ),
        (
            "account-enabled",
            base(EventType::AccountEnabled, EventBody::AccountEnabled),
        ),
        (
            "credential-compromise",
            base(
                EventType::CredentialCompromise,
                EventBody::CredentialCompromise {
                    credential_type: "password".into(),
                },
            ),
        ),
    ]
}

#[test]
fn standard_claims_of_every_event_type_match_the_golden_files() {
    let evs = standard_events();
    let with_standard_form = EventType::ALL
        .iter()
        .filter(|t| t.standard_uri().is_some())
        .count();
    assert_eq!(evs.len(), with_standard_form, "every standard type has one");
    for (name, event) in evs {
        let c = standard::claims(ISS, AUD, JTI, IAT, "txn-1", &event, false).expect("standard");
        let events = c["events"].as_object().expect("events");
        assert_eq!(events.len(), 1, "exactly one event");
        assert!(c.get("sub").is_none() && c.get("exp").is_none());
        let (uri, body) = events.iter().next().expect("one");
        assert_eq!(Some(uri.as_str()), event.event_type.standard_uri());
        assert!(
            body.get("subject").is_none(),
            "1.0: the subject is in sub_id"
        );
        golden(&format!("standard/{name}"), &c);
    }
}

#[test]
fn the_pre_1_0_form_also_carries_the_subject_inside_the_event() {
    let (_, event) = standard_events().remove(1);
    let c = standard::claims(ISS, AUD, JTI, IAT, "t", &event, true).expect("standard");
    let body =
        &c["events"]["https://schemas.openid.net/secevent/caep/event-type/risk-level-change"];
    assert_eq!(
        body["subject"],
        event.subject.to_json(),
        "no format: complex"
    );
    assert_eq!(c["sub_id"]["format"], "complex");
    assert_eq!(c["sub_id"]["device"], event.subject.to_json()["device"]);
}

#[test]
fn okta_risk_levels_map_to_caep_levels() {
    use StandardRiskLevel as S;
    assert_eq!(S::from_okta(RiskLevel::High), Some(S::High));
    assert_eq!(S::from_okta(RiskLevel::Medium), Some(S::Medium));
    assert_eq!(S::from_okta(RiskLevel::Low), Some(S::Low));
    assert_eq!(S::from_okta(RiskLevel::Secure), Some(S::Low));
    assert_eq!(S::from_okta(RiskLevel::None), None);
    let (_, mut event) = events().remove(0);
    assert!(
        standard::claims(ISS, AUD, JTI, IAT, "t", &event, false).is_none(),
        "Okta's risk body never goes to a standard stream"
    );
    event.event_type = EventType::IpChange;
    assert!(standard::claims(ISS, AUD, JTI, IAT, "t", &event, false).is_none());
}
