//! The gateway as a library: opened without listeners, its APIs mounted in another app.

use std::collections::HashMap;
use std::path::Path;

use axum::Router;
use axum::routing::get;
use router_gateway::Config;
use router_sim::{SimConfig, SimModel, SimServer};
use serde_json::{Value, json};

#[tokio::test]
async fn auto_routing_and_the_routing_api_mount_under_another_apps_prefix() {
    let sim = SimServer::start(SimConfig::new().model(SimModel::new("m"))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\nurl = \"sqlite://{}\"\nflush_ms = 5\n\n[[models]]\nname = \"m\"\nprovider = \"openai-compatible\"\nbase_url = \"{}/v1\"\n",
        dir.path().join("r.db").display(),
        sim.base_url()
    );
    let config =
        Config::parse(&text, Path::new("t.toml"), &HashMap::<String, String>::new()).unwrap();
    let llm = router_gateway::open(config).await.unwrap();
    let app = Router::new().route("/", get(|| async { "mine" })).nest("/llm", llm.proxy_api());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("{base}/")).send().await.unwrap().text().await.unwrap(), "mine");
    let r = client
        .post(format!("{base}/llm/v1/chat/completions"))
        .json(&json!({"model": "auto", "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-router-model"], "m");
    let d: Value = client
        .post(format!("{base}/llm/api/routing/analyze"))
        .json(&json!({"query": "hello"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["model"], "m");

    server.abort();
    let report = llm.close().await;
    assert_eq!(report.dropped, 0);
    assert!(report.written >= 2, "{report:?}");
}
