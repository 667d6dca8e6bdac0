//! Model prices: what a deployment would configure for its candidates, and what turns token
//! counts into a cost where a dataset records tokens or characters rather than dollars.

use std::collections::BTreeMap;
use std::path::Path;

use router_core::Price;

use crate::csv;
use crate::error::LoadError;

/// Characters per token when only characters are known: the usual rule of thumb for
/// English, and the rule the shared datasets' READMEs state.
pub const CHARS_PER_TOKEN: f64 = 4.0;

/// Estimated tokens of a text from its characters.
pub fn tokens_of_chars(chars: usize) -> f64 {
    chars as f64 / CHARS_PER_TOKEN
}

/// Prices per model, looked up by name with the organisation prefix and case ignored
/// (`mistralai/Mixtral-8x7B-Instruct-v0.1` finds `mixtral-8x7b-instruct-v0.1`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
    /// Where the prices came from, for the report.
    pub source: String,
}

fn key(model: &str) -> String {
    let name = model.rsplit('/').next().unwrap_or(model);
    name.trim().to_ascii_lowercase()
}

impl PriceTable {
    pub fn new(source: impl Into<String>) -> PriceTable {
        PriceTable { prices: BTreeMap::new(), source: source.into() }
    }

    pub fn insert(&mut self, model: &str, price: Price) {
        self.prices.insert(key(model), price);
    }

    pub fn get(&self, model: &str) -> Option<Price> {
        let k = key(model);
        self.prices.get(&k).copied().or_else(|| {
            ALIASES.iter().find(|(a, _)| *a == k).and_then(|(_, b)| self.prices.get(*b).copied())
        })
    }

    pub fn len(&self) -> usize {
        self.prices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }

    /// Reads a price CSV: a `model` column and input/output prices in USD per million
    /// tokens, under any of the names `input_per_mtok`/`output_per_mtok`,
    /// `usd_per_1M_input`/`usd_per_1M_output`, or the fitted columns of
    /// `price_table_routerbench_implied.csv` (`fit_usd_per_1M_input_tokens`, ...), which are
    /// preferred there over its rounded `suggested_*` columns.
    pub fn from_csv(path: &Path) -> Result<PriceTable, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|e| LoadError::io(path, e))?;
        let mut rows = csv::records(&text);
        let (_, header) =
            rows.next().ok_or_else(|| LoadError::format(path, 1, "the file is empty"))?;
        let column =
            |names: &[&str]| names.iter().find_map(|n| header.iter().position(|h| h.trim() == *n));
        let model =
            column(&["model"]).ok_or_else(|| LoadError::format(path, 1, "no `model` column"))?;
        let input = column(&[
            "input_per_mtok",
            "usd_per_1M_input",
            "fit_usd_per_1M_input_tokens",
            "suggested_usd_per_1M_input",
        ])
        .ok_or_else(|| LoadError::format(path, 1, "no input price column (input_per_mtok)"))?;
        let output = column(&[
            "output_per_mtok",
            "usd_per_1M_output",
            "fit_usd_per_1M_output_tokens",
            "suggested_usd_per_1M_output",
        ])
        .ok_or_else(|| LoadError::format(path, 1, "no output price column (output_per_mtok)"))?;
        let mut table = PriceTable::new(path.display().to_string());
        for (line, fields) in rows {
            let get = |i: usize| fields.get(i).map(|s| s.trim()).unwrap_or("");
            let parse = |i: usize| {
                get(i).parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(|| {
                    LoadError::format(path, line, format!("`{}` is not a price", get(i)))
                })
            };
            table.insert(
                get(model),
                Price { input_per_mtok: parse(input)?, output_per_mtok: parse(output)? },
            );
        }
        Ok(table)
    }

    /// List prices published by the vendors and hosts of the models in the shared
    /// evaluation sets, in USD per million input/output tokens, as of late 2023 (when those
    /// results were produced): OpenAI and Anthropic list prices, Google's PaLM 2 chat price
    /// converted at four characters a token, and Together AI's prices for open models by
    /// size. Approximate by nature; pass a price file to use your own.
    pub fn published() -> PriceTable {
        let mut table = PriceTable::new("built-in published list prices (late 2023)");
        for (model, input, output) in PUBLISHED {
            table.insert(model, Price { input_per_mtok: *input, output_per_mtok: *output });
        }
        table
    }
}

