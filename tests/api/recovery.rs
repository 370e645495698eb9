//! A receiver outage: pushes to several subjects fail, the receiver is marked down and probed
//! with one SET at a time, and when a probe gets through the whole backlog is due at once —
//! not after each SET's own back-off — and drains in order per subject.

use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;

use crate::helpers::{TestApp, config_with_receiver, decode, tempdir};
use crate::receiver::FakeReceiver;

const SUBJECTS: usize = 20;
const PER_SUBJECT: usize = 10;

#[tokio::test]
async fn after_an_outage_the_backlog_drains_when_a_probe_gets_through() {
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    let mut config = config_with_receiver(dir.path(), &receiver.org_url);
    // Each SET's own back-off would hold it for 30 s or more after its first failure.
    config.delivery.backoff_initial_ms = 60_000;
    config.delivery.backoff_max_secs = 300;
    config.delivery.probe_max_secs = 1;
    let app = TestApp::spawn_with(config).await;
    let token = app
        .client_with("ueba", &[Scope::SignalsWrite, Scope::SignalsRead])
        .await;
    receiver.set_fail_rate(1.0);
    let signals: Vec<Value> = (0..SUBJECTS * PER_SUBJECT)
        .map(|i| {
            json!({"type": "ip-change",
                   "subject": {"format": "email", "email": format!("u{}@example.com", i % SUBJECTS)},
                   "current_ip_address": format!("10.0.{}.{}", i / 256, i % 256),
                   "previous_ip_address": "192.0.2.1"})
        })
        .collect();
    let (st, resp) = app
        .post_json("/v1/signals/batch", &token, &json!({"signals": signals}))
        .await;
    assert_eq!((st, resp["queued"].as_u64()), (200, Some(200)), "{resp}");

    // Down: shown on the API and in the metrics, and probed (one SET at a time).
    let mut down = Value::Null;
    for _ in 0..200 {
        let (_, r) = app.get_json("/v1/signals/receivers", &token).await;
        if r["receivers"][0]["state"] == "down" {
            down = r;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let okta = &down["receivers"][0];
    assert_eq!(okta["stream"], "okta", "{down}");
    assert_eq!(okta["state"], "down", "{down}");
    assert!(
        okta["down_since"].is_string() && okta["next_probe_at"].is_string(),
        "{down}"
    );
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"ssf_receiver_up{stream="okta"} 0"#),
        "{metrics}"
    );
    let before = receiver.received().len();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let probes = receiver.received().len() - before;
    assert!(
        (1..=4).contains(&probes),
        "while down, only probes go out (at most one a second here): {probes}"
    );

    // Back: every waiting SET goes out now, in order per subject.
    receiver.set_fail_rate(0.0);
    let delivered = receiver.wait_delivered(SUBJECTS * PER_SUBJECT, 20).await;
    let mut last: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for set in &delivered {
        let (_, claims) = decode(set);
        let event = claims["events"]
            .as_object()
            .and_then(|e| e.values().next().cloned())
            .expect("event");
        let who = event["subject"]["user"]["email"]
            .as_str()
            .expect("email")
            .to_owned();
        let n: u32 = event["current_ip_address"]
            .as_str()
            .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
            .map(|ip| u32::from(ip) & 0xffff)
            .expect("ip");
        if let Some(prev) = last.insert(who.clone(), n) {
            assert!(n > prev, "{who}: {n} after {prev}");
        }
    }
    let (_, r) = app.get_json("/v1/signals/receivers", &token).await;
    assert_eq!(r["receivers"][0]["state"], "up", "{r}");
    assert!(r["receivers"][0].get("down_since").is_none(), "{r}");
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"ssf_receiver_up{stream="okta"} 1"#),
        "{metrics}"
    );
}
