//! The dataset loaders on small fixtures in each layout.

use std::io::Write;
use std::path::{Path, PathBuf};

use router_eval::load::EQUAL_COST_USD;
use router_eval::{Layout, LoadError, LoadOptions, PriceTable, load, load_dir};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn generic_files_with_token_counts_are_priced_from_the_price_file() {
    let prices = PriceTable::from_csv(&fixture("learnable/prices.csv")).unwrap();
    let options = LoadOptions { prices: Some(prices), ..LoadOptions::default() };
    let d = load(&fixture("learnable/prompts.jsonl"), &fixture("learnable/scores.csv"), &options)
        .unwrap();
    assert_eq!(d.items.len(), 60);
    assert_eq!(d.models, ["strong-large", "code-small", "zh-small", "tiny-chat"]);
    assert!((0..60).all(|i| d.is_complete(i)));
    assert!(!d.equal_costs);
    // code-00 × strong-large: 0.96, 21 input and 135 output tokens at $10 / $30 per million.
    let item = d.items.iter().position(|i| i.id == "code-00").unwrap();
    let g = d.result(item, 0).unwrap();
    assert!(close(g.quality, 0.96));
    assert!(close(g.cost_usd, (21.0 * 10.0 + 135.0 * 30.0) / 1e6), "{}", g.cost_usd);
    assert_eq!(g.output_tokens, Some(135));
    assert_eq!(d.items[item].subset.as_deref(), Some("code"));
    let zh = d.items.iter().find(|i| i.id == "zh-03").unwrap();
    assert_eq!(zh.language.as_deref(), Some("zh"));
    assert_eq!(d.prices[3].input_per_mtok, 0.1);
}

#[test]
fn routerbench_prompts_are_unwrapped_costs_are_recorded_and_empty_scores_skipped() {
    let d = load_dir(&fixture("routerbench"), &LoadOptions::default()).unwrap();
    assert_eq!(d.name, "routerbench");
    assert_eq!(
        d.items[0].turns,
        vec![
            "Which gas do plants take in?\nA) oxygen\nB) carbon dioxide\nPrint only a single choice.\nAnswer:"
        ]
    );
    assert_eq!(d.items[1].turns, vec!["Write a function to check if a number is even. It's easy."]);
    assert_eq!(d.items[2].turns.len(), 2, "a two-item list is two turns");
    let gpt4 = d.model_index("gpt-4-1106-preview").unwrap();
    let mistral = d.model_index("mistralai/mistral-7b-chat").unwrap();
    assert!(close(d.result(1, gpt4).unwrap().cost_usd, 0.009));
    assert_eq!(d.result(1, gpt4).unwrap().output_tokens, Some(105));
    assert!(d.result(2, mistral).is_none(), "an empty score is a missing value");
    assert!(!d.is_complete(2) && d.is_complete(0));
    // Candidates are priced from the fitted columns of the price table next to the data.
    assert_eq!(d.prices[gpt4].input_per_mtok, 9.64);
    assert!(d.notes.iter().any(|n| n.contains("1 score rows with empty cells")), "{:?}", d.notes);
}

#[test]
fn arena_scores_map_from_one_to_ten_and_costs_come_from_published_prices() {
    let d = load_dir(&fixture("arena"), &LoadOptions::default()).unwrap();
    let gpt4 = d.model_index("gpt-4-1106-preview").unwrap();
    let llama = d.model_index("llama-13b").unwrap();
    assert!(close(d.result(0, gpt4).unwrap().quality, 1.0));
    assert!(close(d.result(0, llama).unwrap().quality, 0.0));
    assert!(close(d.result(1, gpt4).unwrap().quality, 7.5 / 9.0));
    // 4000 answer characters are 1000 tokens at $30/M, plus the prompt's characters / 4 at $10/M.
    let chars = "Explain the difference between a process and a thread.".chars().count() as f64;
    let expected = (chars / 4.0 * 10.0 + 1000.0 * 30.0) / 1e6;
    assert!(close(d.result(0, gpt4).unwrap().cost_usd, expected));
    assert!(d.result(1, llama).is_none());
}

