//! A forward-only reader for the JSON that crosses the gateway on every request — a plain
//! client request, the upstream's answer, each event of its stream — so that the wire formats
//! can read their common shapes without serde.
//!
//! serde's derived decoders spend most of their time on what the gateway then drops: matching
//! and skipping ids, timestamps, fingerprints and log-probabilities, and (for Anthropic's
//! internally tagged events) buffering the whole event before they know its type; the request
//! validator first builds a `serde_json::Value` tree of the whole body. This reader walks the
//! bytes once and lets its caller pick out the fields it wants.
//!
//! It only ever answers for JSON it has read to the end: every method returns `None` on
//! anything it does not expect, and the callers then read the input with serde, so an
//! unusual or broken input gets exactly the reading or the error it always got. What it skips
//! it checks as serde checks what it ignores (string escapes, control characters, number
//! syntax), so an input this reader accepts is one serde would accept too.

use std::borrow::Cow;
use std::ops::Range;

use super::next_escape;

/// Nesting this deep in a skipped value is left to serde (whose own limit is 128).
const MAX_DEPTH: u32 = 32;

/// A position in a JSON text.
pub(crate) struct Scan<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self { text, bytes: text.as_bytes(), at: 0 }
    }

    /// The next byte that is not whitespace, left unread.
    fn peek(&mut self) -> Option<u8> {
        while let Some(&byte) = self.bytes.get(self.at) {
            if !matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(byte);
            }
            self.at += 1;
        }
        None
    }

    fn eat(&mut self, expected: u8) -> Option<()> {
        (self.peek()? == expected).then(|| self.at += 1)
    }

    /// Reads `{`, then each member: its key (which must need no unescaping) and a call of
    /// `member`, which must read the value; then `}`.
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.key()?;
            self.eat(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Reads `[`, a call of `item` for each element, and `]`.
    pub(crate) fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Whether the text ends here, but for whitespace.
    pub(crate) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Reads `null` if it comes next, and says whether it did.
    pub(crate) fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal(b"null").is_some()
    }

    /// Reads a string, unescaped: borrowed from the text unless it has escapes.
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        // Every cut below is next to an ASCII byte, so slicing the text cannot fail (and
        // needs no second check that the bytes are UTF-8).
        let (text, start) = (self.text, self.at);
        let mut owned: Option<String> = None;
        let mut run = start;
        loop {
            let found = next_escape(self.bytes, self.at)?;
            match self.bytes[found] {
                b'"' => {
                    self.at = found + 1;
                    let Some(mut owned) = owned else {
                        return text.get(start..found).map(Cow::Borrowed);
                    };
                    owned.push_str(text.get(run..found)?);
                    return Some(Cow::Owned(owned));
                }
                b'\\' => {
                    let out =
                        owned.get_or_insert_with(|| String::with_capacity(found - start + 16));
                    out.push_str(text.get(run..found)?);
                    self.at = found + 1;
                    self.unescape(out)?;
                    run = self.at;
                }
                // A raw control character: not JSON.
                _ => return None,
            }
        }
    }

    /// Reads a string, and says where in the text it stood (its quotes included).
    pub(crate) fn string_at(&mut self) -> Option<(Cow<'a, str>, Range<usize>)> {
        self.peek()?;
        let start = self.at;
        let string = self.string()?;
        Some((string, start..self.at))
    }

    /// Skips any value, and says where in the text it stood.
    pub(crate) fn skip_at(&mut self) -> Option<Range<usize>> {
        self.peek()?;
        let start = self.at;
        self.skip()?;
        Some(start..self.at)
    }

    /// Reads exactly `bytes` (which must not start with whitespace), after any whitespace.
    pub(crate) fn exactly(&mut self, bytes: &[u8]) -> Option<()> {
        self.peek();
        self.literal(bytes)
    }

    /// Reads a string or `null`.
    pub(crate) fn string_or_null(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() { Some(None) } else { self.string().map(Some) }
    }

    /// Reads an object's key, which must have no escapes (none that a decoder looks for has).
    fn key(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let end = next_escape(self.bytes, start)?;
        if self.bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        self.text.get(start..end)
    }

    /// Reads an unsigned integer that fits in a `u32`, as serde reads one: digits only, no
    /// sign, fraction or exponent. (A leading zero ends a JSON number, so `01` fails on the
    /// `1` after it.)
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.unsigned()
    }

    /// Reads an unsigned integer that fits in a `u64`, as [`u32`](Self::u32) does.
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.unsigned()
    }

    /// Reads a count as the request validator takes one (`Field::count(1)`): a whole number
    /// from 1 to `u32::MAX`.
    pub(crate) fn count(&mut self) -> Option<u32> {
        self.u32().filter(|count| *count >= 1)
    }

    /// Reads a number in `[0, max]` as the request validator takes one
    /// (`Field::number_in(0.0, max)`).
    pub(crate) fn f32_within(&mut self, max: f64) -> Option<f32> {
        self.f64().filter(|number| (0.0..=max).contains(number)).map(|number| number as f32)
    }

    fn unsigned<T: std::str::FromStr>(&mut self) -> Option<T> {
        self.number_text()?.parse().ok()
    }

    /// Reads a number as serde reads it into an `f64` — by serde itself, so that the two
    /// round alike.
    pub(crate) fn f64(&mut self) -> Option<f64> {
        serde_json::from_str(self.number_text()?).ok()
    }

    /// Reads a number, returning its text.
    fn number_text(&mut self) -> Option<&'a str> {
        self.peek()?;
        let start = self.at;
        self.number()?;
        self.text.get(start..self.at)
    }

    /// Reads `true` or `false`.
    pub(crate) fn boolean(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => None,
        }
    }

    /// Reads any value without keeping it.
    pub(crate) fn skip(&mut self) -> Option<()> {
        self.skip_nested(0)
    }

    fn skip_nested(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.object(|scan, _| scan.skip_nested(depth + 1)),
            b'[' => self.array(|scan| scan.skip_nested(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            let found = next_escape(self.bytes, self.at)?;
            self.at = found + 1;
            match self.bytes[found] {
                b'"' => return Some(()),
                b'\\' => match self.next_byte()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        self.hex4()?;
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    /// Decodes the escape after a backslash onto `out`.
    fn unescape(&mut self, out: &mut String) -> Option<()> {
        let ch = match self.next_byte()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                let code = match unit {
                    0xd800..=0xdbff => {
                        // A leading surrogate must be followed by a trailing one; a lone one
                        // is an error in serde, and left to it.
                        if self.bytes.get(self.at..self.at + 2)? != b"\\u" {
                            return None;
                        }
                        self.at += 2;
                        let low = self.hex4()?;
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return None;
                        }
                        0x10000 + ((u32::from(unit) - 0xd800) << 10) + (u32::from(low) - 0xdc00)
                    }
                    0xdc00..=0xdfff => return None,
                    _ => u32::from(unit),
                };
                char::from_u32(code)?
            }
            _ => return None,
        };
        out.push(ch);
        Some(())
    }

    fn hex4(&mut self) -> Option<u16> {
        let digits = self.bytes.get(self.at..self.at + 4)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        self.at += 4;
        Some(digits.iter().fold(0, |unit, &digit| (unit << 4) | hex_value(digit)))
    }

    fn next_byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.bytes.get(self.at..self.at + word.len())? != word {
            return None;
        }
        self.at += word.len();
        Some(())
    }

    /// Reads a number as JSON writes one: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        match self.next_byte()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if matches!(self.bytes.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.bytes.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

