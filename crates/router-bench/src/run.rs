//! One run of the harness: start the fake upstream, nginx (and the other gateways, when given)
//! and the gateway; measure every scenario; stop them; check the books.
//!
//! The scenarios of one load run back to back (floor, nginx, other gateways, this one), so drift
//! in the machine's state touches the floor and the hops alike.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::latency::{Ms, Percentiles};
use crate::load::Load;
use crate::oha::{OhaRun, Summary};
use crate::process::{Machine, Memory, Watch};
use crate::results::{
    DECISION_LOAD, DECISION_PAUSE, DecisionTime, GatewayView, Ledger, Pacing, Peer, Results, Route,
    StreamRow, Subject, UnaryRow,
};
use crate::scrape;
use crate::services::{
    Endpoint, JudgeSetup, LITELLM_ENV, LITELLM_LOG_CONFIG, Service, Serving, free_port,
    gateway_config, litellm_config, nginx_config,
};
use crate::stream::{self, StreamLoad, StreamReport};

/// What to run and with what.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where `llm-router` and `router-sim` are (the release build).
    pub bin_dir: PathBuf,
    /// How that gateway was built, for the report; `None`: the plain release build.
    pub build: Option<String>,
    pub oha: PathBuf,
    /// nginx, for the reference hop; without it those rows are left out.
    pub nginx: Option<PathBuf>,
    /// Other gateways to measure beside this one, each with what starts it: LiteLLM's
    /// `litellm` command, Portkey's `build/start-server.js`.
    pub peers: Vec<(Peer, PathBuf)>,
    /// Each scenario's measured time.
    pub duration: Duration,
    /// Load before each scenario that is not measured: connections open, caches warm.
    pub warmup: Duration,
    pub loads: Vec<Load>,
    /// Streams held open at once for the memory figure.
    pub streams: u32,
    /// Logs, configs, databases and bodies of this run.
    pub work_dir: PathBuf,
    /// How the gateway serves (`server.threads`, `server.busy_poll_us`).
    pub serving: Serving,
    /// When to read the idle footprint a second time, counted from the last request.
    pub idle_long: Option<Duration>,
}

const SMALL: &str = "bench-small";
const LARGE: &str = "bench-large";
const JUDGE: &str = "bench-judge";
const PACED: &str = "bench-paced";
const HELD: &str = "bench-held";
/// How far apart the paced upstream sends chunks (the hold-back check).
const PACE: Duration = Duration::from_millis(20);
/// How far apart the upstream of the held streams sends chunks: slow, so a thousand open
/// streams cost the machine little CPU and memory is what gets measured.
const HELD_PACE: Duration = Duration::from_millis(250);

/// How long after the last scenario the idle footprint is read.
pub const IDLE_SETTLE: Duration = Duration::from_secs(5);

/// The prompt of the load scenarios: a realistic question of a few dozen words.
const PROMPT: &str = "I have a Python service that reads orders from a queue and writes them to \
PostgreSQL. Under load it sometimes writes the same order twice. How can I make the writes \
idempotent, and what should the table's unique key be? Show a short example.";

