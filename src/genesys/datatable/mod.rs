//! Architect data tables (`/api/v2/flows/datatables`): finding the table and writing rows
//! (this file), its schema (`schema`, pure) and CSV imports (`import`).

pub mod import;
pub mod schema;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiError, Client, Request, encode_segment};

const TABLES: &str = "datatables";
const ROWS: &str = "datatable_rows";
const ROW: &str = "datatable_row";
pub const ROWS_PAGE_SIZE: u32 = 500;
const MAX_PAGES: u32 = 100;

pub use import::{CsvWriter, ImportOutcome, create_import_job, import_append};
pub use schema::{
    ColumnType, FIELD_MARKER, Fields, MAX_ROWS, SchemaProblem, Table, check_schema, schema_json,
};
use schema::{RawTable, property};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listing<T> {
    #[serde(default = "Vec::new")]
    entities: Vec<T>,
    #[serde(default)]
    page_count: Option<u32>,
}

/// The table called `name` (names are unique per org, compared case-insensitively).
pub async fn find_by_name(client: &Client, name: &str) -> Result<Option<Table>, ApiError> {
    let mut page = 1;
    loop {
        let req = Request::get(TABLES, "/api/v2/flows/datatables")
            .query("name", name.to_owned())
            .query("expand", "schema")
            .query("pageSize", "100")
            .query("pageNumber", page.to_string());
        let listing: Listing<RawTable> = client.send_json(req).await?;
        if let Some(t) = listing
            .entities
            .iter()
            .position(|t| t.name.eq_ignore_ascii_case(name))
        {
            return Ok(listing.entities.into_iter().nth(t).map(Table::from));
        }
        if listing.entities.is_empty()
            || listing.page_count.is_none_or(|pc| page >= pc)
            || page >= MAX_PAGES
        {
            return Ok(None);
        }
        page += 1;
    }
}

/// The configured table, by name or by id; None if it does not exist.
pub async fn find(
    client: &Client,
    table: &crate::config::TableRef,
) -> Result<Option<Table>, ApiError> {
    match table {
        crate::config::TableRef::Name(n) => find_by_name(client, n).await,
        crate::config::TableRef::Id(id) => get(client, id).await,
    }
}

