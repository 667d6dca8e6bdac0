//! One pass over the text of a query: the hashed n-gram features the domain model reads, the
//! cue words, and the shape of the text (lines, lists, code, formulas, questions) that both
//! the domain model and the complexity score use.
//!
//! Long texts are read only at the opening and the ending (see [`head_and_tail`]): that is
//! where the instruction is, and it bounds the cost of a 2,000-token prompt. Features are
//! 64-bit hashes written into one buffer, allocated once at its full size.
//!
//! The same pass can feed the language evidence ([`Scan::with_language`]): it reads the same
//! opening lines and words, which would otherwise be tokenized and hashed a second time.

use super::LanguageGuess;
use super::language::Reader;
use super::lexicon::{self, Cue, CueCounts, Cues};
use super::text::{
    Script, Token, Tokens, cjk_hash, fold, head, head_and_tail, is_code_line, is_fence, mix,
    word_hash,
};

/// Bytes read from the opening of a long text...
const HEAD_BYTES: usize = 768;
/// ...and from its ending.
const TAIL_BYTES: usize = 256;
/// More features than a head and tail of that size produce; later ones are dropped.
pub(crate) const MAX_FEATURES: usize = 1536;
/// Words longer than this get no character trigrams (identifiers, URLs, hashes).
const MAX_TRIGRAM_WORD: usize = 18;

/// Kinds of feature, mixed into the hash so that equal values of different kinds (a
/// character code and a cue number, say) land in unrelated buckets.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
enum Kind {
    Word = 1,
    WordPair = 2,
    Trigram = 3,
    Char = 4,
    CharPair = 5,
    Cue = 6,
    Shape = 7,
    FirstWord = 8,
    FirstCue = 9,
    Symbol = 10,
    Number = 11,
}

