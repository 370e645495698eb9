//! Fan-out benchmark: signals into standard SSF streams (push, RFC 8935), each SET signed for its
//! stream and delivered by that stream's worker to a 202 sink.
//!
//! `cargo bench --bench streams [-- --signals N --concurrency C]` prints one table: for 1 and 10
//! push streams (and Okta plus one stream), signals accepted per second, SETs delivered per
//! second (every stream's), p50/p99 intake latency per request, and `openssl speed rsa2048` on
//! all cores for comparison. Numbers, not assertions.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use ssf_transmitter::Application;
use ssf_transmitter::auth::Scope;
use ssf_transmitter::clock::SystemClock;
use ssf_transmitter::config::{Config, OktaConfig};

#[path = "support/mod.rs"]
mod support;
use support::{arg, openssl_sign_rate, sink};

const ADMIN: &str = "bench-admin-token-0123456789";
const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

struct Args {
    signals: usize,
    concurrency: usize,
}

fn args() -> Args {
    Args {
        signals: arg("--signals", 2_000),
        concurrency: arg("--concurrency", 16),
    }
}

struct Outcome {
    name: String,
    signals_per_s: f64,
    sets: usize,
    delivered_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn run(name: &str, streams: usize, okta: bool, batch: usize, a: &Args) -> Outcome {
    let dir = tempfile::tempdir().expect("tmp");
    let (url, delivered) = sink().await;
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url: format!("sqlite://{}", dir.path().join("bench.db").display()).into(),
        keys_dir: dir.path().join("keys"),
        admin_token: Some(ADMIN.to_owned().into()),
        ..Config::default()
    };
    config.delivery.concurrency = 64;
    config.delivery.poll_interval_ms = 100;
    config.streams.max_per_client = streams.max(1);
    if okta {
        config.okta = Some(OktaConfig::for_org(&url));
    }
    let app = Application::build(config, Arc::new(SystemClock))
        .await
        .expect("build");
    let base = format!("http://{}", app.local_addr());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(a.concurrency)
        .build()
        .expect("client");
    let token = {
        let r: serde_json::Value = http
            .post(format!("{base}/v1/admin/clients"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "bench", "scopes": [
                Scope::SignalsWrite.as_str(), Scope::StreamsWrite.as_str()]}))
            .send()
            .await
            .expect("client")
            .json()
            .await
            .expect("json");
        r["token"].as_str().expect("token").to_owned()
    };
    for i in 0..streams {
        let resp = http
            .post(format!("{base}/ssf/streams"))
            .bearer_auth(&token)
            .json(&json!({
                "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": format!("{url}/rx/{i}")},
                "events_requested": [SESSION_REVOKED],
            }))
            .send()
            .await
            .expect("create");
        assert_eq!(resp.status(), 201, "stream created");
    }
    // Let the stream workers start.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = a.signals.div_ceil(batch.max(1));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..a.concurrency {
        let (http, token, base, next) = (http.clone(), token.clone(), base.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return latencies;
                }
                let signal = |n: usize| {
                    json!({
                        "subject": {"format": "email", "email": format!("user{}@example.com", n % 1000)},
                        "reason_admin": "bench",
                    })
                };
                let t = Instant::now();
                let resp = if batch <= 1 {
                    http.post(format!("{base}/v1/signals/session-revoked"))
                        .bearer_auth(&token)
                        .json(&signal(i))
                        .send()
                        .await
                } else {
                    let items: Vec<serde_json::Value> = (0..batch)
                        .map(|k| {
                            let mut s = signal(i * batch + k);
                            s["type"] = json!("session-revoked");
                            s
                        })
                        .collect();
                    http.post(format!("{base}/v1/signals/batch"))
                        .bearer_auth(&token)
                        .json(&json!({"signals": items}))
                        .send()
                        .await
                };
                assert!(
                    resp.is_ok_and(|r| r.status().is_success()),
                    "intake failed"
                );
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.expect("worker"));
    }
    let intake_secs = started.elapsed().as_secs_f64();
    let signals = requests * batch.max(1);
    let sets = signals * (streams + usize::from(okta));
    while delivered.load(Ordering::Relaxed) < sets {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "delivery stalled at {} of {sets}",
            delivered.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let e2e_secs = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let _ = stop_tx.send(());
    let _ = server.await;
    Outcome {
        name: name.to_owned(),
        signals_per_s: signals as f64 / intake_secs,
        sets,
        delivered_per_s: sets as f64 / e2e_secs,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = rt.block_on(async {
        let mut r = Vec::new();
        for (name, streams, okta, batch) in [
            ("1 stream, single requests", 1, false, 1),
            ("10 streams, single requests", 10, false, 1),
            ("10 streams, batches of 100", 10, false, 100),
            ("Okta + 1 stream, single", 1, true, 1),
        ] {
            r.push(run(name, streams, okta, batch, &a).await);
        }
        r
    });
    let sign = openssl_sign_rate();
    println!();
    println!(
        "ssf-transmitter fan-out: {} signals per scenario (session-revoked, 1,000 subjects), {} concurrent clients",
        a.signals, a.concurrency
    );
    println!(
        "{:<30} {:>10} {:>8} {:>14} {:>9} {:>9} {:>12}",
        "scenario", "signals/s", "SETs", "delivered/s", "p50 ms", "p99 ms", "vs RSA sign"
    );
    for o in &results {
        let ratio = sign.map_or("n/a".to_owned(), |s| {
            format!("{:.0} %", 100.0 * o.delivered_per_s / s)
        });
        println!(
            "{:<30} {:>10.0} {:>8} {:>14.0} {:>9.2} {:>9.2} {:>12}",
            o.name, o.signals_per_s, o.sets, o.delivered_per_s, o.p50_ms, o.p99_ms, ratio
        );
    }
    match sign {
        Some(s) => println!("openssl speed rsa2048, all cores: {s:.0} sign/s"),
        None => println!("openssl speed rsa2048: not available"),
    }
    println!("(delivered/s counts every stream's SETs; latency is per request)");
}
