//! The rows the store keeps, as plain data.
//!
//! The same types go in (handed to [`Store::write_batch`](crate::Store::write_batch) or the
//! batching [`Writer`](crate::Writer)) and come out (from the read queries). Where a column
//! holds one of a fixed set of words, the type is an enum, so a misspelt status cannot reach
//! the database; where a number has a range, the type enforces it.

use std::fmt;
use std::sync::Arc;

use router_core::{Decision, Source};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::json;

/// Declares a closed set of words stored in a TEXT column, with its spelling in one place.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word stored in the database and shown in the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value for a stored word, if it is one.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// The client API a request arrived on.
    pub enum Api {
        /// `POST /v1/chat/completions`.
        OpenAi => "openai",
        /// `POST /v1/messages`.
        Anthropic => "anthropic",
        /// `POST /api/chat`.
        Simple => "simple",
    }
}

text_enum! {
    /// Who made a routing decision.
    pub enum DecisionSource {
        Judge => "judge",
        Policy => "policy",
        Fallback => "fallback",
        Explicit => "explicit",
    }
}

impl From<Source> for DecisionSource {
    fn from(source: Source) -> Self {
        match source {
            Source::Judge => DecisionSource::Judge,
            Source::Policy => DecisionSource::Policy,
            Source::Fallback => DecisionSource::Fallback,
            Source::Explicit => DecisionSource::Explicit,
        }
    }
}

text_enum! {
    /// How a request ended.
    pub enum OutcomeStatus {
        /// An answer reached the client.
        Ok => "ok",
        /// Every attempt failed, or the answer broke off with an error.
        Error => "error",
        /// The client went away before the answer was complete.
        Cancelled => "cancelled",
    }
}

/// What is kept of a request's prompt, as the privacy setting says.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(tag = "kind", content = "text", rename_all = "snake_case")]
pub enum StoredPrompt {
    /// Nothing is kept.
    #[default]
    None,
    /// A digest of the prompt (for spotting repeats without keeping the text).
    Hash(String),
    /// The prompt text itself.
    Full(String),
}

impl StoredPrompt {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            StoredPrompt::None => "none",
            StoredPrompt::Hash(_) => "hash",
            StoredPrompt::Full(_) => "full",
        }
    }

    /// The stored text: the digest or the prompt, `None` when nothing is kept.
    pub fn text(&self) -> Option<&str> {
        match self {
            StoredPrompt::None => None,
            StoredPrompt::Hash(text) | StoredPrompt::Full(text) => Some(text),
        }
    }

    pub(crate) fn from_parts(kind: &str, text: Option<String>) -> Option<StoredPrompt> {
        match (kind, text) {
            ("none", None) => Some(StoredPrompt::None),
            ("hash", Some(text)) => Some(StoredPrompt::Hash(text)),
            ("full", Some(text)) => Some(StoredPrompt::Full(text)),
            _ => None,
        }
    }
}

/// A request's prompt as the gateway hands it over: the text, and what the privacy setting
/// keeps of it. The writer makes the [`StoredPrompt`] from it, so that a digest is taken off
/// the thread serving the request: SHA-256 costs a few µs for a long prompt where the CPU
/// has instructions for it, and tens of µs where it has not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CapturedPrompt {
    /// Nothing is kept.
    #[default]
    None,
    /// The prompt, of which only its SHA-256 digest is kept.
    DigestOf(String),
    /// The prompt, kept as it is.
    Full(String),
}