/// Runs everything and returns what was measured.
pub async fn run(options: &Options) -> anyhow::Result<Results> {
    std::fs::create_dir_all(&options.work_dir)?;
    let dir = options.work_dir.as_path();
    let mut results = Results {
        machine: Some(Machine::describe()),
        date: utc_now(),
        duration: options.duration,
        warmup: options.warmup,
        versions: versions(options),
        load_average: std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .unwrap_or_default(),
        serving: options.serving,
        build: options.build.clone(),
        ..Results::default()
    };
    let bodies = Bodies::write(dir)?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(4).build()?;

    // The fake upstream and the reference hop.
    let sim_port = free_port()?;
    let mut sim = start_sim(
        options,
        "router-sim",
        sim_port,
        &[SMALL, LARGE],
        Some(JUDGE),
        Duration::ZERO,
        "terse",
    )?;
    let sim_url = format!("http://127.0.0.1:{sim_port}");
    sim.wait_for_http(&format!("{sim_url}/api/version"), Duration::from_secs(10)).await?;
    // The hops that are not this gateway, each asked for the named model: the floor, the
    // reference hop, the other gateways.
    let mut hops = vec![(Subject::Floor, Endpoint::plain(sim_url.clone()))];
    let mut references = Vec::new();
    match &options.nginx {
        Some(bin) => {
            let (service, endpoint) = start_nginx(bin, dir, sim_port).await?;
            hops.push((Subject::Nginx, endpoint));
            references.push(service);
        }
        None => eprintln!("router-bench: no nginx; the reference-hop rows are left out"),
    }
    for (peer, program) in &options.peers {
        let (service, endpoint) = start_peer(*peer, program, dir, &sim_url).await?;
        hops.push((Subject::Peer(*peer), endpoint));
        references.push(service);
    }

    // The gateway: named, auto and streaming scenarios.
    let models = [(SMALL, sim_url.as_str()), (LARGE, sim_url.as_str())];
    let mut gateway = Gateway::start(options, "gateway", &models, None).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    results.memory.idle_start = Memory::of(gateway.pid())?;
    eprintln!("gateway idle after start: {} KiB resident", results.memory.idle_start.rss_kib);
    results.decision = decision_time(&client, &gateway.url, Sampling::BackToBack).await?;
    results.decision_paced =
        Some(decision_time(&client, &gateway.url, Sampling::Paced(DECISION_PAUSE)).await?);

    let bench = Bench { options, client: client.clone() };
    for &load in &options.loads {
        let here: Vec<(Subject, Endpoint)> = hops
            .iter()
            .filter(|(subject, _)| keeps_up(&results, *subject, load))
            .cloned()
            .collect();
        for (subject, endpoint) in &here {
            results.unary.push(bench.unary(load, *subject, endpoint, &bodies.named, None).await?);
        }
        let at_gateway = Endpoint::plain(gateway.url.clone());
        for (route, body) in [(Route::Named, &bodies.named), (Route::Auto, &bodies.auto)] {
            let row = bench
                .unary(load, Subject::Gateway(route), &at_gateway, body, Some(&mut gateway))
                .await?;
            results.unary.push(row);
        }
        for (subject, endpoint) in &here {
            let row = bench.stream(load, *subject, endpoint, &bodies.stream_named, None).await?;
            results.streaming.push(row);
        }
        let row = bench
            .stream(
                load,
                Subject::Gateway(Route::Auto),
                &at_gateway,
                &bodies.stream_auto,
                Some(&mut gateway),
            )
            .await?;
        results.streaming.push(row);
    }
    // The decision again, while the gateway is busy with `auto` requests: what a decision
    // costs on a serving gateway, whose caches the traffic keeps warm.
    let busy = OhaRun {
        oha: options.oha.clone(),
        url: format!("{}/v1/chat/completions", gateway.url),
        body_file: bodies.auto.clone(),
        headers: Vec::new(),
        load: DECISION_LOAD,
        // Long enough for the samples to be taken while the load runs.
        duration: options.duration.max(Duration::from_secs(8)),
    };
    let sampled = async {
        tokio::time::sleep(options.warmup).await;
        decision_time(&client, &gateway.url, Sampling::BackToBack).await
    };
    let (busy, sampled) = tokio::join!(busy.run(), sampled);
    gateway.answered += busy?.responses;
    results.decision_under_load = Some(sampled?);

    // Idle means idle for a moment: the gateway gives freed memory back to the system once it
    // has answered nothing for a second (`router_gateway::trim`).
    tokio::time::sleep(IDLE_SETTLE).await;
    results.memory.idle_after_load = Memory::of(gateway.pid())?;
    if let Some(after) = options.idle_long {
        eprintln!("router-bench: reading the idle gateway's memory again in {} s", after.as_secs());
        tokio::time::sleep(after.saturating_sub(IDLE_SETTLE)).await;
        results.memory.idle_long = Some((after, Memory::of(gateway.pid())?));
    }
    results.ledgers.push(gateway.stop().await?);

    // The judge path: a second gateway that asks the judge about every `auto` request.
    let judge = JudgeSetup { url: &sim_url, model: JUDGE };
    let mut gateway = Gateway::start(options, "gateway-judge", &models, Some(judge)).await?;
    for &load in &options.loads {
        let at_gateway = Endpoint::plain(gateway.url.clone());
        let row = bench
            .unary(
                load,
                Subject::Gateway(Route::JudgeHit),
                &at_gateway,
                &bodies.auto,
                Some(&mut gateway),
            )
            .await?;
        results.unary.push(row);
    }
    results.ledgers.push(gateway.stop().await?);

    // Chunk pacing and many open streams, each on an upstream of its own pace.
    let paced_port = free_port()?;
    let mut paced =
        start_sim(options, "router-sim-paced", paced_port, &[PACED], None, PACE, "balanced")?;
    let paced_url = format!("http://127.0.0.1:{paced_port}");
    paced.wait_for_http(&format!("{paced_url}/api/version"), Duration::from_secs(10)).await?;
    let held_port = free_port()?;
    let mut held =
        start_sim(options, "router-sim-held", held_port, &[HELD], None, HELD_PACE, "verbose")?;
    let held_url = format!("http://127.0.0.1:{held_port}");
    held.wait_for_http(&format!("{held_url}/api/version"), Duration::from_secs(10)).await?;
    let models = [(PACED, paced_url.as_str()), (HELD, held_url.as_str())];
    let mut gateway = Gateway::start(options, "gateway-streams", &models, None).await?;
    let clients = 16;
    let paced_body = stream_body(PACED, PROMPT);
    let direct = bench.stream_once(&paced_url, &paced_body, Load::Concurrency(clients)).await?;
    let through = bench.stream_once(&gateway.url, &paced_body, Load::Concurrency(clients)).await?;
    gateway.answered += through.responses;
    results.pacing = Some(Pacing { chunk_interval: PACE, clients, direct, gateway: through });

    let held_load = StreamLoad {
        url: format!("{}/v1/chat/completions", gateway.url),
        headers: Vec::new(),
        body: stream_body(HELD, PROMPT),
        load: Load::Concurrency(options.streams),
        duration: options.duration.max(Duration::from_secs(15)),
    };
    let watch = Watch::start(gateway.pid())?;
    let report = stream::run(&held_load).await?;
    results.memory.held_usage = watch.stop()?;
    results.memory.streams = options.streams;
    gateway.answered += report.responses;
    eprintln!(
        "{} open streams: {} completed, {} failed, gateway peak {} KiB",
        options.streams, report.completed, report.failed, results.memory.held_usage.peak_rss_kib
    );
    results.memory.held = report;
    results.ledgers.push(gateway.stop().await?);

    for service in [paced, held].into_iter().chain(references).chain([sim]) {
        service.stop(Duration::from_secs(10)).await?;
    }
    Ok(results)
}

