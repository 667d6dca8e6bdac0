//! `router-bench`: the load-test harness of llm-router.
//!
//! One command measures, on one machine and in one run, what the gateway adds to a request:
//! straight to a fast fake upstream (the floor), through nginx (one plain hop, the physical
//! reference), optionally through other LLM gateways (LiteLLM's proxy, Portkey's), and through
//! the gateway — named model, `auto`, `auto` with the judge's cache, streaming — at fixed
//! concurrencies and fixed rates. It reports throughput, latency
//! percentiles and the overhead over the floor, the gateway's CPU and memory, time to first
//! token and chunk pacing, and whether the store recorded every answer; and writes it all as
//! the Markdown section of BENCHMARKS.md. `bench/run.sh` installs the tools, builds the
//! release binaries and runs it.

mod latency;
mod load;
mod oha;
mod process;
mod report;
mod results;
mod run;
mod scrape;
mod services;
mod stream;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, Subcommand};

use crate::latency::Ms;
use crate::load::Load;
use crate::results::Peer;
use crate::services::Serving;

#[derive(Debug, Parser)]
#[command(name = "router-bench", version, about = "The llm-router load-test harness.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole matrix and write the results.
    Run(RunArgs),
    /// Drive one streaming endpoint and print time to first and last token.
    Stream(StreamArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Seconds each scenario is measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of unmeasured load before each scenario.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Loads: c<clients> (closed loop) or r<rate> (open loop, requests a second).
    #[arg(long, value_delimiter = ',', default_value = "c1,c16,c64,c256,r500,r1000,r2000")]
    loads: Vec<Load>,
    /// Streams held open at once for the memory figure.
    #[arg(long, default_value_t = 1000)]
    streams: u32,
    /// Directory with the release `llm-router` and `router-sim` (default: next to this
    /// program).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// How the gateway in `--bin-dir` was built, as the results should name it (default:
    /// "release build"), e.g. "profile-guided build (`bench/pgo.sh`)".
    #[arg(long)]
    build: Option<String>,
    /// The oha binary (default: bench/.tools/bin/oha, then the PATH).
    #[arg(long)]
    oha: Option<PathBuf>,
    /// The nginx binary.
    #[arg(long, default_value = "/usr/sbin/nginx")]
    nginx: PathBuf,
    /// Leave out the nginx rows.
    #[arg(long)]
    no_nginx: bool,
    /// LiteLLM's `litellm` command (`pip install 'litellm[proxy]'`; `bench/run.sh --with-litellm`
    /// installs it): also measure its proxy in front of the fake upstream, at every
    /// concurrency and at the fixed rates it can keep up with.
    #[arg(long, value_name = "PATH")]
    litellm: Option<PathBuf>,
    /// Portkey's gateway: the `build/start-server.js` of the npm package
    /// `@portkey-ai/gateway`, run with `node` (`bench/run.sh --with-portkey` installs it):
    /// also measure it in front of the fake upstream, as LiteLLM is measured.
    #[arg(long, value_name = "PATH")]
    portkey: Option<PathBuf>,
    /// The gateway's `server.threads` (default: its own default, one per CPU; 0: one shared
    /// work-stealing runtime).
    #[arg(long)]
    gateway_threads: Option<u32>,
    /// The gateway's `server.busy_poll_us`: how long its serving threads keep polling for
    /// I/O after their connections' last read or write (default: its own, off).
    #[arg(long, value_name = "MICROSECONDS")]
    gateway_busy_poll: Option<u32>,
    /// Also read the gateway's memory this many seconds after its last request, e.g. 190:
    /// past the upstream pools' idle timeout and the heap trim that follows it.
    #[arg(long)]
    idle_long: Option<f64>,
    /// Where logs, configs, databases and the results go (default: bench/results/<time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// A Markdown file whose generated section (between the router-bench markers) is
    /// replaced by the results, e.g. BENCHMARKS.md.
    #[arg(long)]
    write: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct StreamArgs {
    /// The server's base URL (…/v1/chat/completions is appended).
    #[arg(long)]
    url: String,
    /// The model to ask.
    #[arg(long, default_value = "auto")]
    model: String,
    /// c<clients> or r<rate>.
    #[arg(long, default_value = "c16")]
    load: Load,
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value = "Explain how a hash map works, briefly.")]
    prompt: String,
    /// A header every request carries, as `name: value` (repeatable), for a server that
    /// wants one, e.g. `--header 'authorization: Bearer sk-…'`.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
}

