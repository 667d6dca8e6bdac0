//! What a simulated model says: a deterministic answer derived from the prompt, split into
//! stream chunks, with token counts that every wire format reports the same way.

use serde_json::Value;

use crate::Style;
use crate::schema;

/// A request reduced to what the answer depends on, whatever wire format it came in.
#[derive(Debug, Default)]
pub(crate) struct Prompt {
    /// Text of the last user message ("" if there is none).
    pub last_user: String,
    /// The content of the last message when it is a tool result.
    pub tool_result: Option<String>,
    /// Estimated tokens of everything the model reads.
    pub prompt_tokens: u32,
    /// Tools offered, in order.
    pub tools: Vec<ToolSpec>,
    /// Whether and which tool must be called.
    pub tool_choice: ToolChoice,
    /// The caller's output limit.
    pub max_tokens: Option<u32>,
}

/// One offered tool.
#[derive(Debug)]
pub(crate) struct ToolSpec {
    pub name: String,
    /// Its JSON schema for the arguments.
    pub parameters: Value,
}

/// The caller's tool choice, in neutral form.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) enum ToolChoice {
    /// The model decides (here: calls a tool when the user asks for one).
    #[default]
    Auto,
    /// No tool call.
    None,
    /// Some tool must be called.
    Required,
    /// This tool must be called.
    Named(String),
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    Stop,
    Length,
    ToolUse,
}

/// A tool call the model makes.
#[derive(Debug)]
pub(crate) struct ToolCall {
    pub name: String,
    pub arguments: Value,
    /// `arguments` serialised once, for wire formats that send a string.
    pub arguments_json: String,
}

/// The model's answer.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The text, in stream-chunk-sized pieces (empty for a tool call).
    pub pieces: Vec<String>,
    pub tool_call: Option<ToolCall>,
    pub finish: Finish,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl Reply {
    /// The whole text.
    pub(crate) fn text(&self) -> String {
        self.pieces.concat()
    }

    /// How many content chunks a stream of this reply carries.
    pub(crate) fn chunk_count(&self) -> usize {
        match &self.tool_call {
            Some(call) => argument_pieces(&call.arguments_json).len(),
            None => self.pieces.len(),
        }
    }
}

/// Estimated tokens of `text`: one per CJK character, one per four other characters
/// (rounded up). Crude but consistent, so usage and cost differ between verbose and terse
/// models and between prompts in a predictable way.
pub fn estimate_tokens(text: &str) -> u32 {
    let (cjk, other) = text.chars().fold((0u32, 0u32), |(cjk, other), c| {
        if is_cjk(c) { (cjk + 1, other) } else { (cjk, other + 1) }
    });
    cjk + other.div_ceil(4)
}

/// Estimated prompt tokens of a conversation: its texts plus a small per-message overhead,
/// as chat templates add role markers.
pub(crate) fn prompt_tokens<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    extra_chars: usize,
) -> u32 {
    let per_message = 4;
    let body: u32 = texts.into_iter().map(|t| estimate_tokens(t) + per_message).sum();
    let extra = u32::try_from(extra_chars.div_ceil(4)).unwrap_or(u32::MAX);
    body.saturating_add(extra).max(1)
}

/// What `model` answers to `prompt` in `style`.
pub(crate) fn reply(model: &str, style: Style, prompt: &Prompt) -> Reply {
    if let Some(call) = tool_call(prompt) {
        let completion_tokens = estimate_tokens(&call.name) + estimate_tokens(&call.arguments_json);
        return Reply {
            pieces: Vec::new(),
            tool_call: Some(call),
            finish: Finish::ToolUse,
            prompt_tokens: prompt.prompt_tokens,
            completion_tokens,
        };
    }
    let text = compose(model, style, prompt);
    let mut pieces = split_pieces(&text);
    let mut finish = Finish::Stop;
    let mut completion_tokens = estimate_tokens(&text);
    if let Some(limit) = prompt.max_tokens
        && completion_tokens > limit
    {
        (pieces, completion_tokens) = truncate(pieces, limit);
        finish = Finish::Length;
    }
    Reply {
        pieces,
        tool_call: None,
        finish,
        prompt_tokens: prompt.prompt_tokens,
        completion_tokens,
    }
}

