//! Architect data tables (`/api/v2/flows/datatables`): finding the table, checking its
//! schema, and writing rows.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiError, Client, Request, encode_segment};

const TABLES: &str = "datatables";
const ROWS: &str = "datatable_rows";
const ROW: &str = "datatable_row";
const ROWS_PAGE_SIZE: u32 = 500;
const MAX_PAGES: u32 = 100;

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
struct RawTable {
    id: String,
    #[serde(default)]
    name: String,
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listing<T> {
    #[serde(default = "Vec::new")]
    entities: Vec<T>,
    #[serde(default)]
    page_count: Option<u32>,
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
fn property(column: &str, ty: ColumnType, order: usize) -> Value {
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

const IMPORT: &str = "datatable_import";
const UPLOAD: &str = "datatable_import_upload";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImportJob {
    id: String,
    status: String,
    #[serde(default, rename = "uploadURI")]
    upload_uri: Option<String>,
    #[serde(default)]
    upload_headers: BTreeMap<String, String>,
    #[serde(default)]
    error_information: Option<Value>,
    #[serde(default)]
    count_records_updated: Option<u64>,
    #[serde(default)]
    count_records_deleted: Option<u64>,
    #[serde(default)]
    count_records_failed: Option<u64>,
}

/// What a finished import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    pub updated: u64,
    pub deleted: u64,
    /// Records of the file that failed although the job `Succeeded`.
    pub failed: u64,
    /// The job's `errorInformation` message, when it has one (why records failed).
    pub why: Option<String>,
    /// Status polls it took.
    pub polls: u32,
}

/// The `message` of an import job's `errorInformation` (an ErrorBody), or its JSON.
fn error_message(info: Option<&Value>) -> Option<String> {
    let info = info.filter(|v| !v.is_null())?;
    Some(info.get("message").and_then(Value::as_str).map_or_else(
        || crate::redact::excerpt(&info.to_string()),
        crate::redact::excerpt,
    ))
}

/// Inserts or updates the file's rows through one import job (`Append`: every row not in
/// the file is left alone, so a flow never finds a row missing, unlike `ReplaceAll`, which
/// deletes every row before inserting the file's). Creates the job, uploads the file to
/// its pre-signed URL, polls until it ends; a handful of requests whatever the row count.
/// A job still `WaitingForUpload` or `Processing` after `bound` is abandoned (an error);
/// the caller's next cycle starts a new one.
pub async fn import_append(
    client: &Client,
    table_id: &str,
    csv: String,
    bound: std::time::Duration,
) -> Result<ImportOutcome, ApiError> {
    let base = format!("/api/v2/flows/datatables/{}", encode_segment(table_id));
    let job: ImportJob = client
        .send_json(Request::with_body(
            IMPORT,
            Method::POST,
            format!("{base}/import/csv/jobs"),
            json!({"importMode": "Append"}),
        ))
        .await?;
    let Some(uri) = job.upload_uri.as_deref() else {
        return Err(ApiError::Decode {
            endpoint: IMPORT,
            message: "import job has no uploadURI".into(),
        });
    };
    client
        .upload(UPLOAD, uri, &job.upload_headers, csv.into_bytes())
        .await?;
    // Jobs usually finish within a second; back off so a slow one costs few polls.
    let mut delay = std::time::Duration::from_millis(200);
    let mut waited = std::time::Duration::ZERO;
    let mut polls = 0;
    loop {
        tokio::time::sleep(delay).await;
        waited += delay;
        polls += 1;
        let status: ImportJob = client
            .send_json(Request::get(
                IMPORT,
                format!("{base}/import/jobs/{}", encode_segment(&job.id)),
            ))
            .await?;
        match status.status.as_str() {
            "Succeeded" => {
                return Ok(ImportOutcome {
                    updated: status.count_records_updated.unwrap_or(0),
                    deleted: status.count_records_deleted.unwrap_or(0),
                    failed: status.count_records_failed.unwrap_or(0),
                    why: error_message(status.error_information.as_ref()),
                    polls,
                });
            }
            "Failed" => {
                let why = error_message(status.error_information.as_ref())
                    .unwrap_or_else(|| "no reason given".to_owned());
                return Err(ApiError::Status {
                    endpoint: IMPORT,
                    status: 422,
                    code: "import.failed".into(),
                    message: format!("import job {} failed: {why}", job.id),
                });
            }
            _ if waited >= bound => {
                return Err(ApiError::Transport {
                    endpoint: IMPORT,
                    message: format!(
                        "import job {} still {} after {} s: abandoned, the next cycle starts a new one",
                        job.id,
                        status.status,
                        waited.as_secs()
                    ),
                });
            }
            _ => delay = (delay * 2).min(std::time::Duration::from_secs(5)),
        }
    }
}

/// A CSV file of rows, written one row at a time so a 5,000-row import never holds all
/// rows as JSON objects at once. The header is the daemon's fields followed by `extra`
/// (columns of owned rows the daemon does not write: whether an Append keeps a column the
/// file leaves out is not documented, so the file carries them).
pub struct CsvWriter {
    header: Vec<String>,
    out: String,
    rows: usize,
}

impl CsvWriter {
    pub fn new(fields: &Fields<'_>, extra: impl IntoIterator<Item = String>) -> Self {
        let mut header: Vec<String> = fields.iter().map(|(c, _)| (*c).to_owned()).collect();
        for e in extra {
            if !header.contains(&e) {
                header.push(e);
            }
        }
        let cells: Vec<String> = header.iter().map(|h| csv_quote(h)).collect();
        let mut out = cells.join(",");
        out.push_str("\r\n");
        Self {
            header,
            out,
            rows: 0,
        }
    }

    pub fn push(&mut self, row: &Map<String, Value>) {
        let cells: Vec<String> = self
            .header
            .iter()
            .map(|c| match row.get(c) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => csv_quote(s),
                Some(other) => csv_quote(&other.to_string()),
            })
            .collect();
        self.out.push_str(&cells.join(","));
        self.out.push_str("\r\n");
        self.rows += 1;
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FIVE: &Fields<'static> = &[
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
    fn csv_quotes_what_needs_quoting() {
        let mut row = Map::new();
        row.insert("key".into(), json!("Sales, \"EU\""));
        row.insert("Online".into(), json!(3));
        row.insert("UpdatedAt".into(), json!("2026-11-29T04:05:06Z"));
        let mut w = CsvWriter::new(FIVE, []);
        w.push(&row);
        let csv = w.finish();
        assert_eq!(
            csv,
            "key,Online,OnQueue,Idle,Interacting,Waiting,UpdatedAt\r\n\"Sales, \"\"EU\"\"\",3,,,,,2026-11-29T04:05:06Z\r\n"
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
