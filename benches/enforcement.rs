//! Enforcement round trips against the in-process Okta sandbox, API token (SSWS) versus OAuth
//! service app with DPoP: look-ups (`GET /v1/users/{user}`: one Okta search) and containment
//! pairs (`suspend` then `unsuspend`: search + lifecycle POST + status read each).
//!
//! `cargo bench --bench enforcement [-- --calls N --concurrency C]` prints calls/s and p50/p99
//! latency per scenario. Numbers, not assertions. The sandbox's own work (verifying each DPoP
//! proof with OpenSSL) runs in the same process and shares the cores.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use ssf_transmitter::Application;
use ssf_transmitter::auth::Scope;
use ssf_transmitter::clock::SystemClock;
use ssf_transmitter::config::Config;

#[path = "support/mod.rs"]
mod support;
use support::arg;

const ADMIN: &str = "bench-admin-token-0123456789";

struct Outcome {
    name: String,
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn scenario(oauth: bool, contain: bool, calls: usize, concurrency: usize) -> Outcome {
    let dir = tempfile::tempdir().expect("tmp");
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url: format!("sqlite://{}", dir.path().join("bench.db").display()).into(),
        keys_dir: dir.path().join("keys"),
        admin_token: Some(ADMIN.to_owned().into()),
        ..Config::default()
    };
    config.sandbox.listen = "127.0.0.1:0".parse().expect("addr");
    config.sandbox.oauth = oauth;
    let sandbox = ssf_transmitter::app::attach_sandbox(&mut config, Arc::new(SystemClock))
        .await
        .expect("sandbox");
    let (sb_tx, sb_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sandbox.run(async move {
        let _ = sb_rx.await;
    }));
    let app = Application::build(config, Arc::new(SystemClock))
        .await
        .expect("build");
    let base = format!("http://{}", app.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let token: String = http
        .post(format!("{base}/v1/admin/clients"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "bench", "scopes": [Scope::EnforceWrite.as_str(), Scope::EnforceRead.as_str()]}))
        .send()
        .await
        .expect("client")
        .json::<serde_json::Value>()
        .await
        .expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    // Warm-up: the first OAuth call fetches the token (with the DPoP nonce round trip).
    let warm = http
        .get(format!("{base}/v1/okta/status"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("status");
    assert_eq!(warm.status(), 200);
    // Users the sandbox can suspend and unsuspend (ACTIVE); each worker owns one.
    let users = [
        "jane.doe",
        "john.smith",
        "alex.kim@example.com",
        "alex.kim@corp.example.com",
    ];
    let started = Instant::now();
    let per_worker = calls / concurrency;
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let http = http.clone();
        let base = base.clone();
        let token = token.clone();
        let user = users[w % users.len()].to_owned();
        let own = w < users.len();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let t = Instant::now();
                if contain && own {
                    for action in ["suspend", "unsuspend"] {
                        let r = http
                            .post(format!("{base}/v1/users/{user}/{action}"))
                            .bearer_auth(&token)
                            .send()
                            .await
                            .expect("send");
                        assert_eq!(r.status(), 200, "{action}");
                    }
                } else if contain {
                    let r = http
                        .post(format!("{base}/v1/users/{user}/suspend?dry_run=true"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("send");
                    assert_eq!(r.status(), 200);
                } else {
                    let r = http
                        .get(format!("{base}/v1/users/{user}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("send");
                    assert_eq!(r.status(), 200);
                }
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("worker"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let _ = tx.send(());
    let _ = sb_tx.send(());
    let _ = server.await;
    Outcome {
        name: format!(
            "{}, {}",
            if oauth { "OAuth + DPoP" } else { "API token" },
            if contain {
                "suspend+unsuspend"
            } else {
                "look-up"
            }
        ),
        per_s: lat.len() as f64 / elapsed,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    }
}

fn main() {
    let calls = arg("--calls", 2000);
    let concurrency = arg("--concurrency", 4).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = rt.block_on(async {
        let mut r = Vec::new();
        for (oauth, contain) in [(false, false), (true, false), (false, true), (true, true)] {
            r.push(scenario(oauth, contain, calls, concurrency).await);
        }
        r
    });
    println!();
    println!(
        "ssf-transmitter enforcement: {calls} calls per scenario, {concurrency} concurrent clients"
    );
    println!(
        "{:<34} {:>10} {:>10} {:>10}",
        "scenario", "calls/s", "p50 ms", "p99 ms"
    );
    for o in &results {
        println!(
            "{:<34} {:>10.0} {:>10.2} {:>10.2}",
            o.name, o.per_s, o.p50_ms, o.p99_ms
        );
    }
    println!("(a suspend+unsuspend call is two API requests, six Okta calls)");
}
