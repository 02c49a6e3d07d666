//! The calls `run` makes, each made once by `check` so that a missing permission shows
//! before the first cycle, with no effect a flow could notice.
//!
//! Each probe answers a [`Probe`]: proven, failed (a 403 names the permission from the one
//! permissions table), or not proven (nothing safe to try).

use reqwest::Method;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::genesys::permissions::{self, Call};
use crate::genesys::{ApiError, Client, Request, datatable, encode_segment, observations};
use crate::sync::Target;
use crate::sync::columns::Columns;

/// How a probe went.
#[derive(Debug)]
pub enum Probe {
    Proven(String),
    Failed(String),
    NotProven(String),
}

/// A failed call, as one line: a 403 names what the call needs (and divisions).
fn failed(call: Call, e: &ApiError, scope: &str) -> Probe {
    Probe::Failed(permissions::explain_403(call, e, scope).unwrap_or_else(|| e.to_string()))
}

fn row_path(table_id: &str, key: &str) -> String {
    format!(
        "/api/v2/flows/datatables/{}/rows/{}",
        encode_segment(table_id),
        encode_segment(key)
    )
}

/// One observation query, the body `run` sends (built by the same code), for the first
/// batch (`limits.queues_per_query`) of the selection.
pub async fn observe(client: &Client, cfg: &Config, targets: &[Target]) -> Probe {
    let batch: Vec<String> = targets
        .iter()
        .take(cfg.queues_per_query.max(1))
        .map(|t| t.id.clone())
        .collect();
    if batch.is_empty() {
        return Probe::NotProven("no queue selected, nothing to observe".into());
    }
    match observations::observe(client, &batch, &cfg.columns.query()).await {
        Ok(got) => {
            let absent: Vec<&str> = targets
                .iter()
                .take(batch.len())
                .filter(|t| !got.contains_key(&t.id))
                .map(|t| t.name.as_str())
                .collect();
            let mut detail = format!(
                "1 query for {} of {} selected (the query `run` sends), {} in the answer",
                batch.len(),
                targets.len(),
                got.len()
            );
            if !absent.is_empty() {
                // Not a failure: an idle queue with no members is absent from the answer
                // too (zero counts are left out).
                detail.push_str(&format!(
                    "; absent: {} (an idle queue without members is left out; a queue in a division the role does not cover is too)",
                    absent.join(", ")
                ));
            }
            Probe::Proven(detail)
        }
        Err(e) => failed(Call::ObserveQueues, &e, "the queues"),
    }
}

/// `GET .../rows?pageSize=1`: the row read `run` starts with.
pub async fn read_rows(client: &Client, table_id: &str) -> Probe {
    let req = Request::get(
        "datatable_rows",
        format!("/api/v2/flows/datatables/{}/rows", encode_segment(table_id)),
    )
    .query("pageSize", "1")
    .query("pageNumber", "1")
    .query("showbrief", "false");
    match client.send(req).await {
        Ok(body) => match datatable::parse_rows_page(&body) {
            Ok(_) => Probe::Proven("rows readable (GET .../rows?pageSize=1)".into()),
            Err(m) => Probe::Failed(format!("unexpected answer to the row read: {m}")),
        },
        Err(e) => failed(Call::ReadRows, &e, "the table"),
    }
}

