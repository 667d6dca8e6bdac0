//! `llm-router feedback`: rate an answer of a running gateway by its decision id.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use super::{inspect_config, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The decision id (the `x-router-decision-id` header of the response).
    pub decision_id: String,
    /// A rating from 1 to 5, or a score from 0 to 1 (written with a decimal point: 0.8).
    pub rating: String,
    /// A comment to keep with the rating.
    #[arg(long)]
    pub comment: Option<String>,
    /// Base URL of the gateway (default: from `server.listen`).
    #[arg(long)]
    pub url: Option<String>,
}

pub fn run(path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let base = match args.url {
        Some(url) => url,
        None => match inspect_config(path) {
            Some(config) => format!("http://{}", config.server.listen),
            None => return Ok(ExitCode::from(2)),
        },
    };
    let mut body = json!({"decision_id": args.decision_id, "comment": args.comment});
    if args.rating.contains('.') {
        let score: f64 = args.rating.parse().context("the score must be a number such as 0.8")?;
        body["score"] = json!(score);
    } else {
        let rating: u8 =
            args.rating.parse().context("the rating must be a whole number from 1 to 5")?;
        body["rating"] = json!(rating);
    }
    let url = format!("{}/api/routing/feedback", base.trim_end_matches('/'));
    runtime()?.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        let response = client.post(&url).json(&body).send().await.with_context(|| {
            format!(
                "no gateway answered at {base} (start one with `llm-router serve`, or pass --url)"
            )
        })?;
        let status = response.status();
        let reply: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            println!(
                "feedback recorded for {} (model {}, score {}){}",
                args.decision_id,
                reply["model"].as_str().unwrap_or("?"),
                reply["score"],
                if reply["replaced"].as_bool() == Some(true) {
                    "; it replaces the earlier feedback"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        } else {
            eprintln!(
                "{}: {}",
                status,
                reply["error"]["message"].as_str().unwrap_or("the gateway refused the feedback")
            );
            Ok(ExitCode::FAILURE)
        }
    })
}
