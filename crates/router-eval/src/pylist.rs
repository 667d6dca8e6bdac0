//! RouterBench stores each prompt as the text of a Python list of strings
//! (`"['Question…', 'Follow-up…']"`). This reads such a literal back into its strings.

/// The strings of a Python list literal of string literals, or `None` when `text` is not
/// one (then it is taken as plain text by the caller).
pub fn strings(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut out = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let (s, after) = string_literal(rest)?;
        out.push(s);
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => {}
            None => return None,
        }
    }
    Some(out)
}

/// One Python string literal at the start of `s` (single or double quoted, with an
/// optional `r`/`u` prefix); returns it and the rest.
fn string_literal(s: &str) -> Option<(String, &str)> {
    let (raw, s) = match s.as_bytes().first()? {
        b'r' | b'R' => (true, &s[1..]),
        b'u' | b'U' => (false, &s[1..]),
        _ => (false, s),
    };
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &s[1..];
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Some((out, &body[i + 1..]));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (_, e) = chars.next()?;
        if raw {
            out.push('\\');
            out.push(e);
            continue;
        }
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '0' => out.push('\0'),
            '\\' | '\'' | '"' => out.push(e),
            '\n' => {}
            'x' => out.push(hex_char(&mut chars, 2)?),
            'u' => out.push(hex_char(&mut chars, 4)?),
            'U' => out.push(hex_char(&mut chars, 8)?),
            other => {
                // Python keeps unknown escapes as written.
                out.push('\\');
                out.push(other);
            }
        }
    }
    None
}

fn hex_char(chars: &mut std::str::CharIndices<'_>, digits: usize) -> Option<char> {
    let mut value = 0u32;
    for _ in 0..digits {
        let (_, d) = chars.next()?;
        value = value * 16 + d.to_digit(16)?;
    }
    char::from_u32(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_single_and_double_quoted_items_with_escapes() {
        let text = r#"['Q1?\nA) it\'s\nAnswer:', "He said \"no\" \u00e9\x41", r'raw\n']"#;
        let items = strings(text).unwrap();
        assert_eq!(items, vec!["Q1?\nA) it's\nAnswer:", "He said \"no\" éA", "raw\\n"]);
    }

    #[test]
    fn plain_text_and_broken_literals_are_not_lists() {
        assert_eq!(strings("What is 2+2?"), None);
        assert_eq!(strings("['unterminated]"), None);
        assert_eq!(strings("['a' 'b']"), None);
        assert_eq!(strings("[]"), Some(vec![]));
        assert_eq!(strings("[1, 2]"), None);
    }
}
