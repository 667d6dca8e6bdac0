//! The routing decision, and nothing else.
//!
//! `router-core` owns everything that decides which model answers a request: the query's
//! [features](features) (language, domain, complexity, token estimate, needs), the
//! [candidates](candidate) a request may go to, the [policy](policy) that ranks them, the
//! [learned state](learning) that every outcome and piece of feedback updates, and the
//! [judge](judge)'s prompt, schema and answer parsing.
//!
//! It is pure on purpose: no I/O, no async, no clock reads or randomness it is not handed.
//! That keeps the decision testable and benchmarkable on its own, and lets the gateway, the
//! CLI's `analyze` and the offline evaluation all run the very same code. The one call it
//! makes to the operating system is a hint about memory: the domain model's table asks to
//! be mapped with huge pages, which changes how fast it is read, never what is read
//! (`features/domain/weights.rs`).

pub mod candidate;
pub mod decision;
mod evidence;
pub mod features;
pub mod judge;
pub mod learning;
pub mod memory;
pub mod policy;

pub use candidate::{Availability, Candidate, Capabilities, Price};
pub use decision::{Decision, Estimate, Exclusion, Profile, RankedCandidate, Source};
pub use features::{
    Band, Complexity, Domain, DomainGuess, FeatureExtractor, Features, Language, LanguageGuess,
    Needs, Prompt, PromptMessage, Role,
};
pub use features::{DomainModel, LabelledExample, TrainOptions};
pub use learning::{Context, Knowledge, LearningConfig, Outcome, Prior};