/// Keeps the longest prefix of pieces that fits in `limit` tokens.
fn truncate(pieces: Vec<String>, limit: u32) -> (Vec<String>, u32) {
    let mut kept = Vec::new();
    let (mut cjk, mut other) = (0u32, 0u32);
    for piece in pieces {
        let (c, o) = piece
            .chars()
            .fold((0, 0), |(c, o), ch| if is_cjk(ch) { (c + 1, o) } else { (c, o + 1) });
        if cjk + c + (other + o).div_ceil(4) > limit {
            break;
        }
        cjk += c;
        other += o;
        kept.push(piece);
    }
    (kept, cjk + other.div_ceil(4))
}

fn tool_call(prompt: &Prompt) -> Option<ToolCall> {
    let first = prompt.tools.first()?;
    if prompt.tool_result.is_some() {
        return None;
    }
    let tool = match &prompt.tool_choice {
        ToolChoice::None => return None,
        ToolChoice::Auto if !asks_for_tool(&prompt.last_user) => return None,
        ToolChoice::Auto | ToolChoice::Required => first,
        ToolChoice::Named(name) => prompt.tools.iter().find(|t| &t.name == name).unwrap_or(first),
    };
    let arguments = schema::sample(&tool.parameters, &prompt.last_user);
    let arguments_json = arguments.to_string();
    Some(ToolCall { name: tool.name.clone(), arguments, arguments_json })
}

/// Whether the user asks for a tool: "use the tool", "call …", "调用", "工具".
fn asks_for_tool(text: &str) -> bool {
    if text.contains("调用") || text.contains("工具") {
        return true;
    }
    text.split(|c: char| !c.is_alphanumeric())
        .any(|w| ["tool", "tools", "call"].iter().any(|t| w.eq_ignore_ascii_case(t)))
}

fn compose(model: &str, style: Style, prompt: &Prompt) -> String {
    if let Some(result) = &prompt.tool_result {
        let result = clip(result.trim(), 200);
        return match style {
            Style::ChineseFirst => {
                format!("[{model}] 工具返回：{result}。(The tool returned: {result}.)")
            }
            _ => format!("[{model}] The tool returned: {result}."),
        };
    }
    let topic = topic(&prompt.last_user);
    let pick =
        |options: &[&'static str]| options[fnv1a(&prompt.last_user) as usize % options.len()];
    match style {
        Style::Terse => {
            let opener = pick(&["Short answer", "In brief", "Answer"]);
            format!("[{model}] {opener}: {topic}.")
        }
        Style::Balanced => {
            let opener = pick(&["Here is a clear answer", "Good question", "Let me answer that"]);
            format!(
                "[{model}] {opener} about \"{topic}\". The key idea is to split it into small \
                 steps and check each one."
            )
        }
        Style::Verbose => format!(
            "[{model}] Here is a detailed answer about \"{topic}\". First, it helps to restate \
             the question and the assumptions behind it, because they decide which approach \
             fits. Second, break the problem into smaller steps and solve them one at a time, \
             checking each intermediate result. Third, look at the edge cases and at how they \
             change the outcome. Finally, compare the alternatives and their trade-offs. In \
             summary, \"{topic}\" is best handled step by step, with a check at every stage."
        ),
        Style::ChineseFirst => format!(
            "[{model}] 关于「{topic}」的回答：先明确问题，再逐步求解，最后检查结果。\
             (In short: {topic}, step by step.)"
        ),
        Style::Echo => format!("[{model}] {}", prompt.last_user),
    }
}

/// The gist of a question: its first line, at most ten words or twenty CJK characters,
/// without closing punctuation.
fn topic(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let short = if line.chars().any(is_cjk) {
        clip(line, 20)
    } else {
        line.split_whitespace().take(10).collect::<Vec<_>>().join(" ")
    };
    let short = short.trim_end_matches(|c: char| {
        c.is_ascii_punctuation() || matches!(c, '。' | '？' | '！' | '，' | '：' | '；')
    });
    if short.is_empty() { "your request".to_owned() } else { short.to_owned() }
}

/// At most `max` characters of `text`.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Splits text into stream chunks: one per word (with its leading space) and one per CJK
/// character, roughly as a tokenizer would.
pub(crate) fn split_pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut has_word = false;
    for c in text.chars() {
        if is_cjk(c) {
            if has_word {
                pieces.push(std::mem::take(&mut current));
            }
            current.push(c);
            pieces.push(std::mem::take(&mut current));
            has_word = false;
            continue;
        }
        if c.is_whitespace() && has_word {
            pieces.push(std::mem::take(&mut current));
            has_word = false;
        }
        has_word |= !c.is_whitespace();
        current.push(c);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// Splits serialised tool arguments into a few stream chunks, as providers send them.
pub(crate) fn argument_pieces(json: &str) -> Vec<&str> {
    const PIECE: usize = 12;
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < json.len() {
        let mut end = (start + PIECE).min(json.len());
        while !json.is_char_boundary(end) {
            end += 1;
        }
        pieces.push(&json[start..end]);
        start = end;
    }
    pieces
}

/// CJK ideographs, kana, hangul and their punctuation: each counts as about one token.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3000}'..='\u{30FF}' | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}'
        | '\u{AC00}'..='\u{D7AF}' | '\u{F900}'..='\u{FAFF}' | '\u{FF00}'..='\u{FFEF}')
}

