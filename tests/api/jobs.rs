//! Bulk jobs against the sandbox: outcomes per user, "already in that state" counted as done,
//! cancel, and bad input.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;

use crate::helpers::{Sandboxed, assert_problem, tempdir};

async fn soc(s: &Sandboxed) -> String {
    s.app
        .client_with("tip", &[Scope::EnforceWrite, Scope::EnforceRead])
        .await
}

async fn wait_for_end(s: &Sandboxed, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let (st, job) = s.app.get_json(&format!("/v1/jobs/{id}"), token).await;
        assert_eq!(st, 200, "{job}");
        if job["status"] != "running" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not end");
}

#[tokio::test]
async fn a_job_acts_on_each_user_and_counts_already_in_that_state_as_done() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let users = json!([
        "jane.doe@example.com",
        "john.smith@example.com",
        "suspended.user@example.com",
        "nobody@example.com",
        "alex.kim"
    ]);
    let resp = s
        .app
        .call(
            Method::POST,
            "/v1/jobs",
            &token,
            Some(&json!({"steps": [{"action": "suspend"}, {"action": "clear_sessions"}], "users": users, "reason": "TIP feed 42"})),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let accepted: Value = resp.json().await.expect("json");
    let id = accepted["id"].as_str().expect("id").to_owned();
    assert_eq!(location, format!("/v1/jobs/{id}"));
    assert_eq!(accepted["status"], "running");
    assert_eq!(accepted["total"], 5);
    let job = wait_for_end(&s, &token, &id).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["total"], 5);
    assert_eq!(job["done"], 3, "{job}");
    assert_eq!(job["failed"], 2, "{job}");
    let results = job["results"].as_array().expect("results");
    let status_of: Vec<(&str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["user"].as_str().expect("user"),
                r["status"].as_str().expect("status"),
            )
        })
        .collect();
    assert_eq!(
        status_of,
        [
            ("jane.doe@example.com", "done"),
            ("john.smith@example.com", "done"),
            ("suspended.user@example.com", "done"),
            ("nobody@example.com", "failed"),
            ("alex.kim", "failed"),
        ]
    );
    assert!(
        results[2]["note"]
            .as_str()
            .unwrap_or_default()
            .contains("already in that state"),
        "{}",
        results[2]
    );
    assert!(
        results[3]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing in Okta matches"),
        "{}",
        results[3]
    );
    assert!(
        results[4]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("candidates"),
        "{}",
        results[4]
    );
    // Each user once: one suspend per resolved, suspendable user.
    let suspends = s
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/lifecycle/suspend"))
        .count();
    assert_eq!(suspends, 3);
    let (_, audit) = s
        .app
        .get_json("/v1/audit?action=job.user", crate::helpers::ADMIN_TOKEN)
        .await;
    assert_eq!(audit.as_array().map(Vec::len), Some(5));
}