/// The value of an ASCII hexadecimal digit.
fn hex_value(digit: u8) -> u16 {
    u16::from(match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    })
}

/// What `fast` makes of `body`, if the body is text and `fast` takes it: the first try of
/// every reader here, before the full one.
pub(crate) fn read_fast<T>(body: &[u8], fast: impl FnOnce(&str) -> Option<T>) -> Option<T> {
    fast(std::str::from_utf8(body).ok()?)
}

/// Reads a message that is a `role` and a string `content` and nothing else, the shape of
/// nearly every message in a chat request, as both wire formats write it.
pub(crate) fn role_and_text<'a>(scan: &mut Scan<'a>) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
    let (mut role, mut content) = (None, None);
    scan.object(|scan, key| match key {
        "role" => first(&mut role, scan.string()),
        "content" => first(&mut content, scan.string()),
        _ => None,
    })?;
    Some((role?, content?))
}

/// Reads a member's value once: a second member of the same name is left to serde, which
/// refuses duplicates of the fields it reads.
pub(crate) fn first<T>(slot: &mut Option<T>, value: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value?);
    Some(())
}

/// Every text one edit away from `sample`: each character deleted, replaced by, or preceded
/// by each of a few pieces that JSON gives meaning to — for the tests that check a fast path
/// accepts nothing serde would refuse or read differently.
#[cfg(test)]
fn one_edit_away(sample: &str) -> Vec<String> {
    const PIECES: [&str; 14] =
        ["\"", "\\", ",", ":", "{", "}", "[", "]", "0", "-", "e", "n", " ", "\u{1}"];
    let mut edges: Vec<usize> = sample.char_indices().map(|(at, _)| at).collect();
    edges.push(sample.len());
    let mut out = Vec::new();
    for pair in edges.windows(2) {
        let (before, this, after) =
            (&sample[..pair[0]], &sample[pair[0]..pair[1]], &sample[pair[1]..]);
        out.push(format!("{before}{after}"));
        for piece in PIECES {
            out.push(format!("{before}{piece}{after}"));
            out.push(format!("{before}{piece}{this}{after}"));
        }
    }
    out
}

