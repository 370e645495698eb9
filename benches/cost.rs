//! What a SET costs the service, next to what its signature costs.
//!
//! `cargo bench --bench cost [-- --signals N --concurrency C]` (defaults 10 000 and 16) runs
//! the built `serve` binary as its own process (SQLite, a 202 sink as its Okta), so its CPU time
//! can be read from `/proc`, and prints in one run:
//! - `openssl speed rsa2048` on one core (µs per signature) and on all cores (signs/s);
//! - a sequential Python sender (PyJWT + requests, in a venv under `target/`) pushing signed
//!   SETs to the same sink: SETs/s;
//! - the service under `C` connections of single `POST /v1/signals/user-risk`: delivered SETs/s,
//!   its CPU µs per delivered SET and the ratio to one signature, p50/p99 intake latency;
//! - the same with batches of 100;
//! - one bare HTTP exchange (`GET /healthz`) through the service's stack: its CPU µs, the least
//!   a single-signal request costs besides the signature and the store;
//! - at half the maximum rate, intake → receiver 202 latency (p50/p99);
//! - the service's peak RSS.
//!
//! With `--postgres`, the service uses a fresh database on `SSF_BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) instead of SQLite.
//!
//! Numbers, not assertions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

#[path = "support/mod.rs"]
mod support;
use support::{Serve, arg, drop_database, fresh_database, openssl_signs};

const ADMIN: &str = "bench-admin-token-0123456789";

/// A 202 sink that notes when each `jti` arrived.
#[derive(Clone, Default)]
struct Sink {
    count: Arc<AtomicUsize>,
    arrivals: Arc<Mutex<HashMap<String, Instant>>>,
}

fn jti_of(body: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let text = std::str::from_utf8(body).ok()?;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.split('.').nth(1)?)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    claims["jti"].as_str().map(str::to_owned)
}

impl Sink {
    async fn start(&self, track: bool) -> String {
        let me = self.clone();
        let app =
            axum::Router::new().fallback(axum::routing::post(move |body: axum::body::Bytes| {
                let me = me.clone();
                async move {
                    if track && let Some(jti) = jti_of(&body) {
                        me.arrivals
                            .lock()
                            .expect("lock")
                            .insert(jti, Instant::now());
                    }
                    me.count.fetch_add(1, Ordering::Relaxed);
                    axum::http::StatusCode::ACCEPTED
                }
            }));
        support::serve(app).await
    }
}

/// The service under test: a `serve` process with SQLite in `dir`, pushing to `sink_url`.
struct Service(Serve);

impl Service {
    /// `database`: a PostgreSQL URL, or `None` for SQLite in `dir`.
    fn start(dir: &std::path::Path, sink_url: &str, database: Option<&str>) -> Self {
        Self(Serve::start(&[
            (
                "SSF_DATABASE_URL",
                database.map_or_else(
                    || format!("sqlite://{}", dir.join("bench.db").display()),
                    str::to_owned,
                ),
            ),
            ("SSF_KEYS_DIR", dir.join("keys").display().to_string()),
            ("SSF_ADMIN_TOKEN", ADMIN.to_owned()),
            ("SSF_OKTA__ORG_URL", sink_url.to_owned()),
            ("SSF_DELIVERY__CONCURRENCY", "64".to_owned()),
            ("SSF_DELIVERY__POLL_INTERVAL_MS", "100".to_owned()),
        ]))
    }

    fn base(&self) -> &str {
        &self.0.base
    }

    /// User + system CPU seconds the process has used.
    fn cpu_secs(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0.child.id()))
            .unwrap_or_default();
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let rest = stat.rsplit(')').next().unwrap_or_default();
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15 of the line: 11 and 12 after the name.
        (ticks(11) + ticks(12)) / clock_ticks()
    }

    fn peak_rss_mib(&self) -> f64 {
        support::peak_rss_mib_of(&self.0.child.id().to_string())
    }
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

const PYTHON_SENDER: &str = r#"
import sys, time, uuid, requests, jwt
from cryptography.hazmat.primitives.asymmetric import rsa
url, n = sys.argv[1], int(sys.argv[2])
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
s = requests.Session()
start = time.perf_counter()
for i in range(n):
    claims = {"iss": "https://bench.example", "aud": url, "iat": int(time.time()), "jti": uuid.uuid4().hex,
              "events": {"https://schemas.okta.com/secevent/okta/event-type/user-risk-change": {
                  "subject": {"user": {"format": "email", "email": "u%d@bench.test" % (i % 500)}},
                  "current_level": "high", "previous_level": "low", "event_timestamp": int(time.time()),
                  "reason_admin": {"en": "bench"}}}}
    token = jwt.encode(claims, key, algorithm="RS256", headers={"typ": "secevent+jwt", "kid": "k1"})
    r = s.post(url, data=token, headers={"Content-Type": "application/secevent+jwt", "Accept": "application/json"})
    assert r.status_code == 202, r.status_code