/// Whether another gateway is measured at `load`: at every concurrency, and at a fixed rate
/// only if it has answered that many requests a second at some concurrency of this run. Past its
/// capacity an open-loop load measures nothing but the queue it builds, for as long as the
/// scenario lasts.
fn keeps_up(results: &Results, subject: Subject, load: Load) -> bool {
    // The floor and the reference hop are measured at every load.
    if !matches!(subject, Subject::Peer(_)) {
        return true;
    }
    match load {
        Load::Concurrency(_) => true,
        Load::Rate(rate) => {
            let capacity = results.capacity(subject);
            let keeps_up = capacity.is_some_and(|c| c >= f64::from(rate));
            if !keeps_up {
                eprintln!(
                    "{load:>9}  {:<34} left out: it answered at most {} requests a second at the concurrencies measured",
                    subject.label(),
                    capacity.map_or("-".into(), |c| format!("{c:.0}")),
                );
            }
            keeps_up
        }
    }
}

/// nginx as a plain reverse proxy in front of the fake upstream.
async fn start_nginx(bin: &Path, dir: &Path, sim_port: u16) -> anyhow::Result<(Service, Endpoint)> {
    let port = free_port()?;
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, nginx_config(dir, port, sim_port))?;
    let mut command = Command::new(bin);
    command.arg("-c").arg(&conf).arg("-p").arg(dir).args(["-e", "stderr"]);
    // nginx passes the probe on to the fake upstream: an answer means the hop works.
    let (service, url) =
        start_hop("nginx", command, dir, port, "/api/version", Duration::from_secs(10)).await?;
    Ok((service, Endpoint::plain(url)))
}

