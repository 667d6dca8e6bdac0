//! What the router knows about a query before it asks anyone: its language, domain,
//! complexity, size in tokens, and what it needs from a model.
//!
//! Everything here is offline and fast (microseconds): it runs on every routed request.
//! [`FeatureExtractor::extract`] is the entry point; the submodules are the parts:
//!
//! - [`language`]: script rules and function-word evidence, with code-switching;
//! - [`domain`]: a hashed n-gram softmax model trained from shipped examples;
//! - [`complexity`]: a score from size, constraints, steps, code and depth;
//! - [`tokens`]: a calibrated token estimate and the expected answer length;
//! - [`eval`]: scoring the extractor against labelled queries.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub mod complexity;
pub mod domain;
pub mod eval;
pub mod language;
mod lexicon;
mod scan;
pub(crate) mod text;
pub mod tokens;

pub use domain::{DataError, DomainModel, LabelledExample, ModelError, TrainOptions};

/// A xorshift generator: random text for the tests that check tuned code against the
/// plain version it replaced.
#[cfg(test)]
pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// Who said a piece of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// One piece of text in the conversation. A message with several text parts is given as
/// several pieces with the same role, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptMessage<'a> {
    pub role: Role,
    pub text: &'a str,
}

/// The view of a request that feature extraction needs: its text, and the flags the wire
/// format carries. Borrowed from the request, so building it does not copy the text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt<'a> {
    pub messages: Vec<PromptMessage<'a>>,
    /// The request carries at least one image.
    pub has_images: bool,
    /// The request offers tools to the model.
    pub has_tools: bool,
    /// The request asks for JSON output (`response_format`).
    pub wants_json: bool,
    /// The client's cap on output tokens, if it set one.
    pub max_output_tokens: Option<u32>,
}

impl<'a> Prompt<'a> {
    /// A single user message: the form of `analyze "text"`, the evaluation and the tests.
    pub fn user(text: &'a str) -> Self {
        Prompt { messages: vec![PromptMessage { role: Role::User, text }], ..Prompt::default() }
    }

    /// The last user message's text, which is what the domain and language describe.
    pub fn last_user_text(&self) -> &'a str {
        self.messages.iter().rev().find(|m| m.role == Role::User).map_or("", |m| m.text)
    }
}

/// A language the router tells apart. `Other` is a language it recognises as none of these;
/// `Unknown` is text with too little signal to say (empty, numbers, a single symbol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    En,
    Zh,
    Ja,
    Ko,
    Fr,
    De,
    Es,
    It,
    Pt,
    Nl,
    Ru,
    Other,
    #[serde(rename = "und")]
    Unknown,
}

impl Language {
    pub const ALL: [Language; 13] = [
        Language::En,
        Language::Zh,
        Language::Ja,
        Language::Ko,
        Language::Fr,
        Language::De,
        Language::Es,
        Language::It,
        Language::Pt,
        Language::Nl,
        Language::Ru,
        Language::Other,
        Language::Unknown,
    ];

    /// ISO 639-1 code (`und` for unknown, `other` for other).
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Zh => "zh",
            Language::Ja => "ja",
            Language::Ko => "ko",
            Language::Fr => "fr",
            Language::De => "de",
            Language::Es => "es",
            Language::It => "it",
            Language::Pt => "pt",
            Language::Nl => "nl",
            Language::Ru => "ru",
            Language::Other => "other",
            Language::Unknown => "und",
        }
    }

    pub fn from_code(code: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.code().eq_ignore_ascii_case(code.trim()))
    }
}

/// The detected language of a query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LanguageGuess {
    /// The language most of the text is in; what learning is keyed by.
    pub primary: Language,
    /// A second language with a real share of the text (code-switching such as Chinese
    /// prose around English technical terms), if any.
    pub secondary: Option<Language>,
    /// Confidence in `primary`, in [0, 1].
    pub confidence: f32,
}

impl LanguageGuess {
    /// True when the query mixes two languages in earnest.
    pub fn is_mixed(&self) -> bool {
        self.secondary.is_some()
    }
}

/// What a query is about, coarsely: the axis along which models' strengths differ most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    Code,
    Math,
    Reasoning,
    /// Creative writing, rewriting, brainstorming, role-play.
    Writing,
    Translation,
    /// Extraction, summarisation, classification, formatting of a given text.
    TextProcessing,
    /// Factual and explanatory questions.
    Knowledge,
    /// Small talk and everything conversational.
    Chat,
}

impl Domain {
    pub const ALL: [Domain; 8] = [
        Domain::Code,
        Domain::Math,
        Domain::Reasoning,
        Domain::Writing,
        Domain::Translation,
        Domain::TextProcessing,
        Domain::Knowledge,
        Domain::Chat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Code => "code",
            Domain::Math => "math",
            Domain::Reasoning => "reasoning",
            Domain::Writing => "writing",
            Domain::Translation => "translation",
            Domain::TextProcessing => "text_processing",
            Domain::Knowledge => "knowledge",
            Domain::Chat => "chat",
        }
    }

    pub fn parse(s: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.as_str() == s.trim())
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The classified domain of a query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DomainGuess {
    pub domain: Domain,
    /// Probability of `domain`, in [0, 1].
    pub confidence: f32,
    /// The second most likely domain and its probability.
    pub runner_up: Option<(Domain, f32)>,
}

