//! Measuring the feature extractor against labelled queries: the pure half of
//! `llm-router features-eval FILE`.
//!
//! The CLI reads the file (one JSON object a line, see [`LabelledQuery`]) and hands the
//! records to [`evaluate`]; everything that decides what a label means and how the score is
//! computed lives here, so it is tested once and the CLI stays thin.
//!
//! # Label fold
//!
//! Files labelled with this crate's own domain names (`code`, `math`, `reasoning`, `writing`,
//! `translation`, `text_processing`, `knowledge`, `chat`) are taken as they are. Files
//! labelled with the coarse task scheme of the public query-label collections (the project's
//! evaluation data) are folded by [`fold_label`]:
//!
//! | label | domain | why |
//! | --- | --- | --- |
//! | `code` | code | |
//! | `math` | math | |
//! | `reasoning` | reasoning | |
//! | `writing`, `brainstorming`, `roleplay`, `rewrite` | writing | all produce new prose |
//! | `translation`, `translation_multilingual` | translation | |
//! | `extraction`, `classification`, `summarization`, `formatting` | text_processing | operate on a given text |
//! | `qa_with_context` | text_processing | answered from a passage the user supplies |
//! | `basic_nlp_task` | text_processing | small transformations of given text (emoji, rewording) |
//! | `qa` | knowledge | factual and explanatory questions |
//! | `language_understanding` | knowledge | mostly explaining words, idioms and verses |
//! | `chat` | chat | |
//! | `safety` | *skipped* | a policy concern, not a kind of task: such a query can be any domain |
//!
//! Anything else is skipped and counted, never guessed.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Deserializer};

use super::{Domain, FeatureExtractor, Language, Prompt};

/// One line of a labelled query file: `{"text": ..., "label": ..., "lang": ...}`. Other
/// fields are ignored; `domain` is accepted for `label`, so the training file format
/// (`{"text", "domain"}`) can be evaluated too. An empty or absent `lang` means unknown.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LabelledQuery {
    pub text: String,
    #[serde(alias = "domain")]
    pub label: String,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub lang: Option<String>,
}

impl LabelledQuery {
    /// The gold domain, if the label folds onto one.
    pub fn domain(&self) -> Option<Domain> {
        fold_label(&self.label)
    }

    /// The gold language, if the record gives a code this crate knows.
    pub fn language(&self) -> Option<Language> {
        self.lang.as_deref().and_then(Language::from_code)
    }
}

fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value: Option<String> = Option::deserialize(d)?;
    Ok(value.filter(|s| !s.trim().is_empty()))
}

/// The domain a label stands for: one of ours, or one of the query-label scheme folded as
/// the module documentation's table says. `None` for `safety` and unknown labels.
pub fn fold_label(label: &str) -> Option<Domain> {
    let label = label.trim();
    if let Some(domain) = Domain::parse(label) {
        return Some(domain);
    }
    Some(match label {
        "qa" | "language_understanding" => Domain::Knowledge,
        "writing" | "brainstorming" | "roleplay" | "rewrite" => Domain::Writing,
        "extraction" | "classification" | "summarization" | "formatting" | "qa_with_context"
        | "basic_nlp_task" => Domain::TextProcessing,
        "translation_multilingual" => Domain::Translation,
        _ => return None,
    })
}

/// A set of classes a confusion matrix is kept over.
pub trait Class: Copy + Eq + fmt::Debug + 'static {
    /// Every class, in display order.
    fn all() -> &'static [Self];
    fn name(self) -> &'static str;

    fn position(self) -> usize {
        Self::all().iter().position(|&c| c == self).unwrap_or(0)
    }
}

impl Class for Domain {
    fn all() -> &'static [Self] {
        &Domain::ALL
    }

    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl Class for Language {
    fn all() -> &'static [Self] {
        &Language::ALL
    }

    fn name(self) -> &'static str {
        self.code()
    }
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassMetrics {
    /// Of the items predicted as this class, the share that are. 0 when none were predicted.
    pub precision: f64,
    /// Of the items of this class, the share predicted as it. 0 when there are none.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0 when both are.
    pub f1: f64,
    /// Gold items of this class.
    pub support: u32,
    /// Items predicted as this class.
    pub predicted: u32,
}

/// Counts of (gold, predicted) pairs over a class set.
#[derive(Clone, PartialEq, Eq)]
pub struct Confusion<C: Class> {
    /// Row-major: `counts[gold * n + predicted]`.
    counts: Vec<u32>,
    _class: std::marker::PhantomData<C>,
}

impl<C: Class> Default for Confusion<C> {
    fn default() -> Self {
        let n = C::all().len();
        Confusion { counts: vec![0; n * n], _class: std::marker::PhantomData }
    }
}

impl<C: Class> fmt::Debug for Confusion<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Confusion")
            .field("total", &self.total())
            .field("accuracy", &self.accuracy())
            .finish()
    }
}

