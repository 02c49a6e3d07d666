//! One sync cycle: resolve queues, observe them, write the rows that are due.
//!
//! A [`Syncer`] keeps what is worth keeping between cycles: the resolved queues, the
//! table, the keys that exist, and what each owned row holds. So a steady-state cycle
//! costs ⌈N/100⌉ observation queries plus one write per row that changed or whose
//! `UpdatedAt` is older than `rows.refresh_after`, plus the heartbeat row; or, in import
//! mode, one CSV import job whatever N is.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{Config, KeyBy, OnVanish, TableRef, WriteMode};
use crate::genesys::datatable::{self, Table};
use crate::genesys::observations::{self, MAX_QUEUES_PER_QUERY, QueueCounts};
use crate::genesys::queues::{self, Queue};
use crate::genesys::{ApiError, Client};
use crate::health::Health;

/// A data table holds at most this many rows.
pub const MAX_ROWS: usize = 5000;

/// A queue the daemon owns a row for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub name: String,
    /// The row key: the name or the id, per `table.key`.
    pub key: String,
    pub division: String,
}

/// What a cycle did, for logs, `once`, metrics and health.
#[derive(Debug, Default, Clone)]
pub struct CycleReport {
    pub started: Option<DateTime<Utc>>,
    pub duration: Duration,
    /// Observed queues and their values, in selection order.
    pub observed: Vec<(Target, QueueCounts)>,
    /// Rows written this cycle (the heartbeat row not included).
    pub written: usize,
    /// Rows that were due but left for the next cycle to stay inside the budget.
    pub deferred: usize,
    /// Rows not written because nothing changed and they are fresh enough.
    pub skipped: usize,
    /// Whether the rows went out as one CSV import.
    pub imported: bool,
    /// Queues that were not written, with the reason.
    pub failed: Vec<(String, String)>,
    /// A problem that stopped the cycle before writing anything.
    pub error: Option<String>,
    pub dry_run: bool,
}

impl CycleReport {
    pub fn outcome(&self) -> &'static str {
        if self.error.is_some() || (self.observed.is_empty() && !self.failed.is_empty()) {
            "failed"
        } else if self.failed.is_empty() {
            "ok"
        } else {
            "partial"
        }
    }

    /// Queues whose row holds their current values after this cycle.
    pub fn fresh(&self) -> usize {
        self.written + self.skipped
    }

    pub fn summary(&self) -> String {
        match &self.error {
            Some(e) => format!("cycle failed: {e}"),
            None => format!(
                "{} observed, {} written{}, {} unchanged, {} deferred, {} failed in {} ms",
                self.observed.len(),
                self.written,
                if self.imported { " (import)" } else { "" },
                self.skipped,
                self.deferred,
                self.failed.len(),
                self.duration.as_millis()
            ),
        }
    }
}

/// The row the daemon writes for a queue.
pub fn row_for(key: &str, c: &QueueCounts, at: DateTime<Utc>) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("key".into(), json!(key));
    row.insert("Online".into(), json!(c.online));
    row.insert("OnQueue".into(), json!(c.on_queue));
    row.insert("Idle".into(), json!(c.idle));
    row.insert("Interacting".into(), json!(c.interacting));
    row.insert("Waiting".into(), json!(c.waiting));
    row.insert("UpdatedAt".into(), json!(timestamp(at)));
    row
}

/// The heartbeat row: the key and the time, nothing else.
fn heartbeat_row(key: &str) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("key".into(), json!(key));
    row.insert("UpdatedAt".into(), json!(timestamp(Utc::now())));
    row
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Reads back what a row holds, if it is a complete row of the daemon's shape.
pub fn parse_row(row: &Map<String, Value>) -> Option<(QueueCounts, DateTime<Utc>)> {
    let n = |c: &str| row.get(c).and_then(Value::as_u64);
    let at = row.get("UpdatedAt").and_then(Value::as_str)?;
    let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
    Some((
        QueueCounts {
            online: n("Online")?,
            on_queue: n("OnQueue")?,
            idle: n("Idle")?,
            interacting: n("Interacting")?,
            waiting: n("Waiting")?,
        },
        at,
    ))
}

