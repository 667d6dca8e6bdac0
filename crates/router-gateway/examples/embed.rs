//! Embedding llm-router in your own axum service: its `auto` routing and routing API mounted
//! under `/llm`, next to the service's own routes, in one process.
//!
//! ```sh
//! cargo run -p router-gateway --example embed                      # on simulated models
//! cargo run -p router-gateway --example embed -- llm-router.toml   # on your configuration
//! curl -s localhost:8080/llm/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"auto","messages":[{"role":"user","content":"Hello"}]}'
//! curl -s localhost:8080/llm/api/routing/analyze -H 'content-type: application/json' \
//!   -d '{"query":"写一首关于秋天的诗"}'
//! ```

use std::collections::HashMap;
use std::path::Path;

use axum::Router;
use axum::routing::get;
use router_gateway::Config;
use router_gateway::config::ProcessEnv;
use router_sim::{SimConfig, SimModel, SimServer, Style};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Your configuration, or two simulated models so the example runs with no API key.
    let (config, _upstream) = match std::env::args().nth(1) {
        Some(path) => (Config::load(Path::new(&path), &ProcessEnv)?, None),
        None => {
            let sim = SimServer::start(
                SimConfig::new()
                    .model(SimModel::new("fast").style(Style::Terse))
                    .model(SimModel::new("thorough").style(Style::Verbose)),
            )
            .await?;
            let text = format!(
                "[store]\nurl = \"sqlite::memory:\"\n\n[[models]]\nname = \"fast\"\nprovider = \"openai-compatible\"\nbase_url = \"{0}/v1\"\ninput_price = 0.1\noutput_price = 0.4\n\n[[models]]\nname = \"thorough\"\nprovider = \"openai-compatible\"\nbase_url = \"{0}/v1\"\ninput_price = 3\noutput_price = 15\nstrengths = [\"code\", \"reasoning\"]\n",
                sim.base_url()
            );
            (
                Config::parse(
                    &text,
                    Path::new("embedded.toml"),
                    &HashMap::<String, String>::new(),
                )?,
                Some(sim),
            )
        }
    };

    // The gateway without listeners of its own: store, writer and learned state.
    let llm = router_gateway::open(config).await?;
    let app = Router::new()
        .route("/", get(|| async { "my service, with an LLM router under /llm\n" }))
        .nest("/llm", llm.proxy_api());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!("listening on http://{}  (auto routing under /llm)", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // Every decision and outcome is written before the process ends.
    let report = llm.close().await;
    println!("{} record(s) written", report.written);
    Ok(())
}
