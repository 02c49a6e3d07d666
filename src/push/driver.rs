//! Push mode inside the daemon: the state between events and writes, and what the run
//! loop does with a cycle's result, an event, and a due write. The daemon keeps a
//! [`PushState`] next to the pipeline, behind the same lock, so push writes and cycles
//! never overlap on the table state and a cycle's change detection sees push's writes.
//!
//! - After every cycle: the poll's raw observations replace the live state, the rows the
//!   table holds settle what the scheduler had pending ([`Scheduler::written_elsewhere`]),
//!   the poll's values are offered (a row the cycle could not write is written by push),
//!   and the selection goes to the session.
//! - An event: merged into the live state ([`Live::apply`]); a changed queue's row
//!   values are offered to the scheduler.
//! - A due write: as many as the shared request budget allows now, less a reserve for
//!   the next reconciliation poll's reads; never more requests than
//!   `requests_per_minute` in any minute, whatever the burst.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::coalesce::Arrival;
use super::live::{Applied, Live, RowValues};
use super::metrics::PushMetrics;
use super::scheduler::Scheduler;
use crate::config::Config;
use crate::genesys::notifications::events::ObservationEvent;
use crate::metrics::QueueGauges;
use crate::sync::columns::Columns;
use crate::sync::{CycleReport, Syncer, Target};

/// How long to wait before trying again when changes are ready but the budget is spent.
const BUDGET_RETRY: Duration = Duration::from_millis(500);

pub struct PushState {
    live: Live,
    scheduler: Scheduler<RowValues>,
    columns: Columns,
    /// The selected queues, by queue id (events name the id) and the row key.
    by_id: HashMap<String, Target>,
    by_key: HashMap<String, String>,
    /// Requests kept back for the next reconciliation poll.
    reserve: u32,
    selection: watch::Sender<Vec<String>>,
    metrics: PushMetrics,
    /// The per-queue gauges follow events too (`[http] queue_metrics`), not only cycles.
    gauges: QueueGauges,
    queue_metrics: bool,
    /// Tells the push loop that a cycle changed what is due.
    wake: Arc<Notify>,
}

