//! Conformance with the official SDKs as clients: the Python `openai` and `anthropic`
//! packages, unmodified, talk to a gateway in front of simulated upstreams of every format
//! (OpenAI-compatible, Anthropic, Ollama) — answers, streams through the SDKs' own parsers,
//! tool-use round trips, multi-turn, token counting, and errors surfaced as the SDKs' own
//! exception classes. The checks themselves are in `tests/sdk/conformance.py`.
//!
//! Needs `python3` (or `$LLM_ROUTER_PYTHON`) with the packages pinned in
//! `tests/sdk/requirements.txt`. Without them each test prints why it was skipped and
//! passes, unless `LLM_ROUTER_TEST_STRICT=1` (as in CI), where it fails.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::TestGateway;
use router_sim::{Fault, FaultPlan, SimConfig, SimModel, SimServer, StreamBreak, Style};

const CLIENT_KEY: &str = "sk-router-conformance";
const ANTHROPIC_KEY: &str = "sk-ant-upstream";

#[derive(Debug, Clone, Copy)]
enum Client {
    OpenAi,
    Anthropic,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::OpenAi => "openai",
            Client::Anthropic => "anthropic",
        }
    }
}

/// An upstream wire format, and the gateway models served in it.
#[derive(Debug, Clone, Copy)]
enum Upstream {
    OpenAi,
    Anthropic,
    Ollama,
}

impl Upstream {
    fn name(self) -> &'static str {
        match self {
            Upstream::OpenAi => "openai",
            Upstream::Anthropic => "anthropic",
            Upstream::Ollama => "ollama",
        }
    }

    /// The healthy model's name; the failing ones add a suffix.
    fn model(self) -> &'static str {
        match self {
            Upstream::OpenAi => "oa",
            Upstream::Anthropic => "an",
            Upstream::Ollama => "ol",
        }
    }

    fn config(self, name: &str, base: &str) -> String {
        let (provider, base_url, key) = match self {
            Upstream::OpenAi => ("openai-compatible", format!("{base}/v1"), ""),
            Upstream::Anthropic => ("anthropic", base.to_owned(), "api_key_env = \"AN_KEY\"\n"),
            Upstream::Ollama => ("ollama", base.to_owned(), ""),
        };
        format!(
            "[[models]]\nname = \"{name}\"\nprovider = \"{provider}\"\nbase_url = \"{base_url}\"\n{key}capabilities = {{ tools = true }}\n\n"
        )
    }
}

/// The failing models of an upstream: the script's option, the name suffix and the fault.
fn failures() -> [(&'static str, &'static str, Fault); 4] {
    [
        ("--rate-limited", "-429", Fault::RateLimited { retry_after: Duration::from_secs(1) }),
        ("--failing", "-500", Fault::ServerError),
        ("--overloaded", "-529", Fault::Overloaded),
        (
            "--broken-stream",
            "-cut",
            Fault::BreakStream { after_chunks: 3, how: StreamBreak::ErrorEvent },
        ),
    ]
}

