//! The data table: what the daemon knows it holds, and every write to it.
//!
//! The table is found (and its schema checked) once, and its rows listed once per
//! process or after the table was lost, so a restart rewrites nothing that already holds
//! the right values. After that the daemon's own writes keep [`TableState`] current.
//! Writes through a CSV import job are in `import`.

mod import;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::columns::{self, Columns, UPDATED_AT, Values};
use super::plan::{Due, Heartbeat, Held, TableView};
use super::report::{CycleError, CycleReport, Stage};
use super::selection::Target;
use super::writer::{OtherWriter, WRITER, Writers};
use crate::config::TableRef;
use crate::genesys::Client;
use crate::genesys::datatable::{self, ColumnType, Table};

pub struct TableState {
    /// The configured table, for log lines.
    table_ref: TableRef,
    columns: Columns,
    /// Fields the daemon wrote once but no longer does: blanked in its rows.
    retired: Vec<String>,
    table: Option<Table>,
    /// Whether `known_keys` holds the table's listing (plus the daemon's writes since).
    listed: bool,
    /// Keys known to exist in the table.
    known_keys: HashSet<String>,
    /// What each owned row holds.
    held: HashMap<String, Held>,
    /// Columns of owned rows that the daemon does not write, carried into every PUT
    /// because a PUT replaces the whole row.
    extra_columns: HashMap<String, Map<String, Value>>,
    /// Owned keys whose record the last imports failed, and how many times in a row.
    import_failures: HashMap<String, u32>,
    /// Whether the table has the heartbeat's `Writer` field.
    writer_field: bool,
    /// Whether the schema has fields the daemon neither writes nor blanks (a `Notes`
    /// column): only then can a row hold values a rewrite must carry, so only then is
    /// the table listed again before rewriting rows ([`Self::reread`]).
    foreign_fields: bool,
    /// The heartbeat row as this cycle's re-read listing returned it (None: no listing
    /// this cycle), so the writer check does not fetch it again.
    listed_heartbeat: Option<Option<Map<String, Value>>>,
    /// How often the schema is read again (`rows.refresh_after`), so a field added in
    /// Architect while the daemon runs is carried from then on; when it was last read.
    recheck: std::time::Duration,
    schema_read: Option<tokio::time::Instant>,
    /// Requests spent this cycle reading the schema again, for the budget.
    spent: usize,
    /// This process's identity and the other writers it has seen.
    writers: Writers,
}

impl TableState {
    pub fn new(table_ref: TableRef, columns: Columns, recheck: std::time::Duration) -> Self {
        Self {
            table_ref,
            columns,
            retired: Vec::new(),
            table: None,
            listed: false,
            known_keys: HashSet::new(),
            held: HashMap::new(),
            extra_columns: HashMap::new(),
            import_failures: HashMap::new(),
            writer_field: false,
            foreign_fields: false,
            listed_heartbeat: None,
            recheck,
            schema_read: None,
            spent: 0,
            writers: Writers::default(),
        }
    }

    /// Whether the table was found, its schema fits, and no write found it gone since.
    pub fn usable(&self) -> bool {
        self.table.is_some()
    }

