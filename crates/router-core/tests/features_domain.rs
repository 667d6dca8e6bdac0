//! The built-in domain model on held-out queries written for this test (none of them is in
//! `data/domain_train.jsonl`), and the shipped training data itself.

use std::collections::HashMap;
use std::time::Instant;

use router_core::Domain::{self, *};
use router_core::features::{DomainModel, LabelledExample, TrainOptions};

/// Held-out queries: varied length, style and language.
const HELD_OUT: &[(&str, Domain)] = &[
    ("Write a Python function that merges two sorted lists into one sorted list.", Code),
    ("my flask app returns 405 method not allowed on POST, why?", Code),
    ("Implement a stack that supports push, pop and getMin in constant time, in Java.", Code),
    (
        "Why does this Rust code fail to compile?\n```rust\nlet v = vec![1];\nlet r = &v;\ndrop(v);\nprintln!(\"{:?}\", r);\n```",
        Code,
    ),
    ("用 Go 写一个并发下载器，最多同时下载 5 个文件", Code),
    ("这个 SQL 为什么查不出数据？SELECT * FROM users WHERE name = NULL", Code),
    ("Escribe una función en Python que cuente las palabras de un texto.", Code),
    ("What is the integral of x times e to the x?", Math),
    ("Solve the quadratic equation 2x^2 - 3x - 5 = 0.", Math),
    ("A jacket is discounted by 25% to $60. What was the original price?", Math),
    ("求函数 f(x) = x² - 4x + 3 的最小值", Math),
    ("一个等差数列的第三项是 7，第七项是 15，求公差和首项", Math),
    ("Berechne die Fläche eines Kreises mit dem Radius 5 cm.", Math),
    (
        "Knights always tell the truth and knaves always lie. X says 'we are both knaves'. What is X?",
        Reasoning,
    ),
    ("If no fish can fly and some birds are fish, can some birds fly? Reason it out.", Reasoning),
    ("甲说乙在说谎，乙说丙在说谎，丙说甲和乙都在说谎。请推理谁说的是真话", Reasoning),
    ("逻辑题：所有的猫都怕水，汤姆是一只猫，汤姆怕不怕水？这个推理可靠吗？", Reasoning),
    ("Write a short poem about the first snow of winter.", Writing),
    ("Write a funny toast for my sister's wedding.", Writing),
    ("Give me 10 creative names for a dog grooming business.", Writing),
    ("Pretend you are a pirate and tell me about your treasure.", Writing),
    ("Rewrite this sentence to sound more professional: we messed up the order, sorry", Writing),
    ("写一首关于大海的现代诗", Writing),
    ("帮我写一封给客户的感谢信", Writing),
    ("把这句话改写得更委婉一些：你这个方案根本行不通", Writing),
    ("Écris une petite histoire sur un chat qui voyage.", Writing),
    ("Translate 'I love reading books' into Spanish.", Translation),
    ("How do you say 'see you tomorrow' in German?", Translation),
    ("把“欢迎光临”翻译成英文", Translation),
    ("请把这句话译成日语：明天见", Translation),
    ("Übersetze ins Englische: Ich bin müde.", Translation),
    (
        "Summarize this paragraph in one sentence: The new policy reduces working hours but keeps salaries the same, which unions welcomed and employers criticised.",
        TextProcessing,
    ),
    (
        "Extract all the phone numbers from this text: call 555-0100 or 555-0199 after 5pm.",
        TextProcessing,
    ),
    (
        "Classify this review as positive or negative: 'Terrible service, never again.'",
        TextProcessing,
    ),
    (
        "请总结下面这段话的要点：公司今年营收增长 20%，但利润下降，主要原因是原材料涨价。",
        TextProcessing,
    ),
    ("从下面的句子中提取所有的地名：我去过北京、上海和西安。", TextProcessing),
    ("What is the capital of Canada?", Knowledge),
    ("Why do birds migrate south in winter?", Knowledge),
    ("Who discovered penicillin and how?", Knowledge),
    ("法国大革命的主要原因是什么？", Knowledge),
    ("为什么会有白天和黑夜？", Knowledge),
    ("¿Quién escribió Don Quijote?", Knowledge),
    ("hey, how's it going?", Chat),
    ("thanks a lot!", Chat),
    ("I'm feeling a bit lonely tonight.", Chat),
    ("早上好呀", Chat),
    ("谢谢你，晚安", Chat),
    ("Salut, ça va ?", Chat),
];

