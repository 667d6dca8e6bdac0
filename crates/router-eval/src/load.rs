//! Reading datasets: the documented format, and the layouts of the shared evaluation sets,
//! which are that format with known column names.
//!
//! A dataset is two files:
//!
//! - **prompts** (JSON Lines), one object per prompt: `prompt_id` (string, required); the
//!   text as `prompt` or `text` (a string), or `turns` (an array of user turns), plus an
//!   optional `turn2` (a second user turn, as MT-Bench has); optional `lang` (ISO 639-1)
//!   and `subset` (any label to report by).
//! - **scores** (CSV with a header), one row per prompt × model: `prompt_id`, `model`, and
//!   the quality as `quality` or `score` (in [0, 1] unless a scale is given) or
//!   `score_1to10` (1–10). The cost as `cost_usd`; or else it is priced from a price table
//!   with `input_tokens` (default: the prompt's characters / 4) and `output_tokens`, or
//!   `output_chars`/`answer_chars`/`response_chars` / 4 (an unknown answer length prices
//!   the input alone). Empty cells are missing values: the row is skipped, never imputed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use router_core::Price;
use serde_json::Value;

use crate::csv;
use crate::dataset::{Dataset, Graded, Item};
use crate::error::LoadError;
use crate::prices::{PriceTable, tokens_of_chars};
use crate::pylist;

/// Cost per call assumed for every model when the data has no costs at all.
pub const EQUAL_COST_USD: f64 = 0.001;

/// The known layouts. Each is the documented format with particular columns; `Generic`
/// reads whatever of them a file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Generic,
    /// RouterBench (Martian): Python-list prompts, 0/1 `score`, real `cost_usd` per call.
    RouterBench,
    /// Arena-Hard v0.1 style: `score_1to10` by GPT-4, priced from `answer_chars`.
    Arena,
    /// RouteLLM's evaluation data: 0/1 (MT-Bench 1–10 mapped to [0, 1]) `score`, priced
    /// from `output_chars` where known.
    RouteLlm,
    /// RouterDC: `score` in [0, 1], no costs (all models cost the same).
    RouterDc,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Generic => "generic",
            Layout::RouterBench => "routerbench",
            Layout::Arena => "arena",
            Layout::RouteLlm => "routellm",
            Layout::RouterDc => "routerdc",
        }
    }

    /// Recognises a shared layout from its score file's header.
    pub fn detect(header: &[String]) -> Layout {
        let has = |name: &str| header.iter().any(|h| h.trim() == name);
        if has("score_1to10") && has("answer_chars") {
            Layout::Arena
        } else if has("cost_usd") && has("response_chars") {
            Layout::RouterBench
        } else if has("correct") && !has("cost_usd") {
            Layout::RouterDc
        } else if has("output_chars") && !has("cost_usd") {
            Layout::RouteLlm
        } else {
            Layout::Generic
        }
    }
}

impl FromStr for Layout {
    type Err = String;

    fn from_str(s: &str) -> Result<Layout, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "generic" => Layout::Generic,
            "routerbench" | "routerbench_subset" => Layout::RouterBench,
            "arena" | "arena_bench_v1" | "arena-hard" => Layout::Arena,
            "routellm" => Layout::RouteLlm,
            "routerdc" | "routerdc_7models" => Layout::RouterDc,
            other => {
                return Err(format!(
                    "unknown format `{other}` (generic, routerbench, arena, routellm, routerdc)"
                ));
            }
        })
    }
}

/// How to read a dataset.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The layout; detected from the score file's header when `None`.
    pub layout: Option<Layout>,
    /// Prices for the router's candidates and for pricing tokens. Without one, the
    /// built-in published prices are tried, then prices fitted from recorded costs.
    pub prices: Option<PriceTable>,
    /// The scale of the quality column (`(lowest, highest)`), mapped onto [0, 1].
    pub scale: Option<(f64, f64)>,
    /// Treat every model as costing the same per call, whatever the data says.
    pub equal_costs: bool,
    /// Name for reports; defaults to the directory or file name.
    pub name: Option<String>,
}