impl<C: Class> FromIterator<(C, C)> for Confusion<C> {
    fn from_iter<I: IntoIterator<Item = (C, C)>>(pairs: I) -> Self {
        let mut confusion = Confusion::default();
        for (gold, predicted) in pairs {
            confusion.add(gold, predicted);
        }
        confusion
    }
}

impl<C: Class> Confusion<C> {
    pub fn new() -> Self {
        Confusion::default()
    }

    pub fn add(&mut self, gold: C, predicted: C) {
        let n = C::all().len();
        self.counts[gold.position() * n + predicted.position()] += 1;
    }

    /// How many items of class `gold` were predicted as `predicted`.
    pub fn count(&self, gold: C, predicted: C) -> u32 {
        self.counts[gold.position() * C::all().len() + predicted.position()]
    }

    pub fn total(&self) -> u32 {
        self.counts.iter().sum()
    }

    pub fn correct(&self) -> u32 {
        C::all().iter().map(|&c| self.count(c, c)).sum()
    }

    /// Share of items predicted correctly; 0 for an empty matrix.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    pub fn metrics(&self, class: C) -> ClassMetrics {
        let tp = self.count(class, class);
        let support: u32 = C::all().iter().map(|&p| self.count(class, p)).sum();
        let predicted: u32 = C::all().iter().map(|&g| self.count(g, class)).sum();
        let precision = ratio(tp, predicted);
        let recall = ratio(tp, support);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        ClassMetrics { precision, recall, f1, support, predicted }
    }

    /// The classes that occur, as gold or as prediction, with their metrics.
    pub fn per_class(&self) -> Vec<(C, ClassMetrics)> {
        C::all()
            .iter()
            .map(|&c| (c, self.metrics(c)))
            .filter(|(_, m)| m.support > 0 || m.predicted > 0)
            .collect()
    }

    /// The unweighted mean F1 over the classes that occur as gold or as prediction (so a
    /// class predicted but never true counts, with F1 0, as scikit-learn's default does).
    pub fn macro_f1(&self) -> f64 {
        let classes = self.per_class();
        if classes.is_empty() {
            return 0.0;
        }
        classes.iter().map(|(_, m)| m.f1).sum::<f64>() / classes.len() as f64
    }

    /// Accuracy, macro-F1, the per-class table and the confusion matrix as plain text.
    pub fn render(&self) -> String {
        self.to_string()
    }
}

fn ratio(a: u32, b: u32) -> f64 {
    if b == 0 { 0.0 } else { f64::from(a) / f64::from(b) }
}

