//! A bounded memory of past queries and how each model did on them, for per-query
//! estimates finer than the (domain, language, band) contexts.
//!
//! Traffic through a gateway is rarely uniform: one application sends the same template
//! with a different question thousands of times, another asks about one codebase all day.
//! The learned contexts cannot tell those apart (both are "reasoning/en/medium"), but the
//! text can. Each query is reduced to a [`Sketch`]: a small dense vector of hashed words
//! and CJK characters from the head and the tail of the last user message (the head
//! carries the template or system framing, the tail the actual question). The memory keeps
//! a capped number of *regions* — running centroids of sketches that came close to each
//! other — and, per region, the same kind of weighted quality evidence per model that the
//! contexts keep. A query's [`Recall`] is what its nearest regions say about every model,
//! weighted by similarity; [`Knowledge`](crate::Knowledge) blends it with the context
//! posterior in proportion to the evidence behind it.
//!
//! Everything is bounded for the request path: a sketch reads at most two windows of the
//! text, and a recall is one pass over at most `capacity` centroids of [`DIMENSIONS`]
//! floats (a few microseconds at the default capacity).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::evidence::Evidence;
use crate::features::text::{head as leading, tail as trailing};

/// Length of a sketch vector.
pub const DIMENSIONS: usize = 128;

/// Bytes read from each end of the text; a 2,000-token prompt costs no more than a short one.
const WINDOW: usize = 640;

/// Tunables of the memory. `Copy`, so it can live in [`LearningConfig`](crate::LearningConfig).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryConfig {
    /// Regions kept at most; the least recently fed one makes room for a new one.
    pub capacity: usize,
    /// Cosine similarity above which a query joins its nearest region instead of opening a
    /// new one. Lower values learn per template or topic, higher values per question.
    pub join_similarity: f32,
    /// Regions below this similarity say nothing about a query.
    pub min_similarity: f32,
    /// Regions a recall reads at most.
    pub neighbours: usize,
    /// Pseudo-observations the context posterior counts for against the memory's evidence:
    /// the memory decides once the neighbours hold clearly more evidence than this.
    pub strength: f64,
    /// Members a centroid averages over at most, so that it follows drifting traffic.
    pub centroid_memory: f64,
    /// Evidence kept per model and region at most; older evidence fades proportionally
    /// beyond it, so a region shows a model's change as the contexts do.
    pub max_evidence: f64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            capacity: 256,
            join_similarity: 0.8,
            min_similarity: 0.6,
            neighbours: 6,
            strength: 8.0,
            centroid_memory: 200.0,
            max_evidence: 400.0,
        }
    }
}

/// A query reduced to a unit vector of hashed text features. Cheap to copy around with the
/// decision, so that feedback arriving later can be remembered under the same sketch.
#[derive(Clone, Copy, PartialEq)]
pub struct Sketch([f32; DIMENSIONS]);

impl std::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sketch({:.3}, {:.3}, ..)", self.0[0], self.0[1])
    }
}

impl Sketch {
    /// The sketch of a query's text (the last user message, as features use).
    ///
    /// The text is read as two windows, each normalised before they are added: its head
    /// (where a template or framing sits) and its last paragraph (where the actual question
    /// usually is), so that a long shared template cannot drown the question that follows
    /// it, nor the other way round. Text of one short paragraph is hashed once.
    pub fn of(text: &str) -> Sketch {
        let text = text.trim();
        let head = leading(text, WINDOW);
        let tail = last_paragraph(text);
        let mut v = [0.0f32; DIMENSIONS];
        hash_into(head, &mut v);
        normalise(&mut v);
        if tail.len() < text.len() {
            let mut tail_v = [0.0f32; DIMENSIONS];
            hash_into(tail, &mut tail_v);
            normalise(&mut tail_v);
            for (a, b) in v.iter_mut().zip(tail_v) {
                *a += b;
            }
            normalise(&mut v);
        }
        Sketch(v)
    }

    /// Cosine similarity with another sketch.
    pub fn similarity(&self, other: &Sketch) -> f32 {
        dot(&self.0, &other.0)
    }

