//! Architect data tables and their rows, with Genesys' limits and validation.

pub(crate) mod csv;
pub(crate) mod import;
mod schema;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::FieldType;
use crate::org::Org;
use crate::wire::{ApiError, new_id};
pub(crate) use schema::FieldSpec;
use schema::parse_schema;

pub(crate) const MAX_ROWS: usize = 5000;
pub(crate) const MAX_PROPERTIES: usize = 50;

/// Case-insensitive match where `*` stands for any run of characters (data table names).
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let text = text.to_lowercase();
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, rest) = match parts.split_first() {
        Some(x) => x,
        None => return true,
    };
    let (last, middle) = match rest.split_last() {
        Some(x) => x,
        None => return text.starts_with(first),
    };
    if !text.starts_with(first) || !text.ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut remaining = &text[first.len()..text.len() - last.len()];
    for part in middle {
        match remaining.find(part) {
            Some(pos) => remaining = &remaining[pos + part.len()..],
            None => return false,
        }
    }
    true
}

#[derive(Clone, Debug)]
pub(crate) struct Table {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) division_id: String,
    /// The normalized JSON Schema document as stored and returned.
    pub(crate) schema: Map<String, Value>,
    pub(crate) fields: BTreeMap<String, FieldSpec>,
    pub(crate) required: BTreeSet<String>,
    pub(crate) rows: BTreeMap<String, Map<String, Value>>,
}

#[derive(Debug, Default)]
pub(crate) struct TableFilter {
    pub(crate) name: Option<String>,
    pub(crate) division_ids: Vec<String>,
    pub(crate) sort_by_name: bool,
    pub(crate) descending: bool,
}

impl Org {
    // ---- data tables ----

    pub(crate) fn table(&self, id: &str) -> Result<&Table, ApiError> {
        self.tables
            .get(id)
            .ok_or_else(|| ApiError::table_not_found(id))
    }

    pub(crate) fn table_mut(&mut self, id: &str) -> Result<&mut Table, ApiError> {
        self.tables
            .get_mut(id)
            .ok_or_else(|| ApiError::table_not_found(id))
    }

    pub(crate) fn table_id(&self, name: &str) -> Option<String> {
        self.tables
            .values()
            .find(|t| t.name.eq_ignore_ascii_case(name))
            .map(|t| t.id.clone())
    }

    pub(crate) fn table_json(&self, t: &Table, with_schema: bool) -> Value {
        let mut v = json!({
            "id": t.id,
            "name": t.name,
            "division": self.division_json(&t.division_id),
            "selfUri": format!("/api/v2/flows/datatables/{}", t.id),
        });
        if let Some(obj) = v.as_object_mut() {
            if let Some(d) = &t.description {
                obj.insert("description".to_owned(), Value::String(d.clone()));
            }
            if with_schema {
                obj.insert("schema".to_owned(), Value::Object(t.schema.clone()));
            }
        }
        v
    }

    pub(crate) fn list_tables(&self, f: &TableFilter) -> Vec<&Table> {
        let mut found: Vec<&Table> = self
            .tables
            .values()
            .filter(|t| f.name.as_deref().is_none_or(|n| glob_match(n, &t.name)))
            .filter(|t| f.division_ids.is_empty() || f.division_ids.contains(&t.division_id))
            .collect();
        if f.sort_by_name {
            found.sort_by(|a, b| {
                a.name
                    .to_lowercase()
                    .cmp(&b.name.to_lowercase())
                    .then_with(|| a.id.cmp(&b.id))
            });
        } else {
            found.sort_by(|a, b| a.id.cmp(&b.id));
        }
        if f.descending {
            found.reverse();
        }
        found
    }

