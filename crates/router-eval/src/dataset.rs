//! A dataset in memory: prompts, models, and each model's known result on each prompt.

use router_core::Price;
use serde::Serialize;

/// One prompt of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub id: String,
    /// The user turns, in order; the last is what routing describes. (The shared sets have
    /// no assistant turns; MT-Bench's second turn is a second user turn.)
    pub turns: Vec<String>,
    /// ISO 639-1 code, when the dataset labels it (the router still detects its own).
    pub language: Option<String>,
    /// The benchmark or part of it the prompt comes from, when labelled.
    pub subset: Option<String>,
}

impl Item {
    /// Characters in all turns.
    pub fn chars(&self) -> usize {
        self.turns.iter().map(|t| t.chars().count()).sum()
    }
}

/// A model's known result on one prompt.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Graded {
    /// Quality in [0, 1] (scores on another scale are mapped linearly onto it).
    pub quality: f64,
    /// What the call cost, in US dollars (recorded, or priced from tokens).
    pub cost_usd: f64,
    /// Length of the answer in tokens, when the data says.
    pub output_tokens: Option<u32>,
}

/// Prompts × models, with each model's price as a deployment would configure it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub name: String,
    pub models: Vec<String>,
    /// The price the router is told for each model (parallel to `models`); scoring uses
    /// the per-call costs in the results, not these.
    pub prices: Vec<Price>,
    pub items: Vec<Item>,
    /// `items.len() × models.len()`, row-major.
    results: Vec<Option<Graded>>,
    /// How the data was read: scale, where costs and prices came from, what was skipped.
    pub notes: Vec<String>,
    /// True when every model costs the same (the data has no costs): only quality is
    /// compared then.
    pub equal_costs: bool,
}

impl Dataset {
    /// A dataset from its parts; `results[i][m]` is model `m`'s result on item `i`.
    pub fn new(
        name: impl Into<String>,
        models: Vec<String>,
        prices: Vec<Price>,
        items: Vec<Item>,
        results: Vec<Vec<Option<Graded>>>,
    ) -> Dataset {
        let width = models.len();
        let mut flat = Vec::with_capacity(items.len() * width);
        for i in 0..items.len() {
            let row = results.get(i);
            for m in 0..width {
                flat.push(row.and_then(|r| r.get(m).copied().flatten()));
            }
        }
        let mut prices = prices;
        prices.resize(width, Price::default());
        Dataset {
            name: name.into(),
            models,
            prices,
            items,
            results: flat,
            notes: Vec::new(),
            equal_costs: false,
        }
    }

    pub fn result(&self, item: usize, model: usize) -> Option<&Graded> {
        self.results.get(item * self.models.len() + model)?.as_ref()
    }

    /// True when every model has a result on this item.
    pub fn is_complete(&self, item: usize) -> bool {
        (0..self.models.len()).all(|m| self.result(item, m).is_some())
    }

    pub fn model_index(&self, name: &str) -> Option<usize> {
        self.models.iter().position(|m| m == name)
    }

    /// The dataset restricted to the items `keep` accepts (the Chinese part, one subset).
    pub fn filtered(&self, keep: impl Fn(&Item) -> bool) -> Dataset {
        let width = self.models.len();
        let mut items = Vec::new();
        let mut results = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            if keep(item) {
                items.push(item.clone());
                results.extend_from_slice(&self.results[i * width..(i + 1) * width]);
            }
        }
        Dataset {
            name: self.name.clone(),
            models: self.models.clone(),
            prices: self.prices.clone(),
            items,
            results,
            notes: self.notes.clone(),
            equal_costs: self.equal_costs,
        }
    }
}
