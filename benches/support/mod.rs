//! What the benchmarks share: a 202 sink, `serve` processes of the built binary, `openssl speed`
//! and peak RSS. Each benchmark uses part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The number after `--name` on the command line, or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|a| a == name)
        .and_then(|i| argv.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A receiver answering 202 to every push on any path, counting them.
pub async fn sink() -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = axum::Router::new().fallback(axum::routing::post(move |_body: axum::body::Bytes| {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::ACCEPTED
        }
    }));
    (serve(app).await, count)
}

/// Serves `app` on a loopback port of its own, in the background: its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// `openssl speed rsa2048` sign/s with `cores` processes.
pub fn openssl_signs(cores: usize) -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args([
            "speed",
            "-seconds",
            "3",
            "-multi",
            &cores.to_string(),
            "rsa2048",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with("rsa 2048"))?;
    // columns: bits, sign (s), verify (s), sign/s, verify/s
    let nums: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.trim_end_matches('s').parse().ok())
        .collect();
    nums.get(nums.len().checked_sub(2)?).copied()
}

/// `openssl speed rsa2048` sign/s on every core.
pub fn openssl_sign_rate() -> Option<f64> {
    openssl_signs(std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Peak RSS (VmHWM) of process `pid` (`self` for this one), MiB.
pub fn peak_rss_mib_of(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Peak RSS of this process, MiB.
pub fn peak_rss_mib() -> f64 {
    peak_rss_mib_of("self")
}

/// One `ssf-transmitter serve` process of the built binary; killed when dropped.
pub struct Serve {
    /// The process.
    pub child: std::process::Child,
    /// `http://<addr>` it serves the API on.
    pub base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Starts `serve` with `env` (besides JSON logs of warnings and the start-up line) and waits
    /// until it serves.
    pub fn start(env: &[(&str, String)]) -> Self {
        use std::io::BufRead as _;
        let bin = env!("CARGO_BIN_EXE_ssf-transmitter");
        // `SSF_BENCH_WRAPPER=heaptrack` (or `valgrind --tool=callgrind`, …) runs the service
        // under a profiler; its CPU and RSS numbers then include the profiler's.
        let mut cmd = match std::env::var("SSF_BENCH_WRAPPER") {
            Ok(wrapper) if !wrapper.trim().is_empty() => {
                let mut words = wrapper.split_whitespace();
                let mut c = std::process::Command::new(words.next().unwrap_or_default());
                c.args(words).arg(bin);
                c
            }
            _ => std::process::Command::new(bin),
        };
        cmd.arg("serve")
            // Not the service's setting: its configuration refuses unknown `SSF_*` names.
            .env_remove("SSF_BENCH_WRAPPER")
            .env("SSF_LISTEN", "127.0.0.1:0")
            .env("SSF_LOG_FORMAT", "json")
            // Only the start-up line: per-request logs would measure the terminal.
            .env("SSF_LOG_FILTER", "warn,ssf_transmitter::app=info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ssf-transmitter serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = std::io::BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .and_then(Result::ok)
                .expect("the service logs `serving`");
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["message"] == "serving" {
                break v["addr"].as_str().expect("addr").to_owned();
            }
        };
        // Keep reading, so a full pipe never blocks the service.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            base: format!("http://{addr}"),
        }
    }
}

/// A new, empty database on the PostgreSQL `server`: (its URL, its name).
pub async fn fresh_database(server: &str) -> (String, String) {
    let name = format!(
        "ssf_bench_{}",
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .get(..12)
            .unwrap_or("x")
    );
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(server)
        .await
        .expect("postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let mut url = url::Url::parse(server).expect("url");
    url.set_path(&format!("/{name}"));
    (url.to_string(), name)
}

/// Drops a database [`fresh_database`] made.
pub async fn drop_database(server: &str, name: &str) {
    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(server).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}
