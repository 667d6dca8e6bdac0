//! Latency percentiles of the whole decision (features, memory recall, policy) for a ~2,000-token prompt
//! and eight candidates, measured one decision at a time — the figure the gateway's budget
//! is stated in (p99 ≤ 50 µs).
//!
//! `cargo run --release -p router-core --example decision_latency [iterations] [evict_mb] [sleep_ms]`
//!
//! With `evict_mb`, that many megabytes are written between two decisions (not timed), as
//! the other work of a gateway — its network stack, other requests, other processes on the
//! core — does between two of its requests: the decision then finds its tables and code out
//! of the nearer caches, as it does in the gateway.
//!
//! With `sleep_ms`, the thread sleeps that long before each decision, as a gateway's serving
//! thread does between requests when traffic is light. On a virtual machine whose idle vCPU
//! is halted, the host may run other work on the core meanwhile, and the decision then finds
//! little of its code and tables in the core's caches.

#[path = "../benches/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use router_core::memory::Sketch;
use router_core::policy::{self, Params};
use router_core::{FeatureExtractor, Profile, Prompt};
use support::{candidates, knowledge, long_prompt};

fn main() {
    let iterations: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let evict_mb: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(0);
    let sleep_ms: u64 = std::env::args().nth(3).and_then(|n| n.parse().ok()).unwrap_or(0);
    let mut scratch = vec![0u8; evict_mb << 20];
    let extractor = FeatureExtractor::new();
    let text = long_prompt();
    let candidates = candidates();
    let knowledge = knowledge();
    let params =
        Params { profile: Profile::Balanced, exploration: 0.3, seed: 7, ..Params::default() };
    let mut samples = Vec::with_capacity(iterations);
    // Sleeping runs take a pause each: a shorter warm-up keeps them short.
    let warmup = if sleep_ms > 0 { 100 } else { 1_000 };
    for i in 0..iterations + warmup {
        // One write a cache line.
        for (n, line) in scratch.chunks_mut(64).enumerate() {
            line[0] = line[0].wrapping_add(n as u8);
        }
        black_box(&mut scratch);
        if sleep_ms > 0 {
            std::thread::sleep(Duration::from_millis(sleep_ms));
        }
        let started = Instant::now();
        let prompt = Prompt::user(black_box(&text));
        let features = extractor.extract(&prompt);
        let recall = knowledge.recall(&Sketch::of(prompt.last_user_text()));
        let decision =
            policy::decide_recalled(&features, &recall, &candidates, &knowledge, &params);
        black_box(decision.ok());
        // The first ones warm caches and the branch predictor.
        if i >= warmup {
            samples.push(started.elapsed().as_nanos() as u64);
        }
    }
    samples.sort_unstable();
    let at = |q: f64| {
        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)] as f64 / 1000.0
    };
    println!(
        "decision (features + policy), ~{} prompt tokens, {} candidates, {} runs, {evict_mb} MB written and {sleep_ms} ms asleep between: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        extractor.extract(&Prompt::user(&text)).prompt_tokens,
        candidates.len(),
        samples.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        at(1.0)
    );
}