/// Reads `prompts.jsonl` and `scores.csv` from a directory (the shared layout). A price
/// table next to the directory (`../price_table_*.csv`) is used for RouterBench and
/// RouteLLM when no prices are given: it holds the prices fitted to RouterBench's costs.
pub fn load_dir(dir: &Path, options: &LoadOptions) -> Result<Dataset, LoadError> {
    let prompts = dir.join("prompts.jsonl");
    let scores = dir.join("scores.csv");
    let mut options = options.clone();
    if options.name.is_none() {
        options.name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    }
    if options.prices.is_none() {
        let layout = match options.layout {
            Some(l) => l,
            None => Layout::detect(&score_header(&scores)?),
        };
        if matches!(layout, Layout::RouterBench | Layout::RouteLlm)
            && let Some(table) = sibling_price_table(dir)
        {
            options.prices = Some(PriceTable::from_csv(&table)?);
        }
    }
    load(&prompts, &scores, &options)
}

fn sibling_price_table(dir: &Path) -> Option<PathBuf> {
    let parent = dir.parent()?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(parent)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("price_table") && n.ends_with(".csv"))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

fn score_header(path: &Path) -> Result<Vec<String>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::io(path, e))?;
    Ok(csv::records(&text).next().map(|(_, h)| h).unwrap_or_default())
}