    /// True for text with no words at all (the zero vector): such a sketch is never stored.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|x| *x == 0.0)
    }

    /// A quarter of the size, for keeping with an answer until its feedback arrives.
    pub fn compact(&self) -> CompactSketch {
        let max = self.0.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 0.0 };
        let mut values = [0i8; DIMENSIONS];
        if scale > 0.0 {
            for (q, x) in values.iter_mut().zip(self.0) {
                *q = round_half_away(x / scale).clamp(-127, 127) as i8;
            }
        }
        CompactSketch { scale, values }
    }
}

/// `x.round()` as an integer. Baseline x86-64 has no rounding instruction, so `f32::round`
/// is a library call, 128 of them for every answered request's sketch; adding ±½ in `f64` is
/// exact for any `f32`, and the cast then truncates toward zero, which rounds half away
/// from zero as `round` does.
fn round_half_away(x: f32) -> i32 {
    let x = f64::from(x);
    (x + 0.5f64.copysign(x)) as i32
}

/// A [`Sketch`] quantised to one byte per dimension (similarities change by well under
/// 1%): what a gateway keeps per answered request so that feedback arriving later can be
/// remembered under the query's sketch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactSketch {
    scale: f32,
    values: [i8; DIMENSIONS],
}

impl CompactSketch {
    pub fn expand(&self) -> Sketch {
        let mut v = [0.0f32; DIMENSIONS];
        for (x, q) in v.iter_mut().zip(self.values) {
            *x = f32::from(q) * self.scale;
        }
        normalise(&mut v);
        Sketch(v)
    }
}

/// The text after the last blank line, at most `WINDOW` bytes of it, and only the last
/// `WINDOW` bytes of the text are searched.
fn last_paragraph(text: &str) -> &str {
    let window = trailing(text, WINDOW).trim_end();
    window[after_last_blank_line(window).unwrap_or(0)..].trim()
}

/// Where the text after the last `\n\n` in `text` starts. Jumps from one newline back to
/// the one before, as most prompts have few: a string search from the back (`rsplit`)
/// compares at every byte.
fn after_last_blank_line(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut end = bytes.len();
    while let Some(newline) = memchr::memrchr(b'\n', &bytes[..end]) {
        if newline > 0 && bytes[newline - 1] == b'\n' {
            return Some(newline + 1);
        }
        end = newline;
    }
    None
}

/// 64-bit FNV-1a step.
fn fnv(h: u64, x: u64) -> u64 {
    (h ^ x).wrapping_mul(0x0100_0000_01b3)
}

const FNV_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// Final mix, so that nearby hashes land in unrelated buckets with unrelated signs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn add_feature(v: &mut [f32; DIMENSIONS], h: u64, weight: f32) {
    let h = mix(h);
    let sign = if h >> 63 == 0 { weight } else { -weight };
    v[(h as usize) % DIMENSIONS] += sign;
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30ff      // kana
        | 0x3400..=0x4dbf    // CJK extension A
        | 0x4e00..=0x9fff    // CJK unified ideographs
        | 0xac00..=0xd7af    // hangul syllables
        | 0xf900..=0xfaff) // CJK compatibility ideographs
}

/// ASCII letters and digits, as a table: the test of every byte of a sketched text.
static ALPHANUMERIC: [bool; 256] = alphanumeric();

const fn alphanumeric() -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0u8;
    while b < 128 {
        table[b as usize] = b.is_ascii_alphanumeric();
        b += 1;
    }
    table
}

/// Words (letters and digits, case-folded) as unigrams and bigrams; CJK characters, which
/// have no spaces to split on, as unigrams and bigrams of characters.
fn hash_into(text: &str, v: &mut [f32; DIMENSIONS]) {
    let mut words = Words { word: None, previous: None };
    let mut previous_cjk: Option<char> = None;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        // ASCII, most of most prompts, without decoding or Unicode tables.
        if b < 0x80 {
            previous_cjk = None;
            if ALPHANUMERIC[usize::from(b)] {
                // The whole ASCII run of the word at once, the hash kept in a register.
                let mut h = words.word.unwrap_or(FNV_SEED);
                while let Some(&b) = bytes.get(i)
                    && ALPHANUMERIC[usize::from(b)]
                {
                    // Setting bit 5 lower-cases an ASCII letter and leaves a digit as it is.
                    h = fnv(h, u64::from(b | 0x20));
                    i += 1;
                }
                words.word = Some(h);
            } else {
                words.end(v);
                i += 1;
            }
            continue;
        }
        let Some(c) = text[i..].chars().next() else { break };
        i += c.len_utf8();
        if is_cjk(c) {
            words.end(v);
            add_feature(v, fnv(FNV_SEED ^ 0xc7, u64::from(c)), 1.0);
            if let Some(p) = previous_cjk {
                add_feature(v, fnv(fnv(FNV_SEED ^ 0xc8, u64::from(p)), u64::from(c)), 0.7);
            }
            previous_cjk = Some(c);
        } else if c.is_alphanumeric() {
            previous_cjk = None;
            for l in c.to_lowercase() {
                words.push(u64::from(l));
            }
        } else {
            previous_cjk = None;
            words.end(v);
        }
    }
    words.end(v);
}

