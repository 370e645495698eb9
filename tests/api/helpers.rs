use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use ssf_transmitter::clock::SystemClock;
use ssf_transmitter::config::Config;
use ssf_transmitter::http::AppState;
use ssf_transmitter::{Application, auth::Scope};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running app in its own directory.
pub struct TestApp {
    pub base: String,
    /// The public listener's base URL, when `public_listen` is set.
    pub public_base: Option<String>,
    pub issuer: String,
    pub state: AppState,
    pub store: ssf_transmitter::store::Store,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// The test's config in `dir`: its store is `dir/data/test.db`, or with `SSF_TEST_BACKEND=postgres`
/// a fresh PostgreSQL database of its own (the same one for every call with this `dir`).
pub fn config_for(dir: &Path) -> Config {
    let mut config = sqlite_config_for(dir);
    if crate::pg::enabled() {
        config.database_url = crate::pg::database_url_for(dir).into();
    }
    config
}

/// [`config_for`] on SQLite whatever the backend: for tests about SQLite itself (its file's mode,
/// the writer lock file, a second connection to the file to break it on purpose).
pub fn sqlite_config_for(dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url: format!("sqlite://{}", dir.join("data/test.db").display()).into(),
        keys_dir: dir.join("keys"),
        admin_token: Some(ADMIN_TOKEN.to_owned().into()),
        keys_reload_secs: 1,
        shutdown_grace_secs: 5,
        ..Config::default()
    }
}

/// An issuer with a path, as behind a reverse proxy serving several tenants.
pub const ISSUER_WITH_PATH: &str = "https://ssf.example.com/tenant1";

