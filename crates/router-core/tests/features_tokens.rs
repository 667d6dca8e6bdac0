//! The token estimator against a real byte-pair encoder (`o200k_base`, GPT-4o's) on English
//! prose, Chinese prose and code. The texts are written for this test.
//!
//! Run with `--nocapture` to see the measured error per kind of text.

use router_core::features::tokens::estimate;
use tiktoken_rs::o200k_base_singleton;

const ENGLISH: &str = "The old harbour town wakes up slowly. Before the first ferry leaves, \
the fishermen are already mending nets on the quay, arguing about the weather and the price \
of diesel. By eight o'clock the bakery on Market Street has sold out of cinnamon rolls, and \
the queue for coffee stretches past the bookshop that nobody remembers opening. Tourists \
arrive with the ten o'clock boat: they photograph the lighthouse, buy postcards they will \
never send, and ask where the famous seafood restaurant is, the one that closed in 2009. In \
the afternoon the wind turns, the sea goes grey, and the town belongs to its residents again. \
Children cycle home from school along the sea wall, shouting at the gulls. It isn't a \
glamorous place, and it doesn't try to be; what it offers instead is a rhythm that hasn't \
changed much in a hundred years, and a kind of quiet that visitors find either restful or \
unbearable. Could you summarise this description in three sentences, keeping the contrast \
between the morning and the afternoon?";

const CHINESE: &str = "清晨的小镇总是醒得很慢。第一班渡轮出发之前，渔民们已经坐在码头上补网，\
一边抱怨天气，一边讨论柴油又涨价了。到了八点，集市街上的面包店就卖光了肉桂卷，买咖啡的队伍一直排到\
那家谁也记不清什么时候开张的书店门口。十点钟的船带来了游客：他们给灯塔拍照，买几张永远不会寄出的明信片，\
还打听那家早在多年前就关门的海鲜馆子在哪里。下午风向一变，海面变成灰色，小镇又重新属于它的居民。\
放学的孩子们沿着海堤骑车回家，冲着海鸥大喊大叫。这里并不繁华，也从不假装繁华；它能给人的，是一种一百年来\
几乎没有变过的节奏，以及一种让来访者要么觉得放松、要么觉得难以忍受的安静。请用三句话概括这段描写，\
并保留早晨和下午之间的对比。";

const CODE: &str = r#"use std::collections::HashMap;

/// Counts how often each word occurs, ignoring case and punctuation.
pub fn word_counts(text: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    counts
}

def top_words(path, n=10):
    with open(path, encoding="utf-8") as f:
        counts = {}
        for line in f:
            for word in line.lower().split():
                counts[word] = counts.get(word, 0) + 1
    return sorted(counts.items(), key=lambda kv: kv[1], reverse=True)[:n]

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn.apply(this, args), ms);
  };
}

SELECT department, COUNT(*) AS staff, AVG(salary) AS avg_salary
FROM employees
WHERE hired_at >= '2020-01-01'
GROUP BY department
ORDER BY avg_salary DESC;
"#;

const MIXED: &str = "帮我 review 一下这段 Python 代码，看看为什么在处理 10 万行 CSV 的时候这么慢：\n\
```python\nimport csv\nrows = list(csv.reader(open('data.csv')))\nfor r in rows:\n    \
total = sum(float(x) for x in r[1:])\n    print(r[0], total)\n```\n有没有更快的写法？最好能用 pandas。";

/// Relative error of the estimate against o200k for one text.
fn error(text: &str) -> (usize, u32, f64) {
    let real = o200k_base_singleton().encode_with_special_tokens(text).len();
    let estimated = estimate(text);
    let relative = (f64::from(estimated) - real as f64) / real as f64;
    (real, estimated, relative)
}

fn check(name: &str, text: &str, tolerance: f64) {
    let (real, estimated, relative) = error(text);
    eprintln!(
        "{name:>8}: o200k {real:>4}, estimate {estimated:>4}, error {:+.1}%",
        relative * 100.0
    );
    assert!(
        relative.abs() <= tolerance,
        "{name}: estimate {estimated} vs o200k {real} ({:+.1}%, tolerance ±{:.0}%)",
        relative * 100.0,
        tolerance * 100.0
    );
}

#[test]
fn english_prose_within_ten_percent() {
    check("english", ENGLISH, 0.10);
}

#[test]
fn chinese_prose_within_fifteen_percent() {
    check("chinese", CHINESE, 0.15);
}

#[test]
fn code_within_fifteen_percent() {
    check("code", CODE, 0.15);
}

#[test]
fn mixed_chinese_and_code_within_fifteen_percent() {
    check("mixed", MIXED, 0.15);
}

#[test]
fn short_prompts_are_close_in_absolute_terms() {
    for text in [
        "Hello, how are you?",
        "Write a haiku about autumn",
        "如何在 Kubernetes 中部署 Postgres？",
        "Translate 'good morning' into French",
        "What's 15 times 24?",
    ] {
        let (real, estimated, _) = error(text);
        let off = (i64::from(estimated) - real as i64).abs();
        assert!(off <= 3, "{text:?}: estimate {estimated} vs o200k {real}");
    }
}