    /// POST /flows/datatables.
    pub(crate) fn create_table(&mut self, body: &Value) -> Result<String, ApiError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ApiError::syntax("The datatable must be a JSON object"))?;
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::schema("The datatable name is required"))?;
        if name.chars().count() > 256 {
            return Err(ApiError::schema(
                "The datatable name is longer than 256 characters",
            ));
        }
        let schema = obj
            .get("schema")
            .ok_or_else(|| ApiError::schema("The datatable schema is required"))?;
        let parsed = parse_schema(schema, None)?;
        if self.table_id(name).is_some() {
            return Err(ApiError::new(
                409,
                "flows.datatables.not.unique",
                format!("The passed in datatable had a duplicate name. (name: {name})"),
            ));
        }
        let description = obj
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let division_id = obj
            .get("division")
            .and_then(|d| d.get("id"))
            .and_then(Value::as_str)
            .filter(|id| self.divisions.contains_key(*id))
            .map_or_else(|| self.home_division.clone(), str::to_owned);
        let id = new_id();
        self.tables.insert(
            id.clone(),
            Table {
                id: id.clone(),
                name: name.to_owned(),
                description,
                division_id,
                schema: parsed.doc,
                fields: parsed.fields,
                required: parsed.required,
                rows: BTreeMap::new(),
            },
        );
        Ok(id)
    }

    /// PUT /flows/datatables/{id}: schema changes are additive only.
    pub(crate) fn update_table(&mut self, id: &str, body: &Value) -> Result<(), ApiError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ApiError::syntax("The datatable must be a JSON object"))?;
        let new_name = obj
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        if let Some(n) = &new_name
            && let Some(other) = self.table_id(n)
            && other != id
        {
            return Err(ApiError::new(
                409,
                "flows.datatables.not.unique",
                format!("The passed in datatable had a duplicate name. (name: {n})"),
            ));
        }
        let table = self.table(id)?;
        let parsed = match obj.get("schema") {
            Some(schema) => Some(parse_schema(schema, Some(table))?),
            None => None,
        };
        let description = obj
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let table = self.table_mut(id)?;
        if let Some(n) = new_name {
            table.name = n;
        }
        if description.is_some() {
            table.description = description;
        }
        if let Some(p) = parsed {
            table.schema = p.doc;
            table.fields = p.fields;
            table.required = p.required;
        }
        Ok(())
    }

    pub(crate) fn delete_table(&mut self, id: &str) -> Result<(), ApiError> {
        self.tables
            .remove(id)
            .ok_or_else(|| ApiError::table_not_found(id))?;
        self.jobs.retain(|_, j| j.table_id != id);
        Ok(())
    }

    pub(crate) fn create_table_direct(
        &mut self,
        name: &str,
        fields: &[(&str, FieldType)],
    ) -> String {
        if let Some(id) = self.table_id(name) {
            return id;
        }
        let mut properties = Map::new();
        properties.insert(
            "key".to_owned(),
            json!({"title": "Key", "type": "string", "displayOrder": 0}),
        );
        for (i, (field, ty)) in fields.iter().enumerate() {
            properties.insert(
                (*field).to_owned(),
                json!({"title": field, "type": ty.wire_name(), "displayOrder": i + 1}),
            );
        }
        let body = json!({"name": name, "schema": {"properties": properties}});
        match self.create_table(&body) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(table = name, error = %e.message, "sim: create_table rejected");
                String::new()
            }
        }
    }

    pub(crate) fn delete_table_direct(&mut self, id: &str) {
        // Deleting a missing table is a no-op for the scripting API.
        let _ = self.delete_table(id);
    }

    pub(crate) fn rows_direct(&self, id: &str) -> BTreeMap<String, Map<String, Value>> {
        self.tables
            .get(id)
            .map(|t| t.rows.clone())
            .unwrap_or_default()
    }

    pub(crate) fn put_row_direct(&mut self, id: &str, row: Value) {
        let Some(table) = self.tables.get_mut(id) else {
            tracing::warn!(table = id, "sim: put_row on a missing table");
            return;
        };
        let Value::Object(row) = row else {
            tracing::warn!(table = id, "sim: put_row needs a JSON object");
            return;
        };
        let Some(key) = row.get("key").and_then(Value::as_str).map(str::to_owned) else {
            tracing::warn!(table = id, "sim: put_row needs a string \"key\"");
            return;
        };
        table.rows.insert(key, row);
    }

    pub(crate) fn table_schema(&self, id: &str) -> Option<Value> {
        self.tables.get(id).map(|t| Value::Object(t.schema.clone()))
    }

    /// POST .../rows.
    pub(crate) fn insert_row(&mut self, table_id: &str, body: &Value) -> Result<Value, ApiError> {
        let table = self.table_mut(table_id)?;
        let row = table.validate_row(body, None)?;
        let key = row_key(&row);
        if table.rows.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "flows.datatables.not.unique",
                format!("The row had a duplicate keyname. (key: {key})"),
            ));
        }
        if table.rows.len() >= MAX_ROWS {
            return Err(ApiError::new(
                400,
                "flows.datatables.too.many.rows",
                format!(
                    "The max number of rows ({MAX_ROWS}) allowed in a datatable has been reached."
                ),
            ));
        }
        table.rows.insert(key, row.clone());
        Ok(Value::Object(row))
    }

    /// PUT .../rows/{key}: replaces the whole row.
    pub(crate) fn replace_row(
        &mut self,
        table_id: &str,
        key: &str,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let table = self.table_mut(table_id)?;
        if !table.rows.contains_key(key) {
            return Err(ApiError::row_not_found(key));
        }
        let row = table.validate_row(body, Some(key))?;
        table.rows.insert(key.to_owned(), row.clone());
        Ok(Value::Object(row))
    }

    pub(crate) fn get_row(
        &self,
        table_id: &str,
        key: &str,
    ) -> Result<&Map<String, Value>, ApiError> {
        self.table(table_id)?
            .rows
            .get(key)
            .ok_or_else(|| ApiError::row_not_found(key))
    }

    pub(crate) fn delete_row(&mut self, table_id: &str, key: &str) -> Result<(), ApiError> {
        self.table_mut(table_id)?
            .rows
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| ApiError::row_not_found(key))
    }
}