/// `name: value` as a header pair.
fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not a header: write it as `name: value`"))?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("`{text}`: a header's name is one word before the colon"));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("router-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run_matrix(args).await,
            Command::Stream(args) => run_stream(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("router-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_matrix(args: RunArgs) -> anyhow::Result<()> {
    let repo = std::env::current_dir()?;
    let bin_dir = match args.bin_dir {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .context("this program has no directory")?
            .to_path_buf(),
    };
    for bin in ["llm-router", "router-sim"] {
        anyhow::ensure!(
            bin_dir.join(bin).is_file(),
            "{} is missing: build it with `cargo build --release -p llm-router -p router-sim`",
            bin_dir.join(bin).display()
        );
    }
    let nginx = (!args.no_nginx).then_some(args.nginx);
    if let Some(nginx) = &nginx {
        anyhow::ensure!(
            nginx.is_file(),
            "{} is missing: install nginx (bench/run.sh does) or pass --no-nginx",
            nginx.display()
        );
    }
    let mut peers = Vec::new();
    for (peer, path, install) in [
        (Peer::LiteLlm, args.litellm, "--with-litellm"),
        (Peer::Portkey, args.portkey, "--with-portkey"),
    ] {
        let Some(path) = path else { continue };
        anyhow::ensure!(
            path.is_file(),
            "{} is missing: install {} (`bench/run.sh {install}` does) or leave it out",
            path.display(),
            peer.name()
        );
        peers.push((peer, repo.join(path)));
    }
    // Absolute, since nginx resolves a relative path against its own prefix.
    let out = match args.out {
        Some(dir) => repo.join(dir),
        None => repo.join("bench/results").join(timestamp()),
    };
    let options = run::Options {
        bin_dir,
        build: args.build,
        oha: oha::locate(args.oha.as_deref(), &repo)?,
        nginx,
        peers,
        duration: seconds(args.duration)?,
        warmup: seconds(args.warmup)?,
        loads: args.loads,
        streams: args.streams,
        work_dir: out.clone(),
        serving: Serving { threads: args.gateway_threads, busy_poll_us: args.gateway_busy_poll },
        idle_long: args.idle_long.map(seconds).transpose()?,
    };
    eprintln!("router-bench: results and logs in {}", out.display());
    let results = run::run(&options).await?;
    let section = report::markdown(&results);
    std::fs::write(out.join("results.md"), &section)?;
    println!("{section}");
    if let Some(path) = args.write {
        let document = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, report::splice(&document, &section))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("router-bench: wrote the results into {}", path.display());
    }
    Ok(())
}

async fn run_stream(args: StreamArgs) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "model": args.model,
        "stream": true,
        "messages": [{ "role": "user", "content": args.prompt }],
    });
    let load = stream::StreamLoad {
        url: format!("{}/v1/chat/completions", args.url.trim_end_matches('/')),
        headers: args.headers,
        body: Bytes::from(body.to_string()),
        load: args.load,
        duration: seconds(args.duration)?,
    };
    let r = stream::run(&load).await?;
    let show = |p: Option<latency::Percentiles>| {
        p.map_or("-".to_string(), |p| {
            format!("p50 {} ms, p90 {} ms, p99 {} ms", Ms(p.p50), Ms(p.p90), Ms(p.p99))
        })
    };
    println!("{} streams completed ({:.1}/s), {} failed", r.completed, r.rps, r.failed);
    println!("first token: {}", show(r.ttft));
    println!("last token:  {}", show(r.total));
    println!(
        "chunk gaps:  {} ({} chunks; at most {} per read)",
        show(r.gaps),
        r.chunks,
        r.max_chunks_per_read
    );
    for failure in &r.failures {
        println!("failure: {failure}");
    }
    Ok(())
}

fn seconds(value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{value} is not a positive number of seconds"))
}

/// `20261127-0102`, for result directories.
fn timestamp() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y%m%d-%H%M%S"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "latest".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_as_name_and_value() {
        assert_eq!(
            parse_header("x-portkey-provider: openai").unwrap(),
            ("x-portkey-provider".to_string(), "openai".to_string())
        );
        assert_eq!(
            parse_header("authorization:Bearer a:b").unwrap(),
            ("authorization".to_string(), "Bearer a:b".to_string())
        );
        assert!(parse_header("no colon").unwrap_err().contains("name: value"));
        assert!(parse_header("two words: x").is_err());
        assert!(parse_header(": x").is_err());
    }
}
