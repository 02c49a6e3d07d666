//! A table's JSON Schema: normalizing it on create/update and validating rows against it,
//! with the json-schema-validator wording Genesys passes through.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::{MAX_PROPERTIES, Table};
use crate::FieldType;
use crate::wire::ApiError;

const KEY_MAX_LENGTH: u64 = 256;
const SCHEMA_DRAFT: &str = "http://json-schema.org/draft-04/schema#";

/// Constraints of one data table column, from its JSON Schema property.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FieldSpec {
    pub(crate) ty: FieldType,
    minimum: Option<f64>,
    maximum: Option<f64>,
    min_length: Option<u64>,
    max_length: Option<u64>,
}

pub(crate) struct ParsedSchema {
    pub(crate) doc: Map<String, Value>,
    pub(crate) fields: BTreeMap<String, FieldSpec>,
    pub(crate) required: BTreeSet<String>,
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Table {
    /// Checks a row against the schema the way Genesys' JSON Schema validator does; on success
    /// returns the row to store. `path_key` is the key from the URL for PUT.
    pub(crate) fn validate_row(
        &self,
        body: &Value,
        path_key: Option<&str>,
    ) -> Result<Map<String, Value>, ApiError> {
        let Value::Object(row) = body else {
            return Err(ApiError::syntax(
                "There was an error parsing user data: the row must be a JSON object",
            ));
        };
        let mut row = row.clone();
        if let Some(pk) = path_key {
            match row.get("key") {
                None => {
                    row.insert("key".to_owned(), Value::String(pk.to_owned()));
                }
                Some(Value::String(k)) if k == pk => {}
                Some(Value::String(k)) => {
                    return Err(ApiError::bad_request(format!(
                        "The key in the row body ({k}) does not match the rowId in the path ({pk})"
                    )));
                }
                Some(_) => {}
            }
        }
        let unknown: Vec<&String> = row
            .keys()
            .filter(|k| !self.fields.contains_key(*k))
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::schema(format!(
                "Failed to validate the row against the schema: object instance has properties which are not allowed by the schema: {}",
                json!(unknown)
            )));
        }
        let missing: Vec<&String> = self
            .required
            .iter()
            .filter(|r| !row.contains_key(*r))
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::schema(format!(
                "Failed to validate the row against the schema: object has missing required properties ({})",
                json!(missing)
            )));
        }
        for (name, value) in &row {
            if let Some(spec) = self.fields.get(name) {
                spec.check(name, value).map_err(ApiError::schema)?;
            }
        }
        Ok(row)
    }
}

impl FieldSpec {
    /// Validates one value; the error text follows the json-schema-validator wording Genesys
    /// passes through.
    pub(crate) fn check(&self, name: &str, value: &Value) -> Result<(), String> {
        let actual = json_type_name(value);
        let type_ok = match self.ty {
            FieldType::String => value.is_string(),
            FieldType::Integer => actual == "integer",
            FieldType::Number => value.is_number(),
            FieldType::Boolean => value.is_boolean(),
        };
        if !type_ok {
            return Err(format!(
                "Failed to validate the row against the schema: /{name}: instance type ({actual}) does not match any allowed primitive type (allowed: [\"{}\"])",
                self.ty.wire_name()
            ));
        }
        if let Some(n) = value.as_f64() {
            if let Some(min) = self.minimum
                && n < min
            {
                return Err(format!(
                    "Failed to validate the row against the schema: /{name}: numeric instance is lower than the required minimum (minimum: {min}, found: {value})"
                ));
            }
            if let Some(max) = self.maximum
                && n > max
            {
                return Err(format!(
                    "Failed to validate the row against the schema: /{name}: numeric instance is greater than the required maximum (maximum: {max}, found: {value})"
                ));
            }
        }
        if let Some(s) = value.as_str() {
            let len = s.chars().count() as u64;
            if let Some(min) = self.min_length
                && len < min
            {
                return Err(format!(
                    "Failed to validate the row against the schema: /{name}: string \"{s}\" is too short (length: {len}, required minimum: {min})"
                ));
            }
            if let Some(max) = self.max_length
                && len > max
            {
                return Err(format!(
                    "Failed to validate the row against the schema: /{name}: string \"{s}\" is too long (length: {len}, maximum allowed: {max})"
                ));
            }
        }
        Ok(())
    }
}

