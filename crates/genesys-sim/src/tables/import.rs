//! Data table CSV import jobs: the job resource, the upload "bucket" on the second listener,
//! and the asynchronous processing that applies the file.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method};
use chrono::{DateTime, Utc};
use serde_json::{Map, Number, Value, json};

use super::csv::parse_csv;
use super::{MAX_ROWS, Table};
use crate::org::Org;
use crate::routes::Reply;
use crate::wire::{ApiError, iso, new_id};
use crate::{FieldType, Shared, lock};

/// Genesys processes uploads asynchronously; clients must poll the job.
const PROCESSING_DELAY: Duration = Duration::from_millis(50);
/// How long a ReplaceAll leaves the table empty between deleting every row and inserting
/// the file's: long enough for a test reading every 100 ms to see it.
pub(crate) const REPLACE_ALL_GAP: Duration = Duration::from_millis(400);
/// How many row problems an errorInformation message lists before summarizing.
const MAX_LISTED_PROBLEMS: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImportMode {
    ReplaceAll,
    Append,
}

impl ImportMode {
    fn wire_name(self) -> &'static str {
        match self {
            ImportMode::ReplaceAll => "ReplaceAll",
            ImportMode::Append => "Append",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobStatus {
    WaitingForUpload,
    Processing,
    Failed,
    Succeeded,
}

impl JobStatus {
    fn wire_name(self) -> &'static str {
        match self {
            JobStatus::WaitingForUpload => "WaitingForUpload",
            JobStatus::Processing => "Processing",
            JobStatus::Failed => "Failed",
            JobStatus::Succeeded => "Succeeded",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct ImportJob {
    pub(crate) id: String,
    pub(crate) table_id: String,
    name: Option<String>,
    pub(crate) status: JobStatus,
    mode: ImportMode,
    created: DateTime<Utc>,
    completed: Option<DateTime<Utc>>,
    updated: u64,
    deleted: u64,
    failed: u64,
    error: Option<ApiError>,
}

impl ImportJob {
    fn upload_headers(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("Content-Type", "text/csv".to_owned()),
            ("x-amz-meta-job", self.id.clone()),
        ])
    }

    pub(crate) fn to_json(&self, upload_base: &str) -> Value {
        let mut v = json!({
            "id": self.id,
            "status": self.status.wire_name(),
            "importMode": self.mode.wire_name(),
            "dateCreated": iso(self.created),
            "uploadURI": format!("{upload_base}/uploads/{}", self.id),
            "uploadHeaders": self.upload_headers(),
            "countRecordsUpdated": self.updated,
            "countRecordsDeleted": self.deleted,
            "countRecordsFailed": self.failed,
            "selfUri": format!("/api/v2/flows/datatables/{}/import/jobs/{}", self.table_id, self.id),
        });
        if let Some(obj) = v.as_object_mut() {
            if let Some(n) = &self.name {
                obj.insert("name".to_owned(), Value::String(n.clone()));
            }
            if let Some(done) = self.completed {
                obj.insert("dateCompleted".to_owned(), Value::String(iso(done)));
            }
            if let Some(e) = &self.error {
                obj.insert("errorInformation".to_owned(), e.body(None));
            }
        }
        v
    }
}

/// POST .../import/csv/jobs.
pub(crate) fn create_job(
    org: &mut Org,
    table_id: &str,
    body: &Value,
    upload_base: &str,
) -> Result<Value, ApiError> {
    org.table(table_id)?;
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("The import job must be a JSON object"))?;
    let mode = match obj.get("importMode").and_then(Value::as_str) {
        Some("ReplaceAll") => ImportMode::ReplaceAll,
        Some("Append") => ImportMode::Append,
        Some(other) => {
            return Err(ApiError::invalid_value(
                other,
                "importMode",
                "ReplaceAll, Append",
            ));
        }
        None => return Err(ApiError::bad_request("importMode is required")),
    };
    let job = ImportJob {
        id: new_id(),
        table_id: table_id.to_owned(),
        name: obj.get("name").and_then(Value::as_str).map(str::to_owned),
        status: JobStatus::WaitingForUpload,
        mode,
        created: Utc::now(),
        completed: None,
        updated: 0,
        deleted: 0,
        failed: 0,
        error: None,
    };
    let v = job.to_json(upload_base);
    org.jobs.insert(job.id.clone(), job);
    Ok(v)
}

/// Jobs of one table, newest first.
pub(crate) fn list_jobs(
    org: &Org,
    table_id: &str,
    upload_base: &str,
) -> Result<Vec<Value>, ApiError> {
    org.table(table_id)?;
    let mut jobs: Vec<&ImportJob> = org
        .jobs
        .values()
        .filter(|j| j.table_id == table_id)
        .collect();
    jobs.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    Ok(jobs.into_iter().map(|j| j.to_json(upload_base)).collect())
}

pub(crate) fn get_job(
    org: &Org,
    table_id: &str,
    job_id: &str,
    upload_base: &str,
) -> Result<Value, ApiError> {
    org.table(table_id)?;
    org.jobs
        .get(job_id)
        .filter(|j| j.table_id == table_id)
        .map(|j| j.to_json(upload_base))
        .ok_or_else(ApiError::not_found)
}

fn s3_error(status: u16, code: &str, message: &str) -> Reply {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{}</RequestId></Error>",
        new_id()
    );
    Reply::text(status, "application/xml", body)
}

