//! Recovery after a receiver outage: how long after the receiver comes back the whole backlog
//! has arrived, and at what rate a large backlog drains.
//!
//! `cargo bench --bench recovery [-- --outage-secs S --signals N --subjects K --backlog B]`
//! (defaults: a 120 s outage, 2 000 SETs for 200 subjects; then a backlog of 100 000 SETs, 0 to
//! skip) prints: SETs queued during the outage, requests that reached the receiver while it was
//! down (the probes), seconds from the receiver's return to the last SET, whether every subject's
//! SETs arrived in order, the drain rate and the process's peak RSS. Production delivery settings
//! (`backoff_max_secs` 300, `probe_max_secs` 10). Numbers, not assertions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use ssf_transmitter::Application;
use ssf_transmitter::auth::Scope;
use ssf_transmitter::clock::SystemClock;
use ssf_transmitter::config::{Config, OktaConfig};

#[path = "support/mod.rs"]
mod support;
use support::{arg, peak_rss_mib};

const ADMIN: &str = "bench-admin-token-0123456789";

struct Args {
    outage_secs: u64,
    signals: usize,
    subjects: usize,
    backlog: usize,
}

fn args() -> Args {
    Args {
        outage_secs: u64::try_from(arg("--outage-secs", 120)).unwrap_or(120),
        signals: arg("--signals", 2_000),
        subjects: arg("--subjects", 200),
        backlog: arg("--backlog", 100_000),
    }
}

/// A receiver that answers 503 while `down`, else 202, remembering what it accepted.
#[derive(Clone, Default)]
struct Sink {
    down: Arc<AtomicBool>,
    tried: Arc<AtomicUsize>,
    accepted: Arc<std::sync::Mutex<Vec<(usize, usize)>>>,
    last_at: Arc<std::sync::Mutex<Option<Instant>>>,
}

impl Sink {
    async fn start(&self) -> String {
        let me = self.clone();
        let app =
            axum::Router::new().fallback(axum::routing::post(move |body: axum::body::Bytes| {
                let me = me.clone();
                async move {
                    me.tried.fetch_add(1, Ordering::Relaxed);
                    if me.down.load(Ordering::Relaxed) {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    if let Some(key) = order_key(&body) {
                        me.accepted.lock().expect("lock").push(key);
                    }
                    *me.last_at.lock().expect("lock") = Some(Instant::now());
                    axum::http::StatusCode::ACCEPTED
                }
            }));
        support::serve(app).await
    }

    fn accepted(&self) -> usize {
        self.accepted.lock().expect("lock").len()
    }
}

/// (subject, sequence) from an ip-change SET: the subject's number and the address's low bits.
fn order_key(body: &[u8]) -> Option<(usize, usize)> {
    use base64::Engine as _;
    let text = std::str::from_utf8(body).ok()?;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.split('.').nth(1)?)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    let event = claims["events"].as_object()?.values().next()?.clone();
    let email = event["subject"]["user"]["email"].as_str()?;
    let subject = email.strip_prefix('u')?.split('@').next()?.parse().ok()?;
    let ip: std::net::Ipv4Addr = event["current_ip_address"].as_str()?.parse().ok()?;
    Some((subject, usize::try_from(u32::from(ip) & 0x00ff_ffff).ok()?))
}

struct Run {
    queued: usize,
    probes: usize,
    outage_secs: f64,
    drain_secs: f64,
    in_order: bool,
}

/// Queues `signals` SETs for `subjects` subjects while the receiver is down, keeps it down for
/// `outage`, brings it back and times the drain.
async fn run(outage: Duration, signals: usize, subjects: usize) -> Run {
    let dir = tempfile::tempdir().expect("tmp");
    let sink = Sink::default();
    sink.down.store(true, Ordering::Relaxed);
    let url = sink.start().await;
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url: format!("sqlite://{}", dir.path().join("bench.db").display()).into(),
        keys_dir: dir.path().join("keys"),
        admin_token: Some(ADMIN.to_owned().into()),
        ..Config::default()
    };
    config.okta = Some(OktaConfig::for_org(&url));
    config.signals.batch_max = 1000;
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
    let started = Instant::now();
    let mut sent = 0;
    while sent < signals {
        let n = (signals - sent).min(1000);
        let items: Vec<serde_json::Value> = (sent..sent + n)
            .map(|i| {
                json!({"type": "ip-change",
                       "subject": {"format": "email", "email": format!("u{}@example.com", i % subjects)},
                       "current_ip_address": std::net::Ipv4Addr::from(0x0a00_0000 | u32::try_from(i).unwrap_or(0)).to_string(),
                       "previous_ip_address": "192.0.2.1"})
            })
            .collect();
        let resp = http
            .post(format!("{base}/v1/signals/batch"))
            .bearer_auth(&token)
            .json(&json!({"signals": items}))
            .send()
            .await
            .expect("intake");
        assert!(resp.status().is_success(), "intake failed");
        sent += n;
    }
    let rest = outage.saturating_sub(started.elapsed());
    tokio::time::sleep(rest).await;
    let probes = sink.tried.load(Ordering::Relaxed);
    let outage_secs = started.elapsed().as_secs_f64();
    let back = Instant::now();
    sink.down.store(false, Ordering::Relaxed);
    while sink.accepted() < signals {
        assert!(
            back.elapsed() < Duration::from_secs(900),
            "drain stalled at {} of {signals}",
            sink.accepted()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let last = sink
        .last_at
        .lock()
        .expect("lock")
        .unwrap_or_else(Instant::now);
    let drain_secs = last.saturating_duration_since(back).as_secs_f64();
    let accepted = sink.accepted.lock().expect("lock").clone();
    let mut seen: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut in_order = true;
    for (subject, seq) in accepted {
        if let Some(prev) = seen.insert(subject, seq)
            && seq <= prev
        {
            in_order = false;
        }
    }
    let _ = stop_tx.send(());
    let _ = server.await;
    Run {
        queued: signals,
        probes,
        outage_secs,
        drain_secs,
        in_order,
    }
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outage = rt.block_on(run(
        Duration::from_secs(a.outage_secs),
        a.signals,
        a.subjects,
    ));
    println!();
    println!(
        "outage of {:.0} s with {} SETs queued for {} subjects (backoff_max_secs 300, probe_max_secs 10):",
        outage.outage_secs, outage.queued, a.subjects
    );
    println!(
        "  requests that reached the receiver while it was down: {}",
        outage.probes
    );
    println!(
        "  last SET delivered {:.2} s after the receiver came back; every subject in order: {}",
        outage.drain_secs, outage.in_order
    );
    if a.backlog > 0 {
        let big = rt.block_on(run(Duration::from_secs(15), a.backlog, 5_000));
        println!(
            "backlog of {} SETs (5 000 subjects) after a {:.0} s outage: drained in {:.1} s = {:.0} SETs/s; in order: {}",
            big.queued,
            big.outage_secs,
            big.drain_secs,
            big.queued as f64 / big.drain_secs.max(f64::EPSILON),
            big.in_order
        );
    }
    println!(
        "peak RSS (service + load generator + receiver): {:.1} MiB",
        peak_rss_mib()
    );
}