print(n / (time.perf_counter() - start))
"#;

/// SETs/s of the sequential Python sender, when a venv with PyJWT and requests can be made.
fn python_sender(sink_url: &str, n: usize) -> Option<f64> {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let made = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .ok()?
            .success();
        let installed = made
            && std::process::Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "pyjwt", "cryptography", "requests"])
                .status()
                .ok()?
                .success();
        if !installed {
            return None;
        }
    }
    let out = std::process::Command::new(&python)
        .args(["-c", PYTHON_SENDER, sink_url, &n.to_string()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

struct Load {
    delivered_per_s: f64,
    cpu_us_per_set: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Drives `signals` user-risk signals through `service` (one per request, or `batch` per
/// request) over `concurrency` connections; waits for every SET at the sink.
async fn drive(
    service: &Service,
    sink: &Sink,
    signals: usize,
    concurrency: usize,
    batch: usize,
    round: usize,
) -> Load {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let before_count = sink.count.load(Ordering::Relaxed);
    let cpu0 = service.cpu_secs();
    let requests = signals.div_ceil(batch);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, base, next) = (http.clone(), service.base().to_owned(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return lat;
                }
                // Every subject's level changes each round, so every signal is a SET.
                let signal = |n: usize| {
                    json!({
                        "subject": {"format": "email", "email": format!("u{n}@bench.test")},
                        "current_level": if round.is_multiple_of(2) { "high" } else { "low" },
                    })
                };
                let t = Instant::now();
                let resp = if batch == 1 {
                    http.post(format!("{base}/v1/signals/user-risk"))
                        .bearer_auth(ADMIN)
                        .json(&signal(i))
                        .send()
                        .await
                } else {
                    let items: Vec<serde_json::Value> = (0..batch)
                        .map(|k| {
                            let mut s = signal(i * batch + k);
                            s["type"] = json!("user-risk");
                            s
                        })
                        .collect();
                    http.post(format!("{base}/v1/signals/batch"))
                        .bearer_auth(ADMIN)
                        .json(&json!({"signals": items}))
                        .send()
                        .await
                };
                assert!(resp.is_ok_and(|r| r.status().is_success()), "intake failed");
                lat.push(t.elapsed());
            }
        }));
    }
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.await.expect("worker"));
    }
    let total = requests * batch;
    while sink.count.load(Ordering::Relaxed) - before_count < total {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "delivery stalled"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = service.cpu_secs() - cpu0;
    lat.sort_unstable();
    Load {
        delivered_per_s: total as f64 / secs,
        cpu_us_per_set: cpu * 1e6 / total as f64,
        p50_ms: pct(&lat, 0.5),
        p99_ms: pct(&lat, 0.99),
    }
}

/// `n` bare `GET /healthz` exchanges over `concurrency` connections: the service's CPU µs per
/// exchange through its whole HTTP stack (hyper, every middleware layer) and nothing else — the
/// least one single-signal intake costs besides its signature and its store writes.
async fn bare_exchanges(service: &Service, n: usize, concurrency: usize) -> f64 {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let cpu0 = service.cpu_secs();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, base, next) = (http.clone(), service.base().to_owned(), next.clone());
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let resp = http.get(format!("{base}/healthz")).send().await;
                assert!(
                    resp.is_ok_and(|r| r.status().is_success()),
                    "healthz failed"
                );
            }
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
    (service.cpu_secs() - cpu0) * 1e6 / n as f64
}