/// A Python that has both SDKs, or why there is none.
async fn python() -> Result<String, String> {
    let python = std::env::var("LLM_ROUTER_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = tokio::process::Command::new(&python)
        .args(["-c", "import anthropic, openai; print(anthropic.__version__, openai.__version__)"])
        .stdin(Stdio::null())
        .output()
        .await;
    match probe {
        Ok(out) if out.status.success() => Ok(python),
        Ok(out) => Err(format!(
            "`{python}` cannot import the SDKs: {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        )),
        Err(e) => Err(format!("cannot run `{python}`: {e}")),
    }
}

fn strict() -> bool {
    std::env::var("LLM_ROUTER_TEST_STRICT").is_ok_and(|v| v == "1")
}

/// Starts a sim upstream in `upstream`'s format with a healthy model and one for each kind of
/// failure, and a gateway in front of it that requires a client key, then runs the
/// conformance script for `client` against it.
async fn conformance(client: Client, upstream: Upstream) {
    let python = match python().await {
        Ok(python) => python,
        Err(why) if strict() => panic!("LLM_ROUTER_TEST_STRICT=1 and {why}"),
        Err(why) => {
            eprintln!(
                "SKIPPED {} sdk against {} upstream: {why}. Install the SDKs with \
                 `python3 -m pip install -r crates/router-gateway/tests/sdk/requirements.txt`.",
                client.name(),
                upstream.name()
            );
            return;
        }
    };

    let healthy = upstream.model();
    let mut sim = SimConfig::new().model(sim_model(healthy, upstream));
    let mut script_args = Vec::new();
    for (option, suffix, fault) in failures() {
        let name = format!("{healthy}{suffix}");
        let model = sim_model(&name, upstream).style(Style::Verbose);
        sim = sim.model(model.fault(FaultPlan::always(fault)));
        script_args.extend([option.to_owned(), name]);
    }
    let sim = SimServer::start(sim).await.unwrap();
    let base = sim.base_url();
    let mut config = upstream.config(healthy, &base);
    for (_, suffix, _) in failures() {
        config.push_str(&upstream.config(&format!("{healthy}{suffix}"), &base));
    }
    // No retries, so each failure reaches the client as it happened; a short circuit
    // cooldown, so a rested deployment is tried again as soon as its Retry-After has passed.
    config.push_str("[dispatch]\nmax_attempts = 1\n\n[circuit]\ncooldown_ms = 200\n");
    let gateway = start_gateway(&config).await;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/conformance.py");
    let mut command = tokio::process::Command::new(&python);
    command
        .arg(&script)
        .args(["--client", client.name(), "--upstream", upstream.name()])
        .args(["--base-url", &gateway.url, "--model", healthy, "--key", CLIENT_KEY])
        .args(&script_args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // Nothing from the developer's environment may steer the SDKs elsewhere.
    for var in [
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_PROFILE",
        "ANTHROPIC_CUSTOM_HEADERS",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
    ] {
        command.env_remove(var);
    }
    command.env("ANTHROPIC_CONFIG_DIR", gateway.dir.path());
    command.env("NO_PROXY", "127.0.0.1,localhost").env("no_proxy", "127.0.0.1,localhost");
    let output = tokio::time::timeout(Duration::from_secs(240), command.output())
        .await
        .expect("the conformance script finished in time")
        .expect("the conformance script ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "{} sdk against {} upstream failed ({}):\n{stdout}\n{stderr}",
        client.name(),
        upstream.name(),
        output.status
    );
    assert!(stdout.lines().filter(|l| l.starts_with("ok ")).count() >= 12, "{stdout}");
}

fn sim_model(name: &str, upstream: Upstream) -> SimModel {
    let model = SimModel::new(name).style(Style::Terse);
    match upstream {
        Upstream::Anthropic => model.api_key(ANTHROPIC_KEY),
        _ => model,
    }
}

/// A gateway that requires [`CLIENT_KEY`] from its clients.
async fn start_gateway(body: &str) -> TestGateway {
    let env: HashMap<String, String> = [
        ("CLIENT_KEYS".to_string(), CLIENT_KEY.to_string()),
        ("AN_KEY".to_string(), ANTHROPIC_KEY.to_string()),
    ]
    .into();
    common::start_with_server("client_keys_env = \"CLIENT_KEYS\"", body, env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_sdk_against_an_openai_upstream() {
    conformance(Client::Anthropic, Upstream::OpenAi).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_sdk_against_an_anthropic_upstream() {
    conformance(Client::Anthropic, Upstream::Anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_sdk_against_an_ollama_upstream() {
    conformance(Client::Anthropic, Upstream::Ollama).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_against_an_openai_upstream() {
    conformance(Client::OpenAi, Upstream::OpenAi).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_against_an_anthropic_upstream() {
    conformance(Client::OpenAi, Upstream::Anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_against_an_ollama_upstream() {
    conformance(Client::OpenAi, Upstream::Ollama).await;
}