impl CapturedPrompt {
    /// What is stored: nothing, the digest (64 lowercase hex digits) or the text.
    pub fn into_stored(self) -> StoredPrompt {
        match self {
            CapturedPrompt::None => StoredPrompt::None,
            CapturedPrompt::DigestOf(text) => StoredPrompt::Hash(sha256_hex(text.as_bytes())),
            CapturedPrompt::Full(text) => StoredPrompt::Full(text),
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

/// One routed request: what the client asked for and what the router decided. Its `id` is
/// the decision id the client sees (`x-router-decision-id`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    pub id: String,
    pub received_at_ms: i64,
    pub api: Api,
    /// The model field as the client sent it: a model name, an alias, `auto`, `auto:cost`…
    pub requested_model: String,
    /// The routing profile, for routed requests.
    pub profile: Option<String>,
    pub stream: bool,
    pub prompt: StoredPrompt,
    pub message_count: u32,
    /// The query's features, serialised by the caller (opaque to the store).
    pub features_json: String,
    /// Language code (`en`, `zh`, `und`…), kept as a column for grouping.
    pub language: Option<String>,
    /// Domain (`code`, `math`…), kept as a column for grouping.
    pub domain: Option<String>,
    /// Complexity band (`low`, `medium`, `high`), kept as a column for grouping.
    pub complexity: Option<String>,
    pub chosen_model: String,
    pub source: DecisionSource,
    pub reason: String,
    /// The ranking, serialised by the caller (opaque to the store).
    pub ranking_json: String,
    /// How long the decision took, in microseconds.
    pub decision_us: u64,
}

/// The parts of a [`RequestRecord`] that a [`Decision`] does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub id: String,
    pub received_at_ms: i64,
    pub api: Api,
    pub requested_model: String,
    pub stream: bool,
    pub prompt: CapturedPrompt,
    pub message_count: u32,
}

impl RequestRecord {
    /// The record for a request routed by `decision`, with the features and the ranking
    /// serialised as JSON and the grouping columns filled in from the features.
    pub fn from_decision(
        context: RequestContext,
        decision: &Decision,
    ) -> Result<RequestRecord, StoreError> {
        let features = &decision.features;
        // A client that names its model chose no profile; recording the default would make
        // explicit traffic look like `balanced` routing.
        let profile = match decision.source {
            Source::Explicit => None,
            _ => Some(decision.profile.as_str().to_owned()),
        };
        Ok(RequestRecord {
            id: context.id,
            received_at_ms: context.received_at_ms,
            api: context.api,
            requested_model: context.requested_model,
            profile,
            stream: context.stream,
            prompt: context.prompt.into_stored(),
            message_count: context.message_count,
            features_json: json::features(features)?,
            language: Some(features.language.primary.code().to_owned()),
            domain: Some(features.domain.domain.as_str().to_owned()),
            complexity: Some(features.complexity.band.as_str().to_owned()),
            chosen_model: decision.model.clone(),
            source: decision.source.into(),
            reason: decision.reason.clone(),
            ranking_json: json::ranking(&decision.ranking)?,
            decision_us: decision.decision_us,
        })
    }
}

/// A routed request as the gateway hands it to the writer: what the decision does not know,
/// and the decision itself, shared rather than copied. The writer turns it into a
/// [`RequestRecord`] — the features and the ranking written out as JSON — so that work is
/// not done on the thread serving the request, just before it calls the upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedRequest {
    pub context: RequestContext,
    pub decision: Arc<Decision>,
}

impl RoutedRequest {
    /// The row this request is stored as.
    pub fn into_record(self) -> Result<RequestRecord, StoreError> {
        RequestRecord::from_decision(self.context, &self.decision)
    }
}

/// One try at an upstream, as part of a request's failover chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub model: String,
    pub deployment: String,
    /// Why the attempt failed; `None` for the attempt that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    pub duration_ms: u64,
}

/// How a request ended. Written once, when the response is complete (or has failed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeRecord {
    /// The id of the [`RequestRecord`] this finishes.
    pub request_id: String,
    pub finished_at_ms: i64,
    pub status: OutcomeStatus,
    /// The HTTP status sent to the client.
    pub http_status: u16,
    /// The model that answered; `None` when none did.
    pub model: Option<String>,
    /// The deployment that answered; `None` when none did.
    pub deployment: Option<String>,
    pub latency_ms: u64,
    /// Time to the first token, for streamed answers.
    pub ttft_ms: Option<u64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Must be finite and not negative.
    pub cost_usd: f64,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    /// Every upstream try, in order.
    pub attempts: Vec<Attempt>,
}

/// A feedback score in [0, 1]; higher is better.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct Score(f64);

impl Score {
    /// The score, if `value` is a number in [0, 1].
    pub fn new(value: f64) -> Option<Score> {
        (0.0..=1.0).contains(&value).then_some(Score(value))
    }

    /// The score a star rating stands for: 1 → 0, 3 → 0.5, 5 → 1.
    pub fn from_rating(rating: Rating) -> Score {
        Score(f64::from(rating.get() - 1) / 4.0)
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// A star rating from 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Rating(u8);

impl Rating {
    /// The rating, if `stars` is between 1 and 5.
    pub fn new(stars: u8) -> Option<Rating> {
        (1..=5).contains(&stars).then_some(Rating(stars))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// A user's verdict on one decision. Feedback for a decision that already has some replaces
/// it, unless it is older than what is stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackRecord {
    pub decision_id: String,
    pub created_at_ms: i64,
    pub score: Score,
    /// The star rating the score came from, if the user gave one.
    pub rating: Option<Rating>,
    pub comment: Option<String>,
}

/// An operator's change, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub created_at_ms: i64,
    /// Who made the change (the dashboard login).
    pub actor: String,
    /// What kind of change: `set_weight`, `disable`, `enable`, `reset_circuit`…
    pub action: String,
    /// What it was made to: a model or deployment name.
    pub target: Option<String>,
    /// Details, typically JSON such as `{"from":1,"to":3}`.
    pub detail: Option<String>,
}

/// Anything the batching writer can write.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    // Boxed because a request record is several times the size of the others, and records
    // sit by the thousand in the writer's queue.
    Request(Box<RequestRecord>),
    /// A request whose row the writer builds ([`Record::into_row`]).
    Routed(Box<RoutedRequest>),
    Outcome(Box<OutcomeRecord>),
    Feedback(FeedbackRecord),
    Audit(AuditRecord),
}

impl Record {
    /// What the record is and which row it belongs to, for logs (never the prompt).
    pub fn summary(&self) -> String {
        match self {
            Record::Request(request) => format!("request {}", request.id),
            Record::Routed(routed) => format!("request {}", routed.context.id),
            Record::Outcome(outcome) => format!("outcome of {}", outcome.request_id),
            Record::Feedback(feedback) => format!("feedback on {}", feedback.decision_id),
            Record::Audit(audit) => format!("audit entry `{}` by {}", audit.action, audit.actor),
        }
    }
}

impl Record {
    /// The record as it is written: a [`Record::Routed`] becomes the [`Record::Request`] it
    /// stands for; anything else is already a row. Fails only if the decision cannot be
    /// written as JSON.
    pub fn into_row(self) -> Result<Record, StoreError> {
        match self {
            Record::Routed(routed) => Ok(Record::from((*routed).into_record()?)),
            row => Ok(row),
        }
    }
}

impl From<RequestRecord> for Record {
    fn from(record: RequestRecord) -> Self {
        Record::Request(Box::new(record))
    }
}

impl From<RoutedRequest> for Record {
    fn from(routed: RoutedRequest) -> Self {
        Record::Routed(Box::new(routed))
    }
}

impl From<OutcomeRecord> for Record {
    fn from(record: OutcomeRecord) -> Self {
        Record::Outcome(Box::new(record))
    }
}

impl From<FeedbackRecord> for Record {
    fn from(record: FeedbackRecord) -> Self {
        Record::Feedback(record)
    }
}

impl From<AuditRecord> for Record {
    fn from(record: AuditRecord) -> Self {
        Record::Audit(record)
    }
}

/// A stored request with what followed it: the outcome and the feedback, once there are any.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionView {
    pub request: RequestRecord,
    pub outcome: Option<OutcomeRecord>,
    pub feedback: Option<FeedbackRecord>,
}