/// Starts a hop listening on loopback `port` (its log in `dir/<name>.log`) and waits until
/// `probe` answers there; returns it with its base URL.
async fn start_hop(
    name: &str,
    command: Command,
    dir: &Path,
    port: u16,
    probe: &str,
    timeout: Duration,
) -> anyhow::Result<(Service, String)> {
    let mut service = Service::spawn(name, command, &dir.join(format!("{name}.log")))?;
    let url = format!("http://127.0.0.1:{port}");
    service.wait_for_http(&format!("{url}{probe}"), timeout).await?;
    Ok((service, url))
}

/// Another gateway in front of the fake upstream, serving the named model.
async fn start_peer(
    peer: Peer,
    program: &Path,
    dir: &Path,
    sim_url: &str,
) -> anyhow::Result<(Service, Endpoint)> {
    let port = free_port()?;
    let (command, probe, startup, headers) = match peer {
        // A Python program with many imports: it takes its time to start.
        Peer::LiteLlm => {
            let command = litellm_command(program, dir, port, sim_url)?;
            (command, "/health/liveliness", Duration::from_secs(180), Vec::new())
        }
        Peer::Portkey => {
            let mut command = Command::new("node");
            command.arg(program).arg(format!("--port={port}")).arg("--headless");
            (command, "/", Duration::from_secs(60), portkey_headers(sim_url))
        }
    };
    let name = peer.name().to_lowercase();
    let (service, url) = start_hop(&name, command, dir, port, probe, startup).await?;
    eprintln!("router-bench: {} answers on {url}", peer.name());
    Ok((service, Endpoint { url, headers }))
}

/// LiteLLM's proxy serving the named model, with a worker process per CPU (as nginx has a
/// worker per CPU and the gateway a serving thread); its configuration is written to `dir`.
fn litellm_command(bin: &Path, dir: &Path, port: u16, sim_url: &str) -> anyhow::Result<Command> {
    let config = dir.join("litellm.yaml");
    std::fs::write(&config, litellm_config(SMALL, sim_url))?;
    let logging = dir.join("litellm-logging.json");
    std::fs::write(&logging, LITELLM_LOG_CONFIG)?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut command = Command::new(bin);
    command
        .arg("--config")
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--num_workers", &workers.to_string()])
        .arg("--log_config")
        .arg(&logging)
        .envs(LITELLM_ENV);
    Ok(command)
}

