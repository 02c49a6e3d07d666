//! One sync cycle: resolve queues, observe them, write their rows.
//!
//! A [`Syncer`] keeps what is worth keeping between cycles (resolved queues, the table,
//! the keys known to exist, the extra columns of owned rows) so a steady-state cycle
//! costs ⌈N/100⌉ observation queries plus one write per row.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{Config, KeyBy, TableRef};
use crate::genesys::datatable::{self, Table};
use crate::genesys::observations::{self, MAX_QUEUES_PER_QUERY, QueueCounts};
use crate::genesys::queues;
use crate::genesys::{ApiError, Client};
use crate::health::Health;

/// A queue the daemon owns a row for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub name: String,
    /// The row key: the name or the id, per `table.key`.
    pub key: String,
}

/// What a cycle did, for logs, `once`, metrics and health.
#[derive(Debug, Default, Clone)]
pub struct CycleReport {
    pub started: Option<DateTime<Utc>>,
    pub duration: Duration,
    /// Observed queues and their values, in configuration order.
    pub observed: Vec<(Target, QueueCounts)>,
    pub written: usize,
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

    pub fn summary(&self) -> String {
        match &self.error {
            Some(e) => format!("cycle failed: {e}"),
            None => format!(
                "{} observed, {} written, {} failed in {} ms",
                self.observed.len(),
                self.written,
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
    row.insert(
        "UpdatedAt".into(),
        json!(at.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    row
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
    /// Columns of owned rows that the daemon does not write, carried into every PUT
    /// because a PUT replaces the whole row.
    extra_columns: HashMap<String, Map<String, Value>>,
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
            extra_columns: HashMap::new(),
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
        let mut rows = Vec::new();
        for t in &self.targets {
            match counts.get(&t.id) {
                Some((c, at)) => {
                    report.observed.push((t.clone(), *c));
                    rows.push((t.clone(), *c, *at));
                }
                None if !failed_ids.contains(t.id.as_str()) => {
                    tracing::warn!(queue = %t.name, id = %t.id, "queue missing from the observation answer (deleted or not visible?); its row is left as it was");
                    report
                        .failed
                        .push((t.name.clone(), "not in the observation answer".into()));
                    self.resolve_requested = true;
                }
                None => {}
            }
        }
        let Some(table_id) = table_id else {
            return Ok(());
        };
        self.write_rows(&table_id, rows, report).await
    }

    fn label(&self, id: &str) -> String {
        self.targets
            .iter()
            .find(|t| t.id == id)
            .map_or_else(|| id.to_owned(), |t| t.name.clone())
    }

    /// Finds the table once and checks its schema; forgets it when a write says it is gone.
    async fn ensure_table(&mut self) -> Result<String, CycleError> {
        if let Some(t) = &self.table {
            return Ok(t.id.clone());
        }
        self.health.set_table_ok(false);
        let found = match &self.cfg.table {
            TableRef::Name(n) => datatable::find_by_name(&self.client, n).await?,
            TableRef::Id(id) => datatable::get(&self.client, id).await?,
        };
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

    /// Resolves configured names (and ids, for their names) on the first cycle, every
    /// `resolve_every`, and after a queue went missing.
    async fn ensure_targets(&mut self) -> Result<(), CycleError> {
        let due = match self.resolved_at {
            None => true,
            Some(at) => self.resolve_requested || at.elapsed() >= self.cfg.resolve_every,
        };
        if !due {
            return Ok(());
        }
        match resolve(&self.client, &self.cfg).await {
            Ok(targets) => {
                if self.resolved_at.is_some() && targets != self.targets {
                    tracing::info!(
                        before = self.targets.len(),
                        after = targets.len(),
                        "queue selection changed"
                    );
                }
                self.targets = targets;
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

    async fn write_rows(
        &mut self,
        table_id: &str,
        rows: Vec<(Target, QueueCounts, DateTime<Utc>)>,
        report: &mut CycleReport,
    ) -> Result<(), CycleError> {
        if self.known_keys.is_none() {
            let existing = datatable::list_rows(&self.client, table_id, false).await?;
            let owned: HashSet<&str> = self.targets.iter().map(|t| t.key.as_str()).collect();
            let mut keys = HashSet::new();
            self.extra_columns.clear();
            for mut row in existing {
                let Some(key) = row.get("key").and_then(Value::as_str).map(str::to_owned) else {
                    continue;
                };
                if owned.contains(key.as_str()) {
                    for (col, _) in datatable::COLUMNS {
                        row.remove(*col);
                    }
                    if !row.is_empty() {
                        self.extra_columns.insert(key.clone(), row);
                    }
                }
                keys.insert(key);
            }
            self.known_keys = Some(keys);
        }
        let known = self.known_keys.clone().unwrap_or_default();
        let sem = Arc::new(Semaphore::new(self.cfg.write_concurrency));
        let mut tasks = JoinSet::new();
        for (target, counts, at) in rows {
            let mut row = row_for(&target.key, &counts, at);
            if let Some(extra) = self.extra_columns.get(&target.key) {
                for (k, v) in extra {
                    row.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            let exists = known.contains(&target.key);
            let client = self.client.clone();
            let table_id = table_id.to_owned();
            let sem = sem.clone();
            tasks.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let res =
                    datatable::upsert_row(&client, &table_id, &target.key, &row, exists).await;
                (target, counts, res)
            });
        }
        let mut table_gone = false;
        while let Some(joined) = tasks.join_next().await {
            let Ok((target, counts, res)) = joined else {
                continue;
            };
            match res {
                Ok(()) => {
                    report.written += 1;
                    if let Some(k) = self.known_keys.as_mut() {
                        k.insert(target.key.clone());
                    }
                    let m = self.client.metrics();
                    m.queue_value(&target.name, "Online", counts.online as i64);
                    m.queue_value(&target.name, "OnQueue", counts.on_queue as i64);
                    m.queue_value(&target.name, "Idle", counts.idle as i64);
                    m.queue_value(&target.name, "Interacting", counts.interacting as i64);
                    m.queue_value(&target.name, "Waiting", counts.waiting as i64);
                }
                Err(e) => {
                    if e.status() == Some(404) {
                        table_gone = true;
                    }
                    tracing::warn!(queue = %target.name, error = %e, "row write failed");
                    report
                        .failed
                        .push((target.name.clone(), format!("write failed: {e}")));
                }
            }
        }
        let m = self.client.metrics();
        m.rows_inc("written", report.written as u64);
        m.rows_inc("failed", report.failed.len() as u64);
        if table_gone {
            // A 404 on POST means the table itself is gone: look it up again next cycle.
            tracing::error!(table = %self.cfg.table, "the data table disappeared during writes; will look it up again next cycle");
            self.table = None;
            self.known_keys = None;
            self.health.set_table_ok(false);
        }
        Ok(())
    }
}

/// Up to this many names are looked up one request each; more are matched against one
/// paged listing of all queues (100 per page), which is cheaper for long lists.
const NAMES_PER_LOOKUP_LIMIT: usize = 5;

/// Resolves the configured queue names and ids into targets.
pub async fn resolve(client: &Client, cfg: &Config) -> Result<Vec<Target>, ApiError> {
    let mut targets: Vec<Target> = Vec::new();
    let mut seen = HashSet::new();
    let resolved: Vec<(String, Option<queues::Queue>)> =
        if cfg.queue_names.len() > NAMES_PER_LOOKUP_LIMIT {
            let all = queues::list_all(client).await?;
            queues::match_names(&all, cfg.queue_names.iter().map(String::as_str))
        } else {
            let mut v = Vec::new();
            for name in &cfg.queue_names {
                v.push((name.clone(), queues::find_by_name(client, name).await?));
            }
            v
        };
    for (name, found) in resolved {
        match found {
            Some(q) => {
                if seen.insert(q.id.clone()) {
                    targets.push(target(cfg.key_by, q.id, q.name));
                }
            }
            None => {
                tracing::warn!(queue = %name, "no queue with this name exists in Genesys Cloud; check queues.names")
            }
        }
    }
    if !cfg.queue_ids.is_empty() {
        let found: BTreeMap<String, String> = queues::find_by_ids(client, &cfg.queue_ids)
            .await?
            .into_iter()
            .map(|q| (q.id, q.name))
            .collect();
        for id in &cfg.queue_ids {
            match found.get(id) {
                Some(name) => {
                    if seen.insert(id.clone()) {
                        targets.push(target(cfg.key_by, id.clone(), name.clone()));
                    }
                }
                None => {
                    tracing::warn!(queue_id = %id, "no queue with this id exists in Genesys Cloud; check queues.ids")
                }
            }
        }
    }
    Ok(targets)
}

fn target(key_by: KeyBy, id: String, name: String) -> Target {
    let key = match key_by {
        KeyBy::Name => name.clone(),
        KeyBy::Id => id.clone(),
    };
    Target { id, name, key }
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
            Value::Object(row),
            json!({"key": "Sales", "Online": 5, "OnQueue": 4, "Idle": 1, "Interacting": 3, "Waiting": 2, "UpdatedAt": "2026-11-29T04:05:06Z"})
        );
        let cols: Vec<&str> = datatable::COLUMNS.iter().map(|(c, _)| *c).collect();
        assert_eq!(cols.len(), 7);
    }

    #[test]
    fn outcome_reflects_failures() {
        let mut r = CycleReport::default();
        assert_eq!(r.outcome(), "ok");
        r.failed.push(("q".into(), "x".into()));
        assert_eq!(r.outcome(), "failed");
        r.observed.push((
            Target {
                id: "a".into(),
                name: "a".into(),
                key: "a".into(),
            },
            QueueCounts::default(),
        ));
        assert_eq!(r.outcome(), "partial");
    }
}
