//! `[columns]`: column name -> metric, in written order, validated against the column
//! registry's vocabulary.
//!
//! ```toml
//! [columns]
//! Online       = "online"
//! WaitingVoice = { metric = "waiting", media = ["voice"] }
//! OnBreak      = { metric = "presence", presence = "BREAK" }
//! ```

use toml::Spanned;

use super::error::ConfigError;
use super::raw::RawColumns;
use super::validate::Validator;
use crate::sync::columns::{self, Column, Columns};

const SETTINGS_FIX: &str = "write Name = \"metric\" or Name = { metric = \"waiting\", media = [\"voice\"] } \
                            (settings: metric, media, presence)";

impl Validator<'_> {
    /// The configured columns; the default five when there is no `[columns]`.
    pub(super) fn columns(&self, raw: Option<RawColumns>) -> Result<Columns, ConfigError> {
        let Some(raw) = raw else {
            return Ok(Columns::default());
        };
        let mut list = Vec::with_capacity(raw.entries.len());
        let mut lines = Vec::with_capacity(raw.entries.len());
        for (name, value) in &raw.entries {
            let line = self.line(name);
            let key = format!("columns.{}", name.get_ref());
            list.push(
                self.column(&key, name.get_ref(), value)
                    .map_err(|e| e.at(line))?,
            );
            lines.push(line);
        }
        Columns::new(list).map_err(|e| {
            let (key, line) = match e.index.and_then(|i| raw.entries.get(i).map(|x| (i, x))) {
                Some((i, (name, _))) => (
                    format!("columns.{}", name.get_ref()),
                    lines.get(i).copied().flatten(),
                ),
                None => ("columns".to_owned(), None),
            };
            ConfigError::new(&key, e.error.problem, e.error.fix).at(line)
        })
    }

    fn column(
        &self,
        key: &str,
        name: &str,
        value: &Spanned<toml::Value>,
    ) -> Result<Column, ConfigError> {
        let refuse = |problem: String, fix: String| ConfigError::new(key, problem, fix);
        let (metric, media, presence) = match value.get_ref() {
            toml::Value::String(m) => (m.clone(), None, None),
            toml::Value::Table(t) => {
                let mut metric = None;
                let mut media = None;
                let mut presence = None;
                for (k, v) in t {
                    match (k.as_str(), v) {
                        ("metric", toml::Value::String(m)) => metric = Some(m.clone()),
                        ("presence", toml::Value::String(p)) => presence = Some(p.clone()),
                        ("media", toml::Value::String(m)) => media = Some(vec![m.clone()]),
                        ("media", toml::Value::Array(a)) => {
                            let names = a
                                .iter()
                                .map(|x| x.as_str().map(str::to_owned))
                                .collect::<Option<Vec<String>>>()
                                .ok_or_else(|| {
                                    refuse(
                                        "`media` must list media type names".into(),
                                        "write media = [\"voice\", \"chat\"]".into(),
                                    )
                                })?;
                            media = Some(names);
                        }
                        ("metric" | "presence" | "media", other) => {
                            return Err(refuse(
                                format!("`{k}` must be a string, not {}", other.type_str()),
                                SETTINGS_FIX.into(),
                            ));
                        }
                        (other, _) => {
                            return Err(refuse(
                                format!("`{other}` is not a column setting"),
                                SETTINGS_FIX.into(),
                            ));
                        }
                    }
                }
                let Some(metric) = metric else {
                    return Err(refuse("no `metric` is given".into(), SETTINGS_FIX.into()));
                };
                (metric, media, presence)
            }
            other => {
                return Err(refuse(
                    format!(
                        "a column is a metric name or an inline table, not {}",
                        other.type_str()
                    ),
                    SETTINGS_FIX.into(),
                ));
            }
        };
        columns::column(name, &metric, media.as_deref(), presence.as_deref())
            .map_err(|e| refuse(e.problem, e.fix))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::*;
    use crate::sync::columns::Unit;

    use crate::config::tests::{BASE, with_secret as secret};

    /// The shipped example: the 13 columns of the documentation.
    const THIRTEEN: &str = include_str!("../../examples/columns.toml");

    #[test]
    fn no_columns_section_means_todays_five() {
        let c = parse(BASE, &secret()).unwrap();
        assert_eq!(c.columns, crate::sync::columns::Columns::default());
    }

    #[test]
    fn the_issues_thirteen_columns_load_in_written_order() {
        let c = parse(&format!("{BASE}{THIRTEEN}"), &secret()).unwrap();
        let names: Vec<&str> = c.columns.iter().map(|c| c.name.as_str()).collect();
        // The example's keys as the file writes them, read here without the loader.
        let file: toml::Table = THIRTEEN.parse().unwrap();
        let written: Vec<&str> = file["columns"]
            .as_table()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(written.len(), 13, "{written:?}");
        assert_eq!(names, written);
        let l = c.columns.get("LongestWaitingSeconds").unwrap();
        assert_eq!(l.unit(), Unit::Seconds);
        // Written order, not sorted: a column placed first stays first.
        let c = parse(
            &format!("{BASE}\n[columns]\nZeta = \"idle\"\nAlpha = \"waiting\"\n"),
            &secret(),
        )
        .unwrap();
        let names: Vec<&str> = c.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Zeta", "Alpha"]);
    }

    #[test]
    fn each_bad_entry_names_its_key_line_and_fix() {
        // (entry, key, problem fragment, fix fragment); the entry is on line 13.
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "X = \"queued\"",
                "columns.X",
                "not a metric",
                "longest_waiting_seconds",
            ),
            (
                "X = { metric = \"waiting\", media = [\"fax\"] }",
                "columns.X",
                "`fax` is not a media type",
                "screenshare",
            ),
            (
                "X = { metric = \"presence\", presence = \"LUNCH\" }",
                "columns.X",
                "not a system presence",
                "MEAL",
            ),
            (
                "X = { metric = \"idle\", media = [\"voice\"] }",
                "columns.X",
                "does not take `media`",
                "remove `media`",
            ),
            (
                "X = { metric = \"waiting\", presence = \"BREAK\" }",
                "columns.X",
                "does not take `presence`",
                "remove `presence`",
            ),
            (
                "X = { metric = \"waiting\", queue = \"Sales\" }",
                "columns.X",
                "`queue` is not a column setting",
                "metric, media, presence",
            ),
            ("X = 5", "columns.X", "not integer", "metric"),
            ("key = \"idle\"", "columns.key", "reserved", "another name"),
            (
                "updatedat = \"idle\"",
                "columns.updatedat",
                "reserved",
                "another name",
            ),
            (
                "\"On Break\" = \"idle\"",
                "columns.On Break",
                "not a field name",
                "letter",
            ),
            (
                "Idle = \"idle\"\nIDLE = \"waiting\"",
                "columns.IDLE",
                "ignoring case",
                "own name",
            ),
        ];
        for (entry, key, problem, fix) in cases {
            let text = format!("{BASE}\n[columns]\n{entry}\n");
            let err = parse(&text, &secret()).unwrap_err();
            assert_eq!(&err.key, key, "{entry}: {err}");
            let want_line = if entry.contains('\n') { 14 } else { 13 };
            assert_eq!(err.line, Some(want_line), "{entry}: {err}");
            assert!(err.problem.contains(problem), "{entry}: {err}");
            assert!(err.fix.contains(fix), "{entry}: {err}");
        }
    }

    #[test]
    fn more_than_48_columns_are_refused_at_the_49th() {
        let mut text = format!("{BASE}\n[columns]\n");
        for i in 0..49 {
            text.push_str(&format!("C{i} = \"idle\"\n"));
        }
        let err = parse(&text, &secret()).unwrap_err();
        assert_eq!(err.key, "columns.C48");
        assert_eq!(err.line, Some(13 + 48));
        assert!(err.fix.contains("48"), "{err}");
        let empty = parse(&format!("{BASE}\n[columns]\n"), &secret()).unwrap_err();
        assert_eq!(empty.key, "columns");
    }
}