/// Single signals at `rate` per second for `secs`: intake → sink 202 latency per SET.
async fn paced(service: &Service, sink: &Sink, rate: f64, secs: f64, round: usize) -> (f64, f64) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let n = (rate * secs) as usize;
    let gap = Duration::from_secs_f64(1.0 / rate);
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut tasks = Vec::new();
    let mut ticker = tokio::time::interval(gap);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..n {
        ticker.tick().await;
        let (http, base, sent) = (http.clone(), service.base().to_owned(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let resp = http
                .post(format!("{base}/v1/signals/user-risk"))
                .bearer_auth(ADMIN)
                .json(&json!({
                    "subject": {"format": "email", "email": format!("p{i}@bench.test")},
                    "current_level": if round.is_multiple_of(2) { "high" } else { "low" },
                }))
                .send()
                .await
                .expect("send");
            let body: serde_json::Value = resp.json().await.expect("json");
            if let Some(jti) = body["jti"].as_str() {
                sent.lock().expect("lock").insert(jti.to_owned(), t);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sent = sent.lock().expect("lock").len();
        let arrived = sink.arrivals.lock().expect("lock").len();
        if arrived >= sent || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent = sent.lock().expect("lock").clone();
    let arrivals = sink.arrivals.lock().expect("lock").clone();
    let mut lat: Vec<Duration> = sent
        .iter()
        .filter_map(|(jti, t)| arrivals.get(jti).map(|a| a.saturating_duration_since(*t)))
        .collect();
    lat.sort_unstable();
    (pct(&lat, 0.5), pct(&lat, 0.99))
}

fn main() {
    let signals = arg("--signals", 10_000);
    let concurrency = arg("--concurrency", 16);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sink = Sink::default();
        let sink_url = sink.start(false).await;
        let python = python_sender(
            &format!("{sink_url}/security/api/v1/security-events"),
            2_000,
        );
        let pg_server = std::env::args().any(|a| a == "--postgres").then(|| {
            std::env::var("SSF_BENCH_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
        });
        let mut databases = Vec::new();
        let mut database = async || match &pg_server {
            Some(server) => {
                let (url, name) = fresh_database(server).await;
                databases.push(name);
                Some(url)
            }
            None => None,
        };
        let dir = tempfile::tempdir().expect("tmp");
        let db = database().await;
        let service = Service::start(dir.path(), &sink_url, db.as_deref());
        let started_rss = service.peak_rss_mib();
        // Warm up: keys, connections, the subjects' first state.
        drive(&service, &sink, 2_000, concurrency, 1, 1).await;
        let single = drive(&service, &sink, signals, concurrency, 1, 2).await;
        let single_rss = service.peak_rss_mib();
        let batched = drive(&service, &sink, signals, concurrency, 100, 3).await;
        let peak = service.peak_rss_mib();
        let bare_us = bare_exchanges(&service, signals, concurrency).await;
        drop(service);

        let tracked = Sink::default();
        let tracked_url = tracked.start(true).await;
        let dir = tempfile::tempdir().expect("tmp");
        let db = database().await;
        let service = Service::start(dir.path(), &tracked_url, db.as_deref());
        let half = single.delivered_per_s / 2.0;
        let (h50, h99) = paced(&service, &tracked, half, 10.0, 0).await;
        drop(service);
        if let Some(server) = &pg_server {
            for name in &databases {
                drop_database(server, name).await;
            }
        }

        let one_core = openssl_signs(1);
        let all_cores = openssl_signs(cores);
        let sign_us = one_core.map(|s| 1e6 / s);
        println!();
        println!(
            "ssf-transmitter cost per SET: {signals} user-risk signals, {concurrency} connections, {}, 202 sink, service as its own process",
            if pg_server.is_some() { "PostgreSQL (same machine)" } else { "SQLite" }
        );
        match (one_core, all_cores) {
            (Some(o), Some(a)) => println!(
                "openssl speed rsa2048: {o:.0} signs/s on one core ({:.0} µs per signature), {a:.0} signs/s on {cores} cores",
                1e6 / o
            ),
            _ => println!("openssl speed rsa2048: not available"),
        }
        match python {
            Some(p) => println!("sequential Python sender (PyJWT + requests): {p:.0} SETs/s"),
            None => println!("sequential Python sender: not available (no venv with PyJWT)"),
        }
        for (name, l) in [("single requests", &single), ("batches of 100", &batched)] {
            println!(
                "{name:<16} delivered {:>6.0} SETs/s | service CPU {:>5.0} µs per SET = {} one signature | intake p50 {:.1} ms, p99 {:.1} ms{}",
                l.delivered_per_s,
                l.cpu_us_per_set,
                sign_us.map_or("n/a".to_owned(), |s| format!("{:.2}x", l.cpu_us_per_set / s)),
                l.p50_ms,
                l.p99_ms,
                python.map_or(String::new(), |p| format!(
                    " | {:.1}x the Python sender",
                    l.delivered_per_s / p
                )),
            );
        }
        println!(
            "one bare HTTP exchange through the service (GET /healthz, {concurrency} connections): {bare_us:.0} µs of service CPU{}",
            sign_us.map_or(String::new(), |s| format!(" = {:.2}x one signature", bare_us / s)),
        );
        println!(
            "at half the maximum rate ({half:.0} signals/s): intake -> receiver 202 p50 {h50:.1} ms, p99 {h99:.1} ms"
        );
        println!(
            "service peak RSS: {peak:.1} MiB (after start {started_rss:.1}, after single requests {single_rss:.1})"
        );
    });
}
