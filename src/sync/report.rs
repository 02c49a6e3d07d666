//! What a cycle did: the one value the daemon turns into logs, metrics and health, and
//! `once` prints.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::rows::Values;
use super::selection::Target;
use crate::config::TableRef;
use crate::genesys::ApiError;

/// What a cycle did, for logs, `once`, metrics and health.
#[derive(Debug, Default, Clone)]
pub struct CycleReport {
    pub started: Option<DateTime<Utc>>,
    pub duration: Duration,
    /// Observed queues and their values, in selection order.
    pub observed: Vec<(Target, Values)>,
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

/// A problem that stops a cycle.
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

    fn t(key: &str) -> Target {
        Target {
            id: key.into(),
            name: key.into(),
            key: key.into(),
            division: String::new(),
        }
    }

    #[test]
    fn outcome_reflects_failures() {
        let mut r = CycleReport::default();
        assert_eq!(r.outcome(), "ok");
        r.failed.push(("q".into(), "x".into()));
        assert_eq!(r.outcome(), "failed");
        r.observed.push((t("a"), Values::default()));
        assert_eq!(r.outcome(), "partial");
    }
}
