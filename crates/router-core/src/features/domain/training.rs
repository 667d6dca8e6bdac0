//! Training the domain model: multinomial logistic regression by stochastic gradient
//! descent over the hashed features, with class-balanced example weights.
//!
//! Training is deterministic: the example order is shuffled by a seeded generator, all
//! arithmetic is sequential, and the same examples and options give the same model
//! bit for bit on a given platform.

use serde::{Deserialize, Serialize};

use super::{CLASSES, DomainModel, Scan};
use crate::features::Domain;

/// One training example: `{"text": "...", "domain": "code"}` in JSONL files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelledExample {
    pub text: String,
    pub domain: Domain,
}

/// Why a training file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("the file has no examples")]
    Empty,
}

impl LabelledExample {
    /// Parses JSONL: one example a line; blank lines are skipped. The first bad line is an
    /// error naming its line number.
    pub fn parse_jsonl(text: &str) -> Result<Vec<LabelledExample>, DataError> {
        let mut examples = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let example = serde_json::from_str(line)
                .map_err(|e| DataError::Line { line: i + 1, message: e.to_string() })?;
            examples.push(example);
        }
        if examples.is_empty() {
            return Err(DataError::Empty);
        }
        Ok(examples)
    }
}

/// How to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// The model has `2^bucket_bits` hash buckets; clamped to
    /// [`MIN_BITS`](Self::MIN_BITS)..=[`MAX_BITS`](Self::MAX_BITS). More buckets mean fewer
    /// collisions but a larger, less cache-friendly model.
    pub bucket_bits: u8,
    /// Passes over the examples.
    pub epochs: u32,
    /// Initial step size; decays linearly to a tenth of it over the epochs.
    pub learning_rate: f32,
    /// L2 penalty on the weights an example touches.
    pub l2: f32,
    /// Weight examples so every domain counts equally however many examples it has. Off by
    /// default: the shipped examples' proportions are a deliberate prior (people ask for
    /// writing far more often than for logic puzzles), and balancing them measurably hurt.
    pub balance_classes: bool,
    /// Seed of the shuffle.
    pub seed: u64,
}

impl TrainOptions {
    pub const MIN_BITS: u8 = 8;
    pub const MAX_BITS: u8 = 20;
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            bucket_bits: 16,
            epochs: 12,
            learning_rate: 0.6,
            l2: 1e-3,
            balance_classes: false,
            seed: 0x6c6c_6d72_6f75_7465,
        }
    }
}

/// A featurised example: bucket indices, feature scale, class and example weight.
struct Row {
    buckets: Vec<u32>,
    /// The rules' fixed offsets for this example.
    offsets: [f32; CLASSES],
    scale: f32,
    class: usize,
    weight: f32,
}

impl DomainModel {
    /// Trains a model. With no examples the model is untrained and predicts a uniform
    /// distribution.
    pub fn train(examples: &[LabelledExample], options: &TrainOptions) -> DomainModel {
        let bits = options.bucket_bits.clamp(TrainOptions::MIN_BITS, TrainOptions::MAX_BITS);
        let shift = 64 - u32::from(bits);
        let mut counts = [0usize; CLASSES];
        for e in examples {
            counts[e.domain.index()] += 1;
        }
        let present = counts.iter().filter(|&&c| c > 0).count().max(1);
        let rows: Vec<Row> = examples
            .iter()
            .map(|e| {
                let scan = Scan::of(&e.text);
                let features = scan.features();
                let class = e.domain.index();
                let weight = if options.balance_classes {
                    examples.len() as f32 / (present * counts[class]) as f32
                } else {
                    1.0
                };
                Row {
                    buckets: features.iter().map(|&h| (h >> shift) as u32).collect(),
                    offsets: super::rules(&scan),
                    scale: super::feature_scale(features.len()),
                    class,
                    weight,
                }
            })
            .collect();

        let mut model = DomainModel {
            bits,
            weights: super::Weights::zeroed((1usize << bits) * CLASSES),
            bias: [0.0; CLASSES],
        };
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut rng = SplitMix64(options.seed);
        let epochs = options.epochs.max(1);
        for epoch in 0..epochs {
            shuffle(&mut order, &mut rng);
            let progress = epoch as f32 / epochs as f32;
            let lr = options.learning_rate * (1.0 - 0.9 * progress);
            for &i in &order {
                model.step(&rows[i], lr, options.l2);
            }
        }
        model
    }

