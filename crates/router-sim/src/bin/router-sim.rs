//! `router-sim`: serve simulated LLM providers on a port, until Ctrl-C or SIGTERM.
//!
//! The same server the tests and `llm-router demo` use, as a process of its own: point a
//! gateway (or any OpenAI, Anthropic or Ollama client) at it to try things without an API
//! key, or use it as the fast fake upstream of a load test (`bench/run.sh` does).
//!
//! ```text
//! router-sim --listen 127.0.0.1:8000 --model sim-small --model sim-large --judge llama3
//! router-sim --model paced --first-byte-ms 200 --chunk-ms 20      # a model that takes its time
//! ```

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use router_sim::{JudgeBehavior, JudgeConfig, Latency, SimConfig, SimModel, SimServer, Style};

/// Serve simulated OpenAI, Anthropic and Ollama models over HTTP.
#[derive(Debug, Parser)]
#[command(name = "router-sim", version)]
struct Args {
    /// Where to listen; port 0 picks a free one (printed at start).
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// A model to host (repeat, or separate names with commas). Every answer starts with
    /// `[name]`, so a client can tell which model answered.
    #[arg(long = "model", value_delimiter = ',', default_value = "sim")]
    models: Vec<String>,
    /// The shape of the answers.
    #[arg(long, value_enum, default_value_t = StyleArg::Balanced)]
    style: StyleArg,
    /// Wait before the response head (the fixed part of every answer's latency).
    #[arg(long, default_value_t = 0)]
    first_byte_ms: u64,
    /// Wait between two streamed chunks; a non-streaming answer waits as long in total.
    #[arg(long, default_value_t = 0)]
    chunk_ms: u64,
    /// Also act as a fake Ollama judge under this model name (`/api/chat` with `format`).
    #[arg(long)]
    judge: Option<String>,
    /// The judge thinks this long before it answers.
    #[arg(long, default_value_t = 0)]
    judge_ms: u64,
    /// The judge answers this many calls at a time and queues the rest, as Ollama does with
    /// `OLLAMA_NUM_PARALLEL` (default: all at once).
    #[arg(long)]
    judge_parallel: Option<NonZeroUsize>,
    /// How many recent requests to keep in memory; 0 (the default) keeps none, which is
    /// what a load test wants.
    #[arg(long, default_value_t = 0)]
    record: usize,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StyleArg {
    Terse,
    Balanced,
    Verbose,
    Chinese,
    Echo,
}

impl From<StyleArg> for Style {
    fn from(style: StyleArg) -> Style {
        match style {
            StyleArg::Terse => Style::Terse,
            StyleArg::Balanced => Style::Balanced,
            StyleArg::Verbose => Style::Verbose,
            StyleArg::Chinese => Style::ChineseFirst,
            StyleArg::Echo => Style::Echo,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("router-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> ExitCode {
    let latency = Latency {
        first_byte: Duration::from_millis(args.first_byte_ms),
        per_chunk: Duration::from_millis(args.chunk_ms),
    };
    let mut config = SimConfig::new().addr(args.listen);
    config.record_limit = args.record;
    for name in args.models.iter().filter(|n| !n.is_empty()) {
        config = config.model(SimModel::new(name).style(args.style.into()).latency(latency));
    }
    if let Some(judge) = args.judge {
        let mut judge = JudgeConfig::new(judge)
            .behavior(JudgeBehavior::default().delayed(Duration::from_millis(args.judge_ms)));
        if let Some(n) = args.judge_parallel {
            judge = judge.parallel(n);
        }
        config = config.judge(judge);
    }
    let names: Vec<String> = config.models.iter().map(|m| m.name.clone()).collect();
    let sim = match SimServer::start(config).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("router-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One line a script can wait for and read the address from.
    println!("router-sim listening on {} (models: {})", sim.base_url(), names.join(", "));
    println!("  OpenAI     {}/v1/chat/completions", sim.base_url());
    println!("  Anthropic  {}/v1/messages", sim.base_url());
    println!("  Ollama     {}/api/chat", sim.base_url());
    shutdown_signal().await;
    let stats = sim.stats();
    sim.shutdown().await;
    let total = stats.total();
    println!(
        "router-sim stopped: {} request(s), {} completed, {} cancelled",
        total.requests, total.completed, total.cancelled
    );
    ExitCode::SUCCESS
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