/// The word being hashed and the one before it.
struct Words {
    word: Option<u64>,
    previous: Option<u64>,
}

impl Words {
    fn push(&mut self, unit: u64) {
        self.word = Some(fnv(self.word.unwrap_or(FNV_SEED), unit));
    }

    fn end(&mut self, v: &mut [f32; DIMENSIONS]) {
        if let Some(w) = self.word.take() {
            add_feature(v, w, 1.0);
            if let Some(p) = self.previous {
                add_feature(v, fnv(fnv(p, 0x2f), w), 0.7);
            }
            self.previous = Some(w);
        }
    }
}

fn dot(a: &[f32; DIMENSIONS], b: &[f32; DIMENSIONS]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: `dot_avx` only needs AVX, which the processor was just found to have.
        return unsafe { dot_avx(a, b) };
    }
    dot_lanes(a, b)
}

/// [`dot_lanes`] compiled for AVX: the eight accumulators fit one register instead of two,
/// and each lane adds the same products in the same order, so the result is the same to
/// the bit. A recall takes a dot product with every region of the memory.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn dot_avx(a: &[f32; DIMENSIONS], b: &[f32; DIMENSIONS]) -> f32 {
    dot_lanes(a, b)
}

#[inline(always)]
fn dot_lanes(a: &[f32; DIMENSIONS], b: &[f32; DIMENSIONS]) -> f32 {
    // Eight independent accumulators let the compiler vectorise the loop.
    let mut acc = [0.0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum()
}

fn normalise(v: &mut [f32; DIMENSIONS]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 && norm.is_finite() {
        for x in v.iter_mut() {
            *x /= norm;
        }
    } else {
        *v = [0.0; DIMENSIONS];
    }
}

/// A neighbourhood of past queries: their centroid and what each model did there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Region {
    #[serde(with = "centroid_serde")]
    centroid: [f32; DIMENSIONS],
    /// Queries averaged into the centroid (capped by `centroid_memory`).
    members: f64,
    /// Evidence per model, indexed like [`Memory::models`].
    evidence: Vec<Evidence>,
    /// The memory's clock when the region was last fed; the stalest region is evicted.
    touched: u64,
}

mod centroid_serde {
    use super::{DIMENSIONS, Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(c: &[f32; DIMENSIONS], s: S) -> Result<S::Ok, S::Error> {
        c.as_slice().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[f32; DIMENSIONS], D::Error> {
        let v = Vec::<f32>::deserialize(d)?;
        let mut out = [0.0; DIMENSIONS];
        if v.len() == DIMENSIONS && v.iter().all(|x| x.is_finite()) {
            out.copy_from_slice(&v);
        }
        Ok(out)
    }
}

/// What the nearest regions say about each model the memory has seen, for one query.
/// Computed once per request ([`Memory::recall`]) and read per candidate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recall {
    /// Per model (indexed like the memory's model list): similarity-weighted mean quality
    /// and the weighted evidence behind it.
    models: Vec<Recalled>,
    names: Vec<String>,
    /// Similarity of the nearest region, for explanations and diagnostics.
    pub nearest: f32,
    /// Regions that contributed.
    pub regions: usize,
}

/// The memory's view of one model for one query.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Recalled {
    /// Similarity-weighted mean quality over the neighbouring regions.
    pub quality: f64,
    /// Similarity-weighted evidence behind `quality`.
    pub evidence: f64,
}

impl Recall {
    /// A recall that knows nothing (memory off or empty).
    pub fn none() -> Recall {
        Recall::default()
    }