#[test]
fn held_out_queries_are_classified() {
    let model = DomainModel::builtin();
    let mut per_domain: HashMap<Domain, (usize, usize)> = HashMap::new();
    let mut wrong = Vec::new();
    for &(text, want) in HELD_OUT {
        let guess = model.classify(text);
        let entry = per_domain.entry(want).or_default();
        entry.1 += 1;
        if guess.domain == want {
            entry.0 += 1;
        } else {
            wrong.push(format!("{text:?}: want {want:?}, got {guess:?}"));
        }
    }
    let correct: usize = per_domain.values().map(|v| v.0).sum();
    eprintln!("{correct}/{} held-out correct\n{}", HELD_OUT.len(), wrong.join("\n"));
    assert!(correct * 10 >= HELD_OUT.len() * 9, "under 90% held out:\n{}", wrong.join("\n"));
    for domain in Domain::ALL {
        let (right, total) = per_domain.get(&domain).copied().unwrap_or_default();
        assert!(total > 0, "no held-out example for {domain:?}");
        assert!(right * 3 >= total * 2, "{domain:?}: {right}/{total}\n{}", wrong.join("\n"));
    }
}

#[test]
fn guesses_carry_a_runner_up_and_probabilities() {
    let model = DomainModel::builtin();
    let guess = model.classify("Translate this Python script into Rust");
    let (runner_up, p) = guess.runner_up.unwrap();
    assert_ne!(runner_up, guess.domain);
    assert!(p <= guess.confidence && (0.0..=1.0).contains(&p));
    let sum: f32 = model.probabilities("anything").iter().sum();
    assert!((sum - 1.0).abs() < 1e-4);
}

#[test]
fn cheap_rules_hold() {
    let model = DomainModel::builtin();
    // A code fence makes code, even with a translation verb around it.
    let fenced = "Translate this to Go:\n```python\nfor i in range(3):\n    print(i)\n```";
    assert_eq!(model.classify(fenced).domain, Code);
    // LaTeX and operators make maths.
    assert_eq!(model.classify("Evaluate $\\int_0^1 3x^2 \\, dx$").domain, Math);
    // "翻译" with a sentence to translate makes translation.
    assert_eq!(model.classify("翻译：Good luck with your new job!").domain, Translation);
}

#[test]
fn shipped_examples_parse_and_cover_every_domain() {
    let examples =
        DomainModel::builtin_examples().expect("every line of domain_train.jsonl parses");
    let mut counts: HashMap<Domain, usize> = HashMap::new();
    for e in &examples {
        *counts.entry(e.domain).or_default() += 1;
    }
    for domain in Domain::ALL {
        let n = counts.get(&domain).copied().unwrap_or_default();
        assert!(n >= 150, "{domain:?} has only {n} examples");
    }
    // English and Chinese in roughly equal measure.
    let han = |t: &str| t.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    let kana_or_hangul = |t: &str| {
        t.chars().any(|c| {
            ('\u{3040}'..='\u{30ff}').contains(&c) || ('\u{ac00}'..='\u{d7af}').contains(&c)
        })
    };
    let chinese = examples.iter().filter(|e| han(&e.text) && !kana_or_hangul(&e.text)).count();
    let ascii = examples.iter().filter(|e| e.text.is_ascii()).count();
    assert!(chinese * 3 >= ascii * 2 && ascii * 3 >= chinese * 2, "zh {chinese} vs en {ascii}");
    // No duplicates, and none of the held-out queries.
    let mut texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    texts.sort_unstable();
    let before = texts.len();
    texts.dedup();
    assert_eq!(before, texts.len(), "duplicate training examples");
    for (held_out, _) in HELD_OUT {
        assert!(texts.binary_search(held_out).is_err(), "{held_out:?} is in the training data");
    }
}

#[test]
fn builtin_training_is_deterministic_and_fast() {
    let examples = DomainModel::builtin_examples().unwrap();
    let started = Instant::now();
    let a = DomainModel::train(&examples, &TrainOptions::default());
    let took = started.elapsed();
    let b = DomainModel::train(&examples, &TrainOptions::default());
    assert_eq!(a.to_bytes(), b.to_bytes());
    assert_eq!(a, *DomainModel::builtin());
    eprintln!("trained on {} examples in {took:?}", examples.len());
    // Well under the 200 ms start-up budget on a developer machine; generous for loaded CI.
    assert!(took.as_millis() < 1000, "training took {took:?}");
}

#[test]
fn a_deployment_can_train_and_load_its_own_model() {
    let examples: Vec<LabelledExample> = [
        ("how do I fix this null pointer exception", Code),
        ("compile error in my C++ template", Code),
        ("what's the derivative of ln x", Math),
        ("probability of two sixes", Math),
        ("hello!", Chat),
        ("good night", Chat),
    ]
    .into_iter()
    .map(|(text, domain)| LabelledExample { text: text.to_string(), domain })
    .collect();
    let model =
        DomainModel::train(&examples, &TrainOptions { bucket_bits: 12, ..Default::default() });
    let loaded = DomainModel::from_bytes(&model.to_bytes()).unwrap();
    let extractor = router_core::FeatureExtractor::with_domain_model(loaded);
    let features = extractor.extract(&router_core::Prompt::user("another compile error in C++"));
    assert_eq!(features.domain.domain, Code);
    assert_eq!(extractor.domain_model().bucket_bits(), 12);
}
