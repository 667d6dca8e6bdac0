//! How hard a query looks: a score in [0, 1] from signals that are cheap to see and that
//! go with harder requests in practice.
//!
//! - **Size**: prompt tokens, on a log scale (the hundredth line adds less than the tenth).
//! - **Constraints**: "must", "exactly", "at least", "不超过", "必须", ... each one is a
//!   requirement the answer has to meet at once.
//! - **Steps**: "first", "then", "finally", "首先", "然后", numbered and bulleted items.
//! - **Analysis**: "analyze", "compare", "trade-offs", "prove", "分析", "权衡".
//! - **Code and formulas** in the text, and several questions in one message.
//! - **Conversation depth**: later turns carry context the model must keep straight.
//! - **Domain**: reasoning, maths and code are harder on average than chat.
//!
//! The signals are summed with fixed weights and squashed by a logistic function: a greeting
//! lands near 0.05, a one-line request around 0.15–0.3, a multi-step constrained task above
//! 0.67 (the high band).

use super::lexicon::Cue;
use super::scan::Scan;
use super::{Band, Complexity, Domain};

const BASE: f32 = -2.0;
const SIZE: f32 = 0.5;
/// Tokens at which the size term reaches ln 2 × [`SIZE`].
const SIZE_KNEE: f32 = 40.0;
const CONSTRAINT: f32 = 0.35;
const STEP: f32 = 0.3;
const ANALYSIS: f32 = 0.4;
const LIST_ITEM: f32 = 0.12;
const CODE: f32 = 0.45;
const FORMULA: f32 = 0.35;
const EXTRA_QUESTION: f32 = 0.15;
const TURN: f32 = 0.25;

fn domain_prior(domain: Domain) -> f32 {
    match domain {
        Domain::Reasoning => 0.8,
        Domain::Math => 0.6,
        Domain::Code => 0.6,
        Domain::Writing => 0.2,
        Domain::TextProcessing => 0.1,
        Domain::Knowledge => 0.1,
        Domain::Translation => 0.0,
        Domain::Chat => -0.8,
    }
}

/// What the complexity score is computed from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Signals<'a> {
    /// The scan of the last user message.
    pub scan: &'a Scan,
    /// Estimated tokens of the whole prompt.
    pub prompt_tokens: u32,
    /// User messages in the conversation.
    pub user_turns: usize,
    pub domain: Domain,
}

pub(crate) fn assess(signals: Signals<'_>) -> Complexity {
    let Signals { scan, prompt_tokens, user_turns, domain } = signals;
    let shape = &scan.shape;
    let capped = |n: u16, max: u16| f32::from(n.min(max));
    let mut z = BASE + domain_prior(domain);
    z += SIZE * (1.0 + prompt_tokens as f32 / SIZE_KNEE).ln();
    z += CONSTRAINT * capped(scan.cues.get(Cue::Constraint), 6);
    z += STEP * capped(scan.cues.get(Cue::Steps), 5);
    z += ANALYSIS * capped(scan.cues.get(Cue::Analysis), 4);
    z += LIST_ITEM * shape.list_items.min(10) as f32;
    if shape.fences > 0 || shape.code_lines >= 2 {
        z += CODE;
    }
    if shape.latex >= 2 || shape.math_ops >= 3 {
        z += FORMULA;
    }
    z += EXTRA_QUESTION * shape.questions.saturating_sub(1).min(4) as f32;
    z += TURN * (user_turns.max(1) as f32).ln();
    let score = 1.0 / (1.0 + (-z).exp());
    Complexity { score, band: Band::of_score(score) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(text: &str, domain: Domain, turns: usize) -> f32 {
        let scan = Scan::of(text);
        let tokens = super::super::tokens::estimate(text);
        assess(Signals { scan: &scan, prompt_tokens: tokens, user_turns: turns, domain }).score
    }

    #[test]
    fn a_greeting_is_low_and_a_constrained_multi_step_task_is_high() {
        let greeting = score("Hello, how are you?", Domain::Chat, 1);
        let haiku = score("Write a haiku about autumn", Domain::Writing, 1);
        let task = score(
            "Design a REST API for a library system. First, list the endpoints; then write the \
             Python code using FastAPI; finally add unit tests. It must handle authentication, \
             must not use an ORM, and the answer must stay under 500 words.",
            Domain::Code,
            1,
        );
        assert!(greeting < haiku && haiku < task, "{greeting} {haiku} {task}");
        assert_eq!(Band::of_score(greeting), Band::Low);
        assert_eq!(Band::of_score(task), Band::High, "{task}");
    }

    #[test]
    fn chinese_cues_count_too() {
        let plain = score("介绍一下长城", Domain::Knowledge, 1);
        let constrained = score(
            "请分析中美两国的经济政策，首先比较它们的优缺点，然后给出建议。要求：必须引用数据，字数不超过800字。",
            Domain::Knowledge,
            1,
        );
        assert!(plain < 0.34, "{plain}");
        assert!(constrained > plain + 0.3, "{plain} {constrained}");
    }

    #[test]
    fn depth_of_conversation_raises_the_score() {
        let first = score("And what about the second one?", Domain::Knowledge, 1);
        let later = score("And what about the second one?", Domain::Knowledge, 8);
        assert!(later > first);
    }

    #[test]
    fn scores_stay_in_range() {
        let huge = "must first then analyze compare ".repeat(500);
        let s = score(&huge, Domain::Reasoning, 100);
        assert!((0.0..=1.0).contains(&s));
        assert!((0.0..=1.0).contains(&score("", Domain::Chat, 0)));
    }
}
