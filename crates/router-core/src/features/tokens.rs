//! Token estimates: how big a prompt is, and how long an answer to expect.
//!
//! Counting exactly would need each upstream model's tokenizer (and hundreds of milliseconds
//! to load one); routing needs a good estimate in microseconds. The estimator walks the
//! bytes once and prices each run the way byte-pair encoders of the GPT-4o / Llama 3 family
//! tend to split it: a common word with its leading space is one token and a long word a few,
//! digits go in groups of three, code punctuation often merges in pairs, a Chinese character
//! is a little under one token, kana and hangul about one each.
//!
//! The prices were calibrated against the `o200k_base` encoding (GPT-4o); the test
//! `tests/features_tokens.rs` measures the error on English prose, Chinese prose and code
//! against the real tokenizer. Accounting uses the upstream's reported usage, never this.

use super::{Domain, Prompt};

// Prices in thousandths of a token.
/// An ASCII word (with its leading space) up to [`SHORT_WORD`] letters.
const WORD: u32 = 1000;
const SHORT_WORD: usize = 8;
/// Each further letter of a longer word.
const LONG_WORD_LETTER: u32 = 200;
/// Extra for each accented Latin letter in a word.
const ACCENTED: u32 = 350;
/// A run of digits costs one token per three digits.
const DIGITS_PER_TOKEN: usize = 3;
/// The first punctuation mark of a run, and each further one (encoders hold many merged
/// runs such as `();`, `())`, `(*)`).
const PUNCT_FIRST: u32 = 1000;
const PUNCT_MORE: u32 = 300;
/// A run of two or more spaces or tabs (indentation); a single space joins the next word.
const SPACE_RUN: u32 = 700;
const NEWLINE_RUN: u32 = 850;
/// A Cyrillic word: a base and a price per letter.
const CYRILLIC_WORD: u32 = 500;
const CYRILLIC_LETTER: u32 = 230;
const HAN: u32 = 800;
const KANA: u32 = 900;
const HANGUL: u32 = 800;
/// CJK and fullwidth punctuation.
const WIDE_PUNCT: u32 = 900;
const EMOJI: u32 = 1500;
/// Letters of other scripts (Greek, Arabic, Hebrew, Devanagari, Thai, ...).
const OTHER_LETTER: u32 = 600;

/// Chat formats wrap each message in a few tokens of framing, and prime the reply.
const PER_MESSAGE: u32 = 4;
const REPLY_PRIMING: u32 = 3;

/// The output allowance assumed when the client set no cap: what most answers fit in.
pub const DEFAULT_OUTPUT_ALLOWANCE: u32 = 1024;

/// Texts up to this size are priced byte by byte...
const EXACT_BYTES: usize = 4 * 1024;
/// ...longer ones by sampling this many evenly spaced windows of this size and scaling the
/// price per byte up to the whole: a 100,000-token prompt costs no more to estimate than a
/// 2,000-token one.
const SAMPLE_WINDOWS: usize = 4;
const WINDOW_BYTES: usize = 1024;

/// Estimated tokens of a text.
pub fn estimate(text: &str) -> u32 {
    if text.len() <= EXACT_BYTES {
        return price(text).div_ceil(1000).min(u64::from(u32::MAX)) as u32;
    }
    let stride = (text.len() - WINDOW_BYTES) / (SAMPLE_WINDOWS - 1);
    let mut milli = 0u64;
    let mut sampled = 0usize;
    for i in 0..SAMPLE_WINDOWS {
        let window = char_window(text, i * stride, WINDOW_BYTES);
        milli += price(window);
        sampled += window.len();
    }
    let scaled = milli as f64 * text.len() as f64 / sampled.max(1) as f64;
    (scaled / 1000.0).ceil().min(f64::from(u32::MAX)) as u32
}

/// The slice of about `len` bytes at `start`, moved to character boundaries.
fn char_window(text: &str, start: usize, len: usize) -> &str {
    let mut start = start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + len).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[start..end]
}

