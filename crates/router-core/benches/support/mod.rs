//! Inputs shared by the decision benchmark and the latency-percentile example: a
//! ~2,000-token prompt, eight priced candidates, and learned state with evidence everywhere.

use router_core::learning::{Context, Knowledge, LearningConfig, Outcome};
use router_core::memory::{MemoryConfig, Sketch};
use router_core::{Availability, Band, Candidate, Capabilities, Domain, Language, Price};

const PARAGRAPH: &str = "The old harbour town wakes up slowly. Before the first ferry leaves, \
the fishermen are already mending nets on the quay, arguing about the weather and the price of \
diesel. By eight o'clock the bakery on Market Street has sold out of cinnamon rolls, and the \
queue for coffee stretches past the bookshop that nobody remembers opening. Tourists arrive \
with the ten o'clock boat: they photograph the lighthouse, buy postcards they will never send, \
and ask where the famous seafood restaurant is. In the afternoon the wind turns, the sea goes \
grey, and the town belongs to its residents again.\n";

/// A ~2,000-token prompt: an instruction over a long text.
pub fn long_prompt() -> String {
    let mut text = String::from(
        "Summarize the following text in five bullet points, then translate them into Chinese.\n\n",
    );
    while text.len() < 9_600 {
        text.push_str(PARAGRAPH);
    }
    text
}

const MODELS: [(&str, f64, f64); 8] = [
    ("gpt-4o", 2.5, 10.0),
    ("gpt-4o-mini", 0.15, 0.6),
    ("claude-sonnet", 3.0, 15.0),
    ("claude-haiku", 0.8, 4.0),
    ("deepseek-chat", 0.27, 1.1),
    ("qwen-max", 1.6, 6.4),
    ("llama3-70b", 0.6, 0.6),
    ("mistral-small", 0.2, 0.6),
];

pub fn candidates() -> Vec<Candidate<'static>> {
    MODELS
        .iter()
        .map(|&(name, input, output)| Candidate {
            name,
            weight: 1.0,
            price: Price { input_per_mtok: input, output_per_mtok: output },
            context_window: 128_000,
            capabilities: Capabilities { streaming: true, tools: true, vision: true, json: true },
            availability: Availability::Healthy,
            tags: &[],
        })
        .collect()
}

/// Learned state with evidence in every domain × language × band for every model, and — as
/// the gateway runs by default — a full memory of similar queries (256 regions).
pub fn knowledge() -> Knowledge {
    let memory = Some(MemoryConfig::default());
    let mut k = Knowledge::new(LearningConfig { memory, ..LearningConfig::default() });
    // Fill every region of the memory with distinct queries.
    for q in 0..MemoryConfig::default().capacity * 2 {
        let text = format!(
            "question {q}: {} {}",
            ["how", "why", "写", "fix", "prove", "translate"][q % 6],
            q * 7919
        );
        for (i, (name, _, _)) in MODELS.iter().enumerate() {
            k.remember(name, &Sketch::of(&text), ((q + i) % 10) as f64 / 10.0, 1.0, None);
        }
    }
    let mut seed = 17u64;
    for (i, (name, _, _)) in MODELS.iter().enumerate() {
        for domain in Domain::ALL {
            for language in [Language::En, Language::Zh, Language::Ja] {
                for band in Band::ALL {
                    let context = Context { domain, language, band };
                    for _ in 0..5 {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let score = ((seed >> 33) % 100) as f64 / 100.0;
                        k.feedback(name, context, (score + i as f64 * 0.03).min(1.0), None);
                        k.observe(
                            name,
                            context,
                            Outcome::Success {
                                latency_ms: 400.0 + 50.0 * i as f64,
                                output_tokens: 300,
                                signal: None,
                            },
                        );
                    }
                }
            }
        }
    }
    k
}
