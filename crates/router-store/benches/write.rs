//! The store's write path, from the request's side to the disk: building a request record
//! from a decision, handing records to the writer's queue, and writing a batch in one
//! transaction to a SQLite file (WAL, as the gateway opens it).
//!
//! `cargo bench -p router-store --bench write`

use std::sync::atomic::{AtomicU64, Ordering};

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use router_core::learning::Knowledge;
use router_core::policy::{self, Params};
use router_core::{
    Availability, Candidate, Capabilities, Decision, FeatureExtractor, Price, Profile, Prompt,
};
use router_store::{
    Api, Attempt, CapturedPrompt, OutcomeRecord, OutcomeStatus, Record, RequestContext,
    RequestRecord, Store, WriterOptions, spawn_writer,
};

fn main() {
    divan::main();
}

const QUESTION: &str = "I have a Python service that reads orders from a queue and writes them \
to PostgreSQL. Under load it sometimes writes the same order twice. How can I make the writes \
idempotent, and what should the table's unique key be? Show a short example.";

const MODELS: [(&str, f64, f64); 4] = [
    ("gpt-4o", 2.5, 10.0),
    ("gpt-4o-mini", 0.15, 0.6),
    ("claude-sonnet", 3.0, 15.0),
    ("deepseek-chat", 0.27, 1.1),
];

/// A real decision over four candidates, as the gateway records for an `auto` request.
fn decision() -> Decision {
    let features = FeatureExtractor::new().extract(&Prompt::user(QUESTION));
    let candidates: Vec<Candidate<'_>> = MODELS
        .iter()
        .map(|&(name, input, output)| Candidate {
            name,
            weight: 1.0,
            price: Price { input_per_mtok: input, output_per_mtok: output },
            context_window: 128_000,
            capabilities: Capabilities { streaming: true, tools: true, vision: true, json: true },
            availability: Availability::Healthy,
            tags: &[],
        })
        .collect();
    let params = Params { profile: Profile::Balanced, seed: 7, ..Params::default() };
    match policy::decide(&features, &candidates, &Knowledge::default(), &params) {
        Ok(decision) => decision,
        Err(e) => panic!("the benchmark's decision failed: {e}"),
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn context() -> RequestContext {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    RequestContext {
        id: format!("0193a1b2-c3d4-7e5f-8071-{n:012x}"),
        received_at_ms: 1_795_741_950_000 + n as i64,
        api: Api::OpenAi,
        requested_model: "auto".into(),
        stream: false,
        prompt: CapturedPrompt::DigestOf("user: What is a hash map?".into()),
        message_count: 2,
    }
}

fn outcome(request: &RequestRecord) -> OutcomeRecord {
    OutcomeRecord {
        request_id: request.id.clone(),
        finished_at_ms: request.received_at_ms + 900,
        status: OutcomeStatus::Ok,
        http_status: 200,
        model: Some(request.chosen_model.clone()),
        deployment: Some(format!("{}#1", request.chosen_model)),
        latency_ms: 900,
        ttft_ms: None,
        input_tokens: 62,
        output_tokens: 41,
        cost_usd: 0.000_034,
        error_kind: None,
        error_message: None,
        attempts: vec![Attempt {
            model: request.chosen_model.clone(),
            deployment: format!("{}#1", request.chosen_model),
            error_kind: None,
            duration_ms: 900,
        }],
    }
}

/// A request and its outcome, as one answered request leaves them.
fn pair(decision: &Decision) -> [Record; 2] {
    let request = match RequestRecord::from_decision(context(), decision) {
        Ok(request) => request,
        Err(e) => panic!("cannot build the record: {e}"),
    };
    let outcome = outcome(&request);
    [request.into(), outcome.into()]
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => panic!("no runtime: {e}"),
    }
}

/// A migrated store in a fresh SQLite file.
fn sqlite_store(runtime: &tokio::runtime::Runtime) -> (Store, tempfile::TempDir) {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("no temporary directory: {e}"),
    };
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = runtime.block_on(async {
        let store = Store::connect(&url).await?;
        store.migrate().await?;
        Ok::<_, router_store::StoreError>(store)
    });
    match store {
        Ok(store) => (store, dir),
        Err(e) => panic!("cannot open the store: {e}"),
    }
}

/// What the request path pays: the record of a routed request, features and ranking
/// serialised.
#[divan::bench]
fn request_record_from_decision(bencher: Bencher) {
    let decision = decision();
    bencher
        .with_inputs(context)
        .bench_values(|context| RequestRecord::from_decision(context, black_box(&decision)));
}

/// What the request path pays to hand both records of an answered request to the writer
/// (which writes them in the background meanwhile).
#[divan::bench]
fn enqueue_answered_request(bencher: Bencher) {
    let runtime = runtime();
    let (store, _dir) = sqlite_store(&runtime);
    let options = WriterOptions { capacity: 1 << 20, ..WriterOptions::default() };
    let (writer, task) = runtime.block_on(async { spawn_writer(store, options) });
    let decision = decision();
    bencher.with_inputs(|| pair(&decision)).bench_values(|records| {
        for record in records {
            if writer.try_send(record).is_err() {
                panic!("the writer's queue is full");
            }
        }
    });
    runtime.block_on(task.shutdown());
}

/// One transaction of the batching writer: requests and outcomes of answered requests,
/// written in multi-row inserts to a SQLite file.
#[divan::bench(args = [16, 128, 512])]
fn write_batch_sqlite(bencher: Bencher, answered: usize) {
    let runtime = runtime();
    let (store, _dir) = sqlite_store(&runtime);
    let decision = decision();
    bencher
        .counter(ItemsCount::new(answered * 2))
        .with_inputs(|| (0..answered).flat_map(|_| pair(&decision)).collect::<Vec<Record>>())
        .bench_refs(|records| {
            if let Err(e) = runtime.block_on(store.write_batch(records)) {
                panic!("the batch failed: {e}");
            }
        });
    runtime.block_on(store.close());
}