/// Validates and normalizes a table schema. With `existing`, the change must be additive:
/// every existing property kept with its type.
pub(crate) fn parse_schema(
    schema: &Value,
    existing: Option<&Table>,
) -> Result<ParsedSchema, ApiError> {
    let obj = schema
        .as_object()
        .ok_or_else(|| ApiError::schema("The schema must be a JSON object"))?;
    if let Some(t) = obj.get("type")
        && t.as_str() != Some("object")
    {
        return Err(ApiError::schema("The schema type must be \"object\""));
    }
    let props = obj
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::schema("The schema must define \"properties\""))?;
    if props.len() > MAX_PROPERTIES {
        return Err(ApiError::new(
            400,
            "flows.datatables.too.many.properties",
            format!(
                "The max number of properties allowed in a schema has been reached. ({} > {MAX_PROPERTIES})",
                props.len()
            ),
        ));
    }
    let mut fields = BTreeMap::new();
    let mut normalized = Map::new();
    let max_given_order = props
        .values()
        .filter_map(|p| p.get("displayOrder").and_then(Value::as_u64))
        .max()
        .unwrap_or(0);
    let mut next_order = max_given_order + 1;
    for (name, prop) in props {
        if name.trim().is_empty() {
            return Err(ApiError::schema("Property names must not be empty"));
        }
        let p = prop.as_object().ok_or_else(|| {
            ApiError::schema(format!("Property \"{name}\" must be a JSON object"))
        })?;
        let ty_name = p.get("type").and_then(Value::as_str).unwrap_or_default();
        let ty = FieldType::from_wire(ty_name).ok_or_else(|| {
            ApiError::schema(format!(
                "Property \"{name}\" has unsupported type \"{ty_name}\"; allowed: string, integer, number, boolean"
            ))
        })?;
        if name == "key" && ty != FieldType::String {
            return Err(ApiError::schema(
                "The \"key\" property must be of type string",
            ));
        }
        let mut p = p.clone();
        p.entry("title").or_insert_with(|| {
            Value::String(if name == "key" {
                "Key".to_owned()
            } else {
                name.clone()
            })
        });
        p.insert(
            "$id".to_owned(),
            Value::String(format!("/properties/{name}")),
        );
        if name == "key" {
            p.insert("displayOrder".to_owned(), json!(0));
            p.entry("maxLength").or_insert(json!(KEY_MAX_LENGTH));
            p.entry("minLength").or_insert(json!(1));
        } else if !p.get("displayOrder").is_some_and(Value::is_u64) {
            let order = existing
                .and_then(|t| t.schema.get("properties"))
                .and_then(|ps| ps.get(name))
                .and_then(|ep| ep.get("displayOrder"))
                .and_then(Value::as_u64)
                .unwrap_or_else(|| {
                    next_order += 1;
                    next_order - 1
                });
            p.insert("displayOrder".to_owned(), json!(order));
        }
        let spec = FieldSpec {
            ty,
            minimum: p.get("minimum").and_then(Value::as_f64),
            maximum: p.get("maximum").and_then(Value::as_f64),
            min_length: p.get("minLength").and_then(Value::as_u64),
            max_length: p.get("maxLength").and_then(Value::as_u64),
        };
        if let Some(default) = p.get("default") {
            spec.check(name, default).map_err(|e| {
                ApiError::schema(format!(
                    "The default of property \"{name}\" is invalid: {e}"
                ))
            })?;
        }
        fields.insert(name.clone(), spec);
        normalized.insert(name.clone(), Value::Object(p));
    }
    if !fields.contains_key("key") {
        return Err(ApiError::schema(
            "The schema must define a \"key\" property of type string",
        ));
    }
    let mut required: BTreeSet<String> = BTreeSet::new();
    required.insert("key".to_owned());
    if let Some(req) = obj.get("required") {
        let arr = req
            .as_array()
            .ok_or_else(|| ApiError::schema("\"required\" must be an array of property names"))?;
        for r in arr {
            let r = r.as_str().ok_or_else(|| {
                ApiError::schema("\"required\" must be an array of property names")
            })?;
            if !fields.contains_key(r) {
                return Err(ApiError::schema(format!(
                    "Required property \"{r}\" is not defined in the schema"
                )));
            }
            required.insert(r.to_owned());
        }
    }
    if let Some(t) = existing {
        for (name, old) in &t.fields {
            match fields.get(name) {
                None => {
                    return Err(ApiError::schema(format!(
                        "Schema updates are additive only: property \"{name}\" cannot be removed"
                    )));
                }
                Some(new) if new.ty != old.ty => {
                    return Err(ApiError::schema(format!(
                        "Schema updates are additive only: property \"{name}\" cannot change type from {} to {}",
                        old.ty.wire_name(),
                        new.ty.wire_name()
                    )));
                }
                Some(_) => {}
            }
        }
    }
    // "key" first, the rest in the order they were given (serde_json sorts object keys).
    let mut ordered_required: Vec<String> = vec!["key".to_owned()];
    ordered_required.extend(required.iter().filter(|r| r.as_str() != "key").cloned());
    let mut doc = Map::new();
    doc.insert("$schema".to_owned(), json!(SCHEMA_DRAFT));
    doc.insert("type".to_owned(), json!("object"));
    doc.insert("required".to_owned(), json!(ordered_required));
    doc.insert("additionalProperties".to_owned(), json!(false));
    doc.insert("properties".to_owned(), Value::Object(normalized));
    for extra in ["title", "description"] {
        if let Some(v) = obj.get(extra) {
            doc.insert(extra.to_owned(), v.clone());
        }
    }
    Ok(ParsedSchema {
        doc,
        fields,
        required,
    })
}
