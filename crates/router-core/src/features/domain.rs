//! Domain classification: a compact linear softmax model over hashed features.
//!
//! The features (`Scan`) are word unigrams and bigrams, character trigrams of words, CJK
//! character unigrams and bigrams, multilingual cue words, symbols and the shape of the text
//! (code fences, formulas, lists, a pasted block). Each is hashed into one of `2^bits`
//! buckets; the model holds one weight per bucket and domain, plus a bias per domain. Scoring
//! a query is a few hundred additions, with no allocation. A few cheap rules (source code,
//! LaTeX, a translation verb naming a language) add fixed offsets, in training as in use.
//!
//! The built-in model ([`DomainModel::builtin`]) is trained, deterministically, from the
//! examples shipped in `data/domain_train.jsonl` the first time it is asked for (tens of
//! milliseconds), then shared. Training at start-up rather than committing weights keeps
//! the examples the single source of truth: there is no binary file to fall out of date.
//! [`DomainModel::train`], [`DomainModel::to_bytes`] and [`DomainModel::from_bytes`] let a
//! deployment train on its own examples and load the result.

mod training;
mod weights;

use std::sync::{Arc, OnceLock};

pub use training::{DataError, LabelledExample, TrainOptions};
use weights::Weights;

use super::scan::Scan;
use super::{Domain, DomainGuess};

const CLASSES: usize = Domain::ALL.len();

/// The examples the built-in model is trained on: written for this project, English and
/// Chinese in about equal measure with some Japanese, Korean, French, German and Spanish.
const BUILTIN_EXAMPLES: &str = include_str!("../../data/domain_train.jsonl");

/// Version of the feature extraction in `Scan` and of the rules. Stored in serialised
/// models, because weights learned over one feature layout are meaningless over another:
/// bump it whenever either changes what a text turns into.
const FEATURE_VERSION: u8 = 1;
const MAGIC: &[u8; 4] = b"LRDM";
const FORMAT_VERSION: u8 = 1;

/// A trained domain classifier.
#[derive(Clone, PartialEq)]
pub struct DomainModel {
    bits: u8,
    /// Row-major: `weights[bucket * CLASSES + domain]`.
    weights: Weights,
    bias: [f32; CLASSES],
}

impl std::fmt::Debug for DomainModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = self.weights.chunks(CLASSES).filter(|row| row.iter().any(|&w| w != 0.0));
        f.debug_struct("DomainModel")
            .field("buckets", &(1usize << self.bits))
            .field("used_buckets", &used.count())
            .finish()
    }
}

/// Why bytes could not be read as a [`DomainModel`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("not a domain model (bad magic bytes)")]
    BadMagic,
    #[error("unsupported model format version {0} (this build reads {FORMAT_VERSION})")]
    UnsupportedFormat(u8),
    #[error(
        "the model was trained on feature layout {found}, this build extracts layout {expected}; \
         retrain it"
    )]
    FeatureLayout { found: u8, expected: u8 },
    #[error("the model has {0} classes, this build has {CLASSES} domains")]
    Classes(u8),
    #[error("bucket bits {0} out of range {min}..={max}", min = TrainOptions::MIN_BITS, max = TrainOptions::MAX_BITS)]
    Bits(u8),
    #[error("the model data ends early")]
    Truncated,
    #[error("bucket index {0} is out of range")]
    Bucket(u64),
    #[error("{0} bytes after the end of the model")]
    Trailing(usize),
}

