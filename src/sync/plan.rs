//! Deciding what to write: pure, no I/O and no clock, so every rule is unit-tested.
//!
//! A row is due when its values changed, it is new, or its `UpdatedAt` is about
//! `rows.refresh_after` old; the rest are skipped. Due rows are written one request each
//! inside the per-cycle request budget (the biggest change first, then the oldest; the
//! rest are deferred to the next cycle), or all of them as one CSV import when the write
//! mode says so.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::observe::Observation;
use super::rows::{self, Values};
use super::selection::Target;
use crate::config::{Config, WriteMode};
use crate::genesys::datatable::MAX_ROWS;

/// The settings planning depends on.
#[derive(Debug, Clone)]
pub struct Policy {
    pub write_mode: WriteMode,
    pub table_owned: bool,
    pub period: Duration,
    pub requests_per_minute: u32,
    pub refresh_after: Duration,
    pub heartbeat_key: Option<String>,
}

impl Policy {
    pub fn new(cfg: &Config) -> Self {
        Self {
            write_mode: cfg.write_mode,
            table_owned: cfg.table_owned,
            period: cfg.schedule.period,
            requests_per_minute: cfg.requests_per_minute,
            refresh_after: cfg.rows.refresh_after,
            heartbeat_key: cfg.rows.heartbeat_key.clone(),
        }
    }

    /// Row writes this cycle may spend: the per-minute budget scaled to the period (at
    /// most a minute's worth), less the cycle's reads and the heartbeat.
    pub fn row_budget(&self, reads: usize) -> usize {
        let period = self.period.min(Duration::from_secs(60));
        let per_cycle = (u64::from(self.requests_per_minute) * period.as_secs() / 60) as usize;
        let heartbeat = usize::from(self.heartbeat_key.is_some());
        per_cycle.saturating_sub(reads + heartbeat)
    }

    /// The age at which an unchanged row is rewritten: the cycle nearest to
    /// `refresh_after` rather than the one after it.
    pub fn refresh_age(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.refresh_after.saturating_sub(self.period / 2))
            .unwrap_or(chrono::Duration::MAX)
    }
}

/// What the table holds for an owned row, as far as the daemon knows.
#[derive(Debug, Clone, Copy, PartialEq)]
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
}

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

/// A row of an import file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    pub key: String,
    pub values: Values,
    pub at: DateTime<Utc>,
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
    /// One ReplaceAll import of every owned row, in selection order: fresh values where
    /// observed, the table's own values (and `UpdatedAt`) where not, so a failed read
    /// never wipes or zeroes a row.
    Import {
        rows: Vec<ImportRow>,
        heartbeat: Option<String>,
    },
}

/// Plans the cycle's writes.
pub fn plan(
    policy: &Policy,
    targets: &[Target],
    observed: &[Observation],
    reads: usize,
    table: TableView<'_>,
) -> Plan {
    let (mut due, skipped) = due_rows(policy, observed, table.held);
    let budget = policy.row_budget(reads);
    let import = match policy.write_mode {
        WriteMode::Import => true,
        WriteMode::Auto => policy.table_owned && due.len() > budget,
        WriteMode::Rows => false,
    };
    let writes = if import {
        let rows = import_rows(targets, observed, table.held);
        // ReplaceAll into a table of at most 5,000 rows: with 5,000 queues the heartbeat
        // row would make the whole import fail, every cycle.
        let heartbeat = policy
            .heartbeat_key
            .clone()
            .filter(|_| rows.len() < MAX_ROWS);
        Writes::Import { rows, heartbeat }
    } else {
        prioritize(&mut due);
        let deferred = due.split_off(budget.min(due.len()));
        let heartbeat = policy.heartbeat_key.as_ref().and_then(|key| {
            let exists = table.keys.contains(key);
            // A table holds at most 5,000 rows: a POST into a full table only fails.
            let new_rows = due
                .iter()
                .filter(|d| !table.keys.contains(&d.target.key))
                .count();
            (exists || table.keys.len() + new_rows < MAX_ROWS).then(|| Heartbeat {
                key: key.clone(),
                exists,
            })
        });
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
            Some(h) if h.values != o.values => {
                (true, rows::change(&h.values, &o.values), Some(h.at))
            }
            Some(h) if o.at - h.at >= refresh => (false, 0.0, Some(h.at)),
            Some(_) => {
                skipped += 1;
                continue;
            }
        };
        due.push(Due {
            target: o.target.clone(),
            values: o.values,
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

/// Every owned row with values: observed ones fresh, the others as the table holds them.
fn import_rows(
    targets: &[Target],
    observed: &[Observation],
    held: &HashMap<String, Held>,
) -> Vec<ImportRow> {
    let fresh: HashMap<&str, &Observation> = observed
        .iter()
        .map(|o| (o.target.key.as_str(), o))
        .collect();
    targets
        .iter()
        .filter_map(|t| {
            let (values, at) = match fresh.get(t.key.as_str()) {
                Some(o) => (o.values, o.at),
                None => {
                    let h = held.get(&t.key)?;
                    (h.values, h.at)
                }
            };
            Some(ImportRow {
                key: t.key.clone(),
                values,
                at,
            })
        })
        .collect()
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

    #[test]
    fn writes_are_ordered_biggest_change_first_then_oldest_refresh() {
        let old = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let older = old - chrono::Duration::minutes(5);
        let mk = |k: &str, changed: bool, change: f64, held_at| Due {
            target: t(k),
            values: Values::default(),
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
}
