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

#[path = "support/mod.rs"]
mod support;
use support::{Serve, arg, drop_database, fresh_database, sink};

const ADMIN: &str = "bench-admin-token-0123456789";

/// Starts `ssf-transmitter serve` on `database_url` pushing to `sink_url`.
fn start_replica(database_url: &str, keys_dir: &std::path::Path, sink_url: &str) -> Serve {
    Serve::start(&[
        ("SSF_DATABASE_URL", database_url.to_owned()),
        ("SSF_KEYS_DIR", keys_dir.display().to_string()),
        ("SSF_ADMIN_TOKEN", ADMIN.to_owned()),
        ("SSF_OKTA__ORG_URL", sink_url.to_owned()),
        ("SSF_DELIVERY__CONCURRENCY", "64".to_owned()),
        ("SSF_DELIVERY__POLL_INTERVAL_MS", "100".to_owned()),
    ])
}

/// Delivered SETs/s for `replicas` processes on `database_url` (one keys dir).
async fn run(database_url: &str, replicas: usize, signals: usize, concurrency: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tmp");
    let (sink_url, delivered) = sink().await;
    let mut bases = Vec::new();
    let mut procs = Vec::new();
    for _ in 0..replicas {
        let p = start_replica(database_url, &dir.path().join("keys"), &sink_url);
        bases.push(p.base.clone());
        procs.push(p);
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
