//! Configuration parsing and validation: defaults, deployments, and errors that name the
//! line and key.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use router_gateway::config::{Config, ConfigError, Provider, StorePrompts};
use secrecy::ExposeSecret;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn parse(text: &str, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("llm-router.toml"), env)
}

#[test]
fn minimal_file_gets_every_default() {
    let c = parse("[[models]]\nname = \"local\"\nprovider = \"ollama\"\n", &env(&[])).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:3100");
    assert_eq!(c.dashboard.listen.to_string(), "127.0.0.1:3200");
    assert_eq!(c.server.max_body_bytes, 10 * 1024 * 1024);
    assert_eq!(c.privacy.store_prompts, StorePrompts::Hash);
    assert_eq!(c.store.url, "sqlite://data/llm-router.db");
    let m = &c.models[0];
    assert_eq!(m.deployments[0].base_url, "http://127.0.0.1:11434");
    assert_eq!(m.deployments[0].upstream_model, "local");
    assert_eq!(m.deployments[0].id, "local#1");
    assert!(m.deployments[0].api_key.is_none());
    assert_eq!(c.dispatch.first_byte_timeout, Duration::from_secs(60));
    assert_eq!(c.server.threads, std::thread::available_parallelism().ok());
}

#[test]
fn serving_threads_are_a_count_or_zero_for_the_callers_runtime() {
    let model = "[[models]]\nname = \"local\"\nprovider = \"ollama\"\n";
    let with = |threads: &str| parse(&format!("[server]\nthreads = {threads}\n{model}"), &env(&[]));
    assert_eq!(with("3").unwrap().server.threads.map(|n| n.get()), Some(3));
    assert_eq!(with("0").unwrap().server.threads, None);
    let e = with("1000").unwrap_err();
    assert_eq!(e.problems[0].key.as_deref(), Some("server.threads"), "{e}");
    assert_eq!(e.problems[0].line, Some(2), "{e}");
    assert!(e.to_string().contains("from 0 to 256"), "{e}");
    assert!(with("-1").is_err());
}

#[test]
fn busy_polling_is_off_by_default_and_needs_serving_threads() {
    let model = "[[models]]\nname = \"local\"\nprovider = \"ollama\"\n";
    let with = |server: &str| parse(&format!("[server]\n{server}\n{model}"), &env(&[]));
    assert_eq!(with("").unwrap().server.busy_poll, None);
    assert_eq!(with("busy_poll_us = 0").unwrap().server.busy_poll, None);
    assert_eq!(
        with("busy_poll_us = 200").unwrap().server.busy_poll,
        Some(Duration::from_micros(200))
    );
    let e = with("busy_poll_us = 50000").unwrap_err();
    assert_eq!(e.problems[0].key.as_deref(), Some("server.busy_poll_us"), "{e}");
    assert!(e.to_string().contains("0 (off) to 10000 microseconds"), "{e}");
    // Without serving threads there is nothing to busy-poll on: say so rather than ignore it.
    let e = with("threads = 0\nbusy_poll_us = 200").unwrap_err();
    assert_eq!(e.problems[0].key.as_deref(), Some("server.busy_poll_us"), "{e}");
    assert_eq!(e.problems[0].line, Some(3), "{e}");
    assert!(e.to_string().contains("`server.threads = 0`"), "{e}");
}

#[test]
fn in_flight_limits_are_per_deployment_and_at_least_one() {
    let entry =
        |extra: &str| format!("[[models]]\nname = \"local\"\nprovider = \"ollama\"\n{extra}\n");
    let c =
        parse(&format!("{}{}", entry("max_in_flight = 4"), entry("deployment = \"b\"")), &env(&[]))
            .unwrap();
    assert_eq!(c.models[0].deployments[0].max_in_flight.map(|n| n.get()), Some(4));
    assert_eq!(c.models[0].deployments[1].max_in_flight, None, "no limit unless set");
    assert_eq!(c.dispatch.queue_timeout, Duration::from_secs(10));
    let c =
        parse(&format!("[dispatch]\nqueue_timeout_ms = 250\n{}", entry("")), &env(&[])).unwrap();
    assert_eq!(c.dispatch.queue_timeout, Duration::from_millis(250));

    let e = parse(&entry("max_in_flight = 0"), &env(&[])).unwrap_err();
    assert_eq!(e.problems[0].key.as_deref(), Some("models[0].max_in_flight"), "{e}");
    assert_eq!(e.problems[0].line, Some(4), "{e}");
    assert!(e.to_string().contains("must be at least 1 (leave it out for no limit)"), "{e}");
    assert!(parse(&entry("max_in_flight = -1"), &env(&[])).is_err());
    let e =
        parse(&format!("[dispatch]\nqueue_timeout_ms = 0\n{}", entry("")), &env(&[])).unwrap_err();
    assert_eq!(e.problems[0].key.as_deref(), Some("dispatch.queue_timeout_ms"), "{e}");
}

#[test]
fn the_judge_takes_a_few_calls_at_once_unless_told_otherwise() {
    let model = "[[models]]\nname = \"local\"\nprovider = \"ollama\"\n";
    let with =
        |judge: &str| parse(&format!("[judge]\nmode = \"always\"\n{judge}\n{model}"), &env(&[]));
    assert_eq!(with("").unwrap().judge.max_in_flight.get(), 4);
    assert_eq!(with("max_in_flight = 16").unwrap().judge.max_in_flight.get(), 16);
    let e = with("max_in_flight = 0").unwrap_err();
    assert_eq!(e.problems[0].key.as_deref(), Some("judge.max_in_flight"), "{e}");
    assert_eq!(e.problems[0].line, Some(3), "{e}");
    assert!(e.to_string().contains("must be at least 1"), "{e}");
    assert!(with("max_in_flight = -2").is_err());
}

