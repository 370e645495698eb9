//! Several `serve` processes on one PostgreSQL database (PostgreSQL only): outbox claims keep
//! every accepted SET delivered, each subject in order, and no SET pushed by two replicas at
//! once — also when one replica is killed with SIGKILL mid-load.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::Server;
use crate::helpers::{decode, http_client, tempdir};
use crate::receiver::FakeReceiver;

const ADMIN: &str = "replicas-admin-token-0123456789abcdef";
const SUBJECTS: usize = 30;
const SIGNALS: usize = 300;

#[tokio::test]
async fn three_replicas_on_one_database_survive_a_sigkill() {
    if !crate::pg::enabled() {
        eprintln!("skipped: three replicas on one database need SSF_TEST_BACKEND=postgres");
        return;
    }
    let started = Instant::now();
    let dir = tempdir();
    let db = crate::pg::database_url_for(dir.path());
    let receiver = FakeReceiver::start().await;
    receiver.set_fail_rate(0.2);
    // Pushes take a while, so two at once of one SET would overlap visibly.
    receiver.set_latency(Duration::from_millis(30));
    let envs = [
        ("SSF_ADMIN_TOKEN", ADMIN),
        ("SSF_DATABASE_URL", db.as_str()),
        ("SSF_OKTA__ORG_URL", receiver.org_url.as_str()),
        ("SSF_DELIVERY__CONCURRENCY", "8"),
        ("SSF_DELIVERY__BACKOFF_INITIAL_MS", "20"),
        ("SSF_DELIVERY__BACKOFF_MAX_SECS", "1"),
        ("SSF_DELIVERY__POLL_INTERVAL_MS", "50"),
        // The claim lease is this + 5 s: the killed replica's SETs move after 6 s.
        ("SSF_DELIVERY__REQUEST_TIMEOUT_MS", "1000"),
    ];
    // One directory, so one keys dir: the first replica creates the key, the others load it.
    let (first, addr0) = Server::start(dir.path(), &envs);
    let (second, addr1) = Server::start(dir.path(), &envs);
    let (third, addr2) = Server::start(dir.path(), &envs);
    let bases = [addr0, addr1, addr2].map(|a| format!("http://{a}"));
    let mut victim = Some(second);

    // Each subject's signals are sent one after the other (so acceptance order is defined),
    // round-robin over the three replicas; subjects run in parallel.
    let per_subject = SIGNALS / SUBJECTS;
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..SUBJECTS {
        let bases = bases.clone();
        tasks.spawn(async move {
            let http = http_client();
            let mut jtis = Vec::new();
            for i in 0..per_subject {
                // Replica 1 is killed midway: a signal it cannot take goes to the next one.
                for k in 0..3 {
                    let base = &bases[(s + i + k) % 3];
                    let resp = http
                        .post(format!("{base}/v1/signals/ip-change"))
                        .bearer_auth(ADMIN)
                        .json(&json!({
                            "subject": {"format": "email", "email": format!("u{s}@example.com")},
                            "current_ip_address": format!("10.{s}.0.{i}"),
                            "previous_ip_address": "10.0.0.1",
                        }))
                        .send()
                        .await;
                    match resp {
                        Ok(r) if r.status() == 202 => {
                            let body: Value = r.json().await.expect("json");
                            jtis.push(body["jti"].as_str().expect("jti").to_owned());
                            break;
                        }
                        Ok(r) => panic!("{base} answered {}: {:?}", r.status(), r.text().await),
                        // The killed replica.
                        Err(_) => {}
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (s, jtis)
        });
        if s == SUBJECTS / 2 {
            // Mid-load: let pushes get going, then SIGKILL replica 1 with claims in flight.
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Some(v) = victim.take() {
                v.kill9();
            }
        }
    }
    let mut accepted: HashMap<usize, Vec<String>> = HashMap::new();
    while let Some(done) = tasks.join_next().await {
        let (s, jtis) = done.expect("join");
        accepted.insert(s, jtis);
    }
    let total: usize = accepted.values().map(Vec::len).sum();
    assert!(total >= SIGNALS * 9 / 10, "only {total} signals accepted");

    // Everything accepted is delivered (the killed replica's claims move after their lease).
    let all: HashSet<&String> = accepted.values().flatten().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let delivered_jtis = loop {
        let got: HashSet<String> = receiver
            .received()
            .iter()
            .filter(|r| (200..300).contains(&r.answered))
            .map(|r| jti_of(&r.body))
            .collect();
        if all.iter().all(|j| got.contains(*j)) {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} accepted SETs delivered after 60 s",
            all.iter().filter(|j| got.contains(**j)).count(),
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let received = receiver.received();
    // No SET pushed by two replicas at once: its requests never overlap in time.
    let mut by_jti: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for r in &received {
        by_jti
            .entry(jti_of(&r.body))
            .or_default()
            .push((r.arrived_ms, r.at_ms));
    }
    for (jti, mut spans) in by_jti.clone() {
        spans.sort_unstable();
        for w in spans.windows(2) {
            if let [a, b] = w {
                assert!(
                    b.0 >= a.1,
                    "{jti} was pushed twice at once: {a:?} and {b:?}"
                );
            }
        }
    }
    // Per subject, first deliveries in acceptance order.
    let mut first_delivery: HashMap<String, usize> = HashMap::new();
    for (i, r) in received.iter().enumerate() {
        if (200..300).contains(&r.answered) {
            first_delivery.entry(jti_of(&r.body)).or_insert(i);
        }
    }
    for (s, jtis) in &accepted {
        let positions: Vec<usize> = jtis
            .iter()
            .map(|j| first_delivery.get(j).copied().unwrap_or(usize::MAX))
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "subject u{s}: first deliveries out of acceptance order: {positions:?}"
        );
    }
    let pushes = received.len();
    let duplicates = received
        .iter()
        .filter(|r| (200..300).contains(&r.answered))
        .count()
        - delivered_jtis.len();
    let refused = received.iter().filter(|r| r.answered == 503).count();
    eprintln!(
        "3 replicas, 1 killed: {total} SETs accepted and delivered; {pushes} pushes ({refused} answered 503, \
         {duplicates} duplicate deliveries after the kill), {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(first);
    drop(third);
}

fn jti_of(set: &str) -> String {
    let (_, claims) = decode(set);
    claims["jti"].as_str().unwrap_or_default().to_owned()
}

/// Two replicas on one database share bulk-job users and release timers (PostgreSQL only): each
/// user is acted on once, each timed release runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_job_users_and_timers_acting_once() {
    if !crate::pg::enabled() {
        eprintln!("skipped: replicas on one database need SSF_TEST_BACKEND=postgres");
        return;
    }
    const USERS: usize = 60;
    let dir = tempdir();
    let seed = dir.path().join("seed.json");
    let users: Vec<Value> = (0..USERS)
        .map(|i| json!({"profile": {"login": format!("user{i:03}@ha.test")}}))
        .collect();
    std::fs::write(&seed, json!({"users": users}).to_string()).expect("seed");
    let mut config = crate::helpers::config_for(dir.path());
    config.sandbox.seed_file = Some(seed);
    config.enforcement.job_workers = Some(3);
    let captured = std::sync::Arc::new(std::sync::Mutex::new(None));
    let keep = captured.clone();
    let s = crate::helpers::Sandboxed::start_from(config, move |c, _| {
        *keep.lock().expect("lock") = Some(c.clone());
    })
    .await;
    let second_config = captured.lock().expect("lock").clone().expect("config");
    let second = crate::helpers::TestApp::spawn_with(second_config).await;
    // A slow org, so both replicas' workers are busy at once.
    s.sandbox.set_faults(ssf_transmitter::sandbox::Faults {
        api_latency_ms: 20,
        ..Default::default()
    });
    let token = crate::helpers::ADMIN_TOKEN;
    let logins: Vec<String> = (0..USERS).map(|i| format!("user{i:03}@ha.test")).collect();
    let (st, accepted) = s
        .app
        .post_json(
            "/v1/jobs",
            token,
            &json!({"steps": [{"action": "clear_sessions"}], "users": logins}),
        )
        .await;
    assert_eq!(st, 202, "{accepted}");
    let id = accepted["id"].as_str().expect("id").to_owned();
    let mut job = Value::Null;
    for _ in 0..600 {
        // Read through the other replica: the job is shared state.
        let (_, j) = second.get_json(&format!("/v1/jobs/{id}"), token).await;
        if j["status"] == "done" {
            job = j;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(job["done"], USERS, "{job}");
    let cleared = s
        .sandbox
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.ends_with("/sessions"))
        .count();
    assert_eq!(
        cleared, USERS,
        "each user's sessions cleared once, by one replica"
    );

    // A timed release with both replicas' timers running: one unsuspend.
    let (st, c) = s
        .app
        .post_json(
            "/v1/containments",
            token,
            &json!({"user": "user001@ha.test", "steps": [{"action": "suspend"}], "release_after": 1}),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    assert_eq!(c["status"], "active", "{c}");
    let cid = c["id"].as_str().expect("id").to_owned();
    let mut released = Value::Null;
    for _ in 0..100 {
        let (_, v) = second
            .get_json(&format!("/v1/containments/{cid}"), token)
            .await;
        if v["status"] == "released" {
            released = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(released["status"], "released", "{released}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let unsuspends = s
        .sandbox
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/lifecycle/unsuspend"))
        .count();
    assert_eq!(unsuspends, 1, "the timer fired once across replicas");
    second.stop().await;
}
