//! One sync cycle, as a pipeline: selection -> observe -> plan -> table.
//!
//! A [`Syncer`] keeps what is worth keeping between cycles: the resolved queues
//! ([`selection`]) and what the table holds ([`table`]). So a steady-state cycle costs
//! ⌈N/`limits.queues_per_query`⌉ observation queries ([`observe`]) plus one write per row that changed or whose
//! `UpdatedAt` is older than `rows.refresh_after`, plus the heartbeat row; or, in import
//! mode, one CSV import job (Append) whatever N is ([`plan`] decides which, without I/O). Every
//! cycle ends in a [`CycleReport`] ([`report`]); what becomes of it (logs, metrics,
//! health) is the caller's business.

pub mod columns;
pub mod observe;
pub mod plan;
pub mod report;
pub mod selection;
pub mod table;
pub mod target;
pub mod writer;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::config::Config;
use crate::genesys::observations::QueueObservation;
use crate::genesys::{ApiError, Client};
use columns::Values;
use plan::{Plan, Policy, Writes};
pub use report::{CycleError, CycleFailure, CycleReport, Outcome, QueueFailure, Stage};
use selection::{NameCheck, Selection};
pub use selection::{Resolution, Target, resolve};
use table::TableState;

/// The pipeline and the state it keeps between cycles.
pub struct Syncer {
    client: Client,
    cfg: Arc<Config>,
    policy: Policy,
    selection: Selection,
    table: TableState,
    /// Queue ids per observation query: lowered for good by a 400 to a bigger query.
    batch: observe::BatchSize,
    /// Push mode: the last cycle's raw observations, kept for the live state; None in
    /// poll mode (nothing kept).
    raw: Option<Vec<(String, QueueObservation)>>,
    /// Whether the schedule was checked against the budget (once the selection is known).
    budget_checked: bool,
}

/// Why a cycle stopped: the stage and the error.
type Stopped = (Stage, CycleError);

/// Tags an error with the stage it stopped the cycle in.
fn at<E: Into<CycleError>>(stage: Stage) -> impl FnOnce(E) -> Stopped {
    move |e| (stage, e.into())
}

impl Syncer {
    pub fn new(client: Client, cfg: Arc<Config>) -> Self {
        Self {
            client,
            policy: Policy::new(&cfg),
            table: TableState::new(
                cfg.table.clone(),
                cfg.columns.clone(),
                cfg.rows.refresh_after,
            ),
            batch: observe::BatchSize::new(cfg.queues_per_query),
            cfg,
            selection: Selection::default(),
            raw: None,
            budget_checked: false,
        }
    }

    /// Push mode: keep each cycle's raw observations for [`Self::take_raw`].
    pub fn keep_raw(&mut self, on: bool) {
        self.raw = on.then(Vec::new);
    }

