//! `llm-router serve`: run the gateway until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::{background_runtime, load_config, runtime, shutdown_signal};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Listen address of the proxy API (overrides `server.listen`).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Store URL (overrides `store.url`), e.g. sqlite://data/router.db or postgres://…
    #[arg(long, env = "LLM_ROUTER_STORE_URL")]
    pub store: Option<String>,
}

pub fn run(path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let Some(mut config) = load_config(path) else {
        return Ok(ExitCode::from(2));
    };
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(store) = args.store {
        config.store.url = store;
    }
    // Each connection, the clients' and the upstreams', is a file descriptor.
    match crate::open_files::raise() {
        Ok(limit) => {
            if limit.now > limit.before {
                tracing::info!(
                    before = limit.before,
                    now = limit.now,
                    "raised the open-file limit"
                );
            }
            if limit.now < 4096 {
                tracing::warn!(
                    limit = limit.now,
                    "the open-file limit allows only about {} requests in flight (a client and an upstream connection each); raise the hard limit (`ulimit -Hn`, or LimitNOFILE= under systemd)",
                    limit.now / 2
                );
            }
        }
        Err(error) => tracing::warn!(%error, "could not raise the open-file limit"),
    }
    // With serving threads of their own (the default), the proxy API does not run on this
    // runtime: only the store's writer, health checks, the dashboard and timers do. One
    // worker does that; a second is only woken to look for work it does not find.
    let runtime = match config.server.threads {
        Some(_) => background_runtime()?,
        None => runtime()?,
    };
    runtime.block_on(async {
        let running = router_gateway::start(config, shutdown_signal())
            .await
            .context("the gateway could not start")?;
        println!("llm-router: proxy API on {}", running.proxy_url());
        if let Some(dashboard) = running.dashboard_url() {
            println!("llm-router: dashboard on {dashboard}");
        }
        let report = running.wait().await;
        println!(
            "llm-router stopped: {} record(s) written{}",
            report.writer.written,
            if report.forced {
                "; some requests were cut at the end of the grace period"
            } else {
                ""
            }
        );
        Ok(if report.writer.dropped > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    })
}
