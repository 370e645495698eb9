//! The approval page in a real browser: Debian's headless Chromium driven over WebDriver
//! (`chromedriver`, plain HTTP + JSON). Open the link, pick a candidate, submit, read the result,
//! and see the link refused afterwards. The screenshot it takes is the README's
//! (`UPDATE_SCREENSHOTS=1` writes it to docs/approval-page.png).

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use ssf_transmitter::auth::Scope;

use crate::approvals::{Webhook, with_approvals};
use crate::helpers::{http_client, tempdir};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    /// Kills chromedriver's whole process group: killing chromedriver alone left its Chromium
    /// running after every test run.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(binary: &str) -> String {
    for dir in ["/usr/bin", "/usr/lib/chromium", "/usr/local/bin"] {
        let p = format!("{dir}/{binary}");
        if std::path::Path::new(&p).exists() {
            return p;
        }
    }
    panic!(
        "{binary} is not installed: `apt-get install chromium chromium-driver` (.ci/run does it)"
    );
}

impl Driver {
    async fn start(profile: &std::path::Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(find("chromedriver"))
            // Its own process group, with the browser it starts (see `drop`).
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = http_client();
        let mut driver = Driver {
            child,
            base,
            session: String::new(),
            http,
        };
        for _ in 0..100 {
            if let Ok(r) = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": find("chromium"),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1000,800",
                format!("--user-data-dir={}", profile.display()),
            ]
        }}}});
        let v = driver
            .call(reqwest::Method::POST, "/session", Some(caps))
            .await;
        driver.session = v["sessionId"].as_str().expect("session").to_owned();
        driver
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json");
        assert!(v["value"]["error"].is_null(), "webdriver {path}: {v}");
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/session/{}/url", self.session),
            Some(json!({"url": url})),
        )
        .await;
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/session/{}/element", self.session),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().expect("element").to_owned()
    }

    async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/session/{}/element/{e}/click", self.session),
            Some(json!({})),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let e = self.element(css).await;
        self.call(
            reqwest::Method::GET,
            &format!("/session/{}/element/{e}/text", self.session),
            None,
        )
        .await
        .as_str()
        .expect("text")
        .to_owned()
    }

    async fn title(&self) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/session/{}/title", self.session),
            None,
        )
        .await
        .as_str()
        .expect("title")
        .to_owned()
    }

    /// The page's title once it is `want` (a form's navigation may finish after the click
    /// returns); the last title seen otherwise.
    async fn title_becomes(&self, want: &str) -> String {
        let mut seen = String::new();
        for _ in 0..100 {
            seen = self.title().await;
            if seen == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    }

    async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/session/{}/screenshot", self.session),
                None,
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("png"))
            .expect("base64")
    }
}

#[tokio::test]
async fn a_person_approves_in_a_browser_and_the_link_is_refused_afterwards() {
    let dir = tempdir();
    let hook = Webhook::start().await;
    let s = with_approvals(
        dir.path(),
        &hook,
        |a| a.on_ambiguous = true,
        Arc::new(ssf_transmitter::clock::SystemClock),
    )
    .await;
    let edr = s
        .app
        .client_with(
            "crowdstrike-falcon",
            &[Scope::EnforceWrite, Scope::EnforceRead],
        )
        .await;
    let (st, c) = s
        .app
        .post_json(
            "/v1/containments",
            &edr,
            &json!({"user": "alex.kim", "steps": [{"action": "clear_sessions"}, {"action": "suspend"}, {"action": "add_to_group", "group": "Restricted Users"}],
                    "reason": "EDR detection 4711: credential theft by AD_DOMAIN\\akim on LAPTOP-9", "release_after": 86400}),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    assert_eq!(c["status"], "pending_approval");
    let link = hook.first().await["url"].as_str().expect("url").to_owned();
    s.sandbox.clear_requests();

    let driver = Driver::start(&dir.path().join("chromium-profile")).await;
    driver.go(&link).await;
    assert_eq!(
        driver.title_becomes("Containment approval").await,
        "Containment approval"
    );
    assert_eq!(driver.text("#requested-by").await, "crowdstrike-falcon");
    assert_eq!(
        driver.text("#steps").await,
        "clear_sessions, suspend, add_to_group"
    );
    let login = driver.text("label[for=candidate-1]").await;
    assert_eq!(login, "alex.kim@corp.example.com");
    driver.click("#candidate-1").await;
    let png = driver.screenshot().await;
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "a real screenshot"
    );
    let shot = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/approval-page.png")
    } else {
        dir.path().join("approval-page.png")
    };
    std::fs::write(&shot, &png).expect("screenshot");
    driver.click("#approve").await;
    assert_eq!(driver.title_becomes("Approved").await, "Approved");
    let result = driver.text("#message").await;
    assert!(
        result.contains("ran for alex.kim@corp.example.com: it is active"),
        "{result}"
    );
    let writes: Vec<String> = s
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let chosen = "00u00000000000000004";
    assert_eq!(
        writes,
        [
            format!("DELETE /api/v1/users/{chosen}/sessions"),
            format!("POST /api/v1/users/{chosen}/lifecycle/suspend"),
            format!("PUT /api/v1/groups/00g00000000000000003/users/{chosen}"),
        ]
    );
    // The link is spent: opening it again shows the decision, 410.
    driver.go(&link).await;
    assert_eq!(
        driver.title_becomes("Approval link used or expired").await,
        "Approval link used or expired"
    );
    assert!(
        driver
            .text("#message")
            .await
            .contains("already decided: approved by approval link")
    );
    let status = http_client().get(&link).send().await.expect("get").status();
    assert_eq!(status, 410);
    // The containment ran once, for the chosen user, and opening the spent link ran nothing.
    s.sandbox.clear_requests();
    let cid = c["id"].as_str().expect("id");
    let (_, after) = s
        .app
        .get_json(&format!("/v1/containments/{cid}"), &edr)
        .await;
    assert_eq!(after["status"], "active");
    assert_eq!(after["user"]["login"], "alex.kim@corp.example.com");
    assert!(after["release_at"].is_string());
    driver.go(&link).await;
    assert_eq!(
        driver.title_becomes("Approval link used or expired").await,
        "Approval link used or expired"
    );
    assert!(
        s.sandbox.requests().is_empty(),
        "{:?}",
        s.sandbox.requests()
    );
}
