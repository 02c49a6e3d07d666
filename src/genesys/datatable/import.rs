//! CSV import jobs: the file written one row at a time, and the job that appends it to
//! the table (create, upload, poll).

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::schema::Fields;
use crate::genesys::{ApiError, Client, Request, encode_segment};

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

/// The request that starts an import (an `Append` job waiting for its file); `check`
/// sends it too, and never uploads.
pub fn create_import_job(table_id: &str) -> Request<'static> {
    Request::with_body(
        IMPORT,
        Method::POST,
        format!(
            "/api/v2/flows/datatables/{}/import/csv/jobs",
            encode_segment(table_id)
        ),
        json!({"importMode": "Append"}),
    )
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
    let job: ImportJob = client.send_json(create_import_job(table_id)).await?;
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
    use crate::genesys::datatable::schema::tests::FIVE;

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
}
