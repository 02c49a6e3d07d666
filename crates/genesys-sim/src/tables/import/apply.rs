//! What an uploaded CSV does to a table: validated against its fields (a file-level
//! problem fails the job, a bad record fails alone), then stored as `ReplaceAll` or
//! `Append` says.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Number, Value};

use crate::FieldType;
use crate::tables::csv::parse_csv;
use crate::tables::{MAX_ROWS, Table};

/// How an import job applies its file: `ReplaceAll` or `Append`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImportMode {
    ReplaceAll,
    Append,
}

impl ImportMode {
    pub(super) fn wire_name(self) -> &'static str {
        match self {
            ImportMode::ReplaceAll => "ReplaceAll",
            ImportMode::Append => "Append",
        }
    }
}

/// How many row problems an errorInformation message lists before summarizing.
const MAX_LISTED_PROBLEMS: usize = 5;

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) updated: u64,
    pub(crate) deleted: u64,
    pub(crate) failed: u64,
    /// `errorInformation` message naming the failed records, when some failed.
    pub(crate) problems: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) message: String,
    /// Records that failed validation (0 when the file as a whole is unusable).
    pub(crate) failed: u64,
}

impl Failure {
    pub(super) fn file(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            failed: 0,
        }
    }
}

/// A validated file: the rows to store and the records that failed.
#[derive(Debug)]
pub(crate) struct Parsed {
    rows: BTreeMap<String, Map<String, Value>>,
    failed: u64,
    problems: Option<String>,
}

