//! Containment timers and bulk jobs across a SIGKILL, on the real clock, with the sandbox in a
//! process of its own (so its state outlives the service's kill); and the `contain` CLI.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::{Server, bin};
use crate::helpers::{Sandboxed, http_client, tempdir};

const ADMIN: &str = "durable-admin-token-0123456789abcdef";

/// `ssf-transmitter sandbox` in `dir`; its org URL and API token once `sandbox.json` exists.
struct OwnSandbox {
    child: Child,
    org_url: String,
    api_token: String,
}

impl Drop for OwnSandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OwnSandbox {
    async fn start(dir: &Path, seed: Option<&Path>) -> OwnSandbox {
        let mut cmd = bin(dir);
        cmd.env("SSF_SANDBOX__LISTEN", "127.0.0.1:0");
        if let Some(seed) = seed {
            cmd.env("SSF_SANDBOX__SEED_FILE", seed);
        }
        let mut child = cmd
            .arg("sandbox")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sandbox");
        let file = dir.join("sandbox.json");
        for _ in 0..200 {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Ok(v) = serde_json::from_str::<Value>(&text)
            {
                return OwnSandbox {
                    child,
                    org_url: v["org_url"].as_str().expect("org_url").to_owned(),
                    api_token: v["api_token"].as_str().expect("api_token").to_owned(),
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the sandbox did not start");
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = http_client()
            .request(method, format!("{}{path}", self.org_url))
            .header("authorization", format!("SSWS {}", self.api_token));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("sandbox call");
        resp.json().await.unwrap_or(Value::Null)
    }

    /// Management API requests whose path ends with `suffix`.
    async fn count(&self, suffix: &str) -> usize {
        let log = self
            .call(reqwest::Method::GET, "/__sandbox/requests", None)
            .await;
        log.as_array()
            .expect("request log")
            .iter()
            .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
            .count()
    }
}

/// Runs a command off the test's runtime, which keeps serving the in-process app meanwhile.
trait OutputAsync {
    async fn output_async(&mut self) -> std::process::Output;
}

impl OutputAsync for std::process::Command {
    async fn output_async(&mut self) -> std::process::Output {
        let mut cmd = std::mem::replace(self, std::process::Command::new("true"));
        tokio::task::spawn_blocking(move || cmd.output().expect("run"))
            .await
            .expect("join")
    }
}

fn serve(dir: &Path, sandbox: &OwnSandbox) -> (Server, String) {
    let (server, addr) = Server::start(
        dir,
        &[
            ("SSF_ADMIN_TOKEN", ADMIN),
            ("SSF_OKTA__ORG_URL", &sandbox.org_url),
            ("SSF_OKTA__API_TOKEN", &sandbox.api_token),
            ("SSF_DATABASE_URL", "sqlite://data/durable.db"),
        ],
    );
    (server, format!("http://{addr}"))
}

async fn api(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut req = http_client().request(method, url).bearer_auth(ADMIN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_release_timer_survives_sigkill_fires_once_and_never_early() {
    let dir = tempdir();
    let sandbox = OwnSandbox::start(dir.path(), None).await;
    let (server, base) = serve(dir.path(), &sandbox);
    let (st, c) = api(
        reqwest::Method::POST,
        format!("{base}/v1/containments"),
        Some(json!({"user": "john.smith@example.com", "steps": [{"action": "suspend"}], "release_after": 6})),
    )
    .await;
    assert_eq!(st, 201, "{c}");
    let id = c["id"].as_str().expect("id").to_owned();
    let release_at =
        chrono::DateTime::parse_from_rfc3339(c["release_at"].as_str().expect("release_at"))
            .expect("time");
    server.kill9();
    let (server, base) = serve(dir.path(), &sandbox);
    // Restarted before its time: still in force.
    let until_due =
        (release_at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds();
    assert!(
        until_due > 1500,
        "restart took too long to check earliness ({until_due} ms left)"
    );
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(until_due - 1000).unwrap_or(0),
    ))
    .await;
    let (_, now) = api(
        reqwest::Method::GET,
        format!("{base}/v1/containments/{id}"),
        None,
    )
    .await;
    assert_eq!(now["status"], "active", "{now}");
    assert_eq!(sandbox.count("/lifecycle/unsuspend").await, 0);
    let mut released = Value::Null;
    for _ in 0..60 {
        let (_, v) = api(
            reqwest::Method::GET,
            format!("{base}/v1/containments/{id}"),
            None,
        )
        .await;
        if v["status"] == "released" {
            released = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(released["status"], "released", "{released}");
    let at = chrono::DateTime::parse_from_rfc3339(
        released["release"]["started_at"].as_str().expect("started"),
    )
    .expect("time");
    assert!(at >= release_at, "released early: {at} < {release_at}");
    assert!(
        (at - release_at).num_milliseconds() <= 1000,
        "released late: {at} vs {release_at}"
    );
    // Kill again after the release: it is not sent twice.
    server.kill9();
    let (server, _) = serve(dir.path(), &sandbox);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(sandbox.count("/lifecycle/unsuspend").await, 1);
    let user = sandbox
        .call(
            reqwest::Method::GET,
            "/api/v1/users/john.smith@example.com",
            None,
        )
        .await;
    assert_eq!(user["status"], "ACTIVE");
    drop(server);
}

#[tokio::test]
async fn a_job_killed_midway_finishes_under_the_same_id_acting_on_each_user_once() {
    const USERS: usize = 80;
    let dir = tempdir();
    let seed = dir.path().join("seed.json");
    let users: Vec<Value> = (0..USERS)
        .map(|i| json!({"profile": {"login": format!("user{i:03}@bulk.test")}}))
        .collect();
    std::fs::write(&seed, json!({"users": users}).to_string()).expect("seed");
    let sandbox = OwnSandbox::start(dir.path(), Some(&seed)).await;
    // 20 calls a second: the job takes several seconds, long enough to kill it midway.
    sandbox
        .call(
            reqwest::Method::PUT,
            "/__sandbox/faults",
            Some(json!({"api_rate_limit_per_sec": 20})),
        )
        .await;
    let (server, base) = serve(dir.path(), &sandbox);
    let logins: Vec<String> = (0..USERS)
        .map(|i| format!("user{i:03}@bulk.test"))
        .collect();
    let (st, accepted) = api(
        reqwest::Method::POST,
        format!("{base}/v1/jobs"),
        Some(json!({"steps": [{"action": "suspend"}], "users": logins})),
    )
    .await;
    assert_eq!(st, 202, "{accepted}");
    let id = accepted["id"].as_str().expect("id").to_owned();
    let mut progressed = false;
    for _ in 0..100 {
        let (_, j) = api(
            reqwest::Method::GET,
            format!("{base}/v1/jobs/{id}?results=false"),
            None,
        )
        .await;
        if j["done"].as_i64().unwrap_or(0) >= 10 {
            progressed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(progressed, "the job did not start");
    server.kill9();
    let (_, before) = (0, sandbox.count("/lifecycle/suspend").await);
    assert!(before < USERS, "killed midway ({before} suspends sent)");
    let (server, base) = serve(dir.path(), &sandbox);
    let mut job = Value::Null;
    for _ in 0..300 {
        let (_, j) = api(reqwest::Method::GET, format!("{base}/v1/jobs/{id}"), None).await;
        if j["status"] != "running" {
            job = j;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["done"], USERS, "{job}");
    assert_eq!(job["failed"], 0);
    // Each user is suspended; a suspend repeated for a user that was in flight at the kill is
    // answered "already in that state" and counted done.
    let suspends = sandbox.count("/lifecycle/suspend").await;
    assert!(
        (USERS..=USERS + 8).contains(&suspends),
        "{suspends} suspends for {USERS} users"
    );
    let repeats = job["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["note"].as_str().is_some_and(|n| n.contains("already")))
        .count();
    assert_eq!(
        suspends - USERS,
        repeats,
        "every repeated suspend is reported as already done"
    );
    drop(server);
}

#[tokio::test]
async fn contain_submits_a_job_from_a_file_and_follows_it_to_the_end() {
    let dir = tempdir();
    let s = Sandboxed::start(dir.path()).await;
    let token = s
        .app
        .client_with(
            "contain-cli",
            &[
                ssf_transmitter::auth::Scope::EnforceWrite,
                ssf_transmitter::auth::Scope::EnforceRead,
            ],
        )
        .await;
    let file = dir.path().join("users.txt");
    std::fs::write(
        &file,
        "# credential dump 2026-12-04\njane.doe@example.com\n\njohn.smith@example.com\n",
    )
    .expect("write");
    let out = bin(dir.path())
        .args([
            "contain",
            "--users-file",
            "users.txt",
            "--steps",
            "suspend,clear_sessions",
            "--reason",
            "TIP 7",
        ])
        .args(["--server", &s.app.base, "--token", &token])
        .output_async()
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("2 of 2 users done"), "{stdout}");
    // Not a terminal: plain progress lines.
    assert!(stderr.contains("2/2 users, 2 done, 0 failed"), "{stderr}");
    assert_eq!(
        s.sandbox
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/lifecycle/suspend"))
            .count(),
        2
    );
    // A user that cannot be found: exit 1, and the user is named.
    std::fs::write(&file, "nobody@example.com\njane.doe@example.com\n").expect("write");
    let out = bin(dir.path())
        .args(["contain", "--users-file", "users.txt", "--steps", "suspend"])
        .env("SSF_SERVER", &s.app.base)
        .env("SSF_TOKEN", &token)
        .output_async()
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("nobody@example.com: failed"), "{stdout}");
    // Bad steps, a bad token: exit 2 with the reason.
    let out = bin(dir.path())
        .args(["contain", "--users-file", "users.txt", "--steps", "explode"])
        .args(["--server", &s.app.base, "--token", &token])
        .output_async()
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown step explode"));
    let out = bin(dir.path())
        .args(["contain", "--users-file", "users.txt", "--steps", "suspend"])
        .args(["--server", &s.app.base, "--token", "wrong"])
        .output_async()
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