#[tokio::test]
async fn cancel_stops_every_okta_call_of_the_job_before_it_answers() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    // Many users (the same few, again and again: each repeat is "already in that state").
    let users: Vec<&str> = ["jane.doe@example.com", "john.smith@example.com"]
        .into_iter()
        .cycle()
        .take(4000)
        .collect();
    let (st, accepted) = s
        .app
        .post_json(
            "/v1/jobs",
            &token,
            &json!({"steps": [{"action": "suspend"}], "users": users}),
        )
        .await;
    assert_eq!(st, 202, "{accepted}");
    let id = accepted["id"].as_str().expect("id").to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (st, cancelled) = s
        .app
        .post_json(&format!("/v1/jobs/{id}/cancel"), &token, &json!({}))
        .await;
    assert_eq!(st, 200, "{cancelled}");
    let seen = s.sandbox.requests().len();
    assert_eq!(cancelled["status"], "cancelled");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        s.sandbox.requests().len(),
        seen,
        "Okta calls after the cancel answered"
    );
    let (_, job) = s.app.get_json(&format!("/v1/jobs/{id}"), &token).await;
    assert_eq!(job["status"], "cancelled");
    let results = job["results"].as_array().expect("results");
    let finished = results.iter().filter(|r| r["status"] == "done").count();
    let never = results
        .iter()
        .filter(|r| r["status"] == "cancelled")
        .count();
    assert!(
        finished > 0 && never > 0,
        "done {finished}, cancelled {never}"
    );
    assert_eq!(finished + never, 4000);
    // Cancelling again answers the job as it is.
    let (st, again) = s
        .app
        .post_json(&format!("/v1/jobs/{id}/cancel"), &token, &json!({}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(again["status"], "cancelled");
}

#[tokio::test]
async fn bad_jobs_are_refused_and_ids_steer_nowhere() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = soc(&s).await;
    let reader = s.app.client_with("reader", &[Scope::EnforceRead]).await;
    let ok = json!({"steps": [{"action": "suspend"}], "users": ["jane.doe@example.com"]});
    let resp = s
        .app
        .call(Method::POST, "/v1/jobs", &reader, Some(&ok))
        .await;
    assert_problem(resp, 403).await;
    let too_many: Vec<String> = (0..10_001).map(|i| format!("u{i}")).collect();
    for (bad, field) in [
        (
            json!({"steps": [{"action": "suspend"}], "users": []}),
            "users",
        ),
        (
            json!({"steps": [{"action": "suspend"}], "users": too_many}),
            "users",
        ),
        (
            json!({"steps": [{"action": "suspend"}], "users": ["ok", "a\nb"]}),
            "users[1]",
        ),
        (
            json!({"steps": [], "users": ["jane.doe@example.com"]}),
            "steps",
        ),
        (
            json!({"steps": [{"action": "suspend"}], "users": ["x"], "extra": 1}),
            "extra",
        ),
    ] {
        let resp = s
            .app
            .call(Method::POST, "/v1/jobs", &token, Some(&bad))
            .await;
        let p = assert_problem(resp, 422).await;
        assert!(p.to_string().contains(field), "{field}: {p}");
    }
    for id in [
        "../x",
        "job_%2F..",
        "job_123",
        "%3Fa",
        "ctn_0123456789abcdef0123456789abcdef",
    ] {
        let (st, _) = s.app.get_json(&format!("/v1/jobs/{id}"), &token).await;
        assert_eq!(st, 404, "{id}");
        let (st, _) = s
            .app
            .post_json(&format!("/v1/jobs/{id}/cancel"), &token, &json!({}))
            .await;
        assert_eq!(st, 404, "{id}");
    }
}

