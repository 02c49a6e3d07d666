//! RFC 4180 CSV parsing for the import jobs' uploaded files.

/// RFC 4180 CSV: comma-separated, `"`-quoted fields with `""` escapes, CRLF or LF record ends,
/// line breaks allowed inside quotes. Returns each record with the line it starts on.
pub(crate) fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut closed_quote = false;
    let mut line = 1usize;
    let mut record_line = 1usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => {
                    in_quotes = false;
                    closed_quote = true;
                }
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                other => field.push(other),
            }
            continue;
        }
        match c {
            ',' => {
                record.push(std::mem::take(&mut field));
                closed_quote = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' | '\n' => {
                record.push(std::mem::take(&mut field));
                records.push((record_line, std::mem::take(&mut record)));
                closed_quote = false;
                line += 1;
                record_line = line;
            }
            '"' if field.is_empty() && !closed_quote => in_quotes = true,
            '"' => return Err(format!("line {line}: a quote inside an unquoted field")),
            _ if closed_quote => {
                return Err(format!("line {line}: characters after a closing quote"));
            }
            other => field.push(other),
        }
    }
    if in_quotes {
        return Err(format!("line {record_line}: unterminated quoted field"));
    }
    if !field.is_empty() || !record.is_empty() || closed_quote {
        record.push(field);
        records.push((record_line, record));
    }
    Ok(records)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn recs(text: &str) -> Vec<Vec<String>> {
        parse_csv(text)
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    #[test]
    fn csv_parsing() {
        assert_eq!(recs("a,b\r\n1,2\r\n"), vec![vec!["a", "b"], vec!["1", "2"]]);
        assert_eq!(recs("a,b\n1,2"), vec![vec!["a", "b"], vec!["1", "2"]]);
        assert_eq!(
            recs("key\n\"a, \"\"b\"\"\nc\"\n\"\"\n"),
            vec![vec!["key"], vec!["a, \"b\"\nc"], vec![""]]
        );
        assert_eq!(recs("a,,\n"), vec![vec!["a", "", ""]]);
        let lines: Vec<usize> = parse_csv("a\n\"x\ny\"\nz\n")
            .unwrap()
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        assert_eq!(lines, vec![1, 2, 4]);
        assert!(parse_csv("a\n\"open").unwrap_err().contains("unterminated"));
        assert!(parse_csv("a\nb\"c\n").is_err());
        assert!(parse_csv("a\n\"b\"c\n").is_err());
    }
}
