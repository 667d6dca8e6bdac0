//! `llm-router.toml`: the configuration file, its defaults, and its validation.
//!
//! Parsing is strict — unknown keys and bad values are errors — and every error names the
//! file, the line and the key, so `llm-router check` can point at the exact place to fix.
//! Secrets never live in the file: each model names the environment variable holding its
//! key (`api_key_env`), and the key is read from the environment (or `.env`, loaded by the
//! binary) into a [`SecretString`] that never prints.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use router_core::{Capabilities, Price, Profile};
use secrecy::SecretString;
use serde::Deserialize;
use toml::Spanned;

/// The whole configuration, validated and with secrets resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub dashboard: DashboardConfig,
    pub store: StoreConfig,
    pub privacy: PrivacyConfig,
    pub routing: RoutingConfig,
    pub dispatch: DispatchConfig,
    pub circuit: CircuitConfig,
    pub judge: JudgeConfig,
    /// Client-facing model names that stand for a configured model or for `auto` /
    /// `auto:<profile>` (e.g. a Claude model id a client is hard-wired to).
    pub aliases: BTreeMap<String, String>,
    /// Models in file order, each with its deployments in file order.
    pub models: Vec<ModelConfig>,
}

/// A configuration that could not be used: every problem found, each with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted key path (`models[2].weight`), when known.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
                if let Some(col) = p.column {
                    write!(f, ":{col}")?;
                }
            }
            write!(f, ": ")?;
            if let Some(key) = &p.key {
                write!(f, "`{key}`: ")?;
            }
            write!(f, "{}", p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes (over it: 413).
    pub max_body_bytes: usize,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Keys clients must present (`Authorization: Bearer` or `x-api-key`). Empty: no auth.
    pub client_keys: Vec<SecretString>,
    /// Threads serving the proxy API, each with an event loop and upstream connections of
    /// its own; `None`: the runtime of the program that starts the gateway, shared with
    /// everything else it runs.
    pub threads: Option<NonZeroUsize>,
    /// The longest a serving thread keeps polling for I/O after its connections' last read
    /// or write before it sleeps (`server.busy_poll_us`; the window adapts below it to the
    /// gaps between requests); `None`: it sleeps at once.
    pub busy_poll: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct DashboardConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db`, `sqlite::memory:` or `postgres://…`.
    pub url: String,
    pub queue_capacity: usize,
    pub batch_size: usize,
    pub flush_interval: Duration,
}

/// How much of a prompt the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorePrompts {
    /// Nothing of the text.
    None,
    /// A SHA-256 of the text: repeated prompts can be recognised, not read.
    Hash,
    /// The text itself.
    Full,
}

#[derive(Debug, Clone)]
pub struct PrivacyConfig {
    pub store_prompts: StorePrompts,
}

#[derive(Debug, Clone)]
pub struct RoutingConfig {
    /// The profile plain `auto` uses.
    pub default_profile: Profile,
    /// Largest expected cost of one call the router may choose, in US dollars.
    pub max_cost_usd: Option<f64>,
    /// Scale of exploration (0 never explores; 1 samples quality from its full uncertainty).
    pub exploration: f64,
    /// How often the learned state is saved to the store.
    pub save_interval: Duration,
    /// How often what this replica learned is shared with, and what other replicas on the
    /// same store learned is folded in.
    pub sync_interval: Duration,
    /// Keep a memory of similar past queries (nearest neighbours over cheap text sketches)
    /// for per-query estimates, on top of the per-context ones; this many regions of it.
    /// `None` turns it off.
    pub memory_capacity: Option<usize>,
}

/// When the judge is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgeMode {
    Off,
    /// Only when the policy is unsure (top candidates close, or little evidence).
    Hybrid,
    /// On every routed request.
    Always,
}

/// Which API the judge's server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgeApi {
    /// Ollama's native `/api/chat` with a JSON-schema `format`.
    Ollama,
    /// An OpenAI-compatible `/v1/chat/completions` with `response_format` (llama.cpp, vLLM,
    /// LM Studio, Ollama's compatibility endpoint).
    Openai,
}

