//! A small RFC 4180 CSV reader: quoted fields, doubled quotes inside them, line breaks
//! inside quotes, CRLF or LF. Enough for score files; not a general-purpose parser.

/// Splits CSV text into records of fields. A malformed file (an unterminated quote) yields
/// the fields read so far for its last record rather than failing: the loaders check the
/// columns they need anyway.
pub fn records(text: &str) -> Records<'_> {
    Records { rest: text.strip_prefix('\u{feff}').unwrap_or(text), line: 0 }
}

/// Iterator over the records of a CSV text, with the line each record starts on.
pub struct Records<'a> {
    rest: &'a str,
    line: usize,
}

impl Iterator for Records<'_> {
    /// (1-based line number, fields)
    type Item = (usize, Vec<String>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let start_line = self.line + 1;
            let mut fields = Vec::new();
            let mut field = String::new();
            let mut quoted = false;
            let mut at_field_start = true;
            let mut chars = self.rest.char_indices().peekable();
            let mut consumed = self.rest.len();
            while let Some((i, c)) = chars.next() {
                if quoted {
                    if c == '"' {
                        if chars.peek().is_some_and(|(_, n)| *n == '"') {
                            field.push('"');
                            chars.next();
                        } else {
                            quoted = false;
                        }
                    } else {
                        if c == '\n' {
                            self.line += 1;
                        }
                        field.push(c);
                    }
                    continue;
                }
                match c {
                    '"' if at_field_start => {
                        quoted = true;
                        at_field_start = false;
                    }
                    ',' => {
                        fields.push(std::mem::take(&mut field));
                        at_field_start = true;
                    }
                    '\r' if chars.peek().is_some_and(|(_, n)| *n == '\n') => {}
                    '\n' => {
                        self.line += 1;
                        consumed = i + 1;
                        break;
                    }
                    _ => {
                        field.push(c);
                        at_field_start = false;
                    }
                }
            }
            self.rest = &self.rest[consumed..];
            // A blank line is no record.
            if fields.is_empty() && field.is_empty() {
                continue;
            }
            fields.push(field);
            return Some((start_line, fields));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_escaped_quotes_crlf_and_blank_lines() {
        let text = "a,b,c\r\n1,\"x, y\",\"he said \"\"hi\"\"\"\r\n\n2,,\"multi\nline\"\n3,z,";
        let rows: Vec<_> = records(text).collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0], (1, vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(rows[1].1, vec!["1", "x, y", "he said \"hi\""]);
        assert_eq!(rows[2], (4, vec!["2".into(), String::new(), "multi\nline".into()]));
        assert_eq!(rows[3], (6, vec!["3".into(), "z".into(), String::new()]));
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let rows: Vec<_> = records("\u{feff}prompt_id,model\np,m\n").collect();
        assert_eq!(rows[0].1, vec!["prompt_id", "model"]);
    }
}
