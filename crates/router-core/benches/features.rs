//! Feature extraction speed: short, medium and ~2,000-token prompts in English and Chinese.
//!
//! `cargo bench -p router-core --bench features`

use divan::{Bencher, black_box};
use router_core::features::{DomainModel, TrainOptions, language, tokens};
use router_core::{FeatureExtractor, Prompt};

fn main() {
    divan::main();
}

const SHORT_EN: &str = "Write a haiku about autumn";
const SHORT_ZH: &str = "如何在 Kubernetes 中部署 Postgres？";

const MEDIUM_EN: &str = "I'm building a booking system for a hair salon. Stylists have weekly \
schedules, services have different durations, and customers can book, cancel or reschedule \
online. Design the PostgreSQL schema and a REST API in TypeScript, explain how you would \
prevent double bookings under concurrent requests, and list the edge cases the tests must \
cover. Keep the answer under 800 words.";

const MEDIUM_ZH: &str = "我们公司要举办十周年庆典，请帮我写一篇董事长致辞，回顾公司从五个人的小团队\
发展到五百人的历程，感谢员工和客户的支持，并展望下一个十年的发展方向。要求语气真诚大气，条理清楚，\
首先回顾历史，然后感谢大家，最后展望未来，字数控制在一千字左右，不要使用过于夸张的形容词。";

/// About 200 o200k tokens of English prose, repeated to ~2,000 tokens.
const PARAGRAPH_EN: &str = "The old harbour town wakes up slowly. Before the first ferry \
leaves, the fishermen are already mending nets on the quay, arguing about the weather and the \
price of diesel. By eight o'clock the bakery on Market Street has sold out of cinnamon rolls, \
and the queue for coffee stretches past the bookshop that nobody remembers opening. Tourists \
arrive with the ten o'clock boat: they photograph the lighthouse, buy postcards they will never \
send, and ask where the famous seafood restaurant is. In the afternoon the wind turns, the sea \
goes grey, and the town belongs to its residents again. Children cycle home from school along \
the sea wall, shouting at the gulls. It isn't a glamorous place, and it doesn't try to be.\n";

/// About 250 o200k tokens of Chinese prose, repeated to ~2,000 tokens.
const PARAGRAPH_ZH: &str = "清晨的小镇总是醒得很慢。第一班渡轮出发之前，渔民们已经坐在码头上补网，\
一边抱怨天气，一边讨论柴油又涨价了。到了八点，集市街上的面包店就卖光了肉桂卷，买咖啡的队伍一直排到\
那家谁也记不清什么时候开张的书店门口。十点钟的船带来了游客：他们给灯塔拍照，买几张永远不会寄出的明信片，\
还打听那家早在多年前就关门的海鲜馆子在哪里。下午风向一变，海面变成灰色，小镇又重新属于它的居民。\
放学的孩子们沿着海堤骑车回家，冲着海鸥大喊大叫。这里并不繁华，也从不假装繁华。\n";

fn text(which: &str) -> String {
    match which {
        "short-en" => SHORT_EN.to_string(),
        "short-zh" => SHORT_ZH.to_string(),
        "medium-en" => MEDIUM_EN.to_string(),
        "medium-zh" => MEDIUM_ZH.to_string(),
        "2k-en" => format!(
            "Summarize the following text in five bullet points.\n\n{}",
            PARAGRAPH_EN.repeat(10)
        ),
        "2k-zh" => format!("请用五个要点总结下面这段文字。\n\n{}", PARAGRAPH_ZH.repeat(8)),
        _ => String::new(),
    }
}

const CASES: [&str; 6] = ["short-en", "short-zh", "medium-en", "medium-zh", "2k-en", "2k-zh"];

#[divan::bench(args = CASES)]
fn extract(bencher: Bencher, which: &str) {
    let extractor = FeatureExtractor::new();
    let text = text(which);
    let prompt = Prompt::user(&text);
    bencher.bench_local(|| extractor.extract(black_box(&prompt)));
}

#[divan::bench(args = CASES)]
fn detect_language(bencher: Bencher, which: &str) {
    let text = text(which);
    bencher.bench_local(|| language::detect(black_box(&text)));
}

#[divan::bench(args = CASES)]
fn classify_domain(bencher: Bencher, which: &str) {
    let model = DomainModel::builtin();
    let text = text(which);
    bencher.bench_local(|| model.classify(black_box(&text)));
}

#[divan::bench(args = CASES)]
fn estimate_tokens(bencher: Bencher, which: &str) {
    let text = text(which);
    bencher.bench_local(|| tokens::estimate(black_box(&text)));
}

/// Training the built-in model from the shipped examples: what the first
/// `FeatureExtractor::new()` in a process pays.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn train_builtin(bencher: Bencher) {
    let examples = DomainModel::builtin_examples().unwrap_or_default();
    bencher.bench_local(|| DomainModel::train(black_box(&examples), &TrainOptions::default()));
}