/// The local LLM judge (Llama 3 through Ollama by default).
#[derive(Debug, Clone)]
pub struct JudgeConfig {
    pub mode: JudgeMode,
    pub api: JudgeApi,
    /// Base URL of the judge's server (`http://127.0.0.1:11434`; for `api = "openai"`
    /// including `/v1`).
    pub url: String,
    pub model: String,
    /// Hard budget for one judge call; past it the policy decides.
    pub timeout: Duration,
    /// Ollama's `keep_alive`: how long the model stays loaded between calls.
    pub keep_alive: String,
    /// Answers cached (by normalised prompt), at most.
    pub cache_size: usize,
    /// Calls to the judge at once, at most. A request that finds them all out is decided
    /// by the policy at once instead of queueing behind them: a local model answers a few
    /// questions at a time (Ollama's `OLLAMA_NUM_PARALLEL`), and every question queued
    /// past those would spend the request's whole budget waiting.
    pub max_in_flight: NonZeroU32,
    /// Key for an OpenAI-compatible judge server, if it needs one.
    pub api_key: Option<SecretString>,
}

impl JudgeConfig {
    /// The default of [`max_in_flight`](Self::max_in_flight): Ollama's default parallelism
    /// where memory allows.
    pub const DEFAULT_MAX_IN_FLIGHT: NonZeroU32 = NonZeroU32::new(4).unwrap();
}

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Attempts per request across deployments and models, the first included.
    pub max_attempts: u32,
    /// Base of the exponential backoff before retrying the same deployment.
    pub retry_backoff: Duration,
    /// A Retry-After longer than this is not waited out: the request moves on instead.
    pub max_retry_wait: Duration,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub total_timeout: Duration,
    /// Longest silence between two chunks of a stream.
    pub idle_timeout: Duration,
    /// Longest a request waits for a slot when every deployment it could use is at its
    /// `max_in_flight` limit.
    pub queue_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct CircuitConfig {
    /// Consecutive failures that open the circuit.
    pub consecutive_failures: u32,
    /// Failure ratio over the recent window that opens the circuit.
    pub error_ratio: f64,
    /// Size of that window (and the fewest calls it needs before the ratio counts).
    pub window: u32,
    /// How long an open circuit stays open before a half-open probe.
    pub cooldown: Duration,
}

/// Which wire protocol and defaults a model's upstream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    Openai,
    Anthropic,
    Deepseek,
    Ollama,
    OpenaiCompatible,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Deepseek => "deepseek",
            Provider::Ollama => "ollama",
            Provider::OpenaiCompatible => "openai-compatible",
        }
    }

    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Provider::Openai => Some("https://api.openai.com/v1"),
            Provider::Anthropic => Some("https://api.anthropic.com"),
            Provider::Deepseek => Some("https://api.deepseek.com/v1"),
            Provider::Ollama => Some("http://127.0.0.1:11434"),
            Provider::OpenaiCompatible => None,
        }
    }

    /// The environment variable a key is read from when `api_key_env` is not given.
    pub fn default_key_env(self) -> Option<&'static str> {
        match self {
            Provider::Openai => Some("OPENAI_API_KEY"),
            Provider::Anthropic => Some("ANTHROPIC_API_KEY"),
            Provider::Deepseek => Some("DEEPSEEK_API_KEY"),
            Provider::Ollama | Provider::OpenaiCompatible => None,
        }
    }

    /// Whether calls without a key make sense (local servers).
    pub fn key_optional(self) -> bool {
        matches!(self, Provider::Ollama | Provider::OpenaiCompatible)
    }
}

/// A model: one name clients and the router use, served by one or more deployments.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub name: String,
    pub enabled: bool,
    pub price: Price,
    pub context_window: u32,
    pub capabilities: Capabilities,
    pub tags: Vec<String>,
    /// Models to fail over to, in order, when this one cannot answer an explicit request.
    pub fallbacks: Vec<String>,
    /// Prior quality per domain (and `lang:<code>`) in [0, 1], for the policy to start from.
    pub priors: BTreeMap<String, f64>,
    pub deployments: Vec<DeploymentConfig>,
}

impl ModelConfig {
    /// Sum of the weights of the enabled deployments.
    pub fn weight(&self) -> f64 {
        self.deployments.iter().filter(|d| d.enabled).map(|d| d.weight).sum()
    }
}

