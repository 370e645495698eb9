//! The binary itself: configuration errors, the `clients` and `migrate` commands, JSON logs that
//! never hold a token, and graceful shutdown on SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{assert_problem, http_client, tempdir};

pub fn bin(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ssf-transmitter"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SSF_LISTEN", "127.0.0.1:0")
        .current_dir(dir);
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run binary")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_configuration_exits_non_zero_naming_the_key() {
    let dir = tempdir();
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("SSF_LISTNE", "x".into())], "SSF_LISTNE"),
        (vec![("SSF_ISSUER", "not a url".into())], "SSF_ISSUER"),
        (
            vec![("SSF_ISSUER", "http://public.example.com".into())],
            "SSF_ISSUER",
        ),
        (vec![("SSF_LISTEN", "0.0.0.0:0".into())], "SSF_ISSUER"),
        (
            vec![("SSF_DATABASE_URL", "mysql://x".into())],
            "SSF_DATABASE_URL",
        ),
        (
            vec![("SSF_MAX_BODY_BYTES", "lots".into())],
            "SSF_MAX_BODY_BYTES",
        ),
        (vec![("SSF_ADMIN_TOKEN", "short".into())], "SSF_ADMIN_TOKEN"),
        (
            vec![("SSF_ADMIN_TOKEN_FILE", "/nonexistent/token".into())],
            "SSF_ADMIN_TOKEN_FILE",
        ),
    ];
    for (env, key) in cases {
        let mut cmd = bin(dir.path());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = run(cmd.arg("serve"));
        assert!(!out.status.success(), "{env:?} must fail");
        let err = stderr(&out);
        assert!(err.contains(key), "{env:?}: stderr names {key}: {err}");
    }
    // Unreadable keys dir: a path under a regular file (root can read anything, so use a file).
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").expect("write");
    for keys_dir in [file.clone(), file.join("keys")] {
        let out = run(bin(dir.path()).env("SSF_KEYS_DIR", &keys_dir).arg("serve"));
        assert!(!out.status.success());
        assert!(stderr(&out).contains("SSF_KEYS_DIR"), "{}", stderr(&out));
    }
    // Unknown key in the TOML file; and a --config file that does not exist.
    let toml = dir.path().join("c.toml");
    std::fs::write(
        &toml,
        "listen = \"127.0.0.1:0\"\n[okta]\norg_url = \"https://x.okta.com\"\nbogus = 1\n",
    )
    .expect("write");
    let out = run(bin(dir.path()).arg("--config").arg(&toml).arg("serve"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("okta"), "{}", stderr(&out));
    let out = run(bin(dir.path()).args(["--config", "missing.toml", "serve"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("missing.toml"), "{}", stderr(&out));
}

#[test]
fn clients_and_migrate_commands() {
    let dir = tempdir();
    let out = run(bin(dir.path()).arg("migrate"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        dir.path().join("data/ssf-transmitter.db").exists(),
        "default database created"
    );

    let out = run(bin(dir.path()).args([
        "clients",
        "add",
        "ueba",
        "--scope",
        "signals:write",
        "--scope",
        "signals:read",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned();
    assert!(
        token.starts_with("ssft_"),
        "stdout is exactly the token: {token}"
    );

    let out = run(bin(dir.path()).args(["clients", "add", "bad", "--scope", "root"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("root"));
    let out = run(bin(dir.path()).args(["clients", "add", "ueba", "--scope", "admin"]));
    assert!(!out.status.success(), "duplicate name");

    let out = run(bin(dir.path()).args(["clients", "list"]));
    let list = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        list.contains("ueba")
            && list.contains("active")
            && list.contains("signals:write signals:read"),
        "{list}"
    );
    assert!(!list.contains(&token));

    let out = run(bin(dir.path()).args(["clients", "revoke", "ueba"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(bin(dir.path()).args(["clients", "list"]));
    assert!(
        String::from_utf8(out.stdout)
            .expect("utf8")
            .contains("revoked")
    );
    let out = run(bin(dir.path()).args(["clients", "revoke", "ueba"]));
    assert!(!out.status.success());

    let out = run(bin(dir.path()).args(["keys", "list"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let keys = String::from_utf8(out.stdout).expect("utf8");
    assert!(keys.contains("active"), "{keys}");
    let out = run(bin(dir.path()).args(["keys", "retire", "no-such-kid"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no-such-kid"));
    let out = run(bin(dir.path()).args(["keys", "generate", "--bits", "1024"]));
    assert!(!out.status.success(), "1024-bit keys are not offered");
}

pub struct Server {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Server {
    pub fn start(dir: &Path, envs: &[(&str, &str)]) -> (Server, String) {
        let mut envs = envs.to_vec();
        envs.push(("SSF_LOG_FILTER", "trace"));
        Self::spawn(dir, &envs, &["serve"], &["serving"])
    }

    /// `serve --sandbox`, ready once it serves and has registered with the sandbox.
    pub fn start_sandboxed(dir: &Path, envs: &[(&str, &str)]) -> (Server, String) {
        let mut envs = envs.to_vec();
        if !envs.iter().any(|(k, _)| *k == "SSF_SANDBOX__LISTEN") {
            envs.push(("SSF_SANDBOX__LISTEN", "127.0.0.1:0"));
        }
        Self::spawn(
            dir,
            &envs,
            &["serve", "--sandbox"],
            &["serving", "registered with the Okta sandbox"],
        )
    }

    /// Runs the binary with JSON logs until every `ready` message has been logged; returns the
    /// address it serves on.
    fn spawn(dir: &Path, envs: &[(&str, &str)], args: &[&str], ready: &[&str]) -> (Server, String) {
        let mut cmd = bin(dir);
        cmd.env("SSF_LOG_FORMAT", "json");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            lines: rx,
            log: Vec::new(),
        };
        let mut addr = None;
        let mut waiting: Vec<&str> = ready.to_vec();
        while !waiting.is_empty() {
            let line = server
                .lines
                .recv_timeout(Duration::from_secs(60))
                .expect("server starts");
            server.log.push(line.clone());
            let v: Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("JSON log line: {line}"));
            if v["message"] == "serving" {
                addr = v["addr"].as_str().map(str::to_owned);
            }
            waiting.retain(|m| v["message"] != *m);
        }
        (server, addr.expect("serving addr"))
    }

    /// SIGTERM; asserts a clean exit and returns every log line.
    pub fn stop(mut self) -> Vec<String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        assert!(self.child.wait().expect("wait").success());
        self.drain(Duration::from_millis(200));
        std::mem::take(&mut self.log)
    }

    /// SIGKILL: no shutdown at all, as a crash or an OOM kill.
    pub fn kill9(mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    fn drain(&mut self, wait: Duration) {
        while let Ok(line) = self.lines.recv_timeout(wait) {
            self.log.push(line);
        }
    }
}

/// A failing assertion leaves no server running.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn json_logs_never_contain_tokens_and_sigterm_stops_gracefully() {
    let dir = tempdir();
    let admin = "bootstrap-admin-token-abcdefghijklmnop";
    let (mut server, addr) = Server::start(dir.path(), &[("SSF_ADMIN_TOKEN", admin)]);
    let http = http_client();
    let base = format!("http://{addr}");
    let created: Value = http
        .post(format!("{base}/v1/admin/clients"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"name": "siem", "scopes": ["admin"]}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let token = created["token"].as_str().expect("token").to_owned();
    let resp = http
        .get(format!("{base}/v1/admin/keys"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let resp = http
        .get(format!("{base}/v1/admin/keys"))
        .bearer_auth("ssft_wrong")
        .send()
        .await
        .expect("send");
    assert_problem(resp, 401).await;

    let pid = server.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = server.child.wait().expect("wait");
    server.drain(Duration::from_secs(2));
    assert!(exit.success(), "SIGTERM exits cleanly: {exit:?}");
    let log = server.log.join("\n");
    for line in &server.log {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|_| panic!("every line is JSON: {line}"));
    }
    assert!(log.contains("shutdown requested"), "{log}");
    assert!(log.contains("\"stopped\""), "{log}");
    assert!(
        log.contains("request_id"),
        "requests are logged with their id: {log}"
    );
    for secret in [admin, token.as_str(), "ssft_wrong"] {
        assert!(!log.contains(secret), "a token leaked into the logs");
    }
}

#[tokio::test]
async fn sigkill_mid_queue_loses_no_accepted_signal() {
    use crate::receiver::FakeReceiver;
    let dir = tempdir();
    let receiver = FakeReceiver::start().await;
    receiver.set_latency(Duration::from_millis(400));
    let admin = "bootstrap-admin-token-abcdefghijklmnop";
    let envs = [
        ("SSF_ADMIN_TOKEN", admin),
        ("SSF_OKTA__ORG_URL", receiver.org_url.as_str()),
        ("SSF_DELIVERY__CONCURRENCY", "4"),
        ("SSF_DELIVERY__BACKOFF_INITIAL_MS", "50"),
        ("SSF_DELIVERY__POLL_INTERVAL_MS", "100"),
    ];
    let (mut server, addr) = Server::start(dir.path(), &envs);
    let http = http_client();
    let base = format!("http://{addr}");
    let mut accepted = Vec::new();
    for i in 0..40 {
        // Half the signals go to one user, to check that order survives the crash too.
        let email = if i % 2 == 0 {
            "chain@example.com".to_owned()
        } else {
            format!("u{i}@example.com")
        };
        let resp = http
            .post(format!("{base}/v1/signals/ip-change"))
            .bearer_auth(admin)
            .json(&serde_json::json!({
                "subject": {"format": "email", "email": email},
                "current_ip_address": format!("10.1.0.{i}"),
                "previous_ip_address": "10.0.0.1",
            }))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 202);
        let body: Value = resp.json().await.expect("json");
        accepted.push(body["jti"].as_str().expect("jti").to_owned());
    }
    // Pushes are in flight (the receiver is slow): kill -9 now.
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let _ = server.child.wait();
    let before = receiver.delivered().len();
    assert!(
        before < accepted.len(),
        "the kill happened mid-queue ({before} already delivered)"
    );

    receiver.set_latency(Duration::ZERO);
    let (mut server, _addr) = Server::start(dir.path(), &envs);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let delivered: std::collections::HashSet<String> = receiver
            .delivered()
            .iter()
            .map(|t| {
                crate::helpers::decode(t).1["jti"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        if accepted.iter().all(|j| delivered.contains(j)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lost signals after SIGKILL: {} of {} delivered",
            delivered.len(),
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // First deliveries for the chained user are in acceptance order.
    let mut seen = std::collections::HashSet::new();
    let chain: Vec<String> = receiver
        .delivered()
        .iter()
        .map(|t| crate::helpers::decode(t).1)
        .filter(|c| c["events"].to_string().contains("chain@example.com"))
        .filter_map(|c| c["jti"].as_str().map(str::to_owned))
        .filter(|j| seen.insert(j.clone()))
        .collect();
    let expected: Vec<String> = accepted.iter().step_by(2).cloned().collect();
    assert_eq!(chain, expected);
    let _ = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    let _ = server.child.wait();
}

#[tokio::test]
async fn serve_sandbox_registers_and_delivers_end_to_end() {
    let dir = tempdir();
    let admin = "bootstrap-admin-token-abcdefghijklmnop";
    let (server, addr) = Server::start_sandboxed(dir.path(), &[("SSF_ADMIN_TOKEN", admin)]);
    let creds: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("data/sandbox.json")).expect("sandbox.json"),
    )
    .expect("json");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join("data/sandbox.json"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let org = creds["org_url"].as_str().expect("org").to_owned();
    let api_token = creds["api_token"].as_str().expect("token").to_owned();
    let http = http_client();
    let base = format!("http://{addr}");
    let resp = http
        .post(format!("{base}/v1/signals/user-risk"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"subject": {"format": "email", "email": "jane@example.com"}, "current_level": "high"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 202);
    let mut logs = Value::Null;
    for _ in 0..100 {
        logs = http
            .get(format!("{org}/api/v1/logs"))
            .header("authorization", format!("SSWS {api_token}"))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        if logs.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        logs[0]["target"][0]["alternateId"], "jane@example.com",
        "{logs}"
    );
    server.stop();
}

/// Every secret that passes through the service in OAuth mode — the sandbox's API token and
/// private key, access tokens, temporary, generated and given passwords, reset links — stays out
/// of the logs, even at `trace`.
#[tokio::test]
async fn trace_logs_hold_no_okta_secret_or_password_with_oauth() {
    secrets_stay_out_of_trace_logs(true).await;
}

/// The same with an SSWS API token: no `SSWS <token>`, no password, no link.
#[tokio::test]
async fn trace_logs_hold_no_okta_secret_or_password_with_an_api_token() {
    secrets_stay_out_of_trace_logs(false).await;
}

async fn secrets_stay_out_of_trace_logs(oauth: bool) {
    let dir = tempdir();
    let admin = "bootstrap-admin-token-abcdefghijklmnop";
    let (server, addr) = Server::start_sandboxed(
        dir.path(),
        &[
            ("SSF_ADMIN_TOKEN", admin),
            ("SSF_SANDBOX__OAUTH", if oauth { "true" } else { "false" }),
            ("SSF_LOG_FILTER", "trace"),
        ],
    );
    let base = format!("http://{addr}");
    let http = http_client();
    let call = |path: &'static str, body: Value| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let resp = http
                .post(url)
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .expect("send");
            assert_eq!(resp.status(), 200, "{path}");
            resp.json::<Value>().await.expect("json")
        }
    };
    let status: Value = http
        .get(format!("{base}/v1/okta/status"))
        .bearer_auth(admin)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    let mode = if oauth { "oauth" } else { "api_token" };
    assert_eq!(status["auth_mode"], mode, "{status}");
    let temp = call(
        "/v1/users/john.smith/expire-password?temp_password=true",
        serde_json::json!({}),
    )
    .await;
    let temp = temp["result"]["tempPassword"]
        .as_str()
        .expect("temp")
        .to_owned();
    let generated = call("/v1/users/john.smith/password", serde_json::json!({})).await;
    let generated = generated["result"]["password"]
        .as_str()
        .expect("generated")
        .to_owned();
    let given = "Given-Passw0rd-in-the-body";
    call(
        "/v1/users/jane.doe/password",
        serde_json::json!({"password": given}),
    )
    .await;
    let reset = call(
        "/v1/users/alex.kim@example.com/reset-password?send_email=false",
        serde_json::json!({}),
    )
    .await;
    let reset_url = reset["result"]["resetPasswordUrl"]
        .as_str()
        .expect("reset url")
        .to_owned();
    let log = server.stop();
    let creds: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("data/sandbox.json")).expect("sandbox.json"),
    )
    .expect("json");
    let api_token = creds["api_token"].as_str().expect("token");
    let key = if oauth {
        creds["oauth"]["private_key"].as_str().expect("oauth key")
    } else {
        ""
    };
    let all = log.join("\n");
    assert!(all.contains("enforcement"), "the actions were logged");
    let mut secrets = vec![
        ("API token", api_token.to_owned()),
        ("temporary password", temp),
        ("generated password", generated),
        ("given password", given.to_owned()),
        ("reset link", reset_url),
        ("admin token", admin.to_owned()),
        ("SSWS header", format!("SSWS {api_token}")),
    ];
    for (i, line) in key.lines().filter(|l| !l.starts_with("-----")).enumerate() {
        secrets.push(("private key", format!("{i}:{line}")));
    }
    for (what, secret) in secrets {
        let needle = secret
            .split_once(':')
            .filter(|_| what == "private key")
            .map_or(secret.as_str(), |(_, l)| l);
        assert!(!all.contains(needle), "the {what} is in the logs");
    }
    // No Authorization value (SSWS, DPoP, Bearer), client assertion or DPoP proof (JWTs) either.
    // A DPoP-bound access token is 43 base64url characters after "DPoP ".
    let token_after_dpop = log.iter().find(|l| {
        l.match_indices("DPoP ").any(|(i, _)| {
            l[i + 5..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .count()
                >= 40
        })
    });
    assert!(token_after_dpop.is_none(), "{token_after_dpop:?}");
    for needle in ["SSWS 00", "client_assertion=", "eyJ"] {
        let hit = log.iter().find(|l| l.contains(needle));
        assert!(hit.is_none(), "{needle:?} in the logs: {hit:?}");
    }
    let lines = log.len();
    assert!(lines > 50, "trace logging was on ({lines} lines)");
}

#[tokio::test]
async fn a_second_serve_on_the_same_database_exits_naming_it() {
    let dir = tempdir();
    let (server, _) = Server::start(dir.path(), &[]);
    let out = run(bin(dir.path()).args(["serve"]));
    assert!(!out.status.success(), "the second serve must not run");
    let err = stderr(&out);
    assert!(
        err.contains("ssf-transmitter.db"),
        "names the database: {err}"
    );
    assert!(
        err.contains(&format!("another process (pid {})", server.child.id())),
        "names the holder: {err}"
    );
    server.stop();
    // Once the first one is gone, the lock is free again.
    let (server, _) = Server::start(dir.path(), &[]);
    server.stop();
}

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    format!("127.0.0.1:{port}")
}

/// `serve --sandbox` restarted with SETs still queued: the fresh sandbox knows the transmitter
/// before anything is pushed, so they are delivered (not `failed` with `invalid_issuer`); the
/// sandbox keeps its API token.
#[tokio::test]
async fn restarting_serve_sandbox_delivers_what_was_queued_and_keeps_the_api_token() {
    let dir = tempdir();
    let admin = "bootstrap-admin-token-abcdefghijklmnop";
    // Fixed ports: the queued SETs carry this issuer and this org as audience.
    let (listen, sandbox_listen) = (free_port(), free_port());
    let envs = [
        ("SSF_ADMIN_TOKEN", admin),
        ("SSF_LISTEN", listen.as_str()),
        ("SSF_SANDBOX__LISTEN", sandbox_listen.as_str()),
        ("SSF_DELIVERY__BACKOFF_INITIAL_MS", "50"),
        ("SSF_DELIVERY__BACKOFF_MAX_SECS", "1"),
    ];
    let (server, addr) = Server::start_sandboxed(dir.path(), &envs);
    let creds = |dir: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join("data/sandbox.json")).expect("read"))
            .expect("json")
    };
    let first = creds(dir.path());
    let org = first["org_url"].as_str().expect("org").to_owned();
    let api_token = first["api_token"].as_str().expect("token").to_owned();
    let http = http_client();
    let resp = http
        .put(format!("{org}/__sandbox/faults"))
        .header("authorization", format!("SSWS {api_token}"))
        .json(&serde_json::json!({"fail_next": 100000}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let base = format!("http://{addr}");
    let mut jtis = Vec::new();
    for email in ["jane.doe@example.com", "john.smith@example.com"] {
        let resp = http
            .post(format!("{base}/v1/signals/user-risk"))
            .bearer_auth(admin)
            .json(&serde_json::json!({"subject": {"format": "email", "email": email}, "current_level": "high"}))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 202);
        let body: Value = resp.json().await.expect("json");
        jtis.push(body["jti"].as_str().expect("jti").to_owned());
    }
    let status_of = |http: &reqwest::Client, jti: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let body: Value = http
                .get(format!("{base}/v1/signals/{jti}"))
                .bearer_auth(admin)
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            body["status"].as_str().unwrap_or_default().to_owned()
        }
    };
    for jti in &jtis {
        let mut s = String::new();
        for _ in 0..200 {
            s = status_of(&http, jti.clone()).await;
            if s == "retrying" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(s, "retrying", "{jti} waits while the sandbox fails");
    }
    server.stop();
    // Past the longest back-off: the queued SETs are due the moment the new process starts.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let (server, addr) = Server::start_sandboxed(dir.path(), &envs);
    assert_eq!(
        creds(dir.path())["api_token"],
        api_token,
        "the API token survives a restart"
    );
    assert_eq!(format!("http://{addr}"), base);
    // A new client: the old one's pooled connections went with the first process.
    let http = http_client();
    for jti in &jtis {
        let mut s = String::new();
        for _ in 0..400 {
            s = status_of(&http, jti.clone()).await;
            if s == "delivered" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(s, "delivered", "{jti} delivered after the restart");
    }
    let logs: Value = http
        .get(format!("{org}/api/v1/logs"))
        .header("authorization", format!("SSWS {api_token}"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(logs.as_array().map(Vec::len), Some(2), "{logs}");
    let log = server.stop().join("\n");
    assert!(
        !log.contains("invalid_issuer"),
        "nothing was pushed before the fresh sandbox knew the transmitter: {log}"
    );
}
