//! A data table's schema as the daemon sees it: column types, the table it found, how
//! its schema falls short of what the daemon writes, and the schema the daemon creates.
//! Pure: no requests (those are in the parent module).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Column types a data table supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Integer,
    Number,
    Boolean,
}

impl ColumnType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
        }
    }
}

/// The fields a table must have, in display order (`key` first): the daemon's columns.
pub type Fields<'a> = [(&'a str, ColumnType)];

/// A data table holds at most this many rows (Customer Care can raise it).
pub const MAX_ROWS: usize = 5000;

/// Written into the `description` of each field the daemon creates, so a field it wrote
/// once is recognised after its column was removed from the config.
pub const FIELD_MARKER: &str = "Written by genesys-queue-sync";

/// A data table as the API describes it.
#[derive(Debug, Clone)]
pub struct Table {
    pub id: String,
    pub name: String,
    /// Column name → JSON type as declared in the schema.
    pub columns: BTreeMap<String, String>,
    /// Fields whose description carries [`FIELD_MARKER`].
    pub marked: BTreeSet<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawTable {
    id: String,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    schema: Option<RawSchema>,
}

#[derive(Debug, Deserialize)]
struct RawSchema {
    #[serde(default)]
    properties: Map<String, Value>,
}

impl From<RawTable> for Table {
    fn from(t: RawTable) -> Self {
        let mut columns = BTreeMap::new();
        let mut marked = BTreeSet::new();
        for (k, v) in t.schema.map(|s| s.properties).unwrap_or_default() {
            let ty = v.get("type").and_then(Value::as_str).unwrap_or("?");
            if v.get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| d.starts_with(FIELD_MARKER))
            {
                marked.insert(k.clone());
            }
            columns.insert(k, ty.to_owned());
        }
        Self {
            id: t.id,
            name: t.name,
            columns,
            marked,
        }
    }
}

/// One way a table's schema does not fit what the daemon writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaProblem {
    Missing {
        column: String,
        ty: ColumnType,
    },
    WrongType {
        column: String,
        want: ColumnType,
        have: String,
    },
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { column, ty } => write!(
                f,
                "column `{column}` is missing: `genesys-queue-sync table create` adds it (or add it as {} in Architect > Data Tables)",
                ty.as_str()
            ),
            Self::WrongType { column, want, have } => write!(
                f,
                "column `{column}` is {have} but must be {}: columns cannot be retyped, so recreate the table",
                want.as_str()
            ),
        }
    }
}

/// What is wrong with `table`'s schema for `fields`; empty when it fits.
pub fn check_schema(table: &Table, fields: &Fields<'_>) -> Vec<SchemaProblem> {
    fields
        .iter()
        .filter_map(|&(column, ty)| match table.columns.get(column) {
            None => Some(SchemaProblem::Missing {
                column: column.to_owned(),
                ty,
            }),
            Some(have) if have != ty.as_str() => Some(SchemaProblem::WrongType {
                column: column.to_owned(),
                want: ty,
                have: have.clone(),
            }),
            Some(_) => None,
        })
        .collect()
}

/// One field's schema property.
pub(super) fn property(column: &str, ty: ColumnType, order: usize) -> Value {
    let mut p = json!({
        "title": column,
        "type": ty.as_str(),
        "$id": format!("/properties/{column}"),
        "displayOrder": order,
    });
    if column == "key" {
        p["minLength"] = json!(1);
        p["maxLength"] = json!(256);
    } else {
        p["description"] = json!(FIELD_MARKER);
    }
    p
}

/// The draft-04 JSON schema for a table holding `fields`.
pub fn schema_json(fields: &Fields<'_>) -> Value {
    let mut props = Map::new();
    for (i, &(column, ty)) in fields.iter().enumerate() {
        props.insert(column.to_owned(), property(column, ty, i));
    }
    json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "required": ["key"],
        "additionalProperties": false,
        "properties": props,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const FIVE: &Fields<'static> = &[
        ("key", ColumnType::String),
        ("Online", ColumnType::Integer),
        ("OnQueue", ColumnType::Integer),
        ("Idle", ColumnType::Integer),
        ("Interacting", ColumnType::Integer),
        ("Waiting", ColumnType::Integer),
        ("UpdatedAt", ColumnType::String),
    ];

    fn table(cols: &[(&str, &str)]) -> Table {
        Table {
            id: "t".into(),
            name: "T".into(),
            columns: cols
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            marked: BTreeSet::new(),
        }
    }

    #[test]
    fn schema_check_names_missing_and_mistyped_columns() {
        let t = table(&[
            ("key", "string"),
            ("Online", "integer"),
            ("OnQueue", "string"),
            ("Idle", "integer"),
            ("Interacting", "integer"),
            ("UpdatedAt", "string"),
            ("Extra", "boolean"),
        ]);
        let p = check_schema(&t, FIVE);
        assert_eq!(p.len(), 2);
        assert!(
            p[0].to_string()
                .contains("`OnQueue` is string but must be integer")
        );
        let missing = p[1].to_string();
        assert!(
            missing.contains("`Waiting` is missing")
                && missing.contains("`genesys-queue-sync table create` adds it"),
            "{missing}"
        );
    }

    #[test]
    fn generated_schema_fits_itself_and_marks_the_daemons_fields() {
        let s = schema_json(FIVE);
        assert_eq!(s["required"], json!(["key"]));
        assert_eq!(s["additionalProperties"], json!(false));
        assert_eq!(s["properties"]["UpdatedAt"]["displayOrder"], json!(6));
        let t: Table =
            serde_json::from_value::<RawTable>(json!({"id": "x", "name": "n", "schema": s}))
                .unwrap()
                .into();
        assert!(check_schema(&t, FIVE).is_empty());
        assert!(t.marked.contains("Waiting") && t.marked.contains("UpdatedAt"));
        assert!(!t.marked.contains("key"));
    }
}