/// Complexity band: the third axis of the learning context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    Low,
    Medium,
    High,
}

impl Band {
    pub const ALL: [Band; 3] = [Band::Low, Band::Medium, Band::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Band::Low => "low",
            Band::Medium => "medium",
            Band::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Band> {
        Band::ALL.into_iter().find(|b| b.as_str() == s.trim())
    }

    /// The band a complexity score falls in.
    pub fn of_score(score: f32) -> Band {
        if score < 0.34 {
            Band::Low
        } else if score < 0.67 {
            Band::Medium
        } else {
            Band::High
        }
    }
}

/// How hard the query looks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Complexity {
    /// In [0, 1].
    pub score: f32,
    pub band: Band,
}

/// What the request requires of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Needs {
    pub vision: bool,
    pub tools: bool,
    pub json: bool,
    /// Context the model must hold: the prompt's estimated tokens plus the output cap (or a
    /// default allowance when the client set none).
    pub context_tokens: u32,
}

/// Everything extracted from one query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Features {
    pub language: LanguageGuess,
    pub domain: DomainGuess,
    pub complexity: Complexity,
    /// Estimated prompt tokens (all messages).
    pub prompt_tokens: u32,
    /// Estimated output tokens, from the output cap, the domain and the complexity.
    pub expected_output_tokens: u32,
    pub needs: Needs,
}

/// Extracts [`Features`] from a [`Prompt`]. Built once (it holds the domain model) and
/// shared; cloning is cheap, and extraction takes `&self` and allocates nothing.
#[derive(Debug, Clone)]
pub struct FeatureExtractor {
    domain: Arc<DomainModel>,
}

impl Default for FeatureExtractor {
    fn default() -> Self {
        FeatureExtractor::new()
    }
}

/// How many earlier user messages are read for the language when the last one has no
/// signal ("ok", "?", "42").
const LANGUAGE_LOOKBACK: usize = 3;

impl FeatureExtractor {
    /// An extractor with the built-in domain model (trained on first use in the process, in
    /// tens of milliseconds, then shared).
    pub fn new() -> Self {
        FeatureExtractor { domain: DomainModel::builtin() }
    }

    /// An extractor with a domain model of the deployment's own (see
    /// [`DomainModel::train`] and [`DomainModel::from_bytes`]).
    pub fn with_domain_model(model: DomainModel) -> Self {
        FeatureExtractor { domain: Arc::new(model) }
    }

    pub fn domain_model(&self) -> &DomainModel {
        &self.domain
    }

    pub fn extract(&self, prompt: &Prompt<'_>) -> Features {
        let text = prompt.last_user_text();
        let (scan, language) = scan::Scan::with_language(text);
        let language = self.language(prompt, language);
        let domain = self.domain.classify_scan(&scan);

        let mut message_tokens = 0u32;
        let mut last_user_tokens = 0u32;
        let mut user_turns = 0usize;
        for message in &prompt.messages {
            let n = tokens::estimate(message.text);
            message_tokens = message_tokens.saturating_add(n);
            if message.role == Role::User {
                user_turns += 1;
                // The piece the domain and language describe (a message of several parts comes
                // as several pieces; the last one is the instruction).
                if std::ptr::eq(message.text, text) {
                    last_user_tokens = n;
                }
            }
        }
        let prompt_tokens = message_tokens.saturating_add(tokens::framing(prompt.messages.len()));
        let complexity = complexity::assess(complexity::Signals {
            scan: &scan,
            prompt_tokens,
            user_turns,
            domain: domain.domain,
        });
        let expected_output_tokens = tokens::expected_output_tokens(
            domain.domain,
            complexity.score,
            last_user_tokens,
            prompt.max_output_tokens,
        );
        let allowance = prompt
            .max_output_tokens
            .unwrap_or(expected_output_tokens.max(tokens::DEFAULT_OUTPUT_ALLOWANCE));
        Features {
            language,
            domain,
            complexity,
            prompt_tokens,
            expected_output_tokens,
            needs: Needs {
                vision: prompt.has_images,
                tools: prompt.has_tools,
                json: prompt.wants_json,
                context_tokens: prompt_tokens.saturating_add(allowance),
            },
        }
    }

    /// The language of the last user message (`guess`), or failing that of an earlier one.
    fn language(&self, prompt: &Prompt<'_>, guess: LanguageGuess) -> LanguageGuess {
        if guess.primary != Language::Unknown {
            return guess;
        }
        prompt
            .messages
            .iter()
            .rev()
            .filter(|m| m.role == Role::User)
            .skip(1)
            .take(LANGUAGE_LOOKBACK)
            .map(|m| language::detect(m.text))
            .find(|g| g.primary != Language::Unknown)
            .map_or(guess, |g| LanguageGuess { confidence: g.confidence * 0.8, ..g })
    }
}
