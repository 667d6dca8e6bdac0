//! Shared set-up for the dashboard's tests: a gateway with its dashboard on loopback ports,
//! SQLite in a temporary directory, simulated upstreams, and an HTTP client that logs in the
//! way a browser does (cookies by hand, no redirects followed).

#![allow(dead_code)]

pub mod webdriver;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};
use router_gateway::dashboard::Credentials;
use router_gateway::{Config, Running};
use router_sim::{Fault, FaultPlan, SimConfig, SimModel, SimServer, Style};
use secrecy::SecretString;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const USER: &str = "ops";
pub const PASSWORD: &str = "correct horse battery";

/// The models every dashboard test routes between, all on one simulated upstream:
/// `cheap` and `pro` (priced far apart, so `auto:cost` picks `cheap`), `m` with two
/// deployments `m-a` and `m-b` (for weights; half each, so that every model weighs the same
/// to the policy), and `flaky`, which always fails.
pub fn models_config(base: &str) -> String {
    format!(
        r#"
[[models]]
name = "cheap"
provider = "openai-compatible"
base_url = "{base}/v1"
input_price = 0.1
output_price = 0.4

[[models]]
name = "pro"
provider = "openai-compatible"
base_url = "{base}/v1"
input_price = 3.0
output_price = 15.0

[[models]]
name = "m"
provider = "openai-compatible"
base_url = "{base}/v1"
deployment = "m-a"
weight = 0.5
input_price = 5.0
output_price = 10.0

[[models]]
name = "m"
provider = "openai-compatible"
base_url = "{base}/v1"
deployment = "m-b"
weight = 0.5

[[models]]
name = "flaky"
provider = "openai-compatible"
base_url = "{base}/v1"
input_price = 4.0
output_price = 12.0
"#
    )
}

pub async fn simulated_upstream() -> SimServer {
    let config = SimConfig::new()
        .model(SimModel::new("cheap").style(Style::Terse))
        .model(SimModel::new("pro").style(Style::Terse))
        .model(SimModel::new("m").style(Style::Terse))
        .model(SimModel::new("flaky").fault(FaultPlan::always(Fault::ServerError)));
    SimServer::start(config).await.unwrap()
}

pub fn credentials() -> Credentials {
    Credentials::new(USER, &SecretString::from(PASSWORD.to_string())).unwrap()
}

pub struct Fixture {
    pub running: Option<Running>,
    pub upstream: SimServer,
    pub dir: TempDir,
    pub proxy: String,
    /// `http://127.0.0.1:<port>`, without `/dashboard`.
    pub dashboard: String,
    pub client: reqwest::Client,
}

/// A gateway in front of the simulated models, its dashboard admitting [`USER`].
pub async fn fixture() -> Fixture {
    fixture_with(Some(credentials()), "").await
}

/// A gateway with these dashboard credentials and extra config text (sections other than
/// `[server]`, `[store]`, `[dashboard]` and the models).
pub async fn fixture_with(credentials: Option<Credentials>, extra: &str) -> Fixture {
    let upstream = simulated_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("router.db");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_ms = 2000\n\n[dashboard]\nlisten = \"127.0.0.1:0\"\n\n[store]\nurl = \"sqlite://{}\"\nflush_ms = 5\n\n[routing]\nexploration = 0\n\n[dispatch]\nretry_backoff_ms = 1\nmax_attempts = 2\n\n{extra}\n{}",
        db.display(),
        models_config(&upstream.base_url())
    );
    let config =
        Config::parse(&text, Path::new("dashboard-test.toml"), &HashMap::<String, String>::new())
            .unwrap_or_else(|e| panic!("{e}"));
    let running =
        router_gateway::server::start_with_credentials(config, credentials, std::future::pending())
            .await
            .unwrap();
    let proxy = running.proxy_url();
    let dashboard = format!("http://{}", running.dashboard_addr.expect("the dashboard is enabled"));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Fixture { running: Some(running), upstream, dir, proxy, dashboard, client }
}

/// A logged-in client's cookie and CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// The value a response sets for a cookie, with its attributes.
pub fn set_cookie<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap_or("")
        .split_once('=')
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

pub fn location(response: &Response) -> Option<&str> {
    response.headers().get(LOCATION).and_then(|v| v.to_str().ok())
}