// What a byte can start or continue, as bit flags of one table ([`CLASS`]): a lookup per
// byte instead of chains of range comparisons, which dominated the estimate's cost.
const LETTER: u8 = 1;
const UPPER: u8 = 2;
/// A lead byte of an accented Latin letter (see [`is_latin_lead`]).
const LATIN_LEAD: u8 = 4;
const DIGIT: u8 = 8;
/// A space or a tab.
const BLANK: u8 = 16;
const NEWLINE: u8 = 32;
const PUNCT: u8 = 64;

static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut class = 0;
        if b.is_ascii_alphabetic() {
            class |= LETTER;
        }
        if b.is_ascii_uppercase() {
            class |= UPPER;
        }
        if is_latin_lead(b) {
            class |= LATIN_LEAD;
        }
        if b.is_ascii_digit() {
            class |= DIGIT;
        }
        if b == b' ' || b == b'\t' {
            class |= BLANK;
        }
        if b == b'\n' || b == b'\r' {
            class |= NEWLINE;
        }
        if b.is_ascii_punctuation() {
            class |= PUNCT;
        }
        table[i] = class;
        i += 1;
    }
    table
}

fn class(b: u8) -> u8 {
    CLASS[usize::from(b)]
}

/// Whether the byte at `i` exists and has one of the `flags`.
fn at_is(bytes: &[u8], i: usize, flags: u8) -> bool {
    bytes.get(i).is_some_and(|&b| class(b) & flags != 0)
}

/// The price of a text in thousandths of a token.
fn price(text: &str) -> u64 {
    price_with(text, true)
}

/// [`price`], with the shortcut for plain prose on or off: the tests check that both give
/// the same price.
fn price_with(text: &str, plain_words_first: bool) -> u64 {
    let bytes = text.as_bytes();
    let mut milli: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let k = class(b);
        if k & (LETTER | LATIN_LEAD) != 0 {
            if plain_words_first {
                let (end, cost) = plain_words(bytes, i);
                if end > i {
                    milli += cost;
                    i = end;
                    continue;
                }
            }
            let (end, cost) = latin_word(bytes, i);
            milli += u64::from(cost);
            i = end;
            // Prose is words joined by single spaces, which cost nothing: step over one
            // straight to the next word.
            if bytes.get(i) == Some(&b' ') && at_is(bytes, i + 1, LETTER | LATIN_LEAD) {
                i += 1;
            }
        } else if k & DIGIT != 0 {
            let start = i;
            while at_is(bytes, i, DIGIT) {
                i += 1;
            }
            milli += ((i - start).div_ceil(DIGITS_PER_TOKEN) * 1000) as u64;
        } else if k & BLANK != 0 {
            let start = i;
            while at_is(bytes, i, BLANK) {
                i += 1;
            }
            if i - start >= 2 {
                milli += u64::from(SPACE_RUN);
            }
        } else if k & NEWLINE != 0 {
            while at_is(bytes, i, NEWLINE) {
                i += 1;
            }
            milli += u64::from(NEWLINE_RUN);
        } else if b == b'\'' && i > 0 && at_is(bytes, i - 1, LETTER) && at_is(bytes, i + 1, LETTER)
        {
            // A contraction's apostrophe joins the letters after it: "don't" is "don", "'t".
            i += 1;
        } else if b.is_ascii() {
            let start = i;
            while at_is(bytes, i, PUNCT) {
                i += 1;
            }
            if i == start {
                // A control character.
                i += 1;
                continue;
            }
            // A mark right before a letter usually merges with the word (`.entry`, `(word`,
            // `_lower`).
            let before_word = at_is(bytes, i, LETTER);
            let marks = (i - start - usize::from(before_word)) as u32;
            if marks > 0 {
                milli += u64::from(PUNCT_FIRST + (marks - 1) * PUNCT_MORE);
            }
        } else {
            let (end, cost) = non_ascii(text, i);
            milli += u64::from(cost);
            i = end;
        }
    }
    milli
}

