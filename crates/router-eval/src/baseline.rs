//! What a router has to beat: every single model, random mixes of the best and the
//! cheapest, and the oracle.

use serde::Serialize;

use crate::dataset::Dataset;
use crate::metrics::XY;

/// One operating point: a router setting, a single model, a mix or the oracle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub label: String,
    /// The cost weight of a sweep point (`None` for profiles and baselines).
    pub cost_weight: Option<f64>,
    /// Mean quality per prompt, in [0, 1].
    pub quality: f64,
    /// Mean cost per call in US dollars.
    pub cost_usd: f64,
    /// Share of the prompts sent to each model, largest first; models with no traffic are
    /// left out.
    pub share: Vec<(String, f64)>,
}

impl Point {
    pub fn xy(&self) -> XY {
        XY { cost: self.cost_usd, quality: self.quality }
    }
}

/// Accumulates the prompts routed to models into a [`Point`].
#[derive(Debug, Clone)]
pub struct Tally {
    quality: f64,
    cost: f64,
    n: usize,
    per_model: Vec<usize>,
}

impl Tally {
    pub fn new(models: usize) -> Tally {
        Tally { quality: 0.0, cost: 0.0, n: 0, per_model: vec![0; models] }
    }

    pub fn add(&mut self, model: usize, quality: f64, cost_usd: f64) {
        self.quality += quality;
        self.cost += cost_usd;
        self.n += 1;
        if let Some(c) = self.per_model.get_mut(model) {
            *c += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn quality(&self) -> f64 {
        if self.n == 0 { 0.0 } else { self.quality / self.n as f64 }
    }

    pub fn cost(&self) -> f64 {
        if self.n == 0 { 0.0 } else { self.cost / self.n as f64 }
    }

    pub fn point(
        &self,
        label: impl Into<String>,
        cost_weight: Option<f64>,
        models: &[String],
    ) -> Point {
        let n = self.n.max(1) as f64;
        let mut share: Vec<(String, f64)> = self
            .per_model
            .iter()
            .zip(models)
            .filter(|(c, _)| **c > 0)
            .map(|(c, m)| (m.clone(), *c as f64 / n))
            .collect();
        share.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Point {
            label: label.into(),
            cost_weight,
            quality: self.quality(),
            cost_usd: self.cost(),
            share,
        }
    }
}

/// Each model alone on `items` (which must be complete).
pub fn singles(dataset: &Dataset, items: &[usize]) -> Vec<Point> {
    (0..dataset.models.len())
        .map(|m| {
            let mut tally = Tally::new(dataset.models.len());
            for &i in items {
                if let Some(g) = dataset.result(i, m) {
                    tally.add(m, g.quality, g.cost_usd);
                }
            }
            tally.point(dataset.models[m].clone(), None, &dataset.models)
        })
        .collect()
}

/// Per prompt, the best result, and of the models that reach it the cheapest: an upper
/// bound no router reaches, and the cheapest way to reach it.
pub fn oracle(dataset: &Dataset, items: &[usize]) -> Point {
    let mut tally = Tally::new(dataset.models.len());
    for &i in items {
        let best = (0..dataset.models.len())
            .filter_map(|m| dataset.result(i, m).map(|g| (m, g)))
            .min_by(|(_, a), (_, b)| {
                b.quality.total_cmp(&a.quality).then(a.cost_usd.total_cmp(&b.cost_usd))
            });
        if let Some((m, g)) = best {
            tally.add(m, g.quality, g.cost_usd);
        }
    }
    tally.point("oracle", None, &dataset.models)
}

/// The best single model (highest quality; the cheaper of equals) and the cheapest.
pub fn best_and_cheapest(singles: &[Point]) -> Option<(&Point, &Point)> {
    let best = singles
        .iter()
        .min_by(|a, b| b.quality.total_cmp(&a.quality).then(a.cost_usd.total_cmp(&b.cost_usd)))?;
    let cheapest = singles
        .iter()
        .min_by(|a, b| a.cost_usd.total_cmp(&b.cost_usd).then(b.quality.total_cmp(&a.quality)))?;
    Some((best, cheapest))
}

/// Sending each prompt to the best model with probability `p` and to the cheapest
/// otherwise, for `p` = 0, 1/steps, …, 1: expected values, so no sampling noise.
pub fn mixes(best: &Point, cheapest: &Point, steps: usize) -> Vec<Point> {
    let steps = steps.max(1);
    (0..=steps)
        .map(|k| {
            let p = k as f64 / steps as f64;
            let mut share = Vec::new();
            if p > 0.0 {
                share.push((best.label.clone(), p));
            }
            if p < 1.0 {
                share.push((cheapest.label.clone(), 1.0 - p));
            }
            Point {
                label: format!("mix {:.0}% {}", p * 100.0, best.label),
                cost_weight: None,
                quality: p * best.quality + (1.0 - p) * cheapest.quality,
                cost_usd: p * best.cost_usd + (1.0 - p) * cheapest.cost_usd,
                share,
            }
        })
        .collect()
}