const PUBLISHED: &[(&str, f64, f64)] = &[
    ("gpt-4-1106-preview", 10.0, 30.0),
    ("gpt-4-0314", 30.0, 60.0),
    ("gpt-4-0613", 30.0, 60.0),
    ("gpt-3.5-turbo-1106", 1.0, 2.0),
    ("gpt-3.5-turbo", 1.5, 2.0),
    ("gpt-3.5-turbo-0613", 1.5, 2.0),
    ("claude-1", 8.0, 24.0),
    ("claude-2", 8.0, 24.0),
    ("claude-2.1", 8.0, 24.0),
    ("claude-instant-1", 0.8, 2.4),
    ("palm-2-chat-bison-001", 1.0, 2.0),
    ("llama-2-70b-chat", 0.9, 0.9),
    ("llama-13b", 0.3, 0.3),
    ("vicuna-33b-v1.3", 0.8, 0.8),
    ("mixtral-8x7b-instruct-v0.1", 0.6, 0.6),
    ("mistral-7b-instruct-v0.1", 0.2, 0.2),
    ("starling-lm-7b-alpha", 0.2, 0.2),
    ("openchat_3.5", 0.2, 0.2),
    ("yi-34b-chat", 0.8, 0.8),
    ("code-llama-instruct-34b-chat", 0.78, 0.78),
    ("wizardlm-13b-v1.2", 0.3, 0.3),
];

/// Names the same model goes by in different sets (after the organisation prefix is
/// dropped and case folded): alias → name in a table.
const ALIASES: &[(&str, &str)] = &[
    ("mixtral-8x7b-instruct-v0.1", "mixtral-8x7b-chat"),
    ("mixtral-8x7b-chat", "mixtral-8x7b-instruct-v0.1"),
    ("mistral-7b-instruct-v0.1", "mistral-7b-chat"),
    ("mistral-7b-chat", "mistral-7b-instruct-v0.1"),
    ("claude-v1", "claude-1"),
    ("claude-v2", "claude-2"),
    ("claude-instant-v1", "claude-instant-1"),
    ("claude-1", "claude-v1"),
    ("claude-2", "claude-v2"),
    ("claude-instant-1", "claude-instant-v1"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lookups_ignore_the_organisation_and_case_and_follow_aliases() {
        let t = PriceTable::published();
        assert_eq!(t.get("mistralai/Mixtral-8x7B-Instruct-v0.1").unwrap().input_per_mtok, 0.6);
        assert_eq!(t.get("claude-v2").unwrap().output_per_mtok, 24.0);
        assert!(t.get("no-such-model").is_none());
    }

    #[test]
    fn reads_the_fitted_columns_of_an_implied_price_table() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "model,fit_usd_per_1M_input_tokens,fit_usd_per_1M_output_tokens,suggested_usd_per_1M_input,suggested_usd_per_1M_output"
        )
        .unwrap();
        writeln!(f, "gpt-4-1106-preview,9.64,29.07,10,30").unwrap();
        writeln!(f, "mistralai/mixtral-8x7b-chat,0.58,0.60,0.6,0.6").unwrap();
        let t = PriceTable::from_csv(f.path()).unwrap();
        assert_eq!(
            t.get("gpt-4-1106-preview"),
            Some(Price { input_per_mtok: 9.64, output_per_mtok: 29.07 })
        );
        // RouteLLM's name for the same model finds it through the alias.
        assert_eq!(t.get("mixtral-8x7b-instruct-v0.1").unwrap().input_per_mtok, 0.58);
    }

    #[test]
    fn a_bad_price_names_its_line() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "model,input_per_mtok,output_per_mtok\na,1,2\nb,x,2").unwrap();
        let e = PriceTable::from_csv(f.path()).unwrap_err().to_string();
        assert!(e.contains(":3") && e.contains("`x`"), "{e}");
    }
}