/// [`config_for`] with [`ISSUER_WITH_PATH`] as the issuer and a public listener: every route
/// either listener can serve is served.
pub fn config_with_issuer_path(dir: &Path) -> Config {
    Config {
        issuer: Some(ISSUER_WITH_PATH.to_owned()),
        public_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..config_for(dir)
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

impl TestApp {
    pub async fn spawn(dir: &Path) -> TestApp {
        Self::spawn_with(config_for(dir)).await
    }

    pub async fn spawn_with(config: Config) -> TestApp {
        Self::spawn_with_clock(config, Arc::new(SystemClock)).await
    }

    /// With a given clock (a `ManualClock` drives timers in tests).
    pub async fn spawn_with_clock(
        config: Config,
        clock: Arc<dyn ssf_transmitter::clock::Clock>,
    ) -> TestApp {
        let app = Application::build(config, clock).await.expect("build app");
        let base = format!("http://{}", app.local_addr());
        let public_base = app.public_addr().map(|a| format!("http://{a}"));
        let issuer = app.issuer().to_owned();
        let state = app.state().clone();
        let store = app.store().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        TestApp {
            base,
            public_base,
            issuer,
            state,
            store,
            http: http_client(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Asks for a graceful stop (as SIGTERM does) without waiting; `stop` then waits.
    pub fn request_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Graceful stop; waits until the server has finished.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("clean shutdown");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("send")
    }

    /// One authenticated request (with a JSON body when given), the raw response.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.expect("send")
    }

    pub async fn get_json(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Creates a client with `scopes` over the admin API; returns its token.
    pub async fn client_with(&self, name: &str, scopes: &[Scope]) -> String {
        let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        let (status, body) = self
            .post_json(
                "/v1/admin/clients",
                ADMIN_TOKEN,
                &serde_json::json!({"name": name, "scopes": scopes}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    pub async fn jwks(&self) -> Value {
        self.get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .expect("jwks json")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Asserts an error response is problem+json with the status; returns the body.
pub async fn assert_problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    let body: Value = resp.json().await.expect("problem body");
    assert_eq!(body["status"], status);
    assert!(
        body["type"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(body["title"].as_str().is_some(), "{body}");
    body
}

/// Verifies a compact JWS against a JWKS document; `Err` says why not.
pub fn verify_with_jwks(token: &str, jwks: &Value) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
        .ok_or_else(|| format!("kid {kid} not in JWKS"))?;
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().ok_or("n")?,
        key["e"].as_str().ok_or("e")?,
    )
    .map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// A config whose `[okta]` receiver is `org_url`, with fast retries for tests.
pub fn config_with_receiver(dir: &Path, org_url: &str) -> Config {
    Config {
        okta: Some(ssf_transmitter::config::OktaConfig::for_org(org_url)),
        delivery: ssf_transmitter::config::DeliveryConfig {
            backoff_initial_ms: 20,
            backoff_max_secs: 1,
            poll_interval_ms: 50,
            request_timeout_ms: 2_000,
            ..Default::default()
        },
        ..config_for(dir)
    }
}

/// Decodes a compact JWS's header and claims without verifying.
pub fn decode(token: &str) -> (Value, Value) {
    use base64::Engine as _;
    let mut parts = token.split('.');
    let mut next = || {
        let p = parts.next().expect("part");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .expect("b64");
        serde_json::from_slice::<Value>(&bytes).expect("json")
    };
    let header = next();
    let claims = next();
    (header, claims)
}

/// The app wired to an in-process Okta sandbox and registered with it, as `serve --sandbox` does.
pub struct Sandboxed {
    pub app: TestApp,
    pub sandbox: std::sync::Arc<ssf_transmitter::sandbox::SandboxState>,
    pub api_token: String,
    pub org_url: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Sandboxed {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Sandboxed {
    pub async fn start(dir: &Path) -> Sandboxed {
        Self::start_with(dir, |_, _| {}).await
    }

    /// Like `start`, with `tweak` applied to the app's config before it starts.
    pub async fn start_with(
        dir: &Path,
        tweak: impl FnOnce(&mut Config, &ssf_transmitter::sandbox::Sandbox),
    ) -> Sandboxed {
        Self::start_from(config_for(dir), tweak).await
    }

    /// From a given config (its `[sandbox]` settings apply), with `tweak` as in `start_with`.
    pub async fn start_from(
        config: Config,
        tweak: impl FnOnce(&mut Config, &ssf_transmitter::sandbox::Sandbox),
    ) -> Sandboxed {
        Self::start_clocked(config, tweak, Arc::new(SystemClock)).await
    }

    /// Like `start_from`, the app (not the sandbox) running on `clock`.
    pub async fn start_clocked(
        mut config: Config,
        tweak: impl FnOnce(&mut Config, &ssf_transmitter::sandbox::Sandbox),
        clock: Arc<dyn ssf_transmitter::clock::Clock>,
    ) -> Sandboxed {
        use secrecy::ExposeSecret as _;
        config.sandbox.listen = "127.0.0.1:0".parse().expect("addr");
        config.delivery.backoff_initial_ms = 20;
        config.delivery.backoff_max_secs = 1;
        config.delivery.poll_interval_ms = 50;
        let sandbox = ssf_transmitter::app::attach_sandbox(&mut config, Arc::new(SystemClock))
            .await
            .expect("sandbox");
        let state = sandbox.state();
        let api_token = sandbox.api_token().expose_secret().to_owned();
        let org_url = sandbox.org_url().to_owned();
        tweak(&mut config, &sandbox);
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(sandbox.run(async move {
            let _ = rx.await;
        }));
        let app = TestApp::spawn_with_clock(config.clone(), clock).await;
        let provider = ssf_transmitter::app::register_with_okta(&config, &app.issuer)
            .await
            .expect("register with the sandbox");
        assert_eq!(provider.status, "ACTIVE");
        Sandboxed {
            app,
            sandbox: state,
            api_token,
            org_url,
            stop: Some(tx),
        }
    }

    pub fn okta(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .http
            .request(method, format!("{}{path}", self.org_url))
            .header("authorization", format!("SSWS {}", self.api_token))
    }
}

/// The origin (scheme://host:port) of a URL, as a browser sends it in `Origin`.
pub fn origin(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .expect("url")
}

/// Stands for the issuer's path in route lists of the tests (`/tenant1` for [`ISSUER_WITH_PATH`]).
pub const ISSUER_PATH_MARK: &str = "<issuer-path>";

/// A route list's path for an app whose issuer has `issuer_path`; `None` when the path is under
/// the issuer's path and the issuer has none (the route is then not served).
pub fn listed_path(path: &str, issuer_path: &str) -> Option<String> {
    if path.contains(ISSUER_PATH_MARK) && issuer_path.is_empty() {
        return None;
    }
    Some(path.replace(ISSUER_PATH_MARK, issuer_path))
}

/// A request path for a route template: each `{param}` becomes `x1`, a catch-all `{*rest}`
/// becomes `index.html` (the only catch-all serves Swagger UI's files).
pub fn concrete_path(template: &str) -> String {
    let mut out = String::new();
    let mut param: Option<String> = None;
    for c in template.chars() {
        match (c, param.as_mut()) {
            ('{', None) => param = Some(String::new()),
            ('}', Some(name)) => {
                out.push_str(if name.starts_with('*') {
                    "index.html"
                } else {
                    "x1"
                });
                param = None;
            }
            (_, Some(name)) => name.push(c),
            (_, None) => out.push(c),
        }
    }
    out
}

/// No array in the document is empty (SSF §7 and RFC 8414 metadata omit empty claims).
pub fn assert_no_empty_arrays(v: &Value, at: &str) {
    match v {
        Value::Array(a) => {
            assert!(!a.is_empty(), "empty array at {at}");
            for (i, x) in a.iter().enumerate() {
                assert_no_empty_arrays(x, &format!("{at}[{i}]"));
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                assert_no_empty_arrays(x, &format!("{at}.{k}"));
            }
        }
        _ => {}
    }
}