/// A piece of feedback with the context of the decision it is about (absent when the
/// decision is not stored, e.g. pruned).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackView {
    pub feedback: FeedbackRecord,
    /// The model that answered, or the chosen one when none did.
    pub model: Option<String>,
    pub language: Option<String>,
    pub domain: Option<String>,
}

/// An audit log entry as stored, with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// A named blob of learned state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateEntry {
    pub name: String,
    /// The JSON the caller stored.
    pub value: String,
    pub updated_at_ms: i64,
}

/// How many rows each table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    pub requests: u64,
    pub outcomes: u64,
    pub feedback: u64,
    pub audit: u64,
    pub state: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_captured_prompt_is_stored_as_the_setting_says() {
        assert_eq!(CapturedPrompt::None.into_stored(), StoredPrompt::None);
        assert_eq!(
            CapturedPrompt::Full("abc".into()).into_stored(),
            StoredPrompt::Full("abc".into())
        );
        // FIPS 180-2's example digests.
        assert_eq!(
            CapturedPrompt::DigestOf("abc".into()).into_stored(),
            StoredPrompt::Hash(
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into()
            )
        );
        assert_eq!(
            CapturedPrompt::DigestOf(String::new()).into_stored(),
            StoredPrompt::Hash(
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into()
            )
        );
    }

    #[test]
    fn words_round_trip() {
        for api in Api::ALL {
            assert_eq!(Api::parse(api.as_str()), Some(*api));
        }
        for source in DecisionSource::ALL {
            assert_eq!(DecisionSource::parse(source.as_str()), Some(*source));
        }
        for status in OutcomeStatus::ALL {
            assert_eq!(OutcomeStatus::parse(status.as_str()), Some(*status));
        }
        assert_eq!(Api::parse("OpenAI"), None);
        assert_eq!(serde_json::to_string(&Api::OpenAi).unwrap(), "\"openai\"");
    }

    #[test]
    fn source_conversion_keeps_the_word() {
        for source in [Source::Judge, Source::Policy, Source::Fallback, Source::Explicit] {
            assert_eq!(DecisionSource::from(source).as_str(), source.as_str());
        }
    }

    #[test]
    fn score_and_rating_enforce_their_ranges() {
        assert!(Score::new(-0.01).is_none());
        assert!(Score::new(1.01).is_none());
        assert!(Score::new(f64::NAN).is_none());
        assert_eq!(Score::new(0.25).map(Score::get), Some(0.25));
        assert!(Rating::new(0).is_none());
        assert!(Rating::new(6).is_none());
        let scores: Vec<f64> =
            (1..=5).map(|s| Score::from_rating(Rating::new(s).unwrap()).get()).collect();
        assert_eq!(scores, [0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn stored_prompt_parts_must_agree() {
        for prompt in [
            StoredPrompt::None,
            StoredPrompt::Hash("ab12".into()),
            StoredPrompt::Full("hello".into()),
        ] {
            let back = StoredPrompt::from_parts(prompt.kind(), prompt.text().map(str::to_owned));
            assert_eq!(back, Some(prompt));
        }
        assert_eq!(StoredPrompt::from_parts("none", Some("x".into())), None);
        assert_eq!(StoredPrompt::from_parts("full", None), None);
        assert_eq!(StoredPrompt::from_parts("other", Some("x".into())), None);
    }
}