    /// What the memory says about `model`, if it has any evidence for it near this query.
    pub fn model(&self, model: &str) -> Option<Recalled> {
        let i = self.names.iter().position(|n| n == model)?;
        self.models.get(i).copied().filter(|r| r.evidence > 0.0)
    }

    pub fn is_empty(&self) -> bool {
        self.models.iter().all(|r| r.evidence <= 0.0)
    }
}

/// The memory itself. Serialisable with the rest of the learned state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    models: Vec<String>,
    regions: Vec<Region>,
    clock: u64,
}

impl Memory {
    pub fn new() -> Memory {
        Memory::default()
    }

    /// Regions held now.
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    fn model_index(&mut self, model: &str) -> usize {
        match self.models.iter().position(|m| m == model) {
            Some(i) => i,
            None => {
                self.models.push(model.to_string());
                self.models.len() - 1
            }
        }
    }

    fn nearest(&self, sketch: &Sketch) -> Option<(usize, f32)> {
        self.regions
            .iter()
            .enumerate()
            .map(|(i, r)| (i, dot(&sketch.0, &r.centroid)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Learns that `model` scored `score` (in [0, 1]) on a query with this sketch, with the
    /// given weight. `replaces` takes back an earlier score for the same answer.
    pub fn remember(
        &mut self,
        config: &MemoryConfig,
        model: &str,
        sketch: &Sketch,
        score: f64,
        weight: f64,
        replaces: Option<f64>,
    ) {
        if !score.is_finite()
            || !weight.is_finite()
            || weight <= 0.0
            || sketch.is_empty()
            || config.capacity == 0
        {
            return;
        }
        let m = self.model_index(model);
        self.clock += 1;
        let region = match self.nearest(sketch) {
            Some((i, similarity)) if similarity >= config.join_similarity => {
                let r = &mut self.regions[i];
                // Feedback replacing earlier feedback is not a new member.
                if replaces.is_none() {
                    r.members = (r.members + 1.0).min(config.centroid_memory.max(1.0));
                    let rate = (1.0 / r.members) as f32;
                    for (c, x) in r.centroid.iter_mut().zip(sketch.0) {
                        *c += rate * (x - *c);
                    }
                    normalise(&mut r.centroid);
                }
                i
            }
            _ => self.open_region(config, sketch),
        };
        let r = &mut self.regions[region];
        r.touched = self.clock;
        if r.evidence.len() <= m {
            r.evidence.resize(m + 1, Evidence::default());
        }
        let cap = config.max_evidence;
        if let Some(old) = replaces.filter(|o| o.is_finite()) {
            r.evidence[m].add(-weight, old.clamp(0.0, 1.0), cap);
        }
        r.evidence[m].add(weight, score.clamp(0.0, 1.0), cap);
    }

    fn open_region(&mut self, config: &MemoryConfig, sketch: &Sketch) -> usize {
        let region =
            Region { centroid: sketch.0, members: 1.0, evidence: Vec::new(), touched: self.clock };
        if self.regions.len() < config.capacity {
            self.regions.push(region);
            return self.regions.len() - 1;
        }
        let stalest =
            self.regions.iter().enumerate().min_by_key(|(_, r)| r.touched).map_or(0, |(i, _)| i);
        self.regions[stalest] = region;
        stalest
    }

    /// What the regions nearest to this sketch say about every model.
    pub fn recall(&self, config: &MemoryConfig, sketch: &Sketch) -> Recall {
        let k = config.neighbours.max(1);
        let floor = config.min_similarity.clamp(0.0, 0.999);
        // The k most similar regions, kept sorted in a small buffer: no allocation per
        // region, and k is a handful.
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
        for (i, r) in self.regions.iter().enumerate() {
            let s = dot(&sketch.0, &r.centroid);
            if s < floor || (best.len() == k && best.last().is_some_and(|(b, _)| s <= *b)) {
                continue;
            }
            let at = best.iter().position(|(b, _)| s > *b).unwrap_or(best.len());
            best.insert(at, (s, i));
            best.truncate(k);
        }
        let mut models = vec![Recalled::default(); self.models.len()];
        let mut sums = vec![0.0f64; self.models.len()];
        for &(similarity, i) in &best {
            // Similarity rescaled above the floor and squared: near neighbours dominate.
            let t = f64::from((similarity - floor) / (1.0 - floor));
            let kernel = t * t;
            for (m, e) in self.regions[i].evidence.iter().enumerate() {
                if e.w > 0.0 {
                    models[m].evidence += kernel * e.w;
                    sums[m] += kernel * e.s;
                }
            }
        }
        for (r, s) in models.iter_mut().zip(sums) {
            if r.evidence > 0.0 {
                r.quality = (s / r.evidence).clamp(0.0, 1.0);
            }
        }
        Recall {
            models,
            names: self.models.clone(),
            nearest: best.first().map_or(0.0, |(s, _)| *s),
            regions: best.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MemoryConfig {
        MemoryConfig::default()
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_avx_dot_product_equals_the_portable_one_to_the_bit() {
        if !std::arch::is_x86_feature_detected!("avx") {
            return;
        }
        let mut next = crate::features::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut vector = || {
            let mut v = [0.0f32; DIMENSIONS];
            for x in &mut v {
                // Mixed signs and magnitudes, where the order of the additions shows.
                *x = (next() % 20_001) as f32 / 10_000.0 - 1.0;
                *x *= [1.0, 1e-3, 1e3][(next() % 3) as usize];
            }
            v
        };
        for _ in 0..2_000 {
            let (a, b) = (vector(), vector());
            // SAFETY: AVX was found above.
            let fast = unsafe { dot_avx(&a, &b) };
            assert_eq!(fast.to_bits(), dot_lanes(&a, &b).to_bits());
        }
    }

    #[test]
    fn sketches_of_related_text_are_closer_than_of_unrelated_text() {
        let a = Sketch::of("How do I reverse a linked list in Rust without cloning nodes?");
        let b = Sketch::of("How can I reverse a singly linked list in Rust?");
        let c = Sketch::of("Write a short poem about autumn leaves falling in the park.");
        assert!(a.similarity(&b) > 0.4, "{}", a.similarity(&b));
        assert!(
            a.similarity(&b) > a.similarity(&c) + 0.2,
            "{} {}",
            a.similarity(&b),
            a.similarity(&c)
        );
        assert!((a.similarity(&a) - 1.0).abs() < 1e-5);
        let zh1 = Sketch::of("请把这段话翻译成英文：今天天气很好");
        let zh2 = Sketch::of("请把下面这段话翻译成英文：我们明天见");
        assert!(zh1.similarity(&zh2) > a.similarity(&zh1) + 0.2);
    }

    #[test]
    fn a_long_shared_template_does_not_hide_the_question() {
        let template = "You are a careful assistant. Answer with one letter. ".repeat(40);
        let q1 = format!("{template}\n\nWhich planet is the largest in the solar system?");
        let q2 = format!("{template}\n\nWhich planet is the largest in our solar system?");
        let q3 = format!("{template}\n\nWhat is the boiling point of water at sea level?");
        let (s1, s2, s3) = (Sketch::of(&q1), Sketch::of(&q2), Sketch::of(&q3));
        // Same template: clearly related; same question as well: more so.
        assert!(s1.similarity(&s3) > 0.45, "{}", s1.similarity(&s3));
        assert!(s1.similarity(&s2) > s1.similarity(&s3) + 0.2);
        assert!(Sketch::of("").is_empty());
        assert!(Sketch::of("¿?!").is_empty());
    }

    #[test]
    fn the_last_paragraph_is_what_follows_the_last_blank_line() {
        // What `rsplit("\n\n")` found before the search jumped between newlines.
        let by_split = |text: &str| -> String {
            let window = trailing(text, WINDOW);
            let paragraph =
                window.trim_end().rsplit("\n\n").find(|p| !p.trim().is_empty()).unwrap_or(window);
            paragraph.trim().to_owned()
        };
        let long = format!("{}\n\nthe question?", "framing ".repeat(200));
        for text in [
            "",
            "   ",
            "one paragraph",
            "line one\nline two",
            "first\n\nsecond",
            "first\n\n\nsecond\n\n",
            "first\n\n  \n\nsecond \n",
            "\n\nonly after",
            "crlf\r\n\r\nkept whole",
            "a\n\nb\nc\n\n\n\n d \n",
            "\u{4e2d}\u{6587}\n\n\u{95ee}\u{9898}",
            long.as_str(),
        ] {
            assert_eq!(last_paragraph(text), by_split(text), "{text:?}");
        }
        assert_eq!(last_paragraph(&long), "the question?");
    }

    #[test]
    fn recall_reports_what_models_did_near_the_query_only() {
        let cfg = config();
        let mut memory = Memory::new();
        let code = [
            "Fix this Python function that sorts a list",
            "Fix the Python function that sorts my list",
        ];
        let poems = ["Write a poem about the sea at night", "Write a poem about the sea at dawn"];
        for text in code {
            memory.remember(&cfg, "coder", &Sketch::of(text), 1.0, 1.0, None);
            memory.remember(&cfg, "poet", &Sketch::of(text), 0.0, 1.0, None);
        }
        for text in poems {
            memory.remember(&cfg, "coder", &Sketch::of(text), 0.2, 1.0, None);
            memory.remember(&cfg, "poet", &Sketch::of(text), 0.9, 1.0, None);
        }
        let near_code =
            memory.recall(&cfg, &Sketch::of("Fix this Python function that sorts a dict"));
        let coder = near_code.model("coder").unwrap();
        let poet = near_code.model("poet").unwrap();
        assert!(coder.quality > 0.9 && poet.quality < 0.1, "{coder:?} {poet:?}");
        let unrelated =
            memory.recall(&cfg, &Sketch::of("Quarterly revenue figures for the Lisbon office"));
        assert!(unrelated.is_empty(), "{unrelated:?}");
        assert!(unrelated.model("coder").is_none());
    }

    #[test]
    fn rounding_half_away_is_f32_round() {
        let mut next = crate::features::xorshift(0x2545_f491_4f6c_dd1d);
        let edges = [0.5, -0.5, 1.5, -2.5, 126.5, -126.5, 0.49999997, -0.49999997, 0.0, -0.0];
        // Random bit patterns (every magnitude the quantiser can meet, and beyond), and
        // values on a fine grid, where halves and their neighbours occur.
        let bits: Vec<f32> = (0..100_000)
            .map(|_| f32::from_bits(next() as u32))
            .filter(|x| x.abs() < 1.0e6)
            .collect();
        let grid = (0..100_000).map(|_| (next() % 2_600_001) as f32 / 10_000.0 - 130.0);
        for x in edges.into_iter().chain(bits).chain(grid) {
            assert_eq!(round_half_away(x), x.round() as i32, "{x}");
        }
    }

    #[test]
    fn a_compact_sketch_keeps_its_similarities() {
        let a = Sketch::of("How do I reverse a linked list in Rust without cloning nodes?");
        let b = Sketch::of("How can I reverse a singly linked list in Rust?");
        let back = a.compact().expand();
        assert!((back.similarity(&a) - 1.0).abs() < 0.005, "{}", back.similarity(&a));
        assert!((back.similarity(&b) - a.similarity(&b)).abs() < 0.01);
        assert!(Sketch::of("").compact().expand().is_empty());
        assert_eq!(std::mem::size_of::<CompactSketch>(), DIMENSIONS + 4);
    }

    #[test]
    fn capacity_is_respected_and_the_stalest_region_goes() {
        let cfg = MemoryConfig { capacity: 3, ..config() };
        let mut memory = Memory::new();
        let texts = [
            "alpha beta gamma delta",
            "kubernetes pod scheduling",
            "chocolate cake recipe",
            "medieval french poetry",
        ];
        for t in texts {
            memory.remember(&cfg, "m", &Sketch::of(t), 1.0, 1.0, None);
        }
        assert_eq!(memory.len(), 3);
        assert!(
            memory.recall(&cfg, &Sketch::of(texts[0])).is_empty(),
            "the oldest region was evicted"
        );
        assert!(!memory.recall(&cfg, &Sketch::of(texts[3])).is_empty());
    }

    #[test]
    fn replaced_feedback_does_not_count_twice_and_the_state_round_trips() {
        let cfg = config();
        let s = Sketch::of("Summarise this contract clause for a layperson");
        let mut a = Memory::new();
        a.remember(&cfg, "m", &s, 0.0, 1.0, None);
        a.remember(&cfg, "m", &s, 1.0, 1.0, Some(0.0));
        let r = a.recall(&cfg, &s).model("m").unwrap();
        assert!((r.quality - 1.0).abs() < 1e-9, "{r:?}");
        let json = serde_json::to_string(&a).unwrap();
        let back: Memory = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
    }
}
