//! The gateway's own work on a request, without sockets: routing (`auto` and a named model),
//! the bookkeeping around the upstream call (the request's record, the outcome's record,
//! metrics and learning), the streaming relay per chunk, and the metrics registry.
//!
//! `cargo bench -p router-gateway --bench request_path`

use std::collections::HashMap;
use std::path::Path;

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use futures_util::StreamExt;
use router_gateway::Gateway;
use router_gateway::config::Config;
use router_gateway::dispatch::Attempt;
use router_gateway::outcome::{Ending, Served, Trace};
use router_gateway::relay::Relay;
use router_providers::chat::ResponseMeta;
use router_providers::{ChatRequest, FinishReason, Message, StreamEvent, Usage, openai};
use router_store::{Api, Store, WriterOptions, spawn_writer};

fn main() {
    divan::main();
}

const QUESTION: &str = "I have a Python service that reads orders from a queue and writes them \
to PostgreSQL. Under load it sometimes writes the same order twice. How can I make the writes \
idempotent, and what should the table's unique key be? Show a short example.";

/// Four models of different prices and strengths; nothing is ever sent to them.
const CONFIG: &str = r#"
[dashboard]
enabled = false

[store]
url = "sqlite::memory:"

[[models]]
name = "gpt-4o"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
input_price = 2.5
output_price = 10.0
strengths = ["code", "reasoning", "math"]

[[models]]
name = "gpt-mini"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
input_price = 0.15
output_price = 0.6
tags = ["cheap", "fast"]

[[models]]
name = "claude-sonnet"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
input_price = 3.0
output_price = 15.0
strengths = ["writing", "code"]

[[models]]
name = "deepseek-chat"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
input_price = 0.27
output_price = 1.1
strengths = ["chinese", "code", "math"]
"#;

/// A gateway over an in-memory store, with its writer running on `runtime`.
fn gateway(runtime: &tokio::runtime::Runtime) -> Gateway {
    let env = HashMap::<String, String>::new();
    let config = match Config::parse(CONFIG, Path::new("bench.toml"), &env) {
        Ok(config) => config,
        Err(e) => panic!("the benchmark's config is invalid: {e}"),
    };
    runtime.block_on(async {
        let store = match Store::connect(&config.store.url).await {
            Ok(store) => store,
            Err(e) => panic!("no store: {e}"),
        };
        if let Err(e) = store.migrate().await {
            panic!("no schema: {e}");
        }
        let options = WriterOptions { capacity: 1 << 20, ..WriterOptions::default() };
        let (writer, task) = spawn_writer(store.clone(), options);
        // The writer runs for the rest of the process.
        std::mem::forget(task);
        match Gateway::new(config, store, writer) {
            Ok(gateway) => gateway,
            Err(e) => panic!("no gateway: {e}"),
        }
    })
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => panic!("no runtime: {e}"),
    }
}

fn chat(model: &str, text: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![
            Message::text(router_core::Role::System, "You are a helpful assistant."),
            Message::text(router_core::Role::User, text),
        ],
        ..ChatRequest::default()
    }
}

/// About 2,000 tokens of prose.
fn long_text() -> String {
    let paragraph = "Our team runs a payment service behind a load balancer. Each request \
validates a card token, looks up the merchant's limits, writes a ledger entry and publishes an \
event. Under peak traffic the p99 latency climbs and the database shows lock waits. ";
    paragraph.repeat(8_000 / paragraph.len() + 1)
}

/// Resolving the model, features, decision and failover plan: everything before the
/// upstream call.
mod route {
    use super::*;

    fn bench_route(bencher: Bencher, request: ChatRequest) {
        let runtime = runtime();
        let gateway = gateway(&runtime);
        bencher.bench_local(|| {
            runtime.block_on(gateway.route(black_box(&request), std::time::Instant::now()))
        });
    }

    #[divan::bench]
    fn auto_short(bencher: Bencher) {
        bench_route(bencher, chat("auto", QUESTION));
    }

    #[divan::bench]
    fn auto_2k_tokens(bencher: Bencher) {
        bench_route(bencher, chat("auto", &long_text()));
    }

    #[divan::bench]
    fn named_short(bencher: Bencher) {
        bench_route(bencher, chat("gpt-mini", QUESTION));
    }
}

