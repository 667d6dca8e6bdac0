//! `FeatureExtractor::extract` end to end: what the policy and the gateway read.

use router_core::features::tokens::{self, DEFAULT_OUTPUT_ALLOWANCE};
use router_core::{Band, Domain, FeatureExtractor, Language, Prompt, PromptMessage, Role};

fn user(text: &str) -> PromptMessage<'_> {
    PromptMessage { role: Role::User, text }
}

fn assistant(text: &str) -> PromptMessage<'_> {
    PromptMessage { role: Role::Assistant, text }
}

#[test]
fn a_greeting_is_simpler_than_a_multi_step_constrained_task() {
    let extractor = FeatureExtractor::new();
    let greeting = extractor.extract(&Prompt::user("Hello, how are you?"));
    let task = extractor.extract(&Prompt::user(
        "Design a database schema for an online bookstore. First list the entities, then write \
         the SQL DDL for PostgreSQL, and finally explain the indexes you chose. You must \
         support multiple authors per book, must not use triggers, and the answer should be \
         at most 600 words.",
    ));
    assert_eq!(greeting.language.primary, Language::En);
    assert_eq!(greeting.domain.domain, Domain::Chat);
    assert_eq!(greeting.complexity.band, Band::Low);
    assert_eq!(task.complexity.band, Band::High, "{:?}", task.complexity);
    assert!(greeting.complexity.score < task.complexity.score);
    assert!(greeting.expected_output_tokens < task.expected_output_tokens);
}

#[test]
fn chinese_constrained_task_is_harder_than_a_chinese_greeting() {
    let extractor = FeatureExtractor::new();
    let hi = extractor.extract(&Prompt::user("你好呀"));
    let hard = extractor.extract(&Prompt::user(
        "请设计一个高并发的秒杀系统：首先分析瓶颈，然后给出架构图的文字描述和关键代码，最后说明如何防止超卖。\
         要求必须使用 Redis 和消息队列，不超过 1500 字。",
    ));
    assert_eq!(hi.language.primary, Language::Zh);
    assert_eq!(hard.language.primary, Language::Zh);
    assert!(hi.complexity.score + 0.3 < hard.complexity.score, "{hi:?} vs {hard:?}");
    assert_ne!(hard.complexity.band, Band::Low);
}

#[test]
fn needs_follow_the_request_flags() {
    let extractor = FeatureExtractor::new();
    let prompt = Prompt {
        has_images: true,
        has_tools: true,
        wants_json: true,
        max_output_tokens: Some(300),
        ..Prompt::user("What is in this picture?")
    };
    let features = extractor.extract(&prompt);
    assert!(features.needs.vision && features.needs.tools && features.needs.json);
    assert!(features.expected_output_tokens <= 300);
    assert_eq!(features.needs.context_tokens, features.prompt_tokens + 300);

    let plain = extractor.extract(&Prompt::user("What is in this picture?"));
    assert!(!plain.needs.vision && !plain.needs.tools && !plain.needs.json);
    let allowance = plain.expected_output_tokens.max(DEFAULT_OUTPUT_ALLOWANCE);
    assert_eq!(plain.needs.context_tokens, plain.prompt_tokens + allowance);
}

#[test]
fn prompt_tokens_cover_every_message() {
    let extractor = FeatureExtractor::new();
    let system = "You are a helpful assistant that answers briefly.";
    let prompt = Prompt {
        messages: vec![
            PromptMessage { role: Role::System, text: system },
            user("What's the tallest mountain in Europe?"),
            assistant("Mount Elbrus, at 5,642 metres."),
            user("And in Africa?"),
        ],
        ..Prompt::default()
    };
    let features = extractor.extract(&prompt);
    let sum: u32 = prompt.messages.iter().map(|m| tokens::estimate(m.text)).sum();
    assert!(features.prompt_tokens > sum, "framing is added");
    assert_eq!(features.prompt_tokens, tokens::prompt_tokens(&prompt));
    let single = extractor.extract(&Prompt::user("And in Africa?"));
    assert!(features.prompt_tokens > single.prompt_tokens + 20);
    // The later turn of a conversation is judged more complex than the same words alone.
    assert!(features.complexity.score > single.complexity.score);
}

#[test]
fn a_reply_without_language_signal_takes_the_conversations_language() {
    let extractor = FeatureExtractor::new();
    let prompt = Prompt {
        messages: vec![user("帮我解释一下什么是区块链"), assistant("区块链是……"), user("123?")],
        ..Prompt::default()
    };
    let features = extractor.extract(&prompt);
    assert_eq!(features.language.primary, Language::Zh);
    assert!(features.language.confidence < 1.0);
}

#[test]
fn empty_prompts_do_not_break_anything() {
    let extractor = FeatureExtractor::new();
    let features = extractor.extract(&Prompt::default());
    assert_eq!(features.language.primary, Language::Unknown);
    assert!((0.0..=1.0).contains(&features.complexity.score));
    assert!(features.needs.context_tokens >= DEFAULT_OUTPUT_ALLOWANCE);
}

#[test]
fn a_long_prompt_is_bounded_and_consistent() {
    let extractor = FeatureExtractor::new();
    let body =
        "The committee reviewed the quarterly figures and discussed the budget. ".repeat(300);
    let text = format!("Summarize the following minutes in five bullet points:\n\n{body}");
    let features = extractor.extract(&Prompt::user(&text));
    assert_eq!(features.language.primary, Language::En);
    assert_eq!(features.domain.domain, Domain::TextProcessing, "{:?}", features.domain);
    // ~13 tokens per sentence, 300 sentences.
    assert!((3_000..=5_000).contains(&features.prompt_tokens), "{}", features.prompt_tokens);
    assert!(features.expected_output_tokens < features.prompt_tokens);
}

#[test]
fn features_serialise_for_the_decision_log() {
    let features = FeatureExtractor::new().extract(&Prompt::user("Write a haiku about autumn"));
    let json = serde_json::to_value(features).unwrap();
    assert_eq!(json["language"]["primary"], "en");
    assert_eq!(json["domain"]["domain"], "writing");
    let back: router_core::Features = serde_json::from_value(json).unwrap();
    assert_eq!(back, features);
}
