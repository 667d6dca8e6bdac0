//! `llm-router models`: the configured models and deployments, with live health when a
//! gateway is running.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use super::{inspect_config, runtime};
use crate::table::Table;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base URL of a running gateway to ask for live health (default: from `server.listen`).
    #[arg(long)]
    pub url: Option<String>,
}

pub fn run(path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let Some(config) = inspect_config(path) else {
        return Ok(ExitCode::from(2));
    };
    let base = args.url.unwrap_or_else(|| format!("http://{}", config.server.listen));
    let live = runtime()?.block_on(fetch(&format!("{}/models", base.trim_end_matches('/'))));
    let mut table = Table::new([
        "model",
        "deployment",
        "provider",
        "weight",
        "enabled",
        "health",
        "circuit",
        "calls",
        "errors",
    ])
    .right_align(&[3, 7, 8]);
    match &live {
        Some(status) => {
            for m in status["models"].as_array().into_iter().flatten() {
                for d in m["deployments"].as_array().into_iter().flatten() {
                    let enabled = m["enabled"].as_bool().unwrap_or(false)
                        && d["enabled"].as_bool().unwrap_or(false);
                    table.row([
                        text(&m["name"]),
                        text(&d["id"]),
                        text(&d["provider"]),
                        number(&d["weight"]),
                        yes_no(enabled),
                        if d["healthy"].as_bool().unwrap_or(false) {
                            "healthy".into()
                        } else {
                            "unhealthy".into()
                        },
                        text(&d["circuit"]),
                        number(&d["calls"]),
                        number(&d["failures"]),
                    ]);
                }
            }
        }
        None => {
            for m in &config.models {
                for d in &m.deployments {
                    table.row([
                        m.name.clone(),
                        d.id.clone(),
                        d.provider.as_str().to_string(),
                        format!("{}", d.weight),
                        yes_no(m.enabled && d.enabled),
                        "unknown".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                    ]);
                }
            }
        }
    }
    print!("{}", table.render());
    if live.is_none() {
        println!(
            "(no gateway answered at {base}: health is unknown; start one with `llm-router serve`)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn fetch(url: &str) -> Option<Value> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().ok()?;
    let response = client.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("-").to_string()
}

fn number(v: &Value) -> String {
    match v {
        Value::Number(n) => n.as_f64().map_or("-".into(), |f| {
            if f.fract() == 0.0 { format!("{}", f as i64) } else { format!("{f:.2}") }
        }),
        _ => "-".into(),
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}