/// How much a queue's values moved, relative to the old values (for ordering writes).
fn relative_change(old: &QueueCounts, new: &QueueCounts) -> f64 {
    let pairs = [
        (old.online, new.online),
        (old.on_queue, new.on_queue),
        (old.idle, new.idle),
        (old.interacting, new.interacting),
        (old.waiting, new.waiting),
    ];
    pairs
        .iter()
        .map(|&(o, n)| (n as f64 - o as f64).abs() / (o.max(1) as f64))
        .sum()
}

/// What the table holds for an owned row, as far as the daemon knows.
#[derive(Debug, Clone, Copy)]
struct Held {
    counts: QueueCounts,
    at: DateTime<Utc>,
}

/// A row due for writing this cycle.
#[derive(Debug, Clone)]
struct Due {
    target: Target,
    counts: QueueCounts,
    at: DateTime<Utc>,
    /// Whether the values changed (or the row is new); false for a refresh.
    changed: bool,
    /// Relative size of the change; infinite for a new row.
    change: f64,
    /// When the table's copy was written; None for a new row.
    held_at: Option<DateTime<Utc>>,
}

/// Orders due rows: changed before refreshes; among changed, the largest relative change
/// first, then the oldest; among refreshes, the oldest first.
fn prioritize(due: &mut [Due]) {
    due.sort_by(|a, b| {
        b.changed
            .cmp(&a.changed)
            .then_with(|| b.change.total_cmp(&a.change))
            .then_with(|| a.held_at.cmp(&b.held_at))
    });
}

/// The outcome of resolving the queue selection.
#[derive(Debug, Default, Clone)]
pub struct Resolution {
    pub targets: Vec<Target>,
    /// Configured names or ids that match no queue.
    pub missing: Vec<String>,
    /// Queues matched but left out because the table holds at most 5,000 rows.
    pub left_out: Vec<String>,
}

pub struct Syncer {
    client: Client,
    cfg: Arc<Config>,
    health: Health,
    targets: Vec<Target>,
    resolved_at: Option<Instant>,
    resolve_requested: bool,
    table: Option<Table>,
    /// Keys known to exist in the table; `None` until listed once.
    known_keys: Option<HashSet<String>>,
    /// What each owned row holds.
    held: HashMap<String, Held>,
    /// Columns of owned rows that the daemon does not write, carried into every PUT
    /// because a PUT replaces the whole row.
    extra_columns: HashMap<String, Map<String, Value>>,
    /// Keys of queues that left the selection, to delete (on_vanish = "delete").
    vanished: Vec<String>,
}