/// One place a model can be reached: a provider endpoint with its own key and weight.
#[derive(Debug, Clone)]
pub struct DeploymentConfig {
    /// Unique across the config (`name#1` unless set).
    pub id: String,
    pub provider: Provider,
    /// The model id sent upstream.
    pub upstream_model: String,
    pub base_url: String,
    pub api_key: Option<SecretString>,
    pub weight: f64,
    pub enabled: bool,
    /// Calls this deployment may have in flight at once; `None` for no limit.
    pub max_in_flight: Option<NonZeroU32>,
}

// ---------------------------------------------------------------------------------------
// The file's shape. Kept separate from the validated types above: the file allows
// omissions and repetitions (one model over several entries) that the runtime should not
// have to think about.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    dashboard: RawDashboard,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    privacy: RawPrivacy,
    #[serde(default)]
    routing: RawRouting,
    #[serde(default)]
    dispatch: RawDispatch,
    #[serde(default)]
    circuit: RawCircuit,
    #[serde(default)]
    judge: RawJudge,
    #[serde(default)]
    aliases: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    models: Vec<Spanned<RawModel>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    max_body_mb: Option<Spanned<f64>>,
    shutdown_grace_ms: Option<u64>,
    client_keys_env: Option<Spanned<String>>,
    threads: Option<Spanned<u64>>,
    busy_poll_us: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDashboard {
    enabled: Option<bool>,
    listen: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<Spanned<String>>,
    queue_capacity: Option<Spanned<usize>>,
    batch_size: Option<Spanned<usize>>,
    flush_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrivacy {
    store_prompts: Option<StorePrompts>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouting {
    default_profile: Option<Spanned<String>>,
    max_cost_usd: Option<Spanned<f64>>,
    exploration: Option<Spanned<f64>>,
    save_interval_ms: Option<Spanned<u64>>,
    sync_interval_ms: Option<Spanned<u64>>,
    memory: Option<bool>,
    memory_capacity: Option<Spanned<usize>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJudge {
    mode: Option<JudgeMode>,
    api: Option<JudgeApi>,
    url: Option<Spanned<String>>,
    model: Option<String>,
    timeout_ms: Option<Spanned<u64>>,
    keep_alive: Option<String>,
    cache_size: Option<usize>,
    max_in_flight: Option<Spanned<u32>>,
    api_key_env: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDispatch {
    max_attempts: Option<Spanned<u32>>,
    retry_backoff_ms: Option<u64>,
    max_retry_wait_ms: Option<u64>,
    connect_timeout_ms: Option<Spanned<u64>>,
    first_byte_timeout_ms: Option<Spanned<u64>>,
    total_timeout_ms: Option<Spanned<u64>>,
    idle_timeout_ms: Option<Spanned<u64>>,
    queue_timeout_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCircuit {
    consecutive_failures: Option<Spanned<u32>>,
    error_ratio: Option<Spanned<f64>>,
    window: Option<Spanned<u32>>,
    cooldown_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: Spanned<String>,
    provider: Provider,
    model: Option<String>,
    base_url: Option<Spanned<String>>,
    api_key_env: Option<Spanned<String>>,
    deployment: Option<Spanned<String>>,
    weight: Option<Spanned<f64>>,
    enabled: Option<bool>,
    max_in_flight: Option<Spanned<u32>>,
    input_price: Option<Spanned<f64>>,
    output_price: Option<Spanned<f64>>,
    context_window: Option<Spanned<u32>>,
    capabilities: Option<RawCapabilities>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    strengths: Vec<String>,
    #[serde(default)]
    fallbacks: Vec<Spanned<String>>,
    #[serde(default)]
    priors: BTreeMap<String, Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapabilities {
    streaming: Option<bool>,
    tools: Option<bool>,
    vision: Option<bool>,
    json: Option<bool>,
}

/// Where the environment's values come from; a trait so tests need not touch the process
/// environment.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment (after the binary loaded `.env`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned().filter(|v| !v.trim().is_empty())
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
        Config::parse(&read(path)?, path, env)
    }

    /// Reads a config file for commands that only inspect (analyze, stats, models): missing
    /// secrets are not errors there, since nothing is sent upstream.
    pub fn load_for_inspection(path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
        Config::parse_with(&read(path)?, path, env, false)
    }

    /// Validates configuration text; `file` is only used to name the place of errors.
    pub fn parse(text: &str, file: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
        Config::parse_with(text, file, env, true)
    }

    fn parse_with(
        text: &str,
        file: &Path,
        env: &dyn Env,
        require_secrets: bool,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unzip();
            ConfigError {
                file: file.to_path_buf(),
                problems: vec![Problem { line, column, key: None, message: tidy(e.message()) }],
            }
        })?;
        let mut v = Validator { text, problems: Vec::new(), require_secrets };
        let config = v.config(raw, env);
        if v.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { file: file.to_path_buf(), problems: v.problems })
        }
    }

    pub fn model(&self, name: &str) -> Option<&ModelConfig> {
        self.models.iter().find(|m| m.name == name)
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        problems: vec![Problem {
            line: None,
            column: None,
            key: None,
            message: format!("cannot read the file: {e}"),
        }],
    })
}

