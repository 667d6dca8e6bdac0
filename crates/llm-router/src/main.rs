//! `llm-router`: the command line of the self-learning LLM routing gateway.
//!
//! Each subcommand lives in its own module under `commands/`; this file only parses the
//! command line, sets up logging and the environment, and hands over.

mod allocator;
mod commands;
mod logging;
mod open_files;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A self-learning LLM routing gateway: OpenAI- and Anthropic-compatible, it picks the model
/// for every request from the query and what it has learned, balances, fails over, and learns
/// from outcomes and feedback.
#[derive(Debug, Parser)]
#[command(name = "llm-router", version, about, long_about = None)]
struct Cli {
    /// Configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "LLM_ROUTER_CONFIG",
        default_value = "llm-router.toml"
    )]
    config: PathBuf,

    /// Log format: `human` (default on a terminal) or `json`.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Auto)]
    log_format: logging::LogFormat,

    #[command(subcommand)]
    command: Command,
}

// Parsed once per run, so the size of its largest variant (eval's options) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway: the proxy API and the admin dashboard.
    Serve(commands::serve::Args),
    /// Run the whole system on simulated upstream models — no API key, no set-up.
    Demo(commands::demo::Args),
    /// Create or upgrade the database schema (the gateway also does this on start).
    InitDb(commands::init_db::Args),
    /// Validate the configuration file; exits non-zero and names file, line and key on errors.
    Check,
    /// List the configured models and deployments (with live health from a running gateway).
    Models(commands::models::Args),
    /// Show what the router would decide for a query, and why (no model is called).
    Analyze(commands::analyze::Args),
    /// Rate an answer by its decision id (1–5, or a score 0–1), on a running gateway.
    Feedback(commands::feedback::Args),
    /// Performance per model × domain × language, from the store.
    Stats(commands::stats::Args),
    /// Measure routing quality against cost on prompts with known per-model results.
    Eval(commands::eval::Args),
    /// Measure the feature extractor (domain, language) on a labelled JSONL file.
    FeaturesEval(commands::features_eval::Args),
    /// Read a password on stdin and print its argon2 hash for ADMIN_PASSWORD_HASH.
    HashPassword,
}

fn main() -> ExitCode {
    // `.env` first, so config validation sees the same environment `serve` will. The real
    // environment wins over the file.
    let _ = dotenvy::dotenv();
    allocator::install();
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(&cli.config, args),
        Command::Demo(args) => commands::demo::run(args),
        Command::InitDb(args) => commands::init_db::run(&cli.config, args),
        Command::Check => commands::check::run(&cli.config),
        Command::Models(args) => commands::models::run(&cli.config, args),
        Command::Analyze(args) => commands::analyze::run(&cli.config, args),
        Command::Feedback(args) => commands::feedback::run(&cli.config, args),
        Command::Stats(args) => commands::stats::run(&cli.config, args),
        Command::Eval(args) => commands::eval::run(args),
        Command::FeaturesEval(args) => commands::features_eval::run(args),
        Command::HashPassword => commands::hash_password::run(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