fn feature(kind: Kind, value: u64) -> u64 {
    mix(value ^ (kind as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Indicator features computed from the [`Shape`].
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
enum ShapeFlag {
    Tiny = 1,
    Short,
    Medium,
    Long,
    VeryLong,
    OneLine,
    FewLines,
    ManyLines,
    Fence,
    CodeLine,
    MostlyCode,
    Latex,
    Formula,
    Digits,
    ManyDigits,
    EndsWithQuestion,
    ListItems,
    PastedBlock,
    Quotes,
    MostlyCjk,
}

/// The layout of a text, counted over the part that was read (lines and list items are
/// scaled up to the whole text).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Shape {
    /// Length of the whole text in bytes.
    pub bytes: usize,
    pub lines: u32,
    /// Lines that start a list item: `- `, `* `, `1.`, `1)`, `（1）`, `①`, `一、`.
    pub list_items: u32,
    pub code_lines: u32,
    pub fences: u32,
    /// LaTeX commands (`\frac`) and `$` delimiters.
    pub latex: u32,
    /// Arithmetic and comparison operators between operands.
    pub math_ops: u32,
    pub numbers: u32,
    pub questions: u32,
    pub quotes: u32,
    pub words: u32,
    pub cjk_chars: u32,
    /// An instruction followed by a block of material on later lines.
    pub pasted_block: bool,
    pub ends_with_question: bool,
}

/// Everything read from one text.
#[derive(Clone)]
pub(crate) struct Scan {
    /// Never grows past [`MAX_FEATURES`], so it never reallocates. A `Vec` rather than an
    /// inline array: zeroing and moving a 12 KB array cost more than the rest of a short
    /// prompt's scan.
    features: Vec<u64>,
    pub cues: CueCounts,
    pub shape: Shape,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("features", &self.features.len())
            .field("cues", &self.cues)
            .field("shape", &self.shape)
            .finish()
    }
}

/// The language evidence read along with the scan, from the text's first
/// [`Reader::BYTES`]: the scan's head holds them (it is as long or longer), so both read the
/// same lines and words once.
struct Language {
    reader: Reader,
    /// Where the language evidence stops reading, as a byte offset in the text.
    end: usize,
}

impl Scan {
    pub(crate) fn of(text: &str) -> Scan {
        Scan::read_text(text, None)
    }

    /// The scan of `text` and the language of its words, as [`language::detect`] finds it,
    /// in one pass.
    ///
    /// [`language::detect`]: super::language::detect
    pub(crate) fn with_language(text: &str) -> (Scan, LanguageGuess) {
        let mut language =
            Language { reader: Reader::default(), end: head(text, Reader::BYTES).len() };
        let scan = Scan::read_text(text, Some(&mut language));
        (scan, language.reader.finish())
    }

    fn read_text(text: &str, language: Option<&mut Language>) -> Scan {
        let mut scan = Scan {
            features: Vec::with_capacity(MAX_FEATURES),
            cues: CueCounts::default(),
            shape: Shape { bytes: text.len(), ..Shape::default() },
        };
        let (head, tail) = head_and_tail(text, HEAD_BYTES, TAIL_BYTES);
        let mut state = State::default();
        scan.read(head, &mut state, language);
        if !tail.is_empty() {
            // The tail starts mid-text: a fresh line state, no "first word".
            state.in_fence = false;
            state.prev_word = None;
            scan.read(tail, &mut state, None);
            let read = head.len() + tail.len();
            let scale = |n: u32| (n as usize * text.len() / read.max(1)) as u32;
            scan.shape.lines = scale(scan.shape.lines);
            scan.shape.list_items = scale(scan.shape.list_items);
        }
        let trimmed = text.trim_end();
        scan.shape.ends_with_question = trimmed.ends_with('?') || trimmed.ends_with('？');
        scan.shape_features();
        scan
    }

    /// The features, as 64-bit hashes; a model maps them to its buckets.
    pub(crate) fn features(&self) -> &[u64] {
        &self.features
    }

    fn push(&mut self, hash: u64) {
        if self.features.len() < MAX_FEATURES {
            self.features.push(hash);
        }
    }

    fn cue(&mut self, cues: Cues, first: bool) {
        if cues.is_empty() {
            return;
        }
        self.cues.add(cues);
        for i in cues.iter() {
            self.push(feature(Kind::Cue, u64::from(i)));
            if first {
                self.push(feature(Kind::FirstCue, u64::from(i)));
            }
        }
    }

    /// Reads `text` (the head, or the tail), and feeds `language` the lines that lie within
    /// its reach.
    fn read(&mut self, text: &str, state: &mut State, mut language: Option<&mut Language>) {
        let mut start = 0;
        for line in text.split('\n') {
            let end = start + line.len();
            // A line the language evidence reads whole is read with the scan's tokens; the
            // one its reach cuts, it reads alone, as cut.
            let mut with_scan = None;
            if let Some(language) = language.as_deref_mut() {
                if end <= language.end {
                    with_scan = Some(&mut language.reader);
                } else if start < language.end {
                    language.reader.line(&line[..language.end - start]);
                }
            }
            start = end + 1;
            self.shape.lines += 1;
            if is_fence(line) {
                state.in_fence = !state.in_fence;
                self.shape.fences += 1;
                if let Some(reader) = with_scan {
                    reader.fence();
                }
                continue;
            }
            let code = state.in_fence || is_code_line(line);
            if let Some(reader) = with_scan.as_deref_mut() {
                reader.start_line(line, code);
            }
            self.shape.code_lines += u32::from(code);
            if is_list_item(line) {
                self.shape.list_items += 1;
            }
            if state.saw_instruction && !line.trim().is_empty() && self.shape.lines > 1 {
                self.shape.pasted_block = true;
            }
            let trimmed = line.trim_end();
            if trimmed.ends_with(':') || trimmed.ends_with('：') {
                state.saw_instruction = true;
            }
            self.read_line(line, code, state, with_scan.as_deref_mut());
            if let Some(reader) = with_scan {
                reader.end_line();
            }
        }
    }

    fn read_line(
        &mut self,
        line: &str,
        code: bool,
        state: &mut State,
        mut language: Option<&mut Reader>,
    ) {
        let mut prev_symbol_operand = false;
        let mut tokens = Tokens::new(line);
        while let Some(token) = tokens.next() {
            let hash = match token {
                Token::Word(word, _) => Some(word_hash(word)),
                _ => None,
            };
            if let Some(reader) = language.as_deref_mut() {
                reader.token(token, tokens.offset(), hash);
            }
            match token {
                Token::Word(word, _) => {
                    self.word(word, hash.unwrap_or_default(), state);
                    prev_symbol_operand = true;
                }
                Token::Cjk(run) => {
                    self.cjk(run, state);
                    state.prev_word = None;
                    prev_symbol_operand = false;
                }
                Token::Number(_) => {
                    self.shape.numbers += 1;
                    self.push(feature(Kind::Number, 0));
                    prev_symbol_operand = true;
                }
                Token::Symbol(c) => {
                    self.symbol(c, code, prev_symbol_operand);
                    prev_symbol_operand = false;
                    if !matches!(c, '\'' | '-' | '_') {
                        state.prev_word = None;
                    }
                }
            }
        }
    }

    /// A word and its [`word_hash`].
    fn word(&mut self, word: &str, hash: u64, state: &mut State) {
        self.shape.words += 1;
        self.push(feature(Kind::Word, hash));
        if let Some(prev) = state.prev_word {
            self.push(feature(Kind::WordPair, prev.rotate_left(17) ^ hash));
        }
        let first = !state.seen_first;
        if first {
            state.seen_first = true;
            self.push(feature(Kind::FirstWord, hash));
        }
        state.prev_word = Some(hash);
        self.cue(lexicon::lookup(hash), first);
        self.trigrams(word);
    }

    /// Character trigrams of `<word>`: shared stems across inflections and languages
    /// ("translat", "summar", "équat").
    fn trigrams(&mut self, word: &str) {
        if word.is_ascii() {
            // Most words: bytes fold to lower case without decoding.
            let folded = word.bytes().map(|b| u64::from(b.to_ascii_lowercase()));
            self.trigrams_of(folded);
        } else {
            self.trigrams_of(word.chars().map(|c| u64::from(u32::from(fold(c)))));
        }
    }

    /// Trigrams of a word given as folded Unicode scalar values.
    fn trigrams_of(&mut self, word: impl Iterator<Item = u64>) {
        let mut window = [u64::from(b'<'); 3];
        let mut n = 0usize;
        for c in word.chain(std::iter::once(u64::from(b'>'))) {
            window = [window[1], window[2], c];
            n += 1;
            if n > MAX_TRIGRAM_WORD {
                return;
            }
            if n >= 2 {
                // Unicode scalars fit in 21 bits: three of them pack into one u64.
                let [a, b, c] = window;
                self.push(feature(Kind::Trigram, (a << 42) | (b << 21) | c));
            }
        }
    }

    fn cjk(&mut self, run: &str, state: &mut State) {
        // The last three characters, oldest first.
        let mut window = ['\0'; 3];
        let mut n = 0usize;
        let first = !state.seen_first;
        state.seen_first = true;
        for c in run.chars() {
            self.shape.cjk_chars += 1;
            window = [window[1], window[2], c];
            n += 1;
            self.push(feature(Kind::Char, u64::from(u32::from(c))));
            if n >= 2 {
                let pair = cjk_hash(&window[1..]);
                self.push(feature(Kind::CharPair, pair));
                let at_start = first && n == 2;
                if at_start {
                    self.push(feature(Kind::FirstWord, pair));
                }
                self.cue(lexicon::lookup(pair), at_start);
            }
            if n >= 3 {
                self.cue(lexicon::lookup(cjk_hash(&window)), false);
            }
        }
    }

    fn symbol(&mut self, c: char, code: bool, after_operand: bool) {
        match c {
            '?' | '？' => self.shape.questions += 1,
            '"' | '“' | '”' | '「' | '」' | '『' | '』' | '«' | '»' => {
                self.shape.quotes += 1
            }
            '\\' | '$' => self.shape.latex += 1,
            '=' | '+' | '*' | '/' | '^' | '<' | '>' | '≤' | '≥' | '≠' | '×' | '÷' | '＝' | '＋'
            | '－' | '∧' | '√' | '∑' | '∫' | 'π'
                if after_operand || !code =>
            {
                self.shape.math_ops += 1
            }
            _ => {}
        }
        self.push(feature(Kind::Symbol, u64::from(u32::from(c))));
    }

    fn shape_features(&mut self) {
        use ShapeFlag::*;
        let s = self.shape;
        let mut flags: [Option<ShapeFlag>; 13] = [None; 13];
        flags[0] = Some(match s.bytes {
            0..=24 => Tiny,
            25..=80 => Short,
            81..=300 => Medium,
            301..=1200 => Long,
            _ => VeryLong,
        });
        flags[1] = Some(match s.lines {
            0..=1 => OneLine,
            2..=5 => FewLines,
            _ => ManyLines,
        });
        flags[2] = (s.fences > 0).then_some(Fence);
        flags[3] = (s.code_lines > 0).then_some(CodeLine);
        flags[4] = (s.code_lines * 3 > s.lines && s.code_lines >= 2).then_some(MostlyCode);
        flags[5] = (s.latex >= 2).then_some(Latex);
        flags[6] = (s.math_ops >= 2).then_some(Formula);
        flags[7] = match s.numbers {
            0 => None,
            1..=3 => Some(Digits),
            _ => Some(ManyDigits),
        };
        flags[8] = s.ends_with_question.then_some(EndsWithQuestion);
        flags[9] = (s.list_items >= 2).then_some(ListItems);
        flags[10] = s.pasted_block.then_some(PastedBlock);
        flags[11] = (s.quotes >= 2).then_some(Quotes);
        flags[12] = (s.cjk_chars > s.words * 2).then_some(MostlyCjk);
        for flag in flags.into_iter().flatten() {
            self.push(feature(Kind::Shape, flag as u64));
        }
    }

    /// Whether any cue of the kind was seen.
    pub(crate) fn has(&self, cue: Cue) -> bool {
        self.cues.get(cue) > 0
    }
}

/// What reading carries from line to line.
#[derive(Debug, Default)]
struct State {
    in_fence: bool,
    seen_first: bool,
    saw_instruction: bool,
    prev_word: Option<u64>,
}

fn is_list_item(line: &str) -> bool {
    let t = line.trim_start();
    let mut chars = t.chars();
    let Some(first) = chars.next() else { return false };
    let second = chars.next();
    match first {
        '-' | '*' | '•' | '·' => second == Some(' '),
        '①'..='⑳' | '❶'..='❿' => true,
        '0'..='9' => {
            let rest = t.trim_start_matches(|c: char| c.is_ascii_digit());
            rest.starts_with(". ") || rest.starts_with(") ") || rest.starts_with('、')
        }
        '(' | '（' => {
            t.chars().nth(1).is_some_and(|c| c.is_ascii_digit() || Script::of(c) == Script::Han)
        }
        '一' | '二' | '三' | '四' | '五' | '六' | '七' | '八' | '九' | '十' => {
            second == Some('、')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_read_with_the_scan_is_the_language_read_alone() {
        // Pieces that move the evidence: function words of several languages, elisions,
        // code lines and fences, formulas, quotation marks, clause ends, CJK and Cyrillic,
        // and lines long enough for the 768-byte reach to cut them. Texts of 600 to 1,200
        // bytes fall under the reach, straddle it with the scan reading on (up to 1,024
        // bytes), and exceed what the scan reads whole.
        const PIECES: &[&str] = &[
            "the ",
            "and ",
            "le ",
            "der ",
            "el ",
            "che ",
            "não ",
            "het ",
            "please ",
            "explain ",
            "l'homme ",
            "don't ",
            "translation ",
            "\n",
            "\n",
            "\n```\n",
            "let x = foo(y);\n",
            "a = b + c * d / e\n",
            "\"quoted words\" ",
            "« cité » ",
            "“curly” ",
            ": ",
            ". ",
            "? ",
            "这是中文 ",
            "日本語です ",
            "한국어 ",
            "привет ",
            "її ",
            "x ",
            "42 ",
            "é ",
            "1. ",
            "- item\n",
            "     ",
        ];
        let mut next = crate::features::xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3_000 {
            let target = 600 + (next() % 600) as usize;
            let mut text = String::new();
            while text.len() < target {
                text.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            let (scan, language) = Scan::with_language(&text);
            assert_eq!(language, super::super::language::detect(&text), "{text:?}");
            let alone = Scan::of(&text);
            assert_eq!(scan.features(), alone.features(), "{text:?}");
            assert_eq!(scan.shape, alone.shape, "{text:?}");
        }
    }

    #[test]
    fn shape_counts_structure() {
        let scan = Scan::of(
            "Please do the following:\n1. Read the file\n2. Parse it\n```rust\nlet x = 1;\n```\nWhat is $x^2$?",
        );
        let s = scan.shape;
        assert_eq!(s.lines, 7);
        assert_eq!(s.list_items, 2);
        assert_eq!(s.fences, 2);
        assert_eq!(s.code_lines, 1);
        assert!(s.latex >= 2, "{s:?}");
        assert!(s.pasted_block);
        assert!(s.ends_with_question);
    }

    #[test]
    fn cues_are_found_in_words_and_cjk_runs() {
        let scan = Scan::of("Translate to French");
        assert!(scan.has(Cue::Translate));
        assert!(scan.has(Cue::LanguageName));
        let scan = Scan::of("请把这段话翻译成英文");
        assert!(scan.has(Cue::Translate));
        assert!(scan.has(Cue::LanguageName));
        let scan = Scan::of("不超过100字，首先总结要点");
        assert!(scan.has(Cue::Constraint) && scan.has(Cue::Steps) && scan.has(Cue::Summarize));
    }

    #[test]
    fn long_text_is_read_at_both_ends_within_the_bound() {
        let body = "lorem ipsum dolor sit amet ".repeat(400);
        let text = format!("Summarize this report:\n{body}\nKeep it under 50 words.");
        let scan = Scan::of(&text);
        assert!(scan.has(Cue::Summarize));
        assert!(scan.has(Cue::Constraint), "the tail's 'words' cue is read");
        assert!(scan.features().len() < MAX_FEATURES);
        assert!(scan.shape.lines >= 3);
    }

    #[test]
    fn same_text_same_features() {
        let a = Scan::of("Write a haiku about autumn");
        let b = Scan::of("write a HAIKU about Autumn");
        assert_eq!(a.features(), b.features());
    }
}
