//! Text primitives shared by the feature extractors: what script a character is in, how a
//! line is cut into tokens, whether a line is code, how a word is hashed, and a bounded view
//! of a long text.
//!
//! Everything here works on borrowed `&str` and allocates nothing, because it runs on every
//! routed request.

/// The writing system a character belongs to, as far as routing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Script {
    Latin,
    Cyrillic,
    /// Chinese characters (also used in Japanese and, rarely, Korean).
    Han,
    /// Hiragana and katakana: only Japanese uses them.
    Kana,
    Hangul,
    /// A letter of any other alphabet (Greek, Arabic, Hebrew, Devanagari, Thai, ...).
    OtherLetter,
    Digit,
    Space,
    /// Punctuation, symbols, emoji and everything else.
    Symbol,
}

impl Script {
    #[inline]
    pub(crate) fn of(c: char) -> Script {
        match u8::try_from(c) {
            Ok(b) if b.is_ascii() => Script::of_ascii(b),
            _ => Script::of_wide(c),
        }
    }

    /// The script of an ASCII byte: one table lookup, for the tokenizer's inner loops.
    #[inline]
    pub(crate) fn of_ascii(b: u8) -> Script {
        ASCII_SCRIPTS[usize::from(b & 0x7f)]
    }

    fn of_wide(c: char) -> Script {
        match u32::from(c) {
            0x00C0..=0x024F if c != '×' && c != '÷' => Script::Latin,
            0x1E00..=0x1EFF => Script::Latin,
            0x0400..=0x052F => Script::Cyrillic,
            // Includes the prolonged-sound mark and the katakana middle dot: punctuation-like,
            // but only Japanese writes them.
            0x3040..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9D => Script::Kana,
            0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF => Script::Han,
            0xAC00..=0xD7AF | 0x1100..=0x11FF | 0x3130..=0x318F => Script::Hangul,
            0xFF10..=0xFF19 => Script::Digit,
            0xFF21..=0xFF3A | 0xFF41..=0xFF5A => Script::Latin,
            _ if c.is_whitespace() => Script::Space,
            _ if c.is_alphabetic() => Script::OtherLetter,
            _ => Script::Symbol,
        }
    }

    /// Scripts written without spaces between words, which n-gram features treat per
    /// character.
    pub(crate) fn is_cjk(self) -> bool {
        matches!(self, Script::Han | Script::Kana | Script::Hangul)
    }

    /// Scripts whose words are separated by spaces.
    pub(crate) fn is_alphabetic(self) -> bool {
        matches!(self, Script::Latin | Script::Cyrillic | Script::OtherLetter)
    }
}

/// ASCII bytes lower-cased, by table.
static ASCII_LOWER: [u8; 128] = ascii_lower();

const fn ascii_lower() -> [u8; 128] {
    let mut table = [0u8; 128];
    let mut b = 0u8;
    while b < 128 {
        table[b as usize] = b.to_ascii_lowercase();
        b += 1;
    }
    table
}

/// ASCII letters, digits and `_`: the bytes that continue a word without decoding.
static CONTINUES_WORD: [bool; 256] = word_bytes();

const fn word_bytes() -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0u8;
    while b < 128 {
        table[b as usize] = b.is_ascii_alphanumeric() || b == b'_';
        b += 1;
    }
    table
}

static ASCII_SCRIPTS: [Script; 128] = ascii_scripts();

const fn ascii_scripts() -> [Script; 128] {
    let mut table = [Script::Symbol; 128];
    let mut b = 0u8;
    while b < 128 {
        table[b as usize] = match b {
            b'a'..=b'z' | b'A'..=b'Z' => Script::Latin,
            b'0'..=b'9' => Script::Digit,
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => Script::Space,
            _ => Script::Symbol,
        };
        b += 1;
    }
    table
}