#[tokio::test]
async fn a_300_user_job_against_a_60_per_second_org_stays_under_its_rate_limit() {
    const USERS: usize = 300;
    let dir = tempdir();
    let seed = dir.path().join("seed.json");
    let users: Vec<Value> = (0..USERS)
        .map(|i| json!({"profile": {"login": format!("user{i:03}@bulk.test")}}))
        .collect();
    std::fs::write(&seed, json!({"users": users}).to_string()).expect("seed");
    let mut config = crate::helpers::config_for(dir.path());
    config.sandbox.seed_file = Some(seed);
    config.enforcement.job_workers = Some(8);
    let s = Sandboxed::start_from(config, |_, _| {}).await;
    let token = soc(&s).await;
    s.sandbox.set_faults(ssf_transmitter::sandbox::Faults {
        api_rate_limit_per_sec: Some(60),
        ..Default::default()
    });
    let logins: Vec<String> = (0..USERS)
        .map(|i| format!("user{i:03}@bulk.test"))
        .collect();
    let started = std::time::Instant::now();
    let (st, accepted) = s
        .app
        .post_json("/v1/jobs", &token, &json!({"steps": [{"action": "suspend"}, {"action": "clear_sessions"}], "users": logins}))
        .await;
    assert_eq!(st, 202, "{accepted}");
    let id = accepted["id"].as_str().expect("id").to_owned();
    let mut job = Value::Null;
    for _ in 0..1200 {
        let (_, j) = s.app.get_json(&format!("/v1/jobs/{id}"), &token).await;
        if j["status"] != "running" {
            job = j;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["done"], USERS, "{}", job["results"]);
    let stats = s.sandbox.rate_limit_stats();
    let calls = stats.admitted + stats.rejected;
    let share = stats.rejected as f64 / calls as f64;
    println!(
        "bulk job: {USERS} users, 2 steps, 8 workers, org limit 60/s: {calls} Okta calls, {} answered 429 ({:.1} %), {secs:.1} s, {:.0} users/minute",
        stats.rejected,
        share * 100.0,
        USERS as f64 / secs * 60.0
    );
    assert!(
        share <= 0.10,
        "{} of {calls} calls answered 429",
        stats.rejected
    );
    let suspended = s
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/lifecycle/suspend"))
        .count();
    assert_eq!(suspended, USERS);
}

/// Replicas share a job's users through leases: a user leased by a live process is not claimed
/// by another; once the lease runs out (its process died) another claims it, and the first can
/// no longer record an outcome for it. Containments are leased the same way.
#[tokio::test]
async fn leases_share_work_between_processes_and_outlive_none() {
    let dir = tempdir();
    let app = crate::helpers::TestApp::spawn(dir.path()).await;
    let store = &app.store;
    let job = ssf_transmitter::store::JobRow {
        id: "job_0123456789abcdef0123456789abcdef".into(),
        client_id: "c".into(),
        status: "cancelled".into(), // the app's own workers leave it alone
        total: 3,
        created_at: 0,
        updated_at: 0,
        record: "{}".into(),
    };
    store
        .insert_job(&job, &["a".into(), "b".into(), "c".into()])
        .await
        .expect("insert");
    let t = 1_000_000;
    let a = store
        .claim_job_items(&job.id, "A", t, t + 30_000, 2)
        .await
        .expect("claim");
    assert_eq!(a.iter().map(|i| i.idx).collect::<Vec<_>>(), [0, 1]);
    let b = store
        .claim_job_items(&job.id, "B", t + 1, t + 30_001, 5)
        .await
        .expect("claim");
    assert_eq!(
        b.iter().map(|i| i.idx).collect::<Vec<_>>(),
        [2],
        "A's live leases are A's"
    );
    assert!(
        store
            .renew_job_item(&job.id, 0, "A", t + 40_000)
            .await
            .expect("renew")
    );
    // A dies: item 1's lease runs out (item 0 was renewed and is still A's).
    let b = store
        .claim_job_items(&job.id, "B", t + 35_000, t + 65_000, 5)
        .await
        .expect("claim");
    // Item 1 (A's, not renewed) and item 2 (B's own, not renewed either) ran out; 0 did not.
    assert_eq!(
        b.iter().map(|i| i.idx).collect::<Vec<_>>(),
        [1, 2],
        "taken over after the lease"
    );
    assert!(
        !store
            .finish_job_item(&job.id, 1, "A", "done", None, t + 36_000)
            .await
            .expect("finish"),
        "A no longer holds it"
    );
    assert!(
        store
            .finish_job_item(&job.id, 1, "B", "done", None, t + 36_000)
            .await
            .expect("finish")
    );
    assert!(
        !store
            .renew_job_item(&job.id, 1, "B", t + 90_000)
            .await
            .expect("renew"),
        "finished: freed"
    );

    // Containments: the same rule.
    let row = ssf_transmitter::store::ContainmentRow {
        id: "ctn_0123456789abcdef0123456789abcdef".into(),
        client_id: "c".into(),
        status: "planned".into(),
        user_id: None,
        user_login: None,
        release_at: None,
        created_at: 0,
        updated_at: 0,
        record: "{}".into(),
        lease: Some(("A".into(), t + 30_000)),
    };
    store.insert_containment(&row).await.expect("insert");
    assert!(
        !store
            .lease_containment(&row.id, "B", t, t + 30_000)
            .await
            .expect("lease")
    );
    assert!(
        store
            .lease_containment(&row.id, "A", t + 10, t + 40_000)
            .await
            .expect("renew")
    );
    assert!(
        store
            .lease_containment(&row.id, "B", t + 40_001, t + 70_000)
            .await
            .expect("take over")
    );
    let stale = store
        .unleased_containments("planned", t + 50_000)
        .await
        .expect("stale");
    assert!(stale.is_empty(), "B's lease is live");
    let stale = store
        .unleased_containments("planned", t + 70_001)
        .await
        .expect("stale");
    assert_eq!(stale.len(), 1);
}
