//! Shared set-up for the gateway's integration tests: a gateway on a loopback port with a
//! SQLite store in a temporary directory, in front of simulated upstreams.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use router_gateway::{Config, Running};
use router_store::Store;
use tempfile::TempDir;

pub struct TestGateway {
    pub running: Option<Running>,
    pub url: String,
    pub dir: TempDir,
    pub db_url: String,
    pub client: reqwest::Client,
}

/// Starts a gateway on `config_body` (everything but `[server]` and `[store]`, which the
/// harness adds).
pub async fn start(config_body: &str) -> TestGateway {
    start_with_env(config_body, HashMap::new()).await
}

pub async fn start_with_env(config_body: &str, env: HashMap<String, String>) -> TestGateway {
    start_with_grace(config_body, env, 5000).await
}

/// Starts a gateway whose graceful shutdown waits `grace_ms` for in-flight requests.
pub async fn start_with_grace(
    config_body: &str,
    env: HashMap<String, String>,
    grace_ms: u64,
) -> TestGateway {
    start_with_server(&format!("shutdown_grace_ms = {grace_ms}"), config_body, env).await
}

/// Starts a gateway with extra `[server]` lines (client keys, grace period, ...). The
/// dashboard is off: its own tests start it.
pub async fn start_with_server(
    server: &str,
    config_body: &str,
    env: HashMap<String, String>,
) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("router.db").display());
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{server}\n\n[dashboard]\nenabled = false\n\n[store]\nurl = \"{db_url}\"\nflush_ms = 5\n\n{config_body}"
    );
    let config =
        Config::parse(&text, Path::new("test.toml"), &env).unwrap_or_else(|e| panic!("{e}"));
    let running = router_gateway::start(config, std::future::pending()).await.unwrap();
    let url = running.proxy_url();
    TestGateway {
        running: Some(running),
        url,
        dir,
        db_url,
        client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
    }
}

impl TestGateway {
    pub fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    /// POSTs a JSON body to a path.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client.post(format!("{}{path}", self.url)).json(&body).send().await.unwrap()
    }

    pub async fn chat(&self, model: &str, text: &str) -> reqwest::Response {
        self.post(
            "/v1/chat/completions",
            serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]}),
        )
        .await
    }

    /// Stops the gateway (draining the writer) and opens its database.
    pub async fn stop_and_open_store(&mut self) -> Store {
        let report = self.running.take().unwrap().shutdown().await;
        assert_eq!(report.writer.dropped, 0);
        Store::connect(&self.db_url).await.unwrap()
    }
}

/// A `[[models]]` entry for an OpenAI-compatible simulated model.
pub fn openai_model(name: &str, base: &str, extra: &str) -> String {
    format!(
        "[[models]]\nname = \"{name}\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}/v1\"\ninput_price = 1.0\noutput_price = 2.0\n{extra}\n"
    )
}