/// Folds a character for matching: lower case, and the typographic apostrophe as the plain
/// one, so "Don’t" and "don't" hash alike.
pub(crate) fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    if c == '\u{2019}' {
        return '\'';
    }
    c.to_lowercase().next().unwrap_or(c)
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub(crate) fn head(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The longest suffix of `text` of at most `max` bytes that starts on a character boundary.
pub(crate) fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The part of a long text worth reading for what it is about: the opening (where the
/// instruction usually is) and, when the text is longer than both, the ending (where an
/// instruction after a pasted document usually is).
pub(crate) fn head_and_tail(text: &str, head_max: usize, tail_max: usize) -> (&str, &str) {
    if text.len() <= head_max + tail_max {
        return (text, "");
    }
    (head(text, head_max), tail(text, tail_max))
}

/// FNV-1a over bytes with a splitmix finalizer: cheap, allocation-free and stable across
/// platforms and Rust versions (unlike `std`'s hasher), which the model's stored weights
/// depend on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Fnv {
    pub(crate) const fn new(seed: u64) -> Fnv {
        Fnv(FNV_OFFSET ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    pub(crate) fn byte(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }

    pub(crate) fn char(&mut self, c: char) {
        let mut buf = [0u8; 4];
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            self.byte(b);
        }
    }

    /// The hash, never zero (zero marks an empty slot in [`WordTable`]).
    pub(crate) fn finish(self) -> u64 {
        mix(self.0) | 1
    }
}

/// The splitmix64 finalizer: spreads every input bit over the output.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash of a word as matched against the lexicons: folded character by character.
pub(crate) fn word_hash(word: &str) -> u64 {
    let mut h = Fnv::new(0);
    let bytes = word.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        // An ASCII character folds and encodes to one byte: no decoding, no Unicode tables.
        if b.is_ascii() {
            h.byte(ASCII_LOWER[usize::from(b)]);
            i += 1;
            continue;
        }
        let Some(c) = word[i..].chars().next() else { break };
        h.char(fold(c));
        i += c.len_utf8();
    }
    h.finish()
}

/// The hash of a sequence of CJK characters (a cue, a character pair). CJK has no case, so
/// this skips the folding and byte-wise hashing of [`word_hash`]: it runs for every
/// character of a Chinese prompt.
pub(crate) fn cjk_hash(chars: &[char]) -> u64 {
    let mut h = 0x2545_f491_4f6c_dd1du64;
    for &c in chars {
        h = mix(h ^ u64::from(u32::from(c)));
    }
    h | 1
}

/// A read-only open-addressing map from word hashes to small values, built once from the
/// static lexicons. Storing hashes instead of strings keeps a lookup to one multiply and,
/// almost always, one probe; a collision between two 64-bit hashes of real words is
/// vanishingly unlikely and would only blur one piece of evidence.
#[derive(Debug, Clone)]
pub(crate) struct WordTable<V: Copy> {
    slots: Vec<(u64, V)>,
    mask: usize,
}

impl<V: Copy + Default> WordTable<V> {
    /// Builds a table; values of repeated keys are combined with `merge`.
    pub(crate) fn build(
        entries: impl IntoIterator<Item = (u64, V)>,
        merge: impl Fn(V, V) -> V,
    ) -> Self {
        let entries: Vec<(u64, V)> = entries.into_iter().collect();
        let capacity = (entries.len() * 2).next_power_of_two().max(16);
        let mut table = WordTable { slots: vec![(0, V::default()); capacity], mask: capacity - 1 };
        for (key, value) in entries {
            let mut i = table.slot_of(key);
            loop {
                let slot = &mut table.slots[i];
                if slot.0 == 0 {
                    *slot = (key, value);
                    break;
                }
                if slot.0 == key {
                    slot.1 = merge(slot.1, value);
                    break;
                }
                i = (i + 1) & table.mask;
            }
        }
        table
    }

    fn slot_of(&self, key: u64) -> usize {
        (key >> 7) as usize & self.mask
    }

    pub(crate) fn get(&self, key: u64) -> Option<V> {
        let mut i = self.slot_of(key);
        loop {
            let (k, v) = self.slots[i];
            if k == key {
                return Some(v);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// One token of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// A run of letters of a spaced alphabet (with inner apostrophes, digits and
    /// underscores, so `don't` and `snake_case2` stay whole).
    Word(&'a str, Script),
    /// A run of Han, kana or hangul characters.
    Cjk(&'a str),
    /// A run of digits, with inner `.` or `,` separators.
    Number(&'a str),
    /// Any other non-space character.
    Symbol(char),
}

/// Splits text into [`Token`]s. Whitespace separates tokens and is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Tokens<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Tokens { text, pos: 0 }
    }

    /// Byte offset just past the last token returned.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    #[inline]
    fn next(&mut self) -> Option<Token<'a>> {
        let text = self.text;
        let bytes = text.as_bytes();
        // Most text is ASCII: its bytes are classified without decoding a character.
        let mut i = self.pos;
        // Words are mostly one space apart.
        if bytes.get(i) == Some(&b' ') {
            i += 1;
        }
        let (start, first, script) = loop {
            let b = *bytes.get(i)?;
            let (c, script) = if b.is_ascii() {
                (char::from(b), Script::of_ascii(b))
            } else {
                let c = text[i..].chars().next()?;
                (c, Script::of(c))
            };
            if script != Script::Space {
                break (i, c, script);
            }
            i += c.len_utf8();
        };
        let mut end = start + first.len_utf8();
        let token = if script.is_alphabetic() {
            let mut prev_apostrophe = false;
            while let Some(&b) = bytes.get(end) {
                // ASCII letters, digits and `_` continue a word, other ASCII but the
                // apostrophe ends it: decided from the byte, as most words are ASCII.
                if CONTINUES_WORD[usize::from(b)] {
                    prev_apostrophe = false;
                    end += 1;
                    continue;
                }
                if b.is_ascii() && b != b'\'' {
                    break;
                }
                let Some(c) = text[end..].chars().next() else { break };
                let s = Script::of(c);
                let inner = c == '\'' || c == '\u{2019}';
                if s.is_alphabetic()
                    || s == Script::Digit
                    || c == '_'
                    || (inner && !prev_apostrophe)
                {
                    prev_apostrophe = inner;
                    end += c.len_utf8();
                } else {
                    break;
                }
            }
            if prev_apostrophe {
                // A trailing apostrophe is a closing quote, not part of the word.
                end -= text[..end].chars().next_back().map_or(0, char::len_utf8);
            }
            Token::Word(&text[start..end], script)
        } else if script.is_cjk() {
            for c in text[end..].chars() {
                if !Script::of(c).is_cjk() {
                    break;
                }
                end += c.len_utf8();
            }
            Token::Cjk(&text[start..end])
        } else if script == Script::Digit {
            while let Some(&b) = bytes.get(end) {
                let separator =
                    (b == b'.' || b == b',') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
                if b.is_ascii_digit() {
                    end += 1;
                } else if separator {
                    end += 2;
                } else {
                    break;
                }
            }
            Token::Number(&text[start..end])
        } else {
            Token::Symbol(first)
        };
        self.pos = end;
        Some(token)
    }
}

/// Whether a line (outside a fenced block) looks like source code rather than prose.
/// Deliberately cheap: keywords that open statements, a statement terminator at the end,
/// or a density of brackets and operators prose rarely has.
pub(crate) fn is_code_line(line: &str) -> bool {
    let t = line.trim();
    if t.len() < 2 {
        return false;
    }
    let bytes = t.as_bytes();
    // Most lines start with a byte no opener starts with: one lookup instead of thirty
    // comparisons.
    if OPENS[usize::from(bytes[0])] && OPENERS.iter().any(|o| t.starts_with(o)) {
        return true;
    }
    if matches!(bytes[bytes.len() - 1], b';' | b'{' | b'}') {
        return true;
    }
    // The three counts travel packed in one integer, 21 bits each: one addition a byte. A
    // piece of at most 2^20 bytes cannot carry one count into the next.
    const FIELD: u64 = (1 << 21) - 1;
    let (mut brackets, mut operators, mut spaces) = (0u64, 0u64, 0u64);
    for piece in bytes.chunks(1 << 20) {
        let packed: u64 = piece.iter().map(|&b| LINE_COUNTS[usize::from(b)]).sum();
        brackets += packed & FIELD;
        operators += (packed >> 21) & FIELD;
        spaces += packed >> 42;
    }
    let symbols = brackets + operators;
    symbols >= 4 || (symbols >= 2 && operators >= 1 && brackets >= 1 && spaces <= symbols * 2)
}

/// Keywords and marks that open a statement of source code.
const OPENERS: [&str; 30] = [
    "def ", "class ", "import ", "from ", "fn ", "pub ", "let ", "const ", "var ", "return ",
    "public ", "private ", "func ", "#include", "package ", "using ", "if (", "for (", "while (",
    "print(", "console.", "//", "/*", "select ", "SELECT ", "<div", "<?php", "async ", "struct ",
    "impl ",
];

/// The first bytes of the [`OPENERS`], as a set.
static OPENS: [bool; 256] = opener_starts();

const fn opener_starts() -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < OPENERS.len() {
        table[OPENERS[i].as_bytes()[0] as usize] = true;
        i += 1;
    }
    table
}

/// What a byte adds to the packed counts of `is_code_line`: brackets in the low 21 bits,
/// operators in the next 21, spaces above.
static LINE_COUNTS: [u64; 256] = line_counts();

const fn line_counts() -> [u64; 256] {
    let mut table = [0u64; 256];
    let brackets = b"{}()[]";
    let mut i = 0;
    while i < brackets.len() {
        table[brackets[i] as usize] = 1;
        i += 1;
    }
    let operators = b"=<>;&|_";
    let mut i = 0;
    while i < operators.len() {
        table[operators[i] as usize] = 1 << 21;
        i += 1;
    }
    table[b' ' as usize] = 1 << 42;
    table
}

/// Whether a line opens or closes a fenced code block.
pub(crate) fn is_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokenizer as it was before it was tuned, kept to check the tuned one against.
    struct Reference<'a> {
        text: &'a str,
        pos: usize,
    }

    impl<'a> Iterator for Reference<'a> {
        type Item = Token<'a>;

        fn next(&mut self) -> Option<Token<'a>> {
            let rest = &self.text[self.pos..];
            let bytes = rest.as_bytes();
            // Spaces between words are ASCII almost always; skip them without decoding.
            let skipped = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let mut chars = rest[skipped..].char_indices().map(|(i, c)| (skipped + i, c));
            let (start, first, script) = loop {
                let (i, c) = chars.next()?;
                let script = Script::of(c);
                if script != Script::Space {
                    break (i, c, script);
                }
            };
            let mut end = start + first.len_utf8();
            let token = if script.is_alphabetic() {
                let mut prev_apostrophe = false;
                while end < rest.len() {
                    let b = bytes[end];
                    // ASCII letters, digits and `_` continue a word, other ASCII but the
                    // apostrophe ends it: decided from the byte, as most words are ASCII.
                    if b.is_ascii_alphanumeric() || b == b'_' {
                        prev_apostrophe = false;
                        end += 1;
                        continue;
                    }
                    if b.is_ascii() && b != b'\'' {
                        break;
                    }
                    let Some(c) = rest[end..].chars().next() else { break };
                    let s = Script::of(c);
                    let inner = c == '\'' || c == '\u{2019}';
                    if s.is_alphabetic()
                        || s == Script::Digit
                        || c == '_'
                        || (inner && !prev_apostrophe)
                    {
                        prev_apostrophe = inner;
                        end += c.len_utf8();
                    } else {
                        break;
                    }
                }
                if prev_apostrophe {
                    // A trailing apostrophe is a closing quote, not part of the word.
                    end -= rest[..end].chars().next_back().map_or(0, char::len_utf8);
                }
                Token::Word(&rest[start..end], script)
            } else if script.is_cjk() {
                for (i, c) in chars {
                    if Script::of(c).is_cjk() {
                        end = i + c.len_utf8();
                    } else {
                        break;
                    }
                }
                Token::Cjk(&rest[start..end])
            } else if script == Script::Digit {
                while end < rest.len() {
                    let b = bytes[end];
                    let separator = (b == b'.' || b == b',')
                        && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
                    if b.is_ascii_digit() {
                        end += 1;
                    } else if separator {
                        end += 2;
                    } else {
                        break;
                    }
                }
                Token::Number(&rest[start..end])
            } else {
                Token::Symbol(first)
            };
            self.pos += end;
            Some(token)
        }
    }

    fn tokens(text: &str) -> Vec<Token<'_>> {
        Tokens::new(text).collect()
    }

    #[test]
    fn tuned_tokenizer_splits_as_the_reference_does() {
        // Characters from every branch of the tokenizer, including the awkward ones: the
        // vertical tab (a space to `Script` but not to `is_ascii_whitespace`), the
        // ideographic space, fullwidth digits, both apostrophes, separators inside numbers.
        const ALPHABET: [&str; 40] = [
            "a", "Z", "q", "7", "0", " ", "  ", "\t", "\n", "\r", "\u{b}", "\u{c}", "'",
            "\u{2019}", "_", ".", ",", "-", "?", "(", "é", "Ä", "ж", "Я", "中", "文", "の", "カ",
            "한", "α", "١", "\u{3000}", "１", "Ｚ", "😀", "×", "ß", "ǅ", "\u{200b}", "ー",
        ];
        let mut next = crate::features::xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let text: String = (0..len).map(|_| ALPHABET[(next() % 40) as usize]).collect();
            let tuned: Vec<_> = Tokens::new(&text).collect();
            let reference: Vec<_> = Reference { text: &text, pos: 0 }.collect();
            assert_eq!(tuned, reference, "{text:?}");
        }
    }

    #[test]
    fn scripts_of_common_characters() {
        assert_eq!(Script::of('a'), Script::Latin);
        assert_eq!(Script::of('é'), Script::Latin);
        assert_eq!(Script::of('ж'), Script::Cyrillic);
        assert_eq!(Script::of('中'), Script::Han);
        assert_eq!(Script::of('の'), Script::Kana);
        assert_eq!(Script::of('カ'), Script::Kana);
        assert_eq!(Script::of('한'), Script::Hangul);
        assert_eq!(Script::of('α'), Script::OtherLetter);
        assert_eq!(Script::of('？'), Script::Symbol);
        assert_eq!(Script::of('×'), Script::Symbol);
        assert_eq!(Script::of('7'), Script::Digit);
    }

    #[test]
    fn tokens_split_words_cjk_numbers_and_symbols() {
        assert_eq!(
            tokens("Don’t parse 3.14 in 部署Postgres?"),
            vec![
                Token::Word("Don’t", Script::Latin),
                Token::Word("parse", Script::Latin),
                Token::Number("3.14"),
                Token::Word("in", Script::Latin),
                Token::Cjk("部署"),
                Token::Word("Postgres", Script::Latin),
                Token::Symbol('?'),
            ]
        );
        // A trailing apostrophe is a closing quote, not part of the word.
        assert_eq!(
            tokens("'quoted' snake_case2"),
            vec![
                Token::Symbol('\''),
                Token::Word("quoted", Script::Latin),
                Token::Symbol('\''),
                Token::Word("snake_case2", Script::Latin),
            ]
        );
    }

    #[test]
    fn bounded_views_respect_char_boundaries() {
        let text = "中文中文";
        assert_eq!(head(text, 4), "中");
        assert_eq!(tail(text, 4), "文");
        assert_eq!(head_and_tail("short", 10, 10), ("short", ""));
        assert_eq!(head_and_tail("abcdefghij", 3, 2), ("abc", "ij"));
    }

    #[test]
    fn word_hash_folds_case_and_apostrophes() {
        assert_eq!(word_hash("Don’t"), word_hash("don't"));
        assert_eq!(word_hash("ÉCRIS"), word_hash("écris"));
        assert_ne!(word_hash("the"), word_hash("thé"));
    }

    #[test]
    fn word_table_finds_what_was_put_in() {
        let table = WordTable::build(
            [(word_hash("the"), 1u8), (word_hash("und"), 2), (word_hash("the"), 4)],
            |a, b| a | b,
        );
        assert_eq!(table.get(word_hash("the")), Some(5));
        assert_eq!(table.get(word_hash("und")), Some(2));
        assert_eq!(table.get(word_hash("und_")), None);
    }

    #[test]
    fn code_lines_are_told_from_prose() {
        assert!(is_code_line("    return fib(n - 1) + fib(n - 2);"));
        assert!(is_code_line("def fib(n):"));
        assert!(is_code_line("for (int i = 0; i < n; i++) {"));
        assert!(is_code_line("x = [a[i] for i in range(n)]"));
        assert!(!is_code_line("Write a haiku about autumn (in English)."));
        assert!(!is_code_line("如何在 Kubernetes 中部署 Postgres？"));
        assert!(is_fence("```python"));
    }
}