/// A small, stable hash (FNV-1a), so answers and ids do not change between runs.
pub(crate) fn fnv1a(text: &str) -> u64 {
    text.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(text: &str) -> Prompt {
        Prompt { last_user: text.to_owned(), prompt_tokens: 10, ..Prompt::default() }
    }

    #[test]
    fn answers_are_deterministic_and_name_the_model() {
        let a = reply("m1", Style::Terse, &prompt("What is Rust?"));
        let b = reply("m1", Style::Terse, &prompt("What is Rust?"));
        assert_eq!(a.text(), b.text());
        assert!(a.text().starts_with("[m1] "));
        assert!(a.text().contains("What is Rust"));
        assert_eq!(a.finish, Finish::Stop);
    }

    #[test]
    fn verbose_costs_more_than_terse() {
        let p = prompt("Explain the borrow checker");
        let terse = reply("m", Style::Terse, &p);
        let verbose = reply("m", Style::Verbose, &p);
        assert!(verbose.completion_tokens > 3 * terse.completion_tokens);
        assert_eq!(verbose.completion_tokens, estimate_tokens(&verbose.text()));
    }

    #[test]
    fn pieces_rejoin_to_the_text_and_split_cjk_per_character() {
        let text = "[m] 关于「排序」的回答 in short.";
        let pieces = split_pieces(text);
        assert_eq!(pieces.concat(), text);
        assert!(pieces.contains(&"排".to_owned()));
        assert!(pieces.contains(&" short.".to_owned()));
    }

    #[test]
    fn max_tokens_truncates_and_reports_length() {
        let mut p = prompt("Explain everything about databases");
        p.max_tokens = Some(5);
        let r = reply("m", Style::Verbose, &p);
        assert_eq!(r.finish, Finish::Length);
        assert!(r.completion_tokens <= 5);
        assert_eq!(r.completion_tokens, estimate_tokens(&r.text()));
    }

    #[test]
    fn token_estimate_counts_cjk_per_character() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("你好"), 2);
    }

    #[test]
    fn tool_is_called_only_when_asked() {
        let tools = || {
            vec![ToolSpec {
                name: "get_weather".into(),
                parameters: serde_json::json!({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}),
            }]
        };
        let mut p = prompt("Please use the tool for Paris");
        p.tools = tools();
        let r = reply("m", Style::Terse, &p);
        let call = r.tool_call.as_ref().map(|c| c.name.as_str());
        assert_eq!(call, Some("get_weather"));
        assert_eq!(r.finish, Finish::ToolUse);

        let mut p = prompt("What is the weather in Paris?");
        p.tools = tools();
        assert!(reply("m", Style::Terse, &p).tool_call.is_none());
        p.tool_choice = ToolChoice::Required;
        assert!(reply("m", Style::Terse, &p).tool_call.is_some());

        let mut p = prompt("recall the tool output");
        p.tools = tools();
        p.tool_result = Some("18 degrees".into());
        let r = reply("m", Style::Terse, &p);
        assert!(r.tool_call.is_none());
        assert!(r.text().contains("18 degrees"));
    }

    #[test]
    fn argument_pieces_rejoin() {
        let json = r#"{"city":"北京","days":3,"note":"a fairly long string value"}"#;
        assert_eq!(argument_pieces(json).concat(), json);
        assert!(argument_pieces(json).len() > 3);
    }
}