impl PushState {
    pub fn new(
        cfg: &Config,
        selection: watch::Sender<Vec<String>>,
        metrics: PushMetrics,
        gauges: QueueGauges,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            live: Live::new(),
            scheduler: Scheduler::new(cfg.push_min_interval),
            columns: cfg.columns.clone(),
            by_id: HashMap::new(),
            by_key: HashMap::new(),
            reserve: 0,
            selection,
            metrics,
            gauges,
            queue_metrics: cfg.queue_metrics,
            wake,
        }
    }

    /// A reloaded config: the interval applies at once; new columns start the live state
    /// and the scheduler afresh (their values have another shape), filled by the next cycle.
    pub fn reconfigure(&mut self, cfg: &Config) {
        self.scheduler.set_min_interval(cfg.push_min_interval);
        self.queue_metrics = cfg.queue_metrics;
        if self.columns != cfg.columns {
            self.columns = cfg.columns.clone();
            self.live = Live::new();
            self.scheduler = Scheduler::new(cfg.push_min_interval);
        }
    }

    /// Takes a cycle's result in (see the module comment).
    pub fn after_cycle(&mut self, syncer: &mut Syncer, report: &CycleReport) {
        let raw = syncer.take_raw();
        let targets = syncer.targets();
        if report.error.is_some() && raw.is_empty() {
            return;
        }
        self.by_id = targets.iter().map(|t| (t.id.clone(), t.clone())).collect();
        self.by_key = targets
            .iter()
            .map(|t| (t.key.clone(), t.id.clone()))
            .collect();
        let ids: HashSet<&str> = targets.iter().map(|t| t.id.as_str()).collect();
        let keys: HashSet<&str> = targets.iter().map(|t| t.key.as_str()).collect();
        self.live.retain(&ids);
        self.scheduler.retain(&keys);
        for (id, o) in raw {
            if ids.contains(id.as_str()) {
                self.live.replace(id, o);
            }
        }
        let now = Instant::now();
        for t in targets {
            if let Some(held) = syncer.held(&t.key) {
                let held = RowValues::new(held.values.clone(), held.at, self.columns.clone());
                self.scheduler.written_elsewhere(&t.key, held, now);
            }
        }
        let at = report.started.unwrap_or_else(Utc::now);
        for (t, values) in &report.observed {
            let v = RowValues::new(values.clone(), at, self.columns.clone());
            self.scheduler.offer(&t.key, v, now);
        }
        let cfg = syncer.config();
        let reads = targets.len().div_ceil(cfg.queues_per_query.max(1));
        // The poll's reads, its heartbeat read-back and write, and a page of re-read.
        self.reserve = u32::try_from(reads + 3).unwrap_or(u32::MAX);
        self.wake.notify_one();
        let wanted: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
        self.selection.send_if_modified(|current| {
            if *current == wanted {
                false
            } else {
                *current = wanted;
                true
            }
        });
    }

    /// Merges an event (maybe several coalesced) and offers the changed row: the wait's
    /// start is when its `oWaiting` arrived, the latency runs from its earliest arrival.
    pub fn on_event(&mut self, ev: &ObservationEvent, arrival: Arrival<Instant>) {
        let arrived = arrival.first;
        if ev.unknown_metrics > 0 {
            self.metrics
                .events
                .get_or_create(&vec![("result", "unknown_metric".to_owned())])
                .inc_by(ev.unknown_metrics as u64);
        }
        let arrived_wall = Utc::now()
            - chrono::Duration::from_std(Instant::now().saturating_duration_since(arrival.waiting))
                .unwrap_or_default();
        let result = self.live.apply(ev, arrived_wall);
        self.metrics.event(match result {
            Applied::Changed => "applied",
            Applied::Unchanged => "unchanged",
            Applied::NotSelected => "not_selected",
        });
        if result != Applied::Changed {
            return;
        }
        let (Some(t), Some(o)) = (self.by_id.get(&ev.queue_id), self.live.get(&ev.queue_id)) else {
            return;
        };
        let now = Utc::now();
        let values = self.columns.values(o, now);
        if self.queue_metrics {
            self.gauges.set(&t.name, self.columns.gauge_values(&values));
        }
        let values = RowValues::new(values, now, self.columns.clone());
        self.scheduler.offer(&t.key, values, arrived);
    }

    /// When the next write is due (None: nothing waits).
    pub fn next_ready(&self) -> Option<Instant> {
        self.scheduler.next_ready()
    }

    /// Writes what is due now, inside the budget; returns when to look again.
    pub async fn write_due(&mut self, syncer: &mut Syncer) -> Option<Instant> {
        let now = Instant::now();
        let available = syncer.client().limiter().available_now();
        let budget = available.saturating_sub(self.reserve) as usize;
        let writes = self.scheduler.take(now, budget);
        if writes.is_empty() {
            return match self.scheduler.next_ready() {
                Some(t) if t <= now => Some(now + BUDGET_RETRY),
                other => other,
            };
        }
        let mut rows = Vec::with_capacity(writes.len());
        let mut since = HashMap::with_capacity(writes.len());
        for w in writes {
            let target = self
                .by_key
                .get(&w.key)
                .and_then(|id| self.by_id.get(id))
                .cloned();
            match target {
                Some(t) => {
                    since.insert(w.key.clone(), w.since);
                    rows.push((t, w.values.values, w.values.at));
                }
                // Left the selection meanwhile: nothing to write.
                None => self.scheduler.forget(&w.key),
            }
        }
        let sent = rows.len();
        let results = syncer.write_now(rows).await;
        let done = Instant::now();
        let mut failed = 0;
        for (key, ok) in results {
            self.scheduler.finished(&key, ok, done);
            if ok {
                if let Some(s) = since.get(&key) {
                    self.metrics
                        .write_latency
                        .observe(done.saturating_duration_since(*s).as_secs_f64());
                }
            } else {
                failed += 1;
            }
        }
        syncer
            .client()
            .metrics()
            .rows_inc("written", (sent - failed) as u64);
        syncer.client().metrics().rows_inc("failed", failed as u64);
        tracing::debug!(rows = sent, failed, "push wrote changed rows");
        match self.scheduler.next_ready() {
            Some(t) if t <= done && budget <= sent => Some(done + BUDGET_RETRY),
            other => other,
        }
    }
}