/// Prices the lower-case ASCII words that start at `start`, one space apart or a mark and
/// a space: most of any prose. Stops before a word the general rules must see (one that
/// goes on with a capital or an accented letter) and after a word not followed by a space
/// (or a mark and a space) and another such word. Returns where it stopped and the price;
/// nothing at all when the first word is not plain.
fn plain_words(bytes: &[u8], start: usize) -> (usize, u64) {
    let mut i = start;
    let mut milli = 0u64;
    while bytes.get(i).is_some_and(u8::is_ascii_lowercase) {
        let end = i + 1 + lowercase_run(bytes, i + 1);
        if at_is(bytes, end, LETTER | LATIN_LEAD) {
            break;
        }
        milli += u64::from(word_price(end - i, 0));
        i = end;
        let lower_at = |at: usize| bytes.get(at).is_some_and(u8::is_ascii_lowercase);
        match bytes.get(i) {
            // A single space costs nothing.
            Some(b' ') if lower_at(i + 1) => i += 1,
            // A single mark before a space costs what a run of one mark costs.
            Some(b',' | b'.' | b';' | b':' | b'!' | b'?')
                if bytes.get(i + 1) == Some(&b' ') && lower_at(i + 2) =>
            {
                milli += u64::from(PUNCT_FIRST);
                i += 2;
            }
            _ => break,
        }
    }
    (i, milli)
}

/// Lead bytes of two-byte UTF-8 sequences for U+00C0..=U+024F (accented Latin letters).
const fn is_latin_lead(b: u8) -> bool {
    matches!(b, 0xC3..=0xC9)
}

/// A word of ASCII and accented Latin letters starting at `start`; camelCase humps split
/// it, as they split in byte-pair encoders. Returns where it ends and its price.
fn latin_word(bytes: &[u8], start: usize) -> (usize, u32) {
    let mut i = start;
    let mut cost = 0u32;
    let mut letters = 0usize;
    let mut accented = 0u32;
    let mut prev_lower = false;
    while i < bytes.len() {
        let k = class(bytes[i]);
        if k & LETTER != 0 {
            let upper = k & UPPER != 0;
            if upper && prev_lower {
                cost += word_price(letters, accented);
                letters = 0;
                accented = 0;
            }
            letters += 1;
            i += 1;
            // Most of a word is lower case, where nothing can split it: count the rest of
            // that run eight bytes at a time.
            let run = lowercase_run(bytes, i);
            letters += run;
            i += run;
            prev_lower = run > 0 || !upper;
        } else if k & LATIN_LEAD != 0 && bytes.get(i + 1).is_some_and(|&c| c & 0xC0 == 0x80) {
            letters += 1;
            accented += 1;
            prev_lower = true;
            i += 2;
        } else {
            break;
        }
    }
    (i, cost + word_price(letters, accented))
}

