//! `llm-router stats`: performance per model × domain × language, from the store.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use router_gateway::routing_api::parse_window;
use router_store::{StatsQuery, Store};

use super::check::redact_url;
use super::{inspect_config, runtime};
use crate::table::Table;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Time window: 90m, 24h, 7d, ... or all.
    #[arg(long, default_value = "all")]
    pub window: String,
    /// Split each row by complexity band too.
    #[arg(long)]
    pub by_complexity: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let Some(config) = inspect_config(path) else {
        return Ok(ExitCode::from(2));
    };
    let window = parse_window(&args.window)
        .with_context(|| format!("`{}` is not a window like 90m, 24h, 7d or all", args.window))?;
    let since_ms = (window > 0).then(|| router_gateway::app::epoch_ms() - window);
    runtime()?.block_on(async {
        let store = Store::connect(&config.store.url)
            .await
            .with_context(|| format!("cannot open {}", redact_url(&config.store.url)))?;
        store.migrate().await?;
        let rows = store.stats(&StatsQuery { since_ms, by_complexity: args.by_complexity }).await?;
        store.close().await;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
            return Ok(ExitCode::SUCCESS);
        }
        if rows.is_empty() {
            println!("no requests recorded in {} yet", redact_url(&config.store.url));
            return Ok(ExitCode::SUCCESS);
        }
        let mut header = vec!["model", "domain", "language"];
        if args.by_complexity {
            header.push("complexity");
        }
        header.extend([
            "requests",
            "success",
            "mean score",
            "p50 ms",
            "p95 ms",
            "tokens",
            "cost $",
        ]);
        let first_number = if args.by_complexity { 4 } else { 3 };
        let mut table =
            Table::new(header).right_align(&(first_number..first_number + 7).collect::<Vec<_>>());
        for r in &rows {
            let mut cells = vec![
                r.model.clone(),
                r.domain.clone().unwrap_or_else(|| "-".into()),
                r.language.clone().unwrap_or_else(|| "-".into()),
            ];
            if args.by_complexity {
                cells.push(r.complexity.clone().unwrap_or_else(|| "-".into()));
            }
            cells.extend([
                r.requests.to_string(),
                r.success_rate().map_or("-".into(), |s| format!("{:.1}%", s * 100.0)),
                r.mean_score.map_or("-".into(), |s| format!("{s:.2}")),
                r.latency_p50_ms.map_or("-".into(), |v| v.to_string()),
                r.latency_p95_ms.map_or("-".into(), |v| v.to_string()),
                (r.input_tokens + r.output_tokens).to_string(),
                format!("{:.4}", r.cost_usd),
            ]);
            table.row(cells);
        }
        print!("{}", table.render());
        Ok(ExitCode::SUCCESS)
    })
}
