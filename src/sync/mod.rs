//! One sync cycle, as a pipeline: selection -> observe -> plan -> table.
//!
//! A [`Syncer`] keeps what is worth keeping between cycles: the resolved queues
//! ([`selection`]) and what the table holds ([`table`]). So a steady-state cycle costs
//! ⌈N/100⌉ observation queries ([`observe`]) plus one write per row that changed or whose
//! `UpdatedAt` is older than `rows.refresh_after`, plus the heartbeat row; or, in import
//! mode, one CSV import job whatever N is ([`plan`] decides which, without I/O). Every
//! cycle ends in a [`CycleReport`].

pub mod observe;
pub mod plan;
pub mod report;
pub mod rows;
pub mod selection;
pub mod table;

use std::sync::Arc;

use chrono::Utc;
use tokio::time::Instant;

use crate::config::Config;
use crate::genesys::{ApiError, Client};
use crate::health::Health;
use plan::{Plan, Policy, Writes};
pub use report::{CycleError, CycleReport};
use selection::Selection;
pub use selection::{Resolution, Target, resolve};
use table::TableState;

pub struct Syncer {
    client: Client,
    cfg: Arc<Config>,
    policy: Policy,
    health: Health,
    selection: Selection,
    table: TableState,
}

impl Syncer {
    pub fn new(client: Client, cfg: Arc<Config>, health: Health) -> Self {
        Self {
            client,
            policy: Policy::new(&cfg),
            table: TableState::new(cfg.table.clone()),
            cfg,
            health,
            selection: Selection::default(),
        }
    }

    pub fn targets(&self) -> &[Target] {
        self.selection.targets()
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
            let fresh = if report.error.is_some() {
                0
            } else {
                report.fresh()
            };
            self.health.cycle_finished(fresh, &report.summary());
        }
        report
    }

    async fn cycle(&mut self, dry_run: bool, report: &mut CycleReport) -> Result<(), CycleError> {
        let (client, health) = (&self.client, &self.health);
        // A cycle is due: a login that failed because the service was down may be tried
        // again now (once), so rows converge at the first tick after an outage.
        client.auth().cycle_due().await;
        let logged_in = client.auth().token().await;
        health.set_logged_in(logged_in.is_ok());
        logged_in.map_err(ApiError::from)?;

        let table_id = if dry_run {
            None
        } else {
            Some(self.table.ensure(client, health).await?)
        };
        self.selection.ensure(client, &self.cfg).await?;
        let targets = self.selection.targets();
        if targets.is_empty() {
            return Err(CycleError::NoQueues);
        }

        let observed = observe::observe(client, targets, report).await?;
        if observed.missing_from_answer {
            self.selection.request_resolve();
        }
        let Some(table_id) = table_id else {
            return Ok(());
        };
        let targets = self.selection.targets();
        self.table.load_rows(client, &table_id, targets).await?;
        let vanished = self.selection.take_vanished();
        if !vanished.is_empty() {
            let retry = self.table.delete_rows(client, &table_id, vanished).await;
            self.selection.retry_vanished(retry);
        }

        let targets = self.selection.targets();
        let Plan { skipped, writes } = plan::plan(
            &self.policy,
            targets,
            &observed.queues,
            observed.reads,
            self.table.view(),
        );
        report.skipped = skipped;
        match writes {
            Writes::Import { rows, heartbeat } => {
                self.table
                    .write_import(
                        client,
                        health,
                        &table_id,
                        rows,
                        heartbeat,
                        &observed.queues,
                        report,
                    )
                    .await
            }
            Writes::Rows {
                rows,
                deferred,
                budget,
                heartbeat,
            } => {
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
                self.table
                    .write_rows(
                        client,
                        health,
                        &table_id,
                        rows,
                        self.cfg.write_concurrency,
                        report,
                    )
                    .await;
                if let Some(heartbeat) = heartbeat
                    && report.fresh() > 0
                {
                    self.table
                        .write_heartbeat(client, health, &table_id, heartbeat)
                        .await;
                }
                Ok(())
            }
        }
    }
}
