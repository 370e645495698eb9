//! Delivered SETs/s with 1, 2 and 3 replicas on one PostgreSQL database, and SQLite vs
//! PostgreSQL on one node, measured in the same run: single `POST /v1/signals/user-risk`
//! requests spread round-robin over the replicas, every SET pushed to a trivial 202 sink.
//!
//! `cargo bench --bench replicas [-- --signals N --concurrency C]`. The PostgreSQL server is
//! `SSF_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); each run
//! creates its own database and drops it afterwards. Replicas run in this one process (one
//! runtime, the same cores), as separate services on one store. Numbers, not assertions.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection as _;
use ssf_transmitter::Application;
use ssf_transmitter::clock::SystemClock;
use ssf_transmitter::config::{Config, OktaConfig};

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

/// Delivered SETs/s for `replicas` services on `database_url` (one keys dir).
async fn run(database_url: &str, replicas: usize, signals: usize, concurrency: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tmp");
    let (sink_url, delivered) = sink().await;
    let mut bases = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..replicas {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            database_url: database_url.to_owned().into(),
            keys_dir: dir.path().join("keys"),
            admin_token: Some(ADMIN.to_owned().into()),
            ..Config::default()
        };
        config.delivery.concurrency = 64;
        config.delivery.poll_interval_ms = 100;
        config.okta = Some(OktaConfig::for_org(&sink_url));
        let app = Application::build(config, Arc::new(SystemClock))
            .await
            .expect("build");
        bases.push(format!("http://{}", app.local_addr()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        stops.push(tx);
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
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
    for s in stops {
        let _ = s.send(());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
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
            "{signals} single-signal requests, {concurrency} connections, 500 subjects, 202 sink, one process"
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