/// serde's messages end with a list of expected keys that is long but useful; only trim
/// whitespace.
fn tidy(message: &str) -> String {
    message.trim().replace('\n', " ")
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1) + 1;
    (line, column)
}

struct Validator<'t> {
    text: &'t str,
    problems: Vec<Problem>,
    /// Whether a secret that is not set is a problem (it is for `serve` and `check`).
    require_secrets: bool,
}

impl Validator<'_> {
    fn missing_secret(
        &mut self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: String,
    ) {
        if self.require_secrets {
            self.problem(span, key, message);
        }
    }

    fn problem(&mut self, span: Option<Range<usize>>, key: impl Into<String>, message: String) {
        let (line, column) = span.map(|s| line_col(self.text, s.start)).unzip();
        self.problems.push(Problem { line, column, key: Some(key.into()), message });
    }

    fn addr(&mut self, raw: Option<Spanned<String>>, key: &str, default: &str) -> SocketAddr {
        let fallback: SocketAddr = default.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
        match raw {
            None => fallback,
            Some(s) => match s.get_ref().parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => {
                    self.problem(
                        Some(s.span()),
                        key,
                        format!(
                            "`{}` is not a socket address like \"127.0.0.1:3100\"",
                            s.get_ref()
                        ),
                    );
                    fallback
                }
            },
        }
    }

    /// The value when `valid` holds for it; otherwise a problem at its place (saying
    /// `rule`) and the default, so validation goes on and reports everything at once.
    fn checked<T: Copy>(
        &mut self,
        raw: Option<Spanned<T>>,
        key: &str,
        default: T,
        valid: impl Fn(T) -> bool,
        rule: &str,
    ) -> T {
        match raw {
            Some(v) if !valid(*v.get_ref()) => {
                self.problem(Some(v.span()), key, rule.to_string());
                default
            }
            Some(v) => v.into_inner(),
            None => default,
        }
    }

    fn positive_ms(&mut self, raw: Option<Spanned<u64>>, key: &str, default_ms: u64) -> Duration {
        Duration::from_millis(self.checked(
            raw,
            key,
            default_ms,
            |v| v > 0,
            "must be greater than 0",
        ))
    }

    fn config(&mut self, raw: RawConfig, env: &dyn Env) -> Config {
        let server = self.server(raw.server, env);
        let dashboard = DashboardConfig {
            enabled: raw.dashboard.enabled.unwrap_or(true),
            listen: self.addr(raw.dashboard.listen, "dashboard.listen", "127.0.0.1:3200"),
        };
        let store = self.store(raw.store);
        let privacy = PrivacyConfig {
            store_prompts: raw.privacy.store_prompts.unwrap_or(StorePrompts::Hash),
        };
        let routing = self.routing(raw.routing);
        let dispatch = self.dispatch(raw.dispatch);
        let circuit = self.circuit(raw.circuit);
        let judge = self.judge(raw.judge, env);
        let models = self.models(raw.models, env);
        let names: HashSet<&str> = models.iter().map(|m| m.name.as_str()).collect();
        let mut aliases = BTreeMap::new();
        for (alias, target) in raw.aliases {
            if is_auto(target.get_ref()) {
                // `auto:<profile>` must name a profile.
                if let Some(profile) = target.get_ref().strip_prefix("auto:")
                    && let Err(e) = profile.parse::<Profile>()
                {
                    self.problem(Some(target.span()), format!("aliases.{alias}"), e.to_string());
                }
            } else if !names.contains(target.get_ref().as_str()) {
                let message = format!(
                    "alias points to `{}`, which is neither a model nor `auto`/`auto:<profile>`",
                    target.get_ref()
                );
                self.problem(Some(target.span()), format!("aliases.{alias}"), message);
            }
            if names.contains(alias.as_str()) || is_auto(&alias) {
                let message = format!("`{alias}` is already a model name or `auto`");
                self.problem(Some(target.span()), format!("aliases.{alias}"), message);
            }
            aliases.insert(alias, target.into_inner());
        }
        Config {
            server,
            dashboard,
            store,
            privacy,
            routing,
            dispatch,
            circuit,
            judge,
            aliases,
            models,
        }
    }

    fn server(&mut self, raw: RawServer, env: &dyn Env) -> ServerConfig {
        let max_body_mb = self.checked(
            raw.max_body_mb,
            "server.max_body_mb",
            10.0,
            |mb| mb > 0.0 && mb <= 1024.0,
            "must be in (0, 1024]",
        );
        let max_body_bytes = (max_body_mb * 1024.0 * 1024.0) as usize;
        let per_cpu = std::thread::available_parallelism().map_or(1, NonZeroUsize::get) as u64;
        let threads = self.checked(
            raw.threads,
            "server.threads",
            per_cpu,
            |t| t <= 256,
            "must be from 0 to 256 (0: serve on the runtime of the program that starts the gateway)",
        );
        let busy_poll_span = raw.busy_poll_us.as_ref().map(Spanned::span);
        let busy_poll_us = self.checked(
            raw.busy_poll_us,
            "server.busy_poll_us",
            0,
            |us| us <= 10_000,
            "must be from 0 (off) to 10000 microseconds",
        );
        if busy_poll_us > 0 && threads == 0 {
            self.problem(
                busy_poll_span,
                "server.busy_poll_us",
                "busy polling runs on the serving threads, and `server.threads = 0` has none: \
                 remove one of the two settings"
                    .to_string(),
            );
        }
        let mut client_keys = Vec::new();
        if let Some(var) = raw.client_keys_env {
            match env.var(var.get_ref()) {
                Some(value) => {
                    client_keys = value
                        .split(',')
                        .map(str::trim)
                        .filter(|k| !k.is_empty())
                        .map(|k| SecretString::from(k.to_string()))
                        .collect()
                }
                None => {
                    let message = format!(
                        "client keys are read from `{}`, which is not set (in the environment or .env)",
                        var.get_ref()
                    );
                    self.missing_secret(Some(var.span()), "server.client_keys_env", message)
                }
            }
        }
        ServerConfig {
            listen: self.addr(raw.listen, "server.listen", "127.0.0.1:3100"),
            max_body_bytes,
            shutdown_grace: Duration::from_millis(raw.shutdown_grace_ms.unwrap_or(15_000)),
            client_keys,
            threads: NonZeroUsize::new(threads as usize),
            busy_poll: (busy_poll_us > 0).then(|| Duration::from_micros(busy_poll_us)),
        }
    }

    fn store(&mut self, raw: RawStore) -> StoreConfig {
        let url = match raw.url {
            Some(u) => {
                let s = u.get_ref();
                if !(s.starts_with("sqlite:")
                    || s.starts_with("postgres://")
                    || s.starts_with("postgresql://"))
                {
                    let message = format!(
                        "`{s}` is not a store URL: use sqlite://path/to/file.db or postgres://user@host/db"
                    );
                    self.problem(Some(u.span()), "store.url", message);
                }
                u.into_inner()
            }
            None => "sqlite://data/llm-router.db".to_string(),
        };
        let at_least_one = |n: usize| n >= 1;
        let queue_capacity = self.checked(
            raw.queue_capacity,
            "store.queue_capacity",
            65_536,
            at_least_one,
            "must be at least 1",
        );
        let batch_size = self.checked(
            raw.batch_size,
            "store.batch_size",
            512,
            at_least_one,
            "must be at least 1",
        );
        StoreConfig {
            url,
            queue_capacity,
            batch_size,
            flush_interval: Duration::from_millis(raw.flush_ms.unwrap_or(50).max(1)),
        }
    }

    fn routing(&mut self, raw: RawRouting) -> RoutingConfig {
        let default_profile = match raw.default_profile {
            Some(p) => match p.get_ref().parse::<Profile>() {
                Ok(profile) => profile,
                Err(e) => {
                    self.problem(Some(p.span()), "routing.default_profile", e.to_string());
                    Profile::Balanced
                }
            },
            None => Profile::Balanced,
        };
        let positive = |c: f64| c.is_finite() && c > 0.0;
        let max_cost_usd = raw
            .max_cost_usd
            .map(|c| {
                self.checked(
                    Some(c),
                    "routing.max_cost_usd",
                    0.0,
                    positive,
                    "must be greater than 0",
                )
            })
            .filter(|c| positive(*c));
        let exploration = self.checked(
            raw.exploration,
            "routing.exploration",
            0.3,
            |e| (0.0..=2.0).contains(&e),
            "must be between 0 and 2",
        );
        let save_interval =
            self.positive_ms(raw.save_interval_ms, "routing.save_interval_ms", 10_000);
        let capacity = self.checked(
            raw.memory_capacity,
            "routing.memory_capacity",
            256,
            |c| (1..=100_000).contains(&c),
            "must be between 1 and 100000",
        );
        let memory_capacity = raw.memory.unwrap_or(true).then_some(capacity);
        let sync_interval =
            self.positive_ms(raw.sync_interval_ms, "routing.sync_interval_ms", 5_000);
        RoutingConfig {
            default_profile,
            max_cost_usd,
            exploration,
            save_interval,
            sync_interval,
            memory_capacity,
        }
    }

    fn judge(&mut self, raw: RawJudge, env: &dyn Env) -> JudgeConfig {
        let api = raw.api.unwrap_or(JudgeApi::Ollama);
        let url = match raw.url {
            Some(u) => {
                let url = u.get_ref().trim_end_matches('/').to_string();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    self.problem(
                        Some(u.span()),
                        "judge.url",
                        format!("`{url}` is not an http:// or https:// URL"),
                    );
                }
                url
            }
            None => match api {
                JudgeApi::Ollama => "http://127.0.0.1:11434".to_string(),
                JudgeApi::Openai => "http://127.0.0.1:11434/v1".to_string(),
            },
        };
        let mode = raw.mode.unwrap_or(JudgeMode::Off);
        let api_key = match raw.api_key_env {
            Some(var) => {
                let value = env.var(var.get_ref());
                if value.is_none() && mode != JudgeMode::Off {
                    let message = format!(
                        "the judge's key is read from `{}`, which is not set",
                        var.get_ref()
                    );
                    self.missing_secret(Some(var.span()), "judge.api_key_env", message);
                }
                value.map(SecretString::from)
            }
            None => None,
        };
        JudgeConfig {
            mode,
            api,
            url,
            model: raw.model.unwrap_or_else(|| "llama3".to_string()),
            timeout: self.positive_ms(raw.timeout_ms, "judge.timeout_ms", 1_500),
            keep_alive: raw.keep_alive.unwrap_or_else(|| "30m".to_string()),
            cache_size: raw.cache_size.unwrap_or(10_000),
            max_in_flight: self
                .checked(
                    raw.max_in_flight,
                    "judge.max_in_flight",
                    JudgeConfig::DEFAULT_MAX_IN_FLIGHT.get(),
                    |n| n > 0,
                    "must be at least 1",
                )
                .try_into()
                .unwrap_or(JudgeConfig::DEFAULT_MAX_IN_FLIGHT),
            api_key,
        }
    }

    fn dispatch(&mut self, raw: RawDispatch) -> DispatchConfig {
        let max_attempts = self.checked(
            raw.max_attempts,
            "dispatch.max_attempts",
            4,
            |n| (1..=20).contains(&n),
            "must be between 1 and 20",
        );
        DispatchConfig {
            max_attempts,
            retry_backoff: Duration::from_millis(raw.retry_backoff_ms.unwrap_or(100)),
            max_retry_wait: Duration::from_millis(raw.max_retry_wait_ms.unwrap_or(2_000)),
            connect_timeout: self.positive_ms(
                raw.connect_timeout_ms,
                "dispatch.connect_timeout_ms",
                5_000,
            ),
            first_byte_timeout: self.positive_ms(
                raw.first_byte_timeout_ms,
                "dispatch.first_byte_timeout_ms",
                60_000,
            ),
            total_timeout: self.positive_ms(
                raw.total_timeout_ms,
                "dispatch.total_timeout_ms",
                600_000,
            ),
            idle_timeout: self.positive_ms(raw.idle_timeout_ms, "dispatch.idle_timeout_ms", 60_000),
            queue_timeout: self.positive_ms(
                raw.queue_timeout_ms,
                "dispatch.queue_timeout_ms",
                10_000,
            ),
        }
    }

    fn circuit(&mut self, raw: RawCircuit) -> CircuitConfig {
        let consecutive_failures = self.checked(
            raw.consecutive_failures,
            "circuit.consecutive_failures",
            5,
            |n| n >= 1,
            "must be at least 1",
        );
        let error_ratio = self.checked(
            raw.error_ratio,
            "circuit.error_ratio",
            0.5,
            |r| r > 0.0 && r <= 1.0,
            "must be in (0, 1]",
        );
        let window = self.checked(
            raw.window,
            "circuit.window",
            20,
            |n| (2..=10_000).contains(&n),
            "must be between 2 and 10000",
        );
        CircuitConfig {
            consecutive_failures,
            error_ratio,
            window,
            cooldown: Duration::from_millis(raw.cooldown_ms.unwrap_or(30_000)),
        }
    }

    fn models(&mut self, raw: Vec<Spanned<RawModel>>, env: &dyn Env) -> Vec<ModelConfig> {
        let mut models: Vec<ModelConfig> = Vec::new();
        let mut ids = HashSet::new();
        let mut fallback_refs = Vec::new();
        for (index, entry) in raw.into_iter().enumerate() {
            let span = entry.span();
            let m = entry.into_inner();
            let key = |k: &str| format!("models[{index}].{k}");
            let name = m.name.get_ref().trim().to_string();
            if name.is_empty() || is_auto(&name) || name.contains(char::is_whitespace) {
                let message = "must be non-empty, without spaces, and not `auto`".to_string();
                self.problem(Some(m.name.span()), key("name"), message);
            }
            let enabled = m.enabled.unwrap_or(true);
            let base_url = match (&m.base_url, m.provider.default_base_url()) {
                (Some(url), _) => {
                    let u = url.get_ref().trim_end_matches('/').to_string();
                    if !(u.starts_with("http://") || u.starts_with("https://")) {
                        let message = format!("`{u}` is not an http:// or https:// URL");
                        self.problem(Some(url.span()), key("base_url"), message);
                    }
                    u
                }
                (None, Some(default)) => default.to_string(),
                (None, None) => {
                    let message = "an openai-compatible model needs a base_url".to_string();
                    self.problem(Some(span.clone()), key("base_url"), message);
                    String::new()
                }
            };
            let key_env = m
                .api_key_env
                .as_ref()
                .map(|s| (s.get_ref().clone(), Some(s.span())))
                .or_else(|| m.provider.default_key_env().map(|v| (v.to_string(), None)));
            let api_key = match &key_env {
                Some((var, var_span)) => {
                    let value = env.var(var);
                    if value.is_none() && enabled && !m.provider.key_optional() {
                        let message = format!(
                            "the {} key is read from `{var}`, which is not set (in the environment or .env); set it, or `enabled = false`",
                            m.provider.as_str()
                        );
                        let span = var_span.clone().unwrap_or(span.clone());
                        self.missing_secret(Some(span), key("api_key_env"), message);
                    }
                    value.map(SecretString::from)
                }
                None => None,
            };
            let non_negative = |v: f64| v.is_finite() && v >= 0.0;
            let weight = self.checked(
                m.weight.clone(),
                &key("weight"),
                1.0,
                non_negative,
                "must be a number ≥ 0",
            );
            let max_in_flight = m.max_in_flight.clone().and_then(|n| {
                let limit = NonZeroU32::new(*n.get_ref());
                if limit.is_none() {
                    self.problem(
                        Some(n.span()),
                        key("max_in_flight"),
                        "must be at least 1 (leave it out for no limit)".into(),
                    );
                }
                limit
            });
            let price_rule = "must be a price ≥ 0 (USD per million tokens)";
            let price = Price {
                input_per_mtok: self.checked(
                    m.input_price.clone(),
                    &key("input_price"),
                    0.0,
                    non_negative,
                    price_rule,
                ),
                output_per_mtok: self.checked(
                    m.output_price.clone(),
                    &key("output_price"),
                    0.0,
                    non_negative,
                    price_rule,
                ),
            };
            let context_window = self.checked(
                m.context_window.clone(),
                &key("context_window"),
                8_192,
                |c| c >= 256,
                "must be at least 256 tokens",
            );
            let caps = m.capabilities.unwrap_or_default();
            let defaults = Capabilities::default();
            let capabilities = Capabilities {
                streaming: caps.streaming.unwrap_or(defaults.streaming),
                tools: caps.tools.unwrap_or(defaults.tools),
                vision: caps.vision.unwrap_or(defaults.vision),
                json: caps.json.unwrap_or(defaults.json),
            };
            let mut priors = BTreeMap::new();
            for (k, v) in &m.priors {
                if !(0.0..=1.0).contains(v.get_ref()) {
                    self.problem(
                        Some(v.span()),
                        key(&format!("priors.{k}")),
                        "must be in [0, 1]".into(),
                    );
                } else if let Err(message) =
                    router_core::Prior::from_config([(k.as_str(), *v.get_ref())], [])
                {
                    self.problem(Some(v.span()), key(&format!("priors.{k}")), message);
                }
                priors.insert(k.clone(), *v.get_ref());
            }
            let mut tags = m.tags.clone();
            tags.extend(m.strengths.iter().cloned());

            let existing = models.iter().position(|x| x.name == name);
            let ordinal = existing.map_or(1, |i| models[i].deployments.len() + 1);
            let id = match &m.deployment {
                Some(d) => d.get_ref().clone(),
                None => format!("{name}#{ordinal}"),
            };
            if !ids.insert(id.clone()) {
                let d_span = m.deployment.as_ref().map(Spanned::span).unwrap_or(span.clone());
                self.problem(
                    Some(d_span),
                    key("deployment"),
                    format!("deployment id `{id}` is used twice"),
                );
            }
            let deployment = DeploymentConfig {
                id,
                provider: m.provider,
                upstream_model: m.model.clone().unwrap_or_else(|| name.clone()),
                base_url,
                api_key,
                weight,
                enabled,
                max_in_flight,
            };
            for f in &m.fallbacks {
                fallback_refs.push((name.clone(), f.get_ref().clone(), f.span(), key("fallbacks")));
            }
            match existing {
                // A second entry with the same name is another deployment of that model;
                // the model-level settings come from the first entry, extended by the rest.
                Some(i) => {
                    let model = &mut models[i];
                    model.enabled |= enabled;
                    for t in tags {
                        if !model.tags.contains(&t) {
                            model.tags.push(t);
                        }
                    }
                    for f in &m.fallbacks {
                        if !model.fallbacks.contains(f.get_ref()) {
                            model.fallbacks.push(f.get_ref().clone());
                        }
                    }
                    model.deployments.push(deployment);
                }
                None => models.push(ModelConfig {
                    name,
                    enabled,
                    price,
                    context_window,
                    capabilities,
                    tags,
                    fallbacks: m.fallbacks.iter().map(|f| f.get_ref().clone()).collect(),
                    priors,
                    deployments: vec![deployment],
                }),
            }
        }
        for (model, target, span, key) in fallback_refs {
            if target == model {
                self.problem(Some(span), key, format!("`{model}` cannot fall back to itself"));
            } else if !models.iter().any(|m| m.name == target) {
                self.problem(
                    Some(span),
                    key,
                    format!("fallback `{target}` is not a configured model"),
                );
            }
        }
        models
    }
}

/// `auto` and `auto:<profile>` are routing requests, never model names.
pub fn is_auto(name: &str) -> bool {
    name == "auto" || name.starts_with("auto:")
}