impl DomainModel {
    /// The model trained on the shipped examples, built once per process and shared.
    pub fn builtin() -> Arc<DomainModel> {
        static BUILTIN: OnceLock<Arc<DomainModel>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                // The file is part of the build and a test parses it strictly; a line that
                // did not parse would only be missing from training.
                let examples: Vec<LabelledExample> = BUILTIN_EXAMPLES
                    .lines()
                    .filter_map(|line| serde_json::from_str(line).ok())
                    .collect();
                Arc::new(DomainModel::train(&examples, &TrainOptions::default()))
            })
            .clone()
    }

    /// The shipped training examples, parsed strictly.
    pub fn builtin_examples() -> Result<Vec<LabelledExample>, DataError> {
        LabelledExample::parse_jsonl(BUILTIN_EXAMPLES)
    }

    /// The domain of a text, with its probability and the runner-up.
    pub fn classify(&self, text: &str) -> DomainGuess {
        self.classify_scan(&Scan::of(text))
    }

    /// The probability of each domain, in [`Domain::ALL`] order.
    pub fn probabilities(&self, text: &str) -> [f32; CLASSES] {
        softmax(self.scan_logits(&Scan::of(text)))
    }

    fn scan_logits(&self, scan: &Scan) -> [f32; CLASSES] {
        let mut logits = self.logits(scan.features());
        for (l, r) in logits.iter_mut().zip(rules(scan)) {
            *l += r;
        }
        logits
    }

    pub(crate) fn classify_scan(&self, scan: &Scan) -> DomainGuess {
        let p = softmax(self.scan_logits(scan));
        let mut order = [0usize, 1, 2, 3, 4, 5, 6, 7];
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        DomainGuess {
            domain: Domain::ALL[order[0]],
            confidence: p[order[0]],
            runner_up: Some((Domain::ALL[order[1]], p[order[1]])),
        }
    }

    pub(crate) fn logits(&self, features: &[u64]) -> [f32; CLASSES] {
        let mut sums = [0f32; CLASSES];
        let shift = 64 - u32::from(self.bits);
        for &h in features {
            let row = (h >> shift) as usize * CLASSES;
            if let Some(w) = self.weights.get(row..row + CLASSES) {
                for (s, w) in sums.iter_mut().zip(w) {
                    *s += w;
                }
            }
        }
        let scale = feature_scale(features.len());
        let mut logits = self.bias;
        for (l, s) in logits.iter_mut().zip(sums) {
            *l += s * scale;
        }
        logits
    }

    /// The number of hash buckets is `2^bucket_bits`.
    pub fn bucket_bits(&self) -> u8 {
        self.bits
    }

    /// A compact binary form: a header, the biases, then only the buckets with a non-zero
    /// weight, each as a delta-coded index and its weights quantised to 16 bits per domain
    /// (relative error below 1/32767 of the largest weight of that domain).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut scales = [0f32; CLASSES];
        for row in self.weights.chunks_exact(CLASSES) {
            for (s, w) in scales.iter_mut().zip(row) {
                *s = s.max(w.abs());
            }
        }
        for s in &mut scales {
            *s = if *s > 0.0 { *s / f32::from(i16::MAX) } else { 1.0 };
        }
        let used: Vec<(usize, &[f32])> = self
            .weights
            .chunks_exact(CLASSES)
            .enumerate()
            .filter(|(_, row)| row.iter().any(|&w| w != 0.0))
            .collect();
        let mut out = Vec::with_capacity(64 + used.len() * (2 + 2 * CLASSES));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[FORMAT_VERSION, FEATURE_VERSION, self.bits, CLASSES as u8]);
        for b in self.bias.iter().chain(&scales) {
            out.extend_from_slice(&b.to_le_bytes());
        }
        write_varint(&mut out, used.len() as u64);
        let mut previous = 0usize;
        for (bucket, row) in used {
            write_varint(&mut out, (bucket - previous) as u64);
            previous = bucket;
            for (w, s) in row.iter().zip(&scales) {
                let q = (w / s).round().clamp(-f32::from(i16::MAX), f32::from(i16::MAX)) as i16;
                out.extend_from_slice(&q.to_le_bytes());
            }
        }
        out
    }

    /// Reads a model written by [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<DomainModel, ModelError> {
        let mut r = Reader(bytes);
        if r.take(4)? != MAGIC {
            return Err(ModelError::BadMagic);
        }
        let [format, features, bits, classes] = r.array::<4>()?;
        if format != FORMAT_VERSION {
            return Err(ModelError::UnsupportedFormat(format));
        }
        if features != FEATURE_VERSION {
            return Err(ModelError::FeatureLayout { found: features, expected: FEATURE_VERSION });
        }
        if usize::from(classes) != CLASSES {
            return Err(ModelError::Classes(classes));
        }
        if !(TrainOptions::MIN_BITS..=TrainOptions::MAX_BITS).contains(&bits) {
            return Err(ModelError::Bits(bits));
        }
        let mut bias = [0f32; CLASSES];
        for b in &mut bias {
            *b = f32::from_le_bytes(r.array()?);
        }
        let mut scales = [0f32; CLASSES];
        for s in &mut scales {
            *s = f32::from_le_bytes(r.array()?);
        }
        let buckets = 1u64 << bits;
        let mut weights = Weights::zeroed((buckets as usize) * CLASSES);
        let rows = r.varint()?;
        let mut bucket = 0u64;
        for i in 0..rows {
            let delta = r.varint()?;
            bucket = bucket.checked_add(delta).ok_or(ModelError::Bucket(u64::MAX))?;
            if bucket >= buckets || (i > 0 && delta == 0) {
                return Err(ModelError::Bucket(bucket));
            }
            let row = bucket as usize * CLASSES;
            for (c, s) in scales.iter().enumerate() {
                let q = i16::from_le_bytes(r.array()?);
                weights[row + c] = f32::from(q) * s;
            }
        }
        if !r.0.is_empty() {
            return Err(ModelError::Trailing(r.0.len()));
        }
        Ok(DomainModel { bits, weights, bias })
    }
}