impl Syncer {
    pub fn new(client: Client, cfg: Arc<Config>, health: Health) -> Self {
        Self {
            client,
            cfg,
            health,
            targets: Vec::new(),
            resolved_at: None,
            resolve_requested: false,
            table: None,
            known_keys: None,
            held: HashMap::new(),
            extra_columns: HashMap::new(),
            vanished: Vec::new(),
        }
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs one cycle; never panics, always reports.
    pub async fn run_cycle(&mut self, dry_run: bool) -> CycleReport {
        let start = Instant::now();
        let mut report = CycleReport {
            started: Some(Utc::now()),
            dry_run,
            ..CycleReport::default()
        };
        if let Err(e) = self.cycle(dry_run, &mut report).await {
            report.error = Some(e.to_string());
        }
        report.duration = start.elapsed();
        let m = self.client.metrics();
        m.cycle(report.outcome());
        m.cycle_duration.observe(report.duration.as_secs_f64());
        if report.outcome() == "ok" && !dry_run {
            m.last_success.set(Utc::now().timestamp() as f64);
        }
        if !dry_run {
            m.rows_inc("written", report.written as u64);
            m.rows_inc("skipped", report.skipped as u64);
            m.rows_inc("deferred", report.deferred as u64);
            m.rows_inc("failed", report.failed.len() as u64);
        }
        self.health.cycle_finished(&report);
        report
    }

    async fn cycle(&mut self, dry_run: bool, report: &mut CycleReport) -> Result<(), CycleError> {
        let logged_in = self.client.auth().token().await;
        self.health.set_logged_in(logged_in.is_ok());
        logged_in.map_err(ApiError::from)?;

        let table_id = if dry_run {
            None
        } else {
            Some(self.ensure_table().await?)
        };
        self.ensure_targets().await?;
        if self.targets.is_empty() {
            return Err(CycleError::NoQueues);
        }

        let ids: Vec<String> = self.targets.iter().map(|t| t.id.clone()).collect();
        let mut counts: HashMap<String, (QueueCounts, DateTime<Utc>)> = HashMap::new();
        let mut failed_ids: HashSet<&str> = HashSet::new();
        for batch in ids.chunks(MAX_QUEUES_PER_QUERY) {
            match observations::observe_batch(&self.client, batch).await {
                Ok(got) => {
                    let at = Utc::now();
                    counts.extend(got.into_iter().map(|(id, c)| (id, (c, at))));
                }
                Err(ApiError::Cancelled) => return Err(ApiError::Cancelled.into()),
                Err(e) => {
                    tracing::warn!(error = %e, queues = batch.len(), "observation query failed; those queues keep their old rows");
                    for id in batch {
                        failed_ids.insert(id);
                        report
                            .failed
                            .push((self.label(id), format!("observation failed: {e}")));
                    }
                }
            }
        }
        let mut missing_from_answer = false;
        let mut observed = Vec::new();
        for t in &self.targets {
            match counts.get(&t.id) {
                Some((c, at)) => {
                    report.observed.push((t.clone(), *c));
                    observed.push((t.clone(), *c, *at));
                }
                None if !failed_ids.contains(t.id.as_str()) => {
                    tracing::warn!(queue = %t.name, id = %t.id, "queue missing from the observation answer (deleted or not visible?); its row is left as it was");
                    report
                        .failed
                        .push((t.name.clone(), "not in the observation answer".into()));
                    missing_from_answer = true;
                }
                None => {}
            }
        }
        self.resolve_requested |= missing_from_answer;
        let Some(table_id) = table_id else {
            return Ok(());
        };
        self.load_table_rows(&table_id).await?;
        self.delete_vanished(&table_id).await;

        let reads = ids.len().div_ceil(MAX_QUEUES_PER_QUERY);
        let due = self.due_rows(&observed, report);
        let budget = self.row_budget(reads);
        let import = match self.cfg.write_mode {
            WriteMode::Import => true,
            WriteMode::Auto => self.cfg.table_owned && due.len() > budget,
            WriteMode::Rows => false,
        };
        if import {
            self.write_import(&table_id, &observed, report).await
        } else {
            self.write_rows(&table_id, due, budget, report).await;
            if report.fresh() > 0 {
                self.write_heartbeat(&table_id).await;
            }
            Ok(())
        }
    }

    fn label(&self, id: &str) -> String {
        self.targets
            .iter()
            .find(|t| t.id == id)
            .map_or_else(|| id.to_owned(), |t| t.name.clone())
    }

    /// Row writes this cycle may spend: the per-minute budget scaled to the period (at
    /// most a minute's worth), less the cycle's reads and the heartbeat.
    fn row_budget(&self, reads: usize) -> usize {
        let period = self.cfg.schedule.period.min(Duration::from_secs(60));
        let per_cycle = (u64::from(self.cfg.requests_per_minute) * period.as_secs() / 60) as usize;
        let heartbeat = usize::from(self.cfg.rows.heartbeat_key.is_some());
        per_cycle.saturating_sub(reads + heartbeat)
    }

    /// Rows whose values changed, are new, or are due for a refresh; counts the rest as skipped.
    fn due_rows(
        &self,
        observed: &[(Target, QueueCounts, DateTime<Utc>)],
        report: &mut CycleReport,
    ) -> Vec<Due> {
        // Rewrite at the cycle nearest to refresh_after rather than the one after it.
        let refresh = chrono::Duration::from_std(
            self.cfg
                .rows
                .refresh_after
                .saturating_sub(self.cfg.schedule.period / 2),
        )
        .unwrap_or(chrono::Duration::MAX);
        let mut due = Vec::new();
        for (t, c, at) in observed {
            let d = match self.held.get(&t.key) {
                None => Due {
                    target: t.clone(),
                    counts: *c,
                    at: *at,
                    changed: true,
                    change: f64::INFINITY,
                    held_at: None,
                },
                Some(h) if h.counts != *c => Due {
                    target: t.clone(),
                    counts: *c,
                    at: *at,
                    changed: true,
                    change: relative_change(&h.counts, c),
                    held_at: Some(h.at),
                },
                Some(h) if *at - h.at >= refresh => Due {
                    target: t.clone(),
                    counts: *c,
                    at: *at,
                    changed: false,
                    change: 0.0,
                    held_at: Some(h.at),
                },
                Some(_) => {
                    report.skipped += 1;
                    continue;
                }
            };
            due.push(d);
        }
        due
    }

    /// Finds the table once and checks its schema; forgets it when a write says it is gone.
    async fn ensure_table(&mut self) -> Result<String, CycleError> {
        if let Some(t) = &self.table {
            return Ok(t.id.clone());
        }
        self.health.set_table_ok(false);
        let found = datatable::find(&self.client, &self.cfg.table).await?;
        let table = found.ok_or_else(|| CycleError::TableMissing(self.cfg.table.clone()))?;
        let problems = datatable::check_schema(&table);
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(CycleError::Schema {
                table: table.name.clone(),
                problems: list.join("; "),
            });
        }
        tracing::info!(table = %table.name, id = %table.id, "data table found, schema fits");
        self.health.set_table_ok(true);
        let id = table.id.clone();
        self.table = Some(table);
        self.known_keys = None;
        Ok(id)
    }

