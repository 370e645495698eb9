//! End-to-end throughput benchmark: intake → signed SET → outbox → push → receiver 202.
//!
//! `cargo bench --bench throughput [-- --signals N --concurrency C]` prints one table:
//! delivered SETs/s against a trivial 202 sink and against the Okta sandbox (which verifies every
//! SET with OpenSSL), for single-signal requests and 100-signal batches; p50/p99 intake latency;
//! peak RSS of this process (app + load generator + receiver); and `openssl speed rsa2048` on all
//! cores for comparison. Numbers, not assertions.

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
use support::{arg, openssl_sign_rate, peak_rss_mib, sink};

const ADMIN: &str = "bench-admin-token-0123456789";

struct Args {
    signals: usize,
    concurrency: usize,
}

fn args() -> Args {
    Args {
        signals: arg("--signals", 10_000),
        concurrency: arg("--concurrency", 32),
    }
}

fn base_config(dir: &std::path::Path) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url: format!("sqlite://{}", dir.join("bench.db").display()).into(),
        keys_dir: dir.join("keys"),
        admin_token: Some(ADMIN.to_owned().into()),
        ..Config::default()
    };
    c.delivery.concurrency = 64;
    c.delivery.poll_interval_ms = 100;
    c.sandbox.listen = "127.0.0.1:0".parse().expect("addr");
    c
}

struct Outcome {
    name: String,
    intake_per_s: f64,
    delivered_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn run(name: &str, target: &str, batch: usize, a: &Args) -> Outcome {
    let dir = tempfile::tempdir().expect("tmp");
    let mut config = base_config(dir.path());
    let mut sandbox_state = None;
    let mut sink_count = None;
    let mut sandbox_stop = None;
    if target == "sink" {
        let (url, count) = sink().await;
        config.okta = Some(OktaConfig::for_org(&url));
        sink_count = Some(count);
    } else {
        let sandbox = ssf_transmitter::app::attach_sandbox(&mut config, Arc::new(SystemClock))
            .await
            .expect("sandbox");
        sandbox_state = Some(sandbox.state());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        sandbox_stop = Some(tx);
        tokio::spawn(sandbox.run(async move {
            let _ = rx.await;
        }));
    }
    let app = Application::build(config.clone(), Arc::new(SystemClock))
        .await
        .expect("build");
    let base = format!("http://{}", app.local_addr());
    let issuer = app.issuer().to_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));
    if sandbox_state.is_some() {
        ssf_transmitter::app::register_with_okta(&config, &issuer)
            .await
            .expect("register");
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(a.concurrency)
        .build()
        .expect("client");
    let token = {
        let r: serde_json::Value = http
            .post(format!("{base}/v1/admin/clients"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "bench", "scopes": [Scope::SignalsWrite.as_str()]}))
            .send()
            .await
            .expect("client")
            .json()
            .await
            .expect("json");
        r["token"].as_str().expect("token").to_owned()
    };
    let delivered = move || -> usize {
        match (&sink_count, &sandbox_state) {
            (Some(c), _) => c.load(Ordering::Relaxed),
            (_, Some(s)) => s.received().len(),
            _ => 0,
        }
    };
    let requests = a.signals.div_ceil(batch.max(1));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..a.concurrency {
        let http = http.clone();
        let token = token.clone();
        let base = base.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return latencies;
                }
                let signal = |n: usize| {
                    json!({
                        "subject": {"format": "email", "email": format!("user{}@example.com", n % 5000)},
                        "current_ip_address": format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255),
                        "previous_ip_address": "10.255.255.255",
                    })
                };
                let t = Instant::now();
                let resp = if batch <= 1 {
                    http.post(format!("{base}/v1/signals/ip-change")).bearer_auth(&token).json(&signal(i)).send().await
                } else {
                    let items: Vec<serde_json::Value> = (0..batch)
                        .map(|k| {
                            let mut s = signal(i * batch + k);
                            s["type"] = json!("ip-change");
                            s
                        })
                        .collect();
                    http.post(format!("{base}/v1/signals/batch")).bearer_auth(&token).json(&json!({"signals": items})).send().await
                };
                let ok = resp.is_ok_and(|r| r.status().is_success());
                assert!(ok, "intake failed");
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.expect("worker"));
    }
    let intake_secs = started.elapsed().as_secs_f64();
    let total = requests * batch.max(1);
    while delivered() < total {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "delivery stalled at {}",
            delivered()
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
    if let Some(tx) = sandbox_stop {
        let _ = tx.send(());
    }
    Outcome {
        name: name.to_owned(),
        intake_per_s: total as f64 / intake_secs,
        delivered_per_s: total as f64 / e2e_secs,
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
        for (name, target, batch) in [
            ("sink, single requests", "sink", 1),
            ("sink, batches of 100", "sink", 100),
            ("sandbox, single requests", "sandbox", 1),
            ("sandbox, batches of 100", "sandbox", 100),
        ] {
            r.push(run(name, target, batch, &a).await);
        }
        r
    });
    let sign = openssl_sign_rate();
    println!();
    println!(
        "ssf-transmitter throughput: {} signals per scenario, {} concurrent clients",
        a.signals, a.concurrency
    );
    println!(
        "{:<28} {:>12} {:>14} {:>10} {:>10} {:>12}",
        "scenario", "intake/s", "delivered/s", "p50 ms", "p99 ms", "vs RSA sign"
    );
    for o in &results {
        let ratio = sign.map_or("n/a".to_owned(), |s| {
            format!("{:.0} %", 100.0 * o.delivered_per_s / s)
        });
        println!(
            "{:<28} {:>12.0} {:>14.0} {:>10.2} {:>10.2} {:>12}",
            o.name, o.intake_per_s, o.delivered_per_s, o.p50_ms, o.p99_ms, ratio
        );
    }
    println!(
        "peak RSS (app + load generator + receiver): {:.1} MiB",
        peak_rss_mib()
    );
    match sign {
        Some(s) => println!("openssl speed rsa2048, all cores: {s:.0} sign/s"),
        None => println!("openssl speed rsa2048: not available"),
    }
    println!("(latency = per request; a batch request carries 100 signals)");
}