/// Reads a dataset from a prompts file and a scores file.
pub fn load(
    prompts_path: &Path,
    scores_path: &Path,
    options: &LoadOptions,
) -> Result<Dataset, LoadError> {
    let scores_text =
        std::fs::read_to_string(scores_path).map_err(|e| LoadError::io(scores_path, e))?;
    let mut rows = csv::records(&scores_text);
    let (_, header) =
        rows.next().ok_or_else(|| LoadError::format(scores_path, 1, "the score file is empty"))?;
    let layout = options.layout.unwrap_or_else(|| Layout::detect(&header));
    let items = read_prompts(prompts_path, layout)?;
    let index: HashMap<&str, usize> =
        items.iter().enumerate().map(|(i, item)| (item.id.as_str(), i)).collect();

    let columns = Columns::find(&header, scores_path)?;
    let scale =
        options.scale.unwrap_or(if columns.quality_is_1to10 { (1.0, 10.0) } else { (0.0, 1.0) });
    if scale.1 <= scale.0 || !scale.0.is_finite() || !scale.1.is_finite() {
        return Err(LoadError::Invalid(format!(
            "the quality scale {}..{} is empty",
            scale.0, scale.1
        )));
    }
    let equal_costs = options.equal_costs
        || layout == Layout::RouterDc
        || (columns.cost.is_none() && !columns.priced());
    let table = match &options.prices {
        Some(t) => t.clone(),
        None => PriceTable::published(),
    };

    let mut models: Vec<String> = Vec::new();
    let mut model_index: HashMap<String, usize> = HashMap::new();
    let mut results: Vec<Vec<Option<Graded>>> = vec![Vec::new(); items.len()];
    let mut skipped_empty = 0usize;
    let mut unknown_prompt = 0usize;
    let mut clamped = 0usize;
    let mut input_only = 0usize;
    let mut duplicates = 0usize;
    let mut missing_price: Vec<String> = Vec::new();
    for (line, fields) in rows {
        let cell = |i: usize| fields.get(i).map(|s| s.trim()).unwrap_or("");
        let Some(&item) = index.get(cell(columns.prompt_id)) else {
            unknown_prompt += 1;
            continue;
        };
        let model = cell(columns.model);
        if model.is_empty() {
            return Err(LoadError::format(scores_path, line, "empty `model`"));
        }
        let raw = cell(columns.quality);
        if raw.is_empty() {
            skipped_empty += 1;
            continue;
        }
        let value: f64 = raw.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
            LoadError::format(scores_path, line, format!("quality `{raw}` is not a number"))
        })?;
        let mut quality = (value - scale.0) / (scale.1 - scale.0);
        if !(0.0..=1.0).contains(&quality) {
            clamped += 1;
            quality = quality.clamp(0.0, 1.0);
        }
        let output_tokens = columns.output_tokens(&fields);
        let cost_usd = if equal_costs {
            EQUAL_COST_USD
        } else if let Some(c) = columns.cost {
            let raw = cell(c);
            if raw.is_empty() {
                skipped_empty += 1;
                continue;
            }
            raw.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0).ok_or_else(|| {
                LoadError::format(
                    scores_path,
                    line,
                    format!("cost `{raw}` is not a non-negative number"),
                )
            })?
        } else {
            let Some(price) = table.get(model) else {
                if !missing_price.iter().any(|m| m == model) {
                    missing_price.push(model.to_string());
                }
                continue;
            };
            let input = columns
                .input_tokens(&fields)
                .unwrap_or_else(|| tokens_of_chars(items[item].chars()));
            if output_tokens.is_none() {
                input_only += 1;
            }
            let output = output_tokens.map_or(0.0, f64::from);
            (input * price.input_per_mtok + output * price.output_per_mtok) / 1_000_000.0
        };
        let m = *model_index.entry(model.to_string()).or_insert_with(|| {
            models.push(model.to_string());
            models.len() - 1
        });
        let row = &mut results[item];
        if row.len() <= m {
            row.resize(m + 1, None);
        }
        if row[m].is_some() {
            duplicates += 1;
        }
        row[m] = Some(Graded { quality, cost_usd, output_tokens });
    }
    if !missing_price.is_empty() {
        return Err(LoadError::Invalid(format!(
            "no price for {} (costs must be priced from tokens; pass a price file with a row for each)",
            missing_price.join(", ")
        )));
    }
    if models.is_empty() {
        return Err(LoadError::Invalid(format!("{}: no usable score rows", scores_path.display())));
    }

    // The router is told each model's price, as a deployment's config would.
    let mut notes = Vec::new();
    let prices: Vec<Price> = if equal_costs {
        vec![Price { input_per_mtok: 1.0, output_per_mtok: 1.0 }; models.len()]
    } else {
        let mut fitted = Vec::new();
        let prices = models
            .iter()
            .enumerate()
            .map(|(m, name)| {
                table.get(name).unwrap_or_else(|| {
                    fitted.push(name.clone());
                    fit_price(&items, &results, m)
                })
            })
            .collect();
        notes.push(format!("candidate prices: {}", table.source));
        if !fitted.is_empty() {
            notes.push(format!("prices fitted from recorded costs for {}", fitted.join(", ")));
        }
        prices
    };
    notes.insert(
        0,
        format!(
            "layout {}, quality scale {}..{} mapped to 0..1",
            layout.as_str(),
            scale.0,
            scale.1
        ),
    );
    if equal_costs {
        notes.push(
            "no costs in the data: every model costs the same; only quality is compared".into(),
        );
    } else if columns.cost.is_some() {
        notes.push("scored costs: the recorded per-call cost_usd".into());
    } else {
        notes.push(format!(
            "scored costs: price × tokens ({}; prompt and answer tokens = characters / 4)",
            table.source
        ));
    }
    if input_only > 0 {
        notes.push(format!(
            "{input_only} results have no answer length: priced on their input tokens alone"
        ));
    }
    if skipped_empty > 0 {
        notes.push(format!("{skipped_empty} score rows with empty cells skipped"));
    }
    if unknown_prompt > 0 {
        notes.push(format!("{unknown_prompt} score rows name no known prompt_id and were skipped"));
    }
    if clamped > 0 {
        notes.push(format!("{clamped} qualities outside the scale were clamped"));
    }
    if duplicates > 0 {
        notes.push(format!("{duplicates} duplicate prompt × model rows: the last one counts"));
    }
    let name = options.name.clone().unwrap_or_else(|| {
        prompts_path
            .parent()
            .and_then(|p| p.file_name())
            .map_or("dataset".into(), |n| n.to_string_lossy().into_owned())
    });
    let mut dataset = Dataset::new(name, models, prices, items, results);
    dataset.notes = notes;
    dataset.equal_costs = equal_costs;
    Ok(dataset)
}

/// One blended per-token price from recorded costs: what an operator without a price list
/// would derive from a bill.
fn fit_price(items: &[Item], results: &[Vec<Option<Graded>>], model: usize) -> Price {
    let (mut cost, mut tokens) = (0.0, 0.0);
    for (item, row) in items.iter().zip(results) {
        if let Some(Some(g)) = row.get(model) {
            cost += g.cost_usd;
            tokens += tokens_of_chars(item.chars()) + g.output_tokens.map_or(0.0, f64::from);
        }
    }
    let per_mtok = if tokens > 0.0 { cost / tokens * 1_000_000.0 } else { 0.0 };
    Price { input_per_mtok: per_mtok, output_per_mtok: per_mtok }
}