/// Validates an uploaded CSV against the table. A file-level problem (encoding, header, a
/// result over the row limit) fails the whole job; a bad record fails alone.
pub(crate) fn parse_import(
    table: &Table,
    mode: ImportMode,
    csv: &[u8],
    fail_keys: &BTreeSet<String>,
) -> Result<Parsed, Failure> {
    let text =
        std::str::from_utf8(csv).map_err(|_| Failure::file("The file is not valid UTF-8"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let records = parse_csv(text).map_err(Failure::file)?;
    let mut records = records
        .into_iter()
        .filter(|(_, r)| !(r.len() == 1 && r[0].is_empty()));
    let Some((_, header)) = records.next() else {
        return Err(Failure::file("The file is empty: a header row is required"));
    };
    let mut seen = BTreeSet::new();
    for column in &header {
        if !seen.insert(column.as_str()) {
            return Err(Failure::file(format!(
                "The header names column \"{column}\" twice"
            )));
        }
        if !table.fields.contains_key(column) {
            return Err(Failure::file(format!(
                "The header column \"{column}\" is not a field of the datatable"
            )));
        }
    }
    if !seen.contains("key") {
        return Err(Failure::file("The header must include the \"key\" column"));
    }

    let mut rows: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut problems: Vec<String> = Vec::new();
    for (line, record) in records {
        let row = record_to_row(table, &header, &record).and_then(|row| {
            let key = row
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if fail_keys.contains(&key) {
                return Err(format!(
                    "key \"{key}\": a value was refused by the datatable schema"
                ));
            }
            Ok((key, row))
        });
        match row {
            Ok((key, row)) => match rows.entry(key) {
                Entry::Occupied(e) => {
                    problems.push(format!("line {line}: duplicate key \"{}\"", e.key()));
                }
                Entry::Vacant(e) => {
                    e.insert(row);
                }
            },
            Err(e) => problems.push(format!("line {line}: {e}")),
        }
    }
    let resulting = match mode {
        ImportMode::ReplaceAll => rows.len(),
        ImportMode::Append => {
            rows.len() + table.rows.keys().filter(|k| !rows.contains_key(*k)).count()
        }
    };
    if resulting > MAX_ROWS {
        return Err(Failure::file(format!(
            "The import would leave {resulting} rows; a datatable holds at most {MAX_ROWS}"
        )));
    }
    let failed = problems.len() as u64;
    let problems = (!problems.is_empty()).then(|| {
        let mut message = format!("{failed} record(s) failed: ");
        message.push_str(
            &problems
                .iter()
                .take(MAX_LISTED_PROBLEMS)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
        );
        if problems.len() > MAX_LISTED_PROBLEMS {
            message.push_str(&format!(
                "; and {} more",
                problems.len() - MAX_LISTED_PROBLEMS
            ));
        }
        message
    });
    Ok(Parsed {
        rows,
        failed,
        problems,
    })
}

/// Stores a validated file at once (ReplaceAll's visible gap is `process`'s business).
pub(crate) fn apply(table: &mut Table, mode: ImportMode, parsed: Parsed) -> Counts {
    let updated = parsed.rows.len() as u64;
    let deleted = match mode {
        ImportMode::ReplaceAll => {
            let gone = table
                .rows
                .keys()
                .filter(|k| !parsed.rows.contains_key(*k))
                .count() as u64;
            table.rows = parsed.rows;
            gone
        }
        ImportMode::Append => {
            table.rows.extend(parsed.rows);
            0
        }
    };
    Counts {
        updated,
        deleted,
        failed: parsed.failed,
        problems: parsed.problems,
    }
}

#[cfg(test)]
fn apply_csv(table: &mut Table, mode: ImportMode, csv: &[u8]) -> Result<Counts, Failure> {
    let parsed = parse_import(table, mode, csv, &BTreeSet::new())?;
    Ok(apply(table, mode, parsed))
}

fn record_to_row(
    table: &Table,
    header: &[String],
    record: &[String],
) -> Result<Map<String, Value>, String> {
    if record.len() != header.len() {
        return Err(format!(
            "{} fields, expected {}",
            record.len(),
            header.len()
        ));
    }
    let mut row = Map::new();
    for (column, cell) in header.iter().zip(record) {
        let Some(spec) = table.fields.get(column) else {
            continue;
        };
        // An empty cell leaves the field unset, except for the key, which must be given.
        if cell.is_empty() && column != "key" {
            continue;
        }
        let value = match spec.ty {
            FieldType::String => Value::String(cell.clone()),
            FieldType::Integer => cell
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("\"{column}\": \"{cell}\" is not an integer"))?,
            FieldType::Number => {
                let t = cell.trim();
                match t.parse::<i64>() {
                    Ok(i) => Value::from(i),
                    Err(_) => t
                        .parse::<f64>()
                        .ok()
                        .and_then(Number::from_f64)
                        .map(Value::Number)
                        .ok_or_else(|| format!("\"{column}\": \"{cell}\" is not a number"))?,
                }
            }
            FieldType::Boolean => match cell.trim().to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    return Err(format!(
                        "\"{column}\": \"{cell}\" is not a boolean (true/false)"
                    ));
                }
            },
        };
        row.insert(column.clone(), value);
    }
    table
        .validate_row(&Value::Object(row), None)
        .map_err(|e| e.message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::org::Org;
    use serde_json::json;

    fn table() -> Table {
        let mut org = Org::new();
        let id = org.create_table_direct(
            "T",
            &[
                ("Online", FieldType::Integer),
                ("Note", FieldType::String),
                ("On", FieldType::Boolean),
            ],
        );
        org.put_row_direct(&id, json!({"key": "old", "Online": 1}));
        org.put_row_direct(&id, json!({"key": "a", "Online": 1}));
        org.tables.remove(&id).unwrap()
    }

    #[test]
    fn replace_all_and_append() {
        let mut t = table();
        let c = apply_csv(
            &mut t,
            ImportMode::ReplaceAll,
            b"key,Online,On\na,2,TRUE\nb,,false\n",
        )
        .unwrap();
        assert_eq!((c.updated, c.deleted, c.failed), (2, 1, 0));
        assert_eq!(
            t.rows["a"],
            *json!({"key": "a", "Online": 2, "On": true})
                .as_object()
                .unwrap()
        );
        assert_eq!(
            t.rows["b"],
            *json!({"key": "b", "On": false}).as_object().unwrap()
        );
        let c = apply_csv(
            &mut t,
            ImportMode::Append,
            "\u{feff}key,Note\r\nc,\"x,y\"\r\n".as_bytes(),
        )
        .unwrap();
        assert_eq!((c.updated, c.deleted, c.failed), (1, 0, 0));
        assert_eq!(t.rows.len(), 3);
    }

    #[test]
    fn bad_files_fail_without_changes() {
        let mut t = table();
        let before = t.rows.clone();
        let cases: [(&[u8], &str); 6] = [
            (b"", "empty"),
            (b"Online\n1\n", "key"),
            (b"key,Bogus\na,1\n", "Bogus"),
            (b"key,key\na,b\n", "twice"),
            (b"key,Online\n\"a,1\n", "unterminated"),
            (b"key\n\xff\n", "UTF-8"),
        ];
        for (csv, needle) in cases {
            let f = apply_csv(&mut t, ImportMode::ReplaceAll, csv).unwrap_err();
            assert!(f.message.contains(needle), "{needle}: {}", f.message);
        }
        assert_eq!(t.rows, before);
    }

    #[test]
    fn bad_records_fail_alone_and_are_named() {
        let cases: [(&[u8], &str); 3] = [
            (b"key,Online\na,x\nc,3\n", "line 2"),
            (b"key,Online\nc,3\na,1\na,2\n", "duplicate"),
            (b"key,Online\nc,3\na\n", "fields"),
        ];
        for (csv, needle) in cases {
            let mut t = table();
            let c = apply_csv(&mut t, ImportMode::Append, csv).unwrap();
            assert_eq!(c.failed, 1, "{needle}");
            let problems = c.problems.unwrap();
            assert!(problems.contains(needle), "{needle}: {problems}");
            assert_eq!(t.rows["c"]["Online"], 3, "{needle}: the good record landed");
        }
        let mut t = table();
        let c = apply_csv(&mut t, ImportMode::Append, b"key,Online\na,x\nb,y\nc,3\n").unwrap();
        assert_eq!(c.failed, 2);
        assert_eq!(
            t.rows["a"]["Online"], 1,
            "a failed record leaves the row as it was"
        );
        // Scripted failures name the key.
        let t = table();
        let fail = BTreeSet::from(["b".to_owned()]);
        let p = parse_import(&t, ImportMode::Append, b"key,Online\na,2\nb,2\n", &fail).unwrap();
        assert_eq!(p.failed, 1);
        assert!(p.problems.unwrap().contains("key \"b\""));
        assert_eq!(p.rows.len(), 1);
    }
}
