//! Delivered SETs/s with 1, 2 and 3 replicas on one PostgreSQL database, and SQLite vs
//! PostgreSQL on one node, measured in the same run: single `POST /v1/signals/user-risk`
//! requests spread round-robin over the replicas, every SET pushed to a trivial 202 sink.
//!
//! `cargo bench --bench replicas [-- --signals N --concurrency C]`. The PostgreSQL server is
//! `SSF_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); each run
//! creates its own database and drops it afterwards. Each replica is a `serve` process of the
//! built binary, as deployed (on this machine they share its cores). Numbers, not assertions.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection as _;

const ADMIN: &str = "bench-admin-token-0123456789";

fn arg(name: &str, default: usize) -> usize {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|a| a == name)
        .and_then(|i| argv.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn sink() -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = axum::Router::new().route(
        "/security/api/v1/security-events",
        axum::routing::post(move |_body: axum::body::Bytes| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, count)
}

async fn fresh_database(server: &str) -> (String, String) {
    let name = format!(
        "ssf_bench_{}",
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .get(..12)
            .unwrap_or("x")
    );
    let mut conn = sqlx::PgConnection::connect(server).await.expect("postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let mut url = url::Url::parse(server).expect("url");
    url.set_path(&format!("/{name}"));
    (url.to_string(), name)
}

async fn drop_database(server: &str, name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(server).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

/// One `serve` process of the built binary; killed when dropped.
struct Replica(std::process::Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ssf-transmitter serve` on `database_url` and returns it with the address it serves on.
fn start_replica(
    database_url: &str,
    keys_dir: &std::path::Path,
    sink_url: &str,
) -> (Replica, String) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ssf-transmitter"))
        .arg("serve")
        .env("SSF_LISTEN", "127.0.0.1:0")
        .env("SSF_DATABASE_URL", database_url)
        .env("SSF_KEYS_DIR", keys_dir)
        .env("SSF_ADMIN_TOKEN", ADMIN)
        .env("SSF_OKTA__ORG_URL", sink_url)
        .env("SSF_DELIVERY__CONCURRENCY", "64")
        .env("SSF_DELIVERY__POLL_INTERVAL_MS", "100")
        .env("SSF_LOG_FORMAT", "json")
        // Only the start-up line: per-request logs would measure the terminal.
        .env("SSF_LOG_FILTER", "warn,ssf_transmitter::app=info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ssf-transmitter serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .and_then(Result::ok)
            .expect("the replica logs `serving`");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["message"] == "serving" {
            break v["addr"].as_str().expect("addr").to_owned();
        }
    };
    // Keep reading, so a full pipe never blocks the replica.
    std::thread::spawn(move || for _ in lines {});
    (Replica(child), format!("http://{addr}"))
}

/// Delivered SETs/s for `replicas` processes on `database_url` (one keys dir).
async fn run(database_url: &str, replicas: usize, signals: usize, concurrency: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tmp");
    let (sink_url, delivered) = sink().await;
    let mut bases = Vec::new();
    let mut procs = Vec::new();
    for _ in 0..replicas {
        let (p, base) = start_replica(database_url, &dir.path().join("keys"), &sink_url);
        procs.push(p);
        bases.push(base);
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, bases, next, accepted) =
            (http.clone(), bases.clone(), next.clone(), accepted.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= signals {
                    return;
                }
                let base = &bases[i % bases.len()];
                let resp = http
                    .post(format!("{base}/v1/signals/user-risk"))
                    .bearer_auth(ADMIN)
                    .json(&json!({
                        "subject": {"format": "email", "email": format!("u{}@bench.test", i % 500)},
                        "current_level": if (i / 500) % 2 == 0 { "high" } else { "low" },
                    }))
                    .send()
                    .await
                    .expect("send");
                match resp.status().as_u16() {
                    202 => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    200 => {} // unchanged: no SET
                    other => panic!("intake answered {other}"),
                }
            }
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
    // Levels alternate per round, so nearly every signal is a SET (202); wait for each of them
    // at the sink.
    let want = accepted.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(600);
    while delivered.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    drop(procs);
    delivered.load(Ordering::Relaxed) as f64 / secs
}

fn main() {
    let signals = arg("--signals", 5_000);
    let concurrency = arg("--concurrency", 16);
    let server = std::env::var("SSF_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!(
            "{signals} single-signal requests, {concurrency} connections, 500 subjects, 202 sink, each replica a process"
        );
        println!("| store | replicas | delivered SETs/s |");
        println!("|---|---:|---:|");
        let dir = tempfile::tempdir().expect("tmp");
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        let rate = run(&sqlite, 1, signals, concurrency).await;
        println!("| SQLite | 1 | {rate:.0} |");
        for replicas in 1..=3 {
            let (url, name) = fresh_database(&server).await;
            let rate = run(&url, replicas, signals, concurrency).await;
            println!("| PostgreSQL | {replicas} | {rate:.0} |");
            drop_database(&server, &name).await;
        }
    });
}