impl<C: Class> fmt::Display for Confusion<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "accuracy {:.3} ({}/{})   macro-F1 {:.3}",
            self.accuracy(),
            self.correct(),
            self.total(),
            self.macro_f1()
        )?;
        let classes = self.per_class();
        let width = classes.iter().map(|(c, _)| c.name().len()).max().unwrap_or(5).max(5);
        writeln!(f)?;
        writeln!(f, "{:width$}  precision  recall     f1  support", "class")?;
        for (class, m) in &classes {
            writeln!(
                f,
                "{:width$}  {:>9.3}  {:>6.3}  {:>5.3}  {:>7}",
                class.name(),
                m.precision,
                m.recall,
                m.f1,
                m.support
            )?;
        }
        writeln!(f)?;
        writeln!(f, "confusion (rows: gold, columns: predicted)")?;
        let mut header = format!("{:width$}", "");
        for (class, _) in &classes {
            let _ = write!(header, " {:>5}", abbreviate(class.name()));
        }
        writeln!(f, "{}", header.trim_end())?;
        for &(gold, _) in &classes {
            write!(f, "{:width$}", gold.name())?;
            for &(predicted, _) in &classes {
                write!(f, " {:>5}", self.count(gold, predicted))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// A column heading of at most five characters.
fn abbreviate(name: &str) -> &str {
    match name {
        "text_processing" => "text",
        "translation" => "trans",
        "knowledge" => "know",
        "reasoning" => "reas",
        "writing" => "write",
        _ => &name[..name.len().min(5)],
    }
}

/// The result of running the extractor over labelled queries.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub domain: Confusion<Domain>,
    /// Over the queries whose record names a language.
    pub language: Confusion<Language>,
    /// Queries whose label folds onto no domain (`safety`, unknown labels); their language
    /// is still scored.
    pub skipped: usize,
}

/// Extracts features from every query and scores domain and language against the labels.
pub fn evaluate<'a>(
    extractor: &FeatureExtractor,
    queries: impl IntoIterator<Item = &'a LabelledQuery>,
) -> Report {
    let mut report = Report::default();
    for query in queries {
        let features = extractor.extract(&Prompt::user(&query.text));
        match query.domain() {
            Some(gold) => report.domain.add(gold, features.domain.domain),
            None => report.skipped += 1,
        }
        if let Some(gold) = query.language() {
            report.language.add(gold, features.language.primary);
        }
    }
    report
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== domain ({} queries, {} skipped)", self.domain.total(), self.skipped)?;
        writeln!(f, "{}", self.domain)?;
        writeln!(f, "== language ({} queries with a language)", self.language.total())?;
        write!(f, "{}", self.language)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_of_a_hand_computed_example() {
        use Domain::{Code, Math, Writing};
        // gold code ×4: predicted code, code, code, math
        // gold math ×3: predicted math, math, code
        // gold writing ×1: predicted math
        let confusion: Confusion<Domain> = [
            (Code, Code),
            (Code, Code),
            (Code, Code),
            (Code, Math),
            (Math, Math),
            (Math, Math),
            (Math, Code),
            (Writing, Math),
        ]
        .into_iter()
        .collect();
        assert_eq!(confusion.total(), 8);
        assert_eq!(confusion.correct(), 5);
        assert!((confusion.accuracy() - 5.0 / 8.0).abs() < 1e-12);

        // code: tp 3, predicted 4, support 4 -> p 0.75, r 0.75, f1 0.75
        let code = confusion.metrics(Code);
        assert!((code.precision - 0.75).abs() < 1e-12);
        assert!((code.recall - 0.75).abs() < 1e-12);
        assert!((code.f1 - 0.75).abs() < 1e-12);
        // math: tp 2, predicted 4, support 3 -> p 0.5, r 2/3, f1 = 2*(1/3)/(7/6) = 4/7
        let math = confusion.metrics(Math);
        assert!((math.precision - 0.5).abs() < 1e-12);
        assert!((math.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((math.f1 - 4.0 / 7.0).abs() < 1e-12);
        // writing: tp 0 -> all zero, support 1, never predicted
        let writing = confusion.metrics(Writing);
        assert_eq!((writing.precision, writing.recall, writing.f1), (0.0, 0.0, 0.0));
        assert_eq!((writing.support, writing.predicted), (1, 0));
        // macro-F1 over the three classes that occur.
        let expected = (0.75 + 4.0 / 7.0 + 0.0) / 3.0;
        assert!((confusion.macro_f1() - expected).abs() < 1e-12);
        assert_eq!(confusion.count(Math, Code), 1);
        assert_eq!(confusion.count(Writing, Writing), 0);
    }

    #[test]
    fn empty_matrix_scores_zero() {
        let confusion = Confusion::<Language>::new();
        assert_eq!(confusion.accuracy(), 0.0);
        assert_eq!(confusion.macro_f1(), 0.0);
        assert!(confusion.per_class().is_empty());
    }

    #[test]
    fn rendering_shows_the_numbers() {
        let confusion: Confusion<Domain> =
            [(Domain::Code, Domain::Code), (Domain::Code, Domain::TextProcessing)]
                .into_iter()
                .collect();
        let text = confusion.render();
        assert!(text.starts_with("accuracy 0.500 (1/2)"), "{text}");
        assert!(text.contains("text_processing"), "{text}");
        assert!(text.contains("code   "), "{text}");
        let matrix_row = text.lines().rev().find(|l| l.starts_with("code")).unwrap_or_default();
        assert_eq!(matrix_row.split_whitespace().collect::<Vec<_>>(), ["code", "1", "1"]);
    }

    #[test]
    fn labels_fold_onto_domains() {
        assert_eq!(fold_label("qa"), Some(Domain::Knowledge));
        assert_eq!(fold_label("roleplay"), Some(Domain::Writing));
        assert_eq!(fold_label("brainstorming"), Some(Domain::Writing));
        assert_eq!(fold_label("summarization"), Some(Domain::TextProcessing));
        assert_eq!(fold_label("qa_with_context"), Some(Domain::TextProcessing));
        assert_eq!(fold_label("translation_multilingual"), Some(Domain::Translation));
        assert_eq!(fold_label("language_understanding"), Some(Domain::Knowledge));
        assert_eq!(fold_label("safety"), None);
        assert_eq!(fold_label("gibberish"), None);
        // Our own names pass through.
        for domain in Domain::ALL {
            assert_eq!(fold_label(domain.as_str()), Some(domain));
        }
    }

    #[test]
    fn records_parse_with_or_without_language() {
        let record: LabelledQuery = serde_json::from_str(
            r#"{"source":"x","lang":"zh","label":"code","text":"写个排序","difficulty":null}"#,
        )
        .unwrap();
        assert_eq!(record.domain(), Some(Domain::Code));
        assert_eq!(record.language(), Some(Language::Zh));
        let record: LabelledQuery =
            serde_json::from_str(r#"{"lang":"","label":"safety","text":"t"}"#).unwrap();
        assert_eq!((record.lang.as_deref(), record.domain()), (None, None));
        let record: LabelledQuery =
            serde_json::from_str(r#"{"text":"hi","domain":"chat"}"#).unwrap();
        assert_eq!((record.domain(), record.language()), (Some(Domain::Chat), None));
    }
}
