//! Simulated users for the demo: a steady trickle of queries of several kinds, each answer
//! rated the way a user who knows the models' true strengths would rate it — so that the
//! demo shows the router learning which model is best for what.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

/// A kind of query and what it says.
struct Kind {
    label: &'static str,
    prompts: &'static [&'static str],
}

const KINDS: [Kind; 6] = [
    Kind {
        label: "code",
        prompts: &[
            "Write a Python function that merges two sorted lists",
            "Why does this Rust code not compile: `let s = String::new(); let t = s; println!(\"{}\", s);`",
            "Write a SQL query for the ten customers with the highest revenue last month",
            "Implement an LRU cache in TypeScript",
        ],
    },
    Kind {
        label: "chinese-writing",
        prompts: &[
            "写一首关于秋天的七言绝句",
            "以“雨夜”为题写一个三百字的短篇故事",
            "帮我给新开的咖啡店写一段温暖的宣传文案",
            "写一封感谢老师的信，语气真诚",
        ],
    },
    Kind {
        label: "math",
        prompts: &[
            "Solve for x: 3x^2 - 12x + 9 = 0, and explain each step",
            "What is the derivative of x^3 * ln(x)?",
            "一个等差数列首项为3，公差为4，求前20项的和",
        ],
    },
    Kind {
        label: "chat",
        prompts: &[
            "Hi! How is your day going?",
            "Tell me a fun fact about octopuses",
            "你好，今天心情不错",
        ],
    },
    Kind {
        label: "translation",
        prompts: &[
            "Translate into Chinese: The early bird catches the worm.",
            "把这句话翻译成英文：路漫漫其修远兮，吾将上下而求索。",
        ],
    },
    Kind {
        label: "knowledge",
        prompts: &[
            "Explain how vaccines train the immune system",
            "What caused the fall of the Western Roman Empire?",
            "为什么天空是蓝色的？",
        ],
    },
];

/// The quality a user would give each demo model on each kind of query (the ground truth
/// the router does not see and has to learn from the ratings).
fn true_quality(model: &str, kind: &str) -> f64 {
    match (model, kind) {
        ("atlas-pro", "code" | "math") => 0.93,
        ("atlas-pro", "chinese-writing") => 0.72,
        ("atlas-pro", _) => 0.88,
        ("panda-zh", "chinese-writing" | "translation") => 0.92,
        ("panda-zh", "chat") => 0.8,
        ("panda-zh", _) => 0.55,
        ("flaky-coder", "code") => 0.9,
        ("flaky-coder", "math") => 0.7,
        ("flaky-coder", _) => 0.5,
        ("swift-mini", "chat") => 0.86,
        ("swift-mini", "knowledge") => 0.72,
        ("swift-mini", _) => 0.5,
        _ => 0.6,
    }
}

/// Tallies of which model answered which kind of query.
type Seen = Arc<Mutex<BTreeMap<&'static str, BTreeMap<String, u32>>>>;

/// Sends `rate` requests per second to the gateway at `url` (each on its own task, so slow
/// answers do not slow the rate), rating each answer, and prints a line on which model
/// answered which kind of query every `report_every`.
pub async fn run(url: String, rate: f64, report_every: Duration) {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(30)).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("demo traffic disabled: {e}");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.01)));
    let mut report = tokio::time::Instant::now() + report_every;
    let seen: Seen = Arc::default();
    let mut rng = fastrand::Rng::with_seed(2024);
    loop {
        tick.tick().await;
        let kind = &KINDS[rng.usize(..KINDS.len())];
        let prompt = kind.prompts[rng.usize(..kind.prompts.len())];
        let model = if rng.f64() < 0.2 { "auto:cost" } else { "auto" };
        let stream = rng.f64() < 0.3;
        let noise = (rng.f64() - 0.5) * 0.2;
        tokio::spawn(one_user(
            client.clone(),
            url.clone(),
            kind.label,
            prompt,
            model,
            stream,
            noise,
            seen.clone(),
        ));
        if tokio::time::Instant::now() >= report {
            report += report_every;
            let line = summary(&seen.lock().unwrap_or_else(|e| e.into_inner()));
            println!("demo traffic — who answered what so far: {line}");
        }
    }
}

/// One simulated user: asks, reads the whole answer, rates it.
#[allow(clippy::too_many_arguments)]
async fn one_user(
    client: reqwest::Client,
    url: String,
    kind: &'static str,
    prompt: &'static str,
    model: &'static str,
    stream: bool,
    noise: f64,
    seen: Seen,
) {
    let sent = client
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": prompt}]}))
        .send()
        .await;
    let Ok(response) = sent else { return };
    let header =
        |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (answered, id) = (header("x-router-model"), header("x-router-decision-id"));
    let ok = response.status().is_success() && response.bytes().await.is_ok();
    let (true, Some(answered), Some(id)) = (ok, answered, id) else { return };
    *seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(kind)
        .or_default()
        .entry(answered.clone())
        .or_default() += 1;
    let score = (true_quality(&answered, kind) + noise).clamp(0.0, 1.0);
    let _ = client
        .post(format!("{url}/api/routing/feedback"))
        .json(&json!({"decision_id": id, "score": (score * 100.0).round() / 100.0}))
        .send()
        .await;
}

fn summary(seen: &BTreeMap<&'static str, BTreeMap<String, u32>>) -> String {
    seen.iter()
        .map(|(kind, models)| {
            let total: u32 = models.values().sum();
            let (top, n) = models
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(m, n)| (m.as_str(), *n))
                .unwrap_or(("-", 0));
            format!("{kind}: {top} {}% of {total}", n * 100 / total.max(1))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}
