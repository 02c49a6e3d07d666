//! The table written through one CSV import job (Append), and the records a job that
//! `Succeeded` still rejected, found by reading the table back.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::TableState;
use crate::genesys::Client;
use crate::genesys::datatable;
use crate::sync::columns::{self, Values};
use crate::sync::plan::{Due, IMPORT_FAILURES_BEFORE_ROWS};
use crate::sync::report::{CycleError, CycleReport, Stage};
use crate::sync::writer::WRITER;

impl TableState {
    /// Writes the due rows through one CSV import job (Append: no other row changes).
    /// Records the job failed although it `Succeeded` are found by reading the table back
    /// (which records failed is not documented in a form to rely on); they count as not
    /// written, so they are due again next cycle, and after
    /// [`IMPORT_FAILURES_BEFORE_ROWS`] failed imports in a row go through the rows API.
    pub async fn write_import(
        &mut self,
        client: &Client,
        table_id: &str,
        due: Vec<Due>,
        heartbeat: Option<String>,
        bound: std::time::Duration,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        if due.is_empty() && heartbeat.is_none() {
            return Ok(());
        }
        let mut extra: BTreeSet<String> = self
            .extra_columns
            .values()
            .flat_map(|m| m.keys().cloned())
            .collect();
        if heartbeat.is_some() && self.writer_field {
            extra.insert(WRITER.to_owned());
        }
        let mut csv = datatable::CsvWriter::new(&self.columns.fields(), extra);
        for d in &due {
            csv.push(&self.owned_row(&d.target.key, &d.values, d.at));
        }
        let now = Utc::now();
        let heartbeat_row = heartbeat.as_ref().map(|key| self.heartbeat_row(key, now));
        if let Some(row) = &heartbeat_row {
            csv.push(row);
        }
        let csv = csv.finish();
        let outcome = match datatable::import_append(client, table_id, csv, bound).await {
            Ok(outcome) => outcome,
            Err(e) => {
                if e.status() == Some(404) {
                    self.lose_table();
                }
                for d in &due {
                    // A failed or abandoned job may still apply later: content unknown.
                    self.held.remove(&d.target.key);
                    report.fail(
                        d.target.name.clone(),
                        Stage::Import,
                        format!("import failed: {e}"),
                    );
                }
                return Err(e.into());
            }
        };
        report.imported = true;
        tracing::debug!(
            polls = outcome.polls,
            updated = outcome.updated,
            failed = outcome.failed,
            "import job succeeded"
        );
        if let Some(key) = heartbeat {
            self.known_keys.insert(key);
        }
        if let Some(row) = &heartbeat_row {
            self.heartbeat_written(row, now);
        }
        let failed_keys = if outcome.failed == 0 {
            HashSet::new()
        } else {
            self.failed_records(client, table_id, &due).await
        };
        let why = outcome.why.as_deref().unwrap_or("no reason given");
        if outcome.failed > 0 {
            let mut named: Vec<&str> = failed_keys.iter().map(String::as_str).collect();
            named.sort_unstable();
            let more = named.len().saturating_sub(20);
            named.truncate(20);
            let keys = if more > 0 {
                format!("{} and {more} more", named.join(", "))
            } else {
                named.join(", ")
            };
            tracing::warn!(
                failed = outcome.failed,
                rows = failed_keys.len(),
                keys = %keys,
                why,
                "the import job succeeded but rejected some rows; they are due again next cycle"
            );
        }
        for d in due {
            if failed_keys.contains(&d.target.key) {
                self.held.remove(&d.target.key);
                let n = self
                    .import_failures
                    .entry(d.target.key.clone())
                    .or_insert(0);
                *n += 1;
                if *n == IMPORT_FAILURES_BEFORE_ROWS {
                    tracing::warn!(queue = %d.target.name, imports = *n, "imports keep rejecting this row: it is written through the rows API from now on");
                }
                report.fail(
                    d.target.name.clone(),
                    Stage::Import,
                    format!("the import rejected the row: {why}"),
                );
            } else {
                self.import_failures.remove(&d.target.key);
                self.record_written(&d.target, d.values.clone(), d.at);
                report.written.push((d.target, d.values));
            }
        }
        Ok(())
    }

    /// Keys of `due` whose row does not hold what the import wrote. A read that fails
    /// counts every row as failed: written again next cycle, which is safe.
    async fn failed_records(
        &self,
        client: &Client,
        table_id: &str,
        due: &[Due],
    ) -> HashSet<String> {
        let wanted: HashMap<&str, (&Values, DateTime<Utc>)> = due
            .iter()
            .map(|d| (d.target.key.as_str(), (&d.values, columns::as_stored(d.at))))
            .collect();
        let mut ok = HashSet::new();
        let read = datatable::for_each_row(client, table_id, false, |row| {
            let Some(key) = row.get("key").and_then(Value::as_str) else {
                return;
            };
            if let (Some((values, at)), Some((got, got_at))) =
                (wanted.get(key), self.columns.parse_row(&row))
                && **values == got
                && *at == got_at
            {
                ok.insert(key.to_owned());
            }
        })
        .await;
        if let Err(e) = read {
            tracing::warn!(error = %e, "could not read the table back to find the rows the import rejected; all of them are due again");
            ok.clear();
        }
        due.iter()
            .map(|d| d.target.key.clone())
            .filter(|k| !ok.contains(k))
            .collect()
    }
}