fn row_key(row: &Map<String, Value>) -> String {
    row.get("key")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn glob_matching() {
        assert!(glob_match("sales*", "Sales Queue"));
        assert!(glob_match("*queue", "Sales Queue"));
        assert!(glob_match("s*s*e", "Sales Queue"));
        assert!(!glob_match("s*x*e", "Sales Queue"));
        assert!(glob_match("SALES QUEUE", "sales queue"));
        assert!(!glob_match("sales", "sales queue"));
    }

    #[test]
    fn schema_rules() {
        let mut org = Org::new();
        let body = json!({"name": "T", "schema": {"properties": {
            "key": {"type": "string"},
            "Online": {"type": "integer", "minimum": 0},
        }}});
        let id = org.create_table(&body).unwrap();
        let t = org.table(&id).unwrap();
        assert_eq!(t.schema["required"], json!(["key"]));
        assert_eq!(t.schema["additionalProperties"], json!(false));
        assert_eq!(t.schema["properties"]["key"]["maxLength"], json!(256));
        assert_eq!(
            t.schema["properties"]["Online"]["$id"],
            json!("/properties/Online")
        );
        assert_eq!(org.create_table(&body).unwrap_err().status, 409);
        let mut lower = body.clone();
        lower["name"] = json!("t");
        assert_eq!(org.create_table(&lower).unwrap_err().status, 409);
        let bad = json!({"name": "U", "schema": {"properties": {"key": {"type": "integer"}}}});
        assert_eq!(org.create_table(&bad).unwrap_err().status, 400);
        let bad = json!({"name": "U", "schema": {"properties": {"Online": {"type": "integer"}}}});
        assert_eq!(org.create_table(&bad).unwrap_err().status, 400);
        let bad = json!({"name": "U", "schema": {"properties": {"key": {"type": "string"}, "X": {"type": "array"}}}});
        assert_eq!(org.create_table(&bad).unwrap_err().status, 400);
        let mut many = Map::new();
        many.insert("key".into(), json!({"type": "string"}));
        for i in 0..50 {
            many.insert(format!("f{i}"), json!({"type": "integer"}));
        }
        let e = org
            .create_table(&json!({"name": "U", "schema": {"properties": many}}))
            .unwrap_err();
        assert_eq!(e.code, "flows.datatables.too.many.properties");

        // additive update
        let add = json!({"schema": {"properties": {
            "key": {"type": "string"}, "Online": {"type": "integer"}, "Idle": {"type": "integer"}}}});
        org.update_table(&id, &add).unwrap();
        assert!(org.table(&id).unwrap().fields.contains_key("Idle"));
        let remove = json!({"schema": {"properties": {"key": {"type": "string"}, "Idle": {"type": "integer"}}}});
        assert_eq!(org.update_table(&id, &remove).unwrap_err().status, 400);
        let retype = json!({"schema": {"properties": {
            "key": {"type": "string"}, "Online": {"type": "string"}, "Idle": {"type": "integer"}}}});
        assert_eq!(org.update_table(&id, &retype).unwrap_err().status, 400);
    }

    #[test]
    fn row_rules() {
        let mut org = Org::new();
        let id = org.create_table_direct(
            "T",
            &[
                ("Online", FieldType::Integer),
                ("Note", FieldType::String),
                ("Ok", FieldType::Boolean),
                ("Ratio", FieldType::Number),
            ],
        );
        org.insert_row(&id, &json!({"key": "a", "Online": 3, "Ratio": 1}))
            .unwrap();
        assert_eq!(
            org.insert_row(&id, &json!({"key": "a"}))
                .unwrap_err()
                .status,
            409
        );
        for bad in [
            json!({"key": "b", "Online": 1.5}),
            json!({"key": "b", "Online": 2.0}),
            json!({"key": "b", "Online": "2"}),
            json!({"key": "b", "Ok": "true"}),
            json!({"key": "b", "Note": 1}),
            json!({"key": "b", "Online": null}),
            json!({"key": "b", "Bogus": 1}),
            json!({"key": ""}),
            json!({"key": 5}),
            json!({"Online": 1}),
            json!([1]),
        ] {
            let e = org.insert_row(&id, &bad).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
        }
        let e = org
            .insert_row(&id, &json!({"key": "b", "Bogus": 1}))
            .unwrap_err();
        assert_eq!(e.code, "flows.datatables.schema.exception");
        assert!(e.message.contains("Bogus"));
        // PUT replaces the whole row, key from path.
        let r = org.replace_row(&id, "a", &json!({"Note": "x"})).unwrap();
        assert_eq!(r, json!({"key": "a", "Note": "x"}));
        assert_eq!(
            org.replace_row(&id, "zz", &json!({})).unwrap_err().status,
            404
        );
        assert_eq!(
            org.replace_row(&id, "a", &json!({"key": "b"}))
                .unwrap_err()
                .status,
            400
        );
        org.delete_row(&id, "a").unwrap();
        assert_eq!(org.delete_row(&id, "a").unwrap_err().status, 404);
        assert_eq!(
            org.insert_row("nope", &json!({"key": "a"}))
                .unwrap_err()
                .status,
            404
        );
    }

    #[test]
    fn row_limit() {
        let mut org = Org::new();
        let id = org.create_table_direct("T", &[]);
        for i in 0..MAX_ROWS {
            org.put_row_direct(&id, json!({"key": format!("k{i:05}")}));
        }
        let e = org.insert_row(&id, &json!({"key": "extra"})).unwrap_err();
        assert_eq!(e.status, 400);
    }
}