#[test]
fn routellm_second_turns_are_kept_and_unknown_answer_lengths_price_the_input_alone() {
    let d = load_dir(&fixture("routellm"), &LoadOptions::default()).unwrap();
    assert_eq!(d.items[1].turns.len(), 2);
    let mixtral = d.model_index("mixtral-8x7b-instruct-v0.1").unwrap();
    // RouteLLM's Mixtral name finds the table's through the alias.
    assert_eq!(d.prices[mixtral].input_per_mtok, 0.58);
    let g = d.result(1, mixtral).unwrap();
    let chars = d.items[1].chars() as f64;
    assert!(close(g.cost_usd, chars / 4.0 * 0.58 / 1e6), "{}", g.cost_usd);
    assert_eq!(g.output_tokens, None);
    assert!(d.notes.iter().any(|n| n.contains("2 results have no answer length")), "{:?}", d.notes);
}

#[test]
fn routerdc_has_no_costs_so_every_model_costs_the_same() {
    let d = load_dir(&fixture("routerdc"), &LoadOptions::default()).unwrap();
    assert!(d.equal_costs);
    assert!(
        (0..2).all(|i| (0..2).all(|m| close(d.result(i, m).unwrap().cost_usd, EQUAL_COST_USD)))
    );
    let zh = d.filtered(|i| i.language.as_deref() == Some("zh"));
    assert_eq!(zh.items.len(), 1);
    assert_eq!(zh.items[0].id, "d1");
    assert!(close(zh.result(0, 1).unwrap().quality, 1.0));
}

#[test]
fn layouts_are_detected_from_the_score_header() {
    let h = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        Layout::detect(&h("prompt_id,model,score,cost_usd,response_chars")),
        Layout::RouterBench
    );
    assert_eq!(
        Layout::detect(&h("prompt_id,question_id,model,score_1to10,answer_chars,judgment_source")),
        Layout::Arena
    );
    assert_eq!(Layout::detect(&h("prompt_id,model,score,output_chars")), Layout::RouteLlm);
    assert_eq!(Layout::detect(&h("prompt_id,model,score,correct")), Layout::RouterDc);
    assert_eq!(Layout::detect(&h("prompt_id,model,quality,cost_usd")), Layout::Generic);
    assert_eq!("routerbench".parse::<Layout>(), Ok(Layout::RouterBench));
    assert!("nonsense".parse::<Layout>().is_err());
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    path
}

#[test]
fn errors_name_the_file_and_line_and_missing_prices_name_the_models() {
    let dir = tempfile::tempdir().unwrap();
    let prompts =
        write(dir.path(), "p.jsonl", "{\"prompt_id\": \"a\", \"prompt\": \"hi\"}\nnot json\n");
    let scores = write(dir.path(), "s.csv", "prompt_id,model,quality,cost_usd\na,m,1,0.1\n");
    let e = load(&prompts, &scores, &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, LoadError::Format { line: 2, .. }), "{e}");

    let prompts = write(dir.path(), "p.jsonl", "{\"prompt_id\": \"a\", \"prompt\": \"hi\"}\n");
    let scores = write(dir.path(), "s.csv", "prompt_id,model,quality,cost_usd\na,m,high,0.1\n");
    let e = load(&prompts, &scores, &LoadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("s.csv:2") && e.contains("`high`"), "{e}");

    let scores = write(dir.path(), "s.csv", "prompt_id,model\na,m\n");
    let e = load(&prompts, &scores, &LoadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("no quality column"), "{e}");

    let scores =
        write(dir.path(), "s.csv", "prompt_id,model,quality,output_tokens\na,mystery-model,1,10\n");
    let e = load(&prompts, &scores, &LoadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("no price for mystery-model"), "{e}");

    let prompts = write(
        dir.path(),
        "p.jsonl",
        "{\"prompt_id\": \"a\", \"prompt\": \"hi\"}\n{\"prompt_id\": \"a\", \"prompt\": \"again\"}\n",
    );
    let e = load(&prompts, &scores, &LoadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("already appeared"), "{e}");
}

#[test]
fn a_custom_scale_maps_onto_zero_to_one_and_out_of_range_values_are_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = write(
        dir.path(),
        "p.jsonl",
        "{\"prompt_id\": \"a\", \"turns\": [\"hi\", \"and?\"], \"lang\": \"en\"}\n",
    );
    let scores =
        write(dir.path(), "s.csv", "prompt_id,model,score,cost_usd\na,m,3,0.1\na,n,7,0.2\n");
    let options = LoadOptions { scale: Some((1.0, 5.0)), ..LoadOptions::default() };
    let d = load(&prompts, &scores, &options).unwrap();
    assert_eq!(d.items[0].turns, vec!["hi", "and?"]);
    assert!(close(d.result(0, 0).unwrap().quality, 0.5));
    assert!(close(d.result(0, 1).unwrap().quality, 1.0));
    assert!(d.notes.iter().any(|n| n.contains("clamped")));
}
