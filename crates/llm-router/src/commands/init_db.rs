//! `llm-router init-db`: create or upgrade the database schema.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use router_store::Store;

use super::check::redact_url;
use super::{inspect_config, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Store URL (overrides `store.url`).
    #[arg(long, env = "LLM_ROUTER_STORE_URL")]
    pub store: Option<String>,
}

pub fn run(path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let url = match args.store {
        Some(url) => url,
        None => match inspect_config(path) {
            Some(config) => config.store.url,
            None => return Ok(ExitCode::from(2)),
        },
    };
    runtime()?.block_on(async {
        let store = Store::connect(&url)
            .await
            .with_context(|| format!("cannot open {}", redact_url(&url)))?;
        store.migrate().await.context("migration failed")?;
        let counts = store.counts().await?;
        println!("{}: schema is up to date ({counts:?})", redact_url(&url));
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}