/// Checks a fast reader against the full one: it takes every text of `plain` and makes of it
/// exactly what `full` does, leaves every text of `other`, and makes nothing different from
/// `full` of any text one edit away from either. Some edits leave a text the fast reader
/// takes (an edit inside a string, say), most do not; a count outside that says the samples
/// test nothing.
#[cfg(test)]
pub(crate) fn check_fast_reader<T: PartialEq + std::fmt::Debug, E: std::fmt::Debug>(
    plain: &[&str],
    other: &[&str],
    fast: impl Fn(&str) -> Option<T>,
    full: impl Fn(&str) -> Result<T, E>,
) {
    let read_alike = |text: &str| {
        let Some(quick) = fast(text) else { return false };
        match full(text) {
            Ok(slow) => assert_eq!(quick, slow, "{text:?}"),
            Err(error) => {
                panic!("the fast reader took {text:?}, which the full one refuses: {error:?}")
            }
        }
        true
    };
    for text in plain {
        assert!(read_alike(text), "not taken by the fast reader: {text}");
    }
    for text in other {
        assert!(fast(text).is_none(), "taken by the fast reader: {text}");
    }
    let (mut taken, mut all) = (0, 0);
    for sample in plain.iter().chain(other) {
        for edited in one_edit_away(sample) {
            all += 1;
            taken += usize::from(read_alike(&edited));
        }
    }
    assert!(taken > all / 100 && taken < all * 3 / 4, "{taken} of {all} taken by the fast reader");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skipped(text: &str) -> Option<()> {
        let mut scan = Scan::new(text);
        scan.skip()?;
        scan.at_end().then_some(())
    }

    #[test]
    fn skips_what_serde_accepts_and_nothing_it_refuses() {
        let samples = [
            "0",
            "-0",
            "12",
            "-3.25e+10",
            "1E5",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "true",
            "tru",
            "nul",
            "null",
            "\"a\\u00e9\\n\"",
            "\"bad \\x escape\"",
            "\"short \\u12\"",
            "\"lone \\ud800 surrogate\"",
            "\"raw \u{1} control\"",
            "{}",
            "[]",
            "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}",
            "{\"a\":1,}",
            "[1,]",
            "{\"a\" 1}",
            "[1 2]",
            " { \"a\" : [ ] } ",
            "{\"a\":1}}",
        ];
        for text in samples {
            let serde = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
            assert_eq!(skipped(text).is_some(), serde, "{text:?}");
        }
    }

    #[test]
    fn deep_nesting_is_left_to_serde() {
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(serde_json::from_str::<serde::de::IgnoredAny>(&deep).is_ok());
        assert_eq!(skipped(&deep), None);
    }

    #[test]
    fn strings_unescape_as_serde_does() {
        let samples = [
            "\"plain\"",
            "\"\"",
            "\"tab\\tquote\\\"slash\\/back\\\\\"",
            "\"\\b\\f\\r\\n\"",
            "\"caf\\u00e9 \\u4e2d\"",
            "\"emoji \\ud83d\\ude00 done\"",
            "\"raw ünïcödé 中文 😀\"",
            "\"\\ud83d alone\"",
            "\"\\ude00 alone\"",
            "\"\\ud83d\\u0041 not a pair\"",
            "\"\\q\"",
            "\"unterminated",
            "\"nul \u{0} inside\"",
        ];
        for text in samples {
            let ours = Scan::new(text).string().map(Cow::into_owned);
            let serde = serde_json::from_str::<String>(text).ok();
            assert_eq!(ours, serde, "{text:?}");
        }
        assert!(matches!(Scan::new("\"no escapes\"").string(), Some(Cow::Borrowed(_))));
    }

    #[test]
    fn u32_reads_what_serde_reads_as_u32() {
        for text in ["0", "7", "4294967295", "4294967296", "-1", "01", "1.0", "1e2", "x"] {
            let mut scan = Scan::new(text);
            let ours = scan.u32().filter(|_| scan.at_end());
            assert_eq!(ours, serde_json::from_str::<u32>(text).ok(), "{text:?}");
        }
    }

    #[test]
    fn objects_hand_over_their_keys_in_order() {
        let mut keys = Vec::new();
        let mut scan = Scan::new(r#"{"b": 1, "a": {"x": []}, "c": "d"}"#);
        scan.object(|scan, key| {
            keys.push(key);
            scan.skip()
        })
        .unwrap();
        assert!(scan.at_end());
        assert_eq!(keys, ["b", "a", "c"]);
        // A key with an escape is not read here.
        assert_eq!(Scan::new(r#"{"\u0061": 1}"#).object(|scan, _| scan.skip()), None);
    }

    #[test]
    fn first_refuses_a_second_value() {
        let mut slot = None;
        assert_eq!(first(&mut slot, Some(1)), Some(()));
        assert_eq!(first(&mut slot, Some(2)), None);
        assert_eq!(slot, Some(1));
        assert_eq!(first(&mut None::<u8>, None), None);
    }
}
