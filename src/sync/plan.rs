//! Deciding what to write: pure, no I/O and no clock, so every rule is unit-tested.
//!
//! A row is due when its values changed, it is new, or its `UpdatedAt` is about
//! `rows.refresh_after` old; the rest are skipped. Due rows are written one request each
//! inside the per-cycle request budget (the biggest change first, then the oldest; the
//! rest are deferred to the next cycle), or all of them as one CSV import (Append) when
//! the write mode says so; a row that imports kept failing goes through the rows API.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::columns::{Columns, Values};
use super::observe::Observation;
use super::selection::{NameCheck, Target};
use crate::config::{Config, WriteMode};
use crate::genesys::datatable::MAX_ROWS;

/// The settings planning depends on.
#[derive(Debug, Clone)]
pub struct Policy {
    pub write_mode: WriteMode,
    pub period: Duration,
    pub requests_per_minute: u32,
    pub refresh_after: Duration,
    pub heartbeat_key: Option<String>,
    /// The columns, for the change measure.
    pub columns: Columns,
    /// Rows keyed by name: the names of the rows written are confirmed first.
    pub name_checks: bool,
}

impl Policy {
    pub fn new(cfg: &Config) -> Self {
        Self {
            write_mode: cfg.write_mode,
            period: cfg.schedule.period,
            requests_per_minute: cfg.requests_per_minute,
            refresh_after: cfg.rows.refresh_after,
            heartbeat_key: cfg.rows.heartbeat_key.clone(),
            columns: cfg.columns.clone(),
            name_checks: cfg.key_by == crate::config::KeyBy::Name,
        }
    }

    /// Row writes this cycle may spend: the per-minute budget scaled to the period (at
    /// most a minute's worth), less the cycle's reads and the heartbeat.
    pub fn row_budget(&self, reads: usize) -> usize {
        let period = self.period.min(Duration::from_secs(60));
        let per_cycle = (u64::from(self.requests_per_minute) * period.as_secs() / 60) as usize;
        // The heartbeat's read-back (the writer check) and its write.
        let heartbeat = 2 * usize::from(self.heartbeat_key.is_some());
        per_cycle.saturating_sub(reads + heartbeat)
    }

    /// Whether the schedule period starves writes at the request budget: for `queues`
    /// selected queues whose reads (observation queries) cost `reads` per cycle, the
    /// period's share of the budget must leave room for the heartbeat and, in rows
    /// mode, for a tenth of the rows (at least one) to change every cycle; in import
    /// mode for a job (about 4 requests). Returns what a start-up warning says, with the
    /// shortest period that fits, or None when it fits.
    pub fn starved_writes(&self, queues: usize, reads: usize) -> Option<String> {
        let need = match self.write_mode {
            WriteMode::Import => 4,
            WriteMode::Rows | WriteMode::Auto => {
                let rows = queues.div_ceil(10).max(1);
                rows + if self.name_checks {
                    NameCheck::cost(rows)
                } else {
                    0
                }
            }
        };
        let room = self.row_budget(reads);
        if room >= need {
            return None;
        }
        let heartbeat = 2 * usize::from(self.heartbeat_key.is_some());
        let wanted = (reads + heartbeat + need) as u64 * 60;
        let rpm = u64::from(self.requests_per_minute.max(1));
        let period_s = wanted.div_ceil(rpm);
        let per_cycle = u64::from(self.requests_per_minute)
            * self.period.min(Duration::from_secs(60)).as_secs()
            / 60;
        Some(format!(
            "a schedule period of {}s leaves {per_cycle} requests per cycle at {} requests/minute; the reads of {queues} queues ({reads}) and the heartbeat ({heartbeat}) leave {room} for writes, so changed rows wait; use a period of at least {period_s}s (or raise limits.requests_per_minute, up to ~300 a token allows)",
            self.period.as_secs(),
            self.requests_per_minute
        ))
    }

    /// How long an import job may stay `WaitingForUpload` or `Processing` before it is
    /// abandoned: one schedule period (a cycle should end before the next is due), at
    /// least 2 s and at most 60 s.
    pub fn import_bound(&self) -> Duration {
        self.period
            .clamp(Duration::from_secs(2), Duration::from_secs(60))
    }

    /// The age at which an unchanged row is rewritten: the cycle nearest to
    /// `refresh_after` rather than the one after it.
    pub fn refresh_age(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.refresh_after.saturating_sub(self.period / 2))
            .unwrap_or(chrono::Duration::MAX)
    }
}

/// What the table holds for an owned row, as far as the daemon knows.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub values: Values,
    pub at: DateTime<Utc>,
}

/// What the plan needs to know of the table.
#[derive(Debug, Clone, Copy)]
pub struct TableView<'a> {
    /// What each owned row holds.
    pub held: &'a HashMap<String, Held>,
    /// Every key in the table.
    pub keys: &'a HashSet<String>,
    /// Owned keys and how many imports in a row failed their record.
    pub import_failures: &'a HashMap<String, u32>,
}

/// Imports in a row that failed a row's record before the row is written through the
/// rows API instead (for the rest of the process).
pub const IMPORT_FAILURES_BEFORE_ROWS: u32 = 2;

/// A row due for writing this cycle.
#[derive(Debug, Clone)]
pub struct Due {
    pub target: Target,
    pub values: Values,
    pub at: DateTime<Utc>,
    /// Whether the values changed (or the row is new); false for a refresh.
    pub changed: bool,
    /// Relative size of the change; infinite for a new row.
    pub change: f64,
    /// When the table's copy was written; None for a new row.
    pub held_at: Option<DateTime<Utc>>,
}

