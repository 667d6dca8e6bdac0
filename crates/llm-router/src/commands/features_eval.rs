//! `llm-router features-eval FILE`: how well the feature extractor reads a labelled file —
//! accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix, for domain
//! and language.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use router_core::FeatureExtractor;
use router_core::features::eval::{LabelledQuery, evaluate};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A JSONL file, one `{"text": ..., "label": ..., "lang": ...}` a line. Labels are the
    /// router's domains (code, math, reasoning, writing, translation, text_processing,
    /// knowledge, chat) or the common task labels they fold from (qa, brainstorming,
    /// summarization, ...); `lang` is optional.
    pub file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let mut queries = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", args.file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let query: LabelledQuery = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}:{}: not a labelled query (need `text` and `label`)",
                args.file.display(),
                i + 1
            )
        })?;
        queries.push(query);
    }
    let extractor = FeatureExtractor::new();
    let started = Instant::now();
    let report = evaluate(&extractor, &queries);
    let elapsed = started.elapsed();
    println!("{report}");
    println!(
        "{} queries in {:.1} ms ({:.1} µs per query, this build)",
        queries.len(),
        elapsed.as_secs_f64() * 1000.0,
        elapsed.as_secs_f64() * 1e6 / queries.len().max(1) as f64
    );
    Ok(ExitCode::SUCCESS)
}