    /// The raw observations of the last cycle (empty in poll mode).
    pub fn take_raw(&mut self) -> Vec<(String, QueueObservation)> {
        self.raw.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// What the table holds for an owned row, as far as the pipeline knows.
    pub fn held(&self, key: &str) -> Option<&plan::Held> {
        self.table.view().held.get(key)
    }

    /// Push mode: writes rows between cycles through the same table code and state as a
    /// cycle (so a cycle's change detection sees them), one request each; returns each
    /// key and whether its write was answered with success. Nothing is sent while the
    /// table is not known to be usable (the next cycle finds it again).
    pub async fn write_now(
        &mut self,
        rows: Vec<(Target, Values, DateTime<Utc>)>,
    ) -> Vec<(String, bool)> {
        let table_id = if self.table.usable() {
            self.table.ensure(&self.client).await.ok()
        } else {
            None
        };
        let Some(table_id) = table_id else {
            return rows
                .into_iter()
                .map(|(t, _, _)| (t.key.clone(), false))
                .collect();
        };
        let keys: Vec<String> = rows.iter().map(|(t, _, _)| t.key.clone()).collect();
        let due = rows
            .into_iter()
            .map(|(target, values, at)| plan::Due {
                target,
                values,
                at,
                changed: true,
                change: 0.0,
                held_at: None,
            })
            .collect();
        let mut report = CycleReport::default();
        let concurrency = self.cfg.write_concurrency;
        self.table
            .write_rows(&self.client, &table_id, due, concurrency, &mut report)
            .await;
        let written: HashSet<&str> = report.written.iter().map(|(t, _)| t.key.as_str()).collect();
        keys.iter()
            .map(|k| (k.clone(), written.contains(k.as_str())))
            .collect()
    }

    /// The configuration this pipeline runs with.
    pub fn config(&self) -> &Arc<Config> {
        &self.cfg
    }

    pub fn targets(&self) -> &[Target] {
        self.selection.targets()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs one cycle; never panics, always reports. A dry run reads and writes nothing.
    pub async fn run_cycle(&mut self, dry_run: bool) -> CycleReport {
        let start = Instant::now();
        let mut report = CycleReport {
            started: Some(Utc::now()),
            dry_run,
            columns: self.cfg.columns.clone(),
            ..CycleReport::default()
        };
        if let Err((stage, e)) = self.cycle(dry_run, &mut report).await {
            report.error = Some(CycleFailure {
                stage,
                message: e.to_string(),
            });
        }
        if report.logged_in == Some(true) && !dry_run {
            report.table_ok = Some(self.table.usable());
        }
        report.duration = start.elapsed();
        report
    }

    async fn cycle(&mut self, dry_run: bool, report: &mut CycleReport) -> Result<(), Stopped> {
        let client = &self.client;
        // A cycle is due: a login that failed because the service was down may be tried
        // again now (once), so rows converge at the first tick after an outage.
        client.auth().cycle_due().await;
        let logged_in = client.auth().token().await;
        report.logged_in = Some(logged_in.is_ok());
        logged_in
            .map_err(ApiError::from)
            .map_err(at(Stage::Login))?;

        let table_id = if dry_run {
            None
        } else {
            Some(self.table.ensure(client).await.map_err(at(Stage::Table))?)
        };
        // Requests of a pass given up because a rename turned up before writing.
        let mut spent = 0;
        for pass in 0..2 {
            let resolved = self
                .selection
                .ensure(client, &self.cfg)
                .await
                .map_err(at(Stage::Resolve))?;
            report.missing = self.selection.missing().to_vec();
            if self.selection.targets().is_empty() {
                return Err((Stage::Resolve, CycleError::NoQueues));
            }
            let names = self.selection.name_check(&self.cfg, resolved);
            if !self.budget_checked {
                self.budget_checked = true;
                let n = self.selection.targets().len();
                let reads = n.div_ceil(self.batch.get());
                if let Some(why) = self.policy.starved_writes(n, reads) {
                    tracing::warn!(schedule = %self.cfg.schedule.cron, "{why}");
                }
            }

            let observed = observe::observe(
                client,
                &self.cfg.columns,
                self.selection.targets(),
                &mut self.batch,
                self.cfg.write_concurrency,
                report,
                self.raw.as_mut(),
            )
            .await
            .map_err(at(Stage::Observe))?;
            self.selection
                .missing_from_answer(observed.missing_from_answer.iter().cloned());
            let Some(table_id) = &table_id else {
                return Ok(());
            };
            self.table
                .load_rows(client, table_id, self.selection.targets())
                .await
                .map_err(at(Stage::Table))?;
            for key in self.selection.take_rekeyed() {
                self.table.forget(&key);
            }
            let vanished = self.selection.take_vanished();
            if !vanished.is_empty() {
                let retry = self.table.delete_rows(client, table_id, vanished).await;
                self.selection.retry_vanished(retry);
            }

            let mut plan = plan::plan(
                &self.policy,
                self.selection.targets(),
                &observed.queues,
                spent + observed.reads + self.table.spent() + self.table.reread_cost(),
                self.table.view(),
                names,
            );
            // Rows keyed by name: the names of the queues about to be written (or of
            // all of them, every refresh_after) are read first, so a renamed queue
            // never writes its old name's row.
            let ids: Vec<String> = match names {
                NameCheck::None => Vec::new(),
                NameCheck::All => self
                    .selection
                    .targets()
                    .iter()
                    .map(|t| t.id.clone())
                    .collect(),
                NameCheck::Written => plan.writes.due().map(|d| d.target.id.clone()).collect(),
            };
            let renamed = self
                .selection
                .confirm_names(client, &self.cfg, &ids, self.cfg.write_concurrency)
                .await
                .map_err(at(Stage::Resolve))?;
            if renamed {
                if pass == 0 {
                    // Resolve, observe and plan again: a queue that took a renamed
                    // queue's name gets the row in this cycle.
                    spent += observed.reads + NameCheck::cost(ids.len());
                    report.observed.clear();
                    report.failed.retain(|f| f.stage != Stage::Observe);
                    continue;
                }
                let selection = &self.selection;
                plan.writes.retain(|d| selection.still_keyed(&d.target));
            }
            return self.write(plan, table_id, report).await;
        }
        Ok(())
    }

    /// Performs the plan.
    async fn write(
        &mut self,
        plan: Plan,
        table_id: &str,
        report: &mut CycleReport,
    ) -> Result<(), Stopped> {
        let client = &self.client;
        let table_id = table_id.to_owned();
        let Plan { skipped, writes } = plan;
        report.skipped = skipped;
        match writes {
            Writes::Import {
                mut rows,
                mut via_rows,
                heartbeat,
            } => {
                // One re-read for the import's rows and those going by rows.
                let via: HashSet<String> = via_rows.iter().map(|d| d.target.key.clone()).collect();
                rows.append(&mut via_rows);
                self.table
                    .reread(client, &table_id, &mut rows, heartbeat.as_deref(), report)
                    .await;
                let (via_rows, rows): (Vec<_>, Vec<_>) =
                    rows.into_iter().partition(|d| via.contains(&d.target.key));
                if let Some(key) = heartbeat
                    .as_ref()
                    .filter(|k| self.table.view().keys.contains(*k))
                {
                    report.other_writer = self.table.read_heartbeat(client, &table_id, key).await;
                }
                let bound = self.policy.import_bound();
                let imported = self
                    .table
                    .write_import(client, &table_id, rows, heartbeat, bound, report)
                    .await;
                // The rows imports kept rejecting go by rows whatever this import did.
                if !via_rows.is_empty() && self.table.usable() {
                    let concurrency = self.cfg.write_concurrency;
                    self.table
                        .write_rows(client, &table_id, via_rows, concurrency, report)
                        .await;
                }
                imported.map_err(at(Stage::Import))
            }
            Writes::Rows {
                mut rows,
                deferred,
                budget,
                heartbeat,
            } => {
                let hb = heartbeat.as_ref().map(|h| h.key.as_str());
                self.table
                    .reread(client, &table_id, &mut rows, hb, report)
                    .await;
                if !deferred.is_empty() {
                    report.deferred = deferred.len();
                    let changed = deferred.iter().filter(|d| d.changed).count();
                    tracing::warn!(
                        deferred = deferred.len(),
                        changed,
                        budget,
                        "more rows are due than the request budget allows this cycle; the rest wait for the next cycle (consider write_mode = \"import\" or a longer rows.refresh_after)"
                    );
                }
                let concurrency = self.cfg.write_concurrency;
                self.table
                    .write_rows(client, &table_id, rows, concurrency, report)
                    .await;
                if let Some(heartbeat) = heartbeat
                    && report.fresh() > 0
                {
                    // Read back right before it is overwritten: the latest write by
                    // anyone, which is what tells two writers apart (see `writer`).
                    if heartbeat.exists {
                        report.other_writer = self
                            .table
                            .read_heartbeat(client, &table_id, &heartbeat.key)
                            .await;
                    }
                    self.table
                        .write_heartbeat(client, &table_id, heartbeat)
                        .await;
                }
                Ok(())
            }
        }
    }
}