/// The table with `id`, or None if it does not exist.
pub async fn get(client: &Client, id: &str) -> Result<Option<Table>, ApiError> {
    let req = Request::get(
        TABLES,
        format!("/api/v2/flows/datatables/{}", encode_segment(id)),
    )
    .query("expand", "schema");
    match client.send_json::<RawTable>(req).await {
        Ok(t) => Ok(Some(t.into())),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One page of a row listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowsPage {
    pub rows: Vec<Map<String, Value>>,
    pub page_count: Option<u32>,
}

/// Parses one page of `GET .../rows`: pure, so it can be fuzzed. Unknown fields are
/// ignored; a missing `entities` is an empty page; anything else of the wrong shape is an
/// error (never a panic).
pub fn parse_rows_page(body: &[u8]) -> Result<RowsPage, String> {
    let listing: Listing<Map<String, Value>> =
        super::decode_object(body).map_err(|e| format!("not the expected JSON: {e}"))?;
    Ok(RowsPage {
        rows: listing.entities,
        page_count: listing.page_count,
    })
}

/// Every row (or, with `brief`, every `{"key": ...}`), all pages.
pub async fn list_rows(
    client: &Client,
    table_id: &str,
    brief: bool,
) -> Result<Vec<Map<String, Value>>, ApiError> {
    let mut out = Vec::new();
    for_each_row(client, table_id, brief, |row| out.push(row)).await?;
    Ok(out)
}

/// Hands every row to `f`, page by page, so a 5,000-row table is never held as JSON
/// objects all at once.
pub async fn for_each_row(
    client: &Client,
    table_id: &str,
    brief: bool,
    mut f: impl FnMut(Map<String, Value>),
) -> Result<(), ApiError> {
    let mut page = 1;
    loop {
        let req = Request::get(
            ROWS,
            format!("/api/v2/flows/datatables/{}/rows", encode_segment(table_id)),
        )
        .query("pageSize", ROWS_PAGE_SIZE.to_string())
        .query("pageNumber", page.to_string())
        .query("showbrief", brief.to_string());
        let body = client.send(req).await?;
        let listing = parse_rows_page(&body).map_err(|message| ApiError::decode(ROWS, message))?;
        let got = listing.rows.len();
        listing.rows.into_iter().for_each(&mut f);
        if !super::has_next_page(page, listing.page_count, got, ROWS_PAGE_SIZE, MAX_PAGES) {
            return Ok(());
        }
        page += 1;
    }
}

/// The row with `key` as the table holds it (all fields), or None when it does not exist.
pub async fn get_row(
    client: &Client,
    table_id: &str,
    key: &str,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let req = Request::get(
        ROW,
        format!(
            "/api/v2/flows/datatables/{}/rows/{}",
            encode_segment(table_id),
            encode_segment(key)
        ),
    )
    .query("showbrief", "false");
    match client.send(req).await {
        Ok(body) => super::decode_object(&body)
            .map(Some)
            .map_err(|e| ApiError::decode(ROW, format!("not the expected JSON: {e}"))),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Why a row write failed, for the create/update dance.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("row already exists")]
    Exists,
    #[error("row does not exist")]
    Missing,
    #[error(transparent)]
    Api(ApiError),
}

impl From<ApiError> for RowError {
    fn from(e: ApiError) -> Self {
        match e.status() {
            Some(409) => Self::Exists,
            _ => Self::Api(e),
        }
    }
}

/// POST a new row.
pub async fn create_row(
    client: &Client,
    table_id: &str,
    row: &Map<String, Value>,
) -> Result<(), RowError> {
    let req = Request::with_body(
        ROW,
        Method::POST,
        format!("/api/v2/flows/datatables/{}/rows", encode_segment(table_id)),
        Value::Object(row.clone()),
    );
    client.send(req).await.map(drop).map_err(RowError::from)
}

/// PUT over an existing row.
pub async fn update_row(
    client: &Client,
    table_id: &str,
    key: &str,
    row: &Map<String, Value>,
) -> Result<(), RowError> {
    let req = Request::with_body(
        ROW,
        Method::PUT,
        format!(
            "/api/v2/flows/datatables/{}/rows/{}",
            encode_segment(table_id),
            encode_segment(key)
        ),
        Value::Object(row.clone()),
    );
    match client.send(req).await {
        Ok(_) => Ok(()),
        Err(e) if e.status() == Some(404) => Err(RowError::Missing),
        Err(e) => Err(RowError::Api(e)),
    }
}

/// Writes a row whether or not it exists, resolving races either way:
/// PUT that finds no row becomes a POST, POST that finds one becomes a PUT.
/// Returns whether the row exists afterwards (it always does on Ok).
pub async fn upsert_row(
    client: &Client,
    table_id: &str,
    key: &str,
    row: &Map<String, Value>,
    believed_to_exist: bool,
) -> Result<(), ApiError> {
    let first = if believed_to_exist {
        update_row(client, table_id, key, row).await
    } else {
        create_row(client, table_id, row).await
    };
    let second = match first {
        Ok(()) => return Ok(()),
        Err(RowError::Api(e)) => return Err(e),
        Err(RowError::Missing) => create_row(client, table_id, row).await,
        Err(RowError::Exists) => update_row(client, table_id, key, row).await,
    };
    match second {
        Ok(()) => Ok(()),
        Err(RowError::Api(e)) => Err(e),
        Err(other) => Err(ApiError::Status {
            endpoint: ROW,
            status: 409,
            code: "row.race".into(),
            message: format!("row `{key}` kept changing between create and update: {other}"),
        }),
    }
}

/// Creates a table with `fields`.
pub async fn create_table(
    client: &Client,
    name: &str,
    fields: &Fields<'_>,
) -> Result<Table, ApiError> {
    let body = json!({"name": name, "description": "Queue agent counts written by genesys-queue-sync", "schema": schema_json(fields)});
    let req = Request::with_body(TABLES, Method::POST, "/api/v2/flows/datatables", body);
    let t: RawTable = client.send_json(req).await?;
    Ok(t.into())
}

/// Adds the fields the table lacks, keeping everything it has (fields are never removed
/// or retyped); the last of `fields` (`UpdatedAt`) is moved to the end of the display
/// order. Returns the fields added.
pub async fn add_missing_columns(
    client: &Client,
    table: &Table,
    fields: &Fields<'_>,
) -> Result<Vec<String>, ApiError> {
    let req = Request::get(
        TABLES,
        format!("/api/v2/flows/datatables/{}", encode_segment(&table.id)),
    )
    .query("expand", "schema");
    let mut current: Value = client.send_json(req).await?;
    let mut added = Vec::new();
    let Some(props) = current
        .pointer_mut("/schema/properties")
        .and_then(Value::as_object_mut)
    else {
        return Err(ApiError::Decode {
            endpoint: TABLES,
            message: "table has no schema.properties".into(),
        });
    };
    let mut next_order = props
        .values()
        .filter_map(|p| p.get("displayOrder").and_then(Value::as_u64))
        .max()
        .map_or(props.len(), |m| m as usize + 1);
    for &(column, ty) in fields {
        if !props.contains_key(column) {
            props.insert(column.to_owned(), property(column, ty, next_order));
            next_order += 1;
            added.push(column.to_owned());
        }
    }
    if added.is_empty() {
        return Ok(added);
    }
    if let Some(&(last, _)) = fields.last()
        && let Some(p) = props.get_mut(last).and_then(Value::as_object_mut)
    {
        p.insert("displayOrder".into(), json!(next_order));
    }
    let req = Request::with_body(
        TABLES,
        Method::PUT,
        format!("/api/v2/flows/datatables/{}", encode_segment(&table.id)),
        current,
    );
    client.send(req).await?;
    Ok(added)
}

/// DELETE a row (only ever an owned row, with `on_vanish = "delete"`). A missing row is fine.
pub async fn delete_row(client: &Client, table_id: &str, key: &str) -> Result<(), ApiError> {
    let req = Request {
        endpoint: ROW,
        method: Method::DELETE,
        path: format!(
            "/api/v2/flows/datatables/{}/rows/{}",
            encode_segment(table_id),
            encode_segment(key)
        ),
        query: Vec::new(),
        body: None,
    };
    match client.send(req).await {
        Ok(_) => Ok(()),
        Err(e) if e.status() == Some(404) => Ok(()),
        Err(e) => Err(e),
    }
}