/// Fixed logit offsets from cheap, reliable signals. Training sees the same offsets, so the
/// learned weights only model what the rules leave unexplained.
///
/// - Source code in the text (a fence, or several lines that parse as code) means the task
///   is about code, even when it says "translate" ("translate this Python to Go").
/// - LaTeX, or a formula with several operators, means mathematics.
/// - A translation verb naming a language, with no code around it, means translation.
pub(crate) fn rules(scan: &Scan) -> [f32; CLASSES] {
    use super::lexicon::Cue;
    let shape = &scan.shape;
    let mut offsets = [0f32; CLASSES];
    let code = shape.fences >= 2 || shape.code_lines >= 2;
    if code {
        offsets[Domain::Code.index()] += CODE_RULE;
        offsets[Domain::Translation.index()] -= CODE_RULE / 2.0;
    }
    if shape.latex >= 2 || (shape.math_ops >= 3 && shape.numbers >= 2) {
        offsets[Domain::Math.index()] += MATH_RULE;
    }
    if !code && scan.has(Cue::Translate) && scan.has(Cue::LanguageName) {
        offsets[Domain::Translation.index()] += TRANSLATE_RULE;
    }
    offsets
}

const CODE_RULE: f32 = 2.0;
const MATH_RULE: f32 = 1.0;
const TRANSLATE_RULE: f32 = 1.5;

/// Features are weighted `1/sqrt(n)`: a long prompt's evidence grows with its length, but
/// not so fast that every long prompt looks certain.
fn feature_scale(n: usize) -> f32 {
    1.0 / (n.max(1) as f32).sqrt()
}

fn softmax(logits: [f32; CLASSES]) -> [f32; CLASSES] {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut p = logits.map(|l| (l - max).exp());
    let sum: f32 = p.iter().sum();
    for x in &mut p {
        *x /= sum;
    }
    p
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        if self.0.len() < n {
            return Err(ModelError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ModelError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn varint(&mut self) -> Result<u64, ModelError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let [b] = self.array::<1>()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ModelError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_model() -> DomainModel {
        let examples: Vec<LabelledExample> = [
            ("write a python function", Domain::Code),
            ("fix this bug in my rust code", Domain::Code),
            ("solve the equation x + 2 = 5", Domain::Math),
            ("what is the integral of x squared", Domain::Math),
            ("hello how are you", Domain::Chat),
            ("hi there, nice to meet you", Domain::Chat),
        ]
        .into_iter()
        .map(|(text, domain)| LabelledExample { text: text.into(), domain })
        .collect();
        DomainModel::train(&examples, &TrainOptions { bucket_bits: 12, ..TrainOptions::default() })
    }

    #[test]
    fn bytes_round_trip_keeps_predictions() {
        let model = tiny_model();
        let bytes = model.to_bytes();
        let back = DomainModel::from_bytes(&bytes).unwrap();
        assert_eq!(back.bucket_bits(), 12);
        for text in ["write a rust function", "integral of x", "hello there", "something else"] {
            let (a, b) = (model.probabilities(text), back.probabilities(text));
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-3, "{text}: {a:?} vs {b:?}");
            }
        }
        // Re-serialising the loaded model is stable.
        assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn corrupt_bytes_are_rejected() {
        let bytes = tiny_model().to_bytes();
        assert_eq!(DomainModel::from_bytes(b"nope"), Err(ModelError::BadMagic));
        assert_eq!(DomainModel::from_bytes(&bytes[..bytes.len() - 1]), Err(ModelError::Truncated));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(DomainModel::from_bytes(&longer), Err(ModelError::Trailing(1)));
        let mut other_layout = bytes.clone();
        other_layout[5] = FEATURE_VERSION + 1;
        assert!(matches!(
            DomainModel::from_bytes(&other_layout),
            Err(ModelError::FeatureLayout { .. })
        ));
        let mut bad_bits = bytes;
        bad_bits[6] = 40;
        assert_eq!(DomainModel::from_bytes(&bad_bits), Err(ModelError::Bits(40)));
    }

    #[test]
    fn probabilities_are_a_distribution() {
        let p = tiny_model().probabilities("anything at all");
        let sum: f32 = p.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
        assert!(p.iter().all(|&x| (0.0..=1.0).contains(&x)));
    }
}
