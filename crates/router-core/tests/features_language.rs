//! Language identification on the short, technical, mixed text that prompts are.

use router_core::Language::{self, *};
use router_core::features::language::detect;

fn check(cases: &[(&str, Language)]) {
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|&(text, want)| {
            let got = detect(text);
            (got.primary != want).then(|| format!("{text:?}: want {want:?}, got {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{} of {} wrong:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}

#[test]
fn the_briefs_examples() {
    check(&[
        ("Hello, how are you?", En),
        ("Write a haiku about autumn", En),
        ("如何在 Kubernetes 中部署 Postgres？", Zh),
    ]);
}

#[test]
fn short_english() {
    check(&[
        ("hi", En),
        ("thanks!", En),
        ("What is the capital of Australia?", En),
        ("Explain recursion like I'm five", En),
        ("Summarize this article in three bullet points", En),
        ("Can you help me debug my Python script?", En),
        ("Translate 'good morning' into French", En),
        ("Give me 10 names for a coffee shop", En),
        ("Is a tomato a fruit or a vegetable?", En),
        ("why is the sky blue", En),
        ("Rewrite this sentence to sound more formal", En),
        ("Solve for x: 3x + 5 = 20", En),
        ("Tell me a joke", En),
        ("Do you like pizza?", En),
        ("Pros and cons of remote work", En),
    ]);
}

#[test]
fn short_chinese() {
    check(&[
        ("你好", Zh),
        ("帮我写一首关于秋天的诗", Zh),
        ("解释一下量子纠缠", Zh),
        ("請幫我翻譯這段話", Zh),
        ("今天天气怎么样？", Zh),
        ("用 Python 写一个快速排序", Zh),
        ("总结下面这篇文章的要点", Zh),
        ("1+1等于几", Zh),
    ]);
}

#[test]
fn short_japanese() {
    check(&[
        ("こんにちは", Ja),
        ("東京の天気は？", Ja),
        ("この文章を英語に翻訳してください", Ja),
        ("Pythonでクイックソートを書いて", Ja),
        ("日本の首都はどこですか", Ja),
        ("カレーの作り方を教えて", Ja),
    ]);
}

#[test]
fn short_korean() {
    check(&[
        ("안녕하세요", Ko),
        ("파이썬으로 퀵소트를 작성해 주세요", Ko),
        ("이 문장을 영어로 번역해줘", Ko),
        ("서울의 인구는 얼마인가요?", Ko),
        ("韓國의 歷史에 대해 설명해 주세요", Ko),
    ]);
}

#[test]
fn short_european() {
    check(&[
        ("Bonjour, comment ça va ?", Fr),
        ("Écris un poème sur la mer", Fr),
        ("Peux-tu m'expliquer la photosynthèse ?", Fr),
        ("Quelle est la capitale du Canada ?", Fr),
        ("Hallo, wie geht es dir?", De),
        ("Schreibe ein Gedicht über den Herbst", De),
        ("Erkläre mir bitte die Relativitätstheorie", De),
        ("Was ist der Unterschied zwischen TCP und UDP?", De),
        ("Hola, ¿cómo estás?", Es),
        ("Escribe un poema sobre el otoño", Es),
        ("¿Cuál es la capital de Perú?", Es),
        ("Explícame qué es una red neuronal", Es),
        ("Ciao, come stai?", It),
        ("Scrivi una poesia sull'autunno", It),
        ("Qual è la capitale della Francia?", It),
        ("Spiegami la differenza tra virus e batteri", It),
        ("Olá, tudo bem?", Pt),
        ("Escreva um poema sobre o outono", Pt),
        ("Qual é a capital do Brasil?", Pt),
        ("Explique como funciona a fotossíntese", Pt),
        ("Hallo, hoe gaat het met je?", Nl),
        ("Schrijf een gedicht over de herfst", Nl),
        ("Wat is het verschil tussen een virus en een bacterie?", Nl),
        ("Leg uit hoe een blockchain werkt", Nl),
        ("Привет, как дела?", Ru),
        ("Напиши стихотворение об осени", Ru),
        ("Объясни, что такое рекурсия", Ru),
    ]);
}

#[test]
fn other_languages_and_no_signal() {
    check(&[
        ("Jak się masz? Napisz wiersz o jesieni", Other),
        ("Bugün hava nasıl? Bir şiir yaz", Other),
        ("Bạn có thể giúp tôi viết một bài thơ không?", Other),
        ("Привіт, як справи? Що ти робиш сьогодні?", Other),
        ("مرحبا، كيف حالك؟", Other),
        ("Γεια σου, τι κάνεις;", Other),
        ("", Unknown),
        ("12345 + 678", Unknown),
        ("???", Unknown),
    ]);
}

#[test]
fn code_switching_is_reported_as_secondary() {
    let mixed = detect("帮我 review 一下这段 code，看看有没有 bug，顺便说说 performance 怎么样");
    assert_eq!(mixed.primary, Zh);
    assert_eq!(mixed.secondary, Some(En));
    assert!(mixed.is_mixed());

    let kubernetes = detect("如何在 Kubernetes 中部署 Postgres？");
    assert_eq!(kubernetes.primary, Zh);
    assert_eq!(kubernetes.secondary, Some(En));

    let english_with_chinese = detect("What does 马马虎虎 mean, and when would I use it?");
    assert_eq!(english_with_chinese.primary, En);
    assert_eq!(english_with_chinese.secondary, Some(Zh));

    let pure = detect("今天天气很好，我们去公园散步吧。");
    assert_eq!(pure.secondary, None);
    assert!(pure.confidence > 0.9, "{pure:?}");
}

#[test]
fn code_with_chinese_comments_is_chinese_with_english() {
    let guess = detect(
        "```python\n# 计算斐波那契数列的第 n 项\ndef fib(n):\n    if n < 2:\n        return n\n    \
         # 递归调用\n    return fib(n - 1) + fib(n - 2)\n```\n这段代码为什么这么慢？",
    );
    assert_eq!(guess.primary, Zh, "{guess:?}");
    assert_eq!(guess.secondary, Some(En), "{guess:?}");
}

#[test]
fn the_opening_clause_is_the_users_language() {
    // The user asks in Chinese and quotes English...
    let guess = detect("请把这句话翻译成中文：The weather is lovely today, shall we go hiking?");
    assert_eq!(guess.primary, Zh, "{guess:?}");
    assert_eq!(guess.secondary, Some(En));
    // ...or asks in English and quotes Chinese.
    let guess = detect("Translate into English: 今天天气很好，我们去爬山吧");
    assert_eq!(guess.primary, En, "{guess:?}");
    assert_eq!(guess.secondary, Some(Zh));
}

#[test]
fn confidence_grows_with_evidence() {
    let short = detect("hi");
    let long = detect("Hello there, I would like you to explain how the immune system works.");
    assert!(short.confidence < long.confidence, "{short:?} vs {long:?}");
    assert!(long.confidence > 0.8, "{long:?}");
    assert!((0.0..=1.0).contains(&short.confidence));
}
