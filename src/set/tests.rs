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
        EventType::ALL.len(),
        "every type has a golden file"
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
        c["events"][EventType::UserRisk.uri()]["event_timestamp"],
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
