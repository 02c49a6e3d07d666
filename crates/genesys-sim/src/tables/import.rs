//! Data table CSV import jobs: the job resource, the upload "bucket" on the second listener,
//! and the asynchronous processing that applies the file (what the file does to the table
//! is `apply`).

mod apply;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::org::Org;
use crate::routes::Reply;
use crate::wire::{ApiError, iso, new_id};
use crate::{Shared, lock};
use apply::{Counts, Failure, ImportMode, apply, parse_import};

/// Genesys processes uploads asynchronously; clients must poll the job.
const PROCESSING_DELAY: Duration = Duration::from_millis(50);
/// How long a ReplaceAll leaves the table empty between deleting every row and inserting
/// the file's: long enough for a test reading every 100 ms to see it.
pub(crate) const REPLACE_ALL_GAP: Duration = Duration::from_millis(400);

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
