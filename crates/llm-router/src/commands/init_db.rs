//! `llm-router init-db`: create or upgrade the database schema, and optionally load measured
//! model performance into what the router has learned (a warm start).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use router_core::{Domain, Knowledge, Language};
use router_gateway::Config;
use router_gateway::app::{KNOWLEDGE_STATE, knowledge_for};
use router_store::Store;

use super::check::redact_url;
use super::{inspect_config, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Store URL (overrides `store.url`).
    #[arg(long, env = "LLM_ROUTER_STORE_URL")]
    pub store: Option<String>,
    /// A CSV of measured performance to start from, with the header
    /// `model,domain,language,quality,weight`: quality in [0, 1]; domain and language may be
    /// empty (the model as a whole, or all domains of a language); weight is how many
    /// observations the row stands for (default 10).
    #[arg(long)]
    pub priors: Option<PathBuf>,
}

/// One row of a priors file.
#[derive(Debug, Clone, PartialEq)]
struct PriorRow {
    model: String,
    domain: Option<Domain>,
    language: Option<Language>,
    quality: f64,
    weight: f64,
}

fn parse_priors(text: &str, file: &Path) -> anyhow::Result<Vec<PriorRow>> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((_, header)) = lines.next() else { bail!("{}: the file is empty", file.display()) };
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    if columns[..] != ["model", "domain", "language", "quality", "weight"][..]
        && columns[..] != ["model", "domain", "language", "quality"][..]
    {
        bail!("{}:1: the header must be `model,domain,language,quality,weight`", file.display());
    }
    let mut rows = Vec::new();
    for (i, line) in lines {
        let at = format!("{}:{}", file.display(), i + 1);
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() < 4 || cells.len() > 5 {
            bail!("{at}: expected 4 or 5 comma-separated cells, found {}", cells.len());
        }
        let domain = match cells[1] {
            "" => None,
            d => Some(Domain::parse(d).with_context(|| {
                format!(
                    "{at}: `{d}` is not a domain ({})",
                    Domain::ALL.map(Domain::as_str).join(", ")
                )
            })?),
        };
        let language =
            match cells[2] {
                "" => None,
                l => Some(Language::from_code(l).with_context(|| {
                    format!("{at}: `{l}` is not a language code (en, zh, ja, …)")
                })?),
            };
        let quality: f64 = cells[3]
            .parse()
            .with_context(|| format!("{at}: quality `{}` is not a number", cells[3]))?;
        if !(0.0..=1.0).contains(&quality) {
            bail!("{at}: quality must be in [0, 1], not {quality}");
        }
        let weight: f64 = match cells.get(4).filter(|w| !w.is_empty()) {
            Some(w) => w.parse().with_context(|| format!("{at}: weight `{w}` is not a number"))?,
            None => 10.0,
        };
        if !(weight > 0.0 && weight.is_finite()) {
            bail!("{at}: weight must be a positive number, not {weight}");
        }
        rows.push(PriorRow { model: cells[0].to_string(), domain, language, quality, weight });
    }
    Ok(rows)
}

pub fn run(path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let config = match (&args.priors, args.store.is_some()) {
        // Priors are checked against the configured models, so they need the config.
        (Some(_), _) | (None, false) => match inspect_config(path) {
            Some(config) => Some(config),
            None => return Ok(ExitCode::from(2)),
        },
        (None, true) => None,
    };
    let url = match (args.store, &config) {
        (Some(url), _) => url,
        (None, Some(config)) => config.store.url.clone(),
        (None, None) => bail!("give the store with --store or a config file"),
    };
    let rows = match &args.priors {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            parse_priors(&text, file)?
        }
        None => Vec::new(),
    };
    runtime()?.block_on(async {
        let store = Store::connect(&url)
            .await
            .with_context(|| format!("cannot open {}", redact_url(&url)))?;
        store.migrate().await.context("migration failed")?;
        if let (Some(config), false) = (&config, rows.is_empty()) {
            load_priors(&store, config, &rows).await?;
        }
        let counts = store.counts().await?;
        println!(
            "{}: schema is up to date ({} requests, {} outcomes, {} feedback, {} state entries)",
            redact_url(&url),
            counts.requests,
            counts.outcomes,
            counts.feedback,
            counts.state
        );
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

async fn load_priors(store: &Store, config: &Config, rows: &[PriorRow]) -> anyhow::Result<()> {
    let saved: Option<Knowledge> = match store.get_state(KNOWLEDGE_STATE).await? {
        Some(entry) => Some(
            serde_json::from_str(&entry.value).context("the saved learned state is unreadable")?,
        ),
        None => None,
    };
    let mut knowledge = knowledge_for(config, saved).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut unknown = Vec::new();
    for row in rows {
        if config.model(&row.model).is_none() && !unknown.contains(&row.model) {
            unknown.push(row.model.clone());
        }
        knowledge.seed(&row.model, row.domain, row.language, row.quality, row.weight);
    }
    store.put_state(KNOWLEDGE_STATE, &serde_json::to_string(&knowledge)?).await?;
    println!("loaded {} prior row(s) into the learned state", rows.len());
    if !unknown.is_empty() {
        println!("note: not configured (kept, used if you add them): {}", unknown.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priors_parse_and_errors_name_the_line() {
        let file = Path::new("p.csv");
        let rows = parse_priors("model,domain,language,quality,weight\n# comment\ngpt,code,,0.9,20\ngpt,,zh,0.7,\nds,,,0.6,5\n", file).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].domain, Some(Domain::Code));
        assert_eq!(rows[1].language, Some(Language::Zh));
        assert_eq!(rows[1].weight, 10.0);
        let e =
            parse_priors("model,domain,language,quality\ngpt,cooking,,0.5\n", file).unwrap_err();
        assert!(e.to_string().starts_with("p.csv:2:"), "{e}");
        assert!(parse_priors("model,domain,language,quality\ngpt,code,,1.5\n", file).is_err());
        assert!(parse_priors("name,quality\n", file).is_err());
    }
}
