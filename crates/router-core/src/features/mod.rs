//! What the router knows about a query before it asks anyone: its language, domain,
//! complexity, size in tokens, and what it needs from a model.
//!
//! Everything here is offline and fast (microseconds): it runs on every routed request.

use serde::{Deserialize, Serialize};

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
/// shared; extraction itself takes `&self` and allocates little.
#[derive(Debug, Clone, Default)]
pub struct FeatureExtractor {
    _private: (),
}

impl FeatureExtractor {
    pub fn new() -> Self {
        FeatureExtractor::default()
    }

    pub fn extract(&self, prompt: &Prompt<'_>) -> Features {
        // First cut: size and needs only. Language, domain and complexity detection land
        // with the routing work; until then they report "unknown" with zero confidence.
        let chars: usize = prompt.messages.iter().map(|m| m.text.chars().count()).sum();
        let prompt_tokens = (chars as u32).div_ceil(4) + 4 * prompt.messages.len() as u32;
        let expected_output_tokens = prompt.max_output_tokens.unwrap_or(512);
        Features {
            language: LanguageGuess { primary: Language::Unknown, secondary: None, confidence: 0.0 },
            domain: DomainGuess { domain: Domain::Chat, confidence: 0.0, runner_up: None },
            complexity: Complexity { score: 0.0, band: Band::Low },
            prompt_tokens,
            expected_output_tokens,
            needs: Needs {
                vision: prompt.has_images,
                tools: prompt.has_tools,
                json: prompt.wants_json,
                context_tokens: prompt_tokens + expected_output_tokens,
            },
        }
    }
}