#[test]
fn the_example_file_is_valid() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../llm-router.example.toml"),
    )
    .unwrap();
    let keys = env(&[
        ("OPENAI_API_KEY", "sk-test"),
        ("ANTHROPIC_API_KEY", "sk-ant-test"),
        ("DEEPSEEK_API_KEY", "sk-ds"),
    ]);
    let c = parse(&text, &keys).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.models.len(), 5);
    assert_eq!(c.aliases["claude-3-5-sonnet-latest"], "claude-sonnet");
    let claude = c.model("claude-sonnet").unwrap();
    assert_eq!(claude.deployments[0].provider, Provider::Anthropic);
    assert_eq!(claude.deployments[0].base_url, "https://api.anthropic.com");
    assert_eq!(claude.deployments[0].api_key.as_ref().unwrap().expose_secret(), "sk-ant-test");
    assert!(!c.model("llama3-local").unwrap().enabled);
}

#[test]
fn entries_sharing_a_name_are_deployments_of_one_model() {
    let text = r#"
[[models]]
name = "chat"
provider = "openai"
weight = 3
input_price = 1.0
output_price = 2.0

[[models]]
name = "chat"
provider = "openai-compatible"
base_url = "http://10.0.0.1:8000/v1/"
deployment = "mirror"
weight = 1
"#;
    let c = parse(text, &env(&[("OPENAI_API_KEY", "k")])).unwrap();
    assert_eq!(c.models.len(), 1);
    let m = &c.models[0];
    assert_eq!(m.deployments.len(), 2);
    assert_eq!(m.deployments[0].id, "chat#1");
    assert_eq!(m.deployments[1].id, "mirror");
    assert_eq!(m.deployments[1].base_url, "http://10.0.0.1:8000/v1");
    assert_eq!(m.weight(), 4.0);
    assert_eq!(m.price.output_per_mtok, 2.0);
}

#[test]
fn unknown_key_names_line_and_key() {
    let text = "[server]\nlisten = \"127.0.0.1:1\"\n\n[[models]]\nname = \"a\"\nprovider = \"ollama\"\nwieght = 2\n";
    let e = parse(text, &env(&[])).unwrap_err();
    assert_eq!(e.problems.len(), 1);
    assert_eq!(e.problems[0].line, Some(7));
    let shown = e.to_string();
    assert!(shown.starts_with("llm-router.toml:7:"), "{shown}");
    assert!(shown.contains("wieght"), "{shown}");
}

#[test]
fn bad_values_are_all_reported_with_their_lines() {
    let text = r#"[server]
listen = "not an address"

[dispatch]
max_attempts = 0

[[models]]
name = "a"
provider = "openai"
weight = -1
fallbacks = ["nowhere"]
"#;
    let e = parse(text, &env(&[])).unwrap_err();
    let shown = e.to_string();
    let lines: Vec<_> =
        e.problems.iter().map(|p| (p.line, p.key.clone().unwrap_or_default())).collect();
    assert!(lines.contains(&(Some(2), "server.listen".into())), "{shown}");
    assert!(lines.contains(&(Some(5), "dispatch.max_attempts".into())), "{shown}");
    assert!(lines.contains(&(Some(10), "models[0].weight".into())), "{shown}");
    assert!(lines.contains(&(Some(11), "models[0].fallbacks".into())), "{shown}");
    // The missing key is reported at the model entry.
    assert!(shown.contains("OPENAI_API_KEY"), "{shown}");
    assert!(shown.contains("not set"), "{shown}");
}

#[test]
fn missing_secret_is_only_an_error_for_enabled_models() {
    let text = "[[models]]\nname = \"a\"\nprovider = \"anthropic\"\napi_key_env = \"MY_KEY\"\nenabled = false\n";
    assert!(parse(text, &env(&[])).is_ok());
    let enabled = text.replace("enabled = false", "enabled = true");
    let e = parse(&enabled, &env(&[])).unwrap_err();
    assert_eq!(e.problems[0].line, Some(4));
    assert!(e.to_string().contains("MY_KEY"));
}

#[test]
fn syntax_errors_have_a_place() {
    let e = parse("[[models]\nname = 1\n", &env(&[])).unwrap_err();
    assert_eq!(e.problems[0].line, Some(1));
}

#[test]
fn secrets_never_show_in_debug_output() {
    let text = "[[models]]\nname = \"a\"\nprovider = \"openai\"\n";
    let c = parse(text, &env(&[("OPENAI_API_KEY", "sk-very-secret")])).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("sk-very-secret"), "{debug}");
}

#[test]
fn aliases_must_point_at_models() {
    let text =
        "[aliases]\n\"gpt-4\" = \"missing\"\n\n[[models]]\nname = \"a\"\nprovider = \"ollama\"\n";
    let e = parse(text, &env(&[])).unwrap_err();
    assert_eq!(e.problems[0].line, Some(2));
    assert_eq!(e.problems[0].key.as_deref(), Some("aliases.gpt-4"));
}

#[test]
fn aliases_may_stand_for_routing_profiles() {
    let text = "[aliases]\n\"claude-3-5-haiku-latest\" = \"auto:cost\"\n\"gpt-4\" = \"auto\"\n\n[[models]]\nname = \"a\"\nprovider = \"ollama\"\n";
    let c = parse(text, &env(&[])).unwrap();
    assert_eq!(c.aliases["claude-3-5-haiku-latest"], "auto:cost");
    let bad = text.replace("auto:cost", "auto:cheapest-possible");
    let e = parse(&bad, &env(&[])).unwrap_err();
    assert_eq!(e.problems[0].line, Some(2), "{e}");
}
