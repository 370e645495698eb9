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
const USER_RISK: &str = "https://schemas.okta.com/secevent/okta/event-type/user-risk-change";

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

/// Two replicas (PostgreSQL only) share per-subject state, idempotency keys and delivery status:
/// concurrent risk changes of one subject sent to both form one chain (each SET's
/// `previous_level` is the level the one before it carried, in delivery order); a key answered
/// by a replica that is SIGKILLed right after is replayed by the other with the same `jti`; a
/// request in flight at a kill leaves exactly one SET for its key; `GET /v1/signals/{jti}`
/// answers the same on both.
#[tokio::test]
async fn two_replicas_share_subject_state_idempotency_and_status() {
    if !crate::pg::enabled() {
        eprintln!("skipped: replicas on one database need SSF_TEST_BACKEND=postgres");
        return;
    }
    let dir = tempdir();
    let db = crate::pg::database_url_for(dir.path());
    let receiver = FakeReceiver::start().await;
    let envs = [
        ("SSF_ADMIN_TOKEN", ADMIN),
        ("SSF_DATABASE_URL", db.as_str()),
        ("SSF_OKTA__ORG_URL", receiver.org_url.as_str()),
        ("SSF_DELIVERY__BACKOFF_INITIAL_MS", "20"),
        ("SSF_DELIVERY__POLL_INTERVAL_MS", "50"),
        ("SSF_DELIVERY__REQUEST_TIMEOUT_MS", "1000"),
    ];
    let (a, addr_a) = Server::start(dir.path(), &envs);
    let (b, addr_b) = Server::start(dir.path(), &envs);
    let (base_a, base_b) = (format!("http://{addr_a}"), format!("http://{addr_b}"));
    let http = http_client();

    // 1. One subject, 40 risk changes at once, half to each replica.
    let levels = ["low", "medium", "high", "medium", "low"];
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..40usize {
        let base = if i % 2 == 0 { &base_a } else { &base_b }.clone();
        let http = http.clone();
        let level = levels[i % levels.len()];
        sends.spawn(async move {
            let r = http
                .post(format!("{base}/v1/signals/user-risk"))
                .bearer_auth(ADMIN)
                .json(&json!({"subject": {"format": "email", "email": "chain@example.com"}, "current_level": level}))
                .send()
                .await
                .expect("send");
            let status = r.status().as_u16();
            let body: Value = r.json().await.expect("json");
            (status, body)
        });
    }
    let mut queued = 0;
    while let Some(done) = sends.join_next().await {
        let (status, body) = done.expect("join");
        match status {
            202 => queued += 1,
            200 => assert_eq!(body["status"], "unchanged", "{body}"),
            other => panic!("answered {other}: {body}"),
        }
    }
    assert!(queued >= 2, "{queued} of 40 sent");
    let delivered = receiver.wait_delivered(queued, 30).await;
    let chain: Vec<(String, String)> = delivered
        .iter()
        .map(|t| {
            let e = decode(t).1["events"][USER_RISK].clone();
            (
                e["previous_level"].as_str().unwrap_or_default().to_owned(),
                e["current_level"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        chain[0].0, "none",
        "a new subject starts from none: {chain:?}"
    );
    for w in chain.windows(2) {
        assert_eq!(
            w[1].0, w[0].1,
            "each SET's previous_level is the level the SET before it carried: {chain:?}"
        );
        assert_ne!(
            w[1].1, w[0].1,
            "an unchanged level is not sent again: {chain:?}"
        );
    }

    // 2. Replica A answers a keyed request and is SIGKILLed at once: B replays the answer.
    let body = json!({"subject": {"format": "email", "email": "kim@example.com"}, "current_level": "high"});
    let first = http
        .post(format!("{base_a}/v1/signals/user-risk"))
        .bearer_auth(ADMIN)
        .header("Idempotency-Key", "kill-after-commit")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.expect("json");
    a.kill9();
    let replay = http
        .post(format!("{base_b}/v1/signals/user-risk"))
        .bearer_auth(ADMIN)
        .header("Idempotency-Key", "kill-after-commit")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(replay.status(), 202);
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let replay: Value = replay.json().await.expect("json");
    assert_eq!(replay["jti"], first["jti"], "{replay} vs {first}");

    // 3. Requests in flight when their replica is killed: whether or not the first committed,
    //    the retry on B leaves exactly one SET for the key.
    let mut restarted = None;
    for (round, delay_ms) in [0u64, 3, 8, 15].into_iter().enumerate() {
        let (victim, addr) = Server::start(dir.path(), &envs);
        let email = format!("inflight{round}@example.com");
        let key = format!("kill-in-flight-{round}");
        let body =
            json!({"subject": {"format": "email", "email": email}, "current_level": "medium"});
        let send = {
            let http = http.clone();
            let (body, key) = (body.clone(), key.clone());
            tokio::spawn(async move {
                http.post(format!("http://{addr}/v1/signals/user-risk"))
                    .bearer_auth(ADMIN)
                    .header("Idempotency-Key", key)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        };
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        victim.kill9();
        let first = send.await.expect("join");
        let retry = http
            .post(format!("{base_b}/v1/signals/user-risk"))
            .bearer_auth(ADMIN)
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(retry.status(), 202, "round {round} (first: {first:?})");
        let retry: Value = retry.json().await.expect("json");
        let (_, list) = get(
            &http,
            &format!("{base_b}/v1/signals?subject={email}&limit=10"),
        )
        .await;
        let sets = list["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            sets.len(),
            1,
            "round {round} (first: {first:?}): one SET for the key: {list}"
        );
        assert_eq!(sets[0]["jti"], retry["jti"], "round {round}: {list}");
        if round == 3 {
            restarted = Some(Server::start(dir.path(), &envs));
        }
    }

    // 4. Every replica shows the same delivery status.
    let (c, addr_c) = restarted.expect("replica");
    let jti = first["jti"].as_str().expect("jti").to_owned();
    let mut views = (Value::Null, Value::Null);
    for _ in 0..100 {
        let (sb, vb) = get(&http, &format!("{base_b}/v1/signals/{jti}")).await;
        let (sc, vc) = get(&http, &format!("http://{addr_c}/v1/signals/{jti}")).await;
        assert_eq!((sb, sc), (200, 200), "{vb} / {vc}");
        views = (vb, vc);
        if views.0["status"] == "delivered" && views.0 == views.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(views.0["status"], "delivered", "{}", views.0);
    assert_eq!(views.0, views.1, "both replicas show the same SET");
    drop(b);
    drop(c);
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = http.get(url).bearer_auth(ADMIN).send().await.expect("get");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A receiver's 429 pauses the stream for every process on the store, not only the one that
/// got it: the replica that took the 429 is SIGKILLed and a fresh process (no memory of the
/// pause) takes another subject's signal, which still waits for `Retry-After`. Runs on both
/// backends (on SQLite the fresh process is the same node restarted).
#[tokio::test]
async fn a_rate_limit_pauses_every_replica_and_survives_a_restart() {
    let dir = tempdir();
    let db = if crate::pg::enabled() {
        crate::pg::database_url_for(dir.path())
    } else {
        String::new()
    };
    let receiver = FakeReceiver::start().await;
    receiver.script([crate::receiver::Reply::RetryAfter { secs: 4 }]);
    let mut envs = vec![
        ("SSF_ADMIN_TOKEN", ADMIN),
        ("SSF_OKTA__ORG_URL", receiver.org_url.as_str()),
        ("SSF_DELIVERY__POLL_INTERVAL_MS", "50"),
        ("SSF_DELIVERY__REQUEST_TIMEOUT_MS", "1000"),
    ];
    if crate::pg::enabled() {
        envs.push(("SSF_DATABASE_URL", db.as_str()));
    }
    let http = http_client();
    let (first, addr) = Server::start(dir.path(), &envs);
    let r = http
        .post(format!("http://{addr}/v1/signals/user-risk"))
        .bearer_auth(ADMIN)
        .json(&json!({"subject": {"format": "email", "email": "limited@example.com"}, "current_level": "high"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 202);
    for _ in 0..200 {
        if !receiver.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the worker write the outcome (and the pause), then kill it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.kill9();
    let limited_at = receiver.received()[0].at_ms;
    assert_eq!(receiver.received()[0].answered, 429);

    let (second, addr) = Server::start(dir.path(), &envs);
    let r = http
        .post(format!("http://{addr}/v1/signals/user-risk"))
        .bearer_auth(ADMIN)
        .json(&json!({"subject": {"format": "email", "email": "other@example.com"}, "current_level": "low"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 202);
    let delivered = receiver.wait_delivered(2, 20).await;
    assert_eq!(delivered.len(), 2);
    let received = receiver.received();
    let after: Vec<i64> = received[1..]
        .iter()
        .map(|r| r.arrived_ms - limited_at)
        .collect();
    assert!(
        after.iter().all(|ms| *ms >= 4000),
        "no SET pushed within Retry-After: 4 of the 429, by any process: {after:?} ms"
    );
    drop(second);
}

/// Replicas judge each other's leases by their own clocks (PostgreSQL only): a process whose
/// clock is more than 2 s from the database server's refuses to start, saying what to fix; one
/// within the bound starts and publishes its skew.
#[tokio::test]
async fn a_replica_whose_clock_is_off_from_the_database_refuses_to_start() {
    if !crate::pg::enabled() {
        eprintln!("skipped: the clock check is for a shared PostgreSQL database");
        return;
    }
    let dir = tempdir();
    let ahead = std::sync::Arc::new(OffsetClock(chrono::Duration::seconds(10)));
    let err = match ssf_transmitter::app::Application::build(
        crate::helpers::config_for(dir.path()),
        ahead,
    )
    .await
    {
        Ok(_) => panic!("a replica 10 s ahead of the database started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("ms ahead of the database server's") && err.contains("synchronise the clocks"),
        "{err}"
    );
    let behind = std::sync::Arc::new(OffsetClock(chrono::Duration::seconds(-3)));
    let err = match ssf_transmitter::app::Application::build(
        crate::helpers::config_for(dir.path()),
        behind,
    )
    .await
    {
        Ok(_) => panic!("a replica 3 s behind the database started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("ms behind the database server's"), "{err}");

    let app = crate::helpers::TestApp::spawn(dir.path()).await;
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = app
            .http
            .get(app.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if metrics.contains("ssf_clock_skew_seconds ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let skew: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ssf_clock_skew_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ssf_clock_skew_seconds in {metrics}"));
    assert!(
        skew.abs() < 2.0,
        "this machine's clock and the database's: {skew} s"
    );
}

/// The machine's time, off by a fixed amount: a replica whose clock is not in sync.
#[derive(Debug)]
struct OffsetClock(chrono::Duration);

impl ssf_transmitter::clock::Clock for OffsetClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.0
    }
}
