//! Where in the file: byte offsets to lines, and the key a TOML error is about.

/// The dotted key a TOML error is about, read from the document at the error's position:
/// the key on that line under the nearest `[section]` above, or that section alone. The
/// first backticked word of toml's message is no key in general: for a syntax or type
/// error it is a delimiter or the offending value (`"`, `]`, `5`). "(file)" when the error
/// is outside any key and section.
pub(super) fn key_from_toml_error(text: &str, offset: Option<usize>, message: &str) -> String {
    const MAX_KEY: usize = 80;
    let upto = offset.map_or(text.len(), |o| o.min(text.len()));
    let mut end = upto;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    // Lines up to and including the one the error is on.
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let lines: Vec<&str> = text[..line_end].lines().collect();
    // Only text that is a TOML key counts: a garbled line names no key.
    let is_key = |k: &str| {
        !k.is_empty()
            && k.split('.').map(str::trim).all(|seg| {
                let quoted = |q: char| {
                    seg.len() >= 2
                        && seg.starts_with(q)
                        && seg.ends_with(q)
                        && !seg[1..seg.len() - 1].contains(|c: char| c == q || c.is_control())
                };
                quoted('"')
                    || quoted('\'')
                    || (!seg.is_empty()
                        && seg
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            })
    };
    let header = |l: &str| -> Option<String> {
        let l = l.trim_start().strip_prefix('[')?;
        let l = l.strip_prefix('[').unwrap_or(l);
        let name = l.split(']').next().unwrap_or(l).trim();
        Some(name.to_owned())
    };
    let key_of = |l: &str| -> Option<String> {
        let t = l.trim_start();
        if t.starts_with('#') || t.starts_with('[') {
            return None;
        }
        let (k, _) = t.split_once('=')?;
        let k = k.trim();
        is_key(k).then(|| k.to_owned())
    };
    // Only the error's own line names a key: one further up would be another key.
    let key = lines.last().and_then(|l| key_of(l));
    let section = lines
        .iter()
        .rev()
        .find_map(|l| header(l).filter(|h| is_key(h)));
    let found = match (section, key) {
        (Some(s), Some(k)) => Some(format!("{s}.{k}")),
        (Some(s), None) => Some(s),
        (None, Some(k)) => Some(k),
        // toml reports unknown fields as "unknown field `x`, expected ...".
        (None, None) => message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next())
            .map(str::to_owned),
    };
    match found {
        Some(k) if !k.is_empty() => {
            let mut k = k;
            if k.len() > MAX_KEY {
                let mut cut = MAX_KEY;
                while !k.is_char_boundary(cut) {
                    cut -= 1;
                }
                k.truncate(cut);
                k.push('…');
            }
            k
        }
        _ => "(file)".to_owned(),
    }
}

pub(super) struct LineIndex {
    pub(super) starts: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { starts }
    }

    pub(super) fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}