/// A row as it is stored, or None when there is none of that key.
async fn get_row(
    client: &Client,
    table_id: &str,
    key: &str,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let req = Request::get("datatable_row", row_path(table_id, key)).query("showbrief", "false");
    match client.send_json::<Map<String, Value>>(req).await {
        Ok(row) => Ok(Some(row)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The write probe: the heartbeat row (or, with the heartbeat off, a row of a selected
/// queue) rewritten with exactly what it holds, which proves `edit`; the same row posted
/// again, which proves `add` without a change (an existing key answers 409, and Genesys
/// checks permissions before anything else, so without `add` it answers 403). A heartbeat
/// row that does not exist yet is created with the epoch as `UpdatedAt` (stale to any
/// flow until `run` writes it).
pub async fn write(client: &Client, cfg: &Config, table_id: &str, targets: &[Target]) -> Probe {
    let mut created = false;
    let (key, row) = if let Some(hb) = &cfg.rows.heartbeat_key {
        match get_row(client, table_id, hb).await {
            Ok(Some(row)) => (hb.clone(), row),
            Ok(None) => {
                let row = Columns::heartbeat_row(hb, chrono::DateTime::UNIX_EPOCH);
                if let Err(e) = datatable::create_row(client, table_id, &row).await {
                    return row_failed(Call::CreateRow, e);
                }
                created = true;
                (hb.clone(), row)
            }
            Err(e) => return failed(Call::ReadRows, &e, "the table"),
        }
    } else {
        // A handful of lookups at most: the first selected queues that have a row.
        let mut found = None;
        for t in targets.iter().take(5) {
            match get_row(client, table_id, &t.key).await {
                Ok(Some(row)) => {
                    found = Some((t.key.clone(), row));
                    break;
                }
                Ok(None) => {}
                Err(e) => return failed(Call::ReadRows, &e, "the table"),
            }
        }
        let Some(found) = found else {
            return Probe::NotProven(
                "heartbeat off and no selected queue has a row yet: nothing can be rewritten unchanged, so writes are not proven (`once` proves them, writing real rows)"
                    .into(),
            );
        };
        found
    };
    if let Err(e) = datatable::update_row(client, table_id, &key, &row).await {
        return row_failed(Call::UpdateRow, e);
    }
    if !created {
        match datatable::create_row(client, table_id, &row).await {
            Err(datatable::RowError::Exists) => {}
            Ok(()) => {
                // The row vanished between the read and the POST (someone deleted it):
                // it is back as it was.
            }
            Err(e) => return row_failed(Call::CreateRow, e),
        }
    }
    Probe::Proven(format!(
        "row `{key}` {} (PUT and POST proven: `architect:datatableRow:edit` and `:add`)",
        if created {
            "created (UpdatedAt = 1970, stale until `run` writes it) and rewritten unchanged"
        } else {
            "rewritten with exactly what it holds"
        }
    ))
}

fn row_failed(call: Call, e: datatable::RowError) -> Probe {
    match e {
        datatable::RowError::Api(e) => failed(call, &e, "the table"),
        other => Probe::Failed(format!("row write: {other}")),
    }
}

/// Import mode: one import job created (the request `run` starts each import cycle with)
/// and never uploaded, so no row changes; Genesys leaves such a job waiting for its
/// upload.
pub async fn import(client: &Client, table_id: &str) -> Probe {
    match client.send(datatable::create_import_job(table_id)).await {
        Ok(_) => Probe::Proven(
            "import job created (POST .../import/csv/jobs) and left without a file: no row changed"
                .into(),
        ),
        Err(e) => failed(Call::CreateImport, &e, "the table"),
    }
}

/// `on_vanish = "delete"`: a DELETE of a key that cannot exist answers 404 with the
/// permission and 403 without.
pub async fn delete(client: &Client, table_id: &str) -> Probe {
    let key = format!("_genesys_queue_sync_check_{:016x}", rand::random::<u64>());
    let req = Request {
        endpoint: "datatable_row",
        method: Method::DELETE,
        path: row_path(table_id, &key),
        query: Vec::new(),
        body: None,
    };
    match client.send(req).await {
        Err(e) if e.status() == Some(404) => Probe::Proven(format!(
            "DELETE of a key that cannot exist (`{key}`) answered 404: the permission is there"
        )),
        Ok(_) => Probe::Proven(format!("DELETE of `{key}` accepted")),
        Err(e) => failed(Call::DeleteRow, &e, "the table"),
    }
}
