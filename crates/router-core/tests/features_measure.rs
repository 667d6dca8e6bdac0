//! Measurement against the project's external evaluation data, which is NOT part of the
//! repository and must never be trained on. Ignored by default and skipped when the file is
//! absent, so CI never depends on it. Run with
//!
//! ```text
//! cargo test -p router-core --test features_measure -- --ignored --nocapture
//! ```
//!
//! `LLM_ROUTER_QUERY_LABELS` overrides the path of `labelled_queries.jsonl`.

use std::path::PathBuf;
use std::time::Instant;

use router_core::FeatureExtractor;
use router_core::features::eval::{LabelledQuery, evaluate};

fn queries() -> Option<Vec<LabelledQuery>> {
    let path =
        std::env::var_os("LLM_ROUTER_QUERY_LABELS").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/query_labels/labelled_queries.jsonl")
        });
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} is not there", path.display());
        return None;
    };
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
}

#[test]
#[ignore = "reads the external evaluation data; run by hand"]
fn measure_on_labelled_queries() {
    let Some(queries) = queries() else { return };
    let started = Instant::now();
    let extractor = FeatureExtractor::new();
    eprintln!("extractor built in {:?}", started.elapsed());
    let started = Instant::now();
    let report = evaluate(&extractor, &queries);
    eprintln!("{} queries in {:?}\n\n{report}", queries.len(), started.elapsed());
}

#[test]
#[ignore = "reads the external evaluation data; run by hand"]
fn token_estimate_error_on_labelled_queries() {
    let Some(queries) = queries() else { return };
    let bpe = tiktoken_rs::o200k_base_singleton();
    // (group, Σ|error|/real per query, Σ real, Σ estimate, count)
    let mut groups: Vec<(String, f64, u64, u64, u32)> = Vec::new();
    for q in &queries {
        let real = bpe.encode_with_special_tokens(&q.text).len() as u64;
        if real == 0 {
            continue;
        }
        let estimated = u64::from(router_core::features::tokens::estimate(&q.text));
        let relative = (estimated as f64 - real as f64).abs() / real as f64;
        let lang = q.lang.clone().unwrap_or_else(|| "?".into());
        let kind = if q.label == "code" { "code" } else { "prose" };
        for key in [format!("{lang}/{kind}"), "all".to_string()] {
            match groups.iter_mut().find(|g| g.0 == key) {
                Some(g) => {
                    g.1 += relative;
                    g.2 += real;
                    g.3 += estimated;
                    g.4 += 1;
                }
                None => groups.push((key, relative, real, estimated, 1)),
            }
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    eprintln!("group        n   mean |err|   total o200k   total estimate   total err");
    for (key, sum, real, est, n) in groups {
        eprintln!(
            "{key:<10} {n:>4}   {:>8.1}%   {real:>11}   {est:>14}   {:>+8.1}%",
            100.0 * sum / f64::from(n),
            100.0 * (est as f64 - real as f64) / real as f64
        );
    }
}

/// p50/p99 of a full extraction of ~2,000-token prompts. Needs no data, but timing is only
/// meaningful in an optimised build on a quiet machine, so it is run by hand too.
#[test]
#[ignore = "timing; run by hand"]
fn extraction_latency_percentiles() {
    let extractor = FeatureExtractor::new();
    let en = format!(
        "Summarize the following text in five bullet points.\n\n{}",
        "The old harbour town wakes up slowly. Before the first ferry leaves, the fishermen are \
         already mending nets on the quay, arguing about the weather and the price of diesel. \
         Tourists arrive with the ten o'clock boat and photograph the lighthouse.\n"
            .repeat(40)
    );
    let zh = format!(
        "请用五个要点总结下面这段文字。\n\n{}",
        "清晨的小镇总是醒得很慢。第一班渡轮出发之前，渔民们已经坐在码头上补网，一边抱怨天气，\
         一边讨论柴油又涨价了。十点钟的船带来了游客，他们给灯塔拍照，买几张永远不会寄出的明信片。\n"
            .repeat(28)
    );
    for (name, text) in [("2k-en", &en), ("2k-zh", &zh)] {
        let prompt = router_core::Prompt::user(text);
        let tokens = extractor.extract(&prompt).prompt_tokens;
        let mut samples: Vec<u128> = (0..20_000)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(extractor.extract(std::hint::black_box(&prompt)));
                started.elapsed().as_nanos()
            })
            .collect();
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
        eprintln!(
            "{name} (~{tokens} tokens): p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
            at(0.5),
            at(0.99),
            at(0.999)
        );
    }
}

/// Spearman rank correlation between the complexity score and the difficulty (1-10) that
/// some sources of the evaluation data give their queries.
#[test]
#[ignore = "reads the external evaluation data; run by hand"]
fn complexity_against_labelled_difficulty() {
    let path =
        std::env::var_os("LLM_ROUTER_QUERY_LABELS").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/query_labels/labelled_queries.jsonl")
        });
    let Ok(text) = std::fs::read_to_string(&path) else { return };
    let extractor = FeatureExtractor::new();
    let mut pairs: Vec<(f64, f64)> = Vec::new();
    let mut bands = [[0u32; 3]; 11];
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(difficulty), Some(query)) =
            (value["difficulty"].as_f64(), value["text"].as_str())
        else {
            continue;
        };
        let complexity = extractor.extract(&router_core::Prompt::user(query)).complexity;
        pairs.push((f64::from(complexity.score), difficulty));
        bands[difficulty.clamp(0.0, 10.0) as usize][complexity.band as usize] += 1;
    }
    let rank = |values: Vec<f64>| -> Vec<f64> {
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        let mut ranks = vec![0.0; values.len()];
        let mut i = 0;
        while i < order.len() {
            let mut j = i;
            while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
                j += 1;
            }
            for k in i..=j {
                ranks[order[k]] = (i + j) as f64 / 2.0;
            }
            i = j + 1;
        }
        ranks
    };
    let a = rank(pairs.iter().map(|p| p.0).collect());
    let b = rank(pairs.iter().map(|p| p.1).collect());
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    eprintln!(
        "{} queries with a difficulty; Spearman ρ = {:.3}",
        pairs.len(),
        cov / (va * vb).sqrt()
    );
    eprintln!("difficulty: low / medium / high band");
    for (d, counts) in bands.iter().enumerate().filter(|(_, c)| c.iter().sum::<u32>() > 0) {
        eprintln!("{d:>10}: {:>3} / {:>3} / {:>3}", counts[0], counts[1], counts[2]);
    }
}