/// The heartbeat write of a rows-mode cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub key: String,
    /// Whether the row exists (PUT) or is new (POST).
    pub exists: bool,
}

/// What a cycle writes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Rows neither changed nor due for a refresh.
    pub skipped: usize,
    pub writes: Writes,
}

#[derive(Debug, Clone)]
pub enum Writes {
    /// One write per row, in this order.
    Rows {
        rows: Vec<Due>,
        /// Due, but over the budget: left for the next cycle.
        deferred: Vec<Due>,
        budget: usize,
        /// Written after the rows if at least one queue's row is fresh then.
        heartbeat: Option<Heartbeat>,
    },
    /// One Append import of the due rows (rows not in the file, owned or not, are left as
    /// they are), then `via_rows` one request each: rows imports kept failing.
    Import {
        rows: Vec<Due>,
        via_rows: Vec<Due>,
        heartbeat: Option<String>,
    },
}

/// Row writes that fit in `budget` requests when each 100 of them (or fewer) also cost a
/// name check ([`NameCheck::Written`]).
fn rows_with_name_checks(budget: usize) -> usize {
    let mut rows = budget;
    while rows > 0 && rows + NameCheck::cost(rows) > budget {
        rows -= 1;
    }
    rows
}

impl Writes {
    /// Every row this plan writes (not the deferred ones).
    pub fn due(&self) -> impl Iterator<Item = &Due> {
        let (a, b): (&[Due], &[Due]) = match self {
            Writes::Rows { rows, .. } => (rows, &[]),
            Writes::Import { rows, via_rows, .. } => (rows, via_rows),
        };
        a.iter().chain(b)
    }

    /// Keeps only the rows `keep` accepts (a queue renamed since it was observed writes
    /// nothing under its old key).
    pub fn retain(&mut self, keep: impl Fn(&Due) -> bool) {
        match self {
            Writes::Rows { rows, .. } => rows.retain(&keep),
            Writes::Import { rows, via_rows, .. } => {
                rows.retain(&keep);
                via_rows.retain(&keep);
            }
        }
    }
}

/// Plans the cycle's writes. `reads`: the requests the cycle spent or spends besides
/// writes; `names`: which names are confirmed before writing, whose cost the budget
/// holds back (all of them: ⌈targets/100⌉; those written: ⌈rows/100⌉).
pub fn plan(
    policy: &Policy,
    targets: &[Target],
    observed: &[Observation],
    reads: usize,
    table: TableView<'_>,
    names: NameCheck,
) -> Plan {
    let (mut due, skipped) = due_rows(policy, observed, table.held);
    // A selected queue whose row key is the heartbeat key (a queue named `_heartbeat`
    // created after start): the queue's row wins, the heartbeat is not written.
    let heartbeat_key = policy
        .heartbeat_key
        .as_ref()
        .filter(|k| !targets.iter().any(|t| t.key.eq_ignore_ascii_case(k)));
    let budget = match names {
        NameCheck::None => policy.row_budget(reads),
        NameCheck::All => policy.row_budget(reads + NameCheck::cost(targets.len())),
        NameCheck::Written => rows_with_name_checks(policy.row_budget(reads)),
    };
    let import = match policy.write_mode {
        WriteMode::Import => true,
        WriteMode::Auto => due.len() > budget,
        WriteMode::Rows => false,
    };
    // A table holds at most 5,000 rows: a new heartbeat row in a full table only fails
    // (and in an import, fails the whole file).
    let heartbeat = |due: &[Due]| {
        heartbeat_key.and_then(|key| {
            let exists = table.keys.contains(key);
            let new_rows = due
                .iter()
                .filter(|d| !table.keys.contains(&d.target.key))
                .count();
            (exists || table.keys.len() + new_rows < MAX_ROWS).then(|| Heartbeat {
                key: key.clone(),
                exists,
            })
        })
    };
    let writes = if import {
        let heartbeat = heartbeat(&due).map(|h| h.key);
        let (via_rows, rows): (Vec<Due>, Vec<Due>) = due.into_iter().partition(|d| {
            table
                .import_failures
                .get(&d.target.key)
                .is_some_and(|n| *n >= IMPORT_FAILURES_BEFORE_ROWS)
        });
        Writes::Import {
            rows,
            via_rows,
            heartbeat,
        }
    } else {
        prioritize(&mut due);
        let deferred = due.split_off(budget.min(due.len()));
        let heartbeat = heartbeat(&due);
        Writes::Rows {
            rows: due,
            deferred,
            budget,
            heartbeat,
        }
    };
    Plan { skipped, writes }
}

/// Rows whose values changed, are new, or are due for a refresh; and how many are not.
fn due_rows(
    policy: &Policy,
    observed: &[Observation],
    held: &HashMap<String, Held>,
) -> (Vec<Due>, usize) {
    let refresh = policy.refresh_age();
    let mut due = Vec::new();
    let mut skipped = 0;
    for o in observed {
        let (changed, change, held_at) = match held.get(&o.target.key) {
            None => (true, f64::INFINITY, None),
            Some(h) => match policy.columns.change(&h.values, h.at, &o.values, o.at) {
                Some(change) => (true, change, Some(h.at)),
                None if o.at - h.at >= refresh => (false, 0.0, Some(h.at)),
                None => {
                    skipped += 1;
                    continue;
                }
            },
        };
        due.push(Due {
            target: o.target.clone(),
            values: o.values.clone(),
            at: o.at,
            changed,
            change,
            held_at,
        });
    }
    (due, skipped)
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

#[cfg(test)]
mod tests;
