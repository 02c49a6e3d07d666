//! What a selection costs in requests per minute, for `check` and `queues`.

use crate::config::{Config, KeyBy, WriteMode};
use crate::genesys::queues::IDS_PER_REQUEST;

/// Expected requests per minute for a selection of `n` queues under the current settings.
pub struct Estimate {
    pub queues: usize,
    pub budget: u32,
    pub cycles_per_minute: f64,
    pub reads_per_cycle: f64,
    pub heartbeat_per_cycle: f64,
    /// Rows keyed by name: the names of the rows written are confirmed before writing,
    /// and every name once per refresh_after.
    pub name_checks: bool,
    /// Upper bound of refresh writes per cycle (every unchanged row once per refresh_after).
    pub refresh_per_cycle: f64,
    pub mode: WriteMode,
    pub refresh_after: std::time::Duration,
}

impl Estimate {
    pub fn new(cfg: &Config, n: usize) -> Self {
        let period = cfg.schedule.period.as_secs_f64().max(1.0);
        Self {
            queues: n,
            budget: cfg.requests_per_minute,
            cycles_per_minute: 60.0 / period,
            reads_per_cycle: n.div_ceil(cfg.queues_per_query.max(1)) as f64,
            name_checks: cfg.key_by == KeyBy::Name,
            // Its read-back (the writer check) and its write.
            heartbeat_per_cycle: if cfg.rows.heartbeat_key.is_some() {
                2.0
            } else {
                0.0
            },
            refresh_per_cycle: n as f64 * (period / cfg.rows.refresh_after.as_secs_f64()).min(1.0),
            mode: cfg.write_mode,
            refresh_after: cfg.rows.refresh_after,
        }
    }

    /// Name checks per cycle (rows keyed by name) when `writes` rows are written: one
    /// per 100 of them, plus all names once per refresh_after, spread over its cycles.
    pub fn names_per_cycle(&self, writes: f64) -> f64 {
        if !self.name_checks {
            return 0.0;
        }
        let all = self.queues.div_ceil(IDS_PER_REQUEST) as f64;
        let share = self.refresh_per_cycle / (self.queues.max(1) as f64);
        (writes / IDS_PER_REQUEST as f64).ceil() + all * share
    }

    /// Requests per minute in rows mode when `fraction` of the queues change every cycle.
    pub fn rows_per_minute(&self, fraction: f64) -> f64 {
        let writes = fraction * self.queues as f64
            + self
                .refresh_per_cycle
                .min((1.0 - fraction) * self.queues as f64);
        (self.reads_per_cycle + self.names_per_cycle(writes) + self.heartbeat_per_cycle + writes)
            * self.cycles_per_minute
    }

    /// Requests per minute in import mode: reads plus create, upload and about two polls,
    /// and with rows keyed by name the name checks of a cycle that writes every row (the
    /// most an import cycle checks).
    pub fn import_per_minute(&self) -> f64 {
        (self.reads_per_cycle + self.names_per_cycle(self.queues as f64) + 4.0)
            * self.cycles_per_minute
    }

    /// Whether the settings fit the budget (rows mode assumes 10% of queues change per cycle).
    pub fn verdict(&self) -> (bool, String) {
        let budget = f64::from(self.budget);
        if self.mode == WriteMode::Import {
            let need = self.import_per_minute();
            return (
                need <= budget,
                format!(
                    "import mode: about {need:.0} requests/minute for {} (budget {budget:.0})",
                    crate::text::count(self.queues, "queue", "queues")
                ),
            );
        }
        let need = self.rows_per_minute(0.1);
        if need <= budget {
            return (
                true,
                format!(
                    "about {need:.0} requests/minute for {} with 10% changing per cycle (budget {budget:.0})",
                    crate::text::count(self.queues, "queue", "queues")
                ),
            );
        }
        if self.mode == WriteMode::Auto {
            return (
                true,
                format!(
                    "rows would need about {need:.0} requests/minute (budget {budget:.0}); auto mode switches to import (about {:.0}/minute)",
                    self.import_per_minute()
                ),
            );
        }
        let per_cycle_budget = budget / self.cycles_per_minute;
        let avail = per_cycle_budget
            - self.reads_per_cycle
            - self.names_per_cycle(0.1 * self.queues as f64)
            - self.heartbeat_per_cycle
            - 0.1 * self.queues as f64;
        let refresh_hint = if avail > 0.0 {
            let period_s = 60.0 / self.cycles_per_minute;
            let minutes = (self.queues as f64 * period_s / avail / 60.0).ceil();
            format!(
                "or rows.refresh_after of at least {minutes}m (now {})",
                humantime::format_duration(self.refresh_after)
            )
        } else {
            "since even the changed rows alone exceed the budget, a longer refresh_after cannot help".to_owned()
        };
        (
            false,
            format!(
                "rows mode needs about {need:.0} requests/minute for {} with 10% changing per cycle, over the budget of {budget:.0}; \
                 fix: write_mode = \"import\" (about {:.0}/minute), {refresh_hint}",
                crate::text::count(self.queues, "queue", "queues"),
                self.import_per_minute(),
            ),
        )
    }
}