/// How many bytes from `at` on are ASCII lower-case letters.
fn lowercase_run(bytes: &[u8], at: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    let mut i = at;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        // With each byte's high bit cleared, adding cannot carry into the next byte; the
        // high bit of each sum then says whether the byte reached 'a' (0x61), and
        // whether it passed 'z' (0x7A).
        let low = x & !HIGH;
        let from_a = low.wrapping_add(ONES * (0x80 - 0x61));
        let past_z = low.wrapping_add(ONES * (0x80 - 0x7B));
        let lower = from_a & !past_z & !x & HIGH;
        let other = lower ^ HIGH;
        if other != 0 {
            return i - at + (other.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while bytes.get(i).is_some_and(u8::is_ascii_lowercase) {
        i += 1;
    }
    i - at
}

fn word_price(letters: usize, accented: u32) -> u32 {
    if letters == 0 {
        return 0;
    }
    let extra = letters.saturating_sub(SHORT_WORD) as u32 * LONG_WORD_LETTER;
    WORD + extra + accented * ACCENTED
}

/// Prices the non-ASCII character (or Cyrillic word) at `start`.
fn non_ascii(text: &str, start: usize) -> (usize, u32) {
    let rest = &text[start..];
    let mut chars = rest.char_indices();
    let Some((_, c)) = chars.next() else { return (text.len(), 0) };
    let code = u32::from(c);
    if (0x0400..=0x04FF).contains(&code) {
        let mut letters = 1u32;
        let mut end = c.len_utf8();
        for (i, c) in chars {
            if (0x0400..=0x04FF).contains(&u32::from(c)) {
                letters += 1;
                end = i + c.len_utf8();
            } else {
                break;
            }
        }
        return (start + end, CYRILLIC_WORD + letters * CYRILLIC_LETTER);
    }
    let cost = match code {
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF => HAN,
        0x3040..=0x30FF => KANA,
        0xAC00..=0xD7AF | 0x1100..=0x11FF | 0x3130..=0x318F => HANGUL,
        0x3000..=0x303F | 0xFF00..=0xFFEF | 0x2000..=0x206F => WIDE_PUNCT,
        0x1F000..=0x1FAFF | 0x2600..=0x27BF => EMOJI,
        _ if c.is_alphabetic() => OTHER_LETTER,
        _ => WIDE_PUNCT,
    };
    (start + c.len_utf8(), cost)
}

/// Estimated tokens of every message, with the chat format's framing.
pub fn prompt_tokens(prompt: &Prompt<'_>) -> u32 {
    let text: u32 = prompt.messages.iter().map(|m| estimate(m.text)).fold(0, u32::saturating_add);
    text.saturating_add(PER_MESSAGE * prompt.messages.len() as u32).saturating_add(REPLY_PRIMING)
}

/// The framing added to the sum of the messages' estimates by [`prompt_tokens`].
pub(crate) fn framing(messages: usize) -> u32 {
    (PER_MESSAGE * messages as u32).saturating_add(REPLY_PRIMING)
}

/// How long an answer to expect: a typical length for the domain, longer for harder
/// queries; for translation and text processing, in proportion to the text given. Never
/// more than the client's cap.
pub fn expected_output_tokens(
    domain: Domain,
    complexity: f32,
    input_tokens: u32,
    cap: Option<u32>,
) -> u32 {
    let input = input_tokens as f32;
    let complexity = complexity.clamp(0.0, 1.0);
    let (base, spread) = match domain {
        Domain::Code => (450.0, 1.5),
        Domain::Math => (380.0, 1.5),
        Domain::Reasoning => (380.0, 1.5),
        Domain::Writing => (500.0, 1.5),
        Domain::Knowledge => (350.0, 1.5),
        Domain::Chat => (60.0, 1.5),
        // The answer is the input again, in another language.
        Domain::Translation => (input * 1.1 + 20.0, 0.4),
        Domain::TextProcessing => ((input * 0.4).clamp(60.0, 600.0), 0.4),
    };
    let factor = 1.0 - spread / 3.0 + spread * complexity;
    let expected = (base * factor).round().clamp(16.0, 16_384.0) as u32;
    cap.map_or(expected, |cap| expected.min(cap.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_texts() {
        assert_eq!(estimate(""), 0);
        assert_eq!(estimate("Hello"), 1);
        assert_eq!(estimate("Hello, world!"), 4);
        assert_eq!(estimate("1234567"), 3);
        assert_eq!(estimate("don't"), 2);
        assert_eq!(estimate("getUserById"), 4);
    }

    #[test]
    fn long_texts_are_sampled_without_losing_scale() {
        let paragraph = "The quick brown fox jumps over the lazy dog, again and again. ";
        let short = estimate(&paragraph.repeat(100));
        let long = estimate(&paragraph.repeat(2000));
        let ratio = f64::from(long) / f64::from(short);
        assert!((19.0..=21.0).contains(&ratio), "{short} {long}");
        // Multi-byte text cut at arbitrary offsets must not panic.
        assert!(estimate(&"汉字和English混合。".repeat(2000)) > 10_000);
    }

    /// `latin_word` as it was before the lower-case runs were counted eight bytes at a time.
    fn latin_word_bytewise(bytes: &[u8], start: usize) -> (usize, u32) {
        let mut i = start;
        let mut cost = 0u32;
        let mut letters = 0usize;
        let mut accented = 0u32;
        let mut prev_lower = false;
        while i < bytes.len() {
            let k = class(bytes[i]);
            if k & LETTER != 0 {
                let upper = k & UPPER != 0;
                if upper && prev_lower {
                    cost += word_price(letters, accented);
                    letters = 0;
                    accented = 0;
                }
                prev_lower = !upper;
                letters += 1;
                i += 1;
            } else if k & LATIN_LEAD != 0 && bytes.get(i + 1).is_some_and(|&c| c & 0xC0 == 0x80) {
                letters += 1;
                accented += 1;
                prev_lower = true;
                i += 2;
            } else {
                break;
            }
        }
        (i, cost + word_price(letters, accented))
    }

    #[test]
    fn words_are_priced_as_byte_by_byte() {
        // Bytes around every boundary the eight-byte count tests: 'a' - 1, 'a', 'z', 'z' + 1,
        // upper case, accented letters (lead and continuation bytes), and bytes with the
        // high bit set that are not letters.
        const PIECES: [&[u8]; 16] = [
            b"a",
            b"z",
            b"m",
            b"`",
            b"{",
            b"A",
            b"Z",
            b"_",
            b" ",
            b"7",
            b"\xC3\xA9",
            b"\xC9\x8F",
            b"\xE4\xB8\xAD",
            b"\xFA",
            b"\x7F",
            b"'",
        ];
        let mut next = crate::features::xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..50_000 {
            let len = (next() % 40) as usize;
            let bytes: Vec<u8> =
                (0..len).flat_map(|_| PIECES[(next() % 16) as usize].iter().copied()).collect();
            for start in 0..bytes.len() {
                assert_eq!(
                    latin_word(&bytes, start),
                    latin_word_bytewise(&bytes, start),
                    "{bytes:?} from {start}"
                );
            }
        }
    }

    #[test]
    fn plain_prose_is_priced_as_by_the_general_rules() {
        const PIECES: [&str; 20] = [
            "a",
            "word",
            "z",
            " ",
            " ",
            "  ",
            "A",
            "Word",
            "camelCase",
            "é",
            "'",
            "don't",
            ".",
            "\n",
            "42",
            "中",
            ", ",
            "? ",
            ".)",
            ";",
        ];
        let mut next = crate::features::xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let len = (next() % 30) as usize;
            let text: String = (0..len).map(|_| PIECES[(next() % 20) as usize]).collect();
            assert_eq!(price_with(&text, true), price_with(&text, false), "{text:?}");
        }
    }

    #[test]
    fn chinese_is_priced_per_character() {
        let n = estimate("今天天气很好");
        assert!((4..=7).contains(&n), "{n}");
    }

    #[test]
    fn framing_is_added_per_message() {
        let prompt = Prompt::user("Hello");
        assert_eq!(prompt_tokens(&prompt), 1 + framing(1));
    }

    #[test]
    fn output_expectation_follows_domain_complexity_and_cap() {
        let chat = expected_output_tokens(Domain::Chat, 0.1, 10, None);
        let code = expected_output_tokens(Domain::Code, 0.1, 10, None);
        let hard_code = expected_output_tokens(Domain::Code, 0.9, 10, None);
        assert!(chat < code && code < hard_code, "{chat} {code} {hard_code}");
        assert_eq!(expected_output_tokens(Domain::Code, 0.9, 10, Some(100)), 100);
        let short = expected_output_tokens(Domain::Translation, 0.3, 50, None);
        let long = expected_output_tokens(Domain::Translation, 0.3, 2000, None);
        assert!(long > 10 * short, "{short} {long}");
    }
}