    /// Reads the table's rows once per process (or after the table was lost), so a
    /// restart rewrites nothing that already holds the right values.
    async fn load_table_rows(&mut self, table_id: &str) -> Result<(), CycleError> {
        if self.known_keys.is_some() {
            return Ok(());
        }
        let owned: HashSet<&str> = self.targets.iter().map(|t| t.key.as_str()).collect();
        let mut keys = HashSet::new();
        let mut held = HashMap::new();
        let mut extra_columns = HashMap::new();
        datatable::for_each_row(&self.client, table_id, false, |mut row| {
            let Some(key) = row.get("key").and_then(Value::as_str).map(str::to_owned) else {
                return;
            };
            if owned.contains(key.as_str()) {
                if let Some((counts, at)) = parse_row(&row) {
                    held.insert(key.clone(), Held { counts, at });
                }
                for (col, _) in datatable::COLUMNS {
                    row.remove(*col);
                }
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
        self.known_keys = Some(keys);
        Ok(())
    }

    /// Resolves the selection on the first cycle, every `resolve_every`, and after a
    /// queue went missing.
    async fn ensure_targets(&mut self) -> Result<(), CycleError> {
        let due = match self.resolved_at {
            None => true,
            Some(at) => self.resolve_requested || at.elapsed() >= self.cfg.resolve_every,
        };
        if !due {
            return Ok(());
        }
        match resolve(&self.client, &self.cfg).await {
            Ok(res) => {
                if self.resolved_at.is_some() {
                    let now: HashSet<&str> = res.targets.iter().map(|t| t.key.as_str()).collect();
                    for gone in self
                        .targets
                        .iter()
                        .filter(|t| !now.contains(t.key.as_str()))
                    {
                        tracing::warn!(queue = %gone.name, id = %gone.id, on_vanish = ?self.cfg.selection.on_vanish, "queue left the selection (deleted, renamed or moved)");
                        if self.cfg.selection.on_vanish == OnVanish::Delete {
                            self.vanished.push(gone.key.clone());
                        }
                    }
                    let before: HashSet<&str> =
                        self.targets.iter().map(|t| t.key.as_str()).collect();
                    let added = res
                        .targets
                        .iter()
                        .filter(|t| !before.contains(t.key.as_str()))
                        .count();
                    if added > 0 {
                        tracing::info!(added, "new queues joined the selection");
                    }
                }
                for m in &res.missing {
                    tracing::warn!(queue = %m, "no such queue in Genesys Cloud; check [queues]");
                }
                if res.targets.len() >= MAX_ROWS && self.cfg.rows.heartbeat_key.is_some() {
                    tracing::warn!(
                        queues = res.targets.len(),
                        "the queues fill the table's 5,000 rows, so the heartbeat row is not written (queue rows come first); select fewer queues to keep it"
                    );
                }
                self.targets = res.targets;
                self.resolved_at = Some(Instant::now());
                self.resolve_requested = false;
                Ok(())
            }
            Err(e) if !self.targets.is_empty() => {
                // Keep writing the queues we know rather than stopping on a lookup hiccup.
                tracing::warn!(error = %e, "re-resolving queues failed; keeping the previous list");
                self.resolved_at = Some(Instant::now());
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_vanished(&mut self, table_id: &str) {
        for key in std::mem::take(&mut self.vanished) {
            if self.targets.iter().any(|t| t.key == key) {
                continue;
            }
            match datatable::delete_row(&self.client, table_id, &key).await {
                Ok(()) => {
                    tracing::info!(key = %key, "deleted the row of a vanished queue (on_vanish = delete)");
                    self.held.remove(&key);
                    if let Some(k) = self.known_keys.as_mut() {
                        k.remove(&key);
                    }
                }
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "could not delete the row of a vanished queue; will retry");
                    self.vanished.push(key);
                }
            }
        }
    }

    async fn write_rows(
        &mut self,
        table_id: &str,
        mut due: Vec<Due>,
        budget: usize,
        report: &mut CycleReport,
    ) {
        prioritize(&mut due);
        if due.len() > budget {
            let deferred = due.split_off(budget);
            report.deferred = deferred.len();
            let changed = deferred.iter().filter(|d| d.changed).count();
            tracing::warn!(
                deferred = deferred.len(),
                changed,
                budget,
                "more rows are due than the request budget allows this cycle; the rest wait for the next cycle (consider write_mode = \"import\" or a longer rows.refresh_after)"
            );
        }
        let known = self.known_keys.clone().unwrap_or_default();
        let sem = Arc::new(Semaphore::new(self.cfg.write_concurrency));
        let mut tasks = JoinSet::new();
        for d in due {
            let row = self.owned_row(&d.target.key, &d.counts, d.at);
            let exists = known.contains(&d.target.key);
            let client = self.client.clone();
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
                    report.written += 1;
                    self.record_written(&d.target, d.counts, d.at);
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
                    report
                        .failed
                        .push((d.target.name.clone(), format!("write failed: {e}")));
                }
            }
        }
        if table_gone {
            self.lose_table();
        }
    }

    /// The row for an owned key, carrying the extra columns it already has in the table.
    fn owned_row(&self, key: &str, counts: &QueueCounts, at: DateTime<Utc>) -> Map<String, Value> {
        let mut row = row_for(key, counts, at);
        if let Some(extra) = self.extra_columns.get(key) {
            for (k, v) in extra {
                row.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        row
    }

    fn record_written(&mut self, t: &Target, counts: QueueCounts, at: DateTime<Utc>) {
        if let Some(k) = self.known_keys.as_mut() {
            k.insert(t.key.clone());
        }
        // The table holds seconds precision: compare ages against what it holds.
        let at = DateTime::parse_from_rfc3339(&timestamp(at)).map_or(at, |t| t.with_timezone(&Utc));
        self.held.insert(t.key.clone(), Held { counts, at });
        let m = self.client.metrics();
        m.queue_value(&t.name, "Online", counts.online as i64);
        m.queue_value(&t.name, "OnQueue", counts.on_queue as i64);
        m.queue_value(&t.name, "Idle", counts.idle as i64);
        m.queue_value(&t.name, "Interacting", counts.interacting as i64);
        m.queue_value(&t.name, "Waiting", counts.waiting as i64);
    }

    fn lose_table(&mut self) {
        // A 404 on POST means the table itself is gone: look it up again next cycle.
        tracing::error!(table = %self.cfg.table, "the data table disappeared during writes; will look it up again next cycle");
        self.table = None;
        self.known_keys = None;
        self.health.set_table_ok(false);
    }

    async fn write_heartbeat(&mut self, table_id: &str) {
        let Some(key) = self.cfg.rows.heartbeat_key.clone() else {
            return;
        };
        let row = heartbeat_row(&key);
        let exists = self.known_keys.as_ref().is_some_and(|k| k.contains(&key));
        // A table holds at most 5,000 rows: a POST into a full table only fails.
        let rows = self.known_keys.as_ref().map_or(0, HashSet::len);
        if !exists && rows >= MAX_ROWS {
            return;
        }
        match datatable::upsert_row(&self.client, table_id, &key, &row, exists).await {
            Ok(()) => {
                if let Some(k) = self.known_keys.as_mut() {
                    k.insert(key);
                }
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

    /// Writes every owned row through one CSV import (ReplaceAll). Queues not observed
    /// this cycle keep the values (and UpdatedAt) the table already holds, so a failed
    /// read never wipes or zeroes a row.
    async fn write_import(
        &mut self,
        table_id: &str,
        observed: &[(Target, QueueCounts, DateTime<Utc>)],
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        let fresh: HashMap<&str, (QueueCounts, DateTime<Utc>)> = observed
            .iter()
            .map(|(t, c, at)| (t.key.as_str(), (*c, *at)))
            .collect();
        let extra: std::collections::BTreeSet<String> = self
            .extra_columns
            .values()
            .flat_map(|m| m.keys().cloned())
            .collect();
        let mut csv = datatable::CsvWriter::new(extra);
        let mut keys = HashSet::with_capacity(self.targets.len() + 1);
        for t in &self.targets {
            let values = fresh
                .get(t.key.as_str())
                .copied()
                .or_else(|| self.held.get(&t.key).map(|h| (h.counts, h.at)));
            if let Some((c, at)) = values {
                csv.push(&self.owned_row(&t.key, &c, at));
                keys.insert(t.key.clone());
            }
        }
        // ReplaceAll into a table of at most 5,000 rows: with 5,000 queues the heartbeat
        // row would make the whole import fail, every cycle.
        if let Some(key) = &self.cfg.rows.heartbeat_key
            && csv.rows() < MAX_ROWS
        {
            csv.push(&heartbeat_row(key));
            keys.insert(key.clone());
        }
        let csv = csv.finish();
        match datatable::import_replace_all(&self.client, table_id, csv).await {
            Ok(outcome) => {
                report.imported = true;
                report.written = observed.len();
                tracing::debug!(
                    polls = outcome.polls,
                    updated = outcome.updated,
                    deleted = outcome.deleted,
                    "import job succeeded"
                );
                for (t, c, at) in observed {
                    self.record_written(t, *c, *at);
                }
                self.known_keys = Some(keys);
                Ok(())
            }
            Err(e) => {
                if e.status() == Some(404) {
                    self.lose_table();
                }
                for (t, _, _) in observed {
                    report
                        .failed
                        .push((t.name.clone(), format!("import failed: {e}")));
                }
                Err(e.into())
            }
        }
    }
}

/// Up to this many names are looked up one request each; more are matched against one
/// paged listing of all queues (100 per page), which is cheaper for long lists.
const NAMES_PER_LOOKUP_LIMIT: usize = 5;

/// Case-insensitive match with `*` standing for any run of characters.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn in_divisions(q: &Queue, divisions: &[String]) -> bool {
    divisions.iter().any(|d| {
        q.division
            .as_ref()
            .is_some_and(|div| div.id == *d || div.name.eq_ignore_ascii_case(d))
    })
}

/// Resolves the configured selection (names, ids, patterns, divisions) into targets.
pub async fn resolve(client: &Client, cfg: &Config) -> Result<Resolution, ApiError> {
    let sel = &cfg.selection;
    let listing = if cfg.queue_names.len() > NAMES_PER_LOOKUP_LIMIT
        || !sel.patterns.is_empty()
        || !sel.divisions.is_empty()
    {
        Some(queues::list_all(client).await?)
    } else {
        None
    };
    let mut res = Resolution::default();
    let mut seen = HashSet::new();
    let mut add = |res: &mut Resolution, q: Queue| {
        if seen.insert(q.id.clone()) {
            res.targets.push(target(cfg.key_by, q));
        }
    };
    let names: Vec<(String, Option<Queue>)> = match &listing {
        Some(all) => queues::match_names(all, cfg.queue_names.iter().map(String::as_str)),
        None => {
            let mut v = Vec::new();
            for name in &cfg.queue_names {
                v.push((name.clone(), queues::find_by_name(client, name).await?));
            }
            v
        }
    };
    for (name, found) in names {
        match found {
            Some(q) => add(&mut res, q),
            None => res.missing.push(format!("name \"{name}\"")),
        }
    }
    if !cfg.queue_ids.is_empty() {
        let found: Vec<Queue> = match &listing {
            Some(all) => all
                .iter()
                .filter(|q| cfg.queue_ids.contains(&q.id))
                .cloned()
                .collect(),
            None => queues::find_by_ids(client, &cfg.queue_ids).await?,
        };
        for id in &cfg.queue_ids {
            match found.iter().find(|q| &q.id == id) {
                Some(q) => add(&mut res, q.clone()),
                None => res.missing.push(format!("id {id}")),
            }
        }
    }
    if let Some(all) = &listing {
        let mut matched: Vec<&Queue> = all
            .iter()
            .filter(|q| {
                let by_pattern = if sel.patterns.is_empty() {
                    !sel.divisions.is_empty()
                } else {
                    sel.patterns.iter().any(|p| glob_match(p, &q.name))
                };
                by_pattern && (sel.divisions.is_empty() || in_divisions(q, &sel.divisions))
            })
            .collect();
        matched.sort_by(|a, b| a.name.cmp(&b.name));
        for q in matched {
            add(&mut res, q.clone());
        }
    }
    if res.targets.len() > MAX_ROWS {
        let left: Vec<Target> = res.targets.split_off(MAX_ROWS);
        res.left_out = left.into_iter().map(|t| t.name).collect();
        let shown: Vec<&str> = res.left_out.iter().take(10).map(String::as_str).collect();
        tracing::warn!(
            selected = MAX_ROWS + res.left_out.len(),
            left_out = res.left_out.len(),
            first_left_out = %shown.join(", "),
            "the selection exceeds the 5,000 rows a data table holds; the queues past 5,000 (by configuration order, then name) are left out"
        );
    }
    Ok(res)
}

fn target(key_by: KeyBy, q: Queue) -> Target {
    let key = match key_by {
        KeyBy::Name => q.name.clone(),
        KeyBy::Id => q.id.clone(),
    };
    Target {
        id: q.id,
        name: q.name,
        key,
        division: q.division.map(|d| d.name).unwrap_or_default(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(
        "data table {0} not found: create it (`genesys-queue-sync table create`, Terraform, or Architect > Data Tables) or fix [table] in the config"
    )]
    TableMissing(TableRef),
    #[error("data table \"{table}\" does not fit: {problems}")]
    Schema { table: String, problems: String },
    #[error("none of the configured queues exists; check [queues]")]
    NoQueues,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(key: &str) -> Target {
        Target {
            id: key.into(),
            name: key.into(),
            key: key.into(),
            division: String::new(),
        }
    }

    fn counts(online: u64, waiting: u64) -> QueueCounts {
        QueueCounts {
            online,
            waiting,
            ..QueueCounts::default()
        }
    }

    #[test]
    fn rows_carry_every_column_and_a_z_timestamp() {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 29, 4, 5, 6)
            .single()
            .unwrap_or_default();
        let c = QueueCounts {
            online: 5,
            on_queue: 4,
            idle: 1,
            interacting: 3,
            waiting: 2,
        };
        let row = row_for("Sales", &c, at);
        assert_eq!(
            Value::Object(row.clone()),
            json!({"key": "Sales", "Online": 5, "OnQueue": 4, "Idle": 1, "Interacting": 3, "Waiting": 2, "UpdatedAt": "2026-11-29T04:05:06Z"})
        );
        assert_eq!(parse_row(&row), Some((c, at)));
    }

    #[test]
    fn incomplete_rows_are_not_trusted() {
        let mut row = row_for("x", &QueueCounts::default(), Utc::now());
        row.remove("Idle");
        assert_eq!(parse_row(&row), None);
        let mut row = row_for("x", &QueueCounts::default(), Utc::now());
        row.insert("UpdatedAt".into(), json!("yesterday"));
        assert_eq!(parse_row(&row), None);
    }

    #[test]
    fn outcome_reflects_failures() {
        let mut r = CycleReport::default();
        assert_eq!(r.outcome(), "ok");
        r.failed.push(("q".into(), "x".into()));
        assert_eq!(r.outcome(), "failed");
        r.observed.push((t("a"), QueueCounts::default()));
        assert_eq!(r.outcome(), "partial");
    }

    #[test]
    fn writes_are_ordered_biggest_change_first_then_oldest_refresh() {
        let old = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let older = old - chrono::Duration::minutes(5);
        let mk = |k: &str, changed: bool, change: f64, held_at| Due {
            target: t(k),
            counts: QueueCounts::default(),
            at: old,
            changed,
            change,
            held_at,
        };
        let mut due = vec![
            mk("refresh-new", false, 0.0, Some(old)),
            mk("small", true, 0.1, Some(old)),
            mk("refresh-old", false, 0.0, Some(older)),
            mk("new", true, f64::INFINITY, None),
            mk("big", true, 2.0, Some(old)),
        ];
        prioritize(&mut due);
        let order: Vec<&str> = due.iter().map(|d| d.target.key.as_str()).collect();
        assert_eq!(order, ["new", "big", "small", "refresh-old", "refresh-new"]);
    }

    #[test]
    fn relative_change_weighs_small_queues_more() {
        assert!(
            relative_change(&counts(1, 0), &counts(2, 0))
                > relative_change(&counts(50, 0), &counts(60, 0))
        );
        assert_eq!(relative_change(&counts(3, 3), &counts(3, 3)), 0.0);
    }

    #[test]
    fn globs_match_case_insensitively_anywhere() {
        assert!(glob_match("Sales *", "sales EU"));
        assert!(glob_match("*Support", "Tech Support"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("*", "anything"));
        assert!(!glob_match("Sales *", "Sales"));
        assert!(!glob_match("*Support", "Support desk"));
        assert!(glob_match("Über*", "übersicht"));
    }
}