/// Where the columns of a score file are.
struct Columns {
    prompt_id: usize,
    model: usize,
    quality: usize,
    quality_is_1to10: bool,
    cost: Option<usize>,
    input_tokens: Option<usize>,
    output_tokens: Option<usize>,
    output_chars: Option<usize>,
}

impl Columns {
    fn find(header: &[String], path: &Path) -> Result<Columns, LoadError> {
        let col = |name: &str| header.iter().position(|h| h.trim() == name);
        let need = |name: &str| {
            col(name).ok_or_else(|| LoadError::format(path, 1, format!("no `{name}` column")))
        };
        let (quality, quality_is_1to10) = match (col("quality"), col("score"), col("score_1to10")) {
            (Some(q), _, _) | (None, Some(q), _) => (q, false),
            (None, None, Some(q)) => (q, true),
            _ => {
                return Err(LoadError::format(
                    path,
                    1,
                    "no quality column (quality, score or score_1to10)",
                ));
            }
        };
        Ok(Columns {
            prompt_id: need("prompt_id")?,
            model: need("model")?,
            quality,
            quality_is_1to10,
            cost: col("cost_usd"),
            input_tokens: col("input_tokens"),
            output_tokens: col("output_tokens"),
            output_chars: col("output_chars")
                .or_else(|| col("answer_chars"))
                .or_else(|| col("response_chars")),
        })
    }

    /// True when costs can be priced from token or character counts.
    fn priced(&self) -> bool {
        self.input_tokens.is_some() || self.output_tokens.is_some() || self.output_chars.is_some()
    }

    fn number(fields: &[String], column: Option<usize>) -> Option<f64> {
        let raw = fields.get(column?)?.trim();
        raw.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
    }

    fn input_tokens(&self, fields: &[String]) -> Option<f64> {
        Self::number(fields, self.input_tokens)
    }

    fn output_tokens(&self, fields: &[String]) -> Option<u32> {
        Self::number(fields, self.output_tokens)
            .or_else(|| {
                Self::number(fields, self.output_chars).map(|c| c / crate::prices::CHARS_PER_TOKEN)
            })
            .map(|t| t.round().min(f64::from(u32::MAX)) as u32)
    }
}

fn read_prompts(path: &Path, layout: Layout) -> Result<Vec<Item>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::io(path, e))?;
    let mut items = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| LoadError::format(path, line_no, format!("not a JSON object: {e}")))?;
        let id = match value.get("prompt_id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(LoadError::format(path, line_no, "no `prompt_id`")),
        };
        let mut turns =
            match (value.get("turns"), value.get("prompt").or_else(|| value.get("text"))) {
                (Some(Value::Array(turns)), _) => {
                    turns.iter().filter_map(|t| t.as_str().map(str::to_string)).collect()
                }
                (_, Some(Value::String(text))) => decode_prompt(text, layout),
                _ => {
                    return Err(LoadError::format(path, line_no, "no `prompt`, `text` or `turns`"));
                }
            };
        if let Some(Value::String(second)) = value.get("turn2")
            && !second.trim().is_empty()
        {
            turns.push(second.clone());
        }
        if turns.iter().all(|t: &String| t.trim().is_empty()) {
            return Err(LoadError::format(path, line_no, "the prompt is empty"));
        }
        let text_field = |name: &str| {
            value.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
        };
        let item = Item {
            id: id.clone(),
            turns,
            language: text_field("lang").or_else(|| text_field("language")),
            subset: text_field("subset"),
        };
        if let Some(&first) = seen.get(&id) {
            return Err(LoadError::format(
                path,
                line_no,
                format!("prompt_id `{id}` already appeared (item {})", first + 1),
            ));
        }
        seen.insert(id, items.len());
        items.push(item);
    }
    Ok(items)
}

/// RouterBench keeps each prompt as a Python list literal of its turns; everything else is
/// plain text.
fn decode_prompt(text: &str, layout: Layout) -> Vec<String> {
    if layout == Layout::RouterBench
        && let Some(turns) = pylist::strings(text)
        && !turns.is_empty()
    {
        return turns;
    }
    vec![text.to_string()]
}
