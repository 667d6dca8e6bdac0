//! The whole decision on the policy path: features of the query, estimates of every
//! candidate from learned state, utility and ranking — what the gateway does for every
//! `auto` request before it calls anyone.
//!
//! `cargo bench -p router-core --bench decision`

mod support;

use divan::{Bencher, black_box};
use router_core::memory::Sketch;
use router_core::policy::{self, Params};
use router_core::{FeatureExtractor, Profile, Prompt};
use support::{candidates, knowledge, long_prompt};

fn main() {
    divan::main();
}

#[divan::bench]
fn features_2k_tokens(bencher: Bencher) {
    let extractor = FeatureExtractor::new();
    let text = long_prompt();
    bencher.bench(|| extractor.extract(black_box(&Prompt::user(&text))));
}

#[divan::bench]
fn policy_only_8_candidates(bencher: Bencher) {
    let extractor = FeatureExtractor::new();
    let text = long_prompt();
    let features = extractor.extract(&Prompt::user(&text));
    let candidates = candidates();
    let knowledge = knowledge();
    let params =
        Params { profile: Profile::Balanced, exploration: 0.3, seed: 7, ..Params::default() };
    bencher.bench(|| policy::decide(black_box(&features), &candidates, &knowledge, &params));
}

#[divan::bench]
fn whole_decision_2k_tokens_8_candidates(bencher: Bencher) {
    let extractor = FeatureExtractor::new();
    let text = long_prompt();
    let candidates = candidates();
    let knowledge = knowledge();
    let params =
        Params { profile: Profile::Balanced, exploration: 0.3, seed: 7, ..Params::default() };
    bencher.bench(|| {
        let prompt = Prompt::user(black_box(&text));
        let features = extractor.extract(&prompt);
        let recall = knowledge.recall(&Sketch::of(prompt.last_user_text()));
        policy::decide_recalled(&features, &recall, &candidates, &knowledge, &params)
    });
}