    /// What the plan needs to know of the table.
    pub fn view(&self) -> TableView<'_> {
        TableView {
            held: &self.held,
            keys: &self.known_keys,
            import_failures: &self.import_failures,
        }
    }

    /// Finds the table once and checks its schema; forgets it when a write says it is gone.
    pub async fn ensure(&mut self, client: &Client) -> Result<String, CycleError> {
        self.spent = 0;
        if let Some(t) = &self.table {
            let id = t.id.clone();
            if self
                .schema_read
                .is_some_and(|at| at.elapsed() >= self.recheck)
            {
                self.reread_schema(client, &id).await;
                if self.table.is_none() {
                    return Err(CycleError::TableMissing(self.table_ref.clone()));
                }
            }
            return Ok(id);
        }
        let found = datatable::find(client, &self.table_ref).await?;
        let table = found.ok_or_else(|| CycleError::TableMissing(self.table_ref.clone()))?;
        let problems = datatable::check_schema(&table, &self.columns.fields());
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(CycleError::Schema {
                table: table.name.clone(),
                problems: list.join("; "),
            });
        }
        tracing::info!(table = %table.name, id = %table.id, "data table found, schema fits");
        self.retired = self.columns.retired(&table);
        if !self.retired.is_empty() {
            tracing::warn!(
                columns = %self.retired.join(", "),
                "the table has columns the daemon wrote before but no longer configures; it blanks them in its rows so no flow reads a stale number (remove them from the flows)"
            );
        }
        self.foreign_fields = table
            .columns
            .keys()
            .any(|f| !self.columns.writes(f) && !self.retired.contains(f));
        self.writer_field = table
            .columns
            .get(WRITER)
            .is_some_and(|ty| ty == ColumnType::String.as_str());
        if self.writer_field {
            tracing::info!(writer = %self.writers.me(), "the heartbeat row names this process as its writer");
        } else {
            tracing::warn!(
                "the table has no `Writer` string column, so the heartbeat row cannot name its writer and a second daemon writing this table is noticed only by the heartbeat's UpdatedAt; `genesys-queue-sync table create` adds the column"
            );
        }
        let id = table.id.clone();
        self.table = Some(table);
        self.listed = false;
        self.schema_read = Some(tokio::time::Instant::now());
        Ok(id)
    }

    /// Reads the schema again (one request): a field added since (a `Notes` column made
    /// in Architect) turns on the re-read before rewriting rows, so its values are
    /// carried. A table gone is looked up again next cycle; a failed read waits for the
    /// next `recheck`.
    async fn reread_schema(&mut self, client: &Client, id: &str) {
        self.schema_read = Some(tokio::time::Instant::now());
        self.spent += 1;
        match datatable::get(client, id).await {
            Ok(Some(table)) => {
                let foreign = table
                    .columns
                    .keys()
                    .any(|f| !self.columns.writes(f) && !self.retired.contains(f));
                if foreign && !self.foreign_fields {
                    tracing::info!(table = %table.name, "the table has fields the daemon does not write now: rows are re-read before they are rewritten, so their values are carried");
                }
                self.foreign_fields = foreign;
            }
            Ok(None) => self.lose_table(),
            Err(e) => {
                tracing::debug!(error = %e, "could not read the table's schema again; trying at the next recheck");
            }
        }
    }

    /// Requests spent in this cycle's [`Self::ensure`] beyond the first lookup.
    pub fn spent(&self) -> usize {
        self.spent
    }

    /// Reads the table's rows once per process (or after the table was lost), so a
    /// restart rewrites nothing that already holds the right values.
    pub async fn load_rows(
        &mut self,
        client: &Client,
        table_id: &str,
        targets: &[Target],
    ) -> Result<(), CycleError> {
        if self.listed {
            return Ok(());
        }
        let owned: HashSet<&str> = targets.iter().map(|t| t.key.as_str()).collect();
        let (columns, retired) = (&self.columns, &self.retired);
        let mut keys = HashSet::new();
        let mut held = HashMap::new();
        let mut extra_columns = HashMap::new();
        datatable::for_each_row(client, table_id, false, |mut row| {
            let Some(key) = row.get("key").and_then(Value::as_str).map(str::to_owned) else {
                return;
            };
            if owned.contains(key.as_str()) {
                if let Some((values, at)) = columns.parse_row(&row) {
                    held.insert(key.clone(), Held { values, at });
                }
                row.retain(|field, _| !columns.writes(field) && !retired.contains(field));
                if !row.is_empty() {
                    extra_columns.insert(key.clone(), row);
                }
            }
            keys.insert(key);
        })
        .await?;
        self.held = held;
        self.extra_columns = extra_columns;
        tracing::info!(
            rows = keys.len(),
            owned_fresh = self.held.len(),
            "read the table's current rows"
        );
        self.known_keys = keys;
        self.listed = true;
        Ok(())
    }

    /// Requests [`Self::reread`] costs: one page of the row listing per 500 rows, and
    /// none when the schema has no field beyond the daemon's own.
    pub fn reread_cost(&self) -> usize {
        if self.held.is_empty() || !self.foreign_fields {
            0
        } else {
            self.known_keys
                .len()
                .div_ceil(datatable::ROWS_PAGE_SIZE as usize)
                .max(1)
        }
    }

    /// Before rewriting rows that exist, reads what the table holds now, so a value
    /// someone edited in an extra column (one the daemon does not write) since the last
    /// read is carried into the write instead of being replaced by the copy read before
    /// (a PUT, and an import record, replaces the whole row). One listing, ⌈rows/500⌉
    /// requests, in a cycle that rewrites at least one existing row of a table whose
    /// schema has fields beyond the daemon's (key, the columns, `UpdatedAt`, `Writer`,
    /// retired columns); none otherwise: without such a field no row holds anything a
    /// rewrite could lose. The listing's copy of the heartbeat row (`heartbeat`) is kept
    /// for this cycle's writer check ([`Self::read_heartbeat`]).
    ///
    /// When the listing fails, the rows known to have extra values are not rewritten
    /// this cycle (they are reported failed and due again): their edits may be newer
    /// than the copy held. Rows with no extra value known are written.
    pub async fn reread(
        &mut self,
        client: &Client,
        table_id: &str,
        due: &mut Vec<Due>,
        heartbeat: Option<&str>,
        report: &mut CycleReport,
    ) {
        self.listed_heartbeat = None;
        if !self.foreign_fields || !due.iter().any(|d| self.known_keys.contains(&d.target.key)) {
            return;
        }
        let owned: HashSet<&str> = due.iter().map(|d| d.target.key.as_str()).collect();
        let (columns, retired) = (&self.columns, &self.retired);
        let mut extra_columns = HashMap::new();
        let mut heartbeat_row = None;
        let read = datatable::for_each_row(client, table_id, false, |mut row| {
            let Some(key) = row.get("key").and_then(Value::as_str).map(str::to_owned) else {
                return;
            };
            if heartbeat == Some(key.as_str()) {
                heartbeat_row = Some(row);
                return;
            }
            if owned.contains(key.as_str()) {
                row.retain(|field, _| !columns.writes(field) && !retired.contains(field));
                extra_columns.insert(key, row);
            }
        })
        .await;
        match read {
            Ok(()) => {
                if heartbeat.is_some() {
                    self.listed_heartbeat = Some(heartbeat_row);
                }
                for d in due.iter() {
                    let key = &d.target.key;
                    // A row missing from the listing (deleted, or a lagging read of a
                    // new one) keeps what was known of it.
                    match extra_columns.remove(key) {
                        Some(extra) if extra.is_empty() => {
                            self.extra_columns.remove(key);
                        }
                        Some(extra) => {
                            self.extra_columns.insert(key.clone(), extra);
                        }
                        None => {}
                    }
                }
            }
            Err(e) => {
                let (keep, withheld): (Vec<Due>, Vec<Due>) = std::mem::take(due)
                    .into_iter()
                    .partition(|d| !self.extra_columns.contains_key(&d.target.key));
                *due = keep;
                if !withheld.is_empty() {
                    tracing::warn!(error = %e, rows = withheld.len(), "could not re-read the table before rewriting rows with extra columns; those rows wait for the next cycle so no edit in their extra columns is overwritten");
                }
                for d in withheld {
                    report.fail(
                        d.target.name.clone(),
                        Stage::Write,
                        format!("not rewritten: its extra columns could not be re-read first: {e}"),
                    );
                }
            }
        }
    }

    /// Deletes the rows of vanished queues; returns the keys to try again next cycle.
    pub async fn delete_rows(
        &mut self,
        client: &Client,
        table_id: &str,
        keys: Vec<String>,
    ) -> Vec<String> {
        let mut retry = Vec::new();
        for key in keys {
            match datatable::delete_row(client, table_id, &key).await {
                Ok(()) => {
                    tracing::info!(key = %key, "deleted the row of a vanished queue (on_vanish = delete)");
                    self.held.remove(&key);
                    self.known_keys.remove(&key);
                }
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "could not delete the row of a vanished queue; will retry");
                    retry.push(key);
                }
            }
        }
        retry
    }

    /// Writes `due` one request each, at most `concurrency` at a time.
    pub async fn write_rows(
        &mut self,
        client: &Client,
        table_id: &str,
        due: Vec<Due>,
        concurrency: usize,
        report: &mut CycleReport,
    ) {
        let sem = Arc::new(Semaphore::new(concurrency));
        let mut tasks = JoinSet::new();
        for d in due {
            let row = self.owned_row(&d.target.key, &d.values, d.at);
            let exists = self.known_keys.contains(&d.target.key);
            let client = client.clone();
            let table_id = table_id.to_owned();
            let sem = sem.clone();
            tasks.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let res =
                    datatable::upsert_row(&client, &table_id, &d.target.key, &row, exists).await;
                (d, res)
            });
        }
        let mut table_gone = false;
        while let Some(joined) = tasks.join_next().await {
            let Ok((d, res)) = joined else { continue };
            match res {
                Ok(()) => {
                    self.record_written(&d.target, d.values.clone(), d.at);
                    report.written.push((d.target, d.values));
                }
                Err(e) => {
                    if e.status() == Some(404) {
                        table_gone = true;
                    }
                    // A failed write may still have landed (a timeout or a lost answer):
                    // the row's content is unknown now, so it is due next cycle even if
                    // the values go back to what was last written for sure.
                    self.held.remove(&d.target.key);
                    tracing::warn!(queue = %d.target.name, error = %e, "row write failed");
                    report.fail(
                        d.target.name.clone(),
                        Stage::Write,
                        format!("write failed: {e}"),
                    );
                }
            }
        }
        if table_gone {
            self.lose_table();
        }
    }

    /// Reads the heartbeat row back before it is written again: another writer's
    /// identity in it is reported (see [`super::writer`]). One request, or none when
    /// this cycle's re-read listing already returned the row; a failed read only costs
    /// the check, never the write.
    pub async fn read_heartbeat(
        &mut self,
        client: &Client,
        table_id: &str,
        key: &str,
    ) -> Option<OtherWriter> {
        if let Some(row) = self.listed_heartbeat.take() {
            return self.writers.read(row.as_ref(), Utc::now());
        }
        match datatable::get_row(client, table_id, key).await {
            Ok(row) => self.writers.read(row.as_ref(), Utc::now()),
            Err(e) => {
                tracing::debug!(error = %e, "could not read the heartbeat row back; the writer check waits for the next cycle");
                None
            }
        }
    }

    /// The heartbeat row: key, `UpdatedAt`, and this process's identity when the table
    /// has the `Writer` field.
    fn heartbeat_row(&self, key: &str, now: DateTime<Utc>) -> Map<String, Value> {
        let mut row = Columns::heartbeat_row(key, now);
        if self.writer_field {
            row.insert(WRITER.into(), Value::String(self.writers.value(now)));
        }
        row
    }

    fn heartbeat_written(&mut self, row: &Map<String, Value>, now: DateTime<Utc>) {
        if let Some(at) = row.get(UPDATED_AT).and_then(Value::as_str) {
            self.writers.wrote(at, now);
        }
    }

    pub async fn write_heartbeat(&mut self, client: &Client, table_id: &str, heartbeat: Heartbeat) {
        let now = Utc::now();
        let row = self.heartbeat_row(&heartbeat.key, now);
        match datatable::upsert_row(client, table_id, &heartbeat.key, &row, heartbeat.exists).await
        {
            Ok(()) => {
                self.heartbeat_written(&row, now);
                self.known_keys.insert(heartbeat.key);
            }
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat row write failed");
                // With unchanged rows skipped, the heartbeat may be the only write that
                // finds out the table was deleted.
                if e.status() == Some(404) {
                    self.lose_table();
                }
            }
        }
    }

    /// The row for an owned key, carrying the extra columns it already has in the table.
    fn owned_row(&self, key: &str, values: &Values, at: DateTime<Utc>) -> Map<String, Value> {
        let mut row = self.columns.row(key, values, at);
        if let Some(extra) = self.extra_columns.get(key) {
            for (k, v) in extra {
                row.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        row
    }

    /// Forgets what the table holds for `key` (its row came from a queue that no longer
    /// has that key), so the row is written at once from the queue that has it now.
    pub fn forget(&mut self, key: &str) {
        self.held.remove(key);
    }

    fn record_written(&mut self, t: &Target, values: Values, at: DateTime<Utc>) {
        self.known_keys.insert(t.key.clone());
        // The table holds seconds precision: compare ages against what it holds.
        let at = columns::as_stored(at);
        self.held.insert(t.key.clone(), Held { values, at });
    }

    fn lose_table(&mut self) {
        // A 404 on POST means the table itself is gone: look it up again next cycle.
        tracing::error!(table = %self.table_ref, "the data table disappeared during writes; will look it up again next cycle");
        self.table = None;
        self.listed = false;
        self.known_keys.clear();
        self.import_failures.clear();
    }
}
