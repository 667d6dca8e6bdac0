//! `llm-router analyze`: what the router would decide for a query, and why — computed here,
//! with the same code the gateway runs and the learned state the gateway last saved. No
//! model is called.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use router_core::policy::{self, Params};
use router_core::{
    Availability, Candidate, Decision, FeatureExtractor, Knowledge, Profile, Prompt,
};
use router_gateway::Config;
use router_gateway::app::{KNOWLEDGE_STATE, knowledge_for};
use router_store::Store;

use super::{inspect_config, runtime};
use crate::table::Table;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The query; without one, an interactive prompt reads queries line by line.
    pub query: Option<String>,
    /// Routing profile: quality, balanced, cost or fast (default: the configured one).
    #[arg(long)]
    pub profile: Option<Profile>,
    /// Print the decision as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let Some(config) = inspect_config(path) else {
        return Ok(ExitCode::from(2));
    };
    let (saved, note) = runtime()?.block_on(saved_knowledge(&config));
    let knowledge = knowledge_for(&config, saved).map_err(|e| anyhow::anyhow!("{e}"))?;
    let extractor = FeatureExtractor::new();
    let profile = args.profile.unwrap_or(config.routing.default_profile);
    if !args.json {
        eprintln!("{note}");
    }
    let analyze = |query: &str| -> anyhow::Result<()> {
        let started = Instant::now();
        let features = extractor.extract(&Prompt::user(query));
        let candidates = candidates(&config);
        let params = Params { profile, ..Params::default() };
        match policy::decide(&features, &candidates, &knowledge, &params) {
            Ok(mut decision) => {
                decision.decision_us = started.elapsed().as_micros() as u64;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&decision)?);
                } else {
                    print!("{}", render(&decision));
                }
            }
            Err(e) => eprintln!("{e}"),
        }
        Ok(())
    };
    match &args.query {
        Some(query) => analyze(query)?,
        None => {
            let stdin = std::io::stdin();
            let interactive = stdin.is_terminal();
            loop {
                if interactive {
                    print!("query> ");
                    std::io::stdout().flush()?;
                }
                let mut line = String::new();
                if stdin.lock().read_line(&mut line)? == 0 {
                    break;
                }
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                analyze(line)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The configured models as candidates (health is the gateway's to know; here every enabled
/// model counts as available).
fn candidates(config: &Config) -> Vec<Candidate<'_>> {
    config
        .models
        .iter()
        .map(|m| Candidate {
            name: &m.name,
            weight: m.weight(),
            price: m.price,
            context_window: m.context_window,
            capabilities: m.capabilities,
            availability: if m.enabled { Availability::Healthy } else { Availability::Unavailable },
            tags: &m.tags,
        })
        .collect()
}

async fn saved_knowledge(config: &Config) -> (Option<Knowledge>, String) {
    let store = match Store::connect(&config.store.url).await {
        Ok(s) => s,
        Err(e) => return (None, format!("(no learned state: {e}; priors only)")),
    };
    let result = match store.get_state(KNOWLEDGE_STATE).await {
        Ok(Some(entry)) => match serde_json::from_str(&entry.value) {
            Ok(k) => (Some(k), "(using the learned state the gateway last saved)".to_string()),
            Err(e) => (None, format!("(the saved learned state is unreadable: {e}; priors only)")),
        },
        Ok(None) => (None, "(nothing learned yet; priors only)".to_string()),
        Err(e) => (None, format!("(no learned state: {e}; priors only)")),
    };
    store.close().await;
    result
}

fn render(d: &Decision) -> String {
    let f = &d.features;
    let mut out = String::new();
    let secondary = f.language.secondary.map(|l| format!(" + {}", l.code())).unwrap_or_default();
    out.push_str(&format!(
        "features  language {}{secondary} ({:.2}) · domain {} ({:.2}) · complexity {} ({:.2}) · ~{} prompt tokens{}{}{}\n",
        f.language.primary.code(),
        f.language.confidence,
        f.domain.domain.as_str(),
        f.domain.confidence,
        f.complexity.band.as_str(),
        f.complexity.score,
        f.prompt_tokens,
        if f.needs.vision { " · needs vision" } else { "" },
        if f.needs.tools { " · needs tools" } else { "" },
        if f.needs.json { " · needs JSON" } else { "" },
    ));
    let mut table =
        Table::new(["rank", "model", "quality", "cost $", "latency ms", "evidence", "utility"])
            .right_align(&[0, 2, 3, 4, 5, 6]);
    for (i, r) in d.ranking.iter().enumerate() {
        table.row([
            (i + 1).to_string(),
            r.model.clone(),
            format!("{:.3}", r.estimate.quality),
            format!("{:.6}", r.estimate.cost_usd),
            format!("{:.0}", r.estimate.latency_ms),
            format!("{:.0}", r.estimate.evidence),
            format!("{:.3}", r.utility),
        ]);
    }
    out.push_str(&table.render());
    for e in &d.excluded {
        out.push_str(&format!("excluded  {}: {}\n", e.model, e.reason));
    }
    out.push_str(&format!(
        "decision  {} (source {}, profile {}, {} µs)\nreason    {}\n",
        d.model,
        d.source.as_str(),
        d.profile,
        d.decision_us,
        d.reason
    ));
    out
}