    fn step(&mut self, row: &Row, lr: f32, l2: f32) {
        let mut logits = self.bias;
        let mut sums = [0f32; CLASSES];
        for &b in &row.buckets {
            let w = &self.weights[b as usize * CLASSES..][..CLASSES];
            for (s, w) in sums.iter_mut().zip(w) {
                *s += w;
            }
        }
        for ((l, s), o) in logits.iter_mut().zip(sums).zip(row.offsets) {
            *l += s * row.scale + o;
        }
        let p = super::softmax(logits);
        // Gradient of the cross-entropy with respect to the logits.
        let mut g = p;
        g[row.class] -= 1.0;
        for x in &mut g {
            *x *= row.weight;
        }
        for (b, gc) in self.bias.iter_mut().zip(g) {
            *b -= lr * gc;
        }
        let decay = 1.0 - lr * l2;
        for &b in &row.buckets {
            let w = &mut self.weights[b as usize * CLASSES..][..CLASSES];
            for (w, gc) in w.iter_mut().zip(g) {
                *w = *w * decay - lr * gc * row.scale;
            }
        }
    }
}

/// A small, well-mixed, seedable generator: enough for shuffling, and ours, so the order
/// (and the model) cannot change under a dependency upgrade.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        crate::features::text::mix(self.0)
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

fn shuffle(items: &mut [usize], rng: &mut SplitMix64) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i + 1);
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reports_the_bad_line() {
        let text =
            "{\"text\":\"hi\",\"domain\":\"chat\"}\n\n{\"text\":\"x\",\"domain\":\"cooking\"}\n";
        match LabelledExample::parse_jsonl(text) {
            Err(DataError::Line { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a line error, got {other:?}"),
        }
        assert_eq!(LabelledExample::parse_jsonl("\n \n"), Err(DataError::Empty));
        let ok = LabelledExample::parse_jsonl("{\"text\":\"hi\",\"domain\":\"chat\"}").unwrap();
        assert_eq!(ok, vec![LabelledExample { text: "hi".into(), domain: Domain::Chat }]);
    }

    #[test]
    fn training_is_deterministic_and_seed_dependent() {
        let examples: Vec<LabelledExample> = [
            ("sort a list in python", Domain::Code),
            ("compute the derivative", Domain::Math),
            ("good morning!", Domain::Chat),
            ("write a poem", Domain::Writing),
        ]
        .into_iter()
        .map(|(t, d)| LabelledExample { text: t.into(), domain: d })
        .collect();
        let options = TrainOptions { bucket_bits: 10, ..TrainOptions::default() };
        let a = DomainModel::train(&examples, &options);
        let b = DomainModel::train(&examples, &options);
        assert_eq!(a.to_bytes(), b.to_bytes());
        let c = DomainModel::train(&examples, &TrainOptions { seed: 7, ..options });
        assert_ne!(a.to_bytes(), c.to_bytes());
    }

    #[test]
    fn an_empty_training_set_gives_a_uniform_model() {
        let model = DomainModel::train(&[], &TrainOptions { bucket_bits: 8, ..Default::default() });
        let p = model.probabilities("anything");
        assert!(p.iter().all(|&x| (x - 1.0 / CLASSES as f32).abs() < 1e-6));
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut items: Vec<usize> = (0..100).collect();
        shuffle(&mut items, &mut SplitMix64(1));
        assert_ne!(items, (0..100).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
    }
}