/// A request to the upload listener: `PUT /uploads/{job id}` carrying the job's upload headers.
pub(crate) fn upload(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Vec<u8>,
) -> Reply {
    let Some(job_id) = path
        .strip_prefix("/uploads/")
        .filter(|id| !id.contains('/'))
    else {
        return s3_error(404, "NoSuchKey", "The specified key does not exist.");
    };
    if method != Method::PUT {
        return s3_error(
            405,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        );
    }
    let mut org = lock(&shared.org);
    let Some(job) = org.jobs.get_mut(job_id) else {
        return s3_error(404, "NoSuchKey", "The specified key does not exist.");
    };
    for (name, expected) in job.upload_headers() {
        let given = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        if given != Some(expected.as_str()) {
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                &format!(
                    "The request signature we calculated does not match the signature you provided. Check the {name} header."
                ),
            );
        }
    }
    // Like a presigned URL, the upload may be repeated, but only the first one is processed.
    if job.status == JobStatus::WaitingForUpload {
        job.status = JobStatus::Processing;
        let shared = shared.clone();
        let job_id = job_id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(PROCESSING_DELAY).await;
            process(shared, job_id, body).await;
        });
    }
    Reply::empty(200).with_header("ETag", format!("\"{}\"", new_id().replace('-', "")))
}

/// Applies an uploaded file the way Genesys documents it. `ReplaceAll` deletes every row,
/// then inserts the file's rows: between the two, for [`REPLACE_ALL_GAP`], a reader finds
/// the table empty (a flow's lookup takes Not Found). `Append` inserts or replaces only the
/// file's rows. A record that fails validation fails alone: the job still ends `Succeeded`,
/// counting it in `countRecordsFailed` and naming it in `errorInformation`.
async fn process(shared: Arc<Shared>, job_id: String, csv: Vec<u8>) {
    let pending = {
        let mut org = lock(&shared.org);
        if org.import_script.stall {
            // A job Genesys never finishes: it stays Processing.
            return;
        }
        let fail_keys = org.import_script.fail_keys.clone();
        let Some((table_id, mode)) = org.jobs.get(&job_id).map(|j| (j.table_id.clone(), j.mode))
        else {
            return;
        };
        let parsed = match org.tables.get(&table_id) {
            Some(table) => parse_import(table, mode, &csv, &fail_keys),
            None => Err(Failure::file(format!(
                "The datatable {table_id} no longer exists"
            ))),
        };
        match parsed {
            Err(f) => {
                finish(&mut org, &job_id, Err(f));
                return;
            }
            Ok(parsed) if mode == ImportMode::Append => {
                let counts = org
                    .tables
                    .get_mut(&table_id)
                    .map(|t| apply(t, mode, parsed));
                finish(&mut org, &job_id, counts.ok_or_else(gone));
                return;
            }
            Ok(parsed) => {
                // ReplaceAll, step 1: every row is deleted.
                let deleted = org.tables.get_mut(&table_id).map(|t| {
                    let n = t.rows.len() as u64;
                    t.rows.clear();
                    n
                });
                (table_id, parsed, deleted.unwrap_or(0))
            }
        }
    };
    tokio::time::sleep(REPLACE_ALL_GAP).await;
    // Step 2: the file's rows are inserted.
    let (table_id, parsed, deleted) = pending;
    let mut org = lock(&shared.org);
    let counts = org.tables.get_mut(&table_id).map(|t| {
        let mut c = apply(t, ImportMode::Append, parsed);
        c.deleted = deleted;
        c
    });
    finish(&mut org, &job_id, counts.ok_or_else(gone));
}

fn gone() -> Failure {
    Failure::file("The datatable no longer exists")
}

fn finish(org: &mut Org, job_id: &str, outcome: Result<Counts, Failure>) {
    let Some(job) = org.jobs.get_mut(job_id) else {
        return;
    };
    job.completed = Some(Utc::now());
    match outcome {
        Ok(counts) => {
            job.status = JobStatus::Succeeded;
            job.updated = counts.updated;
            job.deleted = counts.deleted;
            job.failed = counts.failed;
            job.error = counts
                .problems
                .map(|m| ApiError::new(400, "flows.datatables.import.row.failed", m));
        }
        Err(f) => {
            job.status = JobStatus::Failed;
            job.failed = f.failed;
            job.error = Some(ApiError::new(
                400,
                "flows.datatables.import.failed",
                f.message,
            ));
        }
    }
}

/// Scripted import misbehaviour (see `Sim::fail_import_rows`, `Sim::stall_imports`).
#[derive(Debug, Default)]
pub(crate) struct ImportScript {
    /// Records with these keys fail, as a value the schema refuses would.
    pub(crate) fail_keys: BTreeSet<String>,
    /// Uploaded jobs stay `Processing` for ever.
    pub(crate) stall: bool,
}

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
    fn file(message: impl Into<String>) -> Failure {
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
