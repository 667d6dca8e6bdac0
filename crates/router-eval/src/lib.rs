//! Routing quality against cost, measured the way the field measures it (RouterBench,
//! RouteLLM): replay prompts whose per-model results are known through the router the
//! gateway runs, and compare it with every single model, random mixes and the oracle.
//!
//! `router-eval` owns the evaluation, and only that:
//!
//! - the dataset format and its loaders, including the layouts of the shared evaluation
//!   sets ([`load`], [`dataset`], [`prices`]);
//! - the deterministic train/test [`split`];
//! - the [`replay`] of prompts through the real [`FeatureExtractor`](router_core::FeatureExtractor),
//!   [`Knowledge`](router_core::Knowledge) and [`policy`](router_core::policy), offline
//!   (warm-started from a training part) and online (learning only what it chose);
//! - the [`baseline`]s and the [`metrics`] (the quality–cost hull, AIQ, APGR, CPT, the
//!   hull check);
//! - the [`judge`] against the policy, through a trait the caller implements with I/O;
//! - the [`report`] (JSON-serialisable) and its [`plot`] (SVG).
//!
//! It decides nothing itself: every routing decision is `router_core`'s.

pub mod baseline;
mod csv;
pub mod dataset;
pub mod error;
pub mod judge;
pub mod load;
pub mod metrics;
pub mod plot;
pub mod prices;
mod pylist;
pub mod replay;
pub mod report;
pub mod split;

pub use dataset::{Dataset, Graded, Item};
pub use error::{EvalError, LoadError};
pub use load::{Layout, LoadOptions, load, load_dir};
pub use prices::PriceTable;
pub use report::{Estimator, EvalOptions, Report, evaluate};
pub use split::Split;