/// An `application/x-www-form-urlencoded` body, as a browser sends a form.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        let mut out = String::new();
        for b in text.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    out.push(char::from(b))
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// The hidden form token in a login page.
pub fn form_token(html: &str) -> String {
    let marker = "name=\"token\" value=\"";
    let start = html.find(marker).expect("the login page has a form token") + marker.len();
    html[start..].split('"').next().unwrap_or("").to_string()
}

impl Fixture {
    pub fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    pub async fn get(&self, path: &str, session: Option<&Session>) -> Response {
        let mut request = self.client.get(format!("{}{path}", self.dashboard));
        if let Some(s) = session {
            request = request.header(COOKIE, format!("lr_session={}", s.cookie));
        }
        request.send().await.unwrap()
    }

    /// GETs an API path with a session and returns the JSON, asserting 200.
    pub async fn api(&self, path: &str, session: &Session) -> Value {
        let response = self.get(&format!("/dashboard/api{path}"), Some(session)).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// POSTs JSON to a dashboard path with the session cookie and, if given, a CSRF token.
    pub async fn post(
        &self,
        path: &str,
        session: &Session,
        csrf: Option<&str>,
        body: Value,
    ) -> Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.dashboard))
            .header(COOKIE, format!("lr_session={}", session.cookie))
            .json(&body);
        if let Some(token) = csrf {
            request = request.header("x-csrf-token", token);
        }
        request.send().await.unwrap()
    }

    /// A change through the API as the dashboard's script makes it; asserts 200.
    pub async fn change(&self, path: &str, session: &Session, body: Value) -> Value {
        let response =
            self.post(&format!("/dashboard/api{path}"), session, Some(&session.csrf), body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Submits the login form as a browser would: fetch the page (and its cookie), post.
    pub async fn submit_login(&self, username: &str, password: &str) -> Response {
        let page = self.get("/dashboard/login", None).await;
        assert_eq!(page.status(), StatusCode::OK);
        let login_cookie =
            cookie_value(set_cookie(&page, "lr_login").expect("the login page sets its cookie"));
        let token = form_token(&page.text().await.unwrap());
        self.client
            .post(format!("{}/dashboard/login", self.dashboard))
            .header(COOKIE, format!("lr_login={login_cookie}"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&[("username", username), ("password", password), ("token", &token)]))
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self) -> Session {
        let response = self.submit_login(USER, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "login failed");
        let cookie = cookie_value(set_cookie(&response, "lr_session").expect("a session cookie"));
        let mut session = Session { cookie, csrf: String::new() };
        session.csrf =
            self.api("/session", &session).await["csrf_token"].as_str().unwrap().to_string();
        session
    }

    /// A chat request through the proxy.
    pub async fn chat(&self, model: &str, text: &str) -> Response {
        self.client
            .post(format!("{}/v1/chat/completions", self.proxy))
            .json(&json!({"model": model, "messages": [{"role": "user", "content": text}]}))
            .send()
            .await
            .unwrap()
    }

    /// Sends `n` requests to `model`; returns the deployment that answered each.
    pub async fn deployments_answering(&self, model: &str, n: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let r = self.chat(model, &format!("Say hello number {i}")).await;
            assert_eq!(r.status(), 200);
            out.push(r.headers()["x-router-deployment"].to_str().unwrap().to_string());
        }
        out
    }

    /// Sends `n` routed requests; returns the model that answered each.
    pub async fn models_answering(&self, model: &str, n: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let r = self.chat(model, &format!("What is the capital of France? ({i})")).await;
            assert_eq!(r.status(), 200);
            out.push(r.headers()["x-router-model"].to_str().unwrap().to_string());
        }
        out
    }

    /// The model that answers most of `n` routed requests: the one the policy favours now
    /// (what it favours is the policy's business; the dashboard tests only need to know).
    pub async fn favourite(&self, model: &str, n: usize) -> String {
        let answered = self.models_answering(model, n).await;
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for m in &answered {
            *counts.entry(m).or_default() += 1;
        }
        counts.into_iter().max_by_key(|(_, n)| *n).map(|(m, _)| m.to_string()).unwrap_or_default()
    }

    /// Waits until the store has written every record accepted so far.
    pub async fn flushed(&self) {
        let writer = &self.running().gateway.writer;
        for _ in 0..400 {
            let m = writer.metrics();
            if m.written + m.dropped >= m.accepted && m.queue_depth == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the store writer did not catch up: {:?}", writer.metrics());
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        self.upstream.shutdown().await;
    }
}