fn served(gateway: &Gateway, model: &str) -> Served {
    let price = gateway.config.model(model).map(|m| m.price).unwrap_or_default();
    Served { model: model.into(), deployment: format!("{model}#1"), price }
}

fn trace(routed: &router_gateway::app::Routed) -> Trace {
    Trace {
        id: routed.id.clone(),
        api: Api::OpenAi,
        received: routed.received,
        features: routed.decision.features,
        source: routed.decision.source,
        sketch: routed.sketch,
    }
}

/// The request's record before the call, and after it the outcome's record, the metrics
/// and the learning — the bookkeeping an answered request costs besides routing.
#[divan::bench]
fn record_and_finish(bencher: Bencher) {
    let runtime = runtime();
    let gateway = gateway(&runtime);
    let request = chat("auto", QUESTION);
    let _guard = runtime.enter();
    bencher
        .with_inputs(|| {
            match runtime.block_on(gateway.route(&request, std::time::Instant::now())) {
                Ok(routed) => routed,
                Err(e) => panic!("routing failed: {}", e.message),
            }
        })
        .bench_local_values(|routed| {
            gateway.record_request(&routed, &request, Api::OpenAi);
            let served = served(&gateway, &routed.decision.model);
            let attempts = [Attempt {
                model: served.model.clone(),
                deployment: served.deployment.clone(),
                error_kind: None,
                error: None,
                duration_ms: 900,
            }];
            let ending = Ending::Answered {
                usage: Usage { input_tokens: 62, output_tokens: 41 },
                estimated: false,
                signal: None,
            };
            gateway.finish(&trace(&routed), Some(&served), &attempts, ending, 200, None);
        });
}

/// The streaming relay: each upstream event encoded for the client as it is polled, usage
/// accumulated, and the outcome recorded at the end. Per chunk of a 64-chunk answer.
#[divan::bench]
fn relay_per_chunk(bencher: Bencher) {
    const CHUNKS: usize = 64;
    let runtime = runtime();
    let gateway = gateway(&runtime);
    let request = chat("auto", QUESTION);
    let _guard = runtime.enter();
    bencher
        .counter(ItemsCount::new(CHUNKS))
        .with_inputs(|| {
            let routed = match runtime.block_on(gateway.route(&request, std::time::Instant::now()))
            {
                Ok(routed) => routed,
                Err(e) => panic!("routing failed: {}", e.message),
            };
            let mut events: Vec<Result<StreamEvent, router_providers::UpstreamError>> = (0..CHUNKS)
                .map(|i| Ok(StreamEvent::TextDelta { text: format!(" word{i}") }))
                .collect();
            events
                .push(Ok(StreamEvent::Finish { reason: FinishReason::Stop, stop_sequence: None }));
            events.push(Ok(StreamEvent::Usage(Usage { input_tokens: 62, output_tokens: 64 })));
            let served = served(&gateway, &routed.decision.model);
            let meta = ResponseMeta {
                id: format!("chatcmpl-{}", routed.id),
                model: served.model.clone(),
                created: 1_795_741_950,
            };
            Relay::new(
                gateway.clone(),
                trace(&routed),
                served,
                Vec::new(),
                StreamEvent::Start { id: "chatcmpl-1".into(), model: "gpt-mini".into() },
                Box::pin(futures_util::stream::iter(events)),
                openai::StreamEncoder::new(meta, true),
            )
        })
        .bench_local_values(|mut relay| {
            runtime.block_on(async {
                let mut bytes = 0;
                while let Some(Ok(chunk)) = relay.next().await {
                    bytes += chunk.len();
                }
                bytes
            })
        });
}

/// The metrics registry on the hot path: a counter with labels and a histogram.
mod metrics {
    use super::*;
    use router_gateway::metrics::Metrics;

    #[divan::bench]
    fn counter_with_labels(bencher: Bencher) {
        let metrics = Metrics::new();
        bencher.bench(|| {
            metrics.inc(
                "llm_router_requests_total",
                black_box(&[("api", "openai"), ("model", "gpt-mini"), ("status", "ok")]),
                1,
            )
        });
    }

    #[divan::bench]
    fn histogram(bencher: Bencher) {
        let metrics = Metrics::new();
        bencher.bench(|| {
            metrics.observe("llm_router_overhead_seconds", &[], black_box(0.000_123));
        });
    }
}