/// Portkey's gateway runs as it ships — one Node.js process, here without its web UI — and
/// is configured per request: the provider and the upstream's address travel in headers.
fn portkey_headers(sim_url: &str) -> Vec<(String, String)> {
    [
        ("x-portkey-provider", "openai".to_string()),
        ("x-portkey-custom-host", format!("{sim_url}/v1")),
        ("authorization", "Bearer not-used".to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

/// The request bodies, as files for oha and bytes for the streaming client.
struct Bodies {
    named: PathBuf,
    auto: PathBuf,
    stream_named: Bytes,
    stream_auto: Bytes,
}

impl Bodies {
    fn write(dir: &Path) -> anyhow::Result<Bodies> {
        let named = dir.join("body-named.json");
        let auto = dir.join("body-auto.json");
        std::fs::write(&named, unary_body(SMALL).to_string())?;
        std::fs::write(&auto, unary_body("auto").to_string())?;
        Ok(Bodies {
            named,
            auto,
            stream_named: stream_body(SMALL, PROMPT),
            stream_auto: stream_body("auto", PROMPT),
        })
    }
}

fn messages(prompt: &str) -> Value {
    json!([
        { "role": "system", "content": "You are a helpful assistant." },
        { "role": "user", "content": prompt },
    ])
}

fn unary_body(model: &str) -> Value {
    json!({ "model": model, "messages": messages(PROMPT) })
}

fn stream_body(model: &str, prompt: &str) -> Bytes {
    Bytes::from(json!({ "model": model, "stream": true, "messages": messages(prompt) }).to_string())
}

/// A running gateway and the answers its clients have received.
struct Gateway {
    name: String,
    service: Service,
    url: String,
    db: PathBuf,
    answered: u64,
}

impl Gateway {
    async fn start(
        options: &Options,
        name: &str,
        models: &[(&str, &str)],
        judge: Option<JudgeSetup<'_>>,
    ) -> anyhow::Result<Gateway> {
        let dir = &options.work_dir;
        let port = free_port()?;
        let db = dir.join(format!("{name}.db"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, gateway_config(port, models, &db, judge, options.serving))?;
        let mut command = Command::new(options.bin_dir.join("llm-router"));
        command.arg("--config").arg(&config).args(["--log-format", "json", "serve"]);
        let mut service = Service::spawn(name, command, &dir.join(format!("{name}.log")))?;
        let url = format!("http://127.0.0.1:{port}");
        service.wait_for_http(&format!("{url}/health"), Duration::from_secs(30)).await?;
        Ok(Gateway { name: name.to_string(), service, url, db, answered: 0 })
    }

    fn pid(&self) -> u32 {
        self.service.pid()
    }

    /// Stops the gateway gracefully and compares its store with what the clients received.
    async fn stop(self) -> anyhow::Result<Ledger> {
        let log = self.service.log().to_path_buf();
        let status = self.service.stop(Duration::from_secs(60)).await?;
        let store = router_store::Store::connect(&format!("sqlite://{}", self.db.display()))
            .await
            .with_context(|| format!("opening {}", self.db.display()))?;
        let counts = store.counts().await?;
        store.close().await;
        let ledger = Ledger {
            gateway: self.name,
            answered: self.answered,
            requests: counts.requests,
            outcomes: counts.outcomes,
            clean_exit: status.success(),
        };
        eprintln!(
            "{}: {} answered, {} requests and {} outcomes recorded, exit {status} (log: {})",
            ledger.gateway,
            ledger.answered,
            ledger.requests,
            ledger.outcomes,
            log.display()
        );
        Ok(ledger)
    }
}

fn start_sim(
    options: &Options,
    name: &str,
    port: u16,
    models: &[&str],
    judge: Option<&str>,
    pace: Duration,
    style: &str,
) -> anyhow::Result<Service> {
    let mut command = Command::new(options.bin_dir.join("router-sim"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--model", &models.join(",")])
        .args(["--chunk-ms", &pace.as_millis().to_string()])
        .args(["--style", style]);
    if let Some(judge) = judge {
        command.args(["--judge", judge]);
    }
    Service::spawn(name, command, &options.work_dir.join(format!("{name}.log")))
}

/// The scenario runner.
struct Bench<'a> {
    options: &'a Options,
    client: reqwest::Client,
}

impl Bench<'_> {
    /// One non-streaming scenario with oha, after a warm-up at the same load.
    async fn unary(
        &self,
        load: Load,
        subject: Subject,
        endpoint: &Endpoint,
        body_file: &Path,
        gateway: Option<&mut Gateway>,
    ) -> anyhow::Result<UnaryRow> {
        let mut oha = OhaRun {
            oha: self.options.oha.clone(),
            url: format!("{}/v1/chat/completions", endpoint.url),
            body_file: body_file.to_path_buf(),
            headers: endpoint.headers.clone(),
            load,
            duration: self.options.warmup,
        };
        let warm = oha.run().await?;
        oha.duration = self.options.duration;
        let observing = match gateway.as_deref() {
            Some(g) => Some(self.observe(g).await?),
            None => None,
        };
        let summary = oha.run().await?;
        let view = match observing {
            Some(o) => Some(self.observed(o, gateway.as_deref()).await?),
            None => None,
        };
        if let Some(g) = gateway {
            g.answered += warm.responses + summary.responses;
        }
        report_unary(load, subject, &summary, view.as_ref());
        Ok(UnaryRow { load, subject, summary, gateway: view })
    }

    /// One streaming scenario, after a warm-up at the same load.
    async fn stream(
        &self,
        load: Load,
        subject: Subject,
        endpoint: &Endpoint,
        body: &Bytes,
        gateway: Option<&mut Gateway>,
    ) -> anyhow::Result<StreamRow> {
        let mut scenario = StreamLoad {
            url: format!("{}/v1/chat/completions", endpoint.url),
            headers: endpoint.headers.clone(),
            body: body.clone(),
            load,
            duration: self.options.warmup,
        };
        let warm = stream::run(&scenario).await?;
        scenario.duration = self.options.duration;
        let observing = match gateway.as_deref() {
            Some(g) => Some(self.observe(g).await?),
            None => None,
        };
        let report = stream::run(&scenario).await?;
        let view = match observing {
            Some(o) => Some(self.observed(o, gateway.as_deref()).await?),
            None => None,
        };
        if let Some(g) = gateway {
            g.answered += warm.responses + report.responses;
        }
        eprintln!(
            "{load:>9}  {:<34} streams/s {:>7.0}  TTFT p50 {} p99 {}  total p99 {}  failed {}",
            subject.label(),
            report.rps,
            report.ttft.map_or("-".into(), |p| Ms(p.p50).to_string()),
            report.ttft.map_or("-".into(), |p| Ms(p.p99).to_string()),
            report.total.map_or("-".into(), |p| Ms(p.p99).to_string()),
            report.failed,
        );
        for failure in &report.failures {
            eprintln!("           {failure}");
        }
        Ok(StreamRow { load, subject, report, gateway: view })
    }

    /// A streaming scenario without warm-up or gateway view (the pacing check).
    async fn stream_once(
        &self,
        base_url: &str,
        body: &Bytes,
        load: Load,
    ) -> anyhow::Result<StreamReport> {
        let scenario = StreamLoad {
            url: format!("{base_url}/v1/chat/completions"),
            headers: Vec::new(),
            body: body.clone(),
            load,
            duration: self.options.duration,
        };
        stream::run(&scenario).await
    }

    async fn observe(&self, gateway: &Gateway) -> anyhow::Result<(Watch, scrape::Histogram)> {
        let before = scrape::fetch(&self.client, &format!("{}/metrics", gateway.url)).await?;
        Ok((Watch::start(gateway.pid())?, before))
    }

    async fn observed(
        &self,
        (watch, before): (Watch, scrape::Histogram),
        gateway: Option<&Gateway>,
    ) -> anyhow::Result<GatewayView> {
        let usage = watch.stop()?;
        let Some(gateway) = gateway else { bail!("observing a scenario without a gateway") };
        let after = scrape::fetch(&self.client, &format!("{}/metrics", gateway.url)).await?;
        Ok(GatewayView { usage, overhead: after.since(&before) })
    }
}

fn report_unary(load: Load, subject: Subject, s: &Summary, view: Option<&GatewayView>) {
    let p = s.latency.unwrap_or_default();
    let cpu = view.map_or(String::new(), |v| {
        format!("  gateway CPU {:.2} cores, RSS {} KiB", v.usage.cores, v.usage.peak_rss_kib)
    });
    eprintln!(
        "{load:>9}  {:<34} RPS {:>7.0}  p50 {} p90 {} p99 {}  errors {}{cpu}",
        subject.label(),
        s.rps,
        Ms(p.p50),
        Ms(p.p90),
        Ms(p.p99),
        s.errors,
    );
    for kind in &s.error_kinds {
        eprintln!("           {kind}");
    }
}

/// How [`decision_time`] spaces its requests.
#[derive(Debug, Clone, Copy)]
enum Sampling {
    /// Each request as soon as the previous one is answered.
    BackToBack,
    /// This long a pause before each request.
    Paced(Duration),
}

/// The gateway's decision time for a prompt of about 2,000 tokens, from `/api/routing/analyze`
/// (features and policy, nothing sent upstream, nothing recorded), one request at a time.
async fn decision_time(
    client: &reqwest::Client,
    gateway_url: &str,
    sampling: Sampling,
) -> anyhow::Result<DecisionTime> {
    // Paced samples take a pause each: fewer of them keep the run short.
    let (samples, warmup) = match sampling {
        Sampling::BackToBack => (2000, 200),
        Sampling::Paced(_) => (1000, 20),
    };
    let body = json!({ "query": long_prompt(9_600) }).to_string();
    let url = format!("{gateway_url}/api/routing/analyze");
    let mut times = Vec::with_capacity(samples + warmup);
    let mut cpu_times = Vec::with_capacity(samples + warmup);
    let mut prompt_tokens = 0;
    let started = Instant::now();
    for _ in 0..samples + warmup {
        if let Sampling::Paced(pause) = sampling {
            tokio::time::sleep(pause).await;
        }
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?
            .error_for_status()?;
        let v: Value = response.json().await?;
        prompt_tokens = v.pointer("/features/prompt_tokens").and_then(Value::as_u64).unwrap_or(0);
        let us = v
            .get("decision_us")
            .and_then(Value::as_u64)
            .context("no decision_us in the analysis")?;
        times.push(Duration::from_micros(us));
        if let Some(cpu) = v.get("decision_cpu_us").and_then(Value::as_u64) {
            cpu_times.push(Duration::from_micros(cpu));
        }
    }
    // The first requests warm caches and the allocator; they are not the steady state.
    let mut steady = times.split_off(warmup);
    let percentiles = Percentiles::of(&mut steady);
    // A gateway that reports no CPU time (another platform, an older build) reports it for
    // none of the samples.
    let cpu = if cpu_times.len() == samples + warmup {
        Percentiles::of(&mut cpu_times.split_off(warmup))
    } else {
        None
    };
    eprintln!(
        "decision for a {prompt_tokens}-token prompt ({sampling:?}): p50 {} ms, p99 {} ms, CPU p99 {} ms ({} samples in {:.1} s)",
        percentiles.map_or("-".into(), |p| Ms(p.p50).to_string()),
        percentiles.map_or("-".into(), |p| Ms(p.p99).to_string()),
        cpu.map_or("-".into(), |p| Ms(p.p99).to_string()),
        steady.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(DecisionTime { prompt_tokens, samples: steady.len(), percentiles, cpu })
}

/// English technical prose of about `chars` characters (four characters a token, roughly).
fn long_prompt(chars: usize) -> String {
    const PARAGRAPH: &str = "Our team runs a payment service written in Rust behind a load \
balancer. Each request validates a card token, looks up the merchant's limits in PostgreSQL, \
writes a ledger entry and publishes an event to Kafka. Under peak traffic the p99 latency \
climbs from 40 to 900 milliseconds, and the database shows lock waits on the ledger table. \
We suspect the transaction isolation level and the order in which rows are locked. ";
    let mut text = String::with_capacity(chars + PARAGRAPH.len() + 100);
    while text.len() < chars {
        text.push_str(PARAGRAPH);
    }
    text.push_str("Explain the likely cause step by step and propose a fix with code.");
    text
}

fn versions(options: &Options) -> Vec<(String, String)> {
    let first_line = |program: &Path, arg: &str| -> String {
        Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| {
                // nginx prints its version on stderr.
                let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
                let text = String::from_utf8_lossy(&text);
                // LiteLLM's starts with an empty line.
                text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_string()
            })
            .unwrap_or_default()
    };
    let mut out = vec![
        ("gateway".to_string(), first_line(&options.bin_dir.join("llm-router"), "--version")),
        ("load generator".to_string(), first_line(&options.oha, "--version")),
    ];
    if let Some(nginx) = &options.nginx {
        out.push(("reference hop".to_string(), first_line(nginx, "-v")));
    }
    for (peer, program) in &options.peers {
        let version = match peer {
            // It prints `LiteLLM: Current Version = 1.108.7`.
            Peer::LiteLlm => {
                let line = first_line(program, "--version");
                line.rsplit("= ").next().unwrap_or_default().to_string()
            }
            Peer::Portkey => portkey_version(program),
        };
        out.push((peer.name().to_string(), version));
    }
    out
}

/// The version in the `package.json` of the package a Portkey start script belongs to.
fn portkey_version(script: &Path) -> String {
    let package = script.ancestors().map(|dir| dir.join("package.json")).find(|p| p.is_file());
    package
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|v| v.get("version").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_prompt_is_about_two_thousand_tokens() {
        let text = long_prompt(9_600);
        assert!((9_600..10_300).contains(&text.len()), "{}", text.len());
    }

    #[test]
    fn a_fixed_rate_is_run_only_within_what_the_subject_answered() {
        let mut results = Results::default();
        // Nothing measured yet: no rate is known to be within reach.
        assert!(!keeps_up(&results, Subject::Peer(Peer::LiteLlm), Load::Rate(500)));
        assert!(keeps_up(&results, Subject::Peer(Peer::LiteLlm), Load::Concurrency(16)));
        for (load, rps) in [(Load::Concurrency(1), 100.0), (Load::Concurrency(16), 600.0)] {
            let summary = Summary { rps, ..Summary::default() };
            results.unary.push(UnaryRow {
                load,
                subject: Subject::Peer(Peer::LiteLlm),
                summary,
                gateway: None,
            });
        }
        // A rate row does not count as capacity: it is what was offered.
        let offered = Summary { rps: 5000.0, ..Summary::default() };
        results.unary.push(UnaryRow {
            load: Load::Rate(5000),
            subject: Subject::Peer(Peer::LiteLlm),
            summary: offered,
            gateway: None,
        });
        assert!(keeps_up(&results, Subject::Peer(Peer::LiteLlm), Load::Rate(500)));
        assert!(!keeps_up(&results, Subject::Peer(Peer::LiteLlm), Load::Rate(1000)));
        assert!(!keeps_up(&results, Subject::Peer(Peer::Portkey), Load::Rate(500)));
        // The floor and nginx run at every load, whatever was measured before.
        assert!(keeps_up(&Results::default(), Subject::Nginx, Load::Rate(2000)));
        assert!(keeps_up(&Results::default(), Subject::Floor, Load::Rate(2000)));
    }

    #[test]
    fn bodies_ask_for_what_the_scenario_measures() {
        let named = unary_body(SMALL);
        assert_eq!(named["model"], SMALL);
        assert!(named.get("stream").is_none());
        let streamed: Value = serde_json::from_slice(&stream_body("auto", PROMPT)).unwrap();
        assert_eq!(streamed["model"], "auto");
        assert_eq!(streamed["stream"], true);
        assert_eq!(streamed["messages"][1]["content"], PROMPT);
    }
}
